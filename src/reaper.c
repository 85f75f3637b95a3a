/*-------------------------------------------------------------------------
 *
 * reaper.c
 *	  The tiered reaper: what happens to a running job whose worker or
 *	  finalizer died.  The only code that writes application tables.
 *
 * One tick over one target:
 *
 *	1. One set-based query reads the target's running jobs that may need a
 *	   decision (past a grace or the ceiling), locking each row
 *	   FOR UPDATE SKIP LOCKED: a row a finalizer holds is skipped this tick,
 *	   and two reapers never hold the same job.  An index on running jobs
 *	   serves it, so its cost follows the number of running jobs, not the
 *	   size of the table.
 *	2. For each locked job, in a subtransaction of its own, the tiers are
 *	   decided in order (Tier-2 lost finalization, Tier-1 dead worker, Tier-3
 *	   backstop) with ownership checked again now that the row is locked;
 *	   then the job is updated, on_reap is called, NOTIFY finlive_reaped is
 *	   queued and the reap is logged, all in that subtransaction.  An error
 *	   rolls back that job alone and the tick goes on.
 *
 * The queries and hooks of a target run as the role that registered it, in
 * a restricted security context (no SET ROLE back to the worker's
 * superuser) and with search_path = pg_catalog, pg_temp; every table and
 * function is named schema-qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "ownership.h"
#include "reaper.h"
#include "settings.h"

#define USECS(seconds)	((int64) (seconds) * USECS_PER_SEC)

/*
 * Start of the restart window: shared memory creation (server start or
 * crash restart), moved to the worker's first start in this shared memory's
 * life.  The worker starts only once recovery has finished, so that is also
 * the moment a standby was promoted.
 */
typedef struct ReaperShared
{
	slock_t		mutex;
	TimestampTz window_start;
	bool		worker_started;
} ReaperShared;

static ReaperShared *reaper_shared = NULL;

/* What the tiers decided for one job. */
typedef enum ReapAction
{
	ACTION_NONE,
	ACTION_DEFER,
	ACTION_DONE,
	ACTION_QUEUED,
	ACTION_FAILED,
	ACTION_FINALIZE				/* Tier-2: done or requeue-or-fail, by the gate */
} ReapAction;

static const char *const action_names[] = {"none", "deferred", "done", "queued", "failed", "finalize"};

/* A locked candidate row. */
typedef struct Candidate
{
	int64		job_id;
	char	   *status;
	bool		attempts_isnull;
	int32		attempts;
	bool		max_attempts_isnull;
	int32		max_attempts;
	bool		started_isnull;
	TimestampTz started_at;
	bool		exit_code_isnull;
	int32		exit_code;
	bool		finished_isnull;
	TimestampTz finished_at;
	char	   *stage;			/* NULL: no task or no tasks table */
} Candidate;

/* Everything one target's tick needs, prepared once. */
typedef struct TargetTick
{
	const FinliveCatalog *cat;
	const Target *target;
	char	   *target_name;	/* as the caller's search_path shows it */
	TimestampTz now;			/* transaction time: ages are now() - x */
	bool		in_restart_window;
	SPIPlanPtr	update_plan;
	SPIPlanPtr	gate_plan;
	SPIPlanPtr	hook_plan;
	SPIPlanPtr	log_plan;
	ReaperCounters *counters;
	ReturnSetInfo *rsinfo;
} TargetTick;

Size
reaper_shmem_size(void)
{
	return MAXALIGN(sizeof(ReaperShared));
}

void
reaper_shmem_request(void)
{
	RequestAddinShmemSpace(reaper_shmem_size());
}

void
reaper_shmem_init(void)
{
	bool		found;

	reaper_shared = ShmemInitStruct("finlive reaper", sizeof(ReaperShared), &found);
	if (!found)
	{
		SpinLockInit(&reaper_shared->mutex);
		reaper_shared->window_start = GetCurrentTimestamp();
		reaper_shared->worker_started = false;
	}
}

/* The worker's first start opens the restart window (again). */
void
reaper_note_worker_start(void)
{
	SpinLockAcquire(&reaper_shared->mutex);
	if (!reaper_shared->worker_started)
	{
		reaper_shared->worker_started = true;
		reaper_shared->window_start = GetCurrentTimestamp();
	}
	SpinLockRelease(&reaper_shared->mutex);
}

static bool
in_restart_window(void)
{
	TimestampTz start;

	SpinLockAcquire(&reaper_shared->mutex);
	start = reaper_shared->window_start;
	SpinLockRelease(&reaper_shared->mutex);
	return GetCurrentTimestamp() - start < USECS(finlive_restart_grace);
}

/*
 * Schema-qualified, quoted names for building a target's SQL.  A table or
 * function dropped by another session while the tick waited for a lock is
 * an error here (failing this target's tick with a WARNING), not a NULL.
 */
static char *
qualified_rel(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (relname == NULL || nspname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u was dropped during the tick", relid)));
	return quote_qualified_identifier(nspname, relname);
}

static char *
qualified_func(Oid funcid)
{
	char	   *funcname = get_func_name(funcid);
	char	   *nspname = funcname ? get_namespace_name(get_func_namespace(funcid)) : NULL;

	if (funcname == NULL || nspname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u was dropped during the tick", funcid)));
	return quote_qualified_identifier(nspname, funcname);
}

static SPIPlanPtr
prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * Prepare the per-job statements of a target.  Runs as the registering role
 * (and the log insert's plan is only executed as the table owner).
 */
static void
prepare_statements(TargetTick *tt)
{
	const Target *t = tt->target;
	Oid			update_types[3] = {INT8OID, TEXTOID, INT4OID};
	Oid			hook_types[3] = {INT8OID, INT4OID, TEXTOID};
	Oid			log_types[7] = {OIDOID, INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, BOOLOID};

	tt->update_plan = prepare(psprintf("UPDATE %s SET status = $2, attempts = attempts + $3"
									   " WHERE id = $1 AND status = 'running'",
									   qualified_rel(t->jobs)),
							  3, update_types);
	if (OidIsValid(t->gate))
		tt->gate_plan = prepare(psprintf("SELECT %s($1)", qualified_func(t->gate)),
								1, hook_types);
	if (OidIsValid(t->on_reap))
		tt->hook_plan = prepare(psprintf("SELECT %s($1, $2, $3)", qualified_func(t->on_reap)),
								3, hook_types);
	tt->log_plan = prepare(psprintf("INSERT INTO %s.finlive_reap_log"
									" (target, job_id, tier, old_status, new_status, owner_pid, dry_run)"
									" VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7)",
									tt->cat->qualified_schema),
						   7, log_types);
}

/*
 * Read and lock the target's running jobs that may need a decision.  The
 * filter only prunes rows no tier could act on; the tiers are decided
 * again, exactly, on the locked rows.  Tier-1 candidates with a live owner
 * are pruned too (no lock taken for them), and are re-checked under the
 * row lock like everything else.
 *
 * Each running job's run is fetched through a LATERAL subquery that LIMIT 1
 * keeps from being flattened into a join, and its stage by a scalar
 * subquery evaluated only for the rows that pass the filter: the plan is
 * then always an index scan of the running jobs with one index probe into
 * runs each, so a tick costs what the running jobs cost, whatever the size
 * of the tables.  (As plain joins, the planner hashes all of runs once the
 * running jobs are many.)  LIMIT 1 also keeps a duplicated runs.id or
 * tasks.id from showing a job twice.
 */
static Candidate *
read_candidates(TargetTick *tt, int *count)
{
	const Target *t = tt->target;
	bool		tier1 = t->claim_owned && finlive_enabled && !tt->in_restart_window;
	Oid			types[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID};
	Datum		args[4];
	char	   *sql;
	Candidate  *rows;
	uint64		i;

	/*
	 * Every column is cast to the type read below: a column whose type was
	 * altered after registration then converts, or fails the target's tick,
	 * and is never misread.
	 */
	sql = psprintf("SELECT j.id::pg_catalog.int8, j.status::pg_catalog.text,"
				   "       j.attempts::pg_catalog.int4, j.max_attempts::pg_catalog.int4,"
				   "       j.started_at::pg_catalog.timestamptz,"
				   "       r.exit_code, r.finished_at, %s"
				   "  FROM %s j"
				   "  LEFT JOIN LATERAL (SELECT r.exit_code::pg_catalog.int4,"
				   "                            r.finished_at::pg_catalog.timestamptz FROM %s r"
				   "                      WHERE r.id = j.run_id LIMIT 1) r ON true"
				   " WHERE j.status = 'running'"
				   "   AND ((r.exit_code IS NOT NULL AND r.finished_at <= $1)"
				   "        OR ($4 AND r.exit_code IS NULL AND j.started_at <= $2"
				   "            AND NOT %s.finlive_is_active(j.id::pg_catalog.int8))"
				   "        OR j.started_at <= $3)"
				   " ORDER BY j.id"
				   "   FOR UPDATE OF j SKIP LOCKED",
				   OidIsValid(t->tasks)
				   ? psprintf("(SELECT tk.stage::pg_catalog.text FROM %s tk"
							  " WHERE tk.id = j.task_id LIMIT 1)",
							  qualified_rel(t->tasks))
				   : "NULL::pg_catalog.text",
				   qualified_rel(t->jobs),
				   qualified_rel(t->runs),
				   tt->cat->qualified_schema);
	args[0] = TimestampTzGetDatum(tt->now - USECS(finlive_finalize_grace));
	args[1] = TimestampTzGetDatum(tt->now - USECS(finlive_claim_grace));
	args[2] = TimestampTzGetDatum(tt->now - USECS(finlive_max_running));
	args[3] = BoolGetDatum(tier1);

	if (SPI_execute_with_args(sql, 4, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "candidate query failed for target \"%s\"", tt->target_name);

	rows = palloc0(sizeof(Candidate) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Candidate  *c = &rows[i];
		bool		isnull;
		Datum		d;

		c->job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		c->status = SPI_getvalue(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 3, &c->attempts_isnull);
		c->attempts = c->attempts_isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 4, &c->max_attempts_isnull);
		c->max_attempts = c->max_attempts_isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 5, &c->started_isnull);
		c->started_at = c->started_isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 6, &c->exit_code_isnull);
		c->exit_code = c->exit_code_isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 7, &c->finished_isnull);
		c->finished_at = c->finished_isnull ? 0 : DatumGetTimestampTz(d);
		c->stage = SPI_getvalue(tup, desc, 8);
	}
	*count = (int) SPI_processed;
	return rows;
}

/* requeue-or-fail */
static ReapAction
requeue_or_fail(const Candidate *c)
{
	if (!c->attempts_isnull && !c->max_attempts_isnull && c->attempts < c->max_attempts)
		return ACTION_QUEUED;
	return ACTION_FAILED;
}

/* The application's gate, or exit_code = 0 without one. */
static bool
gate_passes(TargetTick *tt, const Candidate *c)
{
	Datum		args[1] = {Int64GetDatum(c->job_id)};
	bool		isnull;
	Datum		result;

	if (tt->gate_plan == NULL)
		return c->exit_code == 0;
	if (SPI_execute_plan(tt->gate_plan, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "gate %s did not return a row", tt->target->gate_name);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(result);
}

/*
 * Decide one locked job, in the contract's order.  Ownership is looked up
 * only where a tier depends on it, and now, under the row lock.  Runs no
 * application code: a Tier-2 finalization is returned as ACTION_FINALIZE,
 * for the gate to settle inside the job's subtransaction.
 */
static ReapAction
decide(TargetTick *tt, const Candidate *c, int *tier, bool *deferred)
{
	const Target *t = tt->target;
	ReapAction	action = ACTION_NONE;
	bool		run_done = !c->exit_code_isnull && !c->finished_isnull;

	*tier = 0;
	*deferred = false;
	if (run_done)
	{
		/* Tier-2: the run ended; was its finalization lost? */
		if (tt->now - c->finished_at >= USECS(finlive_finalize_grace))
		{
			bool		stage_guarded = finlive_enabled && settings_stage_is_guarded(c->stage);

			if (stage_guarded && ownership_lookup(c->job_id, NULL))
			{
				action = ACTION_DEFER;
				*deferred = true;
			}
			else if (stage_guarded && tt->in_restart_window)
				 /* owners may still be reconnecting: leave it */ ;
			else
				action = ACTION_FINALIZE;
			*tier = 2;
		}
	}
	else if (t->claim_owned && finlive_enabled && c->exit_code_isnull &&
			 !c->started_isnull && tt->now - c->started_at >= USECS(finlive_claim_grace) &&
			 !tt->in_restart_window && !ownership_lookup(c->job_id, NULL))
	{
		/* Tier-1: claimed, never finished, and nobody holds it */
		action = requeue_or_fail(c);
		*tier = 1;
	}

	/*
	 * Tier-3: the backstop, whatever the ownership, the run or the switch.
	 * A job Tier-2 deferred is still running, so it applies to it too: the
	 * defer has been counted, and the job is reaped all the same.
	 */
	if ((action == ACTION_NONE || action == ACTION_DEFER) &&
		!c->started_isnull && tt->now - c->started_at >= USECS(finlive_max_running))
	{
		action = requeue_or_fail(c);
		*tier = 3;
	}
	return action;
}

static void
notify_reaped(TargetTick *tt, const Candidate *c, int tier, ReapAction action)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"target\": ");
	escape_json(&payload, tt->target_name);
	appendStringInfo(&payload, ", \"job_id\": " INT64_FORMAT ", \"tier\": %d, \"status\": \"%s\"}",
					 c->job_id, tier, action_names[action]);
	Async_Notify("finlive_reaped", payload.data);
}

/* Append the reap to finlive_reap_log, as the owner of that table. */
static void
log_reap(TargetTick *tt, const Candidate *c, int tier, ReapAction action, int32 owner_pid)
{
	Datum		args[7];
	char		nulls[7] = "       ";
	RoleSwitch	sw;

	args[0] = ObjectIdGetDatum(tt->target->jobs);
	args[1] = Int64GetDatum(c->job_id);
	args[2] = Int32GetDatum(tier);
	args[3] = CStringGetTextDatum(c->status);
	args[4] = CStringGetTextDatum(action_names[action]);
	args[5] = Int32GetDatum(owner_pid);
	nulls[5] = owner_pid != 0 ? ' ' : 'n';
	args[6] = BoolGetDatum(finlive_dry_run);

	targets_become(tt->cat->owner, &sw);
	if (SPI_execute_plan(tt->log_plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write finlive_reap_log");
	targets_restore(&sw);
}

/*
 * Carry out a reap: settle a finalization with the gate, update the job,
 * call on_reap, queue the NOTIFY, log.  Runs inside the job's
 * subtransaction; any error here undoes this job alone.
 */
static ReapAction
reap_job(TargetTick *tt, const Candidate *c, ReapAction action, int tier)
{
	OwnerInfo	owner;
	int32		owner_pid = 0;

	if (action == ACTION_FINALIZE)
		action = gate_passes(tt, c) ? ACTION_DONE : requeue_or_fail(c);

	if (ownership_lookup(c->job_id, &owner))
		owner_pid = owner.pid;

	if (!finlive_dry_run)
	{
		Datum		args[3];

		args[0] = Int64GetDatum(c->job_id);
		args[1] = CStringGetTextDatum(action_names[action]);
		args[2] = Int32GetDatum(action == ACTION_QUEUED ? 1 : 0);
		if (SPI_execute_plan(tt->update_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update job " INT64_FORMAT, c->job_id);

		/*
		 * Nothing changed (a gate, a trigger or a nested tick finished the
		 * job since it was read, or a trigger refused the update): then
		 * there was no reap, and no hook, NOTIFY or log row for one.
		 */
		if (SPI_processed == 0)
			return ACTION_NONE;

		if (tt->hook_plan != NULL)
		{
			args[1] = Int32GetDatum(tier);
			args[2] = CStringGetTextDatum(action_names[action]);
			if (SPI_execute_plan(tt->hook_plan, args, NULL, false, 0) < 0)
				elog(ERROR, "on_reap hook %s failed", tt->target->on_reap_name);
		}
		notify_reaped(tt, c, tier, action);
	}
	log_reap(tt, c, tier, action, owner_pid);
	return action;
}

static void
count_action(TargetTick *tt, ReapAction action, int tier, bool deferred)
{
	if (deferred)
		tt->counters->finalizer_defers_total++;
	if (action != ACTION_NONE && action != ACTION_DEFER && !finlive_dry_run)
	{
		tt->counters->reaped_total++;
		tt->counters->reaped_tier[tier - 1]++;
	}
}

static void
emit_row(TargetTick *tt, const Candidate *c, int tier, ReapAction action)
{
	Datum		values[4];
	bool		nulls[4] = {false};

	if (tt->rsinfo == NULL)
		return;
	values[0] = ObjectIdGetDatum(tt->target->jobs);
	values[1] = Int64GetDatum(c->job_id);
	values[2] = Int32GetDatum(tier);
	values[3] = CStringGetTextDatum(action_names[action]);
	tuplestore_putvalues(tt->rsinfo->setResult, tt->rsinfo->setDesc, values, nulls);
}

/*
 * Run "work" in a subtransaction.  On error: roll it back, count it, log a
 * WARNING with "what" and the message, and return false.  This is the one
 * place a tick swallows errors.
 */
static bool
run_isolated(void (*work) (void *), void *arg, ReaperCounters *counters,
			 const char *what)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		counters->errors_total++;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("finlive: %s failed: %s", what, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

typedef struct JobWork
{
	TargetTick *tt;
	const Candidate *c;
	ReapAction	action;			/* in: the decision; out: what was done */
	int			tier;
} JobWork;

static void
job_work(void *arg)
{
	JobWork    *w = (JobWork *) arg;

	w->action = reap_job(w->tt, w->c, w->action, w->tier);
}

/* The body of one target's tick, inside the target's subtransaction. */
static void
target_work(void *arg)
{
	TargetTick *tt = (TargetTick *) arg;
	Candidate  *rows;
	int			nrows;
	int			i;

	prepare_statements(tt);
	rows = read_candidates(tt, &nrows);
	tt->counters->jobs_examined += nrows;
	for (i = 0; i < nrows; i++)
	{
		JobWork		w = {tt, &rows[i], ACTION_NONE, 0};
		bool		deferred;

		w.action = decide(tt, &rows[i], &w.tier, &deferred);
		/* only a reap runs application code, so only a reap needs a subtransaction */
		if (w.action != ACTION_NONE && w.action != ACTION_DEFER &&
			!run_isolated(job_work, &w, tt->counters,
						  psprintf("reaping job " INT64_FORMAT " of target \"%s\"",
								   rows[i].job_id, tt->target_name)))
			w.action = ACTION_NONE;		/* rolled back: only the defer stands */
		count_action(tt, w.action, w.tier, deferred);
		if (w.action != ACTION_NONE)
			emit_row(tt, &rows[i], w.tier, w.action);
	}
}

/* Can this target be reaped now?  If not, say why once per tick. */
static bool
target_usable(const Target *t, const char *name)
{
	const char *missing = NULL;

	if (get_rel_name(t->jobs) == NULL)
		missing = "its jobs table no longer exists";
	else if (get_rel_name(t->runs) == NULL)
		missing = "its runs table no longer exists";
	else if (OidIsValid(t->tasks) && get_rel_name(t->tasks) == NULL)
		missing = "its tasks table no longer exists";
	else if (t->on_reap_name != NULL && !OidIsValid(t->on_reap))
		missing = psprintf("its on_reap function %s no longer exists", t->on_reap_name);
	else if (t->gate_name != NULL && !OidIsValid(t->gate))
		missing = psprintf("its gate function %s no longer exists", t->gate_name);
	else if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(t->registered_by)))
		missing = "the role that registered it no longer exists";
	if (missing == NULL)
		return true;
	ereport(WARNING,
			(errmsg("finlive: skipping target %s: %s", name, missing),
			 errhint("Register the target again, or remove it with finlive_unregister().")));
	return false;
}

/*
 * One tick over one target, in the current transaction; SPI must be
 * connected.  Counts into *tick; emits a row per action into rsinfo when
 * given (finlive_reap_once).  Never raises because of one job or one
 * broken target.
 */
void
reaper_process_target(const FinliveCatalog *cat, const Target *target,
					  ReaperCounters *tick, ReturnSetInfo *rsinfo)
{
	TargetTick	tt;
	RoleSwitch	sw;

	memset(&tt, 0, sizeof(tt));
	tt.cat = cat;
	tt.target = target;
	tt.target_name = get_rel_name(target->jobs)
		? DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(target->jobs)))
		: psprintf("%u", target->jobs);
	if (!target_usable(target, tt.target_name))
		return;
	tt.now = GetCurrentTransactionStartTimestamp();
	tt.in_restart_window = finlive_enabled && in_restart_window();
	tt.counters = tick;
	tt.rsinfo = rsinfo;

	/* act as the registering role, with a search_path no one can hijack */
	targets_become(target->registered_by, &sw);
	/* the candidate query's estimate crosses jit_above_cost; compiling it costs more than it runs */
	(void) set_config_option("jit", "off",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	run_isolated(target_work, &tt, tick,
				 psprintf("reaping target \"%s\"", tt.target_name));

	targets_restore(&sw);
}
