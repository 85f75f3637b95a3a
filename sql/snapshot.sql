-- Rule: finlive_snapshot() returns {"active", "jobs", "finalizer_defers_total",
-- "reaped_total"}: the number of owners and their job ids (ascending) in the
-- current database, and the cluster's reaper counters (the same values as
-- finlive_stats).
SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS snapshot;
SELECT key, jsonb_typeof(value) AS type
  FROM jsonb_each(finlive_snapshot()) ORDER BY key;

SELECT finlive_mark(503) > 0 AS m503, finlive_mark(501) > 0 AS m501,
       finlive_mark(502) > 0 AS m502;
SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS snapshot;

SELECT (s ->> 'finalizer_defers_total')::bigint = st.finalizer_defers_total AS defers_match,
       (s ->> 'reaped_total')::bigint = st.reaped_total AS reaped_match
  FROM finlive_snapshot() s, finlive_stats() st;

SELECT finlive_clear(502) AS cleared;
SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS snapshot;
SELECT finlive_clear_all() AS released;
SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS snapshot;
