CREATE TABLE events (tenant_id int NOT NULL, id bigint NOT NULL, payload varchar(10), PRIMARY KEY (tenant_id, id));
INSERT INTO events SELECT g % 3, g, 'p' || g FROM generate_series(1, 10) g;
