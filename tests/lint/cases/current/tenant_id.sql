-- @enable: tenant_id_missing, tenant_id_index_order
CREATE TABLE orders (id uuid PRIMARY KEY, total numeric);
CREATE TABLE items (tenant_id uuid NOT NULL, id uuid, PRIMARY KEY (tenant_id, id));
CREATE INDEX ASYNC ix_items_id ON items (id);
CREATE INDEX ASYNC ix_items_tenant ON items (tenant_id, id);
CREATE TABLE carts (tenant_id uuid NOT NULL, id uuid PRIMARY KEY);
CREATE TABLE users (tenant_id uuid NOT NULL, id uuid, email text UNIQUE,
  PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email));
CREATE INDEX ASYNC ix_items_lower ON items (lower(id::text));
-- @expect
-- tenant_id_missing unfixable @2:1
-- tenant_id_index_order unfixable @4:1
-- tenant_id_index_order unfixable @6:1
-- tenant_id_index_order unfixable @7:1
-- tenant_id_index_order unfixable @9:1
