/*
 * A scratch directory for unit tests that write real files (the recorder,
 * the recordings layout): test_tmpdir_make("name") makes /tmp/name-XXXXXX
 * and returns its path (malloc'd); test_tmpdir_remove removes it with all
 * it holds and frees the path. Include after <cmocka.h>.
 */
#ifndef SLUICE_TESTS_UNIT_TEST_TMPDIR_H
#define SLUICE_TESTS_UNIT_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *test_tmpdir_make(const char *name)
{
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "/tmp/%s-XXXXXX", name);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static inline void test_tmpdir_remove(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

#endif
