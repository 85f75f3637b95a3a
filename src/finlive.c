/*-------------------------------------------------------------------------
 *
 * finlive.c
 *	  Library entry point: wires settings, shared memory and the worker.
 *
 * Only the preload gives finlive its shared memory and its worker.  Loaded
 * any other way (CREATE EXTENSION without the preload), _PG_init defines
 * the settings and stops; every SQL function then refuses to run (see
 * functions.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "counters.h"
#include "ownership.h"
#include "reaper.h"
#include "settings.h"
#include "tokens.h"
#include "worker.h"

PG_MODULE_MAGIC;

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
	LWLockRelease(AddinShmemInitLock);
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

	worker_register();
}
