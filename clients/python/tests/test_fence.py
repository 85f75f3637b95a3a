"""finlive.fenced_finalize: the finalizer's last write, only under ownership."""

import pytest

import finlive
from conftest import query, value


def note_result(job_id, note):
    def finalize(cur):
        cur.execute("INSERT INTO results VALUES (%s, %s)", (job_id, note))
    return finalize


def results(app):
    return query(app.conn, "SELECT job_id, note FROM {s}.results ORDER BY 1, 2".format(
        s=app.schema))


def owner_conn(app, connections, dsn):
    conn = connections.finlive(dsn)
    query(conn, "SET search_path = %s, public" % app.schema)
    return conn


def test_fenced_finalize_writes_under_ownership(app, quiet_dsn, connections):
    conn = owner_conn(app, connections, quiet_dsn)
    job = app.add_job(1)
    with finlive.owned(conn, job) as token:
        assert finlive.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                       finalize=note_result(job, "merged")) is True
    assert app.status(job) == "done"
    assert results(app) == [(1, "merged")]
    assert conn.autocommit is True


def test_a_stale_token_writes_nothing(app, quiet_dsn, connections):
    conn = owner_conn(app, connections, quiet_dsn)
    job = app.add_job(2)
    with finlive.owned(conn, job) as old_token:
        pass
    # Someone else took the job over since.
    other = connections.finlive(quiet_dsn)
    with finlive.owned(other, job) as new_token:
        assert new_token > old_token
        called = []
        assert finlive.fenced_finalize(conn, job, old_token, jobs_table=app.jobs,
                                       finalize=called.append) is False
        assert called == []
    # And with nobody owning it at all.
    assert finlive.fenced_finalize(conn, job, new_token, jobs_table=app.jobs) is False
    assert app.status(job) == "running"
    assert results(app) == []


def test_a_job_the_reaper_finalized_is_not_finalized_again(app, quiet_dsn, connections):
    conn = owner_conn(app, connections, quiet_dsn)
    job = app.add_job(3)
    with finlive.owned(conn, job) as token:
        query(app.conn, "UPDATE {s}.jobs SET status = 'queued' WHERE id = 3".format(
            s=app.schema))
        assert finlive.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                       finalize=note_result(job, "merged")) is False
    assert app.status(job) == "queued"
    assert results(app) == []


def test_an_error_in_finalize_rolls_everything_back(app, quiet_dsn, connections):
    conn = owner_conn(app, connections, quiet_dsn)
    job = app.add_job(4)

    def failing(cur):
        note_result(job, "half")(cur)
        raise RuntimeError("merge failed")

    with finlive.owned(conn, job) as token:
        with pytest.raises(RuntimeError):
            finlive.fenced_finalize(conn, job, token, jobs_table=app.jobs, finalize=failing)
        assert app.status(job) == "running"
        assert results(app) == []
        # Still the owner, still able to finalize.
        assert finlive.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                       status="failed") is True
    assert app.status(job) == "failed"


def test_the_reaper_skips_a_job_being_finalized(app, quiet_dsn, connections):
    """A reaper and a finalizer never both finalize one job: while the fenced
    transaction holds the job's row, a reaper tick skips it (SKIP LOCKED)."""
    conn = owner_conn(app, connections, quiet_dsn)
    reaper = connections(quiet_dsn)
    query(reaper, "SET finlive.restart_grace = 0")
    # 'testing' is not a guarded stage: the reaper would finalize it at once.
    job = app.add_job(5, stage="testing")
    ticks = []

    def finalize(cur):
        ticks.append(query(reaper, "SELECT job_id, action FROM finlive_reap_once() "
                                   "WHERE target = %s::regclass", (app.jobs,)))
        note_result(job, "merged")(cur)

    with finlive.owned(conn, job) as token:
        assert finlive.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                       finalize=finalize) is True
    assert ticks == [[]]
    assert app.status(job) == "done"
    assert value(reaper, "SELECT count(*) FROM finlive_reap_log WHERE target = %s::regclass",
                 (app.jobs,)) == 0
    # After the finalizer committed, the reaper has nothing left to do.
    assert query(reaper, "SELECT job_id FROM finlive_reap_once() WHERE target = %s::regclass",
                 (app.jobs,)) == []


def test_a_quoted_schema_qualified_table(quiet_dsn, connections):
    admin = connections(quiet_dsn)
    query(admin, 'DROP SCHEMA IF EXISTS "Fence Test" CASCADE')
    query(admin, 'CREATE SCHEMA "Fence Test"')
    query(admin, 'CREATE TABLE "Fence Test"."Jobs" (id bigint PRIMARY KEY, status text)')
    query(admin, """INSERT INTO "Fence Test"."Jobs" VALUES (6, 'running')""")
    conn = connections.finlive(quiet_dsn)
    try:
        with finlive.owned(conn, 6) as token:
            assert finlive.fenced_finalize(conn, 6, token,
                                           jobs_table=("Fence Test", "Jobs")) is True
        assert value(admin, 'SELECT status FROM "Fence Test"."Jobs"') == "done"
    finally:
        query(admin, 'DROP SCHEMA "Fence Test" CASCADE')
