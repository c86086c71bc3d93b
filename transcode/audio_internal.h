/*
 * Audio for the shared "audio" rendition: AAC-LC, 48 kHz, stereo, encoded
 * once per stream. A source that already is AAC-LC 48 kHz stereo is copied
 * (no generation loss, no CPU); any other AAC, and the MPEG audio, AC-3
 * and Opus that SRT ingest brings (media_codec_t), is decoded, resampled
 * with libswresample and encoded with libavcodec's native AAC encoder at
 * 128 kb/s. Either way the output looks like what ingest hands over (an
 * AudioSpecificConfig packet, then raw AAC frames with millisecond
 * timestamps), so the packager does not know the difference.
 *
 * Owned and used by one transcode worker thread.
 */
#ifndef SLUICE_TRANSCODE_AUDIO_INTERNAL_H
#define SLUICE_TRANSCODE_AUDIO_INTERNAL_H

#include <stdbool.h>

#include "media.h"

#define AUDIO_OUT_RATE 48000
#define AUDIO_OUT_CHANNELS 2
#define AUDIO_OUT_BITRATE 128000

typedef struct audio_transcoder audio_transcoder_t;

int audio_transcoder_new(const char *log_ctx, audio_transcoder_t **out)
    __attribute__((warn_unused_result));

/* Takes ownership of pkt (AUDIO_CONFIG or AUDIO) on every path and appends
 * the packets to give the packager to *out (a `next`-linked list the caller
 * owns; possibly pkt itself). Returns 0 or a negative errno. */
int audio_transcoder_push(audio_transcoder_t *a, media_packet_t *pkt, media_packet_t **out)
    __attribute__((warn_unused_result));

/* End of stream: the encoder's last frames. */
int audio_transcoder_flush(audio_transcoder_t *a, media_packet_t **out)
    __attribute__((warn_unused_result));

/* True once a source was found that needs re-encoding. */
bool audio_transcoder_encoding(const audio_transcoder_t *a);

void audio_transcoder_free(audio_transcoder_t *a);

#endif
