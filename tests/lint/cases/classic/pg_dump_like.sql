CREATE TABLE public.orders (
    id bigint NOT NULL,
    customer_id bigint,
    doc jsonb
);
ALTER TABLE public.orders DROP COLUMN doc;
CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id DESC);
ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES public.customers(id);
-- @expect
-- jsonb_type unfixable @4:5
-- at_unsupported_drop_column unfixable @6:1
-- index_async fixed_with_warning @7:1
-- index_using fixed @7:1
-- index_sort_direction fixed_with_warning @7:1
-- foreign_key fixed_with_warning
-- @fixed
CREATE TABLE public.orders (
    id bigint NOT NULL,
    customer_id bigint,
    doc jsonb
);
ALTER TABLE public.orders DROP COLUMN doc;
CREATE INDEX ASYNC orders_customer_idx ON public.orders (customer_id);
