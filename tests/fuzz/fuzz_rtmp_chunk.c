/*
 * libFuzzer target for ingest/rtmp_chunk.c. Input: a byte seeding the
 * split, a byte choosing the writer's chunk size, then a chunk stream.
 * Checks that (1) feeding the stream whole and split at arbitrary points
 * yields the same messages and the same error, and (2) every message the
 * reader returns survives rtmp_chunk_write + a second reader unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_chunk_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_MSGS 4096

typedef struct fuzz_msg {
    uint32_t csid, stream_id, timestamp;
    uint8_t type;
    size_t len;
    uint64_t hash;
} fuzz_msg_t;

static const rtmp_chunk_limits_t fuzz_limits = {
    .max_message_size = 1 << 16, .max_chunk_size = 1 << 16, .max_chunk_streams = 8};

static uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void fuzz_record(fuzz_msg_t *m, const rtmp_message_t *msg)
{
    m->csid = msg->csid;
    m->stream_id = msg->stream_id;
    m->timestamp = msg->timestamp;
    m->type = msg->type;
    m->len = msg->len;
    m->hash = fuzz_hash(msg->data, msg->len);
}

/* Runs the reader over data in pieces (max_piece 0: whole). Returns the
 * final error; fills out[] with up to FUZZ_MAX_MSGS messages. */
static int fuzz_run(const uint8_t *data, size_t size, uint32_t seed, size_t max_piece,
                    fuzz_msg_t *out, size_t *nout, uint32_t wchunk, bool rewrite)
{
    rtmp_chunk_reader_t r;
    rtmp_chunk_reader_init(&r, &fuzz_limits);
    size_t pos = 0;
    int ret = -EAGAIN;
    *nout = 0;
    while (pos < size && ret == -EAGAIN) {
        size_t piece = size - pos;
        if (max_piece) {
            seed = seed * 1103515245u + 12345u;
            size_t p = 1 + (seed >> 16) % max_piece;
            if (p < piece)
                piece = p;
        }
        uint8_t *copy = malloc(piece);
        if (!copy)
            abort();
        memcpy(copy, data + pos, piece);
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            rtmp_message_t msg;
            ret = rtmp_chunk_reader_feed(&r, copy + off, piece - off, &used, &msg);
            if (used > piece - off)
                abort();
            off += used;
            if (ret != 0)
                break;
            if (*nout < FUZZ_MAX_MSGS)
                fuzz_record(&out[(*nout)++], &msg);
            if (rewrite && msg.type != RTMP_MSG_SET_CHUNK_SIZE && msg.type != RTMP_MSG_ABORT) {
                buf_t b = {0};
                if (rtmp_chunk_write(&b, wchunk, &msg) != 0)
                    abort();
                rtmp_chunk_reader_t r2;
                rtmp_chunk_reader_init(&r2, &fuzz_limits);
                r2.chunk_size = wchunk;
                rtmp_message_t m2;
                size_t used2 = 0;
                if (rtmp_chunk_reader_feed(&r2, b.bytes, b.len, &used2, &m2) != 0 ||
                    used2 != b.len || m2.len != msg.len || m2.type != msg.type ||
                    m2.csid != msg.csid || m2.timestamp != msg.timestamp ||
                    m2.stream_id != msg.stream_id ||
                    (msg.len && memcmp(m2.data, msg.data, msg.len) != 0))
                    abort();
                rtmp_chunk_reader_deinit(&r2);
                buf_deinit(&b);
            }
        }
        free(copy);
        if (ret == -EAGAIN && off != piece)
            abort();
        pos += piece;
    }
    rtmp_chunk_reader_deinit(&r);
    return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = data[0];
    static const uint32_t wsizes[4] = {1, 128, 4096, 65536};
    uint32_t wchunk = wsizes[data[1] & 3];
    data += 2;
    size -= 2;

    static fuzz_msg_t whole[FUZZ_MAX_MSGS], split[FUZZ_MAX_MSGS];
    size_t nwhole, nsplit;
    int rw = fuzz_run(data, size, 0, 0, whole, &nwhole, wchunk, true);
    int rs = fuzz_run(data, size, seed, 1 + (seed % 64) * 7, split, &nsplit, wchunk, false);
    if (rw != rs || nwhole != nsplit)
        abort();
    for (size_t i = 0; i < nwhole; i++) {
        const fuzz_msg_t *a = &whole[i], *b = &split[i];
        if (a->csid != b->csid || a->stream_id != b->stream_id || a->timestamp != b->timestamp ||
            a->type != b->type || a->len != b->len || a->hash != b->hash)
            abort();
    }
    return 0;
}
