/*
 * Recordings for the admin API (see recordings.h). Reads what the recorder
 * writes and removes what the operator deletes; opens everything with
 * openat() relative to the recordings directory, O_NOFOLLOW below it, so a
 * planted link can neither be read through nor make a delete leave the
 * directory. Runs on the admin listener's thread; no state.
 */
#include "recordings.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "store.h"

#define RECORDINGS_ID_MAX 96
#define RECORDINGS_JSON_MAX (64 * 1024)
/* DIR/RID/REND/file: a recording is two levels deep; a little slack. */
#define RECORDINGS_DEPTH_MAX 4

bool recordings_id_valid(const char *rid)
{
    size_t n = 0;
    for (; rid[n]; n++) {
        char c = rid[n];
        if (n + 1 >= RECORDINGS_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static int recordings_errno(int e)
{
    return e == ENOENT || e == ENOTDIR || e == ELOOP ? -ENOENT : -EIO;
}

/* Reads and parses the recording.json of the recording directory rdir. */
static int recordings_read_json(int rdir, const char *rid, json_t **out)
{
    *out = NULL;
    int fd = openat(rdir, "recording.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return recordings_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > RECORDINGS_JSON_MAX) {
        close(fd);
        return -ENOENT;
    }
    char *buf = malloc(RECORDINGS_JSON_MAX);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, RECORDINGS_JSON_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == RECORDINGS_JSON_MAX)
            break;
    }
    close(fd);
    json_t *j = json_loadb(buf, got, 0, NULL);
    free(buf);
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "state")) ||
        !json_is_string(json_object_get(j, "stream_id"))) {
        json_decref(j);
        return -ENOENT;
    }
    /* The directory name is the id every URL uses. */
    json_object_set_new(j, "id", json_string(rid));
    *out = j;
    return 0;
}

/* Opens DIR/rid (no link) and reads its recording.json. */
static int recordings_open(int base, const char *rid, json_t **out)
{
    *out = NULL;
    int rdir = openat(base, rid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rdir < 0)
        return recordings_errno(errno);
    int rc = recordings_read_json(rdir, rid, out);
    close(rdir);
    return rc;
}

static int recordings_base(const char *dir)
{
    int base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return base < 0 ? recordings_errno(errno) : base;
}

int recordings_get(const char *dir, const char *rid, json_t **out)
{
    *out = NULL;
    if (!dir || !recordings_id_valid(rid))
        return -ENOENT;
    int base = recordings_base(dir);
    if (base < 0)
        return base;
    int rc = recordings_open(base, rid, out);
    close(base);
    return rc;
}

/* Newest first: "started_at" is RFC 3339 UTC, so it sorts as text. */
static int recordings_cmp(const void *a, const void *b)
{
    json_t *ja = *(json_t *const *)a, *jb = *(json_t *const *)b;
    const char *sa = json_string_value(json_object_get(ja, "started_at"));
    const char *sb = json_string_value(json_object_get(jb, "started_at"));
    int c = strcmp(sb ? sb : "", sa ? sa : "");
    if (c)
        return c;
    return strcmp(json_string_value(json_object_get(jb, "id")),
                  json_string_value(json_object_get(ja, "id")));
}

int recordings_list(const char *dir, const char *stream_id, json_t **out)
{
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    if (!dir)
        return 0;
    int base = recordings_base(dir);
    if (base == -ENOENT)
        return 0; /* nothing recorded yet */
    if (base < 0)
        return base;
    int scan = dup(base);
    DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
    if (!d) {
        if (scan >= 0)
            close(scan);
        close(base);
        return -EIO;
    }
    json_t **items = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    size_t prefix = strlen(stream_id);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        /* A recording id starts with its stream id: skip the others (and
         * hidden entries) without opening them. */
        if (strncmp(e->d_name, stream_id, prefix) != 0 || e->d_name[prefix] != '-' ||
            !recordings_id_valid(e->d_name))
            continue;
        json_t *j;
        if (recordings_open(base, e->d_name, &j) != 0)
            continue;
        if (strcmp(json_string_value(json_object_get(j, "stream_id")), stream_id) != 0) {
            json_decref(j);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            json_t **ni = realloc(items, ncap * sizeof(*ni));
            if (!ni) {
                json_decref(j);
                rc = -ENOMEM;
                break;
            }
            items = ni;
            cap = ncap;
        }
        items[n++] = j;
    }
    closedir(d);
    close(base);
    if (n > 1)
        qsort(items, n, sizeof(*items), recordings_cmp);
    for (size_t i = 0; i < n; i++)
        if (rc == 0 && json_array_append(*out, items[i]) != 0)
            rc = -ENOMEM;
    for (size_t i = 0; i < n; i++)
        json_decref(items[i]);
    free(items);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* Removes parent/name and everything below it without following a link
 * (a link is removed, never what it points to). 0 or a negative errno. */
static int recordings_remove_tree(int parent, const char *name, int depth)
{
    if (depth > RECORDINGS_DEPTH_MAX)
        return -ELOOP;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            isdir = fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        int r = isdir ? recordings_remove_tree(fd, e->d_name, depth + 1)
                      : (unlinkat(fd, e->d_name, 0) == 0 ? 0 : -errno);
        if (r < 0 && r != -ENOENT && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && rc == 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int recordings_delete(const char *dir, const char *rid)
{
    if (!dir || !recordings_id_valid(rid))
        return -ENOENT;
    int base = recordings_base(dir);
    if (base < 0)
        return base;
    json_t *j;
    int rc = recordings_open(base, rid, &j);
    if (rc == 0 && strcmp(json_string_value(json_object_get(j, "state")), "recording") == 0)
        rc = -EBUSY;
    json_decref(j);
    if (rc < 0) {
        close(base);
        return rc;
    }
    /* Hidden at once and for good: the origin and the API only ever open
     * valid recording ids, which never start with a dot. */
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    char hidden[RECORDINGS_ID_MAX + 32];
    snprintf(hidden, sizeof(hidden), ".deleted-%s-%02x%02x%02x%02x", rid, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    if (renameat(base, rid, base, hidden) != 0) {
        rc = recordings_errno(errno);
        close(base);
        return rc;
    }
    rc = recordings_remove_tree(base, hidden, 0);
    if (rc < 0)
        log_warn("admin", "recording %s: deleted, but %s/%s could not be removed completely: %s",
                 rid, dir, hidden, strerror(-rc));
    close(base);
    return 0;
}
