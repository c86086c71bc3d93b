/*
 * FLV tag bodies as RTMP carries them (message type 8 audio, 9 video): a
 * pure parser from the body bytes to what they hold, for H.264 (AVC, codec
 * id 7), AAC (sound format 10), and the Enhanced RTMP (v1/v2) video header
 * with the FourCCs 'hvc1' (HEVC), 'av01' (AV1) and 'avc1' (H.264): sequence
 * start / coded frames (with or without composition time) / sequence end,
 * metadata, the ModEx prefix and single-track Multitrack; and the v2 audio
 * header with 'mp4a' (AAC; multichannel config ignored). Other codecs are
 * recognised only well enough to say "unsupported". No allocation; the parsed struct points into
 * the caller's bytes. Any thread.
 */
#ifndef SLUICE_INGEST_FLV_INTERNAL_H
#define SLUICE_INGEST_FLV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"

#define FLV_TAG_AUDIO 8
#define FLV_TAG_VIDEO 9
#define FLV_TAG_SCRIPT 18

#define FLV_VIDEO_CODEC_AVC 7
#define FLV_AUDIO_FORMAT_AAC 10

/* Enhanced RTMP video FourCCs, as read big-endian. */
#define FLV_FOURCC_AVC1 0x61766331u
#define FLV_FOURCC_HVC1 0x68766331u
#define FLV_FOURCC_AV01 0x61763031u
#define FLV_FOURCC_VP09 0x76703039u
/* Enhanced RTMP v2 audio: SoundFormat 9 announces an extended header. */
#define FLV_AUDIO_FORMAT_EX_HEADER 9
#define FLV_FOURCC_MP4A 0x6d703461u

typedef enum flv_kind {
    FLV_KIND_EMPTY = 0,   /* a zero-length body: nothing to do */
    FLV_KIND_CONFIG,      /* avcC / hvcC / av1C / AudioSpecificConfig */
    FLV_KIND_MEDIA,       /* AVCC/HVCC NAL units, AV1 OBUs / one raw AAC frame */
    FLV_KIND_END_OF_SEQUENCE, /* end of sequence: carries no data */
    FLV_KIND_INFO,        /* command frame, Enhanced metadata, other tracks: ignored */
    FLV_KIND_UNSUPPORTED, /* another codec, or Enhanced RTMP: see codec_id */
} flv_kind_t;

typedef struct flv_tag {
    uint8_t tag_type;    /* FLV_TAG_AUDIO or FLV_TAG_VIDEO */
    flv_kind_t kind;
    media_codec_t codec; /* H264 / HEVC / AV1 / AAC, NONE when unsupported */
    /* Video: the FLV codec id (0..15), or for an Enhanced RTMP header the
     * FourCC. Audio: the sound format (0..15). For messages. */
    uint32_t codec_id;
    bool enhanced;       /* Enhanced RTMP header (video IsExHeader, audio SoundFormat 9) */
    uint8_t frame_type;  /* video: 1 key, 2 inter, ... */
    bool keyframe;       /* video frame type 1 */
    int32_t cts;         /* video: composition time offset, ms (signed 24 bit) */
    const uint8_t *payload; /* CONFIG/MEDIA: the bytes after the tag header */
    size_t payload_len;
} flv_tag_t;

/*
 * Parses the body of an audio (type 8) or video (type 9) message. Returns 0
 * (see out->kind), -EPROTO for a body too short for its header, a config
 * or media packet with no payload, or an unknown AVC/AAC packet type;
 * -EINVAL for another tag type.
 */
int flv_parse_tag(uint8_t tag_type, const uint8_t *data, size_t len, flv_tag_t *out)
    __attribute__((warn_unused_result));

/* "H.264", "AAC", "Sorenson H.263", "MP3" ... for log messages. */
const char *flv_codec_name(uint8_t tag_type, uint32_t codec_id, bool enhanced);

#endif
