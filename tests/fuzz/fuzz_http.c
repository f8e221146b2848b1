/* libFuzzer target for the http.h parser: ./build.sh fuzz http SECONDS.
 *
 * The first input byte picks the set-up (requests or responses, lenient bare
 * LF, a response to HEAD or CONNECT, small limits, few header slots, no
 * trailer array, lenient missing Host); the rest is the byte stream. The
 * stream is parsed in one piece at the best SIMD level, then split at points
 * derived from the input, then in one piece again with each lower level
 * (SSE4.2, scalar); each call gets its bytes in a fresh heap buffer of
 * exactly that size (ASan sees any read past the end, and any view kept
 * from an earlier call). The results (a hash of every message, view, body
 * byte and error) must agree.
 *
 * Seeds: tests/fuzz/corpus_http (smuggling cases among them); dictionary:
 * tests/fuzz/fuzz_http.dict (build.sh passes it when it exists). */
#define HTTP_IMPLEMENTATION
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct hash {
    uint64_t h;
} hash;

static void mix(hash *s, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) s->h = (s->h ^ b[i]) * 1099511628211ull;
    s->h = (s->h ^ n) * 1099511628211ull;
}

/* Body bytes: hashed as one stream, whatever the pieces. */
static void mix_body(hash *s, http_str v, const char *buf, size_t n)
{
    size_t i;
    if (v.len && (v.ptr < buf || v.ptr + v.len > buf + n)) abort();
    for (i = 0; i < v.len; i++) s->h = (s->h ^ (unsigned char)v.ptr[i]) * 1099511628211ull;
}

static void mix_int(hash *s, uint64_t v)
{
    mix(s, &v, sizeof v);
}

static void mix_view(hash *s, http_str v, const char *buf, size_t n)
{
    if (v.len && (v.ptr < buf || v.ptr + v.len > buf + n)) abort(); /* outside the call's buffer */
    mix(s, v.ptr, v.len);
}

static void mix_head(hash *s, const http_message *m, const char *buf, size_t n)
{
    size_t i;
    mix_int(s, 0x48454144);
    mix_int(s, (uint64_t)m->method);
    mix_view(s, m->method_name, buf, n);
    mix_view(s, m->target, buf, n);
    mix_int(s, (uint64_t)m->target_form);
    mix_int(s, (uint64_t)m->status);
    mix_view(s, m->reason, buf, n);
    mix_int(s, (uint64_t)(m->version_major * 10 + m->version_minor));
    mix_int(s, m->num_headers);
    for (i = 0; i < m->num_headers; i++) {
        mix_view(s, m->headers[i].name, buf, n);
        mix_view(s, m->headers[i].value, buf, n);
    }
    mix_int(s, (uint64_t)m->body);
    mix_int(s, m->content_length);
    mix_int(s, (uint64_t)(m->has_content_length | m->chunked << 1 | m->keep_alive << 2 |
                          m->upgrade << 3 | m->expect_continue << 4 | m->expect_unknown << 5 |
                          m->connection_close << 6 | m->connection_keep_alive << 7 |
                          m->connection_upgrade << 8 | m->other_codings << 9));
}

/* Parses data[0..len) in pieces ending at cuts[0..ncuts) and len. */
static uint64_t parse(unsigned setup, const uint8_t *data, size_t len, const size_t *cuts,
                      size_t ncuts)
{
    http_options o;
    http_msg_parser p;
    http_message m;
    http_header h[16], tr[4];
    http_body b;
    hash s = {14695981039346656037ull};
    size_t start = 0, k, maxh = (setup & 16) ? 3 : 16;
    http_method_id resp_to = (setup & 4) ? HTTP_METHOD_HEAD
                             : (setup & 8) ? HTTP_METHOD_CONNECT
                                           : HTTP_METHOD_GET;
    int in_body = 0, r, msgs = 0;
    http_kind kind = (setup & 1) ? HTTP_KIND_RESPONSE : HTTP_KIND_REQUEST;

    memset(&o, 0, sizeof o);
    o.lenient_bare_lf = (setup & 2) != 0;
    o.lenient_missing_host = (setup & 128) != 0;
    if (setup & 32) {
        o.max_head = 200;
        o.max_request_line = 60;
        o.max_headers = 6;
        o.max_chunk_digits = 3;
        o.max_chunk_ext = 10;
    }
    memset(&b, 0, sizeof b);
    b.trailers = (setup & 64) ? NULL : tr;
    b.trailers_cap = 4;
    http_parse_init(&p, kind, &o);
    http_parse_response_to(&p, resp_to);
    for (k = 0; k <= ncuts; k++) {
        size_t avail = k < ncuts ? cuts[k] : len;
        for (;;) {
            size_t n = avail - start;
            char *buf = (char *)malloc(n ? n : 1);
            if (!buf) abort();
            if (n) memcpy(buf, data + start, n);
            if (!in_body) {
                r = http_parse_head(&p, buf, n, &m, h, maxh);
                if (r < 0 || r == 0) {
                    free(buf);
                    if (r < 0) goto fail;
                    break;
                }
                if ((size_t)r > n) abort();
                mix_head(&s, &m, buf, n);
                start += (size_t)r;
                free(buf);
                if (++msgs > 1000) goto done;
                if (m.body != HTTP_BODY_NONE) in_body = 1;
                else if (m.upgrade) goto done;
                if (kind == HTTP_KIND_RESPONSE && m.status >= 200)
                    http_parse_response_to(&p, resp_to);
            } else {
                r = http_parse_body(&p, buf, n, &b);
                mix_body(&s, b.data, buf, n); /* also on an error: bytes before it */
                if (r < 0) {
                    free(buf);
                    goto fail;
                }
                if (b.consumed > n) abort();
                start += b.consumed;
                if (r == 1) {
                    size_t i;
                    mix_int(&s, b.num_trailers);
                    for (i = 0; i < b.num_trailers; i++) {
                        mix_view(&s, tr[i].name, buf, n);
                        mix_view(&s, tr[i].value, buf, n);
                    }
                    in_body = 0;
                    free(buf);
                    if (m.upgrade) goto done;
                    continue;
                }
                free(buf);
                if (b.consumed == 0) break;
            }
        }
    }
    r = http_parse_finish(&p);
    if (r < 0) goto fail;
    mix_int(&s, (uint64_t)r);
done:
    mix_int(&s, len - start);
    return s.h;
fail:
    if (http_error_status(r) < 400 || !http_errname(r) || !http_strerror(r)) abort();
    mix_int(&s, (uint64_t)(int64_t)r);
    mix_int(&s, start + http_parse_error_offset(&p));
    return s.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cuts[8], n = 0, i;
    uint64_t whole, split, x;
    unsigned setup;
    int top, lv;
    if (size < 1) return 0;
    setup = data[0];
    data++;
    size--;
    top = http_simd_limit(HTTP_SIMD_AVX2);
    whole = parse(setup, data, size, NULL, 0);
    /* split points from the input itself, so a crash reproduces */
    x = size * 0x9e3779b97f4a7c15ull + setup;
    for (i = 0; i < size && i < 64; i++) x = (x ^ data[i]) * 0x100000001b3ull;
    if (size > 1) {
        n = 1 + (size_t)(x % 7);
        for (i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            cuts[i] = 1 + (size_t)((x >> 33) % (size - 1));
        }
        for (i = 1; i < n; i++) { /* sort */
            size_t v = cuts[i], j = i;
            while (j > 0 && cuts[j - 1] > v) { cuts[j] = cuts[j - 1]; j--; }
            cuts[j] = v;
        }
    }
    split = parse(setup, data, size, cuts, n);
    if (split != whole) abort(); /* a split changed the result */
    for (lv = top - 1; lv >= HTTP_SIMD_NONE; lv--) { /* SSE4.2 (under AVX2), scalar */
        uint64_t other;
        http_simd_limit(lv);
        other = parse(setup, data, size, NULL, 0);
        http_simd_limit(HTTP_SIMD_AVX2);
        if (other != whole) abort(); /* two SIMD levels disagree */
    }
    return 0;
}
