-- Row 2, finlive: is this job owned?  Jobs 1..10000 are owned by another
-- session, so about half the probes hit.
\set job random(1, 20000)
SELECT finlive_is_active(:job);
