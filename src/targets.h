/*-------------------------------------------------------------------------
 *
 * targets.h
 *	  Registered reaper targets: the application tables finlive reaps.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_TARGETS_H
#define FINLIVE_TARGETS_H

#include "nodes/pg_list.h"

/* Where the extension's own objects are, found once per tick or call. */
typedef struct FinliveCatalog
{
	Oid			schema;			/* the extension's schema */
	Oid			owner;			/* owner of finlive's internal tables */
	char	   *qualified_schema;	/* quoted, for building SQL */
} FinliveCatalog;

/* One registration, as read from finlive_target. */
typedef struct Target
{
	Oid			jobs;
	Oid			runs;
	Oid			tasks;			/* InvalidOid: no tasks table */
	char	   *on_reap_name;	/* stored signature, NULL if none */
	Oid			on_reap;		/* resolved now; InvalidOid if gone */
	char	   *gate_name;
	Oid			gate;
	bool		claim_owned;
	Oid			registered_by;
} Target;

/* What targets_become() changed, for targets_restore(). */
typedef struct RoleSwitch
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
} RoleSwitch;

extern bool targets_catalog(FinliveCatalog *cat);
extern List *targets_load(const FinliveCatalog *cat);
extern void targets_become(Oid role, RoleSwitch *sw);
extern void targets_restore(RoleSwitch *sw);

#endif							/* FINLIVE_TARGETS_H */
