CREATE TABLE users (id int PRIMARY KEY, name varchar(80) NOT NULL);
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
