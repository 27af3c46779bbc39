CREATE TABLE parents (id bigint PRIMARY KEY, code text);
CREATE TABLE kids (id bigint PRIMARY KEY, parent_id bigint, age int, nick text, CONSTRAINT kids_nick_check CHECK (length(nick) < 10));
INSERT INTO parents VALUES (1, 'a'), (2, 'b');
INSERT INTO kids VALUES (1, 1, 3, 'x'), (2, 2, 4, 'y');
