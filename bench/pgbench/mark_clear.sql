-- Ownership, finlive: take and release a random job.
\set job random(1, 1000000000)
SELECT finlive_mark(:job);
SELECT finlive_clear(:job);
