/*
 * The memory store's registry on disk (store_state_internal.h): a single SQLite
 * table, one row per stream, written one transaction per change.
 *
 * Why SQLite rather than a file rewritten by rename: it gives atomic,
 * durable single-row changes without rewriting the whole registry on every
 * API call, survives a crash in the middle of a write (the WAL is replayed
 * or discarded on the next open), and refuses a second writer.
 *
 * Durability: journal_mode=WAL with synchronous=FULL syncs the WAL at every
 * commit, so a change that was answered is on disk even after a power cut.
 * locking_mode=EXCLUSIVE keeps the lock from the first transaction (taken in
 * store_state_open) until close, and needs no shared-memory file.
 *
 * Schema (user_version 3):
 *   streams(id TEXT PRIMARY KEY, name TEXT, key_hash BLOB UNIQUE (32 bytes,
 *           SHA-256), created_ms INTEGER, record INTEGER (-1, 0, 1),
 *           seed_hash BLOB NULL (32 bytes: the key the configuration gave it
 *           last; NULL for a stream made through the API),
 *           ladder TEXT ('' : none; the stream's own ladder, added in 2),
 *           outputs TEXT ('' : none; the stream's simulcast outputs, opaque
 *           text of output/output_def.c, added in 3))
 * An older database gets the columns it lacks (ALTER TABLE) when opened.
 *
 * Threads: none of its own; callers serialize (the memory store holds its
 * registry write lock). The connection is opened FULLMUTEX anyway.
 */
#include "store_state_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "log.h"

#define STATE_LOG "store"
#define STATE_SCHEMA_VERSION 3
/* A second process on the same directory: how long to wait for its lock
 * before saying so. */
#define STATE_BUSY_MS 1000

struct store_state {
    sqlite3 *db;
    sqlite3_stmt *put;
    sqlite3_stmt *remove;
    char path[4096];
};

static const char state_schema[] =
    "CREATE TABLE IF NOT EXISTS streams ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),"
    " created_ms INTEGER NOT NULL DEFAULT 0,"
    " record INTEGER NOT NULL DEFAULT -1 CHECK (record IN (-1, 0, 1)),"
    " seed_hash BLOB CHECK (seed_hash IS NULL OR length(seed_hash) = 32),"
    " ladder TEXT NOT NULL DEFAULT '',"
    " outputs TEXT NOT NULL DEFAULT '');";

/* Version 1 -> 2: the stream's own ladder. */
static const char state_upgrade_2[] =
    "ALTER TABLE streams ADD COLUMN ladder TEXT NOT NULL DEFAULT ''";

/* Version 2 -> 3: the stream's simulcast outputs. */
static const char state_upgrade_3[] =
    "ALTER TABLE streams ADD COLUMN outputs TEXT NOT NULL DEFAULT ''";

static const char state_put_sql[] =
    "INSERT INTO streams (id, name, key_hash, created_ms, record, seed_hash, ladder, outputs)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash,"
    " created_ms = excluded.created_ms, record = excluded.record,"
    " seed_hash = excluded.seed_hash, ladder = excluded.ladder, outputs = excluded.outputs";

static const char state_remove_sql[] = "DELETE FROM streams WHERE id = ?1";

static const char state_load_sql[] =
    "SELECT id, name, key_hash, created_ms, record, seed_hash, ladder, outputs FROM streams";

store_seed_action_t store_seed_decide(bool have, const uint8_t cur[32], bool seeded,
                                      const uint8_t seed[32], const uint8_t key[32])
{
    if (!have)
        return STORE_SEED_ADD;
    if (CRYPTO_memcmp(cur, key, 32) == 0)
        return STORE_SEED_KEEP;
    if (seeded && CRYPTO_memcmp(seed, key, 32) == 0)
        return STORE_SEED_KEEP; /* re-keyed through the API since; the config is unchanged */
    return STORE_SEED_REKEY;
}

/* A SQLite result code as an errno. */
static int state_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:
        return -EACCES;
    default:
        return -EIO;
    }
}

/* Runs sql (no rows wanted); on failure fills why and returns the errno. */
static int state_exec(store_state_t *ss, const char *sql, const char *what, char *why,
                      size_t whylen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(ss->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return 0;
    int err = state_errno(rc);
    if (err == -EBUSY)
        snprintf(why, whylen, "%s is in use by another process (another sluice with the same "
                 "--state-dir?)", ss->path);
    else
        snprintf(why, whylen, "%s: %s: %s", ss->path, what, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return err;
}

static int state_user_version(store_state_t *ss, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ss->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The directory exists (made if missing) and this process may write in it. */
static int state_dir_ready(const char *dir, char *why, size_t whylen)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT || mkdir(dir, 0750) != 0) {
            int err = errno;
            snprintf(why, whylen, "cannot create '%s': %s", dir, strerror(err));
            return -err;
        }
        log_info(STATE_LOG, "state directory '%s' created", dir);
    } else if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, whylen, "'%s' is not a directory", dir);
        return -ENOTDIR;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        int err = errno;
        snprintf(why, whylen, "'%s' is not writable: %s", dir, strerror(err));
        return -err;
    }
    return 0;
}

int store_state_open(const char *dir, store_state_t **out, char *why, size_t whylen)
{
    *out = NULL;
    if (why && whylen)
        why[0] = '\0';
    if (!dir || !*dir) {
        snprintf(why, whylen, "no directory given");
        return -EINVAL;
    }
    int err = state_dir_ready(dir, why, whylen);
    if (err < 0)
        return err;
    store_state_t *ss = calloc(1, sizeof(*ss));
    if (!ss) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    /* The absolute path, for the logs: "state" alone says little. */
    char *abs = realpath(dir, NULL);
    int plen = snprintf(ss->path, sizeof(ss->path), "%s/%s", abs ? abs : dir, STORE_STATE_FILE);
    free(abs);
    if (plen < 0 || (size_t)plen >= sizeof(ss->path)) {
        snprintf(why, whylen, "'%s': path too long", dir);
        free(ss);
        return -ENAMETOOLONG;
    }
    int rc = sqlite3_open_v2(ss->path, &ss->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "cannot open %s: %s", ss->path,
                 ss->db ? sqlite3_errmsg(ss->db) : sqlite3_errstr(rc));
        err = state_errno(rc);
        goto fail;
    }
    sqlite3_extended_result_codes(ss->db, 1);
    sqlite3_busy_timeout(ss->db, STATE_BUSY_MS);
    if ((err = state_exec(ss, "PRAGMA locking_mode = EXCLUSIVE", "locking", why, whylen)) < 0 ||
        (err = state_exec(ss, "PRAGMA journal_mode = WAL", "journal", why, whylen)) < 0 ||
        (err = state_exec(ss, "PRAGMA synchronous = FULL", "synchronous", why, whylen)) < 0)
        goto fail;
    /* The first write transaction takes the lock for good (exclusive mode)
     * and proves the file writable now, not at the first API call. */
    if ((err = state_exec(ss, "BEGIN IMMEDIATE", "lock", why, whylen)) < 0)
        goto fail;
    int version = 0;
    rc = state_user_version(ss, &version);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s: %s", ss->path, sqlite3_errmsg(ss->db));
        err = state_errno(rc);
        goto fail;
    }
    if (version > STATE_SCHEMA_VERSION) {
        snprintf(why, whylen, "%s has schema version %d, newer than this sluice's (%d)",
                 ss->path, version, STATE_SCHEMA_VERSION);
        err = -EPROTO;
        goto fail;
    }
    char setv[64];
    snprintf(setv, sizeof(setv), "PRAGMA user_version = %d", STATE_SCHEMA_VERSION);
    if ((err = state_exec(ss, state_schema, "schema", why, whylen)) < 0 ||
        (version == 1 && (err = state_exec(ss, state_upgrade_2, "schema upgrade", why,
                                           whylen)) < 0) ||
        (version >= 1 && version < 3 &&
         (err = state_exec(ss, state_upgrade_3, "schema upgrade", why, whylen)) < 0) ||
        (err = state_exec(ss, setv, "schema", why, whylen)) < 0 ||
        (err = state_exec(ss, "COMMIT", "schema", why, whylen)) < 0)
        goto fail;
    if ((rc = sqlite3_prepare_v2(ss->db, state_put_sql, -1, &ss->put, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(ss->db, state_remove_sql, -1, &ss->remove, NULL)) != SQLITE_OK) {
        snprintf(why, whylen, "%s: %s", ss->path, sqlite3_errmsg(ss->db));
        err = state_errno(rc);
        goto fail;
    }
    *out = ss;
    return 0;
fail:
    store_state_close(ss);
    return err < 0 ? err : -EIO;
}

void store_state_close(store_state_t *ss)
{
    if (!ss)
        return;
    sqlite3_finalize(ss->put);
    sqlite3_finalize(ss->remove);
    sqlite3_close(ss->db); /* rolls back an open transaction, if any */
    free(ss);
}

const char *store_state_path(const store_state_t *ss)
{
    return ss->path;
}

int store_state_load(store_state_t *ss, store_state_row_t **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ss->db, state_load_sql, -1, &st, NULL);
    size_t cap = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const void *hash = sqlite3_column_blob(st, 2);
        int hash_len = sqlite3_column_bytes(st, 2);
        const void *seed = sqlite3_column_blob(st, 5);
        int seed_len = sqlite3_column_bytes(st, 5);
        int record = sqlite3_column_int(st, 4);
        const char *ladder = (const char *)sqlite3_column_text(st, 6);
        const char *outputs = (const char *)sqlite3_column_text(st, 7);
        if (!id || !store_id_valid(id) || !hash || hash_len != 32 ||
            (seed && seed_len != 32) || record < -1 || record > 1) {
            log_warn(STATE_LOG, "%s: skipping a stream that is not valid (id '%.64s')", ss->path,
                     id ? id : "");
            continue;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            store_state_row_t *nr = realloc(*rows, nc * sizeof(*nr));
            if (!nr) {
                rc = SQLITE_NOMEM;
                break;
            }
            *rows = nr;
            cap = nc;
        }
        store_state_row_t *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", id);
        snprintf(r->name, sizeof(r->name), "%s", name ? name : id);
        memcpy(r->key_hash, hash, 32);
        r->created_ms = sqlite3_column_int64(st, 3);
        r->record = record;
        /* A ladder no version writes is dropped (the server's ladder),
         * not the stream. */
        if (ladder && strlen(ladder) < sizeof(r->ladder))
            snprintf(r->ladder, sizeof(r->ladder), "%s", ladder);
        else if (ladder)
            log_warn(STATE_LOG, "%s: stream '%s': ignoring a stored ladder of %zu bytes",
                     ss->path, r->id, strlen(ladder));
        /* Outputs no version writes (too long) are dropped, not the
         * stream. */
        size_t olen = outputs ? strlen(outputs) : 0;
        if (olen >= STORE_OUTPUTS_MAX) {
            log_warn(STATE_LOG, "%s: stream '%s': ignoring stored outputs of %zu bytes",
                     ss->path, r->id, olen);
        } else if (olen && !(r->outputs = strdup(outputs))) {
            rc = SQLITE_NOMEM;
            break;
        }
        r->seeded = seed != NULL;
        if (seed)
            memcpy(r->seed_hash, seed, 32);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK) {
        log_error(STATE_LOG, "%s: cannot read the registry: %s", ss->path,
                  sqlite3_errmsg(ss->db));
        store_state_rows_free(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* Steps a prepared single-statement change (its own transaction), then
 * resets it. */
static int state_step(store_state_t *ss, sqlite3_stmt *st, const char *what, const char *id)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_error(STATE_LOG, "%s: cannot %s stream '%s': %s", ss->path, what, id,
                  sqlite3_errmsg(ss->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_state_put(store_state_t *ss, const store_state_row_t *row)
{
    sqlite3_stmt *st = ss->put;
    if (sqlite3_bind_text(st, 1, row->id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, row->name, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, row->key_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, row->created_ms) != SQLITE_OK ||
        sqlite3_bind_int(st, 5, row->record) != SQLITE_OK ||
        (row->seeded ? sqlite3_bind_blob(st, 6, row->seed_hash, 32, SQLITE_TRANSIENT)
                     : sqlite3_bind_null(st, 6)) != SQLITE_OK ||
        sqlite3_bind_text(st, 7, row->ladder, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 8, row->outputs ? row->outputs : "", -1, SQLITE_TRANSIENT) !=
            SQLITE_OK) {
        log_error(STATE_LOG, "%s: cannot write stream '%s': %s", ss->path, row->id,
                  sqlite3_errmsg(ss->db));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return -EIO;
    }
    return state_step(ss, st, "write", row->id);
}

void store_state_rows_free(store_state_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].outputs);
    free(rows);
}

int store_state_remove(store_state_t *ss, const char *id)
{
    sqlite3_stmt *st = ss->remove;
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        sqlite3_reset(st);
        return -EIO;
    }
    return state_step(ss, st, "remove", id);
}
