/*
 * Retention of finished recordings (retention.h). Lists the recordings
 * through the layout, chooses (record_retention_select, pure) and deletes
 * through record_delete, which renames a recording aside before removing
 * it and refuses one that is "recording" again by then.
 *
 * Any thread; no state.
 */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

static int record_entry_age_cmp(const void *a, const void *b)
{
    const record_entry_t *x = *(record_entry_t *const *)a, *y = *(record_entry_t *const *)b;
    if (x->finished_s != y->finished_s)
        return x->finished_s < y->finished_s ? -1 : 1;
    return strcmp(x->id, y->id);
}

size_t record_retention_select(const record_entry_t *e, size_t n, int64_t now_s,
                               int64_t max_age_s, uint64_t max_bytes, bool *del)
{
    size_t marked = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        del[i] = false;
        total += e[i].bytes;
    }
    if (max_age_s > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!e[i].recording && now_s - e[i].finished_s > max_age_s) {
                del[i] = true;
                total -= e[i].bytes;
                marked++;
            }
        }
    }
    if (max_bytes == 0 || total <= max_bytes)
        return marked;
    const record_entry_t **order = malloc(n * sizeof(*order));
    if (!order)
        return marked;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!e[i].recording && !del[i])
            order[m++] = &e[i];
    qsort(order, m, sizeof(*order), record_entry_age_cmp);
    for (size_t k = 0; k < m && total > max_bytes; k++) {
        size_t i = (size_t)(order[k] - e);
        del[i] = true;
        total -= e[i].bytes;
        marked++;
    }
    free(order);
    return marked;
}

int record_retention(const char *dir, int64_t max_age_s, uint64_t max_bytes)
{
    if (max_age_s <= 0 && max_bytes == 0)
        return 0;
    record_info_t *list = NULL;
    size_t n = 0;
    int ret = record_list(dir, NULL, &list, &n);
    if (ret < 0)
        return ret;
    record_entry_t *e = n ? calloc(n, sizeof(*e)) : NULL;
    bool *del = n ? calloc(n, sizeof(*del)) : NULL;
    if (n && (!e || !del)) {
        free(e);
        free(del);
        record_list_free(list, n);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].clip)
            continue; /* clips have their own age (record_retention_clips) */
        snprintf(e[k].id, sizeof(e[k].id), "%s", list[i].id);
        e[k].recording = list[i].state == RECORD_STATE_RECORDING;
        e[k].finished_s = list[i].ended_s ? list[i].ended_s : list[i].started_s;
        char path[RECORD_PATH_MAX];
        record_path(path, sizeof(path), dir, list[i].id, NULL);
        e[k].bytes = record_disk_usage(path);
        k++;
    }
    record_list_free(list, n);
    n = k;
    record_retention_select(e, n, clock_wall_ms() / 1000, max_age_s, max_bytes, del);
    int deleted = 0;
    for (size_t i = 0; i < n; i++) {
        if (!del[i])
            continue;
        char ctx[RECORD_ID_MAX + 16];
        snprintf(ctx, sizeof(ctx), "recording=%s", e[i].id);
        ret = record_delete(dir, e[i].id, false);
        if (ret < 0) {
            log_warn(ctx, "retention: cannot delete %s/%s: %s", dir, e[i].id, strerror(-ret));
        } else {
            log_info(ctx, "retention: deleted (%" PRIu64 " bytes; --recordings-max-age %" PRId64
                          " s, --recordings-max-bytes %" PRIu64 ")",
                     e[i].bytes, max_age_s, max_bytes);
            deleted++;
        }
    }
    free(del);
    free(e);
    return deleted;
}

int record_retention_clips(const char *dir, int64_t max_age_s)
{
    if (max_age_s <= 0)
        return 0;
    record_info_t *list = NULL;
    size_t n = 0;
    int ret = record_list(dir, NULL, &list, &n);
    if (ret < 0)
        return ret;
    int64_t now_s = clock_wall_ms() / 1000;
    int deleted = 0;
    for (size_t i = 0; i < n; i++) {
        const char *state = json_string_value(json_object_get(list[i].json, "state"));
        if (!list[i].clip || !state || strcmp(state, "processing") == 0 ||
            list[i].started_s <= 0 || now_s - list[i].started_s <= max_age_s)
            continue;
        char ctx[RECORD_ID_MAX + 16];
        snprintf(ctx, sizeof(ctx), "clip=%s", list[i].id);
        ret = record_delete(dir, list[i].id, true);
        if (ret < 0) {
            log_warn(ctx, "retention: cannot delete %s/%s: %s", dir, list[i].id, strerror(-ret));
        } else {
            log_info(ctx, "retention: deleted (--clips-max-age %" PRId64 " s)", max_age_s);
            deleted++;
        }
    }
    record_list_free(list, n);
    return deleted;
}
