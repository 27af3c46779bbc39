SELECT sys.wait_for_job('j1');
CALL sys.wait_for_job('j2');
SELECT id FROM t WHERE sys.wait_for_job('j3');
BEGIN;
CALL sys.wait_for_job('j4');
COMMIT;
-- @expect
-- wait_for_job_select fixed @1:8
-- wait_for_job_select unfixable
-- wait_for_job_in_transaction unfixable @5:1
-- @fixed
CALL sys.wait_for_job('j1');
CALL sys.wait_for_job('j2');
SELECT id FROM t WHERE sys.wait_for_job('j3');
BEGIN;
CALL sys.wait_for_job('j4');
COMMIT;
