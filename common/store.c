/*
 * Store front end: picks the backend from the URL, validates arguments once
 * for every backend, and hashes stream keys so that no backend ever sees one
 * in clear. Any thread.
 */
#include "store.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_internal.h"

int store_open(const char *url, store_t **out)
{
    *out = NULL;
    if (strcmp(url, "memory") == 0 || strcmp(url, "memory://") == 0)
        return store_memory_open(out);
    if (strncmp(url, "redis://", 8) == 0)
        return -EPROTONOSUPPORT;
    return -EINVAL;
}

void store_close(store_t *st)
{
    if (st)
        st->backend->close(st);
}

const char *store_backend_name(const store_t *st)
{
    return st->backend->name;
}

int store_ping(store_t *st)
{
    return st->backend->ping(st);
}

int store_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int store_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
{
    if (!store_id_valid(stream_id))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].name || strlen(ops[i].name) > STORE_NAME_MAX)
            return -ENAMETOOLONG;
        if (ops[i].kind == STORE_OP_PUT && !ops[i].blob)
            return -EINVAL;
    }
    return st->backend->commit(st, stream_id, ops, n);
}

int store_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
{
    *out = NULL;
    if (!store_id_valid(stream_id) || strlen(name) > STORE_NAME_MAX)
        return -ENOENT;
    return st->backend->get(st, stream_id, name, out);
}

int store_drop_objects(store_t *st, const char *stream_id)
{
    return st->backend->drop_objects(st, stream_id);
}

void store_key_hash(const char *key, uint8_t out[32])
{
    unsigned int len = 32;
    EVP_Digest(key, strlen(key), out, &len, EVP_sha256(), NULL);
}

int store_stream_add(store_t *st, const char *id, const char *name, const char *key)
{
    if (!store_id_valid(id) || !key || !*key)
        return -EINVAL;
    uint8_t hash[32];
    store_key_hash(key, hash);
    return st->backend->stream_add(st, id, name ? name : id, hash);
}

int store_stream_auth(store_t *st, const char *key, char *id_out)
{
    id_out[0] = '\0';
    if (!key || !*key)
        return -ENOENT;
    uint8_t hash[32];
    store_key_hash(key, hash);
    return st->backend->stream_auth(st, hash, id_out);
}

int store_stream_exists(store_t *st, const char *id)
{
    if (!store_id_valid(id))
        return -ENOENT;
    return st->backend->stream_exists(st, id);
}
