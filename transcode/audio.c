/*
 * Audio transcoder: copy when the source already is what the audio
 * rendition must be (AAC-LC, 48 kHz, stereo), else decode -> libswresample
 * -> libavcodec "aac" at 128 kb/s. Resampled audio waits in an AVAudioFifo
 * until a whole 1024-sample frame is there. Output timestamps count output
 * samples from the first input packet's time; a gap or jump in the input's
 * own clock (beyond 200 ms) moves that base so audio stays with video.
 *
 * Thread: one transcode worker. libav error codes stay in this file.
 */
#include "audio_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>

#include "codec_config.h"
#include "failure_internal.h"
#include "log.h"

#define AUDIO_RESYNC_MS 200

struct audio_transcoder {
    const char *log_ctx;
    bool have_config;
    bool encoding;
    uint8_t asc[64];
    size_t asc_size;
    aac_config_t in;
    AVCodecContext *dec;
    AVCodecContext *enc;
    SwrContext *swr;
    AVAudioFifo *fifo;
    AVFrame *frame;
    AVFrame *eframe;
    AVPacket *pkt;
    bool config_sent;
    int64_t arrival_us; /* newest input's arrival: carried to the output (latency) */
    bool have_base;
    int64_t base_ms;      /* output time of sample 0 */
    int64_t out_samples;  /* samples given to the encoder */
    int64_t in_samples;   /* input samples decoded since the base */
    int64_t in_base_ms;
    bool warned;
    media_codec_t in_codec; /* the source's: AAC, or MPA / AC3 / OPUS from SRT */
};

static int audio_fail(const audio_transcoder_t *a, const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof(msg));
    log_error(a->log_ctx, "audio: %s: %s", what, msg);
    failure_note("audio transcoder: %s: %s", what, msg);
    if (averr < 0 && averr > -4096)
        return averr;
    return -EIO;
}

static void audio_append(media_packet_t **out, media_packet_t *p)
{
    while (*out)
        out = &(*out)->next;
    p->next = NULL;
    *out = p;
}

int audio_transcoder_new(const char *log_ctx, audio_transcoder_t **out)
{
    audio_transcoder_t *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->log_ctx = log_ctx;
    *out = a;
    return 0;
}

bool audio_transcoder_encoding(const audio_transcoder_t *a)
{
    return a->encoding;
}

static void audio_close(audio_transcoder_t *a)
{
    avcodec_free_context(&a->dec);
    avcodec_free_context(&a->enc);
    swr_free(&a->swr);
    if (a->fifo)
        av_audio_fifo_free(a->fifo);
    a->fifo = NULL;
    av_frame_free(&a->frame);
    av_frame_free(&a->eframe);
    av_packet_free(&a->pkt);
}

/* Gives the allocated decoder context the stream's AudioSpecificConfig and
 * opens it. */
static int audio_open_decoder(audio_transcoder_t *a, const AVCodec *dc)
{
    a->dec->extradata = av_mallocz(a->asc_size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!a->dec->extradata)
        return -ENOMEM;
    memcpy(a->dec->extradata, a->asc, a->asc_size);
    a->dec->extradata_size = (int)a->asc_size;
    int ret = avcodec_open2(a->dec, dc, NULL);
    return ret < 0 ? audio_fail(a, "cannot open the audio decoder", ret) : 0;
}

/* The decoder of a source codec (AAC, or what SRT's MPEG-TS may bring). */
static const AVCodec *audio_find_decoder(media_codec_t codec)
{
    switch (codec) {
    case MEDIA_CODEC_MPA: return avcodec_find_decoder(AV_CODEC_ID_MP3); /* every layer */
    case MEDIA_CODEC_AC3: return avcodec_find_decoder(AV_CODEC_ID_EAC3); /* AC-3 too */
    case MEDIA_CODEC_OPUS: return avcodec_find_decoder(AV_CODEC_ID_OPUS);
    default: return avcodec_find_decoder(AV_CODEC_ID_AAC);
    }
}

static int audio_open(audio_transcoder_t *a)
{
    int ret;
    const AVCodec *dc = audio_find_decoder(a->in_codec);
    const AVCodec *ec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!dc || !ec)
        return -ENOSYS;
    a->dec = avcodec_alloc_context3(dc);
    a->enc = avcodec_alloc_context3(ec);
    a->frame = av_frame_alloc();
    a->eframe = av_frame_alloc();
    a->pkt = av_packet_alloc();
    a->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, AUDIO_OUT_CHANNELS, 4096);
    if (!a->dec || !a->enc || !a->frame || !a->eframe || !a->pkt || !a->fifo)
        return -ENOMEM;
    if ((ret = audio_open_decoder(a, dc)) < 0)
        return ret;

    a->enc->sample_rate = AUDIO_OUT_RATE;
    a->enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&a->enc->ch_layout, AUDIO_OUT_CHANNELS);
    a->enc->bit_rate = AUDIO_OUT_BITRATE;
    a->enc->time_base = (AVRational){1, AUDIO_OUT_RATE};
    a->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(a->enc, ec, NULL)) < 0)
        return audio_fail(a, "cannot open the AAC encoder", ret);
    return 0;
}

/* Resampler for the decoded frame's layout (it may only be known then). */
static int audio_swr(audio_transcoder_t *a, const AVFrame *f)
{
    if (a->swr)
        return 0;
    /* FFmpeg 5.1 takes the layouts through non-const pointers. */
    AVChannelLayout in;
    int ret = av_channel_layout_copy(&in, &f->ch_layout);
    if (ret < 0)
        return audio_fail(a, "av_channel_layout_copy", ret);
    if (in.nb_channels == 0 || in.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in, in.nb_channels > 0 ? in.nb_channels : 2);
    ret = swr_alloc_set_opts2(&a->swr, &a->enc->ch_layout, AV_SAMPLE_FMT_FLTP, AUDIO_OUT_RATE,
                              &in, f->format, f->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in);
    if (ret < 0)
        return audio_fail(a, "swr_alloc_set_opts2", ret);
    if ((ret = swr_init(a->swr)) < 0)
        return audio_fail(a, "swr_init", ret);
    return 0;
}

static int audio_receive(audio_transcoder_t *a, media_packet_t **out)
{
    for (;;) {
        int ret = avcodec_receive_packet(a->enc, a->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return audio_fail(a, "avcodec_receive_packet", ret);
        media_packet_t *p = media_packet_new(MEDIA_PACKET_AUDIO, (size_t)a->pkt->size);
        if (!p) {
            av_packet_unref(a->pkt);
            return -ENOMEM;
        }
        memcpy(p->data, a->pkt->data, (size_t)a->pkt->size);
        p->codec = MEDIA_CODEC_AAC;
        int64_t pts = a->pkt->pts != AV_NOPTS_VALUE ? a->pkt->pts : 0;
        p->dts_ms = p->pts_ms = a->base_ms + pts * 1000 / AUDIO_OUT_RATE;
        p->keyframe = true;
        p->arrival_us = a->arrival_us;
        av_packet_unref(a->pkt);
        audio_append(out, p);
    }
}

/* Encodes whole frames from the FIFO (all of it, padded, when flushing). */
static int audio_encode_fifo(audio_transcoder_t *a, bool flush, media_packet_t **out)
{
    int fs = a->enc->frame_size > 0 ? a->enc->frame_size : 1024;
    while (av_audio_fifo_size(a->fifo) >= fs || (flush && av_audio_fifo_size(a->fifo) > 0)) {
        int n = av_audio_fifo_size(a->fifo) < fs ? av_audio_fifo_size(a->fifo) : fs;
        AVFrame *f = a->eframe;
        av_frame_unref(f);
        f->nb_samples = n;
        f->format = AV_SAMPLE_FMT_FLTP;
        f->sample_rate = AUDIO_OUT_RATE;
        int ret = av_channel_layout_copy(&f->ch_layout, &a->enc->ch_layout);
        if (ret < 0 || (ret = av_frame_get_buffer(f, 0)) < 0)
            return audio_fail(a, "av_frame_get_buffer", ret);
        if (av_audio_fifo_read(a->fifo, (void **)f->data, n) < n)
            return -EIO;
        f->pts = a->out_samples;
        a->out_samples += n;
        if ((ret = avcodec_send_frame(a->enc, f)) < 0)
            return audio_fail(a, "avcodec_send_frame", ret);
        if ((ret = audio_receive(a, out)) < 0)
            return ret;
    }
    return 0;
}

static int audio_decode(audio_transcoder_t *a, const media_packet_t *in, media_packet_t **out)
{
    if (!a->have_base) {
        a->have_base = true;
        a->base_ms = a->in_base_ms = in->dts_ms;
    } else if (a->in.sample_rate > 0) {
        int64_t expect = a->in_base_ms + a->in_samples * 1000 / a->in.sample_rate;
        int64_t d = in->dts_ms - expect;
        if (d > AUDIO_RESYNC_MS || d < -AUDIO_RESYNC_MS) {
            /* The publisher's audio clock jumped: follow it. */
            a->base_ms += d;
            a->in_base_ms += d;
        }
    }
    a->arrival_us = in->arrival_us;
    int ret = av_new_packet(a->pkt, (int)in->size);
    if (ret < 0)
        return audio_fail(a, "av_new_packet", ret);
    memcpy(a->pkt->data, in->data, in->size);
    ret = avcodec_send_packet(a->dec, a->pkt);
    av_packet_unref(a->pkt);
    if (ret < 0) {
        if (!a->warned)
            audio_fail(a, "decoding (further errors not logged)", ret);
        a->warned = true;
        return 0;
    }
    for (;;) {
        ret = avcodec_receive_frame(a->dec, a->frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            break;
        if (ret < 0)
            return audio_fail(a, "avcodec_receive_frame", ret);
        a->in_samples += a->frame->nb_samples;
        if (a->in.sample_rate <= 0) /* not AAC: the decoder says (the resync needs it) */
            a->in.sample_rate = a->frame->sample_rate;
        if ((ret = audio_swr(a, a->frame)) < 0)
            return ret;
        int max = swr_get_out_samples(a->swr, a->frame->nb_samples);
        if (max > 0 && (ret = av_audio_fifo_realloc(a->fifo, av_audio_fifo_size(a->fifo) + max)) < 0)
            return audio_fail(a, "av_audio_fifo_realloc", ret);
        uint8_t *planes[AUDIO_OUT_CHANNELS];
        AVFrame *tmp = av_frame_alloc();
        if (!tmp)
            return -ENOMEM;
        tmp->nb_samples = max > 0 ? max : 1;
        tmp->format = AV_SAMPLE_FMT_FLTP;
        tmp->sample_rate = AUDIO_OUT_RATE;
        if ((ret = av_channel_layout_copy(&tmp->ch_layout, &a->enc->ch_layout)) < 0 ||
            (ret = av_frame_get_buffer(tmp, 0)) < 0) {
            av_frame_free(&tmp);
            return audio_fail(a, "av_frame_get_buffer", ret);
        }
        for (int c = 0; c < AUDIO_OUT_CHANNELS; c++)
            planes[c] = tmp->data[c];
        int got = swr_convert(a->swr, planes, tmp->nb_samples,
                              (const uint8_t **)a->frame->extended_data, a->frame->nb_samples);
        av_frame_unref(a->frame);
        if (got > 0 && av_audio_fifo_write(a->fifo, (void **)planes, got) < got) {
            av_frame_free(&tmp);
            return -ENOMEM;
        }
        av_frame_free(&tmp);
        if (got < 0)
            return audio_fail(a, "swr_convert", got);
    }
    return audio_encode_fifo(a, false, out);
}

static int audio_send_config(audio_transcoder_t *a, media_packet_t **out);

/* A source that is not AAC (SRT's MPEG audio, AC-3, Opus): always decoded
 * and encoded once; a new configuration gets a new decoder. */
static int audio_push_other_config(audio_transcoder_t *a, media_packet_t *pkt,
                                   media_packet_t **out)
{
    const char *name = pkt->codec == MEDIA_CODEC_MPA   ? "MPEG audio"
                       : pkt->codec == MEDIA_CODEC_AC3 ? "AC-3"
                       : pkt->codec == MEDIA_CODEC_OPUS ? "Opus"
                                                        : NULL;
    if (!name || pkt->size > sizeof(a->asc)) {
        media_packet_free(pkt);
        return 0;
    }
    bool same = a->have_config && a->in_codec == pkt->codec && pkt->size == a->asc_size &&
                memcmp(pkt->data, a->asc, pkt->size) == 0;
    if (same && a->encoding) {
        media_packet_free(pkt);
        return 0;
    }
    memcpy(a->asc, pkt->data, pkt->size);
    a->asc_size = pkt->size;
    a->in_codec = pkt->codec;
    memset(&a->in, 0, sizeof(a->in)); /* the rate comes from the first frame */
    a->have_config = true;
    media_packet_free(pkt);
    int ret;
    if (!a->encoding) {
        log_info(a->log_ctx, "audio: %s -> AAC-LC %d Hz stereo %d kb/s", name, AUDIO_OUT_RATE,
                 AUDIO_OUT_BITRATE / 1000);
        a->encoding = true;
        if ((ret = audio_open(a)) < 0)
            return ret;
    } else {
        avcodec_free_context(&a->dec);
        swr_free(&a->swr);
        const AVCodec *dc = audio_find_decoder(a->in_codec);
        a->dec = dc ? avcodec_alloc_context3(dc) : NULL;
        if (!a->dec)
            return -ENOMEM;
        if ((ret = audio_open_decoder(a, dc)) < 0)
            return ret;
    }
    return audio_send_config(a, out);
}

static int audio_send_config(audio_transcoder_t *a, media_packet_t **out)
{
    if (a->config_sent)
        return 0;
    media_packet_t *cfg = media_packet_new(MEDIA_PACKET_AUDIO_CONFIG,
                                           (size_t)a->enc->extradata_size);
    if (!cfg)
        return -ENOMEM;
    memcpy(cfg->data, a->enc->extradata, (size_t)a->enc->extradata_size);
    cfg->codec = MEDIA_CODEC_AAC;
    audio_append(out, cfg);
    a->config_sent = true;
    return 0;
}

int audio_transcoder_push(audio_transcoder_t *a, media_packet_t *pkt, media_packet_t **out)
{
    int ret = 0;
    if (pkt->type == MEDIA_PACKET_AUDIO_CONFIG && pkt->codec != MEDIA_CODEC_AAC &&
        pkt->codec != MEDIA_CODEC_NONE)
        return audio_push_other_config(a, pkt, out);
    if (pkt->type == MEDIA_PACKET_AUDIO_CONFIG) {
        aac_config_t c;
        if (aac_parse_asc(pkt->data, pkt->size, &c) < 0 || pkt->size > sizeof(a->asc)) {
            audio_append(out, pkt); /* the packager logs and ignores it */
            return 0;
        }
        bool same = a->have_config && pkt->size == a->asc_size &&
                    memcmp(pkt->data, a->asc, pkt->size) == 0;
        if (same && a->encoding) {
            media_packet_free(pkt);
            return 0;
        }
        bool copy = c.object_type == 2 && c.sample_rate == AUDIO_OUT_RATE &&
                    c.channels == AUDIO_OUT_CHANNELS;
        if (!same && a->encoding) {
            /* A new source format mid-stream: a new decoder, same output. */
            avcodec_free_context(&a->dec);
            swr_free(&a->swr);
        }
        memcpy(a->asc, pkt->data, pkt->size);
        a->asc_size = pkt->size;
        a->in = c;
        a->in_codec = MEDIA_CODEC_AAC;
        a->have_config = true;
        if (copy && !a->encoding) {
            audio_append(out, pkt);
            return 0;
        }
        media_packet_free(pkt);
        if (!a->encoding) {
            log_info(a->log_ctx, "audio: AAC object type %d, %d Hz, %d ch -> AAC-LC %d Hz stereo "
                     "%d kb/s", c.object_type, c.sample_rate, c.channels, AUDIO_OUT_RATE,
                     AUDIO_OUT_BITRATE / 1000);
            a->encoding = true;
            if ((ret = audio_open(a)) < 0)
                return ret;
        } else {
            const AVCodec *dc = audio_find_decoder(a->in_codec);
            a->dec = avcodec_alloc_context3(dc);
            if (!a->dec)
                return -ENOMEM;
            if ((ret = audio_open_decoder(a, dc)) < 0)
                return ret;
        }
        return audio_send_config(a, out);
    }
    if (!a->encoding) {
        audio_append(out, pkt);
        return 0;
    }
    if (!a->dec) {
        media_packet_free(pkt);
        return 0;
    }
    ret = audio_decode(a, pkt, out);
    media_packet_free(pkt);
    return ret;
}

int audio_transcoder_flush(audio_transcoder_t *a, media_packet_t **out)
{
    if (!a->encoding || !a->enc)
        return 0;
    int ret = audio_encode_fifo(a, true, out);
    if (ret < 0)
        return ret;
    if ((ret = avcodec_send_frame(a->enc, NULL)) < 0)
        return audio_fail(a, "encoder flush", ret);
    return audio_receive(a, out);
}

void audio_transcoder_free(audio_transcoder_t *a)
{
    if (!a)
        return;
    audio_close(a);
    free(a);
}
