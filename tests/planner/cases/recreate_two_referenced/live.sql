-- both tables recreated in one plan; the child's new key references a unique key the parent
-- only has after its recreation: the parent must be recreated first (issue 13)
CREATE TABLE agents (id int PRIMARY KEY, ws_slug varchar(20));
CREATE TABLE workspaces (id int PRIMARY KEY, slug varchar(20) NOT NULL);
INSERT INTO workspaces SELECT g, 'ws' || g FROM generate_series(1, 4) g;
INSERT INTO agents SELECT g, 'ws' || (g % 4 + 1) FROM generate_series(1, 9) g;
