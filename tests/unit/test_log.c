/*
 * common/log.c: the line formats, and the journal's priority prefix, which is
 * used only when stderr really is the stream JOURNAL_STREAM names. Each case
 * points stderr at a temporary file, logs, and reads the file back.
 * SLUICE_ASSERT's failure is checked in a child process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

typedef struct capture {
    FILE *file;
    int saved_stderr;
} capture_t;

/* Points stderr at a fresh temporary file; `journal` 1 sets JOURNAL_STREAM
 * to that file, 2 to another inode, 0 unsets it. */
static void capture_begin(capture_t *c, int journal)
{
    c->file = tmpfile();
    assert_non_null(c->file);
    fflush(stderr);
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(c->saved_stderr >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
    struct stat st;
    assert_int_equal(fstat(fileno(c->file), &st), 0);
    char v[64];
    if (journal == 0) {
        unsetenv("JOURNAL_STREAM");
    } else {
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (journal == 2 ? 1 : 0));
        setenv("JOURNAL_STREAM", v, 1);
    }
}

/* Restores stderr and returns what was logged (malloc'd). */
static char *capture_end(capture_t *c)
{
    assert_true(dup2(c->saved_stderr, STDERR_FILENO) >= 0);
    close(c->saved_stderr);
    unsetenv("JOURNAL_STREAM");
    long n = ftell(c->file);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(c->file);
    assert_int_equal(fread(buf, 1, (size_t)n, c->file), (size_t)n);
    fclose(c->file);
    return buf;
}

static void test_journal_text_lines_carry_priorities(void **state)
{
    (void)state;
    capture_t c;
    capture_begin(&c, 1);
    log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
    log_error("rtmp#1", "broken %d", 1);
    log_warn(NULL, "careful");
    log_info("origin", "hello");
    log_debug("x", "detail");
    char *out = capture_end(&c);
    /* journald stamps the time itself: none in the line */
    assert_string_equal(out, "<3>error rtmp#1: broken 1\n"
                             "<4>warn  careful\n"
                             "<6>info  origin: hello\n"
                             "<7>debug x: detail\n");
    free(out);
}

static void test_journal_json_lines_stay_json_after_the_prefix(void **state)
{
    (void)state;
    capture_t c;
    capture_begin(&c, 1);
    log_configure(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    log_warn("ctx", "a \"quoted\" word");
    char *out = capture_end(&c);
    assert_true(strncmp(out, "<4>{\"ts\":\"", 10) == 0);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"ctx\":\"ctx\","
                                "\"msg\":\"a \\\"quoted\\\" word\"}\n"));
    free(out);
}

/* A child inherits JOURNAL_STREAM while its stderr may go elsewhere: the
 * variable alone must not switch the format. */
static void test_other_stream_or_no_journal_gets_plain_lines(void **state)
{
    (void)state;
    for (int journal = 0; journal <= 2; journal += 2) {
        capture_t c;
        capture_begin(&c, journal);
        log_configure(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
        log_info("origin", "hello");
        log_debug("origin", "not shown");
        char *out = capture_end(&c);
        /* 2026-11-22T10:00:00.000Z info  origin: hello */
        assert_int_equal(strlen(out), 24 + 1 + 20);
        assert_int_equal(out[4], '-');
        assert_int_equal(out[23], 'Z');
        assert_string_equal(out + 25, "info  origin: hello\n");
        free(out);
    }
}

/* A holding invariant costs one evaluation; a broken one logs the
 * expression and where it is, then aborts (checked in a child). */
static void test_assert_logs_the_expression_and_aborts(void **state)
{
    (void)state;
    int evaluated = 0;
    SLUICE_ASSERT(++evaluated == 1);
    assert_int_equal(evaluated, 1);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        int nready = 9;
        SLUICE_ASSERT(nready <= 8);
        _exit(0); /* not reached */
    }
    close(fds[1]);
    char out[1024];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(out) - 1 && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(out, "error assertion failed: nready <= 8 ("));
    assert_non_null(strstr(out, "test_log.c:"));
    assert_non_null(strstr(out, "test_assert_logs_the_expression_and_aborts)\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_text_lines_carry_priorities),
        cmocka_unit_test(test_journal_json_lines_stay_json_after_the_prefix),
        cmocka_unit_test(test_other_stream_or_no_journal_gets_plain_lines),
        cmocka_unit_test(test_assert_logs_the_expression_and_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
