/*-------------------------------------------------------------------------
 *
 * counters.h
 *	  Cluster-wide reaper counters in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_COUNTERS_H
#define FINLIVE_COUNTERS_H

#include "datatype/timestamp.h"

typedef struct ReaperCounters
{
	int64		ticks;
	int64		jobs_examined;
	int64		reaped_total;
	int64		reaped_tier[3];		/* index: tier - 1 */
	int64		finalizer_defers_total;
	int64		errors_total;
	TimestampTz last_tick_at;		/* 0 when no tick yet */
	double		last_tick_ms;
} ReaperCounters;

extern Size counters_shmem_size(void);
extern void counters_shmem_request(void);
extern void counters_shmem_init(void);
extern void counters_accumulate(ReaperCounters *into, const ReaperCounters *from);
extern void counters_add_tick(const ReaperCounters *tick);
extern void counters_read(ReaperCounters *out);
extern void counters_reset(void);

#endif							/* FINLIVE_COUNTERS_H */
