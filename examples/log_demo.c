/* log_demo: a pretend web service that logs the way a real one would.
 *
 * Four worker threads handle simulated requests. Each request gets a child
 * logger carrying its id, method and path, so every line about it has them.
 * Lines go to two sinks at once:
 *   - log_demo.log: JSON lines, rotated at 256 KiB, keeping log_demo.log.1..3
 *   - the terminal (stderr): pretty, coloured when it is a terminal, warn+
 *     by default (LOG_DEMO_VERBOSE=1 shows info too)
 * The logger runs in asynchronous mode: workers never wait for the disk.
 *
 *   cc -O2 -I. examples/log_demo.c -o log_demo -pthread
 *   ./log_demo [requests]             (default 2000)
 *   LOG_LEVEL=debug ./log_demo 200    (the level from the environment)
 *   tail -n 3 log_demo.log
 */
#define _POSIX_C_SOURCE 200809L
#define LOG_IMPLEMENTATION
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS 4

static const char *const paths[] = {"/", "/api/users", "/api/orders", "/api/orders/42",
                                    "/static/app.js", "/login"};
static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};

typedef struct worker {
    log_logger *log;
    int id, requests;
    unsigned seed;
} worker;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void handle_request(worker *w, int n)
{
    char req_id[32];
    log_field fields[3];
    log_logger *req;
    unsigned r = next_rand(&w->seed);
    const char *path = paths[r % 6], *method = methods[(r / 6) % 6];
    double ms = (double)(next_rand(&w->seed) % 4000) / 16.0;
    int status = r % 97 == 0 ? 503 : r % 23 == 0 ? 404 : r % 11 == 0 ? 201 : 200;

    snprintf(req_id, sizeof req_id, "w%d-%05d", w->id, n);
    fields[0] = LOG_STR("req_id", req_id);
    fields[1] = LOG_STR("method", method);
    fields[2] = LOG_STR("path", path);
    if (log_child(w->log, &req, fields, 3) != 0) return; /* out of memory: skip */

    log_debug(req, "request received", LOG_STR("user_agent", "curl/8.5.0"));
    if (status == 503) {
        log_error(req, "upstream unavailable", LOG_STR("upstream", "orders-db:5432"),
                  LOG_INT("retries", 3));
    } else if (ms > 200) {
        log_warnf(req, "slow request: %.1f ms", ms);
    }
    log_info(req, "request done", LOG_INT("status", status), LOG_FLOAT("duration_ms", ms),
             LOG_BOOL("cached", r % 3 == 0));
    log_destroy(req);
}

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    int i;
    log_infof(w->log, "worker %d started", w->id);
    for (i = 0; i < w->requests; i++) handle_request(w, i);
    return NULL;
}

int main(int argc, char **argv)
{
    log_sink sinks[2];
    log_options opts;
    log_logger *lg;
    log_stats st;
    pthread_t threads[WORKERS];
    worker workers[WORKERS];
    int i, rc, requests = argc > 1 ? atoi(argv[1]) : 2000;
    const char *verbose = getenv("LOG_DEMO_VERBOSE");

    if (requests <= 0) requests = 2000;
    memset(sinks, 0, sizeof sinks);
    sinks[0].kind = LOG_SINK_FILE;
    sinks[0].path = "log_demo.log";
    sinks[0].format = LOG_FORMAT_JSON;
    sinks[0].rotate_bytes = 256 << 10;
    sinks[0].keep = 3;
    sinks[1].kind = LOG_SINK_STDERR;
    sinks[1].format = LOG_FORMAT_PRETTY;
    sinks[1].level = verbose && *verbose == '1' ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;

    memset(&opts, 0, sizeof opts);
    opts.sinks = sinks;
    opts.nsinks = 2;
    opts.name = "demo";
    opts.mode = LOG_MODE_ASYNC;
    opts.level = LOG_LEVEL_INFO; /* LOG_LEVEL=debug in the environment overrides */
    rc = log_create(&lg, &opts);
    if (rc != 0) {
        fprintf(stderr, "log_demo: cannot start logging: %s\n", log_strerror(rc));
        return 1;
    }

    log_warn(lg, "service starting", LOG_INT("workers", WORKERS), LOG_INT("requests", requests),
             LOG_STR("level", log_level_name(log_get_level(lg))));
    for (i = 0; i < WORKERS; i++) {
        workers[i].log = lg;
        workers[i].id = i;
        workers[i].requests = requests / WORKERS;
        workers[i].seed = (unsigned)time(NULL) + 7919u * (unsigned)i;
        pthread_create(&threads[i], NULL, worker_main, &workers[i]);
    }
    for (i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);

    log_flush(lg);
    log_get_stats(lg, &st);
    log_warn(lg, "service stopping", LOG_UINT("lines", st.lines), LOG_UINT("bytes", st.bytes),
             LOG_UINT("rotations", st.rotations), LOG_UINT("write_errors", st.write_errors));
    log_destroy(lg);
    fprintf(stderr, "\nJSON lines are in log_demo.log (older ones in log_demo.log.1 .. .3); try:\n"
                    "  tail -n 2 log_demo.log\n"
                    "  LOG_LEVEL=debug LOG_DEMO_VERBOSE=1 ./log_demo 20\n");
    return 0;
}
