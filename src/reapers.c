/*-------------------------------------------------------------------------
 *
 * reapers.c
 *	  The directory of per-database reapers in shared memory.
 *
 * One slot per database that has, or recently had, a reaper.  Four kinds of
 * process use it, each through its own few functions:
 *
 *	- an owning session, when it ends, records which of its jobs lost their
 *	  owner and wakes its own database's reaper (and no other);
 *	- a reaper attaches to its database's slot (at most one reaper per
 *	  database), takes the exit notices, notices when it is asked to leave,
 *	  and says why it left;
 *	- the launcher reads which databases have a reaper, why one left, and
 *	  whether a database is on hold;
 *	- a session about to DROP, RENAME, move or copy a database (which all
 *	  need it free of other sessions) puts it on hold and evicts its reaper,
 *	  so the command never waits for it, and lifts the hold afterwards.
 *
 * Everything is under one LWLock; each operation is a short scan of a few
 * dozen slots and never raises while holding it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "reapers.h"

/* A hold older than this is a leftover of a session that died mid-command. */
#define HOLD_EXPIRY_MS		(5 * 60 * 1000)

typedef struct ReaperSlot
{
	Oid			dbid;			/* InvalidOid: the slot is free */
	int			procno;			/* the reaper's, -1 when none runs */
	int			pid;
	ReaperExit	last_exit;
	bool		leave;			/* the reaper must leave at once */
	int			holds;			/* sessions that need the database free */
	TimestampTz hold_since;
	ExitNotices notices;		/* not yet taken by the reaper */
} ReaperSlot;

typedef struct ReapersShared
{
	LWLock	   *lock;
	int			launcher_procno;	/* -1 when no launcher runs */
	int			nslots;
	ReaperSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} ReapersShared;

static ReapersShared *reapers = NULL;

/* The slot this process attached to, as a reaper. */
static ReaperSlot *my_slot = NULL;

/* Every reaper needs a worker slot, so there can be no more than that. */
static int
slot_count(void)
{
	return 2 * max_worker_processes + 8;
}

static Size
reapers_size(void)
{
	return add_size(offsetof(ReapersShared, slots),
					mul_size(slot_count(), sizeof(ReaperSlot)));
}

void
reapers_shmem_request(void)
{
	RequestAddinShmemSpace(reapers_size());
	RequestNamedLWLockTranche("finlive_reapers", 1);
}

void
reapers_shmem_init(void)
{
	bool		found;
	int			i;

	reapers = ShmemInitStruct("finlive reapers", reapers_size(), &found);
	if (found)
		return;
	reapers->lock = &(GetNamedLWLockTranche("finlive_reapers"))->lock;
	reapers->launcher_procno = -1;
	reapers->nslots = slot_count();
	for (i = 0; i < reapers->nslots; i++)
	{
		memset(&reapers->slots[i], 0, sizeof(ReaperSlot));
		reapers->slots[i].dbid = InvalidOid;
		reapers->slots[i].procno = -1;
	}
}

static inline void
set_latch_of(int procno)
{
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* The slot of dbid, or (create) a free one for it; NULL if none.  Locked. */
static ReaperSlot *
find_slot(Oid dbid, bool create)
{
	ReaperSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < reapers->nslots; i++)
	{
		ReaperSlot *s = &reapers->slots[i];

		if (s->dbid == dbid)
			return s;
		if (free_slot == NULL && s->dbid == InvalidOid)
			free_slot = s;
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(ReaperSlot));
	free_slot->dbid = dbid;
	free_slot->procno = -1;
	return free_slot;
}

static bool
slot_on_hold(const ReaperSlot *s)
{
	return s->holds > 0 &&
		!TimestampDifferenceExceeds(s->hold_since, GetCurrentTimestamp(), HOLD_EXPIRY_MS);
}

/* Add jobs to notices; what does not fit makes them an overflow. */
void
exit_notices_add(ExitNotices *notices, const int64 *jobs, int njobs)
{
	int			room = REAPER_EXIT_NOTICES - notices->njobs;

	if (njobs > room)
		notices->overflow = true;
	memcpy(&notices->jobs[notices->njobs], jobs, sizeof(int64) * Min(njobs, room));
	notices->njobs += Min(njobs, room);
}

/* Add one set of notices to another. */
void
exit_notices_merge(ExitNotices *into, const ExitNotices *from)
{
	exit_notices_add(into, from->jobs, from->njobs);
	into->overflow |= from->overflow;
	into->recheck |= from->recheck;
}

void
exit_notices_clear(ExitNotices *notices)
{
	notices->njobs = 0;
	notices->overflow = false;
	notices->recheck = false;
}

/*
 * An owning session of database dbid ends: record its jobs for the reaper
 * there and wake it.  A database nobody reaps keeps no notices.
 */
void
reapers_owner_exited(Oid dbid, const int64 *jobs, int njobs)
{
	ReaperSlot *s;
	int			procno = -1;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, false);
	if (s != NULL && s->procno >= 0)
	{
		exit_notices_add(&s->notices, jobs, njobs);
		procno = s->procno;
	}
	LWLockRelease(reapers->lock);
	set_latch_of(procno);
}

/*
 * Become the reaper of dbid.  False when another reaper already is, or the
 * database is on hold (a session needs it free): the caller then leaves.
 */
bool
reapers_attach(Oid dbid)
{
	ReaperSlot *s;
	bool		ok = false;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, true);
	if (s != NULL && s->procno < 0 && !slot_on_hold(s))
	{
		s->procno = compat_my_proc_number();
		s->pid = MyProcPid;
		s->leave = false;
		s->last_exit = REAPER_EXIT_NONE;
		exit_notices_clear(&s->notices);
		my_slot = s;
		ok = true;
	}
	LWLockRelease(reapers->lock);
	return ok;
}

/* This reaper leaves, and says why. */
void
reapers_detach(ReaperExit why)
{
	int			launcher;

	if (my_slot == NULL)
		return;
	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	my_slot->procno = -1;
	my_slot->pid = 0;
	my_slot->last_exit = why;
	exit_notices_clear(&my_slot->notices);
	launcher = reapers->launcher_procno;
	LWLockRelease(reapers->lock);
	my_slot = NULL;
	set_latch_of(launcher);
}

/*
 * Take the exit notices recorded for this reaper since the last call, and
 * add them to *into.  True if there were any.
 */
bool
reapers_take_exits(ExitNotices *into)
{
	bool		any;

	if (my_slot == NULL)
		return false;
	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	any = my_slot->notices.njobs > 0 || my_slot->notices.overflow ||
		my_slot->notices.recheck;
	exit_notices_merge(into, &my_slot->notices);
	exit_notices_clear(&my_slot->notices);
	LWLockRelease(reapers->lock);
	return any;
}

/* Must this reaper leave its database now? */
bool
reapers_leave_requested(void)
{
	bool		leave;

	if (my_slot == NULL)
		return false;
	LWLockAcquire(reapers->lock, LW_SHARED);
	leave = my_slot->leave;
	LWLockRelease(reapers->lock);
	return leave;
}

/* The launcher starts (true) or stops (false) being the one to wake. */
void
reapers_set_launcher(bool running)
{
	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	reapers->launcher_procno = running ? compat_my_proc_number() : -1;
	LWLockRelease(reapers->lock);
}

/* The pid of dbid's reaper, 0 if none runs. */
int
reapers_pid_of(Oid dbid)
{
	ReaperSlot *s;
	int			pid = 0;

	LWLockAcquire(reapers->lock, LW_SHARED);
	s = find_slot(dbid, false);
	if (s != NULL && s->procno >= 0)
		pid = s->pid;
	LWLockRelease(reapers->lock);
	return pid;
}

/* Why dbid's last reaper left (NONE while one runs, or if none ran). */
ReaperExit
reapers_last_exit(Oid dbid)
{
	ReaperSlot *s;
	ReaperExit	why = REAPER_EXIT_NONE;

	LWLockAcquire(reapers->lock, LW_SHARED);
	s = find_slot(dbid, false);
	if (s != NULL && s->procno < 0)
		why = s->last_exit;
	LWLockRelease(reapers->lock);
	return why;
}

bool
reapers_on_hold(Oid dbid)
{
	ReaperSlot *s;
	bool		hold = false;

	LWLockAcquire(reapers->lock, LW_SHARED);
	s = find_slot(dbid, false);
	if (s != NULL)
		hold = slot_on_hold(s);
	LWLockRelease(reapers->lock);
	return hold;
}

/* The launcher is done with dbid (gone, or no longer reaped): free its slot. */
void
reapers_forget(Oid dbid)
{
	ReaperSlot *s;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, false);
	if (s != NULL && s->procno < 0 && !slot_on_hold(s))
		s->dbid = InvalidOid;
	LWLockRelease(reapers->lock);
}

/*
 * A session is about to run a command that needs dbid free of every other
 * session (DROP DATABASE, ALTER DATABASE RENAME or SET TABLESPACE, CREATE
 * DATABASE from it as a template): no reaper may start there until
 * reapers_release_hold, and the one running is told to leave and
 * terminated, as the server does with autovacuum workers, so the command
 * does not wait for it.
 */
void
reapers_hold_and_evict(Oid dbid)
{
	ReaperSlot *s;
	int			pid = 0;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, true);
	if (s != NULL)
	{
		if (!slot_on_hold(s))
			s->holds = 0;
		s->holds++;
		s->hold_since = GetCurrentTimestamp();
		if (s->procno >= 0)
		{
			s->leave = true;
			pid = s->pid;
		}
	}
	LWLockRelease(reapers->lock);
	if (pid != 0)
		(void) kill(pid, SIGTERM);
}

/* The command that put dbid on hold is over: a reaper may start again. */
void
reapers_release_hold(Oid dbid)
{
	ReaperSlot *s;
	int			launcher;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, false);
	if (s != NULL && s->holds > 0)
		s->holds--;
	launcher = reapers->launcher_procno;
	LWLockRelease(reapers->lock);
	set_latch_of(launcher);
}

/* Make dbid's reaper, if one runs, look at its extension again now. */
void
reapers_wake(Oid dbid)
{
	ReaperSlot *s;
	int			procno = -1;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, false);
	if (s != NULL && s->procno >= 0)
	{
		s->notices.recheck = true;
		procno = s->procno;
	}
	LWLockRelease(reapers->lock);
	set_latch_of(procno);
}

/*
 * finlive was just installed in dbid (CREATE EXTENSION committed): forget
 * that a reaper found it missing there, and wake the launcher to start one.
 */
void
reapers_note_installed(Oid dbid)
{
	ReaperSlot *s;
	int			procno;

	LWLockAcquire(reapers->lock, LW_EXCLUSIVE);
	s = find_slot(dbid, false);
	if (s != NULL && s->last_exit == REAPER_EXIT_NO_EXTENSION)
		s->last_exit = REAPER_EXIT_NONE;
	procno = reapers->launcher_procno;
	LWLockRelease(reapers->lock);
	set_latch_of(procno);
}
