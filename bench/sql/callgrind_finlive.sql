SELECT count(*) FROM generate_series(1, 10000) g WHERE finlive_mark(g) IS NOT NULL AND finlive_clear(g);
