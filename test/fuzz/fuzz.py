#!/usr/bin/python3
"""finlive fuzz pass: thousands of calls with bad input over every SQL function.

Driven by test/fuzz/run.sh (a throwaway cluster, PGHOST/PGPORT set, superuser
"postgres").  Sections:

  ownership   random finlive_mark/clear/clear_all/is_active/fence/owners/
              snapshot calls with NULLs, bigint extremes, negative ids, huge,
              multibyte and invalid stage text, inside and outside aborted
              transactions, after pg_advisory_unlock_all()/DISCARD ALL,
              against a model of who owns what (a second session owns some
              jobs);
  register    finlive_register over tables missing each required column,
              with each wrong type, non-tables, temporary and dangling
              relations, hooks of every wrong shape, NULLs; and
              finlive_unregister;
  settings    bad values for every finlive.* setting;
  reaper      targets whose tables, columns, types, hooks, privileges or
              registrations change between finlive_register and the tick
              (a hook that unregisters, drops or recurses during the tick,
              another session that unregisters, or drops a table or hook
              while the tick waits for the jobs table's lock), with
              job rows of every odd shape (max_attempts NULL or negative,
              started_at NULL or in the future ...), ticked by
              finlive_reap_once and by the worker at once;
  diagnostics finlive_stats/_reset, finlive_target_problems, finlive_running_jobs,
              finlive_audit in all those states.

Checked: every call's outcome is the expected value or SQLSTATE; a rejected
call changes no job row, registration, owner or lock; the reaper never raises
from a tick and never reaps one job twice; no backend crashed (server log).
Prints figures; exit status 1 on any failure.
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
    scalar(conn, """
        INSERT INTO fz.tasks VALUES (1, 'deploy-staging'), (2, 'build');
        INSERT INTO fz.runs VALUES (1, now() - interval '1 day', 0), (2, NULL, NULL);
        INSERT INTO fz.jobs VALUES (1, 'running', 1, 1, 0, 3, now() - interval '2 days'),
                                   (2, 'running', 2, 2, 0, 3, now() - interval '2 days');
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
                          'bad_type', 'unlock_all', 'aborted_txn'],
                         [30, 15, 3, 12, 12, 5, 5, 6, 2, 10])[0]
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
        """256 distinct stages fit at once; the 257th is refused with 53400."""
        scalar(self.c, 'SELECT finlive_clear_all()')
        self.mine.clear()
        base = 10**12
        for i in range(256):
            expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + i, 'stage-%d' % i), {'ok'},
                   check_unchanged=False)
        expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + 999, 'stage-999'), {'53400'})
        expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + 998, 'stage-0'), {'ok'}, check_unchanged=False)
        n = scalar(self.c, 'SELECT finlive_clear_all()')
        if n != 257:
            ST.fail('stage pool: clear_all released %s, expected 257' % n)
        expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + 999, 'stage-999'), {'ok'}, check_unchanged=False)
        scalar(self.c, 'SELECT finlive_clear_all()')
        # stages of owners that are gone are not "in use": after DISCARD ALL
        # ended ownership of 256 jobs with distinct stages, new stages fit
        for i in range(256):
            expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + i, 'stage-%d' % i), {'ok'},
                   check_unchanged=False)
        expect(self.c, 'DISCARD ALL', None, {'ok'}, check_unchanged=False)
        expect(self.c, 'SELECT finlive_mark(%s, NULL, %s)', (base + 999, 'stage-new'), {'ok'},
               check_unchanged=False)
        scalar(self.c, 'SELECT finlive_clear_all()')
        scalar(self.c, 'SELECT count(*) FROM finlive_owners')

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
    """Systematic (one bad argument at a time) plus random combinations."""
    roles = ['jobs', 'runs', 'tasks', 'on_reap', 'gate', 'claim_owned']
    valid = {'jobs': ('fz.jobs', set()), 'runs': ('fz.runs', set()), 'tasks': ('fz.tasks', set()),
             'on_reap': ('NULL', set()), 'gate': ('NULL', set()), 'claim_owned': ('false', set())}
    combos = []
    for role in roles:
        for f in fixtures[role]:
            c = dict(valid)
            c[role] = f
            combos.append(c)
    while len(combos) < n:
        combos.append({r: rng.choice(fixtures[r]) for r in roles})
    for c in combos:
        errs = set().union(*(c[r][1] for r in roles))
        tbl = lambda r: c[r][0] if c[r][0].startswith(("'", 'NULL', '0', '4')) else "'%s'" % c[r][0].replace("'", "''")
        args = [tbl('jobs'), tbl('runs'), tbl('tasks'), c['on_reap'][0], c['gate'][0], c['claim_owned'][0]]
        form = rng.randrange(2)
        if form == 0:
            sql = 'SELECT finlive_register(%s, %s, %s, %s, %s, %s)' % tuple(args)
        else:
            sql = ('SELECT finlive_register(jobs => %s, runs => %s, tasks => %s, on_reap => %s,'
                   ' gate => %s, claim_owned => %s)' % tuple(args))
        st, _ = expect(conn, sql, None, errs or {'ok'})
        if st == 'ok':
            # registered: registering again replaces it; unregister removes it
            cnt = scalar(conn, 'SELECT count(*) FROM finlive_targets')
            if cnt != 1:
                ST.fail('%s: %s targets registered after one register' % (sql, cnt))
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
    ('finlive.naptime', ['100', '5'], '55P02'),
    ('finlive.reaper', ['off'], '55P02'),
    ('finlive.log_retention', ['10'], '55P02'),
    ('finlive.database', ["'x'"], '55P02'),
    ('finlive.max_owners', ['5'], '55P02'),
    ('finlive.no_such_setting', ['1'], {'42602', '42704'}),
]

GOOD_SETTINGS = [('finlive.guarded_stages', ["'*'", "''", "'a, b ,c'", "'\"x,y\"'", "'" + 'z' * 5000 + "'"]),
                 ('finlive.finalize_grace', ['0', '2147483647', "'1h'"]),
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
    ('on_reap always raises', {'on_reap': 'hook'},
     "CREATE OR REPLACE FUNCTION {s}.hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hook down'; END $$"),
    ('gate always raises', {'gate': 'gate'},
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
                          ' GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass,'
                          ' regprocedure, regprocedure, boolean) TO {s}_r; SELECT 1').format(s=s))
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
            # registered by a non-superuser role that owns the tables
            scalar(conn, 'CREATE SCHEMA {s} AUTHORIZATION {s}_r; SELECT 1'.format(s=s))
            scalar(conn, 'SET ROLE {s}_r; SELECT 1'.format(s=s))
            try:
                scalar(conn, """
                    CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text);
                    CREATE TABLE {s}.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
                    CREATE TABLE {s}.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
                        task_id bigint, attempts integer, max_attempts integer, started_at timestamptz);
                    {jm} {extra}
                    SELECT finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks', {on_reap}, {gate}, true);
                    SELECT 1""".format(s=s, jm=JOB_MATRIX.format(s=s), extra=extra, on_reap=on_reap, gate=gate))
            finally:
                scalar(conn, 'RESET ROLE; SELECT 1')
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

        def tick(c, key):
            out[key] = run(c, 'SELECT * FROM finlive_reap_once()')
        th = threading.Thread(target=tick, args=(other, 'other'))
        th.start()
        tick(conn, 'me')
        th.join()
        ST.calls['finlive_reap_once'] += 2
        for key, (st, r) in out.items():
            ST.outcomes[st] += 1
            if st != 'ok':
                # serialization failures are allowed only for the caller's own statement errors
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
        # the diagnostics keep working whatever state the target is in
        for sql in ['SELECT * FROM finlive_target_problems()', 'SELECT * FROM finlive_running_jobs',
                    'SELECT * FROM finlive_audit()', 'SELECT * FROM finlive_targets']:
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
        run(other, "SELECT finlive_register('conc.jobs', 'conc.runs', 'conc.tasks', 'conc.hook(bigint,integer,text)', NULL, true)")
        ST.calls['finlive_unregister'] += 1
        ST.calls['finlive_register'] += 1
        time.sleep(0.01)
    th.join()
    st, r = run(other, 'DROP TABLE conc.jobs')
    for e in errors:
        ST.fail('concurrent unregister: finlive_reap_once raised %s %s' % e)
    conn.close()
    other.close()


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
    diagnostics('fuzz')
    # the reaper scenarios run in the worker's database, so the worker ticks them too
    res = reaper_scenarios('postgres')
    concurrent_unregister('postgres')
    drop_during_tick('postgres')
    diagnostics('postgres')
    print('[%5.1fs] reaper: %d scenarios' % (time.time() - T0, len(SCENARIOS)))
    time.sleep(1)

    # the server: no crash, the worker never died
    with open(os.environ['FUZZ_SERVER_LOG'], errors='replace') as fh:
        logtext = fh.read()
    crashes = [l for l in logtext.splitlines() if 'terminated by signal' in l or 'PANIC' in l
               or 'was terminated by' in l or 'TRAP:' in l or 'AddressSanitizer' in l or 'runtime error:' in l]
    worker_exits = [l for l in logtext.splitlines() if 'finlive reaper' in l and 'exited with exit code' in l]
    warnings = sum(1 for l in logtext.splitlines() if 'WARNING:  finlive' in l)
    su = connect('postgres')       # a crash restart would have closed the first one
    for _ in range(100):           # the worker starts again 5 s after a crash restart
        alive = scalar(su, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'finlive reaper'")
        if alive == 1:
            break
        time.sleep(0.1)
    leftover = scalar(su, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966")

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
    print('  %-40s %d' % ('worker running at the end', alive))
    print('  %-40s %d' % ('finlive locks left', leftover))
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
