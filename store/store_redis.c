/*
 * The Redis store: several sluice nodes share one Redis (the only shared
 * state), so that any origin serves any stream and ingest nodes scale apart.
 * Key layout (docs/scaling.md), with P = "sluice:":
 *
 *   P{ID}:o:NAME          an object (playlist, init, segment) as a string, PX TTL
 *   P{ID}:lease           node id of the ingest node that owns the live stream
 *   P{ID}:meta            hash: field -> "<expiry, Redis TIME in ms> <value>",
 *                         PEXPIREd to its longest-lived field
 *   P{ID}:meta-puts       puts since the meta hash was last swept of expired
 *                         fields; a put sweeps once it reaches the hash's
 *                         length (amortized O(1) per put), same lifetime
 *   P{registry}:by-id     hash: stream id -> "<sha256 hex>|<created ms>|<name>"
 *                         (older records: "<sha256 hex> <name>", created 0);
 *                         the hex is fixed-width and the name comes last, so
 *                         a name can hold any byte ('|' and ' ' included)
 *   P{registry}:by-key    hash: sha256 hex of the key -> stream id
 *   P{registry}:record    hash: stream id -> "0" | "1", the recording override
 *                         (no field: follow --record); removed with the stream
 *   P{registry}:ladder    hash: stream id -> the stream's own ladder (canonical
 *                         JSON text, transcode_ladder_format); no field: the
 *                         server's ladder; removed with the stream
 *   P{registry}:outputs   hash: stream id -> the stream's simulcast outputs
 *                         (JSON text of output_defs_format; it holds the
 *                         destinations' keys); no field: none; removed with
 *                         the stream
 *   P{registry}:alive     marker; its absence means the dataset was lost
 *   channel P ev:DB:{ID}  "c NAME..." after a commit, "t NODE" on a takeover,
 *                         "t -NODE" when NODE revoked the lease (no node id
 *                         starts with '-', so every owner lets go)
 *   channel P ev:DB:registry  "r ID" (removed), "k ID HEX" (key rotated): each
 *                         node updates its seeds so a resync after Redis lost
 *                         its data neither revives nor reverts the stream
 *
 * Registry changes (add, remove, rotate) are each one Lua script over both
 * hashes, so by-id and by-key never disagree.
 *
 * Every per-stream key carries the {ID} hash tag, so one Lua script can write
 * a stream's objects and playlists atomically even on a Redis Cluster slot.
 *
 * Threads and connections: callers on any thread borrow a blocking hiredis
 * context from a small pool for one call and give it back, so a context is
 * only ever used by one thread at a time. One maintenance thread runs a
 * libevent loop with the async subscriber context (PSUBSCRIBE to this DB's
 * channels): it wakes watchers, invalidates the object cache, learns of
 * takeovers, renews this node's leases, and owns (re)connection with backoff.
 * When the subscriber is connected and the node has re-synchronised, `up` is
 * set; while it is clear, reads fail fast with -EIO and commits are only
 * kept in memory.
 *
 * The writer's mirror: for every stream this node writes, it keeps the
 * objects a live playlist can name (PUT without TTL: playlists, init, window
 * segments) and, while the stream is "dirty" (a write could not reach Redis),
 * every op not yet written. After an outage, or when Redis comes back empty,
 * each dirty stream's mirror is written in one atomic script, so the
 * playlist and what it names arrive together. Bounded in bytes: what goes
 * first are objects with a TTL, which no live playlist names.
 *
 * Sentinel mode (redis-sentinel://, grammar in store_redis_url.h): the
 * master's address is not configured but asked of the sentinels by the
 * maintenance thread (rs_sentinel_discover) before each (re)connection,
 * after every +switch-master (one async watcher per sentinel on the same
 * loop; the message is only a trigger) and every 5 s. Every connection
 * checks ROLE; -READONLY, -MASTERDOWN and -LOADING count as a lost master
 * (in both modes). A new master goes through the same path as an outage
 * (rs_sub_drop, then rs_resync), so each writer re-announces what it holds,
 * and registry and lease changes wait for a replica (WAIT 1 wait-ms). The
 * address changes under pool_lock with pool_gen; `where` never changes.
 * While the master is lost and the sentinels still name it, each retry
 * (every 100 ms at first) probes the replicas they listed while healthy
 * and follows one whose ROLE says master (rs_early_probe): Sentinel
 * promotes ~0.9 s before it announces; the sentinels still decide after.
 *
 * Ownership: the store owns the pool, the subscriber, the sentinel
 * watchers, the thread, the mirror (blob references), the seeds (hashed
 * keys only) and the cache.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "hls_names.h"
#include "log.h"
#include "store_cache_internal.h"
#include "store_internal.h"
#include "store_redis_url.h"

#define RS_PREFIX "sluice:"
#define RS_LEASE_MS 10000
#define RS_RENEW_MS 2500
#define RS_TICK_MS 250
#define RS_BACKOFF_MIN_MS 100
#define RS_BACKOFF_MAX_MS 2000
/* Sentinel mode: the sentinels answer even while the master is gone, so ask
 * them again soon; a short connect and command timeout per sentinel keeps
 * a dead one from holding the maintenance thread (at most 0.8 s each). */
#define RS_SENTINEL_BACKOFF_MAX_MS 500
#define RS_SENTINEL_CONNECT_MS 300
#define RS_SENTINEL_COMMAND_MS 500
#define RS_SENTINEL_RECHECK_MS 5000
#define RS_SENTINEL_IDLE_RECHECK_MS 30000 /* while no sentinel answers */
/* Early switch (sentinel mode): while an outage is young, retry every
 * 100 ms and probe the replicas the sentinels listed with short timeouts,
 * so a replica Sentinel has promoted is followed before +switch-master
 * (which comes ~0.9 s later, after Sentinel's next INFO round). */
#define RS_SENTINEL_YOUNG_OUTAGE_MS 10000
#define RS_SENTINEL_YOUNG_RETRY_MS 100
#define RS_PROBE_CONNECT_MS 100
#define RS_PROBE_COMMAND_MS 200
#define RS_PROBE_PER_RETRY 2 /* replicas probed per retry, at most */
#define RS_REPLICAS_MAX 8
#define RS_EARLY_BLOCK_MS 60000 /* after the sentinels overruled an early switch */
#define RS_WATCH_BACKOFF_MIN_MS 100
#define RS_WATCH_BACKOFF_MAX_MS 2000
#define RS_CONNECT_TIMEOUT_MS 1000
#define RS_COMMAND_TIMEOUT_MS 3000
#define RS_POOL_IDLE_MAX 16
#define RS_MIRROR_MAX_BYTES (256u << 20)
#define RS_CACHE_AGE_MS 60000
#define RS_META_PRUNE_MIN "32" /* puts between two sweeps of a meta hash, at least */
#define RS_KEY_MAX (sizeof(RS_PREFIX) + STORE_ID_MAX + STORE_NAME_MAX + 16)
#define RS_LOG "redis"

/* ---- Lua: every multi-key change is one script, so it is atomic --------- */

/* KEYS[1] lease, KEYS[2..] objects. ARGV[1] node, ARGV[2] channel, ARGV[3]
 * notice; per object two ARGVs: "P<ttl>" + bytes, "E<ttl>" + "", "D" + "".
 * Returns 0 (fenced: another node owns the stream) or 1. */
static const char rs_lua_commit[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[1] then return 0 end\n"
    "for i = 2, #KEYS do\n"
    "  local op = ARGV[2 * i]\n"
    "  local k = string.sub(op, 1, 1)\n"
    "  local ttl = tonumber(string.sub(op, 2)) or 0\n"
    "  if k == 'P' then\n"
    "    if ttl > 0 then redis.call('SET', KEYS[i], ARGV[2 * i + 1], 'PX', ttl)\n"
    "    else redis.call('SET', KEYS[i], ARGV[2 * i + 1]) end\n"
    "  elseif k == 'E' then\n"
    "    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl)\n"
    "    else redis.call('PERSIST', KEYS[i]) end\n"
    "  else redis.call('DEL', KEYS[i]) end\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "return 1\n";

/* KEYS[1] lease. ARGV node, ms, takeover ("1"), channel.
 * 1 granted, 2 taken over, 0 held by another node. */
static const char rs_lua_acquire[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if (not cur) or cur == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  redis.call('PUBLISH', ARGV[4], 't ' .. ARGV[1]) return 2 end\n"
    "return 0\n";

/* KEYS[1] lease. ARGV node, ms. 1 still ours (reclaimed if it had lapsed),
 * 0 another node's. */
static const char rs_lua_renew[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return 0\n";

static const char rs_lua_release[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 1\n";

/* KEYS by-id, by-key. ARGV id, hash hex, name, created ms.
 * 1 added, 0 already there as given, 2 key used by another id, 3 id taken
 * (seed: by another key, kept as it is). */
static const char rs_lua_stream_add[] =
    "local owner = redis.call('HGET', KEYS[2], ARGV[2])\n"
    "if owner then if owner == ARGV[1] then return 0 end return 2 end\n"
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 3 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[3])\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])\n"
    "return 1\n";

/* KEYS by-id, by-key, record, ladder, outputs. ARGV id, registry channel. 1
 * removed, 0 no such id. The by-key entry goes only if it still names this
 * id. */
static const char rs_lua_stream_remove[] =
    "local rec = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not rec then return 0 end\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "redis.call('HDEL', KEYS[5], ARGV[1])\n"
    "local old = string.sub(rec, 1, 64)\n"
    "if redis.call('HGET', KEYS[2], old) == ARGV[1] then redis.call('HDEL', KEYS[2], old) end\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], 'r ' .. ARGV[1])\n"
    "return 1\n";

/* KEYS by-id, by-key. ARGV id, new hash hex, registry channel.
 * 1 rotated (or already that key), 0 no such id, 2 the key is another id's.
 * The record keeps whatever follows the hash (name, created), either format. */
static const char rs_lua_stream_rotate[] =
    "local rec = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not rec then return 0 end\n"
    "local owner = redis.call('HGET', KEYS[2], ARGV[2])\n"
    "if owner and owner ~= ARGV[1] then return 2 end\n"
    "local old = string.sub(rec, 1, 64)\n"
    "if old ~= ARGV[2] and redis.call('HGET', KEYS[2], old) == ARGV[1] then\n"
    "  redis.call('HDEL', KEYS[2], old) end\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.sub(rec, 65))\n"
    "redis.call('PUBLISH', ARGV[3], 'k ' .. ARGV[1] .. ' ' .. ARGV[2])\n"
    "return 1\n";

/* A per-stream registry field: KEYS by-id, the field's hash (record,
 * ladder). ARGV id, value ("": no field). 1 set, 0 no such id. */
static const char rs_lua_stream_field[] =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "if ARGV[2] == '' then redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "else redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end\n"
    "return 1\n";

/* KEYS by-id, the field's hash. ARGV id. The value ("" when the stream has
 * none), or nil when there is no such stream. */
static const char rs_lua_stream_field_get[] =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end\n"
    "return redis.call('HGET', KEYS[2], ARGV[1]) or ''\n";

/* Meta records: expiry by the Redis server's clock (TIME), so nodes whose
 * clocks differ agree on what has expired. */
#define RS_LUA_NOW                                                                         \
    "local t = redis.call('TIME')\n"                                                        \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS meta, meta-puts. ARGV field, value, ttl ms[, final prefix: an
 * unexpired value beginning with it is kept, 0]. Expired fields are swept
 * once the puts since the last sweep reach the hash's length (at least
 * RS_META_PRUNE_MIN): a sweep reads the whole hash, so sweeping every N puts
 * made thousands of audience session records quadratic. */
static const char rs_lua_meta_put[] =
    RS_LUA_NOW
    "local ttl = tonumber(ARGV[3])\n"
    "if ARGV[4] then\n"
    "  local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "  local e, val = string.match(old or '', '^(%d+) (.*)$')\n"
    "  if e and tonumber(e) > now and string.sub(val, 1, #ARGV[4]) == ARGV[4] then return 0 end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + ttl) .. ' ' .. ARGV[2])\n"
    "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "local puts = redis.call('INCR', KEYS[2])\n"
    "redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))\n"
    "if puts >= math.max(" RS_META_PRUNE_MIN ", redis.call('HLEN', KEYS[1])) then\n"
    "  redis.call('SET', KEYS[2], '0', 'KEEPTTL')\n"
    "  local all = redis.call('HGETALL', KEYS[1])\n"
    "  for i = 1, #all, 2 do\n"
    "    local e = tonumber(string.match(all[i + 1], '^(%d+) '))\n"
    "    if (not e) or e <= now then redis.call('HDEL', KEYS[1], all[i]) end\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* KEYS meta. ARGV field. The value, or nil when absent or expired. */
static const char rs_lua_meta_get[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not v then return false end\n"
    RS_LUA_NOW
    "local e, val = string.match(v, '^(%d+) (.*)$')\n"
    "if (not e) or tonumber(e) <= now then return false end\n"
    "return val\n";

/* KEYS meta. ARGV prefix. {field, value, ...} of the unexpired fields. */
static const char rs_lua_meta_scan[] =
    RS_LUA_NOW
    "local out = {}\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  if string.sub(all[i], 1, #ARGV[1]) == ARGV[1] then\n"
    "    local e, val = string.match(all[i + 1], '^(%d+) (.*)$')\n"
    "    if e and tonumber(e) > now then out[#out + 1] = all[i] out[#out + 1] = val end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS lease. ARGV channel, node. Ends whoever owns it. 1 held, 0 free. */
static const char rs_lua_revoke[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('PUBLISH', ARGV[1], 't -' .. ARGV[2])\n"
    "if cur then return 1 end return 0\n";

/* KEYS by-id, by-key. ARGV hash hex. {id, "<hash> <name>"} or nil. */
static const char rs_lua_auth[] =
    "local id = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if not id then return false end\n"
    "local rec = redis.call('HGET', KEYS[1], id)\n"
    "if not rec then return false end\n"
    "return {id, rec}\n";

/* ---- state ---------------------------------------------------------------- */

typedef struct rs_conn {
    struct rs_conn *next;
    redisContext *c;
    unsigned gen;
} rs_conn_t;

typedef struct rs_entry {
    struct rs_entry *next;
    store_op_kind_t kind; /* PUT, or a pending EXPIRE / DELETE */
    blob_t *blob;
    int64_t expires_ms; /* monotonic; 0 = no TTL */
    /* An EXPIRE reached this object after it was written: it has left what
     * a live playlist names (live objects carry a long TTL of their own, so
     * a TTL alone says nothing). */
    bool leaving;
    char name[STORE_NAME_MAX + 1];
} rs_entry_t;

typedef struct rs_stream {
    struct rs_stream *next;
    pthread_mutex_t lock; /* held across a stream's write: one writer at a time */
    rs_entry_t *entries;
    size_t bytes;
    atomic_bool dirty; /* set from the maintenance thread without the lock */
    char id[STORE_ID_MAX];
} rs_stream_t;

typedef struct rs_seed {
    struct rs_seed *next;
    uint8_t hash[32];
    char id[STORE_ID_MAX];
} rs_seed_t;

typedef struct rs_held {
    struct rs_held *next;
    char id[STORE_ID_MAX];
} rs_held_t;

struct store_redis;

/* One sentinel and its +switch-master watcher (an async context on the
 * maintenance thread's loop; maintenance thread only). */
typedef struct rs_sentinel {
    struct store_redis *r;
    char host[256];
    int port;
    redisAsyncContext *ac;
    bool subscribed;
    int64_t next_connect_ms;
    int backoff_ms;
    bool unknown_logged; /* "does not know master NAME", once */
    int64_t error_log_ms; /* its last refusal logged (at most one a minute) */
} rs_sentinel_t;

/* Whether a sentinel's refusal is logged now: at most once a minute each,
 * since discovery asks every 0.1-0.5 s while there is no master. */
static bool rs_sentinel_log_due(rs_sentinel_t *sn)
{
    int64_t now = clock_mono_ms();
    if (sn->error_log_ms && now - sn->error_log_ms < 60000)
        return false;
    sn->error_log_ms = now;
    return true;
}

typedef struct store_redis {
    store_t base;
    /* The master's address. redis://: fixed. Sentinel mode: the maintenance
     * thread changes it (under pool_lock, with pool_gen) when the sentinels
     * name another master; other threads read it under pool_lock. */
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
    size_t cache_bytes;
    /* For logs, immutable after open: "redis://HOST:PORT/DB" or
     * "redis-sentinel://S1:P1,.../NAME db N"; never a password. */
    char where[320];
    bool sentinel_mode;
    rs_sentinel_t sentinels[RS_URL_SENTINELS_MAX];
    unsigned nsentinels;
    unsigned sentinel_first; /* the one that answered last: asked first */
    char master_name[RS_URL_MASTER_NAME_MAX + 1];
    char sentinel_user[128];
    char sentinel_password[256];
    int wait_ms;
    atomic_bool role_noperm_logged; /* any thread */
    /* Failover bookkeeping: written by the maintenance thread, read by
     * rs_ha_stats under pool_lock. */
    uint64_t failovers;
    int64_t last_failover_wall_ms;
    int64_t last_outage_ms;
    atomic_uint sentinels_up;
    atomic_int_least64_t down_since_mono_ms; /* 0: up (for rs_ha_stats) */
    atomic_uint_least64_t replica_wait_timeouts;
    int64_t wait_warn_ms; /* under pool_lock */
    char node_id[33];
    char channel_prefix[64]; /* "sluice:ev:DB:" */
    char registry_channel[80]; /* "sluice:ev:DB:registry" */

    pthread_mutex_t pool_lock;
    rs_conn_t *idle;
    unsigned nidle;
    unsigned pool_gen; /* bumped on every disconnect: older contexts are dropped */

    atomic_bool up;

    pthread_mutex_t mirror_lock; /* the streams list and mirror_bytes */
    rs_stream_t *streams;
    size_t mirror_bytes;
    int64_t mirror_warn_ms;

    pthread_mutex_t state_lock; /* seeds and held leases */
    rs_seed_t *seeds;
    rs_held_t *held;

    store_cache_t *cache;

    /* maintenance thread (all below: that thread only, once started) */
    struct event_base *evbase;
    struct event *tick_ev;
    struct event *stop_ev;
    struct event *kick_ev; /* another thread saw Redis fail */
    pthread_t thread;
    bool thread_started;
    bool closing;
    redisAsyncContext *sub;
    int64_t sub_started_ms;
    bool sub_ready;
    int backoff_ms;
    int64_t next_connect_ms;
    int64_t last_renew_ms;
    int64_t last_alive_check_ms;
    char alive_epoch[40]; /* the marker's value at the last resync */
    atomic_uint failures; /* read by store_redis_open's first wait */
    int64_t down_since_ms;
    int64_t last_down_log_ms;
    int64_t outage_started_ms; /* a ready master was lost then (0: none) */
    int64_t last_discover_ms;
    bool recheck_now; /* a +switch-master arrived: ask the sentinels */
    int64_t last_nosentinel_log_ms;
    struct event *retry_ev; /* sentinel mode: the next retry sooner than a tick */
    /* The replicas of master_name the sentinels listed while healthy (the
     * only addresses an early switch may go to), and the early switch not
     * yet confirmed by the sentinels. */
    struct {
        char host[256];
        int port;
    } replicas[RS_REPLICAS_MAX];
    unsigned nreplicas;
    unsigned replica_next; /* the one probed first next time */
    bool early_unconfirmed;
    char early_from_host[256]; /* the lost master it left */
    int early_from_port;
    int64_t early_blocked_until_ms;
    bool replicas_refused_logged;
    atomic_uint_least64_t early_switches; /* read by rs_ha_stats */
} store_redis_t;

static void rs_mark_down(store_redis_t *r);

/* ---- URL ------------------------------------------------------------------ */

/* Takes the settings of url (store_redis_url.h) into r. 0 or -EINVAL. */
static int rs_apply_url(store_redis_t *r, const char *url)
{
    rs_url_t *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    int rc = rs_url_parse(url, u);
    if (rc == 0) {
        r->sentinel_mode = u->mode == RS_URL_SENTINEL;
        memcpy(r->host, u->host, sizeof(r->host));
        r->port = u->port;
        memcpy(r->user, u->user, sizeof(r->user));
        memcpy(r->password, u->password, sizeof(r->password));
        memcpy(r->sentinel_user, u->sentinel_user, sizeof(r->sentinel_user));
        memcpy(r->sentinel_password, u->sentinel_password, sizeof(r->sentinel_password));
        memcpy(r->master_name, u->master_name, sizeof(r->master_name));
        memcpy(r->where, u->where, sizeof(r->where));
        r->db = u->db;
        r->cache_bytes = u->cache_bytes;
        r->wait_ms = u->wait_ms;
        r->nsentinels = u->nsentinels;
        for (unsigned i = 0; i < u->nsentinels; i++) {
            rs_sentinel_t *sn = &r->sentinels[i];
            sn->r = r;
            memcpy(sn->host, u->sentinels[i].host, sizeof(sn->host));
            sn->port = u->sentinels[i].port;
            sn->backoff_ms = RS_WATCH_BACKOFF_MIN_MS;
        }
    }
    rs_url_cleanse(u);
    free(u);
    return rc;
}

/* ---- keys ----------------------------------------------------------------- */

static void rs_key_object(char *out, const char *id, const char *name)
{
    snprintf(out, RS_KEY_MAX, RS_PREFIX "{%s}:o:%s", id, name);
}

static void rs_key_lease(char *out, const char *id)
{
    snprintf(out, RS_KEY_MAX, RS_PREFIX "{%s}:lease", id);
}

static void rs_key_meta(char *out, const char *id)
{
    snprintf(out, RS_KEY_MAX, RS_PREFIX "{%s}:meta", id);
}

static void rs_key_meta_puts(char *out, const char *id)
{
    snprintf(out, RS_KEY_MAX, RS_PREFIX "{%s}:meta-puts", id);
}

static void rs_channel(const store_redis_t *r, char *out, const char *id)
{
    snprintf(out, RS_KEY_MAX, "%s{%s}", r->channel_prefix, id);
}

#define RS_KEY_BY_ID RS_PREFIX "{registry}:by-id"
#define RS_KEY_BY_KEY RS_PREFIX "{registry}:by-key"
#define RS_KEY_ALIVE RS_PREFIX "{registry}:alive"
#define RS_KEY_RECORD RS_PREFIX "{registry}:record"
#define RS_KEY_LADDER RS_PREFIX "{registry}:ladder"
#define RS_KEY_OUTPUTS RS_PREFIX "{registry}:outputs"

static void rs_hex(const uint8_t hash[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[64] = '\0';
}

/* ---- the connection pool -------------------------------------------------- */

/* Whether a ROLE reply names a master. */
static bool rs_role_is_master(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
           rep->element[0]->type == REDIS_REPLY_STRING && strcmp(rep->element[0]->str, "master") == 0;
}

static bool rs_reply_noperm(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOPERM", 6) == 0;
}

enum { RS_ROLE_UNKNOWN = -1, RS_ROLE_OTHER = 0, RS_ROLE_MASTER = 1 };

/* A blocking context to host:port with the given timeouts: AUTH, SELECT,
 * CLIENT SETNAME (operators and tests see sluice's clients by name) and, in
 * sentinel mode, ROLE. *role (when not NULL) is RS_ROLE_MASTER or
 * RS_ROLE_OTHER after ROLE, RS_ROLE_UNKNOWN when ROLE was refused (NOPERM)
 * or not sent. A node that is not the master is refused (NULL) when
 * refuse_other is set; rs_early_probe keeps it to learn its role. */
static redisContext *rs_connect_timed(store_redis_t *r, const char *host, int port, int connect_ms,
                                      int command_ms, bool refuse_other, int *role)
{
    if (role)
        *role = RS_ROLE_UNKNOWN;
    if (!host[0])
        return NULL; /* sentinel mode before the first discovery */
    struct timeval ct = {.tv_sec = connect_ms / 1000, .tv_usec = (connect_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, ct);
    if (!c)
        return NULL;
    if (c->err)
        goto fail;
    struct timeval tv = {.tv_sec = command_ms / 1000, .tv_usec = (command_ms % 1000) * 1000};
    if (redisSetTimeout(c, tv) != REDIS_OK)
        goto fail;
    redisReply *rep;
    if (r->password[0]) {
        rep = r->user[0] ? redisCommand(c, "AUTH %s %s", r->user, r->password)
                         : redisCommand(c, "AUTH %s", r->password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (rep)
                log_error(RS_LOG, "%s refused the password: %s", r->where, rep->str);
            freeReplyObject(rep);
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (r->db) {
        rep = redisCommand(c, "SELECT %d", r->db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            freeReplyObject(rep);
            goto fail;
        }
        freeReplyObject(rep);
    }
    /* (hiredis formats %s only: no precision) */
    char cname[16];
    snprintf(cname, sizeof(cname), "sluice-%.8s", r->node_id);
    rep = redisCommand(c, "CLIENT SETNAME %s", cname);
    if (!rep)
        goto fail;
    freeReplyObject(rep); /* an error (no +client|setname) costs only the name */
    if (r->sentinel_mode) {
        rep = redisCommand(c, "ROLE");
        if (!rep)
            goto fail;
        if (rs_reply_noperm(rep)) {
            if (!atomic_exchange(&r->role_noperm_logged, true))
                log_warn(RS_LOG, "%s: the data user may not run ROLE (grant +role); relying "
                                 "on -READONLY to notice a demoted master", r->where);
        } else if (!rs_role_is_master(rep)) {
            if (role)
                *role = RS_ROLE_OTHER;
            if (refuse_other) {
                log_warn(RS_LOG, "%s: %s:%d is not the master (ROLE); asking the sentinels again",
                         r->where, host, port);
                freeReplyObject(rep);
                goto fail;
            }
        } else if (role) {
            *role = RS_ROLE_MASTER;
        }
        freeReplyObject(rep);
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* A pooled context to the master at host:port: one that is not (or no
 * longer) the master is refused, so nothing is ever written to a demoted
 * one. */
static redisContext *rs_connect_sync(store_redis_t *r, const char *host, int port)
{
    return rs_connect_timed(r, host, port, RS_CONNECT_TIMEOUT_MS, RS_COMMAND_TIMEOUT_MS, true, NULL);
}

/* A context of the current generation for one call; NULL when Redis cannot
 * be reached (the caller answers -EIO). The address and the generation are
 * read together, so a context made for an old master is never pooled. */
static rs_conn_t *rs_borrow(store_redis_t *r)
{
    char host[sizeof(r->host)];
    pthread_mutex_lock(&r->pool_lock);
    rs_conn_t *k = r->idle;
    unsigned gen = r->pool_gen;
    int port = r->port;
    memcpy(host, r->host, sizeof(host));
    if (k) {
        r->idle = k->next;
        r->nidle--;
    }
    pthread_mutex_unlock(&r->pool_lock);
    if (k)
        return k;
    k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->gen = gen;
    k->c = rs_connect_sync(r, host, port);
    if (!k->c) {
        free(k);
        return NULL;
    }
    return k;
}

/* Gives a context back; a broken one, or one from before a disconnect, is
 * closed instead. */
static void rs_return(store_redis_t *r, rs_conn_t *k, bool broken)
{
    if (!k)
        return;
    pthread_mutex_lock(&r->pool_lock);
    if (!broken && !k->c->err && k->gen == r->pool_gen && r->nidle < RS_POOL_IDLE_MAX) {
        k->next = r->idle;
        r->idle = k;
        r->nidle++;
        k = NULL;
    }
    pthread_mutex_unlock(&r->pool_lock);
    if (k) {
        redisFree(k->c);
        free(k);
    }
}

static void rs_pool_flush(store_redis_t *r)
{
    pthread_mutex_lock(&r->pool_lock);
    rs_conn_t *k = r->idle;
    r->idle = NULL;
    r->nidle = 0;
    r->pool_gen++;
    pthread_mutex_unlock(&r->pool_lock);
    while (k) {
        rs_conn_t *next = k->next;
        redisFree(k->c);
        free(k);
        k = next;
    }
}

/* Error replies that mean this server is not a usable master any more. */
static bool rs_reply_lost_master(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR &&
           (strncmp(rep->str, "READONLY", 8) == 0 || strncmp(rep->str, "MASTERDOWN", 10) == 0 ||
            strncmp(rep->str, "LOADING", 7) == 0);
}

/* The replication wait after a rare, important write (sentinel mode,
 * wait-ms > 0): WAIT 1 on the same context, so the write is on a replica
 * before the caller answers, and survives a failover. No replica in time is
 * not a failure (the write is on the master): it is counted and logged. */
static void rs_wait_result(store_redis_t *r, redisReply *w)
{
    if (w && w->type == REDIS_REPLY_INTEGER && w->integer >= 1)
        return;
    atomic_fetch_add(&r->replica_wait_timeouts, 1);
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->pool_lock);
    bool say = !r->wait_warn_ms || now - r->wait_warn_ms >= 60000;
    if (say)
        r->wait_warn_ms = now;
    pthread_mutex_unlock(&r->pool_lock);
    if (say && w && w->type == REDIS_REPLY_ERROR)
        log_warn(RS_LOG, "%s: WAIT refused (%s%s); registry and lease changes are not "
                         "confirmed on a replica (%" PRIu64 " so far)",
                 r->where, w->str, rs_reply_noperm(w) ? ": grant the data user +wait" : "",
                 (uint64_t)atomic_load(&r->replica_wait_timeouts));
    else if (say)
        log_warn(RS_LOG, "%s: no replica acknowledged a registry or lease change within %d ms "
                         "(%" PRIu64 " so far); it is on the master only",
                 r->where, r->wait_ms, (uint64_t)atomic_load(&r->replica_wait_timeouts));
}

/* Runs one command on a pooled context (wait: then WAIT 1 wait-ms on the
 * same context, sentinel mode only). *reply is NULL and -EIO returned
 * when the connection failed (Redis is then marked down); a Redis error
 * reply is returned as -EIO with *reply set, so it can be logged. */
static int rs_command_wait(store_redis_t *r, int argc, const char **argv, const size_t *lens,
                           redisReply **reply, bool wait)
{
    *reply = NULL;
    rs_conn_t *k = rs_borrow(r);
    if (!k) {
        rs_mark_down(r);
        return -EIO;
    }
    redisReply *rep = NULL;
    if (wait && r->sentinel_mode && r->wait_ms > 0) {
        redisReply *w = NULL;
        if (redisAppendCommandArgv(k->c, argc, argv, lens) == REDIS_OK &&
            redisAppendCommand(k->c, "WAIT 1 %d", r->wait_ms) == REDIS_OK &&
            redisGetReply(k->c, (void **)&rep) == REDIS_OK &&
            redisGetReply(k->c, (void **)&w) == REDIS_OK) {
            if (rep && rep->type != REDIS_REPLY_ERROR)
                rs_wait_result(r, w);
            freeReplyObject(w);
        } else {
            freeReplyObject(rep);
            rep = NULL;
        }
    } else {
        rep = redisCommandArgv(k->c, argc, argv, lens);
    }
    if (!rep) {
        log_warn(RS_LOG, "%s: %s", r->where, k->c->errstr[0] ? k->c->errstr : "I/O error");
        rs_return(r, k, true);
        rs_mark_down(r);
        return -EIO;
    }
    *reply = rep;
    if (rs_reply_lost_master(rep)) {
        /* A master that was demoted (-READONLY), lost its own master
         * (-MASTERDOWN) or is loading: as good as gone. Reconnecting finds
         * the right one (sentinel mode) or waits until it is writable. */
        log_warn(RS_LOG, "%s: %s", r->where, rep->str);
        rs_return(r, k, true);
        rs_mark_down(r);
        return -EIO;
    }
    rs_return(r, k, false);
    return rep->type == REDIS_REPLY_ERROR ? -EIO : 0;
}

static int rs_command(store_redis_t *r, int argc, const char **argv, const size_t *lens,
                      redisReply **reply)
{
    return rs_command_wait(r, argc, argv, lens, reply, false);
}

/* EVAL script with keys and args (all NUL-terminated strings); wait: a
 * registry or lease change, followed by the replication wait. */
static int rs_eval_mode(store_redis_t *r, const char *script, int nkeys, const char **keys,
                        int nargs, const char **args, redisReply **reply, bool wait)
{
    const char *argv[16];
    size_t lens[16];
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int rc = rs_command_wait(r, argc, argv, lens, reply, wait);
    if (rc < 0 && *reply)
        log_warn(RS_LOG, "%s: script failed: %s", r->where, (*reply)->str);
    return rc;
}

static int rs_eval(store_redis_t *r, const char *script, int nkeys, const char **keys, int nargs,
                   const char **args, redisReply **reply)
{
    return rs_eval_mode(r, script, nkeys, keys, nargs, args, reply, false);
}

static int rs_eval_wait(store_redis_t *r, const char *script, int nkeys, const char **keys,
                        int nargs, const char **args, redisReply **reply)
{
    return rs_eval_mode(r, script, nkeys, keys, nargs, args, reply, true);
}

static void rs_mark_down(store_redis_t *r)
{
    if (atomic_exchange(&r->up, false) && r->kick_ev)
        event_active(r->kick_ev, 0, 0); /* the maintenance thread reconnects */
}

/* ---- the writer's mirror ------------------------------------------------ */

/* Finds or creates this node's record of stream id. Never freed before close. */
static rs_stream_t *rs_stream_get(store_redis_t *r, const char *id)
{
    pthread_mutex_lock(&r->mirror_lock);
    rs_stream_t *s = r->streams;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    if (!s && (s = calloc(1, sizeof(*s)))) {
        pthread_mutex_init(&s->lock, NULL);
        snprintf(s->id, sizeof(s->id), "%s", id);
        s->next = r->streams;
        r->streams = s;
    }
    pthread_mutex_unlock(&r->mirror_lock);
    return s;
}

static void rs_entry_drop(store_redis_t *r, rs_stream_t *s, rs_entry_t **pp)
{
    rs_entry_t *e = *pp;
    *pp = e->next;
    if (e->blob) {
        s->bytes -= e->blob->size;
        pthread_mutex_lock(&r->mirror_lock);
        r->mirror_bytes -= e->blob->size;
        pthread_mutex_unlock(&r->mirror_lock);
        blob_unref(e->blob);
    }
    free(e);
}

/* Keeps only what a live playlist can name: PUTs that no EXPIRE has reached
 * and that have not expired. s->lock held. */
static void rs_mirror_prune(store_redis_t *r, rs_stream_t *s)
{
    int64_t now = clock_mono_ms();
    for (rs_entry_t **pp = &s->entries; *pp;) {
        const rs_entry_t *e = *pp;
        if (e->kind != STORE_OP_PUT || e->leaving || (e->expires_ms && e->expires_ms <= now))
            rs_entry_drop(r, s, pp);
        else
            pp = &(*pp)->next;
    }
}

/* Records ops in the mirror. s->lock held. -ENOMEM leaves it as it was
 * before the failing op, which only matters while the stream is dirty. */
static int rs_mirror_apply(store_redis_t *r, rs_stream_t *s, const store_op_t *ops, size_t n,
                           int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        const store_op_t *op = &ops[i];
        rs_entry_t **pp = &s->entries;
        while (*pp && strcmp((*pp)->name, op->name) != 0)
            pp = &(*pp)->next;
        int64_t exp = op->ttl_ms > 0 ? now + op->ttl_ms : 0;
        if (op->kind == STORE_OP_EXPIRE && *pp && (*pp)->kind == STORE_OP_PUT) {
            (*pp)->expires_ms = exp;
            (*pp)->leaving = true;
            continue;
        }
        if (*pp)
            rs_entry_drop(r, s, pp);
        rs_entry_t *e = calloc(1, sizeof(*e));
        if (!e)
            return -ENOMEM;
        e->kind = op->kind;
        e->expires_ms = op->kind == STORE_OP_DELETE ? 0 : exp;
        snprintf(e->name, sizeof(e->name), "%s", op->name);
        if (op->kind == STORE_OP_PUT) {
            e->blob = blob_ref(op->blob);
            s->bytes += e->blob->size;
            pthread_mutex_lock(&r->mirror_lock);
            r->mirror_bytes += e->blob->size;
            pthread_mutex_unlock(&r->mirror_lock);
        }
        e->next = s->entries;
        s->entries = e;
    }
    /* Over budget: objects that left the playlist go first (no live
     * playlist names them). */
    pthread_mutex_lock(&r->mirror_lock);
    bool over = r->mirror_bytes > RS_MIRROR_MAX_BYTES;
    pthread_mutex_unlock(&r->mirror_lock);
    size_t dropped = 0;
    for (rs_entry_t **pp = &s->entries; over && *pp;) {
        if ((*pp)->blob && (*pp)->leaving) {
            rs_entry_drop(r, s, pp);
            dropped++;
            pthread_mutex_lock(&r->mirror_lock);
            over = r->mirror_bytes > RS_MIRROR_MAX_BYTES;
            pthread_mutex_unlock(&r->mirror_lock);
        } else {
            pp = &(*pp)->next;
        }
    }
    if (dropped && now - r->mirror_warn_ms > 5000) {
        r->mirror_warn_ms = now;
        log_warn(RS_LOG, "stream %s: Redis unreachable and the write-back buffer is full; "
                         "dropped %zu objects that had left the playlist", s->id, dropped);
    }
    return 0;
}

/* One atomic write of `nops` ops (commit, or a dirty stream's mirror). The
 * ops' blobs stay the caller's. 0, -EPERM (fenced) or -EIO. */
static int rs_write(store_redis_t *r, const char *id, const store_op_t *ops, size_t n)
{
    int ret = -ENOMEM;
    size_t argc = 3 + 1 + n + 3 + 2 * n;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char *keys = malloc((n + 1) * RS_KEY_MAX);
    char *opcodes = malloc((n ? n : 1) * 24);
    size_t notice_cap = 2 + n * (STORE_NAME_MAX + 1) + 1;
    char *notice = malloc(notice_cap);
    char nk[24], channel[RS_KEY_MAX];
    if (!argv || !lens || !keys || !opcodes || !notice)
        goto out;
    snprintf(nk, sizeof(nk), "%zu", n + 1);
    rs_channel(r, channel, id);
    size_t a = 0;
    argv[a++] = "EVAL";
    argv[a++] = rs_lua_commit;
    argv[a++] = nk;
    rs_key_lease(keys, id);
    argv[a++] = keys;
    for (size_t i = 0; i < n; i++) {
        rs_key_object(keys + (i + 1) * RS_KEY_MAX, id, ops[i].name);
        argv[a++] = keys + (i + 1) * RS_KEY_MAX;
    }
    argv[a++] = r->node_id;
    argv[a++] = channel;
    size_t nl = (size_t)snprintf(notice, notice_cap, "c");
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == STORE_OP_PUT)
            nl += (size_t)snprintf(notice + nl, notice_cap - nl, " %s", ops[i].name);
    argv[a++] = notice;
    for (size_t i = 0; i < n; i++) {
        char *oc = opcodes + i * 24;
        if (ops[i].kind == STORE_OP_PUT)
            snprintf(oc, 24, "P%" PRId64, ops[i].ttl_ms > 0 ? ops[i].ttl_ms : 0);
        else if (ops[i].kind == STORE_OP_EXPIRE)
            snprintf(oc, 24, "E%" PRId64, ops[i].ttl_ms > 0 ? ops[i].ttl_ms : 0);
        else
            snprintf(oc, 24, "D");
        argv[a++] = oc;
        if (ops[i].kind == STORE_OP_PUT) {
            lens[a] = ops[i].blob->size;
            argv[a++] = (const char *)ops[i].blob->data;
        } else {
            lens[a] = 0;
            argv[a++] = "";
        }
    }
    /* Every argument but the blobs is a C string. */
    for (size_t i = 0; i < a - 2 * n; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < n; i++)
        lens[a - 2 * n + 2 * i] = strlen(argv[a - 2 * n + 2 * i]);
    redisReply *rep = NULL;
    ret = rs_command(r, (int)a, argv, lens, &rep);
    if (ret == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0)
        ret = -EPERM;
    else if (ret < 0 && rep)
        log_warn(RS_LOG, "stream %s: write refused: %s", id, rep->str);
    freeReplyObject(rep);
out:
    free(argv);
    free(lens);
    free(keys);
    free(opcodes);
    free(notice);
    return ret;
}

/* Writes a dirty stream's mirror in one script. s->lock held. */
static int rs_flush_stream(store_redis_t *r, rs_stream_t *s)
{
    size_t n = 0;
    for (rs_entry_t *e = s->entries; e; e = e->next)
        n++;
    store_op_t *ops = calloc(n ? n : 1, sizeof(*ops));
    if (!ops)
        return -ENOMEM;
    int64_t now = clock_mono_ms();
    size_t k = 0;
    for (rs_entry_t *e = s->entries; e; e = e->next) {
        int64_t left = e->expires_ms ? e->expires_ms - now : 0;
        store_op_t *op = &ops[k++];
        op->name = e->name;
        if (e->kind == STORE_OP_DELETE || (e->expires_ms && left <= 0)) {
            op->kind = STORE_OP_DELETE;
        } else if (e->kind == STORE_OP_PUT) {
            op->kind = STORE_OP_PUT;
            op->blob = e->blob;
            op->ttl_ms = left;
        } else {
            op->kind = STORE_OP_EXPIRE;
            op->ttl_ms = left;
        }
    }
    int ret = n ? rs_write(r, s->id, ops, n) : 0;
    free(ops);
    if (ret == 0) {
        s->dirty = false;
        rs_mirror_prune(r, s);
        log_info(RS_LOG, "stream %s: wrote %zu objects kept while Redis was away", s->id, n);
    } else if (ret == -EPERM) {
        /* Another node owns the stream now: what we kept is not ours to write. */
        s->dirty = false;
        while (s->entries)
            rs_entry_drop(r, s, &s->entries);
        log_warn(RS_LOG, "stream %s: another node owns it now; dropped what was kept", s->id);
    }
    return ret;
}

/* ---- backend operations --------------------------------------------------- */

static int rs_ping(store_t *st)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *rep;
    int rc = rs_command(r, 1, argv, lens, &rep);
    freeReplyObject(rep);
    return rc;
}

static int rs_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
{
    store_redis_t *r = (store_redis_t *)st;
    rs_stream_t *s = rs_stream_get(r, stream_id);
    if (!s)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    int ret = rs_mirror_apply(r, s, ops, n, clock_mono_ms());
    if (ret < 0) {
        s->dirty = true; /* the mirror is short of an op: write it all later */
    } else if (!s->dirty && atomic_load(&r->up)) {
        ret = rs_write(r, stream_id, ops, n);
        if (ret == 0) {
            rs_mirror_prune(r, s);
        } else if (ret == -EIO) {
            s->dirty = true; /* kept; written when Redis is back */
            ret = 0;
        } else if (ret == -EPERM) {
            while (s->entries)
                rs_entry_drop(r, s, &s->entries);
        }
    } else {
        s->dirty = true;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* Immutable objects, which the cache may keep: init segments, segments and
 * parts, by the one grammar of object names. Never playlists. */
static bool rs_cacheable(const char *name)
{
    return hls_name_immutable(name);
}

static int rs_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
{
    store_redis_t *r = (store_redis_t *)st;
    bool cacheable = rs_cacheable(name);
    if (cacheable && store_cache_get(r->cache, stream_id, name, out) == 0)
        return 0;
    if (!atomic_load(&r->up))
        return -EIO;
    uint64_t gen = cacheable ? store_cache_generation(r->cache) : 0;
    char key[RS_KEY_MAX];
    rs_key_object(key, stream_id, name);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    redisReply *rep;
    int rc = rs_command(r, 2, argv, lens, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_NIL) {
        rc = -ENOENT;
    } else if (rc == 0 && rep->type == REDIS_REPLY_STRING) {
        *out = blob_new(rep->str, rep->len);
        if (!*out)
            rc = -ENOMEM;
        else if (cacheable)
            store_cache_put(r->cache, gen, stream_id, name, *out);
    } else if (rc == 0) {
        rc = -EIO;
    }
    freeReplyObject(rep);
    return rc;
}

static int rs_drop_objects(store_t *st, const char *stream_id)
{
    store_redis_t *r = (store_redis_t *)st;
    rs_stream_t *s = rs_stream_get(r, stream_id);
    if (s) {
        pthread_mutex_lock(&s->lock);
        while (s->entries)
            rs_entry_drop(r, s, &s->entries);
        s->dirty = false;
        pthread_mutex_unlock(&s->lock);
    }
    store_cache_evict(r->cache, stream_id, NULL);
    char pattern[RS_KEY_MAX], cursor[32] = "0";
    snprintf(pattern, sizeof(pattern), RS_PREFIX "{%s}:o:*", stream_id);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "200"};
        size_t lens[6];
        for (int i = 0; i < 6; i++)
            lens[i] = strlen(argv[i]);
        redisReply *rep;
        int rc = rs_command(r, 6, argv, lens, &rep);
        if (rc < 0 || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            return -EIO;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *dargv[] = {"UNLINK", keys->element[i]->str};
            size_t dlens[] = {6, keys->element[i]->len};
            redisReply *d;
            (void)rs_command(r, 2, dargv, dlens, &d);
            freeReplyObject(d);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* wait: an API creation, which must survive a failover (a seed does not
 * need it: every resync writes the seeds again). */
static int rs_stream_add_mode(store_redis_t *r, const char *id, const char *name,
                              const uint8_t hash[32], int64_t created_ms, bool wait)
{
    if (!atomic_load(&r->up))
        return -EIO;
    char hex[65], created[24];
    rs_hex(hash, hex);
    snprintf(created, sizeof(created), "%" PRId64, created_ms > 0 ? created_ms : 0);
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_BY_KEY};
    const char *args[] = {id, hex, name, created};
    redisReply *rep;
    int rc = rs_eval_mode(r, rs_lua_stream_add, 2, keys, 4, args, &rep, wait);
    if (rc == 0)
        rc = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -EIO;
    freeReplyObject(rep);
    return rc;
}

static int rs_stream_add(store_t *st, const char *id, const char *name, const uint8_t hash[32],
                         int64_t created_ms)
{
    int rc = rs_stream_add_mode((store_redis_t *)st, id, name, hash, created_ms, true);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : -EEXIST;
}

/* Adds one seed to Redis; logs what it found. 0 or a negative errno. */
static int rs_seed_write(store_redis_t *r, const char *id, const uint8_t hash[32])
{
    int rc = rs_stream_add_mode(r, id, id, hash, 0, false);
    if (rc == 2)
        return -EEXIST;
    if (rc == 3)
        log_warn(RS_LOG, "stream '%s' is in the shared registry with another key (changed "
                         "on another node?); keeping the registry's key", id);
    return rc < 0 ? rc : 0;
}

static int rs_stream_seed(store_t *st, const char *id, const uint8_t hash[32])
{
    store_redis_t *r = (store_redis_t *)st;
    rs_seed_t *seed = calloc(1, sizeof(*seed));
    if (!seed)
        return -ENOMEM;
    snprintf(seed->id, sizeof(seed->id), "%s", id);
    memcpy(seed->hash, hash, 32);
    /* Remembered first, so that a connection made meanwhile seeds it too. */
    pthread_mutex_lock(&r->state_lock);
    seed->next = r->seeds;
    r->seeds = seed;
    pthread_mutex_unlock(&r->state_lock);
    if (!atomic_load(&r->up))
        return 0; /* written on connection */
    int rc = rs_seed_write(r, id, hash);
    return rc == -EIO ? 0 : rc;
}

static int rs_stream_auth(store_t *st, const uint8_t hash[32], char *id_out)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char hex[65];
    rs_hex(hash, hex);
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_BY_KEY};
    const char *args[] = {hex};
    redisReply *rep;
    int rc = rs_eval(r, rs_lua_auth, 2, keys, 1, args, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_NIL) {
        rc = -ENOENT;
    } else if (rc == 0 && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
               rep->element[0]->type == REDIS_REPLY_STRING &&
               rep->element[1]->type == REDIS_REPLY_STRING && rep->element[1]->len >= 64 &&
               rep->element[0]->len < STORE_ID_MAX) {
        /* The record names the key this id was given; compare in constant
         * time so a half-changed registry can never let a stale key in. */
        if (CRYPTO_memcmp(rep->element[1]->str, hex, 64) == 0)
            snprintf(id_out, STORE_ID_MAX, "%s", rep->element[0]->str);
        else
            rc = -ENOENT;
    } else if (rc == 0) {
        rc = -EIO;
    }
    freeReplyObject(rep);
    return rc;
}

static int rs_stream_exists(store_t *st, const char *id)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *argv[] = {"HEXISTS", RS_KEY_BY_ID, id};
    size_t lens[] = {7, strlen(RS_KEY_BY_ID), strlen(id)};
    redisReply *rep;
    int rc = rs_command(r, 3, argv, lens, &rep);
    if (rc == 0)
        rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? 0 : -ENOENT;
    freeReplyObject(rep);
    return rc;
}


/* ---- registry management ---------------------------------------------------- */

/* Copies at most max-1 bytes of a name, never cutting a UTF-8 sequence. */
static void rs_copy_name(char *out, size_t max, const char *p, size_t len)
{
    if (len >= max) {
        len = max - 1;
        while (len > 0 && ((unsigned char)p[len] & 0xc0) == 0x80)
            len--; /* p[len] is where the cut falls: keep its sequence whole or out */
    }
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Parses a by-id record, either format (see the key layout). 0 or -EIO for
 * one no version of sluice writes. */
static int rs_record_parse(const char *id, size_t idlen, const char *rec, size_t len,
                           store_stream_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->record = STORE_RECORD_DEFAULT; /* the record hash says otherwise */
    if (idlen == 0 || idlen >= STORE_ID_MAX || len < 65)
        return -EIO;
    memcpy(out->id, id, idlen);
    out->id[idlen] = '\0';
    const char *p = rec + 65, *end = rec + len;
    if (rec[64] == '|') {
        int64_t created = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
            created = created * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || p == end || *p != '|')
            return -EIO;
        p++;
        out->created_ms = created;
    } else if (rec[64] != ' ') {
        return -EIO;
    }
    rs_copy_name(out->name, sizeof(out->name), p, (size_t)(end - p));
    return 0;
}

/* A stored ladder into out->ladder; one no version writes (too long) is
 * left out: the server's ladder. */
static void rs_ladder_copy(store_stream_info_t *out, const char *s, size_t len)
{
    if (len >= sizeof(out->ladder)) {
        log_warn(RS_LOG, "registry: stream '%s': ignoring a stored ladder of %zu bytes", out->id,
                 len);
        return;
    }
    memcpy(out->ladder, s, len);
    out->ladder[len] = '\0';
}

static int rs_registry_get(store_t *st, const char *id, store_stream_info_t *out)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *argv[] = {"HGET", RS_KEY_BY_ID, id};
    size_t lens[] = {4, strlen(RS_KEY_BY_ID), strlen(id)};
    redisReply *rep;
    int rc = rs_command(r, 3, argv, lens, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_NIL)
        rc = -ENOENT;
    else if (rc == 0 && rep->type == REDIS_REPLY_STRING)
        rc = rs_record_parse(id, strlen(id), rep->str, rep->len, out);
    else if (rc == 0)
        rc = -EIO;
    freeReplyObject(rep);
    if (rc == 0) {
        const char *rargv[] = {"HGET", RS_KEY_RECORD, id};
        size_t rlens[] = {4, strlen(RS_KEY_RECORD), strlen(id)};
        rc = rs_command(r, 3, rargv, rlens, &rep);
        if (rc == 0 && rep->type == REDIS_REPLY_STRING && rep->len == 1)
            out->record = rep->str[0] == '1' ? STORE_RECORD_ON : STORE_RECORD_OFF;
        else if (rc == 0 && rep->type != REDIS_REPLY_NIL)
            rc = -EIO;
        freeReplyObject(rep);
    }
    if (rc == 0) {
        const char *largv[] = {"HGET", RS_KEY_LADDER, id};
        size_t llens[] = {4, strlen(RS_KEY_LADDER), strlen(id)};
        rc = rs_command(r, 3, largv, llens, &rep);
        if (rc == 0 && rep->type == REDIS_REPLY_STRING)
            rs_ladder_copy(out, rep->str, rep->len);
        else if (rc == 0 && rep->type != REDIS_REPLY_NIL)
            rc = -EIO;
        freeReplyObject(rep);
    }
    return rc;
}

/* A per-stream field kept in a hash of its own (id -> value): sets it on
 * the list entry whose id the hash names. */
typedef void (*rs_field_set_fn)(store_stream_info_t *s, const char *v, size_t len);

static void rs_field_set_ladder(store_stream_info_t *s, const char *v, size_t len)
{
    rs_ladder_copy(s, v, len);
}

static void rs_field_set_record(store_stream_info_t *s, const char *v, size_t len)
{
    if (len == 1)
        s->record = v[0] == '1' ? STORE_RECORD_ON : STORE_RECORD_OFF;
}

/* Fills one field of list[0..n) from its hash (one HGETALL). */
static int rs_registry_list_field(store_redis_t *r, const char *key, rs_field_set_fn set,
                                  store_stream_info_t *list, size_t n)
{
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, strlen(key)};
    redisReply *rep;
    int rc = rs_command(r, 2, argv, lens, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_ARRAY)
        rc = -EIO;
    for (size_t i = 0; rc == 0 && i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        for (size_t j = 0; j < n; j++)
            if (strlen(list[j].id) == k->len && memcmp(list[j].id, k->str, k->len) == 0)
                set(&list[j], v->str, v->len);
    }
    freeReplyObject(rep);
    return rc;
}

static int rs_registry_list(store_t *st, store_stream_info_t **out, size_t *n)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *argv[] = {"HGETALL", RS_KEY_BY_ID};
    size_t lens[] = {7, strlen(RS_KEY_BY_ID)};
    redisReply *rep;
    int rc = rs_command(r, 2, argv, lens, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_ARRAY)
        rc = -EIO;
    if (rc == 0 && rep->elements >= 2) {
        *out = calloc(rep->elements / 2, sizeof(**out));
        if (!*out)
            rc = -ENOMEM;
        for (size_t i = 0; rc == 0 && i + 1 < rep->elements; i += 2) {
            const redisReply *k = rep->element[i], *v = rep->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            /* A record no version writes is left out rather than failing
             * the whole list; store_stream_get reports it. */
            if (rs_record_parse(k->str, k->len, v->str, v->len, &(*out)[*n]) == 0)
                (*n)++;
            else
                log_warn(RS_LOG, "registry: unreadable record for a stream id of %zu bytes",
                         k->len);
        }
    }
    freeReplyObject(rep);
    if (rc == 0 && *n > 0)
        rc = rs_registry_list_field(r, RS_KEY_RECORD, rs_field_set_record, *out, *n);
    if (rc == 0 && *n > 0)
        rc = rs_registry_list_field(r, RS_KEY_LADDER, rs_field_set_ladder, *out, *n);
    return rc;
}

/* This node's seeds follow the registry: a removed stream is forgotten, a
 * rotated one is re-added (after Redis lost its data) with its new key. */
static void rs_seed_forget(store_redis_t *r, const char *id)
{
    pthread_mutex_lock(&r->state_lock);
    for (rs_seed_t **pp = &r->seeds; *pp;) {
        rs_seed_t *s = *pp;
        if (strcmp(s->id, id) == 0) {
            *pp = s->next;
            OPENSSL_cleanse(s->hash, sizeof(s->hash));
            free(s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&r->state_lock);
}

static void rs_seed_rekey(store_redis_t *r, const char *id, const uint8_t hash[32])
{
    pthread_mutex_lock(&r->state_lock);
    for (rs_seed_t *s = r->seeds; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            memcpy(s->hash, hash, 32);
    pthread_mutex_unlock(&r->state_lock);
}

static int rs_registry_remove(store_t *st, const char *id)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_BY_KEY, RS_KEY_RECORD, RS_KEY_LADDER,
                          RS_KEY_OUTPUTS};
    const char *args[] = {id, r->registry_channel};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_stream_remove, 5, keys, 2, args, &rep);
    if (rc == 0)
        rc = rep->type != REDIS_REPLY_INTEGER ? -EIO : rep->integer == 1 ? 0 : -ENOENT;
    freeReplyObject(rep);
    /* Our own notice comes back too; forgetting now means no resync in
     * between can put it back. */
    if (rc == 0)
        rs_seed_forget(r, id);
    return rc;
}

static int rs_registry_rotate(store_t *st, const char *id, const uint8_t hash[32])
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char hex[65];
    rs_hex(hash, hex);
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_BY_KEY};
    const char *args[] = {id, hex, r->registry_channel};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_stream_rotate, 2, keys, 3, args, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_INTEGER)
        rc = -EIO;
    else if (rc == 0)
        rc = rep->integer == 1 ? 0 : rep->integer == 2 ? -EEXIST : -ENOENT;
    freeReplyObject(rep);
    if (rc == 0)
        rs_seed_rekey(r, id, hash);
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

static int rs_registry_set_record(store_t *st, const char *id, int record)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_RECORD};
    const char *args[] = {id, record == STORE_RECORD_ON    ? "1"
                              : record == STORE_RECORD_OFF ? "0"
                                                           : ""};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_stream_field, 2, keys, 2, args, &rep);
    if (rc == 0)
        rc = rep->type != REDIS_REPLY_INTEGER ? -EIO : rep->integer == 1 ? 0 : -ENOENT;
    freeReplyObject(rep);
    return rc;
}

/* A registered stream's field in the registry hash `key` ("": none). */
static int rs_registry_set_field(store_t *st, const char *id, const char *key, const char *value)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *keys[] = {RS_KEY_BY_ID, key};
    const char *args[] = {id, value};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_stream_field, 2, keys, 2, args, &rep);
    if (rc == 0)
        rc = rep->type != REDIS_REPLY_INTEGER ? -EIO : rep->integer == 1 ? 0 : -ENOENT;
    freeReplyObject(rep);
    return rc;
}

static int rs_registry_set_ladder(store_t *st, const char *id, const char *ladder)
{
    return rs_registry_set_field(st, id, RS_KEY_LADDER, ladder);
}

static int rs_registry_set_outputs(store_t *st, const char *id, const char *text)
{
    return rs_registry_set_field(st, id, RS_KEY_OUTPUTS, text);
}

static int rs_registry_get_outputs(store_t *st, const char *id, char **text_out)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    const char *keys[] = {RS_KEY_BY_ID, RS_KEY_OUTPUTS};
    const char *args[] = {id};
    redisReply *rep;
    int rc = rs_eval(r, rs_lua_stream_field_get, 2, keys, 1, args, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_NIL) {
        rc = -ENOENT;
    } else if (rc == 0 && rep->type == REDIS_REPLY_STRING) {
        /* Text no version writes (too long) reads as none. */
        if (rep->len >= STORE_OUTPUTS_MAX) {
            log_warn(RS_LOG, "registry: stream '%s': ignoring stored outputs of %zu bytes", id,
                     (size_t)rep->len);
            *text_out = strdup("");
        } else {
            *text_out = strndup(rep->str, rep->len);
        }
        if (!*text_out)
            rc = -ENOMEM;
    } else if (rc == 0) {
        rc = -EIO;
    }
    freeReplyObject(rep);
    return rc;
}

/* A notice on the registry channel ("r ID", "k ID HEX"). Maintenance thread. */
static void rs_registry_notice(store_redis_t *r, const char *msg, size_t len)
{
    char id[STORE_ID_MAX];
    if (len < 3 || (msg[0] != 'r' && msg[0] != 'k') || msg[1] != ' ')
        return;
    const char *p = msg + 2, *end = msg + len;
    size_t idlen = 0;
    while (p + idlen < end && p[idlen] != ' ')
        idlen++;
    if (idlen == 0 || idlen >= STORE_ID_MAX)
        return;
    memcpy(id, p, idlen);
    id[idlen] = '\0';
    if (!store_id_valid(id))
        return;
    if (msg[0] == 'r') {
        rs_seed_forget(r, id);
        return;
    }
    p += idlen;
    if (end - p != 65 || *p != ' ')
        return;
    uint8_t hash[32];
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = p[1 + 2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return;
            v = v * 16 + d;
        }
        hash[i] = (uint8_t)v;
    }
    rs_seed_rekey(r, id, hash);
}

/* ---- meta records ---------------------------------------------------------- */

static int rs_meta_put(store_t *st, const char *stream_id, const char *field, const char *value,
                       int64_t ttl_ms, const char *final_prefix)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char key[RS_KEY_MAX], puts[RS_KEY_MAX], ttl[24];
    rs_key_meta(key, stream_id);
    rs_key_meta_puts(puts, stream_id);
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *keys[] = {key, puts};
    const char *args[] = {field, value, ttl, final_prefix};
    redisReply *rep;
    int rc = rs_eval(r, rs_lua_meta_put, 2, keys, final_prefix ? 4 : 3, args, &rep);
    if (rc == 0 && final_prefix && rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0)
        rc = 1; /* a final record stays */
    freeReplyObject(rep);
    return rc;
}

static int rs_meta_get(store_t *st, const char *stream_id, const char *field, char **value_out)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char key[RS_KEY_MAX];
    rs_key_meta(key, stream_id);
    const char *keys[] = {key};
    const char *args[] = {field};
    redisReply *rep;
    int rc = rs_eval(r, rs_lua_meta_get, 1, keys, 1, args, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_NIL) {
        rc = -ENOENT;
    } else if (rc == 0 && rep->type == REDIS_REPLY_STRING) {
        *value_out = strndup(rep->str, rep->len);
        if (!*value_out)
            rc = -ENOMEM;
    } else if (rc == 0) {
        rc = -EIO;
    }
    freeReplyObject(rep);
    return rc;
}

static int rs_meta_scan(store_t *st, const char *stream_id, const char *prefix, store_meta_cb cb,
                        void *opaque)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char key[RS_KEY_MAX];
    rs_key_meta(key, stream_id);
    const char *keys[] = {key};
    const char *args[] = {prefix};
    redisReply *rep;
    int rc = rs_eval(r, rs_lua_meta_scan, 1, keys, 1, args, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_ARRAY)
        rc = -EIO;
    /* The connection is back in the pool already: cb may call the store. */
    for (size_t i = 0; rc == 0 && i + 1 < rep->elements; i += 2) {
        const redisReply *f = rep->element[i], *v = rep->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            cb(opaque, f->str, v->str);
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- leases ----------------------------------------------------------------- */

static void rs_held_set(store_redis_t *r, const char *id, bool held)
{
    pthread_mutex_lock(&r->state_lock);
    rs_held_t **pp = &r->held;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    if (held && !*pp) {
        rs_held_t *h = calloc(1, sizeof(*h));
        if (h) {
            snprintf(h->id, sizeof(h->id), "%s", id);
            *pp = h;
        }
    } else if (!held && *pp) {
        rs_held_t *h = *pp;
        *pp = h->next;
        free(h);
    }
    pthread_mutex_unlock(&r->state_lock);
}

static bool rs_held_has(store_redis_t *r, const char *id)
{
    pthread_mutex_lock(&r->state_lock);
    rs_held_t *h = r->held;
    while (h && strcmp(h->id, id) != 0)
        h = h->next;
    pthread_mutex_unlock(&r->state_lock);
    return h != NULL;
}

static int rs_lease_acquire(store_t *st, const char *stream_id, bool takeover)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    char key[RS_KEY_MAX], channel[RS_KEY_MAX], ms[16];
    rs_key_lease(key, stream_id);
    rs_channel(r, channel, stream_id);
    snprintf(ms, sizeof(ms), "%d", RS_LEASE_MS);
    const char *keys[] = {key};
    const char *args[] = {r->node_id, ms, takeover ? "1" : "0", channel};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_acquire, 1, keys, 4, args, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_INTEGER)
        rc = -EIO;
    if (rc == 0 && rep->integer == 0)
        rc = -EBUSY;
    if (rc == 0 && rep->integer == 2)
        log_info(RS_LOG, "stream %s: taken over from another node", stream_id);
    freeReplyObject(rep);
    if (rc == 0)
        rs_held_set(r, stream_id, true);
    return rc;
}

static void rs_lease_release(store_t *st, const char *stream_id)
{
    store_redis_t *r = (store_redis_t *)st;
    rs_held_set(r, stream_id, false);
    if (!atomic_load(&r->up))
        return; /* it lapses by itself */
    char key[RS_KEY_MAX];
    rs_key_lease(key, stream_id);
    const char *keys[] = {key};
    const char *args[] = {r->node_id};
    redisReply *rep;
    (void)rs_eval(r, rs_lua_release, 1, keys, 1, args, &rep);
    freeReplyObject(rep);
}


/* Revokes stream_id's lease wherever it is held. The owner learns it from the
 * "t -NODE" notice; when that is this node, the lost_cb runs here and now,
 * so the caller finds its publisher on its way out when this returns. */
static int rs_lease_revoke(store_t *st, const char *stream_id)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!atomic_load(&r->up))
        return -EIO;
    /* Stop renewing first: a renewal after the DEL would re-take it. */
    bool ours = rs_held_has(r, stream_id);
    if (ours)
        rs_held_set(r, stream_id, false);
    char key[RS_KEY_MAX], channel[RS_KEY_MAX];
    rs_key_lease(key, stream_id);
    rs_channel(r, channel, stream_id);
    const char *keys[] = {key};
    const char *args[] = {channel, r->node_id};
    redisReply *rep;
    int rc = rs_eval_wait(r, rs_lua_revoke, 1, keys, 2, args, &rep);
    freeReplyObject(rep);
    if (ours) {
        log_info(RS_LOG, "stream %s: lease revoked here", stream_id);
        store_notify_lease_lost(&r->base, stream_id);
        /* A renewal already under way when we stopped may have re-taken it. */
        rs_lease_release(st, stream_id);
    }
    return rc;
}

static const char *rs_node_id(const store_t *st)
{
    return ((const store_redis_t *)st)->node_id;
}

static bool rs_connected(store_t *st)
{
    return atomic_load(&((store_redis_t *)st)->up);
}

static void rs_ha_stats(store_t *st, store_stats_t *out)
{
    store_redis_t *r = (store_redis_t *)st;
    if (!r->sentinel_mode)
        return;
    out->sentinel = true;
    snprintf(out->master_name, sizeof(out->master_name), "%s", r->master_name);
    out->sentinels = r->nsentinels;
    out->sentinels_up = atomic_load(&r->sentinels_up);
    out->replica_wait_timeouts = atomic_load(&r->replica_wait_timeouts);
    out->early_switches = atomic_load(&r->early_switches);
    int64_t since = atomic_load(&r->down_since_mono_ms);
    out->outage_ms = since ? clock_mono_ms() - since : 0;
    pthread_mutex_lock(&r->pool_lock);
    if (r->host[0] && atomic_load(&r->up))
        snprintf(out->master, sizeof(out->master), strchr(r->host, ':') ? "[%.256s]:%d" : "%.256s:%d",
                 r->host, r->port);
    out->failovers = r->failovers;
    out->last_failover_ms = r->last_failover_wall_ms;
    out->last_outage_ms = r->last_outage_ms;
    pthread_mutex_unlock(&r->pool_lock);
}

/* Renews every lease this node holds; a lease found in another node's hands
 * is reported lost. Maintenance thread. -EIO stops early. */
static int rs_renew_leases(store_redis_t *r)
{
    char ids[64][STORE_ID_MAX];
    size_t n = 0;
    pthread_mutex_lock(&r->state_lock);
    for (rs_held_t *h = r->held; h && n < 64; h = h->next)
        snprintf(ids[n++], STORE_ID_MAX, "%s", h->id);
    pthread_mutex_unlock(&r->state_lock);
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", RS_LEASE_MS);
    for (size_t i = 0; i < n; i++) {
        char key[RS_KEY_MAX];
        rs_key_lease(key, ids[i]);
        const char *keys[] = {key};
        const char *args[] = {r->node_id, ms};
        redisReply *rep;
        int rc = rs_eval(r, rs_lua_renew, 1, keys, 2, args, &rep);
        bool lost = rc == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0;
        freeReplyObject(rep);
        if (rc < 0)
            return rc;
        if (lost && rs_held_has(r, ids[i])) {
            rs_held_set(r, ids[i], false);
            log_warn(RS_LOG, "stream %s: another node holds it now", ids[i]);
            store_notify_lease_lost(&r->base, ids[i]);
        }
    }
    return 0;
}

/* ---- maintenance thread: connection, subscription, renewal ---------------- */

/* Reads the alive marker into out ("" when missing). 0 or -EIO. */
static int rs_alive_read(store_redis_t *r, char *out, size_t size)
{
    const char *argv[] = {"GET", RS_KEY_ALIVE};
    size_t lens[] = {3, strlen(RS_KEY_ALIVE)};
    redisReply *rep;
    int rc = rs_command(r, 2, argv, lens, &rep);
    out[0] = '\0';
    if (rc == 0 && rep->type == REDIS_REPLY_STRING)
        snprintf(out, size, "%.*s", (int)(rep->len < size ? rep->len : size - 1), rep->str);
    else if (rc == 0 && rep->type != REDIS_REPLY_NIL)
        rc = -EIO;
    freeReplyObject(rep);
    return rc;
}

/* Brings Redis in line with this node after a (re)connection or a lost
 * dataset: the alive marker, the configured streams, this node's leases, and
 * every stream it writes. Maintenance thread. */
static int rs_resync(store_redis_t *r)
{
    /* The marker holds the epoch of the dataset: whoever finds it missing
     * writes a fresh one (NX: one node wins), and every node remembers the
     * value it synchronised against, so the nodes that did not notice the
     * loss first see a new epoch and re-seed too. */
    char epoch[33];
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(epoch + 2 * i, 3, "%02x", rnd[i]);
    const char *argv[] = {"SET", RS_KEY_ALIVE, epoch, "NX"};
    size_t lens[] = {3, strlen(RS_KEY_ALIVE), 32, 2};
    redisReply *rep;
    int rc = rs_command(r, 4, argv, lens, &rep);
    freeReplyObject(rep);
    if (rc < 0)
        return rc;
    if ((rc = rs_alive_read(r, r->alive_epoch, sizeof(r->alive_epoch))) < 0)
        return rc;

    atomic_store(&r->up, true); /* the calls below check it */
    pthread_mutex_lock(&r->state_lock);
    size_t nseeds = 0;
    for (rs_seed_t *s = r->seeds; s; s = s->next)
        nseeds++;
    rs_seed_t *copy = calloc(nseeds ? nseeds : 1, sizeof(*copy));
    size_t k = 0;
    for (rs_seed_t *s = r->seeds; copy && s; s = s->next)
        copy[k++] = *s;
    pthread_mutex_unlock(&r->state_lock);
    for (size_t i = 0; i < k && rc == 0; i++) {
        int s = rs_seed_write(r, copy[i].id, copy[i].hash);
        if (s == -EIO)
            rc = s;
        else if (s == -EEXIST)
            log_error(RS_LOG, "--stream %s: that key belongs to another stream in the shared "
                              "registry", copy[i].id);
    }
    free(copy);
    if (rc == 0)
        rc = rs_renew_leases(r);

    pthread_mutex_lock(&r->mirror_lock);
    rs_stream_t *streams = r->streams;
    pthread_mutex_unlock(&r->mirror_lock);
    for (rs_stream_t *s = streams; s && rc == 0; s = s->next) {
        pthread_mutex_lock(&s->lock);
        if (s->entries)
            s->dirty = true;
        if (s->dirty && rs_flush_stream(r, s) == -EIO)
            rc = -EIO;
        pthread_mutex_unlock(&s->lock);
    }
    if (rc < 0)
        atomic_store(&r->up, false);
    return rc;
}

static void rs_sub_drop(store_redis_t *r, const char *why);

static void rs_sub_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    store_redis_t *r = privdata;
    redisReply *rep = reply;
    /* ac != r->sub: dropped (a ROLE that said "replica"), but hiredis still
     * hands out the replies it had already read. */
    if (!rep || r->closing || ac != r->sub)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error(RS_LOG, "%s refused the subscription: %s", r->where, rep->str);
        rs_sub_drop(r, "subscription refused");
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (strcmp(kind, "psubscribe") == 0) {
        int64_t now = clock_mono_ms();
        if (rs_resync(r) < 0) {
            rs_sub_drop(r, "could not re-synchronise");
            return;
        }
        r->sub_ready = true;
        r->backoff_ms = RS_BACKOFF_MIN_MS;
        r->last_renew_ms = r->last_alive_check_ms = r->last_discover_ms = now;
        if (r->down_since_ms)
            log_info(RS_LOG, "connected to %s again after %.1f s (node %s)", r->where,
                     (double)(now - r->down_since_ms) / 1000.0, r->node_id);
        else
            log_info(RS_LOG, "connected to %s (node %s)", r->where, r->node_id);
        if (r->outage_started_ms) {
            pthread_mutex_lock(&r->pool_lock);
            r->last_outage_ms = now - r->outage_started_ms;
            pthread_mutex_unlock(&r->pool_lock);
            r->outage_started_ms = 0;
        }
        r->down_since_ms = 0;
        atomic_store(&r->down_since_mono_ms, 0);
        r->failures = 0;
        /* Requests held through the outage (origin) read again now. */
        store_notify_all_changed(&r->base);
        return;
    }
    if (strcmp(kind, "pmessage") != 0 || rep->elements != 4 ||
        rep->element[2]->type != REDIS_REPLY_STRING || rep->element[3]->type != REDIS_REPLY_STRING)
        return;
    const char *ch = rep->element[2]->str;
    if (strcmp(ch, r->registry_channel) == 0) {
        rs_registry_notice(r, rep->element[3]->str, rep->element[3]->len);
        return;
    }
    /* channel "sluice:ev:DB:{ID}" */
    const char *open = strchr(ch, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    if (!open || !close || close - open - 1 <= 0 || close - open - 1 >= STORE_ID_MAX)
        return;
    char id[STORE_ID_MAX];
    memcpy(id, open + 1, (size_t)(close - open - 1));
    id[close - open - 1] = '\0';
    const char *msg = rep->element[3]->str;
    if (msg[0] == 'c') {
        /* Objects written again (an init.mp4 after a discontinuity, a name
         * reused by a later broadcast) leave every node's cache. */
        char name[STORE_NAME_MAX + 1];
        for (const char *p = msg + 1; *p;) {
            while (*p == ' ')
                p++;
            size_t len = strcspn(p, " ");
            if (len > 0 && len <= STORE_NAME_MAX) {
                memcpy(name, p, len);
                name[len] = '\0';
                if (rs_cacheable(name))
                    store_cache_evict(r->cache, id, name);
            }
            p += len;
        }
        store_notify_changed(&r->base, id);
    } else if (msg[0] == 't' && msg[1] == ' ' && strcmp(msg + 2, r->node_id) != 0) {
        /* "t -NODE": revoked by NODE; its own revoke already ended its lease. */
        bool revoked = msg[2] == '-';
        if (revoked && strcmp(msg + 3, r->node_id) == 0)
            return;
        if (rs_held_has(r, id)) {
            rs_held_set(r, id, false);
            if (revoked)
                log_info(RS_LOG, "stream %s: lease revoked by node %.32s", id, msg + 3);
            else
                log_info(RS_LOG, "stream %s: taken over by node %.32s", id, msg + 2);
            store_notify_lease_lost(&r->base, id);
            if (revoked)
                rs_lease_release(&r->base, id); /* a renewal before the notice re-took it */
        }
    }
}

static void rs_sub_connect_cb(const redisAsyncContext *ac, int status)
{
    store_redis_t *r = ac->data;
    if (status != REDIS_OK && r->sub == ac) {
        /* hiredis frees the context after this callback. */
        r->sub = NULL;
        rs_sub_drop(r, ac->errstr);
    }
}

static void rs_sub_disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    store_redis_t *r = ac->data;
    if (r->sub != ac)
        return; /* one we dropped ourselves */
    r->sub = NULL; /* hiredis frees it after this callback */
    if (!r->closing)
        rs_sub_drop(r, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* Redis is gone (or refused us): clear `up`, drop what depends on the old
 * connection, and schedule the next attempt. Maintenance thread. */
static void rs_sub_drop(store_redis_t *r, const char *why)
{
    int64_t now = clock_mono_ms();
    bool was_ready = r->sub_ready;
    atomic_store(&r->up, false);
    r->sub_ready = false;
    if (r->sub) {
        redisAsyncContext *ac = r->sub;
        r->sub = NULL;
        /* Called from inside a hiredis callback, a free would pull the
         * context from under it: ask for a disconnect instead. */
        redisAsyncDisconnect(ac);
    }
    rs_pool_flush(r);
    store_cache_clear(r->cache); /* invalidation notices may be missed from here on */
    pthread_mutex_lock(&r->mirror_lock);
    for (rs_stream_t *s = r->streams; s; s = s->next)
        s->dirty = true; /* a restart may have emptied Redis: re-announce everything */
    pthread_mutex_unlock(&r->mirror_lock);
    r->failures++;
    if (!r->down_since_ms)
        r->down_since_ms = now;
    atomic_store(&r->down_since_mono_ms, r->down_since_ms);
    int cap = r->sentinel_mode ? RS_SENTINEL_BACKOFF_MAX_MS : RS_BACKOFF_MAX_MS;
    if (was_ready) {
        log_error(RS_LOG, "lost %s (%s); reconnecting, origin answers 503 meanwhile", r->where,
                  why);
        r->last_down_log_ms = now;
        r->outage_started_ms = now;
    } else if (r->failures == 1 || now - r->last_down_log_ms >= 10000) {
        log_error(RS_LOG, "cannot reach %s (%s); retrying with backoff up to %d ms%s", r->where,
                  why, cap, r->failures > 1 ? " (still down)" : "");
        r->last_down_log_ms = now;
    }
    /* Sentinel mode: the first retry after losing a ready master is at
     * once (the sentinels are cheap to ask); then every 100 ms while the
     * outage is young (each retry may find a promoted replica before the
     * sentinels announce it: rs_early_probe), then a short backoff. */
    bool young = r->sentinel_mode && r->outage_started_ms &&
                 now - r->outage_started_ms < RS_SENTINEL_YOUNG_OUTAGE_MS;
    int delay = young ? RS_SENTINEL_YOUNG_RETRY_MS : r->backoff_ms;
    r->next_connect_ms = was_ready && r->sentinel_mode ? now : now + delay;
    if (!young)
        r->backoff_ms = r->backoff_ms * 2 > cap ? cap : r->backoff_ms * 2;
    if (was_ready && r->sentinel_mode && r->kick_ev) {
        event_active(r->kick_ev, 0, 0); /* not the next tick: now */
    } else if (young && r->retry_ev) {
        /* Sooner than the 250 ms tick; +1 ms so the tick's clock agrees. */
        struct timeval tv = {.tv_sec = 0, .tv_usec = (delay + 1) * 1000};
        event_add(r->retry_ev, &tv);
    }
}

/* ---- Sentinel: discovery and the +switch-master watchers ------------------ */

/* Sends AUTH to a sentinel when the URL has its credentials. false: refused
 * (logged, naming the parameter, never its value). */
static bool rs_sentinel_auth_sync(store_redis_t *r, rs_sentinel_t *sn, redisContext *c)
{
    if (!r->sentinel_password[0])
        return true;
    redisReply *rep = r->sentinel_user[0]
                          ? redisCommand(c, "AUTH %s %s", r->sentinel_user, r->sentinel_password)
                          : redisCommand(c, "AUTH %s", r->sentinel_password);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep && !ok && rs_sentinel_log_due(sn))
        log_error(RS_LOG, "sentinel %s:%d refused sluice's credentials (check sentinel-password=%s"
                          " in --store): %s",
                  sn->host, sn->port, r->sentinel_user[0] ? " and sentinel-user=" : "", rep->str);
    freeReplyObject(rep);
    return ok;
}

/* Takes the replicas of master_name from a SENTINEL replicas reply: the
 * ip/port of each whose flags say "slave" and not down, at most
 * RS_REPLICAS_MAX. Maintenance thread. */
static void rs_replicas_take(store_redis_t *r, const redisReply *rep)
{
    unsigned n = 0;
    for (size_t i = 0; i < rep->elements && n < RS_REPLICAS_MAX; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY)
            continue;
        const char *ip = NULL, *port = NULL, *flags = NULL;
        for (size_t k = 0; k + 1 < e->elements; k += 2) {
            const redisReply *key = e->element[k], *val = e->element[k + 1];
            if (key->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(key->str, "ip") == 0)
                ip = val->str;
            else if (strcmp(key->str, "port") == 0)
                port = val->str;
            else if (strcmp(key->str, "flags") == 0)
                flags = val->str;
        }
        if (!ip || !port || !flags || !ip[0] || strlen(ip) >= sizeof(r->replicas[0].host))
            continue;
        long p = strtol(port, NULL, 10);
        /* "disconnected" is kept: a sentinel that has just learnt of a
         * replica flags it so until its own link is up, and ROLE decides
         * anyway; one it holds down is not worth a probe. */
        if (p < 1 || p > 65535 || !strstr(flags, "slave") || strstr(flags, "s_down") ||
            strstr(flags, "o_down"))
            continue;
        snprintf(r->replicas[n].host, sizeof(r->replicas[n].host), "%s", ip);
        r->replicas[n].port = (int)p;
        n++;
    }
    if (n != r->nreplicas)
        log_info(RS_LOG, "%s: the sentinels list %u replica%s of %s", r->where, n,
                 n == 1 ? "" : "s", r->master_name);
    r->nreplicas = n;
    if (r->replica_next >= n)
        r->replica_next = 0;
}

/* Asks one sentinel for the replicas of master_name (learn: see
 * rs_sentinel_discover). A refusal (an ACL without +sentinel|replicas) is
 * logged once and only turns the early switch off. */
static void rs_replicas_learn(store_redis_t *r, redisContext *c)
{
    redisReply *rep = redisCommand(c, "SENTINEL replicas %s", r->master_name);
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        rs_replicas_take(r, rep);
    } else if (rep && rep->type == REDIS_REPLY_ERROR && !r->replicas_refused_logged) {
        r->replicas_refused_logged = true;
        log_warn(RS_LOG, "%s: a sentinel refused SENTINEL replicas (%s); sluice follows a "
                         "promoted replica only after +switch-master%s",
                 r->where, rep->str,
                 rs_reply_noperm(rep) ? " (grant +sentinel|replicas to sentinel-user=)" : "");
    }
    freeReplyObject(rep);
}

/* Asks the sentinels, the one that answered last first, for the master's
 * address (the Sentinel client protocol). Maintenance thread; blocks at most
 * RS_SENTINEL_CONNECT_MS + RS_SENTINEL_COMMAND_MS per dead sentinel.
 * learn: also take the replicas that sentinel lists (rs_replicas_learn),
 * done while healthy only. 0, or -EIO when none answered with an address. */
static int rs_sentinel_discover(store_redis_t *r, bool learn, char *host, size_t hostlen, int *port)
{
    for (unsigned j = 0; j < r->nsentinels; j++) {
        unsigned i = (r->sentinel_first + j) % r->nsentinels;
        rs_sentinel_t *sn = &r->sentinels[i];
        struct timeval ct = {.tv_sec = 0, .tv_usec = RS_SENTINEL_CONNECT_MS * 1000};
        redisContext *c = redisConnectWithTimeout(sn->host, sn->port, ct);
        if (!c || c->err) {
            redisFree(c);
            continue;
        }
        struct timeval tv = {.tv_sec = 0, .tv_usec = RS_SENTINEL_COMMAND_MS * 1000};
        if (redisSetTimeout(c, tv) != REDIS_OK || !rs_sentinel_auth_sync(r, sn, c)) {
            redisFree(c);
            continue;
        }
        redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name);
        int rc = -EIO;
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len > 0 &&
            rep->element[0]->len < hostlen) {
            long p = strtol(rep->element[1]->str, NULL, 10);
            if (p >= 1 && p <= 65535) {
                memcpy(host, rep->element[0]->str, rep->element[0]->len + 1);
                *port = (int)p;
                rc = 0;
            }
        } else if (rep && rep->type == REDIS_REPLY_NIL) {
            if (!sn->unknown_logged)
                log_error(RS_LOG, "sentinel %s:%d does not know master '%s' (sentinel monitor "
                                  "NAME ...)", sn->host, sn->port, r->master_name);
            sn->unknown_logged = true;
        } else if (rep && rep->type == REDIS_REPLY_ERROR && rs_sentinel_log_due(sn)) {
            log_error(RS_LOG, "sentinel %s:%d: %s%s", sn->host, sn->port, rep->str,
                      rs_reply_noperm(rep) ? " (check sentinel-user= in --store and its ACL: "
                                             "+sentinel|get-master-addr-by-name)" : "");
        }
        freeReplyObject(rep);
        if (rc == 0 && learn)
            rs_replicas_learn(r, c);
        redisFree(c);
        if (rc == 0) {
            r->sentinel_first = i;
            return 0;
        }
    }
    return -EIO;
}

/* Takes the address the sentinels named as the master's; a change after a
 * first one is a failover. Maintenance thread. */
static void rs_master_set(store_redis_t *r, const char *host, int port)
{
    pthread_mutex_lock(&r->pool_lock);
    bool changed = strcmp(r->host, host) != 0 || r->port != port;
    bool first = !r->host[0];
    char old[sizeof(r->host)];
    int oldport = r->port;
    memcpy(old, r->host, sizeof(old));
    if (changed) {
        snprintf(r->host, sizeof(r->host), "%s", host);
        r->port = port;
        r->pool_gen++; /* contexts made for the old address are dropped */
        if (!first) {
            r->failovers++;
            r->last_failover_wall_ms = clock_wall_ms();
        }
    }
    pthread_mutex_unlock(&r->pool_lock);
    if (changed && first)
        log_info(RS_LOG, "%s: master %s is %s:%d", r->where, r->master_name, host, port);
    else if (changed)
        log_warn(RS_LOG, "%s: master %s is now %s:%d (was %s:%d)", r->where, r->master_name,
                 host, port, old, oldport);
}

static void rs_sub_role_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    store_redis_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || r->closing || ac != r->sub)
        return;
    if (rs_reply_noperm(rep)) {
        if (!atomic_exchange(&r->role_noperm_logged, true))
            log_warn(RS_LOG, "%s: the data user may not run ROLE (grant +role); relying on "
                             "-READONLY to notice a demoted master", r->where);
        return;
    }
    if (!rs_role_is_master(rep)) {
        /* The sentinel that named it may be stale (one that restarted with
         * an old configuration): ask the next one first this time. */
        if (r->nsentinels)
            r->sentinel_first = (r->sentinel_first + 1) % r->nsentinels;
        rs_sub_drop(r, "not the master (ROLE)");
    }
}

/* The early switch (sentinel mode, while the master is lost): the
 * sentinels still name the lost master (host:port). Follows a replica
 * before +switch-master only when all hold:
 *   1. the replica's ROLE says master (Sentinel's leader, or an operator,
 *      promoted it: a replica never says master on its own);
 *   2. the lost master does not answer as master (refused, timed out, or
 *      its ROLE says replica);
 *   3. the sentinels listed it as a replica of master_name while healthy
 *      (never an arbitrary address).
 * Each probe has 100 ms to connect and 200 ms to answer, at most
 * RS_PROBE_PER_RETRY replicas per retry, so the maintenance thread blocks
 * a bounded time. true: host/port now name the promoted replica. */
static bool rs_early_probe(store_redis_t *r, char *host, size_t hostlen, int *port, int64_t now)
{
    if (!r->outage_started_ms || now - r->outage_started_ms >= RS_SENTINEL_YOUNG_OUTAGE_MS ||
        now < r->early_blocked_until_ms || r->nreplicas == 0)
        return false;
    pthread_mutex_lock(&r->pool_lock);
    bool lost = strcmp(r->host, host) == 0 && r->port == *port;
    pthread_mutex_unlock(&r->pool_lock);
    if (!lost)
        return false; /* the sentinels already name another master */
    int role;
    redisContext *c = rs_connect_timed(r, host, *port, RS_PROBE_CONNECT_MS, RS_PROBE_COMMAND_MS,
                                       false, &role);
    if (c) {
        redisFree(c);
        if (role != RS_ROLE_OTHER)
            return false; /* it answers as master (or cannot tell): not lost */
    }
    unsigned n = r->nreplicas < RS_PROBE_PER_RETRY ? r->nreplicas : RS_PROBE_PER_RETRY;
    for (unsigned j = 0; j < n; j++) {
        unsigned i = (r->replica_next + j) % r->nreplicas;
        const char *rh = r->replicas[i].host;
        int rp = r->replicas[i].port;
        if (strcmp(rh, host) == 0 && rp == *port)
            continue;
        c = rs_connect_timed(r, rh, rp, RS_PROBE_CONNECT_MS, RS_PROBE_COMMAND_MS, false, &role);
        if (!c)
            continue;
        redisFree(c);
        if (role == RS_ROLE_MASTER && strlen(rh) < hostlen) {
            log_warn(RS_LOG, "master %s: replica %s:%d was promoted; following it before "
                             "Sentinel announces", r->master_name, rh, rp);
            snprintf(r->early_from_host, sizeof(r->early_from_host), "%s", host);
            r->early_from_port = *port;
            memcpy(host, rh, strlen(rh) + 1);
            *port = rp;
            r->replica_next = i;
            return true;
        }
    }
    r->replica_next = (r->replica_next + n) % r->nreplicas;
    return false;
}

static void rs_sub_start(store_redis_t *r)
{
    char host[sizeof(r->host)];
    int port;
    if (r->sentinel_mode) {
        int64_t now = clock_mono_ms();
        r->last_discover_ms = now;
        r->recheck_now = false;
        /* The replicas are learnt while healthy: during an outage the list
         * we have is the one rs_early_probe may trust. */
        if (rs_sentinel_discover(r, r->outage_started_ms == 0, host, sizeof(host), &port) < 0) {
            rs_sub_drop(r, "no sentinel named a master");
            return;
        }
        bool early = rs_early_probe(r, host, sizeof(host), &port, now);
        rs_master_set(r, host, port);
        if (early) {
            r->early_unconfirmed = true;
            atomic_fetch_add(&r->early_switches, 1);
        } else {
            r->early_unconfirmed = false;
        }
    } else {
        memcpy(host, r->host, sizeof(host));
        port = r->port;
    }
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        const char *why = ac ? ac->errstr : "out of memory";
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", why);
        if (ac)
            redisAsyncFree(ac);
        rs_sub_drop(r, buf);
        return;
    }
    ac->data = r;
    if (redisLibeventAttach(ac, r->evbase) != REDIS_OK) {
        redisAsyncFree(ac);
        rs_sub_drop(r, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, rs_sub_connect_cb);
    redisAsyncSetDisconnectCallback(ac, rs_sub_disconnect_cb);
    r->sub = ac;
    r->sub_started_ms = clock_mono_ms();
    if (r->password[0]) {
        if (r->user[0])
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", r->user, r->password);
        else
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->password);
    }
    char cname[16];
    snprintf(cname, sizeof(cname), "sluice-%.8s", r->node_id);
    redisAsyncCommand(ac, NULL, NULL, "CLIENT SETNAME %s", cname);
    /* ROLE before PSUBSCRIBE: replies come in order, so the subscription
     * (and with it the resync) only counts on a confirmed master. Never
     * queue a plain command after PSUBSCRIBE on this context: hiredis 0.14
     * would take its reply for a pub/sub one. */
    if (r->sentinel_mode)
        redisAsyncCommand(ac, rs_sub_role_cb, r, "ROLE");
    char pattern[96];
    snprintf(pattern, sizeof(pattern), "%s*", r->channel_prefix);
    redisAsyncCommand(ac, rs_sub_reply_cb, r, "PSUBSCRIBE %s", pattern);
}

static void rs_watch_msg_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    rs_sentinel_t *sn = privdata;
    store_redis_t *r = sn->r;
    redisReply *rep = reply;
    if (!rep || r->closing || ac != sn->ac || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(rep->element[0]->str, "subscribe") == 0) {
        if (!sn->subscribed)
            atomic_fetch_add(&r->sentinels_up, 1);
        sn->subscribed = true;
        sn->backoff_ms = RS_WATCH_BACKOFF_MIN_MS;
        return;
    }
    if (strcmp(rep->element[0]->str, "message") != 0 ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    char host[256];
    int port;
    if (rs_switch_parse(rep->element[2]->str, rep->element[2]->len, r->master_name, host,
                        sizeof(host), &port) != 0)
        return;
    /* Only a trigger: a restarted sentinel can repeat a stale switch
     * (redis/redis#12798), and all of them announce it. The tick asks the
     * sentinels and checks ROLE; the address here is never used. */
    log_info(RS_LOG, "sentinel %s:%d: +switch-master %s -> %s:%d", sn->host, sn->port,
             r->master_name, host, port);
    r->recheck_now = true;
    /* It knows the new master; the others may not have heard yet. */
    r->sentinel_first = (unsigned)(sn - r->sentinels);
    if (!r->sub_ready)
        r->next_connect_ms = clock_mono_ms();
    event_active(r->kick_ev, 0, 0);
}

static void rs_watch_gone(rs_sentinel_t *sn)
{
    store_redis_t *r = sn->r;
    sn->ac = NULL; /* hiredis frees it after this callback */
    if (sn->subscribed)
        atomic_fetch_sub(&r->sentinels_up, 1);
    sn->subscribed = false;
    sn->next_connect_ms = clock_mono_ms() + sn->backoff_ms;
    sn->backoff_ms =
        sn->backoff_ms * 2 > RS_WATCH_BACKOFF_MAX_MS ? RS_WATCH_BACKOFF_MAX_MS : sn->backoff_ms * 2;
}

static void rs_watch_connect_cb(const redisAsyncContext *ac, int status)
{
    rs_sentinel_t *sn = ac->data;
    if (status != REDIS_OK && sn->ac == ac)
        rs_watch_gone(sn);
}

static void rs_watch_disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    rs_sentinel_t *sn = ac->data;
    if (sn->ac == ac && !sn->r->closing)
        rs_watch_gone(sn);
}

/* Subscribes to one sentinel's +switch-master. Maintenance thread. Kept
 * alive by TCP keepalive only: no PING on a subscribed hiredis 0.14
 * context; the periodic rediscovery covers a watcher that died silently. */
static void rs_watch_start(store_redis_t *r, rs_sentinel_t *sn)
{
    redisAsyncContext *ac = redisAsyncConnect(sn->host, sn->port);
    if (!ac || ac->err || redisLibeventAttach(ac, r->evbase) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        sn->ac = NULL;
        sn->subscribed = false;
        sn->next_connect_ms = clock_mono_ms() + RS_WATCH_BACKOFF_MAX_MS;
        return;
    }
    ac->data = sn;
    redisAsyncSetConnectCallback(ac, rs_watch_connect_cb);
    redisAsyncSetDisconnectCallback(ac, rs_watch_disconnect_cb);
    redisEnableKeepAlive(&ac->c);
    sn->ac = ac;
    if (r->sentinel_password[0]) {
        if (r->sentinel_user[0])
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", r->sentinel_user,
                              r->sentinel_password);
        else
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->sentinel_password);
    }
    redisAsyncCommand(ac, rs_watch_msg_cb, sn, "SUBSCRIBE +switch-master");
}

/* Sentinel mode, while ready: asks the sentinels whether the master is
 * still the one we use (after a +switch-master, and every few seconds in
 * case every message was missed). Another address: start over there. */
static void rs_sentinel_recheck(store_redis_t *r, int64_t now)
{
    r->last_discover_ms = now;
    r->recheck_now = false;
    char host[sizeof(r->host)];
    int port;
    if (rs_sentinel_discover(r, true, host, sizeof(host), &port) < 0) {
        /* No sentinel answered: keep the master we have, and do not block
         * this thread (up to 0.8 s per sentinel) every 5 s while they are
         * away; a +switch-master still triggers a check at once. */
        r->last_discover_ms = now + RS_SENTINEL_IDLE_RECHECK_MS - RS_SENTINEL_RECHECK_MS;
        int64_t wall = clock_mono_ms();
        if (wall - r->last_nosentinel_log_ms >= 60000) {
            r->last_nosentinel_log_ms = wall;
            log_warn(RS_LOG, "%s: no sentinel answered; keeping master %s:%d", r->where, r->host,
                     r->port);
        }
        return;
    }
    pthread_mutex_lock(&r->pool_lock);
    bool same = strcmp(r->host, host) == 0 && r->port == port;
    pthread_mutex_unlock(&r->pool_lock);
    if (same) {
        r->early_unconfirmed = false; /* the sentinels now name it too */
        return;
    }
    if (r->early_unconfirmed && strcmp(host, r->early_from_host) == 0 &&
        port == r->early_from_port) {
        /* A sentinel that has not heard of the promotion yet (the others
         * learn it from the leader's hello within ~2 s) names the master we
         * left. While that one still does not answer as master there is
         * nothing better there: stay, and ask again at the next check. */
        int role;
        redisContext *c = rs_connect_timed(r, host, port, RS_PROBE_CONNECT_MS, RS_PROBE_COMMAND_MS,
                                           false, &role);
        if (c)
            redisFree(c);
        if (!c || role == RS_ROLE_OTHER) {
            r->last_discover_ms = now - RS_SENTINEL_RECHECK_MS + 1000; /* again in 1 s */
            return;
        }
    }
    if (r->early_unconfirmed) {
        /* The sentinels stay the authority: they name another master (a
         * third address, or the one we left, answering as master again:
         * e.g. a failover aborted after the promotion). Go where they say,
         * and do not switch early for a while. */
        log_warn(RS_LOG, "master %s: the sentinels name %s:%d, not the replica followed early; "
                         "following them", r->master_name, host, port);
        r->early_unconfirmed = false;
        r->early_blocked_until_ms = now + RS_EARLY_BLOCK_MS;
    }
    rs_sub_drop(r, "the sentinels name another master"); /* reconnects at once */
}

static void rs_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_redis_t *r = arg;
    int64_t now = clock_mono_ms();
    /* The watchers run while the master is down: that is when they matter. */
    for (unsigned i = 0; i < r->nsentinels; i++)
        if (!r->sentinels[i].ac && now >= r->sentinels[i].next_connect_ms)
            rs_watch_start(r, &r->sentinels[i]);
    if (!r->sub && now >= r->next_connect_ms) {
        rs_sub_start(r);
        return;
    }
    if (r->sub && !r->sub_ready && now - r->sub_started_ms > RS_CONNECT_TIMEOUT_MS * 2) {
        /* Outside any hiredis callback: safe to free (no disconnect callback
         * for a connection that never completed). */
        redisAsyncContext *ac = r->sub;
        r->sub = NULL;
        ac->onDisconnect = NULL;
        redisAsyncFree(ac);
        rs_sub_drop(r, "connection timed out");
        return;
    }
    if (!r->sub_ready)
        return;
    if (!atomic_load(&r->up)) {
        /* A caller's command failed while the subscriber looks fine: start
         * over, which re-synchronises everything. */
        rs_sub_drop(r, "a command failed");
        return;
    }
    if (r->sentinel_mode &&
        (r->recheck_now || now - r->last_discover_ms >= RS_SENTINEL_RECHECK_MS)) {
        rs_sentinel_recheck(r, now);
        if (!r->sub_ready)
            return;
    }
    if (now - r->last_renew_ms >= RS_RENEW_MS) {
        r->last_renew_ms = now;
        (void)rs_renew_leases(r);
    }
    if (now - r->last_alive_check_ms >= 1000) {
        r->last_alive_check_ms = now;
        char epoch[sizeof(r->alive_epoch)];
        if (rs_alive_read(r, epoch, sizeof(epoch)) == 0 && strcmp(epoch, r->alive_epoch) != 0) {
            log_warn(RS_LOG, "%s lost its data (restarted empty or flushed); re-seeding the "
                             "registry and re-announcing live streams",
                     r->where);
            pthread_mutex_lock(&r->mirror_lock);
            for (rs_stream_t *s = r->streams; s; s = s->next)
                s->dirty = true;
            pthread_mutex_unlock(&r->mirror_lock);
            (void)rs_resync(r);
        }
    }
    /* Streams whose writes failed while the subscriber stayed up. */
    pthread_mutex_lock(&r->mirror_lock);
    rs_stream_t *streams = r->streams;
    pthread_mutex_unlock(&r->mirror_lock);
    for (rs_stream_t *s = streams; s && atomic_load(&r->up); s = s->next) {
        if (pthread_mutex_trylock(&s->lock) != 0)
            continue; /* its writer is busy; next tick */
        if (s->dirty)
            (void)rs_flush_stream(r, s);
        pthread_mutex_unlock(&s->lock);
    }
}

static void rs_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    rs_tick_cb(fd, what, arg);
}

static void rs_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_redis_t *r = arg;
    event_base_loopbreak(r->evbase);
}

static void *rs_thread_main(void *arg)
{
    store_redis_t *r = arg;
    for (unsigned i = 0; i < r->nsentinels; i++)
        rs_watch_start(r, &r->sentinels[i]);
    rs_sub_start(r);
    event_base_loop(r->evbase, EVLOOP_NO_EXIT_ON_EMPTY);
    /* Still on this thread: the subscriber is freed by the thread that ran it. */
    r->closing = true;
    if (r->sub) {
        redisAsyncContext *ac = r->sub;
        r->sub = NULL;
        redisAsyncFree(ac);
    }
    for (unsigned i = 0; i < r->nsentinels; i++) {
        redisAsyncContext *ac = r->sentinels[i].ac;
        r->sentinels[i].ac = NULL;
        if (ac)
            redisAsyncFree(ac);
    }
    return NULL;
}

/* ---- open / close ------------------------------------------------------------ */

static void rs_close(store_t *st)
{
    store_redis_t *r = (store_redis_t *)st;
    if (r->thread_started) {
        event_active(r->stop_ev, 0, 0);
        pthread_join(r->thread, NULL);
    }
    /* Leases still held (an owner that did not release) lapse by themselves;
     * give them back now when we can. */
    while (r->held) {
        char id[STORE_ID_MAX];
        snprintf(id, sizeof(id), "%s", r->held->id);
        rs_lease_release(st, id);
    }
    if (r->cache) {
        store_cache_stats_t cs;
        store_cache_get_stats(r->cache, &cs);
        log_info(RS_LOG, "object cache: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                         " evictions",
                 cs.hits, cs.misses, cs.evictions);
    }
    if (r->tick_ev)
        event_free(r->tick_ev);
    if (r->stop_ev)
        event_free(r->stop_ev);
    if (r->kick_ev)
        event_free(r->kick_ev);
    if (r->retry_ev)
        event_free(r->retry_ev);
    r->retry_ev = NULL;
    if (r->evbase)
        event_base_free(r->evbase);
    r->kick_ev = NULL;
    rs_pool_flush(r);
    while (r->streams) {
        rs_stream_t *s = r->streams;
        r->streams = s->next;
        while (s->entries)
            rs_entry_drop(r, s, &s->entries);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
    while (r->seeds) {
        rs_seed_t *s = r->seeds;
        r->seeds = s->next;
        OPENSSL_cleanse(s->hash, sizeof(s->hash));
        free(s);
    }
    store_cache_free(r->cache);
    OPENSSL_cleanse(r->password, sizeof(r->password));
    OPENSSL_cleanse(r->sentinel_password, sizeof(r->sentinel_password));
    pthread_mutex_destroy(&r->pool_lock);
    pthread_mutex_destroy(&r->mirror_lock);
    pthread_mutex_destroy(&r->state_lock);
    store_base_deinit(&r->base);
    free(r);
}

static void rs_evthread_init(void)
{
    if (evthread_use_pthreads() != 0)
        log_error(RS_LOG, "libevent has no pthread support");
}

static const store_backend_t store_redis_backend = {
    .name = "redis",
    .close = rs_close,
    .ping = rs_ping,
    .commit = rs_commit,
    .get = rs_get,
    .drop_objects = rs_drop_objects,
    .stream_add = rs_stream_add,
    .stream_auth = rs_stream_auth,
    .stream_exists = rs_stream_exists,
    .stream_seed = rs_stream_seed,
    .lease_acquire = rs_lease_acquire,
    .lease_release = rs_lease_release,
    .stream_get = rs_registry_get,
    .stream_list = rs_registry_list,
    .stream_remove = rs_registry_remove,
    .stream_rotate = rs_registry_rotate,
    .stream_set_record = rs_registry_set_record,
    .stream_set_ladder = rs_registry_set_ladder,
    .stream_set_outputs = rs_registry_set_outputs,
    .stream_get_outputs = rs_registry_get_outputs,
    .meta_put = rs_meta_put,
    .meta_get = rs_meta_get,
    .meta_scan = rs_meta_scan,
    .lease_revoke = rs_lease_revoke,
    .node_id = rs_node_id,
    .connected = rs_connected,
    .ha_stats = rs_ha_stats,
};

int store_redis_url_check(const char *url)
{
    rs_url_t *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    int ret = rs_url_parse(url, u);
    rs_url_cleanse(u);
    free(u);
    return ret;
}

int store_redis_open(const char *url, store_t **out)
{
    *out = NULL;
    int ret = -ENOMEM;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, rs_evthread_init);
    store_redis_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    store_base_init(&r->base, &store_redis_backend);
    pthread_mutex_init(&r->pool_lock, NULL);
    pthread_mutex_init(&r->mirror_lock, NULL);
    pthread_mutex_init(&r->state_lock, NULL);
    if ((ret = rs_apply_url(r, url)) < 0) {
        rs_close(&r->base);
        return ret;
    }
    ret = -ENOMEM;
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto fail;
    for (int i = 0; i < 16; i++)
        snprintf(r->node_id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(r->channel_prefix, sizeof(r->channel_prefix), RS_PREFIX "ev:%d:", r->db);
    snprintf(r->registry_channel, sizeof(r->registry_channel), "%sregistry", r->channel_prefix);
    r->backoff_ms = RS_BACKOFF_MIN_MS;
    r->cache = store_cache_new(r->cache_bytes, RS_CACHE_AGE_MS);
    r->evbase = event_base_new();
    if (!r->cache || !r->evbase)
        goto fail;
    r->tick_ev = event_new(r->evbase, -1, EV_PERSIST, rs_tick_cb, r);
    r->stop_ev = event_new(r->evbase, -1, 0, rs_stop_cb, r);
    r->kick_ev = event_new(r->evbase, -1, 0, rs_kick_cb, r);
    r->retry_ev = event_new(r->evbase, -1, 0, rs_kick_cb, r);
    if (!r->tick_ev || !r->stop_ev || !r->kick_ev || !r->retry_ev)
        goto fail;
    struct timeval tick = {.tv_sec = 0, .tv_usec = RS_TICK_MS * 1000};
    event_add(r->tick_ev, &tick);

    /* A first connection attempt before returning, so that a node whose
     * Redis is up starts ready; the thread takes over from there. */
    int rc = pthread_create(&r->thread, NULL, rs_thread_main, r);
    if (rc != 0) {
        ret = -rc;
        goto fail;
    }
    pthread_setname_np(r->thread, "redis");
    r->thread_started = true;
    for (int i = 0; i < 100 && !atomic_load(&r->up) && r->failures == 0; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_info(RS_LOG, "store %s, node %s%s", r->where, r->node_id,
             atomic_load(&r->up) ? "" : " (not connected yet)");
    *out = &r->base;
    return 0;
fail:
    rs_close(&r->base);
    return ret;
}
