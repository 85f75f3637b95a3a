/*-------------------------------------------------------------------------
 *
 * reaper.c
 *	  The tiered reaper: what happens to a running job whose worker or
 *	  finalizer died.  The only code that writes application tables.
 *
 * One tick over one target:
 *
 *	1. The target's tables (with their partitions and indexes) are locked
 *	   conditionally, in every mode the tick will use: a target another
 *	   transaction holds locked is skipped this tick, so no target can make
 *	   the reaper wait.
 *	2. One set-based query reads, without locking anything, the target's
 *	   running jobs that may need a decision (past a grace or the ceiling);
 *	   an index on running jobs serves it, so its cost follows the number of
 *	   running jobs, not the size of the table.  After an owner exit, the
 *	   same query reads only the jobs that owner held.
 *	3. The tiers are decided for each job in C (Tier-2 lost finalization,
 *	   Tier-1 dead worker, Tier-3 backstop), asking the registry about
 *	   ownership where a tier depends on it.  A defer, or a decision to leave
 *	   a job alone, changes nothing and takes no lock: a tick that reaps
 *	   nothing writes no WAL and dirties no page.
 *	4. A job some tier may reap is handled in a subtransaction of its own:
 *	   its row is locked (FOR UPDATE SKIP LOCKED: a row a finalizer holds is
 *	   skipped, and two reapers never both hold one), read again and decided
 *	   again under the lock; then the job is updated, on_reap is called,
 *	   NOTIFY finlive_reaped is queued and the reap is logged.  An error
 *	   rolls back that job alone and is remembered (failures.c); a cancel,
 *	   statement_timeout or lock_timeout ends the tick instead.
 *
 * The queries run as the role that registered the target (sandbox.c), with
 * a search_path that resolves nothing outside pg_catalog, and name every
 * table, operator and function schema-qualified.  Application code (the
 * gate, on_reap, and the update whose triggers it fires) runs with the
 * search_path captured at registration, under finlive.hook_timeout; hooks
 * are called by OID, never by name.
 *
 * finlive_explain() asks the same code what a tick would do with one job
 * (reaper_explain), so the two can never disagree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/subtrans.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "failures.h"
#include "ownership.h"
#include "reaper.h"
#include "sandbox.h"
#include "settings.h"

const char *const reaper_action_names[] = {
	"none", "deferred", "done", "queued", "failed", "skipped", "finalize"
};

/*
 * Start of the restart window: shared memory creation (server start or
 * crash restart), moved to the launcher's first start in this shared
 * memory's life.  The launcher starts only once recovery has finished, so
 * that is also the moment a standby was promoted.  One window per server,
 * whatever reapers come and go.
 */
typedef struct ReaperShared
{
	slock_t		mutex;
	TimestampTz window_start;
	bool		server_started;
} ReaperShared;

static ReaperShared *reaper_shared = NULL;

typedef JobRow Candidate;

/* Why the tiers decided what they did, for finlive_explain(). */
typedef enum DecisionWhy
{
	WHY_NOTHING_DUE,			/* run unfinished, no tier applies yet */
	WHY_WITHIN_FINALIZE_GRACE,
	WHY_GUARDED,
	WHY_RESTART_WINDOW,
	WHY_FINALIZE,
	WHY_DEAD_WORKER,
	WHY_CLAIMED_OWNED,
	WHY_WITHIN_CLAIM_GRACE,
	WHY_CEILING
} DecisionWhy;

/* What the tiers decided for one job. */
typedef struct Decision
{
	ReapAction	action;
	int			tier;
	bool		deferred;		/* Tier-2 deferred it (Tier-3 may reap it still) */
	DecisionWhy why;
	bool		owned;			/* ownership was asked and found live */
	OwnerInfo	owner;
	bool		eligible_isnull;	/* when the next tier could act */
	TimestampTz eligible_at;
} Decision;

/* The queries a tick runs on a target's jobs. */
typedef enum CandidateQuery
{
	QUERY_DUE,					/* every running job some tier may reap */
	QUERY_DUE_AMONG,			/* the same, among some jobs ($5) */
	QUERY_LOCK_ONE,				/* one running job ($1), locked */
	QUERY_PEEK_ONE,				/* one job ($1) in any status, unlocked */
	QUERY_RUNNING				/* every running job, unlocked */
} CandidateQuery;

/* Everything one target's tick needs, prepared once. */
typedef struct TargetTick
{
	const FinliveCatalog *cat;
	const Target *target;
	Policy		policy;
	char	   *target_name;	/* quoted, schema-qualified: statements, NOTIFY */
	char	   *display_name;	/* the same for messages, inside quotes */
	TimestampTz now;			/* transaction time: ages are now() - x */
	bool		in_restart_window;
	TimestampTz window_end;
	const ExitNotices *among;	/* only these jobs (after owner exits), or all */
	ReaperCounters *counters;
	ReturnSetInfo *rsinfo;
	SPIPlanPtr *plans;			/* per-job statements, prepared at first use */
} TargetTick;

/* The statements run once per reaped job, prepared once per target tick. */
typedef enum JobStatement
{
	STMT_LOCK_ONE,
	STMT_RUN,
	STMT_UPDATE,
	STMT_LOG,
	NUM_JOB_STATEMENTS
} JobStatement;

void
reaper_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(ReaperShared)));
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
		reaper_shared->server_started = false;
	}
}

/* The launcher's first start (after start or promotion) opens the window. */
void
reaper_note_server_start(void)
{
	SpinLockAcquire(&reaper_shared->mutex);
	if (!reaper_shared->server_started)
	{
		reaper_shared->server_started = true;
		reaper_shared->window_start = GetCurrentTimestamp();
	}
	SpinLockRelease(&reaper_shared->mutex);
}

static TimestampTz
restart_window_end(void)
{
	TimestampTz start;

	SpinLockAcquire(&reaper_shared->mutex);
	start = reaper_shared->window_start;
	SpinLockRelease(&reaper_shared->mutex);
	return start + (TimestampTz) finlive_restart_grace * USECS_PER_SEC;
}

/*
 * When does a grace that counts from ts end?  -infinity is infinitely long
 * ago (every grace has passed), +infinity and NULL have not happened yet
 * (no grace has).  DT_NOEND stands for "never".
 */
TimestampTz
reaper_grace_end(bool isnull, TimestampTz ts, int64 grace)
{
	TimestampTz end;

	if (isnull || ts == DT_NOEND)
		return DT_NOEND;
	if (ts == DT_NOBEGIN)
		return DT_NOBEGIN;
	if (pg_add_s64_overflow(ts, grace, &end) || !IS_VALID_TIMESTAMP(end))
		return DT_NOEND;
	return end;
}

/* The oldest time a grace could have started for it to have passed now. */
static TimestampTz
grace_threshold(TimestampTz now, int64 grace)
{
	TimestampTz threshold;

	if (pg_sub_s64_overflow(now, grace, &threshold) || !IS_VALID_TIMESTAMP(threshold))
		return DT_NOBEGIN;
	return threshold;
}

static bool
grace_passed(const TargetTick *tt, bool isnull, TimestampTz ts, int64 grace)
{
	TimestampTz end = reaper_grace_end(isnull, ts, grace);

	return end != DT_NOEND && tt->now >= end;
}

/* Note a time at which a tier could act, keeping the earliest. */
static void
note_eligible(Decision *d, TimestampTz at)
{
	if (at == DT_NOEND)
		return;
	if (d->eligible_isnull || at < d->eligible_at)
		d->eligible_at = at;
	d->eligible_isnull = false;
}

/*
 * Build one of the queries on the target's jobs.  Each running job's run is
 * fetched through a LATERAL subquery that LIMIT 1 keeps from being
 * flattened into a join, and its stage by a scalar subquery evaluated only
 * for the rows that pass the filter: the plan is then an index scan of the
 * running jobs with one index probe into runs each, whatever the size of
 * the tables.  (As plain joins, the planner hashes all of runs once the
 * running jobs are many.)  LIMIT 1 also keeps a duplicated runs.id or
 * tasks.id from showing a job twice.  Every column is cast to the type
 * read below: a column whose type was altered after registration then
 * converts, or fails the target's tick, and is never misread.
 *
 * The filter only prunes rows no tier could act on; the tiers are decided
 * in C, exactly, on what it returns.
 */
static char *
candidate_sql(const TargetTick *tt, CandidateQuery query)
{
	const Target *t = tt->target;
	const char *filter;

	switch (query)
	{
		case QUERY_DUE:
		case QUERY_DUE_AMONG:
			filter = psprintf(" WHERE j.status OPERATOR(pg_catalog.=) 'running'%s"
							  "   AND ((r.exit_code IS NOT NULL"
							  "         AND r.finished_at OPERATOR(pg_catalog.<=) $1)"
							  "        OR ($4 AND r.exit_code IS NULL"
							  "            AND j.started_at OPERATOR(pg_catalog.<=) $2)"
							  "        OR j.started_at OPERATOR(pg_catalog.<=) $3)"
							  " ORDER BY j.id",
							  query == QUERY_DUE_AMONG
							  ? " AND j.id OPERATOR(pg_catalog.=) ANY ($5)" : "");
			break;
		case QUERY_LOCK_ONE:

			/*
			 * The job's row alone (one index probe), locked: its run and
			 * stage are read by a statement of their own (run_sql), so that
			 * neither statement's executor grows large.
			 */
			return psprintf("SELECT j.id::pg_catalog.int8, j.status::pg_catalog.text,"
							"       j.attempts::pg_catalog.int4, j.max_attempts::pg_catalog.int4,"
							"       j.started_at::pg_catalog.timestamptz,"
							"       NULL::pg_catalog.int4, NULL::pg_catalog.timestamptz,"
							"       NULL::pg_catalog.text, j.tableoid, j.ctid,"
							"       j.run_id::pg_catalog.int8, j.task_id::pg_catalog.int8"
							"  FROM %s j"
							" WHERE j.status OPERATOR(pg_catalog.=) 'running'"
							"   AND j.id OPERATOR(pg_catalog.=) $1"
							" FOR UPDATE OF j SKIP LOCKED",
							tt->target_name);
		case QUERY_RUNNING:
			filter = " WHERE j.status OPERATOR(pg_catalog.=) 'running' ORDER BY j.id";
			break;
		case QUERY_PEEK_ONE:
		default:
			filter = " WHERE j.id OPERATOR(pg_catalog.=) $1";
			break;
	}
	return psprintf("SELECT j.id::pg_catalog.int8, j.status::pg_catalog.text,"
					"       j.attempts::pg_catalog.int4, j.max_attempts::pg_catalog.int4,"
					"       j.started_at::pg_catalog.timestamptz,"
					"       r.exit_code, r.finished_at, %s, j.tableoid, j.ctid,"
					"       j.run_id::pg_catalog.int8, j.task_id::pg_catalog.int8"
					"  FROM %s j"
					"  LEFT JOIN LATERAL (SELECT r.exit_code::pg_catalog.int4,"
					"                            r.finished_at::pg_catalog.timestamptz"
					"                       FROM %s r"
					"                      WHERE r.id OPERATOR(pg_catalog.=) j.run_id"
					"                      LIMIT 1) r ON true"
					"%s",
					OidIsValid(t->tasks)
					? psprintf("(SELECT tk.stage::pg_catalog.text FROM %s tk"
							   " WHERE tk.id OPERATOR(pg_catalog.=) j.task_id LIMIT 1)",
							   targets_name(t->tasks))
					: "NULL::pg_catalog.text",
					tt->target_name, targets_name(t->runs), filter);
}

/* The run and the stage of a locked job, by its run_id ($1) and task_id ($2). */
static char *
run_sql(const TargetTick *tt)
{
	const Target *t = tt->target;

	return psprintf("SELECT r.exit_code, r.finished_at, %s"
					"  FROM (SELECT $1::pg_catalog.int8 AS run_id, $2::pg_catalog.int8 AS task_id) k"
					"  LEFT JOIN LATERAL (SELECT r.exit_code::pg_catalog.int4,"
					"                            r.finished_at::pg_catalog.timestamptz"
					"                       FROM %s r"
					"                      WHERE r.id OPERATOR(pg_catalog.=) k.run_id"
					"                      LIMIT 1) r ON true",
					OidIsValid(t->tasks)
					? psprintf("(SELECT tk.stage::pg_catalog.text FROM %s tk"
							   " WHERE tk.id OPERATOR(pg_catalog.=) k.task_id LIMIT 1)",
							   targets_name(t->tasks))
					: "NULL::pg_catalog.text",
					targets_name(t->runs));
}

/*
 * The text of a per-job statement.  Only its preparation needs it (once a
 * tick): naming the tables takes catalog lookups, which every job would
 * otherwise repeat.
 */
static char *
job_statement_sql(const TargetTick *tt, JobStatement which)
{
	switch (which)
	{
		case STMT_LOCK_ONE:
			return candidate_sql(tt, QUERY_LOCK_ONE);
		case STMT_RUN:
			return run_sql(tt);
		case STMT_UPDATE:

			/*
			 * Everything named schema-qualified, so the registrant's
			 * search_path it runs under cannot change what it means.
			 */
			return psprintf("UPDATE %s SET status = $2,"
							" attempts = attempts OPERATOR(pg_catalog.+) $3"
							" WHERE id OPERATOR(pg_catalog.=) $1"
							"   AND status OPERATOR(pg_catalog.=) 'running'",
							tt->target_name);
		case STMT_LOG:
			return psprintf("INSERT INTO %s.finlive_reap_log"
							" (target, job_id, tier, old_status, new_status,"
							"  owner_pid, dry_run)"
							" VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7)",
							tt->cat->qualified_schema);
		case NUM_JOB_STATEMENTS:
			break;
	}
	elog(ERROR, "unrecognized job statement %d", (int) which);
	return NULL;				/* keep compiler quiet */
}

/*
 * Run a per-job statement of this tick, prepared at its first use (SPI
 * frees the plans with the tick's SPI connection).  SPI returns in its
 * procedure context, which lives as long as the tick: the caller's context
 * is put back, so that what one job allocates goes with that job.
 */
static int
run_job_statement(const TargetTick *tt, JobStatement which,
				  int nargs, Oid *types, Datum *args, const char *nulls,
				  bool read_only, long count)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc;

	if (tt->plans[which] == NULL)
	{
		char	   *sql = job_statement_sql(tt, which);

		tt->plans[which] = SPI_prepare(sql, nargs, types);
		if (tt->plans[which] == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		MemoryContextSwitchTo(cxt);
		pfree(sql);
	}
	rc = SPI_execute_plan(tt->plans[which], args, nulls, read_only, count);
	MemoryContextSwitchTo(cxt);
	return rc;
}

/* Read the run and the stage of a locked job into it. */
static void
read_run(const TargetTick *tt, Candidate *c)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(c->run_id), Int64GetDatum(c->task_id)};
	char		nulls[2] = {c->run_id_isnull ? 'n' : ' ', c->task_id_isnull ? 'n' : ' '};
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		d;

	if (run_job_statement(tt, STMT_RUN, 2, types, args, nulls, true, 1)
		!= SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the run of job " INT64_FORMAT, c->job_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &c->exit_code_isnull);
	c->exit_code = c->exit_code_isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 2, &c->finished_isnull);
	c->finished_at = c->finished_isnull ? 0 : DatumGetTimestampTz(d);
	c->stage = SPI_getvalue(tup, desc, 3);
	SPI_freetuptable(SPI_tuptable);
}

/* Run a candidate query; the rows, in CurrentMemoryContext. */
static Candidate *
read_candidates(const TargetTick *tt, CandidateQuery query, int64 job_id,
				const ExitNotices *among, int *count)
{
	const Policy *p = &tt->policy;
	Oid			types[5] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID, INT8ARRAYOID};
	Datum		args[5];
	int			nargs;
	Candidate  *rows;
	uint64		i;
	int			rc;

	if (query == QUERY_RUNNING)
		nargs = 0;
	else if (query == QUERY_LOCK_ONE || query == QUERY_PEEK_ONE)
	{
		types[0] = INT8OID;
		args[0] = Int64GetDatum(job_id);
		nargs = 1;
	}
	else
	{
		args[0] = TimestampTzGetDatum(grace_threshold(tt->now, p->finalize_grace));
		args[1] = TimestampTzGetDatum(grace_threshold(tt->now, p->claim_grace));
		args[2] = TimestampTzGetDatum(grace_threshold(tt->now, p->max_running));
		args[3] = BoolGetDatum(tt->target->claim_owned && p->enabled);
		nargs = 4;
		if (query == QUERY_DUE_AMONG)
		{
			Datum	   *elems = palloc(sizeof(Datum) * Max(among->njobs, 1));
			int			j;

			for (j = 0; j < among->njobs; j++)
				elems[j] = Int64GetDatum(among->jobs[j]);
			args[4] = PointerGetDatum(construct_array(elems, among->njobs, INT8OID,
													  sizeof(int64), FLOAT8PASSBYVAL,
													  TYPALIGN_DOUBLE));
			nargs = 5;
		}
	}

	if (query == QUERY_LOCK_ONE)
		rc = run_job_statement(tt, STMT_LOCK_ONE, nargs, types, args, NULL, false, 0);
	else
	{
		MemoryContext cxt = CurrentMemoryContext;

		rc = SPI_execute_with_args(candidate_sql(tt, query), nargs, types, args, NULL,
								   true, 0);
		MemoryContextSwitchTo(cxt);
	}
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the running jobs of target \"%s\"", tt->display_name);

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
		c->tableoid = DatumGetObjectId(SPI_getbinval(tup, desc, 9, &isnull));
		c->ctid = *((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 10, &isnull)));
		d = SPI_getbinval(tup, desc, 11, &c->run_id_isnull);
		c->run_id = c->run_id_isnull ? 0 : DatumGetInt64(d);
		d = SPI_getbinval(tup, desc, 12, &c->task_id_isnull);
		c->task_id = c->task_id_isnull ? 0 : DatumGetInt64(d);
	}
	*count = (int) SPI_processed;
	/* the rows are copied: a tick runs many of these (one per job reaped) */
	SPI_freetuptable(SPI_tuptable);
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

/*
 * Is job_id owned, for a tier that depends on it?  A probe that cannot tell
 * (a fault) counts as "not owned", as in the original application: the job
 * is handled, never blocked.  Explaining, the owner is kept for the answer.
 */
static bool
owned_now(const TargetTick *tt, int64 job_id, Decision *d)
{
	OwnerProbe	probe = ownership_probe(job_id, &d->owner);

	if (probe == OWNER_UNKNOWN)
		ereport(WARNING,
				(errmsg("could not check whether job " INT64_FORMAT " of target \"%s\" is owned",
						job_id, tt->display_name),
				 errdetail("The reaper treats the job as not owned.")));
	d->owned = (probe == OWNER_LIVE);
	return d->owned;
}

/*
 * Decide one job, in the contract's order, with the target's effective
 * policy.  Ownership is asked only where a tier depends on it.  Runs no
 * application code: a Tier-2 finalization is returned as ACTION_FINALIZE,
 * for the gate to settle.
 */
static void
decide(const TargetTick *tt, const Candidate *c, Decision *d)
{
	const Policy *p = &tt->policy;
	const Target *t = tt->target;
	bool		run_done = !c->exit_code_isnull && !c->finished_isnull;
	TimestampTz ceiling = reaper_grace_end(c->started_isnull, c->started_at, p->max_running);

	memset(d, 0, sizeof(*d));
	d->action = ACTION_NONE;
	d->why = WHY_NOTHING_DUE;
	d->eligible_isnull = true;

	if (run_done)
	{
		/* Tier-2: the run ended; was its finalization lost? */
		TimestampTz end = reaper_grace_end(false, c->finished_at, p->finalize_grace);

		note_eligible(d, end);
		d->tier = 2;
		if (!grace_passed(tt, false, c->finished_at, p->finalize_grace))
			d->why = WHY_WITHIN_FINALIZE_GRACE;
		else
		{
			bool		stage_guarded = p->enabled &&
				name_list_match(p->guarded_stages, c->stage);

			if (stage_guarded && owned_now(tt, c->job_id, d))
			{
				d->action = ACTION_DEFER;
				d->deferred = true;
				d->why = WHY_GUARDED;
			}
			else if (stage_guarded && tt->in_restart_window)
				d->why = WHY_RESTART_WINDOW;	/* owners may still be reconnecting */
			else
			{
				d->action = ACTION_FINALIZE;
				d->why = WHY_FINALIZE;
			}
		}
	}
	else if (t->claim_owned && p->enabled && c->exit_code_isnull)
	{
		/* Tier-1: claimed, never finished, and nobody holds it? */
		note_eligible(d, reaper_grace_end(c->started_isnull, c->started_at, p->claim_grace));
		d->tier = 1;
		if (!grace_passed(tt, c->started_isnull, c->started_at, p->claim_grace))
			d->why = WHY_WITHIN_CLAIM_GRACE;
		else if (tt->in_restart_window)
			d->why = WHY_RESTART_WINDOW;
		else if (owned_now(tt, c->job_id, d))
			d->why = WHY_CLAIMED_OWNED;
		else
		{
			d->action = requeue_or_fail(c);
			d->why = WHY_DEAD_WORKER;
		}
	}

	/*
	 * Tier-3: the backstop, whatever the ownership, the run or the switch.
	 * A job Tier-2 deferred is still running, so it applies to it too: the
	 * defer has been counted, and the job is reaped all the same.
	 */
	if (d->action == ACTION_NONE || d->action == ACTION_DEFER)
	{
		note_eligible(d, ceiling);
		if (ceiling != DT_NOEND && tt->now >= ceiling)
		{
			d->action = requeue_or_fail(c);
			d->tier = 3;
			d->why = WHY_CEILING;
		}
	}
	if (d->action == ACTION_NONE && d->why == WHY_NOTHING_DUE)
		d->tier = 0;
}

static bool
is_reap(ReapAction action)
{
	return action != ACTION_NONE && action != ACTION_DEFER && action != ACTION_SKIPPED;
}

/* Arguments of the application code a reap runs. */
typedef struct AppCall
{
	const TargetTick *tt;
	const Candidate *c;
	int			tier;
	ReapAction	action;
	bool		result;			/* the gate's answer; whether the update hit */
} AppCall;

/* gate(job_id) -> boolean, by OID; NULL counts as false. */
static void
call_gate(void *arg)
{
	AppCall    *call = (AppCall *) arg;
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	fmgr_info(call->tt->target->gate, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = Int64GetDatum(call->c->job_id);
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	call->result = !fcinfo->isnull && DatumGetBool(result);
}

/* on_reap(job_id, tier, new_status), by OID. */
static void
call_on_reap(void *arg)
{
	AppCall    *call = (AppCall *) arg;
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 3);

	fmgr_info(call->tt->target->on_reap, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 3, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = Int64GetDatum(call->c->job_id);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = Int32GetDatum(call->tier);
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = CStringGetTextDatum(reaper_action_names[call->action]);
	fcinfo->args[2].isnull = false;
	(void) FunctionCallInvoke(fcinfo);
}

/*
 * The status change itself (job_statement_sql); its triggers are
 * application code.
 */
static void
call_update(void *arg)
{
	AppCall    *call = (AppCall *) arg;
	Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
	Datum		args[3];

	args[0] = Int64GetDatum(call->c->job_id);
	args[1] = CStringGetTextDatum(reaper_action_names[call->action]);
	args[2] = Int32GetDatum(call->action == ACTION_QUEUED ? 1 : 0);
	if (run_job_statement(call->tt, STMT_UPDATE, 3, types, args, NULL, false, 0)
		!= SPI_OK_UPDATE)
		elog(ERROR, "could not update job " INT64_FORMAT, call->c->job_id);
	call->result = SPI_processed > 0;
}

/* Run one piece of application code for a reap. */
static void
run_app(AppCall *call, void (*code) (void *), const char *what)
{
	CommandCounterIncrement();	/* let it see what the reap did so far */
	sandbox_run_app(call->tt->target->search_path,
					psprintf("%s of target \"%s\"", what, call->tt->display_name),
					code, call);
}

/* The application's gate, or exit_code = 0 without one. */
static bool
gate_passes(const TargetTick *tt, const Candidate *c)
{
	AppCall		call = {tt, c, 2, ACTION_FINALIZE, false};

	if (!OidIsValid(tt->target->gate))
		return c->exit_code == 0;
	run_app(&call, call_gate, psprintf("gate %s", tt->target->gate_name));
	return call.result;
}

/*
 * NOTIFY finlive_reaped for a job whose reap committed.  Sent from the
 * target's subtransaction once the job's own has been kept, not from inside
 * it: a pending notification is what would keep each job's subtransaction
 * memory until the tick's transaction ends.  Either way it goes out only if
 * the reap commits.
 */
static void
notify_reaped(const TargetTick *tt, int64 job_id, int tier, ReapAction action)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"target\": ");
	escape_json(&payload, tt->target_name);
	appendStringInfo(&payload, ", \"job_id\": " INT64_FORMAT ", \"tier\": %d, \"status\": \"%s\"}",
					 job_id, tier, reaper_action_names[action]);
	Async_Notify("finlive_reaped", payload.data);
}

/* Append the reap to finlive_reap_log, as the owner of that table. */
static void
log_reap(const TargetTick *tt, const Candidate *c, int tier, ReapAction action,
		 int32 owner_pid)
{
	Oid			types[7] = {OIDOID, INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, BOOLOID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Sandbox		sb;

	args[0] = ObjectIdGetDatum(tt->target->jobs);
	args[1] = Int64GetDatum(c->job_id);
	args[2] = Int32GetDatum(tier);
	args[3] = CStringGetTextDatum(c->status);
	args[4] = CStringGetTextDatum(reaper_action_names[action]);
	args[5] = Int32GetDatum(owner_pid);
	nulls[5] = owner_pid != 0 ? ' ' : 'n';
	args[6] = BoolGetDatum(tt->policy.dry_run);

	sandbox_enter(tt->cat->owner, FINLIVE_SAFE_SEARCH_PATH, &sb);
	if (run_job_statement(tt, STMT_LOG, 7, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write finlive_reap_log");
	sandbox_leave(&sb);
}

/* One job's reap, carried out in its own subtransaction. */
typedef struct JobWork
{
	const TargetTick *tt;
	int64		job_id;
	Decision	d;				/* in: the unlocked decision; out: the final one */
	ReapAction	attempt;		/* the reap being made, once the gate settled it */
	ReapAction	done;			/* out: the reap made, or NONE/DEFER */
	bool		notify;			/* out: NOTIFY it once the reap is kept */
} JobWork;

/*
 * Lock the job's row, decide again under the lock, and carry out the reap:
 * settle a finalization with the gate, update the job, call on_reap, queue
 * the NOTIFY, log.  Any error here undoes this job alone.
 */
static void
job_work(void *arg)
{
	JobWork    *w = (JobWork *) arg;
	const TargetTick *tt = w->tt;
	Candidate  *c;
	int			n;
	ReapAction	action;
	OwnerInfo	owner;
	int32		owner_pid = 0;

	w->done = ACTION_NONE;
	c = read_candidates(tt, QUERY_LOCK_ONE, w->job_id, NULL, &n);
	if (n == 0)
		return;					/* locked by another transaction, or done */
	read_run(tt, c);
	decide(tt, c, &w->d);
	if (!is_reap(w->d.action))
	{
		w->done = w->d.action;
		return;
	}
	action = w->attempt = w->d.action;
	if (action == ACTION_FINALIZE)
		action = w->attempt = gate_passes(tt, c) ? ACTION_DONE : requeue_or_fail(c);

	if (ownership_lookup(c->job_id, &owner))
		owner_pid = owner.pid;

	if (!tt->policy.dry_run)
	{
		AppCall		call = {tt, c, w->d.tier, action, false};

		run_app(&call, call_update, "the update");

		/*
		 * Nothing changed (a gate, a trigger or a nested tick finished the
		 * job since it was read, or a trigger refused the update): then
		 * there was no reap, and no hook, NOTIFY or log row for one.
		 */
		if (!call.result)
			return;
		if (OidIsValid(tt->target->on_reap))
			run_app(&call, call_on_reap, psprintf("on_reap %s", tt->target->on_reap_name));
		w->notify = true;
	}
	log_reap(tt, c, w->d.tier, action, owner_pid);
	w->done = action;
}

/*
 * Run "work" in a subtransaction (sandbox_try).  On an error: count it,
 * remember it as the job's failure, log a WARNING and return false.  The
 * one place a tick swallows errors; an interrupt goes through.
 */
static bool
run_isolated(void (*work) (void *), void *arg, const TargetTick *tt,
			 int64 job_id, int tier, const ReapAction *attempt)
{
	ErrorData  *edata;
	ReapAction	action;

	if (sandbox_try(work, arg, true, &edata))
		return true;

	tt->counters->errors_total++;
	action = attempt ? *attempt : ACTION_NONE;
	if (job_id != 0)
	{
		failures_record(tt->target->jobs, job_id, tier, reaper_action_names[action], edata);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not reap job " INT64_FORMAT " of target \"%s\": %s",
						job_id, tt->display_name, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errcontext("tier %d, action %s", tier, reaper_action_names[action])));
	}
	else if (failures_target_failed(tt->target->jobs, edata->message))
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not reap target \"%s\": %s", tt->display_name, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The target is skipped until this is fixed; this is logged again at most once an hour.")));
	FreeErrorData(edata);
	return false;
}

static void
count_decision(const TargetTick *tt, const Decision *d, ReapAction done)
{
	if (d->deferred)
		tt->counters->finalizer_defers_total++;
	if (is_reap(done) && !tt->policy.dry_run)
	{
		tt->counters->reaped_total++;
		tt->counters->reaped_tier[d->tier - 1]++;
	}
}

static void
emit_row(const TargetTick *tt, int64 job_id, int tier, ReapAction action)
{
	Datum		values[4];
	bool		nulls[4] = {false};

	if (tt->rsinfo == NULL)
		return;
	values[0] = ObjectIdGetDatum(tt->target->jobs);
	values[1] = Int64GetDatum(job_id);
	values[2] = Int32GetDatum(tier);
	values[3] = CStringGetTextDatum(reaper_action_names[action]);
	tuplestore_putvalues(tt->rsinfo->setResult, tt->rsinfo->setDesc, values, nulls);
}

/*
 * Take relid, its partitions and the indexes of all of them in each of the
 * modes a tick uses, without waiting.  InvalidOid when all were had; else
 * the relation that another transaction holds.
 */
static Oid
lock_relation_tree(Oid relid, const LOCKMODE *modes, int nmodes)
{
	List	   *rels = (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Oid			rel = lfirst_oid(lc);
		Relation	r;
		List	   *indexes;
		ListCell   *ic;
		int			i;

		for (i = 0; i < nmodes; i++)
			if (!ConditionalLockRelationOid(rel, modes[i]))
				return rel;
		r = try_relation_open(rel, NoLock);
		if (r == NULL)
			continue;			/* dropped meanwhile */
		indexes = RelationGetIndexList(r);
		relation_close(r, NoLock);
		foreach(ic, indexes)
		{
			if (!ConditionalLockRelationOid(lfirst_oid(ic), AccessShareLock) ||
				!ConditionalLockRelationOid(lfirst_oid(ic), RowExclusiveLock))
				return lfirst_oid(ic);
		}
	}
	return InvalidOid;
}

/*
 * Lock what a tick over the target needs, without waiting.  InvalidOid when
 * all was had, else the relation another transaction holds.
 */
static Oid
lock_target(const Target *t)
{
	static const LOCKMODE jobs_modes[] = {AccessShareLock, RowShareLock, RowExclusiveLock};
	static const LOCKMODE read_modes[] = {AccessShareLock};
	Oid			busy;

	if ((busy = lock_relation_tree(t->jobs, jobs_modes, lengthof(jobs_modes))) != InvalidOid ||
		(busy = lock_relation_tree(t->runs, read_modes, 1)) != InvalidOid ||
		(OidIsValid(t->tasks) &&
		 (busy = lock_relation_tree(t->tasks, read_modes, 1)) != InvalidOid))
		return busy;
	return InvalidOid;
}

/* A job's failure record goes when it is no longer running. */
static void
forget_finished_failures(const TargetTick *tt)
{
	FailingReap *failing;
	int			nfailing;
	int			i;

	failing = failures_list(tt->target->jobs, &nfailing);
	for (i = 0; i < nfailing; i++)
	{
		Candidate  *c;
		int			n;

		c = read_candidates(tt, QUERY_PEEK_ONE, failing[i].job_id, NULL, &n);
		if (n == 0 || strcmp(c->status, "running") != 0)
			failures_forget(tt->target->jobs, failing[i].job_id);
	}
}

/*
 * Name the target's jobs table as it is now.  Once its tables are locked,
 * the name cannot change under the tick: asked again then, since a rename
 * may have come between the tick's start and the lock.
 */
static void
tick_name(TargetTick *tt)
{
	tt->target_name = targets_name(tt->target->jobs);
	tt->display_name = targets_display_name(tt->target->jobs);
}

/* The body of one target's tick, inside the target's subtransaction. */
static void
target_work(void *arg)
{
	TargetTick *tt = (TargetTick *) arg;
	Candidate  *rows;
	int			nrows;
	int			i;
	Oid			busy;
	MemoryContext jobcxt;
	MemoryContext oldcxt;

	/* another transaction holds one of its tables: skip it this tick */
	busy = lock_target(tt->target);
	if (OidIsValid(busy))
	{
		ereport(DEBUG1,
				(errmsg("skipping target \"%s\" this tick: \"%s\" is locked by another transaction",
						tt->display_name, targets_display_name(busy))));
		return;
	}
	/* dropped after this tick read its targets: a drop seen once locked */
	if (!targets_tables_exist(tt->target))
	{
		ereport(DEBUG1,
				(errmsg("skipping target \"%s\" this tick: it was dropped", tt->display_name)));
		return;
	}
	tick_name(tt);

	rows = read_candidates(tt, tt->among ? QUERY_DUE_AMONG : QUERY_DUE, 0,
						   tt->among, &nrows);
	tt->counters->jobs_examined += nrows;

	/*
	 * What one job's reap allocates (its rows, statements' texts, an error)
	 * goes when the job is done: a tick may reap any number of jobs.
	 */
	oldcxt = CurrentMemoryContext;
	jobcxt = AllocSetContextCreate(oldcxt, "finlive job", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < nrows; i++)
	{
		JobWork		w;

		MemoryContextReset(jobcxt);
		MemoryContextSwitchTo(jobcxt);
		memset(&w, 0, sizeof(w));
		w.tt = tt;
		w.job_id = rows[i].job_id;
		decide(tt, &rows[i], &w.d);
		w.done = w.d.action;
		if (is_reap(w.d.action))
		{
			w.attempt = w.d.action;
			if (!run_isolated(job_work, &w, tt, w.job_id, w.d.tier, &w.attempt))
				w.done = ACTION_NONE;	/* rolled back: only a defer stands */
			else if (is_reap(w.done))
			{
				failures_forget(tt->target->jobs, w.job_id);
				if (w.notify)
					notify_reaped(tt, w.job_id, w.d.tier, w.done);
			}
			sandbox_release_session_locks();
		}
		count_decision(tt, &w.d, w.done);
		if (w.done != ACTION_NONE)
			emit_row(tt, w.job_id, w.d.tier, w.done);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(jobcxt);
	if (tt->among == NULL)
		forget_finished_failures(tt);
}

/* Set up a target's tick: its policy, name, time and restart window. */
static void
tick_init(TargetTick *tt, const FinliveCatalog *cat, const Target *target)
{
	memset(tt, 0, sizeof(*tt));
	tt->cat = cat;
	tt->target = target;
	targets_effective_policy(target, &tt->policy);
	tick_name(tt);
	tt->now = GetCurrentTransactionStartTimestamp();
	tt->window_end = restart_window_end();
	tt->in_restart_window = tt->policy.enabled && GetCurrentTimestamp() < tt->window_end;
	tt->plans = palloc0(sizeof(SPIPlanPtr) * NUM_JOB_STATEMENTS);
}

/*
 * One tick over one target, in the current transaction; SPI must be
 * connected.  With "only", just the jobs a dead owner held.  Counts into
 * *counts; emits a row per action into rsinfo when given
 * (finlive_reap_once).  Never raises because of one job or one broken
 * target; an interrupt ends it.
 */
void
reaper_tick_target(const FinliveCatalog *cat, const Target *target,
				   const ExitNotices *only, ReaperCounters *counts,
				   ReturnSetInfo *rsinfo)
{
	TargetTick	tt;
	Sandbox		sb;

	tick_init(&tt, cat, target);
	tt.among = (only != NULL && !only->overflow) ? only : NULL;
	tt.counters = counts;
	tt.rsinfo = rsinfo;

	if (target->unusable != NULL)
	{
		if (failures_target_failed(target->jobs, target->unusable))
			ereport(WARNING,
					(errmsg("skipping target \"%s\": %s", tt.display_name, target->unusable),
					 errhint("Register the target again, or remove it with finlive_unregister(); this is logged again at most once an hour while it lasts.")));
		return;
	}
	/* act as the registering role, with a search_path no one can hijack */
	sandbox_enter(target->registered_by, FINLIVE_SAFE_SEARCH_PATH, &sb);
	/* the candidate query's estimate crosses jit_above_cost; compiling it costs more than it runs */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (run_isolated(target_work, &tt, &tt, 0, 0, NULL))
		failures_target_ok(target->jobs);
	sandbox_leave(&sb);
}

/*
 * Is a job in this stage guarded now (the kill-switch on, its stage in the
 * target's guarded stages, and owned)?  finlive_running_jobs' question.
 */
bool
reaper_job_guarded(const Target *target, const Policy *policy, const char *stage,
				   int64 job_id)
{
	return policy->enabled && name_list_match(policy->guarded_stages, stage) &&
		ownership_lookup(job_id, NULL);
}

/*
 * Every running job of the target with its run and stage, read as the
 * current role (so with its privileges), locking nothing.
 */
JobRow *
reaper_running_jobs(const FinliveCatalog *cat, const Target *target, int *count)
{
	TargetTick	tt;
	Sandbox		sb;
	JobRow	   *rows;

	tick_init(&tt, cat, target);
	sandbox_enter(GetUserId(), FINLIVE_SAFE_SEARCH_PATH, &sb);
	rows = read_candidates(&tt, QUERY_RUNNING, 0, NULL, count);
	sandbox_leave(&sb);
	return rows;
}

/*
 * The pid of another backend holding a lock on relid that conflicts with
 * mode, 0 if none.  For explaining why a tick skips a target: it scans the
 * whole lock table.
 */
static int
relation_holder(Oid relid, LOCKMODE mode)
{
	LockData   *locks = GetLockStatusData();
	LOCKTAG		tag;
	LockMethod	method;
	int			i;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	method = GetLockTagsMethodTable(&tag);
	for (i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *l = &locks->locks[i];

		if (l->locktag.locktag_type == LOCKTAG_RELATION &&
			l->locktag.locktag_field1 == MyDatabaseId &&
			l->locktag.locktag_field2 == relid &&
			l->pid != MyProcPid &&
			(l->holdMask & method->conflictTab[mode]) != 0)
			return l->pid;
	}
	return 0;
}

/* The relation of the target another transaction holds locked, and who. */
static Oid
target_holder(const Target *t, int *pid)
{
	Oid			rels[3] = {t->jobs, t->runs, t->tasks};
	LOCKMODE	modes[3] = {RowExclusiveLock, AccessShareLock, AccessShareLock};
	int			i;

	for (i = 0; i < 3; i++)
	{
		if (!OidIsValid(rels[i]))
			continue;
		*pid = relation_holder(rels[i], modes[i]);
		if (*pid == 0 && modes[i] == RowExclusiveLock)
			*pid = relation_holder(rels[i], RowShareLock);
		if (*pid != 0)
			return rels[i];
	}
	return InvalidOid;
}

/* The backend of a transaction, by its (sub)transaction id; 0 if none. */
static int
xid_pid(TransactionId xid)
{
	int			pid;

	if (!TransactionIdIsValid(xid) || !TransactionIdIsInProgress(xid))
		return 0;
	pid = BackendXidGetPid(xid);
	if (pid == 0)
		pid = BackendXidGetPid(SubTransGetTopmostTransaction(xid));
	return pid;
}

/*
 * The pid of a transaction that holds the row (tableoid, ctid) locked or is
 * updating it, so that FOR UPDATE SKIP LOCKED would pass it by; 0 if none.
 * Looks at the tuple's header without locking it (heap tables only).
 */
static int
row_holder(Oid tableoid, ItemPointer ctid)
{
	Relation	rel = table_open(tableoid, AccessShareLock);
	HeapTupleData tuple;
	Buffer		buf;
	int			pid = 0;

	if (rel->rd_tableam != GetHeapamTableAmRoutine())
	{
		table_close(rel, AccessShareLock);
		return 0;
	}
	tuple.t_self = *ctid;
	if (heap_fetch(rel, SnapshotAny, &tuple, &buf, true))
	{
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		if (HeapTupleSatisfiesUpdate(&tuple, GetCurrentCommandId(false), buf) == TM_BeingModified)
		{
			TransactionId xmax = HeapTupleHeaderGetRawXmax(tuple.t_data);
			uint16		infomask = tuple.t_data->t_infomask;

			if (infomask & HEAP_XMAX_IS_MULTI)
			{
				MultiXactMember *members;
				int			n = GetMultiXactIdMembers(xmax, &members, false,
													  HEAP_XMAX_IS_LOCKED_ONLY(infomask));
				int			i;

				for (i = 0; i < n && pid == 0; i++)
					pid = xid_pid(members[i].xid);
			}
			else
				pid = xid_pid(xmax);
		}
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	}
	if (BufferIsValid(buf))
		ReleaseBuffer(buf);
	table_close(rel, AccessShareLock);
	return pid;
}

static char *
format_ts(TimestampTz ts)
{
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(ts)));
}

static char *
format_usecs(int64 usecs)
{
	Interval	iv;

	memset(&iv, 0, sizeof(iv));
	iv.time = usecs;
	return DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(&iv)));
}

/* Ask the gate, in a subtransaction that is always rolled back. */
typedef struct GateProbe
{
	const TargetTick *tt;
	const Candidate *c;
	bool		passes;
} GateProbe;

static void
probe_gate_work(void *arg)
{
	GateProbe  *g = (GateProbe *) arg;
	Sandbox		sb;

	sandbox_enter(g->tt->target->registered_by, FINLIVE_SAFE_SEARCH_PATH, &sb);
	g->passes = gate_passes(g->tt, g->c);
	sandbox_leave(&sb);
}

/* The gate's answer; NULL, or the error it raises. */
static char *
probe_gate(GateProbe *g)
{
	ErrorData  *edata = NULL;
	bool		ok = sandbox_try(probe_gate_work, g, false, &edata);

	sandbox_release_session_locks();
	return ok ? NULL : edata->message;
}

/* The reason for a decision, one sentence naming the deciding fact. */
static char *
decision_reason(const TargetTick *tt, const Candidate *c, const Decision *d,
				ReapAction action)
{
	const Policy *p = &tt->policy;

	switch (d->why)
	{
		case WHY_WITHIN_FINALIZE_GRACE:
			{
				TimestampTz end = reaper_grace_end(false, c->finished_at, p->finalize_grace);

				if (end == DT_NOEND)
					return psprintf("its run finished at %s, so finalize_grace (%s) never ends",
									format_ts(c->finished_at), format_usecs(p->finalize_grace));
				return psprintf("its run finished at %s, within finalize_grace (%s), which ends at %s",
								format_ts(c->finished_at), format_usecs(p->finalize_grace),
								format_ts(end));
			}
		case WHY_GUARDED:
			return psprintf("its stage %s is guarded and session %d has owned it since %s, so its finalizer is alive: the tick defers it",
							c->stage ? c->stage : "(none)", d->owner.pid,
							format_ts(d->owner.since));
		case WHY_RESTART_WINDOW:
			return psprintf("the server started or was promoted less than restart_grace ago: no reap that depends on ownership being absent until %s",
							format_ts(tt->window_end));
		case WHY_FINALIZE:
			return psprintf("its run finished at %s, past finalize_grace, and no live finalizer guards it: Tier-2 finalizes it as %s (%s)",
							format_ts(c->finished_at), reaper_action_names[action],
							OidIsValid(tt->target->gate)
							? psprintf("the gate %s answered", tt->target->gate_name)
							: psprintf("exit code %d", c->exit_code));
		case WHY_DEAD_WORKER:
			return psprintf("its run has not finished, it started at %s, past claim_grace, and no live session owns it: Tier-1 marks it %s",
							format_ts(c->started_at), reaper_action_names[action]);
		case WHY_CLAIMED_OWNED:
			return psprintf("its run has not finished and session %d has owned it since %s, so its worker is alive",
							d->owner.pid, format_ts(d->owner.since));
		case WHY_WITHIN_CLAIM_GRACE:
			return psprintf("its run has not finished and it started at %s, within claim_grace (%s)",
							format_ts(c->started_at), format_usecs(p->claim_grace));
		case WHY_CEILING:
			return psprintf("it started at %s, more than max_running (%s) ago: the Tier-3 backstop marks it %s whatever its ownership",
							format_ts(c->started_at), format_usecs(p->max_running),
							reaper_action_names[action]);
		case WHY_NOTHING_DUE:
		default:
			if (!c->exit_code_isnull || !c->finished_isnull)
				return pstrdup("its run has an exit code or a finish time but not both, so only the Tier-3 backstop can reap it");
			if (!tt->target->claim_owned)
				return pstrdup("its run has not finished and the target is not claim_owned, so only the Tier-3 backstop can reap it");
			return pstrdup("its run has not finished and the kill-switch is off, so only the Tier-3 backstop can reap it");
	}
}

/* Reading one job for finlive_explain, as the caller, in a subtransaction. */
typedef struct PeekJob
{
	const TargetTick *tt;
	int64		job_id;
	Candidate  *rows;
	int			nrows;
} PeekJob;

static void
peek_job(void *arg)
{
	PeekJob    *p = (PeekJob *) arg;
	Sandbox		sb;

	sandbox_enter(GetUserId(), FINLIVE_SAFE_SEARCH_PATH, &sb);
	p->rows = read_candidates(p->tt, QUERY_PEEK_ONE, p->job_id, NULL, &p->nrows);
	sandbox_leave(&sb);
}

/*
 * What would the next tick do with job_id of the target, and why?  Reads as
 * the caller, locks no row and waits for nothing; asks the gate (as the
 * registrant, rolled back) where the answer depends on it.
 */
void
reaper_explain(const FinliveCatalog *cat, const Target *target, int64 job_id,
			   JobVerdict *v)
{
	TargetTick	tt;
	Candidate  *c;
	Decision	d;
	FailingReap failing;
	int			n;
	int			pid;
	Oid			busy;
	ReapAction	action;
	StringInfoData reason;
	PeekJob		peek;
	ErrorData  *edata;

	memset(v, 0, sizeof(*v));
	tick_init(&tt, cat, target);
	v->policy = tt.policy;
	v->eligible_isnull = true;
	v->owned = ownership_lookup(job_id, &v->owner);

	/* a table another transaction holds: the tick skips it; so do we */
	if (!ConditionalLockRelationOid(target->jobs, AccessShareLock) ||
		!ConditionalLockRelationOid(target->runs, AccessShareLock) ||
		(OidIsValid(target->tasks) && !ConditionalLockRelationOid(target->tasks, AccessShareLock)))
	{
		busy = target_holder(target, &pid);
		v->action = ACTION_SKIPPED;
		v->reason = psprintf("table %s is locked by another transaction (pid %d): the tick skips the target, and the job cannot be read now",
							 targets_name(OidIsValid(busy) ? busy : target->jobs), pid);
		return;
	}
	tick_name(&tt);

	/* a table altered so that the tick cannot read it: the tick skips it */
	peek.tt = &tt;
	peek.job_id = job_id;
	if (!sandbox_try(peek_job, &peek, true, &edata))
	{
		v->action = ACTION_SKIPPED;
		v->reason = psprintf("the tick cannot read the target: %s", edata->message);
		return;
	}
	c = peek.rows;
	n = peek.nrows;
	if (n == 0)
	{
		v->action = ACTION_NONE;
		v->reason = psprintf("%s has no job " INT64_FORMAT, tt.target_name, job_id);
		return;
	}
	v->found = true;
	v->status = c->status;
	if (strcmp(c->status, "running") != 0)
	{
		v->action = ACTION_NONE;
		v->reason = psprintf("the job is %s, not running: the reaper looks only at running jobs",
							 c->status);
		return;
	}

	decide(&tt, c, &d);
	v->eligible_isnull = d.eligible_isnull;
	v->eligible_at = d.eligible_at;
	action = d.action;
	initStringInfo(&reason);

	if (target->unusable != NULL)
	{
		action = ACTION_SKIPPED;
		appendStringInfo(&reason, "the target cannot be reaped: %s", target->unusable);
	}
	else if (failures_target_problem(target->jobs, &failing))
	{
		action = ACTION_SKIPPED;
		appendStringInfo(&reason, "the last tick could not reap the target (%s): it is skipped until that is fixed",
						 failing.message);
	}
	else if (OidIsValid(busy = target_holder(target, &pid)))
	{
		action = ACTION_SKIPPED;
		appendStringInfo(&reason, "table %s is locked by another transaction (pid %d): the tick skips the target",
						 targets_name(busy), pid);
	}
	else if (is_reap(action) && (pid = row_holder(c->tableoid, &c->ctid)) != 0)
	{
		action = ACTION_SKIPPED;
		appendStringInfo(&reason, "its row is locked by another transaction (pid %d): the tick skips it",
						 pid);
	}
	else
	{
		if (action == ACTION_FINALIZE)
		{
			GateProbe	g = {&tt, c, false};
			char	   *gate_error = NULL;

			if (OidIsValid(target->gate))
				gate_error = probe_gate(&g);
			else
				g.passes = c->exit_code == 0;
			action = g.passes ? ACTION_DONE : requeue_or_fail(c);
			if (gate_error != NULL)
				appendStringInfo(&reason, "its gate %s fails (%s), so the reap fails; ",
								 target->gate_name, gate_error);
		}
		appendStringInfoString(&reason, decision_reason(&tt, c, &d, action));
	}

	if (is_reap(action) && failures_lookup(target->jobs, job_id, &failing))
		appendStringInfo(&reason, "; its last " INT64_FORMAT " attempts failed, the last at %s: %s",
						 failing.failures, format_ts(failing.last_failed_at), failing.message);
	if (is_reap(action) && tt.policy.dry_run)
		appendStringInfoString(&reason, "; dry run is on, so the tick only logs it");
	/* (the reason of an unfinished claimed job says so already) */
	if (!tt.policy.enabled && !(d.why == WHY_NOTHING_DUE && target->claim_owned) &&
		(target->claim_owned || name_list_match(settings_guarded_stages(), c->stage) ||
		 name_list_match(tt.policy.guarded_stages, c->stage)))
		appendStringInfoString(&reason, "; the kill-switch is off (finlive.enabled, or the target's enabled), so ownership is ignored");
	if ((is_reap(action) || action == ACTION_DEFER) && reapers_pid_of(MyDatabaseId) == 0)
		appendStringInfoString(&reason, "; but no reaper works in this database now (see finlive.database), so only finlive_reap_once() would do it");

	v->action = action;
	v->tier = (is_reap(action) || action == ACTION_DEFER) ? d.tier : 0;
	v->reason = reason.data;
}
