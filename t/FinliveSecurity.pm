# Helpers for finlive's security TAP tests (t/051 and t/052): planting
# hostile objects, calling finlive's entry points in a way that no planted
# object can capture, and collecting the evidence that a planted object ran.
#
# The attack model (SPEC "[1.2] No role becomes another through finlive"):
# a role that can create objects somewhere (the database owner, who owns
# `public`, or a role granted CREATE on a schema) puts there functions,
# operators, tables, views and types named like what finlive uses or once
# used by name.  Each planted object, whenever it runs, records it in three
# ways that a rollback cannot erase all of: nextval() of a sequence (not
# transactional), a WARNING "PLANTED RAN" in the server log, and a row in a
# table the planting role owns; and then tries the real attack, ALTER ROLE
# <planter> SUPERUSER, which succeeds exactly when it runs as a superuser.
#
# How the test itself calls finlive: through SQL-standard functions
# (BEGIN ATOMIC) that a superuser creates before anything is planted, or
# schema-qualified where the extension has its own schema.  A BEGIN ATOMIC
# body is bound to the functions it names when it is created, so the
# caller's own name resolution (which PostgreSQL does, not finlive) cannot
# be captured and what is tested is finlive alone.  Every type, operator and
# function in the calling scripts is schema-qualified for the same reason.
package FinliveSecurity;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  ext_functions_sql
  wrappers_sql
  plant_log_sql
  plant_sql
  temp_shadows_sql
  run_script
  parse_results
  evidence_sql
  role_snapshot_sql
  catalog_names
);

# pg_catalog functions finlive's SQL (the scripts, the 1.1 SQL functions and
# the queries the C code builds) uses or once used, and their neighbours: an
# overload of each is planted.
sub catalog_names
{
	return qw(
	  to_regprocedure to_regclass to_regrole to_regproc to_regnamespace
	  format current_setting set_config now clock_timestamp statement_timestamp
	  transaction_timestamp string_to_array btrim unnest has_table_privilege
	  has_function_privilege has_schema_privilege cardinality array_to_string
	  array_length date_trunc pg_event_trigger_dropped_objects quote_ident
	  quote_literal quote_nullable pg_advisory_unlock_all pg_try_advisory_lock
	  pg_advisory_lock pg_advisory_unlock aclexplode pg_get_userbyid
	  pg_backend_pid pg_is_in_recovery pg_notify pg_stat_get_activity
	  jsonb_build_object to_jsonb pg_sleep pg_extension_config_dump
	  pg_terminate_backend pg_cancel_backend lower upper length concat
	  array_position array_append nextval int8 int4 text timestamptz oid bool
	  regclass pg_get_function_identity_arguments pg_get_function_arguments
	  format_type pg_has_role row_security_active current_schemas);
}

# The functions of the finlive extension, as (oid, name) rows.
sub ext_functions_sql
{
	return q{
SELECT p.oid, p.proname
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_depend d
    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
  JOIN pg_catalog.pg_extension e
    ON e.oid OPERATOR(pg_catalog.=) d.refobjid AND e.extname OPERATOR(pg_catalog.=) 'finlive'
 ORDER BY p.proname};
}

# As a superuser, before anything is planted: schema "calls" with one
# BEGIN ATOMIC wrapper per finlive function (same name, arguments, defaults
# and result), bound now to the extension's function.
sub wrappers_sql
{
	my $ext = ext_functions_sql();
	return qq{
CREATE SCHEMA calls;
GRANT USAGE ON SCHEMA calls TO PUBLIC;
DO \$w\$
DECLARE
    f record;
    nin int;
    body text;
BEGIN
    FOR f IN $ext LOOP
        CONTINUE WHEN pg_catalog.format_type((SELECT prorettype FROM pg_catalog.pg_proc
                                               WHERE oid OPERATOR(pg_catalog.=) f.oid), NULL)
                      OPERATOR(pg_catalog.=) 'event_trigger';
        SELECT p.pronargs INTO nin FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) f.oid;
        body := pg_catalog.format('%I.%I(%s)',
                    (SELECT n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n
                         ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                      WHERE p.oid OPERATOR(pg_catalog.=) f.oid),
                    f.proname,
                    (SELECT pg_catalog.string_agg('\$' OPERATOR(pg_catalog.||) i::pg_catalog.text, ', ')
                       FROM pg_catalog.generate_series(1, nin) i));
        IF (SELECT p.proretset OR p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.record'::pg_catalog.regtype
              FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) f.oid) THEN
            body := 'SELECT * FROM ' OPERATOR(pg_catalog.||) body;
        ELSE
            body := 'SELECT ' OPERATOR(pg_catalog.||) body;
        END IF;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION calls.%I(%s) RETURNS %s LANGUAGE sql BEGIN ATOMIC %s; END',
            f.proname, pg_catalog.pg_get_function_arguments(f.oid),
            pg_catalog.pg_get_function_result(f.oid), body);
    END LOOP;
END
\$w\$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA calls TO PUBLIC;
};
}

# As a superuser: the planting role's evidence log, in schema "plog" that
# the planting role owns.  plog.hit(what) is what every planted object calls.
sub plant_log_sql
{
	my ($planter) = @_;
	return qq{
CREATE SCHEMA plog AUTHORIZATION $planter;
SET ROLE $planter;
GRANT USAGE ON SCHEMA plog TO PUBLIC;
CREATE TABLE plog.hits (n bigint, who text, session_who text, what text,
                        at timestamptz DEFAULT pg_catalog.clock_timestamp());
CREATE SEQUENCE plog.hits_seq;
CREATE TABLE plog.planted (what text);
GRANT SELECT, INSERT ON plog.hits TO PUBLIC;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE plog.hits_seq TO PUBLIC;
CREATE FUNCTION plog.hit(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$h\$
DECLARE
    n bigint := nextval('plog.hits_seq');
BEGIN
    RAISE WARNING 'PLANTED RAN: % as % (session %)', what, current_user, session_user;
    BEGIN
        INSERT INTO plog.hits (n, who, session_who, what) VALUES (n, current_user, session_user, what);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE 'ALTER ROLE $planter SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE 'GRANT pg_execute_server_program TO $planter';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
\$h\$;
GRANT EXECUTE ON FUNCTION plog.hit(text) TO PUBLIC;
CREATE FUNCTION plog.hit_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$t\$
BEGIN
    PERFORM plog.hit('trigger on ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
    IF TG_LEVEL = 'ROW' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RETURN NULL;
END
\$t\$;
GRANT EXECUTE ON FUNCTION plog.hit_trigger() TO PUBLIC;
RESET ROLE;
};
}

# As the planting role: plant everything in each schema of @$schemas
# (functions and operators), and shadowing relations and types in
# $shadow_schema (a schema that callers put first in their search_path).
sub plant_sql
{
	my (%o) = @_;
	my $schemas = join(',', @{ $o{schemas} });
	my $shadow = $o{shadow_schema};
	my $ext = $o{ext_schema};
	my $catalog = join(',', map { "'$_'" } catalog_names());
	return qq{
SET search_path = pg_catalog, pg_temp;
DO \$plant\$
DECLARE
    s text;
    p record;
    ins text[];
    outs text;
    variants text[];
    v text;
    k int;
    i int;
    ret text;
    sig text;
    src text;
BEGIN
    FOREACH s IN ARRAY string_to_array('$schemas', ',') LOOP
        FOR p IN
            SELECT pr.oid, pr.proname, pr.pronargs, pr.pronargdefaults, pr.proretset,
                   pr.prorettype, n.nspname,
                   ARRAY(SELECT format_type(t, NULL) FROM unnest(pr.proargtypes) WITH ORDINALITY a(t, o)
                          ORDER BY o) AS argtypes,
                   (SELECT string_agg(format('OUT %I %s', pr.proargnames[o], format_type(t, NULL)), ', '
                                      ORDER BY o)
                      FROM unnest(pr.proallargtypes, pr.proargmodes) WITH ORDINALITY a(t, m, o)
                     WHERE m IN ('o', 't')) AS outargs,
                   EXISTS (SELECT 1 FROM unnest(pr.proargtypes) t
                             JOIN pg_type ty ON ty.oid = t
                            WHERE ty.typtype = 'p'
                              AND ty.typname NOT IN ('anyelement', 'anyarray', 'anycompatible',
                                                     'anycompatiblearray', 'anynonarray')) AS pseudo
              FROM pg_proc pr JOIN pg_namespace n ON n.oid = pr.pronamespace
             WHERE pr.prokind = 'f'
               AND ((n.nspname = '$ext' AND pr.proname LIKE 'finlive\\_%')
                    OR (n.nspname = 'pg_catalog' AND pr.proname IN ($catalog)))
        LOOP
            CONTINUE WHEN p.pseudo;
            ins := p.argtypes;
            variants := '{}';
            -- each argument in turn as text (what an unknown literal prefers),
            -- a bigint as integer (what an integer literal is)
            FOR i IN 1 .. coalesce(array_length(ins, 1), 0) LOOP
                IF ins[i] <> 'text' THEN
                    variants := variants || array_to_string(ins[1:i-1] || 'text'::text || ins[i+1:], ', ');
                ELSE
                    variants := variants || array_to_string(ins[1:i-1] || 'character varying'::text || ins[i+1:], ', ');
                END IF;
                IF ins[i] = 'bigint' THEN
                    variants := variants || array_to_string(ins[1:i-1] || 'integer'::text || ins[i+1:], ', ');
                END IF;
            END LOOP;
            -- every argument text (a call with only NULLs or literals)
            IF coalesce(array_length(ins, 1), 0) >= 2 THEN
                variants := variants || array_to_string(array_fill('text'::text, ARRAY[array_length(ins, 1)]), ', ');
            END IF;
            IF coalesce(array_length(ins, 1), 0) = 0 THEN
                variants := variants || 'text'::text;
            END IF;
            -- an extra defaulted argument, after every prefix a call may use
            FOR k IN (p.pronargs - p.pronargdefaults) .. p.pronargs LOOP
                variants := variants || array_to_string(ins[1:k] || 'integer DEFAULT 0'::text, ', ');
            END LOOP;
            -- the very signature, in another schema (a caller whose
            -- search_path lists pg_catalog late would find it first)
            IF p.nspname <> s THEN
                variants := variants || array_to_string(ins, ', ');
            END IF;

            IF p.outargs IS NOT NULL THEN
                ret := CASE WHEN p.proretset THEN 'SETOF record' ELSE 'record' END;
            ELSE
                ret := CASE WHEN p.proretset THEN 'SETOF ' ELSE '' END
                       || CASE WHEN format_type(p.prorettype, NULL) = 'event_trigger' THEN 'void'
                               ELSE format_type(p.prorettype, NULL) END;
            END IF;
            FOREACH v IN ARRAY variants LOOP
                sig := format('%I.%I(%s)', s, p.proname,
                              concat_ws(', ', nullif(v, ''), p.outargs));
                src := format(\$f\$CREATE FUNCTION %s RETURNS %s LANGUAGE plpgsql AS \$b\$
                               BEGIN PERFORM plog.hit(%L); RETURN%s; END \$b\$\$f\$,
                              sig, ret, sig,
                              CASE WHEN ret LIKE 'SETOF %' OR ret IN ('record', 'void')
                                   THEN '' ELSE ' NULL' END);
                BEGIN
                    EXECUTE src;
                    INSERT INTO plog.planted VALUES ('function ' || sig);
                EXCEPTION WHEN OTHERS THEN NULL;   -- exists already, or not expressible
                END;
            END LOOP;
        END LOOP;

        -- operators on the types finlive compares, adds and subtracts
        FOR p IN
            SELECT * FROM (VALUES
                ('bigint'), ('integer'), ('text'), ('character varying'), ('timestamp with time zone'),
                ('oid'), ('regclass'), ('regprocedure'), ('regrole'), ('name'), ('boolean'),
                ('interval'), ('regtype'), ('text[]'), ('bigint[]'), ('jsonb')) t(ty)
        LOOP
            FOR v IN SELECT unnest(ARRAY['=', '<>', '<', '<=', '>', '>=']) LOOP
                FOR ret IN SELECT unnest(ARRAY[p.ty,
                        CASE p.ty WHEN 'bigint' THEN 'integer' WHEN 'integer' THEN 'bigint'
                                  WHEN 'text' THEN 'name' WHEN 'name' THEN 'text'
                                  WHEN 'regclass' THEN 'oid' WHEN 'oid' THEN 'regclass'
                                  WHEN 'character varying' THEN 'text' ELSE p.ty END]) LOOP
                    BEGIN
                        EXECUTE format(\$f\$CREATE FUNCTION %I.planted_op_%s(%s, %s) RETURNS boolean
                                        LANGUAGE plpgsql AS \$b\$ BEGIN
                                        PERFORM plog.hit(%L); RETURN \$1 OPERATOR(pg_catalog.%s) \$2;
                                        END \$b\$\$f\$,
                                       s, md5(v || p.ty || ret), p.ty, ret,
                                       format('operator %s.%s(%s, %s)', s, v, p.ty, ret), v);
                        EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.planted_op_%s)',
                                       s, v, p.ty, ret, s, md5(v || p.ty || ret));
                        INSERT INTO plog.planted VALUES (format('operator %s.%s(%s, %s)', s, v, p.ty, ret));
                    EXCEPTION WHEN OTHERS THEN NULL;
                    END;
                END LOOP;
            END LOOP;
        END LOOP;
        FOR p IN
            SELECT * FROM (VALUES
                ('+', 'integer', 'integer', 'integer'), ('+', 'bigint', 'bigint', 'bigint'),
                ('+', 'integer', 'bigint', 'bigint'), ('+', 'bigint', 'integer', 'bigint'),
                ('-', 'bigint', 'bigint', 'bigint'), ('-', 'integer', 'integer', 'integer'),
                ('+', 'timestamp with time zone', 'interval', 'timestamp with time zone'),
                ('-', 'timestamp with time zone', 'interval', 'timestamp with time zone'),
                ('-', 'timestamp with time zone', 'timestamp with time zone', 'interval'),
                ('*', 'integer', 'interval', 'interval'), ('*', 'double precision', 'interval', 'interval'),
                ('||', 'text', 'text', 'text'), ('~', 'text', 'text', 'boolean'),
                ('->>', 'jsonb', 'text', 'text'), ('@>', 'text[]', 'text[]', 'boolean'),
                ('&&', 'text[]', 'text[]', 'boolean')) t(op, l, r, res)
        LOOP
            BEGIN
                EXECUTE format(\$f\$CREATE FUNCTION %I.planted_op_%s(%s, %s) RETURNS %s
                                LANGUAGE plpgsql AS \$b\$ BEGIN
                                PERFORM plog.hit(%L); RETURN \$1 OPERATOR(pg_catalog.%s) \$2;
                                END \$b\$\$f\$,
                               s, md5(p.op || p.l || p.r), p.l, p.r, p.res,
                               format('operator %s.%s(%s, %s)', s, p.op, p.l, p.r), p.op);
                EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.planted_op_%s)',
                               s, p.op, p.l, p.r, s, md5(p.op || p.l || p.r));
                INSERT INTO plog.planted VALUES (format('operator %s.%s(%s, %s)', s, p.op, p.l, p.r));
            EXCEPTION WHEN OTHERS THEN NULL;
            END;
        END LOOP;
    END LOOP;
END
\$plant\$;

-- Shadowing relations in $shadow: tables that finlive has (row security
-- whose policy runs plog.hit for every row read, a trigger for every
-- write), views named like finlive's views and like the catalogs finlive
-- reads (their WHERE runs plog.hit), and domains named like the types
-- finlive casts to (their CHECK runs plog.hit).
DO \$shadow\$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['finlive_target', 'finlive_reap_log'] LOOP
        EXECUTE format('CREATE TABLE %I.%I (jobs regclass, runs regclass, target regclass, job_id bigint,
                        tier integer, old_status text, new_status text, at timestamptz)', '$shadow', r);
        EXECUTE format('INSERT INTO %I.%I (job_id) VALUES (1)', '$shadow', r);
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', '$shadow', r);
        EXECUTE format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', '$shadow', r);
        EXECUTE format('CREATE POLICY p ON %I.%I USING (plog.hit(%L)) WITH CHECK (plog.hit(%L))',
                       '$shadow', r, 'read of table $shadow.' || r, 'write of table $shadow.' || r);
        EXECUTE format('CREATE TRIGGER t BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION plog.hit_trigger()', '$shadow', r);
        EXECUTE format('GRANT ALL ON %I.%I TO PUBLIC', '$shadow', r);
        INSERT INTO plog.planted VALUES ('table $shadow.' || r);
    END LOOP;
    FOREACH r IN ARRAY ARRAY['finlive_owners', 'finlive_targets', 'finlive_stats',
                             'finlive_running_jobs', 'finlive_reap_errors'] LOOP
        EXECUTE format('CREATE VIEW %I.%I AS SELECT 1 AS job_id WHERE plog.hit(%L)',
                       '$shadow', r, 'view $shadow.' || r);
        EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '$shadow', r);
        INSERT INTO plog.planted VALUES ('view $shadow.' || r);
    END LOOP;
    FOREACH r IN ARRAY ARRAY['pg_stat_activity', 'pg_extension', 'pg_class', 'pg_locks', 'pg_proc',
                             'pg_namespace', 'pg_roles', 'pg_database', 'pg_index', 'pg_attribute',
                             'pg_inherits', 'pg_init_privs', 'pg_depend', 'pg_type', 'pg_settings',
                             'pg_event_trigger', 'pg_trigger', 'pg_constraint'] LOOP
        BEGIN
            EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM pg_catalog.%I WHERE plog.hit(%L)',
                           '$shadow', r, r, 'view $shadow.' || r);
        EXCEPTION WHEN OTHERS THEN
            -- a catalog with a column of a pseudo-type: the columns finlive could read
            EXECUTE format('CREATE VIEW %I.%I AS SELECT %s FROM pg_catalog.%I WHERE plog.hit(%L)',
                           '$shadow', r,
                           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                              FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                             WHERE a.attrelid = ('pg_catalog.' || r)::regclass AND a.attnum > 0
                               AND t.typtype <> 'p'),
                           r, 'view $shadow.' || r);
        END;
        EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '$shadow', r);
        INSERT INTO plog.planted VALUES ('view $shadow.' || r);
    END LOOP;
    FOREACH r IN ARRAY ARRAY['text', 'int8', 'int4', 'oid', 'regclass', 'regprocedure', 'regrole',
                             'timestamptz', 'interval', 'bool', 'jsonb', 'name', 'varchar'] LOOP
        BEGIN
            EXECUTE format('CREATE DOMAIN %I.%I AS pg_catalog.%I CHECK (plog.hit(%L))',
                           '$shadow', r, r, 'domain $shadow.' || r);
            INSERT INTO plog.planted VALUES ('domain $shadow.' || r);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END
\$shadow\$;
};
}

# In a calling session: temporary tables and views named like finlive's
# (pg_temp is searched first for relations).
sub temp_shadows_sql
{
	return q{
CREATE TEMP TABLE finlive_target (jobs pg_catalog.regclass, runs pg_catalog.regclass);
CREATE TEMP TABLE finlive_reap_log (target pg_catalog.regclass, job_id pg_catalog.int8);
INSERT INTO pg_temp.finlive_target VALUES (NULL, NULL);
INSERT INTO pg_temp.finlive_reap_log VALUES (NULL, NULL);
ALTER TABLE pg_temp.finlive_target ENABLE ROW LEVEL SECURITY;
ALTER TABLE pg_temp.finlive_target FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON pg_temp.finlive_target USING (plog.hit('read of pg_temp.finlive_target'));
ALTER TABLE pg_temp.finlive_reap_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE pg_temp.finlive_reap_log FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON pg_temp.finlive_reap_log USING (plog.hit('read of pg_temp.finlive_reap_log'))
    WITH CHECK (plog.hit('write of pg_temp.finlive_reap_log'));
CREATE TRIGGER t BEFORE INSERT OR UPDATE OR DELETE ON pg_temp.finlive_target
    FOR EACH STATEMENT EXECUTE FUNCTION plog.hit_trigger();
CREATE TEMP VIEW finlive_owners AS SELECT 1 AS job_id WHERE plog.hit('temp view finlive_owners');
CREATE TEMP VIEW finlive_targets AS SELECT 1 AS job_id WHERE plog.hit('temp view finlive_targets');
CREATE TEMP VIEW finlive_stats AS SELECT 1 AS ticks WHERE plog.hit('temp view finlive_stats');
CREATE TEMP VIEW pg_stat_activity AS SELECT * FROM pg_catalog.pg_stat_activity
    WHERE plog.hit('temp view pg_stat_activity');
CREATE TEMP VIEW pg_extension AS SELECT * FROM pg_catalog.pg_extension
    WHERE plog.hit('temp view pg_extension');
CREATE TEMP VIEW pg_class AS SELECT * FROM pg_catalog.pg_class WHERE plog.hit('temp view pg_class');
};
}

# Run a psql script as $role on $db; returns (stdout, stderr).
sub run_script
{
	my ($node, $db, $role, $script) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	IPC::Run::run(
		[ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr($db), '-U', $role, '-f', '-' ],
		'<', \$script, '>', \$out, '2>', \$err);
	return ($out, $err);
}

# Lines "@@ name SQLSTATE [value]" of a script's output as
# { name => [sqlstate, value] }, plus the other lines under "" in order.
sub parse_results
{
	my ($out) = @_;
	my %r;
	my @other;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^@@ (\S+) (\w{5})(?: (.*))?$/)
		{
			$r{$1} = [ $2, $3 // '' ];
		}
		else
		{
			push @other, $line;
		}
	}
	$r{''} = \@other;
	return \%r;
}

# Everything that shows a planted object ran: sequence calls and rows.
sub evidence_sql
{
	return q{
SELECT (SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM plog.hits_seq s)
       OPERATOR(pg_catalog.||) ' calls; '
       OPERATOR(pg_catalog.||) COALESCE(
           (SELECT pg_catalog.string_agg(DISTINCT h.what OPERATOR(pg_catalog.||) ' as '
                                         OPERATOR(pg_catalog.||) h.who, '; ')
              FROM plog.hits h), '')};
}

# Every role's attributes and memberships, to compare before and after.
sub role_snapshot_sql
{
	return q{
SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', r.rolname, r.rolsuper, r.rolcreaterole,
           r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin,
           (SELECT pg_catalog.string_agg(m.roleid::pg_catalog.regrole::pg_catalog.text, ','
                                         ORDER BY m.roleid)
              FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid)),
           ' ' ORDER BY r.rolname)
  FROM pg_catalog.pg_roles r};
}

1;
