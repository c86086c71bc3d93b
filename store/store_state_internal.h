/*
 * The memory store's stream registry on disk: one SQLite database,
 * DIR/registry.db, so that streams created, re-keyed or deleted through the
 * admin API survive a restart or a crash (kill -9, power loss) of a
 * single-node sluice. It holds what the registry holds, never a key in
 * clear: id, display name, SHA-256 of the key, creation time, the `record`
 * override, the stream's own ladder and simulcast outputs, and for a stream from the configuration (--stream) the hash of
 * the key the configuration gave it last (seed_hash), so that a restart can
 * tell an API rotation (kept) from a changed configuration (applied).
 *
 * Every change is one SQLite transaction, committed and synced to disk
 * (WAL, synchronous=FULL) before the call returns. The database is opened
 * in exclusive locking mode: a second process on the same directory gets a
 * clear error instead of overwriting the first one's rows.
 *
 * Threads: a store_state_t is not locked here; the memory store calls it
 * under its registry write lock. Used by store/store_memory.c only.
 */
#ifndef SLUICE_STORE_STORE_STATE_INTERNAL_H
#define SLUICE_STORE_STORE_STATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_STATE_FILE "registry.db"

typedef struct store_state store_state_t;

/* One stream of the registry as it is stored. */
typedef struct store_state_row {
    char id[STORE_ID_MAX];
    char name[STORE_NAME_LEN_MAX];
    uint8_t key_hash[32];
    int64_t created_ms;    /* 0: unknown (seeded) */
    int record;            /* STORE_RECORD_DEFAULT, _OFF, _ON */
    char ladder[STORE_LADDER_MAX]; /* the stream's own ladder (opaque text); "": none */
    char *outputs;         /* the stream's simulcast outputs (opaque text); NULL or "": none.
                            * Rows from store_state_load own it (store_state_rows_free);
                            * store_state_put only reads it. */
    bool seeded;           /* from the configuration: seed_hash is set */
    uint8_t seed_hash[32]; /* the key hash the configuration gave it last */
} store_state_row_t;

/* Opens (creating it and the directory itself if missing, not its parents)
 * DIR/registry.db, creates the schema and takes the database's write lock.
 * 0, or a negative errno with a sentence saying why in why[] (the path and
 * the cause): -EACCES/-ENOENT/-ENOTDIR for the directory, -EBUSY when
 * another process holds the database, -EIO for SQLite's other errors
 * (a corrupt file, a full disk), -EPROTO for a schema newer than this
 * build's. */
int store_state_open(const char *dir, store_state_t **out, char *why, size_t whylen)
    __attribute__((warn_unused_result));
/* NULL does nothing. */
void store_state_close(store_state_t *ss);
/* The database file's path, for logs. */
const char *store_state_path(const store_state_t *ss);

/* Every stored stream in a malloc'd array the caller frees (*rows = NULL
 * when there are none). Rows that fail validation (an invalid id, a hash
 * that is not 32 bytes) are skipped with a warning. 0 or -EIO. */
int store_state_load(store_state_t *ss, store_state_row_t **rows, size_t *n)
    __attribute__((warn_unused_result));
/* Frees rows from store_state_load and the outputs text they own. NULL
 * does nothing. */
void store_state_rows_free(store_state_row_t *rows, size_t n);
/* Inserts the stream, or updates every field of the stream with its id;
 * durable when it returns 0. -EIO (logged) when it could not be written:
 * nothing changed on disk. */
int store_state_put(store_state_t *ss, const store_state_row_t *row)
    __attribute__((warn_unused_result));
/* Removes the stream (0 also when it was not there); -EIO as put. */
int store_state_remove(store_state_t *ss, const char *id) __attribute__((warn_unused_result));

/* What a --stream ID:KEY seed does to a registry that may already hold ID
 * (the pure rule, kept apart so it is unit-tested):
 *   STORE_SEED_ADD    ID is not there: add it with the key;
 *   STORE_SEED_KEEP   ID has this key, or had it from the configuration
 *                     before and was re-keyed through the API since (the
 *                     configuration is unchanged: the rotation stands, a
 *                     leaked key is not brought back by a restart);
 *   STORE_SEED_REKEY  ID has another key and the configuration's key is new
 *                     (changed in the file, or the stream was created
 *                     through the API): the configuration's key replaces it.
 * have: ID is in the registry; cur: its key hash; seeded/seed: the key hash
 * the configuration gave it last; key: the seed's key hash. */
typedef enum store_seed_action {
    STORE_SEED_ADD = 1,
    STORE_SEED_KEEP,
    STORE_SEED_REKEY,
} store_seed_action_t;
store_seed_action_t store_seed_decide(bool have, const uint8_t cur[32], bool seeded,
                                      const uint8_t seed[32], const uint8_t key[32]);

#endif
