SELECT count(*) FROM generate_series(1, 10000) g WHERE pg_try_advisory_lock(g) AND pg_advisory_unlock(g);
