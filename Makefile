# finlive -- PGXS build.  C sources live in src/, one concern per file.

MODULE_big = finlive
OBJS = \
	src/finlive.o \
	src/settings.o \
	src/ownership.o \
	src/tokens.o \
	src/counters.o \
	src/sandbox.o \
	src/targets.o \
	src/failures.o \
	src/reaper.o \
	src/reapers.o \
	src/worker.o \
	src/launcher.o \
	src/dbevents.o \
	src/functions.o \
	src/diagnostics.o

EXTENSION = finlive
DATA = finlive--1.0.sql finlive--1.0--1.1.sql finlive--1.1--1.2.sql finlive--1.2--1.3.sql
PGFILEDESC = "finlive - liveness of job finalizers"

# Both suites start a private server that preloads finlive (PGXS has no
# "make check"; --temp-instance gives the same isolation).
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=$(srcdir)/test/finlive.conf
ISOLATION_OPTS = --temp-instance=./tmp_isolation --temp-config=$(srcdir)/test/finlive.conf

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks header dependencies only when the server was configured with
# --enable-depend, which packaged servers are not: without this rule, a
# changed struct in a header leaves stale objects that disagree about its
# layout and crash the backend.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# One target per suite, so test/run.sh can report each on its own.
.PHONY: installcheck-regress installcheck-isolation installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

EXTRA_CLEAN = tmp_regress tmp_isolation output_iso tmp_check results regression.diffs regression.out
