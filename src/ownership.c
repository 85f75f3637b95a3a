/*-------------------------------------------------------------------------
 *
 * ownership.c
 *	  Who finalizes which job: session-level advisory locks in a private key
 *	  space, and a shared registry of metadata beside them.
 *
 * A session owns job J of database D while it holds finlive's session-level
 * advisory lock (D, J).  The lock is the truth: it is visible to every
 * backend, survives the owner's transaction aborting, and the server drops
 * it the moment the owning session ends, however it ends.  The registry in
 * shared memory only adds what the lock cannot carry: run_id, stage, the
 * owner's (pid, backend_start), the fencing token and the time it was taken.
 * Each entry carries its stage itself, so the only limits are
 * finlive.max_owners entries and FINLIVE_STAGE_MAXLEN bytes per stage.
 *
 * Registry and locks are kept in step by one rule: a finlive lock is only
 * ever taken or released by this file, while it holds the registry
 * partition lock of that job exclusively, and together with the registry
 * entry.  So there is never a lock without an entry.  The reverse can
 * happen: pg_advisory_unlock_all() and DISCARD ALL drop the lock behind our
 * back, leaving a stale entry.  Every reader therefore verifies an entry
 * before trusting it:
 *
 *	- for the caller's own entry, LockHeldByMe() (backend-local, cheap; a
 *	  shared partition lock is enough to read it);
 *	- for another session's entry, a conditional acquire of the lock.  If it
 *	  succeeds, the owner is gone: the probe releases it and drops the entry.
 *
 * Because a probe briefly holds the lock, it runs under the exclusive
 * partition lock, like every mark of that job: a concurrent finlive_mark can
 * never meet a probe's lock and wrongly return NULL.  Lock order is always
 * registry partition -> lock manager partition.  Nothing called under a
 * registry partition lock can raise: locks are taken with
 * reportMemoryError = false and entries with HASH_ENTER_NULL.
 *
 * A parallel worker never gets here (finlive_require_ready refuses it): it
 * belongs to its leader's lock group, so its conditional acquire of the
 * leader's own lock would succeed and the probe would take a live owner
 * for a dead one.
 *
 * The locks need room in the server's shared lock table.  So that owned
 * jobs never take that room from the rest of the server, the preload
 * requests room for finlive.max_owners locks on top of it (see
 * compat_lock_room_size); a mark that still finds no room raises 53400.
 *
 * Every operation touches one partition: O(1) in the number of owned jobs.
 * Only finlive_owners() and finlive_snapshot() scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ownership.h"
#include "reapers.h"
#include "settings.h"
#include "tokens.h"

#define REGISTRY_PARTITIONS		32	/* power of 2 */

typedef struct OwnerKey
{
	Oid			dbid;
	uint32		pad;			/* always zero: keys are hashed as blobs */
	int64		job_id;
} OwnerKey;

typedef struct OwnerEntry
{
	OwnerKey	key;
	int64		run_id;
	int64		token;
	TimestampTz backend_start;
	TimestampTz since;
	int32		pid;
	bool		run_id_isnull;
	bool		stage_isnull;
	char		stage[FINLIVE_STAGE_MAXLEN + 1];
} OwnerEntry;

typedef struct OwnershipShared
{
	LWLockPadded *locks;		/* REGISTRY_PARTITIONS partition locks */
	pg_atomic_uint32 entries;	/* registry entries in use, <= max_owners */
} OwnershipShared;

static OwnershipShared *own_shared = NULL;
static HTAB *registry = NULL;

/* Jobs this backend has marked, so clear_all and exit need no scan. */
static HTAB *local_owned = NULL;

static bool release_job(int64 job_id);

static inline LWLock *
partition_lock(uint32 hashcode)
{
	return &own_shared->locks[hashcode % REGISTRY_PARTITIONS].lock;
}

static inline void
set_lock_tag(LOCKTAG *tag, Oid dbid, int64 job_id)
{
	SET_LOCKTAG_ADVISORY(*tag, dbid,
						 (uint32) (((uint64) job_id) >> 32),
						 (uint32) job_id,
						 FINLIVE_LOCK_OBJSUBID);
}

/*
 * Take the job's lock without waiting and without raising.  NOT_AVAIL means
 * busy or, rarely, no room in the lock table; callers tell them apart.
 */
static inline LockAcquireResult
acquire_nowait(const LOCKTAG *tag)
{
	return compat_lock_acquire_nowait(tag, ExclusiveLock);
}

static inline bool
entry_is_mine(const OwnerEntry *entry)
{
	return entry->pid == MyProcPid && entry->backend_start == MyStartTimestamp;
}

static Size
registry_size(void)
{
	return hash_estimate_size(finlive_max_owners, sizeof(OwnerEntry));
}

#ifdef COMPAT_LOCK_ROOM_SIZING
/*
 * Where the lock table cannot grow (compat.h), the postmaster sizes it with
 * max_locks_per_transaction raised by just enough for finlive.max_owners
 * more locks, and puts the setting back once the table exists
 * (ownership_shmem_init), so that it still means what the administrator
 * set: SHOW, the per-transaction budget, and the value a standby compares
 * with its primary's are unchanged.  A crash restart sizes shared memory
 * again, so the raise is applied again before that (an on_shmem_exit
 * callback of the postmaster's, which shmem_exit runs first).
 */
static int	locks_as_set = -1;

static void
raise_lock_table(int code, Datum arg)
{
	/* a lower bound of MaxBackends + max_prepared_transactions */
	int			backends = Max(MaxConnections + max_worker_processes + max_prepared_xacts, 1);

	locks_as_set = max_locks_per_xact;
	max_locks_per_xact += (finlive_max_owners + backends - 1) / backends;
}

static void
restore_lock_setting(void)
{
	if (locks_as_set < 0)
		return;
	max_locks_per_xact = locks_as_set;
	locks_as_set = -1;
	if (!IsUnderPostmaster)
		on_shmem_exit(raise_lock_table, (Datum) 0);
}
#endif

/*
 * Called from _PG_init while the postmaster loads the library: make room in
 * the lock table for every owned job (see compat.h).
 */
void
ownership_reserve_lock_room(void)
{
#ifdef COMPAT_LOCK_ROOM_SIZING
	raise_lock_table(0, (Datum) 0);
#endif
}

void
ownership_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(MAXALIGN(sizeof(OwnershipShared)), registry_size()));
#ifdef COMPAT_LOCK_ROOM_SHMEM
	/* room in the lock table for every owned job, never allocated by us */
	RequestAddinShmemSpace(compat_lock_room_size(finlive_max_owners));
#endif
	RequestNamedLWLockTranche("finlive_registry", REGISTRY_PARTITIONS);
}

/* Create or attach the registry; runs under AddinShmemInitLock. */
void
ownership_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	own_shared = ShmemInitStruct("finlive ownership", sizeof(OwnershipShared), &found);
	if (!found)
	{
		own_shared->locks = GetNamedLWLockTranche("finlive_registry");
		pg_atomic_init_u32(&own_shared->entries, 0);
	}

	info.keysize = sizeof(OwnerKey);
	info.entrysize = sizeof(OwnerEntry);
	info.num_partitions = REGISTRY_PARTITIONS;
	registry = compat_shmem_init_fixed_hash("finlive owner registry",
											finlive_max_owners, &info,
											HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
#ifdef COMPAT_LOCK_ROOM_SIZING
	restore_lock_setting();
#endif
}

/* False in a backend that did not get finlive through the preload. */
bool
ownership_ready(void)
{
	return own_shared != NULL;
}

/*
 * Claim room for one more registry entry.  The partitioned hash keeps a
 * free list per partition and so may hold a few more elements than asked
 * for; the capacity users set is enforced here.
 */
static bool
registry_reserve_entry(void)
{
	if (pg_atomic_fetch_add_u32(&own_shared->entries, 1) < (uint32) finlive_max_owners)
		return true;
	pg_atomic_fetch_sub_u32(&own_shared->entries, 1);
	return false;
}

/* Remove an entry; caller holds its partition lock exclusively. */
static void
registry_remove(const OwnerKey *key, uint32 hashcode)
{
	hash_search_with_hash_value(registry, key, hashcode, HASH_REMOVE, NULL);
	pg_atomic_fetch_sub_u32(&own_shared->entries, 1);
}

/*
 * Is another session's registry entry backed by its lock?  Caller holds the
 * entry's partition lock exclusively.  A stale entry is removed.
 *
 * A conditional acquire that fails means the lock is held (or, when the
 * lock table is out of room, that the probe could not tell: then the entry
 * is trusted, which errs towards the live finalizer).
 */
static bool
verify_other(OwnerEntry *entry, uint32 hashcode)
{
	LOCKTAG		tag;
	LockAcquireResult res;

	set_lock_tag(&tag, entry->key.dbid, entry->key.job_id);
	res = acquire_nowait(&tag);
	if (res == LOCKACQUIRE_NOT_AVAIL)
		return true;
	/* ours after all (ALREADY_HELD) or free: undo the count we just took */
	LockRelease(&tag, ExclusiveLock, true);
	if (res == LOCKACQUIRE_ALREADY_HELD)
		return true;
	registry_remove(&entry->key, hashcode);
	return false;
}

static void
fill_info(const OwnerEntry *entry, OwnerInfo *info)
{
	info->job_id = entry->key.job_id;
	info->run_id = entry->run_id;
	info->run_id_isnull = entry->run_id_isnull;
	info->stage_isnull = entry->stage_isnull;
	strlcpy(info->stage, entry->stage, sizeof(info->stage));
	info->pid = entry->pid;
	info->backend_start = entry->backend_start;
	info->token = entry->token;
	info->since = entry->since;
}

/*
 * The live owner of (dbid, job_id), if any.  Never waits on the job's lock.
 * A free job, and the caller's own entry, are answered under a shared
 * partition lock; only an entry that needs probing or dropping takes it
 * exclusively.
 */
static bool
lookup_in_db(Oid dbid, int64 job_id, OwnerInfo *info)
{
	OwnerKey	key = {dbid, 0, job_id};
	uint32		hashcode = get_hash_value(registry, &key);
	LWLock	   *plock = partition_lock(hashcode);
	OwnerEntry *entry;
	bool		live = false;
	LOCKTAG		tag;

	set_lock_tag(&tag, dbid, job_id);
	LWLockAcquire(plock, LW_SHARED);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL && entry_is_mine(entry) && compat_lock_held_by_me(&tag, ExclusiveLock))
	{
		live = true;
		if (info)
			fill_info(entry, info);
	}
	LWLockRelease(plock);
	if (entry == NULL || live)
		return live;

	/* another session's entry, or a stale one of ours: exclusive */
	LWLockAcquire(plock, LW_EXCLUSIVE);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL)
	{
		if (entry_is_mine(entry))
		{
			live = compat_lock_held_by_me(&tag, ExclusiveLock);
			if (!live)
				registry_remove(&key, hashcode);
		}
		else
			live = verify_other(entry, hashcode);
		if (live && info)
			fill_info(entry, info);
	}
	LWLockRelease(plock);
	return live;
}

bool
ownership_lookup(int64 job_id, OwnerInfo *info)
{
	return lookup_in_db(MyDatabaseId, job_id, info);
}

/*
 * The reaper's question: is this job owned?  Like ownership_lookup, but a
 * probe that cannot tell says so (OWNER_UNKNOWN) instead of guessing; the
 * test-only setting finlive.fault_injection = 'ownership_probe' makes every
 * probe fail that way, as the original application's TC-08 does.
 */
OwnerProbe
ownership_probe(int64 job_id, OwnerInfo *info)
{
	if (settings_fault_injected("ownership_probe"))
		return OWNER_UNKNOWN;
	return ownership_lookup(job_id, info) ? OWNER_LIVE : OWNER_NONE;
}

/*
 * Release one job of this session: its lock if still held, its registry
 * entry if still ours.  True if the lock was held.
 */
static bool
release_job(int64 job_id)
{
	OwnerKey	key = {MyDatabaseId, 0, job_id};
	uint32		hashcode = get_hash_value(registry, &key);
	LWLock	   *plock = partition_lock(hashcode);
	LOCKTAG		tag;
	OwnerEntry *entry;
	bool		held;

	set_lock_tag(&tag, MyDatabaseId, job_id);
	LWLockAcquire(plock, LW_EXCLUSIVE);
	held = compat_lock_held_by_me(&tag, ExclusiveLock);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL && entry_is_mine(entry))
		registry_remove(&key, hashcode);
	if (held)
		LockRelease(&tag, ExclusiveLock, true);
	LWLockRelease(plock);
	return held;
}

/*
 * Session exit: drop this backend's registry entries and tell its
 * database's reaper which jobs just lost their owner, so a job whose
 * finalizer died is reaped at once.  Registered with on_shmem_exit, so it
 * runs after ShutdownPostgres has aborted the session's transaction
 * (releasing its row locks) and released its session locks: when the
 * reaper wakes, nothing of the dead owner is left to block it.
 */
static void
ownership_session_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS status;
	int64	   *job;
	int64	   *jobs;
	int			njobs = 0;

	if (local_owned == NULL || own_shared == NULL)
		return;

	/*
	 * Report every job this session marked and did not clear, even those a
	 * probe from another session has already dropped (our locks went away
	 * just before this callback): they still need a decision now.
	 */
	jobs = MemoryContextAlloc(TopMemoryContext,
							  sizeof(int64) * Max(hash_get_num_entries(local_owned), 1));
	hash_seq_init(&status, local_owned);
	while ((job = (int64 *) hash_seq_search(&status)) != NULL)
	{
		(void) release_job(*job);
		jobs[njobs++] = *job;
	}
	if (njobs > 0)
		reapers_owner_exited(MyDatabaseId, jobs, njobs);
}

/*
 * Did pg_advisory_unlock_all() or DISCARD ALL drop this session's locks?
 * Both release every session-level advisory lock at once, and nothing else
 * releases one of finlive's behind its back, so one marked job whose lock
 * is gone tells: then every entry of this session is stale.  O(1) when
 * nothing happened.
 */
static void
sweep_released(void)
{
	HASH_SEQ_STATUS status;
	int64	   *job;
	LOCKTAG		tag;

	hash_seq_init(&status, local_owned);
	job = (int64 *) hash_seq_search(&status);
	if (job == NULL)
		return;
	set_lock_tag(&tag, MyDatabaseId, *job);
	hash_seq_term(&status);
	if (compat_lock_held_by_me(&tag, ExclusiveLock))
		return;

	/* forget every job whose lock is gone; keep those marked since */
	hash_seq_init(&status, local_owned);
	while ((job = (int64 *) hash_seq_search(&status)) != NULL)
	{
		int64		job_id = *job;

		set_lock_tag(&tag, MyDatabaseId, job_id);
		if (compat_lock_held_by_me(&tag, ExclusiveLock))
			continue;
		hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
		(void) release_job(job_id);		/* drops our stale entry */
	}
}

/*
 * At the end of each transaction of a session that owns jobs, drop the
 * entries a release of all advisory locks left behind, so that no stale
 * metadata (finlive_stats.owners_active counts entries) outlives the
 * statement that released them.
 */
static void
ownership_xact_callback(XactEvent event, void *arg)
{
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT) &&
		local_owned != NULL && hash_get_num_entries(local_owned) > 0)
		sweep_released();
}

/* Backend-local bookkeeping, set up at this session's first mark. */
static void
ensure_local_state(void)
{
	HASHCTL		info;

	if (local_owned != NULL)
		return;
	info.keysize = sizeof(int64);
	info.entrysize = sizeof(int64);
	info.hcxt = TopMemoryContext;
	local_owned = hash_create("finlive owned jobs", 64, &info,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	on_shmem_exit(ownership_session_exit, (Datum) 0);
	RegisterXactCallback(ownership_xact_callback, NULL);
}

/* Write what a mark records into an entry this session now owns. */
static void
fill_entry(OwnerEntry *entry, bool run_id_isnull, int64 run_id, const char *stage)
{
	entry->run_id = run_id;
	entry->run_id_isnull = run_id_isnull;
	entry->stage_isnull = (stage == NULL);
	strlcpy(entry->stage, stage ? stage : "", sizeof(entry->stage));
}

/*
 * Under the exclusive partition lock, with the job's lock just taken: find
 * or make the job's registry entry.  NULL when the registry is full (the
 * caller then gives the lock back).
 */
static OwnerEntry *
claim_entry(const OwnerKey *key, uint32 hashcode, OwnerEntry *existing)
{
	OwnerEntry *entry;
	bool		found;

	if (existing != NULL)
		return existing;		/* a stale entry we now replace */
	if (!registry_reserve_entry())
		return NULL;
	entry = hash_search_with_hash_value(registry, key, hashcode,
										HASH_ENTER_NULL, &found);
	if (entry == NULL)
		pg_atomic_fetch_sub_u32(&own_shared->entries, 1);
	return entry;
}

/*
 * Take ownership of job_id in the current database without waiting.
 *
 * MARK_OWNED and the fencing token when this session owns the job
 * afterwards (re-marking keeps the token and updates run_id/stage),
 * MARK_BUSY when another live session owns it, MARK_NO_ROOM when the lock
 * table had no room for the job's lock.  Raises only before it touches
 * anything shared, and when the registry is full (53400).
 */
MarkResult
ownership_mark(int64 job_id, bool run_id_isnull, int64 run_id,
			   const char *stage, int64 *token)
{
	OwnerKey	key = {MyDatabaseId, 0, job_id};
	uint32		hashcode = get_hash_value(registry, &key);
	LWLock	   *plock = partition_lock(hashcode);
	LOCKTAG		tag;
	OwnerEntry *entry;
	TimestampTz now = GetCurrentTimestamp();
	int64		new_token;
	bool		in_local;
	LockAcquireResult res;

	/*
	 * What can fail is done before the partition lock is taken, so an error
	 * can never leave a finlive lock without its entry.  A token taken here
	 * and not used (a re-mark, a busy job) only leaves a gap; a job left in
	 * local_owned is harmless (releasing checks the lock).
	 */
	ensure_local_state();
	new_token = tokens_next(now);
	hash_search(local_owned, &job_id, HASH_ENTER, &in_local);
	set_lock_tag(&tag, MyDatabaseId, job_id);

	LWLockAcquire(plock, LW_EXCLUSIVE);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	res = acquire_nowait(&tag);
	if (res == LOCKACQUIRE_ALREADY_HELD)
	{
		/* one lock per job and session: give back the count just taken */
		LockRelease(&tag, ExclusiveLock, true);
		if (entry != NULL && entry_is_mine(entry))
		{
			/* already ours: refresh the metadata, keep the token */
			fill_entry(entry, run_id_isnull, run_id, stage);
			*token = entry->token;
			LWLockRelease(plock);
			return MARK_OWNED;
		}
		/* we hold the lock but lost the entry: make it again below */
	}
	else if (res == LOCKACQUIRE_NOT_AVAIL)
	{
		/*
		 * Busy, or no room in the lock table.  Every finlive lock has an
		 * entry (taken under this partition lock, which we hold), so without
		 * an entry it can only be the room.
		 */
		bool		no_room = (entry == NULL);

		LWLockRelease(plock);
		if (!in_local)
			hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
		return no_room ? MARK_NO_ROOM : MARK_BUSY;
	}

	entry = claim_entry(&key, hashcode, entry);
	if (entry == NULL)
	{
		LockRelease(&tag, ExclusiveLock, true);
		LWLockRelease(plock);
		if (!in_local)
			hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("finlive ownership registry is full"),
				 errdetail("All %d entries are in use by live owners.", finlive_max_owners),
				 errhint("Increase finlive.max_owners and restart the server, or clear jobs that are done.")));
	}
	fill_entry(entry, run_id_isnull, run_id, stage);
	entry->pid = MyProcPid;
	entry->backend_start = MyStartTimestamp;
	entry->token = new_token;
	entry->since = now;
	*token = new_token;
	LWLockRelease(plock);
	return MARK_OWNED;
}

bool
ownership_clear(int64 job_id)
{
	bool		found;

	/* a job this session never marked needs no shared access at all */
	if (local_owned == NULL)
		return false;
	hash_search(local_owned, &job_id, HASH_REMOVE, &found);
	return found && release_job(job_id);
}

int
ownership_clear_all(void)
{
	HASH_SEQ_STATUS status;
	int64	   *job;
	int			released = 0;

	if (local_owned == NULL)
		return 0;
	hash_seq_init(&status, local_owned);
	while ((job = (int64 *) hash_seq_search(&status)) != NULL)
	{
		int64		job_id = *job;

		/* deleting the entry just returned is allowed during a scan */
		hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
		if (release_job(job_id))
			released++;
	}
	return released;
}

/* Does this session hold the lock of any job it marked? */
bool
ownership_session_owns_any(void)
{
	if (local_owned == NULL)
		return false;
	sweep_released();
	return hash_get_num_entries(local_owned) > 0;
}

static int
owner_info_cmp(const void *a, const void *b)
{
	int64		ja = ((const OwnerInfo *) a)->job_id;
	int64		jb = ((const OwnerInfo *) b)->job_id;

	return (ja > jb) - (ja < jb);
}

/*
 * The live owners of database dbid, ordered by job_id, palloc'd in the
 * current memory context.  Each candidate is verified like any single
 * lookup, and stale entries met on the way are dropped.  For diagnostics:
 * this scans the whole registry.
 */
OwnerInfo *
ownership_list(Oid dbid, int *count)
{
	HASH_SEQ_STATUS status;
	OwnerEntry *entry;
	int64	   *jobs;
	OwnerInfo  *result;
	int			njobs = 0;
	int			nlive = 0;
	int			i;

	jobs = palloc(sizeof(int64) * Max(finlive_max_owners, 1));
	for (i = 0; i < REGISTRY_PARTITIONS; i++)
		LWLockAcquire(&own_shared->locks[i].lock, LW_SHARED);
	hash_seq_init(&status, registry);
	while ((entry = (OwnerEntry *) hash_seq_search(&status)) != NULL)
	{
		if (entry->key.dbid == dbid && njobs < finlive_max_owners)
			jobs[njobs++] = entry->key.job_id;
	}
	for (i = REGISTRY_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&own_shared->locks[i].lock);

	result = palloc(sizeof(OwnerInfo) * Max(njobs, 1));
	for (i = 0; i < njobs; i++)
	{
		if (lookup_in_db(dbid, jobs[i], &result[nlive]))
			nlive++;
	}
	pfree(jobs);
	qsort(result, nlive, sizeof(OwnerInfo), owner_info_cmp);
	*count = nlive;
	return result;
}

/*
 * Registry entries in use in the whole cluster: the owners, counting the
 * stale entries not yet noticed (which the next look at them drops).
 */
int64
ownership_count(void)
{
	return (int64) pg_atomic_read_u32(&own_shared->entries);
}
