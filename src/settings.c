/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Definition of finlive's configuration parameters.
 *
 * Every parameter is defined in every process that loads the library, so a
 * superuser session can SET the reaper's settings before calling
 * finlive_reap_once(), exactly as the worker reads them from the server
 * configuration.  finlive.guarded_stages is parsed once, when it is set,
 * into a list the reaper consults per job.
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

/*
 * Parsed form of finlive.guarded_stages, built by the check hook and
 * installed by the assign hook (the GUC machinery owns the "extra" memory).
 */
typedef struct GuardedStages
{
	bool		all;			/* "*" was listed: every job is guarded */
	int			nstages;
	char		stages[FLEXIBLE_ARRAY_MEMBER];	/* NUL-separated names */
} GuardedStages;

static GuardedStages *guarded = NULL;

static bool
check_guarded_stages(char **newval, void **extra, GucSource source)
{
	char	   *rawcopy = pstrdup(*newval);
	List	   *items;
	ListCell   *lc;
	Size		len = offsetof(GuardedStages, stages);
	GuardedStages *parsed;
	char	   *p;

	if (!SplitGUCList(rawcopy, ',', &items))
	{
		GUC_check_errdetail("List syntax is invalid.");
		pfree(rawcopy);
		list_free(items);
		return false;
	}
	foreach(lc, items)
		len += strlen((char *) lfirst(lc)) + 1;

	parsed = (GuardedStages *) malloc(len);
	if (parsed == NULL)
		return false;
	parsed->all = false;
	parsed->nstages = 0;
	p = parsed->stages;
	foreach(lc, items)
	{
		const char *item = (const char *) lfirst(lc);

		if (strcmp(item, "*") == 0)
			parsed->all = true;
		strcpy(p, item);
		p += strlen(item) + 1;
		parsed->nstages++;
	}
	pfree(rawcopy);
	list_free(items);
	*extra = parsed;
	return true;
}

static void
assign_guarded_stages(const char *newval, void *extra)
{
	guarded = (GuardedStages *) extra;
}

/*
 * Is a job in this stage guarded against pre-emption?  A NULL stage (no
 * task, or a target without a tasks table) is guarded only by "*".
 */
bool
settings_stage_is_guarded(const char *stage)
{
	const char *p;
	int			i;

	if (guarded == NULL)
		return false;
	if (guarded->all)
		return true;
	if (stage == NULL)
		return false;
	p = guarded->stages;
	for (i = 0; i < guarded->nstages; i++)
	{
		if (strcmp(p, stage) == 0)
			return true;
		p += strlen(p) + 1;
	}
	return false;
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
							   check_guarded_stages, assign_guarded_stages, NULL);

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

	/*
	 * Restart-only settings can only be defined while the postmaster loads
	 * the library; in a session that loaded finlive without the preload they
	 * would be fatal, and mean nothing there anyway.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("finlive.database",
								   "Database the background worker reaps.",
								   NULL,
								   &finlive_database, "postgres",
								   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

		DefineCustomIntVariable("finlive.max_owners",
								"Capacity of the shared ownership registry.",
								NULL,
								&finlive_max_owners, 10000, 1, INT_MAX / 64,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("finlive");
}
