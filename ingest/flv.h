/*
 * FLV tag bodies as RTMP carries them (message type 8 audio, 9 video): a
 * pure parser from the body bytes to what they hold, for H.264 (AVC, codec
 * id 7) and AAC (sound format 10). Other codecs are recognised only well
 * enough to say "unsupported". No allocation; the parsed struct points into
 * the caller's bytes. Any thread.
 */
#ifndef SLUICE_INGEST_FLV_H
#define SLUICE_INGEST_FLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"

#define FLV_TAG_AUDIO 8
#define FLV_TAG_VIDEO 9
#define FLV_TAG_SCRIPT 18

#define FLV_VIDEO_CODEC_AVC 7
#define FLV_AUDIO_FORMAT_AAC 10

typedef enum flv_kind {
    FLV_KIND_EMPTY = 0,   /* a zero-length body: nothing to do */
    FLV_KIND_CONFIG,      /* AVCDecoderConfigurationRecord / AudioSpecificConfig */
    FLV_KIND_MEDIA,       /* AVCC NAL units / one raw AAC frame */
    FLV_KIND_END_OF_SEQUENCE, /* AVC end of sequence: carries no data */
    FLV_KIND_INFO,        /* video info/command frame (frame type 5): ignored */
    FLV_KIND_UNSUPPORTED, /* another codec, or Enhanced RTMP: see codec_id */
} flv_kind_t;

typedef struct flv_tag {
    uint8_t tag_type;    /* FLV_TAG_AUDIO or FLV_TAG_VIDEO */
    flv_kind_t kind;
    media_codec_t codec; /* H264 / AAC, NONE when unsupported */
    /* Video: the FLV codec id (0..15), or for an Enhanced RTMP header the
     * FourCC. Audio: the sound format (0..15). For messages. */
    uint32_t codec_id;
    bool enhanced;       /* Enhanced RTMP (IsExHeader) video header */
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
