/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  finlive's configuration parameters (GUCs).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_SETTINGS_H
#define FINLIVE_SETTINGS_H

extern bool finlive_enabled;
extern int	finlive_finalize_grace;
extern int	finlive_max_running;
extern int	finlive_claim_grace;
extern char *finlive_guarded_stages;
extern bool finlive_dry_run;
extern int	finlive_restart_grace;
extern int	finlive_log_retention;
extern int	finlive_naptime;
extern bool finlive_reaper_on;
extern char *finlive_database;
extern int	finlive_max_owners;
extern int	finlive_hook_timeout;

/*
 * A parsed list of guarded stages: finlive.guarded_stages, or a target's
 * own guarded_stages.  "*" guards every job.
 */
typedef struct GuardedStages
{
	bool		all;			/* "*" was listed */
	int			nstages;
	char		stages[FLEXIBLE_ARRAY_MEMBER];	/* NUL-separated names */
} GuardedStages;

extern void settings_define(void);
extern const GuardedStages *settings_guarded_stages(void);
extern GuardedStages *guarded_stages_build(char **names, int n);
extern bool guarded_stages_match(const GuardedStages *list, const char *stage);
extern bool settings_reap_all_databases(void);
extern bool settings_database_listed(const char *dbname);
extern const GuardedStages *settings_database_list(void);
extern bool settings_fault_injected(const char *point);

#endif							/* FINLIVE_SETTINGS_H */
