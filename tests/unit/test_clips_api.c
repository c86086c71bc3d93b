/*
 * Tests for control/clips.c (the admin API's clips) and the clip worker's
 * bookkeeping (transcode/clip.c): request bodies and their bounds, the
 * program date-time grammar, a range resolved against a recording's
 * journals (held, not held, across a discontinuity, audio missing), a
 * clip's JSON in the recordings layout, a failed making with its reason,
 * a clip left "processing" by a crash becoming "failed: interrupted", and
 * deletion.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clips_internal.h"
#include "record_layout.h"
#include "retention.h"

static json_t *js(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static int parse(const char *text, bool recording, clips_range_t *r)
{
    json_t *j = js(text);
    char why[256];
    int rc = clips_range_parse(j, recording, r, why, sizeof(why));
    json_decref(j);
    return rc;
}

static void test_range_parse(void **state)
{
    (void)state;
    clips_range_t r;
    assert_int_equal(parse("{\"last\": 30}", false, &r), 0);
    assert_true(r.last_s == 30 && r.duration_s == 30);
    assert_int_equal(
        parse("{\"start\": \"2026-12-07T17:50:00.250Z\", \"duration\": 4.5}", false, &r), 0);
    assert_true(r.has_start && r.duration_s == 4.5);
    assert_int_equal(r.start_ms, 1796665800250LL);
    assert_int_equal(parse("{\"start_offset\": 12.5, \"duration\": 10}", true, &r), 0);
    assert_true(r.has_offset && r.start_offset_s == 12.5);
    /* bounds: 1..300 s */
    assert_int_equal(parse("{\"last\": 0.5}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": 301}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": 300}", false, &r), 0);
    /* the wrong shape for the source, mixed forms, wrong types */
    assert_int_equal(parse("{\"last\": 30}", true, &r), -EINVAL);
    assert_int_equal(parse("{\"start_offset\": 1, \"duration\": 4}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": 30, \"duration\": 4}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": \"30\"}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"start\": \"yesterday\", \"duration\": 4}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"start_offset\": -1, \"duration\": 4}", true, &r), -EINVAL);
    assert_int_equal(parse("[]", false, &r), -EINVAL);
    /* a chosen rendition */
    assert_int_equal(parse("{\"last\": 30, \"rendition\": \"720p\"}", false, &r), 0);
    assert_string_equal(r.rendition, "720p");
    assert_int_equal(parse("{\"last\": 30}", false, &r), 0);
    assert_string_equal(r.rendition, "");
    assert_int_equal(parse("{\"last\": 30, \"rendition\": \"audio\"}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": 30, \"rendition\": \"../x\"}", false, &r), -EINVAL);
    assert_int_equal(parse("{\"last\": 30, \"rendition\": 720}", false, &r), -EINVAL);
}

static void test_pdt_parse(void **state)
{
    (void)state;
    assert_int_equal(clips_pdt_parse("1970-01-01T00:00:01Z"), 1000);
    assert_int_equal(clips_pdt_parse("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(clips_pdt_parse("1970-01-01T00:00:01.0257Z"), 1025);
    assert_int_equal(clips_pdt_parse("1970-01-01T00:00:01.Z"), -1);
    assert_int_equal(clips_pdt_parse("1970-01-01T00:00:01"), -1);
    assert_int_equal(clips_pdt_parse("1970-13-01T00:00:01Z"), -1);
    assert_int_equal(clips_pdt_parse("1970-01-01 00:00:01Z"), -1);
    assert_int_equal(clips_pdt_parse(NULL), -1);
}

/* ---- a recording on disk ---------------------------------------------- */

static char dir[256];

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mk(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-clips-XXXXXX");
    assert_non_null(mkdtemp(dir));
    mk("shop-20261207T170000Z");
    mk("shop-20261207T170000Z/720p");
    mk("shop-20261207T170000Z/360p");
    mk("shop-20261207T170000Z/audio");
    put("shop-20261207T170000Z/recording.json",
        "{\"stream_id\": \"shop\", \"state\": \"recording\", \"started_at\": "
        "\"2026-12-07T17:00:00Z\"}");
    /* 4 segments of 2 s from 17:00:00.000; a discontinuity before the 4th */
    const char *j = "1 2.000 0 init.mp4 10 1796662800000\n"
                    "2 2.000 0 init.mp4 10 1796662802000\n"
                    "3 2.000 0 init.mp4 10 1796662804000\n"
                    "4 2.000 1 init-4.mp4 10 1796662806000\n";
    put("shop-20261207T170000Z/720p/journal", j);
    put("shop-20261207T170000Z/360p/journal", j);
    /* audio lags: 3 segments */
    put("shop-20261207T170000Z/audio/journal", "1 2.000 0 init.mp4 10 1796662800000\n"
                                               "2 2.000 0 init.mp4 10 1796662802000\n"
                                               "3 2.000 0 init.mp4 10 1796662804000\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int create(clip_service_t *svc, const char *stream, const char *rid, const char *body,
                  json_t **out)
{
    clips_range_t r;
    int rc = parse(body, rid != NULL, &r);
    if (rc < 0)
        return rc;
    clips_source_t src = {.stream_id = stream, .rid = rid};
    char why[256];
    return clips_create(dir, NULL, svc, &src, &r, out, why, sizeof(why));
}

static json_t *wait_state(const char *cid)
{
    for (int i = 0; i < 500; i++) {
        json_t *j = NULL;
        assert_int_equal(clips_get(dir, cid, &j), 0);
        if (strcmp(json_string_value(json_object_get(j, "state")), "processing") != 0)
            return j;
        json_decref(j);
        usleep(10000);
    }
    fail_msg("clip %s still processing", cid);
    return NULL;
}

static void test_create_resolve(void **state)
{
    (void)state;
    clip_service_params_t p = {.recordings_dir = dir};
    clip_service_t *svc = NULL;
    assert_int_equal(clip_service_new(&p, &svc), 0);
    json_t *j = NULL;
    /* the last 3 s: up to where audio and video both hold media (6 s), the
     * top rung (720p) */
    assert_int_equal(create(svc, "shop", NULL, "{\"last\": 3}", &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "start_at")),
                        "2026-12-07T17:00:03.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "rendition")), "720p");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "processing");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "clip");
    char cid[RECORD_ID_MAX];
    snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    /* the files are no media: the making fails, with a reason */
    j = wait_state(cid);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_non_null(json_string_value(json_object_get(j, "reason")));
    json_decref(j);
    /* a chosen rendition, and one the recording does not have */
    assert_int_equal(create(svc, "shop", NULL, "{\"last\": 3, \"rendition\": \"360p\"}", &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "rendition")), "360p");
    json_decref(j);
    assert_int_equal(create(svc, "shop", NULL, "{\"last\": 3, \"rendition\": \"480p\"}", &j),
                     -ERANGE);
    /* a recording's clip by offset */
    assert_int_equal(
        create(svc, NULL, "shop-20261207T170000Z", "{\"start_offset\": 0.5, \"duration\": 2}", &j),
        0);
    assert_string_equal(json_string_value(json_object_get(j, "start_at")),
                        "2026-12-07T17:00:00.500Z");
    json_decref(j);
    /* not held: before, after the audio, across the discontinuity */
    assert_int_equal(
        create(svc, "shop", NULL, "{\"start\": \"2026-12-07T16:59:59Z\", \"duration\": 2}", &j),
        -ERANGE);
    assert_int_equal(
        create(svc, "shop", NULL, "{\"start\": \"2026-12-07T17:00:05Z\", \"duration\": 2}", &j),
        -ERANGE);
    assert_int_equal(
        create(svc, NULL, "shop-20261207T170000Z", "{\"start_offset\": 0, \"duration\": 7}", &j),
        -ERANGE);
    /* audio catches up: a range across the discontinuity is refused, one
     * after it is fine */
    put("shop-20261207T170000Z/audio/journal", "1 2.000 0 init.mp4 10 1796662800000\n"
                                               "2 2.000 0 init.mp4 10 1796662802000\n"
                                               "3 2.000 0 init.mp4 10 1796662804000\n"
                                               "4 2.000 1 init-4.mp4 10 1796662806000\n");
    assert_int_equal(
        create(svc, "shop", NULL, "{\"start\": \"2026-12-07T17:00:05Z\", \"duration\": 2}", &j),
        -ERANGE);
    assert_int_equal(
        create(svc, "shop", NULL, "{\"start\": \"2026-12-07T17:00:06Z\", \"duration\": 2}", &j), 0);
    json_decref(j);
    /* no such stream / recording */
    assert_int_equal(create(svc, "other", NULL, "{\"last\": 3}", &j), -ENOENT);
    assert_int_equal(
        create(svc, NULL, "shop-20991207T170000Z", "{\"start_offset\": 0, \"duration\": 2}", &j),
        -ENOENT);
    /* listed; a clip is no recording; deleted */
    json_t *list = NULL;
    assert_int_equal(clips_list(dir, &list), 0);
    assert_int_equal(json_array_size(list), 4);
    json_decref(list);
    record_info_t info;
    assert_int_equal(record_read(dir, cid, &info), 0);
    assert_true(info.clip);
    record_info_deinit(&info);
    assert_int_equal(clips_get(dir, "shop-20261207T170000Z", &j), -ENOENT);
    assert_int_equal(clips_delete(dir, "shop-20261207T170000Z"), -ENOENT);
    assert_int_equal(clips_delete(dir, cid), 0);
    assert_int_equal(clips_get(dir, cid, &j), -ENOENT);
    clip_service_free(svc);
}

static void test_interrupted(void **state)
{
    (void)state;
    mk("clip-00000000000000aa");
    put("clip-00000000000000aa/recording.json",
        "{\"kind\": \"clip\", \"stream_id\": \"shop\", \"state\": \"processing\"}");
    put("clip-00000000000000aa/.clip.mp4.tmp", "half");
    clip_service_params_t p = {.recordings_dir = dir};
    clip_service_t *svc = NULL;
    assert_int_equal(clip_service_new(&p, &svc), 0);
    json_t *j = NULL;
    assert_int_equal(clips_get(dir, "clip-00000000000000aa", &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "interrupted");
    json_decref(j);
    char path[512];
    snprintf(path, sizeof(path), "%s/clip-00000000000000aa/.clip.mp4.tmp", dir);
    assert_int_equal(access(path, F_OK), -1);
    clip_service_free(svc);
}

static void test_retention(void **state)
{
    (void)state;
    mk("clip-00000000000000b1");
    put("clip-00000000000000b1/recording.json",
        "{\"kind\": \"clip\", \"stream_id\": \"shop\", "
        "\"state\": \"ready\", \"started_at\": \"2020-01-01T00:00:00Z\"}");
    mk("clip-00000000000000b2");
    put("clip-00000000000000b2/recording.json",
        "{\"kind\": \"clip\", \"stream_id\": \"shop\", "
        "\"state\": \"ready\", \"started_at\": \"2099-01-01T00:00:00Z\"}");
    mk("clip-00000000000000b3");
    put("clip-00000000000000b3/recording.json",
        "{\"kind\": \"clip\", \"stream_id\": \"shop\", "
        "\"state\": \"processing\", \"started_at\": \"2020-01-01T00:00:00Z\"}");
    /* recordings' retention leaves clips alone */
    assert_int_equal(record_retention(dir, 1, 1), 0);
    json_t *j = NULL;
    assert_int_equal(clips_get(dir, "clip-00000000000000b1", &j), 0);
    json_decref(j);
    /* the clip worker's start: the old ready one goes; the new one stays; the
     * processing one is first marked failed (interrupted), then old: goes */
    clip_service_params_t p = {.recordings_dir = dir, .max_age_s = 86400};
    clip_service_t *svc = NULL;
    assert_int_equal(clip_service_new(&p, &svc), 0);
    assert_int_equal(clips_get(dir, "clip-00000000000000b1", &j), -ENOENT);
    assert_int_equal(clips_get(dir, "clip-00000000000000b3", &j), -ENOENT);
    assert_int_equal(clips_get(dir, "clip-00000000000000b2", &j), 0);
    json_decref(j);
    clip_service_free(svc);
}

static const char *MASTER =
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/"
    "index.m3u8\"\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"audio\"\n360p/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,AUDIO=\"audio\"\n1080p/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,AUDIO=\"audio\"\n720p/index.m3u8\n";

/* 3 segments of 2 s from 17:00:00 (the third without its own PDT), parts
 * and hints between them */
static const char *MEDIA =
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T17:00:00.000Z\n#EXTINF:2.000,\n41.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T17:00:02.000Z\n#EXTINF:2.000,\n42.m4s\n"
    "#EXT-X-PART:DURATION=0.5,URI=\"43.0.m4s\"\n#EXTINF:2.000,\n43.m4s\n"
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"44.0.m4s\"\n";

static void test_playlists_parse(void **state)
{
    (void)state;
    char v[RECORD_RENDITION_MAX], a[RECORD_RENDITION_MAX];
    assert_int_equal(clips_master_parse(MASTER, strlen(MASTER), v, a), 0);
    assert_string_equal(v, "1080p");
    assert_string_equal(a, "audio");
    assert_int_equal(clips_master_parse("#EXTM3U\n", 8, v, a), -ENOENT);
    char all[4][RECORD_RENDITION_MAX];
    size_t na = 0;
    assert_int_equal(clips_master_list(MASTER, strlen(MASTER), all, 4, &na), 0);
    assert_int_equal(na, 4);
    assert_string_equal(all[0], "audio");
    assert_string_equal(all[1], "360p");
    assert_string_equal(all[3], "720p");
    assert_int_equal(clips_master_list(MASTER, strlen(MASTER), all, 2, &na), 0);
    assert_int_equal(na, 2); /* at most max */
    record_seg_t *segs = NULL;
    size_t n = 0;
    assert_int_equal(clips_playlist_parse(MEDIA, strlen(MEDIA), &segs, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(segs[0].msn, 41);
    assert_int_equal(segs[2].msn, 43);
    assert_string_equal(segs[2].init, "init.mp4");
    assert_int_equal(segs[1].pdt_ms - segs[0].pdt_ms, 2000);
    assert_int_equal(segs[2].pdt_ms - segs[0].pdt_ms, 4000); /* carried forward */
    assert_true(segs[1].duration == 2.0);
    free(segs);
}

static void put_blob(store_t *st, const char *name, const char *text)
{
    blob_t *b = blob_new(text, strlen(text));
    assert_non_null(b);
    store_op_t op = {.kind = STORE_OP_PUT, .name = name, .blob = b};
    assert_int_equal(store_commit(st, "live", &op, 1), 0);
    blob_unref(b);
}

static void test_live_window(void **state)
{
    (void)state;
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    put_blob(st, "master.m3u8", MASTER);
    put_blob(st, "1080p/index.m3u8", MEDIA);
    put_blob(st, "audio/index.m3u8", MEDIA);
    const char *objs[] = {"1080p/init.mp4", "1080p/41.m4s", "1080p/42.m4s", "1080p/43.m4s",
                          "audio/init.mp4", "audio/41.m4s", "audio/42.m4s", "audio/43.m4s"};
    for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
        put_blob(st, objs[i], "not media");
    clip_service_params_t p = {.recordings_dir = dir};
    clip_service_t *svc = NULL;
    assert_int_equal(clip_service_new(&p, &svc), 0);
    clips_range_t r;
    clips_source_t src = {.stream_id = "live"};
    char why[256];
    json_t *j = NULL;
    /* no recording of "live": the last 3 s of its window, from the tallest rung */
    assert_int_equal(parse("{\"last\": 3}", false, &r), 0);
    assert_int_equal(clips_create(dir, st, svc, &src, &r, &j, why, sizeof(why)), 0);
    assert_string_equal(json_string_value(json_object_get(j, "start_at")),
                        "2026-12-07T17:00:03.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "rendition")), "1080p");
    char cid[RECORD_ID_MAX];
    snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(j, "id")));
    assert_true(json_is_null(json_object_get(j, "source_recording")) ||
                !json_object_get(j, "source_recording"));
    json_decref(j);
    /* the making fails on these bytes, with a reason; the HLS form is not
     * written for a failed clip */
    json_t *done = wait_state(cid);
    assert_string_equal(json_string_value(json_object_get(done, "state")), "failed");
    assert_null(json_object_get(done, "hls"));
    json_decref(done);
    /* not held by the window */
    assert_int_equal(parse("{\"start\": \"2026-12-07T16:59:00Z\", \"duration\": 3}", false, &r), 0);
    assert_int_equal(clips_create(dir, st, svc, &src, &r, &j, why, sizeof(why)), -ERANGE);
    assert_non_null(strstr(why, "live window"));
    /* a segment gone from the store meanwhile */
    store_op_t del = {.kind = STORE_OP_DELETE, .name = "1080p/42.m4s"};
    assert_int_equal(store_commit(st, "live", &del, 1), 0);
    assert_int_equal(parse("{\"last\": 5}", false, &r), 0);
    assert_int_equal(clips_create(dir, st, svc, &src, &r, &j, why, sizeof(why)), -ERANGE);
    /* a stream neither live nor recorded */
    src.stream_id = "gone";
    assert_int_equal(clips_create(dir, st, svc, &src, &r, &j, why, sizeof(why)), -ENOENT);
    clip_service_free(svc);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_parse),
        cmocka_unit_test(test_pdt_parse),
        cmocka_unit_test(test_playlists_parse),
        cmocka_unit_test_setup_teardown(test_live_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
