/*-------------------------------------------------------------------------
 *
 * diagnostics.c
 *	  What an operator asks: the targets and their policy, the targets that
 *	  cannot be reaped, the jobs whose reap keeps failing, the running jobs
 *	  with their owners, the audit, and why one job is (not) reaped.
 *
 * Each answer comes from the code that decides: targets_load() says whether
 * a target can be reaped and targets_effective_policy() what policy applies,
 * failures.c what keeps failing, the reaper (reaper_explain,
 * reaper_job_guarded) what a tick would do.  Nothing here decides a second
 * time in SQL, so the diagnostics cannot drift from the reaper.
 *
 * The application's tables are read with the caller's privileges: a role
 * sees the jobs of the targets whose tables it may read.  Registrations are
 * read as the owner of finlive's tables (through targets_load), which shows
 * only what finlive_targets shows to everyone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "failures.h"
#include "finlive.h"
#include "ownership.h"
#include "reaper.h"
#include "reapers.h"
#include "sandbox.h"
#include "settings.h"
#include "targets.h"

PG_FUNCTION_INFO_V1(finlive_targets);
PG_FUNCTION_INFO_V1(finlive_target_problems);
PG_FUNCTION_INFO_V1(finlive_reap_errors);
PG_FUNCTION_INFO_V1(finlive_running_jobs);
PG_FUNCTION_INFO_V1(finlive_explain);
PG_FUNCTION_INFO_V1(finlive_audit);

/* The registrations of this database, read without writing anything. */
static List *
load_targets(FinliveCatalog *cat)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!targets_catalog(cat))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"finlive\" is not installed in this database")));
	return targets_load(cat, false);
}

static Datum
usecs_interval(int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = usecs;
	return IntervalPGetDatum(iv);
}

/* A duration as registered; false when the target has none (NULL). */
static bool
registered_interval(const PolicyDuration *duration, Datum *value)
{
	Interval   *iv;

	if (duration->isnull)
		return false;
	iv = palloc(sizeof(Interval));
	*iv = duration->as_registered;
	*value = IntervalPGetDatum(iv);
	return true;
}

/* The effective value: the target's own as registered, else the setting's. */
static Datum
effective_interval(const PolicyDuration *own, int64 usecs)
{
	Datum		value;

	return registered_interval(own, &value) ? value : usecs_interval(usecs);
}

static Datum
stages_array(const NameList *stages)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(stages ? stages->nstages : 0, 1));
	const char *p = stages ? stages->stages : NULL;
	int			i;

	for (i = 0; stages && i < stages->nstages; i++)
	{
		elems[i] = CStringGetTextDatum(p);
		p += strlen(p) + 1;
	}
	return PointerGetDatum(construct_array(elems, stages ? stages->nstages : 0, TEXTOID,
										   -1, false, TYPALIGN_INT));
}

/*
 * Why the reaper skips the target, or NULL: it is unusable (targets_load
 * says why), or its last tick failed (failures.c remembers why).
 */
static char *
broken_reason(const Target *t)
{
	FailingReap problem;

	if (t->unusable != NULL)
		return t->unusable;
	if (failures_target_problem(t->jobs, &problem))
		return psprintf("the last tick could not reap it: %s", problem.message);
	return NULL;
}

/* May the current role read every table of the target?  Else which not. */
static char *
unreadable_tables(const Target *t)
{
	Oid			rels[3] = {t->jobs, t->runs, t->tasks};
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < 3; i++)
		if (OidIsValid(rels[i]) && get_rel_name(rels[i]) != NULL &&
			pg_class_aclcheck(rels[i], GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", targets_name(rels[i]));
	return buf.len > 0 ? buf.data : NULL;
}

/*
 * finlive_targets() -> SETOF record: each registration, its hooks, its
 * hooks' search_path, and (1.3) its policy as registered and as in effect.
 */
Datum
finlive_targets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FinliveCatalog cat;
	ListCell   *lc;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, load_targets(&cat))
	{
		Target	   *t = (Target *) lfirst(lc);
		TargetPolicy *own = &t->policy;
		Policy		p;
		Datum		values[21];
		bool		nulls[21] = {false};

		targets_effective_policy(t, &p);
		values[0] = ObjectIdGetDatum(t->jobs);
		values[1] = ObjectIdGetDatum(t->runs);
		values[2] = ObjectIdGetDatum(t->tasks);
		nulls[2] = !OidIsValid(t->tasks);
		values[3] = ObjectIdGetDatum(t->on_reap);
		nulls[3] = !OidIsValid(t->on_reap);
		values[4] = ObjectIdGetDatum(t->gate);
		nulls[4] = !OidIsValid(t->gate);
		values[5] = BoolGetDatum(t->claim_owned);
		values[6] = ObjectIdGetDatum(t->registered_by);
		values[7] = TimestampTzGetDatum(t->registered_at);
		values[8] = t->search_path ? CStringGetTextDatum(t->search_path) : (Datum) 0;
		nulls[8] = t->search_path == NULL;
		if (rsinfo->setDesc->natts > 9)
		{
			nulls[9] = !registered_interval(&own->finalize_grace, &values[9]);
			nulls[10] = !registered_interval(&own->claim_grace, &values[10]);
			nulls[11] = !registered_interval(&own->max_running, &values[11]);
			values[12] = own->guarded_stages ? stages_array(own->guarded_stages) : 0;
			nulls[12] = own->guarded_stages == NULL;
			values[13] = BoolGetDatum(own->enabled);
			nulls[13] = own->enabled_isnull;
			values[14] = BoolGetDatum(own->dry_run);
			nulls[14] = own->dry_run_isnull;
			values[15] = effective_interval(&own->finalize_grace, p.finalize_grace);
			values[16] = effective_interval(&own->claim_grace, p.claim_grace);
			values[17] = effective_interval(&own->max_running, p.max_running);
			values[18] = stages_array(p.guarded_stages);
			values[19] = BoolGetDatum(p.enabled);
			values[20] = BoolGetDatum(p.dry_run);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* finlive_target_problems() -> SETOF (target, problem): what the reaper skips. */
Datum
finlive_target_problems(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FinliveCatalog cat;
	ListCell   *lc;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, load_targets(&cat))
	{
		Target	   *t = (Target *) lfirst(lc);
		char	   *broken = broken_reason(t);
		Datum		values[2];
		bool		nulls[2] = {false};

		if (broken == NULL)
			continue;
		values[0] = ObjectIdGetDatum(t->jobs);
		values[1] = CStringGetTextDatum(broken);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * finlive_reap_errors() -> SETOF record: the jobs whose reap is failing
 * now, of the targets whose jobs table the current role may read.
 */
Datum
finlive_reap_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FinliveCatalog cat;
	List	   *targets;
	FailingReap *failing;
	int			n;
	int			i;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	targets = load_targets(&cat);
	failing = failures_list(InvalidOid, &n);
	for (i = 0; i < n; i++)
	{
		FailingReap *f = &failing[i];
		Datum		values[9];
		bool		nulls[9] = {false};

		/* of a registered target whose jobs table the current role may read */
		if (targets_find(targets, f->target) == NULL || get_rel_name(f->target) == NULL ||
			pg_class_aclcheck(f->target, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			continue;
		values[0] = ObjectIdGetDatum(f->target);
		values[1] = Int64GetDatum(f->job_id);
		values[2] = Int32GetDatum(f->tier);
		values[3] = CStringGetTextDatum(f->action);
		values[4] = Int64GetDatum(f->failures);
		values[5] = TimestampTzGetDatum(f->first_failed_at);
		values[6] = TimestampTzGetDatum(f->last_failed_at);
		values[7] = CStringGetTextDatum(f->sqlstate);
		values[8] = CStringGetTextDatum(f->message);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* An owner's row of pg_stat_activity, as the current role may see it. */
#define ACTIVITY_COLUMNS	9
typedef struct Activity
{
	int			pid;			/* hash key */
	TimestampTz backend_start;
	Datum		values[ACTIVITY_COLUMNS];
	bool		nulls[ACTIVITY_COLUMNS];
} Activity;

/*
 * pg_stat_activity (state, wait_event_type, wait_event, xact_start,
 * query_start, state_change, application_name, client_addr, query) by
 * pid, read once as the current role.
 */
static HTAB *
read_activity(void)
{
	HASHCTL		info;
	HTAB	   *activity;
	Sandbox		sb;
	uint64		i;

	info.keysize = sizeof(int);
	info.entrysize = sizeof(Activity);
	info.hcxt = CurrentMemoryContext;
	activity = hash_create("finlive owner activity", 64, &info,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	sandbox_enter(GetUserId(), FINLIVE_SAFE_SEARCH_PATH, &sb);
	if (SPI_execute("SELECT pid, backend_start, state, wait_event_type, wait_event,"
					"       xact_start, query_start, state_change, application_name,"
					"       client_addr, query"
					"  FROM pg_catalog.pg_stat_activity WHERE pid IS NOT NULL",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	sandbox_leave(&sb);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			pid = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		Activity   *a = hash_search(activity, &pid, HASH_ENTER, NULL);
		int			c;
		Datum		d;

		d = SPI_getbinval(tup, desc, 2, &isnull);
		a->backend_start = isnull ? 0 : DatumGetTimestampTz(d);
		for (c = 0; c < ACTIVITY_COLUMNS; c++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, c + 2);

			d = SPI_getbinval(tup, desc, c + 3, &a->nulls[c]);
			a->values[c] = a->nulls[c] ? (Datum) 0 : datumCopy(d, att->attbyval, att->attlen);
		}
	}
	return activity;
}

/* One running job, with what the diagnostics add to it. */
typedef struct RunningRow
{
	const Target *target;
	Policy		policy;
	JobRow		job;
	bool		guarded;
	bool		owned;
	OwnerInfo	owner;
	Activity   *activity;
} RunningRow;

/* Reading one target's running jobs, in a subtransaction. */
typedef struct ReadRunning
{
	const FinliveCatalog *cat;
	const Target *target;
	JobRow	   *rows;
	int			nrows;
} ReadRunning;

static void
read_running_work(void *arg)
{
	ReadRunning *r = (ReadRunning *) arg;

	r->rows = reaper_running_jobs(r->cat, r->target, &r->nrows);
}

/*
 * The running jobs of every target the current role may read, with owner,
 * activity and whether the reaper guards each now.  A target whose tables
 * were altered so that they cannot be read is skipped with a WARNING, so
 * the diagnostics of the others still work.  *all_readable says whether any
 * target was left out.
 */
static List *
running_rows(const FinliveCatalog *cat, List *targets, bool *all_readable)
{
	HTAB	   *activity = read_activity();
	List	   *result = NIL;
	ListCell   *lc;

	*all_readable = true;
	foreach(lc, targets)
	{
		Target	   *t = (Target *) lfirst(lc);
		ReadRunning r = {cat, t, NULL, 0};
		ErrorData  *edata;
		Policy		p;
		int			i;

		if (!targets_tables_exist(t))
			continue;
		if (unreadable_tables(t) != NULL)
		{
			*all_readable = false;
			continue;
		}
		if (!sandbox_try(read_running_work, &r, true, &edata))
		{
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("cannot read target \"%s\": %s", targets_name(t->jobs), edata->message)));
			*all_readable = false;
			continue;
		}
		targets_effective_policy(t, &p);
		for (i = 0; i < r.nrows; i++)
		{
			RunningRow *row = palloc0(sizeof(RunningRow));

			row->target = t;
			row->policy = p;
			row->job = r.rows[i];
			row->owned = ownership_lookup(row->job.job_id, &row->owner);
			row->guarded = row->owned &&
				reaper_job_guarded(t, &p, row->job.stage, row->job.job_id);
			if (row->owned)
			{
				row->activity = hash_search(activity, &row->owner.pid, HASH_FIND, NULL);
				if (row->activity && row->activity->backend_start != row->owner.backend_start)
					row->activity = NULL;
			}
			result = lappend(result, row);
		}
	}
	return result;
}

/* now() - since; false (NULL) for an infinite "since", which has no age. */
static bool
elapsed(TimestampTz since, Datum *age)
{
	if (TIMESTAMP_NOT_FINITE(since))
		return false;
	*age = DirectFunctionCall2(timestamp_mi,
							   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
							   TimestampTzGetDatum(since));
	return true;
}

/* finlive_running_jobs() -> SETOF record, each target's running jobs. */
Datum
finlive_running_jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FinliveCatalog cat;
	List	   *targets;
	bool		all_readable;
	ListCell   *lc;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	targets = load_targets(&cat);
	foreach(lc, running_rows(&cat, targets, &all_readable))
	{
		RunningRow *row = (RunningRow *) lfirst(lc);
		JobRow	   *j = &row->job;
		Datum		values[23];
		bool		nulls[23] = {false};
		int			c;

		values[0] = ObjectIdGetDatum(row->target->jobs);
		values[1] = Int64GetDatum(j->job_id);
		values[2] = j->stage ? CStringGetTextDatum(j->stage) : (Datum) 0;
		nulls[2] = j->stage == NULL;
		values[3] = TimestampTzGetDatum(j->started_at);
		nulls[3] = j->started_isnull;
		nulls[4] = j->started_isnull || !elapsed(j->started_at, &values[4]);
		values[5] = Int32GetDatum(j->exit_code);
		nulls[5] = j->exit_code_isnull;
		values[6] = TimestampTzGetDatum(j->finished_at);
		nulls[6] = j->finished_isnull;
		nulls[7] = j->finished_isnull || !elapsed(j->finished_at, &values[7]);
		values[8] = BoolGetDatum(row->guarded);
		for (c = 9; c < 14; c++)
			nulls[c] = !row->owned;
		if (row->owned)
		{
			values[9] = Int32GetDatum(row->owner.pid);
			values[10] = TimestampTzGetDatum(row->owner.backend_start);
			values[11] = Int64GetDatum(row->owner.token);
			values[12] = TimestampTzGetDatum(row->owner.since);
			values[13] = row->owner.stage_isnull ? 0 : CStringGetTextDatum(row->owner.stage);
			nulls[13] = row->owner.stage_isnull;
		}
		for (c = 0; c < ACTIVITY_COLUMNS; c++)
		{
			values[14 + c] = row->activity ? row->activity->values[c] : (Datum) 0;
			nulls[14 + c] = row->activity ? row->activity->nulls[c] : true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

static void
json_key(StringInfo buf, const char *key)
{
	if (buf->data[buf->len - 1] != '{')
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

static void
json_text(StringInfo buf, const char *key, const char *value)
{
	json_key(buf, key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

static void
json_ts(StringInfo buf, const char *key, bool isnull, TimestampTz ts)
{
	json_text(buf, key, isnull ? NULL
			  : DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(ts))));
}

static void
json_interval(StringInfo buf, const char *key, int64 usecs)
{
	json_text(buf, key, DatumGetCString(DirectFunctionCall1(interval_out,
															usecs_interval(usecs))));
}

static void
json_stages(StringInfo buf, const char *key, const NameList *stages)
{
	const char *p = stages ? stages->stages : NULL;
	int			i;

	json_key(buf, key);
	appendStringInfoChar(buf, '[');
	for (i = 0; stages && i < stages->nstages; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, p);
		p += strlen(p) + 1;
	}
	appendStringInfoChar(buf, ']');
}

/*
 * finlive_explain(jobs regclass, job_id bigint) -> jsonb: what the reaper
 * would do with the job now, and why.
 */
Datum
finlive_explain(PG_FUNCTION_ARGS)
{
	Oid			jobs;
	int64		job_id;
	FinliveCatalog cat;
	Target	   *t;
	JobVerdict	v;
	StringInfoData buf;

	finlive_require_ready();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	jobs = PG_GETARG_OID(0);
	job_id = PG_GETARG_INT64(1);
	if (get_rel_name(jobs) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist", jobs)));
	if (pg_class_aclcheck(jobs, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(jobs));

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	t = targets_find(load_targets(&cat), jobs);
	if (t == NULL)
	{
		json_text(&buf, "status", NULL);
		json_key(&buf, "tier");
		appendStringInfoString(&buf, "null");
		json_text(&buf, "action", "none");
		json_text(&buf, "reason", psprintf("%s is not a registered finlive target",
										   targets_name(jobs)));
		json_text(&buf, "eligible_at", NULL);
		json_text(&buf, "owner", NULL);
		json_text(&buf, "policy", NULL);
	}
	else
	{
		reaper_explain(&cat, t, job_id, &v);
		json_text(&buf, "status", v.status);
		json_key(&buf, "tier");
		if (v.tier > 0)
			appendStringInfo(&buf, "%d", v.tier);
		else
			appendStringInfoString(&buf, "null");
		json_text(&buf, "action", reaper_action_names[v.action]);
		json_text(&buf, "reason", v.reason);
		json_ts(&buf, "eligible_at", v.eligible_isnull, v.eligible_at);
		json_key(&buf, "owner");
		if (v.owned)
		{
			appendStringInfoChar(&buf, '{');
			json_key(&buf, "job_id");
			appendStringInfo(&buf, INT64_FORMAT, v.owner.job_id);
			json_key(&buf, "run_id");
			if (v.owner.run_id_isnull)
				appendStringInfoString(&buf, "null");
			else
				appendStringInfo(&buf, INT64_FORMAT, v.owner.run_id);
			json_text(&buf, "stage", v.owner.stage_isnull ? NULL : v.owner.stage);
			json_key(&buf, "pid");
			appendStringInfo(&buf, "%d", v.owner.pid);
			json_ts(&buf, "backend_start", false, v.owner.backend_start);
			json_key(&buf, "token");
			appendStringInfo(&buf, INT64_FORMAT, v.owner.token);
			json_ts(&buf, "since", false, v.owner.since);
			appendStringInfoChar(&buf, '}');
		}
		else
			appendStringInfoString(&buf, "null");
		json_key(&buf, "policy");
		appendStringInfoChar(&buf, '{');
		json_interval(&buf, "finalize_grace", v.policy.finalize_grace);
		json_interval(&buf, "claim_grace", v.policy.claim_grace);
		json_interval(&buf, "max_running", v.policy.max_running);
		json_stages(&buf, "guarded_stages", v.policy.guarded_stages);
		json_key(&buf, "enabled");
		appendStringInfoString(&buf, v.policy.enabled ? "true" : "false");
		json_key(&buf, "dry_run");
		appendStringInfoString(&buf, v.policy.dry_run ? "true" : "false");
		json_key(&buf, "claim_owned");
		appendStringInfoString(&buf, t->claim_owned ? "true" : "false");
		json_interval(&buf, "restart_grace", (int64) finlive_restart_grace * USECS_PER_SEC);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, '}');
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* Does some valid index of relid have the column "id" as its first key? */
static bool
has_id_index(Oid relid)
{
	List	   *indexes;
	ListCell   *lc;
	AttrNumber	id = get_attnum(relid, "id");
	bool		found = false;
	Relation	rel = relation_open(relid, AccessShareLock);

	indexes = RelationGetIndexList(rel);
	relation_close(rel, AccessShareLock);
	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tuple))
			continue;
		if (((Form_pg_index) GETSTRUCT(tuple))->indisvalid &&
			((Form_pg_index) GETSTRUCT(tuple))->indnkeyatts > 0 &&
			((Form_pg_index) GETSTRUCT(tuple))->indkey.values[0] == id)
			found = true;
		ReleaseSysCache(tuple);
	}
	return found;
}

/* One finding of the audit. */
typedef struct Finding
{
	const char *reason;
	Oid			target;			/* InvalidOid: none */
	int64		job_id;			/* 0 with has_job false */
	bool		has_job;
	int			pid;			/* 0: none */
	char	   *detail;
} Finding;

static List *
add_finding(List *findings, const char *reason, Oid target, bool has_job, int64 job_id,
			int pid, char *detail)
{
	Finding    *f = palloc0(sizeof(Finding));

	f->reason = reason;
	f->target = target;
	f->has_job = has_job;
	f->job_id = job_id;
	f->pid = pid;
	f->detail = detail;
	return lappend(findings, f);
}

static int
finding_cmp(const ListCell *a, const ListCell *b)
{
	const Finding *fa = lfirst(a);
	const Finding *fb = lfirst(b);
	int			c = strcmp(fa->reason, fb->reason);

	if (c == 0)
		c = (OidIsValid(fa->target) ? 1 : 0) - (OidIsValid(fb->target) ? 1 : 0);
	if (c == 0 && OidIsValid(fa->target))
		c = strcmp(targets_name(fa->target), targets_name(fb->target));
	if (c == 0)
		c = (fa->job_id > fb->job_id) - (fa->job_id < fb->job_id);
	if (c == 0)
		c = strcmp(fa->detail, fb->detail);
	return c;
}

/*
 * Is this owner of a deferred job suspicious?  An owner that is idle in a
 * transaction (holding its locks) for longer than finalize_grace, or that
 * has owned the job for longer than max_running.  An idle owner is the
 * usual finalizer running its gates between statements, and is not one.
 */
static char *
stuck_owner(const RunningRow *row)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	const Activity *a = row->activity;

	if (a != NULL && !a->nulls[0] && !a->nulls[5] &&
		strncmp(TextDatumGetCString(a->values[0]), "idle in transaction", 19) == 0 &&
		now - DatumGetTimestampTz(a->values[5]) >= row->policy.finalize_grace)
		return psprintf("session %d has been %s since %s, longer than finalize_grace (%s), holding its transaction's locks",
						row->owner.pid, TextDatumGetCString(a->values[0]),
						DatumGetCString(DirectFunctionCall1(timestamptz_out, a->values[5])),
						DatumGetCString(DirectFunctionCall1(interval_out,
															usecs_interval(row->policy.finalize_grace))));
	if (now - row->owner.since >= row->policy.max_running)
		return psprintf("session %d has owned it since %s, longer than max_running (%s)",
						row->owner.pid,
						DatumGetCString(DirectFunctionCall1(timestamptz_out,
															TimestampTzGetDatum(row->owner.since))),
						DatumGetCString(DirectFunctionCall1(interval_out,
															usecs_interval(row->policy.max_running))));
	return NULL;
}

/*
 * finlive_audit() -> SETOF (reason, target, job_id, pid, detail): what an
 * operator should look at.  See the README for what each reason means.
 */
Datum
finlive_audit(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FinliveCatalog cat;
	List	   *targets;
	List	   *running;
	List	   *findings = NIL;
	bool		all_readable;
	ListCell   *lc;

	finlive_require_ready();
	InitMaterializedSRF(fcinfo, 0);
	targets = load_targets(&cat);
	running = running_rows(&cat, targets, &all_readable);

	foreach(lc, targets)
	{
		Target	   *t = (Target *) lfirst(lc);
		char	   *unreadable = unreadable_tables(t);
		char	   *broken;
		FailingReap *failing;
		int			nfailing;
		int			i;

		if ((broken = broken_reason(t)) != NULL)
			findings = add_finding(findings, "broken_target", t->jobs, false, 0, 0, broken);
		if (unreadable != NULL)
		{
			findings = add_finding(findings, "unreadable_target", t->jobs, false, 0, 0,
								   psprintf("the current role may not SELECT from %s",
											unreadable));
			continue;
		}
		if (get_rel_name(t->jobs) != NULL && !targets_has_status_index(t->jobs))
			findings = add_finding(findings, "missing_index", t->jobs, false, 0, 0,
								   psprintf("no index of %s serves status = 'running'",
											targets_name(t->jobs)));
		if (get_rel_name(t->runs) != NULL && !has_id_index(t->runs))
			findings = add_finding(findings, "missing_index", t->jobs, false, 0, 0,
								   psprintf("no index of %s has id as its first column",
											targets_name(t->runs)));
		if (OidIsValid(t->tasks) && get_rel_name(t->tasks) != NULL && !has_id_index(t->tasks))
			findings = add_finding(findings, "missing_index", t->jobs, false, 0, 0,
								   psprintf("no index of %s has id as its first column",
											targets_name(t->tasks)));
		failing = failures_list(t->jobs, &nfailing);
		for (i = 0; i < nfailing; i++)
			findings = add_finding(findings, "failing_reap", t->jobs, true, failing[i].job_id, 0,
								   psprintf(INT64_FORMAT " failed attempts since %s, the last: %s (SQLSTATE %s)",
											failing[i].failures,
											DatumGetCString(DirectFunctionCall1(timestamptz_out,
																				TimestampTzGetDatum(failing[i].first_failed_at))),
											failing[i].message, failing[i].sqlstate));
	}

	/* live finalizers the reaper defers that look stuck */
	foreach(lc, running)
	{
		RunningRow *row = (RunningRow *) lfirst(lc);
		char	   *why;

		if (!row->guarded || row->job.exit_code_isnull || row->job.finished_isnull ||
			GetCurrentTransactionStartTimestamp() <
			reaper_grace_end(false, row->job.finished_at, row->policy.finalize_grace))
			continue;
		if ((why = stuck_owner(row)) != NULL)
			findings = add_finding(findings, "stuck_finalizer", row->target->jobs, true,
								   row->job.job_id, row->owner.pid,
								   psprintf("stage %s, run finished at %s; %s",
											row->job.stage ? row->job.stage : "-",
											DatumGetCString(DirectFunctionCall1(timestamptz_out,
																				TimestampTzGetDatum(row->job.finished_at))),
											why));
	}

	/*
	 * Ownership with no running job behind it, claimed only when there is a
	 * target and every target could be read (otherwise the job may be
	 * running in a table the caller cannot see).
	 */
	if (targets != NIL && all_readable)
	{
		OwnerInfo  *owners;
		int			nowners;
		int			i;

		owners = ownership_list(MyDatabaseId, &nowners);
		for (i = 0; i < nowners; i++)
		{
			ListCell   *rc;
			bool		running_somewhere = false;

			foreach(rc, running)
				if (((RunningRow *) lfirst(rc))->job.job_id == owners[i].job_id)
					running_somewhere = true;
			if (!running_somewhere)
				findings = add_finding(findings, "leaked_ownership", InvalidOid, true,
									   owners[i].job_id, owners[i].pid,
									   psprintf("owned since %s (run %s, stage %s) but running in no target",
												DatumGetCString(DirectFunctionCall1(timestamptz_out,
																					TimestampTzGetDatum(owners[i].since))),
												owners[i].run_id_isnull ? "-" : psprintf(INT64_FORMAT, owners[i].run_id),
												owners[i].stage_isnull ? "-" : owners[i].stage));
		}
	}

	list_sort(findings, finding_cmp);
	foreach(lc, findings)
	{
		Finding    *f = (Finding *) lfirst(lc);
		Datum		values[5];
		bool		nulls[5] = {false};

		values[0] = CStringGetTextDatum(f->reason);
		values[1] = ObjectIdGetDatum(f->target);
		nulls[1] = !OidIsValid(f->target);
		values[2] = Int64GetDatum(f->job_id);
		nulls[2] = !f->has_job;
		values[3] = Int32GetDatum(f->pid);
		nulls[3] = f->pid == 0;
		values[4] = CStringGetTextDatum(f->detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
