CREATE TABLE accounts (id int PRIMARY KEY, name varchar(80) NOT NULL);
CREATE TABLE sessions (id int PRIMARY KEY, account_id int, token varchar(80));
