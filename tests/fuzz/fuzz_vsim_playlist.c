/* Fuzz target: the viewer simulator's playlist reader (tests/load/
 * vsim_playlist.c) reads whatever an origin sends. The same bytes go through
 * the master and the media parser; on success the results must hold their
 * contracts: every URI offset inside the pool and NUL-terminated, positions
 * ordered as listed, and resolution against a base bounded by its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsim_playlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    static vsim_master_t master;
    char url[128];
    if (vsim_master_parse(text, size, &master) == 0) {
        if (master.nvariants == 0 || master.nvariants > VSIM_MAX_VARIANTS)
            abort();
        for (size_t i = 0; i < master.nvariants; i++) {
            const char *a = vsim_master_audio_uri(&master, &master.variants[i]);
            if (a && strlen(a) >= VSIM_URI_MAX)
                abort();
            if (vsim_resolve("http://127.0.0.1:1/hls/x/master.m3u8", master.variants[i].uri, url,
                             sizeof(url)) == 0 &&
                strlen(url) >= sizeof(url))
                abort();
        }
    }
    vsim_media_t m = {0};
    if (vsim_media_parse(text, size, &m) == 0) {
        if (m.nitems > VSIM_MAX_ITEMS || m.pool_len > size + 1)
            abort();
        for (size_t i = 0; i < m.nitems; i++) {
            const vsim_item_t *it = &m.items[i];
            if (it->uri_off >= m.pool_len || it->map >= m.nmaps)
                abort();
            const char *u = vsim_media_uri(&m, it);
            if (memchr(u, '\0', m.pool_len - it->uri_off) == NULL)
                abort();
            if (i > 0 && vsim_pos_cmp(it->msn, it->part, m.items[i - 1].msn,
                                      m.items[i - 1].part) <= 0)
                abort();
            if (vsim_resolve("http://127.0.0.1:1/hls/x/v/index.m3u8", u, url, sizeof(url)) == 0 &&
                strlen(url) >= sizeof(url))
                abort();
        }
    }
    vsim_media_deinit(&m);
    return 0;
}
