CREATE TABLE events (
  tenant_id int NOT NULL,
  id bigint NOT NULL,
  payload varchar(5),
  PRIMARY KEY (tenant_id, id)
);
