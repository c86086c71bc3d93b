/*
 * One RTMP connection: handshake, chunk stream, the NetConnection/NetStream
 * commands a publisher sends (answered the way OBS, FFmpeg and GStreamer
 * expect), the stream key check before NetStream.Publish.Start, and FLV
 * tags turned into media packets on the stream's queue.
 *
 * Publish authorisation: with a publish_auth_cb hook, a publish is asked
 * about after the registry lookup and the session stops reading (its input
 * buffer capped by a read watermark) until rtmp_session_auth_answer()
 * brings the answer from ingest.c's queue, or its auth timer refuses it.
 * Nothing says NetStream.Publish.Start before an accept.
 *
 * Until a publish is accepted the chunk reader has small limits (commands
 * only) and its buffers count against a budget shared by every such session
 * (ingest_shared_t.unpublished); a peer that does not read our replies is
 * not read either, and is closed if it goes on not reading (S5, S6 of the
 * security review; docs/ingest.md "Memory a peer can make sluice hold").
 *
 * Store calls (the registry lookup of the key, the stream's lease) run on
 * the store worker (store_jobs.c), never on the loop: the session waits for
 * the answer the same way, for INGEST_STORE_DEADLINE_MS at most, and gives
 * its lease back through the worker too (S10).
 *
 * Thread: the ingest loop only; session state is never locked. A session is
 * never freed inside its own bufferevent or timer callbacks: it is marked
 * dead (its stream gets EOS at once) and the loop's reap event frees it
 * (nginx-rtmp's finalize event, Redis's CLIENT_CLOSE_AFTER_REPLY).
 *
 * Ownership: the session owns its bufferevent (and so the socket), its
 * timers, chunk reader and buffers, one reference to the media queue of the
 * stream it publishes (the publish hook takes its own), and while it
 * publishes, the store job holding the lease that makes it the stream's owner across nodes. The stream key
 * lives only on the stack while it is checked and is never logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "amf0_internal.h"
#include "byteio.h"
#include "clock.h"
#include "codec_config.h"
#include "flv_internal.h"
#include "ingest_internal.h"
#include "log.h"
#include "rtmp_chunk_internal.h"
#include "rtmp_handshake_internal.h"
#include "srt_internal.h"

/* What we announce and send after connect. */
#define RTMP_SERVER_WINDOW 2500000
#define RTMP_SERVER_CHUNK_SIZE 4096
/* The only message stream a publisher gets. */
#define RTMP_PUBLISH_STREAM_ID 1
/* Chunk stream ids we send on (nginx-rtmp's choice). */
#define RTMP_CSID_CONTROL 2
#define RTMP_CSID_COMMAND 3
#define RTMP_CSID_STATUS 5
/* User Control events. */
#define RTMP_UC_STREAM_BEGIN 0
#define RTMP_UC_PING_REQUEST 6
#define RTMP_UC_PING_RESPONSE 7
/* A key longer than this cannot be a key we issued. */
#define RTMP_KEY_MAX 256
/* Bytes buffered from a publisher while its publish waits for authorisation
 * (past this the socket is no longer read). */
#define RTMP_AUTH_READ_MAX 65536
/* Until a publish is accepted a peer has sent no key that we know, and only
 * commands are worth reading: they are small. Its messages may be this long
 * at most, and its unfinished ones may hold this much in all (besides the
 * process-wide limits.max_unpublished_bytes). */
#define RTMP_PREPUBLISH_MAX_MESSAGE 65536
#define RTMP_PREPUBLISH_MAX_BUFFERED (256u << 10)
/* Replies a peer has not read: past RTMP_OUT_PAUSE_BYTES its input is no
 * longer read until they have all left; when they have not left within
 * RTMP_OUT_STUCK_MS, or would pass RTMP_OUT_MAX_BYTES, it is closed. */
#define RTMP_OUT_PAUSE_BYTES (256u << 10)
#define RTMP_OUT_MAX_BYTES (1u << 20)
#define RTMP_OUT_STUCK_MS 10000
/* Ping Requests answered per second; the rest are ignored. */
#define RTMP_PING_ANSWERS_PER_S 10

struct rtmp_session {
    ingest_shared_t *sh;
    char meta_logged[192]; /* the last metadata line logged at info */
    /* In-band timed metadata (onTextData, onCuePoint, ...): the slot hint
     * of ingest_tmeta_note, and the rate-limited log of what was dropped. */
    size_t tmeta_hint;
    int64_t tmeta_log_ms;
    uint64_t tmeta_dropped;
    rtmp_session_t *prev, *next;
    uint64_t id;
    struct bufferevent *bev;
    struct event *timer;
    char peer[INET6_ADDRSTRLEN + 10];
    char host[INET6_ADDRSTRLEN]; /* peer without the port */
    ingest_addr_t addr;
    char ctx[192];

    bool tls;       /* RTMPS */
    bool handshake_done;
    bool connected; /* connect to app "live" accepted */
    bool dead;      /* waiting for the reaper */
    bool closing;   /* waiting for the last reply to leave */
    bool throttled; /* not reading: our media queue is over its high-water mark */
    struct event *throttle_ev; /* polls the queue while throttled */
    uint64_t throttle_count;
    int64_t throttle_log_ms;
    rtmp_handshake_t hs;
    rtmp_chunk_reader_t reader;
    bool full_limits; /* reader has the publisher limits, no longer the pre-publish ones */
    bool out_paused;  /* not reading: too many replies the peer has not read */
    struct event *out_ev; /* closes the session when out_paused lasts */
    int64_t ping_window_ms; /* Ping Request rate limit: this second's start... */
    uint32_t ping_answers;  /* ...and answers in it */
    bool pings_warned;
    amf0_limits_t amf;
    buf_t payload; /* an outgoing message body */
    buf_t wire;    /* the same, chunked */
    uint32_t out_chunk_size;
    uint64_t bytes_in;
    uint64_t acked;
    uint32_t peer_window;

    /* publish authorisation (publish_auth_cb): waiting for ticket */
    bool authorizing;
    uint64_t auth_ticket;
    bool auth_known;                /* the registry knows the key... */
    char auth_id[STORE_ID_MAX];     /* ...as this stream */

    /* a store call (store_jobs.c) this session waits for, or NULL */
    ingest_job_t *job;
    bool lease_lost_early; /* the lease was lost before its claim came back */

    /* publishing */
    media_queue_t *queue;
    ingest_job_t *lease_job; /* holds this node's claim on the stream (store.h) */
    bool fcpublish_answer; /* FCPublish seen: onFCPublish goes out with the accept */
    char stream_id[STORE_ID_MAX];
    int64_t publish_ms;
    int64_t last_media_ms; /* newest audio/video message: stall detection */
    uint64_t media_bytes;
    uint64_t video_packets, audio_packets;
    uint64_t dropped;
    uint64_t dropped_unlogged;
    int64_t drop_log_ms;
    int64_t malformed_log_ms;
    bool warned_video_codec, warned_audio_codec, warned_aggregate;
    bool ts_init;
    uint32_t ts_last32;
    int64_t ts_last64;
    bool base_set;
    int64_t base;
    ingest_meter_t meter; /* this publish's measurements (meter.c) */
    /* The input limits (max_input_*): why this publish was ended, and the
     * frame-rate window (video frames counted over >= 1 s of timestamps). */
    char refusal[160];
    bool fps_started;
    int64_t fps_start_ts;
    uint32_t fps_frames;
};

static void rtmp_session_kill(rtmp_session_t *s, const char *why);
static void rtmp_session_kill_ended(rtmp_session_t *s, const char *why);
static void rtmp_session_read_cb(struct bufferevent *bev, void *arg);

/* The chunk reader's limits: small ones until a publish is accepted. */
static void rtmp_session_chunk_limits(const rtmp_session_t *s, bool published,
                                      rtmp_chunk_limits_t *cl)
{
    const ingest_limits_t *lim = &s->sh->limits;
    cl->max_message_size = lim->max_message_size;
    cl->max_chunk_size = lim->max_chunk_size;
    cl->max_chunk_streams = lim->max_chunk_streams;
    /* Room for one message of the largest size being received while the
     * previous one on another chunk stream is not finished yet. */
    cl->max_buffered = 2 * (size_t)lim->max_message_size;
    if (!published) {
        if (cl->max_message_size > RTMP_PREPUBLISH_MAX_MESSAGE)
            cl->max_message_size = RTMP_PREPUBLISH_MAX_MESSAGE;
        if (cl->max_buffered > RTMP_PREPUBLISH_MAX_BUFFERED)
            cl->max_buffered = RTMP_PREPUBLISH_MAX_BUFFERED;
    }
}

/* ---- small helpers ---------------------------------------------------- */

static void rtmp_session_arm_timer(rtmp_session_t *s, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static void rtmp_session_format_peer(rtmp_session_t *s, const struct sockaddr *sa)
{
    char *host = s->host;
    snprintf(s->host, sizeof(s->host), "?");
    int port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(s->host));
        port = ntohs(in->sin_port);
        snprintf(s->peer, sizeof(s->peer), "%s:%d", host, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(s->host));
        port = ntohs(in6->sin6_port);
        snprintf(s->peer, sizeof(s->peer), "[%s]:%d", host, port);
    } else {
        snprintf(s->peer, sizeof(s->peer), "unknown");
    }
}

static void rtmp_session_update_ctx(rtmp_session_t *s)
{
    const char *proto = s->tls ? "rtmps" : "rtmp";
    if (s->stream_id[0])
        snprintf(s->ctx, sizeof(s->ctx), "%s#%llu %s stream=%s", proto,
                 (unsigned long long)s->id, s->peer, s->stream_id);
    else
        snprintf(s->ctx, sizeof(s->ctx), "%s#%llu %s", proto, (unsigned long long)s->id,
                 s->peer);
}

/* ---- sending ---------------------------------------------------------- */

static int rtmp_session_send(rtmp_session_t *s, uint32_t csid, uint8_t type, uint32_t stream_id,
                             const uint8_t *data, size_t len)
{
    rtmp_message_t msg = {.csid = csid, .type = type, .stream_id = stream_id, .timestamp = 0,
                          .data = data, .len = len};
    buf_reset(&s->wire);
    int ret = rtmp_chunk_write(&s->wire, s->out_chunk_size, &msg);
    if (ret < 0)
        return ret;
    /* Reading stops far below this (rtmp_session_check_output); only a
     * peer that keeps us writing without reading gets here. */
    size_t queued = evbuffer_get_length(bufferevent_get_output(s->bev));
    if (queued + s->wire.len > RTMP_OUT_MAX_BYTES) {
        INGEST_COUNT(s->sh, limit_violations);
        log_warn(s->ctx, "peer crossed a limit: %zu bytes of replies it has not read (limit %u); "
                         "closing",
                 queued + s->wire.len, RTMP_OUT_MAX_BYTES);
        return -ENOBUFS; /* the caller ends the session */
    }
    if (bufferevent_write(s->bev, s->wire.data, s->wire.len) != 0)
        return -ENOMEM;
    return 0;
}

static int rtmp_session_send_u32(rtmp_session_t *s, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    byteio_put_be32(p, v);
    return rtmp_session_send(s, RTMP_CSID_CONTROL, type, 0, p, sizeof(p));
}

static int rtmp_session_send_user_control(rtmp_session_t *s, uint16_t event, uint32_t v)
{
    uint8_t p[6];
    byteio_put_be16(p, event);
    byteio_put_be32(p + 2, v);
    return rtmp_session_send(s, RTMP_CSID_CONTROL, RTMP_MSG_USER_CONTROL, 0, p, sizeof(p));
}

/* Starts a command in s->payload: name, transaction id. */
static void rtmp_session_cmd_begin(rtmp_session_t *s, const char *name, double txn)
{
    buf_reset(&s->payload);
    amf0_put_cstring(&s->payload, name);
    amf0_put_number(&s->payload, txn);
}

static int rtmp_session_cmd_send(rtmp_session_t *s, uint32_t csid, uint32_t stream_id)
{
    if (s->payload.oom)
        return -ENOMEM;
    return rtmp_session_send(s, csid, RTMP_MSG_COMMAND_AMF0, stream_id, s->payload.bytes,
                             s->payload.len);
}

/* onStatus(0, null, {level, code, description}) on the publish stream. */
static int rtmp_session_send_status(rtmp_session_t *s, const char *level, const char *code,
                                    const char *description)
{
    rtmp_session_cmd_begin(s, "onStatus", 0);
    amf0_put_null(&s->payload);
    amf0_put_object_start(&s->payload);
    amf0_put_prop_string(&s->payload, "level", level);
    amf0_put_prop_string(&s->payload, "code", code);
    amf0_put_prop_string(&s->payload, "description", description);
    amf0_put_object_end(&s->payload);
    return rtmp_session_cmd_send(s, RTMP_CSID_STATUS, RTMP_PUBLISH_STREAM_ID);
}

/* Stops reading and closes once everything queued for the peer has left
 * (or after INGEST_LINGER_MS if it stops reading). */
static void rtmp_session_close_after_reply(rtmp_session_t *s)
{
    if (s->dead || s->closing)
        return;
    s->closing = true;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        rtmp_session_kill(s, "closed after reply");
        return;
    }
    rtmp_session_arm_timer(s, INGEST_LINGER_MS);
}

/* ---- publishing ------------------------------------------------------- */

/* Gives the stream's lease back off the loop (store_jobs.c): with Redis
 * that is a round trip the loop must not wait for. */
static void rtmp_session_release_lease(rtmp_session_t *s)
{
    ingest_job_t *job = s->lease_job;
    if (!job)
        return;
    s->lease_job = NULL;
    job->kind = INGEST_JOB_RELEASE;
    ingest_jobs_submit(s->sh, job);
}

/* Stops waiting for a store call: the worker skips it if it has not run,
 * and its answer, when it comes, finds nobody (rtmp_session_job_done). */
static void rtmp_session_cancel_job(rtmp_session_t *s)
{
    if (!s->job)
        return;
    atomic_store(&s->job->cancelled, true);
    s->job = NULL;
}

/* dropped: see ingest_hooks_t.publish_end_cb; it rides on the EOS packet
 * to the stream's worker, which then waits for the reconnect window. */
static void rtmp_session_end_publish(rtmp_session_t *s, const char *why, bool dropped)
{
    rtmp_session_release_lease(s);
    if (!s->queue)
        return;
    ingest_meter_end(&s->sh->meters, &s->meter);
    ingest_tmeta_end(&s->sh->tmeta, s->id);
    media_packet_t *eos = media_packet_new(MEDIA_PACKET_EOS, 0);
    if (eos)
        eos->dropped = dropped;
    if (!eos || media_queue_push(s->queue, eos) < 0)
        log_error(s->ctx, "could not queue end-of-stream");
    media_queue_unref(s->queue);
    s->queue = NULL;
    INGEST_GAUGE_SUB(s->sh, publishers_live);
    if (s->sh->hooks.publish_end_cb)
        s->sh->hooks.publish_end_cb(s->sh->hooks.opaque, s->stream_id, dropped,
                                    s->refusal[0] ? s->refusal : NULL);
    double secs = (double)(clock_mono_ms() - s->publish_ms) / 1000.0;
    log_info(s->ctx,
             "publish ended (%s%s): %.1f s, %llu bytes received, %llu media bytes, "
             "%llu video and %llu audio packets, %llu dropped",
             why, dropped ? "; the stream waits for it to come back" : "", secs, (unsigned long long)s->bytes_in, (unsigned long long)s->media_bytes,
             (unsigned long long)s->video_packets, (unsigned long long)s->audio_packets,
             (unsigned long long)s->dropped);
}

/* 32-bit RTMP time to a 64-bit timeline. Audio and video share one clock
 * and may interleave slightly out of order, hence the signed step. */
static int64_t rtmp_session_unwrap(rtmp_session_t *s, uint32_t ts)
{
    if (!s->ts_init) {
        s->ts_init = true;
        s->ts_last64 = ts;
    } else {
        s->ts_last64 += (int32_t)(ts - s->ts_last32);
    }
    s->ts_last32 = ts;
    return s->ts_last64;
}

/* Throttling: past the high-water mark the session stops reading its
 * socket (TCP then slows the publisher down) and polls the queue until the
 * worker has taken it under the low-water mark. A file pushed faster than
 * real time is paced this way instead of losing media; only a queue that
 * still overflows (a message in flight, or a huge one) drops to a keyframe. */
#define RTMP_THROTTLE_POLL_MS 10

static size_t rtmp_session_queued(rtmp_session_t *s)
{
    media_queue_stats_t st;
    media_queue_get_stats(s->queue, &st);
    return st.queued_bytes;
}

static void rtmp_session_throttle(rtmp_session_t *s)
{
    if (s->throttled || s->dead || s->closing)
        return;
    s->throttled = true;
    s->throttle_count++;
    INGEST_COUNT(s->sh, throttled);
    bufferevent_disable(s->bev, EV_READ);
    struct timeval tv = {.tv_sec = 0, .tv_usec = RTMP_THROTTLE_POLL_MS * 1000};
    evtimer_add(s->throttle_ev, &tv);
    int64_t now = clock_mono_ms();
    if (now - s->throttle_log_ms >= 10000) {
        s->throttle_log_ms = now;
        log_info(s->ctx,
                 "publisher is ahead of the transcoder (queue over %zu bytes): reading paused "
                 "(%llu times since publish)",
                 s->sh->limits.queue_bytes / 2, (unsigned long long)s->throttle_count);
    }
}

static void rtmp_session_push(rtmp_session_t *s, media_packet_t *p)
{
    media_packet_type_t type = p->type;
    int ret = media_queue_push(s->queue, p);
    if (ret == 0) {
        if (type == MEDIA_PACKET_VIDEO)
            s->video_packets++;
        else if (type == MEDIA_PACKET_AUDIO)
            s->audio_packets++;
        if (rtmp_session_queued(s) >= s->sh->limits.queue_bytes / 2)
            rtmp_session_throttle(s);
        return;
    }
    if (ret == -ENOBUFS) {
        if (type == MEDIA_PACKET_VIDEO || type == MEDIA_PACKET_AUDIO)
            ingest_meter_dropped(&s->meter);
        INGEST_COUNT(s->sh, dropped_packets);
        s->dropped++;
        s->dropped_unlogged++;
        int64_t now = clock_mono_ms();
        if (now - s->drop_log_ms >= 1000) {
            log_warn(s->ctx,
                     "media queue full (consumer too slow): dropped %llu packets since the last "
                     "warning, %llu since publish",
                     (unsigned long long)s->dropped_unlogged, (unsigned long long)s->dropped);
            s->drop_log_ms = now;
            s->dropped_unlogged = 0;
        }
        return;
    }
    log_error(s->ctx, "media queue refused a packet (%s)", strerror(-ret));
}

static int rtmp_session_emit(rtmp_session_t *s, media_packet_type_t type, media_codec_t codec,
                             uint32_t ts, int32_t cts, bool keyframe, const uint8_t *data,
                             size_t len)
{
    int64_t dts = rtmp_session_unwrap(s, ts);
    if (!s->base_set && (type == MEDIA_PACKET_VIDEO || type == MEDIA_PACKET_AUDIO)) {
        s->base = dts;
        s->base_set = true;
    }
    int64_t rel = s->base_set ? dts - s->base : 0;
    media_packet_t *p = media_packet_new(type, len);
    if (!p)
        return -ENOMEM;
    if (len)
        memcpy(p->data, data, len);
    p->codec = codec;
    p->dts_ms = rel;
    p->pts_ms = rel + cts;
    p->keyframe = keyframe;
    s->media_bytes += len;
    if (type == MEDIA_PACKET_VIDEO || type == MEDIA_PACKET_AUDIO) {
        s->last_media_ms = clock_mono_ms();
        /* Before the push: an item stamped at this edge queues behind it. */
        ingest_tmeta_note(&s->sh->tmeta, s->id, &s->tmeta_hint, rel);
    }
    ingest_meter_media(&s->sh->meters, &s->meter, type, codec, rel, data, len, clock_mono_ms());
    rtmp_session_push(s, p);
    return 0;
}

static void rtmp_session_warn_malformed(rtmp_session_t *s, const char *what, size_t len)
{
    int64_t now = clock_mono_ms();
    if (now - s->malformed_log_ms < 1000)
        return;
    s->malformed_log_ms = now;
    log_warn(s->ctx, "malformed %s tag (%zu bytes) skipped", what, len);
}

/* A publisher sends more than --max-input-resolution or --max-input-fps
 * allow: its publish ends, with the reason in the log, in publish_end_cb
 * (the stream.idle webhook, the API's last_refusal) and in the counters. */
static void rtmp_session_refuse_input(rtmp_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rtmp_session_refuse_input(rtmp_session_t *s, const char *fmt, ...)
{
    if (s->dead)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->refusal, sizeof(s->refusal), fmt, ap);
    va_end(ap);
    INGEST_COUNT(s->sh, refused_input);
    log_warn(s->ctx, "publish refused: %s", s->refusal);
    ingest_note_input_refusal(s->sh, s->stream_id, s->refusal);
    rtmp_session_kill_ended(s, "input over the limits");
}

/* A picture of width x height within --max-input-resolution, in either
 * orientation (a phone held upright sends 1080x1920): 0, else refused. */
static int rtmp_session_check_size(rtmp_session_t *s, int width, int height)
{
    const ingest_limits_t *lim = &s->sh->limits;
    uint32_t lw = lim->max_input_width, lh = lim->max_input_height;
    uint32_t big = lw > lh ? lw : lh, small = lw > lh ? lh : lw;
    uint32_t w = width > 0 ? (uint32_t)width : 0, h = height > 0 ? (uint32_t)height : 0;
    if ((w > h ? w : h) <= big && (w > h ? h : w) <= small)
        return 0;
    rtmp_session_refuse_input(s, "the picture is %dx%d, over --max-input-resolution %ux%u", width,
                              height, lw, lh);
    return -EPERM;
}

/* Video frames at most --max-input-fps a second, counted over windows of
 * at least one second of the publisher's own timestamps (DTS, which only
 * grow): 0, else refused. Two frames of slack for timestamps rounded to
 * the millisecond. */
static int rtmp_session_check_fps(rtmp_session_t *s, int64_t ts)
{
    if (!s->fps_started || ts < s->fps_start_ts) {
        s->fps_started = true;
        s->fps_start_ts = ts;
        s->fps_frames = 0;
    }
    s->fps_frames++;
    int64_t span = ts - s->fps_start_ts;
    if (span < 1000)
        return 0;
    uint32_t max = s->sh->limits.max_input_fps;
    double fps = (double)(s->fps_frames - 1) * 1000.0 / (double)span;
    if ((double)(s->fps_frames - 1) > (double)max * (double)span / 1000.0 + 2) {
        rtmp_session_refuse_input(s, "video at %.0f frames a second, over --max-input-fps %u", fps,
                                  max);
        return -EPERM;
    }
    s->fps_start_ts = ts;
    s->fps_frames = 1;
    return 0;
}

/* Says what the publisher sends, and refuses a picture over the input
 * limits (negative then). A config that does not parse is still passed on
 * (the transcoder has the last word) but flagged here. */
static int rtmp_session_log_config(rtmp_session_t *s, const flv_tag_t *tag)
{
    char codec[48];
    if (tag->codec == MEDIA_CODEC_HEVC) {
        hevc_config_t c;
        int ret = hevc_parse_hvcc(tag->payload, tag->payload_len, &c);
        if (ret < 0) {
            log_warn(s->ctx, "video config (%zu bytes) does not parse as hvcC (%s)",
                     tag->payload_len, strerror(-ret));
            return 0;
        }
        hevc_codec_string(&c, codec, sizeof(codec));
        log_info(s->ctx, "video config: HEVC (Enhanced RTMP) %s %dx%d", codec, c.width, c.height);
        return rtmp_session_check_size(s, c.width, c.height);
    } else if (tag->codec == MEDIA_CODEC_AV1) {
        av1_config_t c;
        int ret = av1_parse_av1c(tag->payload, tag->payload_len, &c);
        if (ret < 0) {
            log_warn(s->ctx, "video config (%zu bytes) does not parse as av1C (%s)",
                     tag->payload_len, strerror(-ret));
            return 0;
        }
        av1_codec_string(&c, codec, sizeof(codec));
        log_info(s->ctx, "video config: AV1 (Enhanced RTMP) %s %dx%d", codec, c.width, c.height);
        return rtmp_session_check_size(s, c.width, c.height);
    } else if (tag->codec == MEDIA_CODEC_H264) {
        h264_config_t c;
        int ret = h264_parse_avcc(tag->payload, tag->payload_len, &c);
        if (ret < 0) {
            log_warn(s->ctx, "video config (%zu bytes) does not parse as avcC (%s)",
                     tag->payload_len, strerror(-ret));
            return 0;
        }
        h264_codec_string(&c, codec, sizeof(codec));
        log_info(s->ctx, "video config: H.264 %s %dx%d", codec, c.width, c.height);
        return rtmp_session_check_size(s, c.width, c.height);
    } else {
        aac_config_t c;
        int ret = aac_parse_asc(tag->payload, tag->payload_len, &c);
        if (ret < 0) {
            log_warn(s->ctx, "audio config (%zu bytes) does not parse as an AudioSpecificConfig",
                     tag->payload_len);
            return 0;
        }
        aac_codec_string(&c, codec, sizeof(codec));
        log_info(s->ctx, "audio config: AAC %s %d Hz, %d channels", codec, c.sample_rate,
                 c.channels);
    }
    return 0;
}

/* One FLV audio or video tag body. */
static int rtmp_session_on_tag(rtmp_session_t *s, uint8_t tag_type, uint32_t ts,
                               const uint8_t *data, size_t len)
{
    flv_tag_t tag;
    const char *what = tag_type == FLV_TAG_VIDEO ? "video" : "audio";
    if (flv_parse_tag(tag_type, data, len, &tag) < 0) {
        rtmp_session_warn_malformed(s, what, len);
        return 0;
    }
    switch (tag.kind) {
    case FLV_KIND_UNSUPPORTED: {
        bool *warned = tag_type == FLV_TAG_VIDEO ? &s->warned_video_codec : &s->warned_audio_codec;
        if (!*warned) {
            *warned = true;
            log_warn(s->ctx,
                     "%s codec %s is not supported (H.264, HEVC, AV1 and AAC are); ignoring %s",
                     what, flv_codec_name(tag_type, tag.codec_id, tag.enhanced), what);
        }
        return 0;
    }
    case FLV_KIND_CONFIG:
        if (rtmp_session_log_config(s, &tag) < 0)
            return 0; /* the session is closing */
        return rtmp_session_emit(
            s, tag_type == FLV_TAG_VIDEO ? MEDIA_PACKET_VIDEO_CONFIG : MEDIA_PACKET_AUDIO_CONFIG,
            tag.codec, ts, 0, false, tag.payload, tag.payload_len);
    case FLV_KIND_MEDIA:
        if (tag_type == FLV_TAG_VIDEO && rtmp_session_check_fps(s, ts) < 0)
            return 0; /* the session is closing */
        return rtmp_session_emit(
            s, tag_type == FLV_TAG_VIDEO ? MEDIA_PACKET_VIDEO : MEDIA_PACKET_AUDIO, tag.codec, ts,
            tag.cts, tag.keyframe, tag.payload, tag.payload_len);
    default: /* empty, info frames, AVC end of sequence */
        return 0;
    }
}

/* Aggregate message: FLV tags back to back (11-byte header, body, 4-byte
 * back pointer), timestamps relative to the message's. */
static int rtmp_session_on_aggregate(rtmp_session_t *s, const rtmp_message_t *msg)
{
    byteio_reader_t br;
    byteio_init(&br, msg->data, msg->len);
    bool first = true;
    uint32_t offset = 0;
    while (byteio_left(&br) > 0) {
        uint8_t type = byteio_u8(&br);
        uint32_t size = byteio_be24(&br);
        uint32_t ts = byteio_be24(&br);
        ts |= (uint32_t)byteio_u8(&br) << 24;
        byteio_skip(&br, 3); /* stream id */
        const uint8_t *body = byteio_take(&br, size);
        byteio_skip(&br, 4);
        if (br.error) {
            rtmp_session_warn_malformed(s, "aggregate", msg->len);
            return 0;
        }
        if (first) {
            offset = msg->timestamp - ts;
            first = false;
        }
        if (type == FLV_TAG_AUDIO || type == FLV_TAG_VIDEO) {
            int ret = rtmp_session_on_tag(s, type, ts + offset, body, size);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

/* ---- commands ----------------------------------------------------------- */

static int rtmp_session_on_connect(rtmp_session_t *s, double txn, const amf0_value_t *args)
{
    if (s->connected) {
        log_warn(s->ctx, "second connect on one connection; closing");
        return -EPROTO;
    }
    const char *app = amf0_string(amf0_get(amf0_at(args, 2), "app"));
    char clean[64] = "";
    bool ok = false;
    if (app) {
        size_t n = strcspn(app, "?");
        while (n > 0 && app[n - 1] == '/')
            n--;
        ok = n == 4 && memcmp(app, "live", 4) == 0;
        /* Only the first path component is logged: an encoder set up with
         * the key in the server URL ("rtmp://host/live/KEY", an empty key
         * field) sends the key inside app. */
        log_escape(clean, sizeof(clean), app, strcspn(app, "/?"));
    }
    if (!ok) {
        size_t rest = app ? strlen(app) - strcspn(app, "/?") : 0;
        if (rest > 0)
            log_warn(s->ctx, "connect refused: application '%s' followed by %zu characters, not "
                     "logged (a stream key belongs in the key field, not in the server URL)",
                     clean, rest);
        else
            log_warn(s->ctx, "connect refused: unknown application '%s'", clean);
        rtmp_session_cmd_begin(s, "_error", txn);
        amf0_put_null(&s->payload);
        amf0_put_object_start(&s->payload);
        amf0_put_prop_string(&s->payload, "level", "error");
        amf0_put_prop_string(&s->payload, "code", "NetConnection.Connect.Rejected");
        amf0_put_prop_string(&s->payload, "description", "unknown application");
        amf0_put_object_end(&s->payload);
        int ret = rtmp_session_cmd_send(s, RTMP_CSID_COMMAND, 0);
        if (ret < 0)
            return ret;
        rtmp_session_close_after_reply(s);
        return 0;
    }
    double encoding = amf0_number(amf0_get(amf0_at(args, 2), "objectEncoding"), 0);

    int ret = rtmp_session_send_u32(s, RTMP_MSG_WINDOW_ACK_SIZE, RTMP_SERVER_WINDOW);
    if (ret == 0) {
        uint8_t bw[5];
        byteio_put_be32(bw, RTMP_SERVER_WINDOW);
        bw[4] = 2; /* dynamic */
        ret = rtmp_session_send(s, RTMP_CSID_CONTROL, RTMP_MSG_SET_PEER_BANDWIDTH, 0, bw,
                                sizeof(bw));
    }
    if (ret == 0)
        ret = rtmp_session_send_u32(s, RTMP_MSG_SET_CHUNK_SIZE, RTMP_SERVER_CHUNK_SIZE);
    if (ret < 0)
        return ret;
    s->out_chunk_size = RTMP_SERVER_CHUNK_SIZE;

    rtmp_session_cmd_begin(s, "_result", txn);
    amf0_put_object_start(&s->payload);
    amf0_put_prop_string(&s->payload, "fmsVer", "FMS/3,0,1,123");
    amf0_put_prop_number(&s->payload, "capabilities", 31);
    if (amf0_get(amf0_at(args, 2), "fourCcList")) {
        /* Enhanced RTMP v2 negotiation: a client that lists the FourCCs it
         * can send hears which ones we take. */
        static const char *const fourccs[] = {"avc1", "hvc1", "av01"};
        amf0_put_key(&s->payload, "fourCcList", strlen("fourCcList"));
        amf0_put_strict_array_start(&s->payload, 3);
        for (size_t i = 0; i < 3; i++)
            amf0_put_cstring(&s->payload, fourccs[i]);
    }
    amf0_put_object_end(&s->payload);
    amf0_put_object_start(&s->payload);
    amf0_put_prop_string(&s->payload, "level", "status");
    amf0_put_prop_string(&s->payload, "code", "NetConnection.Connect.Success");
    amf0_put_prop_string(&s->payload, "description", "Connection succeeded.");
    amf0_put_prop_number(&s->payload, "objectEncoding", encoding);
    amf0_put_object_end(&s->payload);
    ret = rtmp_session_cmd_send(s, RTMP_CSID_COMMAND, 0);
    if (ret < 0)
        return ret;
    s->connected = true;
    log_debug(s->ctx, "connected to app 'live'");
    return 0;
}

/* _result(txn, null, <value>) for the commands we only acknowledge. */
static int rtmp_session_result_simple(rtmp_session_t *s, double txn, bool number, double v)
{
    if (txn == 0)
        return 0; /* the client does not wait for an answer */
    rtmp_session_cmd_begin(s, "_result", txn);
    amf0_put_null(&s->payload);
    if (number)
        amf0_put_number(&s->payload, v);
    else
        amf0_put_undefined(&s->payload);
    return rtmp_session_cmd_send(s, RTMP_CSID_COMMAND, 0);
}

static rtmp_session_t *rtmp_session_find_publisher(ingest_shared_t *sh, const char *stream_id,
                                                   const rtmp_session_t *except)
{
    for (rtmp_session_t *o = sh->sessions; o; o = o->next)
        if (o != except && !o->dead && o->queue && strcmp(o->stream_id, stream_id) == 0)
            return o;
    return NULL;
}

bool rtmp_session_publishing(ingest_shared_t *sh, const char *stream_id)
{
    return rtmp_session_find_publisher(sh, stream_id, NULL) != NULL;
}

void rtmp_session_end_publisher(ingest_shared_t *sh, const char *stream_id, uint64_t new_id,
                                const char *new_peer)
{
    rtmp_session_t *old = rtmp_session_find_publisher(sh, stream_id, NULL);
    if (!old)
        return;
    log_info(old->ctx, "taken over by a new publisher (srt#%llu %s)", (unsigned long long)new_id,
             new_peer);
    rtmp_session_kill(old, "taken over"); /* its queue gets EOS now */
}

void rtmp_session_lease_lost(ingest_shared_t *sh, uint64_t session_id)
{
    for (rtmp_session_t *s = sh->sessions; s; s = s->next) {
        if (s->id == session_id && !s->dead && s->job && s->job->kind == INGEST_JOB_ACQUIRE) {
            /* Lost before its claim came back: refused when it does. */
            s->lease_lost_early = true;
            continue;
        }
        if (s->id != session_id || s->dead || !s->queue)
            continue;
        log_info(s->ctx, "stream %s was taken over by a publisher on another node; "
                         "disconnecting this one", s->stream_id);
        rtmp_session_kill_ended(s, "taken over by another node");
    }
}

/* Refuses a publish: onStatus error, then close once it is flushed. */
static int rtmp_session_refuse(rtmp_session_t *s, const char *code, const char *description)
{
    int ret = rtmp_session_send_status(s, "error", code, description);
    if (ret < 0)
        return ret;
    rtmp_session_close_after_reply(s);
    return 0;
}

/* An unknown key: counted against the address, which too many in a minute
 * lock out (new connections from it are closed at accept). */
static int rtmp_session_bad_key(rtmp_session_t *s)
{
    if (ingest_key_failed(s->sh, &s->addr, clock_mono_ms()))
        log_warn(s->ctx, "publish refused: unknown stream key; %u bad keys within a minute, "
                         "address locked out for %u s",
                 s->sh->limits.max_key_failures, s->sh->limits.key_lockout_s);
    else
        log_warn(s->ctx, "publish refused: unknown stream key");
    return rtmp_session_refuse(s, "NetStream.Publish.BadName", "unknown stream key");
}

/* The publish authoriser said no, or did not answer: onStatus error
 * NetStream.Publish.Rejected, then close. With count_bad_key, a key the
 * registry does not know counts against the address as a bad key: every
 * refusal does, a timeout or an authoriser error included, so that a slow
 * or failing authoriser cannot be asked again and again for free (S11).
 * A key the registry knows never counts: an outage locks no registered
 * publisher out. */
static int rtmp_session_auth_reject(rtmp_session_t *s, const char *why, bool count_bad_key)
{
    if (!s->auth_known && count_bad_key && ingest_key_failed(s->sh, &s->addr, clock_mono_ms()))
        log_warn(s->ctx, "publish refused: %s; %u bad keys within a minute, address locked "
                         "out for %u s",
                 why, s->sh->limits.max_key_failures, s->sh->limits.key_lockout_s);
    else
        log_warn(s->ctx, "publish refused: %s", why);
    return rtmp_session_refuse(s, "NetStream.Publish.Rejected", "publish refused");
}

/* Asks publish_auth_cb and stops reading until the answer comes
 * (rtmp_session_auth_answer) or auth_timeout_ms passes (the timer). */
static int rtmp_session_ask_auth(rtmp_session_t *s, const uint8_t hash[32], const char *id)
{
    ingest_shared_t *sh = s->sh;
    /* Each question is an outbound request: bounded, so that a flood of
     * publish attempts cannot pile them up on a slow authoriser (S11). */
    size_t max_waiting = 2 * (size_t)sh->limits.max_publishers;
    if (rtmp_session_count_authorizing(sh) >= max_waiting) {
        char detail[128];
        snprintf(detail, sizeof(detail),
                 "publish refused: %zu publishes already wait for authorisation "
                 "(2 x --rtmp-max-publishers)", max_waiting);
        ingest_log_refusal(sh, INGEST_REFUSAL_AUTH_BUSY, s->peer, detail);
        INGEST_COUNT(sh, refused_auth_busy);
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "authorisation unavailable");
    }
    ingest_auth_request_t req = {
        .ticket = ++sh->next_auth_ticket,
        .app = "live",
        .client_ip = s->host,
        .registry_id = id,
    };
    memcpy(req.key_hash, hash, sizeof(req.key_hash));
    s->authorizing = true;
    s->auth_ticket = req.ticket;
    s->auth_known = id != NULL;
    snprintf(s->auth_id, sizeof(s->auth_id), "%s", id ? id : "");
    /* Not read meanwhile beyond a bounded buffer; what arrives is handled
     * after an accept. */
    bufferevent_setwatermark(s->bev, EV_READ, 0, RTMP_AUTH_READ_MAX);
    rtmp_session_arm_timer(s, sh->limits.auth_timeout_ms);
    int ret = sh->hooks.publish_auth_cb(sh->hooks.opaque, &req);
    if (ret < 0) {
        s->authorizing = false;
        log_error(s->ctx, "publish refused: cannot ask for authorisation (%s)", strerror(-ret));
        /* An authoriser error counts like a refusal for an unknown key. */
        if (!s->auth_known && ingest_key_failed(sh, &s->addr, clock_mono_ms()))
            log_warn(s->ctx, "%u bad keys within a minute, address locked out for %u s",
                     sh->limits.max_key_failures, sh->limits.key_lockout_s);
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "authorisation unavailable");
    }
    log_debug(s->ctx, "publish waits for authorisation #%llu (%s%s)",
              (unsigned long long)req.ticket, id ? "stream " : "key not in the registry",
              id ? id : "");
    return 0;
}

static int rtmp_session_publish_as(rtmp_session_t *s, const char *id);

/* Hands a store call to the store worker (store_jobs.c) and stops reading,
 * as for an authorisation, until rtmp_session_job_done brings the answer
 * or INGEST_STORE_DEADLINE_MS passes (the timer refuses the publish then).
 * AUTH: hash is the key's; ACQUIRE: id and takeover. */
static int rtmp_session_store_call(rtmp_session_t *s, ingest_job_kind_t kind,
                                   const uint8_t hash[32], const char *id, bool takeover)
{
    ingest_shared_t *sh = s->sh;
    if (sh->jobs.pending >= INGEST_STORE_PENDING_MAX) {
        INGEST_COUNT(sh, store_timeouts);
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "publish refused: too many store calls waiting (%u; the store is slow or "
                 "unreachable)", INGEST_STORE_PENDING_MAX);
        ingest_log_refusal(sh, INGEST_REFUSAL_STORE_BUSY, s->peer, detail);
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "store unavailable");
    }
    ingest_job_t *job = ingest_job_new(sh, kind, s->id);
    if (!job) {
        log_error(s->ctx, "publish refused: out of memory");
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "out of memory");
    }
    if (hash)
        memcpy(job->key_hash, hash, sizeof(job->key_hash));
    if (id)
        snprintf(job->stream_id, sizeof(job->stream_id), "%s", id);
    job->takeover = takeover;
    s->job = job;
    s->lease_lost_early = false;
    /* Not read meanwhile beyond a bounded buffer; what arrives is handled
     * after the answer. */
    bufferevent_setwatermark(s->bev, EV_READ, 0, RTMP_AUTH_READ_MAX);
    rtmp_session_arm_timer(s, INGEST_STORE_DEADLINE_MS);
    ingest_jobs_submit(sh, job);
    return 0;
}

static int rtmp_session_on_publish(rtmp_session_t *s, const amf0_value_t *args)
{
    if (!s->connected) {
        log_warn(s->ctx, "publish before connect; closing");
        return -EPROTO;
    }
    if (s->queue || s->authorizing || s->job) {
        log_warn(s->ctx, "second publish on one connection; closing");
        return -EPROTO;
    }
    const char *name = amf0_string(amf0_at(args, 3));
    char key[RTMP_KEY_MAX];
    size_t n = name ? strcspn(name, "?") : 0;
    if (n == 0 || n >= sizeof(key))
        return rtmp_session_bad_key(s);
    memcpy(key, name, n);
    key[n] = '\0';
    /* Only the hash leaves this stack frame: the registry lookup runs on
     * the store worker (store_jobs.c), and its answer goes on in
     * rtmp_session_on_auth_answer. */
    uint8_t hash[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)key, n, hash);
    explicit_bzero(key, sizeof(key));
    return rtmp_session_store_call(s, INGEST_JOB_AUTH, hash, NULL, false);
}

/* The registry's answer to the key lookup. */
static int rtmp_session_on_auth_answer(rtmp_session_t *s, ingest_job_t *job)
{
    bool ask = s->sh->hooks.publish_auth_cb != NULL;
    int ret = job->rc;
    /* Without an authoriser an unknown key is a bad key; with one, it may
     * still know the key (and name the stream). */
    if (ret == -ENOENT && !ask)
        return rtmp_session_bad_key(s);
    if (ret < 0 && ret != -ENOENT) {
        log_error(s->ctx, "publish refused: stream registry unavailable (%s)", strerror(-ret));
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "stream registry unavailable");
    }
    if (ask)
        return rtmp_session_ask_auth(s, job->key_hash, ret == 0 ? job->stream_id : NULL);
    return rtmp_session_publish_as(s, job->stream_id);
}

/* After an answer a publish waited for (the authoriser's, the store's):
 * ret < 0 ends the session; else what the publisher sent meanwhile, which
 * is buffered and raises no new read event, is handled now. */
static void rtmp_session_resume(rtmp_session_t *s, int ret)
{
    if (ret < 0) {
        rtmp_session_kill(s, "could not answer the publish");
        return;
    }
    if (!s->dead && !s->closing && !s->throttled)
        rtmp_session_read_cb(s->bev, s);
}

void rtmp_session_auth_answer(ingest_shared_t *sh, const ingest_auth_answer_t *a)
{
    rtmp_session_t *s = sh->sessions;
    while (s && !(s->authorizing && s->auth_ticket == a->ticket && !s->dead && !s->closing))
        s = s->next;
    if (!s) {
        log_debug("rtmp", "publish authorisation %llu answered after its publisher left; "
                          "ignored", (unsigned long long)a->ticket);
        return;
    }
    s->authorizing = false;
    evtimer_del(s->timer);
    bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
    int ret;
    if (a->verdict != INGEST_AUTH_ACCEPTED) {
        char why[80];
        snprintf(why, sizeof(why), "%s (authorisation #%llu)",
                 a->verdict == INGEST_AUTH_REFUSED ? "not authorised" : "authoriser unavailable",
                 (unsigned long long)a->ticket);
        ret = rtmp_session_auth_reject(s, why, true);
    } else if (a->has_id && !store_id_valid(a->stream_id)) {
        ret = rtmp_session_auth_reject(s, "the authoriser gave an invalid stream id", true);
    } else if (!a->has_id && !s->auth_known) {
        ret = rtmp_session_auth_reject(s, "unknown stream key (accepted without an id)", true);
    } else {
        char id[STORE_ID_MAX];
        snprintf(id, sizeof(id), "%s", a->has_id ? a->stream_id : s->auth_id);
        ret = rtmp_session_publish_as(s, id);
    }
    rtmp_session_resume(s, ret);
}

static int rtmp_session_on_auth_answer(rtmp_session_t *s, ingest_job_t *job);
static int rtmp_session_on_lease_answer(rtmp_session_t *s, ingest_job_t *job);

void rtmp_session_job_done(ingest_shared_t *sh, ingest_job_t *job)
{
    int64_t took = clock_mono_ms() - job->submit_ms;
    rtmp_session_t *s = sh->sessions;
    while (s && s->job != job)
        s = s->next;
    if (!s || s->dead || s->closing) {
        /* Its publisher left, or was refused at the deadline. */
        log_debug("rtmp", "store answer for rtmp#%llu came after %lld ms, nobody waits for it; "
                          "dropped", (unsigned long long)job->session_id, (long long)took);
        if (s)
            s->job = NULL;
        if (job->kind == INGEST_JOB_ACQUIRE && job->rc == 0) {
            job->kind = INGEST_JOB_RELEASE; /* a lease won for nobody goes back */
            ingest_jobs_submit(sh, job);
        } else {
            free(job);
        }
        return;
    }
    s->job = NULL;
    evtimer_del(s->timer);
    bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
    log_debug(s->ctx, "store answered the %s in %lld ms",
              job->kind == INGEST_JOB_AUTH ? "key lookup" : "lease claim", (long long)took);
    int ret;
    if (job->kind == INGEST_JOB_AUTH) {
        ret = rtmp_session_on_auth_answer(s, job);
        free(job);
    } else {
        ret = rtmp_session_on_lease_answer(s, job);
    }
    rtmp_session_resume(s, ret);
}

/* The local publisher limit and duplicate policy, for stream `id`; 0 when
 * s may go on (an older publisher it takes over is cut), else the refusal
 * has been sent (*refused) or a negative errno. */
static int rtmp_session_check_local(rtmp_session_t *s, const char *id, bool *refused)
{
    *refused = true;
    rtmp_session_t *old = rtmp_session_find_publisher(s->sh, id, s);
    /* The stream may be live over SRT (srt.c): the same policy. */
    bool old_srt = !old && s->sh->srt && srt_has_publisher(s->sh->srt, id);
    /* A takeover replaces a publisher, so the one it replaces is not counted. */
    bool replaces = (old || old_srt) && s->sh->duplicate == INGEST_DUPLICATE_TAKEOVER;
    size_t live = rtmp_session_count_publishers(s->sh, old && replaces ? old : s) +
                  (s->sh->srt ? srt_count_publishers(s->sh->srt) : 0) - (old_srt && replaces);
    if (live >= s->sh->limits.max_publishers) {
        INGEST_COUNT(s->sh, refused_max_publishers);
        ingest_log_refusal(s->sh, INGEST_REFUSAL_MAX_PUBLISHERS, s->peer,
                           "publisher limit reached (--rtmp-max-publishers)");
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "server is full");
    }
    if (old_srt && s->sh->duplicate == INGEST_DUPLICATE_REJECT) {
        log_warn(s->ctx, "publish refused: stream %s is already live (over SRT)", id);
        return rtmp_session_refuse(s, "NetStream.Publish.BadName", "stream is already live");
    }
    if (old_srt)
        srt_end_publisher(s->sh->srt, id, "taken over by a new RTMP publisher");
    if (old && s->sh->duplicate == INGEST_DUPLICATE_REJECT) {
        log_warn(s->ctx, "publish refused: stream %s is already live (rtmp#%llu)", id,
                 (unsigned long long)old->id);
        return rtmp_session_refuse(s, "NetStream.Publish.BadName", "stream is already live");
    }
    if (old) {
        log_info(old->ctx, "taken over by a new publisher (rtmp#%llu %s)",
                 (unsigned long long)s->id, s->peer);
        rtmp_session_kill(old, "taken over"); /* its queue gets EOS now */
    }
    *refused = false;
    return 0;
}

/* Publishes as stream `id` (the key is good): the duplicate policy here,
 * then the lease across nodes (a store call; rtmp_session_on_lease_answer
 * goes on). */
static int rtmp_session_publish_as(rtmp_session_t *s, const char *id)
{
    bool refused;
    int ret = rtmp_session_check_local(s, id, &refused);
    if (ret < 0 || refused)
        return ret;
    /* The same policy across nodes: the store's lease says who owns it. */
    return rtmp_session_store_call(s, INGEST_JOB_ACQUIRE, NULL, id,
                                   s->sh->duplicate == INGEST_DUPLICATE_TAKEOVER);
}

/* The store's answer to the lease claim: the rest of the publish,
 * publish_start_cb, then NetStream.Publish.Start. Takes ownership of job. */
static int rtmp_session_on_lease_answer(rtmp_session_t *s, ingest_job_t *job)
{
    int ret = job->rc;
    char id[STORE_ID_MAX];
    snprintf(id, sizeof(id), "%s", job->stream_id);
    if (ret < 0) {
        free(job);
        if (ret == -EBUSY) {
            log_warn(s->ctx, "publish refused: stream %s is already live on another node", id);
            return rtmp_session_refuse(s, "NetStream.Publish.BadName", "stream is already live");
        }
        log_error(s->ctx, "publish refused: store unavailable (%s)", strerror(-ret));
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "store unavailable");
    }
    s->lease_job = job; /* the lease is ours from here; given back on every failure */
    if (s->lease_lost_early) {
        rtmp_session_release_lease(s);
        log_warn(s->ctx, "publish refused: stream %s was taken over on another node meanwhile",
                 id);
        return rtmp_session_refuse(s, "NetStream.Publish.BadName", "stream is already live");
    }
    /* Another publisher of this stream may have gone live here while the
     * claim was out: the policy again. */
    bool refused;
    ret = rtmp_session_check_local(s, id, &refused);
    if (ret < 0 || refused) {
        rtmp_session_release_lease(s);
        return ret;
    }

    media_queue_t *queue = media_queue_new(s->sh->limits.queue_bytes);
    if (!queue) {
        rtmp_session_release_lease(s);
        log_error(s->ctx, "publish refused: out of memory");
        return rtmp_session_refuse(s, "NetStream.Publish.Failed", "out of memory");
    }
    snprintf(s->stream_id, sizeof(s->stream_id), "%s", id);
    rtmp_session_update_ctx(s);
    if (s->sh->hooks.publish_start_cb) {
        ret = s->sh->hooks.publish_start_cb(s->sh->hooks.opaque, s->stream_id, queue);
        if (ret < 0) {
            media_queue_unref(queue);
            rtmp_session_release_lease(s);
            log_warn(s->ctx, "publish refused: could not start the stream (%s)",
                     strerror(-ret));
            return rtmp_session_refuse(s, "NetStream.Publish.Failed",
                                       "could not start the stream");
        }
    }
    s->queue = queue;
    ingest_tmeta_start(&s->sh->tmeta, s->id, s->stream_id, queue, clock_mono_ms());
    INGEST_COUNT(s->sh, publishers_live);
    if (!s->full_limits) {
        /* The key is good: media messages may be large now, and what this
         * session holds no longer counts against the pre-publish budget. */
        rtmp_chunk_limits_t cl;
        rtmp_session_chunk_limits(s, true, &cl);
        rtmp_chunk_reader_set_limits(&s->reader, &cl, NULL);
        s->full_limits = true;
    }
    s->publish_ms = clock_mono_ms();
    s->media_bytes = s->video_packets = s->audio_packets = s->dropped = 0;
    s->base_set = false;
    s->ts_init = false;
    ingest_meter_start(&s->sh->meters, &s->meter, s->id, s->stream_id, s->peer,
                       clock_mono_ms());
    ingest_meter_protocol(&s->sh->meters, &s->meter, s->tls ? "rtmps" : "rtmp");
    /* While publishing, the timer checks for a stall once a second. */
    s->last_media_ms = s->publish_ms;
    rtmp_session_arm_timer(s, INGEST_STALL_CHECK_MS);
    struct timeval rto = {.tv_sec = INGEST_READ_TIMEOUT_MS / 1000,
                          .tv_usec = (INGEST_READ_TIMEOUT_MS % 1000) * 1000};
    bufferevent_set_timeouts(s->bev, &rto, NULL);
    log_info(s->ctx, "publish started: stream %s from %s", s->stream_id, s->peer);

    ret = 0;
    if (s->fcpublish_answer) {
        s->fcpublish_answer = false;
        rtmp_session_cmd_begin(s, "onFCPublish", 0);
        amf0_put_null(&s->payload);
        amf0_put_object_start(&s->payload);
        amf0_put_prop_string(&s->payload, "code", "NetStream.Publish.Start");
        amf0_put_prop_string(&s->payload, "description", "FCPublish");
        amf0_put_object_end(&s->payload);
        ret = rtmp_session_cmd_send(s, RTMP_CSID_COMMAND, 0);
    }
    if (ret == 0)
        ret = rtmp_session_send_user_control(s, RTMP_UC_STREAM_BEGIN, RTMP_PUBLISH_STREAM_ID);
    if (ret == 0)
        ret = rtmp_session_send_status(s, "status", "NetStream.Publish.Start",
                                       "stream is now published");
    /* Announced even when the reply failed: publish_end_cb follows at once
     * then, and the two always pair. */
    if (s->sh->hooks.publish_live_cb)
        s->sh->hooks.publish_live_cb(s->sh->hooks.opaque, s->stream_id, s->host);
    return ret;
}

static int rtmp_session_on_unpublish(rtmp_session_t *s, const char *why)
{
    if (!s->queue)
        return 0;
    rtmp_session_end_publish(s, why, false);
    bufferevent_set_timeouts(s->bev, NULL, NULL);
    /* A connection that stays open afterwards must publish again soon. */
    rtmp_session_arm_timer(s, s->sh->limits.idle_timeout_ms);
    return 0;
}

static int rtmp_session_on_command(rtmp_session_t *s, const uint8_t *data, size_t len)
{
    amf0_value_t *args = NULL;
    int ret = amf0_decode_all(data, len, &s->amf, &args);
    if (ret == -EMSGSIZE) {
        INGEST_COUNT(s->sh, limit_violations);
        log_warn(s->ctx, "command over the AMF0 limits (depth %u, string %u bytes); closing",
                 s->amf.max_depth, s->amf.max_string);
        return ret;
    }
    if (ret < 0) {
        INGEST_COUNT(s->sh, protocol_errors);
        log_warn(s->ctx, "malformed AMF0 command (%zu bytes); closing", len);
        return ret;
    }
    const char *name = amf0_string(amf0_at(args, 0));
    double txn = amf0_number(amf0_at(args, 1), 0);
    if (!name) {
        log_warn(s->ctx, "command without a name; closing");
        amf0_value_free(args);
        return -EPROTO;
    }
    char esc[64];
    log_escape(esc, sizeof(esc), name, strlen(name));
    log_debug(s->ctx, "command %s", esc);

    if (strcmp(name, "connect") == 0) {
        ret = rtmp_session_on_connect(s, txn, args);
    } else if (!s->connected) {
        log_warn(s->ctx, "command '%s' before connect; closing", esc);
        ret = -EPROTO;
    } else if (strcmp(name, "FCUnpublish") == 0) {
        /* Not answered: the publisher closes right after, and a reply
         * landing on its closed socket turns the close into a reset. */
        ret = 0;
    } else if (strcmp(name, "releaseStream") == 0 || strcmp(name, "checkBandwidth") == 0 ||
               strcmp(name, "_checkbw") == 0) {
        ret = rtmp_session_result_simple(s, txn, false, 0);
    } else if (strcmp(name, "FCPublish") == 0) {
        /* onFCPublish carries the code NetStream.Publish.Start (as
         * nginx-rtmp's does): it is held back until the publish is
         * accepted, so nothing says "Publish.Start" to a publisher that the
         * key check or the webhook may still refuse. */
        ret = rtmp_session_result_simple(s, txn, false, 0);
        s->fcpublish_answer = true;
    } else if (strcmp(name, "createStream") == 0) {
        ret = rtmp_session_result_simple(s, txn, true, RTMP_PUBLISH_STREAM_ID);
    } else if (strcmp(name, "getStreamLength") == 0) {
        ret = rtmp_session_result_simple(s, txn, true, 0);
    } else if (strcmp(name, "publish") == 0) {
        ret = rtmp_session_on_publish(s, args);
    } else if (strcmp(name, "deleteStream") == 0 || strcmp(name, "closeStream") == 0) {
        ret = rtmp_session_on_unpublish(s, name[0] == 'd' ? "deleteStream" : "closeStream");
    } else if (strcmp(name, "play") == 0) {
        log_warn(s->ctx, "play refused: this server only takes publishers");
        ret = rtmp_session_refuse(s, "NetStream.Play.Failed", "playback is not served over RTMP");
    } else {
        /* _result/_error to nothing we asked, onBWDone, ... */
        ret = 0;
    }
    amf0_value_free(args);
    return ret;
}

/* In-band timed metadata: a data message other than onMetaData whose
 * arguments carry text goes the API's way, stamped with the message's own
 * time. Over the size or the rate (shared with the API), it is dropped;
 * one log line a minute says how many were. */
static void rtmp_session_timed_metadata(rtmp_session_t *s, const char *handler,
                                        const amf0_value_t *all, uint32_t ts)
{
    const amf0_value_t *text = ingest_tmeta_text(all);
    if (!text)
        return;
    /* The same clock as the media: unwrapped, relative to the first frame. */
    int64_t dts = rtmp_session_unwrap(s, ts);
    int64_t rel = s->base_set ? dts - s->base : 0;
    ingest_metadata_stamp_t st;
    int ret = ingest_tmeta_push(&s->sh->tmeta, NULL, s->id, rel, (const uint8_t *)text->str,
                                text->len, NULL, NULL, clock_mono_ms(), clock_wall_ms(), &st);
    if (ret == 0) {
        log_debug(s->ctx, "in-band metadata %" PRIu32 " (%s, %zu bytes) at %" PRId64 " ms",
                  st.id, handler, text->len, rel);
        return;
    }
    s->tmeta_dropped++;
    int64_t now = clock_mono_ms();
    if (s->tmeta_log_ms == 0 || now - s->tmeta_log_ms >= 60000) {
        s->tmeta_log_ms = now;
        char esc[48] = "";
        log_escape(esc, sizeof(esc), handler, strlen(handler));
        log_warn(s->ctx,
                 "in-band metadata '%s' of %zu bytes dropped (%s); %" PRIu64 " dropped since "
                 "publish",
                 esc, text->len,
                 ret == -EMSGSIZE ? "over 1024 bytes"
                 : ret == -EBUSY  ? "over 5 a second"
                 : ret == -EILSEQ ? "not UTF-8"
                                  : strerror(-ret),
                 s->tmeta_dropped);
    }
}

static int rtmp_session_on_data(rtmp_session_t *s, const uint8_t *data, size_t len,
                                uint32_t ts)
{
    amf0_value_t *first = NULL;
    size_t used = 0;
    if (amf0_decode(data, len, &s->amf, &first, &used) < 0)
        return 0; /* informational: not worth a connection */
    const char *name = amf0_string(first);
    bool wrapped = name && strcmp(name, "@setDataFrame") == 0;
    bool meta = name && strcmp(name, "onMetaData") == 0;
    size_t body = wrapped ? used : 0; /* the FLV script body starts at its handler name */
    amf0_value_free(first);
    if (body >= len || !s->queue || (!wrapped && !meta && !name))
        return 0;

    amf0_value_t *all = NULL;
    if (amf0_decode_all(data + body, len - body, &s->amf, &all) < 0)
        return meta || wrapped ? rtmp_session_emit(s, MEDIA_PACKET_METADATA, MEDIA_CODEC_NONE,
                                                   ts, 0, false, data + body, len - body)
                               : 0; /* as before: informational */
    const char *handler = amf0_string(amf0_at(all, 0));
    if (!handler || strcmp(handler, "onMetaData") != 0) {
        if (handler)
            rtmp_session_timed_metadata(s, handler, all, ts);
        amf0_value_free(all);
        return 0;
    }
    const amf0_value_t *obj = amf0_at(all, 1);
    const char *enc = amf0_string(amf0_get(obj, "encoder"));
    char esc[64] = "";
    if (enc)
        log_escape(esc, sizeof(esc), enc, strlen(enc));
    char line[sizeof(s->meta_logged)];
    snprintf(line, sizeof(line),
             "%.0fx%.0f %.2f fps, video %.0f kb/s, audio %.0f kb/s, encoder '%s'",
             amf0_number(amf0_get(obj, "width"), 0), amf0_number(amf0_get(obj, "height"), 0),
             amf0_number(amf0_get(obj, "framerate"), 0),
             amf0_number(amf0_get(obj, "videodatarate"), 0),
             amf0_number(amf0_get(obj, "audiodatarate"), 0), esc);
    /* GStreamer's flvmux repeats its metadata in the stream, several
     * times a second at first: only a change is worth an info line. */
    if (strcmp(line, s->meta_logged) != 0) {
        log_info(s->ctx, "metadata: %s", line);
        memcpy(s->meta_logged, line, sizeof(line));
    } else {
        log_debug(s->ctx, "metadata: %s", line);
    }
    amf0_value_free(all);
    return rtmp_session_emit(s, MEDIA_PACKET_METADATA, MEDIA_CODEC_NONE, ts, 0, false,
                             data + body, len - body);
}

static int rtmp_session_on_message(rtmp_session_t *s, const rtmp_message_t *msg)
{
    byteio_reader_t br;
    byteio_init(&br, msg->data, msg->len);
    switch (msg->type) {
    case RTMP_MSG_SET_CHUNK_SIZE:
        log_debug(s->ctx, "peer chunk size %u", s->reader.chunk_size);
        return 0;
    case RTMP_MSG_ABORT:
    case RTMP_MSG_ACK:
    case RTMP_MSG_SET_PEER_BANDWIDTH:
        return 0;
    case RTMP_MSG_WINDOW_ACK_SIZE: {
        uint32_t w = byteio_be32(&br);
        if (br.error)
            return -EPROTO;
        /* A tiny window would have us ack every few bytes. */
        s->peer_window = w < 4096 ? 4096 : w;
        return 0;
    }
    case RTMP_MSG_USER_CONTROL: {
        uint16_t event = byteio_be16(&br);
        uint32_t v = byteio_be32(&br);
        if (br.error)
            return 0;
        if (event != RTMP_UC_PING_REQUEST)
            return 0;
        /* Each answer is bigger than the request: a peer that sends many
         * and reads none would have us queue replies for nothing. */
        int64_t now = clock_mono_ms();
        if (now - s->ping_window_ms >= 1000) {
            s->ping_window_ms = now;
            s->ping_answers = 0;
        }
        if (s->ping_answers >= RTMP_PING_ANSWERS_PER_S) {
            if (!s->pings_warned) {
                s->pings_warned = true;
                log_warn(s->ctx, "more than %d Ping Requests a second: the extra ones are not "
                                 "answered",
                         RTMP_PING_ANSWERS_PER_S);
            }
            return 0;
        }
        s->ping_answers++;
        return rtmp_session_send_user_control(s, RTMP_UC_PING_RESPONSE, v);
    }
    case RTMP_MSG_AUDIO:
    case RTMP_MSG_VIDEO:
        if (!s->queue)
            return 0; /* before publish or after unpublish */
        return rtmp_session_on_tag(s, msg->type, msg->timestamp, msg->data, msg->len);
    case RTMP_MSG_AGGREGATE:
        if (!s->queue)
            return 0;
        return rtmp_session_on_aggregate(s, msg);
    case RTMP_MSG_DATA_AMF0:
        return rtmp_session_on_data(s, msg->data, msg->len, msg->timestamp);
    case RTMP_MSG_DATA_AMF3:
        /* AMF3 data/command messages start with a format byte, then AMF0
         * for what publishers send. */
        if (msg->len < 1)
            return 0;
        return rtmp_session_on_data(s, msg->data + 1, msg->len - 1, msg->timestamp);
    case RTMP_MSG_COMMAND_AMF0:
        return rtmp_session_on_command(s, msg->data, msg->len);
    case RTMP_MSG_COMMAND_AMF3:
        if (msg->len < 1)
            return -EPROTO;
        return rtmp_session_on_command(s, msg->data + 1, msg->len - 1);
    default:
        return 0;
    }
}

/* ---- libevent callbacks ---------------------------------------------- */

static void rtmp_session_maybe_ack(rtmp_session_t *s)
{
    if (s->peer_window && s->bytes_in - s->acked >= s->peer_window) {
        s->acked = s->bytes_in;
        if (rtmp_session_send_u32(s, RTMP_MSG_ACK, (uint32_t)s->bytes_in) < 0)
            log_warn(s->ctx, "could not queue an acknowledgement");
    }
}

static void rtmp_session_chunk_error(rtmp_session_t *s, int ret)
{
    const char *what = s->reader.error[0] ? s->reader.error : strerror(-ret);
    if (ret == -EMSGSIZE)
        INGEST_COUNT(s->sh, limit_violations);
    else
        INGEST_COUNT(s->sh, protocol_errors);
    if (ret == -EMSGSIZE)
        log_warn(s->ctx, "peer crossed a limit%s: %s; closing",
                 s->full_limits ? "" : " before publishing", what);
    else if (ret == -ENOMEM)
        log_error(s->ctx, "chunk stream: %s; closing", what);
    else
        log_warn(s->ctx, "malformed chunk stream: %s; closing", what);
}

/* A peer that does not read its replies is not read either: past
 * RTMP_OUT_PAUSE_BYTES reading stops until they have left (write_cb), for
 * RTMP_OUT_STUCK_MS at most (out_timer_cb). */
static void rtmp_session_check_output(rtmp_session_t *s)
{
    if (s->out_paused || s->dead || s->closing)
        return;
    size_t queued = evbuffer_get_length(bufferevent_get_output(s->bev));
    if (queued <= RTMP_OUT_PAUSE_BYTES)
        return;
    s->out_paused = true;
    bufferevent_disable(s->bev, EV_READ);
    struct timeval tv = {.tv_sec = RTMP_OUT_STUCK_MS / 1000,
                         .tv_usec = (RTMP_OUT_STUCK_MS % 1000) * 1000};
    evtimer_add(s->out_ev, &tv);
    log_debug(s->ctx, "%zu bytes of replies not read by the peer: reading paused", queued);
}

static void rtmp_session_out_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtmp_session_t *s = arg;
    if (s->dead || !s->out_paused)
        return;
    INGEST_COUNT(s->sh, limit_violations);
    log_warn(s->ctx, "peer crossed a limit: %zu bytes of replies still not read after %d s "
                     "(limit %u bytes); closing",
             evbuffer_get_length(bufferevent_get_output(s->bev)), RTMP_OUT_STUCK_MS / 1000,
             RTMP_OUT_PAUSE_BYTES);
    rtmp_session_kill(s, "replies not read");
}

static void rtmp_session_read_cb(struct bufferevent *bev, void *arg)
{
    rtmp_session_t *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!s->dead && !s->closing && !s->throttled && !s->authorizing && !s->job &&
           !s->out_paused &&
           evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0;
        int ret;
        if (!s->handshake_done) {
            ret = rtmp_handshake_feed(&s->hs, v.iov_base, v.iov_len, &used);
            if (s->hs.out_len) {
                if (bufferevent_write(bev, s->hs.out, s->hs.out_len) != 0) {
                    rtmp_session_kill(s, "out of memory");
                    return;
                }
                s->hs.out_len = 0;
            }
            evbuffer_drain(in, used);
            s->bytes_in += used;
            if (ret == 0) {
                s->handshake_done = true;
                log_debug(s->ctx, "handshake done (%s)", rtmp_handshake_kind_name(s->hs.kind));
                rtmp_session_arm_timer(s, s->sh->limits.idle_timeout_ms);
            } else if (ret != -EAGAIN) {
                log_warn(s->ctx, "handshake failed: %s; closing",
                         ret == -EPROTO ? "not RTMP version 3 (RTMPE and others unsupported)"
                                        : strerror(-ret));
                INGEST_COUNT(s->sh, handshake_failures);
                rtmp_session_kill(s, "handshake failed");
                return;
            }
            continue;
        }
        rtmp_message_t msg;
        ret = rtmp_chunk_reader_feed(&s->reader, v.iov_base, v.iov_len, &used, &msg);
        evbuffer_drain(in, used);
        s->bytes_in += used;
        rtmp_session_maybe_ack(s);
        if (ret == 0) {
            ret = rtmp_session_on_message(s, &msg);
            if (ret < 0) {
                rtmp_session_kill(s, "protocol error");
                return;
            }
            rtmp_session_check_output(s);
        } else if (ret != -EAGAIN) {
            rtmp_session_chunk_error(s, ret);
            rtmp_session_kill(s, "protocol error");
            return;
        }
    }
    if (s->dead || s->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void rtmp_session_throttle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtmp_session_t *s = arg;
    if (s->dead || !s->throttled)
        return;
    if (s->queue && rtmp_session_queued(s) > s->sh->limits.queue_bytes / 4) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = RTMP_THROTTLE_POLL_MS * 1000};
        evtimer_add(s->throttle_ev, &tv);
        return;
    }
    s->throttled = false;
    if (s->closing || s->authorizing || s->job || s->out_paused)
        return;
    bufferevent_enable(s->bev, EV_READ);
    /* What is already buffered raises no read event: handle it now. */
    rtmp_session_read_cb(s->bev, s);
}

static void rtmp_session_write_cb(struct bufferevent *bev, void *arg)
{
    rtmp_session_t *s = arg;
    if (s->dead || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (s->closing) {
        rtmp_session_kill(s, "closed after reply");
        return;
    }
    if (s->out_paused) {
        /* The peer has read everything: read it again. */
        s->out_paused = false;
        evtimer_del(s->out_ev);
        log_debug(s->ctx, "replies read by the peer: reading resumed");
        if (s->throttled || s->authorizing || s->job)
            return; /* throttle_cb / the answer resume it */
        bufferevent_enable(bev, EV_READ);
        rtmp_session_read_cb(bev, s);
    }
}

static void rtmp_session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    rtmp_session_t *s = arg;
    if (s->dead)
        return;
    if (what & BEV_EVENT_EOF) {
        if (s->queue)
            log_info(s->ctx, "publisher disconnected");
        else
            log_debug(s->ctx, "peer disconnected");
        rtmp_session_kill(s, "disconnected");
    } else if ((what & BEV_EVENT_ERROR) && s->tls && bufferevent_get_openssl_error(bev)) {
        char buf[256];
        ERR_error_string_n(bufferevent_get_openssl_error(bev), buf, sizeof(buf));
        while (bufferevent_get_openssl_error(bev))
            ; /* drain the rest of this connection's errors */
        if (!s->handshake_done && !s->bytes_in) {
            /* Plain RTMP (or anything not TLS) on the RTMPS port. */
            INGEST_COUNT(s->sh, tls_failures);
            log_warn(s->ctx, "TLS handshake failed: %s; closing", buf);
        } else {
            log_warn(s->ctx, "TLS error: %s; closing", buf);
        }
        rtmp_session_kill(s, "TLS error");
    } else if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();
        if (err == ECONNRESET && s->queue)
            log_info(s->ctx, "publisher disconnected (connection reset)");
        else if (err == ECONNRESET || s->closing)
            log_debug(s->ctx, "connection error: %s", evutil_socket_error_to_string(err));
        else
            log_warn(s->ctx, "connection error: %s", evutil_socket_error_to_string(err));
        rtmp_session_kill(s, "connection error");
    } else if (what & BEV_EVENT_TIMEOUT) {
        INGEST_COUNT(s->sh, read_timeouts);
        log_warn(s->ctx, "no data for %d s; closing", INGEST_READ_TIMEOUT_MS / 1000);
        rtmp_session_kill(s, "read timeout");
    }
}

static void rtmp_session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtmp_session_t *s = arg;
    if (s->dead)
        return;
    if (s->closing) {
        rtmp_session_kill(s, "peer did not read the reply");
    } else if (s->job) {
        /* The store is slow or unreachable: refuse now, never wait on it;
         * the late answer finds nobody (rtmp_session_job_done). */
        bool lookup = s->job->kind == INGEST_JOB_AUTH;
        rtmp_session_cancel_job(s);
        bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
        INGEST_COUNT(s->sh, store_timeouts);
        log_warn(s->ctx, "publish refused: the store did not answer the %s within %d ms "
                         "(slow or unreachable)",
                 lookup ? "stream key lookup" : "stream lease claim", INGEST_STORE_DEADLINE_MS);
        if (rtmp_session_refuse(s, "NetStream.Publish.Failed",
                                lookup ? "stream registry unavailable" : "store unavailable") < 0)
            rtmp_session_kill(s, "could not answer the publish");
    } else if (s->authorizing) {
        /* The answer is lost or very late; a late one finds no ticket. */
        s->authorizing = false;
        bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
        char why[96];
        snprintf(why, sizeof(why), "authorisation #%llu not answered within %u ms",
                 (unsigned long long)s->auth_ticket, s->sh->limits.auth_timeout_ms);
        if (rtmp_session_auth_reject(s, why, true) < 0)
            rtmp_session_kill(s, "could not answer the publish");
    } else if (!s->handshake_done) {
        log_warn(s->ctx, "handshake not completed within %u ms; closing",
                 s->sh->limits.handshake_timeout_ms);
        INGEST_COUNT(s->sh, handshake_timeouts);
        rtmp_session_kill(s, "handshake timeout");
    } else if (s->queue) {
        /* Connected, maybe even sending pings or metadata, but no media:
         * as good as gone for viewers, so it is handled like a drop. */
        int64_t quiet = clock_mono_ms() - s->last_media_ms;
        if (quiet >= (int64_t)s->sh->limits.stall_timeout_ms) {
            INGEST_COUNT(s->sh, stalled_publishers);
            log_warn(s->ctx, "no media for %.1f s (--rtmp-stall-timeout); treating the publisher "
                             "as dropped",
                     quiet / 1000.0);
            rtmp_session_kill(s, "stalled");
        } else {
            rtmp_session_arm_timer(s, INGEST_STALL_CHECK_MS);
        }
    } else {
        INGEST_COUNT(s->sh, idle_timeouts);
        log_warn(s->ctx, "no publish within %u ms; closing", s->sh->limits.idle_timeout_ms);
        rtmp_session_kill(s, "idle timeout");
    }
}

/* ---- lifetime ------------------------------------------------------------ */

/* Marks the session dead; the reap event frees it after this callback. A
 * live publish ends as dropped (rtmp_session_kill) or as ended. */
static void rtmp_session_kill_as(rtmp_session_t *s, const char *why, bool dropped)
{
    if (s->dead)
        return;
    rtmp_session_end_publish(s, why, dropped);
    rtmp_session_cancel_job(s);
    s->dead = true;
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    evtimer_del(s->timer);
    evtimer_del(s->throttle_ev);
    evtimer_del(s->out_ev);
    log_debug(s->ctx, "closing (%s)", why);
    event_active(s->sh->reap_ev, 0, 0);
}

static void rtmp_session_kill(rtmp_session_t *s, const char *why)
{
    rtmp_session_kill_as(s, why, true);
}

static void rtmp_session_kill_ended(rtmp_session_t *s, const char *why)
{
    rtmp_session_kill_as(s, why, false);
}

int rtmp_session_new(ingest_shared_t *sh, int fd, const struct sockaddr *peer, int peerlen,
                     SSL *ssl)
{
    (void)peerlen;
    int ret = -ENOMEM;
    rtmp_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        goto fail_fd;
    s->tls = ssl != NULL;
    s->sh = sh;
    s->id = ++sh->next_session_id;
    rtmp_session_format_peer(s, peer);
    ingest_addr_from(&s->addr, peer);
    rtmp_session_update_ctx(s);

    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ssl) {
        /* From here the bufferevent owns the SSL (and the socket). */
        s->bev = bufferevent_openssl_socket_new(sh->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!s->bev)
            goto fail_session;
        ssl = NULL;
        /* Encoders often close without close_notify: that is an EOF. */
        bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
    } else {
        s->bev = bufferevent_socket_new(sh->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!s->bev)
            goto fail_session;
    }
    s->timer = evtimer_new(sh->base, rtmp_session_timer_cb, s);
    if (!s->timer)
        goto fail_bev;
    s->throttle_ev = evtimer_new(sh->base, rtmp_session_throttle_cb, s);
    s->out_ev = evtimer_new(sh->base, rtmp_session_out_timer_cb, s);
    if (!s->throttle_ev || !s->out_ev) {
        event_free(s->timer);
        if (s->throttle_ev)
            event_free(s->throttle_ev);
        if (s->out_ev)
            event_free(s->out_ev);
        goto fail_bev;
    }

    rtmp_handshake_init(&s->hs);
    rtmp_chunk_limits_t cl;
    rtmp_session_chunk_limits(s, false, &cl);
    rtmp_chunk_reader_init(&s->reader, &cl);
    rtmp_chunk_reader_set_limits(&s->reader, &cl, &sh->unpublished);
    amf0_limits_default(&s->amf);
    s->amf.max_depth = sh->limits.max_amf_depth;
    s->amf.max_string = sh->limits.max_amf_string;
    s->out_chunk_size = RTMP_CHUNK_SIZE_DEFAULT;

    bufferevent_setcb(s->bev, rtmp_session_read_cb, rtmp_session_write_cb,
                      rtmp_session_event_cb, s);
    (void)bufferevent_set_max_single_read(s->bev, 65536);
    if (bufferevent_enable(s->bev, EV_READ | EV_WRITE) != 0) {
        ret = -EIO;
        goto fail_reader;
    }
    rtmp_session_arm_timer(s, sh->limits.handshake_timeout_ms);

    s->next = sh->sessions;
    if (sh->sessions)
        sh->sessions->prev = s;
    sh->sessions = s;
    INGEST_COUNT(sh, connections_accepted);
    INGEST_COUNT(sh, connections_open);
    log_debug(s->ctx, "connection accepted");
    return 0;

fail_reader:
    rtmp_chunk_reader_deinit(&s->reader);
    event_free(s->timer);
    event_free(s->throttle_ev);
    event_free(s->out_ev);
fail_bev:
    bufferevent_free(s->bev); /* closes fd */
    free(s);
    return ret;
fail_session:
    free(s);
fail_fd:
    SSL_free(ssl);
    close(fd);
    return ret;
}

void rtmp_session_free(rtmp_session_t *s)
{
    if (!s)
        return;
    rtmp_session_end_publish(s, s->dead ? "connection closed" : "server shutting down",
                             s->sh->drop_on_close);
    rtmp_session_cancel_job(s);
    if (s->prev)
        s->prev->next = s->next;
    else if (s->sh->sessions == s)
        s->sh->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    bufferevent_free(s->bev);
    event_free(s->timer);
    event_free(s->throttle_ev);
    event_free(s->out_ev);
    INGEST_GAUGE_SUB(s->sh, connections_open);
    rtmp_chunk_reader_deinit(&s->reader);
    buf_deinit(&s->payload);
    buf_deinit(&s->wire);
    free(s);
}

void rtmp_session_reap(ingest_shared_t *sh)
{
    rtmp_session_t *s = sh->sessions;
    while (s) {
        rtmp_session_t *next = s->next;
        if (s->dead)
            rtmp_session_free(s);
        s = next;
    }
}

size_t rtmp_session_count_from(ingest_shared_t *sh, const ingest_addr_t *a)
{
    size_t n = 0;
    for (const rtmp_session_t *s = sh->sessions; s; s = s->next)
        if (!s->dead && memcmp(&s->addr, a, sizeof(*a)) == 0)
            n++;
    return n;
}

size_t rtmp_session_count_authorizing(ingest_shared_t *sh)
{
    size_t n = 0;
    for (const rtmp_session_t *s = sh->sessions; s; s = s->next)
        if (!s->dead && s->authorizing)
            n++;
    return n;
}

size_t rtmp_session_count_publishers(ingest_shared_t *sh, const rtmp_session_t *except)
{
    size_t n = 0;
    for (const rtmp_session_t *s = sh->sessions; s; s = s->next)
        if (s != except && !s->dead && s->queue)
            n++;
    return n;
}
