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
    if (http_path_parse((const char *)data, size, &r) == 0 && r.kind == HTTP_ROUTE_HLS) {
        /* What it accepts is a valid id and a store name with no ".." */
        if (!store_id_valid(r.stream_id) || strstr(r.object, "..") ||
            strlen(r.object) > STORE_NAME_MAX || r.object[0] == '/')
            abort();
    }
    return 0;
}
