/*
 * AMF0 decoder and encoder. The decoder reads untrusted bytes through the
 * bounded reader (common/byteio.h) and builds a tree; depth, string length
 * and the number of values are capped by amf0_limits_t so that a peer
 * cannot make us recurse deeply or allocate much more than it sent.
 *
 * Stateless: any thread. Trees belong to the caller.
 */
#include "amf0_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteio.h"

typedef struct amf0_decoder {
    byteio_reader_t br;
    const amf0_limits_t *lim;
    uint32_t nodes;
} amf0_decoder_t;

void amf0_limits_default(amf0_limits_t *lim)
{
    lim->max_depth = 16;
    lim->max_string = 65535;
    lim->max_nodes = 16384;
}

void amf0_value_free(amf0_value_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++) {
        free(v->items[i].key);
        amf0_value_free(v->items[i].value);
    }
    free(v->items);
    free(v->str);
    free(v);
}

/* Copies n bytes of string at the reader into a NUL-terminated heap string. */
static int amf0_read_bytes(amf0_decoder_t *d, size_t n, char **out)
{
    if (n > d->lim->max_string)
        return -EMSGSIZE;
    const uint8_t *p = byteio_take(&d->br, n);
    if (!p)
        return -EAGAIN;
    char *s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int amf0_push_item(amf0_value_t *v, char *key, size_t key_len, amf0_value_t *child)
{
    if ((v->count & (v->count - 1)) == 0) { /* grow at 0, 1, 2, 4, 8 ... */
        size_t cap = v->count ? v->count * 2 : 4;
        amf0_item_t *items = realloc(v->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        v->items = items;
    }
    v->items[v->count].key = key;
    v->items[v->count].key_len = key_len;
    v->items[v->count].value = child;
    v->count++;
    return 0;
}

static int amf0_decode_value(amf0_decoder_t *d, uint32_t depth, amf0_value_t **out);

/* Reads "key, value" pairs up to the empty key followed by the object-end
 * marker (OBJECT and ECMA_ARRAY bodies). */
static int amf0_decode_members(amf0_decoder_t *d, uint32_t depth, amf0_value_t *v)
{
    for (;;) {
        uint16_t klen = byteio_be16(&d->br);
        if (d->br.error)
            return -EAGAIN;
        if (klen == 0) {
            uint8_t marker = byteio_u8(&d->br);
            if (d->br.error)
                return -EAGAIN;
            if (marker != AMF0_OBJECT_END)
                return -EPROTO;
            return 0;
        }
        char *key = NULL;
        int ret = amf0_read_bytes(d, klen, &key);
        if (ret < 0)
            return ret;
        amf0_value_t *child = NULL;
        ret = amf0_decode_value(d, depth + 1, &child);
        if (ret == 0)
            ret = amf0_push_item(v, key, klen, child);
        if (ret < 0) {
            free(key);
            amf0_value_free(child);
            return ret;
        }
    }
}

static int amf0_decode_value(amf0_decoder_t *d, uint32_t depth, amf0_value_t **out)
{
    *out = NULL;
    if (++d->nodes > d->lim->max_nodes)
        return -EMSGSIZE;
    uint8_t marker = byteio_u8(&d->br);
    if (d->br.error)
        return -EAGAIN;

    amf0_value_t *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->type = (amf0_type_t)marker;
    int ret = 0;

    switch (marker) {
    case AMF0_NUMBER:
    case AMF0_DATE: {
        uint64_t bits = byteio_be64(&d->br);
        memcpy(&v->number, &bits, sizeof(bits));
        if (marker == AMF0_DATE)
            v->tz = (int16_t)byteio_be16(&d->br);
        if (d->br.error)
            ret = -EAGAIN;
        break;
    }
    case AMF0_BOOLEAN:
        v->boolean = byteio_u8(&d->br) != 0;
        if (d->br.error)
            ret = -EAGAIN;
        break;
    case AMF0_STRING:
    case AMF0_LONG_STRING: {
        uint32_t n = marker == AMF0_STRING ? byteio_be16(&d->br) : byteio_be32(&d->br);
        if (d->br.error) {
            ret = -EAGAIN;
            break;
        }
        v->len = n;
        ret = amf0_read_bytes(d, n, &v->str);
        break;
    }
    case AMF0_NULL:
    case AMF0_UNDEFINED:
        break;
    case AMF0_OBJECT:
    case AMF0_ECMA_ARRAY:
        if (depth >= d->lim->max_depth) {
            ret = -EMSGSIZE;
            break;
        }
        if (marker == AMF0_ECMA_ARRAY) {
            /* The count is advisory (encoders get it wrong); the end marker
             * is what ends the array. */
            v->ecma_count = byteio_be32(&d->br);
            if (d->br.error) {
                ret = -EAGAIN;
                break;
            }
        }
        ret = amf0_decode_members(d, depth, v);
        break;
    case AMF0_STRICT_ARRAY: {
        if (depth >= d->lim->max_depth) {
            ret = -EMSGSIZE;
            break;
        }
        uint32_t n = byteio_be32(&d->br);
        if (d->br.error) {
            ret = -EAGAIN;
            break;
        }
        /* Nothing is allocated up front from n: every element costs at
         * least one input byte and one node, so both caps bound it. */
        for (uint32_t i = 0; i < n && ret == 0; i++) {
            amf0_value_t *child = NULL;
            ret = amf0_decode_value(d, depth + 1, &child);
            if (ret == 0)
                ret = amf0_push_item(v, NULL, 0, child);
            if (ret < 0)
                amf0_value_free(child);
        }
        break;
    }
    default:
        /* OBJECT_END out of place, movieclip, reference, unsupported,
         * recordset, XML, typed object, AVM+ switch. */
        ret = -EPROTO;
        break;
    }

    if (ret < 0) {
        amf0_value_free(v);
        return ret;
    }
    *out = v;
    return 0;
}

int amf0_decode(const uint8_t *data, size_t len, const amf0_limits_t *lim, amf0_value_t **out,
                size_t *used)
{
    amf0_decoder_t d = {.lim = lim};
    byteio_init(&d.br, data, len);
    int ret = amf0_decode_value(&d, 0, out);
    if (used)
        *used = ret == 0 ? byteio_tell(&d.br) : 0;
    return ret;
}

int amf0_decode_all(const uint8_t *data, size_t len, const amf0_limits_t *lim,
                    amf0_value_t **out)
{
    *out = NULL;
    amf0_decoder_t d = {.lim = lim};
    byteio_init(&d.br, data, len);
    amf0_value_t *list = calloc(1, sizeof(*list));
    if (!list)
        return -ENOMEM;
    list->type = AMF0_STRICT_ARRAY;
    int ret = 0;
    while (byteio_left(&d.br) > 0) {
        amf0_value_t *v = NULL;
        ret = amf0_decode_value(&d, 0, &v);
        if (ret == 0)
            ret = amf0_push_item(list, NULL, 0, v);
        if (ret < 0) {
            amf0_value_free(v);
            goto fail;
        }
    }
    *out = list;
    return 0;
fail:
    amf0_value_free(list);
    return ret;
}

const amf0_value_t *amf0_get(const amf0_value_t *obj, const char *key)
{
    if (!obj || (obj->type != AMF0_OBJECT && obj->type != AMF0_ECMA_ARRAY))
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < obj->count; i++)
        if (obj->items[i].key_len == klen && memcmp(obj->items[i].key, key, klen) == 0)
            return obj->items[i].value;
    return NULL;
}

const amf0_value_t *amf0_at(const amf0_value_t *arr, size_t i)
{
    if (!arr || i >= arr->count)
        return NULL;
    return arr->items[i].value;
}

const char *amf0_string(const amf0_value_t *v)
{
    if (!v || (v->type != AMF0_STRING && v->type != AMF0_LONG_STRING))
        return NULL;
    return v->str;
}

double amf0_number(const amf0_value_t *v, double def)
{
    return v && v->type == AMF0_NUMBER ? v->number : def;
}

/* ---- encoder ---------------------------------------------------------- */

static void amf0_put_be16(buf_t *b, uint16_t v)
{
    uint8_t p[2];
    byteio_put_be16(p, v);
    buf_append(b, p, 2);
}

static void amf0_put_be32(buf_t *b, uint32_t v)
{
    uint8_t p[4];
    byteio_put_be32(p, v);
    buf_append(b, p, 4);
}

static void amf0_put_double(buf_t *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    amf0_put_be32(b, (uint32_t)(bits >> 32));
    amf0_put_be32(b, (uint32_t)bits);
}

void amf0_put_number(buf_t *b, double v)
{
    buf_u8(b, AMF0_NUMBER);
    amf0_put_double(b, v);
}

void amf0_put_bool(buf_t *b, bool v)
{
    buf_u8(b, AMF0_BOOLEAN);
    buf_u8(b, v ? 1 : 0);
}

void amf0_put_string(buf_t *b, const char *s, size_t len)
{
    if (len > 0xffff) {
        if (len > UINT32_MAX) {
            b->oom = true; /* cannot be represented; poison the buffer */
            return;
        }
        buf_u8(b, AMF0_LONG_STRING);
        amf0_put_be32(b, (uint32_t)len);
    } else {
        buf_u8(b, AMF0_STRING);
        amf0_put_be16(b, (uint16_t)len);
    }
    buf_append(b, s, len);
}

void amf0_put_cstring(buf_t *b, const char *s)
{
    amf0_put_string(b, s, strlen(s));
}

void amf0_put_null(buf_t *b)
{
    buf_u8(b, AMF0_NULL);
}

void amf0_put_undefined(buf_t *b)
{
    buf_u8(b, AMF0_UNDEFINED);
}

void amf0_put_date(buf_t *b, double ms, int16_t tz)
{
    buf_u8(b, AMF0_DATE);
    amf0_put_double(b, ms);
    amf0_put_be16(b, (uint16_t)tz);
}

void amf0_put_object_start(buf_t *b)
{
    buf_u8(b, AMF0_OBJECT);
}

void amf0_put_ecma_array_start(buf_t *b, uint32_t count)
{
    buf_u8(b, AMF0_ECMA_ARRAY);
    amf0_put_be32(b, count);
}

void amf0_put_key(buf_t *b, const char *key, size_t len)
{
    if (len == 0 || len > 0xffff) {
        b->oom = true; /* an empty key would read as the object end */
        return;
    }
    amf0_put_be16(b, (uint16_t)len);
    buf_append(b, key, len);
}

void amf0_put_object_end(buf_t *b)
{
    static const uint8_t end[3] = {0, 0, AMF0_OBJECT_END};
    buf_append(b, end, sizeof(end));
}

void amf0_put_strict_array_start(buf_t *b, uint32_t count)
{
    buf_u8(b, AMF0_STRICT_ARRAY);
    amf0_put_be32(b, count);
}

void amf0_put_prop_string(buf_t *b, const char *key, const char *val)
{
    amf0_put_key(b, key, strlen(key));
    amf0_put_cstring(b, val);
}

void amf0_put_prop_number(buf_t *b, const char *key, double val)
{
    amf0_put_key(b, key, strlen(key));
    amf0_put_number(b, val);
}

int amf0_encode(buf_t *b, const amf0_value_t *v)
{
    int ret = 0;
    switch (v->type) {
    case AMF0_NUMBER:
        amf0_put_number(b, v->number);
        break;
    case AMF0_BOOLEAN:
        amf0_put_bool(b, v->boolean);
        break;
    case AMF0_STRING:
        if (v->len > 0xffff)
            return -EINVAL;
        amf0_put_string(b, v->str, v->len);
        break;
    case AMF0_LONG_STRING:
        /* Kept long even when short, so that a decoded tree re-encodes to
         * the same bytes. */
        if (v->len > UINT32_MAX)
            return -EINVAL;
        buf_u8(b, AMF0_LONG_STRING);
        amf0_put_be32(b, (uint32_t)v->len);
        buf_append(b, v->str, v->len);
        break;
    case AMF0_NULL:
        amf0_put_null(b);
        break;
    case AMF0_UNDEFINED:
        amf0_put_undefined(b);
        break;
    case AMF0_DATE:
        amf0_put_date(b, v->number, v->tz);
        break;
    case AMF0_OBJECT:
    case AMF0_ECMA_ARRAY:
        if (v->type == AMF0_OBJECT)
            amf0_put_object_start(b);
        else
            amf0_put_ecma_array_start(b, v->ecma_count);
        for (size_t i = 0; i < v->count && ret == 0; i++) {
            if (!v->items[i].key || v->items[i].key_len == 0 || v->items[i].key_len > 0xffff)
                return -EINVAL;
            amf0_put_key(b, v->items[i].key, v->items[i].key_len);
            ret = amf0_encode(b, v->items[i].value);
        }
        amf0_put_object_end(b);
        break;
    case AMF0_STRICT_ARRAY:
        if (v->count > UINT32_MAX)
            return -EINVAL;
        amf0_put_strict_array_start(b, (uint32_t)v->count);
        for (size_t i = 0; i < v->count && ret == 0; i++)
            ret = amf0_encode(b, v->items[i].value);
        break;
    default:
        return -EINVAL;
    }
    if (ret < 0)
        return ret;
    return b->oom ? -ENOMEM : 0;
}
