/*-------------------------------------------------------------------------
 *
 * reaper.h
 *	  One tick of the tiered reaper over a target.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_REAPER_H
#define FINLIVE_REAPER_H

#include "funcapi.h"

#include "counters.h"
#include "targets.h"

extern Size reaper_shmem_size(void);
extern void reaper_shmem_request(void);
extern void reaper_shmem_init(void);
extern void reaper_note_worker_start(void);

extern void reaper_process_target(const FinliveCatalog *cat, const Target *target,
								  ReaperCounters *tick, ReturnSetInfo *rsinfo);

#endif							/* FINLIVE_REAPER_H */
