/* http_dump - reads one raw HTTP/1.1 byte stream on stdin and prints one JSON
 * object per message found, so the parser can be checked against other test
 * suites from outside.
 *
 *   cc -O2 -I.. http_dump.c -o http_dump
 *   printf 'GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n' | ./http_dump --request
 *   {"method":"GET","target":"/a?b=1","version":"1.1","headers":[["Host","x"]],
 *    "body":"","keep_alive":true,"upgrade":false}
 *
 * Options: --request (default) or --response; --head (with --response only:
 * the responses answer HEAD requests, so they have no bodies); --lenient
 * (accept a lone LF as a line ending); --lenient-host (accept an HTTP/1.1
 * request without Host). At most 256 header fields per head, and 256
 * trailer fields per chunked body.
 *
 * Chunked bodies are printed decoded, with "trailers":[[name,value],...].
 * Bytes that are not printable ASCII, and '"' and '\', are escaped: \u00XX
 * with upper-case hex digits ("caf\u00C3\u00A9"), \" and \\. On an error it
 * prints {"error":"NAME","status":400,"offset":N} (N: offset in the stream of
 * the offending byte, or the stream's length when it ended inside a message)
 * and nothing after it, and exits with status 1 (2: a usage or read error).
 * After a message that upgrades the connection (CONNECT, Upgrade, 101) the
 * rest is not HTTP: it stops there.
 *
 * The stream is read in pieces as they come, as a server would: the head is
 * parsed from the unconsumed bytes each time more arrive.
 *
 * The program is http_dump_run() and a main() that calls it on stdin and
 * stdout; tests/test_http_dump.c compiles this file with HTTP_DUMP_NO_MAIN
 * and calls http_dump_run() itself.
 */
#define HTTP_IMPLEMENTATION
#include "../http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_FIELDS = 256 }; /* of a head, and of a trailer section */

/* A growable byte buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (n == 0) return; /* (s and b->p may be NULL then) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n) cap *= 2;
        b->p = (char *)realloc(b->p, cap);
        if (!b->p) {
            fputs("http_dump: out of memory\n", stderr);
            exit(2);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void out_s(buf *o, const char *s)
{
    buf_add(o, s, strlen(s));
}

static void json_str(buf *o, const char *s, size_t n)
{
    size_t i;
    char esc[8];
    out_s(o, "\"");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_add(o, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            buf_add(o, (const char *)&c, 1);
        } else {
            snprintf(esc, sizeof esc, "\\u%04X", c);
            buf_add(o, esc, 6);
        }
    }
    out_s(o, "\"");
}

static void json_fields(buf *o, const http_header *h, size_t n)
{
    size_t i;
    out_s(o, "[");
    for (i = 0; i < n; i++) {
        out_s(o, i ? ",[" : "[");
        json_str(o, h[i].name.ptr, h[i].name.len);
        out_s(o, ",");
        json_str(o, h[i].value.ptr, h[i].value.len);
        out_s(o, "]");
    }
    out_s(o, "]");
}

/* The head's part of the object (without the closing brace). It is written
 * as soon as the head is parsed: its views point into bytes that later reads
 * move. */
static void head_json(buf *o, const http_message *m, http_kind kind)
{
    char num[64];
    o->len = 0;
    if (kind == HTTP_KIND_REQUEST) {
        out_s(o, "{\"method\":");
        json_str(o, m->method_name.ptr, m->method_name.len);
        out_s(o, ",\"target\":");
        json_str(o, m->target.ptr, m->target.len);
    } else {
        snprintf(num, sizeof num, "{\"status\":%d,\"reason\":", m->status);
        out_s(o, num);
        json_str(o, m->reason.ptr, m->reason.len);
    }
    snprintf(num, sizeof num, ",\"version\":\"%d.%d\",\"headers\":", m->version_major,
             m->version_minor);
    out_s(o, num);
    json_fields(o, m->headers, m->num_headers);
}

/* Completes the object and prints the line. */
static void print_message(FILE *out, buf *o, const http_message *m, const buf *body,
                          const http_header *tr, size_t ntr)
{
    out_s(o, ",\"body\":");
    json_str(o, body->p, body->len);
    if (m->chunked) {
        out_s(o, ",\"trailers\":");
        json_fields(o, tr, ntr);
    }
    out_s(o, m->keep_alive ? ",\"keep_alive\":true" : ",\"keep_alive\":false");
    out_s(o, m->upgrade ? ",\"upgrade\":true}\n" : ",\"upgrade\":false}\n");
    fwrite(o->p, 1, o->len, out);
}

/* Prints the error line; returns the exit status that goes with it. */
static int print_error(FILE *out, int err, size_t offset)
{
    fprintf(out, "{\"error\":\"%s\",\"status\":%d,\"offset\":%zu}\n", http_errname(err),
            http_error_status(err), offset);
    return 1;
}

/* Reads the stream from fd and prints its messages to out, with the options
 * of argv[1..argc). Returns 0, 1 after a parse error (printed to out), or 2
 * for a usage or read error (on stderr). Frees all it allocates. */
static int http_dump_run(int argc, char **argv, int fd, FILE *out)
{
    http_kind kind = HTTP_KIND_REQUEST;
    http_options opts;
    http_msg_parser p;
    http_message m;
    http_header headers[MAX_FIELDS], trailers[MAX_FIELDS];
    http_body b;
    /* in: the unconsumed bytes (in.p[0..in.len)); base: their offset in the stream */
    buf in = {NULL, 0, 0}, body = {NULL, 0, 0}, line = {NULL, 0, 0};
    size_t base = 0;
    char chunk[65536];
    bool head_only = false, in_body = false, eof = false;
    int i, r, rc = 0;

    memset(&opts, 0, sizeof opts);
    opts.max_headers = MAX_FIELDS;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--request") == 0) kind = HTTP_KIND_REQUEST;
        else if (strcmp(argv[i], "--response") == 0) kind = HTTP_KIND_RESPONSE;
        else if (strcmp(argv[i], "--head") == 0) head_only = true;
        else if (strcmp(argv[i], "--lenient") == 0) opts.lenient_bare_lf = true;
        else if (strcmp(argv[i], "--lenient-host") == 0) opts.lenient_missing_host = true;
        else break;
    }
    if (i < argc || (head_only && kind != HTTP_KIND_RESPONSE)) {
        fprintf(stderr,
                "usage: %s [--request | --response [--head]] [--lenient] [--lenient-host] "
                "< stream\n",
                argc > 0 ? argv[0] : "http_dump");
        return 2;
    }
    http_parse_init(&p, kind, &opts);
    if (head_only) http_parse_response_to(&p, HTTP_METHOD_HEAD);
    memset(&b, 0, sizeof b);
    b.trailers = trailers;
    b.trailers_cap = MAX_FIELDS;

    while (!eof) {
        size_t off = 0;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            perror("http_dump: read");
            rc = 2;
            goto done;
        }
        if (n == 0) eof = true;
        else buf_add(&in, chunk, (size_t)n);

        /* parse what is there: heads, then body pieces, message after message */
        for (;;) {
            if (off == in.len) break; /* nothing to parse (and in.p may be NULL) */
            if (!in_body) {
                r = http_parse_head(&p, in.p + off, in.len - off, &m, headers, MAX_FIELDS);
                if (r < 0) {
                    rc = print_error(out, r, base + off + http_parse_error_offset(&p));
                    goto done;
                }
                if (r == 0) break;
                body.len = 0;
                head_json(&line, &m, kind);
                off += (size_t)r;
                if (m.body != HTTP_BODY_NONE) {
                    in_body = true;
                    continue;
                }
                print_message(out, &line, &m, &body, NULL, 0);
                if (m.upgrade) goto done;
                if (head_only && m.status >= 200) http_parse_response_to(&p, HTTP_METHOD_HEAD);
            } else {
                r = http_parse_body(&p, in.p + off, in.len - off, &b);
                if (r < 0) {
                    rc = print_error(out, r, base + off + http_parse_error_offset(&p));
                    goto done;
                }
                buf_add(&body, b.data.ptr, b.data.len);
                off += b.consumed;
                if (r == 1) {
                    print_message(out, &line, &m, &body, trailers, b.num_trailers);
                    in_body = false;
                    if (m.upgrade) goto done;
                    if (head_only && m.status >= 200) http_parse_response_to(&p, HTTP_METHOD_HEAD);
                    continue;
                }
                if (b.consumed == 0) break;
            }
        }
        /* drop what was consumed; keep the rest for the next read */
        if (off) memmove(in.p, in.p + off, in.len - off);
        in.len -= off;
        base += off;
    }

    r = http_parse_finish(&p);
    if (r < 0)
        rc = print_error(out, r, base + in.len);
    else if (r == 1)
        print_message(out, &line, &m, &body, NULL, 0);
done:
    free(in.p);
    free(body.p);
    free(line.p);
    return rc;
}

#ifndef HTTP_DUMP_NO_MAIN
int main(int argc, char **argv)
{
    return http_dump_run(argc, argv, 0, stdout);
}
#endif
