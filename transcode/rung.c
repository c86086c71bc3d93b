/*
 * A transcoded rung: libswscale to the rung's size, then libx264 through
 * libavcodec's send/receive API. The encoder is set up so that segment
 * boundaries are the caller's decision alone: keyint is infinite, scene-cut
 * detection is off, GOPs are closed, and a frame whose pict_type is I is
 * encoded as an IDR (forced-idr). x264 runs with global headers, so its
 * SPS/PPS come out once as extradata; both that and the Annex B packets are
 * rewritten here into avcC / AVCC, the form the CMAF muxer and the packager
 * already take from ingest. Closed captions ride along: the source
 * picture's A/53 caption side data goes onto the scaled one, and x264
 * writes it back as SEI.
 *
 * A preset step reopens the encoder (x264 cannot change preset in flight).
 * To keep the avcC, and with it the init segment, identical across steps,
 * the parameters that are written into the SPS/PPS (reference count,
 * B-frames, weighted prediction, CABAC, 8x8 transform) are pinned to the
 * configured preset's values; the rest of the faster preset still applies.
 *
 * Thread: owned by one transcode worker. libav error codes stay here: they
 * are logged with av_strerror and returned as negative errno values.
 */
#include "rung_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "codec_config.h"
#include "ladder_internal.h"
#include "failure_internal.h"
#include "log.h"

#define RUNG_AVCC_MAX 1024

struct rung_encoder {
    char name[TRANSCODE_RUNG_NAME_MAX];
    const char *log_ctx;
    int width, height;
    AVCodecContext *enc;
    struct SwsContext *sws;
    AVFrame *frame;  /* scaled picture handed to the encoder */
    AVPacket *pkt;
    uint8_t avcc[RUNG_AVCC_MAX];
    size_t avcc_size;
    uint8_t *buf;    /* AVCC of the last received sample */
    size_t buf_cap;
    bool flushed;
};

/* SPS/PPS-shaping x264 parameters of each preset, fastest first (x264's
 * param_apply_preset): ref, bframes, weightp, cabac, 8x8dct, weightb. */
static const int rung_preset_shape[][6] = {
    {1, 0, 0, 0, 0, 0},  /* ultrafast */
    {1, 3, 1, 1, 1, 1},  /* superfast */
    {1, 3, 1, 1, 1, 1},  /* veryfast */
    {2, 3, 1, 1, 1, 1},  /* faster */
    {2, 3, 2, 1, 1, 1},  /* fast */
    {3, 3, 2, 1, 1, 1},  /* medium */
    {5, 3, 2, 1, 1, 1},  /* slow */
    {8, 3, 2, 1, 1, 1},  /* slower */
    {16, 8, 2, 1, 1, 1}, /* veryslow */
    {16, 16, 2, 1, 1, 1} /* placebo */
};

/* Logs a libav failure of the rung's encoder (or scaler), notes it for the
 * worker's failure line with the pts it was working on (AV_NOPTS_VALUE:
 * none), and turns it into a negative errno. */
static int rung_fail_at(const rung_encoder_t *e, const char *what, int averr, int64_t pts)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof(msg));
    log_error(e->log_ctx, "rung %s: %s: %s", e->name, what, msg);
    if (pts != AV_NOPTS_VALUE)
        failure_note("encoder of rung %s: %s: %s (picture pts %" PRId64 ", 1/90000 s)", e->name,
                     what, msg, pts);
    else
        failure_note("encoder of rung %s: %s: %s", e->name, what, msg);
    if (averr < 0 && averr > -4096)
        return averr;
    return -EIO;
}

static int rung_fail(const rung_encoder_t *e, const char *what, int averr)
{
    return rung_fail_at(e, what, averr, AV_NOPTS_VALUE);
}

typedef struct rung_avcc_out {
    rung_encoder_t *e;
    size_t n;
} rung_avcc_out_t;

static int rung_append_nal(void *opaque, const uint8_t *nal, size_t size)
{
    rung_avcc_out_t *o = opaque;
    rung_encoder_t *e = o->e;
    if (size > UINT32_MAX)
        return -EMSGSIZE;
    if (o->n + 4 + size > e->buf_cap) {
        size_t cap = e->buf_cap ? e->buf_cap : 65536;
        while (cap < o->n + 4 + size)
            cap *= 2;
        uint8_t *b = realloc(e->buf, cap);
        if (!b)
            return -ENOMEM;
        e->buf = b;
        e->buf_cap = cap;
    }
    uint8_t *p = e->buf + o->n;
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    memcpy(p + 4, nal, size);
    o->n += 4 + size;
    return 0;
}

int rung_encoder_open(const rung_encoder_params_t *p, rung_encoder_t **out)
{
    *out = NULL;
    AVDictionary *opts = NULL;
    int ret;
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    rung_encoder_t *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    snprintf(e->name, sizeof(e->name), "%s", p->name);
    e->log_ctx = p->log_ctx;
    e->width = p->width;
    e->height = p->height;
    if (!codec) {
        log_error(e->log_ctx, "this libavcodec has no libx264 encoder");
        ret = -ENOSYS;
        goto fail;
    }
    e->enc = avcodec_alloc_context3(codec);
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->enc || !e->frame || !e->pkt) {
        ret = -ENOMEM;
        goto fail;
    }
    AVCodecContext *c = e->enc;
    c->width = p->width;
    c->height = p->height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, 90000};
    c->framerate = p->fps_num > 0 && p->fps_den > 0 ? (AVRational){p->fps_num, p->fps_den}
                                                     : (AVRational){30, 1};
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->bit_rate = (int64_t)p->bitrate_kbps * 1000;
    int maxrate = p->maxrate_kbps > 0 ? p->maxrate_kbps : p->bitrate_kbps * 3 / 2;
    c->rc_max_rate = (int64_t)maxrate * 1000;
    c->rc_buffer_size = p->bitrate_kbps * 2 * 1000;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->thread_count = p->threads > 0 ? p->threads : 1;

    char x264[256];
    int n = snprintf(x264, sizeof(x264), "keyint=infinite:scenecut=0:open-gop=0");
    int cur = ladder_preset_index(p->preset), pin = ladder_preset_index(p->pin_preset);
    if (cur >= 0 && pin >= 0 && cur != pin) {
        const int *s = rung_preset_shape[pin];
        snprintf(x264 + n, sizeof(x264) - (size_t)n,
                 ":ref=%d:bframes=%d:weightp=%d:cabac=%d:8x8dct=%d:weightb=%d", s[0], s[1], s[2],
                 s[3], s[4], s[5]);
    }
    av_dict_set(&opts, "preset", p->preset, 0);
    av_dict_set(&opts, "profile", p->profile && p->profile[0] ? p->profile : "high", 0);
    av_dict_set(&opts, "forced-idr", "1", 0);
    av_dict_set(&opts, "x264-params", x264, 0);
    ret = avcodec_open2(c, codec, &opts);
    if (ret < 0) {
        ret = rung_fail(e, "avcodec_open2(libx264)", ret);
        goto fail;
    }
    if (av_dict_count(opts) > 0)
        log_warn(e->log_ctx, "rung %s: %d encoder option(s) not recognised", e->name,
                 av_dict_count(opts));
    av_dict_free(&opts);
    int sz = h264_avcc_from_annexb(c->extradata, c->extradata_size > 0 ? (size_t)c->extradata_size : 0,
                                 e->avcc, sizeof(e->avcc));
    if (sz < 0) {
        log_error(e->log_ctx, "rung %s: x264 gave no usable SPS/PPS", e->name);
        ret = sz;
        goto fail;
    }
    e->avcc_size = (size_t)sz;

    e->frame->format = AV_PIX_FMT_YUV420P;
    e->frame->width = p->width;
    e->frame->height = p->height;
    ret = av_frame_get_buffer(e->frame, 0);
    if (ret < 0) {
        ret = rung_fail(e, "av_frame_get_buffer", ret);
        goto fail;
    }
    *out = e;
    return 0;

fail:
    av_dict_free(&opts);
    rung_encoder_free(e);
    return ret;
}

void rung_encoder_avcc(const rung_encoder_t *e, const uint8_t **data, size_t *size)
{
    *data = e->avcc;
    *size = e->avcc_size;
}

/* The source picture's closed captions (CEA-608/708 as ATSC A/53 cc_data,
 * which libavcodec's H.264 decoder attaches to the picture it came with)
 * onto the scaled picture, which libx264 writes back as an SEI (its a53cc
 * option, on by default). A picture used as it is (av_frame_ref) has them
 * already. Not av_frame_copy_props: the scaled frame is reused from picture
 * to picture and it appends side data, so the captions of the first picture
 * would be the ones x264 found on every later one. */
static int rung_copy_captions(AVFrame *dst, const AVFrame *src)
{
    av_frame_remove_side_data(dst, AV_FRAME_DATA_A53_CC);
    const AVFrameSideData *cc = av_frame_get_side_data(src, AV_FRAME_DATA_A53_CC);
    if (!cc || cc->size == 0)
        return 0;
    AVFrameSideData *out = av_frame_new_side_data(dst, AV_FRAME_DATA_A53_CC, cc->size);
    if (!out)
        return AVERROR(ENOMEM);
    memcpy(out->data, cc->data, cc->size);
    return 0;
}

int rung_encoder_send(rung_encoder_t *e, const AVFrame *src, bool force_idr)
{
    if (e->flushed)
        return -EINVAL;
    AVFrame *f = e->frame;
    int ret;
    if (src->width == e->width && src->height == e->height && src->format == AV_PIX_FMT_YUV420P) {
        /* Same size and format: the decoded picture is the input as is. */
        av_frame_unref(f);
        ret = av_frame_ref(f, src);
        if (ret < 0)
            return rung_fail(e, "av_frame_ref", ret);
    } else {
        if (!f->buf[0] || f->width != e->width) {
            av_frame_unref(f);
            f->format = AV_PIX_FMT_YUV420P;
            f->width = e->width;
            f->height = e->height;
            ret = av_frame_get_buffer(f, 0);
            if (ret < 0)
                return rung_fail(e, "av_frame_get_buffer", ret);
        }
        /* The encoder may still hold the previous picture's buffer. */
        ret = av_frame_make_writable(f);
        if (ret < 0)
            return rung_fail(e, "av_frame_make_writable", ret);
        e->sws = sws_getCachedContext(e->sws, src->width, src->height, src->format, e->width,
                                      e->height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL,
                                      NULL);
        if (!e->sws) {
            log_error(e->log_ctx, "rung %s: cannot scale %dx%d (format %d)", e->name, src->width,
                      src->height, src->format);
            failure_note("scaler of rung %s: cannot scale %dx%d (pixel format %d) to %dx%d "
                         "(picture pts %" PRId64 ")",
                         e->name, src->width, src->height, src->format, e->width, e->height,
                         src->pts);
            return -EINVAL;
        }
        sws_scale(e->sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
                  f->data, f->linesize);
        if ((ret = rung_copy_captions(f, src)) < 0)
            return rung_fail_at(e, "caption side data", ret, src->pts);
    }
    f->pts = src->pts;
    f->pict_type = force_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    f->key_frame = force_idr;
    ret = avcodec_send_frame(e->enc, f);
    if (ret < 0)
        return rung_fail_at(e, "avcodec_send_frame", ret, f->pts);
    return 0;
}

const AVFrame *rung_encoder_picture(const rung_encoder_t *e)
{
    return !e->flushed && e->frame->buf[0] && e->frame->pts != AV_NOPTS_VALUE ? e->frame : NULL;
}

int rung_encoder_flush(rung_encoder_t *e)
{
    if (e->flushed)
        return 0;
    e->flushed = true;
    int ret = avcodec_send_frame(e->enc, NULL);
    if (ret < 0)
        return rung_fail(e, "flush", ret);
    return 0;
}

int rung_encoder_receive(rung_encoder_t *e, rung_sample_t *out)
{
    memset(out, 0, sizeof(*out));
    int ret = avcodec_receive_packet(e->enc, e->pkt);
    if (ret == AVERROR(EAGAIN))
        return -EAGAIN;
    if (ret == AVERROR_EOF)
        return -ENODATA;
    if (ret < 0)
        return rung_fail(e, "avcodec_receive_packet", ret);
    rung_avcc_out_t o = {.e = e};
    ret = h264_annexb_each_nal(e->pkt->data, (size_t)e->pkt->size, rung_append_nal, &o);
    out->dts = e->pkt->dts;
    out->pts = e->pkt->pts;
    out->key = (e->pkt->flags & AV_PKT_FLAG_KEY) != 0;
    av_packet_unref(e->pkt);
    if (ret < 0)
        return ret;
    out->data = e->buf;
    out->size = o.n;
    return o.n > 0 ? 0 : -EAGAIN;
}

void rung_encoder_free(rung_encoder_t *e)
{
    if (!e)
        return;
    avcodec_free_context(&e->enc);
    sws_freeContext(e->sws);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    free(e->buf);
    free(e);
}
