/* build: tsan poll */
/* Tests of the HTTP server of http.h: the server runs on the test's loop;
 * clients are threads with plain blocking sockets that parse responses
 * with http.h's own response parser. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* before the first system header, as evloop.h would */
#endif
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* ---- the allocator of evloop.h and http.h: counted, and able to fail ------
 *
 * Every byte the server and its loop hold is counted (live and peak), so a
 * test can bound the server's memory exactly, in every build (RSS is blurred
 * by the sanitizers' shadow memory). fail_watcher_growth makes the loop's
 * table of descriptors fail to grow once: an accept that fails. */
static size_t mem_live, mem_peak;
static int fail_watcher_growth;

static void mem_account(size_t add, size_t sub)
{
    size_t now = __atomic_add_fetch(&mem_live, add - sub, __ATOMIC_SEQ_CST);
    size_t peak = __atomic_load_n(&mem_peak, __ATOMIC_SEQ_CST);
    while (now > peak &&
           !__atomic_compare_exchange_n(&mem_peak, &peak, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
}
static void *test_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        mem_account(malloc_usable_size(p), 0);
    return p;
}
static void *test_realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q)
        mem_account(malloc_usable_size(q), old);
    return q;
}
static void test_free(void *p)
{
    if (p)
        mem_account(0, malloc_usable_size(p));
    free(p);
}
static void *test_ev_realloc(const char *what, void *p, size_t n)
{
    if (strcmp(what, "loop->watchers") == 0 &&
        __atomic_exchange_n(&fail_watcher_growth, 0, __ATOMIC_SEQ_CST))
        return NULL;
    return test_realloc(p, n);
}
/* The peak starts again from what is held now. */
static void mem_reset_peak(void)
{
    __atomic_store_n(&mem_peak, __atomic_load_n(&mem_live, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
}
static size_t mem_now(void) { return __atomic_load_n(&mem_live, __ATOMIC_SEQ_CST); }
static size_t mem_max(void) { return __atomic_load_n(&mem_peak, __ATOMIC_SEQ_CST); }

#define HTTP_MALLOC(n) test_malloc(n)
#define HTTP_REALLOC(p, n) test_realloc(p, n)
#define HTTP_FREE(p) test_free(p)
#define EVLOOP_MALLOC(n) test_malloc(n)
#define EVLOOP_REALLOC(p, n) test_ev_realloc(#p, p, n)
#define EVLOOP_FREE(p) test_free(p)

#define EVLOOP_IMPLEMENTATION
#define HTTP_IMPLEMENTATION
#include "../evloop.h"
#include "../http.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

/* the 100 MiB transfers run in full at -O2, smaller under sanitizers */
#define BIG_BODY (TEST_SANITIZED ? (16u << 20) : (100u << 20))

/* ---- the fixture: a server on this thread's loop, a client thread --------- */

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);
struct fixture {
    evloop *loop;
    http_server *srv;
    int port;
    evloop_async client_done;
    evloop_async shut;          /* the client asks for a graceful shutdown */
    unsigned shut_ms;           /* its deadline (0: 3000) */
    pthread_t th;
    client_fn client;
    int server_done;
    http_server_stats st;       /* the server's counts when it finished */
    void *arg;
};

static void on_server_done(http_server *srv)
{
    fixture *f = (fixture *)http_server_get_data(srv);
    f->server_done = 1;
    http_server_get_stats(srv, &f->st);
}

static void on_client_done(evloop_async *a)
{
    fixture *f = (fixture *)a->handle.data;
    http_server_shutdown(f->srv, 200, on_server_done);
    evloop_close(&a->handle, NULL);
    evloop_close(&f->shut.handle, NULL);
}

static void on_shut(evloop_async *a)
{
    fixture *f = (fixture *)a->handle.data;
    http_server_shutdown(f->srv, f->shut_ms ? f->shut_ms : 3000, on_server_done);
}

/* From the client thread: the server starts a graceful shutdown (deadline
 * f->shut_ms, 3 s when 0); returns once the loop has had the time to. */
static void fixture_shutdown(fixture *f)
{
    evloop_async_send(&f->shut);
    usleep(100000);
}

static void *client_thread(void *arg)
{
    fixture *f = (fixture *)arg;
    f->client(f);
    evloop_async_send(&f->client_done);
    return NULL;
}

static evloop_timer fixture_guard;
static void fixture_guard_fired(evloop_timer *t)
{
    fprintf(stderr, "fixture: the loop did not finish in time\n");
    evloop_stop(t->handle.loop);
}

/* A new loop with a server on it that does not listen yet. */
static int server_new(fixture *f, const http_server_options *o, http_handler h)
{
    f->server_done = 0;
    if (evloop_new(&f->loop, NULL) != 0 || http_server_new(&f->srv, f->loop, o, h) != 0)
        return -1;
    http_server_set_data(f->srv, f);
    return 0;
}

/* A new loop with a server on 127.0.0.1 (any port: f->port). */
static int server_up(fixture *f, const http_server_options *o, http_handler h)
{
    if (server_new(f, o, h) != 0 || http_server_listen(f->srv, "127.0.0.1", 0) != 0)
        return -1;
    f->port = http_server_port(f->srv);
    return f->port > 0 ? 0 : -1;
}

/* After the loop ran out: the server finished its shutdown; free both. */
static void server_down(fixture *f)
{
    CHECK_INT(f->server_done, ==, 1);
    CHECK_INT(http_server_free(f->srv), ==, 0);
    CHECK_INT(evloop_free(f->loop), ==, 0);
}

/* Starts client(f) on its thread, beside a server that is up; when it
 * returns, the server shuts down. */
static void start_client(fixture *f, client_fn client)
{
    f->client = client;
    f->client_done.handle.data = f;
    evloop_async_init(f->loop, &f->client_done, on_client_done);
    f->shut.handle.data = f;
    evloop_async_init(f->loop, &f->shut, on_shut);
    evloop_unref(&f->shut.handle);
    pthread_create(&f->th, NULL, client_thread, f);
}

/* Runs the loop with client(f) on its thread until both have finished;
 * returns what evloop_run returned. */
static int run_client(fixture *f, client_fn client)
{
    int rc;
    start_client(f, client);
    rc = evloop_run(f->loop, EVLOOP_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    return rc;
}

/* Runs a server with options o and handler h until client(f) returns. */
static void run_fixture(fixture *f, const http_server_options *o, http_handler h, client_fn client)
{
    REQUIRE_INT(server_up(f, o, h), ==, 0);
    evloop_timer_init(f->loop, &fixture_guard);
    evloop_timer_start(&fixture_guard, fixture_guard_fired, 60000, 0);
    evloop_unref(&fixture_guard.handle);
    CHECK_INT(run_client(f, client), ==, 0);
    evloop_close(&fixture_guard.handle, NULL);
    evloop_run(f->loop, EVLOOP_RUN_DEFAULT);
    server_down(f);
}

/* ---- a blocking client that parses responses with http.h ------------------------ */

typedef struct client {
    int fd;
    char *buf;
    size_t len, cap;
    http_msg_parser p;
} client;

typedef struct response {
    int status;
    char head[16384];
    http_header h[64];
    size_t nh;
    bool keep_alive;
    bool chunked;
    char *body;
    size_t body_len;
} response;

/* Connects to a (sends and receives time out after 10 s); rcvbuf > 0 sets
 * a small receive buffer first (a client that reads slowly, or never). */
static int client_connect(client *c, const struct sockaddr *a, socklen_t len, int rcvbuf)
{
    struct timeval tv = {10, 0};
    memset(c, 0, sizeof *c);
    c->fd = socket(a->sa_family, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c->fd, a, len) != 0)
        return -errno;
    http_parse_init(&c->p, HTTP_KIND_RESPONSE, NULL);
    return 0;
}

/* Connects to 127.0.0.1:port (rcvbuf: as client_connect). */
static int client_open_rcvbuf(client *c, int port, int rcvbuf)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return client_connect(c, (struct sockaddr *)&a, sizeof a, rcvbuf);
}

static int client_open(client *c, int port) { return client_open_rcvbuf(c, port, 0); }

static void client_close(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static int client_send(client *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int client_sends(client *c, const char *s) { return client_send(c, s, strlen(s)); }

/* Reads more bytes: > 0, 0 at EOF, < 0 on error/timeout. */
static ssize_t client_fill(client *c)
{
    ssize_t n;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        c->buf = (char *)realloc(c->buf, c->cap);
    }
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static void client_consume(client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response (answering a request of `method`). store: keep the
 * body (else count it). 0, or -1 when the connection ended first. */
static int client_response_ex(client *c, response *r, http_method_id method, bool store)
{
    http_message m;
    int n;
    memset(r, 0, sizeof *r);
    http_parse_response_to(&c->p, method);
    for (;;) {
        n = http_parse_head(&c->p, c->buf ? c->buf : "", c->len, &m, r->h, 64);
        if (n > 0)
            break;
        if (n < 0) {
            fprintf(stderr, "client: bad response: %s\n", http_errname(n));
            return -1;
        }
        if (client_fill(c) <= 0)
            return -1;
    }
    /* keep a copy of the head: views into it */
    {
        http_msg_parser p2;
        http_message m2;
        memcpy(r->head, c->buf, (size_t)n);
        http_parse_init(&p2, HTTP_KIND_RESPONSE, NULL);
        http_parse_response_to(&p2, method);
        http_parse_head(&p2, r->head, (size_t)n, &m2, r->h, 64);
        r->status = m2.status;
        r->nh = m2.num_headers;
        r->keep_alive = m2.keep_alive;
        r->chunked = m2.chunked;
    }
    client_consume(c, (size_t)n);
    for (;;) {
        http_body b;
        int rc;
        memset(&b, 0, sizeof b);
        rc = http_parse_body(&c->p, c->buf ? c->buf : "", c->len, &b);
        if (rc < 0)
            return -1;
        if (b.data.len) {
            if (store) {
                r->body = (char *)realloc(r->body, r->body_len + b.data.len + 1);
                memcpy(r->body + r->body_len, b.data.ptr, b.data.len);
                r->body[r->body_len + b.data.len] = 0;
            }
            r->body_len += b.data.len;
        }
        client_consume(c, b.consumed);
        if (rc == 1)
            break;
        if (!b.consumed || !c->len) {
            ssize_t k = client_fill(c);
            if (k == 0 && http_parse_finish(&c->p) == 1)
                break;
            if (k <= 0)
                return -1;
        }
    }
    if (!r->body)
        r->body = (char *)calloc(1, 1);
    return 0;
}

static int client_response(client *c, response *r) { return client_response_ex(c, r, HTTP_METHOD_GET, true); }

static const char *resp_header(const response *r, const char *name)
{
    static _Thread_local char v[1024];
    const http_header *h = http_header_find(r->h, r->nh, name, NULL);
    if (!h)
        return NULL;
    snprintf(v, sizeof v, "%.*s", (int)h->value.len, h->value.ptr);
    return v;
}

static void resp_free(response *r)
{
    free(r->body);
    r->body = NULL;
}

/* Sends req (one request) and reads its response: 0, or -1 when the
 * connection ended first. A send that fails is not an error by itself: a
 * server that refused the request may have answered it. */
static int client_ask(client *c, const char *req, response *r)
{
    client_sends(c, req);
    return client_response(c, r);
}

/* GET path (Host: x) and its response. */
static int client_get(client *c, const char *path, response *r)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return client_ask(c, req, r);
}

/* GET /hello is answered as usual: the connection is still in step. 0, or
 * -1 when no response came. */
static int client_in_step(client *c)
{
    response r;
    if (client_get(c, "/hello", &r) != 0)
        return -1;
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    return 0;
}

/* How the server ends the connection within ms: 1 with an orderly close
 * (EOF), -1 with a reset (or another error), 0 not by then. Bytes that
 * come before are read and dropped. */
static int client_end_within(client *c, int ms)
{
    struct pollfd pfd;
    char tmp[4096];
    double end = test_now_ms() + ms;
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    while (test_now_ms() < end) {
        ssize_t n;
        if (poll(&pfd, 1, (int)(end - test_now_ms()) + 1) <= 0)
            continue;
        n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0)
            return 1;
        if (n < 0 && errno != EAGAIN)
            return -1;
    }
    return 0;
}

/* 1 when the server closes the connection (EOF or reset) within ms. */
static int client_closed_within(client *c, int ms) { return client_end_within(c, ms) != 0; }

/* 1 when it is an orderly close (EOF, not a reset), within ms. */
static int client_eof_within(client *c, int ms) { return client_end_within(c, ms) == 1; }

/* After an upgrade: the raw bytes the server sends into buf (cap bytes),
 * those already read first, until want of them came or the connection
 * ended. Returns how many there are. */
static size_t client_raw(client *c, char *buf, size_t cap, size_t want)
{
    size_t got = c->len < cap ? c->len : cap;
    ssize_t n;
    if (got)
        memcpy(buf, c->buf, got);
    while (got < want && (n = recv(c->fd, buf + got, cap - got, 0)) > 0)
        got += (size_t)n;
    return got;
}

/* GET path on a new connection; the response in *r. */
static int get_once(int port, const char *path, response *r)
{
    client c;
    int rc;
    memset(r, 0, sizeof *r); /* resp_free works whatever happens */
    rc = client_open(&c, port) == 0 ? client_get(&c, path, r) : -1;
    client_close(&c);
    return rc;
}

/* Whether the response says Connection: close. */
static bool resp_closes(const response *r)
{
    const char *v = resp_header(r, "Connection");
    return v && strcmp(v, "close") == 0;
}

/* ---- the handler: one route per path --------------------------------------------- */

typedef struct delayed {
    evloop_timer t;
    http_req *req;
} delayed;

static void delayed_closed(evloop_handle *h) { free(h->data); }
static void delayed_fire(evloop_timer *t)
{
    delayed *d = (delayed *)t->handle.data;
    http_str q = d->req->path;
    char body[128];
    int n = snprintf(body, sizeof body, "%.*s", (int)q.len, q.ptr);
    http_res_send(d->req, 200, "text/plain", body, (size_t)n);
    evloop_close(&t->handle, delayed_closed);
}

/* Query value of key as an integer, or def. */
static long query_int(const http_req *r, const char *key, long def)
{
    http_query_iter it;
    http_str k, v;
    http_query_init(&it, r->query.ptr, r->query.len);
    while (http_query_next(&it, &k, &v))
        if (k.len == strlen(key) && memcmp(k.ptr, key, k.len) == 0 && v.ptr)
            return strtol(v.ptr, NULL, 10);
    return def;
}

static bool path_is(const http_req *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

/* /stream?bytes=N: N bytes of a pattern, written while writable. */
typedef struct streamer {
    http_req *req;
    uint64_t left, sent;
    char chunk[65536];
} streamer;
static int streams_aborted;
static void streamer_pump(http_req *req)
{
    streamer *s = (streamer *)req->data;
    while (s->left && http_res_writable(req)) {
        size_t i, n = s->left < sizeof s->chunk ? (size_t)s->left : sizeof s->chunk;
        for (i = 0; i < n; i++)
            s->chunk[i] = (char)((s->sent + i) % 251);
        if (http_res_write(req, s->chunk, n) < 0)
            break;
        s->left -= n;
        s->sent += n;
    }
    if (!s->left) {
        http_res_end(req, NULL, 0);
        free(s);
    }
}
static void streamer_closed(http_req *req)
{
    streamer *s = (streamer *)req->data;
    __atomic_add_fetch(&streams_aborted, 1, __ATOMIC_SEQ_CST);
    http_res_end(req, NULL, 0); /* releases it: req is gone after this */
    free(s);
}

/* streamed request bodies: count bytes and check the pattern */
typedef struct sink {
    uint64_t got;
    uint64_t bad;
    uint64_t limit; /* more: answered 413 at once, from on_data */
    int paused_once;
    evloop_timer resume;
} sink;
static uint64_t sink_total;
static void sink_resume(evloop_timer *t)
{
    http_req *req = (http_req *)t->handle.data;
    http_req_resume(req);
}
static void sink_closed(evloop_handle *h) { free(h->data); }
static void sink_data(http_req *req, const char *data, size_t len)
{
    sink *s = (sink *)((char *)req->data);
    size_t i;
    for (i = 0; i < len; i++)
        if ((unsigned char)data[i] != (unsigned char)((s->got + i) % 251))
            s->bad++;
    s->got += len;
    if (s->limit && s->got > s->limit) { /* the rest of the body is the server's to skip */
        s->resume.handle.data = s;
        evloop_close(&s->resume.handle, sink_closed);
        http_res_send(req, 413, "text/plain", "too large", 9);
        return;
    }
    if (!s->paused_once && s->got > (1u << 20)) { /* pause once for 20 ms */
        s->paused_once = 1;
        http_req_pause(req);
        evloop_timer_start(&s->resume, sink_resume, 20, 0);
    }
}
static void sink_end(http_req *req, int status)
{
    sink *s = (sink *)req->data;
    char out[64];
    int n = snprintf(out, sizeof out, "%llu %llu", (unsigned long long)s->got,
                     (unsigned long long)s->bad);
    sink_total = s->got;
    if (status < 0)
        n = snprintf(out, sizeof out, "error %d", status);
    http_res_send(req, status < 0 ? 400 : 200, "text/plain", out, (size_t)n);
    s->resume.handle.data = s;
    evloop_close(&s->resume.handle, sink_closed);
}

static int upgrade_cb_calls;
static char upgrade_leftover[64];
static void upgraded_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n < 0) {
        evloop_close(&s->handle, (evloop_close_cb)(void (*)(evloop_handle *))free);
        return;
    }
    evloop_write_copy(s, buf, (size_t)n, NULL, NULL); /* echo, raw */
}
static int upgrade_cb_lost; /* calls without a stream: the connection went first */
static void on_upgraded(http_req *req, evloop_stream *s, const char *data, size_t len)
{
    upgrade_cb_calls++;
    snprintf(upgrade_leftover, sizeof upgrade_leftover, "%.*s", (int)len, data);
    if (!s) { /* the target was never opened: ours to close */
        evloop_stream *target = (evloop_stream *)req->data;
        upgrade_cb_lost++;
        evloop_close(&target->handle, (evloop_close_cb)(void (*)(evloop_handle *))free);
        return;
    }
    if (len)
        evloop_write_copy(s, data, len, NULL, NULL);
    evloop_read_start(s, upgraded_read);
}

static int file_fd = -1;
static int closes_seen;
static void count_close(http_req *req)
{
    __atomic_add_fetch(&closes_seen, 1, __ATOMIC_SEQ_CST);
    (void)req;
}
static http_req *held_req;

/* /pair: held; the first on_close ends every pair request, its own last */
static http_req *pairs[4];
static int npairs, pair_closes;
static void pair_closed(http_req *req)
{
    int i;
    pair_closes++;
    for (i = 0; i < npairs; i++) {
        if (pairs[i] && pairs[i] != req) {
            http_req *other = pairs[i];
            pairs[i] = NULL;
            CHECK_INT(http_res_end(other, NULL, 0), ==, -ECONNRESET);
        }
    }
    for (i = 0; i < npairs; i++)
        if (pairs[i] == req)
            pairs[i] = NULL;
    CHECK_INT(http_res_end(req, NULL, 0), ==, -ECONNRESET);
}

/* /ackread: the head and "ack" go first, then the streamed body echoes */
static void echo_data(http_req *req, const char *data, size_t len) { http_res_write(req, data, len); }
static void echo_end(http_req *req, int status)
{
    if (status < 0)
        http_res_end(req, "\nerror\n", 7);
    else
        http_res_end(req, "end\n", 4);
}

/* /lateread?ms=N: http_req_read N ms after the head (streamed bodies) */
typedef struct late_reader {
    evloop_timer t;
    http_req *req;
} late_reader;
static void late_reader_fire(evloop_timer *t)
{
    late_reader *l = (late_reader *)t->handle.data;
    http_res_status(l->req, 200);
    if (http_req_read(l->req, echo_data, echo_end) < 0)
        http_res_end(l->req, "no stream\n", 10);
    evloop_close(&t->handle, delayed_closed);
}

/* /thread?ms=N: answered from the loop once a thread has worked N ms (the
 * shape of a pool job: the thread wakes the loop with an evloop_async) */
typedef struct job {
    evloop_async done;
    pthread_t th;
    http_req *req;
    int ms;
} job;
static void *job_work(void *arg)
{
    job *j = (job *)arg;
    usleep((useconds_t)j->ms * 1000);
    evloop_async_send(&j->done);
    return NULL;
}
static void job_closed(evloop_handle *h) { free(h->data); }
static void job_done(evloop_async *a)
{
    job *j = (job *)a->handle.data;
    char body[64];
    int n;
    pthread_join(j->th, NULL);
    n = snprintf(body, sizeof body, "thread %d", j->ms);
    http_res_send(j->req, 200, "text/plain", body, (size_t)n);
    evloop_close(&a->handle, job_closed);
}

/* /wait is answered by the next /wake, from another connection's handler */
static http_req *waiting;

/* /late?ms=N: after N ms, writes to a request whose client has left */
typedef struct late {
    evloop_timer t;
    http_req *req;
} late;
static int late_checked;
static void late_fire(evloop_timer *t)
{
    late *l = (late *)t->handle.data;
    CHECK(http_req_aborted(l->req));
    CHECK_INT(http_res_writable(l->req), ==, 0);
    CHECK_INT(http_res_write(l->req, "x", 1), ==, -ECONNRESET);
    CHECK_INT(http_res_header(l->req, "X-Late", "1"), ==, -ECONNRESET);
    CHECK_INT(http_res_end(l->req, NULL, 0), ==, -ECONNRESET); /* releases it */
    late_checked++;
    evloop_close(&t->handle, delayed_closed);
}

static char blob[1 << 20]; /* /blob?bytes=N answers N of these */
static int handler_calls;

static void handler(http_req *req)
{
    __atomic_add_fetch(&handler_calls, 1, __ATOMIC_SEQ_CST);
    if (path_is(req, "/hello")) {
        http_res_send(req, 200, "text/plain", "Hello, World!", 13);
    } else if (path_is(req, "/slow")) { /* answers after ?ms= */
        delayed *d = (delayed *)calloc(1, sizeof *d);
        d->req = req;
        d->t.handle.data = d;
        evloop_timer_init(http_server_loop(req->server), &d->t);
        evloop_timer_start(&d->t, delayed_fire, (uint64_t)query_int(req, "ms", 10), 0);
    } else if (path_is(req, "/echo")) { /* the buffered body, as chunks */
        size_t i;
        http_res_header(req, "X-Method", req->method_name.len ? "seen" : "none");
        for (i = 0; i < req->body.len; i += 1000)
            http_res_write(req, req->body.ptr + i, req->body.len - i < 1000 ? req->body.len - i : 1000);
        http_res_end(req, NULL, 0);
    } else if (path_is(req, "/stream")) {
        streamer *s = (streamer *)calloc(1, sizeof *s);
        s->req = req;
        s->left = (uint64_t)query_int(req, "bytes", 1000);
        req->data = s;
        http_res_on_drain(req, streamer_pump);
        http_req_on_close(req, streamer_closed);
        streamer_pump(req);
    } else if (path_is(req, "/upload")) { /* streamed request body */
        sink *s = (sink *)calloc(1, sizeof *s);
        req->data = s;
        s->limit = (uint64_t)query_int(req, "limit", 0);
        evloop_timer_init(http_server_loop(req->server), &s->resume);
        s->resume.handle.data = req;
        if (http_req_read(req, sink_data, sink_end) < 0)
            http_res_send(req, 500, NULL, "no", 2);
    } else if (path_is(req, "/file")) {
        http_res_header(req, "Content-Type", "application/octet-stream");
        http_res_sendfile(req, dup(file_fd), query_int(req, "off", 0), (uint64_t)query_int(req, "len", 10),
                          HTTP_FILE_CLOSE);
    } else if (path_is(req, "/upgrade")) {
        if (query_int(req, "decline", 0)) {
            http_res_send(req, 200, "text/plain", "no upgrade", 10);
        } else {
            evloop_stream *s = (evloop_stream *)malloc(sizeof *s);
            s->handle.data = s;
            evloop_tcp_init(http_server_loop(req->server), s);
            req->data = s;
            http_res_header(req, "Upgrade", "echo");
            if (http_res_upgrade(req, s, on_upgraded) < 0) {
                evloop_close(&s->handle, (evloop_close_cb)(void (*)(evloop_handle *))free);
                http_res_send(req, 500, NULL, "x", 1);
            }
        }
    } else if (path_is(req, "/hold")) { /* never answered until /release */
        held_req = req;
        http_req_on_close(req, count_close);
    } else if (path_is(req, "/headers")) {
        CHECK_INT(http_res_header(req, "X-Bad", "a\r\nInjected: 1"), ==, -EINVAL);
        CHECK_INT(http_res_header(req, "Bad Name", "x"), ==, -EINVAL);
        CHECK_INT(http_res_header(req, "Transfer-Encoding", "chunked"), ==, -EINVAL);
        CHECK_INT(http_res_header(req, "X-Good", "yes"), ==, 0);
        CHECK_INT(http_res_status(req, 99), ==, -EINVAL);
        CHECK_INT(http_res_status(req, 201), ==, 0);
        CHECK_INT(http_res_header(req, "Content-Type", "text/plain"), ==, 0);
        CHECK_INT(http_res_write(req, "ma", 2), ==, 0); /* the head goes */
        CHECK_INT(http_res_status(req, 500), ==, -EALREADY);
        CHECK_INT(http_res_header(req, "X-Late", "no"), ==, -EALREADY);
        CHECK_INT(http_res_end(req, "de", 2), ==, 0); /* releases req */
    } else if (path_is(req, "/short")) { /* promises 10 bytes, sends 5 */
        http_res_header(req, "Content-Length", "10");
        CHECK_INT(http_res_end(req, "12345", 5), ==, -EINVAL);
    } else if (path_is(req, "/blob")) {
        size_t n = (size_t)query_int(req, "bytes", 1000);
        http_res_send(req, 200, "application/octet-stream", blob, n < sizeof blob ? n : sizeof blob);
    } else if (path_is(req, "/pair")) {
        pairs[npairs++] = req;
        http_req_on_close(req, pair_closed);
    } else if (path_is(req, "/ackread")) {
        http_res_write(req, "ack\n", 4);
        if (http_req_read(req, echo_data, echo_end) < 0)
            http_res_end(req, "no stream\n", 10);
    } else if (path_is(req, "/lateread")) {
        late_reader *l = (late_reader *)calloc(1, sizeof *l);
        l->req = req;
        l->t.handle.data = l;
        evloop_timer_init(http_server_loop(req->server), &l->t);
        evloop_timer_start(&l->t, late_reader_fire, (uint64_t)query_int(req, "ms", 10), 0);
    } else if (path_is(req, "/clfile")) { /* a Content-Length, then a file of len bytes */
        int fd = dup(file_fd);
        char cl[32];
        snprintf(cl, sizeof cl, "%ld", query_int(req, "cl", 0));
        http_res_header(req, "Content-Length", cl);
        long expect = query_int(req, "rc", 0); /* ?rc=: the result expected */
        int rc = http_res_sendfile(req, fd, 0, (uint64_t)query_int(req, "len", 10), HTTP_FILE_CLOSE);
        CHECK_INT(rc, ==, expect); /* (req is released now) */
        if (rc < 0)
            CHECK(fcntl(fd, F_GETFD) < 0); /* closed with HTTP_FILE_CLOSE, whatever happens */
    } else if (path_is(req, "/writefile")) { /* too late for a file body */
        int fd = dup(file_fd);
        http_res_write(req, "w", 1);
        CHECK_INT(http_res_sendfile(req, fd, 0, 5, HTTP_FILE_CLOSE), ==, -EALREADY);
        CHECK(fcntl(fd, F_GETFD) < 0);
        http_res_end(req, NULL, 0);
    } else if (path_is(req, "/status")) { /* ?code=N, with ?cl=M a Content-Length first */
        char cl[32];
        if (query_int(req, "cl", -1) >= 0) {
            snprintf(cl, sizeof cl, "%ld", query_int(req, "cl", 0));
            http_res_header(req, "Content-Length", cl);
        }
        CHECK_INT(http_res_status(req, 101), ==, -EINVAL); /* not an upgrade */
        CHECK_INT(http_res_status(req, 103), ==, -EINVAL); /* no interim responses */
        CHECK_INT(http_res_status(req, (int)query_int(req, "code", 200)), ==, 0);
        http_res_end(req, query_int(req, "cl", -1) > 0 ? "Hello, World!" : NULL,
                     query_int(req, "cl", -1) > 0 ? 13 : 0);
    } else if (path_is(req, "/thread")) {
        job *j = (job *)calloc(1, sizeof *j);
        j->req = req;
        j->ms = (int)query_int(req, "ms", 10);
        j->done.handle.data = j;
        evloop_async_init(http_server_loop(req->server), &j->done, job_done);
        pthread_create(&j->th, NULL, job_work, j);
    } else if (path_is(req, "/wait")) {
        waiting = req;
    } else if (path_is(req, "/wake")) {
        if (waiting)
            CHECK_INT(http_res_send(waiting, 200, "text/plain", "woken", 5), ==, 0);
        http_res_send(req, 200, "text/plain", waiting ? "woke" : "nobody", waiting ? 4 : 6);
        waiting = NULL;
    } else if (path_is(req, "/late")) {
        late *l = (late *)calloc(1, sizeof *l);
        l->req = req;
        l->t.handle.data = l;
        evloop_timer_init(http_server_loop(req->server), &l->t);
        evloop_timer_start(&l->t, late_fire, (uint64_t)query_int(req, "ms", 10), 0);
    } else if (path_is(req, "/hdr")) { /* the value of X-Test */
        const http_str *v = http_req_header(req, "x-test");
        CHECK(http_req_header(req, "X-Absent") == NULL);
        CHECK(http_req_header(req, "HOST") != NULL);
        http_res_send(req, 200, "text/plain", v ? v->ptr : "none", v ? v->len : 4);
    } else if (path_is(req, "/peer")) { /* the client's address family */
        struct sockaddr_storage a;
        const char *fam = http_req_peer(req, &a) < 0 ? "none"
                          : a.ss_family == AF_INET6 ? "ipv6"
                          : a.ss_family == AF_INET  ? "ipv4"
                                                    : "other";
        http_res_send(req, 200, "text/plain", fam, strlen(fam));
    } else if (path_is(req, "/nocontent")) {
        http_res_send(req, 204, NULL, "ignored", 7);
    } else {
        http_res_send(req, 404, "text/plain", "not found", 9);
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

/* run_fixture with the default options, for a client that checks it all. */
static void run_default(client_fn client)
{
    fixture f;
    memset(&f, 0, sizeof f);
    run_fixture(&f, NULL, handler, client);
}

static void client_keepalive(fixture *f)
{
    client c;
    response r;
    int i;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    for (i = 0; i < 3; i++) {
        REQUIRE_INT(client_get(&c, "/hello", &r), ==, 0);
        CHECK_INT(r.status, ==, 200);
        CHECK_STR(r.body, "Hello, World!");
        CHECK_STR(resp_header(&r, "Content-Length"), "13");
        CHECK_STR(resp_header(&r, "Content-Type"), "text/plain");
        CHECK(resp_header(&r, "Date") != NULL);
        CHECK(r.keep_alive);
        resp_free(&r);
    }
    /* a head in two pieces (kept aside between them), with a body */
    client_sends(&c, "POST /echo HTTP/1.1\r\nHo");
    usleep(30000);
    client_sends(&c, "st: x\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "ok");
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/nope", &r), ==, 0);
    CHECK_INT(r.status, ==, 404);
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/headers", &r), ==, 0);
    CHECK_INT(r.status, ==, 201);
    CHECK_STR(resp_header(&r, "X-Good"), "yes");
    CHECK(resp_header(&r, "Injected") == NULL);
    CHECK(resp_header(&r, "X-Late") == NULL);
    CHECK_STR(r.body, "made");
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/nocontent", &r), ==, 0);
    CHECK_INT(r.status, ==, 204);
    CHECK(resp_header(&r, "Content-Length") == NULL);
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    REQUIRE_INT(client_ask(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           &r), ==, 0);
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
}

TEST(keepalive_and_basics)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.server_name = "test-server/1";
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_keepalive);
}

static void client_server_header(fixture *f)
{
    response r;
    REQUIRE_INT(get_once(f->port, "/hello", &r), ==, 0);
    CHECK_STR(resp_header(&r, "Server"), "test-server/1");
    resp_free(&r);
}
TEST(server_name)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.server_name = "test-server/1";
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_server_header);
}

/* Pipelining: three requests at once; handlers finish in another order. */
static void client_pipeline(fixture *f)
{
    client c;
    response r;
    const char *order[] = {"/slow", "/hello", "/slow", "/hello"};
    char reqs[1024] = "";
    int i;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    strcat(reqs, "GET /slow?ms=80 HTTP/1.1\r\nHost: x\r\n\r\n");
    strcat(reqs, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    strcat(reqs, "GET /slow?ms=30 HTTP/1.1\r\nHost: x\r\n\r\n");
    strcat(reqs, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_sends(&c, reqs);
    for (i = 0; i < 4; i++) {
        REQUIRE_INT(client_response(&c, &r), ==, 0);
        CHECK_INT(r.status, ==, 200);
        CHECK_STR(r.body, strcmp(order[i], "/slow") == 0 ? "/slow" : "Hello, World!");
        resp_free(&r);
    }
    /* more than max_pipelined (4) in flight: all answered, in order */
    reqs[0] = 0;
    for (i = 0; i < 12; i++)
        strcat(reqs, i % 3 == 0 ? "GET /slow?ms=5 HTTP/1.1\r\nHost: x\r\n\r\n"
                                : "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    client_sends(&c, reqs);
    for (i = 0; i < 12; i++) {
        REQUIRE_INT(client_response(&c, &r), ==, 0);
        CHECK_STR(r.body, i % 3 == 0 ? "/slow" : "Hello, World!");
        resp_free(&r);
    }
    client_close(&c);
}

TEST(pipelining_in_order)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.max_pipelined = 4;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_pipeline);
}

/* Chunked request (with extensions and trailers) echoed as a chunked response. */
static void client_chunked(fixture *f)
{
    client c;
    response r;
    char big[5000];
    int i;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK(r.chunked);
    CHECK_STR(r.body, "hello world");
    resp_free(&r);
    /* framing that arrives in pieces, cut inside a chunk-size line, a
     * chunk's CRLF and the trailer section: the server waits for the rest */
    {
        static const char *const parts[] = {
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5",
            ";ext=1\r\nhello\r", "\n0\r\nX-Trailer: t", "\r\nX-B: 2\r\n", "\r\n"};
        for (i = 0; i < (int)(sizeof parts / sizeof parts[0]); i++) {
            client_sends(&c, parts[i]);
            usleep(20000);
        }
    }
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "hello");
    resp_free(&r);
    /* Content-Length body of 5000 bytes, echoed in 1000-byte chunks */
    for (i = 0; i < 5000; i++)
        big[i] = (char)('a' + i % 26);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    client_send(&c, big, 5000);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_UINT(r.body_len, ==, 5000);
    CHECK(memcmp(r.body, big, 5000) == 0);
    resp_free(&r);
    client_close(&c);
}

TEST(chunked_request_and_response) { run_default(client_chunked); }

/* 100 MiB each way, streamed; the server's memory does not follow. Two
 * measures: the bytes evloop.h and http.h hold at their peak (exact, in
 * every build), and the process's peak RSS (VmHWM after a reset of the
 * peak), which the sanitizers blur with their own memory: checked without
 * them only. */
typedef struct mem_probe {
    size_t held0;  /* bytes the server held at the start */
    long hwm0_kb;  /* RSS at the start, -1 when the peak cannot be reset */
} mem_probe;
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *fp = fopen("/proc/self/status", "r");
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    if (fp)
        fclose(fp);
    return kb;
}
static void mem_probe_start(mem_probe *m)
{
    FILE *fp = fopen("/proc/self/clear_refs", "w"); /* "5": the peak RSS starts again */
    int reset = fp && fputs("5", fp) >= 0;
    if (fp && fclose(fp) != 0)
        reset = 0;
    m->hwm0_kb = reset ? status_kb("VmHWM") : -1;
    m->held0 = mem_now();
    mem_reset_peak();
}
/* The server's peak above the start; the process's in *rss_kb (-1: not
 * measured). */
static size_t mem_probe_peak(const mem_probe *m, long *rss_kb)
{
    *rss_kb = m->hwm0_kb < 0 ? -1 : status_kb("VmHWM") - m->hwm0_kb;
    return mem_max() - m->held0;
}

static size_t big_held;
static long big_rss_kb;
static void client_big(fixture *f)
{
    client c;
    response r;
    char req[256], chunk[65536];
    uint64_t sent = 0, total = BIG_BODY;
    size_t i;
    mem_probe m;
    mem_probe_start(&m);
    /* download */
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    snprintf(req, sizeof req, "GET /stream?bytes=%llu HTTP/1.1\r\nHost: x\r\n\r\n",
             (unsigned long long)total);
    client_sends(&c, req);
    REQUIRE_INT(client_response_ex(&c, &r, HTTP_METHOD_GET, false), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK(r.chunked);
    CHECK_UINT(r.body_len, ==, total);
    resp_free(&r);
    /* upload */
    snprintf(req, sizeof req, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %llu\r\n\r\n",
             (unsigned long long)total);
    client_sends(&c, req);
    while (sent < total) {
        size_t n = total - sent < sizeof chunk ? (size_t)(total - sent) : sizeof chunk;
        for (i = 0; i < n; i++)
            chunk[i] = (char)((sent + i) % 251);
        REQUIRE_INT(client_send(&c, chunk, n), ==, 0);
        sent += n;
    }
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    snprintf(req, sizeof req, "%llu 0", (unsigned long long)total);
    CHECK_STR(r.body, req);
    resp_free(&r);
    big_held = mem_probe_peak(&m, &big_rss_kb);
    client_close(&c);
}

TEST(hundred_mib_each_way_constant_memory)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.stream_bodies = 1;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_big);
    CHECK_UINT(sink_total, ==, BIG_BODY);
    /* the output stays near write_high_water (64 KiB) plus a 64 KiB chunk;
     * a body read goes from the loop's buffer to on_data without a copy */
    CHECK_UINT(big_held, <, 512u << 10);
    /* client and server share the process: neither kept the 100 MiB */
    if (!TEST_SANITIZED && big_rss_kb >= 0)
        CHECK_INT(big_rss_kb, <, 8 * 1024);
}

/* Statuses without a body: 204 never carries a Content-Length (not even
 * the caller's), 304 keeps the caller's (the length of the 200); neither
 * has a body, and the connection stays in step. */
static void client_no_body_statuses(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_get(&c, "/status?code=204&cl=13", &r), ==, 0);
    CHECK_INT(r.status, ==, 204);
    CHECK(resp_header(&r, "Content-Length") == NULL);
    CHECK(resp_header(&r, "Transfer-Encoding") == NULL);
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/status?code=304&cl=13", &r), ==, 0);
    CHECK_INT(r.status, ==, 304);
    CHECK_STR(resp_header(&r, "Content-Length"), "13");
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/status?code=304", &r), ==, 0);
    CHECK_INT(r.status, ==, 304);
    CHECK(resp_header(&r, "Content-Length") == NULL);
    CHECK(resp_header(&r, "Transfer-Encoding") == NULL);
    resp_free(&r);
    /* the raw bytes: nothing follows the heads */
    client_sends(&c, "GET /status?code=204&cl=13 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 204);
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    client_close(&c);
}

TEST(no_body_statuses) { run_default(client_no_body_statuses); }

/* Every parser error class is answered with its status, then closed, and
 * no handler runs for it: nothing half-parsed reaches a handler (bodies are
 * buffered here, so a handler runs only for a whole request). */
typedef struct bad_case {
    const char *req;
    size_t len; /* 0: strlen */
    int status;
} bad_case;
#define NUL_IN_VALUE "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"
#define CHUNKED_POST "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
static const bad_case bad_cases[] = {
    {"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 0, 505},
    {"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 0, 400},
    {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\nHost: x\n\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nBad@Name: v\r\n\r\n", 0, 400},
    {NUL_IN_VALUE, sizeof NUL_IN_VALUE - 1, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01" "b\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 0, 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 0, 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 501},
    {"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 400},
    {CHUNKED_POST "zz\r\n", 0, 400},
    {CHUNKED_POST "5\r\nhelloXX", 0, 400},
    {CHUNKED_POST "00000000000000001\r\nx\r\n0\r\n\r\n", 0, 413},
    {CHUNKED_POST "1;a=\x01\r\nx\r\n0\r\n\r\n", 0, 400},
    {CHUNKED_POST "1\r\nx\r\n0\r\nBad Trailer: x\r\n\r\n", 0, 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 0, 413},
    {"GET / HTTP/1.1\r\nHost: x\r\nExpect: coffee\r\n\r\n", 0, 417},
};

/* Sends req (len bytes) on a new connection: the response must have the
 * status, say close, be followed by the close, and no handler may run. */
static void expect_refusal(fixture *f, const char *req, size_t len, int status)
{
    client c;
    response r;
    int calls = __atomic_load_n(&handler_calls, __ATOMIC_SEQ_CST);
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_send(&c, req, len);
    if (client_response(&c, &r) != 0) {
        CHECK(!"no response");
        fprintf(stderr, "  for: %.*s\n", (int)(len < 200 ? len : 200), req);
    } else {
        if (r.status != status)
            fprintf(stderr, "  %d for: %.*s\n", r.status, (int)(len < 200 ? len : 200), req);
        CHECK_INT(r.status, ==, status);
        CHECK_STR(resp_header(&r, "Connection"), "close");
        resp_free(&r);
    }
    CHECK(client_closed_within(&c, 3000));
    CHECK_INT(__atomic_load_n(&handler_calls, __ATOMIC_SEQ_CST), ==, calls);
    client_close(&c);
}

static void client_bad(fixture *f)
{
    size_t i;
    static char big[65536];
    int n;
    client c;
    response r;
    for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        expect_refusal(f, bad_cases[i].req, bad_cases[i].len ? bad_cases[i].len : strlen(bad_cases[i].req),
                       bad_cases[i].status);
    /* chunk extensions over max_chunk_ext (1024) */
    n = snprintf(big, sizeof big, "%s1;a=", CHUNKED_POST);
    memset(big + n, 'e', 1100);
    n += 1100;
    n += snprintf(big + n, sizeof big - (size_t)n, "\r\nx\r\n0\r\n\r\n");
    expect_refusal(f, big, (size_t)n, 400);
    /* a buffered chunked body over max_body (4096): 413 */
    n = snprintf(big, sizeof big, "%s", CHUNKED_POST);
    for (i = 0; i < 2; i++) {
        n += snprintf(big + n, sizeof big - (size_t)n, "bb8\r\n");
        memset(big + n, 'b', 3000);
        n += 3000;
        n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    }
    n += snprintf(big + n, sizeof big - (size_t)n, "0\r\n\r\n");
    expect_refusal(f, big, (size_t)n, 413);
    /* URI too long: 414 */
    memset(big, 'a', 10000);
    memcpy(big, "GET /", 5);
    expect_refusal(f, big, 10000, 414);
    /* too many fields (over 64): 431 */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 200; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "X-Many: field\r\n");
    expect_refusal(f, big, (size_t)n, 431);
    /* head too large (over 16384: 40 fields with 1000-byte names): 431 */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 40; i++) {
        memset(big + n, 'a', 1000);
        n += 1000;
        n += snprintf(big + n, sizeof big - (size_t)n, ": v\r\n");
    }
    expect_refusal(f, big, (size_t)n, 431);
    /* an error after good pipelined requests: those are answered first */
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /slow?ms=20 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "/slow");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 400);
    resp_free(&r);
    CHECK(client_closed_within(&c, 3000));
    client_close(&c);
}

TEST(parser_errors_answered_with_their_status)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.parser.max_headers = 64;
    o.parser.max_head = 16384;
    o.max_body = 4096;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_bad);
}

/* Expect: 100-continue; then a request body streamed while handled. */
static void client_expect(fixture *f)
{
    client c;
    response r;
    char buf[256];
    ssize_t n;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    n = recv(c.fd, buf, sizeof buf - 1, 0);
    REQUIRE(n > 0);
    buf[n] = 0;
    CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    client_sends(&c, "ping");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "ping");
    resp_free(&r);
    client_close(&c);
}

TEST(expect_continue) { run_default(client_expect); }

/* Slowloris: one header byte every 40 ms is cut at the header timeout,
 * while a normal client keeps being served. */
static double slow_cut_ms;
static int normal_served;
static void *slowloris_thread(void *arg)
{
    fixture *f = (fixture *)arg;
    client c;
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    double t0 = test_now_ms();
    size_t i;
    slow_cut_ms = -1;
    if (client_open(&c, f->port) != 0)
        return NULL;
    for (i = 0; req[i]; i++) {
        if (send(c.fd, req + i, 1, MSG_NOSIGNAL) <= 0 || client_closed_within(&c, 40)) {
            slow_cut_ms = test_now_ms() - t0;
            break;
        }
    }
    client_close(&c);
    return NULL;
}
static void client_slowloris(fixture *f)
{
    pthread_t th;
    response r;
    int i;
    pthread_create(&th, NULL, slowloris_thread, f);
    for (i = 0; i < 20; i++) {
        if (get_once(f->port, "/hello", &r) == 0 && r.status == 200)
            normal_served++;
        resp_free(&r);
        usleep(20000);
    }
    pthread_join(th, NULL);
}

TEST(slowloris_cut_at_header_timeout)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.header_timeout_ms = 300;
    memset(&f, 0, sizeof f);
    normal_served = 0;
    run_fixture(&f, &o, handler, client_slowloris);
    CHECK_INT(normal_served, ==, 20);
    CHECK(slow_cut_ms >= 250);
    CHECK(slow_cut_ms < 1500);
}

/* A client that never reads: the output stays bounded and the write
 * timeout closes the connection; the handler is told. */
static size_t never_held;
static long never_rss_kb;
static void client_never_reads(fixture *f)
{
    client c;
    mem_probe m;
    int i;
    REQUIRE_INT(client_open_rcvbuf(&c, f->port, 4096), ==, 0);
    mem_probe_start(&m);
    client_sends(&c, "GET /stream?bytes=1000000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    /* never read: wait for the server to give up on the response */
    for (i = 0; i < 500 && !__atomic_load_n(&streams_aborted, __ATOMIC_SEQ_CST); i++)
        usleep(10000);
    CHECK_INT(__atomic_load_n(&streams_aborted, __ATOMIC_SEQ_CST), ==, 1);
    never_held = mem_probe_peak(&m, &never_rss_kb);
    client_close(&c);
}

TEST(client_that_never_reads)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.write_timeout_ms = 300;
    memset(&f, 0, sizeof f);
    streams_aborted = 0;
    run_fixture(&f, &o, handler, client_never_reads);
    CHECK_INT(streams_aborted, ==, 1);
    CHECK_UINT(f.st.timeouts, ==, 1);
    CHECK_UINT(never_held, <, 512u << 10); /* write_high_water and one chunk */
    if (!TEST_SANITIZED && never_rss_kb >= 0)
        CHECK_INT(never_rss_kb, <, 8 * 1024);
}

/* max_connections: the connection over the limit is answered 503. */
static void client_maxconn(fixture *f)
{
    client a, b, c;
    response r;
    char junk[1000];
    int i;
    memset(junk, 'j', sizeof junk);
    REQUIRE_INT(client_open(&a, f->port), ==, 0);
    REQUIRE_INT(client_open(&b, f->port), ==, 0);
    REQUIRE_INT(client_get(&a, "/hello", &r), ==, 0); /* both accepted by now */
    resp_free(&r);
    /* the third gets its 503 even though it sent a request (and more):
     * unread input at the close must not turn into a reset that destroys
     * the answer */
    for (i = 0; i < 5; i++) {
        REQUIRE_INT(client_open(&c, f->port), ==, 0);
        client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        client_send(&c, junk, sizeof junk);
        usleep(20000);
        REQUIRE_INT(client_response(&c, &r), ==, 0);
        CHECK_INT(r.status, ==, 503);
        resp_free(&r);
        CHECK(client_eof_within(&c, 3000));
        client_close(&c);
    }
    client_close(&a);
    client_close(&b);
}

TEST(max_connections)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.max_connections = 2;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_maxconn);
}

/* HTTP/1.0: close by default, keep-alive when asked; a body of unknown
 * length ends with the connection. */
static void client_http10(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "GET /hello HTTP/1.0\r\n\r\n", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "Hello, World!");
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r), ==, 0);
    CHECK_STR(resp_header(&r, "Connection"), "keep-alive");
    resp_free(&r);
    REQUIRE_INT(client_ask(&c, "GET /stream?bytes=100000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                           &r), ==, 0);
    CHECK_UINT(r.body_len, ==, 100000);
    CHECK(!r.chunked);
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    client_close(&c);
}

TEST(http10_with_and_without_keepalive) { run_default(client_http10); }

/* HEAD: the fields of a GET, no body; the connection goes on. */
static void client_head(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response_ex(&c, &r, HTTP_METHOD_HEAD, true), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(resp_header(&r, "Content-Length"), "13");
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    client_sends(&c, "HEAD /stream?bytes=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response_ex(&c, &r, HTTP_METHOD_HEAD, true), ==, 0);
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    REQUIRE_INT(client_in_step(&c), ==, 0);
    client_close(&c);
}

TEST(head_requests) { run_default(client_head); }

/* Graceful shutdown: requests in flight are answered; none is lost. */
static fixture *shut_fix;
/* Starts the shutdown once the three requests are in flight (or after 2 s,
 * when the test fails): a fixed delay lost them on a loaded machine. */
static int shut_polls;
static void start_shutdown(evloop_timer *t)
{
    http_server_stats st;
    http_server_get_stats(shut_fix->srv, &st);
    if (st.requests < 3 && ++shut_polls < 400) {
        evloop_timer_start(t, start_shutdown, 5, 0);
        return;
    }
    http_server_shutdown(shut_fix->srv, 2000, on_server_done);
    evloop_close(&t->handle, NULL);
}
static int shut_ok;
static void *shut_client(void *arg)
{
    fixture *f = (fixture *)arg;
    response r;
    if (get_once(f->port, "/slow?ms=150", &r) == 0 && r.status == 200 && strcmp(r.body, "/slow") == 0 &&
        resp_closes(&r))
        __atomic_add_fetch(&shut_ok, 1, __ATOMIC_SEQ_CST);
    resp_free(&r);
    return NULL;
}

TEST(graceful_shutdown_loses_nothing)
{
    fixture f;
    evloop_timer t;
    pthread_t th[3];
    int i;
    client late;
    memset(&f, 0, sizeof f);
    shut_ok = shut_polls = 0;
    REQUIRE_INT(server_up(&f, NULL, handler), ==, 0);
    shut_fix = &f;
    for (i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, shut_client, &f);
    evloop_timer_init(f.loop, &t);
    evloop_timer_start(&t, start_shutdown, 5, 0);
    evloop_run(f.loop, EVLOOP_RUN_DEFAULT);
    for (i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(shut_ok, ==, 3);
    /* the port is closed now */
    CHECK(client_open(&late, f.port) != 0);
    client_close(&late);
    server_down(&f);
}

/* A request still held when the shutdown deadline passes: closed, told. */
static void release_held(evloop_timer *t)
{
    if (held_req)
        CHECK_INT(http_res_end(held_req, "late", 4), ==, -ECONNRESET);
    held_req = NULL;
    evloop_close(&t->handle, NULL);
}
static void *hold_client(void *arg)
{
    fixture *f = (fixture *)arg;
    client c;
    if (client_open(&c, f->port) == 0) {
        client_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(client_closed_within(&c, 3000));
    }
    client_close(&c);
    return NULL;
}
static void shutdown_soon(evloop_timer *t)
{
    http_server_shutdown(shut_fix->srv, 100, on_server_done);
    evloop_timer_start(t, release_held, 200, 0);
}

TEST(shutdown_deadline_closes_held_requests)
{
    fixture f;
    evloop_timer t;
    pthread_t th;
    memset(&f, 0, sizeof f);
    closes_seen = 0;
    REQUIRE_INT(server_up(&f, NULL, handler), ==, 0);
    shut_fix = &f;
    pthread_create(&th, NULL, hold_client, &f);
    evloop_timer_init(f.loop, &t);
    evloop_timer_start(&t, shutdown_soon, 50, 0);
    evloop_run(f.loop, EVLOOP_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK_INT(closes_seen, ==, 1);
    server_down(&f);
}

/* A client gone while its handler is pending: on_close, then end frees. */
static void client_vanishes(fixture *f)
{
    client c;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    client_close(&c);
    usleep(50000);
}

TEST(closed_connection_with_pending_response)
{
    fixture f;
    evloop_timer t;
    memset(&f, 0, sizeof f);
    closes_seen = 0;
    held_req = NULL;
    /* the fixture, by hand: a release timer runs beside the client */
    REQUIRE_INT(server_up(&f, NULL, handler), ==, 0);
    evloop_timer_init(f.loop, &t);
    evloop_timer_start(&t, release_held, 300, 0);
    run_client(&f, client_vanishes);
    CHECK_INT(closes_seen, ==, 1);
    CHECK(held_req == NULL);
    server_down(&f);
}

/* A request that does not keep the connection is the last one processed
 * (RFC 9112 9.6): one pipelined after it never reaches the handler, even
 * while the first is still being answered. */
static void release_held_ok(evloop_timer *t)
{
    CHECK_INT(http_res_end(held_req, "late", 4), ==, 0);
    held_req = NULL;
    evloop_close(&t->handle, NULL);
}
static void client_after_close(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "late");
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_eof_within(&c, 3000));
    client_close(&c);
}

TEST(nothing_processed_after_a_closing_request)
{
    fixture f;
    evloop_timer t;
    memset(&f, 0, sizeof f);
    held_req = NULL;
    REQUIRE_INT(server_up(&f, NULL, handler), ==, 0);
    evloop_timer_init(f.loop, &t);
    evloop_timer_start(&t, release_held_ok, 200, 0);
    run_client(&f, client_after_close);
    CHECK_INT(f.st.requests_total, ==, 1);
    server_down(&f);
}

/* An upgrade accepted while an earlier response is still pending, then the
 * connection goes (a shutdown's deadline): the upgrade callback still runs,
 * without a stream, so the handler can close the target it made
 * (server_down checks that the loop holds nothing more). */
static void *hold_then_upgrade_client(void *arg)
{
    fixture *f = (fixture *)arg;
    client c;
    if (client_open(&c, f->port) == 0) {
        client_sends(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
        CHECK(client_closed_within(&c, 3000));
    }
    client_close(&c);
    return NULL;
}

TEST(upgrade_callback_runs_when_the_connection_goes_first)
{
    fixture f;
    evloop_timer t;
    pthread_t th;
    memset(&f, 0, sizeof f);
    closes_seen = 0;
    held_req = NULL;
    upgrade_cb_calls = upgrade_cb_lost = 0;
    REQUIRE_INT(server_up(&f, NULL, handler), ==, 0);
    shut_fix = &f;
    pthread_create(&th, NULL, hold_then_upgrade_client, &f);
    evloop_timer_init(f.loop, &t);
    evloop_timer_start(&t, shutdown_soon, 50, 0);
    evloop_run(f.loop, EVLOOP_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK_INT(upgrade_cb_calls, ==, 1);
    CHECK_INT(upgrade_cb_lost, ==, 1);
    CHECK_INT(closes_seen, ==, 1);
    server_down(&f);
}

/* Keep-alive idle timeout. */
static void client_idle(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_get(&c, "/hello", &r), ==, 0);
    resp_free(&r);
    CHECK(!client_closed_within(&c, 100));
    CHECK(client_closed_within(&c, 1000));
    client_close(&c);
    /* a connection that keeps asking is not idle: requests every 50 ms for
     * six times the timeout, each one answered in the read callback that
     * brought it, then the same with partial heads in between */
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    {
        double t0 = test_now_ms();
        int n = 0;
        while (test_now_ms() - t0 < 750) { /* whole requests */
            client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
            REQUIRE_INT(client_response(&c, &r), ==, 0);
            CHECK_INT(r.status, ==, 200);
            resp_free(&r);
            usleep(50000);
            n++;
        }
        while (test_now_ms() - t0 < 1500) { /* and with a head cut in two */
            client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hel");
            REQUIRE_INT(client_response(&c, &r), ==, 0);
            CHECK_INT(r.status, ==, 200);
            resp_free(&r);
            usleep(25000);
            client_sends(&c, "lo HTTP/1.1\r\nHost: x\r\n\r\n");
            REQUIRE_INT(client_response(&c, &r), ==, 0);
            CHECK_INT(r.status, ==, 200);
            resp_free(&r);
            usleep(25000);
            n++;
        }
        CHECK_INT(n, >=, 10);
    }
    CHECK(client_closed_within(&c, 1000)); /* then idle: closed */
    client_close(&c);
}

TEST(keepalive_idle_timeout)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.keepalive_timeout_ms = 250;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_idle);
}

/* max_requests_per_connection, and a response shorter than promised. */
static void client_maxreq(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK(resp_header(&r, "Connection") == NULL);
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(client_closed_within(&c, 2000)); /* the framing broke: closed */
    client_close(&c);
}

TEST(max_requests_and_broken_framing)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.max_requests_per_connection = 2;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_maxreq);
}

/* A file body with sendfile, in order with pipelined responses. */
static void client_file(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /file?off=2&len=5 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /file?off=0&len=300000 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "23456");
    CHECK_STR(resp_header(&r, "Content-Length"), "5");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_UINT(r.body_len, ==, 300000);
    CHECK(r.body_len == 300000 && r.body[299999] == (char)('0' + 299999 % 10));
    resp_free(&r);
    client_sends(&c, "HEAD /file?off=0&len=7 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response_ex(&c, &r, HTTP_METHOD_HEAD, true), ==, 0);
    CHECK_STR(resp_header(&r, "Content-Length"), "7");
    CHECK_UINT(r.body_len, ==, 0);
    resp_free(&r);
    /* a Content-Length that is not the file's: refused (500), fd closed */
    REQUIRE_INT(client_get(&c, "/clfile?cl=10&len=5&rc=-22", &r), ==, 0);
    CHECK_INT(r.status, ==, 500);
    CHECK_STR(resp_header(&r, "Content-Length"), "0");
    resp_free(&r);
    /* the same one: fine, and the connection is in step */
    REQUIRE_INT(client_get(&c, "/clfile?cl=5&len=5", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "01234");
    resp_free(&r);
    /* after a write: -EALREADY, nothing changed (fd closed all the same) */
    REQUIRE_INT(client_get(&c, "/writefile", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "w");
    resp_free(&r);
    REQUIRE_INT(client_in_step(&c), ==, 0);
    client_close(&c);
}

TEST(sendfile_bodies)
{
    fixture f;
    char path[64], *data = (char *)malloc(300000);
    int i;
    snprintf(path, sizeof path, "/tmp/http-test-file-%d", (int)getpid());
    file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(file_fd >= 0);
    for (i = 0; i < 300000; i++)
        data[i] = (char)('0' + i % 10);
    REQUIRE_INT(write(file_fd, data, 300000), ==, 300000);
    memset(&f, 0, sizeof f);
    run_fixture(&f, NULL, handler, client_file);
    close(file_fd);
    unlink(path);
    free(data);
}

/* Upgrade: the 101, then the socket is the handler's (bytes sent with the
 * request included). A declined upgrade leaves HTTP going on. */
static void client_upgrade(fixture *f)
{
    client c;
    response r;
    char buf[64];
    size_t got;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "GET /upgrade?decline=1 HTTP/1.1\r\nHost: x\r\n"
                               "Connection: Upgrade\r\nUpgrade: echo\r\n\r\n", &r), ==, 0);
    CHECK_STR(r.body, "no upgrade");
    resp_free(&r);
    REQUIRE_INT(client_ask(&c, "GET /upgrade HTTP/1.1\r\nHost: x\r\n"
                               "Connection: Upgrade\r\nUpgrade: echo\r\n\r\nearly", &r), ==, 0);
    CHECK_INT(r.status, ==, 101);
    CHECK_STR(resp_header(&r, "Upgrade"), "echo");
    CHECK_STR(resp_header(&r, "Connection"), "Upgrade");
    resp_free(&r);
    /* "early" comes back first, echoed (some of it may have been read) */
    client_sends(&c, "+raw");
    got = client_raw(&c, buf, sizeof buf, 9);
    CHECK_MEM(buf, got, "early+raw");
    client_close(&c);
}

TEST(upgrade_hands_the_socket_over)
{
    fixture f;
    memset(&f, 0, sizeof f);
    upgrade_cb_calls = 0;
    run_fixture(&f, NULL, handler, client_upgrade);
    CHECK_INT(upgrade_cb_calls, ==, 1);
    CHECK_STR(upgrade_leftover, "early");
}

/* A listen that fails (an address that is not this machine's) leaves the
 * server as it was: the next listen works, and so does the shutdown. */
static void client_hello(fixture *f)
{
    response r;
    REQUIRE_INT(get_once(f->port, "/hello", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    resp_free(&r);
}

TEST(listen_again_after_a_failed_listen)
{
    fixture f;
    int i;
    memset(&f, 0, sizeof f);
    REQUIRE_INT(server_new(&f, NULL, handler), ==, 0);
    for (i = 0; i < 12; i++) /* more than any fixed table of listeners */
        CHECK(http_server_listen(f.srv, "192.0.2.1", 0) < 0); /* TEST-NET-1: not ours */
    CHECK_INT(http_server_listen(f.srv, "localhost", 0), ==, -EINVAL); /* numeric only */
    REQUIRE_INT(http_server_listen(f.srv, "127.0.0.1", 0), ==, 0);
    f.port = http_server_port(f.srv);
    run_client(&f, client_hello);
    server_down(&f);
}

/* An accept that fails (the loop cannot watch one more descriptor) leaves
 * the other connections to the server: the shutdown still finds them. */
static void client_failed_accept(fixture *f)
{
    client a, b;
    int keep[256], nkeep = 0, fd;
    REQUIRE_INT(client_open(&a, f->port), ==, 0);
    client_sends(&a, "GET /pair HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    /* the next descriptors are past the loop's table (64 entries) */
    while (nkeep < 256 && (fd = dup(0)) >= 0) {
        keep[nkeep++] = fd;
        if (fd >= 64)
            break;
    }
    __atomic_store_n(&fail_watcher_growth, 1, __ATOMIC_SEQ_CST);
    REQUIRE_INT(client_open(&b, f->port), ==, 0);
    CHECK(client_closed_within(&b, 2000)); /* refused by the server */
    CHECK_INT(__atomic_load_n(&fail_watcher_growth, __ATOMIC_SEQ_CST), ==, 0);
    client_close(&b);
    while (nkeep)
        close(keep[--nkeep]);
    fixture_shutdown(f); /* 200 ms deadline: the held request is cut */
    CHECK(client_closed_within(&a, 2000));
    client_close(&a);
}

TEST(failed_accept_keeps_the_other_connections)
{
    fixture f;
    memset(&f, 0, sizeof f);
    f.shut_ms = 200;
    npairs = 0;
    pair_closes = 0;
    run_fixture(&f, NULL, handler, client_failed_accept);
    CHECK_INT(pair_closes, ==, 1);
    CHECK_UINT(f.st.connections, ==, 0);
}

/* Unix-domain socket listener. A socket file left by a server that is gone
 * is replaced; one in use is not; the file is removed at shutdown; a file
 * that is not a socket is never touched. */
TEST(unix_socket_listener)
{
    evloop *loop;
    http_server *srv, *other;
    fixture f;
    char path[64];
    int fd;
    struct sockaddr_un a;
    char buf[512] = "";
    ssize_t n, got = 0;
    snprintf(path, sizeof path, "/tmp/http-test-%d.sock", (int)getpid());
    unlink(path);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0); /* the stale one: bound, closed, left */
    REQUIRE_INT(bind(fd, (struct sockaddr *)&a, sizeof a), ==, 0);
    close(fd);
    memset(&f, 0, sizeof f);
    REQUIRE_INT(evloop_new(&loop, NULL), ==, 0);
    REQUIRE_INT(http_server_new(&srv, loop, NULL, handler), ==, 0);
    http_server_set_data(srv, &f);
    REQUIRE_INT(http_server_listen_unix(srv, path), ==, 0);
    CHECK_INT(http_server_port(srv), ==, -1);
    REQUIRE_INT(http_server_new(&other, loop, NULL, handler), ==, 0);
    CHECK_INT(http_server_listen_unix(other, path), ==, -EADDRINUSE);
    http_server_shutdown(other, 0, NULL);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE_INT(connect(fd, (struct sockaddr *)&a, sizeof a), ==, 0);
    REQUIRE_INT(write(fd, "GET /hello HTTP/1.0\r\n\r\n", 23), ==, 23);
    while (!strstr(buf, "Hello, World!")) {
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
        n = recv(fd, buf + got, sizeof buf - 1 - (size_t)got, MSG_DONTWAIT);
        if (n > 0)
            got += n;
        buf[got] = 0;
        if (n == 0)
            break;
    }
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK(strstr(buf, "Hello, World!") != NULL);
    close(fd);
    http_server_shutdown(srv, 0, on_server_done);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(f.server_done, ==, 1);
    CHECK_INT(access(path, F_OK), ==, -1); /* removed with its listener */
    CHECK_INT(http_server_free(srv), ==, 0);
    CHECK_INT(http_server_free(other), ==, 0);
    /* a regular file where the socket would go: refused, left alone */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE_INT(http_server_new(&srv, loop, NULL, handler), ==, 0);
    CHECK_INT(http_server_listen_unix(srv, path), ==, -EADDRINUSE);
    http_server_shutdown(srv, 0, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(http_server_free(srv), ==, 0);
    CHECK_INT(access(path, F_OK), ==, 0);
    CHECK_INT(evloop_free(loop), ==, 0);
    unlink(path);
}

/* Several loops on several threads share one port (SO_REUSEPORT). */
typedef struct worker {
    evloop *loop;
    http_server *srv;
    evloop_async stop;
    pthread_t th;
    int port;
    int served;
} worker;
static void worker_handler(http_req *req)
{
    worker *w = (worker *)http_server_get_data(req->server);
    w->served++;
    http_res_send(req, 200, "text/plain", "ok", 2);
}
static void worker_stop(evloop_async *a)
{
    worker *w = (worker *)a->handle.data;
    http_server_shutdown(w->srv, 0, NULL);
    evloop_close(&a->handle, NULL);
}
static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    evloop_run(w->loop, EVLOOP_RUN_DEFAULT);
    return NULL;
}

TEST(reuseport_several_loops)
{
    worker w[2];
    http_server_options o;
    int i, port = 0, ok = 0;
    memset(&o, 0, sizeof o);
    o.reuseport = 1;
    for (i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof w[i]);
        REQUIRE_INT(evloop_new(&w[i].loop, NULL), ==, 0);
        REQUIRE_INT(http_server_new(&w[i].srv, w[i].loop, &o, worker_handler), ==, 0);
        http_server_set_data(w[i].srv, &w[i]);
        REQUIRE_INT(http_server_listen(w[i].srv, "127.0.0.1", port), ==, 0);
        port = http_server_port(w[i].srv);
        w[i].stop.handle.data = &w[i];
        evloop_async_init(w[i].loop, &w[i].stop, worker_stop);
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    for (i = 0; i < 60; i++) {
        response r;
        if (get_once(port, "/", &r) == 0 && r.status == 200)
            ok++;
        resp_free(&r);
    }
    for (i = 0; i < 2; i++) {
        evloop_async_send(&w[i].stop);
        pthread_join(w[i].th, NULL);
        CHECK_INT(http_server_free(w[i].srv), ==, 0);
        CHECK_INT(evloop_free(w[i].loop), ==, 0);
    }
    CHECK_INT(ok, ==, 60);
    CHECK_INT(w[0].served + w[1].served, ==, 60);
    CHECK_INT(w[0].served, >, 0); /* the kernel spreads connections */
    CHECK_INT(w[1].served, >, 0);
}


/* ---- requests and their ends: aborts, bodies after the last request, upgrades ------ */

/* An on_close callback that ends the other requests of its connection
 * (the first of two held requests ends both): each released once. */
static void client_pair(fixture *f)
{
    client c;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /pair HTTP/1.1\r\nHost: x\r\n\r\nGET /pair HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100000); /* both handlers ran */
    client_close(&c);
    usleep(100000);
}

TEST(on_close_may_end_other_requests)
{
    fixture f;
    memset(&f, 0, sizeof f);
    npairs = 0;
    pair_closes = 0;
    run_fixture(&f, NULL, handler, client_pair);
    CHECK_INT(npairs, ==, 2);
    CHECK_INT(pair_closes, ==, 1); /* the second had ended before its turn */
    CHECK(pairs[0] == NULL && pairs[1] == NULL);
    CHECK_UINT(f.st.aborted, ==, 2);
    CHECK_UINT(f.st.requests, ==, 0);
}

/* A client that pipelines requests and never reads the responses: the
 * server stops taking requests once write_high_water bytes of output wait,
 * its memory stays bounded, and the write timeout closes the connection. */
#define FLOOD_REQUESTS 10000
static long tcp_wmem_max(void)
{
    long lo, def, max = 4L << 20; /* the kernel's default */
    FILE *fp = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (fp && fscanf(fp, "%ld %ld %ld", &lo, &def, &max) != 3)
        max = 4L << 20;
    if (fp)
        fclose(fp);
    return max;
}
static int flood_closed;
static size_t flood_base, flood_peak;
static void client_flood(fixture *f)
{
    static const char one[] = "GET /blob?bytes=8192 HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n = sizeof one - 1, total = n * FLOOD_REQUESTS, sent = 0, i;
    char *all = (char *)malloc(total);
    client c;
    struct pollfd pfd;
    double end;
    for (i = 0; i < FLOOD_REQUESTS; i++)
        memcpy(all + i * n, one, n);
    REQUIRE_INT(client_open_rcvbuf(&c, f->port, 4096), ==, 0);
    flood_base = mem_now();
    mem_reset_peak();
    end = test_now_ms() + 1500;
    while (sent < total && test_now_ms() < end) {
        ssize_t k = send(c.fd, all + sent, total - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0)
            sent += (size_t)k;
        else if (k < 0 && errno != EAGAIN)
            break;
        else
            usleep(10000);
    }
    /* never read: the server gives up after write_timeout_ms (300) */
    pfd.fd = c.fd;
    pfd.events = POLLRDHUP;
    end = test_now_ms() + 5000;
    while (!flood_closed && test_now_ms() < end)
        if (poll(&pfd, 1, 100) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            flood_closed = 1;
    flood_peak = mem_max();
    client_close(&c);
    free(all);
}

TEST(pipelining_client_that_never_reads)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.write_timeout_ms = 300;
    memset(&f, 0, sizeof f);
    flood_closed = 0;
    handler_calls = 0;
    run_fixture(&f, &o, handler, client_flood);
    CHECK(flood_closed);
    CHECK_UINT(f.st.timeouts, ==, 1);
    /* the responses made fit in the kernel's send buffer (at most its
     * tcp_wmem maximum) and the 64 KiB of queued output; without the bound
     * all 10000 were made */
    CHECK_INT(handler_calls, <, tcp_wmem_max() / 8192 + 100);
    CHECK_UINT(flood_peak - flood_base, <, 1u << 20);
}

/* A streamed body goes on arriving after a response head that closes the
 * connection (Connection: close, HTTP/1.0): the handler gets all of it. */
static void client_body_after_closing_head(fixture *f)
{
    static const char *heads[] = {
        "POST /ackread HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n",
        "POST /ackread HTTP/1.0\r\nContent-Length: 10\r\n\r\n"};
    int i;
    for (i = 0; i < 2; i++) {
        client c;
        response r;
        double t0;
        REQUIRE_INT(client_open(&c, f->port), ==, 0);
        client_sends(&c, heads[i]);
        usleep(100000); /* the handler has sent its head */
        t0 = test_now_ms();
        client_sends(&c, "0123456789");
        REQUIRE_INT(client_response(&c, &r), ==, 0);
        CHECK_INT(r.status, ==, 200);
        CHECK_STR(r.body, "ack\n0123456789end\n");
        CHECK_STR(resp_header(&r, "Connection"), "close");
        CHECK(test_now_ms() - t0 < 2000);
        resp_free(&r);
        CHECK(client_closed_within(&c, 2000));
        client_close(&c);
    }
}

TEST(streamed_body_after_closing_head)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.stream_bodies = 1;
    o.body_timeout_ms = 5000;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_body_after_closing_head);
}

/* The last request max_requests_per_connection allows still gets its body. */
static void client_last_request_body(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    usleep(100000);
    client_sends(&c, "hello");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "hello");
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
}

TEST(last_request_of_a_connection_reads_its_body)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.max_requests_per_connection = 1;
    o.body_timeout_ms = 5000;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_last_request_body);
}

/* Graceful shutdown: an upload in progress and pipelined requests already
 * received are all answered (Connection: close), none is lost. */
static int shutdown_answered;
static void *shutdown_pipeliner(void *arg)
{
    fixture *f = (fixture *)arg;
    client c;
    response r;
    int i;
    if (client_open(&c, f->port) != 0)
        return NULL;
    client_sends(&c, "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /slow?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
    for (i = 0; i < 3; i++) {
        if (client_response(&c, &r) != 0)
            break;
        if (r.status == 200 && (i < 2 || resp_closes(&r)))
            __atomic_add_fetch(&shutdown_answered, 1, __ATOMIC_SEQ_CST);
        resp_free(&r);
    }
    client_close(&c);
    return NULL;
}
static void client_shutdown_in_flight(fixture *f)
{
    client c;
    response r;
    pthread_t th;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    pthread_create(&th, NULL, shutdown_pipeliner, f);
    usleep(50000); /* everything above has arrived */
    fixture_shutdown(f);
    client_sends(&c, "world");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "helloworld");
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
    pthread_join(th, NULL);
}

TEST(shutdown_answers_uploads_and_pipelined_requests)
{
    fixture f;
    memset(&f, 0, sizeof f);
    shutdown_answered = 0;
    run_fixture(&f, NULL, handler, client_shutdown_in_flight);
    CHECK_INT(shutdown_answered, ==, 3);
    CHECK_UINT(f.st.timeouts, ==, 0);
}

/* An Upgrade request with a body (curl --http2 -d sends one): the body is
 * HTTP's; declined, the connection goes on; accepted, the new protocol
 * starts after the body. */
static void client_upgrade_body(fixture *f)
{
    client c;
    response r;
    char buf[64];
    size_t got;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "POST /upgrade?decline=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     "Upgrade: h2c\r\nContent-Length: 5\r\n\r\n");
    usleep(50000);
    client_sends(&c, "hello");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "no upgrade");
    resp_free(&r);
    REQUIRE_INT(client_in_step(&c), ==, 0);
    client_sends(&c, "POST /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
                     "Content-Length: 5\r\n\r\n");
    usleep(50000);
    client_sends(&c, "helloearly");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 101);
    resp_free(&r);
    got = client_raw(&c, buf, sizeof buf, 5);
    CHECK_MEM(buf, got, "early");
    client_close(&c);
}

TEST(upgrade_request_with_a_body)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.body_timeout_ms = 5000;
    memset(&f, 0, sizeof f);
    upgrade_cb_calls = 0;
    run_fixture(&f, &o, handler, client_upgrade_body);
    CHECK_INT(upgrade_cb_calls, ==, 1);
    CHECK_STR(upgrade_leftover, "early");
}

/* Streamed bodies: http_req_read on a request without a body ends it from
 * the loop (pipelined, one after the other); a handler that answers from
 * on_data, before the body's end, gets no more callbacks, and the rest of
 * a small body is skipped so the connection goes on. */
static void client_stream_ends(fixture *f)
{
    client c;
    response r;
    char body[5000];
    memset(body, 0, sizeof body);
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /upload HTTP/1.1\r\nHost: x\r\n\r\nGET /upload HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "0 0");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "0 0");
    resp_free(&r);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    client_sends(&c, "POST /upload?limit=1000 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    client_send(&c, body, 2000);
    usleep(50000);
    client_send(&c, body + 2000, 3000);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 413);
    resp_free(&r);
    REQUIRE_INT(client_in_step(&c), ==, 0);
    client_close(&c);
}

TEST(streamed_body_ends)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.stream_bodies = 1;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_stream_ends);
}

/* body_timeout_ms is the longest silence: a slow but steady body outlives
 * it, a stalled one is cut; a streamed body the handler reads late is not
 * under it while the handler holds it. */
static void client_body_timeout(fixture *f)
{
    client c;
    response r;
    double t0;
    int i;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n");
    for (i = 0; i < 8; i++) { /* 8 x 100 ms: twice the timeout in all */
        usleep(100000);
        REQUIRE_INT(client_send(&c, "x", 1), ==, 0);
    }
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "xxxxxxxx");
    resp_free(&r);
    /* stalled after 3 bytes: cut */
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nxxx");
    t0 = test_now_ms();
    CHECK(client_closed_within(&c, 3000));
    CHECK(test_now_ms() - t0 > 300);
    client_close(&c);
}

TEST(body_timeout_is_a_silence_limit)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.body_timeout_ms = 400;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_body_timeout);
    CHECK_UINT(f.st.timeouts, ==, 1);
}

static void client_late_reader(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "POST /lateread?ms=600 HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 5\r\n\r\nhello", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "helloend\n");
    resp_free(&r);
    client_close(&c);
}

TEST(body_timeout_waits_for_a_late_reader)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.stream_bodies = 1;
    o.body_timeout_ms = 200;
    memset(&f, 0, sizeof f);
    run_fixture(&f, &o, handler, client_late_reader);
    CHECK_UINT(f.st.timeouts, ==, 0);
}

/* ---- asynchronous handlers, a client that left, request fields, Date --------------- */

/* Handlers that answer later: from a thread's work (through evloop_async,
 * like a pool completion) and from another connection's handler; the
 * responses still leave in request order. */
static void client_async(fixture *f)
{
    client a, b;
    response r;
    REQUIRE_INT(client_open(&a, f->port), ==, 0);
    client_sends(&a, "GET /thread?ms=80 HTTP/1.1\r\nHost: x\r\n\r\nGET /thread?ms=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_INT(client_response(&a, &r), ==, 0);
    CHECK_STR(r.body, "thread 80");
    resp_free(&r);
    REQUIRE_INT(client_response(&a, &r), ==, 0);
    CHECK_STR(r.body, "thread 10");
    resp_free(&r);
    /* /wait (with /hello behind it) is answered by /wake on connection b */
    client_sends(&a, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    REQUIRE_INT(client_open(&b, f->port), ==, 0);
    REQUIRE_INT(client_get(&b, "/wake", &r), ==, 0);
    CHECK_STR(r.body, "woke");
    resp_free(&r);
    REQUIRE_INT(client_response(&a, &r), ==, 0);
    CHECK_STR(r.body, "woken");
    resp_free(&r);
    REQUIRE_INT(client_response(&a, &r), ==, 0);
    CHECK_STR(r.body, "Hello, World!");
    resp_free(&r);
    client_close(&b);
    client_close(&a);
}

TEST(asynchronous_handlers)
{
    fixture f;
    memset(&f, 0, sizeof f);
    waiting = NULL;
    run_fixture(&f, NULL, handler, client_async);
}

/* A response written after its client left: -ECONNRESET from every call,
 * and http_res_end releases the request. */
static void client_leaves(fixture *f)
{
    client c;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /late?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(30000);
    client_close(&c);
    usleep(250000); /* the late write has happened */
}

TEST(writes_after_the_client_left)
{
    fixture f;
    memset(&f, 0, sizeof f);
    late_checked = 0;
    run_fixture(&f, NULL, handler, client_leaves);
    CHECK_INT(late_checked, ==, 1);
    CHECK_UINT(f.st.aborted, ==, 1);
    CHECK_UINT(f.st.requests, ==, 0);
}

/* http_req_header: case-insensitive, the first of repeated fields. */
static void client_req_header(fixture *f)
{
    client c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    REQUIRE_INT(client_ask(&c, "GET /hdr HTTP/1.1\r\nHost: x\r\nX-TeSt: value one\r\nX-Test: two\r\n\r\n",
                           &r), ==, 0);
    CHECK_STR(r.body, "value one");
    resp_free(&r);
    REQUIRE_INT(client_get(&c, "/hdr", &r), ==, 0);
    CHECK_STR(r.body, "none");
    resp_free(&r);
    client_close(&c);
}

TEST(request_header_lookup) { run_default(client_req_header); }

/* Date: an IMF-fixdate of now on every response, the same cached line for
 * responses of the same second. */
static void client_date(fixture *f)
{
    client c;
    response r;
    int i, distinct = 0;
    char last[64] = "";
    time_t t0 = time(NULL), t1;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    for (i = 0; i < 50; i++) {
        const char *d;
        struct tm tm;
        const char *end;
        time_t t;
        REQUIRE_INT(client_get(&c, "/hello", &r), ==, 0);
        d = resp_header(&r, "Date");
        REQUIRE(d != NULL);
        CHECK_UINT(strlen(d), ==, 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
        memset(&tm, 0, sizeof tm);
        end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        CHECK(end && *end == 0);
        t = timegm(&tm);
        t1 = time(NULL);
        CHECK(t >= t0 - 1 && t <= t1 + 1);
        if (strcmp(d, last) != 0)
            distinct++;
        snprintf(last, sizeof last, "%s", d);
        resp_free(&r);
    }
    t1 = time(NULL);
    CHECK_INT(distinct, <=, (int)(t1 - t0) + 1); /* it changes once a second */
    client_close(&c);
}

TEST(date_header) { run_default(client_date); }

/* IPv6: a server on ::1 (skipped where the machine has no IPv6 loopback). */
static void client_v6(fixture *f)
{
    struct sockaddr_in6 a;
    client c;
    response r;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)f->port);
    a.sin6_addr = in6addr_loopback;
    REQUIRE_INT(client_connect(&c, (struct sockaddr *)&a, sizeof a, 0), ==, 0);
    REQUIRE_INT(client_ask(&c, "GET /peer HTTP/1.1\r\nHost: [::1]\r\n\r\n", &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "ipv6");
    resp_free(&r);
    client_close(&c);
}

TEST(ipv6_loopback)
{
    fixture f;
    int rc;
    memset(&f, 0, sizeof f);
    REQUIRE_INT(server_new(&f, NULL, handler), ==, 0);
    rc = http_server_listen(f.srv, "::1", 0);
    if (rc < 0) {
        http_server_shutdown(f.srv, 0, NULL);
        evloop_run(f.loop, EVLOOP_RUN_DEFAULT);
        CHECK_INT(http_server_free(f.srv), ==, 0);
        CHECK_INT(evloop_free(f.loop), ==, 0);
        SKIP("no IPv6 loopback");
    }
    f.port = http_server_port(f.srv);
    run_client(&f, client_v6);
    server_down(&f);
}

/* handle_signals: SIGTERM starts the graceful shutdown: the listener
 * closes, the request in flight is answered (Connection: close), and
 * evloop_run returns when it is over. */
static void client_sigterm(fixture *f)
{
    client c, late_c;
    response r;
    REQUIRE_INT(client_open(&c, f->port), ==, 0);
    client_sends(&c, "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    kill(getpid(), SIGTERM);
    usleep(100000);
    CHECK(client_open(&late_c, f->port) != 0); /* no longer listening */
    client_close(&late_c);
    REQUIRE_INT(client_response(&c, &r), ==, 0);
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, "/slow");
    CHECK_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(client_closed_within(&c, 2000));
    client_close(&c);
}

TEST(sigterm_shuts_down_gracefully)
{
    fixture f;
    http_server_options o;
    memset(&o, 0, sizeof o);
    o.handle_signals = 1;
    o.shutdown_timeout_ms = 3000;
    memset(&f, 0, sizeof f);
    REQUIRE_INT(server_up(&f, &o, handler), ==, 0);
    CHECK_INT(run_client(&f, client_sigterm), ==, 0);
    CHECK_INT(http_server_free(f.srv), ==, 0); /* the shutdown completed */
    CHECK_INT(evloop_free(f.loop), ==, 0);
}

/* Real clients: curl, ab (HTTP/1.0 keep-alive), Node's http module. Each
 * one's test is skipped when the tool is missing, except under CI (the
 * variable CI is set), whose set-up (.ci/run) installs all three: there a
 * missing tool fails. */
static int have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}
#define NEED_TOOL(tool)                                                            \
    do {                                                                           \
        if (!have(tool)) {                                                         \
            if (getenv("CI")) {                                                    \
                fprintf(stderr, "%s is not installed, and CI is set\n", tool);   \
                CHECK(!"a real client is missing");                                \
                return;                                                            \
            }                                                                      \
            SKIP(tool " is not installed");                                        \
        }                                                                          \
    } while (0)

static int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (!p)
        return -1;
    while (n + 1 < cap) {
        size_t k = fread(out + n, 1, cap - 1 - n, p);
        if (!k)
            break;
        n += k;
    }
    out[n] = 0;
    return pclose(p);
}

static void client_curl(fixture *f)
{
    static char out[65536];
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "curl -sS --max-time 10 http://127.0.0.1:%d/hello http://127.0.0.1:%d/hello "
             "-w ' %%{http_code} %%{num_connects}\\n' 2>&1",
             f->port, f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK_STR(out, "Hello, World! 200 1\nHello, World! 200 0\n"); /* one connection, reused */
    snprintf(cmd, sizeof cmd,
             "printf 'hello chunked' | curl -sS --max-time 10 -H 'Transfer-Encoding: chunked' "
             "--data-binary @- http://127.0.0.1:%d/echo 2>&1",
             f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK_STR(out, "hello chunked");
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 10 -I http://127.0.0.1:%d/hello 2>&1", f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK(strstr(out, "HTTP/1.1 200 OK\r\n") == out);
    CHECK(strstr(out, "Content-Length: 13\r\n") != NULL);
    /* curl --http2 -d: an h2c Upgrade request with a body, declined */
    snprintf(cmd, sizeof cmd,
             "curl -sS --max-time 10 --http2 -d 'from curl' http://127.0.0.1:%d/echo 2>&1", f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK_STR(out, "from curl");
}

TEST(real_client_curl)
{
    fixture f;
    NEED_TOOL("curl");
    memset(&f, 0, sizeof f);
    run_fixture(&f, NULL, handler, client_curl);
}

static void client_ab(fixture *f)
{
    static char out[65536];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ab -q -k -n 300 -c 4 http://127.0.0.1:%d/hello 2>&1", f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK(strstr(out, "Complete requests:      300") != NULL);
    CHECK(strstr(out, "Failed requests:        0") != NULL);
    CHECK(strstr(out, "Keep-Alive requests:    300") != NULL);
    if (!strstr(out, "Keep-Alive requests:    300"))
        fprintf(stderr, "%s\n", out);
}

TEST(real_client_ab_http10_keepalive)
{
    fixture f;
    NEED_TOOL("ab");
    memset(&f, 0, sizeof f);
    run_fixture(&f, NULL, handler, client_ab);
}

static void client_node(fixture *f)
{
    static char out[65536];
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "node -e \"const http=require('http');const a=new http.Agent({keepAlive:true});"
             "function get(p){return new Promise((ok,ko)=>http.get({port:%d,host:'127.0.0.1',path:p,agent:a},"
             "r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>ok(r.statusCode+' '+b))}).on('error',ko))}"
             "function post(p,d){return new Promise((ok,ko)=>{const q=http.request({port:%d,host:'127.0.0.1',"
             "path:p,method:'POST',agent:a},r=>{let b='';r.on('data',x=>b+=x);r.on('end',()=>ok(r.statusCode+' '+b))});"
             "q.on('error',ko);q.write(d.slice(0,3));q.end(d.slice(3))})}"
             "(async()=>{console.log(await get('/hello'));console.log(await post('/echo','from node'));"
             "console.log(await get('/stream?bytes=70000').then(s=>s.length));a.destroy()})()"
             ".catch(e=>{console.log('ERR',e.message);process.exit(1)})\" 2>&1",
             f->port, f->port);
    CHECK_INT(run_capture(cmd, out, sizeof out), ==, 0);
    CHECK_STR(out, "200 Hello, World!\n200 from node\n70004\n");
}

TEST(real_client_node)
{
    fixture f;
    NEED_TOOL("node");
    memset(&f, 0, sizeof f);
    run_fixture(&f, NULL, handler, client_node);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(keepalive_and_basics);
    RUN(server_name);
    RUN(pipelining_in_order);
    RUN(chunked_request_and_response);
    RUN(hundred_mib_each_way_constant_memory);
    RUN(no_body_statuses);
    RUN(parser_errors_answered_with_their_status);
    RUN(expect_continue);
    RUN(slowloris_cut_at_header_timeout);
    RUN(client_that_never_reads);
    RUN(max_connections);
    RUN(http10_with_and_without_keepalive);
    RUN(head_requests);
    RUN(graceful_shutdown_loses_nothing);
    RUN(shutdown_deadline_closes_held_requests);
    RUN(nothing_processed_after_a_closing_request);
    RUN(upgrade_callback_runs_when_the_connection_goes_first);
    RUN(closed_connection_with_pending_response);
    RUN(keepalive_idle_timeout);
    RUN(max_requests_and_broken_framing);
    RUN(sendfile_bodies);
    RUN(upgrade_hands_the_socket_over);
    RUN(listen_again_after_a_failed_listen);
    RUN(failed_accept_keeps_the_other_connections);
    RUN(unix_socket_listener);
    RUN(reuseport_several_loops);
    RUN(on_close_may_end_other_requests);
    RUN(pipelining_client_that_never_reads);
    RUN(streamed_body_after_closing_head);
    RUN(last_request_of_a_connection_reads_its_body);
    RUN(shutdown_answers_uploads_and_pipelined_requests);
    RUN(upgrade_request_with_a_body);
    RUN(streamed_body_ends);
    RUN(body_timeout_is_a_silence_limit);
    RUN(body_timeout_waits_for_a_late_reader);
    RUN(asynchronous_handlers);
    RUN(writes_after_the_client_left);
    RUN(request_header_lookup);
    RUN(date_header);
    RUN(ipv6_loopback);
    RUN(sigterm_shuts_down_gracefully);
    RUN(real_client_curl);
    RUN(real_client_ab_http10_keepalive);
    RUN(real_client_node);
    return test_done();
}
