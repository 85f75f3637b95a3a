/*-------------------------------------------------------------------------
 *
 * tokens.c
 *	  Fencing tokens: strictly increasing over every first mark in the
 *	  cluster, across restarts, crash restarts and failovers.
 *
 * A token is a hybrid logical clock: max(previous token + 1, now in
 * microseconds since 2000-01-01).  The clock part keeps tokens of a promoted
 * standby above those its old primary handed out (as long as the clocks
 * agree); the counter part keeps them strictly increasing however fast
 * marks arrive.
 *
 * A clock that steps backwards across a restart must not let a token repeat,
 * so the high-water mark is persisted: before any token above the reserved
 * mark is handed out, the reservation is moved RESERVE_AHEAD microseconds
 * further and written durably to $PGDATA/finlive.token.  At start the
 * counter resumes above the reservation.  With the clock part advancing a
 * microsecond per microsecond, that is at most one small fsync'd write per
 * RESERVE_AHEAD of wall-clock time under marking load.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "tokens.h"

#define TOKEN_FILE			"finlive.token"
#define TOKEN_FILE_TMP		"finlive.token.tmp"
#define RESERVE_AHEAD		INT64CONST(60000000)	/* 60 s of clock */

typedef struct TokenState
{
	pg_atomic_uint64 last;		/* last token handed out */
	pg_atomic_uint64 reserved;	/* durable high-water mark */
	LWLock	   *lock;			/* serializes writers of TOKEN_FILE */
} TokenState;

static TokenState *token_state = NULL;

Size
tokens_shmem_size(void)
{
	return MAXALIGN(sizeof(TokenState));
}

void
tokens_shmem_request(void)
{
	RequestAddinShmemSpace(tokens_shmem_size());
	RequestNamedLWLockTranche("finlive_tokens", 1);
}

/* Remove a token file that could not be read, so that a new one can be written. */
static void
remove_damaged_file(void)
{
	if (unlink(TOKEN_FILE) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", TOKEN_FILE)));
}

/*
 * Read the persisted reservation; 0 when there is none yet.  A file that
 * exists but cannot be read or parsed is reported and removed (else the
 * next reservation, which replaces it with durable_rename(), would fail to
 * fsync it, and so would every first mark), and tokens go on from the
 * clock: still increasing, unless the clock has also stepped back.
 */
static uint64
read_reservation(void)
{
	FILE	   *file;
	char		buf[32];
	char	   *end;
	uint64		value = 0;

	file = AllocateFile(TOKEN_FILE, "r");
	if (file == NULL)
	{
		if (errno != ENOENT)
		{
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", TOKEN_FILE),
					 errdetail("Fencing tokens continue from the clock; they stay increasing unless the clock has also stepped back.")));
			remove_damaged_file();
		}
		return 0;
	}
	if (fgets(buf, sizeof(buf), file) == NULL ||
		(value = strtou64(buf, &end, 10)) == 0 || (*end != '\n' && *end != '\0'))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("file \"%s\" does not hold a fencing token", TOKEN_FILE),
				 errdetail("Fencing tokens continue from the clock; they stay increasing unless the clock has also stepped back.")));
		value = 0;
	}
	FreeFile(file);
	if (value == 0)
		remove_damaged_file();
	return value;
}

/* The clock part of a token: microseconds since 2000, never below 1. */
static uint64
clock_part(TimestampTz now)
{
	return now > 0 ? (uint64) now : 1;
}

/*
 * Called in the postmaster's shmem startup (and again after a crash
 * restart, which re-creates shared memory): resume above the reservation.
 */
void
tokens_shmem_init(void)
{
	bool		found;
	uint64		reserved;
	uint64		now = clock_part(GetCurrentTimestamp());

	token_state = ShmemInitStruct("finlive tokens", sizeof(TokenState), &found);
	if (found)
		return;
	reserved = read_reservation();
	pg_atomic_init_u64(&token_state->last, Max(reserved, now));
	pg_atomic_init_u64(&token_state->reserved, reserved);
	token_state->lock = &(GetNamedLWLockTranche("finlive_tokens"))->lock;
}

/* Durably move the reservation past "token". */
static void
reserve_through(uint64 token)
{
	LWLockAcquire(token_state->lock, LW_EXCLUSIVE);
	if (token > pg_atomic_read_u64(&token_state->reserved))
	{
		uint64		upto = token + RESERVE_AHEAD;
		char		buf[32];
		int			len;
		int			fd;

		len = snprintf(buf, sizeof(buf), UINT64_FORMAT "\n", upto);
		fd = OpenTransientFile(TOKEN_FILE_TMP, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", TOKEN_FILE_TMP)));
		errno = 0;
		if (write(fd, buf, len) != len)
		{
			if (errno == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", TOKEN_FILE_TMP)));
		}
		if (CloseTransientFile(fd) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not close file \"%s\": %m", TOKEN_FILE_TMP)));
		/* fsyncs the file and the directory */
		durable_rename(TOKEN_FILE_TMP, TOKEN_FILE, ERROR);
		pg_atomic_write_u64(&token_state->reserved, upto);
	}
	LWLockRelease(token_state->lock);
}

/*
 * Hand out the next token.  Lock-free in the common case: one CAS on the
 * counter and one read of the reservation.
 */
int64
tokens_next(TimestampTz now)
{
	uint64		cur = pg_atomic_read_u64(&token_state->last);
	uint64		next;

	for (;;)
	{
		next = Max(cur + 1, clock_part(now));
		if (pg_atomic_compare_exchange_u64(&token_state->last, &cur, next))
			break;
	}
	if (next > pg_atomic_read_u64(&token_state->reserved))
		reserve_through(next);
	return (int64) next;
}
