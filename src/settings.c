/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Definition of finlive's configuration parameters.
 *
 * Every parameter is defined in every process that loads the library, so a
 * superuser session can SET the reaper's settings before calling
 * finlive_reap_once(), exactly as the worker reads them from the server
 * configuration.  The list settings (finlive.guarded_stages and
 * finlive.database) are parsed once, when they are set, into a NameList
 * the reaper and the launcher consult.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "compat.h"
#include "settings.h"

bool		finlive_enabled = true;
int			finlive_finalize_grace = 300;
int			finlive_max_running = 5400;
int			finlive_claim_grace = 30;
char	   *finlive_guarded_stages = NULL;
bool		finlive_dry_run = false;
int			finlive_restart_grace = 60;
int			finlive_log_retention = 604800;
int			finlive_naptime = 10000;
bool		finlive_reaper_on = true;
char	   *finlive_database = NULL;
int			finlive_max_owners = 10000;
int			finlive_hook_timeout = 30000;
static char *finlive_fault_injection = NULL;

/*
 * Parsed forms of the list settings, built by their check hooks and
 * installed by their assign hooks (the GUC machinery owns the "extra"
 * memory).  A database list uses the same layout: "*" is "all".
 */
static NameList *guarded = NULL;
static NameList *databases = NULL;

/* Lay out n names as a NameList, in memory from alloc (NULL: palloc). */
static NameList *
build_list(char **names, int n, void *(*alloc) (Size))
{
	Size		len = offsetof(NameList, stages);
	NameList *list;
	char	   *p;
	int			i;

	for (i = 0; i < n; i++)
		len += strlen(names[i]) + 1;
	list = alloc ? alloc(len) : palloc(len);
	if (list == NULL)
		return NULL;
	list->all = false;
	list->nstages = n;
	p = list->stages;
	for (i = 0; i < n; i++)
	{
		if (strcmp(names[i], "*") == 0)
			list->all = true;
		strcpy(p, names[i]);
		p += strlen(names[i]) + 1;
	}
	return list;
}

/* A target's own guarded_stages, palloc'd. */
NameList *
name_list_build(char **names, int n)
{
	return build_list(names, n, NULL);
}

/* Is a job in this stage guarded by this list?  NULL stage: only by "*". */
bool
name_list_match(const NameList *list, const char *stage)
{
	const char *p;
	int			i;

	if (list == NULL)
		return false;
	if (list->all)
		return true;
	if (stage == NULL)
		return false;
	p = list->stages;
	for (i = 0; i < list->nstages; i++)
	{
		if (strcmp(p, stage) == 0)
			return true;
		p += strlen(p) + 1;
	}
	return false;
}

/* The check hook of both list settings: a comma list, names may be quoted. */
static bool
check_name_list(char **newval, void **extra, GucSource source)
{
	char	   *rawcopy = pstrdup(*newval);
	List	   *items;
	ListCell   *lc;
	char	  **names;
	int			n = 0;

	if (!SplitGUCList(rawcopy, ',', &items))
	{
		GUC_check_errdetail("List syntax is invalid.");
		pfree(rawcopy);
		list_free(items);
		return false;
	}
	names = palloc(sizeof(char *) * Max(list_length(items), 1));
	foreach(lc, items)
		names[n++] = (char *) lfirst(lc);
	*extra = build_list(names, n, compat_guc_extra_alloc);
	pfree(names);
	pfree(rawcopy);
	list_free(items);
	return *extra != NULL;
}

static void
assign_guarded_stages(const char *newval, void *extra)
{
	guarded = (NameList *) extra;
}

static void
assign_database(const char *newval, void *extra)
{
	databases = (NameList *) extra;
}

/* finlive.guarded_stages, parsed. */
const NameList *
settings_guarded_stages(void)
{
	return guarded;
}

/* finlive.database = '*': every database with the extension is reaped. */
bool
settings_reap_all_databases(void)
{
	return databases == NULL || databases->all;
}

/* Does finlive.database name this database (or is it '*')? */
bool
settings_database_listed(const char *dbname)
{
	return settings_reap_all_databases() || name_list_match(databases, dbname);
}

/* finlive.database as a list of names (NULL or "all" under '*'). */
const NameList *
settings_database_list(void)
{
	return databases;
}

/*
 * Is this fault injection point switched on?  finlive.fault_injection is a
 * hidden, superuser-only setting for finlive's own tests.
 */
bool
settings_fault_injected(const char *point)
{
	return finlive_fault_injection != NULL && finlive_fault_injection[0] != '\0' &&
		strcmp(finlive_fault_injection, point) == 0;
}

/*
 * Define every finlive.* parameter.  Called from _PG_init in every process
 * that loads the library, preloaded or not.
 */
void
settings_define(void)
{
	DefineCustomBoolVariable("finlive.enabled",
							 "Lets the reaper respect live finalizers (the kill-switch).",
							 "When off, the reaper ignores ownership completely: no defers and no Tier-1 reaps.",
							 &finlive_enabled, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.finalize_grace",
							"Time after a run finished before Tier-2 treats its finalization as lost.",
							NULL,
							&finlive_finalize_grace, 300, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.max_running",
							"Time after which the Tier-3 backstop reaps a running job, whatever its ownership.",
							NULL,
							&finlive_max_running, 5400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.claim_grace",
							"Time after started_at before Tier-1 may reap an unowned job.",
							NULL,
							&finlive_claim_grace, 30, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomStringVariable("finlive.guarded_stages",
							   "Comma-separated stages whose live finalizer the reaper must not pre-empt.",
							   "\"*\" guards every job.",
							   &finlive_guarded_stages, "deploy-staging",
							   PGC_SUSET, GUC_LIST_INPUT,
							   check_name_list, assign_guarded_stages, NULL);

	DefineCustomBoolVariable("finlive.dry_run",
							 "Makes the reaper decide and log without changing any job.",
							 NULL,
							 &finlive_dry_run, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.restart_grace",
							"Time after start or promotion during which no reap may depend on absent ownership.",
							NULL,
							&finlive_restart_grace, 60, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.log_retention",
							"Age after which the worker deletes finlive_reap_log rows.",
							NULL,
							&finlive_log_retention, 604800, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.naptime",
							"Interval between the worker's ticks.",
							NULL,
							&finlive_naptime, 10000, 10, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("finlive.reaper",
							 "Lets the background worker tick (off pauses it).",
							 NULL,
							 &finlive_reaper_on, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("finlive.hook_timeout",
							"Longest time one on_reap or gate call, or the update whose triggers it fires, may run.",
							"0 means no limit.",
							&finlive_hook_timeout, 30000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("finlive.database",
							   "Databases the reaper works in.",
							   "\"*\" reaps every database in which the extension is installed; otherwise a comma-separated list of database names.",
							   &finlive_database, "*",
							   PGC_SIGHUP, GUC_LIST_INPUT | GUC_SUPERUSER_ONLY,
							   check_name_list, assign_database, NULL);

	DefineCustomStringVariable("finlive.fault_injection",
							   "Switches on a fault injection point, for finlive's own tests.",
							   NULL,
							   &finlive_fault_injection, "",
							   PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	/*
	 * A restart-only setting can only be defined while the postmaster loads
	 * the library; in a session that loaded finlive without the preload it
	 * would be fatal, and mean nothing there anyway.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("finlive.max_owners",
								"Capacity of the shared ownership registry.",
								NULL,
								&finlive_max_owners, 10000, 1, INT_MAX / 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("finlive");
}
