/* libFuzzer target for the http.h server: ./build.sh fuzz http_server SECONDS.
 *
 * One input is one client connection. Byte 0 picks the server's options
 * (buffered or streamed bodies, small limits, one request in flight) and
 * how the handler answers; the rest is what the client sends, written in
 * pieces cut at points derived from the input, one piece per loop
 * iteration, then a half-close: at once (requests still in the handler's
 * hands are aborted: the server's answer to a client that hangs up), or
 * two iterations later (answers given in a later iteration go out first).
 * The client reads until the server closes. The input's hash also picks
 * a limit of 3 requests per connection and a write high-water mark of 1
 * byte (every answer counts as much queued).
 *
 * The handler answers in one call, in chunks, or from a later loop
 * iteration (several requests pending at once), with a status taken from
 * the path (200, 204, 304, 404, 500), reads streamed bodies to their end or
 * leaves them unread, and accepts upgrades into a stream it writes to and
 * closes.
 *
 * Checked for every input: the connection ends without a timeout firing
 * (the options' timeouts are short and a guard timer aborts past them); the
 * server ends with no connection and no request left, and frees cleanly
 * (ASan/LSan see the rest); everything the client received parses as
 * responses, HEAD ones without a body, each final one answering the request
 * the handler saw in that place (same count, plus at most one error status
 * for the request that failed to parse), a 1xx only before the response of
 * a request that asked for 100-continue, nothing after the last response
 * but the bytes of an accepted upgrade.
 *
 * Seeds: tests/fuzz/corpus_http_server; dictionary: tests/fuzz/fuzz_http.dict
 * is shared through the symlink tests/fuzz/fuzz_http_server.dict. */
#define EVLOOP_IMPLEMENTATION
#include "evloop.h"
#define HTTP_IMPLEMENTATION
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SEEN 512     /* requests the handler records (more than fit in 4 KiB) */
#define MAX_OUT (1 << 20) /* response bytes the client keeps */
#define MAX_PENDING 32

enum { /* byte 0 */
    CFG_STREAM = 1,      /* stream_bodies */
    CFG_SMALL = 2,       /* small parser and body limits */
    CFG_ONE = 4,         /* max_pipelined 1 */
    CFG_LATER = 8,       /* answer in a later iteration */
    CFG_CHUNKS = 16,     /* answer with two writes and an end */
    CFG_NO_READ = 32,    /* streamed bodies: leave them unread */
    CFG_CLOSE_HDR = 64,  /* answers carry "Connection: close" */
    CFG_LENIENT = 128    /* lenient bare LF, missing Host */
};

enum { /* picked by the input's hash, as the split points are */
    EXTRA_FEW = 1,       /* max_requests_per_connection 3 */
    EXTRA_TINY_HWM = 2   /* write_high_water 1: every answer is "a lot queued" */
};

typedef struct seen {
    http_method_id method;
    int status;          /* what the handler answered */
    int expect_continue; /* and whether it asked for 100-continue */
    int upgrade;         /* answered by an upgrade */
    int state;           /* 0: reading its body, 1: answer pending, 2: answered */
    int aborted;         /* its connection went before the answer was out */
} seen;

static struct {
    unsigned cfg;
    evloop *loop;
    http_server *srv;
    evloop_stream client, upgraded;
    evloop_timer guard, step;
    int upgraded_open;
    const uint8_t *data;
    size_t size, sent, cuts[8], ncuts, cut;
    int waits;           /* loop iterations between the last piece and the half-close */
    unsigned extra;      /* more options, from the input's hash: EXTRA_ */
    char *out;
    size_t out_len;
    seen seen[MAX_SEEN];
    size_t nseen;
    http_req *pending[MAX_PENDING];
    size_t npending;
    int later_armed;
    int server_done;
    http_server_stats st;
} F;

/* ---- the handler ---- */

static int status_for(const http_req *req)
{
    static const int statuses[] = {200, 204, 304, 404, 500, 200, 200, 200};
    unsigned char c = req->path.len > 1 ? (unsigned char)req->path.ptr[1] : 0;
    return statuses[c % 8];
}

static void answer(http_req *req)
{
    seen *s = (seen *)req->data;
    int status = status_for(req);
    char body[80];
    size_t n = req->path.len < 64 ? req->path.len : 64;
    if (s && s->state == 2)
        return;
    if (s)
        s->state = 2;
    memcpy(body, "path=", 5);
    memcpy(body + 5, req->path.ptr, n);
    n += 5;
    if (F.cfg & CFG_CLOSE_HDR)
        (void)http_res_header(req, "Connection", "close");
    if (req->num_headers) /* a client's value, valid or not */
        (void)http_res_headern(req, "X-Echo", 6, req->headers[0].value.ptr,
                               req->headers[0].value.len);
    if (F.cfg & CFG_CHUNKS) {
        (void)http_res_status(req, status);
        (void)http_res_write(req, body, n / 2);
        (void)http_res_write(req, body + n / 2, n - n / 2);
        (void)http_res_end(req, "!", 1);
    } else {
        (void)http_res_send(req, status, "text/plain", body, n);
    }
}

static void answer_pending(evloop *loop, void *arg)
{
    size_t i, n = F.npending;
    (void)loop;
    (void)arg;
    F.later_armed = 0;
    F.npending = 0;
    for (i = 0; i < n; i++)
        answer(F.pending[i]);
}

static void answer_or_defer(http_req *req)
{
    seen *s = (seen *)req->data;
    if (s->state != 0)
        return; /* pending or answered already */
    if (!(F.cfg & CFG_LATER) || F.npending == MAX_PENDING) {
        answer(req);
        return;
    }
    s->state = 1;
    F.pending[F.npending++] = req;
    if (!F.later_armed && evloop_set_immediate(F.loop, answer_pending, NULL) == 0)
        F.later_armed = 1;
    if (!F.later_armed) /* no immediate: answer now rather than never */
        answer_pending(F.loop, NULL);
}

static void on_body(http_req *req, const char *data, size_t len)
{
    (void)req;
    if (len && !data)
        abort();
}

static void on_body_end(http_req *req, int status)
{
    (void)status; /* an error still needs an answer; the server closes after */
    answer_or_defer(req);
}

/* The connection went before the answer: the request must still be ended
 * (each http_res_ call now fails, and must fail cleanly). */
static void on_aborted(http_req *req)
{
    ((seen *)req->data)->aborted = 1;
    answer_or_defer(req);
}

static void upgraded_closed(evloop_handle *h)
{
    (void)h;
    F.upgraded_open = 0;
}

static void on_upgrade(http_req *req, evloop_stream *s, const char *data, size_t len)
{
    (void)req;
    (void)data;
    (void)len;
    (void)evloop_write_copy(s, "upgraded", 8, NULL, NULL);
    (void)evloop_shutdown(s, NULL);
    evloop_close(&s->handle, upgraded_closed);
}

static void handler(http_req *req)
{
    seen *s = F.nseen < MAX_SEEN ? &F.seen[F.nseen] : NULL;
    if (req->method_name.len == 0 || req->target.len == 0 || (req->body.len && !req->body.ptr))
        abort(); /* nothing half-parsed reaches a handler */
    F.nseen++;
    req->data = s;
    if (!s) { /* past what is recorded: answered at once */
        answer(req);
        return;
    }
    s->method = req->method;
    s->status = status_for(req);
    s->expect_continue = req->expect_continue;
    http_req_on_close(req, on_aborted);
    if (req->upgrade && !F.upgraded_open && (!(F.cfg & CFG_STREAM) || !req->has_content_length ||
                                             req->content_length == 0)) {
        evloop_unix_init(F.loop, &F.upgraded);
        if (http_res_upgrade(req, &F.upgraded, on_upgrade) == 0) {
            F.upgraded_open = 1;
            s->upgrade = 1;
            s->state = 2;
            return;
        }
        evloop_close(&F.upgraded.handle, NULL);
    }
    if ((F.cfg & CFG_STREAM) && !(F.cfg & CFG_NO_READ)) {
        if (http_req_read(req, on_body, on_body_end) == 0)
            return;
    }
    answer_or_defer(req);
}

/* ---- the client ---- */

static void on_server_done(http_server *srv)
{
    F.server_done = 1;
    http_server_get_stats(srv, &F.st);
    evloop_timer_stop(&F.guard);
}

static void client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0) {
        size_t k = (size_t)n;
        if (k > MAX_OUT - F.out_len)
            k = MAX_OUT - F.out_len;
        memcpy(F.out + F.out_len, buf, k);
        F.out_len += k;
        return;
    }
    /* the server closed (or reset) the connection: everything is in */
    evloop_close(&s->handle, NULL);
    evloop_timer_stop(&F.step);
    http_server_shutdown(F.srv, 0, on_server_done);
}

static void send_step(evloop_timer *t);

/* Sends the next piece; the next one waits for a later iteration, so the
 * server reads them apart. */
static void send_piece(void)
{
    size_t end = F.cut < F.ncuts ? F.cuts[F.cut] : F.size;
    if (end > F.sent) {
        if (evloop_write_copy(&F.client, F.data + F.sent, end - F.sent, NULL, NULL) != 0) {
            F.sent = F.size; /* the server closed first: stop sending */
            return;
        }
        F.sent = end;
    }
    if (F.cut < F.ncuts || F.waits > 0) {
        if (F.cut++ >= F.ncuts)
            F.waits--;
        evloop_timer_start(&F.step, send_step, 0, 0);
    } else {
        (void)evloop_shutdown(&F.client, NULL);
    }
}

static void send_step(evloop_timer *t)
{
    (void)t;
    send_piece();
}

static void on_connect(evloop_stream *s, int status)
{
    if (status != 0)
        abort();
    evloop_read_start(s, client_read);
    send_piece();
}

static void guard_fired(evloop_timer *t)
{
    (void)t;
    fprintf(stderr, "the connection did not end: a timeout did not fire, or the server hangs\n");
    abort();
}

/* ---- checking what came back ---- */

/* Prints what the client received, escaped, and fails the input. */
static void fail(const char *what, size_t index, size_t at)
{
    size_t i;
    fprintf(stderr, "response %zu at byte %zu: %s\nreceived %zu bytes:\n", index, at, what,
            F.out_len);
    for (i = 0; i < F.out_len && i < 4096; i++) {
        unsigned char c = (unsigned char)F.out[i];
        if (c == '\n' || (c >= 32 && c < 127))
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
    abort();
}

static void check_responses(void)
{
    http_msg_parser p;
    http_message m;
    http_header h[32];
    http_body b;
    size_t at = 0, finals = 0, i;
    int r, errors = 0;
    char what[96];
    http_parse_init(&p, HTTP_KIND_RESPONSE, NULL);
    memset(&b, 0, sizeof b);
    while (at < F.out_len && finals < MAX_SEEN) { /* past MAX_SEEN: methods unknown */
        const seen *s = finals < F.nseen ? &F.seen[finals] : NULL;
        http_parse_response_to(&p, s ? s->method : HTTP_METHOD_GET);
        r = http_parse_head(&p, F.out + at, F.out_len - at, &m, h, 32);
        if (r <= 0)
            fail(r == 0 ? "a head cut short" : http_errname(r), finals, at);
        at += (size_t)r;
        if (s && s->upgrade && m.status != 100) { /* the rest is the stream's */
            if (m.status != (s->method == HTTP_METHOD_CONNECT ? 200 : 101))
                fail("an upgrade answered with another status", finals, at);
            return;
        }
        if (m.status == 101)
            fail("101 for a request not upgraded", finals, at);
        if (m.status < 200) { /* 100 Continue, for a request that asked */
            if (m.status != 100 || (s && !s->expect_continue))
                fail("an interim response nobody asked for", finals, at);
            continue;
        }
        /* the server's own answer (an error, the last response) to a request
         * the handler never saw: if that was a HEAD, no body follows */
        if (!s && at == F.out_len && m.body != HTTP_BODY_NONE && !m.keep_alive)
            return;
        while (m.body != HTTP_BODY_NONE) {
            r = http_parse_body(&p, F.out + at, F.out_len - at, &b);
            if (r < 0)
                fail(http_errname(r), finals, at);
            at += b.consumed;
            if (r == 1)
                break;
            if (at == F.out_len) { /* complete only if it ends with the connection */
                if (m.body != HTTP_BODY_UNTIL_CLOSE || http_parse_finish(&p) < 0)
                    fail("a body cut short", finals, at);
                break;
            }
        }
        if (s && m.status != s->status && m.status != 500) { /* 500: an answer refused */
            snprintf(what, sizeof what, "status %d, the handler's %d", m.status, s->status);
            fail(what, finals, at);
        }
        if (!s && (m.status < 400 || ++errors > 1))
            fail("an answer to no request", finals, at);
        finals++;
        if (!m.keep_alive) { /* the last one: the server closed after it */
            if (at != F.out_len)
                fail("bytes after the closing response", finals - 1, at);
            return;
        }
    }
    for (i = 0; i < F.nseen && i < MAX_SEEN; i++)
        if (F.seen[i].aborted)
            return; /* what it and those after it had sent could be lost */
    if (F.nseen <= MAX_SEEN && finals < F.nseen)
        fail("fewer responses than requests", finals, at);
}

/* ---- one input ---- */

/* The split points and the choices above, from a hash of the input, so a
 * failing input reproduces. */
static void hash_choices(void)
{
    uint64_t x = F.size * 0x9e3779b97f4a7c15ull + F.cfg;
    size_t i;
    F.ncuts = 0;
    for (i = 0; i < F.size && i < 64; i++)
        x = (x ^ F.data[i]) * 0x100000001b3ull;
    F.waits = (x >> 7) & 1 ? 2 : 0;
    F.extra = (unsigned)(x >> 9) & 3;
    if (F.size < 2)
        return;
    F.ncuts = (size_t)(x % 8);
    for (i = 0; i < F.ncuts; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        F.cuts[i] = 1 + (size_t)((x >> 33) % (F.size - 1));
    }
    for (i = 1; i < F.ncuts; i++) { /* sorted, so pieces go out in order */
        size_t v = F.cuts[i], j = i;
        while (j > 0 && F.cuts[j - 1] > v) {
            F.cuts[j] = F.cuts[j - 1];
            j--;
        }
        F.cuts[j] = v;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    static char *out;
    http_server_options o;
    if (size < 1)
        return 0;
    if (!out && !(out = (char *)malloc(MAX_OUT)))
        abort();
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fuzz_http_server.%d.sock", (int)getpid());
    memset(&F, 0, sizeof F);
    F.out = out;
    F.cfg = data[0];
    F.data = data + 1;
    F.size = size - 1;
    hash_choices();

    memset(&o, 0, sizeof o);
    o.stream_bodies = (F.cfg & CFG_STREAM) != 0;
    o.parser.lenient_bare_lf = (F.cfg & CFG_LENIENT) != 0;
    o.parser.lenient_missing_host = (F.cfg & CFG_LENIENT) != 0;
    if (F.cfg & CFG_SMALL) {
        o.parser.max_head = 300;
        o.parser.max_headers = 8;
        o.max_body = 64;
        o.write_high_water = 256;
    }
    o.max_pipelined = (F.cfg & CFG_ONE) ? 1 : 4;
    if (F.extra & EXTRA_FEW)
        o.max_requests_per_connection = 3;
    if (F.extra & EXTRA_TINY_HWM)
        o.write_high_water = 1;
    o.header_timeout_ms = 300;
    o.body_timeout_ms = 300;
    o.keepalive_timeout_ms = 300;
    o.write_timeout_ms = 300;
    o.linger_ms = 100;
    o.server_name = "fuzz";

    if (evloop_new(&F.loop, NULL) != 0 || http_server_new(&F.srv, F.loop, &o, handler) != 0 ||
        http_server_listen_unix(F.srv, path) != 0)
        abort();
    evloop_timer_init(F.loop, &F.guard);
    evloop_timer_start(&F.guard, guard_fired, 5000, 0);
    evloop_timer_init(F.loop, &F.step);
    evloop_unix_init(F.loop, &F.client);
    if (evloop_unix_connect(&F.client, path, on_connect) != 0)
        abort();
    evloop_run(F.loop, EVLOOP_RUN_DEFAULT);
    evloop_close(&F.guard.handle, NULL);
    evloop_close(&F.step.handle, NULL);
    if (F.upgraded_open)
        abort(); /* the upgraded stream's close never ran */
    evloop_run(F.loop, EVLOOP_RUN_DEFAULT);
    if (!F.server_done || F.st.connections != 0 || F.st.requests != 0) {
        fprintf(stderr, "server left %u connections, %u requests\n", F.st.connections,
                F.st.requests);
        abort();
    }
    if (http_server_free(F.srv) != 0 || evloop_free(F.loop) != 0)
        abort();
    check_responses();
    return 0;
}
