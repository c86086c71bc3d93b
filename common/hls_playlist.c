/*
 * HLS playlist renderer: a pure function from a playlist model (see
 * hls_playlist.h) to RFC 8216 / RFC 8216bis text. It makes no
 * decisions: the packager chose the segments, the parts, the target
 * durations, the window and whether the list has ended; this file only
 * writes the tags in the order the spec wants them, with the lowest
 * EXT-X-VERSION the tags it wrote require.
 *
 * Media playlist layout (LL-HLS lines only when part_target > 0):
 *   #EXTM3U, #EXT-X-VERSION, #EXT-X-TARGETDURATION,
 *   #EXT-X-SERVER-CONTROL, #EXT-X-PART-INF,
 *   #EXT-X-MEDIA-SEQUENCE, [#EXT-X-DISCONTINUITY-SEQUENCE],
 *   [#EXT-X-PLAYLIST-TYPE], [#EXT-X-INDEPENDENT-SEGMENTS], #EXT-X-MAP,
 *   #EXT-X-DATERANGE lines (timed metadata),
 *   [#EXT-X-SKIP in place of the first segments of a delta update],
 *   per segment: [#EXT-X-DISCONTINUITY + #EXT-X-MAP], #EXT-X-PROGRAM-DATE-TIME,
 *     its #EXT-X-PART lines, #EXTINF, URI   (4.4.4.9: segment tags come
 *     before the first EXT-X-PART of their parent segment),
 *   the #EXT-X-PART lines of the segment in progress,
 *   #EXT-X-PRELOAD-HINT (live only), #EXT-X-RENDITION-REPORT lines,
 *   [#EXT-X-ENDLIST].
 * Durations are decimal-floating-point with three decimals and a '.'
 * whatever the locale. With part_target 0 the text is plain RFC 8216.
 *
 * In common/ because two folders render playlists: transcode's packager
 * (live) and record's recorder (VOD, at finalize). Runs on the caller's
 * thread; keeps no state. The text is built in a private growable buffer
 * and handed out as a new blob that the caller owns.
 */
#include "hls_playlist.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "hls_names.h"
#include "utf8.h"

/* Appends a decimal-floating-point with `places` decimals, trailing zeros
 * dropped down to three ("2.002", "0.341333"). "%.*f" does the rounding,
 * but its radix character follows LC_NUMERIC, which a library could have
 * changed: the digits are taken around it and joined with '.'. A negative,
 * NaN or infinite value (never meant) is written as 0.000 rather than as
 * text that is no decimal-floating-point at all. */
static void hls_text_number(buf_t *t, double x, int places)
{
    if (!isfinite(x) || x < 0)
        x = 0;
    char buf[352]; /* DBL_MAX has 309 integer digits */
    int n = snprintf(buf, sizeof(buf), "%.*f", places, x);
    if (n < places + 2 || (size_t)n >= sizeof(buf)) {
        t->oom = true;
        return;
    }
    int whole = 0;
    while (buf[whole] >= '0' && buf[whole] <= '9')
        whole++;
    int frac = places;
    while (frac > 3 && buf[n - places + frac - 1] == '0')
        frac--;
    buf_printf(t, "%.*s.%.*s", whole, buf, frac, buf + n - places);
}

/* Attributes (PART-TARGET, PART-HOLD-BACK, ...): three decimals. */
static void hls_text_decimal(buf_t *t, double x)
{
    hls_text_number(t, x, 3);
}

/* EXTINF and EXT-X-PART DURATION: to the microsecond. Durations to the
 * millisecond drifted: an audio part of 16 AAC frames at 48 kHz lasts
 * 0.341333 s, and six or seven of them rounded to "0.341" summed 1 ms short
 * of their segment's EXTINF, so a player placing parts by the playlist saw
 * each segment's parts end a millisecond before the next segment began. */
static void hls_text_duration(buf_t *t, double x)
{
    hls_text_number(t, x, 6);
}

static int hls_text_finish(buf_t *t, blob_t **out)
{
    *out = NULL;
    if (!t->oom)
        *out = blob_new(t->data, t->len);
    buf_deinit(t);
    return *out ? 0 : -ENOMEM;
}

void hls_playlist_format_pdt(int64_t wall_ms, char *buf, size_t buflen)
{
    int64_t ms = wall_ms % 1000;
    time_t secs = (time_t)(wall_ms / 1000);
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

size_t hls_playlist_daterange_value(const uint8_t *payload, size_t len, char *buf,
                                    size_t buflen)
{
    bool quoted = utf8_valid(payload, len);
    for (size_t i = 0; quoted && i < len; i++)
        if (payload[i] == '"' || payload[i] == '\r' || payload[i] == '\n' || payload[i] == 0)
            quoted = false; /* a NUL would end the attribute list for many parsers */
    if (buflen < 2 * len + 3) {
        if (buflen)
            buf[0] = '\0';
        return 0;
    }
    size_t n = 0;
    if (quoted) {
        buf[n++] = '"';
        memcpy(buf + n, payload, len);
        n += len;
        buf[n++] = '"';
    } else {
        static const char hex[] = "0123456789ABCDEF";
        buf[n++] = '0';
        buf[n++] = 'x';
        for (size_t i = 0; i < len; i++) {
            buf[n++] = hex[payload[i] >> 4];
            buf[n++] = hex[payload[i] & 15];
        }
    }
    buf[n] = '\0';
    return n;
}

static void hls_render_daterange(buf_t *t, const hls_daterange_t *d)
{
    char start[40];
    hls_playlist_format_pdt(d->start_ms, start, sizeof(start));
    buf_printf(t, "#EXT-X-DATERANGE:ID=\"%s\"", d->id);
    if (d->class_name)
        buf_printf(t, ",CLASS=\"%s\"", d->class_name);
    buf_printf(t, ",START-DATE=\"%s\"", start);
    if (d->payload) {
        size_t cap = 2 * d->payload_len + 3;
        char *v = malloc(cap);
        if (!v) {
            t->oom = true;
            return;
        }
        size_t n = hls_playlist_daterange_value(d->payload, d->payload_len, v, cap);
        buf_puts(t, ",X-PAYLOAD=");
        buf_append(t, v, n);
        free(v);
    }
    buf_puts(t, "\n");
}

/* "#EXT-X-PART:DURATION=0.333,URI="12.3.m4s",INDEPENDENT=YES" */
static void hls_render_part(buf_t *t, int64_t msn, size_t index, const hls_part_t *p)
{
    buf_printf(t, "#EXT-X-PART:DURATION=");
    hls_text_duration(t, p->duration);
    char name[HLS_NAME_FILE_MAX];
    (void)hls_name_part(name, sizeof(name), msn, (int64_t)index);
    buf_printf(t, ",URI=\"%s\"%s\n", name,
                    p->independent ? ",INDEPENDENT=YES" : "");
}

static const char *hls_segment_map(const hls_media_playlist_t *pl, const hls_segment_t *s)
{
    return s->map_uri[0] ? s->map_uri : pl->map_uri;
}

int hls_playlist_render_media(const hls_media_playlist_t *pl, blob_t **out)
{
    buf_t t = {0};
    char name[HLS_NAME_FILE_MAX];
    bool ll = pl->part_target > 0;
    /* A server must ignore _HLS_skip when it offers no delta updates or the
     * list has ended (RFC 8216bis 6.2.5.1): then the full playlist. */
    size_t skip = 0;
    if (ll && pl->can_skip_until > 0 && !pl->ended)
        skip = pl->skip < pl->nsegments ? pl->skip : pl->nsegments;
    int version = HLS_PLAYLIST_VERSION;
    if (skip > 0)
        version = pl->skip_v2 ? HLS_PLAYLIST_VERSION_SKIP_V2 : HLS_PLAYLIST_VERSION_SKIP;

    buf_printf(&t, "#EXTM3U\n#EXT-X-VERSION:%d\n", version);
    buf_printf(&t, "#EXT-X-TARGETDURATION:%d\n", pl->target_duration);
    if (ll) {
        buf_printf(&t, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=");
        hls_text_decimal(&t, pl->part_hold_back);
        if (pl->can_skip_until > 0) {
            buf_printf(&t, ",CAN-SKIP-UNTIL=");
            hls_text_decimal(&t, pl->can_skip_until);
            if (pl->can_skip_dateranges)
                buf_printf(&t, ",CAN-SKIP-DATERANGES=YES");
        }
        buf_printf(&t, "\n#EXT-X-PART-INF:PART-TARGET=");
        hls_text_decimal(&t, pl->part_target);
        buf_printf(&t, "\n");
    }
    buf_printf(&t, "#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n", pl->media_sequence);
    if (pl->discontinuity_sequence > 0)
        buf_printf(&t, "#EXT-X-DISCONTINUITY-SEQUENCE:%" PRId64 "\n",
                        pl->discontinuity_sequence);
    if (pl->playlist_type == HLS_PLAYLIST_TYPE_VOD)
        buf_printf(&t, "#EXT-X-PLAYLIST-TYPE:VOD\n");
    if (pl->independent_segments)
        buf_printf(&t, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    /* The first segment shown names its init segment; later ones only when
     * it changes (always after a discontinuity, RFC 8216 4.3.2.5). */
    const char *map = skip < pl->nsegments ? hls_segment_map(pl, &pl->segments[skip])
                                           : pl->map_uri;
    if (map)
        buf_printf(&t, "#EXT-X-MAP:URI=\"%s\"\n", map);
    /* The date ranges, before EXT-X-SKIP so that the lines before the
     * segments are the same in the full playlist and its delta updates.
     * A v2 delta update leaves out those that start before the first
     * segment it shows: the client had them (6.2.5.1). EXT-X-SKIP stands
     * where the skipped segments were; the EXT-X-MAP above applies to the
     * segments that follow it. */
    bool skip_dr = skip > 0 && pl->skip_v2;
    int64_t dr_from = INT64_MIN;
    if (skip_dr && skip < pl->nsegments)
        dr_from = pl->segments[skip].pdt_ms;
    for (size_t i = 0; i < pl->ndateranges; i++)
        if (pl->dateranges[i].start_ms >= dr_from)
            hls_render_daterange(&t, &pl->dateranges[i]);
    if (skip > 0) {
        buf_printf(&t, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%zu", skip);
        if (skip_dr) {
            buf_puts(&t, ",RECENTLY-REMOVED-DATERANGES=\"");
            for (size_t i = 0; i < pl->nremoved_dateranges; i++)
                buf_printf(&t, "%s%s", i ? "\t" : "", pl->removed_dateranges[i]);
            buf_puts(&t, "\"");
        }
        buf_puts(&t, "\n");
    }
    for (size_t i = skip; i < pl->nsegments; i++) {
        const hls_segment_t *s = &pl->segments[i];
        char pdt[40];
        hls_playlist_format_pdt(s->pdt_ms, pdt, sizeof(pdt));
        const char *smap = hls_segment_map(pl, s);
        if (s->discontinuity)
            buf_printf(&t, "#EXT-X-DISCONTINUITY\n");
        if (smap && (s->discontinuity || (i > skip && (!map || strcmp(smap, map) != 0))))
            buf_printf(&t, "#EXT-X-MAP:URI=\"%s\"\n", smap);
        map = smap;
        buf_printf(&t, "#EXT-X-PROGRAM-DATE-TIME:%s\n", pdt);
        for (size_t j = 0; ll && j < s->nparts; j++)
            hls_render_part(&t, s->msn, s->first_part + j, &s->parts[j]);
        buf_printf(&t, "#EXTINF:");
        hls_text_duration(&t, s->duration);
        (void)hls_name_segment(name, sizeof(name), s->msn);
        buf_printf(&t, ",\n%s\n", name);
    }
    if (ll) {
        int64_t next_msn =
            pl->nsegments ? pl->segments[pl->nsegments - 1].msn + 1 : pl->media_sequence;
        if (pl->npending > 0 && pl->pending_discontinuity)
            buf_printf(&t, "#EXT-X-DISCONTINUITY\n");
        if (pl->npending > 0 && pl->map_uri &&
            (pl->pending_discontinuity || !map || strcmp(pl->map_uri, map) != 0))
            buf_printf(&t, "#EXT-X-MAP:URI=\"%s\"\n", pl->map_uri);
        for (size_t j = 0; j < pl->npending; j++)
            hls_render_part(&t, next_msn, j, &pl->pending_parts[j]);
        if (pl->preload_hint && !pl->ended) {
            (void)hls_name_part(name, sizeof(name), next_msn, (int64_t)pl->npending);
            buf_printf(&t, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", name);
        }
        for (size_t i = 0; i < pl->nreports; i++) {
            const hls_rendition_report_t *r = &pl->reports[i];
            buf_printf(&t, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%" PRId64, r->uri,
                            r->last_msn);
            if (r->last_part >= 0)
                buf_printf(&t, ",LAST-PART=%" PRId64, r->last_part);
            buf_printf(&t, "\n");
        }
    }
    if (pl->ended)
        buf_printf(&t, "#EXT-X-ENDLIST\n");
    return hls_text_finish(&t, out);
}

int hls_playlist_render_master(const hls_master_playlist_t *pl, blob_t **out)
{
    buf_t t = {0};
    buf_printf(&t, "#EXTM3U\n#EXT-X-VERSION:%d\n", HLS_PLAYLIST_VERSION);
    if (pl->independent_segments)
        buf_printf(&t, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (size_t i = 0; i < pl->nmedia; i++) {
        const hls_media_rendition_t *m = &pl->media[i];
        buf_printf(&t, "#EXT-X-MEDIA:TYPE=%s,GROUP-ID=\"%s\",NAME=\"%s\"", m->type,
                        m->group_id, m->name);
        if (m->language)
            buf_printf(&t, ",LANGUAGE=\"%s\"", m->language);
        buf_printf(&t, ",DEFAULT=%s,AUTOSELECT=%s", m->is_default ? "YES" : "NO",
                        m->autoselect ? "YES" : "NO");
        if (m->instream_id)
            buf_printf(&t, ",INSTREAM-ID=\"%s\"", m->instream_id);
        if (m->channels > 0)
            buf_printf(&t, ",CHANNELS=\"%d\"", m->channels);
        if (m->uri)
            buf_printf(&t, ",URI=\"%s\"", m->uri);
        buf_printf(&t, "\n");
    }
    for (size_t i = 0; i < pl->nvariants; i++) {
        const hls_variant_t *v = &pl->variants[i];
        buf_printf(&t, "#EXT-X-STREAM-INF:BANDWIDTH=%" PRId64, v->bandwidth);
        if (v->average_bandwidth > 0)
            buf_printf(&t, ",AVERAGE-BANDWIDTH=%" PRId64, v->average_bandwidth);
        if (v->codecs)
            buf_printf(&t, ",CODECS=\"%s\"", v->codecs);
        if (v->width > 0 && v->height > 0)
            buf_printf(&t, ",RESOLUTION=%dx%d", v->width, v->height);
        if (v->frame_rate > 0) {
            buf_printf(&t, ",FRAME-RATE=");
            hls_text_decimal(&t, v->frame_rate);
        }
        if (v->audio_group)
            buf_printf(&t, ",AUDIO=\"%s\"", v->audio_group);
        if (v->closed_captions)
            buf_printf(&t, ",CLOSED-CAPTIONS=\"%s\"", v->closed_captions);
        buf_printf(&t, "\n%s\n", v->uri);
    }
    return hls_text_finish(&t, out);
}
