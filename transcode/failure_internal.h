/*
 * Why a stream worker's call failed, in words: each stage that fails (the
 * decoder, the scaler or encoder of a rung, the audio transcoder, a
 * rendition's muxer, the store write) notes what it was doing, libav's
 * error text and the timestamps involved; the layers it returns through add
 * where (which rendition, which segment and part). The worker resets the
 * note before each call into its pipeline and logs it with the failure.
 *
 * Thread: the note is per thread (each stream worker has its own), so the
 * stages need no pointer to it and no lock.
 */
#ifndef SLUICE_TRANSCODE_FAILURE_H
#define SLUICE_TRANSCODE_FAILURE_H

#include <stdbool.h>

#define FAILURE_TEXT_MAX 512

/* Forgets the calling thread's note. */
void failure_reset(void);

/* Appends one clause to the calling thread's note ("; " between clauses,
 * innermost first); past FAILURE_TEXT_MAX the rest is cut. */
void failure_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The calling thread's note; "" when no stage said anything. Valid until
 * the next failure_reset() or failure_note() on this thread. */
const char *failure_text(void);

#endif
