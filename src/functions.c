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
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "counters.h"
#include "finlive.h"
#include "ownership.h"
#include "reaper.h"
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
 * Every finlive function starts here: without the preload there is no
 * shared registry to work with.
 */
void
finlive_require_preload(void)
{
	if (!ownership_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("finlive must be loaded via shared_preload_libraries"),
				 errhint("Add finlive to shared_preload_libraries in postgresql.conf and restart the server.")));
}

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

	finlive_require_preload();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
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
	if (!ownership_mark(PG_GETARG_INT64(0),
						PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
						stage, &token))
		PG_RETURN_NULL();
	PG_RETURN_INT64(token);
}

/* finlive_clear(job_id bigint) -> boolean; never raises once loaded */
Datum
finlive_clear(PG_FUNCTION_ARGS)
{
	finlive_require_preload();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ownership_clear(PG_GETARG_INT64(0)));
}

/* finlive_clear_all() -> integer */
Datum
finlive_clear_all(PG_FUNCTION_ARGS)
{
	finlive_require_preload();
	PG_RETURN_INT32(ownership_clear_all());
}

/* finlive_is_active(job_id bigint) -> boolean */
Datum
finlive_is_active(PG_FUNCTION_ARGS)
{
	finlive_require_preload();
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ownership_lookup(PG_GETARG_INT64(0), NULL));
}

/* finlive_fence(job_id bigint, token bigint) -> boolean */
Datum
finlive_fence(PG_FUNCTION_ARGS)
{
	OwnerInfo	owner;

	finlive_require_preload();
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

	finlive_require_preload();
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

	finlive_require_preload();
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

	finlive_require_preload();
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
	finlive_require_preload();
	counters_reset();
	PG_RETURN_VOID();
}

/*
 * Counts of finlive_reap_once() calls whose transaction has not ended yet:
 * they reach the shared counters only if it commits, as its reaps and log
 * rows do.
 */
static ReaperCounters pending_counts;
static bool pending_callback_registered = false;

static void
pending_counts_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			if (pending_counts.ticks > 0)
				counters_add_tick(&pending_counts);
			memset(&pending_counts, 0, sizeof(pending_counts));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			memset(&pending_counts, 0, sizeof(pending_counts));
			break;
		default:
			break;
	}
}

/* Fold one call's counts into the transaction's pending counts. */
static void
add_pending_counts(const ReaperCounters *call)
{
	if (!pending_callback_registered)
	{
		RegisterXactCallback(pending_counts_xact_callback, NULL);
		pending_callback_registered = true;
	}
	counters_accumulate(&pending_counts, call);
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
	List	   *targets;
	ListCell   *lc;

	finlive_require_preload();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("finlive_reap_once cannot run during recovery"),
				 errhint("The reaper works on the primary only.")));
	InitMaterializedSRF(fcinfo, 0);
	memset(&tick, 0, sizeof(tick));
	start = GetCurrentTimestamp();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (targets_catalog(&cat))
	{
		targets = targets_load(&cat);
		foreach(lc, targets)
			reaper_process_target(&cat, (Target *) lfirst(lc), &tick, rsinfo);
	}
	SPI_finish();

	tick.ticks = 1;
	tick.last_tick_at = GetCurrentTimestamp();
	tick.last_tick_ms = (double) (tick.last_tick_at - start) / 1000.0;
	add_pending_counts(&tick);
	return (Datum) 0;
}
