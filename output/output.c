/*
 * The simulcast engine (output.h, docs/simulcast.md): a broadcast's
 * outputs, one thread each, fed copies of the worker's packets through a
 * bounded queue per output, sending with libavformat (FLV over rtmp(s)://,
 * MPEG-TS over srt://).
 *
 * Threads: the stream's transcode worker makes and frees the set and
 * pushes packets (output_set_push_*: the set's lock, a copy, a queue push;
 * never a wait on an output or the network). Each output thread ("out:ID")
 * owns its muxer: it waits for the configs and a video keyframe, connects,
 * writes, and on a failure waits out its back-off while its queue keeps
 * draining. The manager thread ("outs:ID") re-reads the definitions every
 * OUTPUT_SYNC_MS, starts and stops outputs, joins the ones that finished,
 * notes rung demand and writes the status to the store.
 *
 * Ownership: the set owns its outputs (a list under `lock`); an output
 * taken off the list (stopped) is owned by the manager until it is joined.
 * An output's status fields are under the set's lock; its muxer state is
 * its thread's alone. Lock order: the set's lock -> a queue's lock (a push
 * under the set's lock); nothing else is taken under them.
 */
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>

#include "clock.h"
#include "codec_config.h"
#include "log.h"
#include "output_internal.h"

#define OUTPUT_QUEUE_BYTES (4u << 20)  /* ~13 s at 2.5 Mb/s; then skip to a keyframe */
#define OUTPUT_CONNECT_TIMEOUT_MS 5000
#define OUTPUT_WRITE_TIMEOUT_MS 8000   /* one write blocked this long: the destination is gone */
#define OUTPUT_CLOSE_TIMEOUT_MS 3000   /* a stopped output's trailer and close */
#define OUTPUT_STATUS_EVERY_MS 1000
#define OUTPUT_FEEDS_MAX 12
#define OUTPUT_CTX_MAX 128

/* ---- pure parts ----------------------------------------------------------- */

void output_clock_reset(output_clock_t *c)
{
    memset(c, 0, sizeof(*c));
}

bool output_clock_map(output_clock_t *c, int track, int64_t dts, int64_t pts, int64_t *dts_out,
                      int64_t *pts_out)
{
    if (track < 0 || track >= OUTPUT_TRACKS)
        track = 0;
    int64_t cts = pts > dts ? pts - dts : 0;
    bool rebased = false;
    if (!c->have) {
        c->have = true;
        c->offset_ms = -dts;
    }
    int64_t out = dts + c->offset_ms;
    if (c->have_out[track]) {
        int64_t delta = out - c->last_out_ms[track];
        if (delta < -OUTPUT_JUMP_BACK_MS || delta > OUTPUT_JUMP_FORWARD_MS) {
            int64_t newest = c->last_out_ms[track];
            for (int i = 0; i < OUTPUT_TRACKS; i++)
                if (c->have_out[i] && c->last_out_ms[i] > newest)
                    newest = c->last_out_ms[i];
            int64_t want = newest + OUTPUT_REBASE_GAP_MS;
            c->offset_ms += want - out;
            out = want;
            rebased = true;
        }
        if (out <= c->last_out_ms[track])
            out = c->last_out_ms[track] + 1;
    } else if (out < 0) {
        out = 0;
    }
    c->have_out[track] = true;
    c->last_out_ms[track] = out;
    *dts_out = out;
    *pts_out = out + cts;
    return rebased;
}

int64_t output_backoff_ms(unsigned failures)
{
    if (failures == 0)
        return 0;
    int64_t ms = OUTPUT_BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < failures && ms < OUTPUT_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms > OUTPUT_BACKOFF_MAX_MS ? OUTPUT_BACKOFF_MAX_MS : ms;
}

void output_rate_init(output_rate_t *r)
{
    for (size_t i = 0; i <= OUTPUT_RATE_WINDOW_S; i++) {
        r->sec[i] = -1;
        r->bytes[i] = 0;
    }
}

void output_rate_add(output_rate_t *r, int64_t now_ms, uint64_t bytes)
{
    int64_t s = now_ms / 1000;
    size_t i = (size_t)(s % (OUTPUT_RATE_WINDOW_S + 1));
    if (r->sec[i] != s) {
        r->sec[i] = s;
        r->bytes[i] = 0;
    }
    r->bytes[i] += bytes;
}

int output_rate_kbps(const output_rate_t *r, int64_t now_ms)
{
    int64_t s = now_ms / 1000;
    uint64_t sum = 0;
    for (size_t i = 0; i <= OUTPUT_RATE_WINDOW_S; i++)
        if (r->sec[i] >= s - OUTPUT_RATE_WINDOW_S && r->sec[i] < s)
            sum += r->bytes[i];
    return (int)(sum * 8 / 1000 / OUTPUT_RATE_WINDOW_S);
}

const char *output_state_name(output_state_t s)
{
    switch (s) {
    case OUTPUT_STATE_LIVE:
        return "live";
    case OUTPUT_STATE_RETRYING:
        return "retrying";
    case OUTPUT_STATE_FAILED:
        return "failed";
    default:
        return "connecting";
    }
}

static json_t *output_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(buf);
}

char *output_status_format(const output_status_t *list, size_t n)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const output_status_t *s = &list[i];
        json_t *o = json_pack("{s:s, s:I, s:i, s:I, s:I, s:o, s:o, s:I, s:s}",
                              "state", output_state_name(s->state),
                              "bytes", (json_int_t)s->bytes,
                              "bitrate_kbps", s->bitrate_kbps,
                              "dropped_packets", (json_int_t)s->dropped_packets,
                              "skips", (json_int_t)s->skips,
                              "connected_since", output_time_json(s->connected_since_ms),
                              "last_error", s->last_error[0] ? json_string(s->last_error)
                                                             : json_null(),
                              "retries", (json_int_t)s->retries,
                              "url", s->masked_url);
        if (!o || json_object_set_new(root, s->id, o) < 0) {
            json_decref(root);
            return NULL;
        }
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

/* ---- the set ---------------------------------------------------------------- */

typedef struct output output_t;

/* The newest configs of one feed ("source", "audio" or a rung), given to
 * outputs that start later. */
typedef struct output_feed {
    char name[OUTPUT_RENDITION_MAX];
    media_packet_t *vcfg;
    media_packet_t *acfg;
} output_feed_t;

struct output_set {
    store_t *store;
    char stream_id[STORE_ID_MAX];
    char ctx[OUTPUT_CTX_MAX];
    output_event_cb event_cb;
    void *event_opaque;
    bool note_demand;

    pthread_mutex_t lock;
    pthread_cond_t cond;      /* the manager's wake-up: a state change, closing */
    bool closing;
    bool dirty;               /* a state changed: write the status now */
    output_t *outputs;        /* running (under lock) */
    bool have_ladder;
    size_t nrungs;
    char rungs[OUTPUT_FEEDS_MAX][OUTPUT_RENDITION_MAX];
    bool rung_copy[OUTPUT_FEEDS_MAX];
    output_feed_t feeds[OUTPUT_FEEDS_MAX];
    size_t nfeeds;
    bool wrote_status;        /* the meta field has been written (empty it at the end) */

    output_t *dying;          /* stopped, not yet joined (manager only) */
    pthread_t manager;
    bool have_manager;
};

struct output {
    output_t *next;
    output_set_t *set;
    output_def_t def;
    output_scheme_t scheme;
    char masked[OUTPUT_URL_MAX];
    char ctx[OUTPUT_CTX_MAX];
    media_queue_t *q;
    pthread_t thread;
    atomic_bool stop;      /* finish: send the trailer, close, exit */
    atomic_bool cut;       /* abort any blocking I/O now */
    atomic_llong deadline_us; /* the blocking call under way gives up then; 0: none */
    int64_t stop_at_ms;    /* when the manager stopped it (cut after OUTPUT_CLOSE_TIMEOUT_MS) */
    atomic_bool done;      /* the thread has returned */

    /* Under the set's lock. */
    bool resolved;         /* the feeds are known (below) */
    bool vsource;          /* video from the source; else the rung `def.rendition` */
    bool asource;          /* audio from the source; else the shared audio */
    output_state_t state;
    uint64_t bytes;
    uint64_t dropped;      /* sent to nobody: waiting for a keyframe, retrying */
    uint64_t retries;
    int64_t connected_since_ms;
    char last_error[256];
    output_rate_t rate;
};

static void output_set_wake(output_set_t *s)
{
    s->dirty = true;
    pthread_cond_broadcast(&s->cond);
}

/* A copy of p (NULL on OOM). */
static media_packet_t *output_packet_copy(const media_packet_t *p)
{
    media_packet_t *c = media_packet_new(p->type, p->size);
    if (!c)
        return NULL;
    c->codec = p->codec;
    c->dts_ms = p->dts_ms;
    c->pts_ms = p->pts_ms;
    c->keyframe = p->keyframe;
    memcpy(c->data, p->data, p->size);
    return c;
}

static output_feed_t *output_feed(output_set_t *s, const char *name, bool make)
{
    for (size_t i = 0; i < s->nfeeds; i++)
        if (strcmp(s->feeds[i].name, name) == 0)
            return &s->feeds[i];
    if (!make || s->nfeeds == OUTPUT_FEEDS_MAX)
        return NULL;
    output_feed_t *f = &s->feeds[s->nfeeds++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

static void output_feed_keep(output_set_t *s, const char *name, const media_packet_t *p)
{
    output_feed_t *f = output_feed(s, name, true);
    if (!f)
        return;
    media_packet_t **slot = p->type == MEDIA_PACKET_VIDEO_CONFIG ? &f->vcfg : &f->acfg;
    media_packet_t *c = output_packet_copy(p);
    if (!c)
        return;
    media_packet_free(*slot);
    *slot = c;
}

/* State change, under the set's lock: the reason (scrubbed) and a wake-up
 * for the manager. Returns whether the state changed; the caller logs it
 * (output_state_log) once the lock is dropped, so that no log write ever
 * happens under the lock the worker's pushes take. */
static bool output_state_locked(output_t *o, output_state_t st, const char *error)
{
    output_state_t old = o->state;
    o->state = st;
    if (error) /* libav's words may quote the URL: only its mask may leave */
        output_text_scrub(error, o->def.url, o->last_error, sizeof(o->last_error));
    else if (st == OUTPUT_STATE_LIVE)
        o->last_error[0] = '\0';
    if (old != st || error)
        output_set_wake(o->set);
    return old != st;
}

static void output_state_log(const char *ctx, const char *masked, const char *rendition,
                             output_state_t st, const char *error)
{
    if (st == OUTPUT_STATE_LIVE)
        log_info(ctx, "output %s live (%s)", masked, rendition);
    else if (st == OUTPUT_STATE_FAILED)
        log_warn(ctx, "output %s failed: %s", masked, error);
    else if (st == OUTPUT_STATE_RETRYING)
        log_warn(ctx, "output %s retrying: %s", masked, error);
    else
        log_info(ctx, "output %s connecting", masked);
}

/* A state change from the output's own thread: `connected` 1 starts
 * connected_since now, -1 clears it; `retry` counts an attempt that failed.
 * Logged after the lock is dropped. */
static void output_set_state(output_t *o, output_state_t st, const char *error, int connected,
                             bool retry)
{
    output_set_t *s = o->set;
    char reason[sizeof(o->last_error)];
    pthread_mutex_lock(&s->lock);
    if (connected > 0)
        o->connected_since_ms = clock_wall_ms();
    else if (connected < 0)
        o->connected_since_ms = 0;
    o->retries += retry;
    bool changed = output_state_locked(o, st, error);
    memcpy(reason, o->last_error, sizeof(reason));
    pthread_mutex_unlock(&s->lock);
    if (changed)
        output_state_log(o->ctx, o->masked, o->def.rendition, st, reason);
}

static void output_event(output_t *o, const char *event, const char *error)
{
    output_set_t *s = o->set;
    if (s->event_cb)
        s->event_cb(s->event_opaque, s->stream_id, o->def.id, event, o->masked, error);
}

/* Gives a resolved output the kept configs of its feeds. Lock held. */
static void output_prime_locked(output_t *o)
{
    output_set_t *s = o->set;
    output_feed_t *vf = output_feed(s, o->vsource ? OUTPUT_RENDITION_SOURCE : o->def.rendition,
                                    false);
    output_feed_t *af = output_feed(s, o->asource ? OUTPUT_RENDITION_SOURCE : "audio", false);
    media_packet_t *c;
    if (vf && vf->vcfg && (c = output_packet_copy(vf->vcfg)))
        (void)media_queue_push(o->q, c);
    if (af && af->acfg && (c = output_packet_copy(af->acfg)))
        (void)media_queue_push(o->q, c);
}

/* Finds the output's feeds from the ladder, or fails it. Lock held;
 * returns true when it failed (the caller sends the event). */
static bool output_resolve_locked(output_t *o)
{
    output_set_t *s = o->set;
    if (o->resolved || o->state == OUTPUT_STATE_FAILED)
        return false;
    if (strcmp(o->def.rendition, OUTPUT_RENDITION_SOURCE) == 0) {
        o->vsource = o->asource = true;
    } else {
        if (!s->have_ladder)
            return false;
        size_t i = 0;
        while (i < s->nrungs && strcmp(s->rungs[i], o->def.rendition) != 0)
            i++;
        if (i == s->nrungs) {
            char why[256], list[160];
            size_t n = 0;
            list[0] = '\0';
            for (size_t k = 0; k < s->nrungs && n < sizeof(list); k++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", k ? ", " : "",
                                      s->rungs[k]);
            snprintf(why, sizeof(why), "rendition %s is not in this broadcast's ladder (%s)",
                     o->def.rendition, list);
            (void)output_state_locked(o, OUTPUT_STATE_FAILED, why);
            return true; /* logged by the caller, without the lock */
        }
        o->vsource = o->asource = s->rung_copy[i];
    }
    o->resolved = true;
    output_prime_locked(o);
    return false;
}

/* ---- an output's thread ------------------------------------------------------ */

typedef struct output_conn {
    AVFormatContext *oc;
    bool header;
    int vindex, aindex;
    output_clock_t clock;
    AVPacket *pkt;
    int64_t base_bytes;
    bool sent;             /* a packet went out on this connection */
} output_conn_t;

/* The URL the calling output thread sends to (NULL on other threads), for
 * output_log_scrub. */
static _Thread_local const char *output_thread_url;

bool output_log_scrub(const char *text, char *out, size_t cap)
{
    if (!output_thread_url)
        return false;
    output_text_scrub(text, output_thread_url, out, cap);
    return true;
}

static int output_interrupt_cb(void *opaque)
{
    output_t *o = opaque;
    if (atomic_load(&o->cut))
        return 1;
    long long d = atomic_load(&o->deadline_us);
    return d > 0 && clock_mono_us() > d;
}

static void output_deadline(output_t *o, int64_t ms)
{
    atomic_store(&o->deadline_us, ms > 0 ? (long long)(clock_mono_us() + ms * 1000) : 0);
}

static void output_averr(int err, char *buf, size_t len)
{
    if (av_strerror(err, buf, len) < 0)
        snprintf(buf, len, "error %d", err);
}

static void output_close_conn(output_t *o, output_conn_t *c, bool trailer)
{
    if (!c->oc)
        return;
    output_deadline(o, OUTPUT_CLOSE_TIMEOUT_MS);
    if (c->header && trailer) {
        int ret = av_write_trailer(c->oc);
        if (ret < 0) {
            char e[128];
            output_averr(ret, e, sizeof(e));
            log_debug(o->ctx, "output %s: trailer: %s", o->masked, e);
        }
    }
    if (c->oc->pb)
        avio_closep(&c->oc->pb);
    avformat_free_context(c->oc);
    c->oc = NULL;
    c->header = false;
    output_deadline(o, 0);
}

static int output_stream_extradata(AVCodecParameters *par, const media_packet_t *cfg)
{
    par->extradata = av_mallocz(cfg->size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata)
        return AVERROR(ENOMEM);
    memcpy(par->extradata, cfg->data, cfg->size);
    par->extradata_size = (int)cfg->size;
    return 0;
}

bool output_codec_fits(output_scheme_t scheme, media_codec_t video, char *why, size_t len)
{
    if (video == MEDIA_CODEC_H264)
        return true;
    const char *name = video == MEDIA_CODEC_HEVC ? "HEVC" : video == MEDIA_CODEC_AV1 ? "AV1"
                                                                                    : "this";
    if (scheme != OUTPUT_SCHEME_SRT)
        snprintf(why, len, "%s video cannot be sent over RTMP: FLV (libavformat 5.1) carries "
                           "H.264 only; send a transcoded rung or use srt://", name);
    else if (video == MEDIA_CODEC_HEVC)
        return true;
    else
        snprintf(why, len, "%s video cannot be sent in MPEG-TS here (libavformat 5.1); send a "
                           "transcoded rung", name);
    return false;
}

/* Opens the muxer and the connection and writes the header. 0, or a
 * negative AVERROR with why filled. */
static int output_open_conn(output_t *o, output_conn_t *c, const media_packet_t *vcfg,
                            const media_packet_t *acfg, char *why, size_t len)
{
    const char *fmt = o->scheme == OUTPUT_SCHEME_SRT ? "mpegts" : "flv";
    char e[128];
    int ret = avformat_alloc_output_context2(&c->oc, NULL, fmt, NULL);
    if (ret < 0 || !c->oc) {
        output_averr(ret, e, sizeof(e));
        snprintf(why, len, "cannot make the %s muxer: %s", fmt, e);
        return ret < 0 ? ret : AVERROR(ENOMEM);
    }
    c->oc->interrupt_callback.callback = output_interrupt_cb;
    c->oc->interrupt_callback.opaque = o;
    AVStream *vs = avformat_new_stream(c->oc, NULL);
    if (!vs)
        goto oom;
    vs->time_base = (AVRational){1, 1000};
    vs->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
    vs->codecpar->codec_id = vcfg->codec == MEDIA_CODEC_HEVC ? AV_CODEC_ID_HEVC : AV_CODEC_ID_H264;
    h264_config_t h = {0};
    hevc_config_t hv = {0};
    if (vcfg->codec == MEDIA_CODEC_H264 && h264_parse_avcc(vcfg->data, vcfg->size, &h) == 0) {
        vs->codecpar->width = h.width;
        vs->codecpar->height = h.height;
    } else if (vcfg->codec == MEDIA_CODEC_HEVC &&
               hevc_parse_hvcc(vcfg->data, vcfg->size, &hv) == 0) {
        vs->codecpar->width = hv.width;
        vs->codecpar->height = hv.height;
    }
    if ((ret = output_stream_extradata(vs->codecpar, vcfg)) < 0)
        goto oom;
    c->vindex = vs->index;
    c->aindex = -1;
    if (acfg) {
        aac_config_t ac = {0};
        AVStream *as = avformat_new_stream(c->oc, NULL);
        if (!as)
            goto oom;
        as->time_base = (AVRational){1, 1000};
        as->codecpar->codec_type = AVMEDIA_TYPE_AUDIO;
        as->codecpar->codec_id = AV_CODEC_ID_AAC;
        int rate = 48000, ch = 2;
        if (aac_parse_asc(acfg->data, acfg->size, &ac) == 0) {
            rate = ac.sample_rate > 0 ? ac.sample_rate : rate;
            ch = ac.channels > 0 ? ac.channels : ch;
        }
        as->codecpar->sample_rate = rate;
        av_channel_layout_default(&as->codecpar->ch_layout, ch);
        as->codecpar->frame_size = 1024;
        if ((ret = output_stream_extradata(as->codecpar, acfg)) < 0)
            goto oom;
        c->aindex = as->index;
    }
    AVDictionary *io = NULL;
    char us[32];
    snprintf(us, sizeof(us), "%d", OUTPUT_WRITE_TIMEOUT_MS * 1000);
    av_dict_set(&io, "rw_timeout", us, 0);
    if (o->scheme == OUTPUT_SCHEME_SRT) {
        snprintf(us, sizeof(us), "%d", OUTPUT_CONNECT_TIMEOUT_MS);
        av_dict_set(&io, "connect_timeout", us, 0);
    }
    output_deadline(o, OUTPUT_CONNECT_TIMEOUT_MS);
    ret = avio_open2(&c->oc->pb, o->def.url, AVIO_FLAG_WRITE, &c->oc->interrupt_callback, &io);
    av_dict_free(&io);
    if (ret < 0) {
        output_averr(ret, e, sizeof(e));
        snprintf(why, len, "cannot connect to %.300s: %s", o->masked, e);
        goto fail;
    }
    AVDictionary *mo = NULL;
    if (o->scheme != OUTPUT_SCHEME_SRT)
        av_dict_set(&mo, "flvflags", "no_duration_filesize", 0);
    ret = avformat_write_header(c->oc, &mo);
    av_dict_free(&mo);
    if (ret < 0) {
        output_averr(ret, e, sizeof(e));
        snprintf(why, len, "%.300s: cannot start the %s stream: %s", o->masked, fmt, e);
        goto fail;
    }
    c->header = true;
    output_deadline(o, 0);
    output_clock_reset(&c->clock);
    c->base_bytes = avio_tell(c->oc->pb);
    c->sent = false;
    return 0;

oom:
    ret = AVERROR(ENOMEM);
    snprintf(why, len, "out of memory");
fail:
    output_deadline(o, 0);
    output_close_conn(o, c, false);
    return ret;
}

/* Writes one media packet. 0 or a negative AVERROR (why filled). */
static int output_write(output_t *o, output_conn_t *c, const media_packet_t *p, char *why,
                        size_t len)
{
    bool video = p->type == MEDIA_PACKET_VIDEO;
    int index = video ? c->vindex : c->aindex;
    if (index < 0)
        return 0; /* audio the header did not announce */
    int64_t dts, pts;
    output_clock_map(&c->clock, video ? 0 : 1, p->dts_ms, p->pts_ms, &dts, &pts);
    AVStream *st = c->oc->streams[index];
    AVPacket *pkt = c->pkt;
    av_packet_unref(pkt);
    pkt->data = (uint8_t *)p->data;
    pkt->size = (int)p->size;
    pkt->stream_index = index;
    pkt->dts = av_rescale_q(dts, (AVRational){1, 1000}, st->time_base);
    pkt->pts = av_rescale_q(pts, (AVRational){1, 1000}, st->time_base);
    pkt->flags = (!video || p->keyframe) ? AV_PKT_FLAG_KEY : 0;
    output_deadline(o, OUTPUT_WRITE_TIMEOUT_MS);
    int ret = av_interleaved_write_frame(c->oc, pkt);
    output_deadline(o, 0);
    if (ret < 0) {
        char e[128];
        output_averr(ret, e, sizeof(e));
        snprintf(why, len, "%.300s: sending failed: %s", o->masked, e);
        return ret;
    }
    int64_t pos = avio_tell(c->oc->pb);
    output_set_t *s = o->set;
    pthread_mutex_lock(&s->lock);
    if (pos > c->base_bytes) {
        uint64_t add = (uint64_t)(pos - c->base_bytes);
        o->bytes += add;
        output_rate_add(&o->rate, clock_mono_ms(), add);
        c->base_bytes = pos;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static bool output_same(const media_packet_t *a, const media_packet_t *b)
{
    return a && b && a->codec == b->codec && a->size == b->size &&
           memcmp(a->data, b->data, a->size) == 0;
}

static void output_count_dropped(output_t *o, uint64_t n)
{
    pthread_mutex_lock(&o->set->lock);
    o->dropped += n;
    pthread_mutex_unlock(&o->set->lock);
}

/* A connection attempt or a connection failed: retrying after the back-off.
 * `outage`: the first failure since the output was live or started (the
 * event is sent once per outage). */
static void output_fail(output_t *o, unsigned *failures, int64_t *retry_at, bool *outage,
                        const char *why)
{
    (*failures)++;
    int64_t wait = output_backoff_ms(*failures);
    *retry_at = clock_mono_ms() + wait;
    output_set_state(o, OUTPUT_STATE_RETRYING, why, -1, true);
    log_info(o->ctx, "output %s: next attempt in %.0f s", o->masked, wait / 1000.0);
    if (!*outage) {
        *outage = true;
        output_event(o, "output.failed", why);
    }
}

static void *output_main(void *arg)
{
    output_t *o = arg;
    output_set_t *s = o->set;
    char name[16];
    snprintf(name, sizeof(name), "out:%.11s", s->stream_id);
    pthread_setname_np(pthread_self(), name);
    output_thread_url = o->def.url; /* lives as long as this thread */

    output_conn_t c = {.vindex = -1, .aindex = -1};
    c.pkt = av_packet_alloc();
    media_packet_t *vcfg = NULL, *acfg = NULL;
    unsigned failures = 0;
    int64_t retry_at = 0;
    bool outage = false, failed = false, finish = false;
    char why[512];
    while (!finish && !atomic_load(&o->stop) && c.pkt) {
        media_packet_t *list = media_queue_pop_all(o->q, 250);
        while (list) {
            media_packet_t *p = list;
            list = p->next;
            p->next = NULL;
            if (p->type == MEDIA_PACKET_EOS || finish) {
                finish = true;
                media_packet_free(p);
                continue;
            }
            if (p->type == MEDIA_PACKET_VIDEO_CONFIG || p->type == MEDIA_PACKET_AUDIO_CONFIG) {
                media_packet_t **slot = p->type == MEDIA_PACKET_VIDEO_CONFIG ? &vcfg : &acfg;
                if (output_same(*slot, p)) {
                    media_packet_free(p);
                    continue;
                }
                bool had = *slot != NULL;
                media_packet_free(*slot);
                *slot = p;
                if (p->type == MEDIA_PACKET_VIDEO_CONFIG && !failed &&
                    !output_codec_fits(o->scheme, p->codec, why, sizeof(why))) {
                    failed = true;
                    output_close_conn(o, &c, true);
                    output_set_state(o, OUTPUT_STATE_FAILED, why, -1, false);
                    output_event(o, "output.failed", why);
                }
                if (c.oc && (had || (p->type == MEDIA_PACKET_AUDIO_CONFIG && c.aindex < 0))) {
                    /* New parameters (a new resolution): a new stream with
                     * its own header, not a corrupt one. */
                    log_info(o->ctx, "output %s: the %s configuration changed; reconnecting",
                             o->masked, p->type == MEDIA_PACKET_VIDEO_CONFIG ? "video" : "audio");
                    output_close_conn(o, &c, true);
                    output_set_state(o, OUTPUT_STATE_CONNECTING, NULL, -1, false);
                }
                continue;
            }
            if (p->type != MEDIA_PACKET_VIDEO && p->type != MEDIA_PACKET_AUDIO) {
                media_packet_free(p);
                continue;
            }
            if (failed || (!c.oc && (clock_mono_ms() < retry_at || !vcfg ||
                                     p->type != MEDIA_PACKET_VIDEO || !p->keyframe))) {
                /* Not connected: drained, so nothing grows; a connection
                 * starts at a keyframe. What a retrying output lets go is
                 * dropped; waiting for the first keyframe is not. */
                if (failures > 0)
                    output_count_dropped(o, 1);
                media_packet_free(p);
                continue;
            }
            if (!c.oc) {
                /* A retrying output stays "retrying" through its attempts. */
                if (failures == 0)
                    output_set_state(o, OUTPUT_STATE_CONNECTING, NULL, 0, false);
                if (output_open_conn(o, &c, vcfg, acfg, why, sizeof(why)) < 0) {
                    if (atomic_load(&o->cut) || atomic_load(&o->stop)) {
                        media_packet_free(p);
                        continue;
                    }
                    output_fail(o, &failures, &retry_at, &outage, why);
                    output_count_dropped(o, 1);
                    media_packet_free(p);
                    continue;
                }
            }
            int ret = output_write(o, &c, p, why, sizeof(why));
            media_packet_free(p);
            if (ret < 0) {
                output_close_conn(o, &c, false);
                if (atomic_load(&o->cut) || atomic_load(&o->stop))
                    continue;
                output_fail(o, &failures, &retry_at, &outage, why);
                continue;
            }
            if (!c.sent) {
                c.sent = true;
                failures = 0;
                outage = false;
                output_set_state(o, OUTPUT_STATE_LIVE, NULL, 1, false);
                output_event(o, "output.live", NULL);
            }
        }
    }
    output_close_conn(o, &c, !atomic_load(&o->cut));
    av_packet_free(&c.pkt);
    media_packet_free(vcfg);
    media_packet_free(acfg);
    output_thread_url = NULL;
    atomic_store(&o->done, true);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- the manager ---------------------------------------------------------- */

static void output_free(output_t *o)
{
    if (!o)
        return;
    media_queue_unref(o->q);
    free(o);
}

/* Starts an output for def; NULL on failure (logged). Manager thread. */
static output_t *output_start(output_set_t *s, const output_def_t *def)
{
    output_t *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->set = s;
    o->def = *def;
    char why[128];
    if (output_url_check(def->url, &o->scheme, why, sizeof(why)) < 0) {
        free(o);
        return NULL; /* the definitions' parser already refuses these */
    }
    output_url_mask(def->url, o->masked, sizeof(o->masked));
    snprintf(o->ctx, sizeof(o->ctx), "%.96s output=%.24s", s->ctx, def->id);
    output_rate_init(&o->rate);
    o->state = OUTPUT_STATE_CONNECTING;
    if (!(o->q = media_queue_new(OUTPUT_QUEUE_BYTES))) {
        free(o);
        return NULL;
    }
    int ret = -pthread_create(&o->thread, NULL, output_main, o);
    if (ret < 0) {
        log_error(o->ctx, "cannot start output %s: %s", o->masked, strerror(-ret));
        output_free(o);
        return NULL;
    }
    log_info(o->ctx, "output %s (%s) starts", o->masked, def->rendition);
    char reason[sizeof(o->last_error)];
    pthread_mutex_lock(&s->lock);
    bool failed = output_resolve_locked(o);
    memcpy(reason, o->last_error, sizeof(reason));
    o->next = s->outputs;
    s->outputs = o;
    output_set_wake(s);
    pthread_mutex_unlock(&s->lock);
    if (failed) {
        output_state_log(o->ctx, o->masked, def->rendition, OUTPUT_STATE_FAILED, reason);
        output_event(o, "output.failed", reason);
    }
    return o;
}

/* Tells an output (already off the running list) to finish, and keeps it
 * for joining: `flush` (the stream's end) sends what it has queued first;
 * otherwise (its definition changed) it stops at once. Manager thread, or
 * the worker in output_set_free once the manager is gone. */
static void output_stop(output_set_t *s, output_t *o, bool flush)
{
    if (!flush)
        atomic_store(&o->stop, true);
    media_packet_t *eos = media_packet_new(MEDIA_PACKET_EOS, 0);
    if (eos)
        (void)media_queue_push(o->q, eos);
    o->stop_at_ms = clock_mono_ms();
    o->next = s->dying;
    s->dying = o;
}

/* Joins the stopped outputs that finished; cuts the I/O of those that take
 * too long. `all`: waits for every one. Manager thread. */
static void output_reap(output_set_t *s, bool all)
{
    output_t **pp = &s->dying;
    while (*pp) {
        output_t *o = *pp;
        if (!atomic_load(&o->done) && clock_mono_ms() - o->stop_at_ms > OUTPUT_CLOSE_TIMEOUT_MS)
            atomic_store(&o->cut, true);
        if (atomic_load(&o->done) || all) {
            pthread_join(o->thread, NULL);
            *pp = o->next;
            log_info(o->ctx, "output %s stopped", o->masked);
            output_free(o);
        } else {
            pp = &o->next;
        }
    }
}

static bool output_def_same(const output_def_t *a, const output_def_t *b)
{
    return strcmp(a->url, b->url) == 0 && strcmp(a->rendition, b->rendition) == 0;
}

/* The definitions again: outputs start, stop and restart to match. */
static void output_sync(output_set_t *s)
{
    char *text = NULL;
    int ret = store_stream_get_outputs(s->store, s->stream_id, &text);
    if (ret < 0 && ret != -ENOENT) {
        log_debug(s->ctx, "cannot read the stream's outputs (%s); keeping the running ones",
                  strerror(-ret));
        return;
    }
    output_def_t *defs = NULL;
    size_t n = 0;
    if (ret == 0 && (ret = output_defs_parse(text, &defs, &n)) < 0) {
        log_warn(s->ctx, "the stream's output definitions cannot be read (%s)", strerror(-ret));
        free(text);
        return;
    }
    free(text);
    /* Off the running list: outputs whose definition is gone, disabled or changed. */
    pthread_mutex_lock(&s->lock);
    output_t **pp = &s->outputs, *stop = NULL;
    while (*pp) {
        output_t *o = *pp;
        bool keep = false;
        for (size_t i = 0; i < n && !keep; i++)
            keep = strcmp(defs[i].id, o->def.id) == 0 && defs[i].enabled &&
                   output_def_same(&defs[i], &o->def);
        if (keep) {
            pp = &o->next;
            continue;
        }
        *pp = o->next;
        o->next = stop;
        stop = o;
        output_set_wake(s);
    }
    pthread_mutex_unlock(&s->lock);
    while (stop) {
        output_t *o = stop;
        stop = o->next;
        output_stop(s, o, false);
    }
    for (size_t i = 0; i < n; i++) {
        if (!defs[i].enabled)
            continue;
        bool running = false;
        pthread_mutex_lock(&s->lock);
        for (output_t *o = s->outputs; o && !running; o = o->next)
            running = strcmp(o->def.id, defs[i].id) == 0;
        pthread_mutex_unlock(&s->lock);
        if (!running)
            (void)output_start(s, &defs[i]);
    }
    free(defs);
}

/* Rungs on demand: an output of a transcoded rung is someone watching it. */
static void output_note_demand(output_set_t *s)
{
    char names[OUTPUT_MAX_PER_STREAM][OUTPUT_RENDITION_MAX];
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (output_t *o = s->outputs; o && n < OUTPUT_MAX_PER_STREAM; o = o->next)
        if (o->resolved && !o->vsource)
            snprintf(names[n++], sizeof(names[0]), "%s", o->def.rendition);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        if (store_demand_note(s->store, s->stream_id, names[i], clock_wall_ms()) < 0)
            log_debug(s->ctx, "cannot note demand for rung %s", names[i]);
}

static void output_write_status(output_set_t *s)
{
    output_status_t *list = calloc(OUTPUT_MAX_PER_STREAM, sizeof(*list));
    if (!list)
        return;
    size_t n = 0;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&s->lock);
    s->dirty = false;
    for (output_t *o = s->outputs; o && n < OUTPUT_MAX_PER_STREAM; o = o->next) {
        output_status_t *st = &list[n++];
        media_queue_stats_t qs;
        media_queue_get_stats(o->q, &qs);
        snprintf(st->id, sizeof(st->id), "%s", o->def.id);
        snprintf(st->masked_url, sizeof(st->masked_url), "%s", o->masked);
        st->state = o->state;
        st->bytes = o->bytes;
        st->bitrate_kbps = o->state == OUTPUT_STATE_LIVE ? output_rate_kbps(&o->rate, now) : 0;
        st->dropped_packets = o->dropped + qs.dropped_packets;
        st->skips = qs.skips;
        st->connected_since_ms = o->state == OUTPUT_STATE_LIVE ? o->connected_since_ms : 0;
        snprintf(st->last_error, sizeof(st->last_error), "%s", o->last_error);
        st->retries = o->retries;
    }
    bool any = n > 0 || s->wrote_status;
    pthread_mutex_unlock(&s->lock);
    if (any) {
        char *text = output_status_format(list, n);
        if (text && store_meta_put(s->store, s->stream_id, OUTPUT_META_FIELD, text,
                                   OUTPUT_META_TTL_MS) == 0)
            s->wrote_status = true;
        free(text);
    }
    free(list);
}

static void *output_manager_main(void *arg)
{
    output_set_t *s = arg;
    char name[16];
    snprintf(name, sizeof(name), "outs:%.10s", s->stream_id);
    pthread_setname_np(pthread_self(), name);
    int64_t next_sync = 0, next_status = 0;
    pthread_mutex_lock(&s->lock);
    while (!s->closing) {
        pthread_mutex_unlock(&s->lock);
        int64_t now = clock_mono_ms();
        if (now >= next_sync) {
            next_sync = now + OUTPUT_SYNC_MS;
            output_sync(s);
            if (s->note_demand)
                output_note_demand(s);
        }
        output_reap(s, false);
        pthread_mutex_lock(&s->lock);
        bool dirty = s->dirty;
        pthread_mutex_unlock(&s->lock);
        now = clock_mono_ms();
        if (dirty || now >= next_status) {
            next_status = now + OUTPUT_STATUS_EVERY_MS;
            output_write_status(s);
        }
        pthread_mutex_lock(&s->lock);
        if (s->closing || s->dirty)
            continue;
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_nsec += 250 * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&s->cond, &s->lock, &at);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- public ----------------------------------------------------------------- */

int output_set_new(const output_set_params_t *p, output_set_t **out)
{
    *out = NULL;
    if (!p->store || !p->stream_id)
        return -EINVAL;
    output_set_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->store = p->store;
    snprintf(s->stream_id, sizeof(s->stream_id), "%s", p->stream_id);
    if (p->log_ctx)
        snprintf(s->ctx, sizeof(s->ctx), "%s", p->log_ctx);
    else
        snprintf(s->ctx, sizeof(s->ctx), "stream=%s", p->stream_id);
    s->event_cb = p->event_cb;
    s->event_opaque = p->event_opaque;
    s->note_demand = p->note_demand;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    int ret = -pthread_create(&s->manager, NULL, output_manager_main, s);
    if (ret < 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return ret;
    }
    s->have_manager = true;
    *out = s;
    return 0;
}

/* What an event needs, copied under the set's lock. */
typedef struct output_event_copy {
    char ctx[OUTPUT_CTX_MAX];
    char rendition[OUTPUT_RENDITION_MAX];
    char id[OUTPUT_ID_MAX];
    char masked[OUTPUT_URL_MAX];
    char error[256];
} output_event_copy_t;

void output_set_ladder(output_set_t *s, const char *const *names, const bool *copy, size_t n)
{
    if (!s)
        return;
    output_event_copy_t *ev = calloc(OUTPUT_MAX_PER_STREAM, sizeof(*ev));
    size_t nev = 0;
    pthread_mutex_lock(&s->lock);
    s->have_ladder = true;
    s->nrungs = 0;
    for (size_t i = 0; i < n && s->nrungs < OUTPUT_FEEDS_MAX; i++) {
        snprintf(s->rungs[s->nrungs], sizeof(s->rungs[0]), "%s", names[i]);
        s->rung_copy[s->nrungs++] = copy[i];
    }
    for (output_t *o = s->outputs; o; o = o->next) {
        if (!output_resolve_locked(o) || !ev || nev == OUTPUT_MAX_PER_STREAM)
            continue;
        /* Copies: once the lock is dropped, the manager may stop and free o. */
        snprintf(ev[nev].ctx, sizeof(ev[nev].ctx), "%s", o->ctx);
        snprintf(ev[nev].rendition, sizeof(ev[nev].rendition), "%s", o->def.rendition);
        snprintf(ev[nev].id, sizeof(ev[nev].id), "%s", o->def.id);
        snprintf(ev[nev].masked, sizeof(ev[nev].masked), "%s", o->masked);
        snprintf(ev[nev].error, sizeof(ev[nev].error), "%s", o->last_error);
        nev++;
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nev; i++) {
        output_state_log(ev[i].ctx, ev[i].masked, ev[i].rendition, OUTPUT_STATE_FAILED,
                         ev[i].error);
        if (s->event_cb)
            s->event_cb(s->event_opaque, s->stream_id, ev[i].id, "output.failed", ev[i].masked,
                        ev[i].error);
    }
    free(ev);
}

bool output_set_wants(output_set_t *s, const char *rung)
{
    if (!s)
        return false;
    bool want = false;
    pthread_mutex_lock(&s->lock);
    for (output_t *o = s->outputs; o && !want; o = o->next) {
        if (!o->resolved || o->state == OUTPUT_STATE_FAILED)
            continue;
        want = rung ? !o->vsource && strcmp(o->def.rendition, rung) == 0 : !o->asource;
    }
    pthread_mutex_unlock(&s->lock);
    return want;
}

/* Copies p into the queue of every output `pick` chooses. Lock held. */
static void output_fan_out_locked(output_set_t *s, const media_packet_t *p, bool video,
                                  bool source, const char *rung)
{
    for (output_t *o = s->outputs; o; o = o->next) {
        if (!o->resolved || o->state == OUTPUT_STATE_FAILED)
            continue;
        bool want;
        if (video)
            want = source ? o->vsource : !o->vsource && strcmp(o->def.rendition, rung) == 0;
        else
            want = source ? o->asource : !o->asource;
        if (!want)
            continue;
        media_packet_t *c = output_packet_copy(p);
        if (c)
            (void)media_queue_push(o->q, c); /* -ENOBUFS: dropped and counted by the queue */
    }
}

static void output_push(output_set_t *s, const media_packet_t *p, bool source, const char *rung)
{
    if (!s || !p)
        return;
    bool video = p->type == MEDIA_PACKET_VIDEO || p->type == MEDIA_PACKET_VIDEO_CONFIG;
    bool audio = p->type == MEDIA_PACKET_AUDIO || p->type == MEDIA_PACKET_AUDIO_CONFIG;
    if (!video && !audio)
        return;
    pthread_mutex_lock(&s->lock);
    if (p->type == MEDIA_PACKET_VIDEO_CONFIG || p->type == MEDIA_PACKET_AUDIO_CONFIG)
        output_feed_keep(s, source ? OUTPUT_RENDITION_SOURCE : rung ? rung : "audio", p);
    if (s->outputs)
        output_fan_out_locked(s, p, video, source, rung);
    pthread_mutex_unlock(&s->lock);
}

void output_set_push_source(output_set_t *s, const media_packet_t *p)
{
    output_push(s, p, true, NULL);
}

void output_set_push_rung(output_set_t *s, const char *rung, const media_packet_t *p)
{
    if (p && (p->type == MEDIA_PACKET_VIDEO || p->type == MEDIA_PACKET_VIDEO_CONFIG) && rung)
        output_push(s, p, false, rung);
}

void output_set_push_audio(output_set_t *s, const media_packet_t *p)
{
    if (p && (p->type == MEDIA_PACKET_AUDIO || p->type == MEDIA_PACKET_AUDIO_CONFIG))
        output_push(s, p, false, NULL);
}

void output_set_free(output_set_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->have_manager)
        pthread_join(s->manager, NULL);
    /* Every running output finishes: what it has queued is sent, then the
     * trailer; the slow ones are cut after OUTPUT_CLOSE_TIMEOUT_MS. */
    pthread_mutex_lock(&s->lock);
    output_t *o = s->outputs;
    s->outputs = NULL;
    /* One that is not sending has nothing to flush: a connection attempt
     * under way is cut, not waited for. */
    for (output_t *x = o; x; x = x->next)
        if (x->state != OUTPUT_STATE_LIVE)
            atomic_store(&x->cut, true);
    pthread_mutex_unlock(&s->lock);
    while (o) {
        output_t *next = o->next;
        output_stop(s, o, true);
        o = next;
    }
    int64_t until = clock_mono_ms() + OUTPUT_CLOSE_TIMEOUT_MS;
    for (;;) {
        bool all_done = true;
        for (output_t *d = s->dying; d; d = d->next)
            all_done = all_done && atomic_load(&d->done);
        if (all_done || clock_mono_ms() >= until)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (output_t *d = s->dying; d; d = d->next)
        atomic_store(&d->cut, true);
    output_reap(s, true);
    if (s->wrote_status &&
        store_meta_put(s->store, s->stream_id, OUTPUT_META_FIELD, "{}", OUTPUT_META_TTL_MS) < 0)
        log_debug(s->ctx, "cannot empty the outputs' status");
    for (size_t i = 0; i < s->nfeeds; i++) {
        media_packet_free(s->feeds[i].vcfg);
        media_packet_free(s->feeds[i].acfg);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
