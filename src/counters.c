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

/* Add one tick's (or one call's) counts; its timing replaces the last. */
void
counters_add_tick(const ReaperCounters *tick)
{
	ReaperCounters *c = &counters_shared->counters;
	int			i;

	SpinLockAcquire(&counters_shared->mutex);
	c->ticks += tick->ticks;
	c->jobs_examined += tick->jobs_examined;
	c->reaped_total += tick->reaped_total;
	for (i = 0; i < 3; i++)
		c->reaped_tier[i] += tick->reaped_tier[i];
	c->finalizer_defers_total += tick->finalizer_defers_total;
	c->errors_total += tick->errors_total;
	if (tick->ticks > 0)
	{
		c->last_tick_at = tick->last_tick_at;
		c->last_tick_ms = tick->last_tick_ms;
	}
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
