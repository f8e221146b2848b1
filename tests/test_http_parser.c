/* build: tsan */
/* Tests of http.h part 1: the parser, its limits and strictness, the helpers
 * and the serializer. Every parse goes through run(), which places the bytes
 * of each call just before an unreadable page (a read past the end crashes)
 * and at a new address each call (views kept across calls would go stale),
 * and every table case is parsed in one piece, split at every point, one
 * byte at a time and at random points, at every SIMD level: all must give the
 * same result. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#define HTTP_IMPLEMENTATION
#include "http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "test.h"

/* ---- a buffer that ends just before an unreadable page ------------------------ */

static unsigned char *guard_base;
static size_t guard_size; /* readable bytes before the guard page */

/* Copies data to the end of the readable region and returns where it is. */
static const char *at_guard(const void *data, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (n > guard_size) {
        size_t need = ((n + (size_t)page - 1) / (size_t)page) * (size_t)page;
        if (guard_base) munmap(guard_base, guard_size + (size_t)page);
        guard_base = (unsigned char *)mmap(NULL, need + (size_t)page, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_base == MAP_FAILED) abort();
        if (mprotect(guard_base + need, (size_t)page, PROT_NONE) != 0) abort();
        guard_size = need;
    }
    if (n) memcpy(guard_base + guard_size - n, data, n);
    return (const char *)guard_base + guard_size - n;
}

/* ---- a growable text, for canonical dumps of parse results ---------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void t_add(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = (char *)realloc(t->s, t->cap);
        if (!t->s) abort();
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void t_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void t_printf(text *t, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    t_add(t, tmp, (size_t)n);
}

static void t_view(text *t, http_str s)
{
    size_t i;
    t_add(t, "'", 1);
    for (i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') t_add(t, (const char *)&c, 1);
        else t_printf(t, "\\x%02x", c);
    }
    t_add(t, "'", 1);
}

/* ---- the runner ------------------------------------------------------------------- */

typedef struct cfg {
    http_kind kind;
    const http_options *opts;
    http_method_id response_to; /* for response parsers: every response answers this */
    size_t max_headers;         /* caller's array; 0: 64 */
    int trailers;               /* 0: store (8), 1: drop (NULL) */
} cfg;

static void dump_head(text *t, const http_message *m)
{
    size_t i;
    if (m->method_name.ptr) {
        t_printf(t, "REQ m=%d ", (int)m->method);
        t_view(t, m->method_name);
        t_add(t, " ", 1);
        t_view(t, m->target);
        t_printf(t, " form=%d", (int)m->target_form);
    } else {
        t_printf(t, "RESP %d ", m->status);
        t_view(t, m->reason);
    }
    t_printf(t, " v=%d.%d [", m->version_major, m->version_minor);
    for (i = 0; i < m->num_headers; i++) {
        t_view(t, m->headers[i].name);
        t_add(t, ":", 1);
        t_view(t, m->headers[i].value);
        t_add(t, ",", 1);
    }
    t_printf(t, "] body=%d cl=%d/%llu ch=%d ka=%d up=%d ec=%d eu=%d cc=%d ck=%d cu=%d oc=%d\n",
             (int)m->body, m->has_content_length, (unsigned long long)m->content_length,
             m->chunked, m->keep_alive, m->upgrade, m->expect_continue, m->expect_unknown,
             m->connection_close, m->connection_keep_alive, m->connection_upgrade,
             m->other_codings);
}

/* Parses in[0..len) delivered in pieces that end at cuts[0..ncuts) and then at
 * len; returns a canonical dump of every message, body and error. */
static char *run(const cfg *c, const char *in, size_t len, const size_t *cuts, size_t ncuts)
{
    http_msg_parser p;
    http_message m;
    http_header h[128], tr[8];
    http_body b;
    text t = {NULL, 0, 0}, body = {NULL, 0, 0};
    size_t start = 0, avail, k, maxh = c->max_headers ? c->max_headers : 64;
    bool in_body = false;
    int r;

    memset(&b, 0, sizeof b);
    b.trailers = c->trailers ? NULL : tr;
    b.trailers_cap = 8;
    http_parse_init(&p, c->kind, c->opts);
    if (c->kind == HTTP_KIND_RESPONSE) http_parse_response_to(&p, c->response_to);
    t_add(&t, "", 0);
    t_add(&body, "", 0);
    for (k = 0; k <= ncuts; k++) {
        avail = k < ncuts ? cuts[k] : len;
        for (;;) {
            size_t n = avail - start;
            const char *buf = at_guard(in + start, n);
            if (!in_body) {
                r = http_parse_head(&p, buf, n, &m, h, maxh);
                if (r < 0) goto fail;
                if (r == 0) break;
                dump_head(&t, &m);
                start += (size_t)r;
                if (m.body != HTTP_BODY_NONE) {
                    in_body = true;
                    body.len = 0;
                }
                if (m.upgrade && m.body == HTTP_BODY_NONE) {
                    t_printf(&t, "UPGRADE rest=%zu\n", len - start);
                    goto out;
                }
                if (c->kind == HTTP_KIND_RESPONSE && m.status >= 200)
                    http_parse_response_to(&p, c->response_to);
            } else {
                r = http_parse_body(&p, buf, n, &b);
                t_add(&body, b.data.ptr, b.data.len); /* also on an error: bytes before it */
                if (r < 0) goto fail;
                if (b.consumed > n || (b.data.len && (b.data.ptr < buf || b.data.ptr + b.data.len > buf + n)))
                    t_add(&t, "BAD-BODY-VIEW\n", 14);
                start += b.consumed;
                if (r == 1) {
                    size_t i;
                    t_add(&t, "BODY ", 5);
                    t_view(&t, (http_str){body.s, body.len});
                    t_printf(&t, " trailers=%zu [", b.num_trailers);
                    for (i = 0; i < b.num_trailers; i++) {
                        t_view(&t, tr[i].name);
                        t_add(&t, ":", 1);
                        t_view(&t, tr[i].value);
                        t_add(&t, ",", 1);
                    }
                    t_add(&t, "]\n", 2);
                    in_body = false;
                    if (m.upgrade) {
                        t_printf(&t, "UPGRADE rest=%zu\n", len - start);
                        goto out;
                    }
                    continue;
                }
                if (b.consumed == 0) break;
            }
        }
    }
    r = http_parse_finish(&p);
    if (r < 0) goto fail;
    if (r == 1) {
        t_add(&t, "BODY-EOF ", 9);
        t_view(&t, (http_str){body.s, body.len});
        t_add(&t, "\n", 1);
    }
    t_printf(&t, "END r=%d rest=%zu\n", r, len - start);
    goto out;
fail:
    t_printf(&t, "ERROR %s at %zu\n", http_errname(r), start + http_parse_error_offset(&p));
out:
    free(body.s);
    return t.s;
}

/* xorshift with a fixed seed: the random cuts are the same in every run. */
static unsigned long long rng_state = 88172645463325252ull;
static unsigned long long rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* n random points in (0, len) at which to cut an input, in order. */
static void random_cuts(size_t *cuts, size_t n, size_t len)
{
    size_t i;
    for (i = 0; i < n; i++) cuts[i] = 1 + (size_t)(rng() % (len - 1));
    for (i = 1; i < n; i++) { /* insertion sort */
        size_t v = cuts[i], q = i;
        while (q > 0 && cuts[q - 1] > v) { cuts[q] = cuts[q - 1]; q--; }
        cuts[q] = v;
    }
}

/* Parses in[0..len) cut in all the ways the tests try (two pieces at every
 * point, byte by byte, random cuts); 1, after saying which differs, when a
 * result is not whole, the one-piece result. */
static int check_splits(const cfg *c, const char *in, size_t len, const char *whole)
{
    size_t cuts[64], i, k;
    int bad = 0;
    size_t *all = (size_t *)calloc(len + 1, sizeof *all);
    char *res;
    size_t step = len > 1024 ? len / 300 : 1;
    /* two pieces, at every point (at ~300 points of a big input) */
    for (i = 1; i < len && !bad; i += step) {
        cuts[0] = i;
        res = run(c, in, len, cuts, 1);
        if (strcmp(res, whole) != 0) {
            fprintf(stderr, "split at %zu differs:\n%s--- vs one piece:\n%s", i, res, whole);
            bad = 1;
        }
        free(res);
    }
    /* one byte at a time (a big input: 97 bytes at a time) */
    step = len > 2048 ? 97 : 1;
    for (i = 0, k = 0; (k + 1) * step < len; k++) all[k] = (k + 1) * step;
    res = run(c, in, len, all, k);
    if (!bad && strcmp(res, whole) != 0) {
        fprintf(stderr, "byte-at-a-time differs:\n%s--- vs one piece:\n%s", res, whole);
        bad = 1;
    }
    free(res);
    /* random cuts */
    for (k = 0; k < 8 && !bad && len > 2; k++) {
        size_t n = 1 + rng() % 8;
        random_cuts(cuts, n, len);
        res = run(c, in, len, cuts, n);
        if (strcmp(res, whole) != 0) {
            fprintf(stderr, "random split differs:\n%s--- vs one piece:\n%s", res, whole);
            bad = 1;
        }
        free(res);
    }
    free(all);
    return bad;
}

/* Parses in every way at every SIMD level; returns the one-piece dump. */
static char *parse_all_ways(const cfg *c, const char *in, size_t len)
{
    char *whole, *other;
    int lv, top = http_simd_limit(HTTP_SIMD_AVX2);
    whole = run(c, in, len, NULL, 0);
    for (lv = top; lv >= HTTP_SIMD_NONE; lv--) {
        http_simd_limit(lv);
        other = run(c, in, len, NULL, 0);
        if (strcmp(other, whole) != 0) {
            TEST__FAIL_HEAD();
            fprintf(stderr, "SIMD level %d differs:\n%s--- vs:\n%s", lv, other, whole);
        }
        free(other);
        if (check_splits(c, in, len, whole)) {
            TEST__FAIL_HEAD();
            fprintf(stderr, "(SIMD level %d, input \"%.*s\")\n", lv, (int)len, in);
        }
    }
    http_simd_limit(HTTP_SIMD_AVX2);
    return whole;
}

static const cfg REQ = {HTTP_KIND_REQUEST, NULL, HTTP_METHOD_GET, 0, 0};
static const cfg RESP = {HTTP_KIND_RESPONSE, NULL, HTTP_METHOD_GET, 0, 0};

/* Expects the dump of `in` (all ways) to contain `want`. */
#define EXPECT(c, in, want)                                                                  \
    do {                                                                                     \
        char *got__ = parse_all_ways(&(c), (in), strlen(in));                               \
        if (!strstr(got__, (want))) {                                                        \
            TEST__FAIL_HEAD();                                                               \
            fprintf(stderr, "parse of \"%s\"\n  gave: %s  wanted: %s\n", (in), got__, (want)); \
        }                                                                                    \
        free(got__);                                                                         \
    } while (0)

/* ---- the same cases past 64 bytes, for the SIMD field scanner ------------------------
 * http__fields classifies 64-byte blocks only when it has 64 bytes, and most
 * table cases are shorter. pad_variants inserts a valid field of 64
 * consecutive lengths after the start line (and, when the input has a last
 * chunk, after it, in the trailer section), so the case's offending byte
 * falls at every offset of its 64-byte block, then parses each variant in
 * one piece, byte by byte and at random cuts, at every SIMD level. All must
 * agree; with want_err, each must fail with that error at the offset of the
 * unpadded case shifted by the pad. Cases about limits are not padded (the
 * pad would change them). */

static bool limits_default(const cfg *c)
{
    const http_options *o = c->opts;
    return c->max_headers == 0 &&
           (!o || (!o->max_request_line && !o->max_head && !o->max_headers &&
                   !o->max_chunk_digits && !o->max_chunk_ext));
}

static bool is_limit_error(int code)
{
    return code == HTTP_ERR_HEAD_TOO_LARGE || code == HTTP_ERR_TOO_MANY_HEADERS ||
           code == HTTP_ERR_URI_TOO_LONG || code == HTTP_ERR_CHUNK_TOO_LARGE ||
           code == HTTP_ERR_CHUNK_EXT_TOO_LONG;
}

static void pad_at(const cfg *c, const char *in, size_t len, size_t at, int want_err,
                   size_t err_at)
{
    size_t k;
    char *buf = (char *)malloc(len + 200);
    for (k = 60; k < 60 + 64; k++) {
        size_t plen = 9 + k, n = len + plen, cuts[3], j;
        char want[96], *ref, *got;
        int lv, top = http_simd_limit(HTTP_SIMD_AVX2);
        memcpy(buf, in, at);
        memcpy(buf + at, "X-Pad: ", 7);
        memset(buf + at + 7, 'p', k);
        memcpy(buf + at + 7 + k, "\r\n", 2);
        memcpy(buf + at + plen, in + at, len - at);
        http_simd_limit(HTTP_SIMD_NONE);
        ref = run(c, buf, n, NULL, 0);
        if (want_err) {
            snprintf(want, sizeof want, "ERROR %s at %zu\n", http_errname(want_err),
                     err_at + (err_at >= at ? plen : 0));
            if (!strstr(ref, want)) {
                TEST__FAIL_HEAD();
                fprintf(stderr, "padded (%zu at %zu) \"%.*s\"\n  gave: %s  wanted: %s", plen, at,
                        (int)n, buf, ref, want);
            }
        }
        for (lv = top; lv >= HTTP_SIMD_NONE; lv--) {
            size_t *all = (size_t *)malloc(n * sizeof *all);
            http_simd_limit(lv);
            for (j = 0; j + 1 < n; j++) all[j] = j + 1;
            random_cuts(cuts, 3, n);
            for (j = 0; j < 3; j++) {
                got = j == 0 ? run(c, buf, n, NULL, 0) : j == 1 ? run(c, buf, n, all, n - 1)
                                                               : run(c, buf, n, cuts, 3);
                if (strcmp(got, ref) != 0) {
                    TEST__FAIL_HEAD();
                    fprintf(stderr, "padded (%zu at %zu), SIMD level %d, %s:\n%s--- vs scalar:\n%s",
                            plen, at, lv, j == 0 ? "one piece" : j == 1 ? "byte by byte" : "3 cuts",
                            got, ref);
                }
                free(got);
            }
            free(all);
        }
        http_simd_limit(HTTP_SIMD_AVX2);
        free(ref);
    }
    free(buf);
}

static void pad_variants(const cfg *c, const char *in, size_t len, int want_err)
{
    const char *nl = (const char *)memchr(in, '\n', len);
    const char *head_end = strstr(in, "\r\n\r\n");
    size_t err_at = 0;
    if (!nl || !limits_default(c) || (want_err && is_limit_error(want_err))) return;
    if (want_err) {
        char *got = run(c, in, len, NULL, 0), name[64];
        const char *e = strstr(got, "ERROR ");
        if (!e || sscanf(e, "ERROR %63s at %zu", name, &err_at) != 2) {
            TEST__FAIL_HEAD();
            fprintf(stderr, "no error to pad: %s", got);
            free(got);
            return;
        }
        free(got);
    }
    pad_at(c, in, len, (size_t)(nl - in) + 1, want_err, err_at);
    if (head_end) { /* a trailer section: pad it too */
        const char *last = strstr(head_end + 2, "\r\n0\r\n");
        if (last) pad_at(c, in, len, (size_t)(last - in) + 5, want_err, err_at);
    }
}

/* Expects a parse error NAME (all ways, padded too), with its status. */
#define EXPECT_ERR(c, in, code, status)                                                      \
    do {                                                                                     \
        char want__[64];                                                                     \
        snprintf(want__, sizeof want__, "ERROR %s at", http_errname(code));                 \
        EXPECT(c, in, want__);                                                               \
        pad_variants(&(c), (in), strlen(in), (code));                                        \
        CHECK_INT(http_error_status(code), ==, status);                                      \
    } while (0)

/* EXPECT, and the padded variants agree at every SIMD level and split. */
#define EXPECT_PAD(c, in, want)                                                              \
    do {                                                                                     \
        EXPECT(c, in, want);                                                                 \
        pad_variants(&(c), (in), strlen(in), 0);                                             \
    } while (0)

/* One-piece parse of a head for direct checks of the message. */
static http_header hh[128];
static int head1(http_msg_parser *p, http_kind kind, const char *s, http_message *m)
{
    size_t n = strlen(s);
    http_parse_init(p, kind, NULL);
    return http_parse_head(p, at_guard(s, n), n, m, hh, 128);
}

/* ---- methods, targets, versions ---------------------------------------------------- */

TEST(methods)
{
    static const struct { const char *name; http_method_id id; } ms[] = {
        {"GET", HTTP_METHOD_GET},         {"HEAD", HTTP_METHOD_HEAD},
        {"POST", HTTP_METHOD_POST},       {"PUT", HTTP_METHOD_PUT},
        {"DELETE", HTTP_METHOD_DELETE},   {"OPTIONS", HTTP_METHOD_OPTIONS},
        {"TRACE", HTTP_METHOD_TRACE},     {"PATCH", HTTP_METHOD_PATCH},
        {"PROPFIND", HTTP_METHOD_OTHER},  {"M-SEARCH", HTTP_METHOD_OTHER},
        {"get", HTTP_METHOD_OTHER},       {"X!#$%&*+.^_`|~1", HTTP_METHOD_OTHER},
    };
    size_t i;
    for (i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char req[128], want[64];
        http_msg_parser p;
        http_message m;
        snprintf(req, sizeof req, "%s /x HTTP/1.1\r\nHost: a\r\n\r\n", ms[i].name);
        snprintf(want, sizeof want, "REQ m=%d '%s' '/x'", (int)ms[i].id, ms[i].name);
        EXPECT(REQ, req, want);
        CHECK_INT(head1(&p, HTTP_KIND_REQUEST, req, &m), ==, (int)strlen(req));
        CHECK_INT(m.method, ==, ms[i].id);
        CHECK_MEM(m.method_name.ptr, m.method_name.len, ms[i].name);
        CHECK_INT(http_method_from(ms[i].name, strlen(ms[i].name)), ==, ms[i].id);
        if (ms[i].id != HTTP_METHOD_OTHER) CHECK_STR(http_method_name(ms[i].id), ms[i].name);
    }
    EXPECT(REQ, "CONNECT h:1 HTTP/1.1\r\nHost: a\r\n\r\n", "REQ m=6 'CONNECT' 'h:1'");
    EXPECT_ERR(REQ, "G(T / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_METHOD, 400);
    EXPECT_ERR(REQ, " GET / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_METHOD, 400);
    EXPECT_ERR(REQ, "GET\t/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_METHOD, 400);
    EXPECT_ERR(REQ, "GET\r\n\r\n", HTTP_ERR_BAD_METHOD, 400);
    EXPECT_ERR(REQ, "G\x80T / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_METHOD, 400);
    EXPECT_ERR(REQ, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_ERR_BAD_METHOD, 400);
    CHECK_STR(http_method_name(HTTP_METHOD_OTHER), "");
    CHECK_STR(http_method_name((http_method_id)99), "");
    CHECK_STR(http_method_name(HTTP_METHOD_CONNECT), "CONNECT");
}

/* Expects `in` (a request) to fail with `code` at stream offset `at`. */
static void expect_err_at(const cfg *c, const char *in, int code, size_t at)
{
    char want[64], *got = parse_all_ways(c, in, strlen(in));
    snprintf(want, sizeof want, "ERROR %s at %zu\n", http_errname(code), at);
    if (!strstr(got, want)) {
        TEST__FAIL_HEAD();
        fprintf(stderr, "parse of \"%s\"\n  gave: %s  wanted: %s", in, got, want);
    }
    free(got);
    pad_variants(c, in, strlen(in), code);
}

TEST(target_forms)
{
    EXPECT(REQ, "GET /a/b?c=d&e HTTP/1.1\r\nHost: a\r\n\r\n", "'/a/b?c=d&e' form=1");
    /* every byte origin-form allows: pchar, '/', '?' */
    EXPECT(REQ, "GET /aZ09-._~!$&'()*+,;=:@%20/?x=/?y HTTP/1.1\r\nHost: a\r\n\r\n",
           "'/aZ09-._~!$&\\x27()*+,;=:@%20/?x=/?y' form=1");
    EXPECT(REQ, "GET //a//b HTTP/1.1\r\nHost: a\r\n\r\n", "'//a//b' form=1");
    /* escapes are checked where they are decoded (http_percent_decode) */
    EXPECT(REQ, "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", "'/%zz' form=1");
    EXPECT(REQ, "GET http://example.com:8080/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
           "'http://example.com:8080/x?y' form=2");
    EXPECT(REQ, "GET http://[::1]:8080/x HTTP/1.1\r\nHost: a\r\n\r\n", "'http://[::1]:8080/x' form=2");
    EXPECT(REQ, "GET http://[v1.a:b]/ HTTP/1.1\r\nHost: a\r\n\r\n", "form=2");
    EXPECT(REQ, "GET http://h HTTP/1.1\r\nHost: a\r\n\r\n", "'http://h' form=2");
    EXPECT(REQ, "GET https://h?q HTTP/1.1\r\nHost: a\r\n\r\n", "'https://h?q' form=2");
    EXPECT(REQ, "GET http://h:/ HTTP/1.1\r\nHost: a\r\n\r\n", "form=2");
    EXPECT(REQ, "GET svn+ssh://h/r HTTP/1.1\r\nHost: a\r\n\r\n", "form=2");
    EXPECT(REQ, "GET urn:example:x HTTP/1.1\r\nHost: a\r\n\r\n", "form=2");
    EXPECT(REQ, "CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", "'example.com:443' form=3");
    EXPECT(REQ, "CONNECT [::1]:8443 HTTP/1.1\r\nHost: a\r\n\r\n", "'[::1]:8443' form=3");
    EXPECT(REQ, "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n", "form=3");
    EXPECT(REQ, "CONNECT 192.0.2.1:80 HTTP/1.1\r\nHost: a\r\n\r\n", "form=3");
    EXPECT(REQ, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "'*' form=4");
    EXPECT(REQ, "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n", "form=1");
    EXPECT_ERR(REQ, "GET * HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT /x HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT host HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT host: HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT :80 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT h:8x HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT u@h:80 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT [::1:443 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT [::1]443 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT [192.0.2.1]:443 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "CONNECT h:443/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET example.com HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET 1http://x HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http: HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    /* absolute-form: no userinfo, a valid host, brackets only around it */
    EXPECT_ERR(REQ, "GET http://u:p@h/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http://u@h/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT(REQ, "GET http://h/a@b?u@v HTTP/1.1\r\nHost: a\r\n\r\n", "'http://h/a@b?u@v' form=2");
    EXPECT_ERR(REQ, "GET http:///x HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http://h:8x/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http://[::1/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http://[::g]/ HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET http://h#f HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET /a\x7f HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET /a\tb HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET  / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET /a\x01 HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_TARGET, 400);
    EXPECT_ERR(REQ, "GET /0123456789abcdef0123456789abcdef0123456789\x01 HTTP/1.1\r\n\r\n",
               HTTP_ERR_BAD_TARGET, 400);
    /* bytes RFC 3986 leaves out but browsers and curl send unencoded */
    EXPECT(REQ, "GET /s?a[]=1&b={x}|y^z`w\\v\"<> HTTP/1.1\r\nHost: a\r\n\r\n",
           "'/s?a[]=1&b={x}|y^z`w\\x5cv\"<>' form=1");
    EXPECT(REQ, "GET http://h/a[b]?[ HTTP/1.1\r\nHost: a\r\n\r\n", "'http://h/a[b]?[' form=2");
    {
        /* at every offset of a 40-byte target (the SIMD scanners' 32- and
         * 16-byte steps and the scalar tail): a fragment, space's
         * neighbours, DEL and non-ASCII fail at that byte; the other
         * visible bytes outside RFC 3986's grammar pass */
        static const char bad[] = "#\x7f\x80\xff\x1f";
        static const char good[] = "\"<>{}|\\^`[]!~";
        size_t i, k;
        for (i = 0; i < sizeof bad - 1 + sizeof good - 1; i++) {
            for (k = 1; k < 40; k++) {
                char req[128];
                int is_bad = i < sizeof bad - 1;
                memset(req, 0, sizeof req);
                memcpy(req, "GET /", 5);
                memset(req + 5, 'a', 39);
                req[4 + k] = is_bad ? bad[i] : good[i - (sizeof bad - 1)];
                strcat(req, " HTTP/1.1\r\nHost: a\r\n\r\n");
                if (is_bad) {
                    expect_err_at(&REQ, req, HTTP_ERR_BAD_TARGET, 4 + k);
                } else {
                    char *got = parse_all_ways(&REQ, req, strlen(req));
                    CHECK(strstr(got, "form=1") != NULL);
                    free(got);
                }
            }
        }
    }
}

TEST(versions)
{
    EXPECT(REQ, "GET / HTTP/1.0\r\n\r\n", "v=1.0");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "v=1.1");
    EXPECT(REQ, "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "v=1.2 ['Host':'a',] body=0 cl=0/0 ch=0 ka=1");
    EXPECT_ERR(REQ, "GET / HTTP/2.0\r\n\r\n", HTTP_ERR_VERSION_NOT_SUPPORTED, 505);
    EXPECT_ERR(REQ, "GET / HTTP/0.9\r\n\r\n", HTTP_ERR_VERSION_NOT_SUPPORTED, 505);
    EXPECT_ERR(REQ, "GET / HTTP/1.1 \r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET / http/1.1\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.x\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET / HTTP/11\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.10\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET /\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(REQ, "GET / \r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
    EXPECT_ERR(RESP, "HTTP/2 200 OK\r\n\r\n", HTTP_ERR_VERSION_NOT_SUPPORTED, 505);
    EXPECT_ERR(RESP, "HTTP/1.1  200 OK\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "ICY 200 OK\r\n\r\n", HTTP_ERR_BAD_VERSION, 400);
}

TEST(leading_empty_lines)
{
    /* empty lines before a request line are skipped and counted as consumed */
    http_msg_parser p;
    http_message m;
    CHECK_INT(head1(&p, HTTP_KIND_REQUEST, "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &m), ==, 31);
    EXPECT(REQ, "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "REQ m=1 'GET' '/'");
    EXPECT_ERR(REQ, "\rGET / HTTP/1.1\r\n\r\n", HTTP_ERR_BARE_CR, 400);
    EXPECT_ERR(REQ, "\nGET / HTTP/1.1\r\n\r\n", HTTP_ERR_BARE_LF, 400);
}

/* ---- responses -------------------------------------------------------------------- */

TEST(status_lines)
{
    EXPECT(RESP, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "RESP 200 'OK' v=1.1");
    EXPECT(RESP, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "RESP 404 'Not Found'");
    EXPECT(RESP, "HTTP/1.0 200 \r\nContent-Length: 0\r\n\r\n", "RESP 200 '' v=1.0");
    EXPECT(RESP, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "RESP 200 '' v=1.1");
    EXPECT(RESP, "HTTP/1.1 599 Caf\xc3\xa9\tok\r\nContent-Length: 0\r\n\r\n",
           "RESP 599 'Caf\\xc3\\xa9\\x09ok'");
    EXPECT_ERR(RESP, "HTTP/1.1 099 Low\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 2000 OK\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 20 OK\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 2x0 OK\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_STATUS, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 200 O\x01K\r\n\r\n", HTTP_ERR_HEADER_VALUE_CTL, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 200 O\rK\r\n\r\n", HTTP_ERR_BARE_CR, 400);
}

TEST(reason_nul)
{
    /* a NUL cannot be written in a C literal test input: use a length */
    static const char in[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    char *got = parse_all_ways(&RESP, in, sizeof in - 1);
    CHECK(strstr(got, "ERROR HEADER_VALUE_NUL at 14") != NULL);
    free(got);
}

/* ---- bodies ----------------------------------------------------------------------- */

TEST(bodies)
{
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
           "body=1 cl=1/5 ch=0 ka=1 up=0 ec=0 eu=0 cc=0 ck=0 cu=0 oc=0\nBODY 'hello' trailers=0 []\nEND r=0 rest=0");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "body=0 cl=1/0");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n1234567", "cl=1/7");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\n\r\nGET", "body=0 cl=0/0");
    EXPECT(REQ,
           "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;name=value;x=\"q s\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
           "0\r\nX-Sum: 42\r\nX-Other: a b\r\n\r\n",
           "BODY 'helloabcdefghijklmnopqrstuvwxyz' trailers=2 ['X-Sum':'42','X-Other':'a b',]");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "body=2 cl=0/0 ch=1");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000\r\n\r\n",
           "BODY '' trailers=0 []");
    EXPECT(REQ, "POST /p HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\nF\r\n0123456789abcde\r\n0\r\n\r\n",
           "BODY '0123456789abcde'");
    /* responses */
    EXPECT(RESP, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "BODY 'abc'");
    EXPECT(RESP, "HTTP/1.1 200 OK\r\n\r\nuntil close",
           "body=3 cl=0/0 ch=0 ka=0 up=0 ec=0 eu=0 cc=0 ck=0 cu=0 oc=0\nBODY-EOF 'until close'\nEND r=1");
    EXPECT(RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
           "body=3 cl=0/0 ch=0 ka=0 up=0 ec=0 eu=0 cc=0 ck=0 cu=0 oc=1\nBODY-EOF 'zzz'");
    EXPECT(RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n",
           "ch=1 ka=1 up=0 ec=0 eu=0 cc=0 ck=0 cu=0 oc=1\nBODY 'zz'");
    EXPECT(RESP, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "body=0 cl=1/5");
    EXPECT(RESP, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "body=0");
    EXPECT(RESP, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           "RESP 100 'Continue' v=1.1 [] body=0");
    EXPECT(RESP, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           "BODY 'ok'");
    {
        /* responses to HEAD: no body whatever the fields say, also after a 1xx */
        cfg head = RESP;
        head.response_to = HTTP_METHOD_HEAD;
        EXPECT(head, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "body=0 cl=1/1000");
        EXPECT(head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "body=0");
        EXPECT(head,
               "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
               "END r=0 rest=0");
    }
}

TEST(pipelined)
{
    EXPECT(REQ,
           "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
           "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
           "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
           "GET /4 HTTP/1.0\r\n\r\n",
           "'/1'");
    {
        static const char in[] =
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTT";
        char *got = parse_all_ways(&REQ, in, sizeof in - 1);
        CHECK(strstr(got, "'/1'") && strstr(got, "'/2'") && !strstr(got, "'/3'"));
        CHECK(strstr(got, "ERROR INCOMPLETE") != NULL);
        free(got);
    }
}

/* ---- keep-alive, upgrade, CONNECT, expect ----------------------------------------- */

TEST(keep_alive)
{
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "ka=1");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "ka=0 up=0 ec=0 eu=0 cc=1");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", "ka=0 up=0 ec=0 eu=0 cc=1 ck=1");
    EXPECT(REQ, "GET / HTTP/1.0\r\n\r\n", "ka=0");
    EXPECT(REQ, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "ka=1 up=0 ec=0 eu=0 cc=0 ck=1");
    EXPECT(REQ, "GET / HTTP/1.0\r\nConnection: foo,,  Keep-Alive \r\n\r\n", "ka=1");
    EXPECT(REQ, "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", "ka=0");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", "ka=1 up=0 ec=0 eu=0 cc=0");
    EXPECT(RESP, "HTTP/1.1 200 OK\r\n\r\n", "ka=0");
    EXPECT(RESP, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "ka=1");
    EXPECT(RESP, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "ka=0");
}

TEST(upgrade_and_connect)
{
    static const char ws[] =
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    EXPECT(REQ, ws, "up=1 ec=0 eu=0 cc=0 ck=0 cu=1 oc=0\nUPGRADE rest=11");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", "up=0");
    EXPECT(REQ, "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", "up=0 ec=0 eu=0 cc=0 ck=0 cu=1");
    EXPECT(REQ, "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nabXYZ",
           "BODY 'ab' trailers=0 []\nUPGRADE rest=3");
    EXPECT(REQ, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01", "up=1");
    /* a CONNECT request has no content: framing fields are refused, not
     * ignored (a front end that honoured them would split differently) */
    expect_err_at(&REQ, "CONNECT h:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n\x16\x03\x01",
                  HTTP_ERR_CONNECT_BODY, 33);
    expect_err_at(&REQ, "CONNECT h:443 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                  HTTP_ERR_CONNECT_BODY, 33);
    EXPECT_ERR(REQ, "CONNECT h:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_ERR_CL_AND_TE, 400);
    EXPECT(REQ, "CONNECT h:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n\x16\x03\x01",
           "body=0 cl=1/0 ch=0 ka=1 up=1 ec=0 eu=0 cc=0 ck=0 cu=0 oc=0\nUPGRADE rest=3");
    CHECK_INT(http_error_status(HTTP_ERR_CONNECT_BODY), ==, 400);
    /* a server ignores Upgrade in an HTTP/1.0 request (RFC 9110 7.8) */
    EXPECT(REQ, "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
           "ka=0 up=0 ec=0 eu=0 cc=0 ck=0 cu=1 oc=0\nEND r=0 rest=0");
    EXPECT(REQ, "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade, keep-alive\r\n\r\nGET",
           "ka=1 up=0 ec=0 eu=0 cc=0 ck=1 cu=1 oc=0\nERROR INCOMPLETE");
    /* (CONNECT keeps its own rule: a tunnel in either version) */
    EXPECT(REQ, "CONNECT h:443 HTTP/1.0\r\n\r\nTLS", "up=1 ec=0 eu=0 cc=0 ck=0 cu=0 oc=0\nUPGRADE rest=3");
    EXPECT(RESP, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x01",
           "UPGRADE rest=2");
    {
        cfg con = RESP;
        con.response_to = HTTP_METHOD_CONNECT;
        EXPECT(con, "HTTP/1.1 200 Connection established\r\n\r\nTLS", "UPGRADE rest=3");
        EXPECT(con, "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno", "up=0");
    }
}

TEST(expect_continue)
{
    EXPECT(REQ, "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", "ec=1 eu=0");
    EXPECT(REQ, "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", "ec=1 eu=0");
    EXPECT(REQ, "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", "ec=0");
    EXPECT(REQ, "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", "ec=0 eu=1");
}

/* ---- limits ----------------------------------------------------------------------- */

static char *repeat(char c, size_t n)
{
    char *s = (char *)malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

TEST(limit_request_line)
{
    http_options o;
    cfg c = REQ;
    char req[256];
    memset(&o, 0, sizeof o);
    o.max_request_line = 40;
    c.opts = &o;
    /* "GET " + target + " HTTP/1.1" = 40 exactly */
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaa");
    EXPECT(c, req, "REQ m=1");
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaa");
    EXPECT_ERR(c, req, HTTP_ERR_URI_TOO_LONG, 414);
    snprintf(req, sizeof req, "GET /%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    EXPECT_ERR(c, req, HTTP_ERR_URI_TOO_LONG, 414);
    snprintf(req, sizeof req, "%s / HTTP/1.1\r\n\r\n", "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM");
    EXPECT_ERR(c, req, HTTP_ERR_URI_TOO_LONG, 414);
    {
        /* default: 8192 */
        char *t = repeat('a', 8192 - 14);
        char *big = (char *)malloc(8300);
        snprintf(big, 8300, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", t);
        EXPECT(REQ, big, "REQ m=1");
        snprintf(big, 8300, "GET /%sb HTTP/1.1\r\n\r\n", t);
        EXPECT_ERR(REQ, big, HTTP_ERR_URI_TOO_LONG, 414);
        free(t);
        free(big);
    }
}

TEST(limit_head)
{
    http_options o;
    cfg c = REQ;
    char req[512];
    memset(&o, 0, sizeof o);
    o.max_head = 60;
    c.opts = &o;
    /* exactly 60 bytes */
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_INT(strlen(req), ==, 60);
    EXPECT(c, req, "REQ m=1");
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    EXPECT_ERR(c, req, HTTP_ERR_HEAD_TOO_LARGE, 431);
    EXPECT_ERR(c, "GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
               HTTP_ERR_HEAD_TOO_LARGE, 431);
    /* the limit wins over a bad byte past it, whatever the split */
    EXPECT_ERR(c, "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x01",
               HTTP_ERR_HEAD_TOO_LARGE, 431);
    {
        /* default 32768 */
        char *v = repeat('v', 32768 - 32);
        char *big = (char *)malloc(40000);
        snprintf(big, 40000, "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", v);
        CHECK_INT(strlen(big), ==, 32768);
        EXPECT(REQ, big, "REQ m=1");
        snprintf(big, 40000, "GET / HTTP/1.1\r\nHost: a\r\nX: %sv\r\n\r\n", v);
        EXPECT_ERR(REQ, big, HTTP_ERR_HEAD_TOO_LARGE, 431);
        free(v);
        free(big);
    }
}

/* A request with n fields: Host, then X-1 to X-(n-1). */
static char *fields(size_t n)
{
    char *s = (char *)malloc(n * 16 + 64), *p = s;
    size_t i;
    p += sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 1; i < n; i++) p += sprintf(p, "X-%zu: %zu\r\n", i, i);
    sprintf(p, "\r\n");
    return s;
}

TEST(limit_headers)
{
    http_options o;
    cfg c = REQ;
    char *s;
    memset(&o, 0, sizeof o);
    o.max_headers = 5;
    c.opts = &o;
    s = fields(5);
    EXPECT(c, s, "'X-4':'4',]");
    free(s);
    s = fields(6);
    EXPECT_ERR(c, s, HTTP_ERR_TOO_MANY_HEADERS, 431);
    free(s);
    /* the caller's array bounds it too */
    c.opts = NULL;
    c.max_headers = 3;
    s = fields(3);
    EXPECT(c, s, "'X-2':'2',]");
    free(s);
    s = fields(4);
    EXPECT_ERR(c, s, HTTP_ERR_TOO_MANY_HEADERS, 431);
    free(s);
    /* default: 100 */
    {
        http_msg_parser p;
        http_message m;
        http_header *big = (http_header *)malloc(200 * sizeof *big);
        size_t n;
        s = fields(100);
        n = strlen(s);
        http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
        CHECK_INT(http_parse_head(&p, at_guard(s, n), n, &m, big, 200), ==, (int)n);
        CHECK_UINT(m.num_headers, ==, 100);
        free(s);
        s = fields(101);
        n = strlen(s);
        http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
        CHECK_INT(http_parse_head(&p, at_guard(s, n), n, &m, big, 200), ==, HTTP_ERR_TOO_MANY_HEADERS);
        free(s);
        /* no array at all: a head without fields still parses */
        http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
        CHECK_INT(http_parse_head(&p, "GET / HTTP/1.0\r\n\r\n", 18, &m, NULL, 0), ==, 18);
        http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
        CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\nA: b\r\n\r\n", 24, &m, NULL, 0), ==,
                  HTTP_ERR_TOO_MANY_HEADERS);
        free(big);
    }
}

TEST(limit_chunks)
{
    http_options o;
    cfg c = REQ;
    memset(&o, 0, sizeof o);
    o.max_chunk_digits = 4;
    o.max_chunk_ext = 8;
    c.opts = &o;
    EXPECT(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n0\r\n\r\n", "BODY 'abc'");
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00003\r\nabc\r\n0\r\n\r\n",
               HTTP_ERR_CHUNK_TOO_LARGE, 413);
    EXPECT(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;abcdefg\r\na\r\n0;1234567\r\n\r\n",
           "BODY 'a'");
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;abcdefgh\r\na\r\n0\r\n\r\n",
               HTTP_ERR_CHUNK_EXT_TOO_LONG, 400);
    /* default: 16 digits; 17 is too many even as leading zeros */
    EXPECT(REQ, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000001\r\na\r\n0\r\n\r\n",
           "BODY 'a'");
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n",
               HTTP_ERR_CHUNK_TOO_LARGE, 413);
    EXPECT(REQ, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc",
           "ERROR INCOMPLETE");
}

TEST(limit_trailers)
{
    http_options o;
    cfg c = REQ;
    memset(&o, 0, sizeof o);
    o.max_head = 60;
    o.max_headers = 2;
    c.opts = &o;
    EXPECT(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n",
           "trailers=2 ['A':'1','B':'2',]");
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
               HTTP_ERR_TOO_MANY_HEADERS, 431);
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 0123456789012345678901234567890123456789012345678901234567890\r\n\r\n",
               HTTP_ERR_HEAD_TOO_LARGE, 431);
    c.trailers = 1; /* dropped, still checked and counted */
    EXPECT(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n", "trailers=0 []");
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
               HTTP_ERR_TOO_MANY_HEADERS, 431);
    EXPECT_ERR(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n A: 1\r\n\r\n",
               HTTP_ERR_OBS_FOLD, 400);
}

/* ---- smuggling rules -------------------------------------------------------------- */

TEST(framing_rules)
{
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_ERR_CL_AND_TE, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
               HTTP_ERR_CL_AND_TE, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
               HTTP_ERR_CL_AND_TE, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
               HTTP_ERR_CL_MULTIPLE, 400);
    EXPECT_PAD(REQ, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc", "BODY 'abc'");
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 3 3\r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 3,3\r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
               HTTP_ERR_CL_INVALID, 400);
    EXPECT_PAD(REQ, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
           "cl=1/18446744073709551615");
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
               HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
               HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
               HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
               HTTP_ERR_TE_UNSUPPORTED, 501);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_ERR_TE_UNSUPPORTED, 501);
    EXPECT_ERR(REQ, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_TE_HTTP10, 400);
    EXPECT_ERR(RESP, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_TE_HTTP10, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
               HTTP_ERR_TE_NOT_CHUNKED, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_MULTIPLE_HOST, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", HTTP_ERR_MULTIPLE_HOST, 400);
}

TEST(chunk_rules)
{
#define CH "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    EXPECT_ERR(REQ, CH "zz\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH "\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH " 5\r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH "5 \r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH "5 x\r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH "-1\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH "0x5\r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    EXPECT_ERR(REQ, CH ";a\r\n", HTTP_ERR_CHUNK_SIZE, 400);
    /* in chunk framing a CR without its LF is CHUNK_CRLF, at the byte
     * after the CR (an earlier call may have consumed the CR) */
    expect_err_at(&REQ, CH "5\rhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_CRLF, 58);
    expect_err_at(&REQ, CH "5\r\nhelloX\r\n0\r\n\r\n", HTTP_ERR_CHUNK_CRLF, 64);
    expect_err_at(&REQ, CH "5\r\nhello\rX0\r\n\r\n", HTTP_ERR_CHUNK_CRLF, 65);
    expect_err_at(&REQ, CH "5;a\rb\r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_CRLF, 60);
    expect_err_at(&REQ, CH "5;a=\"x\"\rb\r\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_CRLF, 64);
    /* in a trailer section, as in a head, it is BARE_CR at the CR */
    expect_err_at(&REQ, CH "0\r\nX: 1\rY\r\n\r\n", HTTP_ERR_BARE_CR, 63);
    expect_err_at(&REQ, CH "0\r\n\rY", HTTP_ERR_BARE_CR, 59);
    EXPECT_ERR(REQ, CH "5\r\nhello\n0\r\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, CH "5\nhello\r\n0\r\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, CH "5;a\nhello\r\n0\r\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, CH "5\r\nhello\r\n0\r\n", HTTP_ERR_INCOMPLETE, 400);
    EXPECT_ERR(REQ, CH "5\r\nhello\r\n0\r\nX: 1\r\n", HTTP_ERR_INCOMPLETE, 400);
    EXPECT_ERR(REQ, CH "5\r\nhello\r\n0\r\nX: 1\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, CH "5\r\nhello\r\n0\r\nX : 1\r\n\r\n", HTTP_ERR_HEADER_NAME_SPACE, 400);
#undef CH
}

/* Chunk extensions: RFC 9112 section 7.1.1, BWS included. */
TEST(chunk_extensions)
{
#define CH "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    static const char *const good[] = {
        "a", "a=b", "a=\"q s\"", "a=\"\\\"\\\\\"", "a=\"\"", "!#$%&'*+-.^_`|~09=x", "a;b=c;d",
        " ;a", "\t;a", " \t ;a", "; a", ";\ta", "a =b", "a= b", "a \t=\t \"x\"", "a=b ;c",
        "a=\"x\" ;c", "a=\"x\";c=\"y\"", "a=\"caf\xc3\xa9\"", "a=\"t\tb\"", "a=\"\\\xc3\\\t\"",
        "a=\"\x7e!#[]\"",
    };
    static const char *const bad[] = {
        "", "=", "=v", "a b", "a b c", "a=", "a= ", "a=b c", "a=\"x", "a=\"x\"y", "\xc3\xa9",
        "a=\xc3\xa9", "a\xc3\xa9", "a ", "a\t", "a=b ", "a=\"x\" ", ";a", "a;", "a;;b",
        "a=\"\\\x01\"", "a=\"\x01\"", "a=\"\x7f\"", "a=b=c", "a=\"x\"\"y\"", "a=(b)", "a\x01",
        "a=\"x\ry\"",
    };
    size_t i;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        char in[256];
        snprintf(in, sizeof in, CH "5%s%s\r\nhello\r\n0%s%s\r\n\r\n", good[i][0] == ' ' ||
                 good[i][0] == '\t' || good[i][0] == ';' ? "" : ";", good[i],
                 good[i][0] == ' ' || good[i][0] == '\t' || good[i][0] == ';' ? "" : ";", good[i]);
        EXPECT_PAD(REQ, in, "BODY 'hello' trailers=0 []\nEND r=0 rest=0");
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[256];
        snprintf(in, sizeof in, CH "5;%s\r\nhello\r\n0\r\n\r\n", bad[i]);
        EXPECT_ERR(REQ, in, HTTP_ERR_CHUNK_EXT, 400);
        /* the same in the last chunk */
        snprintf(in, sizeof in, CH "0;%s\r\n\r\n", bad[i]);
        EXPECT(REQ, in, "ERROR CHUNK_EXT at");
    }
    /* the offending byte is the one reported */
    expect_err_at(&REQ, CH "3;a b\r\nabc\r\n0\r\n\r\n", HTTP_ERR_CHUNK_EXT, 60);
    expect_err_at(&REQ, CH "3;\r\nabc\r\n0\r\n\r\n", HTTP_ERR_CHUNK_EXT, 58);
    expect_err_at(&REQ, CH "3;a=\"x\r\nabc\r\n0\r\n\r\n", HTTP_ERR_CHUNK_EXT, 62);
    {
        /* lenient: a lone LF ends the line where a CRLF may */
        http_options o;
        cfg c = REQ;
        memset(&o, 0, sizeof o);
        o.lenient_bare_lf = true;
        c.opts = &o;
        EXPECT_PAD(c, CH "5;a=\"x\"\nhello\n0;b\n\n", "BODY 'hello'");
        EXPECT_ERR(c, CH "5;a=\"x\nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_EXT, 400);
        EXPECT_ERR(c, CH "5;a \nhello\r\n0\r\n\r\n", HTTP_ERR_CHUNK_EXT, 400);
    }
#undef CH
}

/* Host: required in HTTP/1.1 requests, and a uri-host [":" port]. */
TEST(host_rules)
{
    static const char *const good[] = {
        "example.com", "example.com:8080", "EXAMPLE.com.", "192.0.2.1", "192.0.2.1:80",
        "999.1.1.1", "[::1]", "[::1]:443", "[::]", "[2001:db8::8:800:200c:417a]",
        "[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7::]", "[::2:3:4:5:6:7:8]", "[1::8]",
        "[1:2:3:4:5:6:192.0.2.1]", "[::ffff:192.0.2.1]:80", "[v7.a:b]", "[V1f.x~]", "", "h:",
        ":80", "xn--bcher-kva.example", "a%41b%2a", "a_b~c-d", "!$&'()*+,;=",
    };
    static const char *const bad[] = {
        "a b", "a@b", "u:p@h", "a:b", "a:1:2", "h:80x", "[::1", "[::1]x", "[::1]:x", "[192.0.2.1]",
        "[::1::2]", "[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7]", "[1::2:3:4:5:6:7:8]", "[12345::]",
        "[:1::]", "[1:]", "[::1.2.3.256]", "[::01.2.3.4]", "[::1.2.3]", "[1:2:3:4:5:6:7:1.2.3.4]",
        "[::g]", "[]", "[v.x]", "[v1.]", "[vx.y]", "[v1.a/b]", "h/p", "h?q", "h#f", "%zz", "%4",
        "caf\xc3\xa9", "a\"b", "<h>", "h\\x", "a[b]", "[::1]]",
    };
    size_t i;
    char in[256];
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        text want = {NULL, 0, 0};
        snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        t_add(&want, "['Host':", 8);
        t_view(&want, (http_str){good[i], strlen(good[i])});
        t_add(&want, ",]", 2);
        EXPECT_PAD(REQ, in, want.s);
        free(want.s);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(in, sizeof in, "GET / HTTP/1.1\r\nX: 1\r\nHost: \t%s \r\n\r\n", bad[i]);
        expect_err_at(&REQ, in, HTTP_ERR_BAD_HOST, 29); /* the value's first byte */
    }
    CHECK_INT(http_error_status(HTTP_ERR_BAD_HOST), ==, 400);
    /* missing: noticed at the blank line; HTTP/1.0 does not need one */
    expect_err_at(&REQ, "GET / HTTP/1.1\r\n\r\n", HTTP_ERR_MISSING_HOST, 16);
    expect_err_at(&REQ, "GET / HTTP/1.1\r\nA: b\r\n\r\nGET", HTTP_ERR_MISSING_HOST, 22);
    expect_err_at(&REQ, "GET / HTTP/1.2\r\n\r\n", HTTP_ERR_MISSING_HOST, 16);
    expect_err_at(&REQ, "GET http://h/ HTTP/1.1\r\n\r\n", HTTP_ERR_MISSING_HOST, 24);
    expect_err_at(&REQ, "CONNECT h:1 HTTP/1.1\r\n\r\n", HTTP_ERR_MISSING_HOST, 22);
    /* the fields' own errors come first: they are earlier in the stream */
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", HTTP_ERR_CL_INVALID, 400);
    EXPECT_ERR(REQ, "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_ERR_CL_AND_TE, 400);
    CHECK_INT(http_error_status(HTTP_ERR_MISSING_HOST), ==, 400);
    EXPECT_PAD(REQ, "GET / HTTP/1.0\r\n\r\n", "v=1.0 [] body=0");
    EXPECT_PAD(REQ, "GET / HTTP/1.1\r\nhOsT: h\r\n\r\n", "['hOsT':'h',]");
    /* in responses Host means nothing: not checked */
    EXPECT_PAD(RESP, "HTTP/1.1 200 OK\r\nHost: a b\r\nContent-Length: 0\r\n\r\n", "RESP 200");
    {
        http_options o;
        cfg c = REQ;
        memset(&o, 0, sizeof o);
        o.lenient_missing_host = true;
        c.opts = &o;
        EXPECT_PAD(c, "GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", "'/2' form=1 v=1.1 [] body=0");
        /* a Host that is there is still checked */
        EXPECT_ERR(c, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_ERR_BAD_HOST, 400);
        EXPECT_ERR(c, "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_ERR_MULTIPLE_HOST, 400);
        /* the option survives a reset */
        {
            http_msg_parser p;
            http_message m;
            http_parse_init(&p, HTTP_KIND_REQUEST, &o);
            http_parse_reset(&p);
            CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\n\r\n", 18, &m, hh, 8), ==, 18);
        }
        o.lenient_bare_lf = true;
        EXPECT_PAD(c, "GET / HTTP/1.1\n\n", "v=1.1 [] body=0");
        o.lenient_missing_host = false;
        expect_err_at(&c, "GET / HTTP/1.1\nA: b\n\n", HTTP_ERR_MISSING_HOST, 20);
        expect_err_at(&c, "GET / HTTP/1.1\nA: b\n\r\n", HTTP_ERR_MISSING_HOST, 20);
    }
}

TEST(field_rules)
{
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HTTP_ERR_OBS_FOLD, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HTTP_ERR_OBS_FOLD, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP_ERR_OBS_FOLD, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_ERR_HEADER_NAME_SPACE, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP_ERR_HEADER_NAME_SPACE, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", HTTP_ERR_HEADER_NAME_SPACE, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_ERR_HEADER_NO_COLON, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\n: empty\r\n\r\n", HTTP_ERR_HEADER_NAME, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHo@st: a\r\n\r\n", HTTP_ERR_HEADER_NAME, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", HTTP_ERR_HEADER_NAME, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nH\xc3\xb6st: a\r\n\r\n", HTTP_ERR_HEADER_NAME, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\x01" "c\r\n\r\n", HTTP_ERR_HEADER_VALUE_CTL, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", HTTP_ERR_HEADER_VALUE_CTL, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\x1b[0m\r\n\r\n", HTTP_ERR_HEADER_VALUE_CTL, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTP_ERR_BARE_CR, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\nc: d\r\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\r\n\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\r\nA: b\r\n\rX", HTTP_ERR_BARE_CR, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\n\r\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(REQ, "GET / HTTP/1.1\rX\r\n", HTTP_ERR_BARE_CR, 400);
    /* allowed: obs-text, HTAB, surrounding whitespace trimmed, empty values */
    EXPECT_PAD(REQ, "GET / HTTP/1.1\r\nHost: a\r\nA: \t caf\xc3\xa9\tau lait \t\r\nB:\r\nC:   \r\nD:x\r\n\r\n",
           "['Host':'a','A':'caf\\xc3\\xa9\\x09au lait','B':'','C':'','D':'x',]");
    {
        static const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
        char *got = parse_all_ways(&REQ, nul, sizeof nul - 1);
        CHECK(strstr(got, "ERROR HEADER_VALUE_NUL at 20") != NULL);
        free(got);
    }
    /* error offsets point at the offending byte */
    EXPECT_PAD(REQ, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "ERROR HEADER_NAME_SPACE at 20");
    EXPECT_PAD(REQ, "GET / HTTP/1.1\r\nA: 1\r\nB: b\rc\r\n\r\n", "ERROR BARE_CR at 26");
}

TEST(lenient_bare_lf)
{
    http_options o;
    cfg c = REQ, r = RESP;
    memset(&o, 0, sizeof o);
    o.lenient_bare_lf = true;
    c.opts = r.opts = &o;
    EXPECT(c, "\nGET /x HTTP/1.1\nHost: a\nX: b \n\nGET /y HTTP/1.0\r\nA: b\n\r\n",
           "REQ m=1 'GET' '/x' form=1 v=1.1 ['Host':'a','X':'b',]");
    EXPECT(c, "GET /x HTTP/1.1\nHost: a\nX: b \n\nGET /y HTTP/1.0\r\nA: b\n\r\n", "'/y'");
    EXPECT(c, "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n5;e=1\nhello\n0\nT: 1\n\n",
           "BODY 'hello' trailers=1 ['T':'1',]");
    EXPECT(r, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "RESP 200 'OK'");
    /* still strict about bare CR */
    EXPECT_ERR(c, "GET / HTTP/1.1\nA: b\rc\n\n", HTTP_ERR_BARE_CR, 400);
    /* and the same inputs fail without the option */
    EXPECT_ERR(REQ, "GET /x HTTP/1.1\nHost: a\n\n", HTTP_ERR_BARE_LF, 400);
    EXPECT_ERR(RESP, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", HTTP_ERR_BARE_LF, 400);
}

/* ---- incremental use ------------------------------------------------------------ */

TEST(resume_is_linear)
{
    /* one byte per call over a 30 KB head costs about what one call costs */
    char *v = repeat('v', 30000);
    char *big = (char *)malloc(30100);
    http_msg_parser p;
    http_message m;
    http_header h[4];
    size_t n, i;
    int r = 0;
    double t0, t1, t2;
    snprintf(big, 30100, "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", v);
    n = strlen(big);
    t0 = test_now_ms();
    for (i = 0; i < 20; i++) {
        http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
        r = http_parse_head(&p, big, n, &m, h, 4);
    }
    CHECK_INT(r, ==, (int)n);
    t1 = test_now_ms();
    http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
    for (i = 1; i <= n; i++) {
        r = http_parse_head(&p, big, i, &m, h, 4);
        if (r != 0) break;
    }
    t2 = test_now_ms();
    CHECK_INT(r, ==, (int)n);
    CHECK_UINT(m.headers[1].value.len, ==, 30000);
    /* quadratic rescanning would take ~n/2 times one parse (15000x) */
    CHECK((t2 - t1) < 200 * ((t1 - t0) / 20) + 50);
    free(v);
    free(big);
}

TEST(views_follow_moved_buffer)
{
    /* the head arrives in three calls, each time in a new heap buffer; the
     * old one is freed (ASan would catch a stale view) */
    static const char full[] = "PUT /moved?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Long: 0123456789\r\n\r\n";
    size_t cuts[] = {9, 33, sizeof full - 1};
    http_msg_parser p;
    http_message m;
    http_header h[8];
    char *prev = NULL, *buf = NULL;
    int r = 0;
    size_t i;
    http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
    for (i = 0; i < 3; i++) {
        buf = (char *)malloc(cuts[i]);
        memcpy(buf, full, cuts[i]);
        free(prev);
        r = http_parse_head(&p, buf, cuts[i], &m, h, 8);
        prev = buf;
        if (i < 2) CHECK_INT(r, ==, 0);
    }
    CHECK_INT(r, ==, (int)sizeof full - 1);
    CHECK(m.method_name.ptr == buf && m.target.ptr == buf + 4);
    CHECK_MEM(m.target.ptr, m.target.len, "/moved?x=1");
    CHECK_MEM(h[0].value.ptr, h[0].value.len, "a.example");
    CHECK_MEM(h[1].name.ptr, h[1].name.len, "X-Long");
    CHECK_MEM(h[1].value.ptr, h[1].value.len, "0123456789");
    free(buf);
}

/* A chunked body of `total` bytes generated piece by piece into a 64 KiB
 * window: memory stays constant, every byte arrives once and in order. */
TEST(stream_100mib)
{
    enum { WIN = 65536 };
    static char win[WIN];
    http_msg_parser p;
    http_message m;
    http_header h[8];
    http_body b;
    const uint64_t total = (uint64_t)100 << 20;
    uint64_t sent = 0, got = 0, sum_in = 0, sum_out = 0;
    size_t have = 0;
    int r, done = 0, head_done = 0;
    const char head[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    memset(&b, 0, sizeof b);
    http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
    memcpy(win, head, sizeof head - 1);
    have = sizeof head - 1;
    while (!done) {
        /* produce: chunks of varying size while there is room */
        while (sent < total && WIN - have > 64 + 40000) {
            size_t n = 1000 + (size_t)(sent % 39000);
            char hdr[HTTP_CHUNK_HEADER_MAX];
            size_t hl;
            if (n > total - sent) n = (size_t)(total - sent);
            hl = http_chunk_header(hdr, n);
            memcpy(win + have, hdr, hl);
            have += hl;
            memset(win + have, (int)(sent % 251), n);
            sum_in += (uint64_t)n * (sent % 251);
            have += n;
            sent += n;
            memcpy(win + have, "\r\n", 2);
            have += 2;
        }
        if (sent == total && WIN - have > 16) {
            memcpy(win + have, "0\r\n\r\n", 5);
            have += 5;
            sent++; /* marks the end as written */
        }
        /* consume */
        if (!head_done) {
            r = http_parse_head(&p, win, have, &m, h, 8);
            REQUIRE_INT(r, >, 0);
            memmove(win, win + r, have - (size_t)r);
            have -= (size_t)r;
            head_done = 1;
        }
        for (;;) {
            r = http_parse_body(&p, win, have, &b);
            REQUIRE_INT(r, >=, 0);
            if (b.data.len) { /* a piece never spans two chunks */
                CHECK(b.data.ptr[0] == b.data.ptr[b.data.len - 1]);
                sum_out += (uint64_t)b.data.len * (unsigned char)b.data.ptr[0];
            }
            got += b.data.len;
            memmove(win, win + b.consumed, have - b.consumed);
            have -= b.consumed;
            if (r == 1) { done = 1; break; }
            if (b.consumed == 0) break;
        }
    }
    CHECK_UINT(got, ==, total);
    CHECK_UINT(sum_out, ==, sum_in);
    CHECK_UINT(have, ==, 0);
    /* a Content-Length body of 100 MiB through the same window */
    {
        char req[128];
        uint64_t left = total;
        int len = snprintf(req, sizeof req, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: %llu\r\n\r\n",
                           (unsigned long long)total);
        r = http_parse_head(&p, req, (size_t)len, &m, h, 8);
        CHECK_INT(r, ==, len);
        CHECK_INT(m.body, ==, HTTP_BODY_LENGTH);
        got = 0;
        memset(win, 'x', WIN);
        while (left > 0) {
            r = http_parse_body(&p, win, WIN, &b);
            REQUIRE_INT(r, >=, 0);
            got += b.data.len;
            left -= b.consumed;
            if (r == 1) break;
        }
        CHECK_UINT(got, ==, total);
        CHECK_INT(r, ==, 1);
        CHECK_UINT(b.consumed, ==, total % WIN ? (size_t)(total % WIN) : (size_t)WIN);
    }
}

TEST(body_piece_per_call)
{
    /* several chunks in one buffer come out one piece per call */
    static const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
    http_msg_parser p;
    http_message m;
    http_body b;
    const char *s = in;
    size_t len = sizeof in - 1;
    int r;
    memset(&b, 0, sizeof b);
    CHECK_INT(head1(&p, HTTP_KIND_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &m), >, 0);
    s = at_guard(in, len);
    r = http_parse_body(&p, s, len, &b);
    CHECK_INT(r, ==, 0);
    CHECK_MEM(b.data.ptr, b.data.len, "abc");
    CHECK_UINT(b.consumed, ==, 11); /* "3\r\nabc\r\n2\r\n": up to the next data */
    s += b.consumed;
    len -= b.consumed;
    r = http_parse_body(&p, s, len, &b);
    CHECK_INT(r, ==, 1);
    CHECK_MEM(b.data.ptr, b.data.len, "de");
    CHECK_MEM(s + b.consumed, len - b.consumed, "NEXT");
    /* no body in progress: 1 at once */
    CHECK_INT(http_parse_body(&p, "x", 1, &b), ==, 1);
    CHECK_UINT(b.consumed, ==, 0);
}

TEST(finish_and_errors_are_sticky)
{
    http_msg_parser p;
    http_message m;
    http_header h[4];
    http_body b;
    memset(&b, 0, sizeof b);
    http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
    CHECK_INT(http_parse_finish(&p), ==, 0);
    CHECK_INT(http_parse_head(&p, "GET / HT", 8, &m, h, 4), ==, 0);
    CHECK_INT(http_parse_finish(&p), ==, HTTP_ERR_INCOMPLETE);
    CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &m, h, 4), ==, HTTP_ERR_INCOMPLETE);
    http_parse_reset(&p);
    CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &m, h, 4), ==, 27);
    CHECK_INT(http_parse_finish(&p), ==, 0);
    CHECK_INT(http_parse_head(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc", 50, &m, h, 4), ==, 47);
    CHECK_INT(http_parse_body(&p, "abc", 3, &b), ==, 0);
    /* misuse: a head while a body is in progress */
    CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\n\r\n", 18, &m, h, 4), ==, -EINVAL);
    CHECK_INT(http_parse_finish(&p), ==, HTTP_ERR_INCOMPLETE);
    CHECK_INT(http_parse_body(&p, "abcdef", 6, &b), ==, HTTP_ERR_INCOMPLETE);
    /* an error stays until reset */
    http_parse_reset(&p);
    CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\nA : b\r\n\r\n", 25, &m, h, 4), ==, HTTP_ERR_HEADER_NAME_SPACE);
    CHECK_UINT(http_parse_error_offset(&p), ==, 17);
    CHECK_INT(http_parse_head(&p, "GET / HTTP/1.1\r\n\r\n", 18, &m, h, 4), ==, HTTP_ERR_HEADER_NAME_SPACE);
    CHECK_INT(http_parse_body(&p, "x", 1, &b), ==, HTTP_ERR_HEADER_NAME_SPACE);
    /* responses until close */
    http_parse_init(&p, HTTP_KIND_RESPONSE, NULL);
    CHECK_INT(http_parse_head(&p, "HTTP/1.1 200 OK\r\n\r\nab", 21, &m, h, 4), ==, 19);
    CHECK_INT(http_parse_body(&p, "ab", 2, &b), ==, 0);
    CHECK_MEM(b.data.ptr, b.data.len, "ab");
    CHECK_INT(http_parse_finish(&p), ==, 1);
    CHECK_INT(http_parse_finish(&p), ==, 0);
}

/* One body call can cover more than 4 GiB (a big chunk's data, then the
 * next size line): an error after it is reported at its full offset. The
 * buffer is a sparse mapping; the parser never reads chunk data. */
TEST(error_offset_past_4gib)
{
    const uint64_t data = (UINT64_C(5) << 30) + 3;
    static const char size_line[] = "140000003\r\n";
    static const char tails[][24] = {"X", "\r\n0\r\nX : 1\r\n\r\n"};
    static const int errs[] = {HTTP_ERR_CHUNK_CRLF, HTTP_ERR_HEADER_NAME_SPACE};
    static const size_t at[] = {0, 6};
    size_t len = sizeof size_line - 1 + (size_t)data + 32, k;
    char *buf;
    if (sizeof(size_t) < 8) SKIP("needs a 64-bit address space");
    buf = (char *)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    REQUIRE(buf != MAP_FAILED);
    memcpy(buf, size_line, sizeof size_line - 1);
    for (k = 0; k < 2; k++) {
        http_msg_parser p;
        http_message m;
        http_body b;
        size_t tail = sizeof size_line - 1 + (size_t)data, n = tail + strlen(tails[k]);
        memcpy(buf + tail, tails[k], strlen(tails[k]));
        memset(&b, 0, sizeof b);
        CHECK_INT(head1(&p, HTTP_KIND_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &m), >, 0);
        CHECK_INT(http_parse_body(&p, buf, n, &b), ==, errs[k]);
        CHECK_UINT(b.data.len, ==, data);
        CHECK_UINT(http_parse_error_offset(&p), ==, tail + at[k]);
    }
    munmap(buf, len);
}

TEST(parser_is_small)
{
    CHECK_UINT(sizeof(http_msg_parser), <=, 40);
}

/* ---- scanners: every byte value, every position, every SIMD level ---------------- */

TEST(scanners_agree)
{
    unsigned char buf[80];
    int lv, top = http_simd_limit(HTTP_SIMD_AVX2);
    unsigned c;
    size_t len, k;
    for (lv = top; lv >= HTTP_SIMD_NONE; lv--) {
        http_simd_limit(lv);
        for (c = 0; c < 256; c++) {
            for (len = 1; len <= 70; len += (len < 36 ? 1 : 11)) {
                for (k = 0; k < len; k += (k < 34 ? 1 : 5)) {
                    size_t exp_v, exp_t, exp_n;
                    memset(buf, 'a', sizeof buf);
                    buf[k] = (unsigned char)c;
                    exp_v = (http__cls[c] & HTTP__C_VALUE) ? len : k;
                    exp_t = (http__cls[c] & HTTP__C_TARGET) ? len : k;
                    exp_n = (http__cls[c] & HTTP__C_TCHAR) ? len : k;
                    if (http__scan_value(buf, 0, len) != exp_v ||
                        http__scan_target(buf, 0, len) != exp_t ||
                        http__scan_token(buf, 0, len) != exp_n) {
                        TEST__FAIL_HEAD();
                        fprintf(stderr, "level %d byte 0x%02x at %zu of %zu\n", lv, c, k, len);
                        http_simd_limit(HTTP_SIMD_AVX2);
                        return;
                    }
                }
            }
            /* classes match their definitions */
            CHECK(!!(http__cls[c] & HTTP__C_VALUE) == (c == 9 || (c >= 32 && c != 127)));
            CHECK(!!(http__cls[c] & HTTP__C_TARGET) == (c > 32 && c < 127 && c != '#'));
            CHECK(!!(http__cls[c] & HTTP__C_REGNAME) ==
                  (c < 128 && c != 0 && (isalnum((int)c) || strchr("-._~!$&'()*+,;=", (int)c))));
            CHECK(!!(http__cls[c] & HTTP__C_TCHAR) ==
                  (c < 128 && (strchr("!#$%&'*+-.^_`|~", (int)c) || (c >= '0' && c <= '9') ||
                               ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) && c != 0));
        }
    }
    http_simd_limit(HTTP_SIMD_AVX2);
    CHECK_INT(http_simd_limit(HTTP_SIMD_NONE), ==, HTTP_SIMD_NONE);
    CHECK_INT(http_simd_level(), ==, HTTP_SIMD_NONE);
    CHECK_INT(http_simd_limit(HTTP_SIMD_AVX2), ==, top);
}

/* The vector check of common Host values against the byte-by-byte one:
 * every byte value at every position of a reg-name and of a "name:port",
 * with the value at the end of the readable bytes or followed by a few,
 * at every SIMD level. */
TEST(host_check_agrees)
{
    static const size_t lens[] = {0, 1, 2, 3, 5, 8, 12, 15, 16, 17, 20, 24, 31, 32, 33, 40};
    int lv, top = http_simd_limit(HTTP_SIMD_AVX2);
    for (lv = top; lv >= HTTP_SIMD_NONE; lv--) {
        size_t li, form, k, extra;
        unsigned c;
        http_simd_limit(lv);
        for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li];
            for (form = 0; form < 2; form++) {
                for (extra = 0; extra <= 32; extra += 16) {
                    char v[80];
                    memset(v, 'a', sizeof v);
                    if (form && n >= 5) memcpy(v + n - 5, ":1234", 5);
                    memcpy(v + n, "\r\n\r\n", 4); /* (then more 'a') */
                    for (k = 0; k < n; k++) {
                        char orig = v[k];
                        for (c = 0; c < 256; c++) {
                            const unsigned char *s;
                            bool want, got;
                            v[k] = (char)c;
                            s = (const unsigned char *)at_guard(v, n + extra);
                            want = http__host_ok(s, n, 0);
                            got = http__host_value_ok(s, n, n + extra);
                            if (want != got) {
                                TEST__FAIL_HEAD();
                                fprintf(stderr, "level %d: \"%.*s\" (byte %u at %zu): %d, wanted %d\n",
                                        lv, (int)n, (const char *)s, c, k, got, want);
                                http_simd_limit(HTTP_SIMD_AVX2);
                                return;
                            }
                        }
                        v[k] = orig;
                    }
                }
            }
        }
    }
    http_simd_limit(HTTP_SIMD_AVX2);
}

/* The 64-byte block classifier of the field scanner against the class table:
 * every byte value at every position, random blocks, and http__blk_load's
 * shifted last block (bytes past the end count as stops, none is read), at
 * each SIMD level the CPU has. */
#if HTTP__X86
static void expect_block(const char *what, const unsigned char *b, size_t base, size_t end,
                         const http__blk *k)
{
    uint64_t v = 0, n = 0;
    size_t i;
    for (i = 0; i < 64; i++) {
        bool past = base + i >= end;
        if (past || !(http__cls[b[base + i]] & HTTP__C_VALUE)) v |= (uint64_t)1 << i;
        if (past || !(http__cls[b[base + i]] & HTTP__C_TCHAR)) n |= (uint64_t)1 << i;
    }
    if (k->v != v || k->n != n || k->base != base) {
        TEST__FAIL_HEAD();
        fprintf(stderr, "%s, base %zu end %zu: v %016llx n %016llx, wanted %016llx %016llx\n", what,
                base, end, (unsigned long long)k->v, (unsigned long long)k->n,
                (unsigned long long)v, (unsigned long long)n);
    }
}
#endif

TEST(block_masks_agree)
{
#if HTTP__X86
    static const struct { int level; const char *name; } levels[] = {
        {HTTP_SIMD_AVX2, "avx2"}, {HTTP_SIMD_SSE42, "sse4.2"}};
    unsigned char blk[64];
    size_t li, k, r, end, base;
    unsigned c;
    int tested = 0;
    __builtin_cpu_init();
    for (li = 0; li < 2; li++) {
        int lv = levels[li].level, fails = test__cur_failed;
        if (!(lv == HTTP_SIMD_AVX2 ? __builtin_cpu_supports("avx2") : __builtin_cpu_supports("sse4.2")))
            continue;
        tested++;
        for (c = 0; c < 256 && fails == test__cur_failed; c++) {
            for (k = 0; k < 64; k++) {
                http__blk m;
                memset(blk, 'a', sizeof blk);
                blk[k] = (unsigned char)c;
                if (lv == HTTP_SIMD_AVX2) http__masks_avx2(blk, &m);
                else http__masks_sse42(blk, &m);
                m.base = 0;
                expect_block(levels[li].name, blk, 0, 64, &m);
            }
        }
        for (r = 0; r < 2000 && fails == test__cur_failed; r++) {
            http__blk m;
            for (k = 0; k < 64; k++) blk[k] = (unsigned char)rng();
            if (lv == HTTP_SIMD_AVX2) http__masks_avx2(blk, &m);
            else http__masks_sse42(blk, &m);
            m.base = 0;
            expect_block(levels[li].name, blk, 0, 64, &m);
        }
        /* http__blk_load on a buffer that ends at an unreadable page: a full
         * block, and every shifted last block */
        for (end = 64; end <= 130 && fails == test__cur_failed; end++) {
            unsigned char src[130];
            const unsigned char *b;
            for (k = 0; k < end; k++) src[k] = (unsigned char)rng();
            b = (const unsigned char *)at_guard(src, end);
            for (base = 0; base < end; base++) {
                http__blk m;
                http__blk_load(&m, b, base, end, lv);
                expect_block(levels[li].name, b, base, end, &m);
            }
        }
    }
    if (!tested) SKIP("the CPU has neither SSE4.2 nor AVX2");
#else
    SKIP("no SIMD code in this build (not x86, or HTTP_NO_SIMD)");
#endif
}

/* ---- errors ------------------------------------------------------------------------ */

TEST(error_names)
{
    int e, s;
    const char *seen[64];
    int n = 0, i;
    for (e = HTTP_ERR_BAD_METHOD; e >= HTTP_ERR__LAST; e--) {
        const char *name = http_errname(e);
        CHECK(strcmp(name, "UNKNOWN") != 0);
        CHECK(strlen(http_strerror(e)) > 5);
        s = http_error_status(e);
        CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
        for (i = 0; i < n; i++) CHECK(strcmp(seen[i], name) != 0);
        seen[n++] = name;
    }
    CHECK_INT(n, ==, 32);
    CHECK_STR(http_errname(HTTP_ERR_BARE_LF), "BARE_LF");
    CHECK_STR(http_errname(HTTP_ERR_INCOMPLETE), "INCOMPLETE");
    CHECK_STR(http_errname(-EINVAL), "EINVAL");
    CHECK_STR(http_errname(-ENOBUFS), "ENOBUFS");
    CHECK_STR(http_errname(-9999), "UNKNOWN");
    CHECK_STR(http_errname(0), "OK");
    CHECK_STR(http_strerror(-EINVAL), "invalid argument");
    CHECK(strlen(http_strerror(-ENOENT)) > 0);
    CHECK_INT(http_error_status(HTTP_ERR_URI_TOO_LONG), ==, 414);
    CHECK_INT(http_error_status(HTTP_ERR_HEAD_TOO_LARGE), ==, 431);
    CHECK_INT(http_error_status(HTTP_ERR_TOO_MANY_HEADERS), ==, 431);
    CHECK_INT(http_error_status(HTTP_ERR_CHUNK_TOO_LARGE), ==, 413);
    CHECK_INT(http_error_status(HTTP_ERR_TE_UNSUPPORTED), ==, 501);
    CHECK_INT(http_error_status(HTTP_ERR_VERSION_NOT_SUPPORTED), ==, 505);
    CHECK_INT(http_error_status(-ENOMEM), ==, 500);
    CHECK_INT(http_error_status(0), ==, 0);
    CHECK_INT(http_error_status(12), ==, 0);
}

/* ---- helpers ----------------------------------------------------------------------- */

TEST(target_split)
{
    http_url u;
    CHECK_INT(http_parse_target("/a/b?c=d&e=f#frag", 17, &u), ==, 0);
    CHECK_MEM(u.path.ptr, u.path.len, "/a/b");
    CHECK_MEM(u.query.ptr, u.query.len, "c=d&e=f");
    CHECK_MEM(u.fragment.ptr, u.fragment.len, "frag");
    CHECK(u.scheme.ptr == NULL && u.authority.ptr == NULL);
    CHECK_INT(http_parse_target("/p", 2, &u), ==, 0);
    CHECK(u.query.ptr == NULL && u.fragment.ptr == NULL);
    CHECK_INT(http_parse_target("/p?", 3, &u), ==, 0);
    CHECK(u.query.ptr != NULL && u.query.len == 0);
    CHECK_INT(http_parse_target("/p#x?y", 6, &u), ==, 0);
    CHECK_MEM(u.path.ptr, u.path.len, "/p");
    CHECK(u.query.ptr == NULL);
    CHECK_MEM(u.fragment.ptr, u.fragment.len, "x?y");
    CHECK_INT(http_parse_target("http://u@h.example:8080/x/y?q#f", 31, &u), ==, 0);
    CHECK_MEM(u.scheme.ptr, u.scheme.len, "http");
    CHECK_MEM(u.authority.ptr, u.authority.len, "u@h.example:8080");
    CHECK_MEM(u.path.ptr, u.path.len, "/x/y");
    CHECK_MEM(u.query.ptr, u.query.len, "q");
    CHECK_MEM(u.fragment.ptr, u.fragment.len, "f");
    CHECK_INT(http_parse_target("https://h?q", 11, &u), ==, 0);
    CHECK_MEM(u.authority.ptr, u.authority.len, "h");
    CHECK_UINT(u.path.len, ==, 0);
    CHECK_MEM(u.query.ptr, u.query.len, "q");
    CHECK_INT(http_parse_target("h.example:443", 13, &u), ==, 0);
    CHECK_MEM(u.authority.ptr, u.authority.len, "h.example:443");
    CHECK(u.path.ptr == NULL);
    CHECK_INT(http_parse_target("*", 1, &u), ==, 0);
    CHECK_MEM(u.path.ptr, u.path.len, "*");
    CHECK_INT(http_parse_target("", 0, &u), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_parse_target("nocolon", 7, &u), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_parse_target("1x://h/", 7, &u), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_parse_target(":80", 3, &u), ==, HTTP_ERR_BAD_TARGET);
}

TEST(query_iteration)
{
    static const char q[] = "?a=1&&b=&c&d=x=y&=z&";
    const char *want[][2] = {{"a", "1"}, {"b", ""}, {"c", NULL}, {"d", "x=y"}, {"", "z"}};
    http_query_iter it;
    http_str k, v;
    int i = 0;
    http_query_init(&it, q, sizeof q - 1);
    while (http_query_next(&it, &k, &v)) {
        REQUIRE_INT(i, <, 5);
        CHECK_MEM(k.ptr, k.len, want[i][0]);
        if (want[i][1]) {
            CHECK(v.ptr != NULL);
            CHECK_MEM(v.ptr, v.len, want[i][1]);
        } else {
            CHECK(v.ptr == NULL && v.len == 0);
        }
        i++;
    }
    CHECK_INT(i, ==, 5);
    CHECK_INT(http_query_next(&it, &k, &v), ==, 0);
    http_query_init(&it, "", 0);
    CHECK_INT(http_query_next(&it, &k, &v), ==, 0);
}

TEST(percent_decoding)
{
    char out[64], in[64];
    ptrdiff_t n;
    n = http_percent_decode(out, sizeof out, "a%20b%2Fc%2fd+e", 15, 0);
    CHECK_INT(n, ==, 9);
    CHECK_MEM(out, (size_t)n, "a b/c/d+e");
    n = http_percent_decode(out, sizeof out, "a+b%2B", 6, HTTP_DECODE_PLUS);
    CHECK_MEM(out, (size_t)n, "a b+");
    n = http_percent_decode(out, sizeof out, "%00%ff%C3%A9", 12, 0);
    CHECK_INT(n, ==, 4);
    CHECK(memcmp(out, "\0\xff\xc3\xa9", 4) == 0);
    /* in place */
    strcpy(in, "%41%42c%44");
    n = http_percent_decode(in, sizeof in, in, strlen(in), 0);
    CHECK_MEM(in, (size_t)n, "ABcD");
    CHECK_INT(http_percent_decode(out, sizeof out, "%", 1, 0), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_percent_decode(out, sizeof out, "ab%4", 4, 0), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_percent_decode(out, sizeof out, "%zz", 3, 0), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_percent_decode(out, sizeof out, "%4g", 3, 0), ==, HTTP_ERR_BAD_TARGET);
    CHECK_INT(http_percent_decode(out, 2, "abc", 3, 0), ==, -ENOBUFS);
    CHECK_INT(http_percent_decode(out, 2, "%41%42", 6, 0), ==, 2);
    CHECK_INT(http_percent_decode(out, 0, "", 0, 0), ==, 0);
}

TEST(header_lookup)
{
    http_msg_parser p;
    http_message m;
    const http_header *h;
    const http_str *v;
    int n = 0;
    CHECK_INT(head1(&p, HTTP_KIND_REQUEST,
                    "GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\nACCEPT: y\r\naccept-x: z\r\n"
                    "Connection: keep-alive,  Upgrade ,x\r\n\r\n", &m), >, 0);
    v = http_header_get(&m, "host");
    REQUIRE(v != NULL);
    CHECK_MEM(v->ptr, v->len, "a");
    CHECK(http_header_get(&m, "hos") == NULL);
    CHECK(http_header_get(&m, "hostx") == NULL);
    for (h = NULL; (h = http_header_find(m.headers, m.num_headers, "Accept", h)) != NULL;) {
        CHECK_MEM(h->value.ptr, h->value.len, n == 0 ? "x" : "y");
        n++;
    }
    CHECK_INT(n, ==, 2);
    v = http_header_get(&m, "CONNECTION");
    REQUIRE(v != NULL);
    CHECK(http_list_has(*v, "upgrade"));
    CHECK(http_list_has(*v, "Keep-Alive"));
    CHECK(http_list_has(*v, "x"));
    CHECK(!http_list_has(*v, "keep"));
    CHECK(!http_list_has(*v, ""));
    {
        http_str s = {"Hello", 5}, e = {"", 0};
        CHECK(http_str_ieq(s, "hELLO"));
        CHECK(!http_str_ieq(s, "hell"));
        CHECK(!http_str_ieq(s, "hello!"));
        CHECK(http_str_ieq(e, ""));
    }
}

TEST(reason_phrases)
{
    static const int codes[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208,
                                226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
                                404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
                                417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500,
                                501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        CHECK(strlen(http_status_reason(codes[i])) > 1);
    CHECK_STR(http_status_reason(200), "OK");
    CHECK_STR(http_status_reason(404), "Not Found");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_reason(299), "");
    CHECK_STR(http_status_reason(-1), "");
}

/* ---- serializer ------------------------------------------------------------------- */

TEST(format_response_head)
{
    const http_header h[] = {{{"Content-Type", 12}, {"text/plain", 10}},
                             {{"Content-Length", 14}, {"5", 1}},
                             {{"X-Empty", 7}, {"", 0}}};
    static const char want[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Empty: \r\n\r\n";
    char buf[256], *g;
    ptrdiff_t n = http_format_response(buf, sizeof buf, 200, NULL, h, 3);
    size_t k;
    CHECK_INT(n, ==, (ptrdiff_t)sizeof want - 1);
    CHECK_MEM(buf, (size_t)n, want);
    n = http_format_response(buf, sizeof buf, 799, "Custom Thing", NULL, 0);
    CHECK_MEM(buf, (size_t)n, "HTTP/1.1 799 Custom Thing\r\n\r\n");
    n = http_format_response(buf, sizeof buf, 299, NULL, NULL, 0);
    CHECK_MEM(buf, (size_t)n, "HTTP/1.1 299 \r\n\r\n");
    /* too small: the needed length, and nothing written past cap (the buffer
     * ends at an unreadable page) */
    for (k = 0; k < sizeof want; k++) {
        g = (char *)at_guard(want, k) ; /* k bytes right before the guard page */
        n = http_format_response(g, k, 200, NULL, h, 3);
        CHECK_INT(n, ==, (ptrdiff_t)sizeof want - 1);
        if (k == sizeof want - 1) CHECK_MEM(g, k, want);
    }
    /* what would corrupt the stream is refused */
    {
        http_header bad[] = {{{"X", 1}, {"a\r\nInjected: 1", 14}}};
        http_header bad2[] = {{{"X Y", 3}, {"a", 1}}};
        http_header bad3[] = {{{"", 0}, {"a", 1}}};
        http_header bad4[] = {{{"X", 1}, {"a\0b", 3}}};
        CHECK_INT(http_format_response(buf, sizeof buf, 200, NULL, bad, 1), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 200, NULL, bad2, 1), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 200, NULL, bad3, 1), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 200, NULL, bad4, 1), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 99, NULL, NULL, 0), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 1000, NULL, NULL, 0), ==, -EINVAL);
        CHECK_INT(http_format_response(buf, sizeof buf, 200, "O\nK", NULL, 0), ==, -EINVAL);
    }
    /* what we write, we parse back */
    {
        http_msg_parser p;
        http_message m;
        n = http_format_response(buf, sizeof buf, 200, NULL, h, 3);
        memcpy(buf + n, "hello", 5);
        http_parse_init(&p, HTTP_KIND_RESPONSE, NULL);
        CHECK_INT(http_parse_head(&p, buf, (size_t)n + 5, &m, hh, 8), ==, n);
        CHECK_INT(m.status, ==, 200);
        CHECK_UINT(m.content_length, ==, 5);
        CHECK_UINT(m.num_headers, ==, 3);
    }
}

TEST(format_request_head)
{
    const http_header h[] = {{{"Host", 4}, {"example.com", 11}}};
    char buf[128];
    ptrdiff_t n = http_format_request(buf, sizeof buf, "GET", "/a?b=1", h, 1);
    CHECK_MEM(buf, (size_t)n, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK_INT(http_format_request(buf, 4, "GET", "/a?b=1", h, 1), ==, n);
    CHECK_INT(http_format_request(buf, sizeof buf, "G T", "/", NULL, 0), ==, -EINVAL);
    CHECK_INT(http_format_request(buf, sizeof buf, "GET", "/a b", NULL, 0), ==, -EINVAL);
    CHECK_INT(http_format_request(buf, sizeof buf, "GET", "", NULL, 0), ==, -EINVAL);
    CHECK_INT(http_format_request(buf, sizeof buf, "", "/", NULL, 0), ==, -EINVAL);
}

TEST(response_iovecs)
{
    const http_header h[] = {{{"A", 1}, {"1", 1}}, {{"Bb", 2}, {"two", 3}}};
    struct iovec iov[16];
    char line[64], joined[256], flat[256];
    size_t len = 0;
    int i, k = http_response_iov(iov, 16, line, sizeof line, 404, NULL, h, 2);
    ptrdiff_t n = http_format_response(flat, sizeof flat, 404, NULL, h, 2);
    CHECK_INT(k, ==, 10);
    for (i = 0; i < k; i++) {
        memcpy(joined + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    CHECK_UINT(len, ==, (size_t)n);
    CHECK(memcmp(joined, flat, len) == 0);
    CHECK_INT(http_response_iov(iov, 9, line, sizeof line, 404, NULL, h, 2), ==, -ENOBUFS);
    CHECK_INT(http_response_iov(iov, 16, line, 20, 404, NULL, h, 2), ==, -ENOBUFS);
    CHECK_INT(http_response_iov(iov, 16, line, sizeof line, 404, "a\rb", h, 2), ==, -EINVAL);
    CHECK_INT(http_response_iov(iov, 2, line, sizeof line, 204, NULL, NULL, 0), ==, 2);
}

TEST(chunked_encoder)
{
    char hdr[HTTP_CHUNK_HEADER_MAX], buf[256], stream[512];
    struct iovec iov[3];
    const http_header tr[] = {{{"X-Sum", 5}, {"9", 1}}};
    size_t len = 0;
    int i;
    ptrdiff_t n;
    CHECK_UINT(http_chunk_header(hdr, 0), ==, 3);
    CHECK_STR(hdr, "0\r\n");
    http_chunk_header(hdr, 0x1a2b);
    CHECK_STR(hdr, "1a2b\r\n");
    CHECK_UINT(http_chunk_header(hdr, UINT64_MAX), ==, 18);
    CHECK_STR(hdr, "ffffffffffffffff\r\n");
    http_chunk_header(hdr, 16);
    CHECK_STR(hdr, "10\r\n");
    CHECK_INT(http_chunk_iov(iov, hdr, "x", 0), ==, 0);
    /* encode "hello" + " world", trailers, and parse it back */
    len = (size_t)sprintf(stream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK_INT(http_chunk_iov(iov, hdr, "hello", 5), ==, 3);
    for (i = 0; i < 3; i++) { memcpy(stream + len, iov[i].iov_base, iov[i].iov_len); len += iov[i].iov_len; }
    CHECK_INT(http_chunk_iov(iov, hdr, " world", 6), ==, 3);
    for (i = 0; i < 3; i++) { memcpy(stream + len, iov[i].iov_base, iov[i].iov_len); len += iov[i].iov_len; }
    n = http_chunk_last(buf, sizeof buf, tr, 1);
    CHECK_MEM(buf, (size_t)n, "0\r\nX-Sum: 9\r\n\r\n");
    memcpy(stream + len, buf, (size_t)n);
    len += (size_t)n;
    {
        char *got = parse_all_ways(&RESP, stream, len);
        CHECK(strstr(got, "BODY 'hello world' trailers=1 ['X-Sum':'9',]") != NULL);
        free(got);
    }
    CHECK_INT(http_chunk_last(buf, 2, NULL, 0), ==, 5);
    CHECK_INT(http_chunk_last(buf, sizeof buf, NULL, 0), ==, 5);
    {
        http_header bad[] = {{{"X", 1}, {"\n", 1}}};
        CHECK_INT(http_chunk_last(buf, sizeof buf, bad, 1), ==, -EINVAL);
    }
}

TEST(uint_format)
{
    char b[HTTP_UINT_MAX_LEN];
    CHECK_UINT(http_format_uint(b, 0), ==, 1);
    CHECK_STR(b, "0");
    http_format_uint(b, 1234567890);
    CHECK_STR(b, "1234567890");
    CHECK_UINT(http_format_uint(b, UINT64_MAX), ==, 20);
    CHECK_STR(b, "18446744073709551615");
}

TEST(date_format)
{
    char d[HTTP_DATE_LEN + 1], ref[64];
    int64_t t;
    int i;
    CHECK_UINT(http_format_date(d, 0), ==, 29);
    CHECK_STR(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(d, 784111777);
    CHECK_STR(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(d, 951782400);
    CHECK_STR(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    http_format_date(d, INT64_C(4102444799));
    CHECK_STR(d, "Thu, 31 Dec 2099 23:59:59 GMT");
    http_format_date(d, INT64_C(253402300799));
    CHECK_STR(d, "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK_UINT(http_format_date(d, INT64_C(253402300800)), ==, 0);
    CHECK_UINT(http_format_date(d, -1), ==, 0);
    /* agrees with gmtime_r + strftime ("C" locale) on a sweep of times */
    for (i = 0, t = 0; i < 20000; i++, t += 7919 * 13 + (int64_t)(rng() % 86400)) {
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        strftime(ref, sizeof ref, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        http_format_date(d, t);
        if (strcmp(d, ref) != 0) {
            CHECK_STR(d, ref);
            break;
        }
    }
}

static void *date_thread(void *arg)
{
    int i, *bad = (int *)arg;
    char d[HTTP_DATE_LEN + 1];
    for (i = 0; i < 20000; i++) {
        if (http_date_now(d) != HTTP_DATE_LEN || strlen(d) != 29 || memcmp(d + 25, " GMT", 4) != 0 ||
            d[3] != ',')
            (*bad)++;
    }
    return NULL;
}

TEST(date_cache)
{
    char d[HTTP_DATE_LEN + 1], a[HTTP_DATE_LEN + 1], b[HTTP_DATE_LEN + 1];
    pthread_t th[4];
    int bad[4] = {0, 0, 0, 0}, i;
    time_t t0 = time(NULL);
    http_date_now(d);
    http_format_date(a, (int64_t)t0);
    http_format_date(b, (int64_t)t0 + 1);
    CHECK(strcmp(d, a) == 0 || strcmp(d, b) == 0);
    for (i = 0; i < 4; i++) pthread_create(&th[i], NULL, date_thread, &bad[i]);
    for (i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (i = 0; i < 4; i++) CHECK_INT(bad[i], ==, 0);
}

int main(void)
{
    RUN(methods);
    RUN(target_forms);
    RUN(versions);
    RUN(leading_empty_lines);
    RUN(status_lines);
    RUN(reason_nul);
    RUN(bodies);
    RUN(pipelined);
    RUN(keep_alive);
    RUN(upgrade_and_connect);
    RUN(expect_continue);
    RUN(limit_request_line);
    RUN(limit_head);
    RUN(limit_headers);
    RUN(limit_chunks);
    RUN(limit_trailers);
    RUN(framing_rules);
    RUN(chunk_rules);
    RUN(chunk_extensions);
    RUN(host_rules);
    RUN(field_rules);
    RUN(lenient_bare_lf);
    RUN(resume_is_linear);
    RUN(views_follow_moved_buffer);
    RUN(stream_100mib);
    RUN(body_piece_per_call);
    RUN(finish_and_errors_are_sticky);
    RUN(error_offset_past_4gib);
    RUN(parser_is_small);
    RUN(scanners_agree);
    RUN(block_masks_agree);
    RUN(host_check_agrees);
    RUN(error_names);
    RUN(target_split);
    RUN(query_iteration);
    RUN(percent_decoding);
    RUN(header_lookup);
    RUN(reason_phrases);
    RUN(format_response_head);
    RUN(format_request_head);
    RUN(response_iovecs);
    RUN(chunked_encoder);
    RUN(uint_format);
    RUN(date_format);
    RUN(date_cache);
    if (guard_base) munmap(guard_base, guard_size + (size_t)sysconf(_SC_PAGESIZE));
    return test_done();
}
