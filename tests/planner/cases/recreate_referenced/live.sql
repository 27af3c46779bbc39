CREATE TABLE users (id int PRIMARY KEY, name varchar(20) NOT NULL);
CREATE TABLE articles (
  id int PRIMARY KEY,
  editor_id int,
  CONSTRAINT fk_articles_editor FOREIGN KEY (editor_id) REFERENCES users (id)
);
CREATE TABLE comments (
  id int PRIMARY KEY,
  author_id int NOT NULL,
  CONSTRAINT fk_comments_author FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE
);
INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 5) g;
INSERT INTO articles SELECT g, CASE WHEN g % 2 = 0 THEN NULL ELSE g % 5 + 1 END FROM generate_series(1, 8) g;
INSERT INTO comments SELECT g, g % 5 + 1 FROM generate_series(1, 12) g;
