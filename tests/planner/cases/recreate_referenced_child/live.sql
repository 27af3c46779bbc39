-- the parent and its child both recreated
CREATE TABLE users (id int PRIMARY KEY, name varchar(20) NOT NULL, pinned_id int);
CREATE TABLE articles (
  id int PRIMARY KEY,
  editor_id int,
  CONSTRAINT fk_articles_editor FOREIGN KEY (editor_id) REFERENCES users (id)
);
INSERT INTO users SELECT g, 'user ' || g, NULL FROM generate_series(1, 5) g;
INSERT INTO articles SELECT g, g % 5 + 1 FROM generate_series(1, 8) g;
