/* bench/http_parser: parses three messages in a loop with http.h (at each
 * SIMD level) and with the peers linked beside it, all in one run, and prints
 * the median ns per message, messages/s, MB/s and the ratios. Built and run
 * by the script bench/http_parser. */
#define _POSIX_C_SOURCE 200809L
#define HTTP_IMPLEMENTATION
#include "../../http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_parser_inputs.h"
#include "http_parser_peers.h"

typedef size_t (*parse_fn)(const char *buf, size_t len, int response);

/* ---- ours ---- */

static http_msg_parser req_p, resp_p;

static __attribute__((noinline)) size_t ours(const char *buf, size_t len, int response)
{
    http_msg_parser *p = response ? &resp_p : &req_p;
    http_message m;
    http_header h[64];
    http_body b;
    size_t sum;
    int n = http_parse_head(p, buf, len, &m, h, 64);
    if (n <= 0) return 0;
    sum = m.num_headers + m.target.len;
    if (m.body != HTTP_BODY_NONE) {
        size_t off = (size_t)n;
        b.trailers = NULL;
        b.trailers_cap = 0;
        for (;;) {
            int r = http_parse_body(p, buf + off, len - off, &b);
            if (r < 0) return 0;
            sum += b.data.len;
            off += b.consumed;
            if (r == 1) break;
            if (b.consumed == 0) return 0;
        }
        if (off != len) return 0;
    } else if ((size_t)n != len) {
        return 0;
    }
    return sum;
}


/* ---- timing ---- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

static double time_it(parse_fn f, int level, const char *buf, size_t len, int response, long iters)
{
    double t0, t1;
    size_t s = 0;
    long i;
    if (level >= 0) http_simd_limit(level);
    t0 = now_ns();
    for (i = 0; i < iters; i++) s += f(buf, len, response);
    t1 = now_ns();
    sink += s;
    return (t1 - t0) / (double)iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct row {
    const char *name;
    parse_fn f;
    int level; /* SIMD level for ours, -1 for peers */
    int enabled;
} row;

int main(int argc, char **argv)
{
    struct { const char *name; const char *buf; int response; } inputs[] = {
        {"browser request", bench_browser, 0},
        {"minimal request", bench_minimal, 0},
        {"chunked response", bench_chunked, 1},
    };
    row rows[] = {
        {"http.h avx2", ours, HTTP_SIMD_AVX2, 1},
        {"http.h sse4.2", ours, HTTP_SIMD_SSE42, 1},
        {"http.h scalar", ours, HTTP_SIMD_NONE, 1},
        {"joyent http-parser", peer_joyent, -1, 1},
        {"llhttp", peer_llhttp, -1, 1},
        {"picohttpparser", peer_pico, -1, 1},
    };
    enum { NROWS = sizeof rows / sizeof rows[0], MAXRUNS = 31 };
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    double ms = argc > 2 ? atof(argv[2]) : 60;
    size_t in, ri;
    int hw;
    if (runs < 1) runs = 1;
    if (runs > MAXRUNS) runs = MAXRUNS;
    http_parse_init(&req_p, HTTP_KIND_REQUEST, NULL);
    http_parse_init(&resp_p, HTTP_KIND_RESPONSE, NULL);
    hw = http_simd_limit(HTTP_SIMD_AVX2);
    if (hw < HTTP_SIMD_AVX2) rows[0].enabled = 0;
    if (hw < HTTP_SIMD_SSE42) rows[1].enabled = 0;
#ifdef BENCH_NO_JOYENT
    rows[3].enabled = 0;
#endif
#ifdef BENCH_NO_LLHTTP
    rows[4].enabled = 0;
#endif
#ifdef BENCH_NO_PICO
    rows[5].enabled = 0;
#endif

    printf("median of %d runs of ~%.0f ms each; ratio = peer ns / our ns (higher is better for us)\n\n",
           runs, ms);
    for (in = 0; in < sizeof inputs / sizeof inputs[0]; in++) {
        const char *buf = inputs[in].buf;
        size_t len = strlen(buf);
        int resp = inputs[in].response;
        long iters[NROWS];
        double res[NROWS][MAXRUNS], med[NROWS];
        int r;
        printf("%s (%zu bytes)\n", inputs[in].name, len);
        printf("  %-20s %9s %12s %9s %11s %11s\n", "parser", "ns/msg", "msgs/s", "MB/s",
               "vs joyent", "vs llhttp");
        for (ri = 0; ri < NROWS; ri++) {
            double t;
            if (!rows[ri].enabled) continue;
            if (rows[ri].f(buf, len, resp) == 0) { /* cannot parse this input */
                rows[ri].enabled = 2;
                continue;
            }
            t = time_it(rows[ri].f, rows[ri].level, buf, len, resp, 20000);
            iters[ri] = (long)(ms * 1e6 / (t > 1 ? t : 1));
            if (iters[ri] < 1000) iters[ri] = 1000;
        }
        for (r = 0; r < runs; r++)
            for (ri = 0; ri < NROWS; ri++)
                if (rows[ri].enabled == 1)
                    res[ri][r] = time_it(rows[ri].f, rows[ri].level, buf, len, resp, iters[ri]);
        for (ri = 0; ri < NROWS; ri++) {
            if (rows[ri].enabled != 1) continue;
            qsort(res[ri], (size_t)runs, sizeof(double), cmp_double);
            med[ri] = res[ri][runs / 2];
        }
        for (ri = 0; ri < NROWS; ri++) {
            char vj[16] = "-", vl[16] = "-";
            if (rows[ri].enabled == 2) {
                printf("  %-20s %9s\n", rows[ri].name, "n/a");
                rows[ri].enabled = 1;
                continue;
            }
            if (rows[ri].enabled != 1) continue;
            if (rows[3].enabled == 1) snprintf(vj, sizeof vj, "%.2fx", med[3] / med[ri]);
            if (rows[4].enabled == 1) snprintf(vl, sizeof vl, "%.2fx", med[4] / med[ri]);
            printf("  %-20s %9.1f %12.0f %9.0f %11s %11s\n", rows[ri].name, med[ri],
                   1e9 / med[ri], (double)len * 1e3 / med[ri], vj, vl);
        }
        printf("\n");
    }
    http_simd_limit(HTTP_SIMD_AVX2);
    return sink == 42 ? 1 : 0;
}
