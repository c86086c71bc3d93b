/* Unit tests for ingest/flv.c: H.264 and AAC tag bodies, other codecs,
 * Enhanced RTMP headers and malformed bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flv.h"

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
    /* Enhanced RTMP: IsExHeader, packet type 1 (coded frames), 'hvc1'. */
    static const uint8_t hevc[] = {0x91, 'h', 'v', 'c', '1', 0, 0, 0, 0};
    assert_int_equal(flv_parse_tag(FLV_TAG_VIDEO, hevc, sizeof(hevc), &t), 0);
    assert_int_equal(t.kind, FLV_KIND_UNSUPPORTED);
    assert_true(t.enhanced);
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, t.codec_id, t.enhanced),
                        "HEVC (Enhanced RTMP)");
    assert_string_equal(flv_codec_name(FLV_TAG_VIDEO, 9, false), "unknown");
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
        cmocka_unit_test(test_unsupported_codecs),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
