/*
 * Timed metadata in the media: an ISO/IEC 23009-1 (5.10.3.3) `emsg` box,
 * version 1, carrying an ID3v2.4 tag with one TXXX frame, the form AWS IVS,
 * hls.js (FRAG_PARSING_METADATA) and Shaka (emsg / metadata events) read.
 * The packager puts one before the `moof` of the CMAF chunk that holds the
 * metadata's media time, in every rendition.
 *
 * The bytes, fixed (docs/metadata.md describes them to players):
 *   emsg v1: scheme_id_uri "https://aomedia.org/emsg/ID3", value "" (NUL
 *   only), timescale = the track's, presentation_time (64 bit) = the media
 *   time in that timescale, event_duration 0xFFFFFFFF (unknown), id = the
 *   metadata id; message_data = the ID3 tag:
 *   "ID3" 04 00, flags 00, syncsafe size of what follows the 10-byte header;
 *   one frame "TXXX", syncsafe frame size, flags 00 00, text encoding 03
 *   (UTF-8), description "sluice" 00, then the payload bytes with NO
 *   terminator (ID3v2.4 4.2.6 allows either; the frame size delimits it).
 *
 * Pure and thread-free.
 */
#ifndef SLUICE_COMMON_EMSG_H
#define SLUICE_COMMON_EMSG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EMSG_ID3_SCHEME "https://aomedia.org/emsg/ID3"
/* The TXXX frame's description: which text frame is ours. */
#define EMSG_ID3_DESCRIPTION "sluice"

/* Size of the ID3 tag for a payload of len bytes (header included). */
size_t emsg_id3_tag_size(size_t len);

/* Appends the ID3v2.4 tag (one TXXX frame holding payload) to b. Returns 0,
 * or -EMSGSIZE when the payload does not fit a syncsafe size (2^28 bytes);
 * an allocation failure shows as b->oom. */
int emsg_id3_append(buf_t *b, const uint8_t *payload, size_t len);

/* Appends the whole emsg box (version 1) around that tag to b. Returns 0 or
 * -EMSGSIZE; an allocation failure shows as b->oom. */
int emsg_box_append(buf_t *b, uint32_t timescale, uint64_t presentation_time, uint32_t id,
                    const uint8_t *payload, size_t len);

#endif
