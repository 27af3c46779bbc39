CREATE SEQUENCE public.actor_actor_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
CREATE SEQUENCE public.big_seq START WITH 1 INCREMENT BY 1 CACHE 65536;
CREATE TABLE public.actor (
    actor_id bigint DEFAULT nextval('public.actor_actor_id_seq'::regclass) NOT NULL,
    first_name text NOT NULL
);
ALTER SEQUENCE public.actor_actor_id_seq OWNED BY public.actor.actor_id;
ALTER TABLE ONLY public.actor ALTER COLUMN actor_id SET DEFAULT nextval('public.actor_actor_id_seq'::regclass);
CREATE SEQUENCE public.bad_seq CACHE 20;
-- @expect
-- serial_sequence_idiom advisory @9:29
-- serial_sequence_idiom advisory @13:65
-- sequence_cache fixed_with_warning @14:1
-- @fixed
CREATE SEQUENCE public.actor_actor_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
CREATE SEQUENCE public.big_seq START WITH 1 INCREMENT BY 1 CACHE 65536;
CREATE TABLE public.actor (
    actor_id bigint DEFAULT nextval('public.actor_actor_id_seq'::regclass) NOT NULL,
    first_name text NOT NULL
);
ALTER SEQUENCE public.actor_actor_id_seq OWNED BY public.actor.actor_id;
ALTER TABLE ONLY public.actor ALTER COLUMN actor_id SET DEFAULT nextval('public.actor_actor_id_seq'::regclass);
CREATE SEQUENCE public.bad_seq CACHE 1;
