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

extern void settings_define(void);
extern bool settings_stage_is_guarded(const char *stage);

#endif							/* FINLIVE_SETTINGS_H */
