/* Unit tests for transcode/thumbnail.c: the size rule, JPEG encoding of a
 * synthetic limited-range picture (markers, size, full-range levels after
 * a decode), scaling a stored JPEG for ?width=N, and the producer writing
 * thumbnail.jpg to a memory store from a decoded picture and from a raw
 * H.264 keyframe (the copy-only path), with the cost per thumbnail printed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

#include "clock.h"
#include "rung_internal.h"
#include "store.h"
#include "thumbnail.h"

/* A 4:2:0 limited-range picture: left half black (Y 16), right half white
 * (Y 235), a gradient band at the bottom quarter; `shift` moves the edge. */
static AVFrame *make_picture(int w, int h, int shift)
{
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    f->color_range = AVCOL_RANGE_MPEG;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            f->data[0][y * f->linesize[0] + x] =
                y >= h * 3 / 4 ? (uint8_t)(16 + (x * 219) / w)
                               : ((x + shift) % w < w / 2 ? 16 : 235);
    for (int p = 1; p < 3; p++)
        for (int y = 0; y < h / 2; y++)
            memset(f->data[p] + y * f->linesize[p], 128, (size_t)w / 2);
    return f;
}

/* Width and height from the JPEG's SOF0/SOF2 marker; asserts SOI and EOI. */
static void jpeg_size(const blob_t *b, int *w, int *h)
{
    assert_true(b->size > 200);
    assert_int_equal(b->data[0], 0xFF);
    assert_int_equal(b->data[1], 0xD8);
    assert_int_equal(b->data[b->size - 2], 0xFF);
    assert_int_equal(b->data[b->size - 1], 0xD9);
    size_t i = 2;
    *w = *h = 0;
    while (i + 9 < b->size) {
        assert_int_equal(b->data[i], 0xFF);
        uint8_t m = b->data[i + 1];
        size_t len = ((size_t)b->data[i + 2] << 8) | b->data[i + 3];
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
            *h = (b->data[i + 5] << 8) | b->data[i + 6];
            *w = (b->data[i + 7] << 8) | b->data[i + 8];
            return;
        }
        i += 2 + len;
    }
    fail_msg("no SOF marker");
}

/* Decodes a JPEG with libavcodec (an independent check of what we wrote). */
static AVFrame *jpeg_decode(const blob_t *b)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    assert_int_equal(avcodec_open2(dec, codec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    assert_int_equal(av_new_packet(pkt, (int)b->size), 0);
    memcpy(pkt->data, b->data, b->size);
    assert_int_equal(avcodec_send_packet(dec, pkt), 0);
    assert_int_equal(avcodec_send_packet(dec, NULL), 0);
    AVFrame *f = av_frame_alloc();
    assert_int_equal(avcodec_receive_frame(dec, f), 0);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return f;
}

static void test_fit(void **state)
{
    (void)state;
    int w, h;
    thumbnail_fit(1920, 1080, 1280, &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    thumbnail_fit(1280, 720, 320, &w, &h);
    assert_int_equal(w, 320);
    assert_int_equal(h, 180);
    thumbnail_fit(640, 360, 1280, &w, &h); /* never upscaled */
    assert_int_equal(w, 640);
    assert_int_equal(h, 360);
    thumbnail_fit(1000, 562, 333, &w, &h); /* 187.1 */
    assert_int_equal(w, 333);
    assert_int_equal(h, 187);
    thumbnail_fit(4000, 10, 16, &w, &h); /* at least one row */
    assert_int_equal(w, 16);
    assert_int_equal(h, 1);
    thumbnail_fit(720, 1280, 1280, &w, &h); /* portrait: width is the cap */
    assert_int_equal(w, 720);
    assert_int_equal(h, 1280);
}

static void test_live_ttl(void **state)
{
    (void)state;
    /* Defaults: 60 s + 4 x 12 s is under the 10 min ended TTL. */
    assert_int_equal(thumbnail_live_ttl_ms(0, 0, 0, 0), 600000);
    assert_int_equal(thumbnail_live_ttl_ms(2, 6, 0, 30000), 108000);
    /* A DVR window longer than the live window sets it. */
    assert_int_equal(thumbnail_live_ttl_ms(2, 6, 3600, 30000), 60000 + 4 * 3600 * 1000);
    assert_int_equal(thumbnail_live_ttl_ms(2, 6, 5, 30000), 108000);
    /* Out-of-range values are clamped like the packager's. */
    assert_int_equal(thumbnail_live_ttl_ms(0.1, 1, 1e9, 1000), 60000 + 4 * 12 * 1000);
}

static void test_encode(void **state)
{
    (void)state;
    AVFrame *pic = make_picture(1920, 1080, 0);
    blob_t *jpeg = NULL;
    int64_t t0 = clock_mono_us();
    const int runs = 5;
    for (int i = 0; i < runs; i++) {
        blob_unref(jpeg);
        assert_int_equal(thumbnail_encode(pic, THUMBNAIL_WIDTH_MAX, &jpeg), 0);
    }
    double ms = (double)(clock_mono_us() - t0) / 1000.0 / runs;
    printf("# thumbnail_encode 1920x1080 -> 1280x720 JPEG: %.1f ms, %zu bytes\n", ms, jpeg->size);
    int w, h;
    jpeg_size(jpeg, &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    assert_true(jpeg->size < 200 * 1024);
    /* Limited-range black and white come out as full-range 0 and 255. */
    AVFrame *d = jpeg_decode(jpeg);
    assert_int_equal(d->width, 1280);
    assert_int_equal(d->height, 720);
    int black = d->data[0][100 * d->linesize[0] + 100];
    int white = d->data[0][100 * d->linesize[0] + 1180];
    assert_in_range(black, 0, 6);
    assert_in_range(white, 249, 255);
    av_frame_free(&d);
    blob_unref(jpeg);
    /* A picture smaller than the cap keeps its size. */
    AVFrame *small = make_picture(320, 240, 0);
    assert_int_equal(thumbnail_encode(small, THUMBNAIL_WIDTH_MAX, &jpeg), 0);
    jpeg_size(jpeg, &w, &h);
    assert_int_equal(w, 320);
    assert_int_equal(h, 240);
    blob_unref(jpeg);
    /* The cost grows with detail: a busy picture (fine texture all over,
     * far more than a camera's) as the upper bound. */
    AVFrame *busy = make_picture(1920, 1080, 0);
    for (int y = 0; y < 1080; y++)
        for (int x = 0; x < 1920; x++)
            busy->data[0][y * busy->linesize[0] + x] =
                (uint8_t)(16 + (((x * 7) ^ (y * 13) ^ ((x * y) >> 6)) & 0xff) * 219 / 255);
    t0 = clock_mono_us();
    assert_int_equal(thumbnail_encode(busy, THUMBNAIL_WIDTH_MAX, &jpeg), 0);
    printf("# thumbnail_encode 1920x1080 busy texture -> 1280x720 JPEG: %.1f ms, %zu bytes\n",
           (double)(clock_mono_us() - t0) / 1000.0, jpeg->size);
    jpeg_size(jpeg, &w, &h);
    assert_int_equal(w, 1280);
    blob_unref(jpeg);
    av_frame_free(&busy);
    assert_int_equal(thumbnail_encode(NULL, 1280, &jpeg), -EINVAL);
    assert_null(jpeg);
    av_frame_free(&small);
    av_frame_free(&pic);
}

static void test_scale(void **state)
{
    (void)state;
    AVFrame *pic = make_picture(1280, 720, 0);
    blob_t *jpeg = NULL, *out = NULL;
    assert_int_equal(thumbnail_encode(pic, THUMBNAIL_WIDTH_MAX, &jpeg), 0);
    int64_t t0 = clock_mono_us();
    assert_int_equal(thumbnail_scale(jpeg->data, jpeg->size, 320, &out), 0);
    printf("# thumbnail_scale 1280x720 -> 320: %.1f ms, %zu bytes\n",
           (double)(clock_mono_us() - t0) / 1000.0, out->size);
    int w, h;
    jpeg_size(out, &w, &h);
    assert_int_equal(w, 320);
    assert_int_equal(h, 180);
    assert_true(out->size < jpeg->size);
    blob_unref(out);
    /* At or above the JPEG's own width: the same bytes, never upscaled. */
    assert_int_equal(thumbnail_scale(jpeg->data, jpeg->size, 1280, &out), 0);
    assert_int_equal(out->size, jpeg->size);
    assert_memory_equal(out->data, jpeg->data, jpeg->size);
    blob_unref(out);
    out = NULL;
    assert_int_equal(thumbnail_scale(jpeg->data, jpeg->size, 15, &out), -EINVAL);
    assert_int_equal(thumbnail_scale(jpeg->data, jpeg->size, 1281, &out), -EINVAL);
    assert_null(out);
    static const uint8_t junk[64] = {0xFF, 0xD8, 0x12, 0x34};
    int rc = thumbnail_scale(junk, sizeof(junk), 320, &out);
    assert_true(rc == -EPROTO || rc == -EIO);
    assert_null(out);
    blob_unref(jpeg);
    av_frame_free(&pic);
}

static store_t *memory_store(void)
{
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    return st;
}

static void test_producer_picture(void **state)
{
    (void)state;
    store_t *st = memory_store();
    thumbnail_params_t p = {.store = st, .stream_id = "cam1", .live_ttl_ms = 60000,
                            .ended_ttl_ms = 5000};
    thumbnail_t *th = NULL;
    assert_int_equal(thumbnail_new(&p, &th), 0);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "cam1", THUMBNAIL_NAME, &b), -ENOENT);
    thumbnail_end(th); /* nothing stored yet: nothing to expire */

    AVFrame *a = make_picture(1920, 1080, 0);
    thumbnail_picture(th, a);
    assert_int_equal(thumbnail_count(th), 1);
    printf("# producer, decoded 1080p picture: %.1f ms per thumbnail\n", thumbnail_last_ms(th));
    assert_int_equal(store_get(st, "cam1", THUMBNAIL_NAME, &b), 0);
    int w, h;
    jpeg_size(b, &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    /* A changed picture replaces it with other bytes. */
    AVFrame *c = make_picture(1920, 1080, 960);
    thumbnail_picture(th, c);
    blob_t *b2 = NULL;
    assert_int_equal(store_get(st, "cam1", THUMBNAIL_NAME, &b2), 0);
    assert_true(b2->size != b->size || memcmp(b2->data, b->data, b->size) != 0);
    thumbnail_end(th);
    assert_int_equal(thumbnail_count(th), 2);
    blob_unref(b);
    blob_unref(b2);
    av_frame_free(&a);
    av_frame_free(&c);
    thumbnail_free(th);
    thumbnail_free(NULL);
    store_close(st);
}

/* The copy-only path: a real H.264 IDR (AVCC, with its avcC) from the
 * rung encoder, decoded by the thumbnail's own decoder. */
static void test_producer_keyframe(void **state)
{
    (void)state;
    rung_encoder_params_t ep = {.name = "t", .width = 640, .height = 360, .bitrate_kbps = 800,
                                .maxrate_kbps = 1000, .profile = "high", .preset = "ultrafast",
                                .pin_preset = "ultrafast", .fps_num = 30, .fps_den = 1,
                                .threads = 1, .log_ctx = "test"};
    rung_encoder_t *enc = NULL;
    assert_int_equal(rung_encoder_open(&ep, &enc), 0);
    AVFrame *pic = make_picture(640, 360, 0);
    pic->pts = 0;
    assert_int_equal(rung_encoder_send(enc, pic, true), 0);
    assert_int_equal(rung_encoder_flush(enc), 0);
    rung_sample_t smp;
    assert_int_equal(rung_encoder_receive(enc, &smp), 0);
    assert_true(smp.key);
    const uint8_t *avcc;
    size_t avcc_size;
    rung_encoder_avcc(enc, &avcc, &avcc_size);

    store_t *st = memory_store();
    thumbnail_params_t p = {.store = st, .stream_id = "copy1", .live_ttl_ms = 60000,
                            .ended_ttl_ms = 5000};
    thumbnail_t *th = NULL;
    assert_int_equal(thumbnail_new(&p, &th), 0);
    /* Garbage is skipped without a thumbnail (and without failing). */
    static const uint8_t junk[32] = {0, 0, 0, 28, 0x65, 1, 2, 3};
    thumbnail_keyframe(th, MEDIA_CODEC_H264, avcc, avcc_size, junk, sizeof(junk));
    assert_int_equal(thumbnail_count(th), 0);
    for (int i = 0; i < 3; i++) /* the decoder is reused: drained and flushed each time */
        thumbnail_keyframe(th, MEDIA_CODEC_H264, avcc, avcc_size, smp.data, smp.size);
    assert_int_equal(thumbnail_count(th), 3);
    printf("# producer, 360p H.264 keyframe decoded on its own: %.1f ms per thumbnail\n",
           thumbnail_last_ms(th));
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "copy1", THUMBNAIL_NAME, &b), 0);
    int w, h;
    jpeg_size(b, &w, &h);
    assert_int_equal(w, 640);
    assert_int_equal(h, 360);
    AVFrame *d = jpeg_decode(b);
    assert_in_range(d->data[0][50 * d->linesize[0] + 40], 0, 20);    /* black half */
    assert_in_range(d->data[0][50 * d->linesize[0] + 600], 235, 255); /* white half */
    av_frame_free(&d);
    blob_unref(b);
    thumbnail_free(th);
    store_close(st);
    av_frame_free(&pic);
    rung_encoder_free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_live_ttl),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_producer_picture),
        cmocka_unit_test(test_producer_keyframe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
