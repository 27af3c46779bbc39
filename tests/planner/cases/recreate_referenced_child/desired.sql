CREATE TABLE users (id int PRIMARY KEY, name varchar(80) NOT NULL, pinned_id int);
CREATE TABLE articles (
  id int PRIMARY KEY,
  editor_id bigint,
  CONSTRAINT fk_articles_editor FOREIGN KEY (editor_id) REFERENCES users (id)
);
