/*
 * Tests for transcode/ladder.c (rung list, overrides, sizes for landscape,
 * portrait and odd sources, preset scale) and rung.c's Annex B -> avcC
 * conversion of x264's parameter sets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec_config.h"
#include "ladder_internal.h"
#include "rung_internal.h"

static void fit(const char *name, int sw, int sh, int ew, int eh)
{
    transcode_rung_spec_t r;
    assert_int_equal(ladder_builtin(name, &r), 0);
    int w, h;
    bool ok = ladder_fit(&r, sw, sh, &w, &h);
    if (ew == 0) {
        assert_false(ok);
        return;
    }
    assert_true(ok);
    assert_int_equal(w, ew);
    assert_int_equal(h, eh);
}

static void test_sizes(void **state)
{
    (void)state;
    fit("1080p", 1920, 1080, 1920, 1080);
    fit("720p", 1920, 1080, 1280, 720);
    fit("480p", 1920, 1080, 854, 480);
    fit("360p", 1920, 1080, 640, 360);
    fit("1080p", 1280, 720, 0, 0); /* no upscaling */
    /* Odd aspect: 1366x768 keeps it, even sides. */
    fit("720p", 1366, 768, 1280, 720);
    fit("480p", 1366, 768, 854, 480);
    fit("360p", 1366, 768, 640, 360);
    /* Portrait: the rung names the short side. */
    fit("1080p", 1080, 1920, 1080, 1920);
    fit("720p", 1080, 1920, 720, 1280);
    fit("480p", 1080, 1920, 480, 854);
    fit("360p", 1080, 1920, 360, 640);
    fit("720p", 720, 1280, 720, 1280);
    /* Wider than the box: fitted into it. */
    fit("1080p", 2560, 1080, 1920, 810);
    /* 4:3 keeps 4:3. */
    fit("480p", 640, 480, 640, 480);
    fit("360p", 640, 480, 480, 360);
    /* Odd source sizes still give even outputs. */
    fit("360p", 1279, 719, 640, 360);
}

static void test_parse(void **state)
{
    (void)state;
    transcode_rung_spec_t out[TRANSCODE_RUNGS_MAX];
    size_t n;
    char err[200];
    assert_int_equal(ladder_parse(NULL, NULL, 0, out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_string_equal(out[0].name, "1080p");
    assert_int_equal(out[0].bitrate_kbps, 5000);
    assert_string_equal(out[3].name, "360p");
    assert_int_equal(out[3].width, 640);

    /* Sorted tallest first, duplicates once. */
    assert_int_equal(ladder_parse("360p, 720p,360p", NULL, 0, out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].name, "720p");

    transcode_rung_spec_t ov[2] = {
        {.name = "720p", .bitrate_kbps = 2500, .profile = "main", .preset = "faster"},
        {.name = "540p", .width = 960, .height = 540, .bitrate_kbps = 2000},
    };
    assert_int_equal(ladder_parse("720p,540p", ov, 2, out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].bitrate_kbps, 2500);
    assert_int_equal(out[0].width, 1280);
    assert_string_equal(out[0].profile, "main");
    assert_string_equal(out[0].preset, "faster");
    assert_string_equal(out[1].name, "540p");
    assert_int_equal(out[1].height, 540);

    assert_int_equal(ladder_parse("900p", NULL, 0, out, &n, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unknown rung '900p'"));
    assert_int_equal(ladder_parse("audio", NULL, 0, out, &n, err, sizeof(err)), -EINVAL);
    assert_int_equal(ladder_parse("", NULL, 0, out, &n, err, sizeof(err)), -EINVAL);
    assert_int_equal(ladder_parse("a/b", NULL, 0, out, &n, err, sizeof(err)), -EINVAL);
    transcode_rung_spec_t bad[1] = {{.name = "720p", .width = 1281}};
    assert_int_equal(ladder_parse("720p", bad, 1, out, &n, err, sizeof(err)), -EINVAL);
    transcode_rung_spec_t bad2[1] = {{.name = "720p", .profile = "high10"}};
    assert_int_equal(ladder_parse("720p", bad2, 1, out, &n, err, sizeof(err)), -EINVAL);
    transcode_rung_spec_t bad3[1] = {{.name = "720p", .preset = "quick"}};
    assert_int_equal(ladder_parse("720p", bad3, 1, out, &n, err, sizeof(err)), -EINVAL);
    transcode_rung_spec_t bad4[1] = {{.name = "720p", .bitrate_kbps = 3000, .maxrate_kbps = 2000}};
    assert_int_equal(ladder_parse("720p", bad4, 1, out, &n, err, sizeof(err)), -EINVAL);
}

static void test_presets(void **state)
{
    (void)state;
    assert_int_equal(ladder_preset_index("ultrafast"), 0);
    assert_int_equal(ladder_preset_index("veryfast"), 2);
    assert_int_equal(ladder_preset_index("nope"), -1);
    assert_string_equal(ladder_preset_name(1), "superfast");
    for (int i = 1; i < ladder_preset_count(); i++)
        assert_true(ladder_preset_cost(i) > ladder_preset_cost(i - 1));
    assert_true(ladder_profile_valid("main"));
    assert_false(ladder_profile_valid("high444"));
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
    int n = rung_annexb_to_avcc(in, sizeof(in), out, sizeof(out));
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
    assert_int_equal(rung_annexb_to_avcc(in, sizeof(in), out, 10), -EMSGSIZE);
    assert_int_equal(rung_annexb_to_avcc(in + 30, 8, out, sizeof(out)), -EPROTO);
}

static void test_rung_threads(void **state)
{
    (void)state;
    assert_int_equal(ladder_rung_threads(2, 1920, 1080, 1920, 1080), 2);
    assert_int_equal(ladder_rung_threads(2, 1280, 720, 1920, 1080), 2);
    assert_int_equal(ladder_rung_threads(2, 854, 480, 1920, 1080), 1);
    assert_int_equal(ladder_rung_threads(2, 640, 360, 1920, 1080), 1);
    assert_int_equal(ladder_rung_threads(2, 1280, 720, 1280, 720), 2); /* 1080p copied */
    assert_int_equal(ladder_rung_threads(4, 1280, 720, 1920, 1080), 4);
    assert_int_equal(ladder_rung_threads(4, 854, 480, 1920, 1080), 1);
    assert_int_equal(ladder_rung_threads(4, 854, 480, 1280, 720), 4); /* 44% of 720p */
    assert_int_equal(ladder_rung_threads(4, 426, 240, 1280, 720), 1);
    assert_int_equal(ladder_rung_threads(1, 1920, 1080, 1920, 1080), 1);
    assert_int_equal(ladder_rung_threads(0, 1920, 1080, 0, 0), 1);
}

static void test_scale_source(void **state)
{
    (void)state;
    /* 1080p, 720p, 480p already scaled */
    int cw[] = {1920, 1280, 854}, ch[] = {1080, 720, 480};
    assert_int_equal(ladder_scale_source(1280, 720, cw, ch, 0), -1);
    assert_int_equal(ladder_scale_source(1280, 720, cw, ch, 1), -1); /* 1.5x: source */
    assert_int_equal(ladder_scale_source(854, 480, cw, ch, 2), 0); /* 1080p, 2.25x */
    assert_int_equal(ladder_scale_source(640, 360, cw, ch, 3), 1); /* 720p, 2x */
    assert_int_equal(ladder_scale_source(320, 180, cw, ch, 3), 2); /* 480p, 2.67x */
    int gone_w[] = {1920, 0, 854}, gone_h[] = {1080, 0, 480}; /* 720p dropped */
    assert_int_equal(ladder_scale_source(640, 360, gone_w, gone_h, 3), 0); /* 1080p, 3x */
    int narrow_w[] = {1000}, narrow_h[] = {1200}; /* tall but narrower than the rung */
    assert_int_equal(ladder_scale_source(1280, 720, narrow_w, narrow_h, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_annexb_to_avcc),
        cmocka_unit_test(test_rung_threads),
        cmocka_unit_test(test_scale_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
