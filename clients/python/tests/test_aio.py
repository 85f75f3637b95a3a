"""finlive.aio on psycopg 3's AsyncConnection: ownership, the fence, the
listener, PgBouncer and the setup errors, as the blocking tests check them
for each driver.  Each test is a coroutine, run by conftest's hook."""

import asyncio
import time

import psycopg
import pytest

import finlive
from finlive import aio
from conftest import aquery, avalue, query, value


async def owner_row(conn, job_id):
    rows = await aquery(conn, "SELECT pid, token, run_id, stage FROM finlive_owners "
                              "WHERE job_id = %s", (job_id,))
    return rows[0] if rows else None


async def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


# -- ownership ------------------------------------------------------------------------

async def test_owned_yields_token_and_clears_on_exit(quiet_dsn, aconnections):
    owner = await aconnections.finlive(quiet_dsn)
    observer = await aconnections(quiet_dsn)
    assert isinstance(owner, psycopg.AsyncConnection) and owner.autocommit
    pid = await avalue(owner, "SELECT pg_backend_pid()")
    async with aio.owned(owner, 4001, run_id=7, stage="deploy-staging") as token:
        assert isinstance(token, int) and token > 0
        assert await owner_row(observer, 4001) == (pid, token, 7, "deploy-staging")
        assert await avalue(observer, "SELECT finlive_fence(4001, %s)", (token,)) is True
    assert await owner_row(observer, 4001) is None


async def test_owned_clears_when_the_block_raises_or_is_cancelled(quiet_dsn, aconnections):
    owner = await aconnections.finlive(quiet_dsn)
    observer = await aconnections(quiet_dsn)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with aio.owned(owner, 4002):
            assert await avalue(observer, "SELECT finlive_is_active(4002)") is True
            raise Boom()
    assert await avalue(observer, "SELECT finlive_is_active(4002)") is False

    entered = asyncio.Event()

    async def finalizer():
        async with aio.owned(owner, 4002):
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(finalizer())
    await entered.wait()
    assert await avalue(observer, "SELECT finlive_is_active(4002)") is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await avalue(observer, "SELECT finlive_is_active(4002)") is False


async def test_another_live_owner_is_reported_not_waited_for(quiet_dsn, aconnections):
    first = await aconnections.finlive(quiet_dsn)
    second = await aconnections.finlive(quiet_dsn)
    first_pid = await avalue(first, "SELECT pg_backend_pid()")
    async with aio.owned(first, 4003, stage="deploy-staging") as token:
        started = time.monotonic()
        with pytest.raises(finlive.AlreadyOwned) as err:
            async with aio.owned(second, 4003):
                pytest.fail("the block must not run")
        assert time.monotonic() - started < 5
        assert err.value.job_id == 4003
        assert err.value.owner["pid"] == first_pid
        assert await aio.owner_of(second, 4003) == err.value.owner
        assert await aio.mark(second, 4003) is None
        assert await avalue(second, "SELECT finlive_fence(4003, %s)", (token,)) is True


async def test_concurrent_tasks_race_for_one_job(quiet_dsn, aconnections):
    """Of several tasks that try to own one job at once, exactly one does."""
    conns = [await aconnections.finlive(quiet_dsn) for _ in range(4)]
    outcomes = []

    async def attempt(conn):
        try:
            async with aio.owned(conn, 4004):
                outcomes.append("owned")
                await asyncio.sleep(0.3)
        except finlive.AlreadyOwned:
            outcomes.append("refused")

    await asyncio.gather(*(attempt(c) for c in conns))
    assert sorted(outcomes) == ["owned", "refused", "refused", "refused"]


async def test_marking_again_keeps_the_token_and_one_clear_frees(quiet_dsn, aconnections):
    owner = await aconnections.finlive(quiet_dsn)
    token = await aio.mark(owner, 4005, 1, "build")
    assert await aio.mark(owner, 4005, 2, "deploy-staging") == token
    assert (await owner_row(owner, 4005))[2:] == (2, "deploy-staging")
    assert await aio.clear(owner, 4005) is True
    assert await aio.clear(owner, 4005) is False
    assert await aio.mark(owner, None) is None
    assert await aio.clear(owner, None) is False


async def test_losing_ownership_inside_the_block_is_reported(quiet_dsn, aconnections):
    owner = await aconnections.finlive(quiet_dsn)
    with pytest.raises(finlive.OwnershipLost) as err:
        async with aio.owned(owner, 4006):
            await aquery(owner, "SELECT pg_advisory_unlock_all()")
    assert err.value.job_id == 4006
    assert "no longer owned" in str(err.value)

    admin = await aconnections(quiet_dsn)
    pid = await avalue(owner, "SELECT pg_backend_pid()")
    with pytest.raises(finlive.OwnershipLost) as err:
        async with aio.owned(owner, 4006):
            assert await avalue(admin, "SELECT pg_terminate_backend(%s, 10000)", (pid,))
    assert "ended" in str(err.value)
    assert await avalue(admin, "SELECT finlive_is_active(4006)") is False


async def test_transactions_are_refused_and_modes_kept(quiet_dsn, aconnections):
    conn = await aconnections(quiet_dsn, autocommit=False)
    await aquery(conn, "SELECT 1")          # opens a transaction
    with pytest.raises(finlive.FinliveError) as err:
        async with aio.owned(conn, 4007):
            pass
    assert "inside a transaction" in str(err.value)
    await conn.rollback()
    async with aio.owned(conn, 4007) as token:
        assert token > 0
        assert conn.autocommit is False
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.autocommit is False


async def test_check_session_and_connect(quiet_dsn, aconnections):
    conn = await aconnections(quiet_dsn)
    pid, started = await aio.check_session(conn)
    assert pid == conn.info.backend_pid and started is not None
    assert await aio.check_session(conn) == (pid, started)
    assert await aio.verified_identity(conn) == (pid, started)
    made = await aconnections.finlive(quiet_dsn, application_name="orch-monitor-8")
    assert await avalue(made, "SHOW application_name") == "orch-monitor-8"
    assert made.info.get_parameters().get("keepalives") == "1"


async def test_each_api_refuses_the_other_kind_of_connection(quiet_dsn, aconnections):
    aconn = await aconnections(quiet_dsn)
    with pytest.raises(TypeError, match="finlive.aio.mark"):
        finlive.mark(aconn, 4008)
    with pytest.raises(TypeError, match="finlive.aio.owned"):
        with finlive.owned(aconn, 4008):
            pass
    with pytest.raises(TypeError, match="finlive.aio.fenced_finalize"):
        finlive.fenced_finalize(aconn, 4008, 1)
    sconn = psycopg.connect(quiet_dsn, autocommit=True)
    try:
        with pytest.raises(TypeError, match="use finlive.mark"):
            await aio.mark(sconn, 4008)
        with pytest.raises(TypeError, match="use finlive.check_session"):
            await aio.check_session(sconn)
    finally:
        sconn.close()
    with pytest.raises(TypeError, match="psycopg2 and psycopg"):
        finlive.mark(object(), 4008)


# -- the fence --------------------------------------------------------------------------

def results(app):
    return query(app.conn, "SELECT job_id, note FROM {s}.results ORDER BY 1, 2".format(
        s=app.schema))


async def fenced_owner(app, aconnections, quiet_dsn):
    conn = await aconnections.finlive(quiet_dsn)
    await aquery(conn, "SET search_path = %s, public" % app.schema)
    return conn


async def test_fenced_finalize_with_an_async_finalize(plain_app, quiet_dsn, aconnections):
    app = plain_app
    conn = await fenced_owner(app, aconnections, quiet_dsn)
    job = app.add_job(4101)

    async def finalize(cur):
        assert isinstance(cur, psycopg.AsyncCursor)
        await cur.execute("INSERT INTO results VALUES (%s, 'merged')", (job,))

    async with aio.owned(conn, job) as token:
        assert await aio.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                         finalize=finalize) is True
    assert app.status(job) == "done"
    assert results(app) == [(job, "merged")]
    assert conn.autocommit is True


async def test_a_stale_token_or_a_reaped_job_writes_nothing(plain_app, quiet_dsn,
                                                           aconnections):
    app = plain_app
    conn = await fenced_owner(app, aconnections, quiet_dsn)
    job = app.add_job(4102)
    async with aio.owned(conn, job) as old_token:
        pass
    other = await aconnections.finlive(quiet_dsn)
    called = []
    async with aio.owned(other, job) as new_token:
        assert new_token > old_token
        assert await aio.fenced_finalize(conn, job, old_token, jobs_table=app.jobs,
                                         finalize=called.append) is False
        # The reaper got there first.
        query(app.conn, "UPDATE {s}.jobs SET status = 'queued' WHERE id = %s".format(
            s=app.schema), (job,))
        assert await aio.fenced_finalize(other, job, new_token, jobs_table=app.jobs,
                                         finalize=called.append) is False
    assert called == []
    assert app.status(job) == "queued"


async def test_an_error_in_finalize_rolls_everything_back(plain_app, quiet_dsn, aconnections):
    app = plain_app
    conn = await fenced_owner(app, aconnections, quiet_dsn)
    job = app.add_job(4103)

    async def failing(cur):
        await cur.execute("INSERT INTO results VALUES (%s, 'half')", (job,))
        raise RuntimeError("merge failed")

    async with aio.owned(conn, job) as token:
        with pytest.raises(RuntimeError):
            await aio.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                      finalize=failing)
        assert app.status(job) == "running" and results(app) == []
        assert await aio.fenced_finalize(conn, job, token, jobs_table=app.jobs,
                                         status="failed") is True
    assert app.status(job) == "failed"


async def test_a_quoted_table_with_a_percent_sign(quiet_dsn, aconnections):
    admin = await aconnections(quiet_dsn)
    await aquery(admin, 'DROP SCHEMA IF EXISTS "Fence 100%" CASCADE')
    await aquery(admin, 'CREATE SCHEMA "Fence 100%"')
    await aquery(admin, 'CREATE TABLE "Fence 100%"."Jobs" (id bigint PRIMARY KEY, status text)')
    await aquery(admin, """INSERT INTO "Fence 100%"."Jobs" VALUES (4104, 'running')""")
    conn = await aconnections.finlive(quiet_dsn)
    try:
        async with aio.owned(conn, 4104) as token:
            assert await aio.fenced_finalize(conn, 4104, token,
                                             jobs_table=("Fence 100%", "Jobs")) is True
        assert await avalue(admin, 'SELECT status FROM "Fence 100%"."Jobs"') == "done"
    finally:
        await aquery(admin, 'DROP SCHEMA "Fence 100%" CASCADE')


# -- the listener ---------------------------------------------------------------------

def reap(conn):
    query(conn, "SET finlive.restart_grace = 0")
    return query(conn, "SELECT target::text, job_id, tier, action FROM finlive_reap_once() "
                       "ORDER BY job_id")


async def test_reaps_become_async_callbacks(plain_app, quiet_dsn):
    app = plain_app
    got = []

    async def on_reap(event):
        await asyncio.sleep(0)
        got.append((event, app.status(event.job_id)))

    reaper = psycopg.connect(quiet_dsn, autocommit=True)
    try:
        async with aio.ReapListener(quiet_dsn, on_reap, targets={app.jobs}) as listener:
            app.add_job(4201, stage="testing", exit_code=0)                 # Tier-2 -> done
            app.add_job(4202, stage="testing", exit_code=None,
                        started_ago="3 hours")                              # Tier-3 -> queued
            assert [r[1] for r in reap(reaper) if r[0] == app.jobs] == [4201, 4202]
            assert await wait_until(lambda: len(got) == 2)
            assert listener.delivered == 2
        reaper_pid = value(reaper, "SELECT pg_backend_pid()")
    finally:
        reaper.close()
    events = sorted(got, key=lambda g: g[0].job_id)
    assert [(e.target, e.job_id, e.tier, e.status, s) for e, s in events] == [
        (app.jobs, 4201, 2, "done", "done"),
        (app.jobs, 4202, 3, "queued", "queued"),
    ]
    assert all(e.sender_pid == reaper_pid for e, _ in events)


async def test_a_failing_callback_and_polling(plain_app, quiet_dsn):
    app = plain_app
    got = []

    def on_reap(event):
        if event.job_id == 4211:
            raise ValueError("application bug")
        got.append(event.job_id)

    reaper = psycopg.connect(quiet_dsn, autocommit=True)
    listener = aio.ReapListener(quiet_dsn, on_reap, targets={app.jobs})
    try:
        await listener.connect()
        assert await listener.poll(0.1) == []
        app.add_job(4211, stage="testing")
        app.add_job(4212, stage="testing")
        reap(reaper)
        events = []
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            events += await listener.poll(1.0)
        assert [e.job_id for e in events] == [4211, 4212]
        assert listener.callback_errors == 1 and got == [4212]
    finally:
        await listener.close()
        reaper.close()


async def test_the_async_listener_reconnects_and_stops_promptly(plain_app, quiet_dsn):
    app = plain_app
    got = []
    gaps = []
    admin = psycopg.connect(quiet_dsn, autocommit=True)

    async def on_reconnect(lost_at):
        gaps.append(lost_at)

    try:
        listener = aio.ReapListener(quiet_dsn, got.append, targets={app.jobs},
                                    on_reconnect=on_reconnect, reconnect_delay=0.2)
        async with listener:
            pid = value(admin, "SELECT pid FROM pg_stat_activity "
                               "WHERE application_name = 'finlive-listener' "
                               "ORDER BY backend_start DESC LIMIT 1")
            query(admin, "SELECT pg_terminate_backend(%s, 10000)", (pid,))
            assert await wait_until(lambda: len(gaps) == 1)
            app.add_job(4221, stage="testing")
            reap(admin)
            assert await wait_until(lambda: [e.job_id for e in got] == [4221])
            started = time.monotonic()
        assert time.monotonic() - started < 1.0, "stop() waited for the poll timeout"
        assert isinstance(gaps[0], float)
        # the server notices the closed connection a moment later
        assert await wait_until(lambda: value(admin, "SELECT count(*) FROM pg_stat_activity "
                                                     "WHERE application_name = 'finlive-listener' "
                                                     "AND pid <> %s", (pid,)) == 0)
    finally:
        admin.close()


# -- PgBouncer ------------------------------------------------------------------------

async def test_transaction_pooling_is_refused(bouncer_tx_dsn, worker_dsn, aconnections):
    with pytest.raises(finlive.SessionPoolingError) as err:
        await aio.connect(bouncer_tx_dsn)
    assert "pool_mode = session" in str(err.value)
    pooled = await aconnections(bouncer_tx_dsn)
    with pytest.raises(finlive.SessionPoolingError):
        async with aio.owned(pooled, 4301):
            pytest.fail("the block must not run through a transaction pool")
    with pytest.raises(finlive.SessionPoolingError):
        await aio.mark(pooled, 4301)
    direct = await aconnections(worker_dsn)
    assert await avalue(direct, "SELECT finlive_is_active(4301)") is False


async def test_session_pooling_holds_ownership(bouncer_session_dsn, worker_dsn, aconnections):
    direct = await aconnections(worker_dsn)
    conn = await aconnections.finlive(bouncer_session_dsn)
    server_pid, _ = await aio.check_session(conn)
    assert conn.info.backend_pid != server_pid
    async with aio.owned(conn, 4302) as token:
        assert await aquery(direct, "SELECT pid FROM finlive_owners WHERE job_id = 4302") == [
            (server_pid,)]
        other = await aconnections(bouncer_session_dsn)
        assert await avalue(other, "SELECT finlive_fence(4302, %s)", (token,)) is True
    assert await avalue(direct, "SELECT finlive_is_active(4302)") is False


async def test_fenced_finalize_through_a_transaction_pool_many_times(
        bouncer_tx_dsn, worker_dsn, aconnections):
    """psycopg 3 prepares a statement run five times on a connection; a
    prepared statement does not survive a transaction pool.  finlive's own
    statements are never prepared."""
    direct = await aconnections(worker_dsn)
    await aquery(direct, "SET client_min_messages = warning")
    await aquery(direct, "DROP TABLE IF EXISTS pgb_afence")
    await aquery(direct, "CREATE TABLE pgb_afence (id bigint PRIMARY KEY, status text)")
    try:
        owner = await aconnections.finlive(worker_dsn)
        pooled = await aconnections(bouncer_tx_dsn)
        for job in range(4310, 4320):
            await aquery(direct, "INSERT INTO pgb_afence VALUES (%s, 'running')", (job,))
            async with aio.owned(owner, job) as token:
                assert await aio.fenced_finalize(pooled, job, token,
                                                 jobs_table="pgb_afence") is True
        assert await avalue(direct, "SELECT count(*) FROM pgb_afence "
                                    "WHERE status = 'done'") == 10
    finally:
        await aquery(direct, "DROP TABLE pgb_afence")


# -- setup errors -----------------------------------------------------------------------

async def test_setup_errors(noext_dsn, nopreload_dsn, quiet_dsn, aconnections):
    conn = await aconnections.finlive(noext_dsn)
    with pytest.raises(finlive.ExtensionNotFound) as err:
        async with aio.owned(conn, 4401):
            pytest.fail("the block must not run")
    assert isinstance(err.value, psycopg.errors.UndefinedFunction)
    assert "CREATE EXTENSION finlive;" in str(err.value)

    conn = await aconnections.finlive(nopreload_dsn)
    with pytest.raises(finlive.NotPreloaded) as err:
        await aio.mark(conn, 4401)
    assert "shared_preload_libraries" in str(err.value)

    conn = await aconnections.finlive(quiet_dsn)
    admin = await aconnections(quiet_dsn)
    await aquery(admin, "DROP ROLE IF EXISTS finlive_py_anobody")
    await aquery(admin, "CREATE ROLE finlive_py_anobody")
    try:
        await aquery(conn, "SET ROLE finlive_py_anobody")
        with pytest.raises(finlive.MissingGrant) as err:
            await aio.mark(conn, 4401)
        assert isinstance(err.value, psycopg.errors.InsufficientPrivilege)
        assert "TO finlive_py_anobody;" in str(err.value)
    finally:
        await aquery(conn, "RESET ROLE")
        await aquery(admin, "DROP ROLE finlive_py_anobody")
