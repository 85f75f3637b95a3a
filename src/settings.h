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
 * A parsed list of names: finlive.guarded_stages or a target's own
 * guarded_stages (where "*" guards every job), or finlive.database (where
 * "*" is every database).
 */
typedef struct NameList
{
	bool		all;			/* "*" was listed */
	int			nstages;
	char		stages[FLEXIBLE_ARRAY_MEMBER];	/* NUL-separated names */
} NameList;

extern void settings_define(void);
extern const NameList *settings_guarded_stages(void);
extern NameList *name_list_build(char **names, int n);
extern bool name_list_match(const NameList *list, const char *stage);
extern bool settings_reap_all_databases(void);
extern bool settings_database_listed(const char *dbname);
extern const NameList *settings_database_list(void);
extern bool settings_fault_injected(const char *point);

#endif							/* FINLIVE_SETTINGS_H */
