/*-------------------------------------------------------------------------
 *
 * finlive.h
 *	  Declarations shared by finlive's SQL-callable functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_H
#define FINLIVE_H

/* The library's version, shown by PostgreSQL 18's pg_get_loaded_modules(). */
#define FINLIVE_LIBRARY_VERSION		"1.3.0"

extern void finlive_require_ready(void);

#endif							/* FINLIVE_H */
