/*
 * Tests for record/record_layout.c, the one owner of the recordings
 * directory format: the recording id grammar, reading recording.json
 * (good, malformed, cut short, too large, through a link), the safe open of
 * a recording's files, listing, and the delete that renames a recording
 * aside before removing it, and which renditions a recording holds. Real
 * files in a temporary directory.
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>

#include "record_layout.h"
#include "test_tmpdir.h"

/* DIR/RID/name with text (and DIR/RID made). */
static void spit(const char *dir, const char *rid, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rid);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, rid, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *const GOOD =
    "{\"id\": \"shop-20261122T113903Z\", \"stream_id\": \"shop\", \"state\": \"ready\", "
    "\"started_at\": \"2026-11-22T11:39:03Z\", \"ended_at\": \"2026-11-22T12:41:10Z\", "
    "\"duration_s\": 3727.0, \"segments\": 1864}";

static void test_id_grammar(void **state)
{
    (void)state;
    static const char *const good[] = {
        "shop-20261122T113903Z", "shop-20261122T113903Z-2", "a", "A_b-9",
        /* 63 characters: the longest the recorder makes */
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-20261122T113903Z",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(record_id_valid(good[i]));
    assert_int_equal(strlen(good[4]), 62);
    char longest[RECORD_ID_MAX];
    memset(longest, 'x', RECORD_ID_MAX - 1);
    longest[RECORD_ID_MAX - 1] = '\0';
    assert_true(record_id_valid(longest));
    char too_long[RECORD_ID_MAX + 1];
    memset(too_long, 'x', RECORD_ID_MAX);
    too_long[RECORD_ID_MAX] = '\0';
    assert_false(record_id_valid(too_long));
    static const char *const bad[] = {
        "", ".", "..", ".deleted-shop-20261122T113903Z-0a0b0c0d", "a/b", "a b", "a.b",
        "shop-20261122T113903Z.tmp", "caf\xc3\xa9", "a\nb",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(record_id_valid(bad[i]));
    assert_false(record_id_valid(NULL));
    /* The _n form: p[0..n), not terminated, no NUL inside. */
    assert_true(record_id_valid_n("shop-1/master.m3u8", 6));
    assert_false(record_id_valid_n("shop-1/master.m3u8", 7));
    assert_false(record_id_valid_n("ab\0cd", 5));
    assert_false(record_id_valid_n("ab", 0));
}

static void test_path(void **state)
{
    (void)state;
    char p[64];
    record_path(p, sizeof(p), "/srv/rec", "shop-1", NULL);
    assert_string_equal(p, "/srv/rec/shop-1");
    record_path(p, sizeof(p), "/srv/rec", "shop-1", "720p/index.m3u8");
    assert_string_equal(p, "/srv/rec/shop-1/720p/index.m3u8");
}

static void test_json_read(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    record_info_t info;

    spit(dir, "shop-20261122T113903Z", RECORD_JSON, GOOD);
    assert_int_equal(record_read(dir, "shop-20261122T113903Z", &info), 0);
    assert_string_equal(info.id, "shop-20261122T113903Z");
    assert_string_equal(info.stream_id, "shop");
    assert_int_equal(info.state, RECORD_STATE_READY);
    assert_int_equal(info.started_s, 1795347543);
    assert_int_equal(info.ended_s, 1795351270);
    assert_int_equal(json_integer_value(json_object_get(info.json, "segments")), 1864);
    record_info_deinit(&info);
    record_info_deinit(&info); /* safe to repeat */

    /* The id is the directory's, whatever the file says. */
    spit(dir, "other-1", RECORD_JSON, GOOD);
    assert_int_equal(record_read(dir, "other-1", &info), 0);
    assert_string_equal(json_string_value(json_object_get(info.json, "id")), "other-1");
    record_info_deinit(&info);

    spit(dir, "rec-1", RECORD_JSON, "{\"stream_id\": \"rec\", \"state\": \"recording\", "
                                    "\"started_at\": \"2026-11-22T11:39:03Z\"}");
    assert_int_equal(record_read(dir, "rec-1", &info), 0);
    assert_int_equal(info.state, RECORD_STATE_RECORDING);
    assert_int_equal(info.ended_s, 0);
    record_info_deinit(&info);
    spit(dir, "odd-1", RECORD_JSON, "{\"stream_id\": \"odd\", \"state\": \"weird\"}");
    assert_int_equal(record_read(dir, "odd-1", &info), 0);
    assert_int_equal(info.state, RECORD_STATE_OTHER);
    record_info_deinit(&info);

    /* Not recordings: malformed, cut short, empty, no state, no valid
     * stream id, not an object. */
    static const char *const bad[] = {
        "not json",
        "{\"stream_id\": \"shop\", \"state\": \"rea",
        "",
        "{\"stream_id\": \"shop\"}",
        "{\"state\": \"ready\"}",
        "{\"stream_id\": \"../etc\", \"state\": \"ready\"}",
        "{\"stream_id\": 7, \"state\": \"ready\"}",
        "[\"ready\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spit(dir, "bad-1", RECORD_JSON, bad[i]);
        assert_int_equal(record_read(dir, "bad-1", &info), -ENOENT);
        assert_null(info.json);
    }
    /* Larger than any the recorder writes. */
    char *big = malloc(RECORD_JSON_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', RECORD_JSON_MAX + 1);
    memcpy(big, GOOD, strlen(GOOD));
    big[RECORD_JSON_MAX + 1] = '\0';
    spit(dir, "big-1", RECORD_JSON, big);
    free(big);
    assert_int_equal(record_read(dir, "big-1", &info), -ENOENT);

    /* No such recording, an invalid id, no recording.json, a link. */
    assert_int_equal(record_read(dir, "none-1", &info), -ENOENT);
    assert_int_equal(record_read(dir, "../x", &info), -ENOENT);
    char path[1024], target[1024];
    snprintf(path, sizeof(path), "%s/empty-1", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(record_read(dir, "empty-1", &info), -ENOENT);
    snprintf(target, sizeof(target), "%s/shop-20261122T113903Z", dir);
    snprintf(path, sizeof(path), "%s/link-1", dir);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(record_read(dir, "link-1", &info), -ENOENT);
    snprintf(target, sizeof(target), "%s/shop-20261122T113903Z/%s", dir, RECORD_JSON);
    snprintf(path, sizeof(path), "%s/empty-1/%s", dir, RECORD_JSON);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(record_read(dir, "empty-1", &info), -ENOENT);
    /* A missing recordings directory. */
    snprintf(path, sizeof(path), "%s/nowhere", dir);
    assert_int_equal(record_read(path, "shop-20261122T113903Z", &info), -ENOENT);
    assert_int_equal(record_read(NULL, "shop-20261122T113903Z", &info), -ENOENT);
    test_tmpdir_remove(dir);
}

static void test_json_write(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    char recdir[512];
    snprintf(recdir, sizeof(recdir), "%s/w-1", dir);
    assert_int_equal(mkdir(recdir, 0755), 0);
    json_t *j = json_pack("{s:s, s:s, s:s}", "id", "w-1", "stream_id", "w", "state", "ready");
    assert_int_equal(record_json_write(recdir, j, true), 0);
    json_decref(j);
    record_info_t info;
    assert_int_equal(record_read(dir, "w-1", &info), 0);
    assert_int_equal(info.state, RECORD_STATE_READY);
    assert_string_equal(info.stream_id, "w");
    record_info_deinit(&info);
    /* No temp file left behind. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.tmp", recdir, RECORD_JSON);
    assert_int_not_equal(access(path, F_OK), 0);
    test_tmpdir_remove(dir);
}

static void test_file_open(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    spit(dir, "f-1", RECORD_JSON, GOOD);
    spit(dir, "f-1", "master.m3u8", "#EXTM3U\n");
    spit(dir, "f-1/720p", "1.m4s", "seg");
    int base = record_dir_open(dir);
    assert_true(base >= 0);
    int rec = record_open(base, "f-1");
    assert_true(rec >= 0);
    assert_int_equal(record_open(base, ".."), -ENOENT);
    struct stat st;
    int fd = record_file_open(rec, "master.m3u8", &st);
    assert_true(fd >= 0);
    assert_int_equal(st.st_size, 8);
    close(fd);
    fd = record_file_open(rec, "720p/1.m4s", &st);
    assert_true(fd >= 0);
    assert_int_equal(st.st_size, 3);
    close(fd);
    assert_int_equal(record_file_open(rec, "720p", &st), -ENOENT); /* a directory */
    assert_int_equal(record_file_open(rec, "720p/x/1.m4s", &st), -ENOENT);
    assert_int_equal(record_file_open(rec, "/720p", &st), -ENOENT);
    assert_int_equal(record_file_open(rec, "none.m3u8", &st), -ENOENT);
    /* Never through a link, and never a FIFO (which would block). */
    char path[1024], target[1024];
    snprintf(target, sizeof(target), "%s/f-1/master.m3u8", dir);
    snprintf(path, sizeof(path), "%s/f-1/poster.jpg", dir);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(record_file_open(rec, "poster.jpg", &st), -ENOENT);
    snprintf(path, sizeof(path), "%s/f-1/recording.mp4", dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(record_file_open(rec, "recording.mp4", &st), -ENOENT);
    close(rec);
    close(base);
    test_tmpdir_remove(dir);
}

static void test_list(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    record_info_t *list = NULL;
    size_t n = 99;
    /* A missing directory is an empty list. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/nowhere", dir);
    assert_int_equal(record_list(path, NULL, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_null(list);

    spit(dir, "shop-20261122T113903Z", RECORD_JSON,
         "{\"stream_id\": \"shop\", \"state\": \"ready\", \"started_at\": \"2026-11-22T11:39:03Z\"}");
    spit(dir, "shop-20261123T090000Z", RECORD_JSON,
         "{\"stream_id\": \"shop\", \"state\": \"recording\", "
         "\"started_at\": \"2026-11-23T09:00:00Z\"}");
    spit(dir, "shop2-20261124T090000Z", RECORD_JSON,
         "{\"stream_id\": \"shop2\", \"state\": \"ready\", \"started_at\": \"2026-11-24T09:00:00Z\"}");
    /* Says another stream than its name: not shop's. */
    spit(dir, "shop-20261125T090000Z", RECORD_JSON,
         "{\"stream_id\": \"eve\", \"state\": \"ready\", \"started_at\": \"2026-11-25T09:00:00Z\"}");
    spit(dir, "shop-broken", RECORD_JSON, "{");                   /* unreadable: left out */
    spit(dir, ".deleted-shop-1-00000000", RECORD_JSON, GOOD);     /* hidden: left out */
    snprintf(path, sizeof(path), "%s/shop-file", dir);            /* a file, no directory */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);

    assert_int_equal(record_list(dir, "shop", &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "shop-20261123T090000Z"); /* newest first */
    assert_int_equal(list[0].state, RECORD_STATE_RECORDING);
    assert_string_equal(list[1].id, "shop-20261122T113903Z");
    record_list_free(list, n);

    assert_int_equal(record_list(dir, NULL, &list, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].id, "shop-20261125T090000Z");
    assert_string_equal(list[1].id, "shop2-20261124T090000Z");
    record_list_free(list, n);
    test_tmpdir_remove(dir);
}

/* Counts the entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_delete(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    spit(dir, "d-1", RECORD_JSON, "{\"stream_id\": \"d\", \"state\": \"ready\"}");
    spit(dir, "d-1/720p", "1.m4s", "seg");
    spit(dir, "d-1/720p", "index.m3u8", "#EXTM3U\n");
    /* A link inside points outside: the delete removes the link only. */
    spit(dir, "keep-1", RECORD_JSON, GOOD);
    char path[1024], target[1024];
    snprintf(target, sizeof(target), "%s/keep-1", dir);
    snprintf(path, sizeof(path), "%s/d-1/720p/escape", dir);
    assert_int_equal(symlink(target, path), 0);

    /* A reader that opened the recording before the delete keeps what it
     * has; one opening it by id afterwards finds nothing. */
    int base = record_dir_open(dir);
    assert_true(base >= 0);
    int before = record_open(base, "d-1");
    assert_true(before >= 0);
    assert_int_equal(record_delete(dir, "d-1", false), 0);
    record_info_t info;
    assert_int_equal(record_read(dir, "d-1", &info), -ENOENT);
    assert_int_equal(record_open(base, "d-1"), -ENOENT);
    size_t n = 0;
    record_info_t *list = NULL;
    assert_int_equal(record_list(dir, NULL, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "keep-1");
    record_list_free(list, n);
    close(before);
    close(base);
    assert_int_equal(count_prefixed(dir, ".deleted-"), 0); /* removed completely */
    assert_int_equal(count_prefixed(dir, "d-1"), 0);
    assert_int_equal(record_read(dir, "keep-1", &info), 0); /* not followed */
    record_info_deinit(&info);

    /* Again: nothing there. An invalid id names nothing. */
    assert_int_equal(record_delete(dir, "d-1", false), -ENOENT);
    assert_int_equal(record_delete(dir, "../keep-1", false), -ENOENT);
    assert_int_equal(record_delete(dir, ".deleted-x", false), -ENOENT);

    /* One being recorded is refused, unless the recorder discards it. */
    spit(dir, "r-1", RECORD_JSON, "{\"stream_id\": \"r\", \"state\": \"recording\"}");
    assert_int_equal(record_delete(dir, "r-1", false), -EBUSY);
    assert_int_equal(record_read(dir, "r-1", &info), 0);
    record_info_deinit(&info);
    assert_int_equal(record_delete(dir, "r-1", true), 0);
    assert_int_equal(record_read(dir, "r-1", &info), -ENOENT);
    /* Discarding needs no recording.json (the recorder could not write it). */
    snprintf(path, sizeof(path), "%s/x-1", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(record_delete(dir, "x-1", false), -ENOENT);
    assert_int_equal(record_delete(dir, "x-1", true), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    test_tmpdir_remove(dir);
}

static void test_disk_usage_and_time(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    spit(dir, "u-1", "a", "12345");
    spit(dir, "u-1/720p", "b", "123");
    char path[1024];
    record_path(path, sizeof(path), dir, "u-1", NULL);
    assert_int_equal(record_disk_usage(path), 8);
    assert_int_equal(record_time_parse("1970-01-01T00:01:00Z"), 60);
    assert_int_equal(record_time_parse("yesterday"), 0);
    assert_int_equal(record_time_parse(NULL), 0);
    test_tmpdir_remove(dir);
}

static void test_renditions(void **state)
{
    (void)state;
    char *dir = test_tmpdir_make("test_record_layout");
    char top[RECORD_RENDITION_MAX];
    spit(dir, "r-1", RECORD_JSON, GOOD);
    /* No rendition with a journal yet. */
    assert_int_equal(record_top_rendition(dir, "r-1", top), -ENOENT);
    assert_string_equal(top, "");
    spit(dir, "r-1/audio", "journal", "");
    assert_int_equal(record_top_rendition(dir, "r-1", top), -ENOENT); /* audio is no video */
    spit(dir, "r-1/source", "journal", "");
    assert_int_equal(record_top_rendition(dir, "r-1", top), 0);
    assert_string_equal(top, "source"); /* counts as 0, still a video */
    spit(dir, "r-1/360p", "journal", "");
    spit(dir, "r-1/1080p", "journal", "");
    spit(dir, "r-1/720p", "journal", "");
    spit(dir, "r-1/2160p", "1.m4s", "seg"); /* no journal: not a rendition */
    spit(dir, "r-1", "9999p", "a file, not a directory");
    assert_int_equal(record_top_rendition(dir, "r-1", top), 0);
    assert_string_equal(top, "1080p");
    char names[RECORD_RENDITIONS_SCAN_MAX][RECORD_RENDITION_MAX];
    size_t n = 0;
    assert_int_equal(record_renditions(dir, "r-1", names, RECORD_RENDITIONS_SCAN_MAX, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(record_renditions(dir, "r-1", names, 2, &n), 0);
    assert_int_equal(n, 2); /* bounded by max */
    assert_int_equal(record_top_rendition(dir, "none-1", top), -ENOENT);
    assert_int_equal(record_renditions(dir, "..", names, 2, &n), -ENOENT);
    test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_grammar),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_json_read),
        cmocka_unit_test(test_json_write),
        cmocka_unit_test(test_file_open),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_disk_usage_and_time),
        cmocka_unit_test(test_renditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
