CREATE TABLE tags (id bigint PRIMARY KEY, label text, weight int);
INSERT INTO tags VALUES (1, 'a', 1), (2, 'b', 2);
ALTER TABLE tags ADD CONSTRAINT tags_weight_positive CHECK (weight > 0) NOT VALID;
