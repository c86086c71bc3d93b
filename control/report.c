/*
 * Placeholder until the report module lands: reports nothing live.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct report {
    report_params_t p;
};

int report_new(const report_params_t *params, report_t **out)
{
    report_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->p = *params;
    *out = r;
    return 0;
}

void report_free(report_t *r)
{
    free(r);
}

void report_stream_status(report_t *r, const char *stream_id, json_t *obj)
{
    (void)r;
    (void)stream_id;
    json_object_set_new(obj, "state", json_string("idle"));
    json_object_set_new(obj, "viewers", json_integer(0));
}

json_t *report_stats(report_t *r)
{
    (void)r;
    return json_object();
}

char *report_metrics(report_t *r, size_t *len)
{
    (void)r;
    char *s = strdup("");
    *len = 0;
    return s;
}
