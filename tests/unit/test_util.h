/* Helpers that more than one unit test needs, so that each is written once:
 * hex strings to bytes, socket addresses from text, and a sleep in
 * milliseconds. Static inline, so a test uses what it wants and the rest
 * costs nothing (no -Wunused-function). Failures go through cmocka's
 * assertions, so the header includes cmocka itself. */
#ifndef SLUICE_TESTS_UNIT_TEST_UTIL_H
#define SLUICE_TESTS_UNIT_TEST_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* Reads pairs of hex digits from hex into out[0..cap); returns the bytes
 * written. For records pasted from ffmpeg -v trace or a packet capture. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < cap; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* An IPv4 peer address (port 0) from dotted text; fails the test if the
 * text is not an address. */
static inline struct sockaddr_in sockaddr_v4(const char *ip)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return sa;
}

/* The same for IPv6 (including "::ffff:a.b.c.d" mapped addresses). */
static inline struct sockaddr_in6 sockaddr_v6(const char *ip)
{
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
    return sa;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
