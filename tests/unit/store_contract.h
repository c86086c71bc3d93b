/* The store contract: what every backend of store/include/store.h must do, written
 * once against that header and run by each backend's test executable
 * (test_store_memory.c, test_store_redis.c) with its own way of opening a
 * store. What only one backend does (the memory bound, Redis outages, the
 * Redis key layout and object cache, ...) stays in that backend's file.
 *
 * Each contract test gets two nodes, a and b, that share one store's data:
 * what a writes, b reads. For Redis they are two connections to one server
 * (a second origin node); the memory store is one process's, so there b is
 * a itself and the cross-node parts of the contract read back on the same
 * node. A backend registers the tests with STORE_CONTRACT_TESTS(&fixture),
 * which runs store_contract_setup/_teardown around each one. */
#ifndef SLUICE_TESTS_UNIT_STORE_CONTRACT_H
#define SLUICE_TESTS_UNIT_STORE_CONTRACT_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "test_util.h"

typedef struct store_contract {
    /* Set by the backend's test file. */
    const char *backend;     /* what store_backend_name() answers */
    store_t *(*open)(void);  /* a new, connected node on the backend's data */
    void (*reset)(void);     /* empties the shared data before a test; NULL: nothing */
    bool nodes_share_data;   /* false (memory): each open() is a store of its own */
    /* Set by store_contract_setup for the test that runs. */
    store_t *a, *b; /* b == a when !nodes_share_data */
} store_contract_t;

/* cmocka per-test setup and teardown; *state is the store_contract_t. */
int store_contract_setup(void **state);
int store_contract_teardown(void **state);

void store_contract_put_get_replace_delete(void **state);
void store_contract_reader_keeps_blob_after_replace(void **state);
void store_contract_batch_and_many_objects(void **state);
void store_contract_drop_objects(void **state);
void store_contract_expiry(void **state);
void store_contract_bad_arguments(void **state);
void store_contract_atomic_commit_under_readers(void **state);
void store_contract_watch(void **state);
void store_contract_registry(void **state);
void store_contract_registry_manage(void **state);
void store_contract_meta(void **state);
void store_contract_meta_many(void **state);
void store_contract_demand(void **state);
void store_contract_node_id_and_stats(void **state);
void store_contract_lease_revoke(void **state);

#define STORE_CONTRACT_TEST_(f, fx) \
    cmocka_unit_test_prestate_setup_teardown(f, store_contract_setup, store_contract_teardown, fx)

/* The contract's entries for a backend's CMUnitTest array. */
#define STORE_CONTRACT_TESTS(fx)                                           \
    STORE_CONTRACT_TEST_(store_contract_put_get_replace_delete, fx),       \
    STORE_CONTRACT_TEST_(store_contract_reader_keeps_blob_after_replace, fx), \
    STORE_CONTRACT_TEST_(store_contract_batch_and_many_objects, fx),       \
    STORE_CONTRACT_TEST_(store_contract_drop_objects, fx),                 \
    STORE_CONTRACT_TEST_(store_contract_expiry, fx),                       \
    STORE_CONTRACT_TEST_(store_contract_bad_arguments, fx),                \
    STORE_CONTRACT_TEST_(store_contract_atomic_commit_under_readers, fx),  \
    STORE_CONTRACT_TEST_(store_contract_watch, fx),                        \
    STORE_CONTRACT_TEST_(store_contract_registry, fx),                     \
    STORE_CONTRACT_TEST_(store_contract_registry_manage, fx),              \
    STORE_CONTRACT_TEST_(store_contract_meta, fx),                         \
    STORE_CONTRACT_TEST_(store_contract_meta_many, fx),                    \
    STORE_CONTRACT_TEST_(store_contract_demand, fx),                       \
    STORE_CONTRACT_TEST_(store_contract_node_id_and_stats, fx),            \
    STORE_CONTRACT_TEST_(store_contract_lease_revoke, fx)

/* Helpers for the backends' own tests too. */

/* One PUT of text as name, committed; fails the test if refused. */
static inline void store_test_put(store_t *st, const char *id, const char *name, const char *text,
                                  int64_t ttl_ms)
{
    blob_t *b = blob_new(text, strlen(text));
    store_op_t op = {.kind = STORE_OP_PUT, .name = name, .blob = b, .ttl_ms = ttl_ms};
    assert_int_equal(store_commit(st, id, &op, 1), 0);
    blob_unref(b);
}

/* The object is there and holds exactly text. */
static inline void store_test_assert_object(store_t *st, const char *id, const char *name,
                                            const char *text)
{
    blob_t *b = NULL;
    assert_int_equal(store_get(st, id, name, &b), 0);
    assert_int_equal(b->size, strlen(text));
    assert_memory_equal(b->data, text, b->size);
    blob_unref(b);
}

/* Counts the calls of a store callback (a watch's, a lost lease's); they
 * come on store threads, hence the atomic. */
typedef struct store_test_flag {
    atomic_int count;
} store_test_flag_t;

static inline void store_test_flag_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    store_test_flag_t *fl = opaque;
    atomic_fetch_add(&fl->count, 1);
}

/* Whether the callback has run, waiting up to ms for it. */
static inline bool store_test_flag_wait(store_test_flag_t *fl, int ms)
{
    for (int i = 0; i < ms / 10 && atomic_load(&fl->count) == 0; i++)
        sleep_ms(10);
    return atomic_load(&fl->count) > 0;
}

#endif
