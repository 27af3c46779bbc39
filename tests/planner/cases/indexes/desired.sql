CREATE TABLE accounts (id bigint PRIMARY KEY, email text, tenant_id uuid, name text, deleted boolean);
CREATE UNIQUE INDEX ix_accounts_email ON accounts (email);
CREATE INDEX ix_accounts_tenant ON accounts (tenant_id, id) INCLUDE (name);
CREATE INDEX ix_accounts_live ON accounts (tenant_id) WHERE NOT deleted;
