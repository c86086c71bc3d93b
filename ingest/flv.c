/*
 * FLV audio/video tag body parser (video_file_format_spec_v10 E.4.2/E.4.3).
 * Reads untrusted bytes through common/byteio.h and only points into them;
 * the session decides what to do with the result. Stateless: any thread.
 */
#include "flv_internal.h"

#include <errno.h>
#include <string.h>

#include "byteio.h"

/* Enhanced RTMP packet types (enhanced-rtmp v1 and v2). */
enum {
    FLV_EX_SEQUENCE_START = 0,
    FLV_EX_CODED_FRAMES = 1,
    FLV_EX_SEQUENCE_END = 2,
    FLV_EX_CODED_FRAMES_X = 3, /* no composition time: it is 0 */
    FLV_EX_METADATA = 4,
    FLV_EX_MPEG2TS_SEQUENCE_START = 5,
    FLV_EX_MULTITRACK = 6,
    FLV_EX_MOD_EX = 7,
};
enum { FLV_MULTITRACK_ONE_TRACK = 0 };

/* The prefix Enhanced RTMP audio and video share after the first byte:
 * ModEx modifier blocks (e.g. nanosecond timestamp offsets; skipped, at most
 * a few, each bounded by its size), then either a single-track Multitrack
 * header or the FourCC. The two media number the ModEx and Multitrack
 * packet types differently. Returns 1 with out->codec_id and *packet_type
 * set, 0 when out->kind already says what the tag is (not ingested), or
 * -EPROTO. */
static int flv_parse_ex_prefix(byteio_reader_t *br, uint8_t *packet_type, uint8_t mod_ex,
                               uint8_t multitrack, flv_tag_t *out)
{
    out->enhanced = true;
    for (int i = 0; *packet_type == mod_ex; i++) {
        uint32_t size = (uint32_t)byteio_u8(br) + 1;
        if (size == 256)
            size = (uint32_t)byteio_be16(br) + 1;
        byteio_skip(br, size);
        *packet_type = byteio_u8(br) & 0x0f;
        if (br->error || i >= 8)
            return -EPROTO;
    }
    if (*packet_type == multitrack) {
        uint8_t b = byteio_u8(br);
        *packet_type = b & 0x0f;
        out->codec_id = byteio_be32(br);
        uint8_t track = byteio_u8(br);
        if (br->error)
            return -EPROTO;
        /* Several tracks in one message, or a track other than the main
         * one: not ingested (the main track is what the ladder is made of). */
        if ((b >> 4) != FLV_MULTITRACK_ONE_TRACK || track != 0 || *packet_type == multitrack ||
            *packet_type == mod_ex) {
            out->kind = FLV_KIND_INFO;
            return 0;
        }
        return 1;
    }
    out->codec_id = byteio_be32(br);
    if (br->error) {
        out->kind = FLV_KIND_UNSUPPORTED; /* a short FourCC: name it "unknown" */
        return 0;
    }
    return 1;
}

/* The Enhanced RTMP video header after its first byte (v2 ModEx prefixes
 * and single-track Multitrack included). */
static int flv_parse_video_ex(byteio_reader_t *br, uint8_t packet_type, flv_tag_t *out)
{
    int ret = flv_parse_ex_prefix(br, &packet_type, FLV_EX_MOD_EX, FLV_EX_MULTITRACK, out);
    if (ret <= 0)
        return ret;
    switch (out->codec_id) {
    case FLV_FOURCC_AVC1:
        out->codec = MEDIA_CODEC_H264;
        break;
    case FLV_FOURCC_HVC1:
        out->codec = MEDIA_CODEC_HEVC;
        break;
    case FLV_FOURCC_AV01:
        out->codec = MEDIA_CODEC_AV1;
        break;
    default:
        out->kind = FLV_KIND_UNSUPPORTED;
        return 0;
    }
    if (out->frame_type == 5 && packet_type != FLV_EX_METADATA) {
        out->codec = MEDIA_CODEC_NONE;
        out->kind = FLV_KIND_INFO; /* a video command frame */
        return 0;
    }
    out->keyframe = out->frame_type == 1;
    switch (packet_type) {
    case FLV_EX_SEQUENCE_START:
        out->kind = FLV_KIND_CONFIG;
        break;
    case FLV_EX_CODED_FRAMES:
        /* AV1 has no composition time; AVC and HEVC carry SI24. */
        if (out->codec != MEDIA_CODEC_AV1) {
            uint32_t cts = byteio_be24(br);
            out->cts = (int32_t)(cts ^ 0x800000u) - 0x800000;
        }
        out->kind = FLV_KIND_MEDIA;
        break;
    case FLV_EX_CODED_FRAMES_X:
        out->kind = FLV_KIND_MEDIA;
        break;
    case FLV_EX_SEQUENCE_END:
        out->kind = FLV_KIND_END_OF_SEQUENCE;
        return 0;
    case FLV_EX_METADATA:
        out->codec = MEDIA_CODEC_NONE;
        out->kind = FLV_KIND_INFO; /* colour info (HDR): not used */
        return 0;
    case FLV_EX_MPEG2TS_SEQUENCE_START:
        out->codec = MEDIA_CODEC_NONE;
        out->kind = FLV_KIND_UNSUPPORTED;
        return 0;
    default:
        return -EPROTO;
    }
    if (br->error)
        return -EPROTO;
    out->payload = br->pos;
    out->payload_len = byteio_left(br);
    return out->payload_len ? 0 : -EPROTO;
}

static int flv_parse_video(byteio_reader_t *br, flv_tag_t *out)
{
    uint8_t b0 = byteio_u8(br);
    out->frame_type = (b0 >> 4) & 0x07;
    if (b0 & 0x80)
        return flv_parse_video_ex(br, b0 & 0x0f, out);
    out->codec_id = b0 & 0x0f;
    out->keyframe = out->frame_type == 1;
    if (out->frame_type == 5) {
        out->kind = FLV_KIND_INFO;
        return 0;
    }
    if (out->codec_id != FLV_VIDEO_CODEC_AVC) {
        out->kind = FLV_KIND_UNSUPPORTED;
        return 0;
    }
    out->codec = MEDIA_CODEC_H264;
    uint8_t packet_type = byteio_u8(br);
    uint32_t cts = byteio_be24(br);
    if (br->error)
        return -EPROTO;
    /* Sign-extend the 24-bit composition time. */
    out->cts = (int32_t)(cts ^ 0x800000u) - 0x800000;
    switch (packet_type) {
    case 0:
        out->kind = FLV_KIND_CONFIG;
        out->cts = 0;
        break;
    case 1:
        out->kind = FLV_KIND_MEDIA;
        break;
    case 2:
        out->kind = FLV_KIND_END_OF_SEQUENCE;
        return 0;
    default:
        return -EPROTO;
    }
    out->payload = br->pos;
    out->payload_len = byteio_left(br);
    return out->payload_len ? 0 : -EPROTO;
}

/* Enhanced RTMP v2 audio packet types. */
enum {
    FLV_AEX_SEQUENCE_START = 0,
    FLV_AEX_CODED_FRAMES = 1,
    FLV_AEX_SEQUENCE_END = 2,
    FLV_AEX_MULTICHANNEL_CONFIG = 4,
    FLV_AEX_MULTITRACK = 5,
    FLV_AEX_MOD_EX = 7,
};

/* Enhanced RTMP v2 audio (SoundFormat 9): AAC as 'mp4a' is ingested like
 * legacy AAC; the multichannel config is informational (the
 * AudioSpecificConfig has the channel layout); other FourCCs unsupported. */
static int flv_parse_audio_ex(byteio_reader_t *br, uint8_t packet_type, flv_tag_t *out)
{
    int ret = flv_parse_ex_prefix(br, &packet_type, FLV_AEX_MOD_EX, FLV_AEX_MULTITRACK, out);
    if (ret <= 0)
        return ret;
    if (out->codec_id != FLV_FOURCC_MP4A) {
        out->kind = FLV_KIND_UNSUPPORTED;
        return 0;
    }
    out->codec = MEDIA_CODEC_AAC;
    switch (packet_type) {
    case FLV_AEX_SEQUENCE_START:
        out->kind = FLV_KIND_CONFIG;
        break;
    case FLV_AEX_CODED_FRAMES:
        out->kind = FLV_KIND_MEDIA;
        break;
    case FLV_AEX_SEQUENCE_END:
        out->kind = FLV_KIND_END_OF_SEQUENCE;
        return 0;
    case FLV_AEX_MULTICHANNEL_CONFIG:
        out->codec = MEDIA_CODEC_NONE;
        out->kind = FLV_KIND_INFO;
        return 0;
    default:
        return -EPROTO;
    }
    out->payload = br->pos;
    out->payload_len = byteio_left(br);
    return out->payload_len ? 0 : -EPROTO;
}

static int flv_parse_audio(byteio_reader_t *br, flv_tag_t *out)
{
    uint8_t b0 = byteio_u8(br);
    out->codec_id = b0 >> 4;
    if (out->codec_id == FLV_AUDIO_FORMAT_EX_HEADER)
        return flv_parse_audio_ex(br, b0 & 0x0f, out);
    if (out->codec_id != FLV_AUDIO_FORMAT_AAC) {
        out->kind = FLV_KIND_UNSUPPORTED;
        return 0;
    }
    out->codec = MEDIA_CODEC_AAC;
    uint8_t packet_type = byteio_u8(br);
    if (br->error)
        return -EPROTO;
    switch (packet_type) {
    case 0:
        out->kind = FLV_KIND_CONFIG;
        break;
    case 1:
        out->kind = FLV_KIND_MEDIA;
        break;
    default:
        return -EPROTO;
    }
    out->payload = br->pos;
    out->payload_len = byteio_left(br);
    return out->payload_len ? 0 : -EPROTO;
}

int flv_parse_tag(uint8_t tag_type, const uint8_t *data, size_t len, flv_tag_t *out)
{
    memset(out, 0, sizeof(*out));
    out->tag_type = tag_type;
    if (tag_type != FLV_TAG_AUDIO && tag_type != FLV_TAG_VIDEO)
        return -EINVAL;
    if (len == 0) {
        out->kind = FLV_KIND_EMPTY;
        return 0;
    }
    byteio_reader_t br;
    byteio_init(&br, data, len);
    int ret = tag_type == FLV_TAG_VIDEO ? flv_parse_video(&br, out) : flv_parse_audio(&br, out);
    if (ret < 0) {
        out->payload = NULL;
        out->payload_len = 0;
    }
    return ret;
}

const char *flv_codec_name(uint8_t tag_type, uint32_t codec_id, bool enhanced)
{
    static const char *const video[16] = {
        [2] = "Sorenson H.263", [3] = "Screen video", [4] = "VP6", [5] = "VP6 alpha",
        [6] = "Screen video 2", [7] = "H.264", [12] = "HEVC (non-standard id 12)",
        [13] = "AV1 (non-standard id 13)",
    };
    static const char *const audio[16] = {
        [0] = "PCM", [1] = "ADPCM", [2] = "MP3", [3] = "PCM LE", [4] = "Nellymoser 16k",
        [5] = "Nellymoser 8k", [6] = "Nellymoser", [7] = "G.711 A-law", [8] = "G.711 mu-law",
        [10] = "AAC", [11] = "Speex", [14] = "MP3 8k", [15] = "device-specific",
    };
    if (tag_type == FLV_TAG_AUDIO && enhanced) {
        switch (codec_id) {
        case FLV_FOURCC_MP4A:
            return "AAC (Enhanced RTMP)";
        case 0x4f707573: /* 'Opus' */
            return "Opus (Enhanced RTMP)";
        case 0x61632d33: /* 'ac-3' */
            return "AC-3 (Enhanced RTMP)";
        case 0x65632d33: /* 'ec-3' */
            return "E-AC-3 (Enhanced RTMP)";
        case 0x664c6143: /* 'fLaC' */
            return "FLAC (Enhanced RTMP)";
        case 0x2e6d7033: /* '.mp3' */
            return "MP3 (Enhanced RTMP)";
        default:
            return "unknown (Enhanced RTMP)";
        }
    }
    if (tag_type == FLV_TAG_VIDEO && enhanced) {
        switch (codec_id) {
        case FLV_FOURCC_AVC1:
            return "H.264 (Enhanced RTMP)";
        case FLV_FOURCC_HVC1:
            return "HEVC (Enhanced RTMP)";
        case FLV_FOURCC_AV01:
            return "AV1 (Enhanced RTMP)";
        case FLV_FOURCC_VP09:
            return "VP9 (Enhanced RTMP)";
        default:
            return "unknown (Enhanced RTMP)";
        }
    }
    const char *name = NULL;
    if (codec_id < 16)
        name = tag_type == FLV_TAG_VIDEO ? video[codec_id] : audio[codec_id];
    return name ? name : "unknown";
}
