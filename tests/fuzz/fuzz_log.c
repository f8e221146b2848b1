/* libFuzzer target for log.h's formats: ./build.sh fuzz log SECONDS.
 *
 * Byte 0 picks the format (JSON, pino, logfmt, pretty), a small max_line
 * (512: lines get truncated), a child logger whose bound fields come from
 * the input, a name and a hostname from the input, and the printf-style
 * call. The rest is a message and then fields, each a type byte, a key and
 * a value (strings of any bytes: NUL, controls, DEL, C1, invalid UTF-8;
 * numbers from raw bytes: NaN, infinities, extremes).
 *
 * Checked on every line the callback sink gets (log.h's section 5): one
 * call, one line, ending in its only '\n'; no longer than max_line; JSON
 * and pino lines are exactly one strict JSON object (tests/json_check.h:
 * valid UTF-8, escapes, numbers) with no raw DEL; logfmt and pretty lines hold no control
 * character, DEL or C1 control and are valid UTF-8; and a message of plain
 * printable ASCII appears in the line as it is (unless truncated). */
#define _POSIX_C_SOURCE 200809L
#define LOG_IMPLEMENTATION
#include "log.h"
#include "../json_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { /* byte 0 */
    CFG_FORMAT = 3,   /* LOG_FORMAT_JSON, _PINO, _LOGFMT, _PRETTY */
    CFG_SHORT = 4,    /* max_line 512 */
    CFG_CHILD = 8,    /* log through a child with bound fields */
    CFG_NAME = 16,    /* log_options.name from the input */
    CFG_HOST = 32,    /* log_options.hostname from the input */
    CFG_PRINTF = 64   /* log_writef("%s", msg) instead of log_writen */
};

#define MAX_FIELDS 12

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static size_t take(reader *r, size_t want, const uint8_t **out)
{
    size_t n = (size_t)(r->end - r->p);
    if (want < n)
        n = want;
    *out = r->p;
    r->p += n;
    return n;
}

static unsigned byte(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* A string: a length byte, then that many bytes (fewer at the end). */
static size_t string(reader *r, const char **s)
{
    const uint8_t *b;
    size_t n = take(r, byte(r), &b);
    *s = (const char *)b;
    return n;
}

static uint64_t u64(reader *r)
{
    const uint8_t *b;
    uint64_t v = 0;
    size_t n = take(r, 8, &b);
    memcpy(&v, b, n);
    return v;
}

static size_t fields(reader *r, log_field *f, size_t cap)
{
    size_t n = 0;
    while (n < cap && r->p < r->end) {
        log_field *x = &f[n];
        const char *k;
        size_t klen;
        memset(x, 0, sizeof *x);
        x->type = LOG_FIELD_STR + (int)(byte(r) % 6);
        klen = string(r, &k);
        if (!klen)
            continue; /* a key is required */
        x->key = k;
        x->klen = (unsigned)klen;
        switch (x->type) {
        case LOG_FIELD_STR:
            x->len = string(r, &x->v.s);
            break;
        case LOG_FIELD_INT:
            x->v.i = (long long)u64(r);
            break;
        case LOG_FIELD_UINT:
            x->v.u = u64(r);
            break;
        case LOG_FIELD_FLOAT: {
            uint64_t bits = u64(r);
            memcpy(&x->v.f, &bits, sizeof x->v.f);
            break;
        }
        case LOG_FIELD_BOOL:
            x->v.b = (int)byte(r);
            break;
        default:
            break;
        }
        n++;
    }
    return n;
}

static struct {
    unsigned cfg;
    size_t max_line, lines;
    const char *msg;
    size_t msglen;
} F;

static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char z[4] = {0, 0, 0, 0};
    memcpy(z, s, left < 4 ? left : 4);
    return js_utf8(z);
}

static void check_text_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len - 1) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            abort(); /* a control character left raw */
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c == 0xc2 && i + 1 < len - 1 && (unsigned char)line[i + 1] >= 0x80 &&
            (unsigned char)line[i + 1] <= 0x9f)
            abort(); /* a C1 control left raw */
        if (!utf8_len((const unsigned char *)line + i, len - 1 - i))
            abort(); /* invalid UTF-8 */
        i += utf8_len((const unsigned char *)line + i, len - 1 - i);
    }
}

static int plain(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' || s[i] == '=')
            return 0;
    return n > 0;
}

static void on_line(void *ud, int level, const char *line, size_t len)
{
    char *copy;
    int format = (int)(F.cfg & CFG_FORMAT);
    (void)ud;
    (void)level;
    F.lines++;
    if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
        abort(); /* not exactly one line */
    if (len > F.max_line)
        abort();
    if (format == LOG_FORMAT_JSON || format == LOG_FORMAT_PINO) {
        copy = (char *)malloc(len + 1);
        if (!copy)
            abort();
        memcpy(copy, line, len);
        copy[len] = 0;
        if (memchr(line, 0, len) || json_lines_ok(copy) != 1)
            abort();
        if (memchr(line, 0x7f, len))
            abort(); /* DEL is written \u007f */
        free(copy);
    } else {
        check_text_line(line, len);
    }
    /* a plain message is written as it is (when the line was not cut) */
    if (plain(F.msg, F.msglen) && len + 64 < F.max_line) {
        size_t i;
        for (i = 0; i + F.msglen <= len; i++)
            if (memcmp(line + i, F.msg, F.msglen) == 0)
                return;
        abort();
    }
}

/* The names log_create takes (section 3): at most 64 bytes, without C0,
 * DEL, C1, '"' or '\\'. */
static int name_ok(const char *name)
{
    size_t i, n = name ? strlen(name) : 0;
    if (n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
            (c == 0xc2 && (unsigned char)name[i + 1] >= 0x80 && (unsigned char)name[i + 1] <= 0x9f))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r;
    log_options o;
    log_sink sink;
    log_logger *lg, *child = NULL, *use;
    log_field bound[4], f[MAX_FIELDS];
    size_t nbound = 0, nf, len;
    const char *name = NULL, *host = NULL;
    char namebuf[65], hostbuf[256];
    if (size < 1)
        return 0;
    r.p = data + 1;
    r.end = data + size;
    memset(&F, 0, sizeof F);
    F.cfg = data[0];
    F.max_line = (F.cfg & CFG_SHORT) ? 512 : 16384;

    if (F.cfg & CFG_NAME) { /* NUL-terminated: at most 64 bytes, any others */
        len = string(&r, &name) % 65;
        memcpy(namebuf, name, len);
        namebuf[len] = 0;
        name = namebuf;
    }
    if (F.cfg & CFG_HOST) {
        len = string(&r, &host);
        memcpy(hostbuf, host, len);
        hostbuf[len] = 0;
        host = hostbuf;
    }
    if (F.cfg & CFG_CHILD)
        nbound = fields(&r, bound, 1 + byte(&r) % 4);
    F.msglen = string(&r, &F.msg);
    nf = fields(&r, f, MAX_FIELDS);

    memset(&sink, 0, sizeof sink);
    sink.kind = LOG_SINK_CALLBACK;
    sink.format = (int)(F.cfg & CFG_FORMAT);
    sink.color = LOG_COLOR_NEVER;
    sink.callback = on_line;
    memset(&o, 0, sizeof o);
    o.level = LOG_LEVEL_TRACE;
    o.level_env = "";
    o.name = name;
    o.hostname = host ? host : "fuzz";
    o.sinks = &sink;
    o.nsinks = 1;
    o.max_line = F.max_line;
    o.no_atexit = 1;
    if (log_create(&lg, &o) != 0) {
        if (name_ok(name))
            abort(); /* the only option that can be refused is the name */
        return 0;
    }
    if (!name_ok(name))
        abort(); /* a name that would break a line was accepted */
    use = lg;
    if ((F.cfg & CFG_CHILD) && log_child(lg, &child, bound, nbound) == 0)
        use = child;
    if (F.cfg & CFG_PRINTF) {
        char m[256];
        memcpy(m, F.msg, F.msglen);
        m[F.msglen] = 0; /* the message ends at its first NUL here */
        F.msglen = strlen(m);
        log_writef(use, LOG_LEVEL_INFO, f, nf, "%s", m);
    } else {
        log_writen(use, LOG_LEVEL_WARN, F.msg, F.msglen, f, nf);
    }
    if (F.lines != 1)
        abort(); /* one call, one line */
    if (child)
        log_destroy(child);
    log_destroy(lg);
    return 0;
}
