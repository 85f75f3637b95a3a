-- Ownership, finlive, every call naming a stage of its own (SPEC [1.2]: any
-- number of distinct stages at once): take and release a random job.
\set job random(1, 1000000000)
SELECT finlive_mark(:job, :job, 'stage-' || :job::text);
SELECT finlive_clear(:job);
