/*
 * libFuzzer target for the MPEG-TS payload conversions of
 * common/codec_config.c that SRT ingest runs on what a publisher sends.
 * First byte even: the rest is an Annex B access unit (bit 1 set: HEVC),
 * rewritten as a sample with 4-byte lengths (which must add up exactly and
 * leave out the parameter sets and AUDs) and as an avcC / hvcC (which, if
 * built, must be a record the parser walks without reading past it). Odd: the rest is a PES
 * payload of ADTS frames, walked as srt.c walks it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        size_t cap = n + 64;
        uint8_t *out = malloc(cap);
        if (!out)
            return 0;
        bool hevc = data[0] & 2;
        h264_au_info_t info;
        int len = hevc ? hevc_annexb_to_sample(d, n, out, cap, &info)
                       : h264_annexb_to_sample(d, n, out, cap, &info);
        if (len < 0 && len != -EMSGSIZE)
            abort();
        if (len >= 0) {
            size_t pos = 0, nals = 0;
            while (pos < (size_t)len) {
                if ((size_t)len - pos < 4)
                    abort();
                size_t l = ((size_t)out[pos] << 24) | ((size_t)out[pos + 1] << 16) |
                           ((size_t)out[pos + 2] << 8) | out[pos + 3];
                if (l == 0 || l > (size_t)len - pos - 4)
                    abort();
                if (hevc) {
                    int type = (out[pos + 4] >> 1) & 0x3f;
                    if (type >= 32 && type <= 35)
                        abort();
                } else {
                    int type = out[pos + 4] & 0x1f;
                    if (type == 7 || type == 8 || type == 9)
                        abort();
                }
                pos += 4 + l;
                nals++;
            }
            if (nals != info.nals)
                abort();
            if (!hevc && info.idr != h264_sample_has_idr(out, (size_t)len, 4) && len > 0)
                abort();
        }
        int alen = hevc ? hevc_hvcc_from_annexb(d, n, out, cap)
                        : h264_avcc_from_annexb(d, n, out, cap);
        if (alen > (int)cap)
            abort();
        if (alen > 0 && hevc) {
            hevc_config_t cfg;
            if (hevc_parse_hvcc(out, (size_t)alen, &cfg) != 0) /* it read this SPS itself */
                abort();
        } else if (alen > 0) {
            h264_config_t cfg;
            (void)h264_parse_avcc(out, (size_t)alen, &cfg);
        }
        free(out);
    } else {
        size_t pos = 0;
        while (pos < n) {
            aac_adts_t h;
            int ret = aac_parse_adts(d + pos, n - pos, &h);
            if (ret < 0)
                break;
            if (h.frame_len <= h.header_len || h.frame_len > n - pos || h.sample_rate <= 0)
                abort();
            uint8_t asc[2];
            aac_asc_from_adts(&h, asc);
            aac_config_t c;
            if (aac_parse_asc(asc, 2, &c) != 0 || c.sample_rate != h.sample_rate)
                abort();
            pos += h.frame_len;
        }
    }
    return 0;
}
