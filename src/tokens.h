/*-------------------------------------------------------------------------
 *
 * tokens.h
 *	  Fencing tokens that strictly increase across the cluster's lifetime.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FINLIVE_TOKENS_H
#define FINLIVE_TOKENS_H

#include "datatype/timestamp.h"

extern Size tokens_shmem_size(void);
extern void tokens_shmem_request(void);
extern void tokens_shmem_init(void);
extern int64 tokens_next(TimestampTz now);

#endif							/* FINLIVE_TOKENS_H */
