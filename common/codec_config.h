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

typedef struct aac_config {
    int object_type; /* 2 = AAC-LC, 5 = SBR, 29 = PS ... */
    int sample_rate; /* Hz */
    int channels;    /* channel count (configuration 7 gives 8); 0 means "in the PCE" */
} aac_config_t;

/* Parses an AudioSpecificConfig. Returns 0 or -EPROTO. */
int aac_parse_asc(const uint8_t *data, size_t len, aac_config_t *out);

/* Writes "mp4a.40.N" into buf (>= 12 bytes). */
void aac_codec_string(const aac_config_t *cfg, char *buf, size_t buflen);

#endif
