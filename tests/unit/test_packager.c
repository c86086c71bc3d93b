/*
 * Tests for transcode/packager.c through the public transcode API, with real
 * media: a few seconds of H.264 (libx264, B-frames, fixed GOP) and AAC (the
 * native encoder) are encoded here with libavcodec, turned into what ingest
 * hands over (avcC + AVCC access units, AudioSpecificConfig + raw frames,
 * millisecond timestamps), fed through a media queue, and the memory store's
 * objects are checked: segment count, cuts at keyframes, playlists, master.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "byteio.h"
#include "log.h"
#include "media.h"
#include "packager_internal.h"
#include "store.h"
#include "transcode.h"

#define FPS 30
#define GOP 45 /* 1.5 s */
#define SECONDS 6
#define WIDTH 320
#define HEIGHT 240
#define RATE 48000

typedef struct enc_packet {
    media_packet_type_t type;
    int64_t dts_ms, pts_ms;
    bool key;
    uint8_t *data;
    size_t size;
} enc_packet_t;

typedef struct fixture {
    uint8_t avcc[256];
    size_t avcc_size;
    uint8_t asc[16];
    size_t asc_size;
    enc_packet_t *pkts;
    size_t npkts, cap;
} fixture_t;

static void fx_add(fixture_t *fx, media_packet_type_t type, int64_t dts, int64_t pts, bool key,
                   const uint8_t *data, size_t size)
{
    if (fx->npkts == fx->cap) {
        fx->cap = fx->cap ? fx->cap * 2 : 256;
        fx->pkts = realloc(fx->pkts, fx->cap * sizeof(*fx->pkts));
        assert_non_null(fx->pkts);
    }
    enc_packet_t *p = &fx->pkts[fx->npkts++];
    p->type = type;
    p->dts_ms = dts;
    p->pts_ms = pts;
    p->key = key;
    p->data = malloc(size);
    memcpy(p->data, data, size);
    p->size = size;
}

/* Finds the next Annex B NAL unit at or after pos: its payload starts at
 * *nal_start and ends at the returned offset. */
static size_t annexb_next(const uint8_t *d, size_t n, size_t pos, size_t *nal_start)
{
    size_t i = pos;
    while (i + 3 <= n && !(d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1))
        i++;
    if (i + 3 > n)
        return n;
    *nal_start = i + 3;
    size_t j = *nal_start;
    while (j + 3 <= n && !(d[j] == 0 && d[j + 1] == 0 && (d[j + 2] == 1 || (d[j + 2] == 0 && j + 3 < n && d[j + 3] == 1))))
        j++;
    return j + 3 <= n ? j : n;
}

/* Annex B access unit -> AVCC (4-byte lengths). */
static size_t annexb_to_avcc(const uint8_t *d, size_t n, uint8_t *out)
{
    size_t pos = 0, o = 0, start;
    while (pos < n) {
        size_t end = annexb_next(d, n, pos, &start);
        if (end == n && start >= n)
            break;
        if (end <= start)
            break;
        byteio_put_be32(out + o, (uint32_t)(end - start));
        memcpy(out + o + 4, d + start, end - start);
        o += 4 + end - start;
        pos = end;
    }
    return o;
}

static void build_avcc(fixture_t *fx, const uint8_t *ex, size_t n)
{
    const uint8_t *sps = NULL, *pps = NULL;
    size_t sps_len = 0, pps_len = 0, pos = 0, start;
    while (pos < n) {
        size_t end = annexb_next(ex, n, pos, &start);
        if (end <= start)
            break;
        if ((ex[start] & 0x1f) == 7) {
            sps = ex + start;
            sps_len = end - start;
        } else if ((ex[start] & 0x1f) == 8) {
            pps = ex + start;
            pps_len = end - start;
        }
        pos = end;
    }
    assert_non_null(sps);
    assert_non_null(pps);
    uint8_t *a = fx->avcc;
    a[0] = 1;
    a[1] = sps[1];
    a[2] = sps[2];
    a[3] = sps[3];
    a[4] = 0xff;
    a[5] = 0xe1;
    byteio_put_be16(a + 6, (uint16_t)sps_len);
    memcpy(a + 8, sps, sps_len);
    size_t o = 8 + sps_len;
    a[o++] = 1;
    byteio_put_be16(a + o, (uint16_t)pps_len);
    memcpy(a + o + 2, pps, pps_len);
    fx->avcc_size = o + 2 + pps_len;
}

static void encode_video(fixture_t *fx)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    assert_non_null(codec);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    c->width = WIDTH;
    c->height = HEIGHT;
    c->time_base = (AVRational){1, FPS};
    c->framerate = (AVRational){FPS, 1};
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->gop_size = GOP;
    c->max_b_frames = 2;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(c->priv_data, "preset", "ultrafast", 0);
    av_opt_set(c->priv_data, "x264-params", "keyint=45:min-keyint=45:scenecut=0:bframes=2:threads=1", 0);
    assert_int_equal(avcodec_open2(c, codec, NULL), 0);
    build_avcc(fx, c->extradata, (size_t)c->extradata_size);

    AVFrame *f = av_frame_alloc();
    f->format = c->pix_fmt;
    f->width = WIDTH;
    f->height = HEIGHT;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    AVPacket *pkt = av_packet_alloc();
    uint8_t *buf = malloc(1 << 20);
    for (int i = 0; i <= FPS * SECONDS; i++) {
        AVFrame *in = NULL;
        if (i < FPS * SECONDS) {
            assert_int_equal(av_frame_make_writable(f), 0);
            for (int y = 0; y < HEIGHT; y++)
                for (int x = 0; x < WIDTH; x++)
                    f->data[0][y * f->linesize[0] + x] = (uint8_t)(x + y + i * 3);
            for (int y = 0; y < HEIGHT / 2; y++)
                for (int x = 0; x < WIDTH / 2; x++) {
                    f->data[1][y * f->linesize[1] + x] = (uint8_t)(128 + y + i);
                    f->data[2][y * f->linesize[2] + x] = (uint8_t)(64 + x + i * 2);
                }
            f->pts = i;
            in = f;
        }
        assert_int_equal(avcodec_send_frame(c, in), 0);
        while (avcodec_receive_packet(c, pkt) == 0) {
            size_t n = annexb_to_avcc(pkt->data, (size_t)pkt->size, buf);
            /* +100 ms: the encoder's first dts is negative with B-frames. */
            int64_t dts = av_rescale(pkt->dts, 1000, FPS) + 100;
            int64_t pts = av_rescale(pkt->pts, 1000, FPS) + 100;
            fx_add(fx, MEDIA_PACKET_VIDEO, dts, pts, pkt->flags & AV_PKT_FLAG_KEY, buf, n);
            av_packet_unref(pkt);
        }
    }
    free(buf);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
}

static void encode_audio(fixture_t *fx)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    assert_non_null(codec);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    c->sample_rate = RATE;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->bit_rate = 128000;
    c->time_base = (AVRational){1, RATE};
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_channel_layout_default(&c->ch_layout, 2);
    assert_int_equal(avcodec_open2(c, codec, NULL), 0);
    assert_true(c->extradata_size > 0 && c->extradata_size <= 16);
    memcpy(fx->asc, c->extradata, (size_t)c->extradata_size);
    fx->asc_size = (size_t)c->extradata_size;

    AVFrame *f = av_frame_alloc();
    f->format = c->sample_fmt;
    f->nb_samples = c->frame_size;
    f->sample_rate = RATE;
    av_channel_layout_copy(&f->ch_layout, &c->ch_layout);
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    AVPacket *pkt = av_packet_alloc();
    int64_t t = 0;
    int frames = RATE * SECONDS / c->frame_size;
    for (int i = 0; i <= frames; i++) {
        AVFrame *in = NULL;
        if (i < frames) {
            assert_int_equal(av_frame_make_writable(f), 0);
            for (int ch = 0; ch < 2; ch++) {
                float *s = (float *)f->data[ch];
                for (int k = 0; k < f->nb_samples; k++)
                    s[k] = 0.3f * sinf(2 * 3.14159265f * 440 * (float)(t + k) / RATE);
            }
            f->pts = t;
            t += f->nb_samples;
            in = f;
        }
        assert_int_equal(avcodec_send_frame(c, in), 0);
        while (avcodec_receive_packet(c, pkt) == 0) {
            int64_t ms = av_rescale(pkt->pts, 1000, RATE) + 100;
            if (ms >= 100) /* priming samples sit before zero */
                fx_add(fx, MEDIA_PACKET_AUDIO, ms, ms, true, pkt->data, (size_t)pkt->size);
            av_packet_unref(pkt);
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
}

static int enc_cmp(const void *a, const void *b)
{
    const enc_packet_t *x = a, *y = b;
    if (x->dts_ms != y->dts_ms)
        return x->dts_ms < y->dts_ms ? -1 : 1;
    return (int)x->type - (int)y->type;
}

static fixture_t *fx_global;

static int group_setup(void **state)
{
    (void)state;
    log_configure(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    av_log_set_level(AV_LOG_ERROR);
    fixture_t *fx = calloc(1, sizeof(*fx));
    encode_video(fx);
    encode_audio(fx);
    /* Interleaved by dts, as an FLV publisher sends. */
    qsort(fx->pkts, fx->npkts, sizeof(*fx->pkts), enc_cmp);
    fx_global = fx;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < fx_global->npkts; i++)
        free(fx_global->pkts[i].data);
    free(fx_global->pkts);
    free(fx_global);
    return 0;
}

enum {
    FEED_ALL = 0,
    FEED_NO_AUDIO = 1,
    FEED_NO_VIDEO = 2,
    FEED_JUMP = 4,
    FEED_BAD_CONFIG = 8,
    FEED_DROPPED = 16, /* the EOS says the publisher dropped */
    FEED_GARBAGE = 32, /* video from 1.6 s to 4.4 s: NAL lengths past the end */
};

static media_packet_t *packet(media_packet_type_t type, const void *data, size_t size,
                              int64_t dts, int64_t pts, bool key)
{
    media_packet_t *p = media_packet_new(type, size);
    assert_non_null(p);
    if (size)
        memcpy(p->data, data, size);
    p->dts_ms = dts;
    p->pts_ms = pts;
    p->keyframe = key;
    return p;
}

static void push(media_queue_t *q, media_packet_type_t type, const void *data, size_t size,
                 int64_t dts, int64_t pts, bool key)
{
    assert_int_equal(media_queue_push(q, packet(type, data, size, dts, pts, key)), 0);
}

static void feed(transcode_t *t, const char *id, int flags)
{
    media_queue_t *q = media_queue_new(64u << 20);
    assert_non_null(q);
    assert_int_equal(transcode_stream_start(t, id, q), 0);
    if (flags & FEED_BAD_CONFIG) {
        static const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        push(q, MEDIA_PACKET_VIDEO_CONFIG, junk, sizeof(junk), 0, 0, false);
        push(q, MEDIA_PACKET_AUDIO_CONFIG, junk, 1, 0, 0, false);
    }
    if (!(flags & FEED_NO_VIDEO))
        push(q, MEDIA_PACKET_VIDEO_CONFIG, fx_global->avcc, fx_global->avcc_size, 0, 0, false);
    if (!(flags & FEED_NO_AUDIO))
        push(q, MEDIA_PACKET_AUDIO_CONFIG, fx_global->asc, fx_global->asc_size, 0, 0, false);
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        if ((e->type == MEDIA_PACKET_VIDEO && (flags & FEED_NO_VIDEO)) ||
            (e->type == MEDIA_PACKET_AUDIO && (flags & FEED_NO_AUDIO)))
            continue;
        int64_t shift = (flags & FEED_JUMP) && e->dts_ms >= 2500 ? 50000 : 0;
        if ((flags & FEED_GARBAGE) && e->type == MEDIA_PACKET_VIDEO && e->dts_ms >= 1600 &&
            e->dts_ms < 4400) {
            uint8_t *junk = malloc(e->size);
            assert_non_null(junk);
            memset(junk, 0xff, e->size); /* every length prefix says 4 GiB */
            push(q, e->type, junk, e->size, e->dts_ms, e->pts_ms, e->key);
            free(junk);
            continue;
        }
        push(q, e->type, e->data, e->size, e->dts_ms + shift, e->pts_ms + shift, e->key);
    }
    media_packet_t *eos = media_packet_new(MEDIA_PACKET_EOS, 0);
    assert_non_null(eos);
    eos->dropped = (flags & FEED_DROPPED) != 0;
    assert_int_equal(media_queue_push(q, eos), 0);
    media_queue_unref(q);
}

static char *get_text(store_t *st, const char *id, const char *name)
{
    blob_t *b = NULL;
    if (store_get(st, id, name, &b) != 0)
        return NULL;
    char *s = malloc(b->size + 1);
    memcpy(s, b->data, b->size);
    s[b->size] = '\0';
    blob_unref(b);
    return s;
}

static int count_str(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Reads the first trun of a moof: the first sample's flags and the tfdt. */
static void inspect_fragment(const uint8_t *d, size_t n, bool *first_is_sync, int64_t *tfdt,
                             int *samples)
{
    *first_is_sync = false;
    *tfdt = -1;
    *samples = 0;
    byteio_reader_t br;
    byteio_init(&br, d, n);
    /* moof > traf > (tfhd, tfdt, trun) */
    uint32_t size = byteio_be32(&br);
    uint32_t type = byteio_be32(&br);
    assert_int_equal(type, 0x6d6f6f66); /* moof */
    const uint8_t *end = d + size;
    const uint8_t *p = br.pos;
    while (p + 8 <= end) {
        byteio_init(&br, p, (size_t)(end - p));
        uint32_t bs = byteio_be32(&br), bt = byteio_be32(&br);
        if (bt == 0x74726166) { /* traf: descend */
            end = p + bs;
            p += 8;
            continue;
        }
        if (bt == 0x74666474) { /* tfdt */
            uint8_t v = byteio_u8(&br);
            byteio_skip(&br, 3);
            *tfdt = v == 1 ? (int64_t)byteio_be64(&br) : byteio_be32(&br);
        } else if (bt == 0x7472756e) { /* trun */
            byteio_u8(&br);
            uint32_t fl = byteio_be24(&br);
            *samples = (int)byteio_be32(&br);
            if (fl & 1)
                byteio_skip(&br, 4);
            uint32_t sflags = 0;
            if (fl & 4) {
                sflags = byteio_be32(&br);
            } else if (fl & 0x400) {
                if (fl & 0x100)
                    byteio_skip(&br, 4);
                if (fl & 0x200)
                    byteio_skip(&br, 4);
                sflags = byteio_be32(&br);
            }
            *first_is_sync = (sflags & 0x00010000) == 0; /* sample_is_non_sync_sample */
        }
        p += bs;
    }
}

/* A segment is one or more moof+mdat pairs (one per LL-HLS part): the
 * first moof's sync flag and tfdt, and the samples of all of them. */
static void inspect_segment(const uint8_t *d, size_t n, bool *first_is_sync, int64_t *tfdt,
                            int *samples)
{
    int total = 0, moofs = 0;
    size_t at = 0;
    while (at + 8 <= n) {
        byteio_reader_t br;
        byteio_init(&br, d + at, n - at);
        uint32_t bs = byteio_be32(&br), bt = byteio_be32(&br);
        assert_true(bs >= 8 && at + bs <= n);
        if (bt == 0x6d6f6f66) { /* moof */
            bool sync;
            int64_t t;
            int k;
            inspect_fragment(d + at, bs, &sync, &t, &k);
            if (moofs++ == 0) {
                *first_is_sync = sync;
                *tfdt = t;
            }
            total += k;
        }
        at += bs;
    }
    assert_true(moofs > 0);
    *samples = total;
}

static void check_segments(store_t *st, const char *id, const char *rend, int64_t first,
                           int64_t count, bool video)
{
    char name[64];
    int64_t prev_tfdt = -1;
    for (int64_t n = first; n < first + count; n++) {
        snprintf(name, sizeof(name), "%s/%lld.m4s", rend, (long long)n);
        blob_t *b = NULL;
        assert_int_equal(store_get(st, id, name, &b), 0);
        bool sync;
        int64_t tfdt;
        int samples;
        inspect_segment(b->data, b->size, &sync, &tfdt, &samples);
        if (video) {
            assert_true(sync); /* every video segment starts with a keyframe */
            if (n < first + count - 1)
                assert_int_equal(samples, GOP);
        }
        assert_true(tfdt > prev_tfdt);
        prev_tfdt = tfdt;
        blob_unref(b);
    }
}

static store_t *open_store(void)
{
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    return st;
}

static transcode_t *open_transcode_ex(store_t *st, double part_duration)
{
    transcode_params_t p;
    transcode_params_default(&p);
    assert_true(p.segment_duration == 2.0 && p.playlist_segments == 6);
    assert_true(p.part_duration == 0.333);
    p.store = st;
    p.part_duration = part_duration;
    assert_true(p.msn_from_clock);
    p.msn_from_clock = false; /* numbers from 0, as the checks below expect */
    p.segment_duration = 1.0; /* GOP is 1.5 s: cuts wait for keyframes */
    p.playlist_segments = 3;
    transcode_t *t = NULL;
    assert_int_equal(transcode_new(&p, &t), 0);
    return t;
}

/* Classic HLS (no parts): the playlists' exact text is checked below. */
static transcode_t *open_transcode(store_t *st)
{
    return open_transcode_ex(st, 0);
}

static void test_av_stream(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    feed(t, "av", FEED_ALL);
    transcode_free(t);

    char *master = get_text(st, "av", "master.m3u8");
    assert_non_null(master);
    assert_non_null(strstr(master, "#EXT-X-INDEPENDENT-SEGMENTS\n"));
    assert_non_null(strstr(master, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\","
                                   "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
                                   "URI=\"audio/index.m3u8\"\n"));
    assert_non_null(strstr(master, ",CODECS=\"avc1."));
    assert_non_null(strstr(master, ",mp4a.40.2\",RESOLUTION=320x240,FRAME-RATE=30.000,"
                                   "AUDIO=\"audio\"\n240p/index.m3u8\n"));
    long bw = atol(strstr(master, "BANDWIDTH=") + 10);
    long avg = atol(strstr(master, "AVERAGE-BANDWIDTH=") + 18);
    assert_true(bw >= avg && avg > 128000);

    /* 6 s at a 1.5 s GOP: 4 segments; window 3: 1..3 listed, 0 expiring. */
    char *video = get_text(st, "av", "240p/index.m3u8");
    assert_non_null(video);
    assert_non_null(strstr(video, "#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
                                  "#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert_int_equal(count_str(video, "#EXTINF:1.500,\n"), 3);
    assert_int_equal(count_str(video, "#EXT-X-PROGRAM-DATE-TIME:"), 3);
    assert_non_null(strstr(video, "1.m4s\n"));
    assert_non_null(strstr(video, "3.m4s\n#EXT-X-ENDLIST\n"));
    char *audio = get_text(st, "av", "audio/index.m3u8");
    assert_non_null(audio);
    assert_int_equal(count_str(audio, "#EXTINF:"), 3);
    assert_non_null(strstr(audio, "#EXT-X-MEDIA-SEQUENCE:1\n"));
    assert_non_null(strstr(audio, "3.m4s\n#EXT-X-ENDLIST\n"));

    check_segments(st, "av", "240p", 0, 4, true);
    check_segments(st, "av", "audio", 0, 4, false);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "av", "240p/4.m4s", &b), -ENOENT);
    assert_int_equal(store_get(st, "av", "240p/init.mp4", &b), 0);
    assert_non_null(memmem(b->data, b->size, "avcC", 4));
    blob_unref(b);
    assert_int_equal(store_get(st, "av", "audio/init.mp4", &b), 0);
    assert_non_null(memmem(b->data, b->size, "esds", 4));
    blob_unref(b);

    free(master);
    free(video);
    free(audio);
    store_close(st);
}

static void test_msn_continues_across_broadcasts(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    feed(t, "again", FEED_ALL);
    feed(t, "again", FEED_ALL); /* starts while the first may still run */
    transcode_free(t);
    char *video = get_text(st, "again", "240p/index.m3u8");
    assert_non_null(video);
    assert_non_null(strstr(video, "#EXT-X-MEDIA-SEQUENCE:5\n"));
    assert_non_null(strstr(video, "7.m4s\n#EXT-X-ENDLIST\n"));
    check_segments(st, "again", "240p", 4, 4, true);
    free(video);
    store_close(st);
}

/* LL-HLS: every segment is published part by part first; the parts of a
 * segment, back to back, are exactly the segment's bytes, the first one
 * starts with a keyframe, and video parts hold ten frames (0.333 s at
 * 30 fps) but the last of a segment. */
static void check_parts(store_t *st, const char *id, const char *rend, int64_t msn,
                        bool video)
{
    char name[64];
    snprintf(name, sizeof(name), "%s/%lld.m4s", rend, (long long)msn);
    blob_t *seg = NULL;
    assert_int_equal(store_get(st, id, name, &seg), 0);
    size_t at = 0;
    int p = 0;
    for (;; p++) {
        blob_t *part = NULL;
        snprintf(name, sizeof(name), "%s/%lld.%d.m4s", rend, (long long)msn, p);
        if (store_get(st, id, name, &part) != 0)
            break;
        assert_true(at + part->size <= seg->size);
        assert_memory_equal(seg->data + at, part->data, part->size);
        at += part->size;
        bool sync;
        int64_t tfdt;
        int samples;
        inspect_segment(part->data, part->size, &sync, &tfdt, &samples);
        if (video && p == 0)
            assert_true(sync);
        if (video && at < seg->size)
            assert_int_equal(samples, 10);
        blob_unref(part);
    }
    assert_true(p >= 2);
    assert_int_equal(at, seg->size);
    blob_unref(seg);
}

static void test_ll_parts(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode_ex(st, 0.333);
    feed(t, "ll", FEED_ALL);
    transcode_free(t);
    for (int64_t n = 0; n < 4; n++) {
        check_parts(st, "ll", "240p", n, true);
        check_parts(st, "ll", "audio", n, false);
    }
    /* An ended playlist names whole segments only. */
    char *video = get_text(st, "ll", "240p/index.m3u8");
    assert_non_null(video);
    assert_null(strstr(video, "#EXT-X-PART:"));
    assert_null(strstr(video, "#EXT-X-PRELOAD-HINT"));
    assert_non_null(strstr(video, "#EXT-X-ENDLIST\n"));
    free(video);
    store_close(st);
}

static void test_video_only(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    feed(t, "vo", FEED_NO_AUDIO);
    transcode_free(t);
    char *master = get_text(st, "vo", "master.m3u8");
    assert_non_null(master);
    assert_null(strstr(master, "EXT-X-MEDIA:"));
    assert_null(strstr(master, "mp4a"));
    assert_non_null(strstr(master, "240p/index.m3u8"));
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "vo", "audio/index.m3u8", &b), -ENOENT);
    check_segments(st, "vo", "240p", 0, 4, true);
    free(master);
    store_close(st);
}

static void test_audio_only(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    feed(t, "ao", FEED_NO_VIDEO);
    transcode_free(t);
    char *master = get_text(st, "ao", "master.m3u8");
    assert_non_null(master);
    assert_non_null(strstr(master, "CODECS=\"mp4a.40.2\"\naudio/index.m3u8\n"));
    char *audio = get_text(st, "ao", "audio/index.m3u8");
    assert_non_null(audio);
    /* Cut by time: ~1 s segments over 6 s. */
    assert_non_null(strstr(audio, "#EXT-X-TARGETDURATION:1\n"));
    assert_non_null(strstr(audio, "5.m4s\n#EXT-X-ENDLIST\n"));
    check_segments(st, "ao", "audio", 0, 6, false);
    free(master);
    free(audio);
    store_close(st);
}

static void test_timestamp_jump_and_bad_config(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    feed(t, "jump", FEED_JUMP | FEED_BAD_CONFIG);
    transcode_free(t);
    char *video = get_text(st, "jump", "240p/index.m3u8");
    assert_non_null(video);
    /* The 50 s jump is repaired: no segment is longer than the GOP. */
    assert_int_equal(count_str(video, "#EXTINF:1.500,\n"), 3);
    assert_non_null(strstr(video, "#EXT-X-TARGETDURATION:2\n"));
    check_segments(st, "jump", "240p", 0, 4, true);
    free(video);
    store_close(st);
}

/* Waits until the stream's worker waits for a publisher after `returned`
 * publishers came back (a handed-over queue not yet taken would be
 * replaced by the next one, as a takeover). */
static void wait_reconnecting(transcode_t *t, const char *id, uint32_t returned)
{
    transcode_stream_status_t ts;
    for (int i = 0; i < 1000; i++) {
        if (transcode_stream_status(t, id, &ts) == 0 && ts.reconnecting &&
            ts.reconnects == returned)
            break;
        usleep(10000);
    }
    assert_true(ts.reconnecting && ts.live);
    assert_int_equal(ts.reconnects, returned);
}

/* The publisher drops and comes back within the reconnect window: the
 * same playlists go on after one discontinuity, numbers keep counting and
 * the second publisher's timestamps (from 0 again) continue the timeline.
 * Without the window, the same drop ends the stream. */
static void test_reconnect_continues(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_params_t p;
    transcode_params_default(&p);
    p.store = st;
    p.part_duration = 0;
    p.msn_from_clock = false;
    p.segment_duration = 1.0;
    p.playlist_segments = 6;
    p.reconnect_window_ms = 20000;
    transcode_t *t = NULL;
    assert_int_equal(transcode_new(&p, &t), 0);
    feed(t, "rc", FEED_DROPPED);
    wait_reconnecting(t, "rc", 0);
    /* Everything of the first publisher is out, and the list is live. */
    char *mid = get_text(st, "rc", "240p/index.m3u8");
    assert_non_null(mid);
    assert_non_null(strstr(mid, "3.m4s\n"));
    assert_null(strstr(mid, "#EXT-X-ENDLIST"));
    free(mid);
    feed(t, "rc", FEED_ALL);
    transcode_free(t);

    char *video = get_text(st, "rc", "240p/index.m3u8");
    char *audio = get_text(st, "rc", "audio/index.m3u8");
    assert_non_null(video);
    assert_non_null(audio);
    /* 8 segments, 0..7; the window of 6 shows 2..7 with the join before 4. */
    assert_non_null(strstr(video, "#EXT-X-MEDIA-SEQUENCE:2\n"));
    assert_int_equal(count_str(video, "#EXT-X-DISCONTINUITY\n"), 1);
    assert_non_null(strstr(video, "3.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert_non_null(strstr(video, "7.m4s\n#EXT-X-ENDLIST\n"));
    assert_int_equal(count_str(audio, "#EXT-X-DISCONTINUITY\n"), 1);
    assert_non_null(strstr(audio, "3.m4s\n#EXT-X-DISCONTINUITY\n"));
    check_segments(st, "rc", "240p", 0, 8, true);
    check_segments(st, "rc", "audio", 0, 8, false);
    free(video);
    free(audio);

    /* Twice more: the first join leaves the window and is counted. */
    assert_int_equal(transcode_new(&p, &t), 0);
    feed(t, "rc2", FEED_DROPPED);
    wait_reconnecting(t, "rc2", 0);
    feed(t, "rc2", FEED_DROPPED);
    wait_reconnecting(t, "rc2", 1);
    feed(t, "rc2", FEED_ALL);
    transcode_free(t);
    video = get_text(st, "rc2", "240p/index.m3u8");
    assert_non_null(video);
    assert_non_null(strstr(video, "#EXT-X-MEDIA-SEQUENCE:6\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    assert_int_equal(count_str(video, "#EXT-X-DISCONTINUITY\n"), 1);
    assert_non_null(strstr(video, "7.m4s\n#EXT-X-DISCONTINUITY\n"));
    check_segments(st, "rc2", "240p", 0, 12, true);
    free(video);

    /* No window: a drop ends the stream, the next publish starts afresh. */
    p.reconnect_window_ms = 0;
    assert_int_equal(transcode_new(&p, &t), 0);
    feed(t, "nw", FEED_DROPPED);
    feed(t, "nw", FEED_ALL);
    transcode_free(t);
    video = get_text(st, "nw", "240p/index.m3u8");
    assert_non_null(video);
    assert_int_equal(count_str(video, "#EXT-X-DISCONTINUITY"), 0);
    assert_non_null(strstr(video, "#EXT-X-MEDIA-SEQUENCE:4\n"));
    free(video);
    store_close(st);
}

/* The janitor's end of a handed-over stream: the live LL-HLS playlists
 * left in the store become ended ones (no parts, hints or reports). */
static void test_end_stored(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_params_t p;
    transcode_params_default(&p);
    p.store = st;
    p.msn_from_clock = false;
    p.reconnect_window_ms = 20000;
    transcode_t *t = NULL;
    assert_int_equal(transcode_new(&p, &t), 0);
    feed(t, "ho", FEED_DROPPED);
    wait_reconnecting(t, "ho", 0);
    char *live = get_text(st, "ho", "240p/index.m3u8");
    assert_non_null(live);
    assert_non_null(strstr(live, "#EXT-X-PART:"));
    assert_non_null(strstr(live, "#EXT-X-PRELOAD-HINT"));
    assert_null(strstr(live, "#EXT-X-ENDLIST"));
    assert_int_equal(packager_end_stored(st, "ho", 60000), 2); /* 240p and audio */
    assert_int_equal(packager_end_stored(st, "ho", 60000), 0); /* already ended */
    char *ended = get_text(st, "ho", "240p/index.m3u8");
    assert_non_null(ended);
    assert_null(strstr(ended, "#EXT-X-PART:"));
    assert_null(strstr(ended, "#EXT-X-PRELOAD-HINT"));
    assert_null(strstr(ended, "#EXT-X-RENDITION-REPORT"));
    assert_int_equal(count_str(ended, "#EXTINF:"), count_str(live, "#EXTINF:"));
    assert_non_null(strstr(ended, ".m4s\n#EXT-X-ENDLIST\n"));
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "ho", "240p/index-skip.m3u8", &b), -ENOENT);
    free(live);
    free(ended);
    transcode_free(t);
    store_close(st);
}

/* A decoder that refuses every sample for two seconds is replaced: the
 * worker counts a restart with its reason, and the stream goes on after a
 * discontinuity once good samples come again. */
static void test_decoder_failure_recovers(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_rung_spec_t ov = {.name = "120p", .width = 214, .height = 120,
                                .bitrate_kbps = 150};
    transcode_params_t p;
    transcode_params_default(&p);
    p.store = st;
    p.part_duration = 0.333; /* LL-HLS: the first part after the join must not span the gap */
    p.msn_from_clock = false;
    p.segment_duration = 1.0;
    p.playlist_segments = 10;
    p.ladder = "120p";
    p.overrides = &ov;
    p.noverrides = 1;
    p.preset = "ultrafast";
    p.no_overload_protection = true;
    transcode_t *t = NULL;
    assert_int_equal(transcode_new(&p, &t), 0);
    feed(t, "dec", FEED_GARBAGE);
    transcode_stream_status_t s;
    for (int i = 0; i < 600; i++) {
        if (transcode_stream_status(t, "dec", &s) == 0 && !s.live)
            break;
        usleep(100000);
    }
    assert_false(s.live);
    assert_int_equal(s.restarts, 1);
    assert_non_null(strstr(s.last_error, "Bad message"));
    transcode_free(t);
    char *video = get_text(st, "dec", "120p/index.m3u8");
    assert_non_null(video);
    assert_int_equal(count_str(video, "#EXT-X-DISCONTINUITY\n"), 1);
    /* Pictures up to about 1.6 s (the decoder's delay decides whether one
     * of segment 1 came out before the garbage); the keyframe at 3 s
     * (segment 2) is garbage, so the join is at the good keyframe at 4.5 s,
     * segment 3. */
    assert_true(strstr(video, "0.m4s\n#EXT-X-DISCONTINUITY\n") ||
                strstr(video, "1.m4s\n#EXT-X-DISCONTINUITY\n"));
    assert_non_null(strstr(video, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                                  "#EXT-X-PROGRAM-DATE-TIME:"));
    assert_non_null(strstr(video, "3.m4s\n#EXT-X-ENDLIST\n"));
    free(video);
    store_close(st);
}

/* Overload protection drops a rung and brings it back segments later: the
 * packager must not take the time it was away for a frame duration (the
 * part it lands in would span the gap, and the next sample would fall
 * before that part's end: EINVAL and a worker restart at every segment). */
typedef struct rung_toggle {
    packager_t *pk;
    int index;
    int64_t off_msn, on_msn;
} rung_toggle_t;

static int toggle_start_cb(void *opaque, packager_t *pk, const h264_config_t *video,
                           const uint8_t *avcc, size_t avcc_size)
{
    rung_toggle_t *rt = opaque;
    assert_non_null(video);
    return packager_rung_add(pk, "copy", avcc, avcc_size, &rt->index);
}

static int toggle_sample_cb(void *opaque, const media_packet_t *pkt, int64_t dts, int64_t pts,
                            bool key, bool cut, int64_t msn)
{
    rung_toggle_t *rt = opaque;
    if (cut && msn == rt->off_msn)
        assert_int_equal(packager_rung_set_enabled(rt->pk, rt->index, false, msn), 0);
    if (cut && msn == rt->on_msn)
        assert_int_equal(packager_rung_set_enabled(rt->pk, rt->index, true, msn), 0);
    return packager_rung_push(rt->pk, rt->index, pkt->data, pkt->size, dts, pts, key);
}

static void pk_feed(packager_t *pk, media_packet_type_t type, const void *data, size_t size,
                    int64_t dts, int64_t pts, bool key)
{
    assert_int_equal(packager_push(pk, packet(type, data, size, dts, pts, key)), 0);
}

/* A packager with the source as rung "copy" (toggled at rt's msns), 1 s
 * segments of 0.333 s parts, the fixture's configuration records fed. */
static void toggle_open_with(rung_toggle_t *rt, store_t *st, const char *id,
                             int playlist_segments,
                             int (*start_cb)(void *, packager_t *, const h264_config_t *,
                                             const uint8_t *, size_t),
                             int (*sample_cb)(void *, const media_packet_t *, int64_t, int64_t,
                                              bool, bool, int64_t))
{
    packager_hooks_t hooks = {.opaque = rt, .start_cb = start_cb, .sample_cb = sample_cb};
    packager_params_t pp = {.store = st, .stream_id = id, .segment_duration = 1.0,
                            .playlist_segments = playlist_segments, .part_duration = 0.333,
                            .ended_ttl_ms = 60000, .first_msn = 0, .hooks = &hooks};
    assert_int_equal(packager_new(&pp, &rt->pk), 0);
    pk_feed(rt->pk, MEDIA_PACKET_VIDEO_CONFIG, fx_global->avcc, fx_global->avcc_size, 0, 0,
            false);
    pk_feed(rt->pk, MEDIA_PACKET_AUDIO_CONFIG, fx_global->asc, fx_global->asc_size, 0, 0,
            false);
}

static void toggle_open(rung_toggle_t *rt, store_t *st, const char *id, int playlist_segments)
{
    toggle_open_with(rt, st, id, playlist_segments, toggle_start_cb, toggle_sample_cb);
}

/* Feeds the whole fixture and ends the stream. */
static void toggle_feed_and_finish(rung_toggle_t *rt)
{
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        pk_feed(rt->pk, e->type, e->data, e->size, e->dts_ms, e->pts_ms, e->key);
    }
    assert_int_equal(packager_finish(rt->pk), 0);
    packager_free(rt->pk);
}

static void test_rung_restored_after_drop(void **state)
{
    (void)state;
    store_t *st = open_store();
    rung_toggle_t rt = {.index = -1, .off_msn = 1, .on_msn = 2};
    toggle_open(&rt, st, "rt", 6);
    toggle_feed_and_finish(&rt);
    /* Away for segment 1, where the source stood in for it (the same
     * configuration here: no new init segment, no discontinuity), back
     * from segment 2 with whole 10-frame parts: no hole and no 404 for a
     * player that kept it. */
    for (int msn = 0; msn <= 3; msn++)
        check_parts(st, "rt", "copy", msn, true);
    blob_t *own = NULL, *stand_in = NULL;
    assert_int_equal(store_get(st, "rt", "copy/1.m4s", &own), 0);
    assert_int_equal(store_get(st, "rt", "240p/1.m4s", &stand_in), 0);
    assert_int_equal(own->size, stand_in->size);
    blob_unref(own);
    blob_unref(stand_in);
    char *pl = get_text(st, "rt", "copy/index.m3u8");
    assert_non_null(pl);
    assert_non_null(strstr(pl, "\n0.m4s\n"));
    assert_non_null(strstr(pl, "\n1.m4s\n"));
    assert_non_null(strstr(pl, "\n2.m4s\n"));
    assert_null(strstr(pl, "#EXT-X-DISCONTINUITY\n"));
    free(pl);
    store_close(st);
}

/* Rungs on demand: rung "copy" is idle for segments 1 and 2 (its encoder
 * gives nothing then) and woken at 3. */
static store_t *idle_store;
static bool idle_seen_withdrawn;

static int idle_sample_cb(void *opaque, const media_packet_t *pkt, int64_t dts, int64_t pts,
                          bool key, bool cut, int64_t msn)
{
    rung_toggle_t *rt = opaque;
    if (cut && msn == rt->off_msn)
        assert_int_equal(packager_rung_set_idle(rt->pk, rt->index, true, msn, NULL, 0), 0);
    if (cut && msn == rt->off_msn + 1) {
        /* Idle: its playlists are withdrawn, the master keeps naming it,
         * and the other renditions go on. */
        blob_t *b = NULL;
        assert_int_equal(store_get(idle_store, "idle", "copy/index.m3u8", &b), -ENOENT);
        assert_int_equal(store_get(idle_store, "idle", "copy/index-skip.m3u8", &b), -ENOENT);
        char *master = get_text(idle_store, "idle", "master.m3u8");
        assert_non_null(master);
        assert_non_null(strstr(master, "\ncopy/index.m3u8\n"));
        free(master);
        char *other = get_text(idle_store, "idle", "240p/index.m3u8");
        assert_non_null(other);
        assert_null(strstr(other, "../copy/index.m3u8")); /* no stale rendition report */
        free(other);
        idle_seen_withdrawn = true;
    }
    if (cut && msn == rt->on_msn)
        assert_int_equal(packager_rung_set_idle(rt->pk, rt->index, false, msn, NULL, 0), 0);
    if (msn >= rt->off_msn && msn < rt->on_msn)
        return 0;
    return packager_rung_push(rt->pk, rt->index, pkt->data, pkt->size, dts, pts, key);
}

static void test_rung_idle_and_woken(void **state)
{
    (void)state;
    store_t *st = open_store();
    idle_store = st;
    idle_seen_withdrawn = false;
    rung_toggle_t rt = {.index = -1, .off_msn = 1, .on_msn = 3};
    toggle_open_with(&rt, st, "idle", 10, toggle_start_cb, idle_sample_cb);
    toggle_feed_and_finish(&rt);
    assert_true(idle_seen_withdrawn);
    /* Back at 3 with a fresh window: segment 3 first, numbered and dated
     * as the source's segment 3, no discontinuity (nothing before it),
     * the same discontinuity sequence; whole parts. */
    check_parts(st, "idle", "copy", 3, true);
    char *pl = get_text(st, "idle", "copy/index.m3u8");
    char *src = get_text(st, "idle", "240p/index.m3u8");
    assert_non_null(pl);
    assert_non_null(src);
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:3\n"));
    assert_null(strstr(pl, "\n0.m4s\n"));
    assert_null(strstr(pl, "\n2.m4s\n"));
    assert_non_null(strstr(pl, "\n3.m4s\n"));
    assert_null(strstr(pl, "#EXT-X-DISCONTINUITY"));
    const char *pdt = strstr(pl, "#EXT-X-PROGRAM-DATE-TIME:");
    assert_non_null(pdt);
    const char *src3 = strstr(src, "\n3.m4s\n");
    assert_non_null(src3);
    /* The source's date-time line of segment 3 is the one before its URI. */
    const char *p = src, *src_pdt = NULL;
    while ((p = strstr(p, "#EXT-X-PROGRAM-DATE-TIME:")) && p < src3)
        src_pdt = p++;
    assert_non_null(src_pdt);
    assert_memory_equal(pdt, src_pdt, strlen("#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000"));
    assert_non_null(strstr(pl, "#EXT-X-ENDLIST"));
    free(pl);
    free(src);
    /* The master named it all along. */
    char *master = get_text(st, "idle", "master.m3u8");
    assert_non_null(strstr(master, "\ncopy/index.m3u8\n"));
    free(master);
    store_close(st);
}

/* Idle when the stream ends: the ended master leaves it out (it has no
 * playlist to end). */
static void test_rung_idle_at_end(void **state)
{
    (void)state;
    store_t *st = open_store();
    idle_store = st;
    idle_seen_withdrawn = false;
    rung_toggle_t rt = {.index = -1, .off_msn = 1, .on_msn = 1000};
    toggle_open_with(&rt, st, "idle", 10, toggle_start_cb, idle_sample_cb);
    toggle_feed_and_finish(&rt);
    assert_true(idle_seen_withdrawn);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "idle", "copy/index.m3u8", &b), -ENOENT);
    char *master = get_text(st, "idle", "master.m3u8");
    assert_non_null(master);
    assert_null(strstr(master, "copy/index.m3u8"));
    assert_non_null(strstr(master, "240p/index.m3u8"));
    free(master);
    store_close(st);
}

/* The rung's own configuration differs from its stand-in's (the source):
 * a level byte changed, as a smaller rung's would. */
static int other_config_start_cb(void *opaque, packager_t *pk, const h264_config_t *video,
                                 const uint8_t *avcc, size_t avcc_size)
{
    rung_toggle_t *rt = opaque;
    assert_non_null(video);
    uint8_t own[256];
    assert_true(avcc_size <= sizeof(own));
    memcpy(own, avcc, avcc_size);
    own[3] = own[3] == 30 ? 31 : 30; /* AVCLevelIndication */
    return packager_rung_add(pk, "copy", own, avcc_size, &rt->index);
}

/* Dropped for segments 1 and 2 with a stand-in of another configuration:
 * the playlist goes on without a number missing, with a discontinuity and
 * the stand-in's init segment at 1 and its own again (a third init
 * segment) at 3; every segment carries the init segment its playlist
 * line names. */
static void test_stand_in_with_other_config(void **state)
{
    (void)state;
    store_t *st = open_store();
    rung_toggle_t rt = {.index = -1, .off_msn = 1, .on_msn = 3};
    toggle_open_with(&rt, st, "oc", 10, other_config_start_cb, toggle_sample_cb);
    toggle_feed_and_finish(&rt);
    for (int msn = 0; msn <= 3; msn++)
        check_parts(st, "oc", "copy", msn, true);
    char *pl = get_text(st, "oc", "copy/index.m3u8");
    assert_non_null(pl);
    assert_non_null(strstr(pl, "0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"));
    assert_non_null(strstr(pl, "\n1.m4s\n"));
    assert_non_null(strstr(pl, "2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-3.mp4\"\n"));
    assert_int_equal(count_str(pl, "#EXT-X-DISCONTINUITY\n"), 2);
    free(pl);
    /* The stand-in's init segment holds the source's configuration (its
     * level byte), the first and the last the rung's own. */
    const uint8_t level = fx_global->avcc[3];
    const char *inits[] = {"copy/init.mp4", "copy/init-1.mp4", "copy/init-3.mp4"};
    for (int i = 0; i < 3; i++) {
        blob_t *b = NULL;
        assert_int_equal(store_get(st, "oc", inits[i], &b), 0);
        const uint8_t *avcc = memmem(b->data, b->size, "avcC", 4);
        assert_non_null(avcc);
        assert_int_equal(avcc[4 + 3] == level, i == 1);
        blob_unref(b);
    }
    store_close(st);
}

/* An encoder whose timestamps are irregular (gst's x264enc at its
 * defaults, 30 fps, spaces samples 23, 33 and 46 ms apart; a publisher on a
 * busy machine more so). A part is cut right after the sample that reaches
 * its end, before the next sample has come, so that sample's duration is
 * an estimate; when it was the newest distance (46 ms) and the next two
 * samples came 23 ms apart each, both lay before the part's end: EINVAL
 * and a worker restart, every few seconds (issue 18). Every sample must be
 * written, and every part's decode time must follow the one before. */
static void test_irregular_timestamps(void **state)
{
    (void)state;
    store_t *st = open_store();
    rung_toggle_t rt = {.index = -1, .off_msn = -1, .on_msn = -1};
    toggle_open(&rt, st, "ir", 10);
    /* 46, 23, 23 defeats an estimate from the newest distance; a burst of
     * 2 ms steps after regular ones (a VFR encoder catching up) defeats any
     * estimate from the past, so the muxer must also place a second sample
     * that comes before a part's end. */
    static const int64_t steps[] = {46, 23, 23, 46, 23, 23, 46, 23, 23, 33, 33, 33, 33, 33,
                                    33, 33, 33, 33, 2, 2};
    const size_t nsteps = sizeof(steps) / sizeof(steps[0]);
    /* ...and once, a starved encoder's 400 ms gap: no part may be longer
     * than PART-TARGET (0.333 s plus a few ms) for it. */
    const size_t stall_at = 100;
    int64_t vdts = 0;
    size_t nvideo = 0;
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        if (e->type != MEDIA_PACKET_VIDEO) {
            pk_feed(rt.pk, e->type, e->data, e->size, e->dts_ms, e->pts_ms, e->key);
            continue;
        }
        int64_t dts = nvideo == 0          ? e->dts_ms
                      : nvideo == stall_at ? vdts + 400
                                           : vdts + steps[nvideo % nsteps];
        pk_feed(rt.pk, e->type, e->data, e->size, dts, dts + (e->pts_ms - e->dts_ms), e->key);
        vdts = dts;
        nvideo++;
    }
    assert_int_equal(packager_finish(rt.pk), 0);
    packager_free(rt.pk);
    size_t samples_total = 0, parts = 0;
    int64_t last_tfdt = -1;
    for (int64_t msn = 0;; msn++) {
        char name[64];
        snprintf(name, sizeof(name), "copy/%lld.m4s", (long long)msn);
        blob_t *seg = NULL;
        if (store_get(st, "ir", name, &seg) != 0)
            break;
        size_t at = 0;
        for (int p = 0;; p++) {
            blob_t *part = NULL;
            snprintf(name, sizeof(name), "copy/%lld.%d.m4s", (long long)msn, p);
            if (store_get(st, "ir", name, &part) != 0)
                break;
            assert_memory_equal(seg->data + at, part->data, part->size);
            at += part->size;
            bool sync;
            int64_t tfdt;
            int samples;
            inspect_segment(part->data, part->size, &sync, &tfdt, &samples);
            assert_true(tfdt > last_tfdt);
            /* RFC 8216bis 4.4.4.9: at most PART-TARGET (0.336 s), at least
             * 85 % of it but for the last part of a segment. */
            if (last_tfdt >= 0)
                assert_true(tfdt - last_tfdt <= 90000 * 336 / 1000);
            if (last_tfdt >= 0 && p > 0)
                assert_true(tfdt - last_tfdt >= 90000 * 286 / 1000);
            last_tfdt = tfdt;
            samples_total += (size_t)samples;
            parts++;
            blob_unref(part);
        }
        assert_int_equal(at, seg->size);
        blob_unref(seg);
    }
    assert_true(parts > 2 * SECONDS);
    assert_int_equal(samples_total, nvideo);
    store_close(st);
}

/* The rung "copy" does not cut where the source cut segment 2 (its
 * keyframe there comes as a plain picture): its segment 1 is 3 s long, the
 * source's 1.5 s. */
static int longer_rung_sample_cb(void *opaque, const media_packet_t *pkt, int64_t dts,
                                 int64_t pts, bool key, bool cut, int64_t msn)
{
    rung_toggle_t *rt = opaque;
    if (cut && msn == 2)
        key = false;
    return packager_rung_push(rt->pk, rt->index, pkt->data, pkt->size, dts, pts, key);
}

static int target_duration_of(store_t *st, const char *id, const char *name)
{
    char *pl = get_text(st, id, name);
    assert_non_null(pl);
    const char *td = strstr(pl, "#EXT-X-TARGETDURATION:");
    assert_non_null(td);
    int v = atoi(td + strlen("#EXT-X-TARGETDURATION:"));
    free(pl);
    return v;
}

/* RFC 8216bis 6.2.4: every media playlist of a stream has the same target
 * duration. A rendition whose segment is longer than the others' raises it
 * for all of them (the copied source and the rungs round their own
 * durations; OBS with keyint auto gave 8 s copied, 7 s encoded). */
static void test_target_duration_shared(void **state)
{
    (void)state;
    store_t *st = open_store();
    rung_toggle_t rt = {.index = -1, .off_msn = -1, .on_msn = -1};
    toggle_open_with(&rt, st, "td", 10, toggle_start_cb, longer_rung_sample_cb);
    /* After every packet: no reader may see two target durations at once
     * (a raise rewrites every playlist in the same commit). */
    static const char *const names[] = {"copy/index.m3u8", "240p/index.m3u8",
                                        "audio/index.m3u8"};
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        pk_feed(rt.pk, e->type, e->data, e->size, e->dts_ms, e->pts_ms, e->key);
        int seen = 0;
        for (size_t k = 0; k < 3; k++) {
            blob_t *b = NULL;
            if (store_get(st, "td", names[k], &b) != 0)
                continue;
            blob_unref(b);
            int td = target_duration_of(st, "td", names[k]);
            if (seen == 0)
                seen = td;
            assert_int_equal(td, seen);
        }
    }
    /* While live and once ended. */
    for (int round = 0; round < 2; round++) {
        int copy = target_duration_of(st, "td", "copy/index.m3u8");
        assert_int_equal(copy, 3);
        assert_int_equal(target_duration_of(st, "td", "240p/index.m3u8"), copy);
        assert_int_equal(target_duration_of(st, "td", "audio/index.m3u8"), copy);
        if (round == 0) {
            assert_int_equal(packager_finish(rt.pk), 0);
            packager_free(rt.pk);
        }
    }
    store_close(st);
}

/* --dvr-window: the media playlists keep about that many seconds, more than
 * --playlist-segments, and drop the oldest only once the rest still covers
 * them. 6 s of media in 1.5 s segments (GOP), live window 2 segments. */
/* A packager of stream id with 1 s segments (so one per GOP) and a live
 * window of 2, the fixture's configuration records fed. */
static packager_t *window_packager(store_t *st, const char *id, double dvr_window)
{
    packager_params_t pp = {.store = st, .stream_id = id, .segment_duration = 1.0,
                            .playlist_segments = 2, .ended_ttl_ms = 60000, .first_msn = 0,
                            .dvr_window = dvr_window};
    packager_t *pk = NULL;
    assert_int_equal(packager_new(&pp, &pk), 0);
    pk_feed(pk, MEDIA_PACKET_VIDEO_CONFIG, fx_global->avcc, fx_global->avcc_size, 0, 0, false);
    pk_feed(pk, MEDIA_PACKET_AUDIO_CONFIG, fx_global->asc, fx_global->asc_size, 0, 0, false);
    return pk;
}

static char *dvr_run(double dvr_window)
{
    store_t *st = open_store();
    packager_t *pk = window_packager(st, "dvr", dvr_window);
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        pk_feed(pk, e->type, e->data, e->size, e->dts_ms, e->pts_ms, e->key);
    }
    assert_int_equal(packager_finish(pk), 0);
    packager_free(pk);
    char *pl = get_text(st, "dvr", "240p/index.m3u8");
    assert_non_null(pl);
    store_close(st);
    return pl;
}

static void test_dvr_window(void **state)
{
    (void)state;
    char *live = dvr_run(0);
    assert_non_null(strstr(live, "#EXT-X-MEDIA-SEQUENCE:2\n"));
    assert_int_equal(count_str(live, "#EXTINF:"), 2);
    free(live);
    /* 4 s: segment 0 goes once 1..3 (4.5 s) cover it; 1..3 stay. */
    char *dvr = dvr_run(4.0);
    assert_non_null(strstr(dvr, "#EXT-X-MEDIA-SEQUENCE:1\n"));
    assert_int_equal(count_str(dvr, "#EXTINF:"), 3);
    assert_non_null(strstr(dvr, "\n1.m4s\n"));
    free(dvr);
    /* Longer than the stream: everything stays. */
    char *all = dvr_run(60.0);
    assert_non_null(strstr(all, "#EXT-X-MEDIA-SEQUENCE:0\n"));
    assert_int_equal(count_str(all, "#EXTINF:"), 4);
    free(all);
}

/* Live objects (playlists, thumbnails) expire 60 s plus four times the
 * longest playlist after their last write, never before the ended TTL. */
static int64_t live_ttl(double segdur, int nseg, double dvr, int64_t ended)
{
    store_t *st = open_store();
    packager_params_t pp = {.store = st, .stream_id = "ttl", .segment_duration = segdur,
                            .playlist_segments = nseg, .dvr_window = dvr,
                            .ended_ttl_ms = ended};
    packager_t *pk = NULL;
    assert_int_equal(packager_new(&pp, &pk), 0);
    int64_t ttl = packager_live_ttl_ms(pk);
    packager_free(pk);
    store_close(st);
    return ttl;
}

static void test_live_ttl(void **state)
{
    (void)state;
    assert_int_equal(live_ttl(0, 0, 0, 0), 600000); /* defaults: the ended TTL wins */
    assert_int_equal(live_ttl(2, 6, 0, 30000), 108000);
    assert_int_equal(live_ttl(2, 6, 3600, 30000), 60000 + 4 * 3600 * 1000); /* DVR sets it */
    assert_int_equal(live_ttl(2, 6, 5, 30000), 108000);
    assert_int_equal(live_ttl(0.1, 1, 1e9, 1000), 60000 + 4 * 12 * 1000); /* clamped */
}

static void test_empty_stream(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_t *t = open_transcode(st);
    media_queue_t *q = media_queue_new(1 << 20);
    assert_int_equal(transcode_stream_start(t, "empty", q), 0);
    assert_int_equal(transcode_stream_start(t, "bad id!", q), -EINVAL);
    push(q, MEDIA_PACKET_EOS, NULL, 0, 0, 0, false);
    media_queue_unref(q);
    transcode_free(t);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "empty", "master.m3u8", &b), -ENOENT);
    store_close(st);
    transcode_free(NULL);
}

/* The ladder with overload protection: two transcoded rungs made slow on
 * purpose (--debug-slow-encode); at the fastest preset already, the worker
 * must drop the most expensive rung, and the status API must say so. */
static void test_ladder_overload_status(void **state)
{
    (void)state;
    store_t *st = open_store();
    transcode_rung_spec_t ov[2] = {
        {.name = "180p", .width = 320, .height = 180, .bitrate_kbps = 300},
        {.name = "120p", .width = 214, .height = 120, .bitrate_kbps = 150},
    };
    transcode_params_t p;
    transcode_params_default(&p);
    p.store = st;
    p.segment_duration = 1.0;
    p.playlist_segments = 10;
    p.ladder = "180p,120p";
    p.overrides = ov;
    p.noverrides = 2;
    p.preset = "ultrafast";
    p.cpus = 1;
    /* ~31 ms (180p) + ~14 ms (120p) per 33 ms frame: slower than real time. */
    p.debug_slow_encode_ms = 1500;
    transcode_t *t = NULL;
    assert_int_equal(transcode_new(&p, &t), 0);
    transcode_stream_status_t s;
    assert_int_equal(transcode_stream_status(t, "ov", &s), -ENOENT);
    feed(t, "ov", 0);
    bool seen_live = false;
    for (int i = 0; i < 600; i++) { /* up to 60 s */
        int ret = transcode_stream_status(t, "ov", &s);
        if (ret == 0 && !s.live)
            break;
        assert_true(ret == 0 || (ret == -ENOENT && !seen_live)); /* the worker may not be up yet */
        seen_live = seen_live || ret == 0;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_false(s.live);
    assert_int_equal(s.width, WIDTH);
    assert_int_equal(s.height, HEIGHT);
    assert_string_equal(s.preset, "ultrafast");
    assert_int_equal(s.preset_steps, 0);
    assert_int_equal(s.dropped_rungs, 1);
    assert_int_equal(s.health, TRANSCODE_HEALTH_POOR);
    assert_string_equal(transcode_health_name(s.health), "poor");
    assert_true(s.speed > 0); /* measured; it recovered after the drop */
    assert_int_equal(s.nrenditions, 2);
    assert_string_equal(s.renditions[0].name, "180p");
    assert_int_equal(s.renditions[0].width, 240);
    assert_int_equal(s.renditions[0].height, 180);
    assert_true(s.renditions[0].dropped);
    assert_false(s.renditions[0].passthrough);
    assert_int_equal(s.renditions[0].target_kbps, 300);
    assert_string_equal(s.renditions[1].name, "120p");
    assert_int_equal(s.renditions[1].width, 160);
    assert_false(s.renditions[1].dropped);
    assert_true(s.renditions[1].encoder_speed > 0);
    assert_true(s.renditions[1].bitrate_kbps > 0);
    transcode_free(t);

    /* The dropped rung left the master; its playlist went on to the end
     * with 120p's pictures (a discontinuity and 120p's init segment), for
     * players that still knew it. */
    char *master = get_text(st, "ov", "master.m3u8");
    assert_non_null(master);
    assert_null(strstr(master, "180p/index.m3u8"));
    assert_non_null(strstr(master, "RESOLUTION=160x120"));
    char *low = get_text(st, "ov", "120p/index.m3u8");
    assert_non_null(strstr(low, "#EXT-X-ENDLIST"));
    char *dropped = get_text(st, "ov", "180p/index.m3u8");
    assert_non_null(dropped);
    assert_non_null(strstr(dropped, "#EXT-X-ENDLIST"));
    const char *disc = strstr(dropped, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-");
    assert_non_null(disc);
    /* ...and the segment after it is 120p's, in another init segment. */
    const char *seg = strstr(disc, ".m4s\n");
    assert_non_null(seg);
    const char *name = seg;
    while (name > disc && name[-1] != '\n')
        name--;
    char path[64];
    snprintf(path, sizeof(path), "180p/%.*s", (int)(seg + 4 - name), name);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "ov", path, &b), 0);
    blob_unref(b);
    free(dropped);
    free(low);
    free(master);
    store_close(st);
}

/* ---- timed metadata ---------------------------------------------------- */

/* The presentation time of the emsg with id `id` in d, or -1. */
static int64_t emsg_time(const uint8_t *d, size_t n, uint32_t id, uint32_t *timescale)
{
    for (size_t pos = 0; pos + 8 <= n;) {
        uint32_t size = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 |
                        (uint32_t)d[pos + 2] << 8 | d[pos + 3];
        if (size < 8 || pos + size > n)
            break;
        if (memcmp(d + pos + 4, "emsg", 4) == 0 && size >= 32) {
            const uint8_t *b = d + pos;
            uint32_t eid = (uint32_t)b[28] << 24 | (uint32_t)b[29] << 16 |
                           (uint32_t)b[30] << 8 | b[31];
            if (eid == id) {
                *timescale = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                             (uint32_t)b[14] << 8 | b[15];
                int64_t pt = 0;
                for (int i = 0; i < 8; i++)
                    pt = pt << 8 | b[16 + i];
                return pt;
            }
        }
        pos += size;
    }
    return -1;
}

/* Two items, at 0.5 s (in band: the packager maps its date-time) and
 * 4.7 s (the API's date-time carried) of a 6 s stream with 1.5 s segments: each is an
 * emsg in the segment that holds its time in both renditions, and a
 * DATERANGE while that segment is in the window: a 2-segment window ends
 * without the first; a 60 s DVR window keeps both. */
static char *meta_run(double dvr_window, store_t **st_out)
{
    store_t *st = open_store();
    packager_t *pk = window_packager(st, "meta", dvr_window);
    bool sent1 = false, sent2 = false;
    for (size_t i = 0; i < fx_global->npkts; i++) {
        const enc_packet_t *e = &fx_global->pkts[i];
        pk_feed(pk, e->type, e->data, e->size, e->dts_ms, e->pts_ms, e->key);
        if (!sent1 && e->dts_ms >= 500) {
            media_packet_t *m = packet(MEDIA_PACKET_TIMED_METADATA, "first", 5, 500, 500, false);
            m->meta_id = 7; /* in band: the packager maps its date-time */
            assert_int_equal(packager_push(pk, m), 0);
            sent1 = true;
        }
        if (!sent2 && e->dts_ms >= 4700) {
            media_packet_t *m = packet(MEDIA_PACKET_TIMED_METADATA, "a\"b", 3, 4700, 4700, false);
            m->meta_id = 8;
            m->meta_pdt_ms = INT64_C(4102444800000); /* what the API answered: repeated */
            assert_int_equal(packager_push(pk, m), 0);
            sent2 = true;
        }
    }
    assert_int_equal(packager_finish(pk), 0);
    packager_free(pk);
    char *pl = get_text(st, "meta", "240p/index.m3u8");
    assert_non_null(pl);
    *st_out = st;
    return pl;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" to ms since the epoch. */
static int64_t iso_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                     7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void check_emsg(store_t *st, const char *name, uint32_t id, int64_t want_ms)
{
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "meta", name, &b), 0);
    uint32_t ts = 0;
    int64_t pt = emsg_time(b->data, b->size, id, &ts);
    assert_true(ts == 90000 || ts == RATE);
    assert_int_equal(pt, want_ms * (int64_t)ts / 1000);
    blob_unref(b);
}

static void test_timed_metadata(void **state)
{
    (void)state;
    store_t *st = NULL;
    char *live = meta_run(0, &st);
    /* Stream timeline: the first packet at 1 s, so 0.5 s is about 1.5 s,
     * in segment 0 (1..2.5 s); 4.7 s about 5.7 s, in segment 3 (5.5..7 s;
     * audio's starts up to a frame later, at its first frame past the cut,
     * so an item right after a cut may be in audio's previous segment). */
    int64_t first = fx_global->pkts[0].dts_ms;
    check_emsg(st, "240p/0.m4s", 7, 500 - first + 1000);
    check_emsg(st, "audio/0.m4s", 7, 500 - first + 1000);
    check_emsg(st, "240p/3.m4s", 8, 4700 - first + 1000);
    check_emsg(st, "audio/3.m4s", 8, 4700 - first + 1000);
    store_close(st);
    assert_null(strstr(live, "sluice-7")); /* its segment left the window */
    assert_non_null(strstr(live, "#EXT-X-DATERANGE:ID=\"sluice-8\",CLASS=\"com.sluice.metadata\","
                                 "START-DATE=\"2100-01-01T00:00:00.000Z\",X-PAYLOAD=0x612262\n"));
    free(live);
    char *dvr = meta_run(60.0, &st);
    store_close(st);
    const char *d7 = strstr(dvr, "#EXT-X-DATERANGE:ID=\"sluice-7\",CLASS=\"com.sluice.metadata\","
                                 "START-DATE=\"");
    assert_non_null(d7);
    /* Mapped like the media: inside segment 0, as the emsg is. */
    const char *pdt0 = strstr(dvr, "#EXT-X-PROGRAM-DATE-TIME:");
    const char *inf0 = strstr(dvr, "#EXTINF:");
    assert_non_null(pdt0);
    assert_non_null(inf0);
    int64_t start = iso_ms(d7 + strlen("#EXT-X-DATERANGE:ID=\"sluice-7\",CLASS=\"com.sluice."
                                       "metadata\",START-DATE=\""));
    int64_t seg0 = iso_ms(pdt0 + strlen("#EXT-X-PROGRAM-DATE-TIME:"));
    double dur0 = atof(inf0 + strlen("#EXTINF:"));
    assert_true(start >= seg0 && start < seg0 + (int64_t)(dur0 * 1000));
    assert_non_null(strstr(d7, ",X-PAYLOAD=\"first\"\n"));
    assert_non_null(strstr(dvr, "ID=\"sluice-8\""));
    free(dvr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_av_stream),
        cmocka_unit_test(test_msn_continues_across_broadcasts),
        cmocka_unit_test(test_video_only),
        cmocka_unit_test(test_ll_parts),
        cmocka_unit_test(test_audio_only),
        cmocka_unit_test(test_timestamp_jump_and_bad_config),
        cmocka_unit_test(test_empty_stream),
        cmocka_unit_test(test_reconnect_continues),
        cmocka_unit_test(test_decoder_failure_recovers),
        cmocka_unit_test(test_end_stored),
        cmocka_unit_test(test_ladder_overload_status),
        cmocka_unit_test(test_rung_restored_after_drop),
        cmocka_unit_test(test_rung_idle_and_woken),
        cmocka_unit_test(test_rung_idle_at_end),
        cmocka_unit_test(test_stand_in_with_other_config),
        cmocka_unit_test(test_irregular_timestamps),
        cmocka_unit_test(test_target_duration_shared),
        cmocka_unit_test(test_dvr_window),
        cmocka_unit_test(test_live_ttl),
        cmocka_unit_test(test_timed_metadata),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
