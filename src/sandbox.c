/*-------------------------------------------------------------------------
 *
 * sandbox.c
 *	  Running queries and application code as another role, so that
 *	  nothing of one role changes what another role's session does.
 *
 * Every query finlive runs goes through sandbox_enter(): as the owner of
 * its tables or as a target's registrant, in a restricted security context
 * (no SET ROLE or SET SESSION AUTHORIZATION back to the caller) and with a
 * search_path of its own, in a GUC nest level that sandbox_leave() rolls
 * back (as core does at the end of a function with SET clauses): a
 * setting changed in there, even with SET or set_config(..., false), never
 * reaches the session.  On an error, the (sub)transaction abort undoes the
 * same.
 *
 * Application code (a target's gate and on_reap, and the update whose
 * triggers it fires) additionally runs through sandbox_run_app(): with the
 * registrant's search_path, under finlive.hook_timeout, and followed by
 * sandbox_release_session_locks(), which takes back every session-level
 * advisory lock it left in the ticking session.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"

#include "ownership.h"
#include "sandbox.h"
#include "settings.h"

/* finlive.hook_timeout, as a timeout of this process. */
static TimeoutId app_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t app_timed_out = false;
static int	app_depth = 0;

/*
 * Act as "role", restricted, with this search_path, in a new GUC nest level.
 */
void
sandbox_enter(Oid role, const char *search_path, Sandbox *sb)
{
	GetUserIdAndSecContext(&sb->save_userid, &sb->save_sec);
	SetUserIdAndSecContext(role,
						   sb->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sb->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* Undo sandbox_enter(): every setting changed since is rolled back. */
void
sandbox_leave(Sandbox *sb)
{
	AtEOXact_GUC(false, sb->save_nestlevel);
	SetUserIdAndSecContext(sb->save_userid, sb->save_sec);
}

/*
 * finlive.hook_timeout expired: cancel the running statement, as
 * statement_timeout does, and remember that the cancel was ours.
 */
static void
app_timeout_handler(void)
{
	app_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

static void
raise_app_timeout(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("%s ran longer than finlive.hook_timeout", what),
			 errdetail("finlive.hook_timeout is %d ms.", finlive_hook_timeout)));
}

/*
 * Run application code: code(arg), with the registrant's search_path (the
 * role and the restricted context are the caller's sandbox), under
 * finlive.hook_timeout.  A cancel the code catches and swallows still ends
 * it with the timeout error.  Settings it changes are rolled back.
 */
void
sandbox_run_app(const char *search_path, const char *what,
				void (*code) (void *), void *arg)
{
	int			nestlevel = NewGUCNestLevel();
	bool		armed = false;

	(void) set_config_option("search_path", search_path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (app_depth == 0 && finlive_hook_timeout > 0)
	{
		if (app_timeout_id == MAX_TIMEOUTS)
			app_timeout_id = RegisterTimeout(USER_TIMEOUT, app_timeout_handler);
		app_timed_out = false;
		enable_timeout_after(app_timeout_id, finlive_hook_timeout);
		armed = true;
	}
	app_depth++;
	PG_TRY();
	{
		code(arg);
	}
	PG_CATCH();
	{
		app_depth--;
		if (armed)
			disable_timeout(app_timeout_id, false);
		/* the cancel was ours: say so, instead of "due to user request" */
		if (armed && app_timed_out && geterrcode() == ERRCODE_QUERY_CANCELED)
		{
			FlushErrorState();
			raise_app_timeout(what);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	app_depth--;
	if (armed)
		disable_timeout(app_timeout_id, false);

	if (armed && app_timed_out)
	{
		/* it caught our cancel and went on: the cancel still stands */
		QueryCancelPending = false;
		raise_app_timeout(what);
	}
	AtEOXact_GUC(false, nestlevel);
}

/*
 * Run code(arg) in a subtransaction, as PL/pgSQL runs a block with an
 * exception handler: on an error, roll it back and return false with the
 * error in *error; but re-throw an interrupt (after the rollback), which
 * must end the caller's work too.  On success the subtransaction is kept,
 * or rolled back all the same unless "keep".
 */
bool
sandbox_try(void (*code) (void *), void *arg, bool keep, ErrorData **error)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		code(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out = app_timed_out;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		app_timed_out = false;

		/* a cancel by finlive.hook_timeout is the code's own error */
		if (!timed_out && sandbox_is_interrupt(edata))
			ReThrowError(edata);
		*error = edata;
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return false;
	if (keep)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcontext);
	CurrentResourceOwner = oldowner;
	return true;
}

/*
 * Is this error an interrupt rather than a job's own failure: a query
 * cancel, statement_timeout or lock_timeout?  These end a tick (as
 * PL/pgSQL's WHEN OTHERS lets query_canceled through); a termination request
 * is FATAL and never gets here.  A cancel by finlive.hook_timeout is not
 * an interrupt; sandbox_try tells it apart.
 */
bool
sandbox_is_interrupt(const ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		return true;
	/* lock_timeout, as opposed to NOWAIT, which is the job's own error */
	return edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE &&
		edata->message_id != NULL &&
		strcmp(edata->message_id, "canceling statement due to lock timeout") == 0;
}

/*
 * Take back every session-level advisory lock application code left in
 * this session (ownership it took with finlive_mark first, so its registry
 * entries go too).  Safe because a session that ticks owns nothing of its
 * own: finlive_reap_once() refuses to run in one, and a reaper never marks.
 */
void
sandbox_release_session_locks(void)
{
	(void) ownership_clear_all();
	LockReleaseSession(USER_LOCKMETHOD);
}
