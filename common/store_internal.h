/* The backend vtable behind store.h; only common/store*.c include this. */
#ifndef SLUICE_COMMON_STORE_INTERNAL_H
#define SLUICE_COMMON_STORE_INTERNAL_H

#include "store.h"

typedef struct store_backend {
    const char *name;
    void (*close)(store_t *st);
    int (*ping)(store_t *st);
    int (*commit)(store_t *st, const char *stream_id, const store_op_t *ops, size_t n);
    int (*get)(store_t *st, const char *stream_id, const char *name, blob_t **out);
    int (*drop_objects)(store_t *st, const char *stream_id);
    int (*stream_add)(store_t *st, const char *id, const char *name, const uint8_t hash[32]);
    int (*stream_auth)(store_t *st, const uint8_t hash[32], char *id_out);
    int (*stream_exists)(store_t *st, const char *id);
} store_backend_t;

struct store {
    const store_backend_t *backend;
};

int store_memory_open(store_t **out);

/* SHA-256 of a key. */
void store_key_hash(const char *key, uint8_t out[32]);

#endif
