SELECT count(*) FROM generate_series(1, 10000) g WHERE g IS NOT NULL AND g IS NOT NULL;
