/* Fuzz target: the public path grammar must accept only what it can name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_path_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_route_t r;
    int rc = http_path_parse((const char *)data, size, &r);
    if (rc == 0 && r.kind == HTTP_ROUTE_HLS) {
        /* What it accepts is a valid id and a store name with no ".." */
        if (!store_id_valid(r.stream_id) || strstr(r.object, "..") ||
            strlen(r.object) > STORE_NAME_MAX || r.object[0] == '/')
            abort();
    }
    if (rc == 0 && (r.kind == HTTP_ROUTE_BEACON || r.object_type == HTTP_OBJECT_VIEWERS)) {
        /* Audience: a stream id and nothing else (a beacon), or the
         * stream's own viewers.json. */
        if (!store_id_valid(r.stream_id) ||
            (r.kind == HTTP_ROUTE_BEACON ? r.object[0] != '\0'
                                         : strcmp(r.object, "viewers.json") != 0))
            abort();
    }
    if (rc == 0 && r.kind == HTTP_ROUTE_VOD) {
        /* A recording file: a plain directory name and a relative path of
         * at most two components, none of them "." or ".." or hidden (the
         * origin opens it relative to --recordings-dir). */
        size_t idn = strlen(r.recording_id);
        if (idn == 0 || idn >= RECORD_ID_MAX || strspn(r.recording_id,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != idn ||
            r.stream_id[0] || strstr(r.object, "..") || r.object[0] == '/' ||
            r.object[0] == '.' || strstr(r.object, "/.") || strstr(r.object, "//") ||
            strlen(r.object) > STORE_NAME_MAX || r.object_type == HTTP_OBJECT_PART)
            abort();
        const char *slash = strchr(r.object, '/');
        if (slash && strchr(slash + 1, '/'))
            abort();
    }
    return 0;
}
