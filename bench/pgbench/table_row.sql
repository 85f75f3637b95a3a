-- Row 1, what users write without finlive: an ownership row in a table.
-- Each statement commits on its own: a row is only an owner once others can
-- see it.  (It also outlives a dead owner, which a reaper must then detect.)
\set job random(1, 1000000000)
INSERT INTO bench_owner (job_id, pid, since)
VALUES (:job, pg_backend_pid(), now())
ON CONFLICT (job_id) DO NOTHING;
DELETE FROM bench_owner WHERE job_id = :job AND pid = pg_backend_pid();
