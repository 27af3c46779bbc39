CREATE TABLE owners (id bigint PRIMARY KEY);
CREATE TABLE docs (id bigint PRIMARY KEY, title text, owner_id bigint REFERENCES owners (id));
CREATE INDEX ix_docs_title_lower ON docs (lower(title));
CREATE INDEX ix_docs_owner ON docs (owner_id);
