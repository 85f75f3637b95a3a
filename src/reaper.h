/*-------------------------------------------------------------------------
 *
 * reaper.h
 *	  The tiered reaper: one tick over one target, and the explanation of
 *	  what a tick would do with one job.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_REAPER_H
#define FINLIVE_REAPER_H

#include "funcapi.h"
#include "storage/itemptr.h"

#include "counters.h"
#include "ownership.h"
#include "reapers.h"
#include "targets.h"

/* What the tiers decide for one job. */
typedef enum ReapAction
{
	ACTION_NONE,
	ACTION_DEFER,
	ACTION_DONE,
	ACTION_QUEUED,
	ACTION_FAILED,
	ACTION_SKIPPED,				/* explain only: the tick would pass it by */
	ACTION_FINALIZE				/* Tier-2: done or requeue-or-fail, by the gate */
} ReapAction;

extern const char *const reaper_action_names[];

/* A running job with its run and stage, as the reaper reads it. */
typedef struct JobRow
{
	int64		job_id;
	char	   *status;
	bool		attempts_isnull;
	int32		attempts;
	bool		max_attempts_isnull;
	int32		max_attempts;
	bool		started_isnull;
	TimestampTz started_at;
	bool		exit_code_isnull;
	int32		exit_code;
	bool		finished_isnull;
	TimestampTz finished_at;
	char	   *stage;			/* NULL: no task or no tasks table */
	Oid			tableoid;		/* where the row is */
	ItemPointerData ctid;
	bool		run_id_isnull;
	int64		run_id;
	bool		task_id_isnull;
	int64		task_id;
} JobRow;

/* What finlive_explain() reports about one job. */
typedef struct JobVerdict
{
	bool		found;			/* the job exists */
	char	   *status;
	int			tier;			/* 0: none */
	ReapAction	action;
	char	   *reason;
	bool		eligible_isnull;
	TimestampTz eligible_at;
	bool		owned;
	OwnerInfo	owner;
	Policy		policy;
} JobVerdict;

extern TimestampTz reaper_grace_end(bool isnull, TimestampTz ts, int64 grace);
extern void reaper_shmem_request(void);
extern void reaper_shmem_init(void);
extern void reaper_note_server_start(void);

extern void reaper_tick_target(const FinliveCatalog *cat, const Target *target,
							   const ExitNotices *only, ReaperCounters *counts,
							   ReturnSetInfo *rsinfo);
extern void reaper_explain(const FinliveCatalog *cat, const Target *target,
						   int64 job_id, JobVerdict *verdict);
extern bool reaper_job_guarded(const Target *target, const Policy *policy,
							   const char *stage, int64 job_id);
extern JobRow *reaper_running_jobs(const FinliveCatalog *cat, const Target *target,
								   int *count);

#endif							/* FINLIVE_REAPER_H */
