CREATE TABLE memberships (id bigint PRIMARY KEY, team_id bigint NOT NULL, user_id bigint NOT NULL);
INSERT INTO memberships SELECT g, g % 2, g FROM generate_series(1, 6) g;
