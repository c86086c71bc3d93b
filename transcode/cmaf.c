/*
 * CMAF fMP4 writer: one libavformat "mp4" muxer per rendition (one track),
 * configured for fragmented output driven by the caller (frag_custom) with
 * an empty moov in the init segment, default-base-is-moof and no mfra
 * trailer. Output goes to an in-memory dynamic buffer (avio_open_dyn_buf)
 * that is closed and reopened around each init segment and fragment, so
 * every object comes out as its own byte range.
 *
 * Timeline: the tracks of one stream are separate muxers, so each must keep
 * the absolute timestamps the packager gives it (a per-muxer shift to zero
 * would move audio against video). The muxer is therefore told not to
 * shift (avoid_negative_ts disabled, no edit list) and to treat the first
 * fragment as discontinuous (frag_discont), which makes its tfdt the first
 * sample's dts instead of zero; with negative composition offsets, that dts
 * moved later by the first sample's offset, so the tfdt is the first
 * picture's presentation time (the same in every rendition).
 *
 * Thread: the stream's transcode worker owns the muxer. libav error codes
 * stay in this file: they are logged with av_strerror and returned as a
 * negative errno.
 */
#include "cmaf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/mathematics.h>

#include "failure_internal.h"
#include "log.h"

#define CMAF_VIDEO_TIMESCALE 90000

struct cmaf_muxer {
    cmaf_track_kind_t kind;
    const char *log_ctx;
    char name[32]; /* the rendition, for logs */
    AVFormatContext *fmt;
    AVRational tb; /* ours: 1/timescale */
    bool header_written;
    AVPacket *held;
    bool has_held;
    int64_t last_duration;
    int64_t default_duration;
    int pending;
    int64_t frag_start_dts;
    int64_t frag_start_pts;
    /* Where the last fragment ended by the duration its last sample was
     * given: the mp4 muxer starts the next fragment there whatever the next
     * sample's dts says (and refuses an earlier one), so a sample arriving
     * a little before it is moved up to it. */
    bool have_frag_end;
    int64_t frag_end_dts;
    bool held_moved; /* the held sample's dts was moved up (see cmaf_muxer_push) */
};

/* Logs a libav failure and turns it into a negative errno. */
static int cmaf_fail(const cmaf_muxer_t *m, const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof(msg));
    log_error(m->log_ctx, "muxer of %s: %s: %s", m->name, what, msg);
    failure_note("muxer of %s: %s: %s", m->name, what, msg);
    /* AVERROR(e) is -e for errno values; libav's own tags are far below. */
    if (averr < 0 && averr > -4096)
        return averr;
    return -EIO;
}

/* Closes the dynamic buffer, hands its bytes out as a blob, opens a new one. */
static int cmaf_take_output(cmaf_muxer_t *m, blob_t **out)
{
    uint8_t *buf = NULL;
    int size = avio_close_dyn_buf(m->fmt->pb, &buf);
    m->fmt->pb = NULL;
    *out = blob_new(buf, size > 0 ? (size_t)size : 0);
    av_free(buf);
    int ret = avio_open_dyn_buf(&m->fmt->pb);
    if (ret < 0) {
        blob_unref(*out);
        *out = NULL;
        return cmaf_fail(m, "avio_open_dyn_buf", ret);
    }
    return *out ? 0 : -ENOMEM;
}

int cmaf_muxer_new(const cmaf_track_params_t *params, cmaf_muxer_t **out, blob_t **init)
{
    *out = NULL;
    *init = NULL;
    AVDictionary *opts = NULL;
    int ret;

    if (!params->extradata || params->extradata_size == 0 ||
        params->extradata_size > 1 << 20)
        return -EINVAL;
    if (params->kind == CMAF_TRACK_AUDIO && params->sample_rate <= 0)
        return -EINVAL;

    cmaf_muxer_t *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->kind = params->kind;
    m->log_ctx = params->log_ctx;
    snprintf(m->name, sizeof(m->name), "%s",
             params->name ? params->name : params->kind == CMAF_TRACK_VIDEO ? "video" : "audio");
    if (params->kind == CMAF_TRACK_VIDEO) {
        m->tb = (AVRational){1, CMAF_VIDEO_TIMESCALE};
        m->default_duration = CMAF_VIDEO_TIMESCALE / 30;
    } else {
        m->tb = (AVRational){1, params->sample_rate};
        m->default_duration = params->frame_size > 0 ? params->frame_size : 1024;
    }
    m->held = av_packet_alloc();
    if (!m->held) {
        ret = -ENOMEM;
        goto fail;
    }

    ret = avformat_alloc_output_context2(&m->fmt, NULL, "mp4", NULL);
    if (ret < 0) {
        ret = cmaf_fail(m, "avformat_alloc_output_context2", ret);
        goto fail;
    }
    AVStream *st = avformat_new_stream(m->fmt, NULL);
    if (!st) {
        ret = -ENOMEM;
        goto fail;
    }
    AVCodecParameters *par = st->codecpar;
    par->extradata = av_mallocz(params->extradata_size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata) {
        ret = -ENOMEM;
        goto fail;
    }
    memcpy(par->extradata, params->extradata, params->extradata_size);
    par->extradata_size = (int)params->extradata_size;
    if (params->kind == CMAF_TRACK_VIDEO) {
        par->codec_type = AVMEDIA_TYPE_VIDEO;
        par->codec_id = AV_CODEC_ID_H264;
        par->width = params->width;
        par->height = params->height;
    } else {
        par->codec_type = AVMEDIA_TYPE_AUDIO;
        par->codec_id = AV_CODEC_ID_AAC;
        par->sample_rate = params->sample_rate;
        par->frame_size = (int)m->default_duration;
        av_channel_layout_default(&par->ch_layout, params->channels > 0 ? params->channels : 2);
    }
    st->time_base = m->tb;
    /* No shifting and a first fragment "discontinuous from earlier ones":
     * the tfdt carries the packager's absolute dts (see the file comment). */
    m->fmt->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    /* negative_cts_offsets: the mp4 muxer moves a track's decode times
     * later by its first sample's composition offset (trun version 1, signed
     * offsets for B-frames), so a segment's tfdt is where its first picture
     * is shown. Shaka and hls.js take a segment's start from its tfdt: an
     * encoded rung (x264 B-frames, decoded two frames ahead) then starts
     * where a copied source without B-frames does, instead of 67 ms
     * before it, which left holes in their buffers at every switch (issue
     * 18; RFC 8216bis 6.2.4, CMAF's earliest presentation time = tfdt). */
    av_dict_set(&opts, "movflags",
                "+frag_custom+empty_moov+default_base_moof+skip_trailer+frag_discont"
                "+negative_cts_offsets",
                0);
    av_dict_set(&opts, "use_editlist", "0", 0);
    if (params->kind == CMAF_TRACK_VIDEO)
        av_dict_set_int(&opts, "video_track_timescale", CMAF_VIDEO_TIMESCALE, 0);

    ret = avio_open_dyn_buf(&m->fmt->pb);
    if (ret < 0) {
        ret = cmaf_fail(m, "avio_open_dyn_buf", ret);
        goto fail;
    }
    ret = avformat_write_header(m->fmt, &opts);
    if (ret < 0) {
        ret = cmaf_fail(m, "avformat_write_header", ret);
        goto fail;
    }
    m->header_written = true;
    if (av_dict_count(opts) > 0)
        log_warn(m->log_ctx, "cmaf: %d muxer option(s) not recognised", av_dict_count(opts));
    av_dict_free(&opts);

    ret = cmaf_take_output(m, init);
    if (ret < 0)
        goto fail;
    *out = m;
    return 0;

fail:
    av_dict_free(&opts);
    cmaf_muxer_free(m);
    return ret;
}

int cmaf_muxer_timescale(const cmaf_muxer_t *m)
{
    return m->tb.den;
}

int cmaf_muxer_pending(const cmaf_muxer_t *m)
{
    return m->pending;
}

void cmaf_muxer_break(cmaf_muxer_t *m)
{
    m->have_frag_end = false;
    m->held_moved = false;
}

bool cmaf_muxer_span(const cmaf_muxer_t *m, int64_t *start_dts, int64_t *held_dts,
                     int64_t *start_pts)
{
    if (!m->has_held)
        return false;
    *start_dts = m->frag_start_dts;
    *held_dts = m->held->dts;
    if (start_pts)
        *start_pts = m->frag_start_pts;
    return true;
}

/* Gives the held sample to the muxer with the given duration (our units). */
static int cmaf_write_held(cmaf_muxer_t *m, int64_t duration)
{
    AVStream *st = m->fmt->streams[0];
    AVPacket *p = m->held;
    p->duration = av_rescale_q(duration, m->tb, st->time_base);
    p->dts = av_rescale_q(p->dts, m->tb, st->time_base);
    p->pts = av_rescale_q(p->pts, m->tb, st->time_base);
    int ret = av_write_frame(m->fmt, p);
    av_packet_unref(p);
    m->has_held = false;
    if (ret < 0)
        return cmaf_fail(m, "av_write_frame", ret);
    m->last_duration = duration;
    return 0;
}

int cmaf_muxer_push(cmaf_muxer_t *m, const uint8_t *data, size_t size, int64_t dts, int64_t pts,
                    bool keyframe)
{
    int ret;
    if (size == 0 || size > INT32_MAX - AV_INPUT_BUFFER_PADDING_SIZE) {
        failure_note("muxer of %s: a %zu-byte sample", m->name, size);
        return -EINVAL;
    }
    bool moved = false;
    if (!m->has_held && m->have_frag_end && dts != m->frag_end_dts) {
        /* The previous fragment ended where the duration given to its last
         * sample said: an estimate when an LL-HLS part was closed before
         * the next sample came, or a bound (PART-TARGET). The mp4 muxer
         * starts this fragment there whatever this sample's dts says, so it
         * is done here, where the accounting can follow: a sample that
         * comes later than that end is shown that much earlier (as the
         * muxer would: the media stays gapless, the frame before it is
         * shown a little shorter), one that comes earlier is moved up. */
        moved = dts < m->frag_end_dts;
        if (!moved)
            pts -= dts - m->frag_end_dts;
        dts = m->frag_end_dts;
        if (pts < dts)
            pts = dts;
    } else if (m->has_held && m->held_moved && dts <= m->held->dts) {
        /* ...and this one came before that end too (the estimate was more
         * than one sample's distance: irregular timestamps). It follows the
         * moved one by a tick; the samples after it are on their own
         * timestamps again. */
        dts = m->held->dts + 1;
        moved = true;
        if (pts < dts)
            pts = dts;
    }
    if (m->has_held) {
        if (dts <= m->held->dts) {
            log_error(m->log_ctx,
                      "muxer of %s: sample dts %" PRId64 " is not after the previous one's %" PRId64
                      " (1/%d s)",
                      m->name, dts, m->held->dts, m->tb.den);
            failure_note("muxer of %s: sample dts %" PRId64 " (pts %" PRId64
                         ") is not after the previous one's %" PRId64 " (1/%d s)",
                         m->name, dts, pts, m->held->dts, m->tb.den);
            return -EINVAL;
        }
        ret = cmaf_write_held(m, dts - m->held->dts);
        if (ret < 0)
            return ret;
    }
    m->held_moved = moved;
    ret = av_new_packet(m->held, (int)size);
    if (ret < 0)
        return cmaf_fail(m, "av_new_packet", ret);
    memcpy(m->held->data, data, size);
    m->held->dts = dts;
    m->held->pts = pts < dts ? dts : pts;
    m->held->flags = keyframe ? AV_PKT_FLAG_KEY : 0;
    m->held->stream_index = 0;
    m->has_held = true;
    if (m->pending == 0) {
        m->frag_start_dts = dts;
        m->frag_start_pts = m->held->pts;
    }
    m->pending++;
    return 0;
}

int cmaf_muxer_flush(cmaf_muxer_t *m, int64_t end_dts, cmaf_fragment_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!m->has_held)
        return -ENODATA;
    int64_t held_dts = m->held->dts;
    int64_t duration = end_dts > held_dts ? end_dts - held_dts
                       : m->last_duration > 0 ? m->last_duration
                                              : m->default_duration;
    int ret = cmaf_write_held(m, duration);
    if (ret < 0)
        return ret;
    ret = av_write_frame(m->fmt, NULL); /* frag_custom: cut the fragment now */
    if (ret < 0)
        return cmaf_fail(m, "fragment flush", ret);
    ret = cmaf_take_output(m, &out->data);
    if (ret < 0)
        return ret;
    out->start_dts = m->frag_start_dts;
    out->start_pts = m->frag_start_pts;
    out->duration = held_dts + duration - m->frag_start_dts;
    out->samples = m->pending;
    m->pending = 0;
    m->have_frag_end = true;
    m->frag_end_dts = held_dts + duration;
    return 0;
}

void cmaf_muxer_free(cmaf_muxer_t *m)
{
    if (!m)
        return;
    if (m->fmt) {
        if (m->header_written && m->fmt->pb) {
            /* Lets the muxer free its state; the bytes (nothing with
             * skip_trailer, or a last fragment we did not ask for) are dropped. */
            int ret = av_write_trailer(m->fmt);
            if (ret < 0)
                (void)cmaf_fail(m, "av_write_trailer", ret);
        }
        if (m->fmt->pb) {
            uint8_t *buf = NULL;
            avio_close_dyn_buf(m->fmt->pb, &buf);
            av_free(buf);
            m->fmt->pb = NULL;
        }
        avformat_free_context(m->fmt);
    }
    av_packet_free(&m->held);
    free(m);
}
