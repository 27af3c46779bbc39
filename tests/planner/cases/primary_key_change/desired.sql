CREATE TABLE memberships (
  id bigint NOT NULL,
  team_id bigint NOT NULL,
  user_id bigint NOT NULL,
  PRIMARY KEY (team_id, user_id)
);
