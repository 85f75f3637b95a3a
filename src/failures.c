/*-------------------------------------------------------------------------
 *
 * failures.c
 *	  What keeps failing: jobs whose reap fails, and targets that cannot be
 *	  reaped, remembered in shared memory.
 *
 * A job whose hook fails at every attempt stays running forever; an
 * operator must be able to see that, and why, in one query
 * (finlive_reap_errors, finlive_audit, finlive_explain).  Each failed
 * attempt is recorded here under (database, target, job): the number of
 * failures, the first and last time, and the last error.  The record goes
 * when the job is reaped or found no longer running.  Shared memory rather
 * than a table: a tick that fails writes no WAL either, the reaper and
 * finlive_reap_once() see the same records, and they need no privileges on
 * a table of finlive's.
 *
 * A target that cannot be reaped at all (a table, hook or role gone) is
 * remembered here too, with the time of its last WARNING, so that it warns
 * when it becomes unusable and at most once an hour while it stays so.
 *
 * A fixed-size table (FAILURE_SLOTS); when it is full, a failure is logged
 * but not remembered.  One LWLock, never held across anything that raises.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/elog.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "failures.h"

#define FAILURE_SLOTS		1024
#define TARGET_WARN_MS		(60 * 60 * 1000)	/* once an hour */

/* job_id of the entry that stands for the target itself */
#define TARGET_ENTRY		PG_INT64_MIN

typedef struct FailureKey
{
	Oid			dbid;
	Oid			target;
	int64		job_id;
} FailureKey;

typedef struct FailureEntry
{
	FailureKey	key;
	FailingReap reap;			/* a job's failure, or the target's */
	uint32		problem_hash;	/* target entry: the problem last warned about */
	TimestampTz warned_at;		/* ... and when */
} FailureEntry;

static LWLock *failures_lock = NULL;
static HTAB *failures = NULL;

void
failures_shmem_request(void)
{
	RequestAddinShmemSpace(hash_estimate_size(FAILURE_SLOTS, sizeof(FailureEntry)));
	RequestNamedLWLockTranche("finlive_failures", 1);
}

void
failures_shmem_init(void)
{
	HASHCTL		info;

	failures_lock = &(GetNamedLWLockTranche("finlive_failures"))->lock;
	info.keysize = sizeof(FailureKey);
	info.entrysize = sizeof(FailureEntry);
	failures = compat_shmem_init_fixed_hash("finlive failing reaps", FAILURE_SLOTS,
											&info, HASH_ELEM | HASH_BLOBS);
}

static inline FailureKey
make_key(Oid target, int64 job_id)
{
	FailureKey	key;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.target = target;
	key.job_id = job_id;
	return key;
}

/*
 * The entry of (target, job_id), made if new (NULL when the table is
 * full).  Caller holds failures_lock exclusively.
 */
static FailureEntry *
enter_entry(Oid target, int64 job_id, TimestampTz now)
{
	FailureKey	key = make_key(target, job_id);
	FailureEntry *entry;
	bool		found;

	entry = hash_search(failures, &key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		memset(&entry->reap, 0, sizeof(entry->reap));
		entry->reap.target = target;
		entry->reap.job_id = job_id;
		entry->reap.first_failed_at = now;
		entry->problem_hash = 0;
		entry->warned_at = 0;
	}
	return entry;
}

/* One more failed attempt at reaping job_id of target. */
void
failures_record(Oid target, int64 job_id, int tier, const char *action,
				const ErrorData *edata)
{
	FailureEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(failures_lock, LW_EXCLUSIVE);
	entry = enter_entry(target, job_id, now);
	if (entry != NULL)
	{
		entry->reap.tier = tier;
		strlcpy(entry->reap.action, action, sizeof(entry->reap.action));
		entry->reap.failures++;
		entry->reap.last_failed_at = now;
		strlcpy(entry->reap.sqlstate, unpack_sql_state(edata->sqlerrcode),
				sizeof(entry->reap.sqlstate));
		strlcpy(entry->reap.message, edata->message ? edata->message : "",
				sizeof(entry->reap.message));
	}
	LWLockRelease(failures_lock);
}

/* job_id of target was reaped, or is no longer running. */
void
failures_forget(Oid target, int64 job_id)
{
	FailureKey	key = make_key(target, job_id);

	LWLockAcquire(failures_lock, LW_EXCLUSIVE);
	hash_search(failures, &key, HASH_REMOVE, NULL);
	LWLockRelease(failures_lock);
}

/*
 * The target was registered anew or unregistered: forget what its jobs and
 * the target itself failed at.
 */
void
failures_forget_target(Oid target)
{
	HASH_SEQ_STATUS status;
	FailureEntry *entry;

	LWLockAcquire(failures_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, failures);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->key.dbid == MyDatabaseId && entry->key.target == target)
			hash_search(failures, &entry->key, HASH_REMOVE, NULL);
	LWLockRelease(failures_lock);
}

/* The failure record of one job, if it is failing. */
bool
failures_lookup(Oid target, int64 job_id, FailingReap *out)
{
	FailureKey	key = make_key(target, job_id);
	FailureEntry *entry;

	LWLockAcquire(failures_lock, LW_SHARED);
	entry = hash_search(failures, &key, HASH_FIND, NULL);
	if (entry != NULL)
		*out = entry->reap;
	LWLockRelease(failures_lock);
	return entry != NULL;
}

/*
 * The failing jobs of the current database (of one target, or of all when
 * target is InvalidOid), palloc'd.
 */
FailingReap *
failures_list(Oid target, int *count)
{
	HASH_SEQ_STATUS status;
	FailureEntry *entry;
	FailingReap *result = palloc(sizeof(FailingReap) * FAILURE_SLOTS);
	int			n = 0;

	LWLockAcquire(failures_lock, LW_SHARED);
	hash_seq_init(&status, failures);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->key.dbid != MyDatabaseId || entry->key.job_id == TARGET_ENTRY ||
			(OidIsValid(target) && entry->key.target != target))
			continue;
		result[n++] = entry->reap;
	}
	LWLockRelease(failures_lock);
	*count = n;
	return result;
}

/*
 * The target could not be reaped because of "problem" (it is unusable, or
 * its tick failed): remember it until a tick of it succeeds.  Should that be
 * logged now?  Yes when it became so (or for another reason than last
 * time), and then at most once an hour.
 */
bool
failures_target_failed(Oid target, const char *problem)
{
	FailureEntry *entry;
	bool		warn = true;
	uint32		hash = hash_bytes((const unsigned char *) problem, strlen(problem));
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(failures_lock, LW_EXCLUSIVE);
	entry = enter_entry(target, TARGET_ENTRY, now);
	if (entry != NULL)
	{
		if (entry->warned_at != 0 && entry->problem_hash == hash &&
			!TimestampDifferenceExceeds(entry->warned_at, now, TARGET_WARN_MS))
			warn = false;
		entry->reap.failures++;
		entry->reap.last_failed_at = now;
		strlcpy(entry->reap.message, problem, sizeof(entry->reap.message));
		if (warn)
		{
			entry->problem_hash = hash;
			entry->warned_at = now;
		}
	}
	LWLockRelease(failures_lock);
	return warn;
}

/* Why the target's last tick could not reap it, if it could not. */
bool
failures_target_problem(Oid target, FailingReap *out)
{
	return failures_lookup(target, TARGET_ENTRY, out);
}

/* Target can be reaped again: its next problem warns at once. */
void
failures_target_ok(Oid target)
{
	failures_forget(target, TARGET_ENTRY);
}
