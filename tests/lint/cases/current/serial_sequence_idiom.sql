CREATE SEQUENCE t_id_seq CACHE 1;
CREATE TABLE t (id bigint NOT NULL DEFAULT nextval('t_id_seq'), v text);
ALTER TABLE ONLY t ALTER COLUMN id SET DEFAULT nextval('t_id_seq'::regclass);
-- @expect
-- serial_sequence_idiom advisory @2:44
-- serial_sequence_idiom advisory @3:48
