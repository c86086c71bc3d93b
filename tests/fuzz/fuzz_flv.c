/*
 * libFuzzer target for ingest/flv.c. Input: one selector byte (0 video,
 * 1 audio, 2 script), then a tag body. Checks that what the parser points
 * at lies inside the body.
 */
#include <stdint.h>
#include <stdlib.h>

#include "flv_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t types[3] = {FLV_TAG_VIDEO, FLV_TAG_AUDIO, FLV_TAG_SCRIPT};
    uint8_t type = types[data[0] % 3];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    flv_tag_t t;
    int ret = flv_parse_tag(type, body, len, &t);
    if (ret != 0)
        return 0;
    (void)flv_codec_name(type, t.codec_id, t.enhanced);
    if (t.kind == FLV_KIND_CONFIG || t.kind == FLV_KIND_MEDIA) {
        if (!t.payload || t.payload_len == 0 || t.payload < body ||
            t.payload + t.payload_len != body + len)
            abort();
        if (t.codec != MEDIA_CODEC_H264 && t.codec != MEDIA_CODEC_AAC &&
            t.codec != MEDIA_CODEC_HEVC && t.codec != MEDIA_CODEC_AV1)
            abort();
        if ((t.codec == MEDIA_CODEC_HEVC || t.codec == MEDIA_CODEC_AV1) && !t.enhanced)
            abort();
        volatile uint8_t sink = t.payload[t.payload_len - 1];
        (void)sink;
    }
    if (t.cts < -8388608 || t.cts > 8388607)
        abort();
    return 0;
}
