/*-------------------------------------------------------------------------
 *
 * dbevents.h
 *	  What finlive does when a session creates, drops, renames or copies a
 *	  database, or installs or drops the extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_DBEVENTS_H
#define FINLIVE_DBEVENTS_H

extern void dbevents_install(void);

#endif							/* FINLIVE_DBEVENTS_H */
