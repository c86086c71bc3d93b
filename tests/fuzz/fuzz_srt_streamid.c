/*
 * libFuzzer target for ingest/srt_streamid.c. Input: a stream id as a
 * caller sends it. Checks that a key comes back only on success, bounded,
 * made of key characters, and that every failure has a reason.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srt_streamid_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why = NULL;
    int ret = srt_streamid_parse((const char *)data, size, key, sizeof(key), &why);
    if (ret == 0) {
        size_t n = strlen(key);
        if (n == 0 || n > SRT_STREAMID_KEY_MAX || why)
            abort();
        for (size_t i = 0; i < n; i++)
            if (key[i] <= 0x20 || key[i] >= 0x7f || key[i] == '/' || key[i] == ',')
                abort();
        /* the key is a part of the input */
        if (!memmem(data, size, key, n))
            abort();
    } else {
        if (!why || key[0] != '\0')
            abort();
        if (ret != -ENOENT && ret != -EPERM && ret != -EMSGSIZE && ret != -EPROTO)
            abort();
    }
    return 0;
}
