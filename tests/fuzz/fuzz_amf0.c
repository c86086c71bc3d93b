/*
 * libFuzzer target for ingest/amf0.c: decodes the input as an AMF0 value
 * sequence under tight limits and, when that works, checks that encoding is
 * stable (encode(decode(encode(decode(x)))) == encode(decode(x))); and
 * takes the timed-metadata text from it as an in-band data message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amf0_internal.h"
#include "timed_meta_internal.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_amf0_encode_all(const amf0_value_t *list, buf_t *b)
{
    for (size_t i = 0; i < list->count; i++)
        if (amf0_encode(b, amf0_at(list, i)) != 0)
            return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    amf0_limits_t lim = {.max_depth = 8, .max_string = 4096, .max_nodes = 4096};

    amf0_value_t *one = NULL;
    size_t used = 0;
    if (amf0_decode(data, size, &lim, &one, &used) == 0) {
        if (used == 0 || used > size)
            abort();
        amf0_value_free(one);
    }

    amf0_value_t *list = NULL;
    if (amf0_decode_all(data, size, &lim, &list) != 0)
        return 0;
    /* What a session looks at in a command. */
    (void)amf0_string(amf0_get(amf0_at(list, 2), "app"));
    (void)amf0_number(amf0_at(list, 1), 0);
    /* What a session takes from a data message as timed metadata. */
    const amf0_value_t *text = ingest_tmeta_text(list);
    if (text && (!text->str || text->len > lim.max_string))
        abort();
    if (text)
        (void)utf8_valid((const uint8_t *)text->str, text->len);

    buf_t enc1 = {0}, enc2 = {0};
    amf0_value_t *again = NULL;
    if (fuzz_amf0_encode_all(list, &enc1) != 0)
        abort(); /* anything decoded must be encodable */
    if (amf0_decode_all(enc1.bytes, enc1.len, &lim, &again) != 0)
        abort();
    if (fuzz_amf0_encode_all(again, &enc2) != 0 || enc1.len != enc2.len ||
        (enc1.len && memcmp(enc1.data, enc2.data, enc1.len) != 0))
        abort();
    amf0_value_free(again);
    amf0_value_free(list);
    buf_deinit(&enc1);
    buf_deinit(&enc2);
    return 0;
}
