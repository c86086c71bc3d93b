/*
 * Tests for record/recorder.c: what a recording holds on disk while live
 * and after finalize (exact VOD playlist text, new init segments, the
 * discontinuity, the master), recovery of a recording left "recording"
 * (a half-written journal line and a segment without its bytes left out),
 * and a disk error that skips segments.
 * Real files in a temporary directory; no MP4 here (the integration test
 * checks it with ffprobe).
 */
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
#include <jansson.h>

#include "recorder.h"
#include "test_tmpdir.h"

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *load_json(const char *recdir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/recording.json", recdir);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

typedef struct ready_seen {
    int calls;
    char rid[RECORD_ID_MAX];
    char stream_id[64];
    double duration;
} ready_seen_t;

static void ready_cb(void *opaque, const char *rid, const char *stream_id, double duration_s)
{
    ready_seen_t *s = opaque;
    s->calls++;
    snprintf(s->rid, sizeof(s->rid), "%s", rid);
    snprintf(s->stream_id, sizeof(s->stream_id), "%s", stream_id);
    s->duration = duration_s;
}

static void add(recorder_t *r, const char *rend, int64_t msn, double dur, bool disc,
                const char *data, blob_t *init)
{
    blob_t *b = blob_new(data, strlen(data));
    recorder_segment_t s = {.rendition = rend, .msn = msn, .duration = dur,
                            .pdt_ms = 1767225600000 + msn * 1000, .discontinuity = disc,
                            .data = b, .init = init};
    recorder_add_segment(r, &s);
    blob_unref(b);
}

static void test_broadcast_to_vod(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_recorder");
    ready_seen_t seen = {0};
    recorder_params_t p = {.dir = dir, .stream_id = "shop", .start_wall_ms = 1767225600000,
                           .ready_cb = ready_cb, .ready_opaque = &seen};
    recorder_t *r = NULL;
    assert_int_equal(recorder_open(&p, &r), 0);
    assert_string_equal(recorder_id(r), "shop-20260101T000000Z");
    char recdir[512];
    snprintf(recdir, sizeof(recdir), "%s/%s", dir, recorder_id(r));
    json_t *j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "recording");
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-01-01T00:00:00Z");
    assert_true(json_is_null(json_object_get(j, "ended_at")));
    json_decref(j);

    /* A second recording of the same second gets "-2". */
    recorder_t *r2 = NULL;
    assert_int_equal(recorder_open(&p, &r2), 0);
    assert_string_equal(recorder_id(r2), "shop-20260101T000000Z-2");
    recorder_close(r2, true); /* nothing recorded: removed, no callback */
    snprintf(recdir, sizeof(recdir), "%s/shop-20260101T000000Z-2", dir);
    assert_int_not_equal(access(recdir, F_OK), 0);
    assert_int_equal(seen.calls, 0);
    snprintf(recdir, sizeof(recdir), "%s/%s", dir, recorder_id(r));

    blob_t *init_a = blob_new("INIT-A", 6), *init_b = blob_new("INIT-B", 6);
    blob_t *ainit = blob_new("AINIT", 5);
    blob_t *master = blob_new("#EXTM3U\n#LIVE-MASTER\n", 21);
    add(r, "360p", 100, 2.0, false, "seg100", init_a);
    add(r, "audio", 100, 2.0, false, "aud100", ainit);
    recorder_set_master(r, master);
    add(r, "360p", 101, 2.0, false, "seg101", init_a);
    add(r, "audio", 101, 2.0, false, "aud101", ainit);
    /* The publisher came back with another configuration. */
    add(r, "360p", 102, 1.5, true, "seg102", init_b);
    add(r, "audio", 102, 1.5, true, "aud102", ainit);
    j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "recording");
    assert_int_equal(json_integer_value(json_object_get(j, "segments")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "discontinuities")), 1);
    json_decref(j);
    char *text = slurp(recdir, "360p/journal");
    assert_string_equal(text, "100 2.000000 0 init.mp4 6 1767225700000\n"
                              "101 2.000000 0 init.mp4 6 1767225701000\n"
                              "102 1.500000 1 init-102.mp4 6 1767225702000\n");
    free(text);
    text = slurp(recdir, "360p/init-102.mp4");
    assert_string_equal(text, "INIT-B");
    free(text);
    text = slurp(recdir, "360p/101.m4s");
    assert_string_equal(text, "seg101");
    free(text);
    assert_null(slurp(recdir, "master.m3u8")); /* only at finalize */

    recorder_close(r, true);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.rid, "shop-20260101T000000Z");
    assert_string_equal(seen.stream_id, "shop");
    assert_float_equal(seen.duration, 5.5, 1e-9);

    text = slurp(recdir, "360p/index.m3u8");
    assert_string_equal(text, "#EXTM3U\n"
                              "#EXT-X-VERSION:7\n"
                              "#EXT-X-TARGETDURATION:2\n"
                              "#EXT-X-MEDIA-SEQUENCE:100\n"
                              "#EXT-X-PLAYLIST-TYPE:VOD\n"
                              "#EXT-X-INDEPENDENT-SEGMENTS\n"
                              "#EXT-X-MAP:URI=\"init.mp4\"\n"
                              "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:01:40.000Z\n"
                              "#EXTINF:2.000,\n"
                              "100.m4s\n"
                              "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:01:41.000Z\n"
                              "#EXTINF:2.000,\n"
                              "101.m4s\n"
                              "#EXT-X-DISCONTINUITY\n"
                              "#EXT-X-MAP:URI=\"init-102.mp4\"\n"
                              "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:01:42.000Z\n"
                              "#EXTINF:1.500,\n"
                              "102.m4s\n"
                              "#EXT-X-ENDLIST\n");
    free(text);
    text = slurp(recdir, "master.m3u8");
    assert_string_equal(text, "#EXTM3U\n#LIVE-MASTER\n");
    free(text);
    assert_null(slurp(recdir, ".live-master.m3u8"));
    j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "shop-20260101T000000Z");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    assert_true(json_is_string(json_object_get(j, "ended_at")));
    assert_float_equal(json_real_value(json_object_get(j, "duration_s")), 5.5, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(j, "segments")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "discontinuities")), 1);
    json_t *rends = json_object_get(j, "renditions");
    assert_int_equal(json_array_size(rends), 2);
    assert_string_equal(json_string_value(json_array_get(rends, 0)), "360p");
    assert_string_equal(json_string_value(json_array_get(rends, 1)), "audio");
    assert_true(json_is_null(json_object_get(j, "mp4")));
    assert_true(json_is_null(json_object_get(j, "poster")));
    /* 3 x 6 + 6 + 6 (360p) + 3 x 6 + 5 (audio) + index playlists + journals + master */
    assert_true(json_integer_value(json_object_get(j, "bytes")) > 53);
    json_decref(j);

    blob_unref(init_a);
    blob_unref(init_b);
    blob_unref(ainit);
    blob_unref(master);
    test_tmpdir_remove(dir);
}

static void test_recover_after_a_crash(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_recorder");
    char recdir[512], path[1024];
    snprintf(recdir, sizeof(recdir), "%s/live-20260101T000000Z", dir);
    assert_int_equal(mkdir(recdir, 0755), 0);
    snprintf(path, sizeof(path), "%s/720p", recdir);
    assert_int_equal(mkdir(path, 0755), 0);
    spit(recdir, "recording.json",
         "{\"id\": \"live-20260101T000000Z\", \"stream_id\": \"live\", \"state\": \"recording\", "
         "\"started_at\": \"2026-01-01T00:00:00Z\", \"ended_at\": null, \"duration_s\": 0, "
         "\"bytes\": 0, \"segments\": 0, \"discontinuities\": 0, \"renditions\": [], "
         "\"mp4\": null, \"poster\": null}");
    spit(recdir, "720p/init.mp4", "INIT");
    spit(recdir, "720p/7.m4s", "seven");
    spit(recdir, "720p/8.m4s", "eight");
    spit(recdir, "720p/9.m4s", "nin");   /* cut short: the journal says 4 bytes */
    spit(recdir, "720p/10.m4s", "ten!"); /* written, its journal line was not */
    spit(recdir, "720p/journal", "7 2.000000 0 init.mp4 5 1767225600000\n"
                                 "8 2.000000 0 init.mp4 5 1767225602000\n"
                                 "9 2.000000 0 init.mp4 4 1767225604000\n"
                                 "10 2.00");
    /* A finished one is left alone. */
    char done[512];
    snprintf(done, sizeof(done), "%s/live-20250101T000000Z", dir);
    assert_int_equal(mkdir(done, 0755), 0);
    spit(done, "recording.json", "{\"id\": \"live-20250101T000000Z\", \"state\": \"ready\"}");

    /* Media files but no journal line that vouches for one: kept, failed. */
    char odd[512];
    snprintf(odd, sizeof(odd), "%s/odd-20260101T000000Z", dir);
    assert_int_equal(mkdir(odd, 0755), 0);
    snprintf(path, sizeof(path), "%s/360p", odd);
    assert_int_equal(mkdir(path, 0755), 0);
    spit(odd, "recording.json", "{\"id\": \"odd-20260101T000000Z\", \"stream_id\": \"odd\", "
                                "\"state\": \"recording\"}");
    spit(odd, "360p/0.m4s", "media");
    spit(odd, "360p/journal", "0 1.0\n");
    /* Nothing at all (a crash before the first segment): removed. */
    char empty[512];
    snprintf(empty, sizeof(empty), "%s/empty-20260101T000000Z", dir);
    assert_int_equal(mkdir(empty, 0755), 0);
    spit(empty, "recording.json", "{\"id\": \"empty-20260101T000000Z\", \"stream_id\": "
                                  "\"empty\", \"state\": \"recording\"}");

    ready_seen_t seen = {0};
    assert_int_equal(recorder_recover(dir, false, ready_cb, &seen), 1);
    json_t *jo = load_json(odd);
    assert_string_equal(json_string_value(json_object_get(jo, "state")), "failed");
    json_decref(jo);
    char *media = slurp(odd, "360p/0.m4s");
    assert_string_equal(media, "media");
    free(media);
    assert_int_not_equal(access(empty, F_OK), 0);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.rid, "live-20260101T000000Z");
    assert_string_equal(seen.stream_id, "live");
    char *text = slurp(recdir, "720p/index.m3u8");
    assert_non_null(strstr(text, "#EXT-X-MEDIA-SEQUENCE:7\n"));
    assert_non_null(strstr(text, "7.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z\n"
                                 "#EXTINF:2.000,\n8.m4s\n#EXT-X-ENDLIST\n"));
    assert_null(strstr(text, "9.m4s"));
    assert_null(strstr(text, "10.m4s"));
    free(text);
    /* No live master reached the disk: one made from the renditions. */
    text = slurp(recdir, "master.m3u8");
    assert_non_null(strstr(text, "#EXT-X-STREAM-INF:BANDWIDTH="));
    assert_non_null(strstr(text, "\n720p/index.m3u8\n"));
    free(text);
    json_t *j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    /* Ended at the end of its last segment. */
    assert_string_equal(json_string_value(json_object_get(j, "ended_at")),
                        "2026-01-01T00:00:04Z");
    assert_int_equal(json_integer_value(json_object_get(j, "segments")), 2);
    json_decref(j);
    j = load_json(done);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    assert_null(json_object_get(j, "ended_at"));
    json_decref(j);
    /* Nothing left to recover. */
    assert_int_equal(recorder_recover(dir, false, ready_cb, &seen), 0);
    assert_int_equal(seen.calls, 1);
    test_tmpdir_remove(dir);
}

/* A write error skips the segment, not the recording: writing goes on
 * when it works again, the gap is a discontinuity in the VOD playlist, and
 * recording.json counts it (issue 19, review S8). */
static void test_disk_error_is_a_gap(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_recorder");
    ready_seen_t seen = {0};
    recorder_params_t p = {.dir = dir, .stream_id = "s", .start_wall_ms = 1767225600000,
                           .ready_cb = ready_cb, .ready_opaque = &seen};
    recorder_t *r = NULL;
    assert_int_equal(recorder_open(&p, &r), 0);
    char recdir[512], path[1024];
    snprintf(recdir, sizeof(recdir), "%s/%s", dir, recorder_id(r));
    blob_t *init = blob_new("I", 1);
    add(r, "360p", 1, 2.0, false, "a", init);
    /* A directory where segment 2 must go: its write fails. */
    snprintf(path, sizeof(path), "%s/360p/2.m4s", recdir);
    assert_int_equal(mkdir(path, 0755), 0);
    add(r, "360p", 2, 2.0, false, "b", init);
    json_t *j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "recording");
    json_decref(j);
    add(r, "360p", 3, 2.0, false, "c", init); /* written again */
    add(r, "360p", 4, 2.0, false, "d", init);
    recorder_close(r, true);
    assert_int_equal(seen.calls, 1);
    j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    assert_int_equal(json_integer_value(json_object_get(j, "segments")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "discontinuities")), 1);
    json_t *we = json_object_get(j, "write_errors");
    assert_non_null(we);
    assert_int_equal(json_integer_value(json_object_get(we, "gaps")), 1);
    assert_int_equal(json_integer_value(json_object_get(we, "segments_skipped")), 1);
    assert_string_equal(json_string_value(json_object_get(we, "last")), "360p/2.m4s: Is a directory");
    json_decref(j);
    char rend[600];
    snprintf(rend, sizeof(rend), "%s/360p", recdir);
    char *text = slurp(rend, "index.m3u8");
    assert_non_null(strstr(text, "1.m4s\n#EXT-X-DISCONTINUITY\n"));
    free(text);
    blob_unref(init);

    /* An unusable directory: the broadcast is simply not recorded. */
    char bad[1024];
    snprintf(bad, sizeof(bad), "%s/file", dir);
    spit(dir, "file", "x");
    p.dir = bad;
    assert_int_not_equal(recorder_open(&p, &r), 0);
    assert_null(r);
    test_tmpdir_remove(dir);
}

/* The poster: the stream's thumbnail.jpg in the store, copied once the
 * stream has its second segment; absent thumbnail, no poster. */
static void test_poster(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_recorder");
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    recorder_params_t p = {.dir = dir, .stream_id = "cam", .store = st,
                           .poster_object = "thumbnail.jpg", .start_wall_ms = 1767225600000};
    recorder_t *r = NULL;
    assert_int_equal(recorder_open(&p, &r), 0);
    char recdir[512];
    snprintf(recdir, sizeof(recdir), "%s/%s", dir, recorder_id(r));
    blob_t *init = blob_new("I", 1);
    blob_t *jpeg = blob_new("\xff\xd8JPEG\xff\xd9", 8);
    store_op_t op = {.kind = STORE_OP_PUT, .name = "thumbnail.jpg", .blob = jpeg};
    assert_int_equal(store_commit(st, "cam", &op, 1), 0);
    add(r, "360p", 1, 2.0, false, "a", init);
    assert_null(slurp(recdir, "poster.jpg")); /* the first segment: not yet */
    add(r, "360p", 2, 2.0, false, "b", init);
    char *text = slurp(recdir, "poster.jpg");
    assert_non_null(text);
    assert_memory_equal(text, "\xff\xd8JPEG\xff\xd9", 8);
    free(text);
    json_t *j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "poster")), "poster.jpg");
    json_decref(j);
    recorder_close(r, true);
    j = load_json(recdir);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "poster")), "poster.jpg");
    json_decref(j);

    /* Another stream without a thumbnail. */
    p.stream_id = "dark";
    assert_int_equal(recorder_open(&p, &r), 0);
    snprintf(recdir, sizeof(recdir), "%s/%s", dir, recorder_id(r));
    for (int64_t msn = 1; msn <= 4; msn++)
        add(r, "360p", msn, 2.0, false, "x", init);
    recorder_close(r, true);
    assert_null(slurp(recdir, "poster.jpg"));
    j = load_json(recdir);
    assert_true(json_is_null(json_object_get(j, "poster")));
    json_decref(j);
    blob_unref(init);
    blob_unref(jpeg);
    store_close(st);
    test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_to_vod),
        cmocka_unit_test(test_recover_after_a_crash),
        cmocka_unit_test(test_disk_error_is_a_gap),
        cmocka_unit_test(test_poster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
