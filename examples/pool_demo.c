/* pool_demo.c - pool.h on an event loop.
 *
 *   cc -O2 examples/pool_demo.c -o pool_demo -pthread && ./pool_demo
 *
 * 1. A timer ticks every 100 ms and prints how late it is, while CPU-heavy
 *    jobs (counting primes) run on a thread pool: the loop stays on time.
 * 2. A resource pool of TCP connections (at most 2) to a small echo
 *    service this program runs on 127.0.0.1 (a free port): jobs borrow a
 *    connection from the loop, talk on a worker thread, give it back. A
 *    third borrower times out; the service then drops its connections and
 *    validation on borrow replaces the dead ones; a connection that breaks
 *    during a job is released as broken. The pool's stats are printed.
 * It ends by itself after about two seconds.
 */
#define EVLOOP_IMPLEMENTATION
#define POOL_IMPLEMENTATION
#include "../evloop.h"
#include "../pool.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static evloop *loop;
static pool_loop *cpu;  /* CPU work: one worker per core */
static pool_loop *io;   /* blocking network work: its own 4 workers */
static pool_threads *io_threads;
static pool_res *conns;
static uint64_t t0;
static int port;

static unsigned long now_ms(void) { return (unsigned long)(evloop_now(loop) - t0); }

/* ---- 1. CPU work while the loop ticks ----------------------------------------- */

typedef struct primes_job {
    unsigned from, to, count;
} primes_job;

static void count_primes(void *arg) /* on a worker */
{
    primes_job *j = (primes_job *)arg;
    unsigned n, d;
    for (n = j->from < 2 ? 2 : j->from; n < j->to; n++) {
        for (d = 2; d * d <= n; d++)
            if (n % d == 0)
                break;
        if (d * d > n)
            j->count++;
    }
}

static void primes_done(void *arg, int status) /* on the loop */
{
    primes_job *j = (primes_job *)arg;
    if (status == 0)
        printf("%5lu ms  cpu: %u primes in [%u, %u)\n", now_ms(), j->count, j->from, j->to);
}

static unsigned ticks;
static unsigned long last_tick;
static void on_tick(evloop_timer *t)
{
    unsigned long at = now_ms();
    printf("%5lu ms  tick %u (%lu ms after the last one)\n", at, ++ticks, at - last_tick);
    last_tick = at;
    if (ticks == 20)
        evloop_timer_stop(t);
}

/* ---- a tiny echo service on the loop ----------------------------------------------- */

static evloop_stream server;
typedef struct client {
    evloop_stream s;
    struct client *next;
} client;
static client *clients;

static void client_closed(evloop_handle *h)
{
    client **p = &clients;
    while (*p && &(*p)->s.handle != h)
        p = &(*p)->next;
    if (*p)
        *p = (*p)->next;
    free(h->data);
}

static void echo_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0 && n >= 5 && memcmp(buf, "quit\n", 5) == 0)
        evloop_close(&s->handle, client_closed); /* a server-side failure */
    else if (n > 0)
        evloop_write_copy(s, buf, (size_t)n, NULL, NULL);
    else if (!evloop_is_closing(&s->handle))
        evloop_close(&s->handle, client_closed);
}

static void on_connection(evloop_stream *srv, int status)
{
    client *c;
    if (status < 0 || !(c = (client *)calloc(1, sizeof *c)))
        return;
    c->s.handle.data = c;
    evloop_tcp_init(loop, &c->s);
    if (evloop_accept(srv, &c->s) < 0) {
        evloop_close(&c->s.handle, client_closed);
        return;
    }
    c->next = clients;
    clients = c;
    evloop_read_start(&c->s, echo_read);
}

static void drop_all_clients(void)
{
    client *c;
    for (c = clients; c; c = c->next)
        if (!evloop_is_closing(&c->s.handle))
            evloop_close(&c->s.handle, client_closed);
}

/* ---- 2. a resource pool of connections ----------------------------------------------- */

typedef struct conn {
    int fd, id;
} conn;

static int next_conn_id;

static int conn_create(void *ctx, void **out) /* on a worker */
{
    struct sockaddr_storage ss;
    conn *c;
    int fd;
    (void)ctx;
    evloop_addr("127.0.0.1", port, &ss);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!(c = (conn *)malloc(sizeof *c))) {
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    c->id = __atomic_add_fetch(&next_conn_id, 1, __ATOMIC_SEQ_CST);
    *out = c;
    return 0;
}

static void conn_destroy(void *ctx, void *p)
{
    (void)ctx;
    close(((conn *)p)->fd);
    free(p);
}

/* Healthy while the peer has not closed it. */
static int conn_validate(void *ctx, void *p)
{
    char c;
    ssize_t r = recv(((conn *)p)->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    (void)ctx;
    if (r == 0)
        return -ECONNRESET;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -errno;
    return 0;
}

typedef struct job {
    pool_res_req req;
    pool_res_item *item;
    const char *msg;
    int hold_ms, id, broken;
    char reply[64];
} job;

static void echo_job(void *arg) /* on an io worker: blocking I/O is fine here */
{
    job *j = (job *)arg;
    conn *c = (conn *)j->item->resource;
    struct pollfd pfd;
    size_t len = strlen(j->msg), got = 0;
    struct timespec ts;
    if (send(c->fd, j->msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
        j->broken = 1;
        return;
    }
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    while (got < len && poll(&pfd, 1, 1000) == 1) {
        ssize_t r = recv(c->fd, j->reply + got, sizeof j->reply - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    j->reply[got] = '\0';
    if (got < len)
        j->broken = 1;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)j->hold_ms * 1000000L; /* a slow query */
    nanosleep(&ts, NULL);
}

static void echo_done(void *arg, int status) /* on the loop */
{
    job *j = (job *)arg;
    conn *c = (conn *)j->item->resource;
    if (status == 0 && !j->broken) {
        printf("%5lu ms  job %d: conn #%d echoed \"%.*s\"\n", now_ms(), j->id, c->id,
               (int)strcspn(j->reply, "\n"), j->reply);
        pool_res_release(j->item);
    } else {
        printf("%5lu ms  job %d: conn #%d broke, released as broken\n", now_ms(), j->id, c->id);
        pool_res_release_broken(j->item);
    }
    free(j);
}

static void got_conn(pool_res_req *req, int status, pool_res_item *item)
{
    job *j = (job *)req->data;
    if (status < 0) {
        printf("%5lu ms  job %d: no connection: %s\n", now_ms(), j->id, pool_strerror(status));
        free(j);
        return;
    }
    j->item = item;
    printf("%5lu ms  job %d: got conn #%d\n", now_ms(), j->id, ((conn *)item->resource)->id);
    pool_loop_call(io, echo_job, j, echo_done);
}

static void start_job(int id, const char *msg, int hold_ms, int timeout_ms)
{
    job *j = (job *)calloc(1, sizeof *j);
    if (!j)
        return;
    j->id = id;
    j->msg = msg;
    j->hold_ms = hold_ms;
    j->req.data = j;
    if (pool_res_acquire_async(conns, io, &j->req, timeout_ms, got_conn) < 0)
        free(j);
}

static void print_stats(const char *when)
{
    pool_res_stats st;
    pool_res_get_stats(conns, &st);
    printf("%5lu ms  pool %s: total %zu, idle %zu, in use %zu, waiting %zu; "
           "created %llu, destroyed %llu, timeouts %llu, validation failures %llu\n",
           now_ms(), when, st.total, st.idle, st.in_use, st.waiting,
           (unsigned long long)st.created, (unsigned long long)st.destroyed,
           (unsigned long long)st.timeouts, (unsigned long long)st.validation_failures);
}

/* ---- the script ------------------------------------------------------------------------ */

static int step;
static void on_step(evloop_timer *t)
{
    switch (step++) {
    case 0: /* 50 ms: three borrowers, two connections */
        printf("%5lu ms  --- three jobs want one of 2 connections (wait at most 150 ms)\n", now_ms());
        start_job(1, "hello from job 1\n", 400, 150);
        start_job(2, "hello from job 2\n", 400, 150);
        start_job(3, "hello from job 3\n", 400, 150);
        evloop_timer_start(t, on_step, 850, 0);
        break;
    case 1: /* 900 ms: the service drops every connection */
        print_stats("before the drop");
        printf("%5lu ms  --- the echo service drops all its connections\n", now_ms());
        drop_all_clients();
        evloop_timer_start(t, on_step, 100, 0);
        break;
    case 2: /* 1000 ms: validation on borrow replaces the dead ones */
        printf("%5lu ms  --- two jobs borrow again: the dead connections are replaced\n", now_ms());
        start_job(4, "hello from job 4\n", 50, 500);
        start_job(5, "quit\n", 50, 500); /* the service hangs up on this one */
        evloop_timer_start(t, on_step, 700, 0);
        break;
    default: /* 1700 ms: the end */
        print_stats("at the end");
        evloop_close(&t->handle, NULL);
        drop_all_clients();
        evloop_close(&server.handle, NULL);
        pool_loop_close(cpu);
        pool_loop_close(io);
        break;
    }
}

int main(void)
{
    static primes_job jobs[6];
    struct sockaddr_storage ss;
    pool_threads_options to;
    pool_res_options ro;
    evloop_timer ticker, script;
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (evloop_new(&loop, NULL) < 0)
        return 1;
    t0 = evloop_now(loop);

    /* the echo service */
    evloop_tcp_init(loop, &server);
    evloop_addr("127.0.0.1", 0, &ss);
    if (evloop_tcp_bind(&server, (struct sockaddr *)&ss, 0) < 0 ||
        evloop_listen(&server, 64, on_connection) < 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1\n");
        return 1;
    }
    evloop_sockname(&server, &ss);
    port = evloop_addr_port((struct sockaddr *)&ss);
    printf("echo service on 127.0.0.1:%d\n", port);

    /* two thread pools on one loop: CPU work, and blocking I/O */
    memset(&to, 0, sizeof to);
    to.threads = 4;
    to.name = "io";
    if (pool_loop_new(&cpu, loop, NULL) < 0 || pool_threads_new(&io_threads, &to) < 0 ||
        pool_loop_new(&io, loop, io_threads) < 0)
        return 1;

    memset(&ro, 0, sizeof ro);
    ro.create = conn_create;
    ro.destroy = conn_destroy;
    ro.validate = conn_validate;
    ro.max = 2;
    ro.validate_on_borrow = 1;
    ro.name = "conn-keeper";
    if (pool_res_new(&conns, &ro) < 0)
        return 1;

    evloop_timer_init(loop, &ticker);
    evloop_timer_start(&ticker, on_tick, 100, 100);
    for (i = 0; i < 6; i++) {
        jobs[i].from = (unsigned)i * 1500000u;
        jobs[i].to = jobs[i].from + 1500000u;
        pool_loop_call(cpu, count_primes, &jobs[i], primes_done);
    }
    printf("%5lu ms  6 prime-counting jobs queued on %u workers\n", now_ms(),
           pool_threads_size(pool_loop_threads(cpu)));
    evloop_timer_init(loop, &script);
    evloop_timer_start(&script, on_step, 50, 0);

    evloop_run(loop, EVLOOP_RUN_DEFAULT);

    evloop_close(&ticker.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    if (evloop_free(loop) < 0)
        fprintf(stderr, "handles left open\n");
    pool_threads_free(io_threads);
    if (pool_res_free(conns) < 0)
        fprintf(stderr, "connections still borrowed\n");
    return 0;
}
