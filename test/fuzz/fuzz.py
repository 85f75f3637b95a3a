#!/usr/bin/python3
"""finlive fuzz pass: thousands of calls with bad input over every SQL function.

Driven by test/fuzz/run.sh (a throwaway cluster, PGHOST/PGPORT set, superuser
"postgres", finlive.database = 'postgres' so that the "fuzz" database has no
reaper and only the calls change its state).  Sections:

  ownership   random finlive_mark/clear/clear_all/is_active/fence/owners/
              snapshot calls with NULLs, bigint extremes, negative ids, huge,
              multibyte and invalid stage text, inside and outside aborted
              transactions, after pg_advisory_unlock_all()/DISCARD ALL, from
              parallel workers (PARALLEL SAFE wrappers), against a model of
              who owns what (a second session owns some jobs); 1000 distinct
              stages at once;
  register    finlive_register over tables missing each required column,
              with each wrong type, non-tables, temporary and dangling
              relations, hooks of every wrong shape, NULLs, and the six
              policy arguments (negative, mixed-sign, huge and infinite
              intervals, NULL elements, 2-D and malformed arrays, wrong
              types); finlive_targets shows what was registered and what is
              in effect; finlive_unregister;
  settings    bad values for every finlive.* setting;
  explain     finlive_explain over odd regclasses (0, dangling, views,
              sequences, indexes, catalogs, unregistered and dropped targets)
              and job ids: the right SQLSTATE or a well-formed answer; it
              changes nothing, does not wait for a locked row, names the
              owner, refuses a role that may not read the table (42501);
  reap_once   refused (55000, changing nothing) to a session that owns a job
              or holds an advisory lock, session- or transaction-level;
  reaper      targets whose tables, columns, types, hooks, privileges or
              registrations change between finlive_register and the tick
              (hooks that unregister, drop, recurse, re-register, SET
              things, take advisory locks or finlive ownership, outrun
              finlive.hook_timeout or statement_timeout), with job rows of
              every odd shape, ticked by finlive_reap_once in two sessions
              and by the worker at once; the ticking session's settings, role
              and locks are as they were; finlive_explain answers for every
              job; failing reaps show in finlive_reap_errors (not to a role
              that may not read the table) until the job stops running;
  policies    targets with random policies (NULL, 0, huge, kill-switch and
              dry run per target) over jobs with infinite timestamps, some
              owned: each reap is the tier the effective policy says, with
              the right status and dry-run flag; a tick leaves nothing the
              policy reaps; finlive_explain agrees; a second tick reaps
              nothing more;
  database    finlive.database reloaded to odd values under the reapers;
  diagnostics finlive_stats/_reset, finlive_target_problems, finlive_running_jobs,
              finlive_audit, finlive_reap_errors in all those states.

Checked: every call's outcome is the expected value or SQLSTATE; a rejected
call changes no job row, registration, owner or lock; the reaper never raises
from a tick and never reaps one job twice; no backend crashed (server log);
no advisory lock is left; one reaper runs in postgres at the end.  Prints
figures; exit status 1 on any failure.
"""
import collections
import os
import random
import sys
import threading
import time

import psycopg2
import psycopg2.errors

T0 = time.time()
SEED = int(os.environ.get('FUZZ_SEED', random.randrange(1 << 30)))
SCALE = float(os.environ.get('FUZZ_SCALE', '1'))
rng = random.Random(SEED)

I64_MAX, I64_MIN = 2**63 - 1, -2**63
BIGINTS = [None, 0, 1, -1, 2, 42, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32,
           2**32 + 1, 2**53, I64_MAX, I64_MIN, I64_MAX - 1, I64_MIN + 1, -42]

STAGES = [None, '', 'deploy-staging', 'merge', ' ', 'a' * 256, 'a' * 257, 'é' * 128, 'é' * 128 + 'a',
          'a' * 255 + 'é', '🚀' * 64, '🚀' * 64 + 'a', 'x' * 100000, "'; DROP TABLE fz.jobs; --",
          '%s%n%x%p', '\\', 'tab\there\nnewline', '"quoted"', 'ß∂ƒ©', '\x01\x02\x7f', 'NULL', 'Robert\'); --']


REGISTER_SIG = ('finlive_register(regclass, regclass, regclass, regprocedure, regprocedure, boolean,'
                ' interval, interval, interval, text[], boolean, boolean)')
EXPLAIN_KEYS = {'status', 'tier', 'action', 'reason', 'eligible_at', 'owner', 'policy'}
EXPLAIN_ACTIONS = {'none', 'deferred', 'done', 'queued', 'failed', 'skipped'}
PG_VERSION = 0          # server_version_num, set in main()
POLICY_ROLES = ['finalize_grace', 'claim_grace', 'max_running', 'guarded_stages', 'enabled', 'dry_run']


def nbytes(s):
    return len(s.encode('utf-8'))


class Stats:
    def __init__(self):
        self.calls = collections.Counter()          # function -> calls
        self.outcomes = collections.Counter()       # sqlstate or 'ok'
        self.failures = []

    def fail(self, what):
        if len(self.failures) < 200:
            self.failures.append(what)
        else:
            self.failures.append(None)


ST = Stats()


def connect(db='fuzz', user='postgres', app='fuzz'):
    for attempt in range(100):
        try:
            c = psycopg2.connect(host=os.environ['PGHOST'], port=os.environ['PGPORT'], dbname=db,
                                 user=user, application_name=app)
            c.autocommit = True
            return c
        except psycopg2.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.2)


def run(conn, sql, args=None):
    """Execute; returns ('ok', rows) or (sqlstate, message)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return 'ok', (cur.fetchall() if cur.description else None)
    except psycopg2.Error as e:
        if e.pgcode is None:
            raise RuntimeError('connection lost on %r: %s' % (sql, e))
        try:
            with conn.cursor() as cur:
                cur.execute('ROLLBACK')
        except psycopg2.Error:
            pass
        return e.pgcode, e.pgerror


def scalar(conn, sql, args=None):
    st, r = run(conn, sql, args)
    if st != 'ok':
        raise RuntimeError('%s failed: %s %s' % (sql, st, r))
    return r[0][0] if r else None


def fn_name(sql):
    s = sql.split('finlive_', 1)
    return 'finlive_' + s[1].split('(', 1)[0] if len(s) > 1 else sql.split()[0]


# ---------------------------------------------------------------------------
# A state fingerprint: what a rejected call must not change
# ---------------------------------------------------------------------------

FINGERPRINT = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(j::text, ',' ORDER BY id) FROM fz.jobs j),
  (SELECT string_agg(r::text, ',' ORDER BY id) FROM fz.runs r),
  (SELECT string_agg(t::text, ',' ORDER BY id) FROM fz.tasks t),
  (SELECT string_agg(t::text, ',' ORDER BY jobs) FROM public.finlive_target t),
  (SELECT count(*) FROM public.finlive_reap_log)::text,
  (SELECT string_agg(o.job_id || ':' || o.token || ':' || o.pid, ',' ORDER BY job_id) FROM public.finlive_owners o),
  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966)::text))
"""


def fingerprint(conn):
    return scalar(conn, FINGERPRINT)


def expect(conn, sql, args, allowed, check_unchanged=True, value_check=None):
    """Run one call.  allowed: set of SQLSTATEs or 'ok'.  A rejected call must
    leave the fingerprint unchanged.  value_check(rows) -> error text or None."""
    before = fingerprint(conn) if check_unchanged else None
    st, r = run(conn, sql, args)
    ST.calls[fn_name(sql)] += 1
    ST.outcomes[st] += 1
    shown = (sql if len(sql) < 160 else sql[:160] + '...', tuple(str(a)[:40] for a in (args or ())))
    if st not in allowed:
        ST.fail('%s -> %s %s (expected %s)' % (shown, st, (r or '')[:200] if st != 'ok' else r,
                                               sorted(allowed)))
    elif st == 'ok' and value_check is not None:
        err = value_check(r)
        if err:
            ST.fail('%s -> %s' % (shown, err))
    if st != 'ok' and check_unchanged:
        after = fingerprint(conn)
        if after != before:
            ST.fail('%s: rejected with %s but changed state' % (shown, st))
    return st, r


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

JOB_COLS = [('id', 'bigint', ['numeric', 'text', 'smallint']),
            ('status', 'text', ['integer', 'char(10)', 'name']),
            ('run_id', 'bigint', ['text', 'numeric']),
            ('task_id', 'bigint', ['text', 'smallint']),
            ('attempts', 'integer', ['bigint', 'smallint', 'text']),
            ('max_attempts', 'integer', ['bigint', 'numeric']),
            ('started_at', 'timestamptz', ['timestamp', 'date', 'text'])]
RUN_COLS = [('id', 'bigint', ['text', 'numeric']),
            ('finished_at', 'timestamptz', ['timestamp', 'text']),
            ('exit_code', 'integer', ['bigint', 'text', 'boolean'])]
TASK_COLS = [('id', 'bigint', ['text', 'uuid']),
             ('stage', 'text', ['integer', 'bytea'])]
KIND_COLS = {'jobs': JOB_COLS, 'runs': RUN_COLS, 'tasks': TASK_COLS}


def create_table(conn, name, cols, extra=''):
    scalar(conn, 'CREATE TABLE %s (%s)%s; SELECT 1' % (name, ', '.join('%s %s' % c for c in cols), extra))


def setup(conn):
    """Fixture tables (a dict role -> list of (regclass text, expected set))."""
    scalar(conn, '''
        CREATE EXTENSION finlive;
        CREATE SCHEMA fz;
        CREATE SCHEMA "Fz Schema";
        CREATE DOMAIN fz.big AS bigint CHECK (VALUE > -10);
        CREATE DOMAIN fz.txt AS text;
        CREATE DOMAIN fz.i4 AS integer;
        CREATE FUNCTION fz.hook_ok(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.hook_int(bigint, integer, text) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
        CREATE FUNCTION fz.hook_2(bigint, integer) RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.hook_4(bigint, integer, text, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.hook_types(integer, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.hook_varchar(bigint, integer, varchar) RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.hook_srf(bigint, integer, text) RETURNS SETOF integer LANGUAGE sql AS $$ SELECT 1 $$;
        CREATE PROCEDURE fz.hook_proc(bigint, integer, text) LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.acc(bigint, bigint, integer, text) RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint $$;
        CREATE AGGREGATE fz.hook_agg(bigint, integer, text) (SFUNC = fz.acc, STYPE = bigint);
        CREATE FUNCTION fz.gate_ok(bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE FUNCTION fz.gate_int(bigint) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
        CREATE FUNCTION fz.gate_text(text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE FUNCTION fz.gate_int4(integer) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE FUNCTION fz.gate_srf(bigint) RETURNS SETOF boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE FUNCTION fz.gate_2(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE PROCEDURE fz.gate_proc(bigint) LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION "Fz Schema"."Hook ""Quoted"""(bigint, integer, text) RETURNS void
            LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.checksum_dummy() RETURNS void LANGUAGE sql AS $$ SELECT $$;
        CREATE FUNCTION fz.par_is_active(bigint) RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE
            AS $$ BEGIN RETURN public.finlive_is_active($1); END $$;
        CREATE FUNCTION fz.par_fence(bigint, bigint) RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE
            AS $$ BEGIN RETURN public.finlive_fence($1, $2); END $$;
        CREATE FUNCTION fz.par_mark(bigint) RETURNS bigint LANGUAGE plpgsql PARALLEL SAFE
            AS $$ BEGIN RETURN public.finlive_mark($1); END $$;
        SELECT 1''')
    fixtures = {}
    for kind, cols in KIND_COLS.items():
        base = [(n, t) for n, t, _ in cols]
        lst = []
        name = 'fz.%s' % kind
        create_table(conn, name, base, '' if kind != 'jobs' else '')
        scalar(conn, 'ALTER TABLE %s ADD PRIMARY KEY (id); SELECT 1' % name)
        lst.append((name, set()))
        for i, (col, typ, wrong) in enumerate(cols):
            t = 'fz.%s_no_%s' % (kind, col)
            create_table(conn, t, [c for c in base if c[0] != col])
            lst.append((t, {'42703'}))
            for w in wrong:
                t = 'fz.%s_%s_%s' % (kind, col, w.split('(')[0])
                create_table(conn, t, [(n, w if n == col else ty) for n, ty in base])
                lst.append((t, {'42804'}))
        # accepted variants
        acc = {'jobs': [('id', 'integer'), ('status', 'varchar(20)'), ('run_id', 'integer'),
                        ('id', 'fz.big'), ('status', 'fz.txt'), ('attempts', 'fz.i4')],
               'runs': [('id', 'integer'), ('exit_code', 'fz.i4')],
               'tasks': [('stage', 'varchar'), ('id', 'integer')]}[kind]
        for col, typ in acc:
            t = 'fz.%s_ok_%s_%s' % (kind, col, typ.replace('.', '_').split('(')[0])
            create_table(conn, t, [(n, typ if n == col else ty) for n, ty in base])
            lst.append((t, set()))
        t = '"Fz Schema"."%s; DROP TABLE fz.jobs; --"' % kind
        create_table(conn, t, base + [('"extra col"', 'text')])
        lst.append((t, set()))
        t = 'fz.%s_partitioned' % kind
        create_table(conn, t, base, ' PARTITION BY RANGE (id)')
        lst.append((t, set()))
        t = 'fz.%s_unlogged' % kind
        scalar(conn, 'CREATE UNLOGGED TABLE %s (%s); SELECT 1' % (t, ', '.join('%s %s' % c for c in base)))
        lst.append((t, set()))
        # not tables
        scalar(conn, 'CREATE VIEW fz.%s_view AS SELECT * FROM fz.%s; SELECT 1' % (kind, kind))
        scalar(conn, 'CREATE MATERIALIZED VIEW fz.%s_mv AS SELECT * FROM fz.%s; SELECT 1' % (kind, kind))
        scalar(conn, 'CREATE SEQUENCE fz.%s_seq; SELECT 1' % kind)
        scalar(conn, 'CREATE TYPE fz.%s_type AS (%s); SELECT 1' % (kind, ', '.join('%s %s' % c for c in base)))
        lst += [('fz.%s_view' % kind, {'42809'}), ('fz.%s_mv' % kind, {'42809'}),
                ('fz.%s_seq' % kind, {'42809'}), ('fz.%s_type' % kind, {'42809'}),
                ('fz.%s_pkey' % kind, {'42809'}), ('pg_catalog.pg_class', {'42703', '42804'}),
                ('0::regclass', {'42P01'}), ('4000000000::regclass', {'42P01'}),
                ("'fz.does_not_exist'::regclass", {'42P01'}), ('NULL::regclass', {'22004'})]
        fixtures[kind] = lst
    fixtures['tasks'].append(('NULL::regclass', set()))        # tasks may be NULL
    fixtures['tasks'] = [f for f in fixtures['tasks'] if not (f[0] == 'NULL::regclass' and f[1] == {'22004'})]
    fixtures['tasks'] = [(n, set()) if n == '0::regclass' else (n, e) for n, e in fixtures['tasks']]
    fixtures['on_reap'] = [
        ('NULL', set()), ("'fz.hook_ok(bigint,integer,text)'", set()),
        ("'fz.hook_int(bigint,integer,text)'", set()),
        ("'\"Fz Schema\".\"Hook \"\"Quoted\"\"\"(bigint,integer,text)'", set()),
        ("'fz.hook_2(bigint,integer)'", {'42P13'}), ("'fz.hook_4(bigint,integer,text,text)'", {'42P13'}),
        ("'fz.hook_types(integer,integer,text)'", {'42P13'}),
        ("'fz.hook_varchar(bigint,integer,varchar)'", {'42P13'}),
        ("'fz.hook_srf(bigint,integer,text)'", {'42P13'}), ("'fz.hook_proc(bigint,integer,text)'", {'42P13'}),
        ("'fz.hook_agg(bigint,integer,text)'", {'42P13'}), ("'fz.gate_ok(bigint)'", {'42P13'}),
        ("'fz.nope(bigint,integer,text)'", {'42883'}), ('4000000000::oid::regprocedure', {'42883'}),
        ('0::oid::regprocedure', set()), ("'pg_catalog.pg_sleep(double precision)'", {'42P13'})]
    fixtures['gate'] = [
        ('NULL', set()), ("'fz.gate_ok(bigint)'", set()), ("'fz.gate_int(bigint)'", {'42P13'}),
        ("'fz.gate_text(text)'", {'42P13'}), ("'fz.gate_int4(integer)'", {'42P13'}),
        ("'fz.gate_srf(bigint)'", {'42P13'}), ("'fz.gate_2(bigint,bigint)'", {'42P13'}),
        ("'fz.gate_proc(bigint)'", {'42P13'}), ("'fz.hook_ok(bigint,integer,text)'", {'42P13'}),
        ("'fz.nope(bigint)'", {'42883'}), ('4000000000::oid::regprocedure', {'42883'})]
    fixtures['claim_owned'] = [('false', set()), ('true', set()), ('NULL', {'22004'})]
    # [1.3] the policy arguments: NULL = the server setting; a negative
    # interval (also one whose months and days add up below zero, months
    # counted as 30 days) is refused with 22023; a huge one is accepted (it
    # saturates: that grace never passes); infinite intervals exist from
    # PostgreSQL 17 on (before, the literal itself is refused, 22007)
    inf = set() if PG_VERSION >= 170000 else {'22007'}
    neg_inf = {'22023'} if PG_VERSION >= 170000 else {'22007'}
    durations = [
        ('NULL', set()), ("'0'", set()), ("'1 microsecond'", set()), ("'1 s'", set()), ("'90 min'", set()),
        ("'1 mon'", set()), ("'1 mon -30 days'", set()), ("'-1 mon 40 days'", set()),
        ("'178000000 years'", set()), ("'2147483647 days 2562047788 hours'", set()),
        ("'-1 microsecond'", {'22023'}), ("'-1 s'", {'22023'}), ("'1 mon -31 days'", {'22023'}),
        ("'1 day -25 hours'", {'22023'}), ("'-178000000 years'", {'22023'}),
        ("'infinity'", inf), ("'-infinity'", neg_inf), ("'soon'", {'22007'}), ("''", {'22007'}),
        ('5', {'42883'}), ("'5'::text", {'42883'}), ('now()', {'42883'})]
    for role in ('finalize_grace', 'claim_grace', 'max_running'):
        fixtures[role] = durations
    fixtures['guarded_stages'] = [
        ('NULL', set()), ("'{}'", set()), ("'{*}'", set()), ("'{deploy-staging, merge}'", set()),
        ("'{\"\"}'", set()), ("'{*, build}'", set()), ("'[5:6]={a,b}'", set()),
        ("ARRAY[repeat('x', 100000)]", set()), ("array_fill('s'::text, ARRAY[5000])", set()),
        ("ARRAY['é🚀', E'tab\\there', '%s%n', 'NULL']", set()), ("'{a,a,a}'", set()),
        ('ARRAY[NULL]::text[]', {'22023'}), ("'{a,NULL}'", {'22023'}), ("'{{a,b},{c,d}}'", {'22023'}),
        ("'{{a}}'", {'22023'}), ("'{a'", {'22P02'}), ("'{1,2}'::int[]", {'42883'}), ("'deploy'", {'22P02'})]
    for role in ('enabled', 'dry_run'):
        fixtures[role] = [('NULL', set()), ('true', set()), ('false', set()), ("'maybe'", {'22P02'}),
                          ('1', {'42883'})]
    scalar(conn, """
        INSERT INTO fz.tasks VALUES (1, 'deploy-staging'), (2, 'build');
        INSERT INTO fz.runs VALUES (1, now() - interval '1 day', 0), (2, NULL, NULL), (3, now() - interval '1 day', 0);
        INSERT INTO fz.jobs VALUES (1, 'running', 1, 1, 0, 3, now() - interval '2 days'),
                                   (2, 'running', 2, 2, 0, 3, now() - interval '2 days'),
                                   (3, 'running', 3, 1, 0, 3, now() - interval '1 min');
        SELECT 1""")
    return fixtures


# ---------------------------------------------------------------------------
# Ownership: random calls against a model
# ---------------------------------------------------------------------------

class Ownership:
    def __init__(self, conn, other):
        self.c, self.o = conn, other
        self.mine = {}            # job -> token
        self.theirs = {}          # job -> token
        self.last_token = 0

    def other_marks(self):
        for job in rng.sample([j for j in BIGINTS if j is not None], 5):
            tok = scalar(self.o, 'SELECT finlive_mark(%s)', (job,))
            if tok is not None:
                self.theirs[job] = tok
                self.last_token = max(self.last_token, tok)

    def owner_of(self, job):
        if job in self.mine:
            return 'me'
        if job in self.theirs:
            return 'them'
        return None

    def token_of(self, job):
        return self.mine.get(job, self.theirs.get(job))

    def pick_job(self):
        if rng.random() < 0.3 and (self.mine or self.theirs):
            return rng.choice(list(self.mine) + list(self.theirs))
        return rng.choice(BIGINTS) if rng.random() < 0.7 else rng.randint(I64_MIN, I64_MAX)

    def call(self):
        op = rng.choices(['mark', 'clear', 'clear_all', 'is_active', 'fence', 'owners', 'snapshot',
                          'bad_type', 'unlock_all', 'aborted_txn', 'parallel'],
                         [30, 15, 3, 12, 12, 5, 5, 6, 2, 10, 3])[0]
        getattr(self, 'op_' + op)()

    def op_mark(self, in_txn=False):
        job = self.pick_job()
        run_id = rng.choice(BIGINTS)
        stage = rng.choice(STAGES)
        form = rng.randrange(4)
        if form == 0:
            sql, args = 'SELECT finlive_mark((%s)::bigint)', (job,)
            stage, run_id = None, None
        elif form == 1:
            sql, args = 'SELECT finlive_mark((%s)::bigint, (%s)::bigint)', (job, run_id)
            stage = None
        elif form == 2:
            sql, args = 'SELECT finlive_mark((%s)::bigint, (%s)::bigint, (%s)::text)', (job, run_id, stage)
        else:
            sql, args = 'SELECT finlive_mark(job_id => (%s)::bigint, stage => (%s)::text)', (job, stage)
        if job is None:
            allowed = {'ok'}
            want = ('null',)
        elif stage is not None and nbytes(stage) > 256:
            allowed, want = {'22023'}, None
        elif self.owner_of(job) == 'them':
            allowed, want = {'ok'}, ('null',)
        elif self.owner_of(job) == 'me':
            allowed, want = {'ok'}, ('same', self.mine[job])
        else:
            allowed, want = {'ok'}, ('new',)

        def check(rows):
            tok = rows[0][0]
            if want[0] == 'null':
                return None if tok is None else 'expected NULL, got %s' % tok
            if want[0] == 'same':
                return None if tok == want[1] else 'a re-mark returned %s, not the token %s' % (tok, want[1])
            if tok is None or tok <= 0:
                return 'a first mark returned %s' % tok
            if tok <= self.last_token:
                return 'token %s not above the previous %s' % (tok, self.last_token)
            return None
        st, r = expect(self.c, sql, args, allowed, check_unchanged=not in_txn, value_check=check)
        if st == 'ok' and want[0] == 'new' and r[0][0] is not None:
            self.mine[job] = r[0][0]
            self.last_token = max(self.last_token, r[0][0])

    def op_clear(self):
        job = self.pick_job()
        want = self.owner_of(job) == 'me'
        expect(self.c, 'SELECT finlive_clear((%s)::bigint)', (job,), {'ok'}, check_unchanged=False,
               value_check=lambda r: None if r[0][0] is want else 'clear returned %s, expected %s' % (r[0][0], want))
        self.mine.pop(job, None)

    def op_clear_all(self):
        n = len(self.mine)
        expect(self.c, 'SELECT finlive_clear_all()', None, {'ok'}, check_unchanged=False,
               value_check=lambda r: None if r[0][0] == n else 'clear_all returned %s, expected %d' % (r[0][0], n))
        self.mine.clear()

    def op_is_active(self):
        job = self.pick_job()
        want = self.owner_of(job) is not None
        expect(self.c, 'SELECT finlive_is_active((%s)::bigint)', (job,), {'ok'},
               value_check=lambda r: None if r[0][0] is want else 'is_active(%s) = %s, expected %s'
               % (job, r[0][0], want))

    def op_fence(self):
        job = self.pick_job()
        tok = self.token_of(job)
        if tok is None or rng.random() < 0.4:
            tok = rng.choice(BIGINTS + [self.last_token, self.last_token + 1])
        want = job is not None and tok is not None and self.token_of(job) == tok
        expect(self.c, 'SELECT finlive_fence((%s)::bigint, (%s)::bigint)', (job, tok), {'ok'},
               value_check=lambda r: None if r[0][0] is want else 'fence(%s, %s) = %s, expected %s'
               % (job, tok, r[0][0], want))

    def op_owners(self):
        want = sorted(list(self.mine) + list(self.theirs))
        expect(self.c, 'SELECT job_id FROM finlive_owners ORDER BY job_id', None, {'ok'},
               value_check=lambda r: None if [x[0] for x in r] == want else 'owners %s, expected %s'
               % ([x[0] for x in r], want))

    def op_snapshot(self):
        want = sorted(list(self.mine) + list(self.theirs))
        expect(self.c, 'SELECT finlive_snapshot()', None, {'ok'},
               value_check=lambda r: None if (r[0][0]['active'] == len(want) and r[0][0]['jobs'] == want)
               else 'snapshot %s, expected %s' % (r[0][0], want))

    def op_bad_type(self):
        sql, allowed = rng.choice([
            ("SELECT finlive_mark('abc')", {'22P02'}),
            ("SELECT finlive_mark('99999999999999999999')", {'22003'}),
            ("SELECT finlive_mark(1.5)", {'42883'}),
            ("SELECT finlive_mark(1, 2, 3, 4)", {'42883'}),
            ("SELECT finlive_mark(1, 'x')", {'22P02'}),
            ("SELECT finlive_fence('a', 1)", {'22P02'}),
            ("SELECT finlive_is_active(true)", {'42883'}),
            ("SELECT finlive_clear(NULL::text)", {'42883'}),
            ("SELECT finlive_mark(7, NULL, E'\\\\xff')", {'ok'}),
            ("SELECT finlive_mark(7, NULL, E'\\xff')", {'22021'}),
            ("SELECT finlive_mark(7, NULL, convert_from('\\xc328'::bytea, 'UTF8'))", {'22021'}),
            ("SELECT finlive_mark(7, NULL, chr(0))", {'54000'}),
            ("SELECT finlive_mark(7, NULL, repeat('x', 300)::varchar(10))", {'ok'}),
        ])
        st, r = expect(self.c, sql, None, allowed, check_unchanged=(allowed != {'ok'}))
        if st == 'ok' and 'finlive_mark(7' in sql:
            if 7 in self.theirs:
                pass
            elif 7 not in self.mine and r[0][0] is not None:
                self.mine[7] = r[0][0]
                self.last_token = max(self.last_token, r[0][0])

    def op_unlock_all(self):
        sql = rng.choice(['SELECT pg_advisory_unlock_all()', 'DISCARD ALL'])
        expect(self.c, sql, None, {'ok'}, check_unchanged=False)
        self.mine.clear()
        ST.calls[sql.split('(')[0].replace('SELECT ', '')] += 0

    def op_aborted_txn(self):
        """Calls inside a transaction that then aborts: ownership is session-level."""
        scalar(self.c, 'BEGIN; SELECT 1')
        for _ in range(rng.randint(1, 3)):
            self.op_mark(in_txn=True)
        st, _ = run(self.c, 'SELECT 1/0')
        run(self.c, 'ROLLBACK')
        ST.calls['aborted transaction'] += 1

    def stage_pool(self):
        """[1.2] Any number of distinct stages at once: the only limits are
        finlive.max_owners and 256 bytes a stage (no pool of 256)."""
        scalar(self.c, 'SELECT finlive_clear_all()')
        self.mine.clear()
        base = 10**12
        n = 1000
        for i in range(n):
            expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + i, 'stage-%d-%s' % (i, 'x' * (i % 240))),
                   {'ok'}, check_unchanged=False,
                   value_check=lambda r: None if r[0][0] is not None and r[0][0] > 0 else 'mark returned %s' % r)
        mine = 'FROM finlive_owners WHERE pid = pg_backend_pid() AND job_id BETWEEN %s AND %s'
        got = scalar(self.c, 'SELECT count(DISTINCT stage) ' + mine, (base, base + n))
        if got != n:
            ST.fail('stage pool: finlive_owners shows %s distinct stages, expected %d' % (got, n))
        # a re-mark with yet another stage keeps the job and its token
        tok = scalar(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base, 'stage-0'))
        tok2 = scalar(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base, 'another-' + 'y' * 200))
        if tok != tok2:
            ST.fail('stage pool: a re-mark with a new stage changed the token %s -> %s' % (tok, tok2))
        cleared = scalar(self.c, 'SELECT finlive_clear_all()')
        if cleared != n:
            ST.fail('stage pool: clear_all released %s, expected %d' % (cleared, n))
        # stages of owners that are gone are not "in use": after DISCARD ALL
        # ended ownership of n jobs with distinct stages, new stages fit
        for i in range(n):
            scalar(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + i, 'again-%d' % i))
        expect(self.c, 'DISCARD ALL', None, {'ok'}, check_unchanged=False)
        expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + n, 'stage-new'), {'ok'},
               check_unchanged=False)
        left = scalar(self.c, 'SELECT count(*) ' + mine, (base, base + n))
        if left != 1:
            ST.fail('stage pool: after DISCARD ALL and one mark, finlive_owners has %s of our jobs' % left)
        scalar(self.c, 'SELECT finlive_clear_all()')

    def op_parallel(self):
        """[1.2] A finlive function reached from a parallel worker answers as
        in the leader or raises 0A000, and never changes ownership."""
        job = self.pick_job()
        want = self.owner_of(job) is not None
        fn, args = rng.choice([('fz.par_is_active((%s)::bigint)', (job,)),
                               ('fz.par_fence((%s)::bigint, (%s)::bigint)', (job, self.token_of(job))),
                               ('fz.par_mark((%s)::bigint)', (job,))])
        scalar(self.c, 'SET %s = on; SELECT 1' % ('debug_parallel_query' if PG_VERSION >= 160000
                                                  else 'force_parallel_mode'))
        try:
            st, r = expect(self.c, 'SELECT ' + fn, args, {'ok', '0A000'})
        finally:
            scalar(self.c, 'RESET %s; SELECT 1' % ('debug_parallel_query' if PG_VERSION >= 160000
                                                  else 'force_parallel_mode'))
        ST.calls['parallel worker ' + fn.split('(')[0]] += 1
        if st == 'ok' and 'is_active' in fn and r[0][0] is not want:
            ST.fail('parallel is_active(%s) = %s, expected %s' % (job, r[0][0], want))
        if st == 'ok' and 'fence' in fn and r[0][0] is not (want and self.token_of(job) is not None):
            ST.fail('parallel fence(%s, %s) = %s' % (job, self.token_of(job), r[0][0]))
        if st == 'ok' and 'par_mark' in fn:
            # a mark that worked is a mark like any other: the session owns
            # the job afterwards (op_owners below checks that)
            tok, who = r[0][0], self.owner_of(job)
            if job is None or who == 'them':
                if tok is not None:
                    ST.fail('parallel mark(%s) owned by %s returned %s' % (job, who, tok))
            elif who == 'me':
                if tok != self.mine[job]:
                    ST.fail('parallel re-mark(%s) returned %s, not %s' % (job, tok, self.mine[job]))
            elif tok is None or tok <= self.last_token:
                ST.fail('parallel first mark(%s) returned %s (last token %s)' % (job, tok, self.last_token))
            else:
                self.mine[job] = tok
                self.last_token = tok
        self.op_owners()

    def run(self, n):
        self.other_marks()
        for i in range(n):
            self.call()
            if i % 500 == 499:
                # the other session lets go of some and takes others
                for job in list(self.theirs):
                    if rng.random() < 0.5:
                        scalar(self.o, 'SELECT finlive_clear(%s)', (job,))
                        del self.theirs[job]
                self.other_marks()
        self.stage_pool()
        scalar(self.o, 'SELECT finlive_clear_all()')
        self.theirs.clear()
        scalar(self.c, 'SELECT finlive_clear_all()')
        self.mine.clear()


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------

def register_calls(conn, fixtures, n):
    """Systematic (one bad argument at a time) plus random combinations,
    over all twelve arguments (the six [1.3] policy arguments included)."""
    roles = ['jobs', 'runs', 'tasks', 'on_reap', 'gate', 'claim_owned'] + POLICY_ROLES
    valid = {'jobs': ('fz.jobs', set()), 'runs': ('fz.runs', set()), 'tasks': ('fz.tasks', set()),
             'on_reap': ('NULL', set()), 'gate': ('NULL', set()), 'claim_owned': ('false', set())}
    valid.update({r: ('NULL', set()) for r in POLICY_ROLES})
    combos = []
    for role in roles:
        for f in fixtures[role]:
            c = dict(valid)
            c[role] = f
            combos.append(c)
    while len(combos) < n:
        c = {r: rng.choice(fixtures[r]) for r in roles[:6]}
        # the policy arguments: mostly valid, one or two odd ones
        c.update({r: rng.choice(fixtures[r]) if rng.random() < 0.3 else valid[r] for r in POLICY_ROLES})
        combos.append(c)
    for c in combos:
        errs = set().union(*(c[r][1] for r in roles))
        tbl = lambda r: c[r][0] if c[r][0].startswith(("'", 'NULL', '0', '4')) else "'%s'" % c[r][0].replace("'", "''")
        args = [tbl('jobs'), tbl('runs'), tbl('tasks'), c['on_reap'][0], c['gate'][0], c['claim_owned'][0]]
        pol = [c[r][0] for r in POLICY_ROLES]
        form = rng.randrange(3)
        if form == 0 and all(c[r][0] == 'NULL' for r in POLICY_ROLES):
            sql = 'SELECT finlive_register(%s, %s, %s, %s, %s, %s)' % tuple(args)
        elif form <= 1:
            sql = 'SELECT finlive_register(%s)' % ', '.join(args + pol)
        else:
            named = ['%s => %s' % kv for kv in zip(roles[:6], args)]
            named += ['%s => %s' % (r, c[r][0]) for r in POLICY_ROLES if c[r][0] != 'NULL' or rng.random() < 0.5]
            rng.shuffle(named)
            sql = 'SELECT finlive_register(%s)' % ', '.join(named)
        st, _ = expect(conn, sql, None, errs or {'ok'})
        if st == 'ok':
            # registered: finlive_targets shows the policy as given, and in
            # effect (NULL: the server setting; the server switches win)
            cnt = scalar(conn, 'SELECT count(*) FROM finlive_targets')
            if cnt != 1:
                ST.fail('%s: %s targets registered after one register' % (sql, cnt))
            same = scalar(conn, """
                SELECT t.finalize_grace IS NOT DISTINCT FROM ({0})::interval
                   AND t.claim_grace IS NOT DISTINCT FROM ({1})::interval
                   AND t.max_running IS NOT DISTINCT FROM ({2})::interval
                   AND coalesce(array_to_string(t.guarded_stages, chr(1), chr(2)), chr(3))
                       = coalesce(array_to_string(({3})::text[], chr(1), chr(2)), chr(3))
                   AND t.enabled IS NOT DISTINCT FROM ({4})::boolean
                   AND t.dry_run IS NOT DISTINCT FROM ({5})::boolean
                   AND t.effective_enabled = (current_setting('finlive.enabled')::boolean
                                              AND coalesce(({4})::boolean, true))
                   AND t.effective_dry_run = (current_setting('finlive.dry_run')::boolean
                                              OR coalesce(({5})::boolean, false))
                   AND (({0}) IS NOT NULL OR t.effective_finalize_grace
                        = current_setting('finlive.finalize_grace')::interval)
                  FROM finlive_targets t""".format(*pol))
            if not same:
                ST.fail('%s: finlive_targets shows %s' % (sql, run(conn, 'SELECT * FROM finlive_targets')[1]))
            # registering again replaces it; unregister removes it
            expect(conn, sql, None, {'ok'}, check_unchanged=False)
            if scalar(conn, 'SELECT count(*) FROM finlive_targets') != 1:
                ST.fail('%s: registering again did not replace' % sql)
            expect(conn, 'SELECT finlive_unregister(%s)' % args[0], None, {'ok'},
                   check_unchanged=False, value_check=lambda r: None if r[0][0] is True else 'unregister: %s' % r)
    # unregister of what is not registered
    for arg, want in [('NULL', None), ("'fz.jobs'", False), ('0::regclass', False),
                      ('4000000000::regclass', False), ("'fz.nope'", '42P01'), ("'pg_class'", False)]:
        if want == '42P01':
            expect(conn, 'SELECT finlive_unregister(%s)' % arg, None, {'42P01'})
        else:
            expect(conn, 'SELECT finlive_unregister(%s)' % arg, None, {'ok'},
                   value_check=lambda r, w=want: None if r[0][0] is w else 'unregister returned %s, not %s'
                   % (r[0][0], w))
    # temporary tables can never be seen by the worker
    scalar(conn, 'CREATE TEMP TABLE tjobs (LIKE fz.jobs); SELECT 1')
    expect(conn, "SELECT finlive_register('tjobs', 'fz.runs')", None, {'42809'})
    scalar(conn, 'DROP TABLE tjobs; SELECT 1')


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

SETTINGS_CASES = [
    ('finlive.finalize_grace', ['-1', "'abc'", '2147483648', "'10 parsecs'"], '22023'),
    ('finlive.max_running', ['-5', "''", "'1e100'"], '22023'),
    ('finlive.claim_grace', ['-1', "'x'"], '22023'),
    ('finlive.restart_grace', ['-1', "'forever'"], '22023'),
    ('finlive.enabled', ["'maybe'", '2', "''"], '22023'),
    ('finlive.dry_run', ["'perhaps'", "'-1'"], '22023'),
    ('finlive.guarded_stages', ["'\"unterminated'", "'a,,b'"], '22023'),
    ('finlive.hook_timeout', ['-1', "'abc'", '2147483648', "'1 parsec'", "'-5ms'"], '22023'),
    ('finlive.naptime', ['100', '5'], '55P02'),
    ('finlive.reaper', ['off'], '55P02'),
    ('finlive.log_retention', ['10'], '55P02'),
    ('finlive.database', ["'x'"], '55P02'),
    ('finlive.max_owners', ['5'], '55P02'),
    ('finlive.no_such_setting', ['1'], {'42602', '42704'}),
]

GOOD_SETTINGS = [('finlive.guarded_stages', ["'*'", "''", "'a, b ,c'", "'\"x,y\"'", "'" + 'z' * 5000 + "'"]),
                 ('finlive.finalize_grace', ['0', '2147483647', "'1h'"]),
                 ('finlive.hook_timeout', ['0', '1', "'2s'", '2147483647', 'DEFAULT']),
                 ('finlive.enabled', ['off', 'on']), ('finlive.dry_run', ['on', 'off'])]


def settings_calls(conn):
    for name, values, state in SETTINGS_CASES:
        for v in values:
            allowed = state if isinstance(state, set) else {state}
            expect(conn, 'SET %s = %s' % (name, v), None, allowed)
    for name, values in GOOD_SETTINGS:
        for v in values:
            expect(conn, 'SET %s = %s' % (name, v), None, {'ok'})
    scalar(conn, 'RESET ALL; SELECT 1')


# ---------------------------------------------------------------------------
# [1.3] finlive_explain, and [1.2] finlive_reap_once refused to an owner
# ---------------------------------------------------------------------------

# What a tick must leave as it was in the session that runs it: settings,
# role, and locks (advisory ones included; the pg_locks view's own lock and
# the virtual xid are this query's).
SESSION_STATE = """
SELECT concat_ws(' | ', current_user, session_user, current_setting('search_path'),
       current_setting('work_mem'), current_setting('statement_timeout'), current_setting('lock_timeout'),
       current_setting('application_name'), current_setting('DateStyle'), current_setting('finlive.hook_timeout'),
       (SELECT string_agg(locktype || ':' || mode || ':' || coalesce(objid::text, relation::text, ''), ',')
          FROM pg_locks WHERE pid = pg_backend_pid() AND locktype <> 'virtualxid'
           AND NOT (locktype = 'relation' AND relation = 'pg_catalog.pg_locks'::regclass)),
       (SELECT count(*) FROM public.finlive_owners WHERE pid = pg_backend_pid()))
"""


def session_state(conn):
    return scalar(conn, SESSION_STATE)


def explain_check(rows, registered, job=None, want_action=None):
    e = rows[0][0]
    if e is None:
        return 'NULL for non-NULL arguments'
    if set(e) != EXPLAIN_KEYS:
        return 'keys %s' % sorted(e)
    if e['action'] not in EXPLAIN_ACTIONS:
        return 'action %r' % e['action']
    if not isinstance(e['reason'], str) or not e['reason']:
        return 'no reason'
    if registered is False and (e['action'] != 'none' or e['policy'] is not None):
        return 'an unregistered table: action %r, policy %r' % (e['action'], e['policy'])
    if registered is True and not isinstance(e['policy'], dict):
        return 'a registered target without its policy'
    if want_action is not None and e['action'] != want_action:
        return 'action %r (%s), expected %r' % (e['action'], e['reason'], want_action)
    return None


def explain_calls(conn, other, fixtures, n):
    """finlive_explain over odd regclasses and job ids: the right SQLSTATE
    or a well-formed answer, and never a change or a wait."""
    scalar(conn, "SELECT finlive_register('fz.jobs', 'fz.runs', 'fz.tasks'); SELECT 1")
    rels = []
    for name, _ in fixtures['jobs']:
        expr = name if name.startswith(("'", 'NULL', '0', '4')) else "'%s'" % name.replace("'", "''")
        rels.append((expr, name, name == 'fz.jobs'))
    jobs = BIGINTS + [1, 2, 3, 4]
    calls = [(r, j) for r in rels for j in jobs]
    calls += [(rng.choice(rels), rng.choice(jobs)) for _ in range(max(0, n - len(calls)))]
    # fz.jobs: job 1 and 2 are past max_running (Tier-2 finalizes 1, Tier-3
    # requeues 2), job 3's run ended a day ago with exit code 0, 4 is none
    wants = {1: 'done', 2: 'queued', 3: 'done', 4: 'none'}
    for (expr, name, registered), job in calls:
        before = fingerprint(conn)
        if name == "'fz.does_not_exist'::regclass":
            allowed = {'42P01'}         # the regclass literal itself
        elif job is None or name == 'NULL::regclass':
            allowed = {'ok'}            # NULL in, NULL out
        elif name in ('0::regclass', '4000000000::regclass'):
            allowed = {'42P01'}
        else:
            allowed = {'ok'}
        null = job is None or name == 'NULL::regclass'
        check = (lambda r: None if r[0][0] is None else 'NULL arguments gave %s' % r[0][0]) if null else \
            (lambda r, reg=registered, j=job: explain_check(r, reg, j, wants.get(j) if reg else None))
        expect(conn, 'SELECT finlive_explain(%s, (%%s)::bigint)' % expr, (job,), allowed,
               check_unchanged=False, value_check=check)
        if fingerprint(conn) != before:
            ST.fail('finlive_explain(%s, %s) changed state' % (expr, job))
    # an owned job in a guarded stage: deferred, with its owner; past
    # max_running, Tier-3 requeues it whatever its ownership
    opid = scalar(other, 'SELECT pg_backend_pid()')
    for job, want in ((3, 'deferred'), (1, 'queued')):
        scalar(other, 'SELECT finlive_mark(%s, 7, %s)', (job, 'deploy-staging'))
        expect(conn, 'SELECT finlive_explain(%s, %s)', ('fz.jobs', job), {'ok'}, check_unchanged=False,
               value_check=lambda r, j=job, w=want: explain_check(r, True, j, w) or
               (None if (r[0][0]['owner'] or {}).get('pid') == opid else 'owner %s, expected pid %s'
                % (r[0][0]['owner'], opid)))
        scalar(other, 'SELECT finlive_clear(%s)', (job,))
    # a row another transaction holds: answered at once, without waiting
    scalar(other, 'BEGIN; SELECT 1 FROM fz.jobs WHERE id = 1 FOR UPDATE')
    scalar(conn, "SET statement_timeout = '3s'; SELECT 1")
    expect(conn, 'SELECT finlive_explain(%s, 1)', ('fz.jobs',), {'ok'}, check_unchanged=False,
           value_check=lambda r: explain_check(r, True, 1, 'skipped'))
    scalar(conn, 'RESET statement_timeout; SELECT 1')
    run(other, 'ROLLBACK')
    # a role that may not read the jobs table: 42501; a table it may read: fine
    scalar(conn, "DROP ROLE IF EXISTS fz_noread; CREATE ROLE fz_noread; GRANT USAGE ON SCHEMA fz TO fz_noread;"
                 " GRANT SELECT ON fz.runs TO fz_noread; SET ROLE fz_noread; SELECT 1")
    try:
        expect(conn, "SELECT finlive_explain('fz.jobs', 1)", None, {'42501'}, check_unchanged=False)
        expect(conn, "SELECT finlive_explain('fz.runs', 1)", None, {'ok'}, check_unchanged=False,
               value_check=lambda r: explain_check(r, False))
        expect(conn, "SELECT count(*) FROM finlive_reap_errors", None, {'ok'}, check_unchanged=False)
    finally:
        scalar(conn, 'RESET ROLE; SELECT 1')
    # a target whose table is gone
    scalar(conn, "CREATE TABLE fz.gone (LIKE fz.jobs); SELECT finlive_register('fz.gone', 'fz.runs', 'fz.tasks');"
                 " SELECT 1")
    oid = scalar(conn, "SELECT 'fz.gone'::regclass::oid")
    scalar(conn, 'DROP TABLE fz.gone; SELECT 1')
    expect(conn, 'SELECT finlive_explain(%s::oid::regclass, 1)', (oid,), {'42P01'}, check_unchanged=False)
    scalar(conn, 'SELECT count(finlive_unregister(jobs)) FROM finlive_targets')


def reap_once_refused(conn, other):
    """A session that owns a job, or holds an advisory lock, may not tick
    (55000), and the refusal changes nothing; once it owns nothing it may."""
    scalar(conn, 'SELECT count(finlive_unregister(jobs)) FROM finlive_targets')
    cases = [('SELECT finlive_mark(77)', 'SELECT finlive_clear(77)'),
             ("SELECT finlive_mark(78, 1, 'deploy-staging')", 'SELECT finlive_clear_all()'),
             ('SELECT pg_advisory_lock(1)', 'SELECT pg_advisory_unlock(1)'),
             ('SELECT pg_advisory_lock(1, 2)', 'SELECT pg_advisory_unlock_all()'),
             ('SELECT pg_advisory_lock_shared(3)', 'DISCARD ALL'),
             ("BEGIN; SELECT finlive_mark(79); SELECT 1/0", 'SELECT finlive_clear(79)')]
    for take, release in cases:
        run(conn, take)
        run(conn, 'ROLLBACK')
        expect(conn, 'SELECT * FROM finlive_reap_once()', None, {'55000'})
        ST.calls['finlive_reap_once (refused)'] += 1
        run(conn, release)
        expect(conn, 'SELECT * FROM finlive_reap_once()', None, {'ok'}, check_unchanged=False)
    # a transaction-level advisory lock, within the transaction
    scalar(conn, 'BEGIN; SELECT pg_advisory_xact_lock(5)')
    st, r = run(conn, 'SELECT * FROM finlive_reap_once()')
    ST.outcomes[st] += 1
    ST.calls['finlive_reap_once (xact lock)'] += 1
    if st != '55000':
        ST.fail('finlive_reap_once() holding pg_advisory_xact_lock: %s %s (expected 55000)' % (st, r))
    run(conn, 'ROLLBACK')
    # another session's ownership is no reason to refuse
    scalar(other, 'SELECT finlive_mark(80)')
    expect(conn, 'SELECT * FROM finlive_reap_once()', None, {'ok'}, check_unchanged=False)
    scalar(other, 'SELECT finlive_clear_all()')


# ---------------------------------------------------------------------------
# The reaper: targets that change between finlive_register and the tick
# ---------------------------------------------------------------------------

JOB_MATRIX = """
INSERT INTO {s}.tasks VALUES (1, 'deploy-staging'), (2, 'build');
INSERT INTO {s}.runs (id, finished_at, exit_code)
SELECT g, CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN now() - interval '1 day'
                     WHEN 2 THEN now() + interval '1 day' ELSE now() - interval '1 minute' END,
          CASE g % 3 WHEN 0 THEN NULL WHEN 1 THEN 0 ELSE 1 END
  FROM generate_series(1, 48) g;
INSERT INTO {s}.jobs (id, status, run_id, task_id, attempts, max_attempts, started_at)
SELECT g, CASE WHEN g % 11 = 0 THEN 'done' ELSE 'running' END,
       CASE WHEN g % 13 = 0 THEN 9999 ELSE g END,
       CASE g % 3 WHEN 0 THEN NULL WHEN 1 THEN 1 ELSE 2 END,
       CASE g % 5 WHEN 0 THEN NULL WHEN 1 THEN -1 WHEN 2 THEN 2147483647 ELSE 0 END,
       CASE g % 7 WHEN 0 THEN NULL WHEN 1 THEN -3 WHEN 2 THEN 0 WHEN 3 THEN 2147483647 ELSE 3 END,
       CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN now() + interval '1 day'
                  ELSE now() - interval '3 days' END
  FROM generate_series(1, 48) g;
"""


def make_target(conn, s, on_reap='NULL', gate='NULL', claim='true', runs_pk=True, extra=''):
    scalar(conn, """
        CREATE SCHEMA {s};
        CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text);
        CREATE TABLE {s}.runs (id bigint {pk}, finished_at timestamptz, exit_code integer);
        CREATE TABLE {s}.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
            task_id bigint, attempts integer, max_attempts integer, started_at timestamptz);
        CREATE INDEX ON {s}.jobs (id) WHERE status = 'running';
        {jm}
        {extra}
        SELECT finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks', {on_reap}, {gate}, {claim});
        SELECT 1""".format(s=s, pk='PRIMARY KEY' if runs_pk else '', jm=JOB_MATRIX.format(s=s),
                           extra=extra, on_reap=on_reap, gate=gate, claim=claim))


SCENARIOS = [
    # name, setup before register (extra SQL), hooks, alteration after register
    ('baseline', {}, ''),
    ('drop column status', {}, 'ALTER TABLE {s}.jobs DROP COLUMN status'),
    ('status becomes integer', {}, "DROP INDEX {s}.jobs_id_idx; ALTER TABLE {s}.jobs ALTER status TYPE integer USING (CASE WHEN status = 'running' THEN 1 ELSE 0 END)"),
    ('status becomes an enum', {'extra': "CREATE TYPE {s}.st AS ENUM ('running', 'done');"},
     'DROP INDEX {s}.jobs_id_idx; ALTER TABLE {s}.jobs ALTER status TYPE {s}.st USING status::{s}.st'),
    ('status column renamed', {}, 'ALTER TABLE {s}.jobs RENAME status TO state'),
    ('runs table dropped', {}, 'DROP TABLE {s}.runs'),
    ('tasks table dropped', {}, 'DROP TABLE {s}.tasks'),
    ('jobs table renamed', {}, 'ALTER TABLE {s}.jobs RENAME TO "renamed jobs"'),
    ('jobs table moved to another schema', {}, 'CREATE SCHEMA {s}_b; ALTER TABLE {s}.jobs SET SCHEMA {s}_b'),
    ('on_reap dropped', {'on_reap': 'hook'}, 'DROP FUNCTION {s}.hook(bigint, integer, text)'),
    ('on_reap always raises', {'on_reap': 'hook', 'errors': 'P0001'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hook down'; END $$"),
    ('gate always raises', {'gate': 'gate', 'errors': 'P0001'},
     "CREATE OR REPLACE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'gate down'; END $$"),
    ('gate returns NULL', {'gate': 'gate'},
     'CREATE OR REPLACE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT NULL::boolean $$'),
    ('gate dropped', {'gate': 'gate'}, 'DROP FUNCTION {s}.gate(bigint)'),
    ('exit_code becomes numeric', {}, 'ALTER TABLE {s}.runs ALTER exit_code TYPE numeric'),
    ('exit_code becomes bigint', {}, 'ALTER TABLE {s}.runs ALTER exit_code TYPE bigint'),
    ('exit_code becomes text', {}, 'ALTER TABLE {s}.runs ALTER exit_code TYPE text'),
    ('attempts becomes numeric', {}, 'ALTER TABLE {s}.jobs ALTER attempts TYPE numeric'),
    ('max_attempts becomes text', {}, 'ALTER TABLE {s}.jobs ALTER max_attempts TYPE text'),
    ('started_at becomes timestamp', {}, 'ALTER TABLE {s}.jobs ALTER started_at TYPE timestamp'),
    ('started_at becomes date', {}, 'ALTER TABLE {s}.jobs ALTER started_at TYPE date'),
    ('finished_at becomes text', {}, 'ALTER TABLE {s}.runs ALTER finished_at TYPE text'),
    ('finished_at becomes date', {}, 'ALTER TABLE {s}.runs ALTER finished_at TYPE date'),
    ('id becomes numeric', {}, 'ALTER TABLE {s}.jobs ALTER id TYPE numeric'),
    ('stage becomes integer', {}, 'ALTER TABLE {s}.tasks ALTER stage TYPE integer USING length(stage)'),
    ('status CHECK refuses queued', {}, "ALTER TABLE {s}.jobs ADD CHECK (status <> 'queued' AND status <> 'failed') NOT VALID"),
    ('status varchar(4)', {}, "ALTER TABLE {s}.jobs ALTER status TYPE varchar(7)"),
    ('trigger raises on update', {},
     "CREATE FUNCTION {s}.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;"
     " CREATE TRIGGER t BEFORE UPDATE ON {s}.jobs FOR EACH ROW EXECUTE FUNCTION {s}.trg()"),
    ('trigger deletes the row being updated', {},
     "CREATE FUNCTION {s}.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM {s}.jobs WHERE id = NEW.id; RETURN NEW; END $$;"
     " CREATE TRIGGER t BEFORE UPDATE ON {s}.jobs FOR EACH ROW EXECUTE FUNCTION {s}.trg()"),
    ('trigger skips the update', {},
     "CREATE FUNCTION {s}.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
     " CREATE TRIGGER t BEFORE UPDATE ON {s}.jobs FOR EACH ROW EXECUTE FUNCTION {s}.trg()"),
    ('registrant loses UPDATE', {'role': True}, 'REVOKE UPDATE ON {s}.jobs FROM {s}_r'),
    ('registrant loses SELECT on runs', {'role': True}, 'REVOKE SELECT ON {s}.runs FROM {s}_r'),
    ('registrant loses EXECUTE on its hook', {'role': True, 'on_reap': 'hook'},
     'REVOKE EXECUTE ON FUNCTION {s}.hook(bigint, integer, text) FROM {s}_r, PUBLIC'),
    ('runs.id not unique (two runs per job)', {'runs_pk': False},
     'INSERT INTO {s}.runs SELECT * FROM {s}.runs'),
    ('tasks.id not unique', {},
     'ALTER TABLE {s}.tasks DROP CONSTRAINT tasks_pkey; INSERT INTO {s}.tasks SELECT * FROM {s}.tasks'),
    ('hook unregisters its own target', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT public.finlive_unregister('{s}.jobs') $$"),
    ('hook drops the next target', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE IF EXISTS {s}_next.jobs; END $$;"
     " CREATE SCHEMA {s}_next; CREATE TABLE {s}_next.jobs (LIKE {s}.jobs INCLUDING ALL);"
     " INSERT INTO {s}_next.jobs SELECT * FROM {s}.jobs;"
     " SELECT finlive_register('{s}_next.jobs', '{s}.runs', '{s}.tasks')"),
    ('hook drops its own runs table', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE {s}.runs; END $$"),
    ('hook ticks the reaper again (recursion)', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT count(*) FROM public.finlive_reap_once() $$"),
    ('gate updates the job itself', {'gate': 'gate'},
     "CREATE OR REPLACE FUNCTION {s}.gate(j bigint) RETURNS boolean LANGUAGE sql AS $$ UPDATE {s}.jobs SET status = 'done' WHERE id = j RETURNING false $$"),
    ('hook sets role / session authorization', {'on_reap': 'hook', 'role': True},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET ROLE postgres; END $$"),
    ('registrant role dropped', {'role': True},
     'SELECT 1'),  # the role is dropped below, after its objects are reassigned
    ('partitioned jobs table', {'partitioned': True}, ''),
    # [1.2] nothing a hook does outlives it in the session that ticks
    ('hook changes settings (SET, set_config, SET LOCAL)', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
     " SET search_path = pg_temp; PERFORM set_config('work_mem', '1MB', false); SET LOCAL statement_timeout = '1h';"
     " SET DateStyle = 'German'; PERFORM set_config('application_name', 'hooked', false);"
     " SET finlive.hook_timeout = 1; END $$"),
    ('gate changes settings', {'gate': 'gate'},
     "CREATE OR REPLACE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN"
     " SET lock_timeout = '1ms'; PERFORM set_config('search_path', 'pg_catalog', false); RETURN true; END $$"),
    ('hook takes advisory locks', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(j bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
     " PERFORM pg_advisory_lock(j); PERFORM pg_advisory_lock_shared(1, 2); PERFORM pg_advisory_xact_lock(3); END $$"),
    ('hook releases every advisory lock', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS"
     " $$ SELECT pg_advisory_unlock_all() $$"),
    ('hook takes finlive ownership of the job it reaps', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(j bigint, integer, text) RETURNS void LANGUAGE sql AS"
     " $$ SELECT public.finlive_mark(j, NULL, 'deploy-staging') $$"),
    ('hook runs longer than finlive.hook_timeout', {'on_reap': 'hook', 'hook_timeout': 100, 'errors': '57014'},
     "CREATE OR REPLACE FUNCTION {s}.hook(j bigint, integer, text) RETURNS void LANGUAGE sql AS"
     " $$ SELECT pg_sleep(CASE WHEN j % 12 = 1 THEN 0.5 ELSE 0 END) $$"),
    ('statement_timeout ends the caller\'s tick', {'on_reap': 'hook', 'stmt_timeout': 150},
     "CREATE OR REPLACE FUNCTION {s}.hook(j bigint, integer, text) RETURNS void LANGUAGE sql AS"
     " $$ SELECT pg_sleep(CASE WHEN j % 12 = 1 THEN 0.5 ELSE 0 END) $$"),
    ('hook re-registers its target with another policy', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS"
     " $$ SELECT public.finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks', '{s}.hook(bigint,integer,text)',"
     " NULL, true, '0', '0', '1 s', '{{*}}', false, true) $$"),
    ('gate unregisters its target', {'gate': 'gate'},
     "CREATE OR REPLACE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE sql AS"
     " $$ SELECT public.finlive_unregister('{s}.jobs') $$"),
]


def reaper_scenarios(dbname):
    """Each scenario: a fresh target with odd job rows, an alteration, then
    finlive_reap_once (and the worker, ticking every 20 ms) on it."""
    conn = connect(dbname)
    other = connect(dbname, app='fuzz-other')
    scalar(conn, 'CREATE EXTENSION IF NOT EXISTS finlive; SELECT 1')
    results = collections.Counter()
    for i, (name, opt, alter) in enumerate(SCENARIOS):
        s = 'sc%d' % i
        scalar(conn, 'SELECT finlive_stats_reset()')
        # the worker waits while the target is built and altered, so that the
        # alteration really comes between finlive_register and the tick
        scalar(conn, 'ALTER SYSTEM SET finlive.reaper = off')
        scalar(conn, 'SELECT pg_reload_conf()')
        time.sleep(0.3)
        extra = opt.get('extra', '').format(s=s)
        on_reap = gate = 'NULL'
        if opt.get('on_reap'):
            extra += (" CREATE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;"
                      .format(s=s))
            on_reap = "'{s}.hook(bigint,integer,text)'".format(s=s)
        if opt.get('gate'):
            extra += (" CREATE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;"
                      .format(s=s))
            gate = "'{s}.gate(bigint)'".format(s=s)
        if opt.get('role'):
            scalar(conn, ('CREATE ROLE {s}_r; GRANT USAGE ON SCHEMA public TO {s}_r;'
                          ' GRANT EXECUTE ON FUNCTION {sig} TO {s}_r; SELECT 1').format(s=s, sig=REGISTER_SIG))
        if opt.get('partitioned'):
            scalar(conn, """
                CREATE SCHEMA {s}; CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text);
                CREATE TABLE {s}.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
                CREATE TABLE {s}.jobs (id bigint, status text NOT NULL, run_id bigint, task_id bigint,
                    attempts integer, max_attempts integer, started_at timestamptz) PARTITION BY RANGE (id);
                CREATE TABLE {s}.jobs_1 PARTITION OF {s}.jobs FOR VALUES FROM (0) TO (25);
                CREATE TABLE {s}.jobs_2 PARTITION OF {s}.jobs FOR VALUES FROM (25) TO (1000);
                {jm}
                SELECT finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks', NULL, NULL, true);
                SELECT 1""".format(s=s, jm=JOB_MATRIX.format(s=s)))
        elif opt.get('role'):
            # registered by a non-superuser role that owns the tables, with
            # its own schema as the search_path (captured for the hooks)
            scalar(conn, 'CREATE SCHEMA {s} AUTHORIZATION {s}_r; SELECT 1'.format(s=s))
            scalar(conn, 'SET ROLE {s}_r; SET search_path = {s}; SELECT 1'.format(s=s))
            try:
                scalar(conn, """
                    CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text);
                    CREATE TABLE {s}.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
                    CREATE TABLE {s}.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
                        task_id bigint, attempts integer, max_attempts integer, started_at timestamptz);
                    {jm} {extra}
                    SELECT public.finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks', {on_reap}, {gate}, true);
                    SELECT 1""".format(s=s, jm=JOB_MATRIX.format(s=s), extra=extra, on_reap=on_reap, gate=gate))
            finally:
                scalar(conn, 'RESET ROLE; RESET search_path; SELECT 1')
        else:
            make_target(conn, s, on_reap=on_reap, gate=gate, runs_pk=opt.get('runs_pk', True), extra=extra)
        jobs_oid = scalar(conn, "SELECT to_regclass(%s)::oid", (s + '.jobs',))
        if alter:
            st, r = run(conn, alter.format(s=s))
            if st != 'ok':
                ST.fail('scenario %r: alteration failed: %s %s' % (name, st, r))
        if name == 'registrant role dropped':
            scalar(conn, 'REASSIGN OWNED BY {s}_r TO postgres; DROP OWNED BY {s}_r; DROP ROLE {s}_r; SELECT 1'.format(s=s))
        before = scalar(conn, "SELECT coalesce(max(at), '-infinity') FROM finlive_reap_log")
        scalar(conn, 'ALTER SYSTEM RESET finlive.reaper')
        scalar(conn, 'SELECT pg_reload_conf()')
        # two concurrent ticks: this session and another one, plus the worker
        out = {}
        if opt.get('hook_timeout'):
            for c in (conn, other):
                scalar(c, 'SET finlive.hook_timeout = %d; SELECT 1' % opt['hook_timeout'])
        if opt.get('stmt_timeout'):
            scalar(conn, 'SET statement_timeout = %d; SELECT 1' % opt['stmt_timeout'])

        def tick(c, key):
            before_state = session_state(c)
            out[key] = run(c, 'SELECT * FROM finlive_reap_once()')
            after_state = session_state(c)
            if after_state != before_state:
                ST.fail('scenario %r: the ticking session changed: %s -> %s' % (name, before_state, after_state))
                results['session changed'] += 1
        th = threading.Thread(target=tick, args=(other, 'other'))
        th.start()
        tick(conn, 'me')
        th.join()
        for c in (conn, other):
            scalar(c, 'RESET finlive.hook_timeout; RESET statement_timeout; SELECT 1')
        ST.calls['finlive_reap_once'] += 2
        for key, (st, r) in out.items():
            ST.outcomes[st] += 1
            if st == '57014' and key == 'me' and opt.get('stmt_timeout'):
                continue        # the caller's own statement_timeout ends its tick
            if st != 'ok':
                ST.fail('scenario %r: finlive_reap_once raised %s %s' % (name, st, (r or '')[:300]))
        # invariants on what the ticks did
        dup = scalar(conn, "SELECT count(*) FROM (SELECT 1 FROM finlive_reap_log WHERE NOT dry_run AND at > %s"
                           " AND target = %s::oid::regclass GROUP BY job_id HAVING count(*) > 1) x",
                     (before, jobs_oid))
        if dup:
            ST.fail('scenario %r: %d jobs reaped more than once in one scenario' % (name, dup))
            results['double reap'] += 1
        # a logged reap must have changed the job: it is no longer running
        jobs_name = scalar(conn, "SELECT c.oid::regclass::text FROM pg_class c WHERE c.oid = %s", (jobs_oid,))
        if jobs_name:
            st, r = run(conn, "SELECT count(*) FROM finlive_reap_log l JOIN %s j ON j.id = l.job_id"
                              " WHERE NOT l.dry_run AND l.at > %%s AND l.target = %%s::oid::regclass"
                              " AND j.status::text = 'running'" % jobs_name, (before, jobs_oid))
            ghost = r[0][0] if st == 'ok' else 0
            if ghost:
                ST.fail('scenario %r: %d reaps logged (on_reap called, NOTIFY sent) for jobs the update'
                        ' left running' % (name, ghost))
                results['ghost reap'] += 1
        # finlive_explain answers for every job of the target, whatever state it is in
        if jobs_name:
            st, r = run(conn, 'SELECT g, finlive_explain(%s::oid::regclass, g) FROM generate_series(0, 49) g',
                        (jobs_oid,))
            ST.calls['finlive_explain'] += 50
            ST.outcomes[st] += 1
            if st != 'ok':
                ST.fail('scenario %r: finlive_explain raised %s %s' % (name, st, (r or '').splitlines()[0]))
            else:
                for g, e in r:
                    err = explain_check([(e,)], None)
                    if err:
                        ST.fail('scenario %r: finlive_explain(job %s): %s' % (name, g, err))
                        break
        # [1.2] a reap that keeps failing shows in finlive_reap_errors, to the
        # roles that may read the jobs table, until the job stops running
        if opt.get('errors'):
            r = run(conn, "SELECT count(*), coalesce(array_agg(DISTINCT sqlstate), '{}'), min(failures),"
                          " bool_and(message <> '' AND last_failed_at >= first_failed_at)"
                          " FROM finlive_reap_errors WHERE target = %s::oid::regclass", (jobs_oid,))[1][0]
            ST.calls['finlive_reap_errors'] += 1
            if r[0] == 0 or r[1] != [opt['errors']] or r[2] < 1 or not r[3]:
                ST.fail('scenario %r: finlive_reap_errors shows %s (expected rows with SQLSTATE %s)'
                        % (name, r, opt['errors']))
            hidden = scalar(conn, "SET ROLE fz_noread; SELECT count(*) FROM finlive_reap_errors"
                                  " WHERE target = %s::oid::regclass", (jobs_oid,))
            scalar(conn, 'RESET ROLE; SELECT 1')
            if hidden:
                ST.fail('scenario %r: a role that may not read the jobs table sees %d finlive_reap_errors rows'
                        % (name, hidden))
            scalar(conn, "UPDATE %s SET status = 'done' WHERE status = 'running'; SELECT 1" % jobs_name)
            run(conn, 'SELECT * FROM finlive_reap_once()')
            left = scalar(conn, 'SELECT count(*) FROM finlive_reap_errors WHERE target = %s::oid::regclass',
                          (jobs_oid,))
            if left:
                ST.fail('scenario %r: %d finlive_reap_errors rows left after no job runs any more' % (name, left))
        # the diagnostics keep working whatever state the target is in
        for sql in ['SELECT * FROM finlive_target_problems()', 'SELECT * FROM finlive_running_jobs',
                    'SELECT * FROM finlive_audit()', 'SELECT * FROM finlive_targets',
                    'SELECT * FROM finlive_reap_errors']:
            st, r = run(conn, sql)
            ST.calls[fn_name(sql)] += 1
            ST.outcomes[st] += 1
            if st != 'ok':
                ST.fail('scenario %r: %s raised %s %s' % (name, sql, st, (r or '').splitlines()[0]))
        # let the worker forget this scenario's targets
        scalar(conn, 'SELECT count(finlive_unregister(jobs)) FROM finlive_targets')
        if name.startswith('exit_code becomes') or name == 'baseline':
            # jobs of this matrix whose run ended with exit code 0 must be done, never requeued
            bad = scalar(conn, """
                SELECT count(*) FROM finlive_reap_log l
                 WHERE NOT dry_run AND at > %s AND tier = 2 AND new_status <> 'done'
                   AND target::text = %s AND job_id %% 3 = 1""", (before, s + '.jobs'))
            if bad:
                ST.fail('scenario %r: %d Tier-2 reaps of jobs whose exit code is 0 were not "done"' % (name, bad))
                results['wrong decision'] += 1
        results['ok'] += 1
    conn.close()
    other.close()
    return results


def concurrent_unregister(dbname):
    """Another session unregisters, re-registers and drops a target while
    slow ticks run on it."""
    conn = connect(dbname)
    other = connect(dbname, app='fuzz-other')
    s = 'conc'
    make_target(conn, s, on_reap="'conc.hook(bigint,integer,text)'", extra=(
        "CREATE FUNCTION conc.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(0.01) $$;"))
    errors = []

    def ticker():
        for _ in range(20):
            st, r = run(conn, 'SELECT count(*) FROM finlive_reap_once()')
            ST.calls['finlive_reap_once'] += 1
            if st != 'ok':
                errors.append((st, r))
            run(conn, "UPDATE conc.jobs SET status = 'running' WHERE id % 11 <> 0")
    th = threading.Thread(target=ticker)
    th.start()
    for k in range(40):
        run(other, "SELECT finlive_unregister('conc.jobs')")
        run(other, "SELECT finlive_register('conc.jobs', 'conc.runs', 'conc.tasks', 'conc.hook(bigint,integer,text)',"
                   " NULL, true, %s::interval, %s::interval, %s::interval, %s::text[], %s, %s)",
            (rng.choice([None, '0', '1 hour']), rng.choice([None, '0', '1 day']), rng.choice([None, '1 s', '1 day']),
             rng.choice([None, [], ['*']]), rng.choice([None, True, False]), rng.choice([None, True, False])))
        ST.calls['finlive_unregister'] += 1
        ST.calls['finlive_register'] += 1
        time.sleep(0.01)
    th.join()
    st, r = run(other, 'DROP TABLE conc.jobs')
    for e in errors:
        ST.fail('concurrent unregister: finlive_reap_once raised %s %s' % e)
    conn.close()
    other.close()


# ---------------------------------------------------------------------------
# [1.3] Policies: every decision follows the target's effective policy
# ---------------------------------------------------------------------------

HUGE = 9223372036854.775807      # s: a policy interval too long for microseconds saturates here
POLICY_CHOICES = dict(
    finalize_grace=[None, '0', '30 s', '2 hours', '2 days', '178000000 years'],
    claim_grace=[None, '0', '1 hour', '5 days', '178000000 years'],
    max_running=[None, '1 hour', '1 day', '4 days', '178000000 years'],
    guarded_stages=[None, [], ['*'], ['build'], ['deploy-staging', 'nope']],
    enabled=[None, True, True, False],
    dry_run=[None, False, False, True],
)

POLICY_MATRIX = """
INSERT INTO {s}.tasks VALUES (1, 'deploy-staging'), (2, 'build');
INSERT INTO {s}.runs (id, finished_at, exit_code)
SELECT g, CASE WHEN g % 9 = 0 THEN 'infinity' WHEN g % 5 = 1 THEN NULL WHEN g % 5 = 2 THEN now() - interval '1 minute'
               WHEN g % 5 = 3 THEN now() - interval '3 days' ELSE '-infinity' END,
          CASE WHEN g % 9 = 0 THEN 0 WHEN g % 5 = 1 THEN NULL WHEN g % 5 = 3 THEN 1 ELSE 0 END
  FROM generate_series(1, 70) g WHERE g % 5 <> 0;
INSERT INTO {s}.jobs (id, status, run_id, task_id, attempts, max_attempts, started_at)
SELECT g, 'running', CASE WHEN g % 5 <> 0 THEN g END, CASE g % 3 WHEN 0 THEN NULL WHEN 1 THEN 1 ELSE 2 END,
       CASE WHEN g % 10 = 7 THEN 3 ELSE 0 END, 3,
       (ARRAY[NULL, now(), now() - interval '2 hours', now() - interval '2 days', now() - interval '10 days',
              '-infinity', 'infinity']::timestamptz[])[g % 7 + 1]
  FROM generate_series(1, 70) g;
"""

# The tier each job must get, in the contract's order, computed from the
# job's data at time "at" (a log row's, or now) and the effective policy.
POLICY_EXPECT = """
WITH j AS (
  SELECT j.id, tk.stage, r.exit_code, r.finished_at, j.attempts, j.max_attempts,
         CASE WHEN j.started_at = '-infinity' THEN 'Infinity'::float8
              WHEN j.started_at IS NULL OR j.started_at = 'infinity' THEN '-Infinity'::float8
              ELSE extract(epoch FROM {at} - j.started_at)::float8 END AS age,
         CASE WHEN r.finished_at = '-infinity' THEN 'Infinity'::float8
              WHEN r.finished_at IS NULL OR r.finished_at = 'infinity' THEN '-Infinity'::float8
              ELSE extract(epoch FROM {at} - r.finished_at)::float8 END AS fage,
         j.id = ANY (%(owned)s) AS owned {cols}
    FROM {s}.jobs j LEFT JOIN {s}.runs r ON r.id = j.run_id LEFT JOIN {s}.tasks tk ON tk.id = j.task_id {join}),
d AS (
  SELECT j.*, %(enabled)s AND j.owned AND (%(all)s OR coalesce(j.stage = ANY (%(stages)s), false)) AS guarded
    FROM j),
e AS (
  SELECT d.*, CASE WHEN exit_code IS NOT NULL AND finished_at IS NOT NULL AND fage >= %(fg)s AND NOT guarded THEN 2
                   WHEN %(claim)s AND %(enabled)s AND exit_code IS NULL AND age >= %(cg)s AND NOT owned THEN 1
                   WHEN age >= %(mr)s THEN 3 END AS want
    FROM d)
SELECT * FROM e
"""


def policy_scenarios(dbname, n):
    """Targets with random policies (NULL, zero, huge, kill-switch and dry
    run per target) over jobs with every odd timestamp, some owned: each
    reap is the tier the effective policy says, with the right status and
    dry-run flag; a tick leaves no job that should have been reaped;
    finlive_explain agrees; a second tick reaps nothing more."""
    conn = connect(dbname)
    other = connect(dbname, app='fuzz-owner')
    # the worker pauses: each check below is about one finlive_reap_once
    scalar(conn, 'ALTER SYSTEM SET finlive.reaper = off')
    scalar(conn, 'SELECT pg_reload_conf()')
    time.sleep(0.3)
    server = scalar(conn, """SELECT row(extract(epoch FROM current_setting('finlive.finalize_grace')::interval),
                                        extract(epoch FROM current_setting('finlive.claim_grace')::interval),
                                        extract(epoch FROM current_setting('finlive.max_running')::interval))::text""")
    fg0, cg0, mr0 = (float(x) for x in server.strip('()').split(','))
    stages0 = [x.strip() for x in scalar(conn, "SELECT current_setting('finlive.guarded_stages')").split(',') if x.strip()]
    checked = collections.Counter()
    for i in range(n):
        s = 'pol%d' % i
        pol = {k: rng.choice(v) for k, v in POLICY_CHOICES.items()}
        claim = rng.random() < 0.6
        scalar(conn, """
            CREATE SCHEMA {s};
            CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text);
            CREATE TABLE {s}.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
            CREATE TABLE {s}.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
                task_id bigint, attempts integer, max_attempts integer, started_at timestamptz);
            CREATE INDEX ON {s}.jobs (id) WHERE status = 'running';
            {m} SELECT 1""".format(s=s, m=POLICY_MATRIX.format(s=s)))
        st, r = run(conn, 'SELECT finlive_register(%s, %s, %s, NULL, NULL, %s, %s::interval, %s::interval,'
                          ' %s::interval, %s::text[], %s, %s)',
                    (s + '.jobs', s + '.runs', s + '.tasks', claim, pol['finalize_grace'], pol['claim_grace'],
                     pol['max_running'], pol['guarded_stages'], pol['enabled'], pol['dry_run']))
        ST.calls['finlive_register (policy)'] += 1
        if st != 'ok':
            ST.fail('policy %s: finlive_register raised %s %s' % (pol, st, r))
            continue
        secs = {}
        for k, default in (('finalize_grace', fg0), ('claim_grace', cg0), ('max_running', mr0)):
            secs[k] = default if pol[k] is None else min(float(scalar(
                conn, 'SELECT extract(epoch FROM %s::interval)', (pol[k],))), HUGE)
        g = stages0 if pol['guarded_stages'] is None else pol['guarded_stages']
        owned = [j for j in range(1, 71) if j % 4 == 0]
        for j in owned:
            scalar(other, 'SELECT finlive_mark(%s)', (j,))
        args = dict(fg=secs['finalize_grace'], cg=secs['claim_grace'], mr=secs['max_running'], claim=claim,
                    enabled=pol['enabled'] is not False, all='*' in g, stages=[x for x in g if x != '*'],
                    owned=owned)
        dry = pol['dry_run'] is True
        oid = scalar(conn, 'SELECT %s::regclass::oid', (s + '.jobs',))
        before = scalar(conn, "SELECT coalesce(max(at), '-infinity') FROM finlive_reap_log")
        st, r = run(conn, 'SELECT job_id, tier, action FROM finlive_reap_once() WHERE target = %s::oid::regclass',
                    (oid,))
        ST.calls['finlive_reap_once'] += 1
        ST.outcomes[st] += 1
        if st != 'ok':
            ST.fail('policy %s: finlive_reap_once raised %s %s' % (pol, st, r))
            continue
        returned = {(job, tier) for job, tier, action in r if action != 'deferred'}
        # every logged decision: the tier the policy says, the right status, the dry-run flag
        bad = rows_of(conn, (POLICY_EXPECT + """
            WHERE l_tier IS DISTINCT FROM want OR l_dry <> %(dry)s
               OR l_new <> CASE WHEN want = 2 AND exit_code = 0 THEN 'done'
                                WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END""").format(
            s=s, at='l.at', cols=', l.tier AS l_tier, l.dry_run AS l_dry, l.new_status AS l_new',
            join='JOIN finlive_reap_log l ON l.job_id = j.id AND l.target = %(oid)s::oid::regclass'
                 ' AND l.at > %(before)s'), dict(args, dry=dry, oid=oid, before=before))
        for b in bad[:3]:
            ST.fail('policy %s claim_owned=%s: job %s reaped as tier %s (dry %s, %s), expected tier %s'
                    % (pol, claim, b[0], b[-5], b[-4], b[-3], b[-1]))
        logged = rows_of(conn, 'SELECT job_id, tier FROM finlive_reap_log WHERE target = %s::oid::regclass'
                               ' AND at > %s', (oid, before))
        if set(map(tuple, logged)) != returned or len(logged) != len(returned):
            ST.fail('policy %s: finlive_reap_once returned %d reaps, the log has %d'
                    % (pol, len(returned), len(logged)))
        # nothing the policy says to reap is left running (a dry run changes nothing)
        left = rows_of(conn, (POLICY_EXPECT + " WHERE want IS NOT NULL AND id IN"
                              " (SELECT id FROM {s}.jobs WHERE status = 'running')").format(
            s=s, at='now()', cols='', join=''), args)
        if dry:
            changed = scalar(conn, "SELECT count(*) FROM %s.jobs WHERE status <> 'running'" % s)
            if changed:
                ST.fail('policy %s: a dry-run target had %d jobs changed' % (pol, changed))
        elif left:
            ST.fail('policy %s claim_owned=%s: %d jobs left running that the policy reaps, e.g. %s'
                    % (pol, claim, len(left), left[0]))
        # finlive_explain says the same of every job still running
        for job, e in rows_of(conn, 'SELECT id, finlive_explain(%s::oid::regclass, id) FROM {s}.jobs'
                                    " WHERE status = 'running'".format(s=s), (oid,)):
            ST.calls['finlive_explain'] += 1
            want = [x for x in left if x[0] == job]
            if not dry and e['action'] not in ('none', 'deferred'):
                ST.fail('policy %s: finlive_explain(job %s) says %s after a full tick (%s)'
                        % (pol, job, e['action'], e['reason']))
            elif e['action'] == 'deferred' and job not in owned:
                ST.fail('policy %s: finlive_explain(job %s) defers a job nobody owns' % (pol, job))
            elif dry and want and e['action'] in ('none', 'deferred'):
                ST.fail('policy %s: finlive_explain(job %s) in a dry run says %s, the policy reaps it (tier %s)'
                        % (pol, job, e['action'], want[0][-1]))
            if e['policy'] and (e['policy']['enabled'] != args['enabled'] or e['policy']['dry_run'] != dry):
                ST.fail('policy %s: finlive_explain shows policy %s' % (pol, e['policy']))
        # a second tick right after reaps nothing more (a dry run decides again)
        st, r = run(conn, "SELECT count(*) FROM finlive_reap_once() WHERE target = %s::oid::regclass"
                          " AND action <> 'deferred'", (oid,))
        if st != 'ok' or (not dry and r[0][0]):
            ST.fail('policy %s: a second tick: %s %s' % (pol, st, r))
        scalar(other, 'SELECT finlive_clear_all()')
        scalar(conn, 'SELECT finlive_unregister(%s::oid::regclass)', (oid,))
        checked['dry run' if dry else 'reaping'] += 1
        checked['reaps'] += len(logged)
    scalar(conn, 'ALTER SYSTEM RESET finlive.reaper')
    scalar(conn, 'SELECT pg_reload_conf()')
    for c in (conn, other):
        c.close()
    return checked


def rows_of(conn, sql, args=None):
    st, r = run(conn, sql, args)
    if st != 'ok':
        raise RuntimeError('%s failed: %s %s' % (sql[:200], st, r))
    return r


# ---------------------------------------------------------------------------
# [1.3] finlive.database, reloaded under the reapers
# ---------------------------------------------------------------------------

DATABASE_VALUES = [("'*'", 'ok'), ("'postgres'", 'ok'), ("'fuzz, postgres'", 'ok'), ("'\"postgres\"'", 'ok'),
                   ("' postgres ,fuzz '", 'ok'), ("'no_such_db'", 'ok'), ("''", 'ok'), ("'*, postgres'", 'ok'),
                   ("'a,,b'", '22023'), ("'\"unterminated'", '22023'), ("'postgres'", 'ok')]


def database_setting(conn):
    """ALTER SYSTEM SET finlive.database to odd values and reload, while
    the reapers run: a bad list is refused, the server lives, and in the end
    exactly one reaper runs in postgres."""
    for v, want in DATABASE_VALUES:
        st, r = run(conn, 'ALTER SYSTEM SET finlive.database = %s' % v)
        ST.calls['ALTER SYSTEM SET finlive.database'] += 1
        ST.outcomes[st] += 1
        if st != want:
            ST.fail('ALTER SYSTEM SET finlive.database = %s: %s %s (expected %s)' % (v, st, r, want))
        scalar(conn, 'SELECT pg_reload_conf()')
        time.sleep(0.5)
        scalar(conn, 'SELECT 1')
    scalar(conn, "ALTER SYSTEM SET finlive.database = 'postgres'")
    scalar(conn, 'SELECT pg_reload_conf()')


def drop_during_tick(dbname):
    """A tick that waits for the jobs table's lock while another session drops
    one of the target's other tables (or its hook) and commits: the tick must
    skip the target or fail it with a WARNING, never crash the backend."""
    conn = connect(dbname)
    other = connect(dbname, app='fuzz-other')
    cases = [('runs table', 'DROP TABLE {s}.runs'),
             ('tasks table', 'DROP TABLE {s}.tasks'),
             ('on_reap function', 'DROP FUNCTION {s}.hook(bigint, integer, text)'),
             ('gate function', 'DROP FUNCTION {s}.gate(bigint)'),
             ('jobs table renamed and runs dropped', 'ALTER TABLE {s}.jobs RENAME TO jobs2; DROP TABLE {s}.runs')]
    for k, (what, ddl) in enumerate(cases):
        s = 'dd%d' % k
        make_target(conn, s, on_reap="'%s.hook(bigint,integer,text)'" % s, gate="'%s.gate(bigint)'" % s,
                    extra=('CREATE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;'
                           ' CREATE FUNCTION {s}.gate(bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;'
                           ).format(s=s))
        scalar(other, 'BEGIN; LOCK TABLE %s.jobs IN ACCESS EXCLUSIVE MODE; SELECT 1' % s)
        out = {}

        def tick():
            try:
                out['r'] = run(conn, 'SELECT count(*) FROM finlive_reap_once()')
            except RuntimeError as e:
                out['r'] = ('lost', str(e))
        th = threading.Thread(target=tick)
        th.start()
        time.sleep(0.5)                       # the tick now waits for the jobs table
        crashed = False
        try:
            run(other, ddl.format(s=s))
            run(other, 'COMMIT')
        except RuntimeError:
            crashed = True
        th.join(timeout=30)
        ST.calls['finlive_reap_once'] += 1
        st2, r2 = out.get('r', ('timeout', ''))
        ST.outcomes[st2] += 1
        if st2 != 'ok' or crashed:
            ST.fail('tick while another session drops the %s: %s %s' % (what, st2, str(r2)[:160]))
        if st2 == 'lost' or crashed:
            # a backend crashed and the postmaster restarted every process
            time.sleep(2)
            conn = connect(dbname)
            other = connect(dbname, app='fuzz-other')
        scalar(conn, 'SELECT count(finlive_unregister(jobs)) FROM finlive_targets')
    conn.close()
    other.close()


def diagnostics(dbname):
    conn = connect(dbname)
    for sql in ['SELECT * FROM finlive_stats()', 'SELECT * FROM finlive_stats', 'SELECT finlive_snapshot()',
                'SELECT * FROM finlive_targets', 'SELECT * FROM finlive_owners',
                'SELECT * FROM finlive_target_problems()', 'SELECT * FROM finlive_running_jobs()',
                'SELECT * FROM finlive_running_jobs', 'SELECT * FROM finlive_audit()',
                'SELECT finlive_stats_reset()', 'SELECT count(*) FROM finlive_reap_log']:
        expect(conn, sql, None, {'ok'}, check_unchanged=False)
    conn.close()


# ---------------------------------------------------------------------------


def main():
    print('fuzz seed %d' % SEED)
    su = psycopg2.connect(host=os.environ['PGHOST'], port=os.environ['PGPORT'], dbname='postgres', user='postgres')
    su.autocommit = True
    global PG_VERSION
    PG_VERSION = su.server_version
    scalar(su, 'CREATE DATABASE fuzz')
    conn = connect()
    other = connect(app='fuzz-other')
    fixtures = setup(conn)
    print('[%5.1fs] fixtures: %s' % (time.time() - T0, ', '.join('%s %d' % (k, len(v)) for k, v in fixtures.items())))

    n_own = int(4000 * SCALE)
    Ownership(conn, other).run(n_own)
    print('[%5.1fs] ownership: %d random calls' % (time.time() - T0, n_own))
    n_reg = int(1500 * SCALE)
    register_calls(conn, fixtures, n_reg)
    print('[%5.1fs] register: %d calls' % (time.time() - T0, sum(v for k, v in ST.calls.items() if 'register' in k)))
    settings_calls(conn)
    explain_calls(conn, other, fixtures, int(1500 * SCALE))
    print('[%5.1fs] explain: %d calls' % (time.time() - T0, ST.calls['finlive_explain']))
    reap_once_refused(conn, other)
    diagnostics('fuzz')
    # the reaper scenarios run in the worker's database, so the worker ticks them too
    res = reaper_scenarios('postgres')
    print('[%5.1fs] reaper: %d scenarios' % (time.time() - T0, len(SCENARIOS)))
    pol = policy_scenarios('postgres', max(4, int(30 * SCALE)))
    print('[%5.1fs] policies: %s' % (time.time() - T0, ', '.join('%s %d' % kv for kv in sorted(pol.items()))))
    concurrent_unregister('postgres')
    drop_during_tick('postgres')
    database_setting(connect('postgres'))
    diagnostics('postgres')
    print('[%5.1fs] done' % (time.time() - T0))
    time.sleep(1)

    # the server: no crash, the worker never died
    with open(os.environ['FUZZ_SERVER_LOG'], errors='replace') as fh:
        logtext = fh.read()
    crashes = [l for l in logtext.splitlines() if 'terminated by signal' in l or 'PANIC' in l
               or 'was terminated by' in l or 'TRAP:' in l or 'AddressSanitizer' in l or 'runtime error:' in l]
    worker_exits = [l for l in logtext.splitlines() if 'finlive reaper' in l and 'exited with exit code' in l]
    warnings = sum(1 for l in logtext.splitlines() if 'WARNING:  finlive' in l)
    su = connect('postgres')       # a crash restart would have closed the first one
    for _ in range(200):           # the worker starts again 5 s after a crash restart
        alive = scalar(su, "SELECT count(*) FILTER (WHERE datname = 'postgres') * 10 + count(*)"
                           " FROM pg_stat_activity WHERE backend_type = 'finlive reaper'")
        if alive == 11:
            alive = 1
            break
        time.sleep(0.1)
    # no advisory lock of anyone's (a hook's in the worker included) and no
    # finlive lock outlives what took it
    for _ in range(50):
        if scalar(su, 'SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()'
                      " AND backend_type = 'client backend'") == 0:
            break
        time.sleep(0.1)
    leftover = scalar(su, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")

    print()
    print('=== finlive fuzz pass ===')
    total = sum(ST.calls.values())
    print('  %-40s %d' % ('calls', total))
    for fn, n in sorted(ST.calls.items(), key=lambda x: -x[1]):
        if n:
            print('    %-38s %d' % (fn, n))
    print('  outcomes by SQLSTATE:')
    for st, n in sorted(ST.outcomes.items(), key=lambda x: -x[1]):
        print('    %-38s %d' % (st, n))
    print('  %-40s %d' % ('reaper WARNINGs logged (skipped targets, failed jobs)', warnings))
    print('  %-40s %d' % ('backend crashes in the server log', len(crashes)))
    print('  %-40s %d' % ('worker exits in the server log', len(worker_exits)))
    print('  %-40s %d' % ('reaper running in postgres (only) at the end', alive))
    print('  %-40s %d' % ('advisory locks left (finlive or not)', leftover))
    failures = [f for f in ST.failures if f is not None]
    extra = len(ST.failures) - len(failures)
    bad = len(ST.failures) + len(crashes) + len(worker_exits) + (alive != 1) + (leftover != 0)
    print('  %-40s %d' % ('failed checks', len(ST.failures)))
    for f in failures[:60]:
        print('    FAIL ' + f)
    if len(failures) > 60 or extra:
        print('    ... %d more' % (len(failures) - 60 + extra))
    for l in crashes[:10] + worker_exits[:10]:
        print('    LOG ' + l)
    print('RESULT: %s' % ('PASS' if bad == 0 else 'FAIL'))
    sys.exit(0 if bad == 0 else 1)


if __name__ == '__main__':
    main()
