/*-------------------------------------------------------------------------
 *
 * finlive.h
 *	  Declarations shared by finlive's SQL-callable functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_H
#define FINLIVE_H

extern void finlive_require_preload(void);

#endif							/* FINLIVE_H */
