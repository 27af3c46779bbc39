CREATE TABLE events (id uuid DEFAULT uuidv7() PRIMARY KEY, a integer, doubled integer GENERATED ALWAYS AS (a * 2) VIRTUAL);
CREATE TABLE events2 (id uuid DEFAULT uuidv4() PRIMARY KEY, a integer, tripled integer GENERATED ALWAYS AS (a * 3) STORED);
-- @expect
-- pg18_function fixed_with_warning @1:38
-- virtual_generated_column fixed_with_warning
-- pg18_function fixed_with_warning @2:39
-- @fixed
CREATE TABLE events (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, a integer, doubled integer GENERATED ALWAYS AS (a * 2) STORED);
CREATE TABLE events2 (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, a integer, tripled integer GENERATED ALWAYS AS (a * 3) STORED);
