/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  The reaper's counters, shared by the worker and finlive_reap_once().
 *
 * A tick accumulates into a private ReaperCounters and adds it here once,
 * at its end, under a spinlock; readers copy the whole struct out under the
 * same spinlock, so they never see half a tick.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"
#include "storage/spin.h"

#include "counters.h"

typedef struct CountersShared
{
	slock_t		mutex;
	ReaperCounters counters;
} CountersShared;

static CountersShared *counters_shared = NULL;

Size
counters_shmem_size(void)
{
	return MAXALIGN(sizeof(CountersShared));
}

void
counters_shmem_request(void)
{
	RequestAddinShmemSpace(counters_shmem_size());
}

void
counters_shmem_init(void)
{
	bool		found;

	counters_shared = ShmemInitStruct("finlive counters", sizeof(CountersShared), &found);
	if (!found)
	{
		SpinLockInit(&counters_shared->mutex);
		memset(&counters_shared->counters, 0, sizeof(ReaperCounters));
	}
}

/*
 * Add "from" into "into"; the timing of a tick replaces the last one.  No
 * locking: for private accumulators, and under the spinlock below.
 */
void
counters_accumulate(ReaperCounters *into, const ReaperCounters *from)
{
	int			i;

	into->ticks += from->ticks;
	into->jobs_examined += from->jobs_examined;
	into->reaped_total += from->reaped_total;
	for (i = 0; i < 3; i++)
		into->reaped_tier[i] += from->reaped_tier[i];
	into->finalizer_defers_total += from->finalizer_defers_total;
	into->errors_total += from->errors_total;
	if (from->ticks > 0)
	{
		into->last_tick_at = from->last_tick_at;
		into->last_tick_ms = from->last_tick_ms;
	}
}

/* Add one tick's (or one target's) counts to the shared counters. */
void
counters_add_tick(const ReaperCounters *tick)
{
	SpinLockAcquire(&counters_shared->mutex);
	counters_accumulate(&counters_shared->counters, tick);
	SpinLockRelease(&counters_shared->mutex);
}

void
counters_read(ReaperCounters *out)
{
	SpinLockAcquire(&counters_shared->mutex);
	*out = counters_shared->counters;
	SpinLockRelease(&counters_shared->mutex);
}

void
counters_reset(void)
{
	SpinLockAcquire(&counters_shared->mutex);
	memset(&counters_shared->counters, 0, sizeof(ReaperCounters));
	SpinLockRelease(&counters_shared->mutex);
}
