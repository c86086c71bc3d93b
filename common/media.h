/*
 * Media packets and the per-stream packet queue: the one hand-off between
 * ingest (producer, the libevent loop thread) and the stream's transcode
 * worker (consumer).
 *
 * A packet is one access unit as it came out of an FLV tag: H.264 or HEVC
 * in AVCC/HVCC form (length-prefixed NAL units, the length size given by the
 * config record), AV1 as low-overhead OBUs (Enhanced RTMP), or one raw AAC
 * frame (from SRT also MPEG audio, AC-3 or Opus: see media_codec_t); or a codec configuration record (avcC / hvcC / av1C /
 * AudioSpecificConfig), or end-of-stream. `codec` says which.
 * Timestamps are milliseconds on the publisher's clock, already unwrapped to
 * 64 bits and made to start near zero by ingest; pts = dts + composition
 * offset.
 *
 * The queue is bounded in bytes. When a slow worker lets it fill up, ingest's
 * push drops media (never configs or end-of-stream) until the next video
 * keyframe, so what the worker gets stays decodable; every dropped packet is
 * counted. The queue is reference counted because both sides hold it.
 */
#ifndef SLUICE_COMMON_MEDIA_H
#define SLUICE_COMMON_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum media_packet_type {
    MEDIA_PACKET_VIDEO_CONFIG = 1, /* data: avcC, hvcC or av1C (see codec) */
    MEDIA_PACKET_AUDIO_CONFIG,     /* data: AudioSpecificConfig */
    MEDIA_PACKET_VIDEO,            /* data: AVCC/HVCC access unit, or AV1 OBUs */
    MEDIA_PACKET_AUDIO,            /* data: one raw AAC frame */
    MEDIA_PACKET_METADATA,         /* data: onMetaData AMF0 body (informational) */
    MEDIA_PACKET_EOS,              /* publisher gone; no data */
    /* data: a timed-metadata payload (UTF-8, at most MEDIA_TIMED_METADATA_MAX
     * bytes) for every rendition: an emsg/ID3 in the parts and an
     * EXT-X-DATERANGE in the playlists. dts_ms is the media time it is
     * stamped on; meta_id and meta_pdt_ms say more (see media_packet_t). */
    MEDIA_PACKET_TIMED_METADATA,
} media_packet_type_t;

/* Largest timed-metadata payload, bytes (the API's 413, in-band's drop). */
#define MEDIA_TIMED_METADATA_MAX 1024

typedef enum media_codec {
    MEDIA_CODEC_NONE = 0,
    MEDIA_CODEC_H264,
    MEDIA_CODEC_AAC,
    MEDIA_CODEC_HEVC, /* Enhanced RTMP 'hvc1' */
    MEDIA_CODEC_AV1,  /* Enhanced RTMP 'av01' */
    /* Audio that only SRT's MPEG-TS brings, re-encoded to AAC once by the
     * transcoder's audio (transcode/audio.c): their AUDIO_CONFIG carries the
     * codec's extradata (Opus: the OpusHead; MPEG audio and AC-3: empty),
     * and each AUDIO packet one or more frames of it as the demuxer gave
     * them (an MPEG-TS PES; Opus: one packet, its TS framing removed). */
    MEDIA_CODEC_MPA,  /* MPEG-1/2 audio layer I, II or III */
    MEDIA_CODEC_AC3,  /* AC-3 or E-AC-3 */
    MEDIA_CODEC_OPUS,
} media_codec_t;

typedef struct media_packet {
    struct media_packet *next; /* queue link; owned by whoever holds the packet */
    media_packet_type_t type;
    media_codec_t codec;
    int64_t dts_ms;
    int64_t pts_ms;
    bool keyframe;
    /* EOS only: the publisher dropped (connection lost, stalled, taken
     * over) rather than ended its publish; the stream may continue if it
     * comes back within the reconnect window. */
    bool dropped;
    int64_t arrival_us; /* monotonic time ingest queued it: lag measurement */
    /* TIMED_METADATA only: its id (unique per stream, the emsg id and the
     * DATERANGE's "sluice-<id>"), and the program date-time the API told
     * its caller (ms since the epoch), which the DATERANGE must repeat; 0:
     * in-band metadata, the packager works it out from dts_ms. */
    uint32_t meta_id;
    int64_t meta_pdt_ms;
    size_t size;
    uint8_t data[];
} media_packet_t;

/* A packet with room for `size` bytes of data, all fields zeroed. */
media_packet_t *media_packet_new(media_packet_type_t type, size_t size);
void media_packet_free(media_packet_t *p);
/* Frees a whole `next`-linked list. */
void media_packet_list_free(media_packet_t *head);

typedef struct media_queue media_queue_t;

typedef struct media_queue_stats {
    uint64_t pushed_packets;
    uint64_t dropped_packets;
    uint64_t dropped_bytes;
    uint64_t skips; /* overflows: each began dropping media until the next video keyframe */
    size_t queued_bytes;
    size_t max_bytes;
} media_queue_stats_t;

/* A queue that holds at most max_bytes of packet data; refcount 1. */
media_queue_t *media_queue_new(size_t max_bytes);
media_queue_t *media_queue_ref(media_queue_t *q);
void media_queue_unref(media_queue_t *q);

/*
 * Producer side. Takes ownership of `p` on every path. Returns 0 when
 * queued, -ENOBUFS when the packet was dropped because the queue is full (or
 * because the queue is skipping to the next keyframe after an overflow).
 * Config and EOS packets are always queued. After an EOS, pushes return
 * -EPIPE and free the packet.
 */
int media_queue_push(media_queue_t *q, media_packet_t *p);

/*
 * Consumer side: waits up to timeout_ms (-1: forever) for packets and returns
 * all of them as a list in arrival order (the receiver drains the whole
 * queue), or NULL on timeout. The caller owns the list.
 */
media_packet_t *media_queue_pop_all(media_queue_t *q, int timeout_ms);

void media_queue_get_stats(media_queue_t *q, media_queue_stats_t *out);

#endif
