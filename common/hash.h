/*
 * The one non-cryptographic hash of in-memory tables: FNV-1a over bytes,
 * then a 64-bit finaliser (SplitMix64's) so that the low bits used as a
 * bucket index depend on every input byte. Tables that hash strings a
 * client chooses (session ids, addresses) start from a random seed and mix
 * a second one in at the end, so that nobody outside can aim at a bucket.
 * Not for anything that needs a keyed MAC or collision resistance: that is
 * OpenSSL's HMAC/SHA-256. Header-only; any thread.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT 0xcbf29ce484222325ull

/* h extended with len bytes of data (FNV-1a; start from HASH_FNV1A_INIT,
 * optionally xored with a seed). */
static inline uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The finaliser: every output bit depends on every input bit. */
static inline uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

#endif
