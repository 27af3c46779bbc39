-- A schema with what real PostgreSQL databases hold and DSQL lacks, run in plain PostgreSQL
-- and pg_dump'ed by the tests: enums, serials, an identity, a sequence default, arrays, a
-- partitioned table with its partitions, a view, an expression index, a DESC index, a
-- trigger with its plpgsql function, a SQL function, row-level security, comments.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE account (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    mood mood DEFAULT 'ok',
    tags text[] DEFAULT '{}',
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE event (
    id bigint GENERATED ALWAYS AS IDENTITY,
    account_id int NOT NULL REFERENCES account (id),
    at date NOT NULL,
    payload jsonb,
    amount numeric(10, 2) CHECK (amount >= 0),
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE event_2024 PARTITION OF event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE event_2025 PARTITION OF event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX event_account ON event (account_id, at DESC);
CREATE INDEX account_lower_email ON account (lower(email));
CREATE VIEW happy_account AS SELECT id, email FROM account WHERE mood = 'happy';
CREATE SEQUENCE invoice_no START 1000;
CREATE TABLE invoice (
    no bigint PRIMARY KEY DEFAULT nextval('invoice_no'),
    account_id int REFERENCES account (id),
    status mood NOT NULL,
    note varchar(40) COLLATE "C"
);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.created := now(); RETURN NEW; END $$;
CREATE TRIGGER account_touch BEFORE UPDATE ON account FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM account';
COMMENT ON TABLE account IS 'people who sign in';
COMMENT ON COLUMN account.mood IS 'how they feel';
ALTER TABLE account ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_all ON account USING (true);

INSERT INTO account (email, mood, tags)
SELECT 'user' || i || '@example.com', (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::mood,
       CASE WHEN i % 4 = 0 THEN ARRAY['a', 'b c', 'd"e'] ELSE '{}' END
FROM generate_series(1, 60) AS i;
INSERT INTO event (account_id, at, payload, amount)
SELECT 1 + i % 60, DATE '2024-01-01' + (i % 700), jsonb_build_object('n', i, 's', 'x''y'),
       (i % 1000) / 7.0
FROM generate_series(1, 4500) AS i;
INSERT INTO invoice (account_id, status, note)
SELECT 1 + i % 60, (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::mood, 'tab' || chr(9) || 'é' || i
FROM generate_series(1, 25) AS i;
