/*-------------------------------------------------------------------------
 *
 * dbevents.c
 *	  What finlive does when a session creates, drops, renames or copies a
 *	  database, or installs or drops the extension.
 *
 * A ProcessUtility hook, in every backend (the library is preloaded):
 *
 *	- DROP DATABASE, ALTER DATABASE RENAME or SET TABLESPACE, and CREATE
 *	  DATABASE from a template all need their database free of other
 *	  sessions.  Before such a command runs, by a role that may run it, the
 *	  database is put on hold and its reaper evicted, the way the server
 *	  signals autovacuum workers, so the command never waits for (or fails
 *	  because of) a reaper; the hold is lifted when the command ends.
 *	- CREATE EXTENSION finlive, once committed, tells the launcher, which
 *	  starts a reaper in that database at once; DROP EXTENSION finlive, once
 *	  committed, wakes the database's reaper, which then leaves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/memutils.h"

#include "compat.h"
#include "dbevents.h"
#include "reapers.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/*
 * What this transaction did, acted on when it ends: the extension
 * installed or dropped here (at commit), and the database it put on hold
 * (lifted at commit or abort, once the command's effect is visible: so the
 * launcher never starts a reaper in a database just dropped).
 */
static bool installed_in_xact = false;
static bool dropped_in_xact = false;
static List *held_in_xact = NIL;	/* in TopMemoryContext */
static bool xact_callback_registered = false;

static void
dbevents_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
	{
		if (installed_in_xact)
			reapers_note_installed(MyDatabaseId);
		if (dropped_in_xact)
			reapers_wake(MyDatabaseId);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		ListCell   *lc;

		foreach(lc, held_in_xact)
			reapers_release_hold(lfirst_oid(lc));
		list_free(held_in_xact);
		held_in_xact = NIL;
		installed_in_xact = dropped_in_xact = false;
	}
}

static void
register_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(dbevents_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

static void
note_extension_event(bool *flag)
{
	register_callback();
	*flag = true;
}

static bool
names_finlive(List *objects)
{
	ListCell   *lc;

	foreach(lc, objects)
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), "finlive") == 0)
			return true;
	return false;
}

static bool
has_option(List *options, const char *name, char **value)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, name) == 0)
		{
			if (value)
				*value = opt->arg ? defGetString(opt) : NULL;
			return true;
		}
	}
	return false;
}

/*
 * The database this command needs free of other sessions, if any, and if
 * the current role may run the command on it (no one else may evict a
 * reaper).
 */
static Oid
database_to_free(Node *parsetree)
{
	char	   *dbname = NULL;
	Oid			dboid;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				dbname = ((RenameStmt *) parsetree)->subname;
			break;
		case T_AlterDatabaseStmt:
			if (has_option(((AlterDatabaseStmt *) parsetree)->options, "tablespace", NULL))
				dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
			break;
		case T_CreatedbStmt:
			if (!has_option(((CreatedbStmt *) parsetree)->options, "template", &dbname) ||
				dbname == NULL)
				dbname = "template1";
			break;
		default:
			break;
	}
	if (dbname == NULL)
		return InvalidOid;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid) || !compat_database_ownercheck(dboid, GetUserId()))
		return InvalidOid;
	return dboid;
}

static void
dbevents_process_utility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			hold = database_to_free(parsetree);

	if (IsA(parsetree, CreateExtensionStmt) &&
		strcmp(((CreateExtensionStmt *) parsetree)->extname, "finlive") == 0)
		note_extension_event(&installed_in_xact);
	if (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION &&
		names_finlive(((DropStmt *) parsetree)->objects))
		note_extension_event(&dropped_in_xact);

	if (OidIsValid(hold))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		register_callback();
		reapers_hold_and_evict(hold);
		held_in_xact = lappend_oid(held_in_xact, hold);
		MemoryContextSwitchTo(old);
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* a database copied from one with finlive may have it too */
	if (IsA(parsetree, CreatedbStmt))
	{
		Oid			created = get_database_oid(((CreatedbStmt *) parsetree)->dbname, true);

		if (OidIsValid(created))
			reapers_note_installed(created);
	}
}

void
dbevents_install(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = dbevents_process_utility;
}
