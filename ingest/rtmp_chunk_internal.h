/*
 * The RTMP chunk stream: reassembles messages from interleaved chunks (all
 * four header types, extended timestamps, Set Chunk Size and Abort applied
 * as they arrive) and splits outgoing messages into chunks.
 *
 * A reader is caller-owned storage used by one thread (the ingest loop).
 * Everything a peer controls is capped by rtmp_chunk_limits_t.
 */
#ifndef SLUICE_INGEST_RTMP_CHUNK_INTERNAL_H
#define SLUICE_INGEST_RTMP_CHUNK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Bytes several chunk readers hold together, e.g. the buffers of every
 * connection that has not published yet: readers charge what they buffer
 * to `used` and refuse to grow past `limit`. Caller-owned; one thread. */
typedef struct rtmp_chunk_budget {
    size_t used;
    size_t limit;
} rtmp_chunk_budget_t;

/* Message types (RTMP spec 5.4, 7.1). */
enum {
    RTMP_MSG_SET_CHUNK_SIZE = 1,
    RTMP_MSG_ABORT = 2,
    RTMP_MSG_ACK = 3,
    RTMP_MSG_USER_CONTROL = 4,
    RTMP_MSG_WINDOW_ACK_SIZE = 5,
    RTMP_MSG_SET_PEER_BANDWIDTH = 6,
    RTMP_MSG_AUDIO = 8,
    RTMP_MSG_VIDEO = 9,
    RTMP_MSG_DATA_AMF3 = 15,
    RTMP_MSG_SHARED_OBJECT_AMF3 = 16,
    RTMP_MSG_COMMAND_AMF3 = 17,
    RTMP_MSG_DATA_AMF0 = 18,
    RTMP_MSG_SHARED_OBJECT_AMF0 = 19,
    RTMP_MSG_COMMAND_AMF0 = 20,
    RTMP_MSG_AGGREGATE = 22,
};

#define RTMP_CHUNK_SIZE_DEFAULT 128
#define RTMP_CHUNK_SIZE_MAX 0x7fffffffu
#define RTMP_CSID_MIN 2
#define RTMP_CSID_MAX 65599

typedef struct rtmp_message {
    uint32_t csid;
    uint8_t type;
    uint32_t stream_id;
    uint32_t timestamp; /* absolute, 32-bit as on the wire (wraps) */
    const uint8_t *data; /* owned by the reader; valid until the next feed */
    size_t len;
} rtmp_message_t;

typedef struct rtmp_chunk_limits {
    uint32_t max_message_size;  /* larger message length: -EMSGSIZE */
    uint32_t max_chunk_size;    /* larger Set Chunk Size: -EMSGSIZE */
    uint32_t max_chunk_streams; /* more distinct chunk stream ids: -EMSGSIZE */
    /* Bytes the reader may hold in message buffers at once (what unfinished
     * messages need; idle buffers are given back first). Growing past it is
     * -EMSGSIZE. 0: no cap besides the ones above. */
    size_t max_buffered;
} rtmp_chunk_limits_t;

typedef struct rtmp_chunk_stream rtmp_chunk_stream_t;

typedef struct rtmp_chunk_reader {
    rtmp_chunk_limits_t lim;
    uint32_t chunk_size;     /* incoming chunk size in force */
    rtmp_chunk_stream_t *streams;
    size_t nstreams;
    size_t cap;
    uint8_t hdr[18];         /* a chunk header being collected */
    size_t hdr_have;
    bool in_body;
    size_t cur;              /* index of the stream whose chunk body is read */
    uint32_t body_left;      /* bytes of that chunk still to read */
    bool has_done;           /* a message was returned from streams[done] */
    size_t done;
    size_t buffered;         /* bytes held in the streams' message buffers */
    rtmp_chunk_budget_t *pool; /* charged with `buffered` when not NULL */
    char error[128];          /* what the last failure was, for the log */
} rtmp_chunk_reader_t;

void rtmp_chunk_reader_init(rtmp_chunk_reader_t *r, const rtmp_chunk_limits_t *lim);
/* Frees the buffers and gives their bytes back to the pool, if any. */
void rtmp_chunk_reader_deinit(rtmp_chunk_reader_t *r);

/*
 * Replaces the limits and the shared budget `pool` (above;
 * NULL: none); what the reader holds is
 * moved from the old pool's count to the new one's, even past its limit
 * (only growth is refused). New limits apply from the next message header
 * and the next buffer growth: a message already started keeps its length.
 */
void rtmp_chunk_reader_set_limits(rtmp_chunk_reader_t *r, const rtmp_chunk_limits_t *lim,
                                  rtmp_chunk_budget_t *pool);

/*
 * Consumes bytes until one message is complete. Returns 0 with *msg filled
 * and *consumed < = len (feed the rest again), -EAGAIN when all of data was
 * consumed without completing a message, -EPROTO for a malformed stream (a
 * header that refers to a chunk stream never started, a new header in the
 * middle of a message, a Set Chunk Size of 0), -EMSGSIZE when a limit is
 * crossed, -ENOMEM. After an error the reader must not be fed again.
 *
 * Set Chunk Size and Abort are applied by the reader before they are
 * returned, so the caller only logs them. After a failure r->error says
 * what went wrong in words fit for a log line.
 */
int rtmp_chunk_reader_feed(rtmp_chunk_reader_t *r, const uint8_t *data, size_t len,
                           size_t *consumed, rtmp_message_t *msg)
    __attribute__((warn_unused_result));

/*
 * Appends msg (its data, len, type, stream id, timestamp, csid) to out as
 * chunks of chunk_size: a type 0 header, then type 3 continuations (each
 * repeating the extended timestamp when there is one). Returns 0, -EINVAL
 * for a csid outside 2..65599 or a chunk size of 0, -ENOMEM.
 */
int rtmp_chunk_write(buf_t *out, uint32_t chunk_size, const rtmp_message_t *msg)
    __attribute__((warn_unused_result));

#endif
