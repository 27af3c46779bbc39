CREATE TABLE public.payment (payment_id bigint NOT NULL, paid_at timestamp NOT NULL) PARTITION BY RANGE (paid_at);
CREATE TABLE public.payment_p2022_01 (payment_id bigint NOT NULL, paid_at timestamp NOT NULL);
ALTER TABLE ONLY public.payment ATTACH PARTITION public.payment_p2022_01 FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
ALTER TABLE public.payment DETACH PARTITION public.payment_p2022_01;
CREATE TABLE public.payment_p2022_02 PARTITION OF public.payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
-- @expect
-- partition_by fixed_with_warning @1:1
-- unsupported_partition_of fixed_with_warning @3:1
-- unsupported_partition_of fixed_with_warning @4:1
-- unsupported_partition_of unfixable @5:1
-- @fixed
CREATE TABLE public.payment (payment_id bigint NOT NULL, paid_at timestamp NOT NULL);
CREATE TABLE public.payment_p2022_01 (payment_id bigint NOT NULL, paid_at timestamp NOT NULL);
CREATE TABLE public.payment_p2022_02 PARTITION OF public.payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
