-- Row 1, the floor finlive builds on: the raw session-level advisory lock pair.
\set job random(1, 1000000000)
SELECT pg_try_advisory_lock(:job);
SELECT pg_advisory_unlock(:job);
