/*-------------------------------------------------------------------------
 *
 * finlive.c
 *	  Library entry point: wires settings, shared memory, the hooks and the
 *	  workers.
 *
 * Only the preload gives finlive its shared memory, its launcher and its
 * utility hook.  Loaded any other way (CREATE EXTENSION without the
 * preload), _PG_init defines the settings and stops; every SQL function
 * then refuses to run (finlive_require_ready).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "compat.h"
#include "counters.h"
#include "dbevents.h"
#include "failures.h"
#include "finlive.h"
#include "ownership.h"
#include "reaper.h"
#include "reapers.h"
#include "settings.h"
#include "tokens.h"
#include "worker.h"

FINLIVE_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
finlive_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ownership_shmem_request();
	tokens_shmem_request();
	counters_shmem_request();
	reaper_shmem_request();
	reapers_shmem_request();
	failures_shmem_request();
}

static void
finlive_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ownership_shmem_init();
	tokens_shmem_init();
	counters_shmem_init();
	reaper_shmem_init();
	reapers_shmem_init();
	failures_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Every finlive SQL function starts here.  Without the preload there is no
 * shared registry to work with.  In a parallel worker (reached through a
 * function wrongly marked PARALLEL SAFE) ownership checks would take the
 * leader's own locks, which the worker shares as a member of its lock
 * group, for another session's: refuse rather than answer wrongly.
 */
void
finlive_require_ready(void)
{
	if (!ownership_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("finlive must be loaded via shared_preload_libraries"),
				 errhint("Add finlive to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("finlive functions cannot run in a parallel worker"),
				 errdetail("A parallel worker shares its leader's locks, so it cannot tell the leader's ownership from another session's."),
				 errhint("Mark the function that calls finlive PARALLEL RESTRICTED or PARALLEL UNSAFE.")));
}

void
_PG_init(void)
{
	settings_define();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = finlive_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = finlive_shmem_startup;

	ownership_reserve_lock_room();
	dbevents_install();
	launcher_register();
}
