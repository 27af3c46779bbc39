CREATE TABLE clients (id bigint PRIMARY KEY, full_name text);
CREATE TABLE scratch (id bigint PRIMARY KEY);
INSERT INTO clients VALUES (1, 'Ada'), (2, 'Grace');
