CREATE TABLE workspaces (id int PRIMARY KEY, slug varchar(40) NOT NULL, CONSTRAINT workspaces_slug_key UNIQUE (slug));
CREATE TABLE agents (
  id int PRIMARY KEY,
  ws_slug varchar(40),
  CONSTRAINT fk_agents_workspace FOREIGN KEY (ws_slug) REFERENCES workspaces (slug)
);
