#!/usr/bin/python3
"""finlive chaos run: a simulated orchestrator under injected faults.

Driven by test/chaos/run.sh, which starts a throwaway cluster (PGHOST/PGPORT
set, superuser "postgres", trust) and runs:  chaos.py driver

The driver
  * creates an application role and two reaper targets in schema "chaos":
      jobs_a: marked at finalization (stamp exit code + finlive_mark in one
              transaction), with a gate and an on_reap hook;
      jobs_b: claim_owned (marked at claim, in the claim's transaction),
              with an on_reap hook and no gate;
    a trigger records every transition of a job out of "running" (and any
    later overwrite) in chaos.transitions; the hooks record each call in
    chaos.hook_calls; clients record every first mark's token in chaos.marks;
  * starts client processes (chaos.py client), each with several finalizer
    threads on their own connections: claim, run, stamp, finalize for a
    random while, and a final write fenced by finlive_fence;
  * runs a second reaper (finlive_reap_once in a loop) beside the worker,
    and a LISTEN finlive_reaped listener;
  * injects faults at random: pg_terminate_backend of owners, SIGKILL of
    client processes, SIGKILL of the reaper worker and of a backend (both
    make the postmaster restart every process), pg_terminate_backend of the
    worker, reload flips of finlive.enabled and finlive.dry_run, and
    finlive.naptime changes;
  * then stops the faults and the clients, lets the reaper drain what they
    left, checks every invariant and prints the figures.  Exit status 1 when
    any invariant is violated.

Figures and invariants are printed as "name: value" lines.
"""
import collections
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import psycopg2.extensions

# ---------------------------------------------------------------------------
# Settings of the run
# ---------------------------------------------------------------------------

FINALIZE_GRACE = 2      # s
CLAIM_GRACE = 2         # s
MAX_RUNNING = 12        # s
RESTART_GRACE = 3       # s
NAPTIME = 200           # ms, the value restored at the end
GUARDED = ['deploy-staging', 'merge']
STAGES = {1: 'deploy-staging', 2: 'merge', 3: 'build', 4: 'test'}
MAX_ATTEMPTS = 3
EPS = 0.002             # s, float rounding in the grace checks

MODE = os.environ.get('CHAOS_MODE', 'short')
if MODE == 'long':
    DEFAULTS = dict(duration=0, min_jobs=10000, min_faults=500, max_duration=3600,
                    procs=4, threads=8, fault_interval=1.1)
else:
    DEFAULTS = dict(duration=130, min_jobs=0, min_faults=45, max_duration=200,
                    procs=4, threads=6, fault_interval=1.6)


def setting(name):
    return type(DEFAULTS[name])(os.environ.get('CHAOS_' + name.upper(), DEFAULTS[name]))


SERVER_SETTINGS = {
    'finlive.finalize_grace': str(FINALIZE_GRACE),
    'finlive.claim_grace': str(CLAIM_GRACE),
    'finlive.max_running': str(MAX_RUNNING),
    'finlive.restart_grace': str(RESTART_GRACE),
    'finlive.naptime': str(NAPTIME),
    'finlive.guarded_stages': ','.join(GUARDED),
}


def log(msg):
    sys.stdout.write('[%7.1fs] %s\n' % (time.time() - T0, msg))
    sys.stdout.flush()


T0 = time.time()

# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

class ConnLost(Exception):
    """A statement failed because its connection is gone (psycopg2 reports
    that as OperationalError, InterfaceError or a bare DatabaseError)."""


CONN_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError, ConnLost)


def lost(conn, e):
    # an error without a SQLSTATE came from the client side: the connection
    return isinstance(e, CONN_ERRORS) or conn.closed != 0 or getattr(e, 'pgcode', None) is None


def connect(user='postgres', app='chaos-driver', wait=60.0, stop=None):
    """Connect, retrying while the server restarts; None on time-out/stop."""
    deadline = time.time() + wait
    while True:
        try:
            conn = psycopg2.connect(host=os.environ['PGHOST'], port=os.environ['PGPORT'],
                                    dbname='postgres', user=user, application_name=app,
                                    connect_timeout=5,
                                    options='-c statement_timeout=30000')
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError:
            if time.time() > deadline or (stop is not None and stop.is_set()):
                return None
            time.sleep(0.1)


def one(conn, sql, args=None):
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone() if cur.description else None
    except psycopg2.Error as e:
        if lost(conn, e):
            raise ConnLost(str(e)) from e
        raise
    return row[0] if row is not None and len(row) == 1 else row


def rows(conn, sql, args=None):
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    except psycopg2.Error as e:
        if lost(conn, e):
            raise ConnLost(str(e)) from e
        raise


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------

SUPER_SQL = """
CREATE EXTENSION finlive;
CREATE ROLE chaos_app LOGIN;
CREATE SCHEMA chaos AUTHORIZATION chaos_app;
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), finlive_clear(bigint),
      finlive_clear_all(), finlive_reap_once(),
      finlive_register(regclass, regclass, regclass, regprocedure, regprocedure, boolean)
   TO chaos_app;
"""

APP_SQL = """
SET search_path = chaos, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
INSERT INTO tasks VALUES %(tasks)s;
CREATE SEQUENCE run_seq;
CREATE SEQUENCE job_seq;

CREATE TABLE transitions (
    target text, job_id bigint, epoch int, old_status text, new_status text,
    old_attempts int, new_attempts int, max_attempts int,
    app text, at timestamptz, noted timestamptz DEFAULT clock_timestamp());
CREATE TABLE hook_calls (
    target text, job_id bigint, epoch int, tier int, new_status text, at timestamptz,
    app text, enabled boolean, dry_run boolean, stage text, guarded boolean,
    age float8, finished_age float8, exit_code int,
    claim_grace float8, finalize_grace float8, max_running float8, owner_alive boolean);
CREATE TABLE marks (token bigint, target text, job_id bigint, epoch int,
    client text, seq bigint, kind text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE client_events (kind text, target text, job_id bigint, epoch int,
    client text, detail text, at timestamptz DEFAULT clock_timestamp());

-- Who is changing a job: a client's application_name, or the one the
-- worker reports in pg_stat_activity (it has no application_name setting).
CREATE FUNCTION who() RETURNS text LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT coalesce(nullif(current_setting('application_name'), ''),
                    (SELECT nullif(application_name, '') FROM pg_stat_activity
                      WHERE pid = pg_backend_pid()), 'unknown')
$$;

CREATE FUNCTION note_transition() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO chaos.transitions (target, job_id, epoch, old_status, new_status,
                                   old_attempts, new_attempts, max_attempts, app, at)
    VALUES (TG_ARGV[0], OLD.id, OLD.epoch, OLD.status, NEW.status,
            OLD.attempts, NEW.attempts, OLD.max_attempts, chaos.who(), now());
    RETURN NULL;
END $$;

-- The on_reap hooks: record the call with what the reaper saw; fail now
-- and then, so that a job's error is rolled back alone.
CREATE FUNCTION note_reap(t text, job bigint, tier int, st text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    j record;
    guarded text := current_setting('finlive.guarded_stages');
BEGIN
    IF random() < 0.02 THEN
        RAISE EXCEPTION 'chaos: flaky on_reap for job %% of %%', job, t;
    END IF;
    EXECUTE format('SELECT j.epoch, j.started_at, r.finished_at, r.exit_code, tk.stage
                      FROM chaos.%%I j LEFT JOIN chaos.%%I r ON r.id = j.run_id
                      LEFT JOIN chaos.tasks tk ON tk.id = j.task_id
                     WHERE j.id = $1', 'jobs_' || t, 'runs_' || t)
       INTO j USING job;
    INSERT INTO chaos.hook_calls VALUES (
        t, job, j.epoch, tier, st, now(), chaos.who(),
        current_setting('finlive.enabled')::boolean,
        current_setting('finlive.dry_run')::boolean,
        j.stage,
        guarded = '*' OR j.stage = ANY (string_to_array(replace(guarded, ' ', ''), ',')),
        extract(epoch FROM now() - j.started_at),
        extract(epoch FROM now() - j.finished_at),
        j.exit_code,
        extract(epoch FROM current_setting('finlive.claim_grace')::interval),
        extract(epoch FROM current_setting('finlive.finalize_grace')::interval),
        extract(epoch FROM current_setting('finlive.max_running')::interval),
        public.finlive_is_active(job));
END $$;
CREATE FUNCTION on_reap_a(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog AS $$ SELECT chaos.note_reap('a', job, tier, status) $$;
CREATE FUNCTION on_reap_b(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog AS $$ SELECT chaos.note_reap('b', job, tier, status) $$;

CREATE FUNCTION gate_a(job bigint) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    IF random() < 0.03 THEN
        RAISE EXCEPTION 'chaos: flaky gate for job %%', job;
    END IF;
    RETURN (SELECT r.exit_code = 0 FROM chaos.jobs_a j JOIN chaos.runs_a r ON r.id = j.run_id
             WHERE j.id = job);
END $$;
"""

TARGET_SQL = """
CREATE TABLE chaos.runs_%(t)s (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE chaos.jobs_%(t)s (
    id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT %(max)d,
    started_at timestamptz, epoch integer NOT NULL DEFAULT 0);
CREATE INDEX ON chaos.jobs_%(t)s (id) WHERE status = 'running';
CREATE INDEX ON chaos.jobs_%(t)s (id) WHERE status = 'queued';
CREATE TRIGGER transitions AFTER UPDATE OF status ON chaos.jobs_%(t)s FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('done', 'failed', 'queued'))
    EXECUTE FUNCTION chaos.note_transition('%(t)s');
"""

REGISTER_SQL = """
SELECT finlive_register('chaos.jobs_a', 'chaos.runs_a', 'chaos.tasks',
                        'chaos.on_reap_a(bigint,integer,text)', 'chaos.gate_a(bigint)', false);
SELECT finlive_register('chaos.jobs_b', 'chaos.runs_b', 'chaos.tasks',
                        'chaos.on_reap_b(bigint,integer,text)', NULL, true);
"""


def setup_schema():
    su = connect()
    with su.cursor() as cur:
        cur.execute(SUPER_SQL)
        for k, v in SERVER_SETTINGS.items():
            cur.execute('ALTER SYSTEM SET %s = %%s' % k, (v,))
        cur.execute('SELECT pg_reload_conf()')
    app = connect('chaos_app', 'chaos-setup')
    with app.cursor() as cur:
        cur.execute(APP_SQL % {'tasks': ', '.join("(%d, '%s')" % kv for kv in STAGES.items())})
        for t in 'ab':
            cur.execute(TARGET_SQL % {'t': t, 'max': MAX_ATTEMPTS})
        cur.execute(REGISTER_SQL)
    app.close()
    su.close()


# ---------------------------------------------------------------------------
# The client: finalizer threads
# ---------------------------------------------------------------------------

class Lost(Exception):
    """The connection died (terminated, crash restart)."""


class Stop(Exception):
    """The client is told to stop."""


def jitter_sleep(stop, seconds):
    return stop.wait(max(seconds, 0))


class Finalizer(threading.Thread):
    P_WORKER_DIES = 0.03       # the job's worker dies before its run ends
    P_FINALIZER_DIES = 0.03    # the finalizer's session dies mid-finalization
    P_EXIT_NONZERO = 0.15

    def __init__(self, name, stop):
        super().__init__(name=name, daemon=True)
        self.cid = name
        self.stop = stop
        self.conn = None
        self.seq = 0
        self.rng = random.Random()

    # -- connection ------------------------------------------------------

    def reconnect(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = connect('chaos_app', 'chaos-fin-' + self.cid, wait=120, stop=self.stop)
        if self.conn is None:
            raise Stop()

    def q(self, sql, args=None, fetch='one'):
        if self.stop.is_set():
            raise Stop()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                if fetch == 'one':
                    r = cur.fetchone()
                    return r
                if fetch == 'count':
                    return cur.rowcount
                return None
        except psycopg2.Error as e:
            if lost(self.conn, e):
                raise Lost(str(e))
            # a statement error: roll back whatever transaction is open
            try:
                with self.conn.cursor() as cur:
                    cur.execute('ROLLBACK')
            except psycopg2.Error:
                pass
            if self.conn.closed:
                raise Lost(str(e))
            raise

    def event(self, kind, t=None, job=None, detail=''):
        try:
            self.q('INSERT INTO chaos.client_events (kind, target, job_id, epoch, client, detail)'
                   ' VALUES (%s, %s, %s, %s, %s, %s)',
                   (kind, t, job and job['id'], job and job['epoch'], self.cid, detail), fetch=None)
        except (Lost, psycopg2.DatabaseError):
            pass

    def mark_row(self, t, job, token, kind):
        self.seq += 1
        self.q('INSERT INTO chaos.marks (token, target, job_id, epoch, client, seq, kind)'
               ' VALUES (%s, %s, %s, %s, %s, %s, %s)',
               (token, t, job['id'], job['epoch'], self.cid, self.seq, kind), fetch=None)

    # -- one job's life ---------------------------------------------------

    def claim(self, t):
        task = self.rng.choice(list(STAGES))
        self.q('BEGIN', fetch=None)
        r = self.q("""UPDATE chaos.jobs_%s SET status = 'running', epoch = epoch + 1,
                          run_id = nextval('chaos.run_seq'), task_id = %%s, started_at = now()
                       WHERE id = (SELECT id FROM chaos.jobs_%s WHERE status = 'queued'
                                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                   RETURNING id, epoch, run_id, attempts, max_attempts""" % (t, t), (task,))
        if r is None:
            self.q('ROLLBACK', fetch=None)
            return None
        job = dict(id=r[0], epoch=r[1], run_id=r[2], attempts=r[3], max_attempts=r[4],
                   stage=STAGES[task], token=None, owned=False)
        self.q('INSERT INTO chaos.runs_%s (id) VALUES (%%s)' % t, (job['run_id'],), fetch=None)
        if t == 'b':
            tok = self.q('SELECT finlive_mark(%s, %s, %s)', (job['id'], job['run_id'], job['stage']))[0]
            if tok is None:
                # the previous attempt's finalizer still owns the job id
                self.q('ROLLBACK', fetch=None)
                self.event('claim_mark_busy', t, job)
                return None
            self.mark_row(t, job, tok, 'claim')
            job['token'], job['owned'] = tok, True
        self.q('COMMIT', fetch=None)
        return job

    def remark(self, t, job):
        """After a reconnect: own the job again if it is still ours to finish."""
        self.q('BEGIN', fetch=None)
        tok = self.q('SELECT finlive_mark(%s, %s, %s)', (job['id'], job['run_id'], job['stage']))[0]
        r = self.q('SELECT status, epoch FROM chaos.jobs_%s WHERE id = %%s FOR SHARE' % t, (job['id'],))
        if tok is not None:
            self.mark_row(t, job, tok, 'remark')
        self.q('COMMIT', fetch=None)
        if tok is not None and r == ('running', job['epoch']):
            job['token'], job['owned'] = tok, True
            return True
        if tok is not None:
            self.q('SELECT finlive_clear(%s)', (job['id'],))
        self.event('abandon_after_reconnect', t, job, 'mark %s, row %s' % (tok, r))
        return False

    def stamp(self, t, job, exit_code):
        """Stamp the exit code; for jobs_a take ownership in the same transaction."""
        self.q('BEGIN', fetch=None)
        r = self.q('SELECT status, epoch FROM chaos.jobs_%s WHERE id = %%s FOR UPDATE' % t, (job['id'],))
        if r != ('running', job['epoch']):
            self.q('ROLLBACK', fetch=None)
            self.event('gone_before_stamp', t, job, str(r))
            return False
        self.q('UPDATE chaos.runs_%s SET exit_code = %%s, finished_at = coalesce(finished_at, now())'
               ' WHERE id = %%s' % t, (exit_code, job['run_id']), fetch=None)
        if t == 'a' and not job['owned']:
            tok = self.q('SELECT finlive_mark(%s, %s, %s)', (job['id'], job['run_id'], job['stage']))[0]
            if tok is None:
                self.q('ROLLBACK', fetch=None)
                return None
            self.mark_row(t, job, tok, 'stamp')
            job['token'], job['owned'] = tok, True
        self.q('COMMIT', fetch=None)
        return True

    def final_write(self, t, job, exit_code):
        if exit_code == 0:
            new, inc = 'done', 0
        elif job['attempts'] < job['max_attempts']:
            new, inc = 'queued', 1
        else:
            new, inc = 'failed', 0
        n = self.q("""UPDATE chaos.jobs_%s SET status = %%s, attempts = attempts + %%s
                       WHERE id = %%s AND status = 'running' AND epoch = %%s
                         AND finlive_fence(id, %%s)""" % t,
                   (new, inc, job['id'], job['epoch'], job['token']), fetch='count')
        if n == 1:
            self.q('SELECT finlive_clear(%s)', (job['id'],))
            return True
        # Lost the job.  Was this a pre-emption of a live owner?
        still_owner = self.q('SELECT finlive_fence(%s, %s)', (job['id'], job['token']))[0]
        reaps = self.q("""SELECT coalesce(json_agg(json_build_object('tier', tier, 'enabled', enabled,
                                  'guarded', guarded, 'status', new_status, 'app', app)), '[]')
                            FROM chaos.hook_calls WHERE target = %s AND job_id = %s AND epoch = %s""",
                       (t, job['id'], job['epoch']))[0]
        self.q('SELECT finlive_clear(%s)', (job['id'],))
        detail = json.dumps(reaps)
        if not still_owner:
            # our session never ended (else we would have re-marked), yet the
            # token is no longer current: ownership was lost behind our back
            self.event('VIOLATION_ownership_lost', t, job, detail)
        elif not reaps:
            self.event('VIOLATION_unexplained_loss', t, job, detail)
        else:
            for r in reaps:
                if r['tier'] == 3:
                    kind = 'live_reaped_tier3'
                elif not r['enabled']:
                    kind = 'live_reaped_killswitch'
                elif r['tier'] == 2 and not r['guarded']:
                    kind = 'live_reaped_unguarded'
                else:
                    kind = 'VIOLATION_preempted'
                self.event(kind, t, job, detail)
        return False

    def finalizing_sleep(self, t, job, seconds):
        """Spend a while finalizing, pinging the server now and then."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return True
            if jitter_sleep(self.stop, min(left, 1.0)):
                raise Stop()
            self.with_recovery(t, job, lambda: self.q('SELECT 1'))

    def with_recovery(self, t, job, fn):
        """Run fn; on a lost connection reconnect, own the job again if we
        owned it (or give it up), and retry.  Raises Abandon when the job is
        no longer ours."""
        need_remark = False
        for _ in range(20):
            try:
                if need_remark:
                    if not self.remark(t, job):
                        raise Abandon()
                    need_remark = False
                return fn()
            except Lost:
                self.reconnect()
                if job is not None and job['owned']:
                    need_remark = True
        raise Abandon()

    def life(self, t):
        job = self.with_recovery(t, None, lambda: self.claim(t))
        if job is None:
            jitter_sleep(self.stop, 0.2)
            return
        rng = self.rng
        try:
            if rng.random() < self.P_WORKER_DIES:
                # the worker dies: its session ends, the job stays running
                self.reconnect()
                return
            if jitter_sleep(self.stop, min(rng.expovariate(1 / 0.15), 1.0)):
                raise Stop()
            exit_code = 0 if rng.random() >= self.P_EXIT_NONZERO else 1
            for _ in range(10):
                ok = self.with_recovery(t, job, lambda: self.stamp(t, job, exit_code))
                if ok is not None:
                    break
                jitter_sleep(self.stop, 0.3)      # ownership busy: try again
            if not ok:
                if ok is None:
                    self.event('stamp_mark_busy', t, job)
                return
            # finalizing: mostly short, sometimes past the grace, rarely past
            # the Tier-3 ceiling
            x = rng.random()
            if x < 0.80:
                d = rng.uniform(0, 0.3)
            elif x < 0.98:
                d = rng.uniform(FINALIZE_GRACE + 0.5, FINALIZE_GRACE + 3)
            else:
                d = rng.uniform(MAX_RUNNING + 1, MAX_RUNNING + 3)
            if rng.random() < self.P_FINALIZER_DIES:
                jitter_sleep(self.stop, d / 2)
                self.reconnect()     # the finalizer dies; its session ends
                return
            if not self.finalizing_sleep(t, job, d):
                return
            if self.with_recovery(t, job, lambda: self.final_write(t, job, exit_code)):
                self.event('finalized', t, job)
        except Abandon:
            return

    def run(self):
        try:
            self.reconnect()
            while not self.stop.is_set():
                try:
                    self.life(self.rng.choice('ab'))
                except psycopg2.DatabaseError as e:
                    # an unexpected SQL error: record it, go on
                    self.event('client_sql_error', detail=str(e)[:500])
                    jitter_sleep(self.stop, 0.2)
        except (Stop, Abandon):
            pass


class Abandon(Exception):
    pass


def client_main(cid, nthreads):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    threads = [Finalizer('%s.%d' % (cid, i), stop) for i in range(nthreads)]
    for th in threads:
        th.start()
    while not stop.is_set():
        stop.wait(0.5)
    for th in threads:
        th.join(timeout=5)
    os._exit(0)


# ---------------------------------------------------------------------------
# The driver: second reaper, listener, faults
# ---------------------------------------------------------------------------

class Reaper2(threading.Thread):
    """A second reaper beside the worker: finlive_reap_once in a loop."""

    def __init__(self, stop):
        super().__init__(daemon=True)
        self.stop = stop
        self.calls = 0
        self.actions = 0
        self.errors = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect('chaos_app', 'chaos-reaper2', wait=120, stop=self.stop)
                    if conn is None:
                        return
                self.actions += one(conn, "SELECT count(*) FROM finlive_reap_once() WHERE action <> 'deferred'")
                self.calls += 1
            except CONN_ERRORS:
                conn = None
            except psycopg2.Error as e:
                self.errors.append(str(e).strip())
            self.stop.wait(random.uniform(0.05, 0.5))


class Listener(threading.Thread):
    """Collects NOTIFY finlive_reaped payloads."""

    def __init__(self, stop):
        super().__init__(daemon=True)
        self.stop = stop
        self.payloads = []
        self.bad = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(app='chaos-listener', wait=120, stop=self.stop)
                    if conn is None:
                        return
                    one(conn, 'LISTEN finlive_reaped')
                if select.select([conn], [], [], 0.5) != ([], [], []):
                    conn.poll()
                    while conn.notifies:
                        n = conn.notifies.pop(0)
                        try:
                            self.payloads.append(json.loads(n.payload))
                        except ValueError:
                            self.bad.append(n.payload)
            except (psycopg2.Error, ConnLost):
                conn = None
                time.sleep(0.1)


class Faults:
    WEIGHTS = {
        'terminate_owner': 26,
        'kill_client': 12,
        'naptime_change': 12,
        'enabled_flip': 11,
        'dry_run_flip': 11,
        'terminate_worker': 8,
        'kill_worker': 6,
        'crash_backend': 6,
    }
    CRASHES = ('kill_worker', 'crash_backend')

    def __init__(self, driver):
        self.d = driver
        self.counts = collections.Counter()
        self.missed = collections.Counter()
        self.conn = None
        self.restore = {}         # setting -> time to switch it back on/off
        self.todo = list(self.WEIGHTS)
        random.shuffle(self.todo)

    def su(self):
        if self.conn is None or self.conn.closed:
            self.conn = connect(app='chaos-faults', wait=120)
        return self.conn

    def sql(self, q, args=None):
        for _ in range(3):
            try:
                return one(self.su(), q, args)
            except CONN_ERRORS:
                self.conn = None
                time.sleep(0.2)
        raise RuntimeError('cannot reach the server for: ' + q)

    def set_conf(self, name, value):
        self.sql('ALTER SYSTEM SET %s = %%s' % name, (value,))
        self.sql('SELECT pg_reload_conf()')

    def checkpointer_start(self):
        return self.sql("SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'")

    def wait_restart(self, before):
        """After a SIGKILL: wait for the crash restart; note the new epoch."""
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.conn = None
                c = connect(app='chaos-faults', wait=5)
                if c is not None:
                    self.conn = c
                    started = one(c, "SELECT backend_start FROM pg_stat_activity"
                                     " WHERE backend_type = 'checkpointer'")
                    if started is not None and started != before and not one(c, 'SELECT pg_is_in_recovery()'):
                        self.d.epochs.append(started)
                        return True
            except CONN_ERRORS:
                pass
            time.sleep(0.2)
        return False

    def worker_pid(self):
        return self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'finlive reaper'")

    def inject(self, kind):
        if kind == 'terminate_owner':
            return self.sql('SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT pid FROM finlive_owners) o'
                            ' ORDER BY random() LIMIT 1') is True
        if kind == 'kill_client':
            return self.d.kill_client()
        if kind == 'naptime_change':
            self.set_conf('finlive.naptime', str(random.choice([20, 50, 100, 250, 500, 1000, 2000])))
            return True
        if kind in ('enabled_flip', 'dry_run_flip'):
            name = 'finlive.enabled' if kind == 'enabled_flip' else 'finlive.dry_run'
            if name in self.restore:
                return False
            self.set_conf(name, 'off' if name == 'finlive.enabled' else 'on')
            self.restore[name] = time.time() + random.uniform(1, 4)
            return True
        if kind == 'terminate_worker':
            pid = self.worker_pid()
            return pid is not None and self.sql('SELECT pg_terminate_backend(%s)', (pid,)) is True
        if kind in self.CRASHES:
            before = self.checkpointer_start()
            if kind == 'kill_worker':
                pid = self.worker_pid()
            else:
                pid = self.sql("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'chaos-fin-%'"
                               " ORDER BY random() LIMIT 1")
            if pid is None:
                return False
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
            self.conn = None
            return self.wait_restart(before)
        raise ValueError(kind)

    def tick(self):
        now = time.time()
        for name, at in list(self.restore.items()):
            if now >= at:
                self.set_conf(name, 'on' if name == 'finlive.enabled' else 'off')
                del self.restore[name]
        kind = self.todo.pop() if self.todo else random.choices(
            list(self.WEIGHTS), weights=list(self.WEIGHTS.values()))[0]
        if self.inject(kind):
            self.counts[kind] += 1
        else:
            self.missed[kind] += 1
            if kind not in self.counts:
                self.todo.insert(0, kind)     # make sure every kind happens

    def restore_all(self):
        for name in ('finlive.enabled', 'finlive.dry_run', 'finlive.naptime'):
            self.sql('ALTER SYSTEM RESET %s' % name)
        self.sql("ALTER SYSTEM SET finlive.naptime = %s", (str(NAPTIME),))
        self.sql('SELECT pg_reload_conf()')
        self.restore.clear()


def die_with_parent():
    """In a client process: SIGKILL when the driver dies, whatever kills it."""
    import ctypes
    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


class Driver:
    def __init__(self):
        self.procs = {}           # cid -> Popen
        self.next_cid = 0
        self.epochs = []          # server epoch starts (checkpointer start)
        self.stop_aux = threading.Event()
        self.nprocs = setting('procs')
        self.nthreads = setting('threads')

    def spawn(self):
        cid = 'p%d' % self.next_cid
        self.next_cid += 1
        self.procs[cid] = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'client', cid,
                                            str(self.nthreads)], preexec_fn=die_with_parent)

    def kill_client(self):
        live = [p for p in self.procs.values() if p.poll() is None]
        if not live:
            return False
        p = random.choice(live)
        p.send_signal(signal.SIGKILL)
        p.wait()
        return True

    def respawn(self):
        for cid, p in list(self.procs.items()):
            if p.poll() is not None:
                del self.procs[cid]
        while len(self.procs) < self.nprocs:
            self.spawn()

    def refill(self, conn, batch=200):
        """Keep queued jobs available for every finalizer thread."""
        low = self.nprocs * self.nthreads * 2
        for t in 'ab':
            queued = one(conn, "SELECT count(*) FROM chaos.jobs_%s WHERE status = 'queued'" % t)
            if queued < low:
                one(conn, "INSERT INTO chaos.jobs_%s (id, status) SELECT nextval('chaos.job_seq'), 'queued'"
                          " FROM generate_series(1, %d) RETURNING 1" % (t, batch))

    def progress(self, conn, faults):
        r = rows(conn, """SELECT (SELECT count(*) FROM (SELECT id FROM chaos.jobs_a WHERE epoch > 0
                                  UNION ALL SELECT id FROM chaos.jobs_b WHERE epoch > 0) x),
                                 (SELECT count(*) FROM (SELECT 1 FROM chaos.jobs_a WHERE status IN ('done','failed')
                                  UNION ALL SELECT 1 FROM chaos.jobs_b WHERE status IN ('done','failed')) y),
                                 (SELECT count(*) FROM finlive_reap_log),
                                 (SELECT finalizer_defers_total FROM finlive_stats),
                                 (SELECT errors_total FROM finlive_stats)""")[0]
        log('jobs run %d, finished %d, faults %d, reap log %d, defers %d, errors %d, server epochs %d'
            % (r[0], r[1], sum(faults.counts.values()), r[2], r[3], r[4], len(self.epochs)))
        return r[0]

    def run(self):
        log('mode %s: %s' % (MODE, ', '.join('%s=%s' % (k, setting(k)) for k in DEFAULTS)))
        setup_schema()
        conn = connect()
        self.epochs.append(one(conn, "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'"))
        self.refill(conn)
        faults = Faults(self)
        reaper2, listener = Reaper2(self.stop_aux), Listener(self.stop_aux)
        reaper2.start()
        listener.start()
        self.respawn()

        start = time.time()
        next_fault = start + 3
        next_report = start + 10
        duration, max_duration = setting('duration'), setting('max_duration')
        min_jobs, min_faults = setting('min_jobs'), setting('min_faults')
        interval = setting('fault_interval')
        jobs_run = 0
        while True:
            now = time.time()
            elapsed = now - start
            nfaults = sum(faults.counts.values())
            done = (elapsed >= duration and jobs_run >= min_jobs and nfaults >= min_faults
                    and all(faults.counts[k] > 0 for k in Faults.WEIGHTS))
            if done or elapsed >= max_duration:
                break
            if now >= next_fault:
                faults.tick()
                next_fault = time.time() + random.uniform(0.5, 1.5) * interval
            try:
                if conn.closed:
                    raise psycopg2.InterfaceError()
                self.refill(conn)
                if now >= next_report:
                    jobs_run = self.progress(conn, faults)
                    next_report = now + 10
            except CONN_ERRORS:
                conn = connect(wait=120)
            self.respawn()
            time.sleep(0.1)
        chaos_seconds = time.time() - start
        self.timed_out = not done

        log('stopping faults and clients; draining')
        faults.restore_all()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.stop_aux.set()
        reaper2.join(timeout=40)
        conn = connect()
        # everything the clients left running is reaped by the worker: a dead
        # owner's guarded job after finalize_grace, the rest by Tier-3
        deadline = time.time() + MAX_RUNNING + RESTART_GRACE + 30
        while time.time() < deadline:
            left = one(conn, "SELECT (SELECT count(*) FROM chaos.jobs_a WHERE status = 'running')"
                             " + (SELECT count(*) FROM chaos.jobs_b WHERE status = 'running')")
            if left == 0:
                break
            time.sleep(0.5)
        time.sleep(1.0)    # one more tick, so the worker's counters are added
        listener.join(timeout=5)
        ok = Checks(self, conn, faults, reaper2, listener, chaos_seconds).run()
        return 0 if ok else 1


# ---------------------------------------------------------------------------
# The invariants
# ---------------------------------------------------------------------------

class Checks:
    def __init__(self, driver, conn, faults, reaper2, listener, chaos_seconds):
        self.d, self.c, self.f = driver, conn, faults
        self.reaper2, self.listener = reaper2, listener
        self.chaos_seconds = chaos_seconds
        self.violations = collections.OrderedDict()
        self.samples = {}

    def q(self, sql, args=None):
        return one(self.c, sql, args)

    def violation(self, name, count, sample_sql=None):
        self.violations[name] = count
        if count and sample_sql:
            self.samples[name] = rows(self.c, sample_sql)[:5]

    def figure(self, name, value):
        print('  %-48s %s' % (name + ':', value))

    def run(self):
        c = self.c
        print()
        print('=== finlive chaos run (%s) ===' % MODE)
        jobs = "(SELECT 'a' AS target, * FROM chaos.jobs_a UNION ALL SELECT 'b', * FROM chaos.jobs_b)"
        self.figure('chaos seconds', '%.0f' % self.chaos_seconds)
        self.figure('client processes x finalizer threads', '%d x %d (%d processes spawned)'
                    % (self.d.nprocs, self.d.nthreads, self.d.next_cid))
        self.figure('jobs created', self.q('SELECT count(*) FROM %s j' % jobs))
        jobs_run = self.q('SELECT count(*) FROM %s j WHERE epoch > 0' % jobs)
        self.figure('jobs run (claimed at least once)', jobs_run)
        self.figure('runs (claims, all attempts)', self.q('SELECT sum(epoch) FROM %s j' % jobs))
        for st, n in rows(c, 'SELECT status, count(*) FROM %s j GROUP BY 1 ORDER BY 1' % jobs):
            self.figure('jobs %s at the end' % st, n)
        self.figure('finalized by their finalizer', self.q("SELECT count(*) FROM chaos.transitions"
                                                           " WHERE app LIKE 'chaos-fin-%'"))
        reaps = rows(c, "SELECT tier, count(*) FILTER (WHERE NOT dry_run), count(*) FILTER (WHERE dry_run)"
                        " FROM finlive_reap_log GROUP BY 1 ORDER BY 1")
        for tier, n, dry in reaps:
            self.figure('reaps tier %d (dry-run decisions)' % tier, '%d (%d)' % (n, dry))
        self.figure('reaps by the second reaper (finlive_reap_once)',
                    self.q("SELECT count(*) FROM chaos.transitions WHERE app = 'chaos-reaper2'"))
        stats = rows(c, 'SELECT * FROM finlive_stats')[0]
        self.figure('finalizer_defers_total (last server epoch)', stats[6])
        self.figure('errors_total (flaky gate/hook, last epoch)', stats[7])
        for kind, n in rows(c, "SELECT kind, count(*) FROM chaos.client_events"
                               " WHERE kind NOT LIKE 'VIOLATION%' GROUP BY 1 ORDER BY 1"):
            self.figure('client event ' + kind, n)
        self.figure('NOTIFY finlive_reaped received', len(self.listener.payloads))
        self.figure('tokens issued (first marks recorded)', self.q('SELECT count(*) FROM chaos.marks'))
        self.figure('server epochs (start + crash restarts)', len(self.d.epochs))
        print('  faults injected by kind:')
        for kind in Faults.WEIGHTS:
            print('    %-22s %5d%s' % (kind, self.f.counts[kind],
                                       '   (%d not possible at the time)' % self.f.missed[kind]
                                       if self.f.missed[kind] else ''))
        print('    %-22s %5d' % ('total', sum(self.f.counts.values())))

        self.check_all(jobs)

        print('  invariants (violations, all must be 0):')
        bad = 0
        for name, n in self.violations.items():
            print('    %-62s %d' % (name, n))
            if n:
                bad += 1
                for s in self.samples.get(name, []):
                    print('        e.g. %s' % (s,))
        if self.reaper2.errors:
            print('  second reaper SQL errors: %d, e.g. %s' % (len(self.reaper2.errors), self.reaper2.errors[:3]))
        if MODE == 'long':
            if jobs_run < 10000:
                print('  LONG MODE TOO SHORT: %d jobs run < 10000' % jobs_run)
                bad += 1
            if sum(self.f.counts.values()) < 500:
                print('  LONG MODE TOO SHORT: fewer than 500 faults')
                bad += 1
        if getattr(self.d, 'timed_out', False):
            print('  the run hit its time limit before its targets (jobs/faults)')
            bad += 1
        print('RESULT: %s' % ('PASS' if bad == 0 else 'FAIL'))
        return bad == 0

    def check_all(self, jobs):
        reaper_apps = "('finlive reaper', 'chaos-reaper2')"
        # 1. a job finalized twice in one attempt (finalizer + reaper, two reapers)
        self.violation('jobs finalized twice (same attempt)', self.q(
            'SELECT count(*) FROM (SELECT 1 FROM chaos.transitions GROUP BY target, job_id, epoch'
            ' HAVING count(*) > 1) x'),
            'SELECT target, job_id, epoch, array_agg(app || \':\' || old_status || \'->\' || new_status)'
            ' FROM chaos.transitions GROUP BY 1, 2, 3 HAVING count(*) > 1')
        self.violation('status overwritten after the attempt ended', self.q(
            "SELECT count(*) FROM chaos.transitions WHERE old_status <> 'running'"),
            "SELECT * FROM chaos.transitions WHERE old_status <> 'running'")
        # 2. on_reap exactly once per reap; reap, hook, log and transition agree
        log_rows = "(SELECT CASE target WHEN 'chaos.jobs_a'::regclass THEN 'a' ELSE 'b' END AS t, * FROM finlive_reap_log)"
        self.violation('reaps whose on_reap ran != 1 time', self.q(
            'SELECT count(*) FROM %s l WHERE NOT dry_run AND (SELECT count(*) FROM chaos.hook_calls h'
            ' WHERE h.target = l.t AND h.job_id = l.job_id AND h.at = l.at AND h.tier = l.tier'
            '   AND h.new_status = l.new_status) <> 1' % log_rows),
            'SELECT t, job_id, at, tier FROM %s l WHERE NOT dry_run AND NOT EXISTS (SELECT FROM chaos.hook_calls h'
            ' WHERE h.target = l.t AND h.job_id = l.job_id AND h.at = l.at)' % log_rows)
        self.violation('on_reap calls without a reap', self.q(
            'SELECT count(*) FROM chaos.hook_calls h WHERE NOT EXISTS (SELECT FROM %s l WHERE NOT dry_run'
            ' AND h.target = l.t AND h.job_id = l.job_id AND h.at = l.at AND h.tier = l.tier'
            ' AND h.new_status = l.new_status)' % log_rows))
        self.violation('reaper status changes without exactly one log row', self.q(
            'SELECT count(*) FROM chaos.transitions x WHERE app IN %s AND (SELECT count(*) FROM %s l'
            ' WHERE NOT dry_run AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at'
            ' AND l.new_status = x.new_status) <> 1' % (reaper_apps, log_rows)))
        self.violation('reap log rows without the status change', self.q(
            'SELECT count(*) FROM %s l WHERE NOT dry_run AND NOT EXISTS (SELECT FROM chaos.transitions x'
            ' WHERE x.app IN %s AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at)'
            % (log_rows, reaper_apps)),
            'SELECT l.t, l.job_id, l.at, l.tier, l.old_status, l.new_status, (SELECT array_agg(x.app || \' \' || x.at)'
            ' FROM chaos.transitions x WHERE x.target = l.t AND x.job_id = l.job_id) FROM %s l WHERE NOT dry_run'
            ' AND NOT EXISTS (SELECT FROM chaos.transitions x'
            ' WHERE x.app IN %s AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at)'
            % (log_rows, reaper_apps))
        self.violation('dry-run decisions that changed a job or called on_reap', self.q(
            'SELECT count(*) FROM %s l WHERE dry_run AND (EXISTS (SELECT FROM chaos.transitions x'
            ' WHERE l.t = x.target AND l.job_id = x.job_id AND l.at = x.at AND x.app IN %s)'
            ' OR EXISTS (SELECT FROM chaos.hook_calls h WHERE h.target = l.t AND h.job_id = l.job_id'
            ' AND h.at = l.at))' % (log_rows, reaper_apps)))
        self.violation('status changes by someone else than a finalizer or a reaper', self.q(
            "SELECT count(*) FROM chaos.transitions WHERE app NOT LIKE 'chaos-fin-%%' AND app NOT IN %s"
            % reaper_apps))
        # 3. jobs lost
        self.violation('jobs lost (neither terminal, queued nor running)', self.q(
            "SELECT count(*) FROM %s j WHERE status NOT IN ('done', 'failed', 'queued', 'running')" % jobs))
        self.violation('jobs still running after the drain', self.q(
            "SELECT count(*) FROM %s j WHERE status = 'running'" % jobs),
            "SELECT * FROM %s j WHERE status = 'running'" % jobs)
        self.violation('jobs with attempts > max_attempts', self.q(
            'SELECT count(*) FROM %s j WHERE attempts > max_attempts' % jobs))
        # 4. live finalizers in guarded stages pre-empted before Tier-3
        self.violation('live guarded finalizers pre-empted before Tier-3 (seen by clients)', self.q(
            "SELECT count(*) FROM chaos.client_events WHERE kind = 'VIOLATION_preempted'"),
            "SELECT target, job_id, epoch, detail FROM chaos.client_events WHERE kind = 'VIOLATION_preempted'")
        self.violation('ownership lost while the owner session lived', self.q(
            "SELECT count(*) FROM chaos.client_events WHERE kind = 'VIOLATION_ownership_lost'"),
            "SELECT target, job_id, epoch, detail FROM chaos.client_events WHERE kind = 'VIOLATION_ownership_lost'")
        self.violation('jobs lost by a live finalizer with no reap to explain it', self.q(
            "SELECT count(*) FROM chaos.client_events WHERE kind = 'VIOLATION_unexplained_loss'"))
        self.violation('client SQL errors', self.q(
            "SELECT count(*) FROM chaos.client_events WHERE kind = 'client_sql_error'"),
            "SELECT detail FROM chaos.client_events WHERE kind = 'client_sql_error'")
        # 5. each reap respected its tier's grace and rule
        self.violation('Tier-1 reaps before claim_grace, with an exit code, or while disabled', self.q(
            'SELECT count(*) FROM chaos.hook_calls WHERE tier = 1 AND'
            ' (age < claim_grace - %s OR exit_code IS NOT NULL OR NOT enabled)' % EPS))
        self.violation('Tier-2 reaps before finalize_grace', self.q(
            'SELECT count(*) FROM chaos.hook_calls WHERE tier = 2 AND'
            ' (finished_age IS NULL OR finished_age < finalize_grace - %s)' % EPS))
        self.violation('Tier-3 reaps before max_running', self.q(
            'SELECT count(*) FROM chaos.hook_calls WHERE tier = 3 AND age < max_running - %s' % EPS))
        self.violation('Tier-2 decisions against the gate / exit code', self.q(
            "SELECT count(*) FROM chaos.hook_calls WHERE tier = 2 AND"
            " ((new_status = 'done') <> (exit_code = 0))"))
        self.violation('requeue-or-fail against attempts/max_attempts', self.q(
            "SELECT count(*) FROM chaos.transitions WHERE app IN %s AND"
            " ((new_status = 'queued' AND NOT (old_attempts < max_attempts AND new_attempts = old_attempts + 1))"
            "  OR (new_status = 'failed' AND old_attempts < max_attempts))" % reaper_apps))
        epochs = ', '.join("'%s'::timestamptz" % e.isoformat() for e in self.d.epochs)
        self.violation('ownership-dependent reaps inside restart_grace', self.q(
            'SELECT count(*) FROM chaos.hook_calls h WHERE enabled AND (tier = 1 OR (tier = 2 AND guarded))'
            ' AND h.at < (SELECT max(e) FROM unnest(ARRAY[%s]) e WHERE e <= h.at) + interval \'%d s\''
            % (epochs, RESTART_GRACE)),
            'SELECT target, job_id, tier, at FROM chaos.hook_calls h WHERE enabled AND (tier = 1 OR (tier = 2 AND guarded))'
            ' AND h.at < (SELECT max(e) FROM unnest(ARRAY[%s]) e WHERE e <= h.at) + interval \'%d s\''
            % (epochs, RESTART_GRACE))
        # 6. counters agree with finlive_reap_log (the last server epoch:
        # counters live in shared memory, which a crash restart re-creates)
        last = self.d.epochs[-1].isoformat()
        stats = rows(self.c, 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3 FROM finlive_stats')[0]
        logc = rows(self.c, "SELECT count(*), count(*) FILTER (WHERE tier = 1), count(*) FILTER (WHERE tier = 2),"
                            " count(*) FILTER (WHERE tier = 3) FROM finlive_reap_log"
                            " WHERE NOT dry_run AND at >= %s", (last,))[0]
        self.figure('counters (total, t1, t2, t3) / log, last epoch', '%s / %s' % (tuple(stats), tuple(logc)))
        self.violation('counters disagreeing with finlive_reap_log (last epoch)',
                       sum(abs(a - b) for a, b in zip(stats, logc)))
        # 7. NOTIFY only for real reaps
        keys = collections.Counter()
        for p in self.listener.payloads:
            keys[(p.get('target', '').split('.')[-1][-1:], p.get('job_id'), p.get('tier'), p.get('status'))] += 1
        logk = collections.Counter()
        for t, job, tier, st, n in rows(self.c, 'SELECT t, job_id, tier, new_status, count(*) FROM %s l'
                                                ' WHERE NOT dry_run GROUP BY 1, 2, 3, 4' % log_rows):
            logk[(t, job, tier, st)] = n
        self.violation('NOTIFY payloads without a matching reap',
                       sum(max(0, n - logk[k]) for k, n in keys.items()) + len(self.listener.bad))
        # 8. fencing tokens
        self.violation('tokens handed out twice', self.q(
            'SELECT count(*) FROM (SELECT token FROM chaos.marks GROUP BY 1 HAVING count(*) > 1) x'))
        self.violation('tokens not increasing within one client thread', self.q(
            'SELECT count(*) FROM (SELECT token, lag(token) OVER (PARTITION BY client ORDER BY seq) AS prev'
            ' FROM chaos.marks) x WHERE token <= prev'))
        self.violation('tokens after a crash restart not above those before', self.q(
            'SELECT count(*) FROM unnest(ARRAY[%s]) e WHERE (SELECT max(token) FROM chaos.marks WHERE at < e)'
            ' >= (SELECT min(token) FROM chaos.marks WHERE at >= e)' % epochs))
        # 9. no crash but the injected ones
        injected = sum(self.f.counts[k] for k in Faults.CRASHES)
        with open(os.environ['CHAOS_SERVER_LOG'], errors='replace') as fh:
            text = fh.read()
        signalled = text.count('terminated by signal')
        self.figure('processes terminated by signal (server log)', '%d (injected crashes %d)' % (signalled, injected))
        self.violation('server crashes not injected (terminated by signal, PANIC, sanitizer)',
                       max(0, signalled - injected) + text.count('PANIC:')
                       + text.count('terminated by signal 11') + text.count('terminated by signal 6'))
        end_epoch = self.q("SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
        self.violation('server restarts nobody injected', 0 if end_epoch == self.d.epochs[-1] else 1)
        # 10. ownership leaks after every client is gone
        self.violation('owners left after every client ended', self.q(
            "SELECT count(*) FROM finlive_owners"))
        self.violation('finlive locks left after every client ended', self.q(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966"))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == 'client':
        client_main(sys.argv[2], int(sys.argv[3]))
    seed = int(os.environ.get('CHAOS_SEED', random.randrange(1 << 30)))
    random.seed(seed)
    print('chaos seed %d' % seed)
    driver = Driver()
    try:
        rc = driver.run()
    finally:
        for p in driver.procs.values():
            if p.poll() is None:
                p.kill()
    sys.exit(rc)


if __name__ == '__main__':
    main()
