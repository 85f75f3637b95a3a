/*-------------------------------------------------------------------------
 *
 * reapers.h
 *	  The directory of per-database reapers in shared memory: who reaps which
 *	  database, which jobs lost their owner there, and who must leave.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_REAPERS_H
#define FINLIVE_REAPERS_H

/* Jobs of dead owners one reaper can be told about between two ticks. */
#define REAPER_EXIT_NOTICES		1024

/* How a reaper last left its database, for the launcher. */
typedef enum ReaperExit
{
	REAPER_EXIT_NONE,			/* running, or never ran */
	REAPER_EXIT_NO_EXTENSION,	/* finlive is not installed there */
	REAPER_EXIT_ASKED,			/* asked to leave (DROP DATABASE and kin) */
	REAPER_EXIT_OTHER			/* an error or a signal: restart it */
} ReaperExit;

/* What a reaper learns from the owner exits it was told about. */
typedef struct ExitNotices
{
	int			njobs;
	bool		overflow;		/* more than fit: decide every job */
	bool		recheck;		/* the extension changed: a full tick now */
	int64		jobs[REAPER_EXIT_NOTICES];
} ExitNotices;

extern void exit_notices_add(ExitNotices *notices, const int64 *jobs, int njobs);
extern void exit_notices_merge(ExitNotices *into, const ExitNotices *from);
extern void exit_notices_clear(ExitNotices *notices);

extern void reapers_shmem_request(void);
extern void reapers_shmem_init(void);

/* an owning session ends */
extern void reapers_owner_exited(Oid dbid, const int64 *jobs, int njobs);

/* a reaper */
extern bool reapers_attach(Oid dbid);
extern void reapers_detach(ReaperExit why);
extern bool reapers_take_exits(ExitNotices *out);
extern bool reapers_leave_requested(void);

/* the launcher */
extern void reapers_set_launcher(bool running);
extern int	reapers_pid_of(Oid dbid);
extern ReaperExit reapers_last_exit(Oid dbid);
extern bool reapers_on_hold(Oid dbid);
extern void reapers_forget(Oid dbid);

/* sessions: database and extension events */
extern void reapers_hold_and_evict(Oid dbid);
extern void reapers_release_hold(Oid dbid);
extern void reapers_wake(Oid dbid);
extern void reapers_note_installed(Oid dbid);

#endif							/* FINLIVE_REAPERS_H */
