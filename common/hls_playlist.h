/*
 * HLS playlist models and their renderer (RFC 8216). The packager (live)
 * and the recorder (VOD) decide what a playlist says (which segments,
 * target duration, end of list) and fill these structs; hls_playlist_render_*() only turns a model into text,
 * the way FFmpeg's hlsplaylist.c only writes lines that hlsenc.c decided.
 *
 * Models are plain data owned by the caller; rendering is pure and may run
 * on any thread.
 */
#ifndef SLUICE_COMMON_HLS_PLAYLIST_H
#define SLUICE_COMMON_HLS_PLAYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"

/* EXT-X-VERSION: 7 is the floor of every playlist sluice writes (EXT-X-MAP
 * needs 6; the LL-HLS tags EXT-X-PART-INF, -SERVER-CONTROL, -PART,
 * -PRELOAD-HINT and -RENDITION-REPORT need no higher one). RFC 8216bis
 * section 8: a Playlist Delta Update with EXT-X-SKIP needs 9, and one that
 * also skips EXT-X-DATERANGE tags (_HLS_skip=v2, RECENTLY-REMOVED-DATERANGES)
 * needs 10. */
#define HLS_PLAYLIST_VERSION 7
#define HLS_PLAYLIST_VERSION_SKIP 9
#define HLS_PLAYLIST_VERSION_SKIP_V2 10

/* One LL-HLS partial segment ("<msn>.<index>.m4s", RFC 8216bis 4.4.4.9). */
typedef struct hls_part {
    double duration;  /* seconds */
    bool independent; /* starts with a keyframe: INDEPENDENT=YES */
} hls_part_t;

/* One media segment as a playlist names it ("<msn>.m4s"). */
typedef struct hls_segment {
    int64_t msn;          /* media sequence number, also the file name */
    double duration;      /* seconds, EXTINF */
    int64_t pdt_ms;       /* wall clock of the first sample, ms since the epoch */
    bool discontinuity;   /* EXT-X-DISCONTINUITY before this segment */
    /* Its init segment (EXT-X-MAP URI); "": the playlist's map_uri. A
     * change from one segment to the next renders EXT-X-MAP again. */
    char map_uri[32];
    size_t bytes;         /* size of the object (for bandwidth; not rendered) */
    /* Its parts, rendered as EXT-X-PART lines before the EXTINF; the
     * packager leaves them only on the last few segments (nparts 0 and
     * parts NULL elsewhere). */
    const hls_part_t *parts;
    size_t nparts;
    size_t first_part; /* index of parts[0] in the segment (older ones left out) */
} hls_segment_t;

/* EXT-X-RENDITION-REPORT for another rendition of the same stream. */
typedef struct hls_rendition_report {
    const char *uri;   /* relative to this playlist: "../720p/index.m3u8" */
    /* LAST-MSN: msn of that rendition's last part (so of its segment in
     * progress) when it has parts, else of its last segment. */
    int64_t last_msn;
    int64_t last_part; /* LAST-PART: index of its last part of last_msn; < 0: omitted */
} hls_rendition_report_t;

/* EXT-X-DATERANGE (RFC 8216bis 4.4.5.1): one timed-metadata item,
 * rendered as
 *   #EXT-X-DATERANGE:ID="<id>",CLASS="<class>",START-DATE="<start>",X-PAYLOAD=<value>
 * START-DATE with hls_playlist_format_pdt (the EXT-X-PROGRAM-DATE-TIME
 * format); X-PAYLOAD a quoted-string when the payload is valid UTF-8
 * without '"', CR, LF or NUL, else a hexadecimal-sequence ("0x" and upper-case
 * hex digits) of its bytes. */
typedef struct hls_daterange {
    const char *id;         /* ID: unique within the playlist; no '"', CR, LF */
    const char *class_name; /* CLASS; NULL: omitted */
    int64_t start_ms;       /* START-DATE, ms since the epoch */
    const uint8_t *payload; /* X-PAYLOAD; NULL: omitted */
    size_t payload_len;
} hls_daterange_t;

/* EXT-X-PLAYLIST-TYPE (RFC 8216 4.3.3.5). */
typedef enum hls_playlist_type {
    HLS_PLAYLIST_TYPE_NONE = 0, /* a live window: the tag is omitted */
    HLS_PLAYLIST_TYPE_VOD,      /* a recording: never changes (with ended) */
} hls_playlist_type_t;

typedef struct hls_media_playlist {
    int target_duration;            /* EXT-X-TARGETDURATION, whole seconds */
    int64_t media_sequence;         /* msn of segments[0] (or of the next one when empty) */
    int64_t discontinuity_sequence; /* EXT-X-DISCONTINUITY-SEQUENCE; rendered when non-zero */
    /* EXT-X-MAP URI, e.g. "init.mp4": of segments without their own, and of
     * the pending parts. */
    const char *map_uri;
    const hls_segment_t *segments;  /* oldest first */
    size_t nsegments;
    bool ended;                     /* EXT-X-ENDLIST */
    hls_playlist_type_t playlist_type;
    bool independent_segments;      /* EXT-X-INDEPENDENT-SEGMENTS */

    /* LL-HLS (RFC 8216bis), all ignored when part_target is 0. Then the
     * playlist carries EXT-X-SERVER-CONTROL (CAN-BLOCK-RELOAD=YES) and
     * EXT-X-PART-INF; segments with parts get their EXT-X-PART lines before
     * their EXTINF ("<msn>.<i>.m4s"). */
    double part_target;       /* EXT-X-PART-INF:PART-TARGET, seconds (>= every part) */
    double part_hold_back;    /* EXT-X-SERVER-CONTROL PART-HOLD-BACK (>= 3 x part_target) */
    double can_skip_until;    /* CAN-SKIP-UNTIL (>= 6 x target_duration); 0: omitted (no delta updates) */
    /* CAN-SKIP-DATERANGES=YES: the origin also answers _HLS_skip=v2
     * (index-skip2.m3u8 exists). Rendered only with CAN-SKIP-UNTIL. */
    bool can_skip_dateranges;
    /* Parts of the segment in progress (msn = the last segment's + 1, or
     * media_sequence when there is none), after the last EXTINF. */
    const hls_part_t *pending_parts;
    size_t npending;
    /* EXT-X-DISCONTINUITY (and EXT-X-MAP again) before the pending parts:
     * the segment in progress starts a discontinuity. */
    bool pending_discontinuity;
    /* EXT-X-PRELOAD-HINT:TYPE=PART for "<that msn>.<npending>.m4s", the next
     * part to come; never rendered when ended (RFC 8216bis 4.4.5.3). */
    bool preload_hint;
    const hls_rendition_report_t *reports; /* rendered last, in this order */
    size_t nreports;
    /* Delta update (_HLS_skip): the first `skip` segments, with their
     * EXT-X-PART, -DISCONTINUITY and -PROGRAM-DATE-TIME lines, are replaced
     * by EXT-X-SKIP:SKIPPED-SEGMENTS=n after EXT-X-MAP; EXT-X-MEDIA-SEQUENCE
     * and EXT-X-DISCONTINUITY-SEQUENCE keep the full playlist's values
     * (4.4.5.2). skip_v2 (_HLS_skip=v2) also skips the EXT-X-DATERANGE
     * tags whose START-DATE lies before the first segment shown (a client
     * that may skip had them in its previous reload) and adds
     * RECENTLY-REMOVED-DATERANGES with removed_dateranges. 0: a full
     * playlist. Clamped to nsegments; ignored unless can_skip_until > 0 and
     * not ended, since a server must then ignore _HLS_skip (6.2.5.1). */
    size_t skip;
    bool skip_v2;
    /* EXT-X-DATERANGE lines, in this order, after the EXT-X-MAP (before
     * EXT-X-SKIP) and the first segment. The caller keeps only those
     * the playlist's window still reaches. */
    const hls_daterange_t *dateranges;
    size_t ndateranges;
    /* IDs of date ranges dropped recently, for RECENTLY-REMOVED-DATERANGES
     * of a v2 delta update (tab-separated); same character rules as ids. */
    const char *const *removed_dateranges;
    size_t nremoved_dateranges;
} hls_media_playlist_t;

/* EXT-X-MEDIA (an alternative rendition: the audio group, or the closed
 * captions carried inside the video, RFC 8216bis 4.4.6.1). */
typedef struct hls_media_rendition {
    const char *type; /* "AUDIO", "CLOSED-CAPTIONS" */
    const char *group_id;
    const char *name;
    const char *language; /* NULL: omitted */
    bool is_default;
    bool autoselect;
    /* INSTREAM-ID, required with CLOSED-CAPTIONS ("CC1".."CC4" for
     * CEA-608, "SERVICE1".."SERVICE63" for CEA-708); NULL: omitted. */
    const char *instream_id;
    int channels; /* 0: omitted */
    const char *uri; /* NULL: omitted (CLOSED-CAPTIONS must have none) */
} hls_media_rendition_t;

/* EXT-X-STREAM-INF. */
typedef struct hls_variant {
    int64_t bandwidth;         /* peak bits/s */
    int64_t average_bandwidth; /* 0: omitted */
    const char *codecs;        /* "avc1.64001f,mp4a.40.2" */
    int width, height;         /* 0: RESOLUTION omitted */
    double frame_rate;         /* 0: FRAME-RATE omitted */
    const char *audio_group;   /* NULL: AUDIO omitted */
    /* CLOSED-CAPTIONS="<group>": a CLOSED-CAPTIONS group of the media;
     * NULL: omitted (players then look for captions in the video). */
    const char *closed_captions;
    const char *uri;
} hls_variant_t;

typedef struct hls_master_playlist {
    bool independent_segments;
    const hls_media_rendition_t *media;
    size_t nmedia;
    const hls_variant_t *variants;
    size_t nvariants;
} hls_master_playlist_t;

/* Render a model into a new blob (refcount 1). Return 0 or -ENOMEM. */
int hls_playlist_render_media(const hls_media_playlist_t *pl, blob_t **out)
    __attribute__((warn_unused_result));
int hls_playlist_render_master(const hls_master_playlist_t *pl, blob_t **out)
    __attribute__((warn_unused_result));

/* The X-PAYLOAD value of a date range as the renderer writes it: a
 * quoted-string, or a hexadecimal-sequence when the bytes are no valid
 * UTF-8 or hold '"', CR, LF or NUL (4.4.5.1, 4.2), into buf as a
 * NUL-terminated string; returns its length. buflen must be at least
 * 2 * len + 3, else buf gets "" and 0 is returned. */
size_t hls_playlist_daterange_value(const uint8_t *payload, size_t len, char *buf,
                                    size_t buflen);

/* Formats ms since the epoch as ISO 8601 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z") into buf (>= 25 bytes). */
void hls_playlist_format_pdt(int64_t wall_ms, char *buf, size_t buflen);

#endif
