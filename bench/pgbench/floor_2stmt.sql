-- Floor for row 1: two round trips that do nothing, like every row-1 script.
SELECT 1;
SELECT 1;
