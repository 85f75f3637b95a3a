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
 *
 * Registry and locks are kept in step by one rule: a finlive lock is only
 * ever taken or released by this file, while it holds the registry
 * partition lock of that job exclusively, and together with the registry
 * entry.  So there is never a lock without an entry.  The reverse can
 * happen: pg_advisory_unlock_all() and DISCARD ALL drop the lock behind our
 * back, leaving a stale entry.  Every reader therefore verifies an entry
 * before trusting it:
 *
 *	- for the caller's own entry, LockHeldByMe() (backend-local, cheap);
 *	- for another session's entry, a conditional acquire of the lock.  If it
 *	  succeeds, the owner is gone: the probe releases it and drops the entry.
 *
 * Because a probe briefly holds the lock, it runs under the exclusive
 * partition lock, like every mark of that job: a concurrent finlive_mark can
 * never meet a probe's lock and wrongly return NULL.  Lock order is always
 * registry partition -> lock manager partition -> stage pool.
 *
 * Every operation touches one partition: O(1) in the number of owned jobs.
 * Only finlive_owners()/finlive_snapshot()/finlive_stats() scan.
 *
 * Stage names are interned in a small refcounted pool, so a registry entry
 * stays at 64 bytes instead of carrying 257 bytes of text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ownership.h"
#include "settings.h"
#include "tokens.h"

#define REGISTRY_PARTITIONS		32	/* power of 2 */

/* Distinct stage names that can be in use at once, cluster-wide. */
#define STAGE_POOL_SIZE			256

typedef struct OwnerKey
{
	Oid			dbid;
	uint32		pad;			/* always zero: keys are hashed as blobs */
	int64		job_id;
} OwnerKey;

typedef struct StageName
{
	char		name[FINLIVE_STAGE_MAXLEN + 1]; /* hash key */
	int32		refcount;
} StageName;

typedef struct OwnerEntry
{
	OwnerKey	key;
	int64		run_id;
	int64		token;
	TimestampTz backend_start;
	TimestampTz since;
	StageName  *stage;			/* NULL when no stage was given */
	int32		pid;
	bool		run_id_isnull;
} OwnerEntry;

typedef struct OwnershipShared
{
	LWLockPadded *locks;		/* REGISTRY_PARTITIONS + the stage pool lock */
	pg_atomic_uint32 entries;	/* registry entries in use, <= max_owners */
	pg_atomic_uint64 owner_exits;	/* sessions that ended owning jobs */
	pg_atomic_uint32 waker;		/* pgprocno + 1 of the worker, 0 if none */
} OwnershipShared;

static OwnershipShared *own_shared = NULL;
static HTAB *registry = NULL;
static HTAB *stage_pool = NULL;

/* Jobs this backend has marked, so clear_all and exit need no scan. */
static HTAB *local_owned = NULL;

#define StagePoolLock()		(&own_shared->locks[REGISTRY_PARTITIONS].lock)

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

static inline bool
entry_is_mine(const OwnerEntry *entry)
{
	return entry->pid == MyProcPid && entry->backend_start == MyStartTimestamp;
}

Size
ownership_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(OwnershipShared));

	size = add_size(size, hash_estimate_size(finlive_max_owners, sizeof(OwnerEntry)));
	size = add_size(size, hash_estimate_size(STAGE_POOL_SIZE, sizeof(StageName)));
	return size;
}

void
ownership_shmem_request(void)
{
	RequestAddinShmemSpace(ownership_shmem_size());
	RequestNamedLWLockTranche("finlive_registry", REGISTRY_PARTITIONS + 1);
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
		pg_atomic_init_u64(&own_shared->owner_exits, 0);
		pg_atomic_init_u32(&own_shared->waker, 0);
	}

	info.keysize = sizeof(OwnerKey);
	info.entrysize = sizeof(OwnerEntry);
	info.num_partitions = REGISTRY_PARTITIONS;
	registry = ShmemInitHash("finlive owner registry",
							 finlive_max_owners, finlive_max_owners,
							 &info,
							 HASH_ELEM | HASH_BLOBS | HASH_PARTITION | HASH_FIXED_SIZE);

	info.keysize = sizeof(((StageName *) 0)->name);
	info.entrysize = sizeof(StageName);
	stage_pool = ShmemInitHash("finlive stage pool",
							   STAGE_POOL_SIZE, STAGE_POOL_SIZE,
							   &info,
							   HASH_ELEM | HASH_STRINGS | HASH_FIXED_SIZE);
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

static void
raise_registry_full(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("finlive ownership registry is full"),
			 errdetail("All %d entries are in use by live owners.", finlive_max_owners),
			 errhint("Increase finlive.max_owners and restart the server, or clear jobs that are done.")));
}

/*
 * Take a reference to the interned copy of a stage name.  Raises when the
 * pool of distinct names in use is exhausted.
 */
static StageName *
stage_acquire(const char *stage)
{
	StageName  *s;
	bool		found;

	if (stage == NULL)
		return NULL;
	LWLockAcquire(StagePoolLock(), LW_EXCLUSIVE);
	s = (StageName *) hash_search(stage_pool, stage, HASH_ENTER_NULL, &found);
	if (s == NULL)
	{
		/* stale registry entries may hold the names: verify all, retry once */
		LWLockRelease(StagePoolLock());
		pfree(ownership_list(InvalidOid, NULL));
		LWLockAcquire(StagePoolLock(), LW_EXCLUSIVE);
		s = (StageName *) hash_search(stage_pool, stage, HASH_ENTER_NULL, &found);
	}
	if (s == NULL)
	{
		LWLockRelease(StagePoolLock());
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("finlive ownership registry is full"),
				 errdetail("More than %d distinct stage names are in use at once.",
						   STAGE_POOL_SIZE),
				 errhint("Use fewer distinct stage values; finlive.max_owners does not raise this limit.")));
	}
	if (!found)
		s->refcount = 0;
	s->refcount++;
	LWLockRelease(StagePoolLock());
	return s;
}

static void
stage_release(StageName *s)
{
	if (s == NULL)
		return;
	LWLockAcquire(StagePoolLock(), LW_EXCLUSIVE);
	if (--s->refcount == 0)
		hash_search(stage_pool, s->name, HASH_REMOVE, NULL);
	LWLockRelease(StagePoolLock());
}

/*
 * Is this registry entry backed by its lock?  Caller holds the entry's
 * partition lock exclusively.  A stale entry is removed, and the stage it
 * referenced is returned through *drop_stage for release after the
 * partition lock is let go.
 */
static bool
entry_verify(OwnerEntry *entry, uint32 hashcode, StageName **drop_stage)
{
	LOCKTAG		tag;
	bool		live;

	set_lock_tag(&tag, entry->key.dbid, entry->key.job_id);
	if (entry_is_mine(entry))
		live = LockHeldByMe(&tag, ExclusiveLock);
	else
	{
		LockAcquireResult res = LockAcquire(&tag, ExclusiveLock, true, true);

		/* we cannot hold a lock whose entry is someone else's */
		Assert(res != LOCKACQUIRE_ALREADY_HELD);
		live = (res == LOCKACQUIRE_NOT_AVAIL);
		if (!live)
			LockRelease(&tag, ExclusiveLock, true);
	}
	if (!live)
	{
		*drop_stage = entry->stage;
		registry_remove(&entry->key, hashcode);
	}
	return live;
}

static void
fill_info(const OwnerEntry *entry, OwnerInfo *info)
{
	info->job_id = entry->key.job_id;
	info->run_id = entry->run_id;
	info->run_id_isnull = entry->run_id_isnull;
	info->stage_isnull = (entry->stage == NULL);
	if (entry->stage)
		strlcpy(info->stage, entry->stage->name, sizeof(info->stage));
	else
		info->stage[0] = '\0';
	info->pid = entry->pid;
	info->backend_start = entry->backend_start;
	info->token = entry->token;
	info->since = entry->since;
}

/*
 * The live owner of (dbid, job_id), if any.  Never waits on the job's lock,
 * and a free job is answered under a shared partition lock only.
 */
static bool
lookup_in_db(Oid dbid, int64 job_id, OwnerInfo *info)
{
	OwnerKey	key = {dbid, 0, job_id};
	uint32		hashcode = get_hash_value(registry, &key);
	LWLock	   *plock = partition_lock(hashcode);
	OwnerEntry *entry;
	StageName  *drop_stage = NULL;
	bool		live = false;

	LWLockAcquire(plock, LW_SHARED);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	LWLockRelease(plock);
	if (entry == NULL)
		return false;

	/* verifying may probe the lock or drop the entry: exclusive */
	LWLockAcquire(plock, LW_EXCLUSIVE);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL && entry_verify(entry, hashcode, &drop_stage))
	{
		live = true;
		if (info)
			fill_info(entry, info);
	}
	LWLockRelease(plock);
	stage_release(drop_stage);
	return live;
}

bool
ownership_lookup(int64 job_id, OwnerInfo *info)
{
	return lookup_in_db(MyDatabaseId, job_id, info);
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
	StageName  *stage = NULL;
	bool		held;

	set_lock_tag(&tag, MyDatabaseId, job_id);
	LWLockAcquire(plock, LW_EXCLUSIVE);
	held = LockHeldByMe(&tag, ExclusiveLock);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL && entry_is_mine(entry))
	{
		stage = entry->stage;
		registry_remove(&key, hashcode);
	}
	if (held)
		LockRelease(&tag, ExclusiveLock, true);
	LWLockRelease(plock);
	stage_release(stage);
	return held;
}

/*
 * Session exit: drop this backend's registry entries and wake the worker,
 * so a job whose finalizer just died is reaped at once.  Registered with
 * on_shmem_exit, so it runs after ShutdownPostgres has aborted the
 * session's transaction (releasing its row locks) and released its session
 * locks: when the worker wakes, nothing of the dead owner is left to block
 * it.
 */
static void
ownership_session_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS status;
	int64	   *job;
	long		owned = 0;
	uint32		waker;

	if (local_owned == NULL || own_shared == NULL)
		return;

	/*
	 * Wake the worker if this session owned anything, even if a probe from
	 * another session has already dropped our entries (our locks went away
	 * just before this callback): the jobs still need a tick now.
	 */
	owned = hash_get_num_entries(local_owned);
	hash_seq_init(&status, local_owned);
	/* the locks are normally gone already, released by ShutdownPostgres */
	while ((job = (int64 *) hash_seq_search(&status)) != NULL)
		(void) release_job(*job);
	if (owned > 0)
	{
		pg_atomic_fetch_add_u64(&own_shared->owner_exits, 1);
		waker = pg_atomic_read_u32(&own_shared->waker);
		if (waker != 0)
			SetLatch(&ProcGlobal->allProcs[waker - 1].procLatch);
	}
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
}

/*
 * Take ownership of job_id in the current database without waiting.
 *
 * Returns true and the fencing token when this session owns the job
 * afterwards (re-marking keeps the token and updates run_id/stage), false
 * when another live session owns it.  Raises when the registry is full.
 */
bool
ownership_mark(int64 job_id, bool run_id_isnull, int64 run_id,
			   const char *stage, int64 *token)
{
	OwnerKey	key = {MyDatabaseId, 0, job_id};
	uint32		hashcode = get_hash_value(registry, &key);
	LWLock	   *plock = partition_lock(hashcode);
	LOCKTAG		tag;
	OwnerEntry *entry;
	StageName  *new_stage;
	StageName  *old_stage = NULL;
	TimestampTz now = GetCurrentTimestamp();
	int64		new_token;
	bool		in_local;
	bool		purged = false;

	/*
	 * Everything that can fail is done before the job's lock is taken, so an
	 * error can never leave a finlive lock without its entry.  A token taken
	 * here and not used (a re-mark, a busy job) only leaves a gap; a job left
	 * in local_owned by an error is harmless (clearing checks the lock).
	 */
	ensure_local_state();
	new_token = tokens_next(now);
	hash_search(local_owned, &job_id, HASH_ENTER, &in_local);
	new_stage = stage_acquire(stage);	/* last: nothing after it can fail */
	set_lock_tag(&tag, MyDatabaseId, job_id);

retry:
	LWLockAcquire(plock, LW_EXCLUSIVE);
	entry = hash_search_with_hash_value(registry, &key, hashcode, HASH_FIND, NULL);
	if (entry != NULL && entry_is_mine(entry) && LockHeldByMe(&tag, ExclusiveLock))
	{
		/* already ours: refresh the metadata, keep the token */
		old_stage = entry->stage;
		entry->stage = new_stage;
		entry->run_id = run_id;
		entry->run_id_isnull = run_id_isnull;
		*token = entry->token;
		LWLockRelease(plock);
		stage_release(old_stage);
		return true;
	}

	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		/* a live session owns it (entry present, or about to be) */
		LWLockRelease(plock);
		stage_release(new_stage);
		if (!in_local)
			hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
		return false;
	}

	if (entry != NULL)
		old_stage = entry->stage;	/* a stale entry we now replace */
	else
	{
		bool		found;

		entry = NULL;
		if (registry_reserve_entry())
		{
			entry = hash_search_with_hash_value(registry, &key, hashcode,
												HASH_ENTER_NULL, &found);
			if (entry == NULL)
				pg_atomic_fetch_sub_u32(&own_shared->entries, 1);
		}
		if (entry == NULL)
		{
			LockRelease(&tag, ExclusiveLock, true);
			LWLockRelease(plock);
			if (!purged)
			{
				/* stale entries may be holding the room: verify all, retry */
				pfree(ownership_list(InvalidOid, NULL));
				purged = true;
				goto retry;
			}
			stage_release(new_stage);
			if (!in_local)
				hash_search(local_owned, &job_id, HASH_REMOVE, NULL);
			raise_registry_full();
		}
	}
	entry->run_id = run_id;
	entry->run_id_isnull = run_id_isnull;
	entry->stage = new_stage;
	entry->pid = MyProcPid;
	entry->backend_start = MyStartTimestamp;
	entry->token = new_token;
	entry->since = now;
	*token = new_token;
	LWLockRelease(plock);
	stage_release(old_stage);
	return true;
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

static int
owner_info_cmp(const void *a, const void *b)
{
	int64		ja = ((const OwnerInfo *) a)->job_id;
	int64		jb = ((const OwnerInfo *) b)->job_id;

	return (ja > jb) - (ja < jb);
}

/*
 * The live owners of database dbid (InvalidOid: every database), ordered
 * by job_id, palloc'd in the current memory context.  Each candidate is
 * verified like any single lookup, and stale entries met on the way are
 * dropped.  For diagnostics: this scans the whole registry.
 */
OwnerInfo *
ownership_list(Oid dbid, int *count)
{
	HASH_SEQ_STATUS status;
	OwnerEntry *entry;
	OwnerKey   *keys;
	OwnerInfo  *result;
	int			nkeys = 0;
	int			nlive = 0;
	int			i;

	keys = palloc(sizeof(OwnerKey) * Max(finlive_max_owners, 1));
	for (i = 0; i < REGISTRY_PARTITIONS; i++)
		LWLockAcquire(&own_shared->locks[i].lock, LW_SHARED);
	hash_seq_init(&status, registry);
	while ((entry = (OwnerEntry *) hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(dbid) || entry->key.dbid == dbid)
			keys[nkeys++] = entry->key;
	}
	for (i = REGISTRY_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&own_shared->locks[i].lock);

	result = palloc(sizeof(OwnerInfo) * Max(nkeys, 1));
	for (i = 0; i < nkeys; i++)
	{
		if (lookup_in_db(keys[i].dbid, keys[i].job_id, &result[nlive]))
			nlive++;
	}
	pfree(keys);
	qsort(result, nlive, sizeof(OwnerInfo), owner_info_cmp);
	if (count)
		*count = nlive;
	return result;
}

/* Live owners in the whole cluster. */
int64
ownership_count(void)
{
	int			count;

	pfree(ownership_list(InvalidOid, &count));
	return count;
}

/* How many owning sessions have ended so far; the worker watches it. */
uint64
ownership_exit_count(void)
{
	return pg_atomic_read_u64(&own_shared->owner_exits);
}

/* Register (pgprocno >= 0) or forget (-1) the worker to wake on exits. */
void
ownership_set_waker(int pgprocno)
{
	pg_atomic_write_u32(&own_shared->waker, (uint32) (pgprocno + 1));
}
