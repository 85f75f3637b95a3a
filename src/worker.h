/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background workers: a launcher, and one reaper per database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_WORKER_H
#define FINLIVE_WORKER_H

#include "postmaster/bgworker.h"

extern void launcher_register(void);
extern bool launcher_start_reaper(Oid dboid, BackgroundWorkerHandle **handle);
extern void worker_check_ceiling(void);

#endif							/* FINLIVE_WORKER_H */
