CREATE TABLE accounts (id bigint PRIMARY KEY, email text, tenant_id uuid, name text, deleted boolean);
CREATE INDEX ix_accounts_name ON accounts (name);
INSERT INTO accounts SELECT g, 'a' || g || '@x', NULL, 'n', false FROM generate_series(1, 4) g;
