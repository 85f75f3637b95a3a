#!/usr/bin/env bash
# The finlive sanitizer run.  Run as root on Debian 12:
#
#   bash test/asan/run.sh            # about 2-3 minutes
#
#  1. builds finlive with -fsanitize=address,undefined into a private copy of
#     the PostgreSQL installation that test/deps.sh chose (the system's
#     finlive.so, which other clusters on this machine load, is left alone);
#  2. starts a server from that copy with the ASan runtime preloaded
#     (LD_PRELOAD) and finlive in shared_preload_libraries, configured like
#     the suites' temp instances (test/finlive.conf);
#  3. runs the pg_regress and isolation suites (sql/, specs/) against it;
#  4. checks that no finlive lock (pg_locks.objsubid = 7966) and no owner
#     (finlive_owners in every database, finlive_stats.owners_active)
#     outlives its session;
#  5. runs 1,000,000 mark/clear cycles (plain, re-mark, staged, clear_all,
#     pg_advisory_unlock_all) and checks that finlive's shared memory
#     (pg_shmem_allocations), the session's memory and the registry's
#     capacity (finlive.max_owners owners, then 53400; 5000 distinct stages
#     at once) are flat;
#  6. runs the fuzz pass (test/fuzz/fuzz.py) against the same server, for
#     the reaper's error paths, the policy arguments, finlive_explain and
#     finlive_reap_errors (ASAN_FUZZ=0 skips it); then, with
#     finlive.database = '*', the launcher and a reaper per database:
#     CREATE EXTENSION, CREATE DATABASE ... TEMPLATE, a reaper terminated,
#     DROP DATABASE;
#  7. fails on any sanitizer report, backend crash, suite failure or leak.
#
# ASAN_CYCLES (default 1000000), PGPORT (default 56433), ASAN_KEEP=1 keeps
# the work directory, ASAN_FUZZ=0 skips step 6, ASAN_SELFTEST=1 plants a
# heap overflow at the end to show that a report fails the run.  Exit status
# 1 on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/chaos/common.sh
. "$root/test/chaos/common.sh"

start=$(date +%s)
chaos_deps
# The sanitizer runtimes gcc links against (the .so symlinks come with gcc's
# libgcc-N-dev; their targets, libasanN and libubsanN, are what is probed),
# and nm / objdump for the checks below.
for lib in libasan libubsan; do
	so=$(gcc -print-file-name=$lib.so)
	if [ ! -e "$so" ]; then
		if target=$(readlink "$so" 2>/dev/null) && [ "${target##*.so.}" != "$target" ]; then
			finlive_want_file "$so" "$lib${target##*.so.}"
		else
			finlive_want_file "$so" "libgcc-$(gcc -dumpversion | cut -d. -f1)-dev"
		fi
	fi
done
finlive_want_cmd nm binutils
finlive_want_cmd objdump binutils
finlive_install_wanted
cycles=${ASAN_CYCLES:-1000000}
port=${PGPORT:-56433}

work=$(mktemp -d /tmp/finlive-asan.XXXXXX)
priv=$work/pg                    # private copy of the installation
logs=$work/sanitizer             # ASan/UBSan reports
data=$work/data
sock=$work
mkdir -p "$logs"
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
pgxs=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")   # .../lib/pgxs
pbin=$priv$bindir

cleanup() {
	local status=$?
	[ -x "$pbin/pg_ctl" ] && [ -d "$data" ] &&
		runuser -u postgres -- "$pbin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	if [ $status -ne 0 ] || [ "${ASAN_KEEP:-0}" = 1 ]; then
		echo "asan: work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# -- 1. a private installation, and finlive built with the sanitizers into it
mkdir -p "$priv$(dirname "$bindir")" "$priv$(dirname "$sharedir")"
cp -a "$(dirname "$bindir")/." "$priv$(dirname "$bindir")/"    # bin/ and lib/
cp -a "$sharedir" "$priv$(dirname "$sharedir")/"
[ -d "$priv$pkglibdir" ] || { echo "asan: $pkglibdir is not under $(dirname "$bindir")"; exit 1; }
src=$work/src
mkdir -p "$src"
tar -C "$root" --exclude=.git --exclude='tmp_*' --exclude=results -cf - . | tar -C "$src" -xf -
sanflags='-fsanitize=address,undefined -fno-omit-frame-pointer -g'
make -C "$src" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
make -C "$src" -s PG_CONFIG="$PG_CONFIG" COPT="$sanflags" >/dev/null
make -C "$src" -s PG_CONFIG="$PG_CONFIG" install DESTDIR="$priv" >/dev/null
if [ "$(nm -D "$priv$pkglibdir/finlive.so" | grep -c '__asan_init')" = 0 ]; then
	echo "asan: the private finlive.so is not instrumented"; exit 1
fi
chown -R postgres: "$work"
libasan=$(gcc -print-file-name=libasan.so)
echo "asan: finlive built with $sanflags into $priv; runtime $libasan"

# -- 2. the server, with the sanitizer runtime preloaded
runuser -u postgres -- "$pbin/initdb" -A trust -U postgres -D "$data" >/dev/null
# the suites' own server settings (the temp instances' --temp-config), then
# this server's
cat "$root/test/finlive.conf" >>"$data/postgresql.conf"
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
log_line_prefix = '%m [%p] '
EOF
export ASAN_OPTIONS="detect_leaks=0:log_path=$logs/asan:halt_on_error=1:abort_on_error=0:detect_odr_violation=0:allow_user_segv_handler=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$logs/ubsan"
# A preloaded ASan runtime starts lazily, at the first malloc.  In postgres
# that first malloc comes inside bindtextdomain(), called by libgpg-error's
# constructor, while glibc holds its gettext lock; the runtime's start-up
# calls dlerror() -> dcgettext(), which takes the same lock as a reader and
# leaves it corrupted, and postgres then hangs in set_pglocale_pgservice().
# A tiny shim wraps bindtextdomain() to start the runtime before the lock.
libc_so=$(ldd "$pbin/postgres" | awk '$1 ~ /^libc\.so/ {print $3}')
ver=$(objdump -T "$libc_so" | awk '$NF == "bindtextdomain" {v = $(NF-1)} END {print v}')
cat >"$work/shim.c" <<EOF
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
char *bindtextdomain(const char *domain, const char *dir)
{
	static char *(*real)(const char *, const char *);
	void *volatile p = malloc(16);	/* start the ASan runtime here, outside the lock */

	free(p);
	if (real == NULL)
		real = (char *(*)(const char *, const char *)) dlvsym(RTLD_NEXT, "bindtextdomain", "$ver");
	return real(domain, dir);
}
EOF
echo "$ver { global: bindtextdomain; local: *; };" >"$work/shim.map"
gcc -shared -fPIC -O0 -Wl,--version-script="$work/shim.map" -o "$work/shim.so" "$work/shim.c" -ldl
chmod 755 "$work/shim.so"
# PGHOST/PGPORT: backends that connect back (dblink in the suites) find this server
runuser -u postgres -- env LD_PRELOAD="$libasan:$work/shim.so" PGHOST="$sock" PGPORT="$port" \
	ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
	"$pbin/pg_ctl" -D "$data" -l "$work/server.log" -t 60 -w start >/dev/null
export PGHOST=$sock PGPORT=$port PGUSER=postgres
psql() { "$pbin/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
pid=$(head -1 "$data/postmaster.pid")
if [ "$(grep -c libasan "/proc/$pid/maps")" = 0 ]; then
	echo "asan: the postmaster did not load the ASan runtime"; exit 1
fi
echo "asan: server $("$pbin/postgres" --version | cut -d' ' -f3-) with the ASan runtime preloaded (pid $pid)"

failed=0
fail() { echo "asan: FAIL: $*"; failed=1; }

# -- 3. the suites
as_pg() { runuser -u postgres -- "$@"; }
regress_tests=$(cd "$src/sql" && ls *.sql | sed 's/\.sql$//' | sort | tr '\n' ' ')
iso_tests=$(cd "$src/specs" && ls *.spec | sed 's/\.spec$//' | sort | tr '\n' ' ')
t_suites=$(date +%s)
if ! (cd "$src" && as_pg "$pgxs/src/test/regress/pg_regress" --inputdir=. --outputdir=./out_regress \
		--bindir="$pbin" --host="$sock" --port="$port" --dbname=contrib_regression $regress_tests \
		>"$work/regress.out" 2>&1); then
	fail "pg_regress suite"; tail -5 "$work/regress.out"
	[ -f "$src/out_regress/regression.diffs" ] && head -100 "$src/out_regress/regression.diffs"
fi
grep -E '^# All|^All|tests (passed|failed)|failed \(ignored\)' "$work/regress.out" | sed 's/^/  regress: /' || true
if ! (cd "$src" && as_pg "$pgxs/src/test/isolation/pg_isolation_regress" --inputdir=. --outputdir=./out_iso \
		--bindir="$pbin" --host="$sock" --port="$port" --dbname=isolation_regression $iso_tests \
		>"$work/iso.out" 2>&1); then
	fail "isolation suite"; tail -5 "$work/iso.out"
	[ -f "$src/out_iso/regression.diffs" ] && head -100 "$src/out_iso/regression.diffs"
fi
grep -E '^# All|^All|tests (passed|failed)' "$work/iso.out" | sed 's/^/  isolation: /' || true
echo "asan: suites: $(echo $regress_tests | wc -w) regress + $(echo $iso_tests | wc -w) isolation tests in $(( $(date +%s) - t_suites )) s"

# -- 4. nothing outlives its session
for i in $(seq 1 100); do
	n=$(psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
	[ "$n" = 0 ] && break
	sleep 0.1
done
locks=$(psql -d postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966")
owners="?"
per_db=""
for db in $(psql -d postgres -c "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1"); do
	if [ "$(psql -d "$db" -c "SELECT count(*) FROM pg_extension WHERE extname = 'finlive'")" = 1 ]; then
		per_db="$per_db $db:$(psql -d "$db" -c 'SELECT count(*) FROM finlive_owners')"
		owners=$(psql -d "$db" -c 'SELECT owners_active FROM finlive_stats()')   # cluster-wide
	fi
done
echo "asan: after the suites: finlive locks $locks, owners_active $owners, finlive_owners per database:${per_db:- (none installed)}"
[ "$locks" = 0 ] || fail "$locks finlive locks outlived their sessions"
[ "$owners" = 0 ] || [ "$owners" = "?" ] || fail "owners_active is $owners after every session ended"
echo "$per_db" | grep -qE ':[1-9]' && fail "finlive_owners not empty:$per_db"

# -- 5. a million mark/clear cycles: shared memory, session memory, capacity
psql -d postgres -c 'CREATE DATABASE cycles'
psql -d cycles -c 'CREATE EXTENSION finlive'
shmem_sql="SELECT coalesce(string_agg(name || '=' || size || '/' || allocated_size, ', ' ORDER BY name), 'none')
             FROM pg_shmem_allocations WHERE name ILIKE '%finlive%'"
shmem_total_sql="SELECT sum(allocated_size) FROM pg_shmem_allocations"
shmem_before=$(psql -d cycles -c "$shmem_sql")
total_before=$(psql -d cycles -c "$shmem_total_sql")
max_owners=$(psql -d cycles -c 'SHOW finlive.max_owners')
t_cycles=$(date +%s)
cat >"$work/cycles.sql" <<EOF
\set ON_ERROR_STOP 1
CREATE FUNCTION cycle(n integer, variant integer) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    i integer;
    j bigint;
    t bigint;
BEGIN
    FOR i IN 1 .. n LOOP
        j := (i % 5000) + variant * 1000000;
        IF variant = 0 THEN             -- mark, clear
            t := finlive_mark(j);
            PERFORM finlive_clear(j);
        ELSIF variant = 1 THEN          -- mark twice, clear once
            t := finlive_mark(j, i, 'stage-' || (i % 250));
            t := finlive_mark(j, i + 1, 'stage-' || (i % 200));
            PERFORM finlive_clear(j);
        ELSIF variant = 2 THEN          -- mark a few, clear them all
            t := finlive_mark(j, NULL, 'deploy-staging');
            IF i % 7 = 0 THEN PERFORM finlive_clear_all(); END IF;
        ELSE                            -- ownership dropped behind finlive's back
            t := finlive_mark(j, NULL, 'stage-' || (i % 250));
            IF i % 3 = 0 THEN PERFORM pg_advisory_unlock_all(); END IF;
        END IF;
        IF t IS NULL OR t <= 0 THEN
            RAISE EXCEPTION 'mark % of variant % returned %', j, variant, t;
        END IF;
    END LOOP;
    PERFORM finlive_clear_all();
    PERFORM pg_advisory_unlock_all();
END \$\$;
CREATE TABLE mem (step integer, bytes bigint);
INSERT INTO mem SELECT 0, sum(total_bytes) FROM pg_backend_memory_contexts;
EOF
per=$(( cycles / 8 ))
for step in 1 2 3 4 5 6 7 8; do
	echo "SELECT 'cycle $step: variant $(( (step - 1) % 4 )), $per cycles' FROM cycle($per, $(( (step - 1) % 4 )));"
	echo "INSERT INTO mem SELECT $step, sum(total_bytes) FROM pg_backend_memory_contexts;"
done >>"$work/cycles.sql"
cat >>"$work/cycles.sql" <<EOF
SELECT 'session memory after each eighth (bytes): ' || string_agg(bytes::text, ' ' ORDER BY step) FROM mem;
-- the second round repeats the first one's four variants: memory must not grow
SELECT 'growth over the second half: ' || (max(bytes) FILTER (WHERE step = 8) - max(bytes) FILTER (WHERE step = 4)) FROM mem;
-- capacity: every registry slot is usable again
SELECT 'marked up to max_owners: ' || count(finlive_mark(g)) FROM generate_series(1, $max_owners) g;
\set ON_ERROR_STOP 0
SELECT finlive_mark(-1);
\set ON_ERROR_STOP 1
SELECT 'cleared: ' || finlive_clear_all();
-- any number of distinct stages at once (finlive_owners first verifies, and
-- so drops, the entries pg_advisory_unlock_all left stale), each up to 256
-- bytes: the stage is kept in the entry, no pool to leak from
SELECT 'owners: ' || count(*) FROM finlive_owners;
SELECT 'distinct stages marked: ' || count(finlive_mark(g, NULL, 'pool-' || g || repeat('s', g % 240)))
  FROM generate_series(1, 5000) g;
SELECT 'distinct stages owned: ' || count(DISTINCT stage) FROM finlive_owners WHERE pid = pg_backend_pid();
SELECT 'cleared: ' || finlive_clear_all();
EOF
if ! as_pg env PGHOST="$sock" PGPORT="$port" "$pbin/psql" -X -q -At -d cycles -f "$work/cycles.sql" >"$work/cycles.out" 2>&1; then
	fail "mark/clear cycles"; cat "$work/cycles.out"
fi
sed 's/^/  cycles: /' "$work/cycles.out"
grep -q 'ERROR:.*53400\|registry is full' "$work/cycles.out" || psql -d cycles -c "SELECT 1" >/dev/null
cap_err=$(grep -c 'finlive ownership registry is full' "$work/cycles.out" || true)
[ "$cap_err" = 1 ] || fail "the registry did not refuse exactly the (max_owners+1)th owner ($cap_err refusals)"
stages=$(sed -n 's/^distinct stages owned: //p' "$work/cycles.out")
[ "$stages" = 5000 ] || fail "5000 distinct stages marked at once: $stages owned"
growth=$(sed -n 's/^growth over the second half: //p' "$work/cycles.out")
[ -n "$growth" ] && [ "$growth" -le 65536 ] || fail "session memory grew by $growth bytes over the cycles"
shmem_after=$(psql -d cycles -c "$shmem_sql")
total_after=$(psql -d cycles -c "$shmem_total_sql")
echo "asan: $cycles mark/clear cycles in $(( $(date +%s) - t_cycles )) s"
echo "asan: finlive shared memory before: $shmem_before"
echo "asan: finlive shared memory after:  $shmem_after"
echo "asan: all shared memory allocations: $total_before bytes before, $total_after after"
[ "$shmem_before" = "$shmem_after" ] || fail "finlive's shared memory changed"
[ "$total_before" = "$total_after" ] || fail "the server's shared memory allocations changed"
locks=$(psql -d postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966")
[ "$locks" = 0 ] || fail "$locks finlive locks left after the cycles"

# -- 6. the fuzz pass (test/fuzz) against the same server, for the reaper's
#       error paths: only what the sanitizers and the server log say counts
#       here (test/fuzz/run.sh judges the answers)
if [ "${ASAN_FUZZ:-1}" = 1 ]; then
	for setting in "finlive.naptime = 20" "finlive.restart_grace = 0" \
		"finlive.finalize_grace = 60" "finlive.max_running = 7200"; do
		psql -d postgres -c "ALTER SYSTEM SET $setting"
	done
	psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	t_fuzz=$(date +%s)
	FUZZ_SERVER_LOG=$work/server.log FUZZ_SCALE=${ASAN_FUZZ_SCALE:-0.5} "$PY" -u "$root/test/fuzz/fuzz.py" \
		>"$work/fuzz.out" 2>&1 || true
	echo "asan: fuzz pass against the sanitized server in $(( $(date +%s) - t_fuzz )) s: $(grep -E '^  calls' "$work/fuzz.out" | tr -s ' ') ($(grep '^RESULT' "$work/fuzz.out" || echo 'no result'); its answers are judged by test/fuzz/run.sh)"
fi

# -- 6b. the launcher and a reaper per database (finlive.database = '*'):
#        CREATE EXTENSION starts one, CREATE DATABASE ... TEMPLATE and DROP
#        DATABASE move it out of the way, a reaper that is terminated is
#        restarted by the launcher.  DDL that fails here is a failure too.
t_dbs=$(date +%s)
psql -d postgres -c "ALTER SYSTEM SET finlive.database = '*'"
psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
reaper_in() {   # DB [SECONDS]: wait until a reaper runs in DB
	local i
	for i in $(seq 1 $(( ${2:-20} * 10 ))); do
		[ "$(psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'finlive reaper' AND datname = '$1'")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
dbs_ok=0
for i in 1 2 3; do
	psql -d postgres -c "CREATE DATABASE asan_db$i" &&
		psql -d "asan_db$i" -c "CREATE EXTENSION finlive" || { fail "CREATE DATABASE/EXTENSION asan_db$i"; continue; }
	reaper_in "asan_db$i" || fail "no reaper in asan_db$i 20 s after CREATE EXTENSION"
	psql -d postgres -c "CREATE DATABASE asan_copy$i TEMPLATE asan_db$i" ||
		fail "CREATE DATABASE ... TEMPLATE asan_db$i (its reaper in the way?)"
	if reaper_in "asan_copy$i"; then
		psql -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		                      WHERE backend_type = 'finlive reaper' AND datname = 'asan_copy$i'" >/dev/null
		reaper_in "asan_copy$i" 20 || fail "the reaper of asan_copy$i was not restarted after it was terminated"
	else
		fail "no reaper in asan_copy$i (a copy of a database with finlive)"
	fi
	psql -d postgres -c "DROP DATABASE asan_db$i" || fail "DROP DATABASE asan_db$i (its reaper in the way?)"
	psql -d postgres -c "DROP DATABASE asan_copy$i" || fail "DROP DATABASE asan_copy$i (its reaper in the way?)"
	dbs_ok=$((dbs_ok + 1))
done
psql -d postgres -c "ALTER SYSTEM RESET finlive.database"
psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
echo "asan: reapers per database: $dbs_ok of 3 rounds of CREATE EXTENSION / TEMPLATE copy / reaper terminated / DROP DATABASE in $(( $(date +%s) - t_dbs )) s"

# ASAN_SELFTEST=1: prove the harness sees a report.  A throwaway instrumented
# function overflows a heap buffer by one byte; the run must then FAIL.
if [ "${ASAN_SELFTEST:-0}" = 1 ]; then
	cat >"$work/selftest.c" <<'EOF'
#include "postgres.h"
#include "fmgr.h"
#include <stdlib.h>
PG_MODULE_MAGIC;
PG_FUNCTION_INFO_V1(asan_selftest);
Datum
asan_selftest(PG_FUNCTION_ARGS)
{
	volatile char *p = malloc(8);
	int32		r = p[8];			/* heap-buffer-overflow */

	free((void *) p);
	PG_RETURN_INT32(r);
}
EOF
	gcc $sanflags -fPIC -shared -I"$("$PG_CONFIG" --includedir-server)" -o "$priv$pkglibdir/asan_selftest.so" "$work/selftest.c"
	psql -d postgres -c "CREATE FUNCTION asan_selftest() RETURNS integer AS 'asan_selftest' LANGUAGE C" >/dev/null
	psql -d postgres -c "SELECT asan_selftest()" >/dev/null 2>&1 || true
	sleep 2
fi

# -- 7. sanitizer reports and crashes
runuser -u postgres -- "$pbin/pg_ctl" -D "$data" -m fast -t 30 stop >/dev/null 2>&1 ||
	runuser -u postgres -- "$pbin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
reports=$(cat "$logs"/asan.* "$logs"/ubsan.* 2>/dev/null | grep -cE 'ERROR: AddressSanitizer|runtime error:' || true)
inlog=$(grep -cE 'AddressSanitizer|runtime error:|terminated by signal|PANIC|server process .* exited with exit code' "$work/server.log" || true)
echo "asan: sanitizer reports: $reports; crash/sanitizer lines in the server log: $inlog"
if [ "$reports" != 0 ] || [ "$inlog" != 0 ]; then
	fail "sanitizer findings"
	cat "$logs"/asan.* "$logs"/ubsan.* 2>/dev/null | head -80
	grep -E -A20 'AddressSanitizer|runtime error:|terminated by signal|PANIC|server process .* exited with exit code' "$work/server.log" | head -60
fi
echo "asan: $([ $failed = 0 ] && echo PASS || echo FAIL), $(( $(date +%s) - start )) s wall clock"
exit $failed
