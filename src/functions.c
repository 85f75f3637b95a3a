/*-------------------------------------------------------------------------
 *
 * functions.c
 *	  SQL-callable ownership, snapshot and counter functions.
 *
 * Thin wrappers: they check that finlive was preloaded, apply the NULL
 * rules of the contract and validate arguments, then call ownership.c or
 * counters.c.  Privileges are granted in the install script.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "storage/lock.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "counters.h"
#include "finlive.h"
#include "ownership.h"
#include "reaper.h"
#include "sandbox.h"
#include "settings.h"
#include "targets.h"

PG_FUNCTION_INFO_V1(finlive_mark);
PG_FUNCTION_INFO_V1(finlive_clear);
PG_FUNCTION_INFO_V1(finlive_clear_all);
PG_FUNCTION_INFO_V1(finlive_is_active);
PG_FUNCTION_INFO_V1(finlive_fence);
PG_FUNCTION_INFO_V1(finlive_owners);
PG_FUNCTION_INFO_V1(finlive_snapshot);
PG_FUNCTION_INFO_V1(finlive_stats);
PG_FUNCTION_INFO_V1(finlive_stats_reset);
PG_FUNCTION_INFO_V1(finlive_reap_once);

/*
 * finlive_mark(job_id bigint, run_id bigint, stage text) -> bigint
 *
 * The fencing token, or NULL when another live session owns the job or
 * job_id is NULL.
 */
Datum
finlive_mark(PG_FUNCTION_ARGS)
{
	char	   *stage = NULL;
	int64		token;

	finlive_require_ready();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot take ownership of a job during recovery"),
				 errdetail("Ownership taken on a standby would be invisible to the primary's reaper."),
				 errhint("Mark jobs on the primary.")));
	if (!PG_ARGISNULL(2))
	{
		text	   *t = PG_GETARG_TEXT_PP(2);

		if (VARSIZE_ANY_EXHDR(t) > FINLIVE_STAGE_MAXLEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stage is too long"),
					 errdetail("The stage is %d bytes; finlive_mark accepts at most %d.",
							   (int) VARSIZE_ANY_EXHDR(t), FINLIVE_STAGE_MAXLEN)));
		stage = text_to_cstring(t);
	}
	switch (ownership_mark(PG_GETARG_INT64(0),
						   PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
						   stage, &token))
	{
		case MARK_OWNED:
			break;
		case MARK_BUSY:
			PG_RETURN_NULL();
		case MARK_NO_ROOM:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no room in the lock table for the ownership of job " INT64_FORMAT,
							PG_GETARG_INT64(0)),
					 errdetail("The server's shared lock table is full; finlive reserves room for finlive.max_owners (%d) owned jobs on top of what max_locks_per_transaction gives the rest of the server.",
							   finlive_max_owners),
					 errhint("Increase finlive.max_owners or max_locks_per_transaction and restart the server.")));
	}
	PG_RETURN_INT64(token);
}

/* finlive_clear(job_id bigint) -> boolean; never raises once loaded */
Datum
finlive_clear(PG_FUNCTION_ARGS)
{
	finlive_require_ready();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ownership_clear(PG_GETARG_INT64(0)));
}

/* finlive_clear_all() -> integer */
Datum
finlive_clear_all(PG_FUNCTION_ARGS)
{
	finlive_require_ready();
	PG_RETURN_INT32(ownership_clear_all());
}

/* finlive_is_active(job_id bigint) -> boolean */
Datum
finlive_is_active(PG_FUNCTION_ARGS)
{
	finlive_require_ready();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ownership_lookup(PG_GETARG_INT64(0), NULL));
}

/* finlive_fence(job_id bigint, token bigint) -> boolean */
Datum
finlive_fence(PG_FUNCTION_ARGS)
{
	OwnerInfo	owner;

	finlive_require_ready();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ownership_lookup(PG_GETARG_INT64(0), &owner) &&
				   owner.token == PG_GETARG_INT64(1));
}

/* finlive_owners() -> SETOF record, the live owners of this database */
Datum
finlive_owners(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	OwnerInfo  *owners;
	int			count;
	int			i;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	owners = ownership_list(MyDatabaseId, &count);
	for (i = 0; i < count; i++)
	{
		OwnerInfo  *o = &owners[i];
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = Int64GetDatum(o->job_id);
		values[1] = Int64GetDatum(o->run_id);
		nulls[1] = o->run_id_isnull;
		values[2] = o->stage_isnull ? (Datum) 0 : CStringGetTextDatum(o->stage);
		nulls[2] = o->stage_isnull;
		values[3] = Int32GetDatum(o->pid);
		values[4] = TimestampTzGetDatum(o->backend_start);
		values[5] = Int64GetDatum(o->token);
		values[6] = TimestampTzGetDatum(o->since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * finlive_snapshot() -> jsonb: this database's owners and the cluster's
 * reaper counters, in the shape the original application's GET /queue had.
 */
Datum
finlive_snapshot(PG_FUNCTION_ARGS)
{
	OwnerInfo  *owners;
	int			count;
	int			i;
	ReaperCounters counters;
	StringInfoData buf;

	finlive_require_ready();
	owners = ownership_list(MyDatabaseId, &count);
	counters_read(&counters);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"active\": %d, \"jobs\": [", count);
	for (i = 0; i < count; i++)
		appendStringInfo(&buf, "%s" INT64_FORMAT, i > 0 ? ", " : "", owners[i].job_id);
	appendStringInfo(&buf,
					 "], \"finalizer_defers_total\": " INT64_FORMAT
					 ", \"reaped_total\": " INT64_FORMAT "}",
					 counters.finalizer_defers_total, counters.reaped_total);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* finlive_stats() -> record, one row of cluster-wide counters */
Datum
finlive_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	ReaperCounters c;
	Datum		values[11];
	bool		nulls[11] = {false};

	finlive_require_ready();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	counters_read(&c);

	values[0] = Int64GetDatum(c.ticks);
	values[1] = Int64GetDatum(c.jobs_examined);
	values[2] = Int64GetDatum(c.reaped_total);
	values[3] = Int64GetDatum(c.reaped_tier[0]);
	values[4] = Int64GetDatum(c.reaped_tier[1]);
	values[5] = Int64GetDatum(c.reaped_tier[2]);
	values[6] = Int64GetDatum(c.finalizer_defers_total);
	values[7] = Int64GetDatum(c.errors_total);
	values[8] = Int64GetDatum(ownership_count());
	values[9] = TimestampTzGetDatum(c.last_tick_at);
	nulls[9] = (c.ticks == 0);
	values[10] = Float8GetDatum(c.last_tick_ms);
	nulls[10] = (c.ticks == 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* finlive_stats_reset() -> void */
Datum
finlive_stats_reset(PG_FUNCTION_ARGS)
{
	finlive_require_ready();
	counters_reset();
	PG_RETURN_VOID();
}

/*
 * Counts of finlive_reap_once() calls whose transaction has not ended yet,
 * each with the subtransaction it ran in: they reach the shared counters
 * only if that subtransaction and the transaction commit, as its reaps and
 * log rows do.  A prepared transaction's are dropped (two-phase commit
 * would need a resource manager of finlive's own to carry them).
 */
typedef struct PendingCounts
{
	SubTransactionId subid;
	ReaperCounters counts;
} PendingCounts;

static List *pending_counts = NIL;	/* in TopMemoryContext */
static bool pending_callbacks_registered = false;

static void
drop_pending_counts(void)
{
	list_free_deep(pending_counts);
	pending_counts = NIL;
}

static void
pending_counts_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, pending_counts)
				counters_add_tick(&((PendingCounts *) lfirst(lc))->counts);
			drop_pending_counts();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			drop_pending_counts();
			break;
		default:
			break;
	}
}

static void
pending_counts_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, pending_counts)
	{
		PendingCounts *p = (PendingCounts *) lfirst(lc);

		/* subtransaction ids grow: >= mySubid is this one or a child of it */
		if (p->subid < mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			p->subid = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending_counts = foreach_delete_current(pending_counts, lc);
			pfree(p);
		}
	}
}

/* Keep one call's counts until its (sub)transaction ends. */
static void
add_pending_counts(const ReaperCounters *call)
{
	PendingCounts *p;
	MemoryContext old;

	if (!pending_callbacks_registered)
	{
		RegisterXactCallback(pending_counts_xact_callback, NULL);
		RegisterSubXactCallback(pending_counts_subxact_callback, NULL);
		pending_callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc(sizeof(PendingCounts));
	p->subid = GetCurrentSubTransactionId();
	p->counts = *call;
	pending_counts = lappend(pending_counts, p);
	MemoryContextSwitchTo(old);
}

/*
 * Does this session hold an advisory lock of the application's (or
 * finlive's ownership)?  The lock manager does not tell session-level from
 * transaction-level locks here, so both count; finlive's own registration
 * lock, always transaction-level, does not.
 */
static bool
session_holds_advisory_locks(void)
{
	LockData   *locks = GetLockStatusData();
	int			i;

	for (i = 0; i < locks->nelements; i++)
		if (locks->locks[i].pid == MyProcPid &&
			locks->locks[i].locktag.locktag_type == LOCKTAG_ADVISORY &&
			locks->locks[i].locktag.locktag_field4 != FINLIVE_REGISTER_OBJSUBID &&
			locks->locks[i].holdMask != 0)
			return true;
	return false;
}

/*
 * A tick runs application code (hooks) in this session, and the reaper
 * takes back every advisory lock that code leaves: so it refuses a session
 * whose own ownership or advisory locks that could release.
 */
static void
check_session_may_tick(void)
{
	if (ownership_session_owns_any())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a session that owns jobs cannot run finlive_reap_once()"),
				 errdetail("A hook the tick runs could release this session's ownership."),
				 errhint("Run finlive_reap_once() in a session of its own, or call finlive_clear_all() first.")));
	if (session_holds_advisory_locks())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a session that holds advisory locks cannot run finlive_reap_once()"),
				 errdetail("A hook the tick runs could release them, and the tick releases every advisory lock a hook leaves."),
				 errhint("Run finlive_reap_once() in a session of its own.")));
}

/*
 * finlive_reap_once() -> SETOF (target, job_id, tier, action)
 *
 * One tick over the current database's targets, in the caller's
 * transaction, on the worker's code path.  Its counts are added to the
 * shared counters when the transaction commits.
 */
Datum
finlive_reap_once(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReaperCounters tick;
	FinliveCatalog cat;
	TimestampTz start;
	ListCell   *lc;

	finlive_require_ready();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("finlive_reap_once cannot run during recovery"),
				 errhint("The reaper works on the primary only.")));
	check_session_may_tick();
	InitMaterializedSRF(fcinfo, 0);
	memset(&tick, 0, sizeof(tick));
	start = GetCurrentTimestamp();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (targets_catalog(&cat))
	{
		foreach(lc, targets_load(&cat, true))
			reaper_tick_target(&cat, (Target *) lfirst(lc), NULL, &tick, rsinfo);
	}
	SPI_finish();

	tick.ticks = 1;
	tick.last_tick_at = GetCurrentTimestamp();
	tick.last_tick_ms = (double) (tick.last_tick_at - start) / 1000.0;
	add_pending_counts(&tick);
	return (Datum) 0;
}
