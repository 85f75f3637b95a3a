/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The finlive background worker: runs the reaper over finlive.database
 *	  every finlive.naptime, and at once when an owning session ends.
 *
 * A worker_spi-style latch loop.  It starts only once recovery has finished
 * (BgWorkerStart_RecoveryFinished), so it does nothing on a standby and
 * starts by itself on promotion.  Each tick runs in short transactions of
 * its own: one to find the targets and trim the log, one per target; no
 * transaction or row lock is held between ticks.
 *
 * Ownership ending wakes the worker through its latch (see ownership.c).  A
 * burst of such wake-ups is coalesced: the worker waits WAKE_COALESCE_MS
 * after the first one, then runs one tick for all of them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
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
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "counters.h"
#include "ownership.h"
#include "reaper.h"
#include "settings.h"
#include "targets.h"
#include "worker.h"

#define WAKE_COALESCE_MS	50

/* Beyond this a dead client's session may outlive it unnoticed. */
#define HALF_OPEN_LIMIT_S	600

PGDLLEXPORT void finlive_worker_main(Datum main_arg);

void
worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "finlive");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "finlive_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "finlive reaper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "finlive reaper");
	RegisterBackgroundWorker(&worker);
}

/* WARNING when the Tier-3 ceiling cannot catch anything Tier-2 leaves. */
static void
check_ceiling(void)
{
	if (finlive_max_running <= finlive_finalize_grace)
		ereport(WARNING,
				(errmsg("finlive.max_running (%d s) is not above finlive.finalize_grace (%d s)",
						finlive_max_running, finlive_finalize_grace),
				 errdetail("The Tier-3 backstop then reaps jobs before Tier-2 may finalize them."),
				 errhint("Set finlive.max_running well above finlive.finalize_grace.")));
}

/*
 * WARNING when a client host that vanishes would leave its sessions, and so
 * its ownership, alive for hours.  An owner is usually an idle session, and
 * only TCP keepalives probe an idle connection: tcp_user_timeout acts only
 * on unacknowledged data, client_connection_check_interval only while a
 * query runs.  A server without TCP listeners has no such clients.
 */
static void
check_half_open_window(void)
{
	if (ListenAddresses == NULL || ListenAddresses[0] == '\0')
		return;
	if (tcp_keepalives_idle > 0 && tcp_keepalives_idle <= HALF_OPEN_LIMIT_S)
		return;
	ereport(WARNING,
			(errmsg("finlive: a crashed client host may keep owning its jobs for hours"),
			 errdetail("tcp_keepalives_idle is %s, so the server notices a half-open idle connection only when TCP gives up, about two hours later; tcp_user_timeout and client_connection_check_interval do not probe idle sessions.",
					   tcp_keepalives_idle > 0 ? "above 10 minutes" : "at the system default"),
			 errhint("Set tcp_keepalives_idle = 60, tcp_keepalives_interval = 10, tcp_keepalives_count = 6 and tcp_user_timeout = 60000 in postgresql.conf.")));
}

static void
forget_waker(int code, Datum arg)
{
	ownership_set_waker(-1);
}

/*
 * One tick: find the targets (if finlive is installed), trim the log, then
 * reap each target in its own transaction.  Returns false when finlive is
 * not installed in this database.
 */
static bool
worker_tick(MemoryContext tick_cxt)
{
	ReaperCounters tick;
	FinliveCatalog cat;
	TimestampTz start = GetCurrentTimestamp();
	List	   *targets = NIL;
	ListCell   *lc;
	bool		installed;
	MemoryContext old;

	memset(&tick, 0, sizeof(tick));
	old = MemoryContextSwitchTo(tick_cxt);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "finlive: reaper tick");
	installed = OidIsValid(get_extension_oid("finlive", true));
	if (installed)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (targets_catalog(&cat))
		{
			RoleSwitch	sw;
			MemoryContext spi = MemoryContextSwitchTo(tick_cxt);
			char	   *sql;
			Oid			argtypes[1] = {TIMESTAMPTZOID};
			Datum		args[1];

			cat.qualified_schema = pstrdup(cat.qualified_schema);
			targets = targets_load(&cat);
			MemoryContextSwitchTo(spi);

			sql = psprintf("DELETE FROM %s.finlive_reap_log WHERE at OPERATOR(pg_catalog.<) $1",
						   cat.qualified_schema);
			args[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
										  (TimestampTz) finlive_log_retention * USECS_PER_SEC);
			targets_become(cat.owner, &sw);
			if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "could not trim finlive_reap_log");
			targets_restore(&sw);
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, targets)
	{
		ReaperCounters target_counts;

		memset(&target_counts, 0, sizeof(target_counts));
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		reaper_process_target(&cat, (Target *) lfirst(lc), &target_counts, NULL);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* counted once committed, so the counters agree with the log */
		counters_add_tick(&target_counts);
	}

	if (installed)
	{
		tick.ticks = 1;
		tick.last_tick_at = GetCurrentTimestamp();
		tick.last_tick_ms = (double) (tick.last_tick_at - start) / 1000.0;
		counters_add_tick(&tick);
	}
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextReset(tick_cxt);
	return installed;
}

void
finlive_worker_main(Datum main_arg)
{
	MemoryContext tick_cxt;
	TimestampTz next_tick;
	TimestampTz coalesce_until = 0;
	uint64		seen_exits;
	bool		logged_missing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(finlive_database, NULL, 0);
	pgstat_report_appname("finlive reaper");

	ownership_set_waker(MyProc->pgprocno);
	before_shmem_exit(forget_waker, (Datum) 0);
	reaper_note_worker_start();

	ereport(LOG,
			(errmsg("finlive reaper started in database \"%s\"", finlive_database)));
	check_half_open_window();
	check_ceiling();

	tick_cxt = AllocSetContextCreate(TopMemoryContext, "finlive tick",
									 ALLOCSET_DEFAULT_SIZES);
	seen_exits = ownership_exit_count();
	next_tick = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake_at;
		uint64		exits;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			TimestampTz last_tick = next_tick - (TimestampTz) finlive_naptime * 1000;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			check_ceiling();
			/* a shorter naptime counts from the last tick, not the next */
			next_tick = Min(next_tick, last_tick + (TimestampTz) finlive_naptime * 1000);
		}

		now = GetCurrentTimestamp();
		exits = ownership_exit_count();
		if (exits != seen_exits && coalesce_until == 0)
			coalesce_until = now + WAKE_COALESCE_MS * 1000;

		if (now >= next_tick || (coalesce_until != 0 && now >= coalesce_until))
		{
			seen_exits = exits;
			coalesce_until = 0;
			if (finlive_reaper_on)
			{
				bool		installed = worker_tick(tick_cxt);

				if (!installed && !logged_missing)
					ereport(LOG,
							(errmsg("finlive: extension \"finlive\" is not installed in database \"%s\"; the reaper waits for CREATE EXTENSION finlive",
									finlive_database)));
				logged_missing = !installed;
			}
			next_tick = GetCurrentTimestamp() + (TimestampTz) finlive_naptime * 1000;
		}

		wake_at = next_tick;
		if (coalesce_until != 0)
			wake_at = Min(wake_at, coalesce_until);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake_at), 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
