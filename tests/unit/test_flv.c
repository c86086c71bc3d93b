/* Unit tests for ingest/flv.c: H.264 and AAC tag bodies, other codecs,
 * Enhanced RTMP headers and malformed bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flv_internal.h"

static void test_avc_config(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x17, 0x00, 0x00, 0x00, 0x00,
                                   0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x00};
    flv_tag_t t;
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, body, sizeof(body), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_CONFIG);
    assert_int_equal(t.codec, MEDIA_CODEC_H264);
    assert_true(t.keyframe);
    assert_int_equal(t.cts, 0);
    assert_ptr_equal(t.payload, body + 5);
    assert_int_equal(t.payload_len, sizeof(body) - 5);
}

static void test_avc_nalus_and_cts(void **state)
{
    (void)state;
    /* Inter frame, CTS +66. */
    static const uint8_t p[] = {0x27, 0x01, 0x00, 0x00, 0x42, 0, 0, 0, 2, 0x41, 0x9a};
    flv_tag_t t;
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, p, sizeof(p), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_false(t.keyframe);
    assert_int_equal(t.frame_type, 2);
    assert_int_equal(t.cts, 66);
    assert_int_equal(t.payload_len, 6);
    /* Keyframe, CTS -33 (signed 24 bit). */
    static const uint8_t k[] = {0x17, 0x01, 0xff, 0xff, 0xdf, 0, 0, 0, 1, 0x65};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, k, sizeof(k), &t), 0);
    assert_true(t.keyframe);
    assert_int_equal(t.cts, -33);
    /* The extreme values. */
    static const uint8_t mx[] = {0x27, 0x01, 0x7f, 0xff, 0xff, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, mx, sizeof(mx), &t), 0);
    assert_int_equal(t.cts, 8388607);
    static const uint8_t mn[] = {0x27, 0x01, 0x80, 0x00, 0x00, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, mn, sizeof(mn), &t), 0);
    assert_int_equal(t.cts, -8388608);
}

static void test_avc_end_and_info(void **state)
{
    (void)state;
    static const uint8_t eos[] = {0x17, 0x02, 0, 0, 0};
    flv_tag_t t;
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, eos, sizeof(eos), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_END_OF_SEQUENCE);
    assert_null(t.payload);
    static const uint8_t info[] = {0x57, 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, info, sizeof(info), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
}

static void test_aac(void **state)
{
    (void)state;
    static const uint8_t cfg[] = {0xaf, 0x00, 0x11, 0x90};
    flv_tag_t t;
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, cfg, sizeof(cfg), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_CONFIG);
    assert_int_equal(t.codec, MEDIA_CODEC_AAC);
    assert_int_equal(t.payload_len, 2);
    assert_memory_equal(t.payload, cfg + 2, 2);
    static const uint8_t raw[] = {0xaf, 0x01, 0x21, 0x10, 0x04};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, raw, sizeof(raw), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_int_equal(t.payload_len, 3);
}

static void test_unsupported_codecs(void **state)
{
    (void)state;
    flv_tag_t t;
    static const uint8_t mp3[] = {0x2f, 0xff, 0xfb};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, mp3, sizeof(mp3), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_UNSUPPORTED);
    assert_int_equal(t.codec_id, 2);
    assert_string_equal(flv_codec_name(FLV_TAG_AUDIO, t.codec_id, false), "MP3");
    static const uint8_t vp6[] = {0x14, 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, vp6, sizeof(vp6), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_UNSUPPORTED);
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, t.codec_id, t.enhanced), "VP6");
    /* Enhanced RTMP with a FourCC we do not ingest ('vp09'). */
    static const uint8_t vp9[] = {0x91, 'v', 'p', '0', '9', 0, 0, 0, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, vp9, sizeof(vp9), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_UNSUPPORTED);
    assert_true(t.enhanced);
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, t.codec_id, t.enhanced),
                        "VP9 (Enhanced RTMP)");
    static const uint8_t hevc[] = {0x91, 'h', 'v', 'c', '1', 0, 0, 0, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hevc, sizeof(hevc), &t), 0);
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, t.codec_id, t.enhanced),
                        "HEVC (Enhanced RTMP)");
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, 9, false), "unknown");
}

/* Enhanced RTMP (v1/v2): sequence start, coded frames with and without a
 * composition time, sequence end, metadata, command frames, ModEx and
 * single-track Multitrack, for 'hvc1', 'av01' and 'avc1'. */
static void test_enhanced(void **state)
{
    (void)state;
    flv_tag_t t;
    static const uint8_t hstart[] = {0x90, 'h', 'v', 'c', '1', 0x01, 0x01, 0x60};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hstart, sizeof(hstart), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_CONFIG);
    assert_int_equal(t.codec, MEDIA_CODEC_HEVC);
    assert_true(t.enhanced && t.keyframe);
    assert_int_equal(t.payload_len, 3);
    /* CodedFrames: SI24 composition time -16 for HEVC. */
    static const uint8_t hframe[] = {0xa1, 'h', 'v', 'c', '1', 0xff, 0xff, 0xf0, 0, 0, 0, 1, 2};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hframe, sizeof(hframe), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_false(t.keyframe);
    assert_int_equal(t.cts, -16);
    assert_int_equal(t.payload_len, 5);
    /* CodedFramesX: no composition time. */
    static const uint8_t hx[] = {0x93, 'h', 'v', 'c', '1', 0, 0, 0, 1, 0x26};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hx, sizeof(hx), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_true(t.keyframe);
    assert_int_equal(t.cts, 0);
    assert_int_equal(t.payload_len, 5);
    static const uint8_t hend[] = {0x92, 'h', 'v', 'c', '1'};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hend, sizeof(hend), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_END_OF_SEQUENCE);
    /* AV1 CodedFrames carry OBUs straight after the FourCC. */
    static const uint8_t aframe[] = {0x91, 'a', 'v', '0', '1', 0x12, 0x00, 0x32};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, aframe, sizeof(aframe), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_int_equal(t.codec, MEDIA_CODEC_AV1);
    assert_int_equal(t.payload_len, 3);
    assert_int_equal(t.cts, 0);
    /* 'avc1' through the extended header is H.264. */
    static const uint8_t avc1[] = {0x91, 'a', 'v', 'c', '1', 0, 0, 0x21, 0, 0, 0, 1, 0x65};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, avc1, sizeof(avc1), &t), 0);
    assert_int_equal(t.codec, MEDIA_CODEC_H264);
    assert_int_equal(t.cts, 0x21);
    /* Metadata and command frames are informational. */
    static const uint8_t meta[] = {0x94, 'h', 'v', 'c', '1', 0x02, 0x00, 0x01, 'x'};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, meta, sizeof(meta), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
    static const uint8_t cmd[] = {0xd1, 'h', 'v', 'c', '1', 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, cmd, sizeof(cmd), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
    /* ModEx (one 1-byte modifier) then CodedFramesX. */
    static const uint8_t modex[] = {0x97, 0x00, 0xaa, 0x03, 'h', 'v', 'c', '1', 0, 0, 0, 1, 2};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, modex, sizeof(modex), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_int_equal(t.payload_len, 5);
    /* Multitrack, one track: track 0 is ingested, another is ignored. */
    static const uint8_t mt0[] = {0x96, 0x03, 'a', 'v', '0', '1', 0x00, 0x12, 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, mt0, sizeof(mt0), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    assert_int_equal(t.codec, MEDIA_CODEC_AV1);
    assert_int_equal(t.payload_len, 2);
    static const uint8_t mt1[] = {0x96, 0x03, 'a', 'v', '0', '1', 0x01, 0x12, 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, mt1, sizeof(mt1), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
    /* Malformed: unknown packet type, nothing after a sequence start,
     * a ModEx chain that never ends, a cut composition time. */
    static const uint8_t badpt[] = {0x98, 'h', 'v', 'c', '1', 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, badpt, sizeof(badpt), &t), -EPROTO);
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hstart, 5, &t), -EPROTO);
    static const uint8_t loop[] = {0x97, 0, 0, 7, 0, 0, 7, 0, 0, 7, 0, 0, 7, 0, 0, 7, 0, 0, 7,
                                   0, 0, 7, 0, 0, 7, 0, 0, 7, 0, 0, 7};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, loop, sizeof(loop), &t), -EPROTO);
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hframe, 7, &t), -EPROTO);
}

/* Enhanced RTMP v2 audio: 'mp4a' is AAC; multichannel config, other
 * tracks and other FourCCs are not ingested. */
static void test_enhanced_audio(void **state)
{
    (void)state;
    flv_tag_t t;
    static const uint8_t start[] = {0x90, 'm', 'p', '4', 'a', 0x11, 0x90};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, start, sizeof(start), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_CONFIG);
    assert_int_equal(t.codec, MEDIA_CODEC_AAC);
    assert_true(t.enhanced);
    assert_int_equal(t.payload_len, 2);
    static const uint8_t frame[] = {0x91, 'm', 'p', '4', 'a', 0x21, 0x10};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, frame, sizeof(frame), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    static const uint8_t mc[] = {0x94, 'm', 'p', '4', 'a', 0x01, 0x02};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, mc, sizeof(mc), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
    static const uint8_t opus[] = {0x91, 'O', 'p', 'u', 's', 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, opus, sizeof(opus), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_UNSUPPORTED);
    assert_string_equal(flv_codec_name(FLV_TAG_AUDIO, t.codec_id, t.enhanced),
                        "Opus (Enhanced RTMP)");
    static const uint8_t mt[] = {0x95, 0x01, 'm', 'p', '4', 'a', 0x00, 0x21};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, mt, sizeof(mt), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_MEDIA);
    static const uint8_t mt2[] = {0x95, 0x01, 'm', 'p', '4', 'a', 0x02, 0x21};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, mt2, sizeof(mt2), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_INFO);
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, start, 5, &t), -EPROTO);
    static const uint8_t badpt[] = {0x93, 'm', 'p', '4', 'a', 0x00};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, badpt, sizeof(badpt), &t), -EPROTO);
}

static void test_malformed(void **state)
{
    (void)state;
    flv_tag_t t;
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, (const uint8_t *)"", 0, &t), 0);
    assert_int_equal(t.kind, FLV_KIND_EMPTY);
    /* Header cut short. */
    static const uint8_t v[] = {0x17, 0x01, 0x00, 0x00};
    for (size_t n = 1; n <= sizeof(v); n++)
        assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, v, n, &t), -EPROTO);
    static const uint8_t a[] = {0xaf};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, a, sizeof(a), &t), -EPROTO);
    /* Config / media with nothing after the header. */
    static const uint8_t vcfg[] = {0x17, 0x00, 0, 0, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, vcfg, sizeof(vcfg), &t), -EPROTO);
    assert_null(t.payload);
    static const uint8_t araw[] = {0xaf, 0x01};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, araw, sizeof(araw), &t), -EPROTO);
    /* Unknown packet types. */
    static const uint8_t vpt[] = {0x17, 0x03, 0, 0, 0, 1};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, vpt, sizeof(vpt), &t), -EPROTO);
    static const uint8_t apt[] = {0xaf, 0x02, 1};
    assert_int_equal(flv_parse_tag(FLV_TAG_AUDIO, apt, sizeof(apt), &t), -EPROTO);
    /* Not an audio/video tag. */
    assert_int_equal(flv_parse_tag(FLV_TAG_SCRIPT, apt, sizeof(apt), &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avc_config),
        cmocka_unit_test(test_avc_nalus_and_cts),
        cmocka_unit_test(test_avc_end_and_info),
        cmocka_unit_test(test_aac),
        cmocka_unit_test(test_enhanced),
        cmocka_unit_test(test_enhanced_audio),
        cmocka_unit_test(test_unsupported_codecs),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
