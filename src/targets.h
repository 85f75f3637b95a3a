/*-------------------------------------------------------------------------
 *
 * targets.h
 *	  Registered reaper targets: the application tables finlive reaps, the
 *	  hooks it calls, and the policy it reaps them by.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_TARGETS_H
#define FINLIVE_TARGETS_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "settings.h"

/* Where the extension's own objects are, found once per tick or call. */
typedef struct FinliveCatalog
{
	Oid			schema;			/* the extension's schema */
	Oid			owner;			/* owner of finlive's internal tables */
	char	   *qualified_schema;	/* quoted, for building SQL */
	int			version;		/* installed SQL version: 10 for 1.0, ... */
} FinliveCatalog;

/* The oldest installed SQL version this library reaps and registers with. */
#define FINLIVE_MIN_SQL_VERSION		12

/*
 * A target's own policy, as registered: each value with its "is NULL" flag;
 * NULL means the server setting of the same name.  Durations in
 * microseconds.
 */
typedef struct PolicyDuration
{
	bool		isnull;
	int64		usecs;
	Interval	as_registered;	/* for display: '1 day' stays '1 day' */
} PolicyDuration;

typedef struct TargetPolicy
{
	PolicyDuration finalize_grace;
	PolicyDuration claim_grace;
	PolicyDuration max_running;
	NameList *guarded_stages;	/* NULL: the server's list */
	bool		enabled_isnull;
	bool		enabled;
	bool		dry_run_isnull;
	bool		dry_run;
} TargetPolicy;

/* The policy the reaper applies to a target now: its own, else the server's. */
typedef struct Policy
{
	int64		finalize_grace;
	int64		claim_grace;
	int64		max_running;
	const NameList *guarded_stages;
	bool		enabled;		/* finlive.enabled AND the target's */
	bool		dry_run;		/* finlive.dry_run OR the target's */
} Policy;

/* One registration, as read from finlive_target. */
typedef struct Target
{
	Oid			jobs;
	Oid			runs;
	Oid			tasks;			/* InvalidOid: no tasks table */
	char	   *on_reap_name;	/* signature as registered, NULL if none */
	Oid			on_reap;		/* the very function registered */
	char	   *gate_name;
	Oid			gate;
	bool		claim_owned;
	Oid			registered_by;
	TimestampTz registered_at;
	char	   *search_path;	/* the hooks' search_path */
	TargetPolicy policy;
	char	   *unusable;		/* why it cannot be reaped now, or NULL */
} Target;

extern bool targets_catalog(FinliveCatalog *cat);
extern void targets_require_current(const FinliveCatalog *cat);
extern List *targets_load(const FinliveCatalog *cat, bool bind);
extern Target *targets_find(List *targets, Oid jobs);
extern void targets_effective_policy(const Target *t, Policy *p);
extern char *targets_name(Oid relid);
extern char *targets_display_name(Oid relid);
extern bool targets_tables_exist(const Target *t);
extern bool targets_has_status_index(Oid jobs);

#endif							/* FINLIVE_TARGETS_H */
