CREATE TABLE docs (id bigint PRIMARY KEY, title text, owner_id bigint);
CREATE TABLE owners (id bigint PRIMARY KEY);
