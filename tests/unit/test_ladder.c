/*
 * Tests for transcode/ladder.c (rung list, overrides, sizes for landscape,
 * portrait and odd sources, preset scale, a stream's own ladder: its
 * grammar, canonical text and resolution against the server's) and rung.c's
 * Annex B -> avcC conversion of x264's parameter sets.
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


/* A stream's ladder from JSON text: 0 and *out, or -EINVAL with the error
 * containing `want`. */
static const transcode_rung_spec_t defined[] = {
    {.name = "540p", .width = 960, .height = 540, .bitrate_kbps = 2000},
    {.name = "720p", .bitrate_kbps = 2500, .maxrate_kbps = 3000, .preset = "faster"},
};

static void bad(const char *text, const char *want)
{
    transcode_ladder_t l;
    char err[256] = "";
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    assert_int_equal(transcode_ladder_from_json(v, defined, 2, &l, err, sizeof(err)), -EINVAL);
    json_decref(v);
    if (!strstr(err, want))
        fail_msg("%s: error '%s' does not say '%s'", text, err, want);
}

static void good(const char *text, const char *canonical)
{
    transcode_ladder_t l;
    char err[256] = "", out[TRANSCODE_LADDER_TEXT_MAX];
    if (transcode_ladder_parse(text, defined, 2, &l, err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
    assert_int_equal(transcode_ladder_format(&l, out), 0);
    assert_string_equal(out, canonical);
    /* The canonical text reads back as the same ladder. */
    transcode_ladder_t again;
    assert_int_equal(transcode_ladder_parse(out, defined, 2, &again, err, sizeof(err)), 0);
    assert_memory_equal(&l, &again, sizeof(l));
}

static void test_stream_ladder_valid(void **state)
{
    (void)state;
    good("{\"rungs\": [\"720p\", {\"name\": \"480p\", \"bitrate_kbps\": 1000}, \"360p\"], "
         "\"preset\": \"veryfast\", \"passthrough\": \"auto\"}",
         "{\"rungs\":[\"720p\",{\"name\":\"480p\",\"bitrate_kbps\":1000},\"360p\"],"
         "\"preset\":\"veryfast\",\"passthrough\":\"auto\"}");
    /* Every field optional; null is "the server's". */
    good("{}", "{}");
    good("{\"rungs\": null, \"preset\": null, \"passthrough\": null}", "{}");
    good("{\"passthrough\": \"never\"}", "{\"passthrough\":\"never\"}");
    good("{\"preset\": \"ultrafast\"}", "{\"preset\":\"ultrafast\"}");
    /* A rung object without a bit rate is its name; the configuration's
     * rungs count; the bounds are inclusive. */
    good("{\"rungs\": [{\"name\": \"360p\"}, {\"name\": \"540p\", \"bitrate_kbps\": 100}, "
         "{\"name\": \"1080p\", \"bitrate_kbps\": 20000}, {\"name\": \"720p\", "
         "\"bitrate_kbps\": null}]}",
         "{\"rungs\":[\"360p\",{\"name\":\"540p\",\"bitrate_kbps\":100},"
         "{\"name\":\"1080p\",\"bitrate_kbps\":20000},\"720p\"]}");

    transcode_ladder_t l;
    char err[256];
    assert_int_equal(transcode_ladder_parse("{\"rungs\":[\"480p\"],\"passthrough\":\"never\"}",
                                            NULL, 0, &l, err, sizeof(err)), 0);
    assert_int_equal(l.nrungs, 1);
    assert_string_equal(l.rungs[0].name, "480p");
    assert_int_equal(l.rungs[0].bitrate_kbps, 0);
    assert_string_equal(l.preset, "");
    assert_int_equal(l.passthrough, TRANSCODE_PASSTHROUGH_NEVER);
    assert_int_equal(transcode_ladder_parse("{}", NULL, 0, &l, err, sizeof(err)), 0);
    assert_int_equal(l.passthrough, -1);
    assert_int_equal(l.nrungs, 0);
}

static void test_stream_ladder_invalid(void **state)
{
    (void)state;
    bad("null", "ladder must be an object");
    bad("[\"720p\"]", "ladder must be an object");
    bad("\"720p,360p\"", "ladder must be an object");
    bad("{\"rung\": [\"720p\"]}", "ladder: unknown field \"rung\"");
    bad("{\"rungs\": \"720p\"}", "ladder.rungs must be a list");
    bad("{\"rungs\": []}", "ladder.rungs needs at least one rung");
    bad("{\"rungs\": [\"1080p\", \"720p\", \"540p\", \"480p\", \"360p\"]}",
        "ladder.rungs: 5 rungs, at most 4");
    bad("{\"rungs\": [\"720p\", 480]}", "ladder.rungs[1] must be a rung name or");
    bad("{\"rungs\": [\"900p\"]}", "ladder.rungs[0]: unknown rung \"900p\"");
    bad("{\"rungs\": [\"audio\"]}", "ladder.rungs[0]: unknown rung \"audio\"");
    bad("{\"rungs\": [\"\"]}", "ladder.rungs[0]: unknown rung \"\"");
    bad("{\"rungs\": [\"a\\nb\"]}", "ladder.rungs[0]: unknown rung \"a?b\"");
    bad("{\"rungs\": [\"360p\", {\"name\": \"360p\", \"bitrate_kbps\": 500}]}",
        "ladder.rungs[1]: \"360p\" is listed twice");
    bad("{\"rungs\": [{\"bitrate_kbps\": 500}]}", "ladder.rungs[0].name must be a rung name");
    bad("{\"rungs\": [{\"name\": \"360p\", \"kbps\": 500}]}",
        "ladder.rungs[0]: unknown field \"kbps\" (name, bitrate_kbps)");
    bad("{\"rungs\": [{\"name\": \"360p\", \"bitrate_kbps\": \"500\"}]}",
        "ladder.rungs[0].bitrate_kbps must be a whole number");
    bad("{\"rungs\": [{\"name\": \"360p\", \"bitrate_kbps\": 500.5}]}",
        "ladder.rungs[0].bitrate_kbps must be a whole number");
    bad("{\"rungs\": [\"720p\", {\"name\": \"360p\", \"bitrate_kbps\": 99}]}",
        "ladder.rungs[1].bitrate_kbps: 99 is out of range (100 to 20000 kb/s)");
    bad("{\"rungs\": [{\"name\": \"360p\", \"bitrate_kbps\": 20001}]}",
        "ladder.rungs[0].bitrate_kbps: 20001 is out of range");
    bad("{\"preset\": \"warp\"}", "ladder.preset: \"warp\" is not an x264 preset");
    bad("{\"preset\": 3}", "ladder.preset: \"(not a string)\" is not an x264 preset");
    bad("{\"passthrough\": true}", "ladder.passthrough must be \"auto\" or \"never\"");
    bad("{\"passthrough\": \"always\"}", "ladder.passthrough must be \"auto\" or \"never\"");

    transcode_ladder_t l;
    char err[256];
    assert_int_equal(transcode_ladder_parse("{\"rungs\":", NULL, 0, &l, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "not valid JSON"));
    assert_int_equal(transcode_ladder_parse(NULL, NULL, 0, &l, err, sizeof(err)), -EINVAL);
    /* Duplicate keys are refused, not silently the last one. */
    assert_int_equal(transcode_ladder_parse("{\"preset\":\"fast\",\"preset\":\"slow\"}", NULL,
                                            0, &l, err, sizeof(err)), -EINVAL);
    /* A rung of the configuration is unknown without it. */
    assert_int_equal(transcode_ladder_parse("{\"rungs\":[\"540p\"]}", NULL, 0, &l, err,
                                            sizeof(err)), -EINVAL);
}

static void test_stream_ladder_resolve(void **state)
{
    (void)state;
    transcode_rung_spec_t server[TRANSCODE_RUNGS_MAX], out[TRANSCODE_RUNGS_MAX];
    size_t nserver, n;
    char err[256];
    assert_int_equal(ladder_parse("720p,360p", defined, 2, server, &nserver, err, sizeof(err)),
                     0);

    /* No rungs, no preset: the server's ladder as it is. */
    transcode_ladder_t l;
    assert_int_equal(transcode_ladder_parse("{\"passthrough\":\"never\"}", defined, 2, &l, err,
                                            sizeof(err)), 0);
    assert_int_equal(ladder_resolve(&l, server, nserver, defined, 2, out, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, server, 2 * sizeof(*out));
    assert_string_equal(out[0].preset, "faster"); /* [rung.720p] preset kept */

    /* Rungs with bit rates, sorted tallest first; the configuration's
     * overrides apply; a stream preset replaces the rungs' own. */
    assert_int_equal(transcode_ladder_parse("{\"rungs\":[{\"name\":\"360p\",\"bitrate_kbps\":"
                                            "300},\"540p\",{\"name\":\"720p\",\"bitrate_kbps\":"
                                            "4000}],\"preset\":\"superfast\"}",
                                            defined, 2, &l, err, sizeof(err)), 0);
    assert_int_equal(ladder_resolve(&l, server, nserver, defined, 2, out, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].name, "720p");
    assert_int_equal(out[0].bitrate_kbps, 4000);
    assert_int_equal(out[0].maxrate_kbps, 0); /* 3000 is below 4000: 1.5 x then */
    assert_string_equal(out[0].preset, "");
    assert_string_equal(out[1].name, "540p");
    assert_int_equal(out[1].bitrate_kbps, 2000);
    assert_int_equal(out[1].width, 960);
    assert_string_equal(out[2].name, "360p");
    assert_int_equal(out[2].bitrate_kbps, 300);
    assert_int_equal(out[2].width, 640);

    /* A bit rate under the configured maxrate keeps it. */
    assert_int_equal(transcode_ladder_parse("{\"rungs\":[{\"name\":\"720p\",\"bitrate_kbps\":"
                                            "2000}]}", defined, 2, &l, err, sizeof(err)), 0);
    assert_int_equal(ladder_resolve(&l, server, nserver, defined, 2, out, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].maxrate_kbps, 3000);
    assert_string_equal(out[0].preset, "faster");

    /* A stored ladder naming a rung the configuration dropped since. */
    assert_int_equal(transcode_ladder_parse("{\"rungs\":[\"540p\"]}", defined, 2, &l, err,
                                            sizeof(err)), 0);
    assert_int_equal(ladder_resolve(&l, server, nserver, NULL, 0, out, &n, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "540p"));
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
        cmocka_unit_test(test_stream_ladder_valid),
        cmocka_unit_test(test_stream_ladder_invalid),
        cmocka_unit_test(test_stream_ladder_resolve),
        cmocka_unit_test(test_rung_threads),
        cmocka_unit_test(test_scale_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
