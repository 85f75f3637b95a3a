/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker that runs the reaper every finlive.naptime.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_WORKER_H
#define FINLIVE_WORKER_H

extern void worker_register(void);

#endif							/* FINLIVE_WORKER_H */
