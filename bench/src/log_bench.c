/* log.h side of bench/log: one million lines (a message and three fields)
 * written to a file.
 *
 *   log_bench sync|async tput|lat FILE [LINES]
 *
 * tput: lines per second from the first call until every line is in the
 * file (flush and close included). lat: the same run with each call timed;
 * prints the caller's latency percentiles in ns. Output, one line:
 *   lines_per_sec p50_ns p99_ns p999_ns
 */
#define _POSIX_C_SOURCE 200809L
#define LOG_IMPLEMENTATION
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    log_sink sink;
    log_options o;
    log_logger *lg;
    long i, n;
    int lat, rc;
    unsigned *samples = NULL;
    double t0, t1;
    if (argc < 4) {
        fprintf(stderr, "usage: %s sync|async tput|lat FILE [LINES]\n", argv[0]);
        return 2;
    }
    n = argc > 4 ? atol(argv[4]) : 1000000;
    lat = strcmp(argv[2], "lat") == 0;
    memset(&sink, 0, sizeof sink);
    sink.kind = LOG_SINK_FILE;
    sink.path = argv[3];
    memset(&o, 0, sizeof o);
    o.sinks = &sink;
    o.nsinks = 1;
    o.level_env = "";
    o.mode = strcmp(argv[1], "async") == 0 ? LOG_MODE_ASYNC : LOG_MODE_SYNC;
    rc = log_create(&lg, &o);
    if (rc) {
        fprintf(stderr, "log_create: %s\n", log_strerror(rc));
        return 1;
    }
    if (lat && !(samples = (unsigned *)malloc(sizeof *samples * (size_t)n))) return 1;
    t0 = now_s();
    for (i = 0; i < n; i++) {
        long long a = lat ? now_ns() : 0;
        log_info(lg, "request handled", LOG_STR("path", "/api/users"), LOG_INT("status", 200 + i % 5),
                 LOG_FLOAT("ms", (double)(i % 1000) * 0.25));
        if (lat) samples[i] = (unsigned)(now_ns() - a);
    }
    log_flush(lg);
    log_destroy(lg);
    t1 = now_s();
    if (lat) {
        qsort(samples, (size_t)n, sizeof *samples, cmp_u32);
        printf("%.0f %u %u %u\n", (double)n / (t1 - t0), samples[n / 2], samples[n * 99 / 100],
               samples[n * 999 / 1000]);
    } else {
        printf("%.0f - - -\n", (double)n / (t1 - t0));
    }
    free(samples);
    return 0;
}
