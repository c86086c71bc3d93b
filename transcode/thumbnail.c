/*
 * Live thumbnails (thumbnail.h). A pipeline calls thumbnail_picture() with
 * the decoded picture that starts a segment (it decodes for its transcoded
 * rungs anyway), or thumbnail_keyframe() with the raw keyframe when the
 * ladder only copies (then this module decodes that one keyframe with a
 * decoder of its own: one thread, opened lazily, drained and flushed after
 * each keyframe so it never holds pictures back). The picture is converted
 * to full-range 4:2:0 at most 1280 wide by libswscale and encoded by the
 * MJPEG encoder at a fixed quantiser, and the JPEG is committed to the store
 * as "thumbnail.jpg" with the live TTL. At most once per segment, because
 * the pipeline calls only at segment starts.
 *
 * Every failure is logged (the first one per stream as a warning, later
 * ones at debug level) and forgotten: a thumbnail must never block or stop
 * a stream.
 *
 * thumbnail_scale() serves the origin's ?width=N: decode the stored JPEG,
 * scale, encode. It keeps no state, so any thread may call it.
 *
 * Ownership: thumbnail_t owns its decoder, scaler and frames, and is used
 * by its pipeline's worker thread only.
 */
#include "thumbnail.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "clock.h"
#include "log.h"

struct thumbnail {
    store_t *store;
    char stream_id[STORE_ID_MAX];
    char ctx[96];
    int64_t live_ttl_ms;
    int64_t ended_ttl_ms;
    bool warned;
    bool stored; /* a thumbnail of this broadcast is in the store */
    double last_ms;
    uint64_t count;

    /* The copy-only decoder and the configuration record it was opened with. */
    AVCodecContext *dec;
    media_codec_t dec_codec;
    uint8_t *dec_config;
    size_t dec_config_size;
    AVPacket *pkt;
    AVFrame *frame;
};

/* ---- pure helpers ------------------------------------------------------ */

void thumbnail_fit(int w, int h, int width, int *out_w, int *out_h)
{
    if (w < 1)
        w = 1;
    if (h < 1)
        h = 1;
    if (width < 1 || width > w)
        width = w;
    long th = lround((double)h * width / w);
    *out_w = width;
    *out_h = th < 1 ? 1 : (int)th;
}

static int th_averr(int averr)
{
    if (averr == AVERROR(ENOMEM))
        return -ENOMEM;
    if (averr == AVERROR_INVALIDDATA)
        return -EPROTO;
    return -EIO;
}

/* The range-explicit twin of a deprecated "J" pixel format, so that
 * libswscale is told the range instead of guessing (and warning). */
static enum AVPixelFormat th_unjpeg(enum AVPixelFormat f, bool *full)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full = true; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full = true; return AV_PIX_FMT_YUV411P;
    default: return f;
    }
}

/* pic converted to a full-range yuvj420p frame of w x h (a new frame). */
static int th_convert(const AVFrame *pic, int w, int h, AVFrame **out)
{
    *out = NULL;
    bool src_full = pic->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat sf = th_unjpeg((enum AVPixelFormat)pic->format, &src_full);
    if (!av_pix_fmt_desc_get(sf) || pic->width < 1 || pic->height < 1)
        return -EINVAL;
    struct SwsContext *sws = sws_getContext(pic->width, pic->height, sf, w, h,
                                            AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
    AVFrame *f = av_frame_alloc();
    int ret = -ENOMEM;
    if (!sws || !f)
        goto fail;
    /* Limited-range video becomes full-range JPEG; the matrix stays BT.601
     * on both sides (what JPEG decoders assume). */
    const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
    sws_setColorspaceDetails(sws, coefs, src_full ? 1 : 0, coefs, 1, 0, 1 << 16, 1 << 16);
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        goto fail;
    if (sws_scale(sws, (const uint8_t *const *)pic->data, pic->linesize, 0, pic->height, f->data,
                  f->linesize) != h) {
        ret = -EIO;
        goto fail;
    }
    /* Same planes; the encoder wants the full-range name. */
    f->format = AV_PIX_FMT_YUVJ420P;
    f->color_range = AVCOL_RANGE_JPEG;
    sws_freeContext(sws);
    *out = f;
    return 0;

fail:
    sws_freeContext(sws);
    av_frame_free(&f);
    return ret;
}

/* Encodes a yuvj420p frame as one JPEG. */
static int th_mjpeg(const AVFrame *f, blob_t **out)
{
    *out = NULL;
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return -ENOSYS;
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *in = av_frame_clone(f);
    int ret = -ENOMEM;
    if (!enc || !pkt || !in)
        goto done;
    enc->width = f->width;
    enc->height = f->height;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational){1, 25};
    enc->thread_count = 1;
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * THUMBNAIL_QUALITY;
    in->quality = enc->global_quality;
    in->pict_type = AV_PICTURE_TYPE_I;
    in->pts = 0;
    int averr = avcodec_open2(enc, codec, NULL);
    if (averr >= 0)
        averr = avcodec_send_frame(enc, in);
    if (averr >= 0)
        averr = avcodec_send_frame(enc, NULL);
    if (averr >= 0)
        averr = avcodec_receive_packet(enc, pkt);
    if (averr < 0) {
        ret = th_averr(averr);
        goto done;
    }
    *out = blob_new(pkt->data, (size_t)pkt->size);
    ret = *out ? 0 : -ENOMEM;
done:
    av_frame_free(&in);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    return ret;
}

int thumbnail_encode(const AVFrame *pic, int max_width, blob_t **out)
{
    *out = NULL;
    if (!pic || max_width < 1)
        return -EINVAL;
    int w, h;
    thumbnail_fit(pic->width, pic->height, max_width, &w, &h);
    AVFrame *f = NULL;
    int ret = th_convert(pic, w, h, &f);
    if (ret == 0)
        ret = th_mjpeg(f, out);
    av_frame_free(&f);
    return ret;
}

/* Sends one packet to a decoder, drains it, and leaves it ready for the
 * next one: *frame holds the last picture that came out. */
static int th_decode_one(AVCodecContext *dec, AVPacket *pkt, AVFrame *frame)
{
    int averr = avcodec_send_packet(dec, pkt);
    if (averr >= 0)
        averr = avcodec_send_packet(dec, NULL);
    bool got = false;
    while (averr >= 0) {
        av_frame_unref(frame);
        averr = avcodec_receive_frame(dec, frame);
        if (averr >= 0) {
            got = true;
            break;
        }
    }
    avcodec_flush_buffers(dec);
    if (got)
        return 0;
    return averr == AVERROR_EOF || averr == AVERROR(EAGAIN) ? -EPROTO : th_averr(averr);
}

int thumbnail_scale(const uint8_t *jpeg, size_t size, int width, blob_t **out)
{
    *out = NULL;
    if (width < THUMBNAIL_WIDTH_MIN || width > THUMBNAIL_WIDTH_MAX)
        return -EINVAL;
    if (!jpeg || size < 4 || size > INT32_MAX)
        return -EPROTO;
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return -ENOSYS;
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int ret = -ENOMEM;
    if (!dec || !pkt || !frame || av_new_packet(pkt, (int)size) < 0)
        goto done;
    memcpy(pkt->data, jpeg, size);
    pkt->flags = AV_PKT_FLAG_KEY;
    dec->thread_count = 1;
    int averr = avcodec_open2(dec, codec, NULL);
    if (averr < 0) {
        ret = th_averr(averr);
        goto done;
    }
    if ((ret = th_decode_one(dec, pkt, frame)) < 0)
        goto done;
    if (width >= frame->width) {
        *out = blob_new(jpeg, size); /* never upscaled */
        ret = *out ? 0 : -ENOMEM;
        goto done;
    }
    ret = thumbnail_encode(frame, width, out);
done:
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return ret;
}

/* ---- producer ---------------------------------------------------------- */

int64_t thumbnail_live_ttl_ms(double segment_duration, int playlist_segments, double dvr_window,
                              int64_t ended_ttl_ms)
{
    double sd = segment_duration >= 0.5 && segment_duration <= 60 ? segment_duration : 2.0;
    int nseg = playlist_segments >= 2 && playlist_segments <= 1000 ? playlist_segments : 6;
    double window_s = nseg * sd;
    if (dvr_window > window_s && dvr_window <= 86400) /* the packager's PK_DVR_MAX_S */
        window_s = dvr_window;
    int64_t ended = ended_ttl_ms > 0 ? ended_ttl_ms : 600000;
    int64_t live = 60000 + (int64_t)(4.0 * window_s * 1000);
    return live > ended ? live : ended;
}

int thumbnail_new(const thumbnail_params_t *p, thumbnail_t **out)
{
    *out = NULL;
    if (!p->store || !p->stream_id || strlen(p->stream_id) >= STORE_ID_MAX)
        return -EINVAL;
    thumbnail_t *th = calloc(1, sizeof(*th));
    if (!th)
        return -ENOMEM;
    th->store = p->store;
    snprintf(th->stream_id, sizeof(th->stream_id), "%s", p->stream_id);
    snprintf(th->ctx, sizeof(th->ctx), "%s", p->log_ctx ? p->log_ctx : p->stream_id);
    th->live_ttl_ms = p->live_ttl_ms > 0 ? p->live_ttl_ms : 600000;
    th->ended_ttl_ms = p->ended_ttl_ms > 0 ? p->ended_ttl_ms : 600000;
    *out = th;
    return 0;
}

static void th_decoder_close(thumbnail_t *th)
{
    avcodec_free_context(&th->dec);
    free(th->dec_config);
    th->dec_config = NULL;
    th->dec_config_size = 0;
}

void thumbnail_free(thumbnail_t *th)
{
    if (!th)
        return;
    th_decoder_close(th);
    av_packet_free(&th->pkt);
    av_frame_free(&th->frame);
    free(th);
}

static void th_failed(thumbnail_t *th, const char *what, int err)
{
    if (!th->warned) {
        log_warn(th->ctx, "thumbnail skipped (%s: %s); later failures are logged at debug level",
                 what, strerror(-err));
        th->warned = true;
    } else {
        log_debug(th->ctx, "thumbnail skipped (%s: %s)", what, strerror(-err));
    }
}

static void th_store(thumbnail_t *th, const AVFrame *pic, int64_t t0)
{
    blob_t *jpeg = NULL;
    int ret = thumbnail_encode(pic, THUMBNAIL_WIDTH_MAX, &jpeg);
    if (ret < 0) {
        th_failed(th, "encoding", ret);
        return;
    }
    store_op_t op = {.kind = STORE_OP_PUT, .name = THUMBNAIL_NAME, .blob = jpeg,
                     .ttl_ms = th->live_ttl_ms};
    ret = store_commit(th->store, th->stream_id, &op, 1);
    blob_unref(jpeg);
    if (ret < 0) {
        th_failed(th, "storing", ret);
        return;
    }
    th->stored = true;
    th->count++;
    th->last_ms = (double)(clock_mono_us() - t0) / 1000.0;
    log_debug(th->ctx, "thumbnail from a %dx%d picture in %.1f ms", pic->width, pic->height,
              th->last_ms);
}

void thumbnail_picture(thumbnail_t *th, const AVFrame *pic)
{
    if (th && pic)
        th_store(th, pic, clock_mono_us());
}

static int th_decoder_open(thumbnail_t *th, media_codec_t codec, const uint8_t *config,
                           size_t size)
{
    const AVCodec *c = codec == MEDIA_CODEC_HEVC ? avcodec_find_decoder(AV_CODEC_ID_HEVC)
                       : codec == MEDIA_CODEC_AV1 ? avcodec_find_decoder_by_name("libdav1d")
                                                  : avcodec_find_decoder(AV_CODEC_ID_H264);
    if (!c && codec == MEDIA_CODEC_AV1)
        c = avcodec_find_decoder(AV_CODEC_ID_AV1);
    if (!c)
        return -ENOSYS;
    if ((!th->pkt && !(th->pkt = av_packet_alloc())) ||
        (!th->frame && !(th->frame = av_frame_alloc())))
        return -ENOMEM;
    th->dec = avcodec_alloc_context3(c);
    th->dec_config = malloc(size ? size : 1);
    if (!th->dec || !th->dec_config)
        return -ENOMEM;
    memcpy(th->dec_config, config, size);
    th->dec_config_size = size;
    th->dec_codec = codec;
    th->dec->extradata = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!th->dec->extradata)
        return -ENOMEM;
    memcpy(th->dec->extradata, config, size);
    th->dec->extradata_size = (int)size;
    th->dec->thread_count = 1; /* one picture a segment: threads buy nothing */
    int averr = avcodec_open2(th->dec, c, NULL);
    return averr < 0 ? th_averr(averr) : 0;
}

void thumbnail_keyframe(thumbnail_t *th, media_codec_t codec, const uint8_t *config,
                        size_t config_size, const uint8_t *data, size_t size)
{
    if (!th || !data || size == 0 || size > INT32_MAX)
        return;
    int64_t t0 = clock_mono_us();
    int ret;
    if (th->dec && (codec != th->dec_codec || config_size != th->dec_config_size ||
                    (config_size && memcmp(config, th->dec_config, config_size) != 0)))
        th_decoder_close(th); /* new SPS/PPS from the publisher */
    if (!th->dec && (ret = th_decoder_open(th, codec, config ? config : (const uint8_t *)"",
                                           config ? config_size : 0)) < 0) {
        th_decoder_close(th);
        th_failed(th, "opening the keyframe decoder", ret);
        return;
    }
    if ((ret = av_new_packet(th->pkt, (int)size)) < 0) {
        th_failed(th, "decoding the keyframe", th_averr(ret));
        return;
    }
    memcpy(th->pkt->data, data, size);
    th->pkt->flags = AV_PKT_FLAG_KEY;
    ret = th_decode_one(th->dec, th->pkt, th->frame);
    av_packet_unref(th->pkt);
    if (ret < 0) {
        th_failed(th, "decoding the keyframe", ret);
        return;
    }
    th_store(th, th->frame, t0);
    av_frame_unref(th->frame);
}

void thumbnail_end(thumbnail_t *th)
{
    if (!th || !th->stored)
        return;
    store_op_t op = {.kind = STORE_OP_EXPIRE, .name = THUMBNAIL_NAME, .ttl_ms = th->ended_ttl_ms};
    int ret = store_commit(th->store, th->stream_id, &op, 1);
    if (ret < 0)
        th_failed(th, "setting the ended TTL", ret);
}

double thumbnail_last_ms(const thumbnail_t *th)
{
    return th ? th->last_ms : 0;
}

uint64_t thumbnail_count(const thumbnail_t *th)
{
    return th ? th->count : 0;
}
