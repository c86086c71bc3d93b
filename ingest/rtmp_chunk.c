/*
 * RTMP chunk stream reader and writer (Adobe RTMP spec 5.3). The reader is
 * an incremental state machine: it collects one chunk header at a time (its
 * length depends on the format bits, the csid form and, for type 3, on
 * whether the stream's last header used an extended timestamp), then copies
 * the chunk body into that chunk stream's message buffer. It never relies
 * on how the input was split. Message buffers grow with the data actually
 * received, never straight to the announced length, so a peer announcing
 * large messages on many chunk streams costs only what it sends; and what
 * all of them hold together is capped (lim.max_buffered, and the shared
 * pool when there is one), so it cannot send much before it is cut off.
 * Buffers of finished messages are kept for the next message on their
 * chunk stream, and given back when a growth would cross a cap.
 *
 * Timestamps follow the spec: types 1 and 2 carry a delta; a type 3 header
 * that starts a new message repeats the previous delta, and after a type 0
 * header that "delta" is the type 0 timestamp itself (FFmpeg reads and
 * writes it that way).
 *
 * Owned by the caller; one thread (the ingest loop).
 */
#include "rtmp_chunk_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteio.h"

#define RTMP_TS_EXTENDED 0xffffffu

struct rtmp_chunk_stream {
    uint32_t csid;
    bool started;      /* a type 0 header has been seen */
    bool in_progress;  /* a message is being assembled */
    uint32_t ts_field; /* timestamp field of the last type 0/1/2 header */
    uint32_t timestamp;
    uint32_t delta;
    uint32_t length;
    uint8_t type;
    uint32_t stream_id;
    uint8_t *buf;
    size_t cap;
    size_t have;
};

static const uint8_t rtmp_chunk_empty[1];

void rtmp_chunk_reader_init(rtmp_chunk_reader_t *r, const rtmp_chunk_limits_t *lim)
{
    memset(r, 0, sizeof(*r));
    r->lim = *lim;
    r->chunk_size = RTMP_CHUNK_SIZE_DEFAULT;
}

void rtmp_chunk_reader_deinit(rtmp_chunk_reader_t *r)
{
    for (size_t i = 0; i < r->nstreams; i++)
        free(r->streams[i].buf);
    free(r->streams);
    if (r->pool)
        r->pool->used -= r->buffered;
    memset(r, 0, sizeof(*r));
}

void rtmp_chunk_reader_set_limits(rtmp_chunk_reader_t *r, const rtmp_chunk_limits_t *lim,
                                  rtmp_chunk_budget_t *pool)
{
    r->lim = *lim;
    if (pool == r->pool)
        return;
    if (r->pool)
        r->pool->used -= r->buffered;
    if (pool)
        pool->used += r->buffered;
    r->pool = pool;
}

static int rtmp_chunk_stream_find(rtmp_chunk_reader_t *r, uint32_t csid, size_t *idx)
{
    for (size_t i = 0; i < r->nstreams; i++) {
        if (r->streams[i].csid == csid) {
            *idx = i;
            return 0;
        }
    }
    if (r->nstreams >= r->lim.max_chunk_streams) {
        snprintf(r->error, sizeof(r->error), "more than %u chunk streams",
                 r->lim.max_chunk_streams);
        return -EMSGSIZE;
    }
    if (r->nstreams == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        rtmp_chunk_stream_t *s = realloc(r->streams, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        r->streams = s;
        r->cap = cap;
    }
    memset(&r->streams[r->nstreams], 0, sizeof(r->streams[0]));
    r->streams[r->nstreams].csid = csid;
    *idx = r->nstreams++;
    return 0;
}

static void rtmp_chunk_stream_reset(rtmp_chunk_stream_t *st)
{
    st->have = 0;
    st->in_progress = false;
}

/* Length of the chunk header collected so far, or 0 when it cannot be
 * known yet. Looks up the chunk stream for type 3's extended timestamp. */
static size_t rtmp_chunk_header_len(const rtmp_chunk_reader_t *r)
{
    static const size_t mh_len[4] = {11, 7, 3, 0};
    if (r->hdr_have < 1)
        return 1;
    size_t basic = (r->hdr[0] & 0x3f) == 0 ? 2 : (r->hdr[0] & 0x3f) == 1 ? 3 : 1;
    unsigned fmt = r->hdr[0] >> 6;
    size_t need = basic + mh_len[fmt];
    if (r->hdr_have < need)
        return need;
    bool ext;
    if (fmt < 3) {
        ext = ((uint32_t)r->hdr[basic] << 16 | (uint32_t)r->hdr[basic + 1] << 8 |
               r->hdr[basic + 2]) == RTMP_TS_EXTENDED;
    } else {
        uint32_t csid = (r->hdr[0] & 0x3f);
        if (csid == 0)
            csid = 64u + r->hdr[1];
        else if (csid == 1)
            csid = 64u + r->hdr[1] + ((uint32_t)r->hdr[2] << 8);
        ext = false;
        for (size_t i = 0; i < r->nstreams; i++)
            if (r->streams[i].csid == csid)
                ext = r->streams[i].started && r->streams[i].ts_field == RTMP_TS_EXTENDED;
    }
    return need + (ext ? 4 : 0);
}

/* Frees the buffers of chunk streams with no message in progress. */
static void rtmp_chunk_release_idle(rtmp_chunk_reader_t *r)
{
    for (size_t i = 0; i < r->nstreams; i++) {
        rtmp_chunk_stream_t *st = &r->streams[i];
        if (st->in_progress || !st->buf)
            continue;
        free(st->buf);
        st->buf = NULL;
        r->buffered -= st->cap;
        if (r->pool)
            r->pool->used -= st->cap;
        st->cap = 0;
    }
}

/* True when holding `extra` more bytes would cross a cap. */
static bool rtmp_chunk_over(const rtmp_chunk_reader_t *r, size_t extra)
{
    if (r->lim.max_buffered && r->buffered + extra > r->lim.max_buffered)
        return true;
    return r->pool && r->pool->used + extra > r->pool->limit;
}

/* Grows st->buf to hold `need` bytes, at most the message length, within
 * the caps (-EMSGSIZE past them). */
static int rtmp_chunk_stream_grow(rtmp_chunk_reader_t *r, rtmp_chunk_stream_t *st, size_t need)
{
    if (need <= st->cap)
        return 0;
    size_t cap = st->cap ? st->cap * 2 : 4096;
    if (cap < need)
        cap = need;
    if (cap > st->length)
        cap = st->length;
    size_t extra = cap - st->cap;
    if (rtmp_chunk_over(r, extra)) {
        rtmp_chunk_release_idle(r);
        if (rtmp_chunk_over(r, extra)) {
            /* The caps count what is allocated: say how much that would be. */
            if (r->lim.max_buffered && r->buffered + extra > r->lim.max_buffered)
                snprintf(r->error, sizeof(r->error),
                         "unfinished messages would hold %zu bytes (limit %zu)",
                         r->buffered + extra, r->lim.max_buffered);
            else
                snprintf(r->error, sizeof(r->error),
                         "connections not publishing would hold %zu bytes (process-wide "
                         "limit %zu)",
                         r->pool->used + extra, r->pool->limit);
            return -EMSGSIZE;
        }
    }
    uint8_t *p = realloc(st->buf, cap);
    if (!p) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        return -ENOMEM;
    }
    st->buf = p;
    st->cap = cap;
    r->buffered += extra;
    if (r->pool)
        r->pool->used += extra;
    return 0;
}

static void rtmp_chunk_fill_message(const rtmp_chunk_stream_t *st, rtmp_message_t *msg)
{
    msg->csid = st->csid;
    msg->type = st->type;
    msg->stream_id = st->stream_id;
    msg->timestamp = st->timestamp;
    msg->data = st->length ? st->buf : rtmp_chunk_empty;
    msg->len = st->length;
}

/* Applies a complete header in r->hdr. May complete a zero-length message
 * (returns 1 then). */
static int rtmp_chunk_parse_header(rtmp_chunk_reader_t *r)
{
    byteio_reader_t br;
    byteio_init(&br, r->hdr, r->hdr_have);
    uint8_t b0 = byteio_u8(&br);
    unsigned fmt = b0 >> 6;
    uint32_t csid = b0 & 0x3f;
    if (csid == 0)
        csid = 64u + byteio_u8(&br);
    else if (csid == 1) {
        uint32_t lo = byteio_u8(&br);
        csid = 64u + lo + ((uint32_t)byteio_u8(&br) << 8);
    }
    size_t idx;
    int ret = rtmp_chunk_stream_find(r, csid, &idx);
    if (ret == -ENOMEM)
        snprintf(r->error, sizeof(r->error), "out of memory");
    if (ret < 0)
        return ret;
    rtmp_chunk_stream_t *st = &r->streams[idx];

    if (fmt != 0 && !st->started) {
        snprintf(r->error, sizeof(r->error), "type %u header on new chunk stream %u", fmt, csid);
        return -EPROTO; /* nothing to inherit from */
    }
    if (fmt != 3 && st->in_progress) {
        snprintf(r->error, sizeof(r->error), "new header inside a message on chunk stream %u",
                 csid);
        return -EPROTO;
    }

    bool new_message = !st->in_progress;
    if (fmt <= 2) {
        uint32_t ts = byteio_be24(&br);
        if (fmt <= 1) {
            st->length = byteio_be24(&br);
            st->type = byteio_u8(&br);
        }
        if (fmt == 0)
            st->stream_id = byteio_le32(&br);
        st->ts_field = ts;
        if (ts == RTMP_TS_EXTENDED)
            ts = byteio_be32(&br);
        if (fmt == 0) {
            st->timestamp = ts;
            st->started = true;
        } else {
            st->timestamp += ts;
        }
        st->delta = ts;
    } else {
        if (st->ts_field == RTMP_TS_EXTENDED)
            byteio_skip(&br, 4); /* repeats the value the header had */
        if (new_message)
            st->timestamp += st->delta;
    }
    if (br.error)
        return -EPROTO; /* cannot happen: rtmp_chunk_header_len sized it */

    if (new_message) {
        if (st->length > r->lim.max_message_size) {
            snprintf(r->error, sizeof(r->error), "message of %u bytes (limit %u)", st->length,
                     r->lim.max_message_size);
            return -EMSGSIZE;
        }
        st->in_progress = true;
        st->have = 0;
    }
    r->cur = idx;
    uint32_t remaining = st->length - (uint32_t)st->have;
    r->body_left = remaining < r->chunk_size ? remaining : r->chunk_size;
    r->in_body = true;
    return 0;
}

/* Protocol control messages the chunk layer itself obeys. */
static int rtmp_chunk_apply_control(rtmp_chunk_reader_t *r, const rtmp_message_t *msg)
{
    if (msg->type != RTMP_MSG_SET_CHUNK_SIZE && msg->type != RTMP_MSG_ABORT)
        return 0;
    if (msg->len < 4) {
        snprintf(r->error, sizeof(r->error), "control message of %zu bytes", msg->len);
        return -EPROTO;
    }
    byteio_reader_t br;
    byteio_init(&br, msg->data, msg->len);
    uint32_t v = byteio_be32(&br);
    if (msg->type == RTMP_MSG_SET_CHUNK_SIZE) {
        v &= RTMP_CHUNK_SIZE_MAX; /* the top bit is reserved */
        if (v == 0) {
            snprintf(r->error, sizeof(r->error), "Set Chunk Size 0");
            return -EPROTO;
        }
        if (v > r->lim.max_chunk_size) {
            snprintf(r->error, sizeof(r->error), "Set Chunk Size %u (limit %u)", v,
                     r->lim.max_chunk_size);
            return -EMSGSIZE;
        }
        r->chunk_size = v;
    } else {
        for (size_t i = 0; i < r->nstreams; i++)
            if (r->streams[i].csid == v && i != r->done)
                rtmp_chunk_stream_reset(&r->streams[i]);
    }
    return 0;
}

int rtmp_chunk_reader_feed(rtmp_chunk_reader_t *r, const uint8_t *data, size_t len,
                           size_t *consumed, rtmp_message_t *msg)
{
    size_t pos = 0;
    int ret;
    *consumed = 0;

    /* The message returned last time is done with now. */
    if (r->has_done) {
        rtmp_chunk_stream_reset(&r->streams[r->done]);
        r->has_done = false;
    }

    /* Every pass either consumes input, completes a message or stops. */
    for (;;) {
        if (!r->in_body) {
            size_t need = rtmp_chunk_header_len(r);
            while (r->hdr_have < need && pos < len) {
                r->hdr[r->hdr_have++] = data[pos++];
                need = rtmp_chunk_header_len(r);
            }
            if (r->hdr_have < need)
                break;
            ret = rtmp_chunk_parse_header(r);
            r->hdr_have = 0;
            if (ret < 0)
                goto fail;
        }
        rtmp_chunk_stream_t *st = &r->streams[r->cur];
        if (r->body_left > 0) {
            size_t n = len - pos < r->body_left ? len - pos : r->body_left;
            if (n == 0)
                break;
            ret = rtmp_chunk_stream_grow(r, st, st->have + n);
            if (ret < 0)
                goto fail;
            memcpy(st->buf + st->have, data + pos, n);
            st->have += n;
            pos += n;
            r->body_left -= (uint32_t)n;
            if (r->body_left > 0)
                break; /* input exhausted mid-chunk */
        }
        r->in_body = false;
        if (st->have == st->length) {
            rtmp_chunk_fill_message(st, msg);
            r->has_done = true;
            r->done = r->cur;
            ret = rtmp_chunk_apply_control(r, msg);
            if (ret < 0)
                goto fail;
            *consumed = pos;
            return 0;
        }
    }
    *consumed = pos;
    return -EAGAIN;
fail:
    *consumed = pos;
    return ret;
}

/* Basic header for (fmt, csid). Returns its length. */
static size_t rtmp_chunk_basic_header(uint8_t *p, unsigned fmt, uint32_t csid)
{
    if (csid < 64) {
        p[0] = (uint8_t)(fmt << 6 | csid);
        return 1;
    }
    if (csid < 320) {
        p[0] = (uint8_t)(fmt << 6);
        p[1] = (uint8_t)(csid - 64);
        return 2;
    }
    p[0] = (uint8_t)(fmt << 6 | 1);
    p[1] = (uint8_t)((csid - 64) & 0xff);
    p[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

int rtmp_chunk_write(buf_t *out, uint32_t chunk_size, const rtmp_message_t *msg)
{
    if (msg->csid < RTMP_CSID_MIN || msg->csid > RTMP_CSID_MAX || chunk_size == 0 ||
        msg->len > 0xffffff)
        return -EINVAL;
    bool ext = msg->timestamp >= RTMP_TS_EXTENDED;
    uint8_t hdr[18];
    size_t n = rtmp_chunk_basic_header(hdr, 0, msg->csid);
    byteio_put_be24(hdr + n, ext ? RTMP_TS_EXTENDED : msg->timestamp);
    byteio_put_be24(hdr + n + 3, (uint32_t)msg->len);
    hdr[n + 6] = msg->type;
    byteio_put_le32(hdr + n + 7, msg->stream_id);
    n += 11;
    if (ext) {
        byteio_put_be32(hdr + n, msg->timestamp);
        n += 4;
    }
    buf_append(out, hdr, n);

    size_t off = 0;
    for (;;) {
        size_t take = msg->len - off < chunk_size ? msg->len - off : chunk_size;
        if (take)
            buf_append(out, msg->data + off, take);
        off += take;
        if (off >= msg->len)
            break;
        n = rtmp_chunk_basic_header(hdr, 3, msg->csid);
        if (ext) {
            byteio_put_be32(hdr + n, msg->timestamp);
            n += 4;
        }
        buf_append(out, hdr, n);
    }
    return out->oom ? -ENOMEM : 0;
}
