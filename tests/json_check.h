/* tests/json_check.h - a strict JSON validator for log lines: one object,
 * then '\n'. Used by tests/test_log.c and tests/fuzz/fuzz_log.c. It reads
 * NUL-terminated text: a NUL inside a line fails it, as it should. */
#ifndef TESTS_JSON_CHECK_H
#define TESTS_JSON_CHECK_H

#include <stdio.h>
#include <string.h>

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

static size_t js_utf8(const unsigned char *s)
{
    unsigned c = s[0];
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;
        if (c == 0xed && s[1] > 0x9f) return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;
        if (c == 0xf4 && s[1] > 0x8f) return 0;
        return 4;
    }
    return 0;
}

static const char *js_string(const char *p)
{
    if (*p++ != '"') return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            p++;
            if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else if (*p == 'u') {
                int i;
                for (i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 5;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            size_t k = js_utf8((const unsigned char *)p);
            if (!k) return NULL;
            p += k;
        } else {
            p++;
        }
    }
}

static const char *js_number(const char *p)
{
    if (*p == '-') p++;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *js_value(const char *p, int depth)
{
    p = js_ws(p);
    if (depth > 8) return NULL;
    if (*p == '"') return js_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = js_string(js_ws(p));
                if (!p) return NULL;
                p = js_ws(p);
                if (*p++ != ':') return NULL;
            }
            p = js_value(p, depth + 1);
            if (!p) return NULL;
            p = js_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return js_number(p);
}

/* 1 when [line, '\n'] is exactly one JSON object and its newline. */
static int json_line_ok(const char *line)
{
    const char *e;
    if (*line != '{') return 0;
    e = js_value(line, 0);
    return e && *e == '\n';
}

/* Validates every line of text; returns the count, or -1 at the first bad one. */
static int json_lines_ok(const char *text)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        if (!json_line_ok(p)) {
            fprintf(stderr, "bad JSON line: %.200s\n", p);
            return -1;
        }
        p = strchr(p, '\n') + 1;
        n++;
    }
    return n;
}

#endif
