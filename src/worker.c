/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A reaper: the background worker that runs the reaper over one
 *	  database, every finlive.naptime and at once when an owner there dies.
 *
 * The launcher (launcher.c) starts one per database to reap.  A
 * worker_spi-style latch loop: it leaves SIGTERM promptly, reloads on
 * SIGHUP, and leaves by itself when its database is no longer listed in
 * finlive.database, when finlive is not installed there (under
 * finlive.database = '*'; a listed database is waited for quietly), and
 * when a session needs the database free (DROP DATABASE and kin, see
 * reapers.c).
 *
 * Two kinds of tick, on one reaper code path (reaper_tick_target):
 *
 *	- a full tick every finlive.naptime decides every running job;
 *	- an owner exit wakes the reaper at once (the latch), and a tick then
 *	  decides only the jobs the dead owners held: the first exit after a
 *	  quiet period is handled without delay; the exits that arrive while
 *	  that tick runs, or soon after, are gathered into one more tick,
 *	  EXIT_GATHER_MS after the first began, so a burst costs a few ticks,
 *	  not one each.
 *
 * Each tick runs in short transactions of its own: one to find the targets
 * and trim the log, one per target; no transaction or row lock is held
 * between ticks.  An error in any of them is logged and ends that part of
 * the tick only; a cancel ends the tick.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "counters.h"
#include "reaper.h"
#include "reapers.h"
#include "sandbox.h"
#include "settings.h"
#include "targets.h"
#include "worker.h"

PGDLLEXPORT void finlive_reaper_main(Datum main_arg);

/*
 * After a tick for owner exits, the next one waits this long from its
 * start, gathering the exits of a burst (40 sessions ending take tens of
 * milliseconds) into one tick instead of one each.  The first exit after a
 * quiet period is decided at once.
 */
#define EXIT_GATHER_MS		100

/* Why this reaper is leaving, for the launcher. */
static ReaperExit exit_reason = REAPER_EXIT_OTHER;

/* What one tick found and did, across its transactions. */
typedef struct Tick
{
	MemoryContext cxt;			/* lives for the tick */
	const ExitNotices *only;	/* NULL: a full tick */
	bool		installed;		/* finlive is installed here */
	bool		outdated;		/* ... at a version older than the library */
	int			version;
	FinliveCatalog cat;
	List	   *targets;
	bool		canceled;		/* an interrupt ended the tick */
} Tick;

static void
reaper_detach(int code, Datum arg)
{
	reapers_detach(reapers_leave_requested() ? REAPER_EXIT_ASKED : exit_reason);
}

/*
 * WARNING when the Tier-3 ceiling cannot catch anything Tier-2 leaves, by
 * the server settings (a target with its own policy is warned about when it
 * is registered).
 */
void
worker_check_ceiling(void)
{
	if (finlive_max_running <= finlive_finalize_grace)
		ereport(WARNING,
				(errmsg("finlive.max_running (%d s) is not above finlive.finalize_grace (%d s)",
						finlive_max_running, finlive_finalize_grace),
				 errdetail("The Tier-3 backstop then reaps jobs before Tier-2 may finalize them."),
				 errhint("Set finlive.max_running well above finlive.finalize_grace.")));
}

/*
 * Run work(tick, arg) in a transaction of its own with SPI connected.  An
 * error is logged as a WARNING naming "what" and ends this part of the
 * tick only; an interrupt ends the whole tick.  False on either.
 */
static bool
in_transaction(void (*work) (Tick *, void *), Tick *tick, void *arg, const char *what)
{
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		work(tick, arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(tick->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (sandbox_is_interrupt(edata))
		{
			ereport(LOG,
					(errmsg("reaper tick interrupted: %s", edata->message)));
			tick->canceled = true;
		}
		else
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("could not %s: %s", what, edata->message),
					 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* The tick's first part: is finlive here, and which targets does it have? */
static void
load_targets(Tick *tick, void *arg)
{
	MemoryContext spi;

	tick->installed = OidIsValid(get_extension_oid("finlive", true));
	if (!tick->installed || !targets_catalog(&tick->cat))
	{
		tick->installed = false;
		return;
	}
	tick->version = tick->cat.version;
	tick->outdated = tick->cat.version < FINLIVE_MIN_SQL_VERSION;
	if (tick->outdated)
		return;
	spi = MemoryContextSwitchTo(tick->cxt);
	tick->cat.qualified_schema = pstrdup(tick->cat.qualified_schema);
	tick->targets = targets_load(&tick->cat, true);
	MemoryContextSwitchTo(spi);
}

/* Delete finlive_reap_log rows older than finlive.log_retention. */
static void
trim_log(Tick *tick, void *arg)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	Sandbox		sb;

	args[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
								  (TimestampTz) finlive_log_retention * USECS_PER_SEC);
	sandbox_enter(tick->cat.owner, FINLIVE_SAFE_SEARCH_PATH, &sb);
	if (SPI_execute_with_args(psprintf("DELETE FROM %s.finlive_reap_log"
									   " WHERE at OPERATOR(pg_catalog.<) $1",
									   tick->cat.qualified_schema),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not trim finlive_reap_log");
	sandbox_leave(&sb);
}

/* One target's part of the tick. */
typedef struct TargetPart
{
	const Target *target;
	ReaperCounters counts;
} TargetPart;

static void
reap_target(Tick *tick, void *arg)
{
	TargetPart *part = (TargetPart *) arg;

	reaper_tick_target(&tick->cat, part->target, tick->only, &part->counts, NULL);
}

/*
 * One tick: find the targets (if finlive is installed), trim the log on a
 * full tick, then reap each target in its own transaction.  Counts reach
 * the shared counters once their transaction committed, so that they agree
 * with the log.
 */
static void
worker_tick(Tick *tick)
{
	TimestampTz start = GetCurrentTimestamp();
	ReaperCounters counts;
	ListCell   *lc;

	pgstat_report_activity(STATE_RUNNING, tick->only ? "finlive: reaping after an owner exit"
						   : "finlive: reaper tick");
	if (in_transaction(load_targets, tick, NULL, "load the reaper's targets") &&
		tick->installed && !tick->outdated && tick->only == NULL)
		(void) in_transaction(trim_log, tick, NULL, "trim finlive_reap_log");

	foreach(lc, tick->targets)
	{
		TargetPart	part;

		if (tick->canceled)
			break;
		memset(&part, 0, sizeof(part));
		part.target = (const Target *) lfirst(lc);
		if (in_transaction(reap_target, tick, &part, "reap a target"))
			counters_add_tick(&part.counts);
	}

	if (tick->installed && !tick->outdated)
	{
		memset(&counts, 0, sizeof(counts));
		counts.ticks = 1;
		counts.last_tick_at = GetCurrentTimestamp();
		counts.last_tick_ms = (double) (counts.last_tick_at - start) / 1000.0;
		counters_add_tick(&counts);
	}
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The reaper of one database (main_arg: its OID).  Started by the launcher;
 * never restarted by the postmaster (the launcher does that).
 */
void
finlive_reaper_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext tick_cxt;
	TimestampTz next_full;
	char	   *dbname;
	bool		logged_missing = false;
	bool		logged_outdated = false;
	static uint32 wait_event = 0;
	ExitNotices *pending;		/* exit notices not yet decided */
	TimestampTz last_exit_tick = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* one reaper per database, and none in a database a session needs free */
	if (!reapers_attach(dboid))
		proc_exit(0);
	before_shmem_exit(reaper_detach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("finlive reaper");
	StartTransactionCommand();
	dbname = get_database_name(dboid);
	if (dbname != NULL)
		dbname = MemoryContextStrdup(TopMemoryContext, dbname);
	CommitTransactionCommand();
	if (dbname == NULL)
		proc_exit(0);
	ereport(LOG,
			(errmsg("finlive reaper started in database \"%s\"", dbname)));

	tick_cxt = AllocSetContextCreate(TopMemoryContext, "finlive tick",
									 ALLOCSET_DEFAULT_SIZES);
	pending = MemoryContextAllocZero(TopMemoryContext, sizeof(ExitNotices));
	next_full = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now;
		TimestampTz gather_until;
		TimestampTz wake_at;
		bool		full_due;
		bool		exits_due;
		Tick		tick;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			TimestampTz last_full = next_full - (TimestampTz) finlive_naptime * 1000;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a shorter naptime counts from the last tick, not the next */
			next_full = Min(next_full, last_full + (TimestampTz) finlive_naptime * 1000);
		}
		if (reapers_leave_requested() || !settings_database_listed(dbname))
		{
			exit_reason = REAPER_EXIT_ASKED;
			proc_exit(0);
		}

		(void) reapers_take_exits(pending);

		/*
		 * finlive.fault_injection = 'no_exit_wakeup' makes this a purely
		 * periodic reaper, for the benchmark that compares the two.
		 */
		if (settings_fault_injected("no_exit_wakeup"))
			exit_notices_clear(pending);
		now = GetCurrentTimestamp();
		gather_until = TimestampTzPlusMilliseconds(last_exit_tick, EXIT_GATHER_MS);
		full_due = now >= next_full || pending->recheck;
		exits_due = (pending->njobs > 0 || pending->overflow) && now >= gather_until;
		if (finlive_reaper_on && (full_due || exits_due))
		{
			memset(&tick, 0, sizeof(tick));
			tick.cxt = tick_cxt;
			tick.only = (full_due || pending->overflow) ? NULL : pending;
			if (tick.only != NULL)
				last_exit_tick = now;
			MemoryContextSwitchTo(tick_cxt);
			worker_tick(&tick);
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(tick_cxt);
			exit_notices_clear(pending);
			if (tick.only == NULL)
				next_full = GetCurrentTimestamp() + (TimestampTz) finlive_naptime * 1000;

			if (!tick.installed)
			{
				if (settings_reap_all_databases())
				{
					/* under '*', a database without finlive gets no reaper */
					exit_reason = REAPER_EXIT_NO_EXTENSION;
					proc_exit(0);
				}
				if (!logged_missing)
					ereport(LOG,
							(errmsg("extension \"finlive\" is not installed in database \"%s\"", dbname),
							 errdetail("The reaper waits for CREATE EXTENSION finlive.")));
			}
			logged_missing = !tick.installed;
			if (tick.outdated && !logged_outdated)
				ereport(LOG,
						(errmsg("extension \"finlive\" in database \"%s\" is at version %d.%d, older than the library",
								dbname, tick.version / 10, tick.version % 10),
						 errdetail("The reaper waits for ALTER EXTENSION finlive UPDATE.")));
			logged_outdated = tick.outdated;
		}
		else if (!finlive_reaper_on)
		{
			next_full = now + (TimestampTz) finlive_naptime * 1000;
			exit_notices_clear(pending);
		}

		wake_at = next_full;
		if (pending->njobs > 0 || pending->overflow)
			wake_at = Min(wake_at, gather_until);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake_at), 1),
						 compat_wait_event("FinliveReaperMain", &wait_event));
		ResetLatch(MyLatch);
	}
}
