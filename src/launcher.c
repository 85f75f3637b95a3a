/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker, connected to no database, that
 *	  keeps one reaper running in each database finlive.database names.
 *
 * Modelled on TimescaleDB's launcher and the logical replication launcher.
 * It reads pg_database (a shared catalog) and starts a reaper, as a dynamic
 * background worker, in every database that allows connections and that
 * finlive.database lists; under '*' (the default) that is every database
 * that is not a template, and a reaper that finds finlive not installed
 * leaves at once and is not started there again until CREATE EXTENSION
 * finlive commits in that database (dbevents.c tells the launcher).  So
 * after a restart every database is looked at once, and later only the
 * databases that need a reaper have one.
 *
 * It restarts a reaper that died (after REAPER_RESTART_MS, as the
 * postmaster would), never starts one in a database that is on hold (a
 * session about to drop it, see reapers.c), and, when no background worker
 * slot is free, logs one WARNING naming the database and
 * max_worker_processes and tries again every second until one frees.
 * Reapers leave by themselves when finlive.database stops naming their
 * database.
 *
 * It also opens the restart window (reaper_note_server_start): it starts
 * only once recovery is over, so at server start and at promotion.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "reaper.h"
#include "reapers.h"
#include "settings.h"
#include "worker.h"

PGDLLEXPORT void finlive_launcher_main(Datum main_arg);

/* How long the launcher waits before restarting a reaper that died. */
#define REAPER_RESTART_MS	5000

/* Longest sleep, and the retry interval while no worker slot is free. */
#define LAUNCHER_NAP_MS		10000
#define NO_SLOT_RETRY_MS	1000

/* Beyond this a dead client's session may outlive it unnoticed. */
#define HALF_OPEN_LIMIT_S	600

/* What the launcher knows of one database. */
typedef struct DbState
{
	Oid			dboid;			/* hash key */
	bool		seen;			/* in pg_database at the last look */
	BackgroundWorkerHandle *handle;	/* of the reaper we started, or NULL */
	TimestampTz not_before;		/* no start before this */
	bool		warned_no_slot;
} DbState;

static HTAB *databases = NULL;

/* The last finlive.database value whose missing names were reported. */
static char *reported_list = NULL;

void
launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "finlive");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "finlive_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "finlive launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "finlive launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * Start the reaper of dboid as a dynamic background worker that notifies
 * the launcher when it starts and stops.  False when no slot is free.
 */
bool
launcher_start_reaper(Oid dboid, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;
	MemoryContext old;
	bool		started;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "finlive");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "finlive_reaper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "finlive reaper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "finlive reaper");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	/* the handle outlives the transaction the launcher looks in */
	old = MemoryContextSwitchTo(TopMemoryContext);
	started = RegisterDynamicBackgroundWorker(&worker, handle);
	MemoryContextSwitchTo(old);
	return started;
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
			(errmsg("a crashed client host may keep owning its finlive jobs for hours"),
			 errdetail("tcp_keepalives_idle is %s, so the server notices a half-open idle connection only when TCP gives up, about two hours later; tcp_user_timeout and client_connection_check_interval do not probe idle sessions.",
					   tcp_keepalives_idle > 0 ? "above 10 minutes" : "at the system default"),
			 errhint("Set tcp_keepalives_idle = 60, tcp_keepalives_interval = 10, tcp_keepalives_count = 6 and tcp_user_timeout = 60000 in postgresql.conf.")));
}

static void
forget_launcher(int code, Datum arg)
{
	reapers_set_launcher(false);
}

/* May a reaper run in this database, by finlive.database? */
static bool
database_wanted(Form_pg_database db)
{
	if (!db->datallowconn)
		return false;
	if (settings_reap_all_databases())
		return !db->datistemplate;
	return settings_database_listed(NameStr(db->datname));
}

/* Is the reaper we started for this database still there? */
static bool
reaper_running(DbState *state)
{
	pid_t		pid;

	if (reapers_pid_of(state->dboid) != 0)
		return true;
	if (state->handle != NULL &&
		GetBackgroundWorkerPid(state->handle, &pid) != BGWH_STOPPED)
		return true;			/* started, not attached yet */
	if (state->handle != NULL)
	{
		/* it stopped: after an error or a signal, wait before the next */
		pfree(state->handle);
		state->handle = NULL;
		if (reapers_last_exit(state->dboid) == REAPER_EXIT_OTHER)
			state->not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															REAPER_RESTART_MS);
	}
	return false;
}

/*
 * Start the reaper of one wanted database if it needs one now.  Returns the
 * latest time it should be looked at again (DT_NOEND: no hurry).
 */
static TimestampTz
tend_database(DbState *state, const char *dbname)
{
	TimestampTz now = GetCurrentTimestamp();
	ReaperExit	last;

	if (reaper_running(state) || reapers_on_hold(state->dboid))
		return DT_NOEND;
	last = reapers_last_exit(state->dboid);
	if (last == REAPER_EXIT_NO_EXTENSION && settings_reap_all_databases())
		return DT_NOEND;		/* until CREATE EXTENSION finlive there */
	if (now < state->not_before)
		return state->not_before;

	if (!launcher_start_reaper(state->dboid, &state->handle))
	{
		state->handle = NULL;
		if (!state->warned_no_slot)
			ereport(WARNING,
					(errmsg("no background worker slot is free for the finlive reaper of database \"%s\"",
							dbname),
					 errdetail("Its jobs are not reaped until a slot frees; the launcher tries again every second."),
					 errhint("Increase max_worker_processes (now %d) and restart the server.",
							 max_worker_processes)));
		state->warned_no_slot = true;
		return TimestampTzPlusMilliseconds(now, NO_SLOT_RETRY_MS);
	}
	if (state->warned_no_slot)
		ereport(LOG,
				(errmsg("the finlive reaper of database \"%s\" got a background worker slot",
						dbname)));
	state->warned_no_slot = false;
	return DT_NOEND;
}

/*
 * A database that finlive.database names but that does not exist (is not
 * among the names in "existing") gets no reaper: say so, once per value of
 * the setting.  (The launcher, connected to no database, can only scan
 * pg_database, not look a name up through its index.)
 */
static void
report_missing_databases(List *existing)
{
	const NameList *list = settings_database_list();
	const char *name;
	int			i;

	if (settings_reap_all_databases() ||
		(reported_list != NULL && strcmp(reported_list, finlive_database) == 0))
		return;
	name = list->stages;
	for (i = 0; i < list->nstages; i++)
	{
		ListCell   *lc;
		bool		exists = false;

		foreach(lc, existing)
			if (strcmp((char *) lfirst(lc), name) == 0)
				exists = true;
		if (!exists)
			ereport(WARNING,
					(errmsg("database \"%s\" named in finlive.database does not exist", name),
					 errdetail("No reaper works there until it is created."),
					 errhint("Create the database, or correct finlive.database and reload.")));
		name += strlen(name) + 1;
	}
	if (reported_list != NULL)
		pfree(reported_list);
	reported_list = MemoryContextStrdup(TopMemoryContext, finlive_database);
}

/*
 * Look at every database once: start the reapers that should run, forget
 * the databases that are gone.  Returns when to look again.
 */
static TimestampTz
tend_databases(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	HASH_SEQ_STATUS status;
	DbState    *state;
	List	   *names = NIL;
	TimestampTz next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LAUNCHER_NAP_MS);

	hash_seq_init(&status, databases);
	while ((state = hash_seq_search(&status)) != NULL)
		state->seen = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		bool		found;

		names = lappend(names, pstrdup(NameStr(db->datname)));
		if (!database_wanted(db))
			continue;
		state = hash_search(databases, &db->oid, HASH_ENTER, &found);
		if (!found)
		{
			state->handle = NULL;
			state->not_before = 0;
			state->warned_no_slot = false;
		}
		state->seen = true;
		next = Min(next, tend_database(state, NameStr(db->datname)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	report_missing_databases(names);
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* gone, or no longer listed: its reaper leaves by itself */
	hash_seq_init(&status, databases);
	while ((state = hash_seq_search(&status)) != NULL)
	{
		if (state->seen || reaper_running(state))
			continue;
		reapers_forget(state->dboid);
		hash_search(databases, &state->dboid, HASH_REMOVE, NULL);
	}
	return next;
}

void
finlive_launcher_main(Datum main_arg)
{
	HASHCTL		info;
	static uint32 wait_event = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("finlive launcher");

	reapers_set_launcher(true);
	before_shmem_exit(forget_launcher, (Datum) 0);
	reaper_note_server_start();
	check_half_open_window();
	worker_check_ceiling();

	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(DbState);
	databases = hash_create("finlive databases", 64, &info, HASH_ELEM | HASH_BLOBS);

	for (;;)
	{
		TimestampTz next;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			worker_check_ceiling();
		}
		next = tend_databases();
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next), 1),
						 compat_wait_event("FinliveLauncherMain", &wait_event));
		ResetLatch(MyLatch);
	}
}
