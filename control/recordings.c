/*
 * Recordings for the admin API (see recordings_internal.h). What a recording is, how
 * it is read, listed and deleted is record_layout's (the format's one
 * owner, shared with the recorder and the origin's /vod/); this file only
 * turns it into the API's JSON. Runs on the admin listener's thread; no
 * state.
 */
#include "recordings_internal.h"

#include <errno.h>

#include "record_layout.h"

int recordings_get(const char *dir, const char *rid, json_t **out)
{
    *out = NULL;
    record_info_t info;
    int rc = record_read(dir, rid, &info);
    if (rc < 0)
        return rc;
    if (info.clip) { /* a clip: /api/v1/clips/CID */
        record_info_deinit(&info);
        return -ENOENT;
    }
    *out = info.json; /* ours now */
    return 0;
}

int recordings_list(const char *dir, const char *stream_id, json_t **out)
{
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    record_info_t *list = NULL;
    size_t n = 0;
    int rc = record_list(dir, stream_id, &list, &n);
    for (size_t i = 0; i < n; i++)
        if (rc == 0 && !list[i].clip && json_array_append(*out, list[i].json) != 0)
            rc = -ENOMEM;
    record_list_free(list, n);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int recordings_delete(const char *dir, const char *rid)
{
    record_info_t info;
    int rc = record_read(dir, rid, &info);
    if (rc < 0)
        return rc;
    bool clip = info.clip;
    record_info_deinit(&info);
    if (clip) /* a clip: DELETE /api/v1/clips/CID */
        return -ENOENT;
    return record_delete(dir, rid, false);
}
