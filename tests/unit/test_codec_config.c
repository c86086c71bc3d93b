/*
 * Tests for common/codec_config.c with records produced by ffmpeg/libx264
 * and the native AAC encoder (4:2:0 8-bit with and without cropping,
 * baseline, 4:4:4, 10-bit, interlaced), hand-built HE-AAC/PS configs, and
 * malformed input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec_config.h"
#include "test_util.h"

typedef struct avcc_case {
    const char *hex;
    const char *codec;
    int width, height, fps_num, fps_den, chroma, depth;
} avcc_case_t;

static const avcc_case_t avcc_cases[] = {
    /* 1280x720 high, 30 fps, -g 60 -bf 2 */
    {"0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000468ef8fcbfdf8f800",
     "avc1.64001f", 1280, 720, 60, 2, 1, 8},
    /* 1920x1080 (1088 coded, cropped), 25 fps */
    {"01640028ffe1001967640028acb403c0113f2e0220000003002000000641e3065401000468ef0fcbfdf8f800",
     "avc1.640028", 1920, 1080, 50, 2, 1, 8},
    /* 640x360 constrained baseline, 24 fps */
    {"0142c01effe100196742c01ed900a02ff97011000003000100000300300f162e4801000568cb83cb20",
     "avc1.42c01e", 640, 360, 48, 2, 1, 8},
    /* 854x480 4:4:4 predictive, 29.97 fps */
    {"01f4001fffe1001967f4001f919b281b07bc5f808800001f480007530078c18cb001000668ebe3c44844fff8f800",
     "avc1.f4001f", 854, 480, 60000, 2002, 3, 8},
    /* 1280x720 high 10, 60 fps */
    {"016e0020ffe1001a676e0020a6cd9405005bb011000003000100000300780f18319601000668ebe3cb22c0fdfafa00",
     "avc1.6e0020", 1280, 720, 120, 2, 1, 10},
    /* 720x576 interlaced (frame_mbs_only_flag = 0) */
    {"0164001effe100186764001eacd940b424d8088000000300800000190f8a14cb01000668fba3cb22c0fdf8f800",
     "avc1.64001e", 720, 576, 50, 2, 1, 8},
};

static void test_avcc_real_records(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(avcc_cases) / sizeof(avcc_cases[0]); i++) {
        const avcc_case_t *c = &avcc_cases[i];
        uint8_t buf[256];
        size_t n = unhex(c->hex, buf, sizeof(buf));
        h264_config_t cfg;
        assert_int_equal(h264_parse_avcc(buf, n, &cfg), 0);
        char codec[16];
        h264_codec_string(&cfg, codec, sizeof(codec));
        assert_string_equal(codec, c->codec);
        assert_int_equal(cfg.width, c->width);
        assert_int_equal(cfg.height, c->height);
        assert_int_equal(cfg.fps_num, c->fps_num);
        assert_int_equal(cfg.fps_den, c->fps_den);
        assert_int_equal(cfg.chroma_format_idc, c->chroma);
        assert_int_equal(cfg.bit_depth_luma, c->depth);
        assert_int_equal(cfg.nal_length_size, 4);
    }
}

static void test_avcc_every_truncation_fails(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = unhex(avcc_cases[0].hex, buf, sizeof(buf));
    h264_config_t cfg;
    /* Cutting into the PPS list or the SPS must fail, never read past. */
    for (size_t len = 0; len < n - 4; len++) /* the last 4: High profile extension */
        assert_int_not_equal(h264_parse_avcc(buf, len, &cfg), 0);
}

static void test_avcc_malformed(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = unhex(avcc_cases[0].hex, buf, sizeof(buf));
    h264_config_t cfg;

    uint8_t bad[256];
    memcpy(bad, buf, n);
    bad[0] = 2; /* version */
    assert_int_equal(h264_parse_avcc(bad, n, &cfg), -EPROTO);
    memcpy(bad, buf, n);
    bad[4] = 0xfe; /* lengthSizeMinusOne = 2 */
    assert_int_equal(h264_parse_avcc(bad, n, &cfg), -EPROTO);
    memcpy(bad, buf, n);
    bad[5] = 0xe0; /* no SPS */
    assert_int_equal(h264_parse_avcc(bad, n, &cfg), -EPROTO);
    memcpy(bad, buf, n);
    bad[8] = 0x68; /* first "SPS" is a PPS NAL */
    assert_int_equal(h264_parse_avcc(bad, n, &cfg), -EPROTO);

    /* 16384+ macroblock columns: over the limit. */
    static const char huge[] = "0164001fffe1000a6764001fac00000000800100";
    n = unhex(huge, bad, sizeof(bad));
    int ret = h264_parse_avcc(bad, n, &cfg);
    assert_true(ret == -EMSGSIZE || ret == -EPROTO);
    assert_int_equal(h264_parse_avcc(NULL, 0, &cfg), -EPROTO);
}

static void test_avcc_emulation_prevention(void **state)
{
    (void)state;
    /* An SPS whose RBSP has "00 00 03" sequences: the 03 bytes must be
     * skipped. pic_width_in_mbs_minus1 = 79 (1280), height 45 MBs (720) and
     * no VUI, written with an emulation-prevention byte in the middle. */
    /* The 720p record's VUI timing info is written as
     * "00 00 03 00 00 00 01 00 00 00 3c" shifted by a few bits: the "03"
     * bytes are emulation prevention. Only a reader that drops them gets
     * num_units_in_tick = 1 and time_scale = 60. */
    uint8_t buf[64];
    size_t n = unhex(avcc_cases[0].hex, buf, sizeof(buf));
    size_t epb = 0;
    for (size_t i = 8; i + 2 < n; i++)
        if (buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 3)
            epb++;
    assert_int_equal(epb, 2);
    h264_config_t ok;
    assert_int_equal(h264_parse_avcc(buf, n, &ok), 0);
    assert_int_equal(ok.fps_num, 60);
    assert_int_equal(ok.fps_den, 2);
}

/* IDR or not: an SEI then an IDR slice (4-byte lengths), an open-GOP
 * recovery point (SEI + non-IDR I slice), 1- and 2-byte lengths, and
 * malformed lengths. */
static void test_sample_has_idr(void **state)
{
    (void)state;
    static const uint8_t idr4[] = {0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 3, 0x65, 0x88, 0x84};
    static const uint8_t open4[] = {0, 0, 0, 2, 0x06, 0x06, 0, 0, 0, 3, 0x41, 0x9a, 0x02};
    static const uint8_t idr1[] = {2, 0x09, 0x10, 3, 0x25, 0x88, 0x84};
    static const uint8_t idr2[] = {0, 3, 0x65, 0x88, 0x84};
    assert_true(h264_sample_has_idr(idr4, sizeof(idr4), 4));
    assert_false(h264_sample_has_idr(open4, sizeof(open4), 4));
    assert_true(h264_sample_has_idr(idr1, sizeof(idr1), 1));
    assert_true(h264_sample_has_idr(idr2, sizeof(idr2), 2));
    assert_false(h264_sample_has_idr(idr4, sizeof(idr4), 3));
    /* The IDR NAL's length runs past the end; a zero length; truncated. */
    static const uint8_t past[] = {0, 0, 0, 9, 0x65, 0x88};
    static const uint8_t zero[] = {0, 0, 0, 0, 0x65};
    assert_false(h264_sample_has_idr(past, sizeof(past), 4));
    assert_false(h264_sample_has_idr(zero, sizeof(zero), 4));
    for (size_t n = 0; n < 10; n++)
        assert_false(h264_sample_has_idr(idr4, n, 4));
    assert_false(h264_sample_has_idr(NULL, 0, 4));
}

/* CEA-608 captions in SEI: an unregistered-data message, then the A/53
 * cc_data message (one byte pair, field 1) and an IDR slice; a copy with
 * 1-byte lengths; the same message with process_cc_data_flag clear, with
 * cc_count 0 or 2 (one triplet there), and with another T.35 provider's
 * identifier ("DTG1", AFD);
 * an earlier message whose payload needed an emulation-prevention byte
 * (payload sizes count RBSP bytes); truncations and sizes that lie. */
#define CC_A53 0x04, 0x0e, 0xb5, 0x00, 0x31, 0x47, 0x41, 0x39, 0x34, 0x03
static void test_sample_has_captions(void **state)
{
    (void)state;
    static const uint8_t cc4[] = {0,    0,      0,    23,   0x06, 0x05, 0x03, 0xaa, 0xbb,
                                  0xcc, CC_A53, 0x41, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80,
                                  0,    0,      0,    3,    0x65, 0x88, 0x84};
    static const uint8_t cc1[] = {18,   0x06, CC_A53, 0x41, 0xff, 0xfc, 0x94,
                                  0x20, 0xff, 0x80,   3,    0x65, 0x88, 0x84};
    static const uint8_t no_flag[] = {18, 0x06, CC_A53, 0x01, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80};
    static const uint8_t no_count[] = {18, 0x06, CC_A53, 0x40, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80};
    static const uint8_t afd[] = {18,   0x06, 0x04, 0x0e, 0xb5, 0x00, 0x31, 0x44, 0x54, 0x47,
                                  0x31, 0x03, 0x41, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80};
    /* Message 1: type 5, 4 RBSP bytes 00 00 01 02, written 00 00 03 01 02. */
    static const uint8_t epb[] = {25,     0x06, 0x05, 0x04, 0x00, 0x00, 0x03, 0x01, 0x02,
                                  CC_A53, 0x41, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80};
    /* cc_count 2 but room for one triplet (and the marker byte). */
    static const uint8_t short_cc[] = {18, 0x06, CC_A53, 0x42, 0xff, 0xfc, 0x94, 0x20, 0xff, 0x80};
    static const uint8_t plain[] = {0,    0, 0, 6, 0x06, 0x05, 0x03, 0xaa, 0xbb,
                                    0xcc, 0, 0, 0, 3,    0x65, 0x88, 0x84};
    assert_true(h264_sample_has_captions(cc4, sizeof(cc4), 4));
    assert_true(h264_sample_has_captions(cc1, sizeof(cc1), 1));
    assert_true(h264_sample_has_captions(epb, sizeof(epb), 1));
    assert_false(h264_sample_has_captions(no_flag, sizeof(no_flag), 1));
    assert_false(h264_sample_has_captions(no_count, sizeof(no_count), 1));
    assert_false(h264_sample_has_captions(afd, sizeof(afd), 1));
    assert_false(h264_sample_has_captions(short_cc, sizeof(short_cc), 1));
    assert_false(h264_sample_has_captions(plain, sizeof(plain), 4));
    assert_false(h264_sample_has_captions(cc4, sizeof(cc4), 3));
    /* Cut anywhere inside the SEI NAL unit: its length runs past the end. */
    for (size_t n = 0; n < 4 + 23; n++)
        assert_false(h264_sample_has_captions(cc4, n, 4));
    /* A payloadSize of 255 x 4 + 1 bytes with only a few there; a
     * payloadType that never ends. */
    static const uint8_t big[] = {9, 0x06, 0x04, 0xff, 0xff, 0xff, 0xff, 0x01, 0xb5, 0x00};
    static const uint8_t endless[] = {5, 0x06, 0xff, 0xff, 0xff, 0xff};
    assert_false(h264_sample_has_captions(big, sizeof(big), 1));
    assert_false(h264_sample_has_captions(endless, sizeof(endless), 1));
    assert_false(h264_sample_has_captions(NULL, 0, 4));
}

static void test_asc(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        int aot, rate, channels;
        const char *codec;
    } cases[] = {
        {"118856e500", 2, 48000, 1, "mp4a.40.2"},
        {"121056e500", 2, 44100, 2, "mp4a.40.2"},
        {"138856e500", 2, 22050, 1, "mp4a.40.2"},
        {"129056e500", 2, 32000, 2, "mp4a.40.2"},
        {"1190", 2, 48000, 2, "mp4a.40.2"},
        {"2b920800", 5, 44100, 2, "mp4a.40.5"},  /* HE-AAC, explicit SBR */
        {"eb098800", 29, 48000, 1, "mp4a.40.29"}, /* HE-AACv2 (PS) */
        {"13b8", 2, 22050, 8, "mp4a.40.2"},      /* channel_configuration 7 */
        {"17805dc010", 2, 48000, 2, "mp4a.40.2"}, /* escaped 24-bit rate */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[16];
        size_t n = unhex(cases[i].hex, buf, sizeof(buf));
        aac_config_t cfg;
        assert_int_equal(aac_parse_asc(buf, n, &cfg), 0);
        assert_int_equal(cfg.object_type, cases[i].aot);
        assert_int_equal(cfg.sample_rate, cases[i].rate);
        assert_int_equal(cfg.channels, cases[i].channels);
        char codec[16];
        aac_codec_string(&cfg, codec, sizeof(codec));
        assert_string_equal(codec, cases[i].codec);
    }
}

static void test_asc_malformed(void **state)
{
    (void)state;
    aac_config_t cfg;
    static const uint8_t empty[1] = {0};
    assert_int_equal(aac_parse_asc(empty, 0, &cfg), -EPROTO);
    static const uint8_t one[] = {0x12};
    assert_int_equal(aac_parse_asc(one, sizeof(one), &cfg), -EPROTO);
    static const uint8_t aot0[] = {0x01, 0x10};
    assert_int_equal(aac_parse_asc(aot0, sizeof(aot0), &cfg), -EPROTO);
    static const uint8_t rate13[] = {0x16, 0x88}; /* reserved index 13 */
    assert_int_equal(aac_parse_asc(rate13, sizeof(rate13), &cfg), -EPROTO);
    static const uint8_t chan8[] = {0x11, 0xc0}; /* reserved channel config 8 */
    assert_int_equal(aac_parse_asc(chan8, sizeof(chan8), &cfg), -EPROTO);
    static const uint8_t sbr_cut[] = {0x2b, 0x92};
    assert_int_equal(aac_parse_asc(sbr_cut, sizeof(sbr_cut), &cfg), -EPROTO);
}

/* ---- HEVC and AV1 (Enhanced RTMP) ---------------------------------- */

/* hvcC that ffmpeg's mp4 muxer wrote for libx265 (ultrafast, 320x240, Main). */
static const uint8_t hvcc_x265_320x240[] = {
    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x3c, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20,
    0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60,
    0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
    0x3c, 0xba, 0x02, 0x40, 0x21, 0x00, 0x01, 0x00, 0x28, 0x42, 0x01, 0x01,
    0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x5b, 0xa4, 0xa4, 0xc2,
    0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c,
    0x84, 0x22, 0x00, 0x01, 0x00, 0x06, 0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89,
};

/* av1C that ffmpeg's mp4 muxer wrote for libaom-av1 (320x240, Main 8-bit). */
static const uint8_t av1c_aom_320x240[] = {
    0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff,
    0xbc, 0xda, 0xf9, 0x00, 0x40,
};

static void test_hvcc_real_record(void **state)
{
    (void)state;
    hevc_config_t c;
    assert_int_equal(hevc_parse_hvcc(hvcc_x265_320x240, sizeof(hvcc_x265_320x240), &c), 0);
    assert_int_equal(c.profile_idc, 1);
    assert_int_equal(c.tier_flag, 0);
    assert_int_equal(c.level_idc, 60);
    assert_int_equal(c.nal_length_size, 4);
    assert_int_equal(c.width, 320);
    assert_int_equal(c.height, 240);
    assert_int_equal(c.chroma_format_idc, 1);
    assert_int_equal(c.bit_depth_luma, 8);
    char codec[40];
    hevc_codec_string(&c, codec, sizeof(codec));
    assert_string_equal(codec, "hvc1.1.6.L60.90");
    /* Every truncation fails cleanly (ASan checks the reads). */
    for (size_t n = 0; n < sizeof(hvcc_x265_320x240); n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, hvcc_x265_320x240, n);
        assert_true(hevc_parse_hvcc(copy, n, &c) < 0);
        free(copy);
    }
    /* A later configuration version is refused; a small buffer truncates. */
    uint8_t bad[sizeof(hvcc_x265_320x240)];
    memcpy(bad, hvcc_x265_320x240, sizeof(bad));
    bad[0] = 2;
    assert_int_equal(hevc_parse_hvcc(bad, sizeof(bad), &c), -EPROTO);
    char small[8];
    hevc_codec_string(&c, small, sizeof(small));
    assert_int_equal(strlen(small), 7);
}

static void test_av1c_real_record(void **state)
{
    (void)state;
    av1_config_t c;
    assert_int_equal(av1_parse_av1c(av1c_aom_320x240, sizeof(av1c_aom_320x240), &c), 0);
    assert_int_equal(c.seq_profile, 0);
    assert_int_equal(c.bit_depth, 8);
    assert_int_equal(c.chroma_subsampling_x, 1);
    assert_int_equal(c.chroma_subsampling_y, 1);
    assert_int_equal(c.width, 320);
    assert_int_equal(c.height, 240);
    char codec[24];
    av1_codec_string(&c, codec, sizeof(codec));
    assert_string_equal(codec, "av01.0.00M.08");
    /* Without configOBUs: fields from the 4-byte header, no size. */
    assert_int_equal(av1_parse_av1c(av1c_aom_320x240, 4, &c), 0);
    assert_int_equal(c.width, 0);
    for (size_t n = 0; n < 4; n++)
        assert_int_equal(av1_parse_av1c(av1c_aom_320x240, n, &c), -EPROTO);
    /* A sequence header cut inside: malformed. */
    for (size_t n = 6; n < sizeof(av1c_aom_320x240); n++)
        assert_true(av1_parse_av1c(av1c_aom_320x240, n, &c) < 0);
    /* Wrong marker/version byte. */
    uint8_t bad[sizeof(av1c_aom_320x240)];
    memcpy(bad, av1c_aom_320x240, sizeof(bad));
    bad[0] = 0x01;
    assert_int_equal(av1_parse_av1c(bad, sizeof(bad), &c), -EPROTO);
    /* An OBU with the forbidden bit, and a leb128 size that never ends. */
    static const uint8_t forbidden[] = {0x81, 0, 0x0c, 0, 0x8a, 0x01, 0};
    assert_int_equal(av1_parse_av1c(forbidden, sizeof(forbidden), &c), -EPROTO);
    static const uint8_t leb[] = {0x81, 0, 0x0c, 0, 0x0a, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(av1_parse_av1c(leb, sizeof(leb), &c), -EPROTO);
}

static void test_annexb_to_avcc(void **state)
{
    (void)state;
    /* A real 64x64 High-profile SPS and a PPS, with 4- and 3-byte start
     * codes and a trailing zero. */
    static const uint8_t in[] = {
        0, 0, 0, 1, 0x67, 0x64, 0x00, 0x0a, 0xac, 0xd9, 0x44, 0x26, 0xc0, 0x44, 0x00, 0x00,
        0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x48, 0x96, 0x58, 0x00,
        0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0};
    uint8_t out[128];
    int n = h264_avcc_from_annexb(in, sizeof(in), out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0x64);
    assert_int_equal(out[3], 0x0a);
    assert_int_equal(out[4], 0xff);
    assert_int_equal(out[5], 0xe1);
    assert_int_equal((out[6] << 8) | out[7], 24); /* trailing zero cut */
    h264_config_t c;
    assert_int_equal(h264_parse_avcc(out, (size_t)n, &c), 0);
    assert_int_equal(c.width, 64);
    assert_int_equal(c.height, 64);
    assert_int_equal(c.nal_length_size, 4);
    assert_int_equal(h264_avcc_from_annexb(in, sizeof(in), out, 10), -EMSGSIZE);
    assert_int_equal(h264_avcc_from_annexb(in + 30, 8, out, sizeof(out)), -EPROTO);
}

static void test_annexb_to_sample(void **state)
{
    (void)state;
    /* AUD, SPS, PPS, IDR slice, SEI: the sample keeps the slice and SEI. */
    static const uint8_t in[] = {0, 0, 0, 1, 0x09, 0xf0,
                                 0, 0, 0, 1, 0x67, 0x42, 0x00, 0x1e,
                                 0, 0, 1, 0x68, 0xce,
                                 0, 0, 1, 0x65, 0x88, 0x84, 0x00,
                                 0, 0, 1, 0x06, 0x05, 0x01};
    uint8_t out[64];
    h264_au_info_t info;
    int n = h264_annexb_to_sample(in, sizeof(in), out, sizeof(out), &info);
    assert_int_equal(n, 4 + 3 + 4 + 3);
    assert_true(info.idr);
    assert_true(info.has_ps);
    assert_int_equal(info.nals, 2);
    static const uint8_t want[] = {0, 0, 0, 3, 0x65, 0x88, 0x84, 0, 0, 0, 3, 0x06, 0x05, 0x01};
    assert_memory_equal(out, want, sizeof(want));
    assert_true(h264_sample_has_idr(out, (size_t)n, 4));
    assert_int_equal(h264_annexb_to_sample(in, sizeof(in), out, 8, &info), -EMSGSIZE);
    /* a non-IDR slice alone */
    static const uint8_t p[] = {0, 0, 1, 0x41, 0x9a, 0x02};
    n = h264_annexb_to_sample(p, sizeof(p), out, sizeof(out), &info);
    assert_int_equal(n, 7);
    assert_false(info.idr);
    assert_false(info.has_ps);
    /* no start code at all */
    assert_int_equal(h264_annexb_to_sample(p + 3, 3, out, sizeof(out), &info), 0);
}

static void test_adts(void **state)
{
    (void)state;
    /* AAC-LC 48 kHz stereo, no CRC, frame of 10 bytes (7 + 3). */
    static const uint8_t f[] = {0xff, 0xf1, 0x4c, 0x80, 0x01, 0x5f, 0xfc, 0x21, 0x10, 0x04};
    aac_adts_t h;
    assert_int_equal(aac_parse_adts(f, sizeof(f), &h), 0);
    assert_int_equal(h.header_len, 7);
    assert_int_equal(h.frame_len, 10);
    assert_int_equal(h.object_type, 2);
    assert_int_equal(h.sample_rate, 48000);
    assert_int_equal(h.channel_config, 2);
    uint8_t asc[2];
    aac_asc_from_adts(&h, asc);
    assert_int_equal(asc[0], 0x11);
    assert_int_equal(asc[1], 0x90);
    aac_config_t c;
    assert_int_equal(aac_parse_asc(asc, 2, &c), 0);
    assert_int_equal(c.sample_rate, 48000);
    assert_int_equal(c.channels, 2);
    assert_int_equal(aac_parse_adts(f, 9, &h), -EAGAIN);
    assert_int_equal(aac_parse_adts(f, 3, &h), -EAGAIN);
    uint8_t bad[10];
    memcpy(bad, f, sizeof(bad));
    bad[0] = 0xfe;
    assert_int_equal(aac_parse_adts(bad, sizeof(bad), &h), -EPROTO);
    memcpy(bad, f, sizeof(bad));
    bad[2] = 0x7c; /* sample rate index 15 */
    assert_int_equal(aac_parse_adts(bad, sizeof(bad), &h), -EPROTO);
    memcpy(bad, f, sizeof(bad));
    bad[3] = 0x00; bad[4] = 0x00; bad[5] = 0x1f; /* frame length 0 */
    assert_int_equal(aac_parse_adts(bad, sizeof(bad), &h), -EPROTO);
}

static void test_hvcc_from_annexb(void **state)
{
    (void)state;
    /* x265's VPS, SPS and PPS for a 64x64 Main-profile picture, an SEI and
     * the start of an IDR slice. */
    static const uint8_t in[] = {
        0x00, 0x00, 0x00, 0x01, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00,
        0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x95, 0x94, 0x09,
        0x00, 0x00, 0x00, 0x01, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90,
        0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0xa0, 0x20, 0x81, 0x05, 0x96, 0x56,
        0x54, 0xa4, 0xc2, 0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00,
        0x07, 0x84, 0x00, 0x00, 0x00, 0x01, 0x44, 0x01, 0xc0, 0x73, 0xc0, 0x89,
        0x00, 0x00, 0x01, 0x4e, 0x01, 0x05, 0x01, 0x80,
        0x00, 0x00, 0x01, 0x28, 0x01, 0xaf, 0x1d, 0x80};
    uint8_t out[256];
    int n = hevc_hvcc_from_annexb(in, sizeof(in), out, sizeof(out));
    assert_true(n > 23);
    hevc_config_t c;
    assert_int_equal(hevc_parse_hvcc(out, (size_t)n, &c), 0);
    assert_int_equal(c.profile_idc, 1);
    assert_int_equal(c.level_idc, 30);
    assert_int_equal(c.width, 64);
    assert_int_equal(c.height, 64);
    assert_int_equal(c.nal_length_size, 4);
    assert_int_equal(c.chroma_format_idc, 1);
    assert_int_equal(c.bit_depth_luma, 8);
    char codec[40];
    hevc_codec_string(&c, codec, sizeof(codec));
    assert_string_equal(codec, "hvc1.1.6.L30.90");
    assert_int_equal(hevc_hvcc_from_annexb(in, sizeof(in), out, 40), -EMSGSIZE);
    assert_int_equal(hevc_hvcc_from_annexb(in + 28, sizeof(in) - 28, out, sizeof(out)), -EPROTO);

    uint8_t sample[256];
    h264_au_info_t info;
    n = hevc_annexb_to_sample(in, sizeof(in), sample, sizeof(sample), &info);
    assert_int_equal(n, 4 + 5 + 4 + 5); /* the SEI and the slice */
    assert_true(info.idr);
    assert_true(info.has_ps);
    assert_int_equal(info.nals, 2);
    assert_int_equal((sample[4] >> 1) & 0x3f, 39);
    assert_int_equal((sample[13] >> 1) & 0x3f, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avcc_real_records),
        cmocka_unit_test(test_avcc_every_truncation_fails),
        cmocka_unit_test(test_avcc_malformed),
        cmocka_unit_test(test_avcc_emulation_prevention),
        cmocka_unit_test(test_sample_has_idr),
        cmocka_unit_test(test_sample_has_captions),
        cmocka_unit_test(test_asc),
        cmocka_unit_test(test_asc_malformed),
        cmocka_unit_test(test_hvcc_real_record),
        cmocka_unit_test(test_av1c_real_record),
        cmocka_unit_test(test_annexb_to_avcc),
        cmocka_unit_test(test_annexb_to_sample),
        cmocka_unit_test(test_adts),
        cmocka_unit_test(test_hvcc_from_annexb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
