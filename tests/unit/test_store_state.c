/* Unit tests for store/store_state.c (the memory store's registry on disk)
 * and for the memory store with a state directory (store_set_state_dir):
 * the seed rule, the SQLite rows surviving a close, every registry change
 * surviving a reopen, --stream seeds on top of a loaded registry, and the
 * errors a start reports. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_internal.h"
#include "store_state_internal.h"

/* ---- a temporary state directory ----------------------------------------- */

static char *tmp_dir(void)
{
    char *d = strdup("/tmp/sluice-state-test-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_dir(char *d)
{
    const char *files[] = {STORE_STATE_FILE, STORE_STATE_FILE "-wal", STORE_STATE_FILE "-shm",
                           STORE_STATE_FILE "-journal"};
    char p[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", d, files[i]);
        unlink(p);
    }
    rmdir(d);
    free(d);
}

static void hash_of(const char *key, uint8_t out[32])
{
    store_key_hash(key, out);
}

/* ---- the seed rule ------------------------------------------------------- */

static void test_seed_decide(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    hash_of("key-a", a);
    hash_of("key-b", b);
    hash_of("key-c", c);
    /* Not there: added. */
    assert_int_equal(store_seed_decide(false, a, false, a, a), STORE_SEED_ADD);
    /* There with the configured key: nothing to do. */
    assert_int_equal(store_seed_decide(true, a, true, a, a), STORE_SEED_KEEP);
    assert_int_equal(store_seed_decide(true, a, false, a, a), STORE_SEED_KEEP);
    /* Configured with a, rotated to b through the API, configuration still
     * says a: the rotation stands. */
    assert_int_equal(store_seed_decide(true, b, true, a, a), STORE_SEED_KEEP);
    /* Configured with a, rotated to b, the configuration now says c: c. */
    assert_int_equal(store_seed_decide(true, b, true, a, c), STORE_SEED_REKEY);
    /* Made through the API with b, now in the configuration with a: a. */
    assert_int_equal(store_seed_decide(true, b, false, b, a), STORE_SEED_REKEY);
}

/* ---- the SQLite layer ------------------------------------------------------ */

static store_state_row_t row_of(const char *id, const char *name, const char *key, int record)
{
    store_state_row_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.name, sizeof(r.name), "%s", name);
    hash_of(key, r.key_hash);
    r.created_ms = 1700000000123;
    r.record = record;
    return r;
}

static const store_state_row_t *find_row(const store_state_row_t *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0)
            return &rows[i];
    return NULL;
}

static void test_state_rows_survive_close(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char why[512];
    store_state_t *ss = NULL;
    assert_int_equal(store_state_open(dir, &ss, why, sizeof(why)), 0);
    assert_non_null(strstr(store_state_path(ss), STORE_STATE_FILE));
    store_state_row_t a = row_of("a", "shop \"A\" \xc3\xa9", "ka", STORE_RECORD_DEFAULT);
    store_state_row_t b = row_of("b", "b", "kb", STORE_RECORD_ON);
    b.seeded = true;
    hash_of("kb", b.seed_hash);
    store_state_row_t c = row_of("c", "c", "kc", STORE_RECORD_OFF);
    assert_int_equal(store_state_put(ss, &a), 0);
    assert_int_equal(store_state_put(ss, &b), 0);
    assert_int_equal(store_state_put(ss, &c), 0);
    /* An update replaces every field of that id. */
    hash_of("ka2", a.key_hash);
    a.record = STORE_RECORD_OFF;
    assert_int_equal(store_state_put(ss, &a), 0);
    assert_int_equal(store_state_remove(ss, "c"), 0);
    assert_int_equal(store_state_remove(ss, "never-there"), 0);
    /* A key hash is unique: the database refuses a second stream with it
     * and nothing changes. */
    store_state_row_t dup = row_of("d", "d", "kb", STORE_RECORD_DEFAULT);
    assert_int_equal(store_state_put(ss, &dup), -EIO);

    /* A second opener of the same directory is refused while it is open. */
    store_state_t *other = NULL;
    assert_int_equal(store_state_open(dir, &other, why, sizeof(why)), -EBUSY);
    assert_null(other);
    assert_non_null(strstr(why, "in use by another process"));
    store_state_close(ss);

    assert_int_equal(store_state_open(dir, &ss, why, sizeof(why)), 0);
    store_state_row_t *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_state_load(ss, &rows, &n), 0);
    assert_int_equal(n, 2);
    const store_state_row_t *ra = find_row(rows, n, "a"), *rb = find_row(rows, n, "b");
    assert_non_null(ra);
    assert_non_null(rb);
    assert_null(find_row(rows, n, "c"));
    assert_null(find_row(rows, n, "d"));
    assert_string_equal(ra->name, "shop \"A\" \xc3\xa9");
    assert_memory_equal(ra->key_hash, a.key_hash, 32);
    assert_int_equal(ra->record, STORE_RECORD_OFF);
    assert_true(ra->created_ms == 1700000000123);
    assert_false(ra->seeded);
    assert_true(rb->seeded);
    assert_memory_equal(rb->seed_hash, b.seed_hash, 32);
    assert_int_equal(rb->record, STORE_RECORD_ON);
    free(rows);
    store_state_close(ss);
    store_state_close(NULL);
    rm_dir(dir);
}

static void test_state_open_errors(void **state)
{
    (void)state;
    char why[512];
    store_state_t *ss = NULL;
    /* A parent that does not exist: not made. */
    assert_int_equal(store_state_open("/nonexistent-sluice-dir/state", &ss, why, sizeof(why)),
                     -ENOENT);
    assert_null(ss);
    assert_non_null(strstr(why, "/nonexistent-sluice-dir/state"));
    assert_non_null(strstr(why, "No such file or directory"));
    /* A file where the directory should be. */
    char *dir = tmp_dir();
    char file[512];
    snprintf(file, sizeof(file), "%s/%s", dir, STORE_STATE_FILE);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(store_state_open(file, &ss, why, sizeof(why)), -ENOTDIR);
    assert_non_null(strstr(why, "is not a directory"));
    /* A database file that is not one. */
    f = fopen(file, "w");
    assert_non_null(f);
    fputs("this is not an SQLite database, not even close to one; it is a text file\n", f);
    fclose(f);
    assert_int_equal(store_state_open(dir, &ss, why, sizeof(why)), -EIO);
    assert_non_null(strstr(why, STORE_STATE_FILE));
    assert_null(ss);
    rm_dir(dir);
}

/* A registry written by a version without ladders (schema 1) opens, keeps
 * its streams, and takes a ladder from then on. */
static void test_state_upgrades_schema_1(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_STATE_FILE);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE streams (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                     " key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),"
                     " created_ms INTEGER NOT NULL DEFAULT 0,"
                     " record INTEGER NOT NULL DEFAULT -1 CHECK (record IN (-1, 0, 1)),"
                     " seed_hash BLOB CHECK (seed_hash IS NULL OR length(seed_hash) = 32));"
                     "INSERT INTO streams (id, name, key_hash, created_ms, record) VALUES"
                     " ('old', 'Old', zeroblob(32), 5, 1);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    char why[512];
    store_state_t *ss = NULL;
    if (store_state_open(dir, &ss, why, sizeof(why)) != 0)
        fail_msg("upgrade: %s", why);
    store_state_row_t *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_state_load(ss, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "old");
    assert_int_equal(rows[0].record, STORE_RECORD_ON);
    assert_string_equal(rows[0].ladder, "");
    snprintf(rows[0].ladder, sizeof(rows[0].ladder), "{\"passthrough\":\"never\"}");
    assert_int_equal(store_state_put(ss, &rows[0]), 0);
    free(rows);
    store_state_close(ss);

    assert_int_equal(store_state_open(dir, &ss, why, sizeof(why)), 0);
    assert_int_equal(store_state_load(ss, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].ladder, "{\"passthrough\":\"never\"}");
    assert_true(rows[0].created_ms == 5);
    assert_null(rows[0].outputs); /* none: also added */
    store_state_rows_free(rows, n);
    store_state_close(ss);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
    rm_dir(dir);
}

/* A registry written by a version without simulcast outputs (schema 2)
 * opens, keeps its streams and ladders, and takes outputs from then on. */
static void test_state_upgrades_schema_2(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_STATE_FILE);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE streams (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                     " key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),"
                     " created_ms INTEGER NOT NULL DEFAULT 0,"
                     " record INTEGER NOT NULL DEFAULT -1 CHECK (record IN (-1, 0, 1)),"
                     " seed_hash BLOB CHECK (seed_hash IS NULL OR length(seed_hash) = 32),"
                     " ladder TEXT NOT NULL DEFAULT '');"
                     "INSERT INTO streams (id, name, key_hash, created_ms, record, ladder) VALUES"
                     " ('two', 'Two', zeroblob(32), 7, -1, '{}');"
                     "PRAGMA user_version = 2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    char why[512];
    store_state_t *ss = NULL;
    if (store_state_open(dir, &ss, why, sizeof(why)) != 0)
        fail_msg("upgrade: %s", why);
    store_state_row_t *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_state_load(ss, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "two");
    assert_string_equal(rows[0].ladder, "{}");
    assert_null(rows[0].outputs);
    static const char outputs[] = "[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\"}]";
    rows[0].outputs = strdup(outputs);
    assert_int_equal(store_state_put(ss, &rows[0]), 0);
    store_state_rows_free(rows, n);
    store_state_close(ss);

    assert_int_equal(store_state_open(dir, &ss, why, sizeof(why)), 0);
    assert_int_equal(store_state_load(ss, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].outputs, outputs);
    assert_string_equal(rows[0].ladder, "{}");
    store_state_rows_free(rows, n);
    store_state_close(ss);
    rm_dir(dir);
}

/* ---- the memory store with a state directory ----------------------------- */

static store_t *open_with_state(const char *dir, size_t *loaded)
{
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    char why[512];
    size_t n = 0;
    int rc = store_set_state_dir(st, dir, &n, why, sizeof(why));
    if (rc != 0)
        fail_msg("store_set_state_dir: %d %s", rc, why);
    if (loaded)
        *loaded = n;
    return st;
}

static void assert_auth(store_t *st, const char *key, const char *want_id)
{
    char id[STORE_ID_MAX];
    if (!want_id) {
        assert_int_equal(store_stream_auth(st, key, id), -ENOENT);
        return;
    }
    assert_int_equal(store_stream_auth(st, key, id), 0);
    assert_string_equal(id, want_id);
}

static void test_registry_survives_restart(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    size_t loaded = 99;
    store_t *st = open_with_state(dir, &loaded);
    assert_int_equal(loaded, 0);
    assert_int_equal(store_stream_add(st, "made", "Made here", "key-made"), 0);
    assert_int_equal(store_stream_add(st, "rot", NULL, "key-rot-old"), 0);
    assert_int_equal(store_stream_add(st, "gone", NULL, "key-gone"), 0);
    assert_int_equal(store_stream_rotate(st, "rot", "key-rot-new"), 0);
    assert_int_equal(store_stream_remove(st, "gone"), 0);
    assert_int_equal(store_stream_set_record(st, "made", STORE_RECORD_ON), 0);
    assert_int_equal(store_stream_set_ladder(st, "made", "{\"preset\":\"superfast\"}"), 0);
    assert_int_equal(store_stream_set_ladder(st, "rot", "{\"rungs\":[\"360p\"]}"), 0);
    assert_int_equal(store_stream_set_ladder(st, "rot", NULL), 0); /* cleared */
    static const char outputs[] = "[{\"id\":\"o0123456789abcdef\",\"url\":\"rtmp://h/a/k\"}]";
    assert_int_equal(store_stream_set_outputs(st, "made", outputs), 0);
    assert_int_equal(store_stream_set_outputs(st, "rot", "[]"), 0);
    assert_int_equal(store_stream_set_outputs(st, "rot", ""), 0); /* cleared */
    /* Refusals change nothing, on disk either. */
    assert_int_equal(store_stream_add(st, "dup", NULL, "key-made"), -EEXIST);
    assert_int_equal(store_stream_rotate(st, "rot", "key-made"), -EEXIST);
    store_stream_info_t before;
    assert_int_equal(store_stream_get(st, "made", &before), 0);
    /* A state directory is set once, before anything is added. */
    char why[256];
    size_t n = 0;
    assert_int_equal(store_set_state_dir(st, dir, &n, why, sizeof(why)), -EBUSY);
    store_close(st);

    st = open_with_state(dir, &loaded);
    assert_int_equal(loaded, 2);
    store_stream_info_t *list = NULL;
    assert_int_equal(store_stream_list(st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "made");
    assert_string_equal(list[0].name, "Made here");
    assert_int_equal(list[0].record, STORE_RECORD_ON);
    assert_string_equal(list[0].ladder, "{\"preset\":\"superfast\"}");
    assert_true(list[0].created_ms == before.created_ms);
    assert_string_equal(list[1].id, "rot");
    assert_string_equal(list[1].ladder, "");
    free(list);
    char *text = NULL;
    assert_int_equal(store_stream_get_outputs(st, "made", &text), 0);
    assert_string_equal(text, outputs);
    free(text);
    assert_int_equal(store_stream_get_outputs(st, "rot", &text), 0);
    assert_string_equal(text, "");
    free(text);
    assert_auth(st, "key-made", "made");
    assert_auth(st, "key-rot-new", "rot");
    assert_auth(st, "key-rot-old", NULL);
    assert_auth(st, "key-gone", NULL);
    assert_int_equal(store_stream_exists(st, "gone"), -ENOENT);
    /* Nothing came from the configuration: nothing is dropped. */
    assert_int_equal(store_stream_seed_done(st, &n), 0);
    assert_int_equal(n, 0);
    /* A stream removed with outputs takes them along on disk too. */
    assert_int_equal(store_stream_remove(st, "made"), 0);
    store_close(st);
    st = open_with_state(dir, &loaded);
    assert_int_equal(loaded, 1);
    assert_int_equal(store_stream_add(st, "made", NULL, "key-made-2"), 0);
    assert_int_equal(store_stream_get_outputs(st, "made", &text), 0);
    assert_string_equal(text, "");
    free(text);
    store_close(st);
    rm_dir(dir);
}

static void test_seeds_on_top_of_the_registry(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    size_t n = 0, loaded = 0;
    /* Start 1: --stream keep:k1 --stream rot:r1 --stream old:o1, plus an
     * API stream; rot is re-keyed through the API. */
    store_t *st = open_with_state(dir, &loaded);
    assert_int_equal(store_stream_seed(st, "keep", "k1"), 0);
    assert_int_equal(store_stream_seed(st, "rot", "r1"), 0);
    assert_int_equal(store_stream_seed(st, "old", "o1"), 0);
    assert_int_equal(store_stream_seed_done(st, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_stream_add(st, "api", NULL, "a1"), 0);
    assert_int_equal(store_stream_rotate(st, "rot", "r2"), 0);
    store_close(st);

    /* Start 2, same configuration: the API rotation stands (the leaked r1
     * stays refused), the API stream stays. */
    st = open_with_state(dir, &loaded);
    assert_int_equal(loaded, 4);
    assert_int_equal(store_stream_seed(st, "keep", "k1"), 0);
    assert_int_equal(store_stream_seed(st, "rot", "r1"), 0);
    assert_int_equal(store_stream_seed(st, "old", "o1"), 0);
    assert_int_equal(store_stream_seed_done(st, &n), 0);
    assert_int_equal(n, 0);
    assert_auth(st, "r2", "rot");
    assert_auth(st, "r1", NULL);
    assert_auth(st, "a1", "api");
    /* A seed whose key is another stream's is refused. */
    assert_int_equal(store_stream_seed(st, "thief", "a1"), -EEXIST);
    store_close(st);

    /* Start 3: rot's configured key changed (r3), `old` left the
     * configuration, `api` is now configured with its own key, a new seed. */
    st = open_with_state(dir, &loaded);
    assert_int_equal(store_stream_seed(st, "keep", "k1"), 0);
    assert_int_equal(store_stream_seed(st, "rot", "r3"), 0);
    assert_int_equal(store_stream_seed(st, "api", "a9"), 0);
    assert_int_equal(store_stream_seed(st, "new", "n1"), 0);
    assert_int_equal(store_stream_seed_done(st, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_stream_exists(st, "old"), -ENOENT);
    assert_auth(st, "o1", NULL);
    assert_auth(st, "r3", "rot");
    assert_auth(st, "r2", NULL);
    assert_auth(st, "a9", "api");
    assert_auth(st, "a1", NULL);
    assert_auth(st, "n1", "new");
    assert_auth(st, "k1", "keep");
    store_close(st);

    /* Start 4 (same as 3): what start 3 changed is on disk. */
    st = open_with_state(dir, &loaded);
    assert_int_equal(loaded, 4);
    assert_auth(st, "r3", "rot");
    assert_auth(st, "a9", "api");
    assert_auth(st, "n1", "new");
    assert_int_equal(store_stream_exists(st, "old"), -ENOENT);
    store_close(st);
    rm_dir(dir);
}

static void test_memory_only_unchanged(void **state)
{
    (void)state;
    /* Without a state directory the registry behaves as before: seeds are
     * idempotent, a seed's key may not be another stream's, and nothing is
     * dropped by seed_done. */
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    assert_int_equal(store_stream_seed(st, "demo", "k"), 0);
    assert_int_equal(store_stream_seed(st, "demo", "k"), 0);
    assert_int_equal(store_stream_seed(st, "other", "k"), -EEXIST);
    size_t n = 9;
    assert_int_equal(store_stream_seed_done(st, &n), 0);
    assert_int_equal(n, 0);
    assert_auth(st, "k", "demo");
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_decide),
        cmocka_unit_test(test_state_rows_survive_close),
        cmocka_unit_test(test_state_open_errors),
        cmocka_unit_test(test_state_upgrades_schema_1),
        cmocka_unit_test(test_state_upgrades_schema_2),
        cmocka_unit_test(test_registry_survives_restart),
        cmocka_unit_test(test_seeds_on_top_of_the_registry),
        cmocka_unit_test(test_memory_only_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
