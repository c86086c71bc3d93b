/*
 * report.c's seams for its unit tests (tests/unit/test_report.c): a report
 * without its thread, and the audience tick driven by hand with the set of
 * streams "live here", so that a test puts "aud." records into a memory
 * store and reads the status, /metrics and the store records that follow.
 */
#ifndef SLUICE_CONTROL_REPORT_INTERNAL_H
#define SLUICE_CONTROL_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* report_new without starting the thread (report_free as usual). */
int report_new_unstarted(const report_params_t *params, report_t **out)
    __attribute__((warn_unused_result));

/* One audience tick with live[0..n) as the streams live on this node and
 * wall_ms as the wall clock: scans and publishes each, and ends those that
 * left the set since the last tick. The report thread's job; a test calls
 * it on a report_new_unstarted report only. */
void report_audience_tick(report_t *r, const char *const *live, size_t n, int64_t wall_ms);

#endif
