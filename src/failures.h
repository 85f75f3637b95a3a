/*-------------------------------------------------------------------------
 *
 * failures.h
 *	  What keeps failing: jobs whose reap fails, and targets that cannot
 *	  be reaped, remembered in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_FAILURES_H
#define FINLIVE_FAILURES_H

#include "datatype/timestamp.h"
#include "utils/elog.h"

#define FAILURE_MESSAGE_LEN		256

/* One job whose reap is failing now. */
typedef struct FailingReap
{
	Oid			target;
	int64		job_id;
	int			tier;
	char		action[16];
	int64		failures;
	TimestampTz first_failed_at;
	TimestampTz last_failed_at;
	char		sqlstate[6];
	char		message[FAILURE_MESSAGE_LEN];
} FailingReap;

extern void failures_shmem_request(void);
extern void failures_shmem_init(void);

extern void failures_record(Oid target, int64 job_id, int tier, const char *action,
							const ErrorData *edata);
extern void failures_forget(Oid target, int64 job_id);
extern void failures_forget_target(Oid target);
extern bool failures_lookup(Oid target, int64 job_id, FailingReap *out);
extern FailingReap *failures_list(Oid target, int *count);
extern bool failures_target_failed(Oid target, const char *problem);
extern bool failures_target_problem(Oid target, FailingReap *out);
extern void failures_target_ok(Oid target);

#endif							/* FINLIVE_FAILURES_H */
