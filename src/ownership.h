/*-------------------------------------------------------------------------
 *
 * ownership.h
 *	  Job ownership: one session-level advisory lock per owned job in a
 *	  private key space, plus a shared registry of metadata beside it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_OWNERSHIP_H
#define FINLIVE_OWNERSHIP_H

#include "datatype/timestamp.h"

/*
 * The field4 of finlive's advisory lock tags, shown as pg_locks.objsubid.
 * Core uses 1 and 2; Citus 4..15.  Must fit in int2 for pg_locks.
 */
#define FINLIVE_LOCK_OBJSUBID	7966

/*
 * The field4 of the transaction-level lock that serializes the
 * registrations of one jobs table (targets.c).
 */
#define FINLIVE_REGISTER_OBJSUBID	7967

/* Longest stage accepted by finlive_mark, in bytes. */
#define FINLIVE_STAGE_MAXLEN	256

/* What is known about one live owner, as returned to callers. */
typedef struct OwnerInfo
{
	int64		job_id;
	int64		run_id;
	bool		run_id_isnull;
	bool		stage_isnull;
	char		stage[FINLIVE_STAGE_MAXLEN + 1];
	int32		pid;
	TimestampTz backend_start;
	int64		token;
	TimestampTz since;
} OwnerInfo;

/* The answer of an ownership probe. */
typedef enum OwnerProbe
{
	OWNER_NONE,					/* no live session owns the job */
	OWNER_LIVE,					/* a live session owns it */
	OWNER_UNKNOWN				/* the probe could not tell (a fault) */
} OwnerProbe;

/* The outcome of finlive_mark. */
typedef enum MarkResult
{
	MARK_OWNED,					/* this session owns the job now */
	MARK_BUSY,					/* another live session owns it */
	MARK_NO_ROOM				/* the lock table had no room for its lock */
} MarkResult;

extern void ownership_reserve_lock_room(void);
extern void ownership_shmem_request(void);
extern void ownership_shmem_init(void);
extern bool ownership_ready(void);

extern MarkResult ownership_mark(int64 job_id, bool run_id_isnull, int64 run_id,
								 const char *stage, int64 *token);
extern bool ownership_clear(int64 job_id);
extern int	ownership_clear_all(void);
extern bool ownership_session_owns_any(void);
extern OwnerProbe ownership_probe(int64 job_id, OwnerInfo *info);
extern bool ownership_lookup(int64 job_id, OwnerInfo *info);
extern OwnerInfo *ownership_list(Oid dbid, int *count);
extern int64 ownership_count(void);

#endif							/* FINLIVE_OWNERSHIP_H */
