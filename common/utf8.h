/*
 * UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF), for text that comes from the network and goes into
 * playlists and JSON: timed-metadata payloads. Pure; any thread.
 */
#ifndef SLUICE_COMMON_UTF8_H
#define SLUICE_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether the len bytes at s are well-formed UTF-8 (NUL bytes included). */
bool utf8_valid(const uint8_t *s, size_t len);

#endif
