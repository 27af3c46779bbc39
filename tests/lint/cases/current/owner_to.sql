CREATE TABLE public.actor (actor_id bigint PRIMARY KEY, name text);
ALTER TABLE public.actor OWNER TO postgres;
ALTER SEQUENCE public.actor_seq OWNER TO postgres;
ALTER FUNCTION public.last_day(timestamp) OWNER TO postgres;
ALTER SCHEMA app OWNER TO app_owner;
ALTER TABLE public.actor ADD COLUMN note text, OWNER TO postgres;
-- @expect
-- owner_to fixed_with_warning @2:1
-- owner_to fixed_with_warning @3:1
-- owner_to fixed_with_warning @4:1
-- owner_to fixed_with_warning @5:1
-- owner_to fixed_with_warning @6:1
-- @fixed
CREATE TABLE public.actor (actor_id bigint PRIMARY KEY, name text);
ALTER TABLE public.actor ADD COLUMN note text;
