/*
 * HLS playlist renderer: a pure function from a playlist model (see
 * hls_playlist_internal.h) to RFC 8216 text. It makes no decisions: the
 * packager chose the segments, the target duration and whether the list has
 * ended; this file only writes the tags in the order the RFC wants them.
 *
 * Runs on the stream's transcode worker thread; keeps no state. The text is
 * built in a private growable buffer and handed out as a new blob that the
 * caller owns.
 */
#include "hls_playlist_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct hls_text {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} hls_text_t;

__attribute__((format(printf, 2, 3))) static void hls_text_printf(hls_text_t *t,
                                                                   const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt,
                          ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 1024;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *d = realloc(t->data, cap);
        if (!d) {
            t->oom = true;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
}

static int hls_text_finish(hls_text_t *t, blob_t **out)
{
    *out = NULL;
    if (!t->oom)
        *out = blob_new(t->data, t->len);
    free(t->data);
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

int hls_playlist_render_media(const hls_media_playlist_t *pl, blob_t **out)
{
    hls_text_t t = {0};
    hls_text_printf(&t, "#EXTM3U\n#EXT-X-VERSION:%d\n", HLS_PLAYLIST_VERSION);
    hls_text_printf(&t, "#EXT-X-TARGETDURATION:%d\n", pl->target_duration);
    hls_text_printf(&t, "#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n", pl->media_sequence);
    if (pl->discontinuity_sequence > 0)
        hls_text_printf(&t, "#EXT-X-DISCONTINUITY-SEQUENCE:%" PRId64 "\n",
                        pl->discontinuity_sequence);
    if (pl->map_uri)
        hls_text_printf(&t, "#EXT-X-MAP:URI=\"%s\"\n", pl->map_uri);
    for (size_t i = 0; i < pl->nsegments; i++) {
        const hls_segment_t *s = &pl->segments[i];
        char pdt[40];
        hls_playlist_format_pdt(s->pdt_ms, pdt, sizeof(pdt));
        if (s->discontinuity) {
            /* The init segment may have changed at a discontinuity: name it
             * again so that players fetch it anew (RFC 8216 4.3.2.5). */
            hls_text_printf(&t, "#EXT-X-DISCONTINUITY\n");
            if (pl->map_uri)
                hls_text_printf(&t, "#EXT-X-MAP:URI=\"%s\"\n", pl->map_uri);
        }
        hls_text_printf(&t, "#EXT-X-PROGRAM-DATE-TIME:%s\n", pdt);
        hls_text_printf(&t, "#EXTINF:%.3f,\n%" PRId64 ".m4s\n", s->duration, s->msn);
    }
    if (pl->ended)
        hls_text_printf(&t, "#EXT-X-ENDLIST\n");
    return hls_text_finish(&t, out);
}

int hls_playlist_render_master(const hls_master_playlist_t *pl, blob_t **out)
{
    hls_text_t t = {0};
    hls_text_printf(&t, "#EXTM3U\n#EXT-X-VERSION:%d\n", HLS_PLAYLIST_VERSION);
    if (pl->independent_segments)
        hls_text_printf(&t, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (size_t i = 0; i < pl->nmedia; i++) {
        const hls_media_rendition_t *m = &pl->media[i];
        hls_text_printf(&t, "#EXT-X-MEDIA:TYPE=%s,GROUP-ID=\"%s\",NAME=\"%s\"", m->type,
                        m->group_id, m->name);
        if (m->language)
            hls_text_printf(&t, ",LANGUAGE=\"%s\"", m->language);
        hls_text_printf(&t, ",DEFAULT=%s,AUTOSELECT=%s", m->is_default ? "YES" : "NO",
                        m->autoselect ? "YES" : "NO");
        if (m->channels > 0)
            hls_text_printf(&t, ",CHANNELS=\"%d\"", m->channels);
        hls_text_printf(&t, ",URI=\"%s\"\n", m->uri);
    }
    for (size_t i = 0; i < pl->nvariants; i++) {
        const hls_variant_t *v = &pl->variants[i];
        hls_text_printf(&t, "#EXT-X-STREAM-INF:BANDWIDTH=%" PRId64, v->bandwidth);
        if (v->average_bandwidth > 0)
            hls_text_printf(&t, ",AVERAGE-BANDWIDTH=%" PRId64, v->average_bandwidth);
        if (v->codecs)
            hls_text_printf(&t, ",CODECS=\"%s\"", v->codecs);
        if (v->width > 0 && v->height > 0)
            hls_text_printf(&t, ",RESOLUTION=%dx%d", v->width, v->height);
        if (v->frame_rate > 0)
            hls_text_printf(&t, ",FRAME-RATE=%.3f", v->frame_rate);
        if (v->audio_group)
            hls_text_printf(&t, ",AUDIO=\"%s\"", v->audio_group);
        hls_text_printf(&t, "\n%s\n", v->uri);
    }
    return hls_text_finish(&t, out);
}
