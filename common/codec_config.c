/*
 * Codec configuration records: AVCDecoderConfigurationRecord (with the
 * first SPS parsed far enough for size, cropping and VUI timing) and
 * AudioSpecificConfig, plus their RFC 6381 codec strings; and two looks
 * into H.264 samples: an IDR picture, and caption SEI.
 *
 * Everything here reads untrusted bytes from a publisher, so every read is
 * bounded: the record through common/byteio.h, the SPS through a small
 * exp-Golomb bit reader that strips emulation-prevention bytes as it goes
 * and, like byteio, keeps a sticky error flag instead of reading past the
 * end. Exp-Golomb values and loop counts are range-checked before use so
 * that no field can drive a long loop or an overflow.
 *
 * Pure functions, no allocation; any thread.
 */
#include "codec_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "byteio.h"

#define H264_MAX_DIMENSION 16384

/* Bit reader over an H.264 NAL payload (RBSP extraction on the fly). */
typedef struct nal_bits {
    const uint8_t *pos;
    const uint8_t *end;
    int zeros;      /* consecutive 0x00 bytes just consumed */
    uint32_t cur;   /* current byte */
    int left;       /* bits left in cur */
    bool error;
    bool raw;       /* AV1 OBUs: no emulation prevention to strip */
} nal_bits_t;

static void nal_bits_init(nal_bits_t *nb, const uint8_t *data, size_t len)
{
    nb->pos = data;
    nb->end = data + len;
    nb->zeros = 0;
    nb->cur = 0;
    nb->left = 0;
    nb->error = false;
    nb->raw = false;
}

/* Loads the next RBSP byte, dropping an emulation-prevention 0x03 that
 * follows two zero bytes. */
static bool nal_bits_refill(nal_bits_t *nb)
{
    if (!nb->raw && nb->pos < nb->end && nb->zeros >= 2 && *nb->pos == 0x03) {
        nb->pos++;
        nb->zeros = 0;
    }
    if (nb->pos >= nb->end) {
        nb->error = true;
        return false;
    }
    nb->cur = *nb->pos++;
    nb->zeros = nb->cur == 0 ? nb->zeros + 1 : 0;
    nb->left = 8;
    return true;
}

static uint32_t nal_bits_u1(nal_bits_t *nb)
{
    if (nb->error)
        return 0;
    if (nb->left == 0 && !nal_bits_refill(nb))
        return 0;
    nb->left--;
    return (nb->cur >> nb->left) & 1;
}

/* n <= 32 bits, most significant first. */
static uint32_t nal_bits_u(nal_bits_t *nb, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 1) | nal_bits_u1(nb);
    return v;
}

/* ue(v): at most 31 leading zeros, so the value fits in 32 bits. */
static uint32_t nal_bits_ue(nal_bits_t *nb)
{
    int zeros = 0;
    while (!nb->error && nal_bits_u1(nb) == 0) {
        if (++zeros > 31) {
            nb->error = true;
            return 0;
        }
    }
    if (nb->error)
        return 0;
    return (uint32_t)(((uint64_t)1 << zeros) - 1 + nal_bits_u(nb, zeros));
}

static int32_t nal_bits_se(nal_bits_t *nb)
{
    uint32_t k = nal_bits_ue(nb);
    /* k in [0, 2^32-2]: (k+1)/2 fits in int32 after the cast below. */
    int64_t v = (int64_t)(((uint64_t)k + 1) / 2);
    return (int32_t)((k & 1) ? v : -v);
}

static bool h264_profile_has_chroma_info(int profile_idc)
{
    switch (profile_idc) {
    case 100: case 110: case 122: case 244: case 44: case 83:
    case 86: case 118: case 128: case 138: case 139: case 134: case 135:
        return true;
    default:
        return false;
    }
}

static int h264_skip_scaling_list(nal_bits_t *nb, int size)
{
    int last = 8, next = 8;
    for (int j = 0; j < size; j++) {
        if (next != 0) {
            int32_t delta = nal_bits_se(nb);
            if (nb->error || delta < -128 || delta > 127)
                return -EPROTO;
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
    return 0;
}

/* Parses a sequence parameter set NAL unit (header byte included). */
static int h264_parse_sps(const uint8_t *nal, size_t len, h264_config_t *out)
{
    if (len < 4 || (nal[0] & 0x1f) != 7)
        return -EPROTO;
    nal_bits_t nb;
    nal_bits_init(&nb, nal + 1, len - 1);

    int profile_idc = (int)nal_bits_u(&nb, 8);
    nal_bits_u(&nb, 8); /* constraint flags */
    nal_bits_u(&nb, 8); /* level */
    if (nal_bits_ue(&nb) > 31)
        return -EPROTO; /* seq_parameter_set_id */

    int chroma_format_idc = 1, separate_colour_plane = 0, bit_depth = 8;
    if (h264_profile_has_chroma_info(profile_idc)) {
        uint32_t cf = nal_bits_ue(&nb);
        if (cf > 3)
            return -EPROTO;
        chroma_format_idc = (int)cf;
        if (chroma_format_idc == 3)
            separate_colour_plane = (int)nal_bits_u1(&nb);
        uint32_t bdl = nal_bits_ue(&nb);
        uint32_t bdc = nal_bits_ue(&nb);
        if (bdl > 6 || bdc > 6)
            return -EPROTO;
        bit_depth = 8 + (int)bdl;
        nal_bits_u1(&nb); /* qpprime_y_zero_transform_bypass_flag */
        if (nal_bits_u1(&nb)) { /* seq_scaling_matrix_present_flag */
            int lists = chroma_format_idc != 3 ? 8 : 12;
            for (int i = 0; i < lists; i++)
                if (nal_bits_u1(&nb) && h264_skip_scaling_list(&nb, i < 6 ? 16 : 64) != 0)
                    return -EPROTO;
        }
    }
    if (nal_bits_ue(&nb) > 12)
        return -EPROTO; /* log2_max_frame_num_minus4 */
    uint32_t poc_type = nal_bits_ue(&nb);
    if (poc_type > 2)
        return -EPROTO;
    if (poc_type == 0) {
        if (nal_bits_ue(&nb) > 12)
            return -EPROTO;
    } else if (poc_type == 1) {
        nal_bits_u1(&nb);
        nal_bits_se(&nb);
        nal_bits_se(&nb);
        uint32_t cycle = nal_bits_ue(&nb);
        if (cycle > 255)
            return -EPROTO;
        for (uint32_t i = 0; i < cycle && !nb.error; i++)
            nal_bits_se(&nb);
    }
    nal_bits_ue(&nb); /* max_num_ref_frames */
    nal_bits_u1(&nb); /* gaps_in_frame_num_value_allowed_flag */
    uint32_t w_mbs = nal_bits_ue(&nb);
    uint32_t h_units = nal_bits_ue(&nb);
    int frame_mbs_only = (int)nal_bits_u1(&nb);
    if (!frame_mbs_only)
        nal_bits_u1(&nb); /* mb_adaptive_frame_field_flag */
    nal_bits_u1(&nb);     /* direct_8x8_inference_flag */
    uint32_t crop[4] = {0, 0, 0, 0};
    if (nal_bits_u1(&nb))
        for (int i = 0; i < 4; i++)
            crop[i] = nal_bits_ue(&nb);
    if (nb.error)
        return -EPROTO;
    if (w_mbs >= H264_MAX_DIMENSION / 16 || h_units >= H264_MAX_DIMENSION / 16)
        return -EMSGSIZE;

    int64_t width = ((int64_t)w_mbs + 1) * 16;
    int64_t height = ((int64_t)h_units + 1) * 16 * (2 - frame_mbs_only);
    int chroma_array_type = separate_colour_plane ? 0 : chroma_format_idc;
    int crop_x = 1, crop_y = 2 - frame_mbs_only;
    if (chroma_array_type != 0) {
        crop_x = chroma_array_type == 3 ? 1 : 2;
        crop_y = (chroma_array_type == 1 ? 2 : 1) * (2 - frame_mbs_only);
    }
    int64_t crop_w = ((int64_t)crop[0] + crop[1]) * crop_x;
    int64_t crop_h = ((int64_t)crop[2] + crop[3]) * crop_y;
    if (crop_w >= width || crop_h >= height)
        return -EPROTO;
    width -= crop_w;
    height -= crop_h;
    if (width > H264_MAX_DIMENSION || height > H264_MAX_DIMENSION)
        return -EMSGSIZE;

    int fps_num = 0, fps_den = 0;
    if (nal_bits_u1(&nb)) { /* vui_parameters_present_flag */
        if (nal_bits_u1(&nb)) { /* aspect_ratio_info_present_flag */
            if (nal_bits_u(&nb, 8) == 255)
                nal_bits_u(&nb, 32); /* sar_width, sar_height */
        }
        if (nal_bits_u1(&nb)) /* overscan_info_present_flag */
            nal_bits_u1(&nb);
        if (nal_bits_u1(&nb)) { /* video_signal_type_present_flag */
            nal_bits_u(&nb, 4);
            if (nal_bits_u1(&nb))
                nal_bits_u(&nb, 24);
        }
        if (nal_bits_u1(&nb)) { /* chroma_loc_info_present_flag */
            nal_bits_ue(&nb);
            nal_bits_ue(&nb);
        }
        if (nal_bits_u1(&nb)) { /* timing_info_present_flag */
            uint32_t units = nal_bits_u(&nb, 32);
            uint32_t scale = nal_bits_u(&nb, 32);
            /* Two fields per frame: fps = time_scale / (2 * num_units_in_tick).
             * A truncated VUI only loses the frame rate, not the record. */
            if (!nb.error && units > 0 && scale > 0 && units <= INT32_MAX / 2 &&
                scale <= INT32_MAX) {
                fps_num = (int)scale;
                fps_den = (int)(units * 2);
            }
        }
    }

    out->width = (int)width;
    out->height = (int)height;
    out->fps_num = fps_num;
    out->fps_den = fps_den;
    out->chroma_format_idc = chroma_format_idc;
    out->bit_depth_luma = bit_depth;
    return 0;
}

/* Whether `match` holds for a NAL unit (header byte first, n >= 1 bytes)
 * of an H.264 sample of length-prefixed NAL units; false for a malformed
 * sample (a zero length, or one past the end). */
static bool h264_sample_any_nal(const uint8_t *data, size_t len, int nal_length_size,
                                bool (*match)(const uint8_t *nal, size_t n))
{
    if (nal_length_size != 1 && nal_length_size != 2 && nal_length_size != 4)
        return false;
    size_t at = 0, ls = (size_t)nal_length_size;
    while (len - at > ls) {
        size_t n = 0;
        for (size_t i = 0; i < ls; i++)
            n = (n << 8) | data[at + i];
        at += ls;
        if (n == 0 || n > len - at)
            return false;
        if (match(data + at, n))
            return true;
        at += n;
    }
    return false;
}

static bool h264_nal_is_idr(const uint8_t *nal, size_t n)
{
    (void)n;
    return (nal[0] & 0x1f) == 5;
}

bool h264_sample_has_idr(const uint8_t *data, size_t len, int nal_length_size)
{
    return h264_sample_any_nal(data, len, nal_length_size, h264_nal_is_idr);
}

/* ATSC A/53 Part 4 caption data in an SEI message of payloadType 4
 * (user_data_registered_itu_t_t35, H.264 D.1.6): country code 0xB5 (USA),
 * provider code 0x0031 (ATSC), user identifier "GA94", user data type 3
 * (cc_data), then process_cc_data_flag, a non-zero cc_count and room for
 * that many byte triplets: what libavcodec's decoder asks before it
 * exports the bytes. */
#define H264_SEI_T35 4
#define H264_A53_USER_ID 0x47413934u /* "GA94" */

static bool h264_sei_is_a53_cc(nal_bits_t *nb, uint64_t size)
{
    if (size < 10 || nal_bits_u(nb, 8) != 0xB5 || nal_bits_u(nb, 16) != 0x0031 ||
        nal_bits_u(nb, 32) != H264_A53_USER_ID || nal_bits_u(nb, 8) != 3)
        return false;
    uint32_t flags = nal_bits_u(nb, 8);
    uint64_t cc_count = flags & 0x1f;
    /* After em_data: the cc_count byte triplets and a marker byte. */
    return !nb->error && (flags & 0x40) && cc_count > 0 && cc_count * 3 < size - 10;
}

/* Whether a NAL unit is an SEI with A/53 captions in one of its messages.
 * Each payloadType and payloadSize byte, and each payload byte skipped,
 * consumes input, so a message cannot make the loop outlast the bytes. */
static bool h264_nal_has_captions(const uint8_t *nal, size_t n)
{
    if ((nal[0] & 0x1f) != 6)
        return false;
    nal_bits_t nb;
    nal_bits_init(&nb, nal + 1, n - 1);
    while (!nb.error) {
        uint64_t type = 0, size = 0;
        uint32_t b;
        do {
            b = nal_bits_u(&nb, 8);
            type += b;
        } while (b == 0xff && !nb.error);
        do {
            b = nal_bits_u(&nb, 8);
            size += b;
        } while (b == 0xff && !nb.error);
        if (nb.error)
            return false;
        if (type == H264_SEI_T35) {
            /* Its own reader: the payload is skipped from where it starts. */
            nal_bits_t msg = nb;
            if (h264_sei_is_a53_cc(&msg, size))
                return true;
        }
        for (uint64_t i = 0; i < size && !nb.error; i++)
            (void)nal_bits_u(&nb, 8);
    }
    return false;
}

bool h264_sample_has_captions(const uint8_t *data, size_t len, int nal_length_size)
{
    return h264_sample_any_nal(data, len, nal_length_size, h264_nal_has_captions);
}

int h264_parse_avcc(const uint8_t *data, size_t len, h264_config_t *out)
{
    byteio_reader_t br;
    byteio_init(&br, data, len);
    h264_config_t cfg = {0};

    uint8_t version = byteio_u8(&br);
    cfg.profile_idc = byteio_u8(&br);
    cfg.constraint_flags = byteio_u8(&br);
    cfg.level_idc = byteio_u8(&br);
    uint8_t length_size = (uint8_t)((byteio_u8(&br) & 0x03) + 1);
    uint8_t nsps = byteio_u8(&br) & 0x1f;
    if (br.error || version != 1 || length_size == 3 || nsps == 0)
        return -EPROTO;
    cfg.nal_length_size = length_size;

    uint16_t sps_len = byteio_be16(&br);
    const uint8_t *sps = byteio_take(&br, sps_len);
    if (br.error)
        return -EPROTO;
    /* The remaining SPS and the PPS list must at least be well formed. */
    for (int i = 1; i < nsps; i++)
        byteio_skip(&br, byteio_be16(&br));
    uint8_t npps = byteio_u8(&br);
    for (int i = 0; i < npps; i++)
        byteio_skip(&br, byteio_be16(&br));
    if (br.error)
        return -EPROTO;

    int ret = h264_parse_sps(sps, sps_len, &cfg);
    if (ret < 0)
        return ret;
    *out = cfg;
    return 0;
}

void h264_codec_string(const h264_config_t *cfg, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "avc1.%02x%02x%02x", cfg->profile_idc, cfg->constraint_flags,
             cfg->level_idc);
}

/* ---- HEVC ------------------------------------------------------------ */

/* profile_tier_level(1, max_sub_layers_minus1) past the general part the
 * caller already has from the hvcC (H.265 7.3.3). */
static void hevc_skip_ptl(nal_bits_t *nb, int max_sub_layers_minus1)
{
    nal_bits_u(nb, 32); /* profile space, tier, profile idc, then flags ... */
    nal_bits_u(nb, 32);
    nal_bits_u(nb, 32); /* ... 88 bits of general profile, then level (8) */
    bool profile_present[8] = {0}, level_present[8] = {0};
    for (int i = 0; i < max_sub_layers_minus1; i++) {
        profile_present[i] = nal_bits_u1(nb);
        level_present[i] = nal_bits_u1(nb);
    }
    if (max_sub_layers_minus1 > 0)
        for (int i = max_sub_layers_minus1; i < 8; i++)
            nal_bits_u(nb, 2);
    for (int i = 0; i < max_sub_layers_minus1; i++) {
        if (profile_present[i]) {
            nal_bits_u(nb, 32);
            nal_bits_u(nb, 32);
            nal_bits_u(nb, 24);
        }
        if (level_present[i])
            nal_bits_u(nb, 8);
    }
}

static int hevc_parse_sps(const uint8_t *nal, size_t len, hevc_config_t *out)
{
    nal_bits_t nb;
    nal_bits_init(&nb, nal, len);
    nal_bits_u(&nb, 16); /* NAL unit header */
    nal_bits_u(&nb, 4);  /* sps_video_parameter_set_id */
    int max_sub_layers_minus1 = (int)nal_bits_u(&nb, 3);
    nal_bits_u1(&nb); /* temporal id nesting */
    if (max_sub_layers_minus1 > 6)
        return -EPROTO;
    hevc_skip_ptl(&nb, max_sub_layers_minus1);
    if (nal_bits_ue(&nb) > 15) /* sps_seq_parameter_set_id */
        return -EPROTO;
    uint32_t chroma = nal_bits_ue(&nb);
    if (chroma > 3)
        return -EPROTO;
    if (chroma == 3)
        nal_bits_u1(&nb); /* separate_colour_plane_flag */
    uint32_t w = nal_bits_ue(&nb), h = nal_bits_ue(&nb);
    uint32_t crop[4] = {0};
    if (nal_bits_u1(&nb))
        for (int i = 0; i < 4; i++)
            crop[i] = nal_bits_ue(&nb);
    uint32_t depth = nal_bits_ue(&nb);
    if (nb.error)
        return -EPROTO;
    if (w == 0 || h == 0 || w > H264_MAX_DIMENSION || h > H264_MAX_DIMENSION || depth > 8)
        return -EMSGSIZE;
    uint32_t sub_w = chroma == 1 || chroma == 2 ? 2 : 1, sub_h = chroma == 1 ? 2 : 1;
    uint64_t cw = ((uint64_t)crop[0] + crop[1]) * sub_w, ch = ((uint64_t)crop[2] + crop[3]) * sub_h;
    if (cw >= w || ch >= h)
        return -EPROTO;
    out->chroma_format_idc = (int)chroma;
    out->bit_depth_luma = (int)depth + 8;
    out->width = (int)(w - cw);
    out->height = (int)(h - ch);
    return 0;
}

int hevc_parse_hvcc(const uint8_t *data, size_t len, hevc_config_t *out)
{
    byteio_reader_t br;
    byteio_init(&br, data, len);
    hevc_config_t cfg = {0};
    uint8_t version = byteio_u8(&br);
    uint8_t b = byteio_u8(&br);
    cfg.profile_space = b >> 6;
    cfg.tier_flag = (b >> 5) & 1;
    cfg.profile_idc = b & 0x1f;
    cfg.compat_flags = byteio_be32(&br);
    for (int i = 0; i < 6; i++)
        cfg.constraints[i] = byteio_u8(&br);
    cfg.level_idc = byteio_u8(&br);
    byteio_skip(&br, 2 + 1); /* min_spatial_segmentation_idc, parallelismType */
    cfg.chroma_format_idc = byteio_u8(&br) & 3;
    cfg.bit_depth_luma = (byteio_u8(&br) & 7) + 8;
    byteio_skip(&br, 1 + 2); /* bit depth chroma, avgFrameRate */
    cfg.nal_length_size = (byteio_u8(&br) & 3) + 1;
    uint8_t narrays = byteio_u8(&br);
    /* Version 0 records come from pre-standard muxers; FFmpeg accepts them. */
    if (br.error || version > 1 || cfg.nal_length_size == 3)
        return -EPROTO;
    const uint8_t *sps = NULL;
    size_t sps_len = 0;
    for (int i = 0; i < narrays && !br.error; i++) {
        uint8_t type = byteio_u8(&br) & 0x3f;
        uint16_t n = byteio_be16(&br);
        for (int j = 0; j < n && !br.error; j++) {
            uint16_t l = byteio_be16(&br);
            const uint8_t *nal = byteio_take(&br, l);
            if (type == 33 && !sps && nal) {
                sps = nal;
                sps_len = l;
            }
        }
    }
    if (br.error)
        return -EPROTO;
    if (sps) {
        int ret = hevc_parse_sps(sps, sps_len, &cfg);
        if (ret < 0)
            return ret;
    }
    *out = cfg;
    return 0;
}

void hevc_codec_string(const hevc_config_t *cfg, char *buf, size_t buflen)
{
    /* ISO/IEC 14496-15 E.3: the compatibility flags bit-reversed in hex,
     * then the constraint bytes without trailing zero bytes. */
    uint32_t rev = 0;
    for (int i = 0; i < 32; i++)
        if (cfg->compat_flags & (1u << i))
            rev |= 1u << (31 - i);
    static const char *const space[4] = {"", "A", "B", "C"};
    int n = snprintf(buf, buflen, "hvc1.%s%u.%X.%c%u", space[cfg->profile_space & 3],
                     cfg->profile_idc, rev, cfg->tier_flag ? 'H' : 'L', cfg->level_idc);
    int last = -1;
    for (int i = 0; i < 6; i++)
        if (cfg->constraints[i])
            last = i;
    for (int i = 0; i <= last && n >= 0 && (size_t)n < buflen; i++)
        n += snprintf(buf + n, buflen - (size_t)n, ".%X", cfg->constraints[i]);
}

/* ---- AV1 ------------------------------------------------------------- */

/* leb128 (AV1 4.10.5): at most 8 bytes, value kept under 2^32. */
static uint32_t av1_leb128(byteio_reader_t *br)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t b = byteio_u8(br);
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
        if (i == 7)
            br->error = true;
    }
    if (v > UINT32_MAX)
        br->error = true;
    return (uint32_t)v;
}

/* sequence_header_obu() up to max_frame_height_minus_1 (AV1 5.5.1). */
static int av1_parse_sequence_header(const uint8_t *p, size_t len, av1_config_t *out)
{
    nal_bits_t nb;
    nal_bits_init(&nb, p, len);
    nb.raw = true;
    nal_bits_u(&nb, 3); /* seq_profile */
    nal_bits_u1(&nb);   /* still_picture */
    bool reduced = nal_bits_u1(&nb);
    if (reduced) {
        nal_bits_u(&nb, 5);
    } else {
        bool decoder_model = false;
        int delay_len = 0;
        if (nal_bits_u1(&nb)) { /* timing_info_present_flag */
            nal_bits_u(&nb, 32);
            nal_bits_u(&nb, 32);
            if (nal_bits_u1(&nb)) { /* equal_picture_interval: uvlc */
                int zeros = 0;
                while (!nb.error && !nal_bits_u1(&nb))
                    if (++zeros >= 32)
                        return -EPROTO;
                nal_bits_u(&nb, zeros);
            }
            decoder_model = nal_bits_u1(&nb);
            if (decoder_model) {
                delay_len = (int)nal_bits_u(&nb, 5) + 1;
                nal_bits_u(&nb, 32);
                nal_bits_u(&nb, 10);
            }
        }
        bool initial_delay = nal_bits_u1(&nb);
        int ops = (int)nal_bits_u(&nb, 5) + 1;
        for (int i = 0; i < ops && !nb.error; i++) {
            nal_bits_u(&nb, 12);
            if (nal_bits_u(&nb, 5) > 7)
                nal_bits_u1(&nb);
            if (decoder_model && nal_bits_u1(&nb)) {
                nal_bits_u(&nb, delay_len);
                nal_bits_u(&nb, delay_len);
                nal_bits_u1(&nb);
            }
            if (initial_delay && nal_bits_u1(&nb))
                nal_bits_u(&nb, 4);
        }
    }
    int wbits = (int)nal_bits_u(&nb, 4) + 1, hbits = (int)nal_bits_u(&nb, 4) + 1;
    uint32_t w = nal_bits_u(&nb, wbits) + 1, h = nal_bits_u(&nb, hbits) + 1;
    if (nb.error)
        return -EPROTO;
    if (w > H264_MAX_DIMENSION || h > H264_MAX_DIMENSION)
        return -EMSGSIZE;
    out->width = (int)w;
    out->height = (int)h;
    return 0;
}

int av1_parse_av1c(const uint8_t *data, size_t len, av1_config_t *out)
{
    byteio_reader_t br;
    byteio_init(&br, data, len);
    av1_config_t cfg = {0};
    uint8_t b0 = byteio_u8(&br), b1 = byteio_u8(&br), b2 = byteio_u8(&br);
    byteio_skip(&br, 1);
    if (br.error || b0 != 0x81) /* marker 1, version 1 */
        return -EPROTO;
    cfg.seq_profile = b1 >> 5;
    cfg.seq_level_idx = b1 & 0x1f;
    cfg.seq_tier = b2 >> 7;
    bool high = (b2 >> 6) & 1, twelve = (b2 >> 5) & 1;
    cfg.bit_depth = high ? (twelve ? 12 : 10) : 8;
    cfg.monochrome = (b2 >> 4) & 1;
    cfg.chroma_subsampling_x = (b2 >> 3) & 1;
    cfg.chroma_subsampling_y = (b2 >> 2) & 1;
    cfg.chroma_sample_position = b2 & 3;
    /* configOBUs: find the sequence header (OBU type 1). */
    while (byteio_left(&br) > 0) {
        uint8_t h = byteio_u8(&br);
        if (h & 0x80)
            return -EPROTO; /* forbidden bit */
        int type = (h >> 3) & 0x0f;
        if (h & 0x04)
            byteio_skip(&br, 1); /* extension header */
        size_t size = (h & 0x02) ? av1_leb128(&br) : byteio_left(&br);
        const uint8_t *obu = byteio_take(&br, size);
        if (br.error)
            return -EPROTO;
        if (type == 1) {
            int ret = av1_parse_sequence_header(obu, size, &cfg);
            if (ret < 0)
                return ret;
            break;
        }
    }
    *out = cfg;
    return 0;
}

void av1_codec_string(const av1_config_t *cfg, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "av01.%u.%02u%c.%02d", cfg->seq_profile, cfg->seq_level_idx,
             cfg->seq_tier ? 'H' : 'M', cfg->bit_depth);
}

static const int aac_sample_rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                         22050, 16000, 12000, 11025, 8000,  7350};

/* A tiny MSB-first bit reader on top of byteio for the few ASC fields. */
typedef struct asc_bits {
    byteio_reader_t br;
    uint32_t cur;
    int left;
} asc_bits_t;

static uint32_t asc_bits_u(asc_bits_t *ab, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (ab->left == 0) {
            ab->cur = byteio_u8(&ab->br);
            ab->left = 8;
        }
        ab->left--;
        v = (v << 1) | ((ab->cur >> ab->left) & 1);
    }
    return v;
}

static int asc_object_type(asc_bits_t *ab)
{
    int aot = (int)asc_bits_u(ab, 5);
    if (aot == 31)
        aot = 32 + (int)asc_bits_u(ab, 6);
    return aot;
}

static int asc_sample_rate(asc_bits_t *ab)
{
    uint32_t idx = asc_bits_u(ab, 4);
    if (idx == 15) {
        uint32_t rate = asc_bits_u(ab, 24);
        return rate > 0 && rate <= 384000 ? (int)rate : -1;
    }
    return idx < 13 ? aac_sample_rates[idx] : -1;
}

int aac_parse_asc(const uint8_t *data, size_t len, aac_config_t *out)
{
    asc_bits_t ab = {.cur = 0, .left = 0};
    byteio_init(&ab.br, data, len);

    int aot = asc_object_type(&ab);
    int rate = asc_sample_rate(&ab);
    uint32_t chan_cfg = asc_bits_u(&ab, 4);
    /* Explicit SBR/PS signalling: the output rate follows; the object type
     * stays 5/29 for the codec string ("mp4a.40.5"). */
    if (aot == 5 || aot == 29) {
        int ext_rate = asc_sample_rate(&ab);
        int core = asc_object_type(&ab);
        if (ext_rate < 0 || core == 0)
            return -EPROTO;
        rate = ext_rate;
    }
    if (ab.br.error || aot == 0 || rate < 0)
        return -EPROTO;

    /* channel_configuration to a channel count (ISO/IEC 14496-3 1.6.3.5 and
     * 23003-3); 0 means "described by a program config element". */
    static const int counts[16] = {0, 1, 2, 3, 4, 5, 6, 8, -1, -1, -1, 7, 8, 24, 8, -1};
    if (counts[chan_cfg] < 0)
        return -EPROTO;

    out->object_type = aot;
    out->sample_rate = rate;
    out->channels = counts[chan_cfg];
    return 0;
}

void aac_codec_string(const aac_config_t *cfg, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "mp4a.40.%d", cfg->object_type);
}

/* ---- Annex B <-> avcC / AVCC ------------------------------------------ */

/* Next start code (00 00 01) at or after pos; len when none. */
static size_t h264_find_start(const uint8_t *d, size_t len, size_t pos)
{
    for (size_t i = pos; i + 3 <= len; i++)
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1)
            return i;
    return len;
}

int h264_annexb_each_nal(const uint8_t *d, size_t len, h264_nal_cb fn, void *opaque)
{
    size_t sc = h264_find_start(d, len, 0);
    while (sc < len) {
        size_t start = sc + 3;
        size_t next = h264_find_start(d, len, start);
        size_t end = next;
        while (end > start && d[end - 1] == 0)
            end--;
        if (end > start) {
            int ret = fn(opaque, d + start, end - start);
            if (ret < 0)
                return ret;
        }
        sc = next;
    }
    return 0;
}

typedef struct h264_ps {
    const uint8_t *sps[4], *pps[4];
    size_t sps_len[4], pps_len[4];
    int nsps, npps;
} h264_ps_t;

static int h264_collect_ps(void *opaque, const uint8_t *nal, size_t size)
{
    h264_ps_t *ps = opaque;
    int type = nal[0] & 0x1f;
    if (size > 0xffff)
        return 0;
    if (type == 7 && ps->nsps < 4 && size >= 4) {
        ps->sps[ps->nsps] = nal;
        ps->sps_len[ps->nsps++] = size;
    } else if (type == 8 && ps->npps < 4) {
        ps->pps[ps->npps] = nal;
        ps->pps_len[ps->npps++] = size;
    }
    return 0;
}

int h264_avcc_from_annexb(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    h264_ps_t ps = {0};
    (void)h264_annexb_each_nal(in, len, h264_collect_ps, &ps);
    if (ps.nsps == 0 || ps.npps == 0)
        return -EPROTO;
    const uint8_t *sps = ps.sps[0];
    size_t need = 7 + 1;
    for (int i = 0; i < ps.nsps; i++)
        need += 2 + ps.sps_len[i];
    for (int i = 0; i < ps.npps; i++)
        need += 2 + ps.pps_len[i];
    bool high = sps[1] == 100 || sps[1] == 110 || sps[1] == 122 || sps[1] == 244;
    if (high)
        need += 4;
    if (need > cap || need > INT32_MAX)
        return -EMSGSIZE;
    size_t n = 0;
    out[n++] = 1;      /* configurationVersion */
    out[n++] = sps[1]; /* AVCProfileIndication */
    out[n++] = sps[2]; /* profile_compatibility */
    out[n++] = sps[3]; /* AVCLevelIndication */
    out[n++] = 0xff;   /* 4-byte NAL lengths */
    out[n++] = (uint8_t)(0xe0 | ps.nsps);
    for (int i = 0; i < ps.nsps; i++) {
        out[n++] = (uint8_t)(ps.sps_len[i] >> 8);
        out[n++] = (uint8_t)ps.sps_len[i];
        memcpy(out + n, ps.sps[i], ps.sps_len[i]);
        n += ps.sps_len[i];
    }
    out[n++] = (uint8_t)ps.npps;
    for (int i = 0; i < ps.npps; i++) {
        out[n++] = (uint8_t)(ps.pps_len[i] >> 8);
        out[n++] = (uint8_t)ps.pps_len[i];
        memcpy(out + n, ps.pps[i], ps.pps_len[i]);
        n += ps.pps_len[i];
    }
    if (high) { /* ISO/IEC 14496-15 5.3.3.1.2: 4:2:0, 8 bit */
        out[n++] = 0xfc | 1;
        out[n++] = 0xf8 | 0;
        out[n++] = 0xf8 | 0;
        out[n++] = 0;
    }
    return (int)n;
}

typedef struct h264_sample_out {
    uint8_t *out;
    size_t cap, n;
    h264_au_info_t info;
    bool sps, pps, vps;
    bool hevc;
} h264_sample_out_t;

static int h264_append_nal(void *opaque, const uint8_t *nal, size_t size)
{
    h264_sample_out_t *o = opaque;
    if (o->hevc) {
        int type = (nal[0] >> 1) & 0x3f;
        if (type >= 32 && type <= 35) {
            o->vps |= type == 32;
            o->sps |= type == 33;
            o->pps |= type == 34;
            return 0;
        }
        if (type >= 16 && type <= 23)
            o->info.idr = true;
    } else {
        int type = nal[0] & 0x1f;
        if (type == 7) {
            o->sps = true;
            return 0;
        }
        if (type == 8) {
            o->pps = true;
            return 0;
        }
        if (type == 9)
            return 0;
        if (type == 5)
            o->info.idr = true;
    }
    if (size > UINT32_MAX || o->n + 4 + size > o->cap)
        return -EMSGSIZE;
    uint8_t *p = o->out + o->n;
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    memcpy(p + 4, nal, size);
    o->n += 4 + size;
    o->info.nals++;
    return 0;
}

static int annexb_to_sample(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                            h264_au_info_t *info, bool hevc)
{
    h264_sample_out_t o = {.out = out, .cap = cap, .hevc = hevc};
    int ret = h264_annexb_each_nal(data, len, h264_append_nal, &o);
    o.info.has_ps = o.sps && o.pps && (o.vps || !hevc);
    if (info)
        *info = o.info;
    if (ret < 0)
        return ret;
    if (o.n > INT32_MAX)
        return -EMSGSIZE;
    return (int)o.n;
}

int h264_annexb_to_sample(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                          h264_au_info_t *info)
{
    return annexb_to_sample(data, len, out, cap, info, false);
}

int hevc_annexb_to_sample(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                          h264_au_info_t *info)
{
    return annexb_to_sample(data, len, out, cap, info, true);
}

typedef struct hevc_ps {
    const uint8_t *nal[3][4]; /* VPS, SPS, PPS */
    size_t len[3][4];
    int n[3];
} hevc_ps_t;

static int hevc_collect_ps(void *opaque, const uint8_t *nal, size_t size)
{
    hevc_ps_t *ps = opaque;
    int type = (nal[0] >> 1) & 0x3f;
    if (type < 32 || type > 34 || size < 3 || size > 0xffff)
        return 0;
    int k = type - 32;
    if (ps->n[k] < 4) {
        ps->nal[k][ps->n[k]] = nal;
        ps->len[k][ps->n[k]++] = size;
    }
    return 0;
}

int hevc_hvcc_from_annexb(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    hevc_ps_t ps = {0};
    (void)h264_annexb_each_nal(in, len, hevc_collect_ps, &ps);
    if (!ps.n[0] || !ps.n[1] || !ps.n[2])
        return -EPROTO;
    /* The SPS's general profile_tier_level (H.265 7.3.2.2, 7.3.3). */
    nal_bits_t nb;
    nal_bits_init(&nb, ps.nal[1][0], ps.len[1][0]);
    nal_bits_u(&nb, 16);
    nal_bits_u(&nb, 4);
    uint32_t max_sub_layers_minus1 = nal_bits_u(&nb, 3);
    uint32_t nesting = nal_bits_u1(&nb);
    uint32_t ptl0 = nal_bits_u(&nb, 8); /* space, tier, profile idc */
    uint32_t compat = nal_bits_u(&nb, 32);
    uint8_t constraints[6];
    for (int i = 0; i < 6; i++)
        constraints[i] = (uint8_t)nal_bits_u(&nb, 8);
    uint32_t level = nal_bits_u(&nb, 8);
    hevc_config_t sps = {0};
    if (nb.error || max_sub_layers_minus1 > 6 ||
        hevc_parse_sps(ps.nal[1][0], ps.len[1][0], &sps) != 0)
        return -EPROTO;
    size_t need = 23;
    for (int k = 0; k < 3; k++) {
        need += 3;
        for (int i = 0; i < ps.n[k]; i++)
            need += 2 + ps.len[k][i];
    }
    if (need > cap || need > INT32_MAX)
        return -EMSGSIZE;
    size_t n = 0;
    out[n++] = 1;
    out[n++] = (uint8_t)ptl0;
    out[n++] = (uint8_t)(compat >> 24);
    out[n++] = (uint8_t)(compat >> 16);
    out[n++] = (uint8_t)(compat >> 8);
    out[n++] = (uint8_t)compat;
    memcpy(out + n, constraints, 6);
    n += 6;
    out[n++] = (uint8_t)level;
    out[n++] = 0xf0; /* min_spatial_segmentation_idc 0 */
    out[n++] = 0x00;
    out[n++] = 0xfc; /* parallelismType 0 */
    out[n++] = (uint8_t)(0xfc | sps.chroma_format_idc);
    out[n++] = (uint8_t)(0xf8 | (sps.bit_depth_luma - 8));
    out[n++] = (uint8_t)(0xf8 | (sps.bit_depth_luma - 8)); /* chroma: as luma */
    out[n++] = 0; /* avgFrameRate */
    out[n++] = 0;
    out[n++] = (uint8_t)(((max_sub_layers_minus1 + 1) << 3) | (nesting << 2) | 3);
    out[n++] = 3; /* arrays: VPS, SPS, PPS */
    for (int k = 0; k < 3; k++) {
        out[n++] = (uint8_t)(0x80 | (32 + k)); /* array_completeness */
        out[n++] = 0;
        out[n++] = (uint8_t)ps.n[k];
        for (int i = 0; i < ps.n[k]; i++) {
            out[n++] = (uint8_t)(ps.len[k][i] >> 8);
            out[n++] = (uint8_t)ps.len[k][i];
            memcpy(out + n, ps.nal[k][i], ps.len[k][i]);
            n += ps.len[k][i];
        }
    }
    return (int)n;
}

/* ---- ADTS --------------------------------------------------------------- */

static const int aac_adts_rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                       22050, 16000, 12000, 11025, 8000,  7350};

int aac_parse_adts(const uint8_t *d, size_t len, aac_adts_t *out)
{
    if (len < 7)
        return -EAGAIN;
    if (d[0] != 0xff || (d[1] & 0xf6) != 0xf0) /* sync word, layer 0 */
        return -EPROTO;
    bool crc = !(d[1] & 0x01);
    int profile = d[2] >> 6;
    int sri = (d[2] >> 2) & 0x0f;
    int chan = ((d[2] & 0x01) << 2) | (d[3] >> 6);
    size_t flen = ((size_t)(d[3] & 0x03) << 11) | ((size_t)d[4] << 3) | (d[5] >> 5);
    int blocks = (d[6] & 0x03) + 1;
    size_t hlen = crc ? 9 : 7;
    if (sri >= 13 || chan == 0 || flen < hlen + 1)
        return -EPROTO;
    if (len < flen || len < hlen)
        return -EAGAIN;
    out->header_len = hlen;
    out->frame_len = flen;
    out->object_type = profile + 1;
    out->sample_rate_index = sri;
    out->sample_rate = aac_adts_rates[sri];
    out->channel_config = chan;
    out->raw_blocks = blocks;
    return 0;
}

void aac_asc_from_adts(const aac_adts_t *h, uint8_t asc[2])
{
    asc[0] = (uint8_t)((h->object_type << 3) | (h->sample_rate_index >> 1));
    asc[1] = (uint8_t)(((h->sample_rate_index & 1) << 7) | (h->channel_config << 3));
}
