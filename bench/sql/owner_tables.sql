-- Row 1: the ownership table users write without finlive, logged and
-- unlogged (the unlogged one skips WAL and the commit fsync, and is emptied
-- by a crash: the cheapest table a careful user could defend).
CREATE TABLE bench_owner (
    job_id bigint      PRIMARY KEY,
    pid    integer     NOT NULL,
    since  timestamptz NOT NULL
);
CREATE UNLOGGED TABLE bench_owner_unlogged (LIKE bench_owner INCLUDING ALL);
