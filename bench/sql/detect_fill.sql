-- The detection row "with 100,000 other running jobs": :n running jobs in
-- the detection target whose runs have not ended, started now, in a stage
-- nobody guards: every full tick reads them and leaves them alone (the
-- target does not claim owned jobs, and max_running is 90 minutes away).
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
INSERT INTO det_tasks SELECT g, 'build' FROM generate_series(1, :n) g;
INSERT INTO det_runs SELECT g, NULL, NULL FROM generate_series(1, :n) g;
INSERT INTO det_jobs (id, status, run_id, task_id, started_at)
SELECT g, 'running', g, g, now() FROM generate_series(1, :n) g;
VACUUM ANALYZE det_tasks, det_runs, det_jobs;
