/*
 * Parsers for the codec configuration records that FLV carries and that
 * fMP4 needs: AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with
 * the SPS fields that matter to a packager (size, profile, level, frame
 * rate when the VUI has timing info), and AudioSpecificConfig (ISO/IEC
 * 14496-3 1.6.2.1). Bounded readers over untrusted bytes; pure functions;
 * any thread.
 */
#ifndef SLUICE_COMMON_CODEC_CONFIG_H
#define SLUICE_COMMON_CODEC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct h264_config {
    uint8_t profile_idc;      /* avcC byte 1 */
    uint8_t constraint_flags; /* avcC byte 2 (profile compatibility) */
    uint8_t level_idc;        /* avcC byte 3 */
    int nal_length_size;      /* 1, 2 or 4 */
    int width;                /* from the first SPS, cropping applied */
    int height;
    int fps_num; /* from VUI timing info when present, else 0 */
    int fps_den;
    int chroma_format_idc;
    int bit_depth_luma;
} h264_config_t;

/* Parses an avcC record. Returns 0, -EPROTO (malformed), -EMSGSIZE (a field
 * past a sane limit, e.g. a picture wider than 16384). */
int h264_parse_avcc(const uint8_t *data, size_t len, h264_config_t *out);

/* Writes the RFC 6381 codec string "avc1.PPCCLL" into buf (>= 12 bytes). */
void h264_codec_string(const h264_config_t *cfg, char *buf, size_t buflen);

/* Whether an H.264 sample (length-prefixed NAL units, nal_length_size 1, 2
 * or 4 bytes) holds an IDR picture (nal_unit_type 5). A keyframe that is
 * not one is an open-GOP recovery point: the pictures after it in decode
 * order may refer to pictures before it. False for a malformed sample. */
bool h264_sample_has_idr(const uint8_t *data, size_t len, int nal_length_size);

/* Whether an H.264 sample (as above) carries CEA-608/708 closed captions:
 * an SEI message with ATSC A/53 Part 4 cc_data ("GA94", user data type 3,
 * process_cc_data_flag set, cc_count > 0), as encoders and relays send
 * them. False for a malformed sample. */
bool h264_sample_has_captions(const uint8_t *data, size_t len, int nal_length_size);

typedef struct hevc_config {
    uint8_t profile_space;   /* 0..3 */
    uint8_t tier_flag;       /* 0 Main, 1 High */
    uint8_t profile_idc;     /* 1 Main, 2 Main 10, ... */
    uint32_t compat_flags;   /* general_profile_compatibility_flags */
    uint8_t constraints[6];  /* general constraint indicator flags */
    uint8_t level_idc;       /* 30 x level */
    int nal_length_size;     /* 1, 2 or 4 */
    int chroma_format_idc;
    int bit_depth_luma;
    int width;               /* from the SPS, conformance window applied; 0 without an SPS */
    int height;
} hevc_config_t;

/* Parses an HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15 8.3.3)
 * and its first SPS. Returns 0, -EPROTO (malformed), -EMSGSIZE (a size past
 * 16384). */
int hevc_parse_hvcc(const uint8_t *data, size_t len, hevc_config_t *out);

/* Writes the RFC 6381 codec string "hvc1.1.6.L93.B0" into buf (>= 40 bytes). */
void hevc_codec_string(const hevc_config_t *cfg, char *buf, size_t buflen);

typedef struct av1_config {
    uint8_t seq_profile;    /* 0 Main, 1 High, 2 Professional */
    uint8_t seq_level_idx;  /* operating point 0 */
    uint8_t seq_tier;
    int bit_depth;          /* 8, 10 or 12 */
    bool monochrome;
    uint8_t chroma_subsampling_x, chroma_subsampling_y, chroma_sample_position;
    int width;              /* max_frame_width from the sequence header OBU; 0 without one */
    int height;
} av1_config_t;

/* Parses an AV1CodecConfigurationRecord (av1C, AV1-ISOBMFF 2.3.3) and the
 * sequence header OBU among its configOBUs, when there is one. Returns 0,
 * -EPROTO or -EMSGSIZE. */
int av1_parse_av1c(const uint8_t *data, size_t len, av1_config_t *out);

/* Writes the codec string "av01.0.04M.08" into buf (>= 24 bytes). */
void av1_codec_string(const av1_config_t *cfg, char *buf, size_t buflen);

typedef struct aac_config {
    int object_type; /* 2 = AAC-LC, 5 = SBR, 29 = PS ... */
    int sample_rate; /* Hz */
    int channels;    /* channel count (configuration 7 gives 8); 0 means "in the PCE" */
} aac_config_t;

/* Parses an AudioSpecificConfig. Returns 0 or -EPROTO. */
int aac_parse_asc(const uint8_t *data, size_t len, aac_config_t *out);

/* Writes "mp4a.40.N" into buf (>= 12 bytes). */
void aac_codec_string(const aac_config_t *cfg, char *buf, size_t buflen);

/* ---- Annex B (MPEG-TS, encoders' raw output) <-> avcC / AVCC ---------- */

/* Calls fn for each NAL unit of an Annex B buffer (00 00 01 or 00 00 00 01
 * start codes; trailing zero bytes of a NAL cut). Bytes before the first
 * start code are skipped. Stops at fn's negative return and returns it;
 * else 0. */
typedef int (*h264_nal_cb)(void *opaque, const uint8_t *nal, size_t size);
int h264_annexb_each_nal(const uint8_t *data, size_t len, h264_nal_cb fn, void *opaque);

/* Builds an avcC (4-byte NAL lengths) from the SPS and PPS NAL units of an
 * Annex B buffer (at most 4 of each; the first SPS gives profile and level;
 * High-profile chroma fields say 4:2:0, 8 bit). Returns its length, -EPROTO
 * without an SPS and a PPS, -EMSGSIZE when it does not fit cap. */
int h264_avcc_from_annexb(const uint8_t *data, size_t len, uint8_t *out, size_t cap);

/* What h264_annexb_to_sample found in an access unit. */
typedef struct h264_au_info {
    bool idr;           /* an IDR slice (nal_unit_type 5) */
    bool has_ps;        /* an SPS (7) and a PPS (8): h264_avcc_from_annexb applies */
    size_t nals;        /* NAL units written */
} h264_au_info_t;

/* Rewrites an Annex B access unit as an AVCC sample (4-byte big-endian
 * lengths) into out, leaving out the access unit delimiters, SPS and PPS
 * (9, 7, 8: they belong in the avcC). Returns the sample's length (0: no
 * NAL unit left), or -EMSGSIZE when it does not fit cap. */
int h264_annexb_to_sample(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                          h264_au_info_t *info);

/* HEVC: builds an hvcC (4-byte NAL lengths) from the VPS, SPS and PPS NAL
 * units of an Annex B buffer (at most 4 of each; the first SPS gives the
 * profile, tier, level, chroma format and bit depth). Returns its length,
 * -EPROTO without all three or with an SPS it cannot read, -EMSGSIZE when
 * it does not fit cap. */
int hevc_hvcc_from_annexb(const uint8_t *data, size_t len, uint8_t *out, size_t cap);

/* h264_annexb_to_sample for HEVC: leaves out VPS, SPS, PPS and access unit
 * delimiters (32..35); info->idr says an IRAP picture (16..23), info->has_ps
 * that VPS, SPS and PPS were there. */
int hevc_annexb_to_sample(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                          h264_au_info_t *info);

/* ---- ADTS (AAC in MPEG-TS) -------------------------------------------- */

typedef struct aac_adts {
    size_t header_len;  /* 7, or 9 with a CRC */
    size_t frame_len;   /* header + raw frame(s) */
    int object_type;    /* profile + 1 (2 = AAC-LC) */
    int sample_rate_index;
    int sample_rate;    /* Hz */
    int channel_config; /* 1..7; 0 (a PCE) is refused */
    int raw_blocks;     /* raw data blocks in the frame (1 almost always) */
} aac_adts_t;

/* Parses the ADTS header at data. Returns 0, -EAGAIN when len is shorter
 * than the header or the frame it announces, -EPROTO when it is not one
 * (no sync word, reserved fields, a frame shorter than its header, a PCE
 * channel configuration, an unknown sample rate). */
int aac_parse_adts(const uint8_t *data, size_t len, aac_adts_t *out);

/* The 2-byte AudioSpecificConfig an ADTS header stands for. */
void aac_asc_from_adts(const aac_adts_t *h, uint8_t asc[2]);

#endif
