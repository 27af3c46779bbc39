-- both tables recreated in one plan; the child's key to the parent is dropped by the change:
-- the child is recreated first, so the key leaves with the child's backup; before, the parent
-- went first and the key followed the parent's backup, whose drop then failed with 2BP01
-- (issue 13, downgrade)
CREATE TABLE accounts (id int PRIMARY KEY, name varchar(20) NOT NULL);
CREATE TABLE sessions (
  id int PRIMARY KEY,
  account_id int,
  token varchar(20),
  CONSTRAINT fk_sessions_account FOREIGN KEY (account_id) REFERENCES accounts (id)
);
INSERT INTO accounts SELECT g, 'a' || g FROM generate_series(1, 4) g;
INSERT INTO sessions SELECT g, g % 4 + 1, 't' || g FROM generate_series(1, 9) g;
