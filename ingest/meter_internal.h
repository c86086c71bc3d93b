/*
 * Per-publish meters (meter.c): a publishing session's sliding window of
 * bytes and frames, its codecs and size, copied once a second into a locked
 * table that other threads read (ingest_stream_stats, ingest_list_streams).
 *
 * Threads: a meter is written on the ingest loop only; the table is read
 * from any thread under its lock.
 */
#ifndef SLUICE_INGEST_METER_INTERNAL_H
#define SLUICE_INGEST_METER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "media.h"

/* Complete seconds the rates are measured over. */
#define INGEST_METER_WINDOW 5
#define INGEST_METER_SLOTS (INGEST_METER_WINDOW + 2)

/* A publishing session's meter: written on the loop thread only; copies of
 * it sit in ingest_meters_t for other threads. */
typedef struct ingest_meter {
    uint64_t session_id;
    bool active;         /* publishing */
    char stream_id[STORE_ID_MAX];
    char peer[64];
    int64_t start_ms, start_sec;
    int width, height;
    double nominal_fps; /* from the SPS VUI timing, 0 unknown */
    char video_codec[8], audio_codec[8];
    char protocol[8];    /* "rtmp", "rtmps", "srt" */
    bool has_srt;
    ingest_srt_stats_t srt;
    uint64_t bytes, video_frames, audio_frames, dropped_frames, late_frames;
    int64_t last_dts[2]; /* video, audio */
    bool have_dts[2];
    int64_t cur_sec;          /* the second packets are going into */
    int64_t complete_through; /* seconds up to this one are complete */
    int64_t slot_sec[INGEST_METER_SLOTS];
    uint64_t slot_bytes[INGEST_METER_SLOTS];
    uint32_t slot_frames[INGEST_METER_SLOTS];
} ingest_meter_t;

/* The shared table of meter copies, one per live stream. */
typedef struct ingest_meters {
    pthread_mutex_t lock;
    ingest_meter_t *items;
    size_t n, cap;
} ingest_meters_t;

void ingest_meters_init(ingest_meters_t *t);
void ingest_meters_deinit(ingest_meters_t *t);
/* Loop thread: a publish of stream_id started / a packet was emitted (any
 * type; dts unwrapped, ms) / a media packet was dropped / the publish ended.
 * now_ms: clock_mono_ms() (a parameter so that tests drive the clock). */
void ingest_meter_start(ingest_meters_t *t, ingest_meter_t *m, uint64_t session_id,
                        const char *stream_id, const char *peer, int64_t now_ms);
void ingest_meter_media(ingest_meters_t *t, ingest_meter_t *m, media_packet_type_t type,
                        media_codec_t codec, int64_t dts_ms, const uint8_t *data, size_t len,
                        int64_t now_ms);
void ingest_meter_dropped(ingest_meter_t *m);
/* The protocol the publish came over (after ingest_meter_start). */
void ingest_meter_protocol(ingest_meters_t *t, ingest_meter_t *m, const char *protocol);
/* An SRT publisher's link figures, once a second. */
void ingest_meter_srt(ingest_meters_t *t, ingest_meter_t *m, const ingest_srt_stats_t *s);
void ingest_meter_end(ingest_meters_t *t, ingest_meter_t *m);
/* Any thread: ingest_stream_stats / ingest_list_streams. */
int ingest_meters_get(ingest_meters_t *t, const char *stream_id, ingest_stream_stats_t *out,
                      int64_t now_ms);
int ingest_meters_list(ingest_meters_t *t, ingest_stream_stats_t **out, size_t *n,
                       int64_t now_ms);

#endif
