-- Floor for row 2: one round trip that does nothing.
SELECT 1;
