/*
 * AMF0 (Action Message Format 0), the encoding of RTMP commands and FLV
 * script data: a decoder from untrusted bytes into a small value tree, and
 * an encoder that appends values to a buf_t.
 *
 * Pure functions, no shared state: any thread. A decoded tree is owned by
 * the caller and freed with amf0_value_free().
 */
#ifndef SLUICE_INGEST_AMF0_INTERNAL_H
#define SLUICE_INGEST_AMF0_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum amf0_type {
    AMF0_NUMBER = 0x00,
    AMF0_BOOLEAN = 0x01,
    AMF0_STRING = 0x02,
    AMF0_OBJECT = 0x03,
    AMF0_NULL = 0x05,
    AMF0_UNDEFINED = 0x06,
    AMF0_ECMA_ARRAY = 0x08,
    AMF0_OBJECT_END = 0x09,
    AMF0_STRICT_ARRAY = 0x0a,
    AMF0_DATE = 0x0b,
    AMF0_LONG_STRING = 0x0c,
} amf0_type_t;

typedef struct amf0_value amf0_value_t;

/* One member of an object or ECMA array (key set), or one element of a
 * strict array (key NULL). */
typedef struct amf0_item {
    char *key; /* NUL-terminated copy; may contain NULs before key_len */
    size_t key_len;
    amf0_value_t *value;
} amf0_item_t;

struct amf0_value {
    amf0_type_t type;
    double number;     /* NUMBER; DATE: milliseconds since the epoch */
    int16_t tz;        /* DATE: time-zone field, kept for round trips */
    bool boolean;      /* BOOLEAN */
    char *str;         /* STRING, LONG_STRING: NUL-terminated copy */
    size_t len;        /* bytes in str */
    amf0_item_t *items; /* OBJECT, ECMA_ARRAY, STRICT_ARRAY */
    size_t count;
    uint32_t ecma_count; /* ECMA_ARRAY: the count field as sent */
};

typedef struct amf0_limits {
    uint32_t max_depth;  /* objects/arrays nested deeper than this: -EMSGSIZE */
    uint32_t max_string; /* bytes of one string or key: -EMSGSIZE */
    uint32_t max_nodes;  /* values in one decode call: -EMSGSIZE */
} amf0_limits_t;

/* Depth 16, strings 65535 bytes, 16384 values. */
void amf0_limits_default(amf0_limits_t *lim);

/*
 * Decodes one value from data[0..len) into *out (caller frees) and stores
 * the bytes it used in *used. Returns 0, -EAGAIN when the input ends inside
 * the value, -EPROTO for a malformed or unsupported marker (an object-end
 * marker where a value belongs, a reference, AMF3 ...), -EMSGSIZE when a
 * limit is crossed, -ENOMEM. On failure *out is NULL.
 */
int amf0_decode(const uint8_t *data, size_t len, const amf0_limits_t *lim, amf0_value_t **out,
                size_t *used) __attribute__((warn_unused_result));

/*
 * Decodes every value in data[0..len) (an RTMP command: name, transaction
 * id, arguments ...) into a STRICT_ARRAY value whose items are the values in
 * order. The node limit applies to the whole sequence. Same returns as
 * amf0_decode().
 */
int amf0_decode_all(const uint8_t *data, size_t len, const amf0_limits_t *lim,
                    amf0_value_t **out) __attribute__((warn_unused_result));

/* Frees a tree; amf0_value_free(NULL) does nothing. */
void amf0_value_free(amf0_value_t *v);

/* Accessors that tolerate NULL and the wrong type. */
/* The value of `key` in an OBJECT or ECMA_ARRAY, or NULL. */
const amf0_value_t *amf0_get(const amf0_value_t *obj, const char *key);
/* Element i of a STRICT_ARRAY (or of any container), or NULL. */
const amf0_value_t *amf0_at(const amf0_value_t *arr, size_t i);
/* The string of a STRING/LONG_STRING, or NULL. */
const char *amf0_string(const amf0_value_t *v);
/* The number of a NUMBER, or `def`. */
double amf0_number(const amf0_value_t *v, double def);

/* ---- encoder: appends to b; check b->oom once at the end ----------------- */
void amf0_put_number(buf_t *b, double v);
void amf0_put_bool(buf_t *b, bool v);
/* STRING, or LONG_STRING when len > 65535. */
void amf0_put_string(buf_t *b, const char *s, size_t len);
void amf0_put_cstring(buf_t *b, const char *s);
void amf0_put_null(buf_t *b);
void amf0_put_undefined(buf_t *b);
void amf0_put_date(buf_t *b, double ms, int16_t tz);
/* Object: start, then (key, value) pairs, then end. */
void amf0_put_object_start(buf_t *b);
void amf0_put_ecma_array_start(buf_t *b, uint32_t count);
void amf0_put_key(buf_t *b, const char *key, size_t len);
void amf0_put_object_end(buf_t *b);
/* Strict array: start with the element count, then the elements. */
void amf0_put_strict_array_start(buf_t *b, uint32_t count);
/* Shorthands for object members. */
void amf0_put_prop_string(buf_t *b, const char *key, const char *val);
void amf0_put_prop_number(buf_t *b, const char *key, double val);

/* Encodes a whole tree (as decoded). Returns 0, -EINVAL for a tree that
 * AMF0 cannot carry (a key longer than 65535 bytes), -ENOMEM. */
int amf0_encode(buf_t *b, const amf0_value_t *v) __attribute__((warn_unused_result));

#endif
