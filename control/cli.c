/*
 * `sluice streams ...`: a small client of the admin API for operators who
 * would rather not write curl lines. It reads the same configuration as the
 * server (flags, SLUICE_* environment, --config file) to find the admin
 * listener and its token, sends one request with libcurl, and prints the
 * answer for a human (or as JSON with --json).
 *
 * Single-threaded; runs instead of the server (main() dispatches on
 * argv[1] == "streams").
 */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "config.h"

#define CLI_RESPONSE_MAX (16u << 20)

/* libcurl's write callback: the response into a buf_t bounded by
 * CLI_RESPONSE_MAX; returning short makes libcurl fail the transfer. */
static size_t cli_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_t *b = userdata;
    size_t n = size * nmemb;
    buf_append(b, ptr, n);
    return b->oom ? 0 : n;
}

static void cli_usage(FILE *f)
{
    fprintf(f, "usage: sluice streams COMMAND [ARG] [--json] [--admin-url URL] [OPTIONS]\n\n"
               "  create NAME       create a stream; prints its id, key (shown once) and URLs\n"
               "  list              every stream with its state and viewers\n"
               "  get ID            one stream's status\n"
               "  delete ID         delete a stream: its key stops working, a live\n"
               "                    publisher is cut\n"
               "  rotate-key ID     give a stream a new key; the old one stops working\n"
               "  disconnect ID     cut the stream's live publisher\n"
               "  ladder ID [LADDER]  show the stream's own ladder, or set it from its next\n"
               "                    publish: LADDER is the API's JSON, e.g.\n"
               "                    '{\"rungs\": [\"480p\", \"360p\"], \"preset\": \"superfast\"}',\n"
               "                    or null for the server's ladder (docs/api.md)\n"
               "  outputs ID        the stream's simulcast outputs: id, state, rendition,\n"
               "                    URL (masked); change them through the API or the\n"
               "                    dashboard (docs/simulcast.md)\n\n"
               "The admin API is found with --admin-listen and --admin-token (flags,\n"
               "SLUICE_ADMIN_LISTEN / SLUICE_ADMIN_TOKEN, or --config FILE), or --admin-url.\n");
}

/* "HOST:PORT" of a listener as a URL a local client can reach: a wildcard
 * host is reached on loopback. */
static void cli_base_url(const char *listen, char *out, size_t outlen)
{
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : "8081";
    int hl = colon ? (int)(colon - listen) : (int)strlen(listen);
    if (hl == 0 || (hl == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        snprintf(out, outlen, "http://127.0.0.1:%s", port);
    else if ((hl == 4 && strncmp(listen, "[::]", 4) == 0))
        snprintf(out, outlen, "http://[::1]:%s", port);
    else
        snprintf(out, outlen, "http://%.*s:%s", hl, listen, port);
}

/* One request; *status = the HTTP status (0 when it never got one). */
static int cli_request(const char *url, const char *method, const char *body, const char *token,
                       long *status, buf_t *resp, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    struct curl_slist *hdrs = NULL;
    char auth[1200];
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    /* Every POST says JSON, with a body or without: libcurl would otherwise
     * name a form type, which the admin API refuses (CSRF). */
    if (body || strcmp(method, "POST") == 0)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    explicit_bzero(auth, sizeof(auth));
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        return -EIO;
    }
    return 0;
}

static const char *cli_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void cli_print_list(json_t *doc)
{
    json_t *arr = json_object_get(doc, "streams");
    printf("%-34s %-5s %8s  %s\n", "ID", "STATE", "VIEWERS", "NAME");
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        printf("%-34s %-5s %8lld  %s\n", cli_str(s, "id"), cli_str(s, "state"),
               (long long)json_integer_value(json_object_get(s, "viewers")), cli_str(s, "name"));
    }
    if (json_array_size(arr) == 0)
        printf("(no streams)\n");
}

static void cli_print_key(json_t *doc, const char *what)
{
    printf("%s\n", what);
    printf("  id:           %s\n", cli_str(doc, "id"));
    if (json_object_get(doc, "name"))
        printf("  name:         %s\n", cli_str(doc, "name"));
    printf("  server:       %s\n", cli_str(doc, "rtmp_url"));
    printf("  stream key:   %s\n", cli_str(doc, "stream_key"));
    if (json_object_get(doc, "playback_url"))
        printf("  playback:     %s\n", cli_str(doc, "playback_url"));
    if (json_object_get(doc, "player_url"))
        printf("  player:       %s\n", cli_str(doc, "player_url"));
    printf("The stream key is shown only now: keep it somewhere safe.\n");
}

int admin_cli_main(int argc, char **argv, char **envp)
{
    /* Split our own words (command, argument, --json, --admin-url) from
     * the server options, which go through config_load as they would for
     * the server. */
    const char *cmd = NULL, *arg = NULL, *arg2 = NULL, *admin_url = NULL;
    bool as_json = false;
    char **cargv = calloc((size_t)argc + 2, sizeof(char *));
    if (!cargv)
        return 1;
    int cargc = 0;
    cargv[cargc++] = "sluice";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(stdout);
            free(cargv);
            return 0;
        } else if (strncmp(a, "--admin-url", 11) == 0 && (a[11] == '=' || a[11] == '\0')) {
            admin_url = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            if (!admin_url) {
                fprintf(stderr, "sluice streams: --admin-url needs a URL\n");
                free(cargv);
                return 2;
            }
        } else if (strncmp(a, "--", 2) == 0) {
            cargv[cargc++] = argv[i];
            if (!strchr(a, '=') && i + 1 < argc)
                cargv[cargc++] = argv[++i];
        } else if (!cmd) {
            cmd = a;
        } else if (!arg) {
            arg = a;
        } else if (!arg2 && cmd && strcmp(cmd, "ladder") == 0) {
            arg2 = a;
        } else {
            fprintf(stderr, "sluice streams: unexpected argument '%s'\n", a);
            free(cargv);
            return 2;
        }
    }
    if (!cmd) {
        cli_usage(stderr);
        free(cargv);
        return 2;
    }
    config_t cfg;
    char err[512];
    if (config_load(&cfg, cargc, cargv, envp, stdout, err, sizeof(err)) != 0) {
        fprintf(stderr, "sluice streams: %s\n", err);
        free(cargv);
        return 2;
    }
    free(cargv);

    bool needs_arg = strcmp(cmd, "list") != 0;
    const char *method = NULL;
    char path[512];
    char *body = NULL;
    if (strcmp(cmd, "create") == 0) {
        method = "POST";
        snprintf(path, sizeof(path), "/api/v1/streams");
        if (arg) {
            json_t *o = json_pack("{s:s}", "name", arg);
            body = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
        }
    } else if (strcmp(cmd, "list") == 0) {
        method = "GET";
        snprintf(path, sizeof(path), "/api/v1/streams");
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "delete") == 0) {
        method = cmd[0] == 'g' ? "GET" : "DELETE";
        snprintf(path, sizeof(path), "/api/v1/streams/%s", arg ? arg : "");
    } else if (strcmp(cmd, "rotate-key") == 0 || strcmp(cmd, "disconnect") == 0) {
        method = "POST";
        snprintf(path, sizeof(path), "/api/v1/streams/%s/%s", arg ? arg : "", cmd);
    } else if (strcmp(cmd, "outputs") == 0) {
        /* Read only: a destination URL on a command line would leave its
         * key in the shell's history and in ps. */
        method = "GET";
        snprintf(path, sizeof(path), "/api/v1/streams/%s/outputs", arg ? arg : "");
    } else if (strcmp(cmd, "ladder") == 0) {
        /* Shown from the status; set with PATCH. The JSON goes to the
         * server as given: the admin API checks it (its one grammar). */
        method = arg2 ? "PATCH" : "GET";
        snprintf(path, sizeof(path), "/api/v1/streams/%s", arg ? arg : "");
    }
    int code = 2;
    if (!method) {
        fprintf(stderr, "sluice streams: unknown command '%s'\n", cmd);
        cli_usage(stderr);
        goto done;
    }
    if (arg2) {
        json_error_t jerr;
        json_t *v = json_loads(arg2, JSON_DECODE_ANY, &jerr);
        json_t *o = v ? json_pack("{s:o}", "ladder", v) : NULL;
        body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!body) {
            fprintf(stderr, "sluice streams ladder: LADDER is not JSON (%s); give an object "
                            "like '{\"rungs\": [\"480p\"]}' or null\n",
                    v ? "out of memory" : jerr.text);
            goto done;
        }
    }
    if (strcmp(cmd, "create") == 0 ? !arg : needs_arg && (!arg || !store_id_valid(arg))) {
        fprintf(stderr, "sluice streams %s: needs %s\n", cmd,
                strcmp(cmd, "create") == 0 ? "a NAME" : "a stream ID");
        goto done;
    }
    if (!needs_arg && arg) {
        fprintf(stderr, "sluice streams list: takes no argument\n");
        goto done;
    }

    char base[600], url[1200];
    if (admin_url)
        snprintf(base, sizeof(base), "%s", admin_url);
    else
        cli_base_url(cfg.admin_listen, base, sizeof(base));
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    snprintf(url, sizeof(url), "%s%s", base, path);

    buf_t resp = {.max = CLI_RESPONSE_MAX};
    long status = 0;
    code = 1;
    if (cli_request(url, method, body, cfg.admin_token, &status, &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "sluice streams: cannot reach the admin API at %s: %s\n", base, err);
        goto done_resp;
    }
    json_t *doc = resp.len ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    if (status < 200 || status > 299) {
        const char *msg = json_string_value(json_object_get(doc, "error"));
        fprintf(stderr, "sluice streams %s: %s (HTTP %ld)\n", cmd,
                msg ? msg : "the admin API refused", status);
        json_decref(doc);
        goto done_resp;
    }
    code = 0;
    if (as_json && doc) {
        char *t = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (t)
            printf("%s\n", t);
        free(t);
    } else if (strcmp(cmd, "create") == 0) {
        cli_print_key(doc, "stream created");
    } else if (strcmp(cmd, "rotate-key") == 0) {
        cli_print_key(doc, "stream key rotated; the old key no longer works");
    } else if (strcmp(cmd, "list") == 0) {
        cli_print_list(doc);
    } else if (strcmp(cmd, "get") == 0) {
        char *t = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
        if (t)
            printf("%s\n", t);
        free(t);
    } else if (strcmp(cmd, "ladder") == 0) {
        json_t *l = json_object_get(doc, "ladder");
        char *t = json_is_object(l) ? json_dumps(l, JSON_COMPACT) : NULL;
        printf("stream %s: %s%s%s\n", arg, t ? "ladder " : "the server's ladder", t ? t : "",
               arg2 ? ", from its next publish" : "");
        free(t);
    } else if (strcmp(cmd, "outputs") == 0) {
        json_t *list = json_object_get(doc, "outputs");
        size_t i;
        json_t *o;
        if (json_array_size(list) == 0)
            printf("stream %s: no simulcast outputs\n", arg);
        json_array_foreach(list, i, o)
        {
            const char *st = json_string_value(json_object_get(o, "state"));
            const char *err = json_string_value(json_object_get(o, "last_error"));
            printf("%-18s %-10s %-8s %s%s%s%s\n", json_string_value(json_object_get(o, "id")),
                   st ? st : "?", json_string_value(json_object_get(o, "rendition")),
                   json_string_value(json_object_get(o, "url")),
                   json_is_true(json_object_get(o, "enabled")) ? "" : " (disabled)",
                   err ? "  last error: " : "", err ? err : "");
        }
    } else if (strcmp(cmd, "delete") == 0) {
        printf("stream %s deleted\n", arg);
    } else {
        printf("stream %s: publisher disconnected\n", arg);
    }
    json_decref(doc);
done_resp:
    buf_deinit(&resp);
done:
    free(body);
    config_free(&cfg);
    return code;
}
