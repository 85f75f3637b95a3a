/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL majors finlive supports
 *	  (15 to 19), in one place.
 *
 * The rest of the tree is written against one API and includes this header
 * instead of testing PG_VERSION_NUM itself: each difference is a macro or a
 * small static inline here, named after what it does, with the version test
 * inside (the way Citus's pg_version_compat.h and TimescaleDB's compat.h
 * do).  Each entry names the release that changed the API.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_COMPAT_H
#define FINLIVE_COMPAT_H

#include "postgres.h"

#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM < 150000
#error "finlive needs PostgreSQL 15 or later"
#endif

/*
 * 17: LockHeldByMe() gained "orstronger".  finlive asks about the exact
 * mode it takes (ExclusiveLock on its own advisory tags).
 */
#if PG_VERSION_NUM >= 170000
#define compat_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode), false)
#else
#define compat_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode))
#endif

/*
 * 17: backends are numbered by ProcNumber (MyProcNumber) instead of
 * MyProc->pgprocno.  Either indexes ProcGlobal->allProcs.
 */
#if PG_VERSION_NUM >= 170000
#define compat_my_proc_number()		((int) MyProcNumber)
#else
#define compat_my_proc_number()		(MyProc->pgprocno)
#endif

/* 16: the per-object-kind ACL checks became object_aclcheck(). */
#if PG_VERSION_NUM >= 160000
#define compat_proc_aclcheck(func, role, mode) \
	object_aclcheck(ProcedureRelationId, (func), (role), (mode))
#define compat_namespace_aclcheck(nsp, role, mode) \
	object_aclcheck(NamespaceRelationId, (nsp), (role), (mode))
#else
#define compat_proc_aclcheck(func, role, mode) \
	pg_proc_aclcheck((func), (role), (mode))
#define compat_namespace_aclcheck(nsp, role, mode) \
	pg_namespace_aclcheck((nsp), (role), (mode))
#endif

/*
 * 16: a check hook's "extra" must come from guc_malloc(), because the GUC
 * machinery frees it with guc_free() (a pfree since 16, free() before).
 */
static inline void *
compat_guc_extra_alloc(Size size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/*
 * 17: extensions name their wait events (WaitEventExtensionNew), so the
 * worker's waits show a finlive name in pg_stat_activity.  Before 17 every
 * extension wait is "Extension".  The result is cached per process.
 */
static inline uint32
compat_wait_event(const char *name, uint32 *cache)
{
#if PG_VERSION_NUM >= 170000
	if (*cache == 0)
		*cache = WaitEventExtensionNew(name);
	return *cache;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/* 16: the per-object-kind owner checks became object_ownercheck(). */
#if PG_VERSION_NUM >= 160000
#define compat_database_ownercheck(db, role) \
	object_ownercheck(DatabaseRelationId, (db), (role))
#else
#define compat_database_ownercheck(db, role) \
	pg_database_ownercheck((db), (role))
#endif

/*
 * A session-level lock taken without waiting and without raising when the
 * lock table is out of room (then LOCKACQUIRE_NOT_AVAIL, as when busy).
 */
static inline LockAcquireResult
compat_lock_acquire_nowait(const LOCKTAG *tag, LOCKMODE mode)
{
#if PG_VERSION_NUM >= 180000
	/* 18: logLockFailure (log_lock_failures); a busy job is no failure */
	return LockAcquireExtended(tag, mode, true, true, false, NULL, false);
#else
	return LockAcquireExtended(tag, mode, true, true, false, NULL);
#endif
}

/*
 * Room in the server's lock table for n more locks (one LOCK and one
 * PROCLOCK each), measured on each version:
 *
 * Up to 18 the lock manager's hash tables are not fixed-size: they grow
 * into shared memory left free in the segment, so requesting that much more
 * and never allocating it is the room (COMPAT_LOCK_ROOM_SHMEM).
 *
 * 19 allocates them at their full size, NLOCKENTS() entries, and they never
 * grow: free memory adds nothing.  There the tables must be sized for the
 * extra locks, which only max_locks_per_transaction can do
 * (COMPAT_LOCK_ROOM_SIZING, see ownership.c).
 */
#if PG_VERSION_NUM >= 190000
#define COMPAT_LOCK_ROOM_SIZING
#else
#define COMPAT_LOCK_ROOM_SHMEM
#endif

static inline Size
compat_lock_room_size(int n)
{
	return add_size(hash_estimate_size(n, sizeof(LOCK)),
					hash_estimate_size(n, sizeof(PROCLOCK)));
}

/*
 * A shared hash table of exactly n entries, all allocated at startup.
 * 19: ShmemInitHash() lost its separate initial size.
 */
static inline HTAB *
compat_shmem_init_fixed_hash(const char *name, long n, HASHCTL *info, int flags)
{
#if PG_VERSION_NUM >= 190000
	return ShmemInitHash(name, n, info, flags | HASH_FIXED_SIZE);
#else
	return ShmemInitHash(name, n, n, info, flags | HASH_FIXED_SIZE);
#endif
}

/* 18: the module magic block can carry the library's name and version. */
#if PG_VERSION_NUM >= 180000
#define FINLIVE_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "finlive", .version = FINLIVE_LIBRARY_VERSION)
#else
#define FINLIVE_MODULE_MAGIC	PG_MODULE_MAGIC
#endif

#endif							/* FINLIVE_COMPAT_H */
