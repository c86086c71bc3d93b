/* Unit tests for ingest/rtmp_chunk.c: every chunk header type, extended
 * timestamps, Set Chunk Size and Abort, reassembly under arbitrary input
 * splits, the caps (per message, per reader, shared), and the writer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rtmp_chunk_internal.h"

static const rtmp_chunk_limits_t test_limits = {
    .max_message_size = 1 << 20, .max_chunk_size = 65536, .max_chunk_streams = 16};

/* ---- building a byte stream by hand ----------------------------------- */

static void put_basic(buf_t *b, unsigned fmt, uint32_t csid)
{
    if (csid < 64) {
        buf_u8(b, (uint8_t)(fmt << 6 | csid));
    } else if (csid < 320) {
        buf_u8(b, (uint8_t)(fmt << 6));
        buf_u8(b, (uint8_t)(csid - 64));
    } else {
        buf_u8(b, (uint8_t)(fmt << 6 | 1));
        buf_u8(b, (uint8_t)((csid - 64) & 0xff));
        buf_u8(b, (uint8_t)((csid - 64) >> 8));
    }
}

static void put24(buf_t *b, uint32_t v)
{
    buf_u8(b, (uint8_t)(v >> 16));
    buf_u8(b, (uint8_t)(v >> 8));
    buf_u8(b, (uint8_t)v);
}

static void put32(buf_t *b, uint32_t v)
{
    put24(b, v >> 8);
    buf_u8(b, (uint8_t)v);
}

/* A chunk header: fmt 0..3; ts is the absolute time (fmt 0) or delta. */
static void put_header(buf_t *b, unsigned fmt, uint32_t csid, uint32_t ts, uint32_t len,
                       uint8_t type, uint32_t msid, bool ext)
{
    put_basic(b, fmt, csid);
    if (fmt <= 2)
        put24(b, ext ? 0xffffff : ts);
    if (fmt <= 1) {
        put24(b, len);
        buf_u8(b, type);
    }
    if (fmt == 0) {
        buf_u8(b, (uint8_t)msid);
        buf_u8(b, (uint8_t)(msid >> 8));
        buf_u8(b, (uint8_t)(msid >> 16));
        buf_u8(b, (uint8_t)(msid >> 24));
    }
    if (ext)
        put32(b, ts);
}

static void put_bytes(buf_t *b, uint8_t seed, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_u8(b, (uint8_t)(seed + i * 7));
}

typedef struct expect {
    uint32_t csid;
    uint8_t type;
    uint32_t msid;
    uint32_t ts;
    uint32_t len;
    uint8_t seed;
} expect_t;

/*
 * A publisher-like session as it might come off the wire: connect chunked at
 * 128, Set Chunk Size 4096 from the peer, metadata, audio and video on
 * their own chunk streams using all four header types and interleaving
 * chunks, a message with an extended timestamp whose type-3 continuation
 * repeats it, an aborted message, large csids.
 */
static size_t build_capture(buf_t *b, expect_t *ex)
{
    size_t n = 0;
    /* 1: a 300-byte command on csid 3, chunk size 128: 0 + 3 + 3. */
    put_header(b, 0, 3, 0, 300, RTMP_MSG_COMMAND_AMF0, 0, false);
    put_bytes(b, 1, 128);
    put_header(b, 3, 3, 0, 0, 0, 0, false);
    put_bytes(b, (uint8_t)(1 + 128 * 7), 128);
    put_header(b, 3, 3, 0, 0, 0, 0, false);
    put_bytes(b, (uint8_t)(1 + 256 * 7), 44);
    ex[n++] = (expect_t){3, RTMP_MSG_COMMAND_AMF0, 0, 0, 300, 1};
    /* 2: Set Chunk Size 4096 (a control message the reader obeys). */
    put_header(b, 0, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
    put32(b, 4096);
    ex[n++] = (expect_t){2, RTMP_MSG_SET_CHUNK_SIZE, 0, 0, 4, 0};
    /* 3: video 5000 bytes at t=1000 on csid 6 (4096 + 904), with an audio
     * message on csid 4 (type 0, t=1000) slipped between its chunks. */
    put_header(b, 0, 6, 1000, 5000, RTMP_MSG_VIDEO, 1, false);
    put_bytes(b, 3, 4096);
    put_header(b, 0, 4, 1000, 10, RTMP_MSG_AUDIO, 1, false);
    put_bytes(b, 4, 10);
    ex[n++] = (expect_t){4, RTMP_MSG_AUDIO, 1, 1000, 10, 4};
    put_header(b, 3, 6, 0, 0, 0, 0, false);
    put_bytes(b, (uint8_t)(3 + 4096 * 7), 904);
    ex[n++] = (expect_t){6, RTMP_MSG_VIDEO, 1, 1000, 5000, 3};
    /* 4: audio type 2 (delta 21, same length), then type 3 (delta again). */
    put_header(b, 2, 4, 21, 0, 0, 0, false);
    put_bytes(b, 5, 10);
    ex[n++] = (expect_t){4, RTMP_MSG_AUDIO, 1, 1021, 10, 5};
    put_header(b, 3, 4, 0, 0, 0, 0, false);
    put_bytes(b, 6, 10);
    ex[n++] = (expect_t){4, RTMP_MSG_AUDIO, 1, 1042, 10, 6};
    /* 5: video type 1 (delta 33, new length). */
    put_header(b, 1, 6, 33, 20, RTMP_MSG_VIDEO, 0, false);
    put_bytes(b, 7, 20);
    ex[n++] = (expect_t){6, RTMP_MSG_VIDEO, 1, 1033, 20, 7};
    /* 6: data message on csid 320 (3-byte basic header), csid 64 (2-byte). */
    put_header(b, 0, 320, 1033, 6, RTMP_MSG_DATA_AMF0, 1, false);
    put_bytes(b, 8, 6);
    ex[n++] = (expect_t){320, RTMP_MSG_DATA_AMF0, 1, 1033, 6, 8};
    put_header(b, 0, 64, 7, 3, RTMP_MSG_USER_CONTROL, 0, false);
    put_bytes(b, 9, 3);
    ex[n++] = (expect_t){64, RTMP_MSG_USER_CONTROL, 0, 7, 3, 9};
    /* 7: extended timestamp 0x01000000 on a 5000-byte video message; the
     * type-3 continuation carries it again. */
    put_header(b, 0, 7, 0x01000000, 5000, RTMP_MSG_VIDEO, 1, true);
    put_bytes(b, 10, 4096);
    put_header(b, 3, 7, 0x01000000, 0, 0, 0, true);
    put_bytes(b, (uint8_t)(10 + 4096 * 7), 904);
    ex[n++] = (expect_t){7, RTMP_MSG_VIDEO, 1, 0x01000000, 5000, 10};
    /* 8: type 1 with an extended delta, then type 3 starting a new message
     * (the delta repeats, and so does the extended field). */
    put_header(b, 1, 7, 0x01000000, 2, RTMP_MSG_VIDEO, 0, true);
    put_bytes(b, 11, 2);
    ex[n++] = (expect_t){7, RTMP_MSG_VIDEO, 1, 0x02000000, 2, 11};
    put_header(b, 3, 7, 0x01000000, 0, 0, 0, true);
    put_bytes(b, 12, 2);
    ex[n++] = (expect_t){7, RTMP_MSG_VIDEO, 1, 0x03000000, 2, 12};
    /* 9: a message on csid 5 abandoned after its first chunk by Abort. */
    put_header(b, 0, 5, 50, 5000, RTMP_MSG_VIDEO, 1, false);
    put_bytes(b, 13, 4096);
    put_header(b, 0, 2, 0, 4, RTMP_MSG_ABORT, 0, false);
    put32(b, 5);
    ex[n++] = (expect_t){2, RTMP_MSG_ABORT, 0, 0, 4, 0};
    /* ...so a fresh type 0 on csid 5 is legal again. */
    put_header(b, 0, 5, 60, 1, RTMP_MSG_VIDEO, 1, false);
    put_bytes(b, 14, 1);
    ex[n++] = (expect_t){5, RTMP_MSG_VIDEO, 1, 60, 1, 14};
    /* 10: a zero-length message. */
    put_header(b, 0, 4, 2000, 0, RTMP_MSG_AUDIO, 1, false);
    ex[n++] = (expect_t){4, RTMP_MSG_AUDIO, 1, 2000, 0, 0};
    /* 11: type 0 then type 3 for a new message: per the spec the type 3
     * repeats the type 0 timestamp as its delta (FFmpeg reads it so). */
    put_header(b, 0, 8, 40, 1, RTMP_MSG_AUDIO, 1, false);
    put_bytes(b, 15, 1);
    ex[n++] = (expect_t){8, RTMP_MSG_AUDIO, 1, 40, 1, 15};
    put_header(b, 3, 8, 0, 0, 0, 0, false);
    put_bytes(b, 16, 1);
    ex[n++] = (expect_t){8, RTMP_MSG_AUDIO, 1, 80, 1, 16};
    return n;
}

static void check_message(const rtmp_message_t *m, const expect_t *e)
{
    assert_int_equal(m->csid, e->csid);
    assert_int_equal(m->type, e->type);
    assert_int_equal(m->stream_id, e->msid);
    assert_int_equal(m->timestamp, e->ts);
    assert_int_equal(m->len, e->len);
    if (e->type == RTMP_MSG_SET_CHUNK_SIZE || e->type == RTMP_MSG_ABORT)
        return;
    for (size_t i = 0; i < e->len; i++)
        assert_int_equal(m->data[i], (uint8_t)(e->seed + i * 7));
}

/* Feeds `data` in pieces given by next_piece and checks the messages. */
static void feed_split(const uint8_t *data, size_t len, const expect_t *ex, size_t nex,
                       uint32_t seed, size_t max_piece)
{
    rtmp_chunk_reader_t r;
    rtmp_chunk_reader_init(&r, &test_limits);
    size_t got = 0, pos = 0;
    while (pos < len) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 8) % max_piece;
        if (piece > len - pos)
            piece = len - pos;
        /* Copy into a buffer of exactly that size so ASan sees any read past it. */
        uint8_t *copy = malloc(piece);
        memcpy(copy, data + pos, piece);
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            rtmp_message_t m;
            int ret = rtmp_chunk_reader_feed(&r, copy + off, piece - off, &used, &m);
            off += used;
            if (ret == -EAGAIN) {
                assert_int_equal(off, piece);
                break;
            }
            assert_int_equal(ret, 0);
            assert_true(got < nex);
            check_message(&m, &ex[got++]);
        }
        free(copy);
        pos += piece;
    }
    assert_int_equal(got, nex);
    assert_int_equal(r.chunk_size, 4096);
    rtmp_chunk_reader_deinit(&r);
}

static void test_capture_whole_and_random_splits(void **state)
{
    (void)state;
    buf_t b = {0};
    expect_t ex[32];
    size_t nex = build_capture(&b, ex);
    assert_false(b.oom);
    feed_split(b.bytes, b.len, ex, nex, 1, b.len); /* mostly large pieces */
    for (uint32_t seed = 1; seed <= 300; seed++)
        feed_split(b.bytes, b.len, ex, nex, seed, 1 + seed % 40);
    feed_split(b.bytes, b.len, ex, nex, 7, 1); /* byte by byte */
    buf_deinit(&b);
}

static int feed_all(rtmp_chunk_reader_t *r, const uint8_t *data, size_t len, size_t *nmsg)
{
    size_t pos = 0;
    *nmsg = 0;
    while (pos <= len) {
        size_t used = 0;
        rtmp_message_t m;
        int ret = rtmp_chunk_reader_feed(r, data + pos, len - pos, &used, &m);
        pos += used;
        if (ret != 0)
            return ret;
        (*nmsg)++;
    }
    return 0;
}

static void test_errors(void **state)
{
    (void)state;
    rtmp_chunk_reader_t r;
    size_t n;
    buf_t b = {0};

    /* Type 1/2/3 on a chunk stream never started. */
    for (unsigned fmt = 1; fmt <= 3; fmt++) {
        buf_reset(&b);
        put_header(&b, fmt, 4, 10, 1, RTMP_MSG_AUDIO, 0, false);
        put_bytes(&b, 0, 1);
        rtmp_chunk_reader_init(&r, &test_limits);
        assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EPROTO);
        rtmp_chunk_reader_deinit(&r);
    }
    /* A new type 0 header in the middle of a message. */
    buf_reset(&b);
    put_header(&b, 0, 4, 0, 200, RTMP_MSG_AUDIO, 1, false);
    put_bytes(&b, 0, 128);
    put_header(&b, 0, 4, 0, 200, RTMP_MSG_AUDIO, 1, false);
    rtmp_chunk_reader_init(&r, &test_limits);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EPROTO);
    rtmp_chunk_reader_deinit(&r);
    /* Message over the size cap: refused at the header. */
    buf_reset(&b);
    put_header(&b, 0, 4, 0, (1 << 20) + 1, RTMP_MSG_VIDEO, 1, false);
    rtmp_chunk_reader_init(&r, &test_limits);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EMSGSIZE);
    assert_string_equal(r.error, "message of 1048577 bytes (limit 1048576)");
    rtmp_chunk_reader_deinit(&r);
    /* Too many chunk streams. */
    buf_reset(&b);
    for (uint32_t csid = 3; csid < 3 + 17; csid++) {
        put_header(&b, 0, csid, 0, 1, RTMP_MSG_AUDIO, 1, false);
        put_bytes(&b, 0, 1);
    }
    rtmp_chunk_reader_init(&r, &test_limits);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EMSGSIZE);
    assert_int_equal(n, 16);
    assert_string_equal(r.error, "more than 16 chunk streams");
    rtmp_chunk_reader_deinit(&r);
    /* Set Chunk Size 0, over the cap, and too short. */
    static const uint32_t sizes[] = {0, 0x80000000u, 65537};
    static const int expect[] = {-EPROTO, -EPROTO, -EMSGSIZE};
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&b);
        put_header(&b, 0, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
        put32(&b, sizes[i]);
        rtmp_chunk_reader_init(&r, &test_limits);
        assert_int_equal(feed_all(&r, b.bytes, b.len, &n), expect[i]);
        rtmp_chunk_reader_deinit(&r);
    }
    buf_reset(&b);
    put_header(&b, 0, 2, 0, 2, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
    put_bytes(&b, 0, 2);
    rtmp_chunk_reader_init(&r, &test_limits);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EPROTO);
    rtmp_chunk_reader_deinit(&r);
    buf_deinit(&b);
}

/* A peer announcing a large message must not make us allocate it all. */
static void test_announced_size_not_preallocated(void **state)
{
    (void)state;
    buf_t b = {0};
    put_header(&b, 0, 4, 0, 1 << 20, RTMP_MSG_VIDEO, 1, false);
    put_bytes(&b, 0, 100);
    rtmp_chunk_reader_t r;
    rtmp_chunk_reader_init(&r, &test_limits);
    size_t n;
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EAGAIN);
    assert_true(r.nstreams == 1);
    rtmp_chunk_reader_deinit(&r);
    buf_deinit(&b);
}

/* Set Chunk Size 10000 on csid 2. */
static void put_set_chunk_size(buf_t *b)
{
    put_header(b, 0, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
    put32(b, 10000);
}

/* The first `len` bytes (a multiple of 10000) of a `total`-byte message on
 * `csid`, as 10000-byte chunks. */
static void put_partial(buf_t *b, uint32_t csid, uint32_t total, size_t len)
{
    put_header(b, 0, csid, 0, total, RTMP_MSG_AUDIO, 1, false);
    for (size_t off = 0; off < len; off += 10000) {
        if (off)
            put_basic(b, 3, csid);
        put_bytes(b, (uint8_t)csid, len - off < 10000 ? len - off : 10000);
    }
}

/* What unfinished messages hold is capped per reader; idle buffers are
 * given back before a growth is refused. */
static void test_buffered_cap(void **state)
{
    (void)state;
    rtmp_chunk_limits_t lim = test_limits;
    lim.max_buffered = 65536;
    rtmp_chunk_reader_t r;
    size_t n;
    buf_t b = {0};

    rtmp_chunk_reader_init(&r, &lim);
    put_set_chunk_size(&b);
    for (uint32_t csid = 4; csid < 7; csid++)
        put_partial(&b, csid, 32768, 20000);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EAGAIN);
    assert_int_equal(n, 1);
    assert_int_equal(r.buffered, 4 + 3 * 20000); /* buffers grow with the data */
    buf_reset(&b);
    put_partial(&b, 7, 32768, 20000);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EMSGSIZE);
    assert_non_null(strstr(r.error, "limit 65536"));
    rtmp_chunk_reader_deinit(&r);

    /* A finished 40000-byte message leaves its buffer idle; the next one
     * on another chunk stream gets the room. */
    rtmp_chunk_reader_init(&r, &lim);
    buf_reset(&b);
    put_set_chunk_size(&b);
    put_partial(&b, 4, 40000, 40000);
    put_partial(&b, 5, 40000, 30000);
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EAGAIN);
    assert_int_equal(n, 2);
    assert_int_equal(r.buffered, 40000); /* csid 5 only */
    rtmp_chunk_reader_deinit(&r);
    buf_deinit(&b);
}

/* Readers sharing a budget: growth past it is refused, deinit and a
 * change of pool move the bytes out of its count. */
static void test_shared_budget(void **state)
{
    (void)state;
    rtmp_chunk_budget_t pool = {.used = 0, .limit = 50000};
    rtmp_chunk_reader_t a, c;
    size_t n;
    buf_t b = {0};

    rtmp_chunk_reader_init(&a, &test_limits);
    rtmp_chunk_reader_set_limits(&a, &test_limits, &pool);
    rtmp_chunk_reader_init(&c, &test_limits);
    rtmp_chunk_reader_set_limits(&c, &test_limits, &pool);
    put_set_chunk_size(&b);
    put_partial(&b, 4, 65536, 30000);
    assert_int_equal(feed_all(&a, b.bytes, b.len, &n), -EAGAIN);
    assert_int_equal(pool.used, 40004);
    assert_int_equal(feed_all(&c, b.bytes, b.len, &n), -EMSGSIZE);
    assert_non_null(strstr(c.error, "process-wide limit 50000"));
    rtmp_chunk_reader_deinit(&c);
    assert_int_equal(pool.used, 40004);

    /* Leaving the pool takes the bytes along. */
    rtmp_chunk_reader_set_limits(&a, &test_limits, NULL);
    assert_int_equal(pool.used, 0);
    rtmp_chunk_reader_set_limits(&a, &test_limits, &pool);
    assert_int_equal(pool.used, 40004);
    rtmp_chunk_reader_deinit(&a);
    assert_int_equal(pool.used, 0);
    buf_deinit(&b);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    static const uint32_t csids[] = {2, 3, 63, 64, 319, 320, 65599};
    static const uint32_t stamps[] = {0, 1000, 0xfffffe, 0xffffff, 0xffffffff};
    uint8_t payload[1000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13);
    for (size_t c = 0; c < sizeof(csids) / sizeof(csids[0]); c++) {
        for (size_t t = 0; t < sizeof(stamps) / sizeof(stamps[0]); t++) {
            buf_t b = {0};
            rtmp_message_t in = {.csid = csids[c], .type = RTMP_MSG_VIDEO, .stream_id = 1,
                                 .timestamp = stamps[t], .data = payload, .len = sizeof(payload)};
            assert_int_equal(rtmp_chunk_write(&b, 128, &in), 0);
            rtmp_chunk_limits_t lim = test_limits;
            lim.max_chunk_streams = 64;
            rtmp_chunk_reader_t r;
            rtmp_chunk_reader_init(&r, &lim);
            size_t used;
            rtmp_message_t out;
            assert_int_equal(rtmp_chunk_reader_feed(&r, b.bytes, b.len, &used, &out), 0);
            assert_int_equal(used, b.len);
            assert_int_equal(out.csid, in.csid);
            assert_int_equal(out.timestamp, in.timestamp);
            assert_int_equal(out.stream_id, 1);
            assert_int_equal(out.len, sizeof(payload));
            assert_memory_equal(out.data, payload, sizeof(payload));
            rtmp_chunk_reader_deinit(&r);
            buf_deinit(&b);
        }
    }
    /* Exact multiples of the chunk size end without an empty chunk. */
    buf_t b = {0};
    rtmp_message_t m = {.csid = 3, .type = 20, .data = payload, .len = 256};
    assert_int_equal(rtmp_chunk_write(&b, 128, &m), 0);
    assert_int_equal(b.len, 12 + 128 + 1 + 128);
    buf_deinit(&b);
    m.csid = 1;
    assert_int_equal(rtmp_chunk_write(&b, 128, &m), -EINVAL);
    m.csid = 3;
    assert_int_equal(rtmp_chunk_write(&b, 0, &m), -EINVAL);
    buf_deinit(&b);
}

/* Every chunk size publishers use (librtmp 128, OBS 4096, ffmpeg's
 * -chunk_size up to 65536): Set Chunk Size, then a 100 kB video message
 * chunked at that size, read back whole. */
static void test_chunk_sizes_128_to_65536(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {128, 129, 1000, 4096, 60000, 65535, 65536};
    size_t plen = 100000;
    uint8_t *payload = malloc(plen);
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t)(i * 13);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        buf_t b = {0};
        put_header(&b, 0, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
        put32(&b, sizes[k]);
        rtmp_message_t in = {.csid = 6, .type = RTMP_MSG_VIDEO, .stream_id = 1,
                             .timestamp = 40, .data = payload, .len = plen};
        assert_int_equal(rtmp_chunk_write(&b, sizes[k], &in), 0);
        rtmp_chunk_reader_t r;
        rtmp_chunk_reader_init(&r, &test_limits);
        size_t used, pos = 0;
        rtmp_message_t out;
        assert_int_equal(rtmp_chunk_reader_feed(&r, b.bytes, b.len, &used, &out), 0);
        assert_int_equal(out.type, RTMP_MSG_SET_CHUNK_SIZE);
        pos += used;
        assert_int_equal(rtmp_chunk_reader_feed(&r, b.bytes + pos, b.len - pos, &used, &out), 0);
        assert_int_equal(r.chunk_size, sizes[k]);
        assert_int_equal(out.len, plen);
        assert_int_equal(out.timestamp, 40);
        assert_memory_equal(out.data, payload, plen);
        rtmp_chunk_reader_deinit(&r);
        buf_deinit(&b);
    }
    /* One past the cap is refused as over a limit. */
    buf_t b = {0};
    put_header(&b, 0, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0, false);
    put32(&b, 65537);
    rtmp_chunk_reader_t r;
    rtmp_chunk_reader_init(&r, &test_limits);
    size_t n;
    assert_int_equal(feed_all(&r, b.bytes, b.len, &n), -EMSGSIZE);
    rtmp_chunk_reader_deinit(&r);
    buf_deinit(&b);
    free(payload);
}

/* The 32-bit message clock wraps: type-0 absolute times just below 2^32,
 * then type-1/2/3 deltas that carry it past, come out modulo 2^32 (the
 * session unwraps them to 64 bits). */
static void test_timestamp_wrap(void **state)
{
    (void)state;
    buf_t b = {0};
    put_header(&b, 0, 6, 0xffffffe0u, 1, RTMP_MSG_VIDEO, 1, true);
    put_bytes(&b, 1, 1);
    put_header(&b, 1, 6, 0x10, 1, RTMP_MSG_VIDEO, 0, false);
    put_bytes(&b, 2, 1);
    put_header(&b, 2, 6, 0x20, 0, 0, 0, false);
    put_bytes(&b, 3, 1);
    put_header(&b, 3, 6, 0, 0, 0, 0, false);
    put_bytes(&b, 4, 1);
    /* A type 0 after the wrap is absolute again. */
    put_header(&b, 0, 6, 0x50, 1, RTMP_MSG_VIDEO, 1, false);
    put_bytes(&b, 5, 1);
    static const uint32_t want[] = {0xffffffe0u, 0xfffffff0u, 0x10, 0x30, 0x50};
    rtmp_chunk_reader_t r;
    rtmp_chunk_reader_init(&r, &test_limits);
    size_t pos = 0;
    for (size_t i = 0; i < 5; i++) {
        size_t used;
        rtmp_message_t out;
        assert_int_equal(rtmp_chunk_reader_feed(&r, b.bytes + pos, b.len - pos, &used, &out), 0);
        pos += used;
        assert_int_equal(out.timestamp, want[i]);
    }
    assert_int_equal(pos, b.len);
    rtmp_chunk_reader_deinit(&r);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_whole_and_random_splits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_announced_size_not_preallocated),
        cmocka_unit_test(test_buffered_cap),
        cmocka_unit_test(test_shared_budget),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_chunk_sizes_128_to_65536),
        cmocka_unit_test(test_timestamp_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
