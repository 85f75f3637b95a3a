#!/usr/bin/python3
"""finlive chaos run: a simulated orchestrator under injected faults, in two
databases with different reaper policies.

Driven by test/chaos/run.sh, which starts a throwaway cluster (PGHOST/PGPORT
set, superuser "postgres", trust, finlive.database left at its default '*',
track_commit_timestamp on) and runs:  chaos.py driver

The driver
  * creates an application role and, in each of two databases, reaper
    targets with their own policies (TARGETS below):
      chaos_alpha (schema chaos): every target on the server settings;
        hooks and triggers written with SET search_path and qualified names;
      chaos_beta (schema "Chaos B", a name that needs quoting): targets with
        a policy of their own -- short graces and guarded_stages '{*}',
        other graces and stages, and one with the kill-switch off
        (enabled => false); hooks and triggers written plainly (unqualified
        names, no SET), so they work only with the captured search_path;
    each database is reaped by its own reaper, started by the launcher.
    Target kinds: "fin" jobs are marked at finalization (stamp exit code and
    finlive_mark in one transaction) and have a gate; "claim" jobs are
    registered claim_owned (marked at claim, in the claim's transaction).
    A trigger records every transition of a job out of "running" (and any
    later overwrite) in transitions; the hooks record each call, with the
    effective policy the reaper had to use, in hook_calls; clients record
    every first mark's token in marks;
  * starts client processes (chaos.py client), half per database, each with
    several finalizer threads on their own connections: claim, run, stamp,
    finalize for a random while, and a final write fenced by finlive_fence;
  * runs, per database, a second reaper (finlive_reap_once in a loop, which
    also asks finlive_explain and finlive_reap_errors now and then) beside
    the reaper worker, and a LISTEN finlive_reaped listener that pings
    itself (NOTIFY chaos_ping) so that the stream of notifications it got
    can be compared exactly with the reap log (commit timestamps);
  * injects faults at random: pg_terminate_backend of owners, SIGKILL of
    client processes, SIGTERM and SIGKILL of a reaper and of the launcher,
    SIGKILL of a client backend (every SIGKILL makes the postmaster restart
    every process), reload flips of finlive.enabled and finlive.dry_run,
    finlive.naptime changes, a target re-registered in dry run for a while,
    and DROP DATABASE / CREATE DATABASE (fresh, or copied from a template
    database that has a reaper) of a throwaway database with the extension
    and a target, which no reaper may ever block;
  * then stops the faults and the clients, lets the reapers drain what they
    left, checks every invariant per database and prints the figures.  Exit
    status 1 when any invariant is violated.

Figures and invariants are printed as "name: value" lines.
"""
import collections
import datetime
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

FINALIZE_GRACE = 2      # s, server settings
CLAIM_GRACE = 2         # s
MAX_RUNNING = 12        # s
RESTART_GRACE = 3       # s
NAPTIME = 200           # ms, the value restored at the end
GUARDED = ['deploy-staging', 'merge']
STAGES = {1: 'deploy-staging', 2: 'merge', 3: 'build', 4: 'test'}
MAX_ATTEMPTS = 3
EPS = 0.002             # s, float rounding in the grace checks
FINLIVE_OBJSUBID = 7966

ALPHA, BETA = 'chaos_alpha', 'chaos_beta'
TMP_DB, SEED_DB = 'chaos_tmp', 'chaos_seed'
DBS = collections.OrderedDict([
    (ALPHA, dict(schema='chaos', plain=False)),
    (BETA, dict(schema='Chaos B', plain=True)),
])
# policy: NULL (absent) = the server setting; seconds for the intervals
TARGETS = [
    dict(db=ALPHA, t='a', kind='fin', policy={}),
    dict(db=ALPHA, t='b', kind='claim', policy={}),
    dict(db=BETA, t='a', kind='fin',
         policy=dict(finalize_grace=1, claim_grace=1, max_running=8, guarded=['*'])),
    dict(db=BETA, t='b', kind='claim',
         policy=dict(finalize_grace=3, claim_grace=1, max_running=15, guarded=['build', 'test'])),
    dict(db=BETA, t='c', kind='claim', policy=dict(enabled=False, max_running=10)),
]
SERVER_DEFAULTS = dict(finalize_grace=FINALIZE_GRACE, claim_grace=CLAIM_GRACE,
                       max_running=MAX_RUNNING, guarded=GUARDED, enabled=True)


def eff(target, name):
    v = target['policy'].get(name)
    return SERVER_DEFAULTS[name] if v is None else v


def stage_of(job_id):
    """A job's stage is fixed by its id (task_id = id % 4 + 1)."""
    return STAGES[job_id % 4 + 1]


def guards(target, stage):
    g = eff(target, 'guarded')
    return '*' in g or stage in g


def targets_of(db):
    return [x for x in TARGETS if x['db'] == db]


def qident(s):
    return s if s.islower() and s.replace('_', '').isalnum() and not s[0].isdigit() else \
        '"' + s.replace('"', '""') + '"'


def S(db):
    """The schema of a database's application tables, as SQL names it."""
    return qident(DBS[db]['schema'])


def tbl(db, kind, t):
    return '%s.%s_%s' % (S(db), kind, t)


MODE = os.environ.get('CHAOS_MODE', 'short')
if MODE == 'long':
    DEFAULTS = dict(duration=0, min_jobs=10000, min_faults=500, max_duration=3600,
                    procs=4, threads=8, fault_interval=1.1)
else:
    DEFAULTS = dict(duration=125, min_jobs=0, min_faults=45, max_duration=190,
                    procs=4, threads=6, fault_interval=1.5)


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


def connect(db='postgres', user='postgres', app='chaos-driver', wait=60.0, stop=None):
    """Connect, retrying while the server restarts; None on time-out/stop.
    Connections to an application database get its schema first on the
    search_path (beta's triggers are written with unqualified names)."""
    deadline = time.time() + wait
    while True:
        try:
            conn = psycopg2.connect(host=os.environ['PGHOST'], port=os.environ['PGPORT'],
                                    dbname=db, user=user, application_name=app,
                                    connect_timeout=5,
                                    options='-c statement_timeout=30000')
            conn.autocommit = True
            if db in DBS:
                with conn.cursor() as cur:
                    cur.execute('SET search_path = %s, public' % S(db))
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

GLOBAL_SQL = """
CREATE ROLE chaos_app LOGIN;
"""

SUPER_SQL = """
CREATE EXTENSION finlive;
CREATE SCHEMA {S} AUTHORIZATION chaos_app;
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), finlive_clear(bigint),
      finlive_clear_all(), finlive_reap_once(), finlive_unregister(regclass),
      finlive_register(regclass, regclass, regclass, regprocedure, regprocedure, boolean,
                       interval, interval, interval, text[], boolean, boolean)
   TO chaos_app;
"""

# {Q} is "schema." in alpha and empty in beta; {SETSP} is the SET clause in
# alpha and empty in beta: beta's functions resolve every name through the
# search_path -- the one captured at registration when the reaper runs them,
# the clients' ("Chaos B", public) when a client's update fires a trigger.
APP_SQL = """
CREATE TABLE {Q}tasks (id bigint PRIMARY KEY, stage text NOT NULL);
INSERT INTO {Q}tasks VALUES {TASKS};
CREATE SEQUENCE {Q}run_seq;
CREATE SEQUENCE {Q}job_seq;
-- The policy each target was registered with (NULL: the server setting),
-- which the hooks read to record what the reaper had to respect.
CREATE TABLE {Q}policy (key text PRIMARY KEY, rel regclass, claim_owned boolean,
    finalize_grace float8, claim_grace float8, max_running float8, guarded text[], enabled boolean);

CREATE TABLE {Q}transitions (
    target text, job_id bigint, epoch int, old_status text, new_status text,
    old_attempts int, new_attempts int, max_attempts int,
    app text, at timestamptz, noted timestamptz DEFAULT clock_timestamp());
CREATE TABLE {Q}hook_calls (
    target text, job_id bigint, epoch int, tier int, new_status text, at timestamptz,
    app text, enabled boolean, dry_run boolean, stage text, guarded boolean,
    age float8, finished_age float8, exit_code int,
    claim_grace float8, finalize_grace float8, max_running float8, owner_alive boolean,
    clock timestamptz);
CREATE TABLE {Q}marks (token bigint, target text, job_id bigint, epoch int,
    client text, seq bigint, kind text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE {Q}client_events (kind text, target text, job_id bigint, epoch int,
    client text, detail text, at timestamptz DEFAULT clock_timestamp());
-- for the checks' joins over a long run
CREATE INDEX ON {Q}transitions (target, job_id);
CREATE INDEX ON {Q}hook_calls (target, job_id);

-- Who is changing a job: a client's application_name, or the one the
-- worker reports in pg_stat_activity (it has no application_name setting).
CREATE FUNCTION {Q}who() RETURNS text LANGUAGE sql {SETSP} AS $$
    SELECT coalesce(nullif(current_setting('application_name'), ''),
                    (SELECT nullif(application_name, '') FROM pg_stat_activity
                      WHERE pid = pg_backend_pid()), 'unknown')
$$;

CREATE FUNCTION {Q}note_transition() RETURNS trigger LANGUAGE plpgsql {SETSP} AS $$
BEGIN
    INSERT INTO {Q}transitions (target, job_id, epoch, old_status, new_status,
                                old_attempts, new_attempts, max_attempts, app, at)
    VALUES (TG_ARGV[0], OLD.id, OLD.epoch, OLD.status, NEW.status,
            OLD.attempts, NEW.attempts, OLD.max_attempts, {Q}who(), now());
    RETURN NULL;
END $$;

-- The on_reap hooks: record the call with what the reaper saw and the
-- target's effective policy; fail now and then, so that a job's error is
-- rolled back alone.
CREATE FUNCTION {Q}note_reap(t text, job bigint, tier int, st text) RETURNS void
LANGUAGE plpgsql {SETSP} AS $$
DECLARE
    j record;
    p record;
    g text[];
BEGIN
    IF random() < 0.02 THEN
        RAISE EXCEPTION 'chaos: flaky on_reap for job % of %', job, t;
    END IF;
    SELECT * INTO p FROM {Q}policy WHERE key = t;
    EXECUTE format('SELECT j.epoch, j.started_at, r.finished_at, r.exit_code, tk.stage
                      FROM {Q}%I j LEFT JOIN {Q}%I r ON r.id = j.run_id
                      LEFT JOIN {Q}tasks tk ON tk.id = j.task_id
                     WHERE j.id = $1', 'jobs_' || t, 'runs_' || t)
       INTO j USING job;
    g := coalesce(p.guarded,
                  string_to_array(replace(current_setting('finlive.guarded_stages'), ' ', ''), ','));
    INSERT INTO {Q}hook_calls VALUES (
        t, job, j.epoch, tier, st, now(), {Q}who(),
        current_setting('finlive.enabled')::boolean AND coalesce(p.enabled, true),
        current_setting('finlive.dry_run')::boolean,
        j.stage,
        '*' = ANY (g) OR j.stage = ANY (g),
        extract(epoch FROM now() - j.started_at),
        extract(epoch FROM now() - j.finished_at),
        j.exit_code,
        coalesce(p.claim_grace, extract(epoch FROM current_setting('finlive.claim_grace')::interval)),
        coalesce(p.finalize_grace, extract(epoch FROM current_setting('finlive.finalize_grace')::interval)),
        coalesce(p.max_running, extract(epoch FROM current_setting('finlive.max_running')::interval)),
        public.finlive_is_active(job),
        clock_timestamp());
END $$;
"""

TARGET_SQL = """
CREATE TABLE {Q}runs_{t} (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE {Q}jobs_{t} (
    id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT {MAX},
    started_at timestamptz, epoch integer NOT NULL DEFAULT 0);
CREATE INDEX ON {Q}jobs_{t} (id) WHERE status = 'running';
CREATE INDEX ON {Q}jobs_{t} (id) WHERE status = 'queued';
CREATE TRIGGER transitions AFTER UPDATE OF status ON {Q}jobs_{t} FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('done', 'failed', 'queued'))
    EXECUTE FUNCTION {Q}note_transition('{t}');
CREATE FUNCTION {Q}on_reap_{t}(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql {SETSP} AS $$ SELECT {Q}note_reap('{t}', job, tier, status) $$;
CREATE FUNCTION {Q}gate_{t}(job bigint) RETURNS boolean LANGUAGE plpgsql {SETSP} AS $$
BEGIN
    IF random() < 0.03 THEN
        RAISE EXCEPTION 'chaos: flaky gate for job %', job;
    END IF;
    RETURN (SELECT r.exit_code = 0 FROM {Q}jobs_{t} j JOIN {Q}runs_{t} r ON r.id = j.run_id
             WHERE j.id = job);
END $$;
"""


def render(sql, db, **kw):
    q = '' if DBS[db]['plain'] else S(db) + '.'
    out = sql.replace('{Q}', q).replace('{S}', S(db))
    out = out.replace('{SETSP}', '' if DBS[db]['plain'] else 'SET search_path = pg_catalog')
    for k, v in kw.items():
        out = out.replace('{%s}' % k, str(v))
    return out


def interval(v):
    return None if v is None else '%s s' % v


def register(conn, target, dry_run=None):
    """(Re-)register a target as chaos_app, with only its schema on the
    search_path (captured for the hooks)."""
    p = target['policy']
    t = target['t']
    one(conn, 'SET search_path = %s' % S(target['db']))
    try:
        one(conn, """SELECT public.finlive_register(
                        jobs => %s, runs => %s, tasks => 'tasks',
                        on_reap => %s, gate => %s, claim_owned => %s,
                        finalize_grace => %s::interval, claim_grace => %s::interval,
                        max_running => %s::interval, guarded_stages => %s::text[],
                        enabled => %s, dry_run => %s)""",
            ('jobs_' + t, 'runs_' + t, 'on_reap_%s(bigint,integer,text)' % t,
             'gate_%s(bigint)' % t if has_gate(target) else None,
             target['kind'] == 'claim',
             interval(p.get('finalize_grace')), interval(p.get('claim_grace')),
             interval(p.get('max_running')), p.get('guarded'), p.get('enabled'), dry_run))
    finally:
        one(conn, 'SET search_path = %s, public' % S(target['db']))


def has_gate(target):
    return target['kind'] == 'fin' or target['t'] == 'c'


# The throwaway database: a dry-run target with one stale job, so that its
# reaper shows by logging a decision; dry run changes nothing and counts
# nothing, so the cluster-wide counters still add up over the two
# application databases alone.
TMP_SQL = """
CREATE SCHEMA tmp;
CREATE TABLE tmp.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE tmp.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 3, started_at timestamptz);
CREATE INDEX ON tmp.jobs (id) WHERE status = 'running';
SET search_path = tmp;
SELECT public.finlive_register('tmp.jobs', 'tmp.runs', guarded_stages => '{*}', dry_run => true);
RESET search_path;
"""


def setup_schema():
    """Set up, again from scratch if the server restarts meanwhile (an
    uninjected crash: the checks count it from the server log)."""
    for attempt in range(4):
        try:
            return setup_once()
        except CONN_ERRORS + (psycopg2.DatabaseError,) as e:
            if attempt == 3 or getattr(e, 'pgcode', None) is not None:
                raise
            log('setup: the server restarted (%s); again from scratch' % str(e).strip().splitlines()[0])
            time.sleep(1)
            su = connect(wait=120)
            for db in list(DBS) + [SEED_DB, TMP_DB]:
                one(su, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db)
            one(su, 'DROP ROLE IF EXISTS chaos_app')
            su.close()


def setup_once():
    su = connect()
    with su.cursor() as cur:
        cur.execute(GLOBAL_SQL)
        for k, v in SERVER_SETTINGS.items():
            cur.execute('ALTER SYSTEM SET %s = %%s' % k, (v,))
        cur.execute('SELECT pg_reload_conf()')
        for db in list(DBS) + [SEED_DB]:
            cur.execute('CREATE DATABASE %s' % db)
    for db in DBS:
        c = connect(db)
        with c.cursor() as cur:
            cur.execute(render(SUPER_SQL, db))
        c.close()
        app = connect(db, 'chaos_app', 'chaos-setup')
        with app.cursor() as cur:
            cur.execute('SET search_path = %s, public' % S(db))
            cur.execute(render(APP_SQL, db, TASKS=', '.join("(%d, '%s')" % kv for kv in STAGES.items())))
            for x in targets_of(db):
                cur.execute(render(TARGET_SQL, db, t=x['t'], MAX=MAX_ATTEMPTS))
                p = x['policy']
                cur.execute('INSERT INTO %s.policy VALUES (%%s, %%s::regclass, %%s, %%s, %%s, %%s, %%s, %%s)' % S(db),
                            (x['t'], tbl(db, 'jobs', x['t']), x['kind'] == 'claim', p.get('finalize_grace'),
                             p.get('claim_grace'), p.get('max_running'), p.get('guarded'), p.get('enabled')))
        for x in targets_of(db):
            register(app, x)
        # what finlive_targets says is in effect is the policy we mean
        for x in targets_of(db):
            r = rows(app, """SELECT extract(epoch FROM effective_finalize_grace),
                                    extract(epoch FROM effective_claim_grace),
                                    extract(epoch FROM effective_max_running),
                                    effective_guarded_stages, effective_enabled, effective_dry_run, search_path
                               FROM public.finlive_targets WHERE jobs = %s::regclass""",
                         (tbl(db, 'jobs', x['t']),))
            want = (eff(x, 'finalize_grace'), eff(x, 'claim_grace'), eff(x, 'max_running'),
                    eff(x, 'guarded'), eff(x, 'enabled'), False, '%s, pg_temp' % S(db))
            got = r[0] if r else None
            if got is None or [float(a) for a in got[:3]] != [float(a) for a in want[:3]] \
                    or tuple(got[3:]) != want[3:]:
                raise SystemExit('setup: finlive_targets shows %s for %s.%s, expected %s' % (got, db, x['t'], want))
        app.close()
    c = connect(SEED_DB)
    with c.cursor() as cur:
        cur.execute('CREATE EXTENSION finlive')
        cur.execute(TMP_SQL)
    c.close()
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

    def __init__(self, name, db, stop):
        super().__init__(name=name, daemon=True)
        self.cid = name
        self.db = db
        self.S = S(db)
        self.targets = targets_of(db)
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
        self.conn = connect(self.db, 'chaos_app', 'chaos-fin-' + self.cid, wait=120, stop=self.stop)
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
            self.q('INSERT INTO ' + self.S + '.client_events (kind, target, job_id, epoch, client, detail)'
                   ' VALUES (%s, %s, %s, %s, %s, %s)',
                   (kind, t, job and job['id'], job and job['epoch'], self.cid, detail), fetch=None)
        except (Lost, psycopg2.DatabaseError):
            pass

    def mark_row(self, t, job, token, kind):
        self.seq += 1
        self.q('INSERT INTO ' + self.S + '.marks (token, target, job_id, epoch, client, seq, kind)'
               ' VALUES (%s, %s, %s, %s, %s, %s, %s)',
               (token, t, job['id'], job['epoch'], self.cid, self.seq, kind), fetch=None)

    def jobs(self, t):
        return tbl(self.db, 'jobs', t)

    def runs(self, t):
        return tbl(self.db, 'runs', t)

    # -- one job's life ---------------------------------------------------

    def claim(self, target):
        t = target['t']
        self.q('BEGIN', fetch=None)
        r = self.q("""UPDATE {j} SET status = 'running', epoch = epoch + 1,
                          run_id = nextval('{s}.run_seq'), task_id = id % 4 + 1, started_at = now()
                       WHERE id = (SELECT id FROM {j} WHERE status = 'queued'
                                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                   RETURNING id, epoch, run_id, attempts, max_attempts""".format(j=self.jobs(t), s=self.S))
        if r is None:
            self.q('ROLLBACK', fetch=None)
            return None
        job = dict(id=r[0], epoch=r[1], run_id=r[2], attempts=r[3], max_attempts=r[4],
                   stage=stage_of(r[0]), token=None, owned=False)
        self.q('INSERT INTO %s (id) VALUES (%%s)' % self.runs(t), (job['run_id'],), fetch=None)
        if target['kind'] == 'claim':
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
        r = self.q('SELECT status, epoch FROM %s WHERE id = %%s FOR SHARE' % self.jobs(t), (job['id'],))
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

    def stamp(self, target, job, exit_code):
        """Stamp the exit code; for "fin" targets take ownership in the same transaction."""
        t = target['t']
        self.q('BEGIN', fetch=None)
        r = self.q('SELECT status, epoch FROM %s WHERE id = %%s FOR UPDATE' % self.jobs(t), (job['id'],))
        if r != ('running', job['epoch']):
            self.q('ROLLBACK', fetch=None)
            self.event('gone_before_stamp', t, job, str(r))
            return False
        self.q('UPDATE %s SET exit_code = %%s, finished_at = coalesce(finished_at, now())'
               ' WHERE id = %%s' % self.runs(t), (exit_code, job['run_id']), fetch=None)
        if target['kind'] == 'fin' and not job['owned']:
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
        n = self.q("""UPDATE %s SET status = %%s, attempts = attempts + %%s
                       WHERE id = %%s AND status = 'running' AND epoch = %%s
                         AND finlive_fence(id, %%s)""" % self.jobs(t),
                   (new, inc, job['id'], job['epoch'], job['token']), fetch='count')
        if n == 1:
            self.q('SELECT finlive_clear(%s)', (job['id'],))
            return True
        # Lost the job.  Was this a pre-emption of a live owner?
        still_owner = self.q('SELECT finlive_fence(%s, %s)', (job['id'], job['token']))[0]
        reaps = self.q("""SELECT coalesce(json_agg(json_build_object('tier', tier, 'enabled', enabled,
                                  'guarded', guarded, 'status', new_status, 'app', app)), '[]')
                            FROM """ + self.S + """.hook_calls WHERE target = %s AND job_id = %s AND epoch = %s""",
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

    def life(self, target):
        t = target['t']
        job = self.with_recovery(t, None, lambda: self.claim(target))
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
                ok = self.with_recovery(t, job, lambda: self.stamp(target, job, exit_code))
                if ok is not None:
                    break
                jitter_sleep(self.stop, 0.3)      # ownership busy: try again
            if not ok:
                if ok is None:
                    self.event('stamp_mark_busy', t, job)
                return
            # finalizing: mostly short, sometimes past the target's grace,
            # rarely past its Tier-3 ceiling
            fg, mr = eff(target, 'finalize_grace'), eff(target, 'max_running')
            x = rng.random()
            if x < 0.80:
                d = rng.uniform(0, 0.3)
            elif x < 0.98:
                d = rng.uniform(fg + 0.5, fg + 3)
            else:
                d = rng.uniform(mr + 1, mr + 3)
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
                    self.life(self.rng.choice(self.targets))
                except psycopg2.DatabaseError as e:
                    # an unexpected SQL error: record it, go on
                    self.event('client_sql_error', detail=str(e)[:500])
                    jitter_sleep(self.stop, 0.2)
        except (Stop, Abandon):
            pass


class Abandon(Exception):
    pass


def client_main(cid, db, nthreads):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    threads = [Finalizer('%s.%d' % (cid, i), db, stop) for i in range(nthreads)]
    for th in threads:
        th.start()
    while not stop.is_set():
        stop.wait(0.5)
    for th in threads:
        th.join(timeout=5)
    os._exit(0)


# ---------------------------------------------------------------------------
# The driver: second reapers, listeners, faults
# ---------------------------------------------------------------------------

EXPLAIN_ACTIONS = {'none', 'deferred', 'done', 'queued', 'failed', 'skipped'}
EXPLAIN_KEYS = {'status', 'tier', 'action', 'reason', 'eligible_at', 'owner', 'policy'}


class Reaper2(threading.Thread):
    """A second reaper beside a database's worker: finlive_reap_once in a
    loop; now and then finlive_explain of a running job and a look at
    finlive_reap_errors."""

    def __init__(self, db, stop):
        super().__init__(daemon=True)
        self.db = db
        self.stop = stop
        self.calls = 0
        self.actions = 0
        self.errors = []
        self.deferred = []        # (target oid, job_id, tier, server finlive.enabled)
        self.explains = collections.Counter()
        self.explain_bad = []
        self.reap_errors_max = 0
        self.rels = {}            # target oid -> target

    def explain(self, conn):
        x = random.choice(targets_of(self.db))
        rel = tbl(self.db, 'jobs', x['t'])
        r = rows(conn, "SELECT j.id, finlive_explain(%s::regclass, j.id), current_setting('finlive.enabled')"
                       " FROM (SELECT id FROM " + rel + " WHERE status = 'running' ORDER BY random() LIMIT 1) j",
                 (rel,))
        if not r:
            return
        job, e, enabled = r[0]
        self.explains[e.get('action')] += 1
        why = None
        if set(e) != EXPLAIN_KEYS:
            why = 'keys %s' % sorted(e)
        elif e['action'] not in EXPLAIN_ACTIONS:
            why = 'action %r' % e['action']
        elif e['action'] == 'deferred' and (e['owner'] is None or not eff(x, 'enabled') or enabled != 'on'):
            why = 'deferred without an owner or with the kill-switch off'
        elif e['policy'].get('enabled') != (eff(x, 'enabled') and enabled == 'on'):
            why = 'policy.enabled %r' % e['policy'].get('enabled')
        elif sorted(e['policy'].get('guarded_stages') or []) != sorted(eff(x, 'guarded')):
            why = 'policy.guarded_stages %r' % e['policy'].get('guarded_stages')
        if why:
            self.explain_bad.append('%s job %s: %s: %s' % (rel, job, why, json.dumps(e)[:400]))

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(self.db, 'chaos_app', 'chaos-reaper2', wait=120, stop=self.stop)
                    if conn is None:
                        return
                    for oid, t in rows(conn, 'SELECT rel::oid, key FROM %s.policy' % S(self.db)):
                        self.rels[oid] = t
                out = rows(conn, "SELECT r.target::oid, r.job_id, r.tier, r.action,"
                                 " current_setting('finlive.enabled') FROM finlive_reap_once() r")
                self.calls += 1
                for oid, job, tier, action, enabled in out:
                    if action == 'deferred':
                        self.deferred.append((oid, job, tier, enabled))
                    else:
                        self.actions += 1
                if random.random() < 0.3:
                    self.explain(conn)
                if random.random() < 0.1:
                    self.reap_errors_max = max(self.reap_errors_max,
                                               one(conn, 'SELECT count(*) FROM finlive_reap_errors'))
            except CONN_ERRORS:
                conn = None
            except psycopg2.Error as e:
                self.errors.append('%s %s' % (e.pgcode, str(e).strip()))
            self.stop.wait(random.uniform(0.05, 0.5))


class Listener(threading.Thread):
    """LISTEN finlive_reaped in one database, and ping itself every 0.3 s
    (NOTIFY chaos_ping from its own session).  Notifications reach a
    listener in commit order, so the finlive_reaped payloads received
    between two of its pings are exactly those of the reaps that committed
    between the two pings' commits: with the commit timestamps of the
    pings and of the reap log rows, the check is exact, in both
    directions, and does not depend on timing.  Each connection is a
    generation (a crash restart ends one)."""

    PING_EVERY = 0.3

    def __init__(self, db, stop):
        super().__init__(daemon=True)
        self.db = db
        self.stop = stop
        self.events = []          # (gen, 'reap'|'ping'|'bad', payload) in receive order
        self.pings = {}           # (gen, n) -> xid (64-bit)
        self.gen = 0
        self.final = threading.Event()
        self.final_ping = None

    def drain(self, conn):
        while conn.notifies:
            n = conn.notifies.pop(0)
            if n.channel == 'chaos_ping':
                g, k = n.payload.split(':')
                self.events.append((int(g), 'ping', (int(g), int(k))))
                if (int(g), int(k)) == self.final_ping:
                    self.final.set()
                continue
            try:
                p = json.loads(n.payload)
                if not isinstance(p, dict):
                    raise ValueError(p)
                self.events.append((self.gen, 'reap', p))
            except ValueError:
                self.events.append((self.gen, 'bad', n.payload))

    def ping(self, conn, n):
        xid = one(conn, "SELECT pg_notify('chaos_ping', %s), txid_current()", ('%d:%d' % (self.gen, n),))[1]
        self.pings[(self.gen, n)] = xid
        self.drain(conn)

    def run(self):
        conn = None
        n = 0
        next_ping = 0
        deadline = None
        while not self.final.is_set():
            if self.stop.is_set():
                if deadline is None:
                    deadline = time.time() + 30
                elif time.time() > deadline:
                    return
            try:
                if conn is None or conn.closed:
                    conn = connect(self.db, app='chaos-listener', wait=120)
                    if conn is None:
                        return
                    self.gen += 1
                    n = 0
                    one(conn, 'LISTEN finlive_reaped')
                    one(conn, 'LISTEN chaos_ping')
                    next_ping = 0
                if self.stop.is_set() and self.final_ping is None:
                    self.final_ping = (self.gen, n)
                    self.ping(conn, n)
                    n += 1
                elif time.time() >= next_ping and not self.stop.is_set():
                    self.ping(conn, n)
                    n += 1
                    next_ping = time.time() + self.PING_EVERY
                if select.select([conn], [], [], 0.1) != ([], [], []):
                    conn.poll()
                    self.drain(conn)
            except (psycopg2.Error, ConnLost):
                conn = None
                self.final_ping = None
                time.sleep(0.1)


class Faults:
    WEIGHTS = {
        'terminate_owner': 24,
        'kill_client': 10,
        'naptime_change': 8,
        'enabled_flip': 8,
        'dry_run_flip': 6,
        'target_dry_run_flip': 8,
        'tmpdb_cycle': 10,
        'terminate_reaper': 6,
        'kill_reaper': 4,
        'terminate_launcher': 4,
        'kill_launcher': 3,
        'crash_backend': 3,
    }
    CRASHES = ('kill_reaper', 'kill_launcher', 'crash_backend')

    def __init__(self, driver):
        self.d = driver
        self.counts = collections.Counter()
        self.missed = collections.Counter()
        self.conn = None
        self.restore = {}         # setting or ('target', db, t) -> time to switch it back
        self.todo = list(self.WEIGHTS)
        random.shuffle(self.todo)
        # the throwaway database
        self.tmp = None           # dict(kind, job, created) while it exists
        self.tmp_job = 0
        self.tmp_cycles = collections.Counter()
        self.tmp_failures = []    # DDL that failed (a reaper in the way)
        self.tmp_drop_seconds = []
        self.tmp_create_seconds = []
        self.tmp_reaped_before_drop = 0
        self.tmp_reaper_seen = 0

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

    def reaper_pid(self):
        return self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'finlive reaper'"
                        " AND datname IN (%s, %s, %s, %s) ORDER BY random() LIMIT 1",
                        (ALPHA, BETA, TMP_DB, SEED_DB))

    def launcher_pid(self):
        return self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'finlive launcher'")

    def app_conn(self, db):
        return connect(db, 'chaos_app', 'chaos-faults', wait=60)

    def target_dry_run(self, key, on):
        db, t = key[1], key[2]
        x = [y for y in TARGETS if y['db'] == db and y['t'] == t][0]
        c = self.app_conn(db)
        if c is None:
            raise RuntimeError('cannot reach %s' % db)
        try:
            for attempt in range(5):
                try:
                    register(c, x, dry_run=True if on else None)
                    return
                except CONN_ERRORS:
                    c = self.app_conn(db)
                    if c is None:
                        break
        finally:
            if c is not None:
                c.close()
        raise RuntimeError('cannot register %s.%s' % (db, t))

    # -- the throwaway database --------------------------------------------

    def tmp_create(self):
        kind = random.choice(['fresh', 'copy'])
        t0 = time.time()
        try:
            if kind == 'fresh':
                self.sql('CREATE DATABASE %s' % TMP_DB)
            else:
                # the template has a reaper of its own: it must be moved out
                # of the way, never make the copy fail
                self.sql('CREATE DATABASE %s TEMPLATE %s' % (TMP_DB, SEED_DB))
        except psycopg2.Error as e:
            self.tmp_failures.append('CREATE DATABASE (%s): %s %s' % (kind, e.pgcode, str(e).strip()))
            return False
        self.tmp_create_seconds.append(time.time() - t0)
        c = connect(TMP_DB, wait=30)
        try:
            if kind == 'fresh':
                one(c, 'CREATE EXTENSION finlive')
                one(c, TMP_SQL)
            self.tmp_job += 1
            created = one(c, 'SELECT now()')
            one(c, "INSERT INTO tmp.jobs VALUES (%s, 'running', NULL, NULL, 0, 3, '-infinity')", (self.tmp_job,))
        finally:
            c.close()
        self.tmp = dict(kind=kind, job=self.tmp_job, created=created)
        self.tmp_cycles['create_' + kind] += 1
        return True

    def tmp_reaped(self):
        """Did the throwaway database's reaper decide on its stale job?"""
        c = connect(TMP_DB, wait=30)
        try:
            return one(c, 'SELECT count(*) FROM finlive_reap_log WHERE job_id = %s AND dry_run',
                       (self.tmp['job'],)) > 0
        finally:
            c.close()

    def tmp_drop(self):
        if self.tmp_reaped():
            self.tmp_reaped_before_drop += 1
        if self.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'finlive reaper'"
                    " AND datname = %s", (TMP_DB,)):
            self.tmp_reaper_seen += 1
        t0 = time.time()
        for attempt in range(3):
            try:
                self.sql('DROP DATABASE %s' % TMP_DB)
                break
            except psycopg2.Error as e:
                who = self.sql("SELECT string_agg(backend_type || ' ' || pid, ', ') FROM pg_stat_activity"
                               " WHERE datname = %s", (TMP_DB,))
                if who and 'finlive' not in who and attempt < 2:
                    time.sleep(1)       # our own connection's backend has not left yet
                    continue
                self.tmp_failures.append('DROP DATABASE: %s %s (in the database: %s)'
                                         % (e.pgcode, str(e).strip(), who))
                return False
        self.tmp_drop_seconds.append(time.time() - t0)
        self.tmp = None
        self.tmp_cycles['drop'] += 1
        return True

    def tmpdb_cycle(self):
        return self.tmp_drop() if self.tmp is not None else self.tmp_create()

    # -- injecting -------------------------------------------------------------

    def inject(self, kind):
        if kind == 'terminate_owner':
            return self.sql('SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT pid FROM pg_locks'
                            " WHERE locktype = 'advisory' AND objsubid = %s AND granted) o"
                            ' ORDER BY random() LIMIT 1', (FINLIVE_OBJSUBID,)) is True
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
        if kind == 'target_dry_run_flip':
            x = random.choice(TARGETS)
            key = ('target', x['db'], x['t'])
            if key in self.restore:
                return False
            self.target_dry_run(key, True)
            self.restore[key] = time.time() + random.uniform(1, 4)
            return True
        if kind == 'tmpdb_cycle':
            return self.tmpdb_cycle()
        if kind in ('terminate_reaper', 'terminate_launcher'):
            pid = self.reaper_pid() if kind == 'terminate_reaper' else self.launcher_pid()
            return pid is not None and self.sql('SELECT pg_terminate_backend(%s)', (pid,)) is True
        if kind in self.CRASHES:
            before = self.checkpointer_start()
            if kind == 'kill_reaper':
                pid = self.reaper_pid()
            elif kind == 'kill_launcher':
                pid = self.launcher_pid()
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

    def restore_due(self, force=False):
        now = time.time()
        for key, at in list(self.restore.items()):
            if force or now >= at:
                if isinstance(key, tuple):
                    self.target_dry_run(key, False)
                else:
                    self.set_conf(key, 'on' if key == 'finlive.enabled' else 'off')
                del self.restore[key]

    def tick(self):
        self.restore_due()
        kind = self.todo.pop() if self.todo else random.choices(
            list(self.WEIGHTS), weights=list(self.WEIGHTS.values()))[0]
        if self.inject(kind):
            self.counts[kind] += 1
        else:
            self.missed[kind] += 1
            if kind not in self.counts:
                self.todo.insert(0, kind)     # make sure every kind happens

    def restore_all(self):
        self.restore_due(force=True)
        for name in ('finlive.enabled', 'finlive.dry_run', 'finlive.naptime'):
            self.sql('ALTER SYSTEM RESET %s' % name)
        self.sql("ALTER SYSTEM SET finlive.naptime = %s", (str(NAPTIME),))
        self.sql('SELECT pg_reload_conf()')


def die_with_parent():
    """In a client process: SIGKILL when the driver dies, whatever kills it."""
    import ctypes
    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


class Driver:
    def __init__(self):
        self.procs = {}           # cid -> (Popen, db)
        self.next_cid = 0
        self.epochs = []          # server epoch starts (checkpointer start)
        self.stop_aux = threading.Event()
        self.nprocs = setting('procs')
        self.nthreads = setting('threads')

    def spawn(self, db):
        cid = 'p%d' % self.next_cid
        self.next_cid += 1
        self.procs[cid] = (subprocess.Popen([sys.executable, os.path.abspath(__file__), 'client', cid, db,
                                             str(self.nthreads)], preexec_fn=die_with_parent), db)

    def kill_client(self):
        live = [p for p, db in self.procs.values() if p.poll() is None]
        if not live:
            return False
        p = random.choice(live)
        p.send_signal(signal.SIGKILL)
        p.wait()
        return True

    def respawn(self):
        for cid, (p, db) in list(self.procs.items()):
            if p.poll() is not None:
                del self.procs[cid]
        while len(self.procs) < self.nprocs:
            per = collections.Counter(db for p, db in self.procs.values())
            self.spawn(min(DBS, key=lambda d: per[d]))

    def refill(self, conns, batch=200):
        """Keep queued jobs available for every finalizer thread."""
        low = self.nprocs * self.nthreads
        for x in TARGETS:
            c = conns[x['db']]
            j = tbl(x['db'], 'jobs', x['t'])
            queued = one(c, "SELECT count(*) FROM %s WHERE status = 'queued'" % j)
            if queued < low:
                one(c, "INSERT INTO %s (id, status) SELECT nextval('%s.job_seq'), 'queued'"
                       " FROM generate_series(1, %d) RETURNING 1" % (j, S(x['db']), batch))

    def progress(self, conns, faults):
        run = fin = logn = 0
        for db, c in conns.items():
            for x in targets_of(db):
                j = tbl(db, 'jobs', x['t'])
                a, b = rows(c, "SELECT count(*) FILTER (WHERE epoch > 0),"
                               " count(*) FILTER (WHERE status IN ('done', 'failed')) FROM " + j)[0]
                run += a
                fin += b
            logn += one(c, 'SELECT count(*) FROM finlive_reap_log')
        st = rows(conns[ALPHA], 'SELECT finalizer_defers_total, errors_total FROM finlive_stats')[0]
        log('jobs run %d, finished %d, faults %d, reap log %d, defers %d, errors %d, server epochs %d'
            % (run, fin, sum(faults.counts.values()), logn, st[0], st[1], len(self.epochs)))
        return run

    def connect_all(self):
        return {db: connect(db, wait=120) for db in DBS}

    def running_left(self, conns):
        return sum(one(conns[x['db']], "SELECT count(*) FROM %s WHERE status = 'running'"
                       % tbl(x['db'], 'jobs', x['t'])) for x in TARGETS)

    def run(self):
        log('mode %s: %s' % (MODE, ', '.join('%s=%s' % (k, setting(k)) for k in DEFAULTS)))
        setup_schema()
        conns = self.connect_all()
        self.epochs.append(one(conns[ALPHA], "SELECT backend_start FROM pg_stat_activity"
                                             " WHERE backend_type = 'checkpointer'"))
        self.refill(conns)
        faults = Faults(self)
        reapers2 = {db: Reaper2(db, self.stop_aux) for db in DBS}
        listeners = {db: Listener(db, self.stop_aux) for db in DBS}
        for th in list(reapers2.values()) + list(listeners.values()):
            th.start()
        self.respawn()

        start = time.time()
        next_fault = start + 3
        next_report = start + 10
        duration, max_duration = setting('duration'), setting('max_duration')
        min_jobs, min_faults = setting('min_jobs'), setting('min_faults')
        interval_ = setting('fault_interval')
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
                next_fault = time.time() + random.uniform(0.5, 1.5) * interval_
            try:
                if any(c.closed for c in conns.values()):
                    raise psycopg2.InterfaceError()
                self.refill(conns)
                if now >= next_report:
                    jobs_run = self.progress(conns, faults)
                    next_report = now + 10
            except CONN_ERRORS:
                conns = self.connect_all()
            self.respawn()
            time.sleep(0.1)
        chaos_seconds = time.time() - start
        self.timed_out = not done

        log('stopping faults and clients; draining')
        faults.restore_all()
        for p, db in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, db in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # the throwaway database exists at the end, with a new stale job that
        # its reaper must decide on
        if faults.tmp is not None:
            faults.tmp_drop()
        faults.tmp_create()
        conns = self.connect_all()
        # everything the clients left running is reaped by the reapers: a
        # dead owner's guarded job after its finalize_grace, the rest by Tier-3
        longest = max(eff(x, 'max_running') for x in TARGETS)
        deadline = time.time() + longest + RESTART_GRACE + 30
        while time.time() < deadline:
            if self.running_left(conns) == 0:
                break
            time.sleep(0.5)
        self.stop_aux.set()
        for th in reapers2.values():
            th.join(timeout=40)
        time.sleep(1.0)    # one more tick, so the workers' counters are added
        for th in listeners.values():
            th.join(timeout=40)
        ok = Checks(self, conns, faults, reapers2, listeners, chaos_seconds).run()
        return 0 if ok else 1


# ---------------------------------------------------------------------------
# The invariants
# ---------------------------------------------------------------------------

class Checks:
    REAPER_APPS = "('finlive reaper', 'chaos-reaper2')"

    def __init__(self, driver, conns, faults, reapers2, listeners, chaos_seconds):
        self.d, self.conns, self.f = driver, conns, faults
        self.reapers2, self.listeners = reapers2, listeners
        self.chaos_seconds = chaos_seconds
        self.violations = collections.OrderedDict()
        self.samples = collections.defaultdict(list)
        self.c = conns[ALPHA]
        # The server epochs: the first start, then every crash restart the
        # server log shows (injected or not), each dated when the postmaster
        # began to reinitialize -- before the new epoch's first transaction,
        # so every check that counts from an epoch stays sound.
        with open(os.environ['CHAOS_SERVER_LOG'], errors='replace') as fh:
            self.server_log = fh.read()
        self.reinits = []
        for line in self.server_log.splitlines():
            if 'all server processes terminated; reinitializing' in line:
                self.reinits.append(datetime.datetime.strptime(line[:23], '%Y-%m-%d %H:%M:%S.%f')
                                    .replace(tzinfo=datetime.timezone.utc))
        self.epochs = sorted([driver.epochs[0]] + self.reinits)

    def q(self, sql, args=None, db=ALPHA):
        return one(self.conns[db], sql, args)

    def violation(self, name, count, sample_sql=None, db=None, samples=None):
        """Add count to the violation name (summed over databases)."""
        self.violations[name] = self.violations.get(name, 0) + count
        if count and sample_sql and db:
            self.samples[name] += ['%s: %s' % (db, r) for r in rows(self.conns[db], sample_sql)[:5]]
        if count and samples:
            self.samples[name] += samples[:5]

    def figure(self, name, value):
        print('  %-56s %s' % (name + ':', value))

    def render(self, sql, db):
        return sql.replace('{S}', S(db)).replace('{LOG}', '(SELECT p.key AS t, l.* FROM public.finlive_reap_log l'
                                                        ' JOIN %s.policy p ON p.rel = l.target)' % S(db))

    def jobs_union(self, db):
        return '(%s)' % ' UNION ALL '.join("SELECT '%s' AS target, * FROM %s" % (x['t'], tbl(db, 'jobs', x['t']))
                                           for x in targets_of(db))

    def run(self):
        print()
        print('=== finlive chaos run (%s): two databases, their own reapers and policies ===' % MODE)
        self.figure('chaos seconds', '%.0f' % self.chaos_seconds)
        self.figure('client processes x finalizer threads', '%d x %d (%d processes spawned)'
                    % (self.d.nprocs, self.d.nthreads, self.d.next_cid))
        jobs_run_total = 0
        for db in DBS:
            c = self.conns[db]
            jobs = self.jobs_union(db)
            print('  database %s (schema %s):' % (db, S(db)))
            for x in targets_of(db):
                pol = ', '.join('%s=%s' % kv for kv in sorted(x['policy'].items())) or 'server settings'
                print('    target %s.jobs_%s (%s): %s' % (S(db), x['t'], x['kind'], pol))
            self.figure('  jobs created', one(c, 'SELECT count(*) FROM %s j' % jobs))
            jobs_run = one(c, 'SELECT count(*) FROM %s j WHERE epoch > 0' % jobs)
            jobs_run_total += jobs_run
            self.figure('  jobs run (claimed at least once)', jobs_run)
            self.figure('  runs (claims, all attempts)', one(c, 'SELECT sum(epoch) FROM %s j' % jobs))
            for st, n in rows(c, 'SELECT status, count(*) FROM %s j GROUP BY 1 ORDER BY 1' % jobs):
                self.figure('  jobs %s at the end' % st, n)
            self.figure('  finalized by their finalizer', one(c, "SELECT count(*) FROM %s.transitions"
                                                                 " WHERE app LIKE 'chaos-fin-%%'" % S(db)))
            for t, tier, n, dry in rows(c, self.render(
                    'SELECT t, tier, count(*) FILTER (WHERE NOT dry_run), count(*) FILTER (WHERE dry_run)'
                    ' FROM {LOG} l GROUP BY 1, 2 ORDER BY 1, 2', db)):
                self.figure('  reaps of jobs_%s tier %d (dry-run decisions)' % (t, tier), '%d (%d)' % (n, dry))
            self.figure('  reaps by the second reaper (finlive_reap_once)',
                        one(c, "SELECT count(*) FROM %s.transitions WHERE app = 'chaos-reaper2'" % S(db)))
            r2 = self.reapers2[db]
            self.figure('  second reaper: calls, defers seen', '%d, %d' % (r2.calls, len(r2.deferred)))
            self.figure('  finlive_explain answers by action', dict(r2.explains) or '{}')
            self.figure('  finlive_reap_errors rows (most seen at once)', r2.reap_errors_max)
            for kind, n in rows(c, "SELECT kind, count(*) FROM %s.client_events"
                                   " WHERE kind NOT LIKE 'VIOLATION%%' GROUP BY 1 ORDER BY 1" % S(db)):
                self.figure('  client event ' + kind, n)
            lst = self.listeners[db]
            self.figure('  NOTIFY finlive_reaped received (listener connections)',
                        '%d (%d)' % (sum(1 for e in lst.events if e[1] == 'reap'), lst.gen))
        self.jobs_run = jobs_run_total
        stats = rows(self.c, 'SELECT * FROM finlive_stats')[0]
        self.figure('finalizer_defers_total (last server epoch)', stats[6])
        self.figure('errors_total (flaky gate/hook, last epoch)', stats[7])
        self.figure('tokens issued (first marks recorded)',
                    sum(self.q('SELECT count(*) FROM %s.marks' % S(db), db=db) for db in DBS))
        self.figure('server epochs (start + crash restarts, server log)', len(self.epochs))
        f = self.f
        self.figure('throwaway database: created fresh / copied / dropped',
                    '%d / %d / %d' % (f.tmp_cycles['create_fresh'], f.tmp_cycles['create_copy'], f.tmp_cycles['drop']))
        self.figure('throwaway database: reaper seen / decided before the drop',
                    '%d / %d of %d' % (f.tmp_reaper_seen, f.tmp_reaped_before_drop, f.tmp_cycles['drop']))
        if f.tmp_drop_seconds:
            self.figure('DROP DATABASE seconds (max, mean)', '%.2f, %.2f' % (
                max(f.tmp_drop_seconds), sum(f.tmp_drop_seconds) / len(f.tmp_drop_seconds)))
        if f.tmp_create_seconds:
            self.figure('CREATE DATABASE seconds (max)', '%.2f' % max(f.tmp_create_seconds))
        print('  faults injected by kind:')
        for kind in Faults.WEIGHTS:
            print('    %-22s %5d%s' % (kind, f.counts[kind],
                                       '   (%d not possible at the time)' % f.missed[kind]
                                       if f.missed[kind] else ''))
        print('    %-22s %5d' % ('total', sum(f.counts.values())))

        for db in DBS:
            self.check_db(db)
        self.check_cluster()

        print('  invariants (violations, all must be 0; summed over both databases):')
        bad = 0
        for name, n in self.violations.items():
            print('    %-70s %d' % (name, n))
            if n:
                bad += 1
                for s in self.samples.get(name, [])[:6]:
                    print('        e.g. %s' % (str(s)[:600],))
        if MODE == 'long':
            if self.jobs_run < 10000:
                print('  LONG MODE TOO SHORT: %d jobs run < 10000' % self.jobs_run)
                bad += 1
            if sum(f.counts.values()) < 500:
                print('  LONG MODE TOO SHORT: fewer than 500 faults')
                bad += 1
        if getattr(self.d, 'timed_out', False):
            print('  the run hit its time limit before its targets (jobs/faults)')
            bad += 1
        print('RESULT: %s' % ('PASS' if bad == 0 else 'FAIL'))
        return bad == 0

    # -- per database ------------------------------------------------------------

    def check_db(self, db):
        c = self.conns[db]
        s = S(db)
        q = lambda sql, args=None: one(c, self.render(sql, db), args)
        v = lambda name, sql, sample=None: self.violation(name, q(sql), sample and self.render(sample, db), db)
        apps = self.REAPER_APPS
        jobs = self.jobs_union(db)
        # 1. a job finalized twice in one attempt (finalizer + reaper, two reapers)
        v('jobs finalized twice (same attempt)',
          'SELECT count(*) FROM (SELECT 1 FROM {S}.transitions GROUP BY target, job_id, epoch HAVING count(*) > 1) x',
          "SELECT target, job_id, epoch, array_agg(app || ':' || old_status || '->' || new_status)"
          ' FROM {S}.transitions GROUP BY 1, 2, 3 HAVING count(*) > 1')
        v('status overwritten after the attempt ended',
          "SELECT count(*) FROM {S}.transitions WHERE old_status <> 'running'",
          "SELECT * FROM {S}.transitions WHERE old_status <> 'running'")
        # 2. on_reap exactly once per reap; reap, hook, log and transition agree
        v('reaps whose on_reap ran != 1 time',
          'SELECT count(*) FROM {LOG} l WHERE NOT dry_run AND (SELECT count(*) FROM {S}.hook_calls h'
          ' WHERE h.target = l.t AND h.job_id = l.job_id AND h.at = l.at AND h.tier = l.tier'
          '   AND h.new_status = l.new_status) <> 1',
          'SELECT t, job_id, at, tier FROM {LOG} l WHERE NOT dry_run AND NOT EXISTS (SELECT FROM {S}.hook_calls h'
          ' WHERE h.target = l.t AND h.job_id = l.job_id AND h.at = l.at)')
        v('on_reap calls without a reap',
          'SELECT count(*) FROM {S}.hook_calls h WHERE NOT EXISTS (SELECT FROM {LOG} l WHERE NOT dry_run'
          ' AND h.target = l.t AND h.job_id = l.job_id AND h.at = l.at AND h.tier = l.tier'
          ' AND h.new_status = l.new_status)')
        v('reaper status changes without exactly one log row',
          'SELECT count(*) FROM {S}.transitions x WHERE app IN %s AND (SELECT count(*) FROM {LOG} l'
          ' WHERE NOT dry_run AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at'
          ' AND l.new_status = x.new_status) <> 1' % apps)
        v('reap log rows without the status change',
          'SELECT count(*) FROM {LOG} l WHERE NOT dry_run AND NOT EXISTS (SELECT FROM {S}.transitions x'
          ' WHERE x.app IN %s AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at)' % apps,
          "SELECT l.t, l.job_id, l.at, l.tier, l.old_status, l.new_status, (SELECT array_agg(x.app || ' ' || x.at)"
          ' FROM {S}.transitions x WHERE x.target = l.t AND x.job_id = l.job_id) FROM {LOG} l WHERE NOT dry_run'
          ' AND NOT EXISTS (SELECT FROM {S}.transitions x'
          ' WHERE x.app IN %s AND l.t = x.target AND l.job_id = x.job_id AND l.at = x.at)' % apps)
        v('dry-run decisions that changed a job or called on_reap',
          'SELECT count(*) FROM {LOG} l WHERE dry_run AND (EXISTS (SELECT FROM {S}.transitions x'
          ' WHERE l.t = x.target AND l.job_id = x.job_id AND l.at = x.at AND x.app IN %s)'
          ' OR EXISTS (SELECT FROM {S}.hook_calls h WHERE h.target = l.t AND h.job_id = l.job_id'
          ' AND h.at = l.at))' % apps)
        v('status changes by someone else than a finalizer or a reaper',
          "SELECT count(*) FROM {S}.transitions WHERE app NOT LIKE 'chaos-fin-%%' AND app NOT IN %s" % apps,
          "SELECT * FROM {S}.transitions WHERE app NOT LIKE 'chaos-fin-%%' AND app NOT IN %s" % apps)
        v('reap log rows of a target in another database, or of no target',
          "SELECT count(*) FROM public.finlive_reap_log l WHERE NOT EXISTS"
          " (SELECT FROM {S}.policy p WHERE p.rel = l.target)")
        # 3. jobs lost
        v('jobs lost (neither terminal, queued nor running)',
          "SELECT count(*) FROM %s j WHERE status NOT IN ('done', 'failed', 'queued', 'running')" % jobs)
        v('jobs still running after the drain',
          "SELECT count(*) FROM %s j WHERE status = 'running'" % jobs,
          "SELECT * FROM %s j WHERE status = 'running'" % jobs)
        v('jobs with attempts > max_attempts',
          'SELECT count(*) FROM %s j WHERE attempts > max_attempts' % jobs)
        v('finlive_reap_errors rows after the drain', 'SELECT count(*) FROM public.finlive_reap_errors',
          'SELECT * FROM public.finlive_reap_errors')
        # 4. live finalizers in guarded stages pre-empted before Tier-3
        v('live guarded finalizers pre-empted before Tier-3 (seen by clients)',
          "SELECT count(*) FROM {S}.client_events WHERE kind = 'VIOLATION_preempted'",
          "SELECT target, job_id, epoch, detail FROM {S}.client_events WHERE kind = 'VIOLATION_preempted'")
        v('ownership lost while the owner session lived',
          "SELECT count(*) FROM {S}.client_events WHERE kind = 'VIOLATION_ownership_lost'",
          "SELECT target, job_id, epoch, detail FROM {S}.client_events WHERE kind = 'VIOLATION_ownership_lost'")
        v('jobs lost by a live finalizer with no reap to explain it',
          "SELECT count(*) FROM {S}.client_events WHERE kind = 'VIOLATION_unexplained_loss'",
          "SELECT target, job_id, epoch, detail FROM {S}.client_events WHERE kind = 'VIOLATION_unexplained_loss'")
        v('client SQL errors',
          "SELECT count(*) FROM {S}.client_events WHERE kind = 'client_sql_error'",
          "SELECT detail FROM {S}.client_events WHERE kind = 'client_sql_error'")
        # 5. each reap respected its tier's rule and its target's policy
        v('Tier-1 reaps before claim_grace, with an exit code, or while disabled',
          'SELECT count(*) FROM {S}.hook_calls WHERE tier = 1 AND'
          ' (age < claim_grace - %s OR exit_code IS NOT NULL OR NOT enabled)' % EPS,
          'SELECT * FROM {S}.hook_calls WHERE tier = 1 AND'
          ' (age < claim_grace - %s OR exit_code IS NOT NULL OR NOT enabled)' % EPS)
        v('Tier-1 reaps of a target not registered claim_owned',
          'SELECT count(*) FROM {S}.hook_calls h JOIN {S}.policy p ON p.key = h.target'
          ' WHERE h.tier = 1 AND NOT p.claim_owned')
        v('Tier-2 reaps before finalize_grace',
          'SELECT count(*) FROM {S}.hook_calls WHERE tier = 2 AND'
          ' (finished_age IS NULL OR finished_age < finalize_grace - %s)' % EPS,
          'SELECT * FROM {S}.hook_calls WHERE tier = 2 AND'
          ' (finished_age IS NULL OR finished_age < finalize_grace - %s)' % EPS)
        v('Tier-3 reaps before max_running',
          'SELECT count(*) FROM {S}.hook_calls WHERE tier = 3 AND age < max_running - %s' % EPS,
          'SELECT * FROM {S}.hook_calls WHERE tier = 3 AND age < max_running - %s' % EPS)
        v('Tier-2 decisions against the gate / exit code',
          "SELECT count(*) FROM {S}.hook_calls WHERE tier = 2 AND ((new_status = 'done') <> (exit_code = 0))")
        v('requeue-or-fail against attempts/max_attempts',
          "SELECT count(*) FROM {S}.transitions WHERE app IN %s AND"
          " ((new_status = 'queued' AND NOT (old_attempts < max_attempts AND new_attempts = old_attempts + 1))"
          "  OR (new_status = 'failed' AND old_attempts < max_attempts))" % apps)
        # the hook's clock_timestamp() comes after the decision; the window
        # opens after the checkpointer's start (the epoch): a reap recorded
        # before epoch + restart_grace was decided inside the window
        epochs = ', '.join("'%s'::timestamptz" % e.isoformat() for e in self.epochs)
        v('ownership-dependent reaps inside restart_grace',
          'SELECT count(*) FROM {S}.hook_calls h WHERE enabled AND (tier = 1 OR (tier = 2 AND guarded))'
          ' AND h.clock < (SELECT max(e) FROM unnest(ARRAY[%s]) e WHERE e <= h.at) + interval \'%d s\''
          % (epochs, RESTART_GRACE),
          'SELECT target, job_id, tier, at, clock FROM {S}.hook_calls h WHERE enabled AND (tier = 1 OR (tier = 2 AND guarded))'
          ' AND h.clock < (SELECT max(e) FROM unnest(ARRAY[%s]) e WHERE e <= h.at) + interval \'%d s\''
          % (epochs, RESTART_GRACE))
        # 6. what the second reaper saw deferred: only an enabled target's
        # job in a stage that its own policy guards
        r2 = self.reapers2[db]
        bad_defer = []
        for oid, job, tier, enabled in r2.deferred:
            t = r2.rels.get(oid)
            x = [y for y in targets_of(db) if y['t'] == t]
            if not x or enabled != 'on' or not eff(x[0], 'enabled') or not guards(x[0], stage_of(job)) or tier != 2:
                bad_defer.append((t, job, tier, stage_of(job), enabled))
        self.violation('defers by a disabled target, of an unguarded stage, or not Tier-2', len(bad_defer),
                       samples=['%s: %s' % (db, b) for b in bad_defer])
        self.violation('finlive_reap_once raising (second reaper SQL errors)', len(r2.errors),
                       samples=['%s: %s' % (db, e) for e in r2.errors])
        self.violation('finlive_explain answers against the contract', len(r2.explain_bad),
                       samples=['%s: %s' % (db, e) for e in r2.explain_bad])
        # 7. NOTIFY in both directions
        self.check_notify(db)
        # 8. ownership leaks after every client is gone
        v('owners left after every client ended', 'SELECT count(*) FROM public.finlive_owners')

    def check_notify(self, db):
        c = self.conns[db]
        lst = self.listeners[db]
        # every non-dry reap: its NOTIFY key and commit time
        logged = rows(c, "SELECT pg_xact_commit_timestamp(l.xmin), format('%I.%I', n.nspname, r.relname),"
                         " l.job_id, l.tier, l.new_status FROM public.finlive_reap_log l"
                         " JOIN pg_class r ON r.oid = l.target JOIN pg_namespace n ON n.oid = r.relnamespace"
                         " WHERE NOT l.dry_run")
        no_ts = [r for r in logged if r[0] is None]
        self.violation('reap log rows without a commit timestamp (track_commit_timestamp)', len(no_ts))
        xids = sorted(set(lst.pings.values()))
        ping_ts = {}
        if xids:
            for xid, ts in rows(c, "SELECT x, pg_xact_commit_timestamp((x %% 4294967296)::text::xid)"
                                   " FROM unnest(%s::bigint[]) x", (xids,)):
                ping_ts[xid] = ts
        # the listening windows: between the first and the last ping each
        # connection received
        windows = []
        inner = collections.Counter()     # payloads received inside a window
        outer = collections.Counter()     # payloads received outside (before the first / after the last ping)
        bad = []
        by_gen = collections.defaultdict(list)
        for ev in lst.events:
            by_gen[ev[0]].append(ev)
        for gen, evs in sorted(by_gen.items()):
            idx = [i for i, e in enumerate(evs) if e[1] == 'ping' and ping_ts.get(lst.pings.get(e[2])) is not None]
            lo_i, hi_i = (idx[0], idx[-1]) if len(idx) >= 2 else (None, None)
            if lo_i is not None:
                windows.append((ping_ts[lst.pings[evs[lo_i][2]]], ping_ts[lst.pings[evs[hi_i][2]]]))
            for i, e in enumerate(evs):
                if e[1] == 'bad':
                    bad.append(e[2])
                if e[1] != 'reap':
                    continue
                p = e[2]
                if set(p) != {'target', 'job_id', 'tier', 'status'}:
                    bad.append(p)
                    continue
                key = (p['target'], p['job_id'], p['tier'], p['status'])
                if lo_i is not None and lo_i < i < hi_i:
                    inner[(len(windows) - 1, key)] += 1
                else:
                    outer[key] += 1
        expected = collections.Counter()   # (window, key) -> reaps committed strictly inside
        loose = collections.Counter()      # key -> reaps outside every window (or on its edge)
        for ts, target, job, tier, st in logged:
            key = (target, job, tier, st)
            w = [k for k, (lo, hi) in enumerate(windows) if ts is not None and lo < ts < hi]
            if w:
                expected[(w[0], key)] += 1
            else:
                loose[key] += 1
        missing = expected - inner
        extra = inner - expected
        # a payload received outside a window must match a reap that
        # committed outside every window
        unmatched = outer - loose
        self.violation('reaps (inside a listening window) without exactly one NOTIFY',
                       sum(missing.values()), samples=['%s: missing %s' % (db, k) for k in list(missing)[:5]])
        self.violation('NOTIFY payloads without a matching reap (inside a window: exact)',
                       sum(extra.values()), samples=['%s: extra %s' % (db, k) for k in list(extra)[:5]])
        self.violation('NOTIFY payloads without a matching reap (outside the windows)',
                       sum(unmatched.values()), samples=['%s: %s' % (db, k) for k in list(unmatched)[:5]])
        self.violation('NOTIFY payloads malformed (not JSON, other keys)', len(bad),
                       samples=['%s: %s' % (db, b) for b in bad])
        inside = sum(expected.values())
        self.figure('%s: reaps checked against NOTIFY exactly / outside the windows' % db,
                    '%d / %d (%d windows)' % (inside, sum(loose.values()), len(windows)))
        if not windows or inside == 0:
            self.violation('listeners that never had a listening window with reaps in it', 1,
                           samples=['%s: %d windows, %d reaps inside' % (db, len(windows), inside)])

    # -- the cluster -----------------------------------------------------------

    def check_cluster(self):
        # counters agree with finlive_reap_log of both databases (the last
        # server epoch: counters live in shared memory, which a crash
        # restart re-creates); the throwaway databases only log dry runs
        last = self.epochs[-1].isoformat()
        stats = rows(self.c, 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3 FROM finlive_stats')[0]
        logc = [0, 0, 0, 0]
        for db in DBS:
            r = rows(self.conns[db], "SELECT count(*), count(*) FILTER (WHERE tier = 1),"
                                     " count(*) FILTER (WHERE tier = 2), count(*) FILTER (WHERE tier = 3)"
                                     " FROM finlive_reap_log WHERE NOT dry_run AND at >= %s", (last,))[0]
            logc = [a + b for a, b in zip(logc, r)]
        self.figure('counters (total, t1, t2, t3) / both logs, last epoch', '%s / %s' % (tuple(stats), tuple(logc)))
        self.violation('counters disagreeing with finlive_reap_log (last epoch)',
                       sum(abs(a - b) for a, b in zip(stats, logc)))
        # fencing tokens, across both databases
        marks = []
        for db in DBS:
            marks += [(tok, cl, seq, at, db) for tok, cl, seq, at in
                      rows(self.conns[db], 'SELECT token, client, seq, at FROM %s.marks' % S(db))]
        seen = collections.Counter(m[0] for m in marks)
        self.violation('tokens handed out twice (both databases)', sum(1 for n in seen.values() if n > 1))
        per = collections.defaultdict(list)
        for tok, cl, seq, at, db in marks:
            per[cl].append((seq, tok))
        back = 0
        for cl, l in per.items():
            l.sort()
            back += sum(1 for a, b in zip(l, l[1:]) if b[1] <= a[1])
        self.violation('tokens not increasing within one client thread', back)
        after_restart = 0
        for e in self.epochs[1:]:
            before = [m[0] for m in marks if m[3] < e]
            after = [m[0] for m in marks if m[3] >= e]
            if before and after and max(before) >= min(after):
                after_restart += 1
        self.violation('tokens after a crash restart not above those before', after_restart)
        # no crash but the injected ones
        injected = sum(self.f.counts[k] for k in Faults.CRASHES)
        text = self.server_log
        signalled = text.count('terminated by signal')
        self.figure('processes terminated by signal (server log)', '%d (injected crashes %d)' % (signalled, injected))
        self.violation('server crashes not injected (terminated by signal, PANIC, sanitizer)',
                       max(0, signalled - injected) + text.count('PANIC:')
                       + text.count('terminated by signal 11') + text.count('terminated by signal 6')
                       + text.count('AddressSanitizer') + text.count('runtime error:'))
        self.violation('server restarts nobody injected', max(0, len(self.reinits) - injected))
        self.violation('finlive locks left after every client ended', self.q(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = %s", (FINLIVE_OBJSUBID,)))
        # the throwaway database: no CREATE/DROP DATABASE failed because of a
        # reaper; the one made at the end gets a reaper that decides its job
        f = self.f
        self.violation('CREATE/DROP DATABASE of the throwaway database failed (a reaper in the way)',
                       len(f.tmp_failures), samples=f.tmp_failures)
        decided = False
        deadline = time.time() + 60
        while f.tmp is not None and time.time() < deadline:
            try:
                decided = f.tmp_reaped()
            except CONN_ERRORS:
                decided = False
            if decided:
                break
            time.sleep(0.5)
        self.violation('throwaway database made at the end not reaped within 60 s', 0 if decided else 1)
        # one launcher, one reaper in each database with finlive, none elsewhere
        want = {ALPHA: 1, BETA: 1, TMP_DB: 1, SEED_DB: 1}
        got = {}
        deadline = time.time() + 30
        while True:
            got = dict(rows(self.c, "SELECT coalesce(datname, '(none)'), count(*) FROM pg_stat_activity"
                                    " WHERE backend_type = 'finlive reaper' GROUP BY 1"))
            launchers = self.q("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'finlive launcher'")
            if got == want and launchers == 1 or time.time() > deadline:
                break
            time.sleep(0.5)
        self.figure('reapers by database at the end (launchers)', '%s (%d)' % (got, launchers))
        self.violation('databases without exactly one reaper at the end, or reapers elsewhere',
                       0 if got == want else 1, samples=['reapers %s, expected %s' % (got, want)])
        self.violation('launchers at the end != 1', 0 if launchers == 1 else 1)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == 'client':
        client_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    seed = int(os.environ.get('CHAOS_SEED', random.randrange(1 << 30)))
    random.seed(seed)
    print('chaos seed %d' % seed)
    driver = Driver()
    try:
        rc = driver.run()
    finally:
        for p, db in driver.procs.values():
            if p.poll() is None:
                p.kill()
    sys.exit(rc)


if __name__ == '__main__':
    main()
