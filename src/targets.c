/*-------------------------------------------------------------------------
 *
 * targets.c
 *	  Registering the application tables the reaper works on, and reading
 *	  the registrations back.
 *
 * finlive_register() checks, once and with errors that name the table and
 * column, everything the reaper's queries will rely on: the required
 * columns and their types, the hooks' signatures, that the registering role
 * may read and update the tables and call the hooks (the reaper later runs
 * as that role), and that nobody else can put an object in the hooks' way
 * through the search_path it captures for them.  Registrations live in
 * finlive_target, an extension configuration table, written here as the
 * table's owner so that a role needs nothing but EXECUTE on
 * finlive_register.
 *
 * A hook is the very function that was registered: its OID is kept beside
 * the signature text.  Text alone would let a function created later under
 * the same name be called; an OID alone would not survive pg_dump or
 * pg_upgrade, which give functions new OIDs.  So the OID is valid only in
 * the cluster and database it was bound in (bound_to); a registration read
 * anywhere else (restored, or upgraded in place) is bound again, once, to
 * the function its signature names.  A hook dropped or renamed since makes
 * the target unusable until it is registered again.
 *
 * targets_load() also decides, in one place, whether each target can be
 * reaped now and if not why, for the reaper and every diagnostic alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodes.h"
#include "optimizer/optimizer.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "compat.h"
#include "failures.h"
#include "finlive.h"
#include "ownership.h"
#include "sandbox.h"
#include "settings.h"
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

/* The hooks a target may have, and what each must look like. */
typedef struct HookRule
{
	const char *role;
	int			nargs;
	Oid			argtypes[3];
	Oid			rettype;		/* InvalidOid: any */
	const char *expected;
} HookRule;

static const HookRule on_reap_rule = {
	"on_reap", 3, {INT8OID, INT4OID, TEXTOID}, InvalidOid,
	"a function taking (bigint, integer, text)"
};
static const HookRule gate_rule = {
	"gate", 1, {INT8OID}, BOOLOID,
	"a function taking (bigint) and returning boolean"
};

/* Run one SPI statement as the owner of finlive's tables. */
static int
spi_as_owner(const FinliveCatalog *cat, const char *sql, int nargs, Oid *argtypes,
			 Datum *args, const char *nulls, bool read_only)
{
	Sandbox		sb;
	int			rc;

	sandbox_enter(cat->owner, FINLIVE_SAFE_SEARCH_PATH, &sb);
	rc = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, read_only, 0);
	sandbox_leave(&sb);
	return rc;
}

/*
 * Find the extension's schema, the owner of its internal tables and the
 * installed SQL version.  False when finlive is not installed in the
 * current database.  Needs SPI.
 */
bool
targets_catalog(FinliveCatalog *cat)
{
	Sandbox		sb;
	bool		isnull;
	bool		found;
	char	   *version;
	int			major = 0,
				minor = 0;

	sandbox_enter(GetUserId(), FINLIVE_SAFE_SEARCH_PATH, &sb);
	if (SPI_execute("SELECT e.extnamespace, c.relowner, e.extversion"
					"  FROM pg_catalog.pg_extension e"
					"  JOIN pg_catalog.pg_class c"
					"    ON c.relnamespace OPERATOR(pg_catalog.=) e.extnamespace"
					"   AND c.relname OPERATOR(pg_catalog.=) 'finlive_target'"
					" WHERE e.extname OPERATOR(pg_catalog.=) 'finlive'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the finlive extension");
	sandbox_leave(&sb);
	found = SPI_processed > 0;
	if (found)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];

		cat->schema = DatumGetObjectId(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
		cat->owner = DatumGetObjectId(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		version = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 3);
		(void) sscanf(version, "%d.%d", &major, &minor);
		cat->version = major * 10 + minor;
		cat->qualified_schema = pstrdup(quote_identifier(get_namespace_name(cat->schema)));
	}
	return found;
}

/* Raise unless the installed SQL objects are new enough for this library. */
void
targets_require_current(const FinliveCatalog *cat)
{
	if (cat->version < FINLIVE_MIN_SQL_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"finlive\" must be updated"),
				 errdetail("The installed version %d.%d is older than the library, which needs at least %d.%d.",
						   cat->version / 10, cat->version % 10,
						   FINLIVE_MIN_SQL_VERSION / 10, FINLIVE_MIN_SQL_VERSION % 10),
				 errhint("Run ALTER EXTENSION finlive UPDATE.")));
}

/* The schema-qualified name of a relation, quoted only where SQL needs it. */
char *
targets_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (relname == NULL || nspname == NULL)
		return psprintf("%u", relid);
	return quote_qualified_identifier(nspname, relname);
}

/*
 * The schema-qualified name of a relation as messages print it inside
 * quotes, parts unquoted ("My Schema.jobs"), as PostgreSQL's own messages do.
 */
char *
targets_display_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (relname == NULL || nspname == NULL)
		return psprintf("%u", relid);
	return psprintf("%s.%s", nspname, relname);
}

/*
 * Do the target's tables still exist?  A target read from the catalog may
 * have been dropped since (which unregisters it); asked after its tables
 * are locked, the answer stays true.
 */
bool
targets_tables_exist(const Target *t)
{
	return get_rel_relkind(t->jobs) != '\0' &&
		get_rel_relkind(t->runs) != '\0' &&
		(!OidIsValid(t->tasks) || get_rel_relkind(t->tasks) != '\0');
}

/* Where the hooks' OIDs are valid: this cluster and this database. */
static char *
binding_epoch(void)
{
	return psprintf(UINT64_FORMAT "/%u", GetSystemIdentifier(), MyDatabaseId);
}

static Oid
spi_oid(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/* An interval as microseconds, saturating (an infinite one is "never"). */
static int64
interval_usecs(const Interval *iv)
{
	int64		usecs;
	int64		part;

	if (pg_mul_s64_overflow((int64) iv->month, DAYS_PER_MONTH * USECS_PER_DAY, &part) ||
		pg_add_s64_overflow(iv->time, part, &usecs) ||
		pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &part) ||
		pg_add_s64_overflow(usecs, part, &usecs))
		return (iv->month < 0 || iv->day < 0 || iv->time < 0) ? PG_INT64_MIN : PG_INT64_MAX;
	return usecs;
}

/* A text[] of stage names as a NameList; NULL elements are skipped. */
static NameList *
stages_from_array(ArrayType *array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	  **names;
	int			n = 0;
	int			i;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	names = palloc(sizeof(char *) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		if (!nulls[i])
			names[n++] = TextDatumGetCString(elems[i]);
	return name_list_build(names, n);
}

static void
set_duration(PolicyDuration *duration, const Interval *iv)
{
	duration->isnull = (iv == NULL);
	if (iv != NULL)
	{
		duration->usecs = interval_usecs(iv);
		duration->as_registered = *iv;
	}
}

static void
read_duration(HeapTuple tuple, TupleDesc desc, int col, PolicyDuration *duration)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	set_duration(duration, isnull ? NULL : DatumGetIntervalP(d));
}

/* Read a target's policy columns (version 1.3 and later). */
static void
read_policy(HeapTuple tuple, TupleDesc desc, int first, TargetPolicy *p)
{
	Datum		d;

	read_duration(tuple, desc, first, &p->finalize_grace);
	read_duration(tuple, desc, first + 1, &p->claim_grace);
	read_duration(tuple, desc, first + 2, &p->max_running);
	{
		bool		isnull;

		d = SPI_getbinval(tuple, desc, first + 3, &isnull);
		p->guarded_stages = isnull ? NULL : stages_from_array(DatumGetArrayTypeP(d));
	}
	d = SPI_getbinval(tuple, desc, first + 4, &p->enabled_isnull);
	p->enabled = p->enabled_isnull ? true : DatumGetBool(d);
	d = SPI_getbinval(tuple, desc, first + 5, &p->dry_run_isnull);
	p->dry_run = p->dry_run_isnull ? false : DatumGetBool(d);
}

static void
no_policy(TargetPolicy *p)
{
	memset(p, 0, sizeof(*p));
	p->finalize_grace.isnull = p->claim_grace.isnull = p->max_running.isnull = true;
	p->enabled_isnull = p->dry_run_isnull = true;
	p->enabled = true;
}

/*
 * The policy the reaper applies to t now.  The only place that combines a
 * target's own values with the server settings.
 */
void
targets_effective_policy(const Target *t, Policy *p)
{
	const TargetPolicy *own = &t->policy;

	p->finalize_grace = own->finalize_grace.isnull
		? (int64) finlive_finalize_grace * USECS_PER_SEC : own->finalize_grace.usecs;
	p->claim_grace = own->claim_grace.isnull
		? (int64) finlive_claim_grace * USECS_PER_SEC : own->claim_grace.usecs;
	p->max_running = own->max_running.isnull
		? (int64) finlive_max_running * USECS_PER_SEC : own->max_running.usecs;
	p->guarded_stages = own->guarded_stages ? own->guarded_stages : settings_guarded_stages();
	p->enabled = finlive_enabled && own->enabled;
	p->dry_run = finlive_dry_run || own->dry_run;
}

/*
 * Does the function funcid look like the hook rule says, and not live in a
 * temporary schema?  NULL when it does; else why not.
 */
static char *
hook_mismatch(Oid funcid, const HookRule *rule)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	bool		ok;
	bool		temp;
	int			i;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		return psprintf("function with OID %u does not exist", funcid);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->pronargs == rule->nargs &&
		(rule->rettype == InvalidOid || proc->prorettype == rule->rettype);
	for (i = 0; ok && i < rule->nargs; i++)
		ok = proc->proargtypes.values[i] == rule->argtypes[i];
	temp = isAnyTempNamespace(proc->pronamespace);
	ReleaseSysCache(tuple);
	if (!ok)
		return psprintf("The %s function must be %s.", rule->role, rule->expected);
	if (temp)
		return pstrdup("A function in a temporary schema belongs to one session and can be replaced by whoever gets that schema next.");
	return NULL;
}

/*
 * Bind a hook stored as signature text: the function it names, if that is
 * still a valid hook.  InvalidOid (and *why) when there is none.
 */
static Oid
bind_by_signature(const char *signature, const HookRule *rule, char **why)
{
	Oid			funcid;

	funcid = DatumGetObjectId(DirectFunctionCall1(to_regprocedure,
												  CStringGetTextDatum(signature)));
	if (!OidIsValid(funcid))
	{
		*why = psprintf("its %s function %s no longer exists", rule->role, signature);
		return InvalidOid;
	}
	if (hook_mismatch(funcid, rule) != NULL)
	{
		*why = psprintf("its %s function %s is no longer a valid %s function",
						rule->role, signature, rule->role);
		return InvalidOid;
	}
	return funcid;
}

/*
 * The hook of a registration, from its stored OID (bound; NULL when it was
 * never bound, as after the update from 1.1; 0 once the function was found
 * dropped or renamed):
 *
 *	- bound here (epoch_matches): the function with that OID, if it still
 *	  has the name registered; if not, the hook is lost (*lost: record it);
 *	- never bound, or bound in another cluster or database (a restore, an
 *	  upgrade): the function its signature names, once (*rebound);
 *	- lost: never again, wherever the registration goes (pg_dump carries
 *	  the 0), until the target is registered again.
 */
static Oid
resolve_hook(const char *signature, bool bound_isnull, Oid bound, bool epoch_matches,
			 const HookRule *rule, bool *rebound, bool *lost, char **why)
{
	char	   *now_named;

	if (signature == NULL)
		return InvalidOid;
	if (!bound_isnull && !OidIsValid(bound))
	{
		*why = psprintf("its %s function %s was dropped or renamed", rule->role, signature);
		return InvalidOid;
	}
	if (bound_isnull || !epoch_matches)
	{
		*rebound = true;
		return bind_by_signature(signature, rule, why);
	}
	now_named = SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(bound))
		? format_procedure_qualified(bound) : NULL;
	if (now_named == NULL || strcmp(now_named, signature) != 0)
	{
		*lost = true;
		*why = psprintf("its %s function %s was dropped or renamed", rule->role, signature);
		return InvalidOid;
	}
	return bound;
}

/* Record that a registration's hook is lost (0), so no restore binds it. */
static void
store_lost(const FinliveCatalog *cat, Oid jobs, bool on_reap_lost, bool gate_lost)
{
	Oid			argtypes[3] = {OIDOID, BOOLOID, BOOLOID};
	Datum		args[3];
	char	   *sql;

	args[0] = ObjectIdGetDatum(jobs);
	args[1] = BoolGetDatum(on_reap_lost);
	args[2] = BoolGetDatum(gate_lost);
	sql = psprintf("UPDATE %s.finlive_target"
				   "   SET on_reap_id = CASE WHEN $2 THEN 0 ELSE on_reap_id END,"
				   "       gate_id = CASE WHEN $3 THEN 0 ELSE gate_id END"
				   " WHERE jobs::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
				   cat->qualified_schema);
	if (spi_as_owner(cat, sql, 3, argtypes, args, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "could not write finlive_target");
}

/* Write the hooks bound again to a registration read in a new place. */
static void
store_binding(const FinliveCatalog *cat, const Target *t)
{
	Oid			argtypes[4] = {OIDOID, OIDOID, OIDOID, TEXTOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *sql;

	args[0] = ObjectIdGetDatum(t->jobs);
	args[1] = ObjectIdGetDatum(t->on_reap);
	nulls[1] = OidIsValid(t->on_reap) ? ' ' : 'n';
	args[2] = ObjectIdGetDatum(t->gate);
	nulls[2] = OidIsValid(t->gate) ? ' ' : 'n';
	args[3] = CStringGetTextDatum(binding_epoch());
	sql = psprintf("UPDATE %s.finlive_target SET on_reap_id = $2, gate_id = $3, bound_to = $4"
				   " WHERE jobs::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
				   cat->qualified_schema);
	if (spi_as_owner(cat, sql, 4, argtypes, args, nulls, false) != SPI_OK_UPDATE)
		elog(ERROR, "could not write finlive_target");
}

/* May role still do with the relation what the reaper needs?  Else why not. */
static char *
relation_problem(Oid relid, const char *role_name, Oid role, const char *which, bool update)
{
	if (get_rel_name(relid) == NULL)
		return psprintf("its %s table no longer exists", which);
	if (compat_namespace_aclcheck(get_rel_namespace(relid), role, ACL_USAGE) != ACLCHECK_OK)
		return psprintf("role %s may not use the schema of its %s table %s",
						role_name, which, targets_name(relid));
	if (pg_class_aclcheck(relid, role, ACL_SELECT) != ACLCHECK_OK)
		return psprintf("role %s may not SELECT from its %s table %s",
						role_name, which, targets_name(relid));
	if (update && pg_class_aclcheck(relid, role, ACL_UPDATE) != ACLCHECK_OK)
		return psprintf("role %s may not UPDATE its %s table %s",
						role_name, which, targets_name(relid));
	return NULL;
}

/*
 * Why can t not be reaped now?  NULL when it can.  Checks what the reaper
 * needs, as the registrant: the tables, the hooks (bound already) and the
 * privileges.
 */
static char *
target_problem(const Target *t)
{
	char	   *role_name = GetUserNameFromId(t->registered_by, true);
	char	   *why;

	if (role_name == NULL)
		return pstrdup("the role that registered it no longer exists");
	role_name = pstrdup(quote_identifier(role_name));
	if ((why = relation_problem(t->jobs, role_name, t->registered_by, "jobs", true)) != NULL ||
		(why = relation_problem(t->runs, role_name, t->registered_by, "runs", false)) != NULL ||
		(OidIsValid(t->tasks) &&
		 (why = relation_problem(t->tasks, role_name, t->registered_by, "tasks", false)) != NULL))
		return why;
	if (OidIsValid(t->on_reap) &&
		compat_proc_aclcheck(t->on_reap, t->registered_by, ACL_EXECUTE) != ACLCHECK_OK)
		return psprintf("role %s may not execute its on_reap function %s",
						role_name, t->on_reap_name);
	if (OidIsValid(t->gate) &&
		compat_proc_aclcheck(t->gate, t->registered_by, ACL_EXECUTE) != ACLCHECK_OK)
		return psprintf("role %s may not execute its gate function %s",
						role_name, t->gate_name);
	return NULL;
}

/*
 * Every registration of the current database, in CurrentMemoryContext, with
 * its hooks resolved and whether it can be reaped now.  With "bind", hooks
 * bound again (a registration restored or upgraded from elsewhere) are
 * written back, so that it is bound once; without, nothing is written.
 * Needs SPI.
 */
List *
targets_load(const FinliveCatalog *cat, bool bind)
{
	char	   *sql;
	List	   *result = NIL;
	MemoryContext caller = CurrentMemoryContext;
	char	   *epoch = binding_epoch();
	SPITupleTable *rows;
	uint64		nrows;
	uint64		i;

	targets_require_current(cat);
	sql = psprintf("SELECT jobs::pg_catalog.oid, runs::pg_catalog.oid, tasks::pg_catalog.oid,"
				   "       on_reap, on_reap_id, gate, gate_id, bound_to,"
				   "       claim_owned, registered_by::pg_catalog.oid, registered_at,"
				   "       search_path%s"
				   "  FROM %s.finlive_target ORDER BY jobs::pg_catalog.oid",
				   cat->version >= 13
				   ? ", finalize_grace, claim_grace, max_running, guarded_stages, enabled, dry_run"
				   : "",
				   cat->qualified_schema);
	if (spi_as_owner(cat, sql, 0, NULL, NULL, NULL, true) != SPI_OK_SELECT)
		elog(ERROR, "could not read finlive_target");

	/* kept: a binding stored below runs SPI again */
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tuple = rows->vals[i];
		TupleDesc	desc = rows->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		Target	   *t = palloc0(sizeof(Target));
		char	   *bound_to = SPI_getvalue(tuple, desc, 8);
		bool		epoch_matches = bound_to != NULL && strcmp(bound_to, epoch) == 0;
		bool		rebound = false;
		char	   *why = NULL;
		char	   *gate_why = NULL;
		bool		on_reap_unbound;
		bool		gate_unbound;
		bool		on_reap_lost = false;
		bool		gate_lost = false;
		bool		isnull;

		t->jobs = spi_oid(tuple, desc, 1);
		t->runs = spi_oid(tuple, desc, 2);
		t->tasks = spi_oid(tuple, desc, 3);
		t->on_reap_name = SPI_getvalue(tuple, desc, 4);
		t->gate_name = SPI_getvalue(tuple, desc, 6);
		t->claim_owned = DatumGetBool(SPI_getbinval(tuple, desc, 9, &isnull));
		t->registered_by = spi_oid(tuple, desc, 10);
		t->registered_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 11, &isnull));
		t->search_path = SPI_getvalue(tuple, desc, 12);
		if (cat->version >= 13)
			read_policy(tuple, desc, 13, &t->policy);
		else
			no_policy(&t->policy);

		(void) SPI_getbinval(tuple, desc, 5, &on_reap_unbound);
		(void) SPI_getbinval(tuple, desc, 7, &gate_unbound);
		t->on_reap = resolve_hook(t->on_reap_name, on_reap_unbound, spi_oid(tuple, desc, 5),
								  epoch_matches, &on_reap_rule, &rebound, &on_reap_lost, &why);
		t->gate = resolve_hook(t->gate_name, gate_unbound, spi_oid(tuple, desc, 7),
							   epoch_matches, &gate_rule, &rebound, &gate_lost, &gate_why);
		t->unusable = why ? why : gate_why ? gate_why : target_problem(t);
		result = lappend(result, t);
		MemoryContextSwitchTo(spi);

		if (bind && (on_reap_lost || gate_lost))
			store_lost(cat, t->jobs, on_reap_lost, gate_lost);
		else if (bind && rebound && t->unusable == NULL)
			store_binding(cat, t);
	}
	return result;
}

/* The registration of jobs table "jobs" in a list from targets_load. */
Target *
targets_find(List *targets, Oid jobs)
{
	ListCell   *lc;

	foreach(lc, targets)
	{
		Target	   *t = (Target *) lfirst(lc);

		if (t->jobs == jobs)
			return t;
	}
	return NULL;
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
				 errmsg("\"%s\" is not a table", get_rel_name(relid)),
				 errdetail("The %s argument must name a table.", role)));

	/* the worker, in a session of its own, could never see it */
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a temporary table", get_rel_name(relid)),
				 errdetail("The reaper cannot see another session's temporary tables.")));

	for (rule = rules; rule->name != NULL; rule++)
	{
		AttrNumber	attnum = get_attnum(relid, rule->name);
		Oid			type;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table \"%s\" has no column \"%s\"", get_rel_name(relid), rule->name),
					 errdetail("The %s table needs column \"%s\" of type %s.",
							   role, rule->name, rule->expected)));
		type = getBaseType(get_atttype(relid, attnum));
		if (type != rule->type1 && type != rule->type2)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" has type %s",
							rule->name, get_rel_name(relid), format_type_be(type)),
					 errdetail("The %s table needs column \"%s\" of type %s.",
							   role, rule->name, rule->expected)));
	}
}

/* A hook must be a plain function with exactly these argument types. */
static void
check_hook(Oid func, const HookRule *rule)
{
	char	   *mismatch;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(func)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", func)));
	mismatch = hook_mismatch(func, rule);
	if (mismatch != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s cannot be the %s hook", format_procedure(func), rule->role),
				 errdetail_internal("%s", mismatch)));
	if (compat_proc_aclcheck(func, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
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
bool
targets_has_status_index(Oid jobs)
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

/*
 * Which role other than the registrant's own kind could put objects into
 * schema nsp: one that may CREATE there and is not the registrant, a role
 * whose privileges the registrant has, the database owner or a superuser.
 * NULL if there is none.
 */
static char *
untrusted_creator(Oid nsp, Oid registrant)
{
	HeapTuple	tuple;
	Acl		   *acl;
	bool		isnull;
	Datum		d;
	Relation	authid;
	SysScanDesc scan;
	Oid			dbowner = InvalidOid;
	char	   *found = NULL;

	/* PUBLIC first: then every role can, and naming one would mislead */
	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tuple))
		return NULL;
	d = SysCacheGetAttr(NAMESPACEOID, tuple, Anum_pg_namespace_nspacl, &isnull);
	if (!isnull)
	{
		AclItem    *items;
		int			i;

		acl = DatumGetAclP(d);
		items = ACL_DAT(acl);
		for (i = 0; i < ACL_NUM(acl); i++)
			if (items[i].ai_grantee == ACL_ID_PUBLIC &&
				(ACLITEM_GET_PRIVS(items[i]) & ACL_CREATE))
				found = pstrdup("PUBLIC");
	}
	ReleaseSysCache(tuple);
	if (found)
		return found;

	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (HeapTupleIsValid(tuple))
	{
		dbowner = ((Form_pg_database) GETSTRUCT(tuple))->datdba;
		ReleaseSysCache(tuple);
	}

	authid = table_open(AuthIdRelationId, AccessShareLock);
	scan = systable_beginscan(authid, InvalidOid, false, NULL, 0, NULL);
	while (found == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_authid role = (Form_pg_authid) GETSTRUCT(tuple);

		/*
		 * pg_database_owner's one member is the database owner.  Membership
		 * is asked without the superuser shortcut: a superuser has every
		 * role's privileges, yet a role it is not a member of must not put
		 * objects in the way of its hooks.
		 */
		if (role->rolsuper || role->oid == registrant || role->oid == dbowner ||
			role->oid == ROLE_PG_DATABASE_OWNER ||
			is_member_of_role_nosuper(registrant, role->oid))
			continue;
		if (compat_namespace_aclcheck(nsp, role->oid, ACL_CREATE) == ACLCHECK_OK)
			found = pstrdup(quote_identifier(NameStr(role->rolname)));
	}
	systable_endscan(scan);
	table_close(authid, AccessShareLock);
	return found;
}

/*
 * The hooks' search_path: the schemas the registering session's search_path
 * resolves to now (as SET search_path FROM CURRENT would keep them, with
 * "$user" and schemas that do not exist or may not be used dropped, as the
 * server drops them when it resolves the path), then pg_temp.  Refuses a
 * schema in which anyone the registrant does not trust can create objects.
 */
static char *
capture_search_path(void)
{
	char	   *rawpath = pstrdup(namespace_search_path);
	List	   *names;
	ListCell   *lc;
	StringInfoData buf;
	Oid			registrant = GetUserId();

	if (!SplitIdentifierString(rawpath, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in search_path")));
	initStringInfo(&buf);
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		Oid			nsp;
		char	   *creator;

		if (strcmp(name, "$user") == 0)
		{
			name = GetUserNameFromId(registrant, true);
			if (name == NULL)
				continue;
		}
		else if (strcmp(name, "pg_temp") == 0)
			continue;			/* appended below: the ticking session's own */
		nsp = get_namespace_oid(name, true);
		if (!OidIsValid(nsp) || isAnyTempNamespace(nsp) ||
			compat_namespace_aclcheck(nsp, registrant, ACL_USAGE) != ACLCHECK_OK)
			continue;
		creator = untrusted_creator(nsp, registrant);
		if (creator != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role %s can create objects in schema \"%s\" of the search_path",
							creator, name),
					 errdetail("The target's hooks run with the search_path of this session, and an object of %s there could take the place of one they use.",
							   creator),
					 errhint("Register it from a session whose search_path has only schemas in which no one but you, roles whose privileges you have, the database owner and superusers can create objects.")));
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", quote_identifier(name));
	}
	appendStringInfo(&buf, "%spg_temp", buf.len > 0 ? ", " : "");
	return buf.data;
}

/* Who registered this target, or InvalidOid if it is not registered. */
static Oid
registrant_of(const FinliveCatalog *cat, Oid jobs)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(jobs)};
	char	   *sql;

	sql = psprintf("SELECT registered_by::pg_catalog.oid FROM %s.finlive_target"
				   " WHERE jobs::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
				   cat->qualified_schema);
	if (spi_as_owner(cat, sql, 1, argtypes, args, NULL, true) != SPI_OK_SELECT)
		elog(ERROR, "could not read finlive_target");
	return SPI_processed > 0 ? spi_oid(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)
		: InvalidOid;
}

/*
 * Serialize the registrations of one jobs table until the end of the
 * transaction, so that two first registrations cannot both pass the
 * registrant check.
 */
static void
lock_registration(Oid jobs)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, jobs, FINLIVE_REGISTER_OBJSUBID);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
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
	targets_require_current(cat);
}

/* A duration argument of finlive_register: NULL, or not negative. */
static Datum
duration_arg(FunctionCallInfo fcinfo, int argno, const char *name, PolicyDuration *duration)
{
	Interval   *iv;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
	{
		set_duration(duration, NULL);
		return (Datum) 0;
	}
	iv = PG_GETARG_INTERVAL_P(argno);
	set_duration(duration, iv);
	if (duration->usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errdetail("finlive_register was given %s => %s.", name,
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
	return IntervalPGetDatum(iv);
}

/* Say so when no job of this target can ever be guarded. */
static void
notice_if_never_guarded(const Target *t, const Policy *p)
{
	const NameList *g = p->guarded_stages;
	bool		all = g != NULL && g->all;
	bool		none = g == NULL || g->nstages == 0;

	if (!OidIsValid(t->tasks) && !all)
		ereport(NOTICE,
				(errmsg("no job of target \"%s\" can be guarded", get_rel_name(t->jobs)),
				 errdetail("The reaper guards a job by the stage of its task (tasks.stage), and this target has no tasks table; the stage given to finlive_mark is only a label."),
				 errhint("Register a tasks table, or set guarded_stages => '{*}' to guard every job of this target.")));
	else if (OidIsValid(t->tasks) && none)
		ereport(NOTICE,
				(errmsg("no job of target \"%s\" can be guarded", get_rel_name(t->jobs)),
				 errdetail("Its guarded_stages names no stage."),
				 errhint("Name the stages whose live finalizer must not be pre-empted in guarded_stages, or finlive.guarded_stages.")));
}

/*
 * finlive_register(jobs, runs, tasks, on_reap, gate, claim_owned
 *                  [, finalize_grace, claim_grace, max_running,
 *                   guarded_stages, enabled, dry_run]) -> void
 *
 * The policy arguments exist from version 1.3 of the SQL objects.
 */
Datum
finlive_register(PG_FUNCTION_ARGS)
{
	FinliveCatalog cat;
	Target		t;
	Policy		effective;
	Datum		policy_values[6];
	bool		policy_nulls[6];
	Oid			argtypes[17];
	Datum		args[17];
	char		nulls[17];
	int			nargs;
	char	   *sql;
	int			i;

	finlive_require_ready();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("jobs, runs and claim_owned must not be null"),
				 errdetail("finlive_register was called with a null %s.",
						   PG_ARGISNULL(0) ? "jobs" : PG_ARGISNULL(1) ? "runs" : "claim_owned")));
	memset(&t, 0, sizeof(t));
	t.jobs = PG_GETARG_OID(0);
	t.runs = PG_GETARG_OID(1);
	t.tasks = PG_ARGISNULL(2) ? InvalidOid : PG_GETARG_OID(2);
	t.on_reap = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	t.gate = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);
	t.claim_owned = PG_GETARG_BOOL(5);
	t.registered_by = GetUserId();

	/* the policy, checked before anything is looked at */
	no_policy(&t.policy);
	policy_values[0] = duration_arg(fcinfo, 6, "finalize_grace", &t.policy.finalize_grace);
	policy_values[1] = duration_arg(fcinfo, 7, "claim_grace", &t.policy.claim_grace);
	policy_values[2] = duration_arg(fcinfo, 8, "max_running", &t.policy.max_running);
	policy_nulls[0] = t.policy.finalize_grace.isnull;
	policy_nulls[1] = t.policy.claim_grace.isnull;
	policy_nulls[2] = t.policy.max_running.isnull;
	policy_nulls[3] = PG_NARGS() <= 9 || PG_ARGISNULL(9);
	if (!policy_nulls[3])
	{
		ArrayType  *stages = PG_GETARG_ARRAYTYPE_P(9);

		if (ARR_NDIM(stages) > 1 || array_contains_nulls(stages))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("guarded_stages must be a one-dimensional array without nulls")));
		policy_values[3] = PointerGetDatum(stages);
		t.policy.guarded_stages = stages_from_array(stages);
	}
	policy_nulls[4] = t.policy.enabled_isnull = PG_NARGS() <= 10 || PG_ARGISNULL(10);
	if (!policy_nulls[4])
		policy_values[4] = BoolGetDatum(t.policy.enabled = PG_GETARG_BOOL(10));
	policy_nulls[5] = t.policy.dry_run_isnull = PG_NARGS() <= 11 || PG_ARGISNULL(11);
	if (!policy_nulls[5])
		policy_values[5] = BoolGetDatum(t.policy.dry_run = PG_GETARG_BOOL(11));

	/*
	 * Lock the tables so that nobody drops them while they are validated;
	 * then a dangling OID (a regclass made from a number, or a table dropped
	 * meanwhile) shows as a missing table.
	 */
	LockRelationOid(t.jobs, AccessShareLock);
	LockRelationOid(t.runs, AccessShareLock);
	if (OidIsValid(t.tasks))
		LockRelationOid(t.tasks, AccessShareLock);
	if (get_rel_name(t.jobs) == NULL || get_rel_name(t.runs) == NULL ||
		(OidIsValid(t.tasks) && get_rel_name(t.tasks) == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist",
						get_rel_name(t.jobs) == NULL ? t.jobs :
						get_rel_name(t.runs) == NULL ? t.runs : t.tasks)));

	check_columns(t.jobs, "jobs", jobs_columns);
	check_columns(t.runs, "runs", runs_columns);
	if (OidIsValid(t.tasks))
		check_columns(t.tasks, "tasks", tasks_columns);
	if (OidIsValid(t.on_reap))
		check_hook(t.on_reap, &on_reap_rule);
	if (OidIsValid(t.gate))
		check_hook(t.gate, &gate_rule);

	/* the reaper will read and update these as the registering role */
	check_table_privilege(t.jobs, ACL_SELECT);
	check_table_privilege(t.jobs, ACL_UPDATE);
	check_table_privilege(t.runs, ACL_SELECT);
	if (OidIsValid(t.tasks))
		check_table_privilege(t.tasks, ACL_SELECT);
	t.search_path = capture_search_path();

	connect_with_catalog(&cat);
	lock_registration(t.jobs);
	check_registrant(registrant_of(&cat, t.jobs), t.jobs, "replace");

	if (!targets_has_status_index(t.jobs))
		ereport(NOTICE,
				(errmsg("no index on table \"%s\" serves status = 'running'", get_rel_name(t.jobs)),
				 errdetail("Each reaper tick then reads the whole table."),
				 errhint("Create one, for example: CREATE INDEX ON %s (id) WHERE status = 'running';",
						 targets_name(t.jobs))));
	targets_effective_policy(&t, &effective);
	notice_if_never_guarded(&t, &effective);
	if (effective.max_running <= effective.finalize_grace)
		ereport(WARNING,
				(errmsg("max_running of target \"%s\" is not above its finalize_grace",
						get_rel_name(t.jobs)),
				 errdetail("The Tier-3 backstop then reaps its jobs before Tier-2 may finalize them."),
				 errhint("Give the target a max_running well above its finalize_grace.")));

	/* the row, as finlive_target's owner */
	argtypes[0] = OIDOID;
	args[0] = ObjectIdGetDatum(t.jobs);
	argtypes[1] = OIDOID;
	args[1] = ObjectIdGetDatum(t.runs);
	argtypes[2] = OIDOID;
	args[2] = ObjectIdGetDatum(t.tasks);
	argtypes[3] = TEXTOID;
	args[3] = OidIsValid(t.on_reap) ? CStringGetTextDatum(format_procedure_qualified(t.on_reap)) : (Datum) 0;
	argtypes[4] = OIDOID;
	args[4] = ObjectIdGetDatum(t.on_reap);
	argtypes[5] = TEXTOID;
	args[5] = OidIsValid(t.gate) ? CStringGetTextDatum(format_procedure_qualified(t.gate)) : (Datum) 0;
	argtypes[6] = OIDOID;
	args[6] = ObjectIdGetDatum(t.gate);
	argtypes[7] = TEXTOID;
	args[7] = CStringGetTextDatum(binding_epoch());
	argtypes[8] = BOOLOID;
	args[8] = BoolGetDatum(t.claim_owned);
	argtypes[9] = OIDOID;
	args[9] = ObjectIdGetDatum(t.registered_by);
	argtypes[10] = TEXTOID;
	args[10] = CStringGetTextDatum(t.search_path);
	memset(nulls, ' ', sizeof(nulls));
	nulls[2] = OidIsValid(t.tasks) ? ' ' : 'n';
	nulls[3] = nulls[4] = OidIsValid(t.on_reap) ? ' ' : 'n';
	nulls[5] = nulls[6] = OidIsValid(t.gate) ? ' ' : 'n';
	nargs = 11;
	if (cat.version >= 13)
	{
		static const Oid policy_types[6] = {INTERVALOID, INTERVALOID, INTERVALOID,
		TEXTARRAYOID, BOOLOID, BOOLOID};

		for (i = 0; i < 6; i++)
		{
			argtypes[nargs] = policy_types[i];
			args[nargs] = policy_values[i];
			nulls[nargs] = policy_nulls[i] ? 'n' : ' ';
			nargs++;
		}
	}
	else if (PG_NARGS() > 6)
		elog(ERROR, "finlive_register has policy arguments only from version 1.3");

	sql = psprintf("INSERT INTO %s.finlive_target AS t"
				   " (jobs, runs, tasks, on_reap, on_reap_id, gate, gate_id, bound_to,"
				   "  claim_owned, registered_by, search_path%s)"
				   " VALUES ($1::pg_catalog.regclass, $2::pg_catalog.regclass,"
				   "  $3::pg_catalog.regclass, $4, $5, $6, $7, $8, $9, $10::pg_catalog.regrole,"
				   "  $11%s)"
				   " ON CONFLICT (jobs) DO UPDATE SET runs = excluded.runs, tasks = excluded.tasks,"
				   "  on_reap = excluded.on_reap, on_reap_id = excluded.on_reap_id,"
				   "  gate = excluded.gate, gate_id = excluded.gate_id, bound_to = excluded.bound_to,"
				   "  claim_owned = excluded.claim_owned, registered_by = excluded.registered_by,"
				   "  search_path = excluded.search_path, registered_at = pg_catalog.now()%s",
				   cat.qualified_schema,
				   nargs > 11 ? ", finalize_grace, claim_grace, max_running, guarded_stages,"
				   " enabled, dry_run" : "",
				   nargs > 11 ? ", $12, $13, $14, $15, $16, $17" : "",
				   nargs > 11 ? ", finalize_grace = excluded.finalize_grace,"
				   " claim_grace = excluded.claim_grace, max_running = excluded.max_running,"
				   " guarded_stages = excluded.guarded_stages, enabled = excluded.enabled,"
				   " dry_run = excluded.dry_run" : "");
	if (spi_as_owner(&cat, sql, nargs, argtypes, args, nulls, false) != SPI_OK_INSERT)
		elog(ERROR, "could not write finlive_target");
	SPI_finish();
	failures_forget_target(t.jobs);
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
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(jobs)};
	char	   *sql;

	finlive_require_ready();
	connect_with_catalog(&cat);
	lock_registration(jobs);
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
	if (spi_as_owner(&cat, sql, 1, argtypes, args, NULL, false) != SPI_OK_DELETE)
		elog(ERROR, "could not write finlive_target");
	SPI_finish();
	failures_forget_target(jobs);
	PG_RETURN_BOOL(true);
}
