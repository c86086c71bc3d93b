/*
 * The clip maker and its worker (see clip.h). The segments of a track are
 * read into memory one after the other (init + media segments make one
 * fragmented MP4) and demuxed from there; the plan (clip_plan, pure) says
 * per GOP what happens; the muxer is libavformat's mp4 with faststart.
 */
#include "clip.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavutil/opt.h>

#include "blob.h"
#include "buf.h"
#include "clip_internal.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "record_layout.h"
#include "retention.h"
#include "thumbnail.h"

#define CLIP_CTX "clip"
#define CLIP_INPUT_MAX ((size_t)2 << 30) /* bytes of one track's segments */
#define CLIP_POSTER_WIDTH 1280

/* ---- pure parts ------------------------------------------------------- */

int clip_plan(const clip_frame_t *frames, size_t n, int64_t start, int64_t end, clip_gop_t **gops,
              size_t *ngops, int64_t *first_pts, int64_t *last_pts)
{
    *gops = NULL;
    *ngops = 0;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || frames[i].key)
            cap++;
    if (cap == 0 || start >= end)
        return -ERANGE;
    clip_gop_t *g = calloc(cap, sizeof(*g));
    if (!g)
        return -ENOMEM;
    size_t k = 0;
    bool any = false;
    int64_t lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || frames[i].key) {
            if (i > 0)
                g[k - 1].end = i;
            g[k].first = i;
            k++;
        }
        bool in = frames[i].pts >= start && frames[i].pts < end;
        if (in) {
            g[k - 1].selected++;
            if (!any || frames[i].pts < lo)
                lo = frames[i].pts;
            if (!any || frames[i].pts > hi)
                hi = frames[i].pts;
            any = true;
        }
    }
    g[k - 1].end = n;
    for (size_t j = 0; j < k; j++) {
        size_t total = g[j].end - g[j].first;
        g[j].action = g[j].selected == 0       ? CLIP_GOP_SKIP
                      : g[j].selected == total ? CLIP_GOP_COPY
                                               : CLIP_GOP_ENCODE;
    }
    if (!any || (g[0].action != CLIP_GOP_SKIP && !frames[0].key)) {
        free(g);
        return -ERANGE;
    }
    *gops = g;
    *ngops = k;
    *first_pts = lo;
    *last_pts = hi;
    return 0;
}

int clip_annexb_to_lp(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0, i = 0;
    /* find the first start code */
    while (i + 3 <= len && !(in[i] == 0 && in[i + 1] == 0 && in[i + 2] == 1))
        i++;
    if (i + 3 > len)
        return -EPROTO;
    i += 3;
    while (i < len) {
        size_t j = i;
        while (j + 3 <= len && !(in[j] == 0 && in[j + 1] == 0 && in[j + 2] == 1))
            j++;
        size_t e = j + 3 <= len ? j : len;
        size_t next = j + 3 <= len ? j + 3 : len;
        while (e > i && in[e - 1] == 0) /* trailing zero / 4-byte start code */
            e--;
        size_t nal = e - i;
        if (nal > 0) {
            if (o + 4 + nal > cap)
                return -EMSGSIZE;
            out[o] = (uint8_t)(nal >> 24);
            out[o + 1] = (uint8_t)(nal >> 16);
            out[o + 2] = (uint8_t)(nal >> 8);
            out[o + 3] = (uint8_t)nal;
            memcpy(out + o + 4, in + i, nal);
            o += 4 + nal;
        }
        i = next;
    }
    return o > INT_MAX ? -EMSGSIZE : (int)o;
}

int clip_avcc_param_sets(const uint8_t *avcc, size_t len, uint8_t *out, size_t cap)
{
    if (len < 7 || avcc[0] != 1 || (avcc[4] & 3) != 3)
        return -EPROTO;
    size_t p = 5, o = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (p >= len)
            return -EPROTO;
        int count = pass == 0 ? (avcc[p] & 0x1f) : avcc[p];
        p++;
        for (int i = 0; i < count; i++) {
            if (p + 2 > len)
                return -EPROTO;
            size_t nal = ((size_t)avcc[p] << 8) | avcc[p + 1];
            p += 2;
            if (p + nal > len)
                return -EPROTO;
            if (o + 4 + nal > cap)
                return -EMSGSIZE;
            out[o] = 0;
            out[o + 1] = 0;
            out[o + 2] = (uint8_t)(nal >> 8);
            out[o + 3] = (uint8_t)nal;
            memcpy(out + o + 4, avcc + p, nal);
            o += 4 + nal;
            p += nal;
        }
    }
    return (int)o;
}

/* ---- input: a track's files in memory --------------------------------- */

typedef struct clip_mem {
    uint8_t *data;
    size_t size, pos;
} clip_mem_t;

static int clip_mem_read(void *opaque, uint8_t *buf, int n)
{
    clip_mem_t *m = opaque;
    size_t left = m->size - m->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (int)k;
}

static int64_t clip_mem_seek(void *opaque, int64_t off, int whence)
{
    clip_mem_t *m = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return (int64_t)m->size;
    int64_t base = whence == SEEK_CUR ? (int64_t)m->pos : whence == SEEK_END ? (int64_t)m->size : 0;
    int64_t to = base + off;
    if (to < 0 || to > (int64_t)m->size)
        return AVERROR(EINVAL);
    m->pos = (size_t)to;
    return to;
}

static int clip_read_files(const clip_track_t *t, clip_mem_t *m)
{
    buf_t b = {0};
    for (size_t i = 0; t->blobs && i < t->n; i++) {
        buf_append(&b, t->blobs[i]->data, t->blobs[i]->size);
        if (b.oom || b.len > CLIP_INPUT_MAX) {
            buf_deinit(&b);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; !t->blobs && i < t->n; i++) {
        int fd = open(t->paths[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            buf_deinit(&b);
            return -ENOENT;
        }
        uint8_t chunk[65536];
        ssize_t r;
        while ((r = read(fd, chunk, sizeof(chunk))) > 0)
            buf_append(&b, chunk, (size_t)r);
        close(fd);
        if (r < 0 || b.oom || b.len > CLIP_INPUT_MAX) {
            buf_deinit(&b);
            return r < 0 ? -EIO : -ENOMEM;
        }
    }
    m->pos = 0;
    m->data = (uint8_t *)buf_take(&b, &m->size);
    return m->data ? 0 : -ENOMEM;
}

typedef struct clip_demux {
    clip_mem_t mem;
    AVIOContext *io;
    AVFormatContext *fmt;
    AVStream *st;
    AVPacket **pkts;
    size_t n, cap;
} clip_demux_t;

static void clip_demux_close(clip_demux_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        av_packet_free(&d->pkts[i]);
    free(d->pkts);
    if (d->fmt)
        avformat_close_input(&d->fmt);
    if (d->io) {
        av_freep(&d->io->buffer);
        avio_context_free(&d->io);
    }
    free(d->mem.data);
    memset(d, 0, sizeof(*d));
}

/* Every packet of the one stream of the track (of `type`), in file order. */
static int clip_demux_open(const clip_track_t *t, enum AVMediaType type, clip_demux_t *d, char *why,
                           size_t wn)
{
    memset(d, 0, sizeof(*d));
    int rc = clip_read_files(t, &d->mem);
    if (rc < 0) {
        snprintf(why, wn, "cannot read the %s segments", av_get_media_type_string(type));
        return rc;
    }
    unsigned char *iobuf = av_malloc(65536);
    d->fmt = avformat_alloc_context();
    if (iobuf)
        d->io = avio_alloc_context(iobuf, 65536, 0, &d->mem, clip_mem_read, NULL, clip_mem_seek);
    if (!iobuf || !d->fmt || !d->io) {
        if (!d->io)
            av_free(iobuf);
        clip_demux_close(d);
        return -ENOMEM;
    }
    d->fmt->pb = d->io;
    const AVInputFormat *mov = av_find_input_format("mp4");
    if (avformat_open_input(&d->fmt, NULL, mov, NULL) < 0 ||
        avformat_find_stream_info(d->fmt, NULL) < 0) {
        snprintf(why, wn, "the %s segments are not fMP4 we can read",
                 av_get_media_type_string(type));
        clip_demux_close(d);
        return -EPROTO;
    }
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if (d->fmt->streams[i]->codecpar->codec_type == type) {
            d->st = d->fmt->streams[i];
            break;
        }
    if (!d->st || (type == AVMEDIA_TYPE_VIDEO && d->st->codecpar->codec_id != AV_CODEC_ID_H264) ||
        (type == AVMEDIA_TYPE_AUDIO && d->st->codecpar->codec_id != AV_CODEC_ID_AAC)) {
        snprintf(why, wn, "no %s track we can cut (H.264 and AAC only)",
                 av_get_media_type_string(type));
        clip_demux_close(d);
        return -EPROTO;
    }
    for (;;) {
        AVPacket *p = av_packet_alloc();
        if (!p) {
            clip_demux_close(d);
            return -ENOMEM;
        }
        if (av_read_frame(d->fmt, p) < 0) {
            av_packet_free(&p);
            break;
        }
        if (p->stream_index != d->st->index || p->pts == AV_NOPTS_VALUE) {
            av_packet_free(&p);
            continue;
        }
        if (p->dts == AV_NOPTS_VALUE)
            p->dts = p->pts;
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 1024;
            AVPacket **np = realloc(d->pkts, cap * sizeof(*np));
            if (!np) {
                av_packet_free(&p);
                clip_demux_close(d);
                return -ENOMEM;
            }
            d->pkts = np;
            d->cap = cap;
        }
        d->pkts[d->n++] = p;
    }
    if (d->n == 0) {
        snprintf(why, wn, "the %s segments hold no packet", av_get_media_type_string(type));
        clip_demux_close(d);
        return -EPROTO;
    }
    return 0;
}

/* ---- the cut ---------------------------------------------------------- */

typedef struct clip_job_ctx {
    clip_demux_t v, a;
    AVFormatContext *out;
    AVStream *ov, *oa;
    AVCodecContext *dec;
    int64_t base;       /* video pts of the clip's first frame */
    int64_t delay;      /* the source's pts - dts at its keyframes */
    int64_t frame_dur;  /* in the video time base */
    int64_t last_dts;   /* the last video dts written (out time base units, source tb) */
    bool after_encoded; /* the previous GOP written was encoded again */
    uint8_t *ps;        /* the source's SPS + PPS, length-prefixed */
    int ps_len;
    blob_t *poster;
    clip_result_t *res;
    char *why;
    size_t wn;
} clip_job_ctx_t;

static int clip_fail(clip_job_ctx_t *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int clip_fail(clip_job_ctx_t *c, int rc, const char *fmt, ...)
{
    if (c->why[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->wn, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Writes a video packet: timestamps moved to the clip's, dts kept rising. */
static int clip_write_video(clip_job_ctx_t *c, AVPacket *p)
{
    p->stream_index = c->ov->index;
    p->pts -= c->base;
    p->dts -= c->base;
    if (p->dts <= c->last_dts)
        p->dts = c->last_dts + 1;
    if (p->dts > p->pts)
        p->dts = p->pts;
    c->last_dts = p->dts;
    if (p->duration <= 0)
        p->duration = c->frame_dur;
    av_packet_rescale_ts(p, c->v.st->time_base, c->ov->time_base);
    c->res->frames++;
    int rc = av_interleaved_write_frame(c->out, p);
    return rc < 0 ? clip_fail(c, -EIO, "cannot write the MP4") : 0;
}

static int clip_poster_from(clip_job_ctx_t *c, const AVFrame *f)
{
    if (c->poster)
        return 0;
    int rc = thumbnail_encode(f, CLIP_POSTER_WIDTH, &c->poster);
    if (rc < 0)
        log_warn(CLIP_CTX, "poster: cannot encode the first frame");
    return 0;
}

static int clip_copy_gop(clip_job_ctx_t *c, const clip_gop_t *g)
{
    if (!c->poster && c->dec) {
        /* the GOP's keyframe decoded alone: the clip's first picture */
        AVFrame *f = av_frame_alloc();
        avcodec_flush_buffers(c->dec);
        if (f && avcodec_send_packet(c->dec, c->v.pkts[g->first]) >= 0 &&
            avcodec_send_packet(c->dec, NULL) >= 0 && avcodec_receive_frame(c->dec, f) >= 0)
            clip_poster_from(c, f);
        av_frame_free(&f);
        avcodec_flush_buffers(c->dec);
    }
    for (size_t i = g->first; i < g->end; i++) {
        AVPacket *p = av_packet_clone(c->v.pkts[i]);
        if (!p)
            return -ENOMEM;
        if (i == g->first && c->after_encoded && c->ps_len > 0) {
            /* the source's parameter sets again, in-band: the encoded GOP
             * before it left the decoder with its own */
            AVPacket *q = av_packet_alloc();
            if (!q || av_new_packet(q, c->ps_len + p->size) < 0) {
                av_packet_free(&q);
                av_packet_free(&p);
                return -ENOMEM;
            }
            memcpy(q->data, c->ps, (size_t)c->ps_len);
            memcpy(q->data + c->ps_len, p->data, (size_t)p->size);
            av_packet_copy_props(q, p);
            av_packet_free(&p);
            p = q;
        }
        int rc = clip_write_video(c, p);
        av_packet_free(&p);
        if (rc < 0)
            return rc;
        c->res->copied++;
    }
    c->after_encoded = false;
    return 0;
}

static int clip_encoder_open(clip_job_ctx_t *c, const AVFrame *f, AVCodecContext **out)
{
    *out = NULL;
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        return clip_fail(c, -EPROTO, "libx264 is not available");
    AVCodecContext *e = avcodec_alloc_context3(codec);
    if (!e)
        return -ENOMEM;
    const AVCodecParameters *cp = c->v.st->codecpar;
    e->width = f->width;
    e->height = f->height;
    e->pix_fmt = f->format;
    e->time_base = c->v.st->time_base;
    e->framerate = c->v.st->avg_frame_rate;
    e->sample_aspect_ratio = f->sample_aspect_ratio;
    e->max_b_frames = 0;
    e->gop_size = 100000;
    e->thread_count = 2;
    e->color_range = f->color_range;
    e->colorspace = f->colorspace;
    e->color_primaries = f->color_primaries;
    e->color_trc = f->color_trc;
    if (cp->profile > 0)
        e->profile = cp->profile;
    if (cp->level > 0)
        e->level = cp->level;
    av_opt_set(e->priv_data, "preset", "veryfast", 0);
    av_opt_set(e->priv_data, "crf", "16", 0);
    av_opt_set(e->priv_data, "x264-params", "scenecut=0", 0);
    /* no global header: SPS and PPS in-band, with the first IDR */
    if (avcodec_open2(e, codec, NULL) < 0) {
        avcodec_free_context(&e);
        return clip_fail(c, -EPROTO, "cannot open libx264 for %dx%d", f->width, f->height);
    }
    *out = e;
    return 0;
}

static int clip_drain_encoder(clip_job_ctx_t *c, AVCodecContext *e)
{
    AVPacket *p = av_packet_alloc();
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        int r = avcodec_receive_packet(e, p);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            rc = clip_fail(c, -EIO, "the encoder failed");
            break;
        }
        size_t cap = (size_t)p->size + 64;
        AVPacket *q = av_packet_alloc();
        int n = -ENOMEM;
        if (q && av_new_packet(q, (int)cap) >= 0)
            n = clip_annexb_to_lp(p->data, (size_t)p->size, q->data, cap);
        if (n < 0) {
            av_packet_free(&q);
            av_packet_unref(p);
            rc = n == -ENOMEM ? n : clip_fail(c, -EIO, "the encoder's output is not Annex B");
            break;
        }
        q->size = n;
        av_packet_copy_props(q, p);
        q->dts = q->pts - c->delay; /* the source's reorder delay, so the joins keep dts rising */
        q->duration = c->frame_dur;
        av_packet_unref(p);
        rc = clip_write_video(c, q);
        av_packet_free(&q);
        if (rc < 0)
            break;
        c->res->encoded++;
    }
    av_packet_free(&p);
    return rc;
}

/* Decodes the GOP from its keyframe and encodes the frames in the range
 * with a fresh encoder (its own IDR and parameter sets). */
static int clip_encode_gop(clip_job_ctx_t *c, const clip_gop_t *g, int64_t start, int64_t end)
{
    avcodec_flush_buffers(c->dec);
    AVCodecContext *e = NULL;
    AVFrame *f = av_frame_alloc();
    if (!f)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = g->first; i <= g->end && rc == 0; i++) {
        int r = avcodec_send_packet(c->dec, i < g->end ? c->v.pkts[i] : NULL);
        if (r < 0 && r != AVERROR(EAGAIN)) {
            rc = clip_fail(c, -EPROTO, "cannot decode the source");
            break;
        }
        while (rc == 0 && avcodec_receive_frame(c->dec, f) >= 0) {
            int64_t pts =
                f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
            if (pts >= start && pts < end) {
                if (!e && (rc = clip_encoder_open(c, f, &e)) < 0)
                    break;
                clip_poster_from(c, f);
                f->pts = pts;
                f->pict_type = AV_PICTURE_TYPE_NONE;
                if (avcodec_send_frame(e, f) < 0)
                    rc = clip_fail(c, -EIO, "the encoder refused a frame");
                else
                    rc = clip_drain_encoder(c, e);
            }
            av_frame_unref(f);
        }
    }
    if (rc == 0 && e) {
        if (avcodec_send_frame(e, NULL) < 0)
            rc = clip_fail(c, -EIO, "cannot flush the encoder");
        else
            rc = clip_drain_encoder(c, e);
    }
    avcodec_free_context(&e);
    av_frame_free(&f);
    avcodec_flush_buffers(c->dec);
    c->after_encoded = true;
    return rc;
}

static int clip_open_output(clip_job_ctx_t *c, const char *tmp)
{
    if (avformat_alloc_output_context2(&c->out, NULL, "mp4", tmp) < 0 || !c->out)
        return -ENOMEM;
    c->ov = avformat_new_stream(c->out, NULL);
    if (!c->ov || avcodec_parameters_copy(c->ov->codecpar, c->v.st->codecpar) < 0)
        return -ENOMEM;
    c->ov->codecpar->codec_tag = 0;
    c->ov->time_base = c->v.st->time_base;
    c->ov->avg_frame_rate = c->v.st->avg_frame_rate;
    if (c->a.st) {
        c->oa = avformat_new_stream(c->out, NULL);
        if (!c->oa || avcodec_parameters_copy(c->oa->codecpar, c->a.st->codecpar) < 0)
            return -ENOMEM;
        c->oa->codecpar->codec_tag = 0;
        c->oa->time_base = c->a.st->time_base;
    }
    if (avio_open(&c->out->pb, tmp, AVIO_FLAG_WRITE) < 0)
        return clip_fail(c, -EIO, "cannot create the MP4");
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    int rc = avformat_write_header(c->out, &opts);
    av_dict_free(&opts);
    return rc < 0 ? clip_fail(c, -EIO, "cannot write the MP4's header") : 0;
}

/* The audio packets nearest the video's range, copied. */
static int clip_write_audio(clip_job_ctx_t *c, int64_t first_v, int64_t end_v)
{
    AVRational vtb = c->v.st->time_base, atb = c->a.st->time_base;
    int64_t s = av_rescale_q(first_v, vtb, atb), e = av_rescale_q(end_v, vtb, atb);
    int64_t abase = INT64_MIN;
    for (size_t i = 0; i < c->a.n; i++) {
        AVPacket *src = c->a.pkts[i];
        int64_t half = src->duration > 0 ? src->duration / 2 : 0;
        if (src->pts + half < s || src->pts + half >= e)
            continue;
        if (abase == INT64_MIN) {
            abase = src->pts;
            c->res->audio_start_s = (double)(src->pts - s) * av_q2d(atb);
        }
        AVPacket *p = av_packet_clone(src);
        if (!p)
            return -ENOMEM;
        p->stream_index = c->oa->index;
        /* the audio keeps its place against the video: the first AAC
         * frame's small offset (under half a frame) is the only one */
        p->pts = p->pts - s;
        p->dts = p->dts - s;
        if (p->pts < 0) {
            p->pts = 0;
            p->dts = 0;
        }
        av_packet_rescale_ts(p, atb, c->oa->time_base);
        int rc = av_interleaved_write_frame(c->out, p);
        av_packet_free(&p);
        if (rc < 0)
            return clip_fail(c, -EIO, "cannot write the MP4's audio");
    }
    return 0;
}

static void clip_job_ctx_free(clip_job_ctx_t *c)
{
    if (c->out) {
        if (c->out->pb)
            avio_closep(&c->out->pb);
        avformat_free_context(c->out);
    }
    avcodec_free_context(&c->dec);
    clip_demux_close(&c->v);
    clip_demux_close(&c->a);
    free(c->ps);
    blob_unref(c->poster);
}

static void clip_tmp_name(char *out, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(out, n, "%.*s/.%s.tmp", (int)(slash - path), path, slash + 1);
    else
        snprintf(out, n, ".%s.tmp", path);
}

int clip_make(const clip_input_t *in, const char *out_mp4, const char *poster_jpg,
              clip_result_t *res, char *why, size_t wn)
{
    memset(res, 0, sizeof(*res));
    if (wn)
        why[0] = '\0';
    clip_job_ctx_t c = {.res = res, .why = why, .wn = wn, .last_dts = INT64_MIN};
    clip_frame_t *frames = NULL;
    clip_gop_t *gops = NULL;
    size_t ngops = 0;
    char tmp[PATH_MAX];
    clip_tmp_name(tmp, sizeof(tmp), out_mp4);
    int rc;
    if (in->video.n < 2 || in->duration_ms <= 0 || in->start_ms < 0) {
        rc = clip_fail(&c, -ERANGE, "no video segment, or an empty range");
        goto out;
    }
    if ((rc = clip_demux_open(&in->video, AVMEDIA_TYPE_VIDEO, &c.v, why, wn)) < 0)
        goto out;
    if (in->audio.n >= 2 &&
        (rc = clip_demux_open(&in->audio, AVMEDIA_TYPE_AUDIO, &c.a, why, wn)) < 0)
        goto out;
    AVRational tb = c.v.st->time_base;
    frames = calloc(c.v.n, sizeof(*frames));
    if (!frames) {
        rc = -ENOMEM;
        goto out;
    }
    int64_t origin = INT64_MAX;
    for (size_t i = 0; i < c.v.n; i++) {
        frames[i].pts = c.v.pkts[i]->pts;
        frames[i].key = (c.v.pkts[i]->flags & AV_PKT_FLAG_KEY) != 0;
        if (frames[i].pts < origin)
            origin = frames[i].pts;
        if (frames[i].key && c.delay == 0)
            c.delay = c.v.pkts[i]->pts - c.v.pkts[i]->dts;
    }
    c.frame_dur = c.v.st->avg_frame_rate.num > 0
                      ? av_rescale_q(1, av_inv_q(c.v.st->avg_frame_rate), tb)
                      : (c.v.pkts[0]->duration > 0 ? c.v.pkts[0]->duration : 1);
    if (c.frame_dur <= 0)
        c.frame_dur = 1;
    /* A frame is in the range when its pts is at or after start (less half
     * a frame: the frame nearest the requested instant) and before end. */
    int64_t start =
        origin + av_rescale_q(in->start_ms, (AVRational){1, 1000}, tb) - c.frame_dur / 2;
    int64_t end = origin + av_rescale_q(in->start_ms + in->duration_ms, (AVRational){1, 1000}, tb) -
                  c.frame_dur / 2;
    int64_t first_pts = 0, last_pts = 0;
    rc = clip_plan(frames, c.v.n, start, end, &gops, &ngops, &first_pts, &last_pts);
    if (rc == 0 && (start < origin - c.frame_dur || last_pts + c.frame_dur < end - c.frame_dur))
        rc = -ERANGE; /* the segments do not hold the whole range */
    if (rc < 0) {
        rc = rc == -ERANGE ? clip_fail(&c, rc, "the segments do not hold the range") : rc;
        goto out;
    }
    c.base = first_pts;
    c.ps = malloc(c.v.st->codecpar->extradata_size + 64);
    if (!c.ps) {
        rc = -ENOMEM;
        goto out;
    }
    c.ps_len =
        clip_avcc_param_sets(c.v.st->codecpar->extradata, (size_t)c.v.st->codecpar->extradata_size,
                             c.ps, (size_t)c.v.st->codecpar->extradata_size + 64);
    if (c.ps_len < 0) {
        rc = clip_fail(&c, -EPROTO, "the video's avcC is not one we can read");
        goto out;
    }
    const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_H264);
    c.dec = dec ? avcodec_alloc_context3(dec) : NULL;
    if (!c.dec || avcodec_parameters_to_context(c.dec, c.v.st->codecpar) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    c.dec->pkt_timebase = tb;
    c.dec->thread_count = 1;
    if (avcodec_open2(c.dec, dec, NULL) < 0) {
        rc = clip_fail(&c, -EPROTO, "cannot open the H.264 decoder");
        goto out;
    }
    if ((rc = clip_open_output(&c, tmp)) < 0)
        goto out;
    for (size_t i = 0; i < ngops && rc == 0; i++) {
        if (gops[i].action == CLIP_GOP_COPY)
            rc = clip_copy_gop(&c, &gops[i]);
        else if (gops[i].action == CLIP_GOP_ENCODE)
            rc = clip_encode_gop(&c, &gops[i], start, end);
    }
    if (rc == 0 && c.a.st)
        rc = clip_write_audio(&c, first_pts, last_pts + c.frame_dur);
    if (rc == 0 && av_write_trailer(c.out) < 0)
        rc = clip_fail(&c, -EIO, "cannot finish the MP4");
    if (rc < 0)
        goto out;
    avio_closep(&c.out->pb);
    res->duration_s = (double)(last_pts + c.frame_dur - first_pts) * av_q2d(tb);
    struct stat st;
    if (stat(tmp, &st) == 0)
        res->bytes = (uint64_t)st.st_size;
    if (poster_jpg && c.poster) {
        if (record_write_atomic(poster_jpg, c.poster->data, c.poster->size, false) < 0)
            log_warn(CLIP_CTX, "cannot write the poster of %s", out_mp4);
    }
    if (rename(tmp, out_mp4) != 0) {
        rc = clip_fail(&c, -EIO, "cannot rename the MP4 into place");
        goto out;
    }
out:
    if (rc < 0)
        unlink(tmp);
    free(frames);
    free(gops);
    clip_job_ctx_free(&c);
    return rc;
}

void clip_track_deinit(clip_track_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->paths)
            free(t->paths[i]);
        if (t->blobs)
            blob_unref(t->blobs[i]);
    }
    free(t->paths);
    free(t->blobs);
    t->paths = NULL;
    t->blobs = NULL;
    t->n = 0;
}

void clip_input_deinit(clip_input_t *in)
{
    clip_track_deinit(&in->video);
    clip_track_deinit(&in->audio);
    for (size_t i = 0; i < in->nhls; i++) {
        clip_track_deinit(&in->hls[i].track);
        free(in->hls[i].segs);
    }
    free(in->hls);
    in->hls = NULL;
    in->nhls = 0;
    blob_unref(in->hls_master);
    in->hls_master = NULL;
}

/* ---- the HLS form ----------------------------------------------------- */

/* dst := the i-th object of track t: a hard link to the file (a copy when
 * that fails), or the blob written. */
static int clip_hls_put(const clip_track_t *t, size_t i, const char *dst)
{
    if (t->blobs)
        return record_write_file(dst, t->blobs[i]->data, t->blobs[i]->size, false);
    if (link(t->paths[i], dst) == 0)
        return 0;
    clip_mem_t m = {0};
    clip_track_t one = {.paths = &t->paths[i], .n = 1};
    int rc = clip_read_files(&one, &m);
    if (rc == 0)
        rc = record_write_file(dst, m.data, m.size, false);
    free(m.data);
    return rc;
}

/* The source's master without the variants (and audio) of renditions the
 * clip does not have. */
blob_t *clip_hls_master(const blob_t *src, const clip_input_t *in)
{
    buf_t b = {0};
    const char *p = (const char *)src->data, *end = p + src->size;
    const char *pending = NULL; /* an EXT-X-STREAM-INF line waiting for its URI */
    size_t pending_len = 0;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
        const char *uri = NULL;
        size_t ul = 0;
        if (l > 0 && p[0] != '#') {
            uri = p;
            ul = l;
        } else if (l > 13 && memcmp(p, "#EXT-X-MEDIA:", 13) == 0) {
            const char *u = memmem(p, l, "URI=\"", 5);
            if (u) {
                uri = u + 5;
                const char *q = memchr(uri, '"', (size_t)(p + l - uri));
                ul = q ? (size_t)(q - uri) : 0;
            }
        }
        bool keep = true;
        if (uri) {
            const char *slash = memchr(uri, '/', ul);
            keep = false;
            for (size_t i = 0; slash && i < in->nhls; i++)
                if (strlen(in->hls[i].name) == (size_t)(slash - uri) &&
                    memcmp(in->hls[i].name, uri, (size_t)(slash - uri)) == 0)
                    keep = true;
        }
        if (l > 18 && memcmp(p, "#EXT-X-STREAM-INF:", 18) == 0) {
            pending = p;
            pending_len = l;
        } else {
            if (uri && p[0] != '#' && pending && keep) {
                buf_append(&b, pending, pending_len);
                buf_u8(&b, '\n');
            }
            if (!uri || keep) {
                buf_append(&b, p, l);
                buf_u8(&b, '\n');
            }
            if (p[0] != '#')
                pending = NULL;
        }
        p += l + 1;
    }
    blob_t *out = b.oom ? NULL : blob_new(b.data, b.len);
    buf_deinit(&b);
    return out;
}

/* DIR/CID/REND/{init,N.m4s,index.m3u8} for every rendition, then
 * master.m3u8 (last: the form exists once it does). */
static int clip_write_hls(const char *cdir, const clip_input_t *in)
{
    if (!in->hls || !in->hls_master)
        return -ENOENT;
    for (size_t r = 0; r < in->nhls; r++) {
        const clip_hls_rend_t *h = &in->hls[r];
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", cdir, h->name);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -EIO;
        if (h->track.n != h->nsegs + 1)
            return -EINVAL;
        snprintf(path, sizeof(path), "%s/%s/%s", cdir, h->name, h->segs[0].init);
        int rc = clip_hls_put(&h->track, 0, path);
        hls_segment_t *segs = calloc(h->nsegs, sizeof(*segs));
        if (!segs)
            return -ENOMEM;
        int target = 1;
        for (size_t i = 0; rc == 0 && i < h->nsegs; i++) {
            char name[HLS_NAME_FILE_MAX];
            if (hls_name_segment(name, sizeof(name), h->segs[i].msn) < 0) {
                rc = -EIO;
                break;
            }
            snprintf(path, sizeof(path), "%s/%s/%s", cdir, h->name, name);
            rc = clip_hls_put(&h->track, i + 1, path);
            segs[i] = (hls_segment_t){.msn = h->segs[i].msn,
                                      .duration = h->segs[i].duration,
                                      .pdt_ms = h->segs[i].pdt_ms,
                                      .bytes = (size_t)h->segs[i].bytes};
            snprintf(segs[i].map_uri, sizeof(segs[i].map_uri), "%s", h->segs[i].init);
            int d = (int)(h->segs[i].duration + 0.5);
            target = d > target ? d : target;
        }
        blob_t *pl = NULL;
        if (rc == 0) {
            hls_media_playlist_t m = {.target_duration = target,
                                      .media_sequence = h->segs[0].msn,
                                      .segments = segs,
                                      .nsegments = h->nsegs,
                                      .ended = true,
                                      .playlist_type = HLS_PLAYLIST_TYPE_VOD,
                                      .independent_segments = true};
            rc = hls_playlist_render_media(&m, &pl) < 0 ? -ENOMEM : 0;
        }
        free(segs);
        if (rc == 0) {
            snprintf(path, sizeof(path), "%s/%s/%s", cdir, h->name, HLS_NAME_PLAYLIST);
            rc = record_write_file(path, pl->data, pl->size, false);
        }
        blob_unref(pl);
        if (rc < 0)
            return rc;
    }
    blob_t *master = clip_hls_master(in->hls_master, in);
    if (!master)
        return -ENOMEM;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", cdir, HLS_NAME_MASTER);
    int rc = record_write_atomic(path, master->data, master->size, true);
    blob_unref(master);
    return rc;
}

/* ---- the worker ------------------------------------------------------- */

typedef struct clip_job {
    char cid[RECORD_ID_MAX];
    clip_input_t in;
} clip_job_t;

struct clip_service {
    char *dir;
    int64_t max_age_s;
    clip_ready_cb ready_cb;
    void *opaque;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    clip_job_t queue[CLIP_QUEUE_MAX];
    size_t head, count;
    bool stop;
};

/* Sets the clip's state (and reason, and figures) in its JSON. */
static void clip_set_state(clip_service_t *s, const char *cid, const char *state,
                           const char *reason, const clip_result_t *res)
{
    record_info_t info;
    if (record_read(s->dir, cid, &info) < 0) {
        log_warn(CLIP_CTX, "clip %s: its JSON is gone (deleted while being made?)", cid);
        return;
    }
    json_t *j = info.json;
    json_object_set_new(j, "state", json_string(state));
    if (reason)
        json_object_set_new(j, "reason", json_string(reason));
    if (res) {
        json_object_set_new(j, "bytes", json_integer((json_int_t)res->bytes));
        json_object_set_new(j, "duration_s", json_real(res->duration_s));
        json_object_set_new(j, "frames", json_integer((json_int_t)res->frames));
        json_object_set_new(j, "frames_copied", json_integer((json_int_t)res->copied));
        json_object_set_new(j, "frames_encoded", json_integer((json_int_t)res->encoded));
        if (res->hls)
            json_object_set_new(j, "hls", json_string(HLS_NAME_MASTER));
    }
    char recdir[RECORD_PATH_MAX];
    record_path(recdir, sizeof(recdir), s->dir, cid, NULL);
    if (record_json_write(recdir, j, true) < 0)
        log_warn(CLIP_CTX, "clip %s: cannot write its JSON", cid);
    else if (res && strcmp(state, "ready") == 0 && s->ready_cb)
        s->ready_cb(s->opaque, cid, j);
    record_info_deinit(&info);
}

static void clip_run(clip_service_t *s, clip_job_t *job)
{
    char mp4[RECORD_PATH_MAX], poster[RECORD_PATH_MAX], why[256];
    record_path(mp4, sizeof(mp4), s->dir, job->cid, CLIP_MP4);
    record_path(poster, sizeof(poster), s->dir, job->cid, CLIP_POSTER);
    clip_result_t res;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = clip_make(&job->in, mp4, poster, &res, why, sizeof(why));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (rc < 0) {
        log_warn(CLIP_CTX, "clip %s failed: %s", job->cid, why[0] ? why : strerror(-rc));
        clip_set_state(s, job->cid, "failed", why[0] ? why : strerror(-rc), NULL);
        return;
    }
    if (job->in.hls) {
        char cdir[RECORD_PATH_MAX];
        record_path(cdir, sizeof(cdir), s->dir, job->cid, NULL);
        int hrc = clip_write_hls(cdir, &job->in);
        res.hls = hrc == 0;
        if (hrc < 0)
            log_warn(CLIP_CTX, "clip %s: no HLS form: %s", job->cid, strerror(-hrc));
    }
    log_info(CLIP_CTX,
             "clip %s ready in %.0f ms: %.3f s, %" PRIu64 " frames (%" PRIu64 " copied, %" PRIu64
             " encoded), %" PRIu64 " bytes",
             job->cid, ms, res.duration_s, res.frames, res.copied, res.encoded, res.bytes);
    clip_set_state(s, job->cid, "ready", NULL, &res);
}

static void clip_retention(clip_service_t *s)
{
    int n = record_retention_clips(s->dir, s->max_age_s);
    if (n < 0)
        log_warn(CLIP_CTX, "--clips-max-age: %s", strerror(-n));
}

static void *clip_thread(void *arg)
{
    clip_service_t *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->count == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 60;
            if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT && !s->stop &&
                s->count == 0) {
                pthread_mutex_unlock(&s->lock);
                clip_retention(s);
                pthread_mutex_lock(&s->lock);
            }
        }
        if (s->stop)
            break;
        clip_job_t job = s->queue[s->head];
        s->head = (s->head + 1) % CLIP_QUEUE_MAX;
        s->count--;
        pthread_mutex_unlock(&s->lock);
        clip_run(s, &job);
        clip_input_deinit(&job.in);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Clips an earlier run left "processing": failed, temp file removed. */
static void clip_recover(clip_service_t *s)
{
    record_info_t *list = NULL;
    size_t n = 0;
    if (record_list(s->dir, NULL, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *kind = json_string_value(json_object_get(list[i].json, "kind"));
        const char *state = json_string_value(json_object_get(list[i].json, "state"));
        if (!kind || strcmp(kind, CLIP_KIND) != 0 || !state || strcmp(state, "processing") != 0)
            continue;
        char mp4[RECORD_PATH_MAX], tmp[PATH_MAX];
        record_path(mp4, sizeof(mp4), s->dir, list[i].id, CLIP_MP4);
        clip_tmp_name(tmp, sizeof(tmp), mp4);
        unlink(tmp);
        log_warn(CLIP_CTX, "clip %s was being made when the last run stopped: failed", list[i].id);
        clip_set_state(s, list[i].id, "failed", "interrupted", NULL);
    }
    record_list_free(list, n);
}

int clip_service_new(const clip_service_params_t *p, clip_service_t **out)
{
    *out = NULL;
    clip_service_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(p->recordings_dir))) {
        free(s);
        return -ENOMEM;
    }
    s->ready_cb = p->ready_cb;
    s->opaque = p->opaque;
    s->max_age_s = p->max_age_s;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    clip_recover(s);
    clip_retention(s);
    if (pthread_create(&s->thread, NULL, clip_thread, s) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->dir);
        free(s);
        return -EAGAIN;
    }
    pthread_setname_np(s->thread, "clip");
    *out = s;
    return 0;
}

void clip_service_free(clip_service_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    while (s->count > 0) {
        clip_job_t *job = &s->queue[s->head];
        clip_set_state(s, job->cid, "failed", "interrupted", NULL);
        clip_input_deinit(&job->in);
        s->head = (s->head + 1) % CLIP_QUEUE_MAX;
        s->count--;
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

int clip_service_submit(clip_service_t *s, const char *cid, clip_input_t *in)
{
    pthread_mutex_lock(&s->lock);
    if (s->count == CLIP_QUEUE_MAX) {
        pthread_mutex_unlock(&s->lock);
        clip_input_deinit(in);
        return -EBUSY;
    }
    clip_job_t *job = &s->queue[(s->head + s->count) % CLIP_QUEUE_MAX];
    snprintf(job->cid, sizeof(job->cid), "%s", cid);
    job->in = *in;
    memset(in, 0, sizeof(*in));
    s->count++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}
