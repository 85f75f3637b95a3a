/*-------------------------------------------------------------------------
 *
 * sandbox.h
 *	  Running queries and application code as another role, so that
 *	  nothing of one role changes what another role's session does.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_SANDBOX_H
#define FINLIVE_SANDBOX_H

#include "utils/elog.h"

/*
 * The search_path of finlive's own queries: nothing outside pg_catalog can
 * be resolved (the temporary schema is never searched for functions or
 * operators, and every table finlive names is schema-qualified).
 */
#define FINLIVE_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

/* What sandbox_enter() changed, for sandbox_leave(). */
typedef struct Sandbox
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
} Sandbox;

extern void sandbox_enter(Oid role, const char *search_path, Sandbox *sb);
extern void sandbox_leave(Sandbox *sb);

extern void sandbox_run_app(const char *search_path, const char *what,
							void (*code) (void *), void *arg);
extern bool sandbox_try(void (*code) (void *), void *arg, bool keep, ErrorData **error);
extern bool sandbox_is_interrupt(const ErrorData *edata);
extern void sandbox_release_session_locks(void);

#endif							/* FINLIVE_SANDBOX_H */
