/*-------------------------------------------------------------------------
 *
 * targets.c
 *	  Registering the application tables the reaper works on.
 *
 * finlive_register() checks, once and with errors that name the table and
 * column, everything the reaper's queries will rely on: the required
 * columns and their types, the hooks' signatures, and that the registering
 * role may read and update the tables and call the hooks (the reaper later
 * runs as that role).  Registrations live in finlive_target, an extension
 * configuration table, written here as the table's owner so that a role
 * needs nothing but EXECUTE on finlive_register.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodes.h"
#include "optimizer/optimizer.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "finlive.h"
#include "targets.h"

PG_FUNCTION_INFO_V1(finlive_register);
PG_FUNCTION_INFO_V1(finlive_unregister);

/* A column the reaper needs, and the types it accepts. */
typedef struct ColumnRule
{
	const char *name;
	Oid			type1;
	Oid			type2;			/* InvalidOid when only one type fits */
	const char *expected;		/* for the error message */
} ColumnRule;

static const ColumnRule jobs_columns[] = {
	{"id", INT4OID, INT8OID, "integer or bigint"},
	{"status", TEXTOID, VARCHAROID, "text or varchar"},
	{"run_id", INT4OID, INT8OID, "integer or bigint"},
	{"task_id", INT4OID, INT8OID, "integer or bigint"},
	{"attempts", INT4OID, InvalidOid, "integer"},
	{"max_attempts", INT4OID, InvalidOid, "integer"},
	{"started_at", TIMESTAMPTZOID, InvalidOid, "timestamp with time zone"},
	{NULL}
};

static const ColumnRule runs_columns[] = {
	{"id", INT4OID, INT8OID, "integer or bigint"},
	{"finished_at", TIMESTAMPTZOID, InvalidOid, "timestamp with time zone"},
	{"exit_code", INT4OID, InvalidOid, "integer"},
	{NULL}
};

static const ColumnRule tasks_columns[] = {
	{"id", INT4OID, INT8OID, "integer or bigint"},
	{"stage", TEXTOID, VARCHAROID, "text or varchar"},
	{NULL}
};

/*
 * Act as "role" in a restricted security context (no SET ROLE or SET
 * SESSION AUTHORIZATION back to whoever called us), with search_path =
 * pg_catalog, pg_temp: no function or operator of anybody else's can be
 * resolved from here.  Every query finlive runs goes through this, as the
 * owner of its tables or as a target's registrant.  targets_restore() undoes
 * it; on an error, (sub)transaction abort does.
 */
void
targets_become(Oid role, RoleSwitch *sw)
{
	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec);
	SetUserIdAndSecContext(role,
						   sw->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sw->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
targets_restore(RoleSwitch *sw)
{
	AtEOXact_GUC(true, sw->save_nestlevel);
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec);
}

/*
 * Find the extension's schema and the owner of its internal tables.  False
 * when finlive is not installed in the current database.  Needs SPI.
 */
bool
targets_catalog(FinliveCatalog *cat)
{
	RoleSwitch	sw;
	bool		isnull;
	bool		found;

	targets_become(GetUserId(), &sw);
	if (SPI_execute("SELECT e.extnamespace, c.relowner"
					"  FROM pg_catalog.pg_extension e"
					"  JOIN pg_catalog.pg_class c"
					"    ON c.relnamespace = e.extnamespace AND c.relname = 'finlive_target'"
					" WHERE e.extname = 'finlive'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the finlive extension");
	targets_restore(&sw);
	found = SPI_processed > 0;
	if (found)
	{
		cat->schema = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
		cat->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull));
		cat->qualified_schema = pstrdup(quote_identifier(get_namespace_name(cat->schema)));
	}
	return found;
}

static Oid
spi_oid(HeapTuple tuple, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * Every registration of the current database, in CurrentMemoryContext.
 * Hooks are resolved from their stored signatures now.  Needs SPI.
 */
List *
targets_load(const FinliveCatalog *cat)
{
	char	   *sql;
	List	   *result = NIL;
	RoleSwitch	sw;
	MemoryContext caller = CurrentMemoryContext;
	uint64		i;

	sql = psprintf("SELECT jobs::oid, runs::oid, tasks::oid,"
				   "       on_reap, pg_catalog.to_regprocedure(on_reap)::oid,"
				   "       gate, pg_catalog.to_regprocedure(gate)::oid,"
				   "       claim_owned, registered_by::oid"
				   "  FROM %s.finlive_target ORDER BY jobs",
				   cat->qualified_schema);
	targets_become(cat->owner, &sw);
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read finlive_target");
	targets_restore(&sw);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		MemoryContext spi = MemoryContextSwitchTo(caller);
		Target	   *t = palloc0(sizeof(Target));
		char	   *on_reap = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 4);
		char	   *gate = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 6);
		bool		isnull;

		t->jobs = spi_oid(tuple, 1);
		t->runs = spi_oid(tuple, 2);
		t->tasks = spi_oid(tuple, 3);
		t->on_reap_name = on_reap ? pstrdup(on_reap) : NULL;
		t->on_reap = spi_oid(tuple, 5);
		t->gate_name = gate ? pstrdup(gate) : NULL;
		t->gate = spi_oid(tuple, 7);
		t->claim_owned = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 8, &isnull));
		t->registered_by = spi_oid(tuple, 9);
		result = lappend(result, t);
		MemoryContextSwitchTo(spi);
	}
	return result;
}

/* The relation must be a permanent table with the columns the reaper reads. */
static void
check_columns(Oid relid, const char *role, const ColumnRule *rules)
{
	char		relkind = get_rel_relkind(relid);
	const ColumnRule *rule;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s \"%s\" is not a table", role, get_rel_name(relid))));

	/* the worker, in a session of its own, could never see it */
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s table \"%s\" is a temporary table", role, get_rel_name(relid)),
				 errdetail("The reaper cannot see another session's temporary tables.")));

	for (rule = rules; rule->name != NULL; rule++)
	{
		AttrNumber	attnum = get_attnum(relid, rule->name);
		Oid			type;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("%s table \"%s\" has no column \"%s\"",
							role, get_rel_name(relid), rule->name),
					 errhint("finlive needs column \"%s\" of type %s.",
							 rule->name, rule->expected)));
		type = getBaseType(get_atttype(relid, attnum));
		if (type != rule->type1 && type != rule->type2)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of %s table \"%s\" has type %s",
							rule->name, role, get_rel_name(relid), format_type_be(type)),
					 errhint("finlive needs type %s.", rule->expected)));
	}
}

/* A hook must be a plain function with exactly these argument types. */
static void
check_hook(Oid func, const char *role, int nargs, const Oid *argtypes,
		   Oid rettype, const char *expected)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	bool		ok;
	int			i;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function with OID %u does not exist", role, func)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->pronargs == nargs &&
		(rettype == InvalidOid || proc->prorettype == rettype);
	for (i = 0; ok && i < nargs; i++)
		ok = proc->proargtypes.values[i] == argtypes[i];
	ReleaseSysCache(tuple);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s function %s has the wrong signature", role, format_procedure(func)),
				 errdetail("The %s function must be %s.", role, expected)));
	if (pg_proc_aclcheck(func, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(func));
}

static void
check_table_privilege(Oid relid, AclMode mode)
{
	if (pg_class_aclcheck(relid, GetUserId(), mode) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
}

/*
 * Does some valid index of the jobs table serve "status = 'running'"?  One
 * whose first key column is status, or a partial index whose predicate
 * mentions status, does.
 */
static bool
has_status_index(Oid jobs)
{
	Relation	rel = table_open(jobs, AccessShareLock);
	AttrNumber	status = get_attnum(jobs, "status");
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		bool		isnull;
		Datum		pred;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		if (index->indisvalid)
		{
			if (index->indnkeyatts > 0 && index->indkey.values[0] == status)
				found = true;
			pred = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indpred, &isnull);
			if (!found && !isnull)
			{
				Bitmapset  *attrs = NULL;

				pull_varattnos(stringToNode(TextDatumGetCString(pred)), 1, &attrs);
				found = bms_is_member(status - FirstLowInvalidHeapAttributeNumber, attrs);
			}
		}
		ReleaseSysCache(tuple);
		if (found)
			break;
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
	return found;
}

/* Who registered this target, or InvalidOid if it is not registered. */
static Oid
registrant_of(const FinliveCatalog *cat, Oid jobs)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(jobs)};
	RoleSwitch	sw;
	Oid			result = InvalidOid;
	char	   *sql;

	sql = psprintf("SELECT registered_by::oid FROM %s.finlive_target"
				   " WHERE jobs::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
				   cat->qualified_schema);
	targets_become(cat->owner, &sw);
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read finlive_target");
	targets_restore(&sw);
	if (SPI_processed > 0)
		result = spi_oid(SPI_tuptable->vals[0], 1);
	return result;
}

/* Only the registering role (or a member, or a superuser) may change a target. */
static void
check_registrant(Oid registrant, Oid jobs, const char *verb)
{
	if (OidIsValid(registrant) && !has_privs_of_role(GetUserId(), registrant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s target \"%s\"", verb, get_rel_name(jobs)),
				 errdetail("Only the role that registered it, or a superuser, may do that.")));
}

static void
connect_with_catalog(FinliveCatalog *cat)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!targets_catalog(cat))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"finlive\" is not installed in this database")));
}

/*
 * finlive_register(jobs, runs, tasks, on_reap, gate, claim_owned) -> void
 */
Datum
finlive_register(PG_FUNCTION_ARGS)
{
	static const Oid on_reap_args[3] = {INT8OID, INT4OID, TEXTOID};
	static const Oid gate_args[1] = {INT8OID};
	Oid			jobs,
				runs,
				tasks = InvalidOid,
				on_reap = InvalidOid,
				gate = InvalidOid;
	bool		claim_owned;
	FinliveCatalog cat;
	RoleSwitch	sw;
	Oid			argtypes[7] = {OIDOID, OIDOID, OIDOID, TEXTOID, TEXTOID, BOOLOID, OIDOID};
	Datum		args[7];
	char		nulls[7] = "       ";
	char	   *sql;

	finlive_require_preload();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("finlive_register: jobs, runs and claim_owned must not be null")));
	jobs = PG_GETARG_OID(0);
	runs = PG_GETARG_OID(1);
	if (!PG_ARGISNULL(2))
		tasks = PG_GETARG_OID(2);
	if (!PG_ARGISNULL(3))
		on_reap = PG_GETARG_OID(3);
	if (!PG_ARGISNULL(4))
		gate = PG_GETARG_OID(4);
	claim_owned = PG_GETARG_BOOL(5);

	/*
	 * Lock the tables so that nobody drops them while they are validated;
	 * then a dangling OID (a regclass made from a number, or a table dropped
	 * meanwhile) shows as a missing table.
	 */
	LockRelationOid(jobs, AccessShareLock);
	LockRelationOid(runs, AccessShareLock);
	if (OidIsValid(tasks))
		LockRelationOid(tasks, AccessShareLock);
	if (get_rel_name(jobs) == NULL || get_rel_name(runs) == NULL ||
		(OidIsValid(tasks) && get_rel_name(tasks) == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("finlive_register: a table with the given OID does not exist")));

	check_columns(jobs, "jobs", jobs_columns);
	check_columns(runs, "runs", runs_columns);
	if (OidIsValid(tasks))
		check_columns(tasks, "tasks", tasks_columns);
	if (OidIsValid(on_reap))
		check_hook(on_reap, "on_reap", 3, on_reap_args, InvalidOid,
				   "a function taking (bigint, integer, text)");
	if (OidIsValid(gate))
		check_hook(gate, "gate", 1, gate_args, BOOLOID,
				   "a function taking (bigint) and returning boolean");

	/* the reaper will read and update these as the registering role */
	check_table_privilege(jobs, ACL_SELECT | ACL_UPDATE);
	check_table_privilege(runs, ACL_SELECT);
	if (OidIsValid(tasks))
		check_table_privilege(tasks, ACL_SELECT);

	if (!has_status_index(jobs))
		ereport(NOTICE,
				(errmsg("no index on table \"%s\" serves status = 'running'", get_rel_name(jobs)),
				 errdetail("Each reaper tick then reads the whole table."),
				 errhint("Create one, for example: CREATE INDEX ON %s (id) WHERE status = 'running';",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(jobs)),
													get_rel_name(jobs)))));

	connect_with_catalog(&cat);
	check_registrant(registrant_of(&cat, jobs), jobs, "replace");

	args[0] = ObjectIdGetDatum(jobs);
	args[1] = ObjectIdGetDatum(runs);
	args[2] = ObjectIdGetDatum(tasks);
	nulls[2] = OidIsValid(tasks) ? ' ' : 'n';
	args[3] = OidIsValid(on_reap) ? CStringGetTextDatum(format_procedure_qualified(on_reap)) : (Datum) 0;
	nulls[3] = OidIsValid(on_reap) ? ' ' : 'n';
	args[4] = OidIsValid(gate) ? CStringGetTextDatum(format_procedure_qualified(gate)) : (Datum) 0;
	nulls[4] = OidIsValid(gate) ? ' ' : 'n';
	args[5] = BoolGetDatum(claim_owned);
	args[6] = ObjectIdGetDatum(GetUserId());

	sql = psprintf("INSERT INTO %s.finlive_target AS t"
				   " (jobs, runs, tasks, on_reap, gate, claim_owned, registered_by)"
				   " VALUES ($1::regclass, $2::regclass, $3::regclass, $4, $5, $6, $7::regrole)"
				   " ON CONFLICT (jobs) DO UPDATE SET runs = excluded.runs, tasks = excluded.tasks,"
				   " on_reap = excluded.on_reap, gate = excluded.gate,"
				   " claim_owned = excluded.claim_owned, registered_by = excluded.registered_by,"
				   " registered_at = now()",
				   cat.qualified_schema);
	targets_become(cat.owner, &sw);
	if (SPI_execute_with_args(sql, 7, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write finlive_target");
	targets_restore(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * finlive_unregister(jobs regclass) -> boolean: true if a target was removed.
 */
Datum
finlive_unregister(PG_FUNCTION_ARGS)
{
	Oid			jobs = PG_GETARG_OID(0);
	FinliveCatalog cat;
	Oid			registrant;
	RoleSwitch	sw;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(jobs)};
	char	   *sql;

	finlive_require_preload();
	connect_with_catalog(&cat);
	registrant = registrant_of(&cat, jobs);
	if (!OidIsValid(registrant))
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	check_registrant(registrant, jobs, "unregister");

	sql = psprintf("DELETE FROM %s.finlive_target"
				   " WHERE jobs::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
				   cat.qualified_schema);
	targets_become(cat.owner, &sw);
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not write finlive_target");
	targets_restore(&sw);
	SPI_finish();
	PG_RETURN_BOOL(true);
}
