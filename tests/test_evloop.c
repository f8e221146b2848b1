/* build: tsan poll */
/* Tests of evloop.h: every public function, and the stress cases. */
/* The declarations first: they define _GNU_SOURCE before any system header,
 * and give size_t to the allocator hooks declared before the implementation. */
#include "../evloop.h"
static void *test_malloc(size_t n);
static void *test_realloc(void *p, size_t n);
#define EVLOOP_MALLOC(n) test_malloc(n)
#define EVLOOP_REALLOC(p, n) test_realloc(p, n)
#define EVLOOP_FREE(p) free(p)
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ---- helpers --------------------------------------------------------------- */

/* evloop.h allocates only through these: tests count its allocations
 * (alloc_count) and make them fail (alloc_fail) to reach error paths. */
static long alloc_count;
static int alloc_fail;
static void *test_malloc(size_t n)
{
    if (alloc_fail)
        return NULL;
    alloc_count++;
    return malloc(n);
}
static void *test_realloc(void *p, size_t n)
{
    if (alloc_fail)
        return NULL;
    alloc_count++;
    return realloc(p, n);
}

static evloop *new_loop(void)
{
    evloop *loop = NULL;
    int rc = evloop_new(&loop, NULL);
    if (rc != 0) {
        fprintf(stderr, "evloop_new: %s\n", evloop_strerror(rc));
        exit(1);
    }
    return loop;
}

static void close_any(evloop_handle *h, void *arg)
{
    (void)arg;
    if (!evloop_is_closing(h))
        evloop_close(h, NULL);
}

/* Closes whatever is left, runs the close callbacks, frees the loop. */
static void free_loop(evloop *loop)
{
    evloop_walk(loop, close_any, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(evloop_free(loop), ==, 0);
}

/* Runs the loop for ms milliseconds (defined with the file-watch tests). */
static void run_for(evloop *loop, uint64_t ms);

/* Fills a non-blocking socket's send buffer: the next write is queued. */
static void fill_socket(int fd)
{
    static char junk[65536];
    while (write(fd, junk, sizeof junk) > 0)
        ;
}

/* A watchdog timer: stops the loop and marks the test failed. */
static int guard_fired;
static void on_guard(evloop_timer *t)
{
    guard_fired = 1;
    fprintf(stderr, "guard timer fired: the loop did not finish in time\n");
    evloop_stop(t->handle.loop);
}
static void start_guard(evloop *loop, evloop_timer *g, uint64_t ms)
{
    guard_fired = 0;
    evloop_timer_init(loop, g);
    evloop_timer_start(g, on_guard, ms, 0);
    evloop_unref(&g->handle);
}

static int listen_local(evloop *loop, evloop_stream *srv, evloop_connection_cb cb)
{
    struct sockaddr_storage a;
    evloop_tcp_init(loop, srv);
    evloop_addr("127.0.0.1", 0, &a);
    if (evloop_tcp_bind(srv, (struct sockaddr *)&a, 0) != 0)
        return -1;
    if (evloop_listen(srv, 128, cb) != 0)
        return -1;
    evloop_sockname(srv, &a);
    return evloop_addr_port((struct sockaddr *)&a);
}

/* A blocking socket connected to 127.0.0.1:port, or -1. */
static int connect_local(int port)
{
    struct sockaddr_storage a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    evloop_addr("127.0.0.1", port, &a);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(struct sockaddr_in)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A listening socket of the test's own (not the loop's) on 127.0.0.1, any
 * port; its address in *sin. rcvbuf > 0 sets SO_RCVBUF first (accepted
 * sockets inherit it). -1 on failure. */
static int plain_listener(struct sockaddr_in *sin, int rcvbuf)
{
    socklen_t sl = sizeof *sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)sin, sizeof *sin) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)sin, &sl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- loop basics -------------------------------------------------------------- */

TEST(loop_new_run_free)
{
    evloop *loop = new_loop();
    evloop_timer t;
#ifdef EVLOOP_BACKEND_POLL
    CHECK_STR(evloop_backend_name(loop), "poll");
#else
    CHECK_STR(evloop_backend_name(loop), "epoll");
#endif
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(evloop_alive(loop), ==, 0);
    evloop_timer_init(loop, &t);
    CHECK_INT(evloop_free(loop), ==, -EBUSY);
    evloop_close(&t.handle, NULL);
    CHECK_INT(evloop_free(loop), ==, -EBUSY); /* close callback not yet run */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(evloop_free(loop), ==, 0);
}

TEST(loop_data_and_time)
{
    evloop *loop = new_loop();
    uint64_t t0 = evloop_now(loop), h0 = evloop_hrtime();
    int x;
    evloop_set_data(loop, &x);
    CHECK(evloop_get_data(loop) == &x);
    usleep(20000);
    CHECK_UINT(evloop_now(loop), ==, t0); /* cached */
    evloop_update_time(loop);
    CHECK_UINT(evloop_now(loop), >=, t0 + 19);
    CHECK_UINT(evloop_hrtime(), >=, h0 + 19000000u);
    free_loop(loop);
}

/* ---- timers ------------------------------------------------------------------- */

static int fired;
static void count_timer(evloop_timer *t) { (void)t; fired++; }

TEST(timer_oneshot_and_repeat)
{
    evloop *loop = new_loop();
    evloop_timer a, b;
    double t0 = test_now_ms();
    fired = 0;
    evloop_timer_init(loop, &a);
    CHECK_INT(evloop_timer_start(&a, count_timer, 30, 0), ==, 0);
    CHECK(evloop_is_active(&a.handle));
    CHECK_UINT(evloop_timer_due_in(&a), <=, 30);
    CHECK_UINT(evloop_timer_due_in(&a), >=, 29);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(fired, ==, 1);
    CHECK(test_now_ms() - t0 >= 29);
    CHECK(!evloop_is_active(&a.handle));
    CHECK_UINT(evloop_timer_due_in(&a), ==, 0);
    /* repeat: stop after 5 from another timer */
    fired = 0;
    evloop_timer_init(loop, &b);
    evloop_timer_start(&b, count_timer, 5, 5);
    CHECK_UINT(evloop_timer_get_repeat(&b), ==, 5);
    while (fired < 5)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    evloop_timer_stop(&b);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(fired, ==, 5);
    CHECK_INT(evloop_timer_again(&a), ==, 0); /* no repeat: nothing */
    CHECK(!evloop_is_active(&a.handle));
    evloop_timer_set_repeat(&a, 10);
    CHECK_INT(evloop_timer_again(&a), ==, 0);
    CHECK(evloop_is_active(&a.handle));
    free_loop(loop);
}

TEST(timer_again_unstarted)
{
    evloop *loop = new_loop();
    evloop_timer t;
    evloop_timer_init(loop, &t);
    CHECK_INT(evloop_timer_again(&t), ==, -EINVAL);
    free_loop(loop);
}

/* 10k timers fire in order of deadline; equal deadlines in start order. */
#define NT 10000
static evloop_timer *order_timers;
static uint64_t order_last_due;
static int order_last_idx, order_count, order_bad;
static void order_cb(evloop_timer *t)
{
    int idx = (int)(t - order_timers);
    uint64_t due = (uint64_t)(uintptr_t)t->handle.data;
    if (due < order_last_due || (due == order_last_due && idx < order_last_idx))
        order_bad++;
    order_last_due = due;
    order_last_idx = idx;
    order_count++;
}

TEST(timers_10k_fire_in_order)
{
    evloop *loop = new_loop();
    int i;
    unsigned seed = 12345;
    order_timers = (evloop_timer *)calloc(NT, sizeof *order_timers);
    order_last_due = 0;
    order_last_idx = -1;
    order_count = order_bad = 0;
    for (i = 0; i < NT; i++) {
        uint64_t timeout;
        seed = seed * 1103515245u + 12345u;
        timeout = (seed >> 16) % 50; /* many equal deadlines */
        evloop_timer_init(loop, &order_timers[i]);
        order_timers[i].handle.data = (void *)(uintptr_t)timeout;
        evloop_timer_start(&order_timers[i], order_cb, timeout, 0);
    }
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(order_count, ==, NT);
    CHECK_INT(order_bad, ==, 0);
    for (i = 0; i < NT; i++)
        evloop_close(&order_timers[i].handle, NULL);
    free_loop(loop);
    free(order_timers);
}

/* A million live timers: start them all, then they all fire. */
static long million_fired;
static void million_cb(evloop_timer *t) { (void)t; million_fired++; }

TEST(timers_million)
{
    enum { N = 1000000 };
    evloop *loop = new_loop();
    evloop_timer *ts = (evloop_timer *)malloc(N * sizeof *ts);
    int i;
    million_fired = 0;
    for (i = 0; i < N; i++) {
        evloop_timer_init(loop, &ts[i]);
        REQUIRE_INT(evloop_timer_start(&ts[i], million_cb, (uint64_t)(i % 20), 0), ==, 0);
    }
    /* stop every tenth before it runs */
    for (i = 0; i < N; i += 10)
        evloop_timer_stop(&ts[i]);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(million_fired, ==, N - N / 10);
    for (i = 0; i < N; i++)
        evloop_close(&ts[i].handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(evloop_free(loop), ==, 0);
    free(ts);
}

/* Timers started, stopped and closed from inside callbacks. */
static evloop_timer cb_t[4];
static int cb_log[16], cb_nlog, closed_count;
static void on_closed(evloop_handle *h) { (void)h; closed_count++; }
static void cb_t1(evloop_timer *t)
{
    (void)t;
    cb_log[cb_nlog++] = 1;
    evloop_timer_stop(&cb_t[1]);                   /* stop a due one: must not run */
    evloop_close(&cb_t[2].handle, on_closed);       /* close a due one: must not run */
    evloop_timer_start(&cb_t[3], count_timer, 0, 0); /* zero timeout: next iteration */
}
static void cb_never(evloop_timer *t) { (void)t; cb_log[cb_nlog++] = 99; }

TEST(timers_modified_from_callbacks)
{
    evloop *loop = new_loop();
    int i;
    cb_nlog = closed_count = fired = 0;
    for (i = 0; i < 4; i++)
        evloop_timer_init(loop, &cb_t[i]);
    evloop_timer_start(&cb_t[0], cb_t1, 5, 0);
    evloop_timer_start(&cb_t[1], cb_never, 5, 0);
    evloop_timer_start(&cb_t[2], cb_never, 5, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cb_nlog, ==, 1);
    CHECK_INT(cb_log[0], ==, 1);
    CHECK_INT(closed_count, ==, 1);
    CHECK_INT(fired, ==, 1);
    free_loop(loop);
}

/* A timer that restarts itself with 0 ms runs once per iteration. */
static int self_runs, iterations;
static void self_restart(evloop_timer *t)
{
    if (++self_runs < 5)
        evloop_timer_start(t, self_restart, 0, 0);
}
static void count_iter(evloop_hook *h) { (void)h; iterations++; }

TEST(timer_zero_restart_does_not_starve)
{
    evloop *loop = new_loop();
    evloop_timer t;
    evloop_hook check;
    self_runs = iterations = 0;
    evloop_timer_init(loop, &t);
    evloop_hook_init(loop, &check, EVLOOP_HOOK_CHECK);
    evloop_hook_start(&check, count_iter);
    evloop_unref(&check.handle);
    evloop_timer_start(&t, self_restart, 0, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(self_runs, ==, 5);
    CHECK_INT(iterations, >=, 5);
    free_loop(loop);
}

/* A repeating timer stopped from its own callback runs no more; one that
 * calls evloop_timer_again from its callback is rescheduled a full repeat
 * from then. */
static int rep_runs;
static void rep_stop_third(evloop_timer *t)
{
    if (++rep_runs == 3)
        CHECK_INT(evloop_timer_stop(t), ==, 0);
}
static void rep_again(evloop_timer *t)
{
    CHECK_INT(evloop_timer_again(t), ==, 0);
    CHECK_UINT(evloop_timer_due_in(t), ==, 5);
    CHECK(evloop_is_active(&t->handle));
    if (++rep_runs == 4)
        evloop_timer_stop(t);
}

TEST(repeating_timer_stopped_or_again_from_callback)
{
    evloop *loop = new_loop();
    evloop_timer t;
    evloop_timer_init(loop, &t);
    rep_runs = 0;
    evloop_timer_start(&t, rep_stop_third, 1, 1);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0); /* ends: the timer stopped */
    CHECK_INT(rep_runs, ==, 3);
    CHECK(!evloop_is_active(&t.handle));
    rep_runs = 0;
    evloop_timer_start(&t, rep_again, 1, 5);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(rep_runs, ==, 4);
    free_loop(loop);
}

/* ---- ticks, immediates, hooks, run modes -------------------------------------- */

static char trace[64];
static int ntrace;
static void mark(char c)
{
    if (ntrace < 63)
        trace[ntrace++] = c, trace[ntrace] = 0;
}
static void tick_b(evloop *loop, void *arg) { (void)loop; (void)arg; mark('b'); }
static void tick_a(evloop *loop, void *arg)
{
    (void)arg;
    mark('a');
    evloop_next_tick(loop, tick_b, NULL); /* nested: still before the next callback */
}
static void imm_i2(evloop *loop, void *arg) { (void)loop; (void)arg; mark('J'); }
static void imm_i(evloop *loop, void *arg)
{
    (void)arg;
    mark('I');
    evloop_next_tick(loop, tick_a, NULL);
    evloop_set_immediate(loop, imm_i2, NULL); /* queued in check: next iteration */
}
static void timer_t1(evloop_timer *t)
{
    mark('T');
    evloop_next_tick(t->handle.loop, tick_a, NULL);
    evloop_set_immediate(t->handle.loop, imm_i, NULL);
}
static void timer_t2(evloop_timer *t) { (void)t; mark('U'); }
static void hook_mark(evloop_hook *h) { mark((char)(uintptr_t)h->handle.data); }

TEST(next_tick_and_immediates_order)
{
    evloop *loop = new_loop();
    evloop_timer t1, t2;
    evloop_hook prep, chk;
    ntrace = 0;
    trace[0] = 0;
    evloop_timer_init(loop, &t1);
    evloop_timer_init(loop, &t2);
    evloop_timer_start(&t1, timer_t1, 0, 0);
    evloop_timer_start(&t2, timer_t2, 0, 0);
    prep.handle.data = (void *)(uintptr_t)'p';
    chk.handle.data = (void *)(uintptr_t)'c';
    evloop_hook_init(loop, &prep, EVLOOP_HOOK_PREPARE);
    evloop_hook_init(loop, &chk, EVLOOP_HOOK_CHECK);
    CHECK(prep.handle.data == (void *)(uintptr_t)'p'); /* data survives init */
    evloop_hook_start(&prep, hook_mark);
    evloop_hook_start(&chk, hook_mark);
    evloop_unref(&prep.handle);
    evloop_unref(&chk.handle);
    evloop_next_tick(loop, tick_b, NULL); /* before the first iteration */
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    /* b (tick before run); iteration 1: T a b (ticks after T) U, prepare p,
     * poll, check: I a b (ticks after I), c; iteration 2: p, J, c */
    CHECK_STR(trace, "bTabUpIabcpJc");
    free_loop(loop);
}

/* Hooks stopped and started inside their own phase: a hook stopped by an
 * earlier one of the phase does not run in it; one started during the
 * phase runs from the next iteration. */
static evloop_hook hk[3];
static void hk_first(evloop_hook *h)
{
    mark('1');
    evloop_hook_stop(&hk[1]); /* another one, due later in this phase */
    evloop_hook_stop(h);      /* itself */
}
static void hk_second(evloop_hook *h) { (void)h; mark('2'); }
static void hk_third(evloop_hook *h)
{
    (void)h;
    mark('3');
    if (!evloop_is_active(&hk[1].handle))
        evloop_hook_start(&hk[1], hk_second);
}

TEST(hooks_stopped_and_started_in_their_phase)
{
    evloop *loop = new_loop();
    int i;
    ntrace = 0;
    trace[0] = 0;
    for (i = 0; i < 3; i++)
        evloop_hook_init(loop, &hk[i], EVLOOP_HOOK_CHECK);
    evloop_hook_start(&hk[0], hk_first);
    evloop_hook_start(&hk[1], hk_second);
    evloop_hook_start(&hk[2], hk_third);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_STR(trace, "13");
    mark('|');
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_STR(trace, "13|32");
    CHECK(!evloop_is_active(&hk[0].handle));
    free_loop(loop);
}

TEST(hooks_idle_prevents_blocking)
{
    evloop *loop = new_loop();
    evloop_hook idle;
    evloop_timer t;
    double t0;
    iterations = 0;
    CHECK_INT(evloop_hook_init(loop, &idle, (evloop_hook_kind)7), ==, -EINVAL);
    evloop_hook_init(loop, &idle, EVLOOP_HOOK_IDLE);
    evloop_hook_start(&idle, count_iter);
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, count_timer, 10000, 0);
    CHECK_INT(evloop_backend_timeout(loop), ==, 0);
    t0 = test_now_ms();
    evloop_run(loop, EVLOOP_RUN_ONCE);
    CHECK(test_now_ms() - t0 < 1000);
    CHECK_INT(iterations, ==, 1);
    evloop_hook_stop(&idle);
    CHECK_INT(evloop_backend_timeout(loop), >, 9000);
    CHECK(!evloop_is_active(&idle.handle));
    free_loop(loop);
}

static void stop_loop_cb(evloop_timer *t) { fired++; evloop_stop(t->handle.loop); }

TEST(run_modes_and_stop)
{
    evloop *loop = new_loop();
    evloop_timer slow, quick, rep;
    double t0;
    fired = 0;
    evloop_timer_init(loop, &slow);
    evloop_timer_init(loop, &quick);
    evloop_timer_start(&slow, count_timer, 60000, 0);
    t0 = test_now_ms();
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_NOWAIT), ==, 1);
    CHECK(test_now_ms() - t0 < 500);
    evloop_timer_start(&quick, count_timer, 10, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_ONCE), ==, 1); /* blocks ~10 ms, runs it */
    CHECK_INT(fired, ==, 1);
    /* stop from a callback */
    evloop_timer_init(loop, &rep);
    evloop_timer_start(&rep, stop_loop_cb, 1, 1);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 1);
    CHECK_INT(fired, ==, 2);
    /* stop before run: returns at once */
    evloop_stop(loop);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 1);
    CHECK_INT(fired, ==, 2);
    free_loop(loop);
}

static evloop *reentry_loop;
static int reentry_rc;
static void reenter(evloop_timer *t) { (void)t; reentry_rc = evloop_run(reentry_loop, EVLOOP_RUN_NOWAIT); }

TEST(run_reentry_refused)
{
    evloop *loop = reentry_loop = new_loop();
    evloop_timer t;
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, reenter, 0, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(reentry_rc, ==, -EBUSY);
    free_loop(loop);
}

TEST(ref_unref_and_walk)
{
    evloop *loop = new_loop();
    evloop_timer t;
    double t0;
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, count_timer, 5000, 0);
    CHECK(evloop_has_ref(&t.handle));
    evloop_unref(&t.handle);
    evloop_unref(&t.handle); /* idempotent */
    CHECK(!evloop_has_ref(&t.handle));
    CHECK_INT(evloop_alive(loop), ==, 0);
    t0 = test_now_ms();
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK(test_now_ms() - t0 < 1000);
    evloop_ref(&t.handle);
    CHECK_INT(evloop_alive(loop), ==, 1);
    CHECK_STR(evloop_handle_type_name((evloop_handle_type)t.handle.type), "timer");
    closed_count = 0;
    evloop_close(&t.handle, on_closed);
    CHECK(evloop_is_closing(&t.handle));
    CHECK_INT(evloop_alive(loop), ==, 1); /* the close callback is due */
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(closed_count, ==, 1);
    CHECK_INT(evloop_free(loop), ==, 0);
}

/* ---- fd watchers ---------------------------------------------------------------- */

static int io_events;
static void on_io(evloop_io *io, unsigned ev)
{
    char c;
    io_events |= (int)ev;
    if (ev & EVLOOP_READABLE) {
        if (read(io->w.fd, &c, 1) == 1 && c == 'x')
            evloop_io_stop(io);
    }
    if (ev & EVLOOP_WRITABLE)
        evloop_io_start(io, EVLOOP_READABLE, on_io); /* change interest */
}

TEST(io_watcher_pipe)
{
    evloop *loop = new_loop();
    evloop_io rio, wio, other;
    int p[2];
    REQUIRE_INT(pipe(p), ==, 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    CHECK_INT(evloop_io_init(loop, &other, -1), ==, -EBADF);
    evloop_io_init(loop, &rio, p[0]);
    evloop_io_init(loop, &wio, p[1]);
    io_events = 0;
    CHECK_INT(evloop_io_start(&rio, EVLOOP_READABLE, on_io), ==, 0);
    evloop_io_init(loop, &other, p[0]);
    CHECK_INT(evloop_io_start(&other, EVLOOP_READABLE, on_io), ==, -EEXIST);
    CHECK_INT(evloop_io_start(&wio, EVLOOP_WRITABLE, on_io), ==, 0);
    /* wio: writable at once, switches to readable on the write end (never) */
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK(io_events & EVLOOP_WRITABLE);
    CHECK_INT(write(p[1], "x", 1), ==, 1);
    evloop_io_stop(&wio);
    evloop_run(loop, EVLOOP_RUN_DEFAULT); /* rio reads 'x' and stops */
    CHECK(io_events & EVLOOP_READABLE);
    CHECK(!evloop_is_active(&rio.handle));
    free_loop(loop);
    /* closing the handles left the descriptors open */
    CHECK_INT(fcntl(p[0], F_GETFD), >=, 0);
    close(p[0]);
    close(p[1]);
}

/* A callback closes a watcher whose event is still due in the same poll
 * and a new watcher gets the same fd number: the stale event must not be
 * delivered to the new one (its pipe is empty). */
static evloop_io stale_first, stale_old, stale_new;
static int stale_new_events, stale_newpipe[2];
static void on_stale_new(evloop_io *io, unsigned ev)
{
    char c;
    (void)ev;
    stale_new_events++;
    CHECK_INT(read(io->w.fd, &c, 1), ==, 1); /* really readable */
}
static void on_stale_first(evloop_io *io, unsigned ev)
{
    int fd = stale_old.w.fd;
    char c;
    (void)ev;
    CHECK_INT(read(io->w.fd, &c, 1), ==, 1);
    evloop_io_stop(io);
    REQUIRE_INT(pipe(stale_newpipe), ==, 0); /* made first: it cannot take fd */
    evloop_close(&stale_old.handle, NULL);
    close(fd);
    REQUIRE_INT(dup2(stale_newpipe[0], fd), ==, fd); /* the same number, a new pipe */
    close(stale_newpipe[0]);
    stale_newpipe[0] = fd;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    evloop_io_init(io->handle.loop, &stale_new, fd);
    REQUIRE_INT(evloop_io_start(&stale_new, EVLOOP_READABLE, on_stale_new), ==, 0);
}
static void on_stale_old(evloop_io *io, unsigned ev)
{
    (void)io;
    (void)ev;
    CHECK(0); /* closed before its turn */
}

TEST(io_stale_event_after_fd_reuse)
{
    evloop *loop = new_loop();
    int p1[2], p2[2];
    REQUIRE_INT(pipe(p1), ==, 0);
    REQUIRE_INT(pipe(p2), ==, 0);
    stale_new_events = 0;
    evloop_io_init(loop, &stale_first, p1[0]);
    evloop_io_init(loop, &stale_old, p2[0]);
    evloop_io_start(&stale_first, EVLOOP_READABLE, on_stale_first);
    evloop_io_start(&stale_old, EVLOOP_READABLE, on_stale_old);
    evloop_run(loop, EVLOOP_RUN_NOWAIT); /* registered, nothing ready */
    /* ready in this order: one poll reports both, stale_first first */
    CHECK_INT(write(p1[1], "a", 1), ==, 1);
    CHECK_INT(write(p2[1], "b", 1), ==, 1);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(stale_new_events, ==, 0);
    CHECK_INT(write(stale_newpipe[1], "c", 1), ==, 1);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(stale_new_events, ==, 1);
    free_loop(loop);
    close(p1[0]);
    close(p1[1]);
    close(p2[1]);
    close(stale_newpipe[0]);
    close(stale_newpipe[1]);
}

/* Regular files and directories are refused on every backend. */
TEST(io_watcher_regular_file)
{
    evloop *loop = new_loop();
    evloop_io io, dir;
    int fd = open("/proc/self/stat", O_RDONLY), dfd = open("/", O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(dfd >= 0);
    evloop_io_init(loop, &io, fd);
    evloop_io_init(loop, &dir, dfd);
    CHECK_INT(evloop_io_start(&io, EVLOOP_READABLE, on_io), ==, -EPERM);
    CHECK_INT(evloop_io_start(&io, EVLOOP_WRITABLE, on_io), ==, -EPERM);
    CHECK_INT(evloop_io_start(&dir, EVLOOP_READABLE, on_io), ==, -EPERM);
    CHECK_INT(evloop_io_start(&io, 0, on_io), ==, -EINVAL);
    CHECK(!evloop_is_active(&io.handle));
    free_loop(loop);
    close(fd);
    close(dfd);
}

/* ---- TCP: an echo server with many clients ------------------------------------- */

typedef struct conn {
    evloop_stream s;
    size_t got;
    char buf[256];
} conn;

static void echo_on_close(evloop_handle *h) { free(h->data); }
static void echo_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n < 0) {
        evloop_close(&s->handle, echo_on_close);
        return;
    }
    CHECK_INT(evloop_write_copy(s, buf, (size_t)n, NULL, NULL), ==, 0);
}
static void echo_conn(evloop_stream *server, int status)
{
    conn *c;
    REQUIRE_INT(status, ==, 0);
    c = (conn *)calloc(1, sizeof *c);
    evloop_tcp_init(server->handle.loop, &c->s);
    c->s.handle.data = c;
    REQUIRE_INT(evloop_accept(server, &c->s), ==, 0);
    CHECK_INT(evloop_accept(server, &c->s), ==, -EAGAIN); /* nothing more */
    evloop_tcp_nodelay(&c->s, 1);
    evloop_tcp_keepalive(&c->s, 1, 60);
    evloop_read_start(&c->s, echo_read);
}

#define NCLIENTS 20
static int clients_done;
static evloop_stream *echo_server_handle;
static void client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    conn *c = (conn *)s->handle.data;
    if (n > 0) {
        memcpy(c->buf + c->got, buf, (size_t)n);
        c->got += (size_t)n;
        if (c->got == 12) {
            CHECK_MEM(c->buf, 12, "hello, world");
            evloop_close(&s->handle, NULL);
            if (++clients_done == NCLIENTS)
                evloop_close(&echo_server_handle->handle, NULL);
        }
    } else {
        CHECK_INT(n, ==, 0); /* fail: EOF or error before the echo */
        evloop_close(&s->handle, NULL);
    }
}
static void write_done(evloop_write_req *req, int status)
{
    CHECK_INT(status, ==, 0);
    ((int *)req->data)[0]++;
}
static evloop_write_req creq[NCLIENTS];
static int cwrites;
static void client_connected(evloop_stream *s, int status)
{
    conn *c = (conn *)s->handle.data;
    evloop_buf b[2];
    REQUIRE_INT(status, ==, 0);
    b[0].iov_base = (void *)"hello, ";
    b[0].iov_len = 7;
    b[1].iov_base = (void *)"world";
    b[1].iov_len = 5;
    creq[c->got].data = &cwrites; /* got holds the client's index until reading */
    CHECK_INT(evloop_write(&creq[c->got], s, b, 2, write_done), ==, 0);
    c->got = 0;
    evloop_read_start(s, client_read);
}

static void echo_test(const char *ip)
{
    evloop *loop = new_loop();
    evloop_stream srv;
    conn clients[NCLIENTS];
    struct sockaddr_storage a;
    evloop_timer g;
    int i;
    evloop_tcp_init(loop, &srv);
    evloop_addr(ip, 0, &a);
    if (evloop_tcp_bind(&srv, (struct sockaddr *)&a, 0) != 0) {
        free_loop(loop);
        SKIP("address not available");
    }
    REQUIRE_INT(evloop_listen(&srv, 0, echo_conn), ==, 0);
    CHECK_INT(evloop_read_start(&srv, client_read), ==, -EINVAL);
    evloop_sockname(&srv, &a);
    echo_server_handle = &srv;
    clients_done = cwrites = 0;
    start_guard(loop, &g, 10000);
    for (i = 0; i < NCLIENTS; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        evloop_tcp_init(loop, &clients[i].s);
        clients[i].s.handle.data = &clients[i];
        clients[i].got = (size_t)i;
        REQUIRE_INT(evloop_tcp_connect(&clients[i].s, (struct sockaddr *)&a, client_connected), ==, 0);
    }
    CHECK_INT(evloop_tcp_connect(&clients[0].s, (struct sockaddr *)&a, client_connected), ==, -EALREADY);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(clients_done, ==, NCLIENTS);
    CHECK_INT(cwrites, ==, NCLIENTS);
    free_loop(loop);
}

TEST(tcp_echo_ipv4) { echo_test("127.0.0.1"); }
TEST(tcp_echo_ipv6) { echo_test("::1"); }

TEST(addr_parsing)
{
    struct sockaddr_storage a;
    CHECK_INT(evloop_addr("10.1.2.3", 8080, &a), ==, 0);
    CHECK_INT(a.ss_family, ==, AF_INET);
    CHECK_INT(evloop_addr_port((struct sockaddr *)&a), ==, 8080);
    CHECK_INT(evloop_addr("fe80::1", 1, &a), ==, 0);
    CHECK_INT(a.ss_family, ==, AF_INET6);
    CHECK_INT(evloop_addr("localhost", 1, &a), ==, -EINVAL);
    CHECK_INT(evloop_addr("1.2.3.4", 70000, &a), ==, -EINVAL);
    CHECK_INT(evloop_addr("1.2.3.256", 1, &a), ==, -EINVAL);
}

static int connect_status = 1, shutdown_status = 1;
static void record_connect(evloop_stream *s, int status) { (void)s; connect_status = status; }
static void record_shutdown(evloop_stream *s, int status) { (void)s; shutdown_status = status; }

TEST(tcp_connect_refused)
{
    evloop *loop = new_loop();
    evloop_stream srv, c;
    struct sockaddr_storage a;
    evloop_timer g;
    int port;
    /* a port that was just free: bind, read it, close */
    port = listen_local(loop, &srv, echo_conn);
    REQUIRE(port > 0);
    evloop_close(&srv.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    evloop_addr("127.0.0.1", port, &a);
    evloop_tcp_init(loop, &c);
    connect_status = shutdown_status = 1;
    {
        int rc = evloop_tcp_connect(&c, (struct sockaddr *)&a, record_connect);
        if (rc == 0) {
            /* a shutdown waiting for the connect fails with it */
            CHECK_INT(evloop_shutdown(&c, record_shutdown), ==, 0);
            start_guard(loop, &g, 5000);
            evloop_run(loop, EVLOOP_RUN_DEFAULT);
            CHECK_INT(guard_fired, ==, 0);
            CHECK_INT(connect_status, ==, -ECONNREFUSED);
            CHECK_INT(shutdown_status, ==, -ECONNREFUSED);
        } else {
            CHECK_INT(rc, ==, -ECONNREFUSED);
            CHECK_INT(connect_status, ==, 1); /* no callback for a failed call */
        }
    }
    free_loop(loop);
}

TEST(tcp_bind_errors)
{
    evloop *loop = new_loop();
    evloop_stream a, b, u;
    struct sockaddr_storage addr;
    int port = listen_local(loop, &a, echo_conn);
    REQUIRE(port > 0);
    evloop_addr("127.0.0.1", port, &addr);
    evloop_tcp_init(loop, &b);
    CHECK_INT(evloop_tcp_bind(&b, (struct sockaddr *)&addr, 0), ==, -EADDRINUSE);
    /* SO_REUSEPORT: two listeners on one port */
    {
        evloop_stream r1, r2; /* closed and finished inside this block */
        struct sockaddr_storage any;
        evloop_tcp_init(loop, &r1);
        evloop_tcp_init(loop, &r2);
        evloop_addr("127.0.0.1", 0, &any);
        CHECK_INT(evloop_tcp_bind(&r1, (struct sockaddr *)&any, EVLOOP_BIND_REUSEPORT), ==, 0);
        evloop_sockname(&r1, &any);
        CHECK_INT(evloop_tcp_bind(&r2, (struct sockaddr *)&any, EVLOOP_BIND_REUSEPORT), ==, 0);
        CHECK_INT(evloop_tcp_bind(&r2, (struct sockaddr *)&any, 0), ==, -EBUSY);
        evloop_close(&r1.handle, NULL);
        evloop_close(&r2.handle, NULL);
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    }
    evloop_unix_init(loop, &u);
    CHECK_INT(evloop_tcp_bind(&u, (struct sockaddr *)&addr, 0), ==, -EINVAL);
    CHECK_INT(evloop_listen(&b, 0, echo_conn), ==, -EINVAL); /* not bound */
    CHECK_INT(evloop_read_start(&b, echo_read), ==, -ENOTCONN);
    CHECK_INT(evloop_write_copy(&b, "x", 1, NULL, NULL), ==, -ENOTCONN);
    free_loop(loop);
}

/* evloop_backend_fd and evloop_backend_timeout, for embedding the loop. */
TEST(backend_fd_and_timeout)
{
    evloop *loop = new_loop();
    evloop_io io;
    evloop_timer t;
    int p[2];
#ifdef EVLOOP_BACKEND_POLL
    CHECK_INT(evloop_backend_fd(loop), ==, -1);
#else
    {
        struct epoll_event e;
        REQUIRE_INT(evloop_backend_fd(loop), >=, 0);
        CHECK_INT(epoll_wait(evloop_backend_fd(loop), &e, 1, 0), ==, 0); /* an epoll fd */
    }
#endif
    CHECK_INT(evloop_backend_timeout(loop), ==, 0); /* nothing alive: do not wait */
    REQUIRE_INT(pipe(p), ==, 0);
    evloop_io_init(loop, &io, p[0]);
    evloop_io_start(&io, EVLOOP_READABLE, on_io);
    CHECK_INT(evloop_backend_timeout(loop), ==, -1); /* only I/O: wait for it */
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, count_timer, UINT64_MAX, 0); /* saturates, never overflows */
    CHECK_INT(evloop_backend_timeout(loop), ==, INT_MAX);
    CHECK_UINT(evloop_timer_due_in(&t), >=, UINT64_MAX - evloop_now(loop) - 1);
    evloop_timer_start(&t, count_timer, 250, 0);
    CHECK_INT(evloop_backend_timeout(loop), ==, 250);
    free_loop(loop);
    close(p[0]);
    close(p[1]);
}

/* Addresses and TCP options of an accepted connection, checked with the
 * system's own calls; -EBADF on a stream without a socket. */
static evloop_stream names_peer;
static int names_accepted;
static void names_conn(evloop_stream *server, int status)
{
    REQUIRE_INT(status, ==, 0);
    evloop_tcp_init(server->handle.loop, &names_peer);
    REQUIRE_INT(evloop_accept(server, &names_peer), ==, 0);
    names_accepted = 1;
}
static void ignore_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)s;
    (void)n;
    (void)buf;
}

TEST(tcp_names_and_options)
{
    evloop *loop = new_loop();
    evloop_stream srv, fresh;
    struct sockaddr_storage got;
    struct sockaddr_in local;
    socklen_t len = sizeof local, ol;
    int port, client, i, v;
    port = listen_local(loop, &srv, names_conn);
    REQUIRE(port > 0);
    client = connect_local(port);
    REQUIRE(client >= 0);
    getsockname(client, (struct sockaddr *)&local, &len);
    names_accepted = 0;
    for (i = 0; i < 100 && !names_accepted; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    REQUIRE(names_accepted);
    CHECK_INT(evloop_peername(&names_peer, &got), ==, 0);
    CHECK_INT(got.ss_family, ==, AF_INET);
    CHECK_INT(evloop_addr_port((struct sockaddr *)&got), ==, ntohs(local.sin_port));
    CHECK_INT(evloop_sockname(&names_peer, &got), ==, 0);
    CHECK_INT(evloop_addr_port((struct sockaddr *)&got), ==, port);
    CHECK_INT(evloop_peername(&srv, &got), ==, -ENOTCONN);
    /* TCP_NODELAY and keep-alive as the socket reports them */
    ol = sizeof v;
    CHECK_INT(evloop_tcp_nodelay(&names_peer, 1), ==, 0);
    getsockopt(evloop_stream_fd(&names_peer), IPPROTO_TCP, TCP_NODELAY, &v, &ol);
    CHECK_INT(v, ==, 1);
    CHECK_INT(evloop_tcp_nodelay(&names_peer, 0), ==, 0);
    getsockopt(evloop_stream_fd(&names_peer), IPPROTO_TCP, TCP_NODELAY, &v, &ol);
    CHECK_INT(v, ==, 0);
    CHECK_INT(evloop_tcp_keepalive(&names_peer, 1, 42), ==, 0);
    getsockopt(evloop_stream_fd(&names_peer), SOL_SOCKET, SO_KEEPALIVE, &v, &ol);
    CHECK_INT(v, ==, 1);
    getsockopt(evloop_stream_fd(&names_peer), IPPROTO_TCP, TCP_KEEPIDLE, &v, &ol);
    CHECK_INT(v, ==, 42);
    CHECK_INT(evloop_tcp_keepalive(&names_peer, 0, 0), ==, 0);
    getsockopt(evloop_stream_fd(&names_peer), SOL_SOCKET, SO_KEEPALIVE, &v, &ol);
    CHECK_INT(v, ==, 0);
    /* reading, as evloop_is_reading says */
    CHECK(!evloop_is_reading(&names_peer));
    CHECK_INT(evloop_read_start(&names_peer, ignore_read), ==, 0);
    CHECK(evloop_is_reading(&names_peer));
    CHECK(evloop_is_active(&names_peer.handle));
    evloop_read_stop(&names_peer);
    CHECK(!evloop_is_reading(&names_peer));
    /* without a socket */
    evloop_tcp_init(loop, &fresh);
    CHECK_INT(evloop_peername(&fresh, &got), ==, -EBADF);
    CHECK_INT(evloop_sockname(&fresh, &got), ==, -EBADF);
    CHECK_INT(evloop_tcp_nodelay(&fresh, 1), ==, -EBADF);
    CHECK_INT(evloop_tcp_keepalive(&fresh, 1, 10), ==, -EBADF);
    CHECK_INT(evloop_stream_fd(&fresh), ==, -1);
    close(client);
    free_loop(loop);
}

/* ---- options -------------------------------------------------------------------------- */

/* max_events = 1: one event per poll (epoll), and every ready stream is
 * still served, over several iterations. */
static int maxev_reads;
static void maxev_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n > 0)
        maxev_reads++;
    evloop_read_stop(s);
}

TEST(option_max_events_one)
{
    evloop *loop;
    evloop_options o;
    evloop_stream st[10];
    int sv[10][2], i, first;
    memset(&o, 0, sizeof o);
    o.max_events = 1;
    REQUIRE_INT(evloop_new(&loop, &o), ==, 0);
    for (i = 0; i < 10; i++) {
        REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), ==, 0);
        evloop_pipe_init(loop, &st[i]);
        evloop_stream_open(&st[i], sv[i][0]);
        evloop_read_start(&st[i], maxev_read);
    }
    evloop_run(loop, EVLOOP_RUN_NOWAIT); /* registered; nothing to read */
    for (i = 0; i < 10; i++)
        CHECK_INT(write(sv[i][1], "x", 1), ==, 1);
    maxev_reads = 0;
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    first = maxev_reads;
#ifdef EVLOOP_BACKEND_POLL
    CHECK_INT(first, ==, 10); /* poll(2) has no such limit */
#else
    CHECK_INT(first, ==, 1);
#endif
    for (i = 0; i < 20 && maxev_reads < 10; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(maxev_reads, ==, 10);
    for (i = 0; i < 10; i++)
        close(sv[i][1]);
    free_loop(loop);
}

/* keep_sigpipe leaves SIGPIPE alone; by default a loop ignores it. */
TEST(option_keep_sigpipe)
{
    evloop *loop;
    evloop_options o;
    struct sigaction sa, saved;
    sigaction(SIGPIPE, NULL, &saved);
    signal(SIGPIPE, SIG_DFL);
    memset(&o, 0, sizeof o);
    o.keep_sigpipe = 1;
    REQUIRE_INT(evloop_new(&loop, &o), ==, 0);
    sigaction(SIGPIPE, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
    CHECK_INT(evloop_free(loop), ==, 0);
    loop = new_loop();
    sigaction(SIGPIPE, NULL, &sa);
    CHECK(sa.sa_handler == SIG_IGN);
    CHECK_INT(evloop_free(loop), ==, 0);
    sigaction(SIGPIPE, &saved, NULL);
}

/* EVLOOP_BIND_IPV6ONLY: a listener on [::] that IPv4 peers cannot reach;
 * without it the socket is dual-stack. */
TEST(option_bind_ipv6only)
{
    evloop *loop = new_loop();
    evloop_stream only, dual;
    struct sockaddr_storage a, v4;
    socklen_t ol = sizeof(int);
    int v = -1, port, fd;
    evloop_tcp_init(loop, &only);
    evloop_tcp_init(loop, &dual);
    evloop_addr("::", 0, &a);
    if (evloop_tcp_bind(&only, (struct sockaddr *)&a, EVLOOP_BIND_IPV6ONLY) != 0) {
        free_loop(loop);
        SKIP("no IPv6");
    }
    REQUIRE_INT(evloop_listen(&only, 0, names_conn), ==, 0);
    getsockopt(evloop_stream_fd(&only), IPPROTO_IPV6, IPV6_V6ONLY, &v, &ol);
    CHECK_INT(v, ==, 1);
    evloop_sockname(&only, &a);
    port = evloop_addr_port((struct sockaddr *)&a);
    evloop_addr("127.0.0.1", port, &v4);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_INT(connect(fd, (struct sockaddr *)&v4, sizeof(struct sockaddr_in)), ==, -1);
    CHECK_INT(errno, ==, ECONNREFUSED);
    close(fd);
    evloop_addr("::", 0, &a);
    REQUIRE_INT(evloop_tcp_bind(&dual, (struct sockaddr *)&a, 0), ==, 0);
    REQUIRE_INT(evloop_listen(&dual, 0, names_conn), ==, 0);
    getsockopt(evloop_stream_fd(&dual), IPPROTO_IPV6, IPV6_V6ONLY, &v, &ol);
    CHECK_INT(v, ==, 0);
    evloop_sockname(&dual, &a);
    evloop_addr("127.0.0.1", evloop_addr_port((struct sockaddr *)&a), &v4);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_INT(connect(fd, (struct sockaddr *)&v4, sizeof(struct sockaddr_in)), ==, 0);
    close(fd);
    free_loop(loop);
}

/* Several connections waiting in the backlog are all accepted in one
 * wake-up; two SO_REUSEPORT listeners on one port both get connections. */
static evloop_stream acc_pool[64];
static int acc_n, acc_by[2];
static void acc_conn(evloop_stream *server, int status)
{
    REQUIRE_INT(status, ==, 0);
    REQUIRE(acc_n < 64);
    evloop_tcp_init(server->handle.loop, &acc_pool[acc_n]);
    REQUIRE_INT(evloop_accept(server, &acc_pool[acc_n]), ==, 0);
    acc_n++;
    acc_by[server->handle.data != NULL]++;
}

TEST(accept_several_per_wakeup_and_reuseport)
{
    evloop *loop = new_loop();
    evloop_stream srv, r1, r2;
    struct sockaddr_storage a;
    int port, clients[40], i;
    port = listen_local(loop, &srv, acc_conn);
    REQUIRE(port > 0);
    evloop_addr("127.0.0.1", port, &a);
    for (i = 0; i < 5; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE_INT(connect(clients[i], (struct sockaddr *)&a, sizeof(struct sockaddr_in)), ==, 0);
    }
    usleep(20000); /* let the kernel finish the handshakes */
    acc_n = acc_by[0] = acc_by[1] = 0;
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(acc_n, ==, 5); /* one iteration, one wake-up */
    for (i = 0; i < 5; i++)
        close(clients[i]);
    free_loop(loop);
    /* two listeners, one port */
    loop = new_loop();
    r1.handle.data = NULL; /* init keeps data: tells the listeners apart */
    r2.handle.data = &r2;
    evloop_tcp_init(loop, &r1);
    evloop_tcp_init(loop, &r2);
    evloop_addr("127.0.0.1", 0, &a);
    REQUIRE_INT(evloop_tcp_bind(&r1, (struct sockaddr *)&a, EVLOOP_BIND_REUSEPORT), ==, 0);
    evloop_sockname(&r1, &a);
    REQUIRE_INT(evloop_tcp_bind(&r2, (struct sockaddr *)&a, EVLOOP_BIND_REUSEPORT), ==, 0);
    REQUIRE_INT(evloop_listen(&r1, 64, acc_conn), ==, 0);
    REQUIRE_INT(evloop_listen(&r2, 64, acc_conn), ==, 0);
    acc_n = acc_by[0] = acc_by[1] = 0;
    for (i = 0; i < 40; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE_INT(connect(clients[i], (struct sockaddr *)&a, sizeof(struct sockaddr_in)), ==, 0);
    }
    for (i = 0; i < 100 && acc_n < 40; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(acc_n, ==, 40);
    CHECK_INT(acc_by[0], >, 0); /* the kernel spreads them by address hash */
    CHECK_INT(acc_by[1], >, 0);
    for (i = 0; i < 40; i++)
        close(clients[i]);
    free_loop(loop);
}

/* ---- bad input and misuse that returns an error -------------------------------------------- */

static int bad_cb_calls;
static void bad_connect_cb(evloop_stream *s, int status)
{
    (void)s;
    (void)status;
    bad_cb_calls++;
}
static int bad_accept_rc[2];
static void bad_accept(evloop_stream *server, int status)
{
    evloop_stream *pipe_s = (evloop_stream *)server->handle.data;
    REQUIRE_INT(status, ==, 0);
    bad_accept_rc[0] = evloop_accept(server, pipe_s); /* not a socket stream */
    bad_accept_rc[1] = evloop_accept(server, &names_peer); /* already open */
}

TEST(bad_input_is_refused)
{
    evloop *loop = new_loop();
    evloop_stream u, t, t2, srv, pipe_s, sp;
    evloop_write_req req;
    evloop_buf b;
    struct sockaddr_storage a;
    struct sockaddr_un sun;
    char path[64];
    int port, client, sv[2], i;
    /* addresses */
    CHECK_INT(evloop_addr(NULL, 80, &a), ==, -EINVAL);
    CHECK_INT(evloop_addr("127.0.0.1", -1, &a), ==, -EINVAL);
    CHECK_INT(evloop_addr("::1", 65536, &a), ==, -EINVAL);
    /* a Unix socket path that does not exist: the call fails, no callback */
    bad_cb_calls = 0;
    snprintf(path, sizeof path, "/tmp/evloop-missing-%d.sock", (int)getpid());
    unlink(path);
    evloop_unix_init(loop, &u);
    CHECK_INT(evloop_unix_connect(&u, path, bad_connect_cb), ==, -ENOENT);
    CHECK_INT(evloop_stream_fd(&u), ==, -1);
    /* a TCP stream given an AF_UNIX address, and the reverse */
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    evloop_tcp_init(loop, &t);
    CHECK_INT(evloop_tcp_connect(&t, (struct sockaddr *)&sun, bad_connect_cb), ==, -EINVAL);
    CHECK_INT(evloop_tcp_bind(&t, (struct sockaddr *)&sun, 0), ==, -EINVAL);
    evloop_addr("127.0.0.1", 1, &a);
    CHECK_INT(evloop_tcp_connect(&u, (struct sockaddr *)&a, bad_connect_cb), ==, -EINVAL);
    /* accepting into a pipe stream or an open one; the connection is refused */
    evloop_pipe_init(loop, &pipe_s);
    port = listen_local(loop, &srv, bad_accept);
    REQUIRE(port > 0);
    srv.handle.data = &pipe_s;
    evloop_tcp_init(loop, &names_peer);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_stream_open(&names_peer, sv[0]);
    client = connect_local(port);
    REQUIRE(client >= 0);
    bad_accept_rc[0] = bad_accept_rc[1] = 1;
    for (i = 0; i < 100 && bad_accept_rc[0] == 1; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(bad_accept_rc[0], ==, -EINVAL);
    CHECK_INT(bad_accept_rc[1], ==, -EINVAL);
    CHECK_INT(evloop_accept(&srv, &pipe_s), ==, -EAGAIN); /* outside the callback */
    /* connecting a listening or a reading stream */
    CHECK_INT(evloop_tcp_connect(&srv, (struct sockaddr *)&a, bad_connect_cb), ==, -EISCONN);
    evloop_read_start(&names_peer, ignore_read);
    CHECK_INT(evloop_tcp_connect(&names_peer, (struct sockaddr *)&a, bad_connect_cb), ==, -EISCONN);
    /* detaching a stream that is busy */
    CHECK_INT(evloop_stream_detach(&srv), ==, -EBUSY); /* listening */
    evloop_pipe_init(loop, &sp);
    evloop_stream_open(&sp, sv[1]);
    fill_socket(sv[1]);
    b.iov_base = (void *)"x";
    b.iov_len = 1;
    REQUIRE_INT(evloop_write(&req, &sp, &b, 1, NULL), ==, 0); /* queued */
    CHECK_INT(evloop_stream_detach(&sp), ==, -EBUSY);
    evloop_tcp_init(loop, &t2);
    REQUIRE_INT(evloop_tcp_connect(&t2, (struct sockaddr *)&a, bad_connect_cb), ==, 0);
    CHECK_INT(evloop_stream_detach(&t2), ==, -EBUSY); /* connecting */
    evloop_close(&t2.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(bad_cb_calls, ==, 1); /* only the connect that succeeded: -ECANCELED */
    close(client);
    free_loop(loop);
}

/* ---- Unix-domain sockets ---------------------------------------------------------- */

static evloop_stream unix_client;
static int unix_echoed;
static void unix_client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0) {
        CHECK_MEM(buf, (size_t)n, "ping");
        unix_echoed = 1;
    }
    evloop_close(&s->handle, NULL);
    evloop_close(&echo_server_handle->handle, NULL);
}
static void unix_connected(evloop_stream *s, int status)
{
    REQUIRE_INT(status, ==, 0);
    evloop_write_copy(s, "ping", 4, NULL, NULL);
    evloop_read_start(s, unix_client_read);
}
static void unix_conn(evloop_stream *server, int status)
{
    conn *c;
    REQUIRE_INT(status, ==, 0);
    c = (conn *)calloc(1, sizeof *c);
    evloop_unix_init(server->handle.loop, &c->s);
    c->s.handle.data = c;
    REQUIRE_INT(evloop_accept(server, &c->s), ==, 0);
    evloop_read_start(&c->s, echo_read);
}

TEST(unix_socket_echo)
{
    evloop *loop = new_loop();
    evloop_stream srv, x;
    evloop_timer g;
    char path[64], longp[200];
    snprintf(path, sizeof path, "/tmp/evloop-test-%d.sock", (int)getpid());
    unlink(path);
    evloop_unix_init(loop, &srv);
    REQUIRE_INT(evloop_unix_bind(&srv, path), ==, 0);
    REQUIRE_INT(evloop_listen(&srv, 0, unix_conn), ==, 0);
    echo_server_handle = &srv;
    evloop_unix_init(loop, &unix_client);
    CHECK_INT(evloop_unix_connect(&unix_client, "", unix_connected), ==, -EINVAL);
    REQUIRE_INT(evloop_unix_connect(&unix_client, path, unix_connected), ==, 0);
    unix_echoed = 0;
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(unix_echoed, ==, 1);
    unlink(path);
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    evloop_unix_init(loop, &x);
    CHECK_INT(evloop_unix_bind(&x, longp), ==, -ENAMETOOLONG);
    free_loop(loop);
}

/* ---- 64 MiB through a socket pair with backpressure ---------------------------------- */

#define BIG (64u << 20)
#define CHUNK (64u << 10)
#define HWM (1u << 20)
#define NSLOTS 64 /* write requests with their chunk: far more than the bound needs */
typedef struct big_state {
    evloop_stream w, r;
    size_t sent, received, max_queued;
    uint32_t check_r;
    int in_flight, waiting_drain, crossings, drains, drain_not_writable;
    int out_of_slots, shut;
    int free_slots[NSLOTS], nfree;
    long allocs;
    evloop_write_req reqs[NSLOTS];
    char chunks[NSLOTS][CHUNK];
} big_state;
static big_state *bs;

static void fill_chunk(char *c, size_t offset)
{
    size_t i;
    for (i = 0; i < CHUNK; i += 4) {
        uint32_t v = (uint32_t)((offset + i) * 2654435761u);
        memcpy(c + i, &v, 4);
    }
}
static void big_pump(void);
static void big_write_done(evloop_write_req *req, int status)
{
    CHECK_INT(status, ==, 0);
    bs->in_flight--;
    bs->free_slots[bs->nfree++] = (int)(req - bs->reqs);
    if (bs->out_of_slots && !bs->waiting_drain)
        big_pump(); /* only after a failure of the bound: let the test end */
}
static void big_drain(evloop_stream *s)
{
    bs->drains++;
    if (!evloop_stream_writable(s))
        bs->drain_not_writable++;
    CHECK_UINT(evloop_stream_queued(s), ==, 0);
    bs->waiting_drain = 0;
    big_pump();
}
/* The producer has no limit of its own: it writes until the stream is
 * above its high-water mark, then waits for the drain callback. */
static void big_pump(void)
{
    while (bs->sent < BIG && !bs->waiting_drain) {
        evloop_buf b;
        int k;
        if (!bs->nfree) {
            bs->out_of_slots++;
            return;
        }
        k = bs->free_slots[--bs->nfree];
        fill_chunk(bs->chunks[k], bs->sent);
        b.iov_base = bs->chunks[k];
        b.iov_len = CHUNK;
        REQUIRE_INT(evloop_write(&bs->reqs[k], &bs->w, &b, 1, big_write_done), ==, 0);
        bs->in_flight++;
        bs->sent += CHUNK;
        if (evloop_stream_queued(&bs->w) > bs->max_queued)
            bs->max_queued = evloop_stream_queued(&bs->w);
        if (!evloop_stream_writable(&bs->w)) {
            bs->waiting_drain = 1;
            bs->crossings++;
        }
    }
    if (bs->sent == BIG && !bs->shut) {
        bs->shut = 1;
        bs->allocs = alloc_count;
        CHECK_INT(evloop_shutdown(&bs->w, NULL), ==, 0);
    }
}
static void big_read(evloop_stream *s, ssize_t n, const char *buf)
{
    ssize_t i;
    if (n == EVLOOP_EOF) {
        evloop_close(&s->handle, NULL);
        evloop_close(&bs->w.handle, NULL);
        return;
    }
    REQUIRE(n > 0);
    /* recompute the expected bytes one word at a time */
    for (i = 0; i < n; i++) {
        size_t off = bs->received + (size_t)i, word = off & ~(size_t)3;
        uint32_t v = (uint32_t)(word * 2654435761u);
        unsigned char expect = ((unsigned char *)&v)[off & 3];
        if ((unsigned char)buf[i] != expect) {
            bs->check_r++;
            break;
        }
    }
    bs->received += (size_t)n;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST(socketpair_64mib_backpressure)
{
    evloop *loop = new_loop();
    int sv[2], i, sndbuf = 256 << 10;
    long rss0;
    evloop_timer g;
    bs = (big_state *)calloc(1, sizeof *bs);
    memset(bs, 0, sizeof *bs); /* touch it all before measuring */
    for (i = 0; i < NSLOTS; i++)
        bs->free_slots[bs->nfree++] = i;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    evloop_pipe_init(loop, &bs->w);
    evloop_pipe_init(loop, &bs->r);
    REQUIRE_INT(evloop_stream_open(&bs->w, sv[0]), ==, 0);
    REQUIRE_INT(evloop_stream_open(&bs->r, sv[1]), ==, 0);
    CHECK_INT(evloop_stream_open(&bs->r, sv[1]), ==, -EBUSY);
    CHECK_INT(evloop_stream_fd(&bs->r), ==, sv[1]);
    evloop_stream_set_hwm(&bs->w, HWM, big_drain);
    evloop_read_start(&bs->r, big_read);
    start_guard(loop, &g, 60000);
    rss0 = maxrss_kb();
    alloc_count = 0;
    big_pump();
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_UINT(bs->received, ==, BIG);
    CHECK_INT(bs->check_r, ==, 0);
    CHECK_INT(bs->in_flight, ==, 0);
    CHECK_INT(bs->out_of_slots, ==, 0);
    /* the queue crossed the mark again and again, one drain per crossing,
     * and the stream was writable in each drain callback */
    CHECK_INT(bs->crossings, >, 10);
    CHECK_INT(bs->drains, ==, bs->crossings);
    CHECK_INT(bs->drain_not_writable, ==, 0);
    /* the queue never held more than the mark plus the write that crossed it */
    CHECK_UINT(bs->max_queued, <=, HWM + CHUNK);
    CHECK_UINT(bs->max_queued, >=, HWM);
    /* memory: nothing allocated per write, and no growth with the 64 MiB */
    CHECK_INT(bs->allocs, ==, 0);
    CHECK_INT(maxrss_kb() - rss0, <, 8 * 1024);
    free_loop(loop);
    free(bs);
}

/* ---- write callbacks, copy writes, try_write, shutdown, half-close ---------------------- */

static int order_log[8], norder;
static void log_write(evloop_write_req *req, int status)
{
    CHECK_INT(status, ==, 0);
    order_log[norder++] = (int)(uintptr_t)req->data;
}
static char half_buf[64];
static size_t half_got;
static int half_eof;
static void half_client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0) {
        memcpy(half_buf + half_got, buf, (size_t)n);
        half_got += (size_t)n;
        return;
    }
    CHECK_INT(n, ==, EVLOOP_EOF);
    CHECK(!evloop_is_reading(s)); /* stopped by EOF */
    half_eof = 1;
    evloop_close(&s->handle, NULL);
}
static void half_server_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n > 0)
        return;
    /* the client half-closed: we can still answer, then close */
    CHECK_INT(n, ==, EVLOOP_EOF);
    CHECK_INT(evloop_write_copy(s, "bye", 3, NULL, NULL), ==, 0);
    evloop_close(&s->handle, NULL); /* the queued copy write is flushed or cancelled */
}
static int shut_status = 1;
static void on_shut(evloop_stream *s, int status)
{
    shut_status = status;
    CHECK_INT(evloop_write_copy(s, "x", 1, NULL, NULL), ==, -EPIPE);
    CHECK_INT(evloop_shutdown(s, on_shut), ==, -EALREADY);
}

TEST(writes_shutdown_half_close)
{
    evloop *loop = new_loop();
    evloop_stream a, b;
    evloop_write_req r1, r2, r3;
    evloop_buf buf;
    int sv[2];
    ssize_t n;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_pipe_init(loop, &b);
    evloop_stream_open(&a, sv[0]);
    evloop_stream_open(&b, sv[1]);
    /* three writes: callbacks in order, never inside the call */
    norder = 0;
    r1.data = (void *)1;
    r2.data = (void *)2;
    r3.data = (void *)3;
    buf.iov_base = (void *)"ab";
    buf.iov_len = 2;
    CHECK_INT(evloop_write(&r1, &a, &buf, 1, log_write), ==, 0);
    CHECK_INT(evloop_write(&r2, &a, &buf, 1, log_write), ==, 0);
    CHECK_INT(evloop_write_copy(&a, "cd", 2, log_write, (void *)3), ==, 0);
    CHECK_INT(norder, ==, 0);
    n = evloop_try_write(&a, &buf, 1);
    CHECK_INT(n, ==, 2);
    CHECK_UINT(evloop_stream_queued(&a), ==, 0);
    CHECK(evloop_stream_writable(&a));
    (void)r3;
    half_got = 0;
    half_eof = 0;
    shut_status = 1;
    evloop_read_start(&b, half_server_read);
    CHECK_INT(evloop_shutdown(&a, on_shut), ==, 0);
    CHECK_INT(evloop_write_copy(&a, "x", 1, NULL, NULL), ==, -EPIPE);
    evloop_read_start(&a, half_client_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(norder, ==, 3);
    CHECK_INT(order_log[0], ==, 1);
    CHECK_INT(order_log[1], ==, 2);
    CHECK_INT(order_log[2], ==, 3);
    CHECK_INT(shut_status, ==, 0);
    CHECK_INT(half_eof, ==, 1);
    CHECK_MEM(half_buf, half_got, "bye");
    free_loop(loop);
}

/* A shutdown asked for while the connect is still in progress runs once the
 * stream is connected, after the writes queued meanwhile: the peer reads
 * them, then EOF. TCP connects later (EINPROGRESS); a Unix socket connects
 * at once and reports it from the pending phase: both paths. */
static int sc_connect_status, sc_shut_status, sc_peer_eof;
static char sc_got[16];
static size_t sc_ngot;
static evloop_stream sc_client, sc_peer, *sc_server;
static void sc_connected(evloop_stream *s, int status)
{
    (void)s;
    sc_connect_status = status;
}
static void sc_shut(evloop_stream *s, int status)
{
    (void)s;
    CHECK_INT(sc_connect_status, ==, 0); /* the connect callback came first */
    sc_shut_status = status;
}
static void sc_peer_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0 && sc_ngot + (size_t)n <= sizeof sc_got) {
        memcpy(sc_got + sc_ngot, buf, (size_t)n);
        sc_ngot += (size_t)n;
        return;
    }
    sc_peer_eof = n == EVLOOP_EOF;
    evloop_close(&s->handle, NULL);
    evloop_close(&sc_client.handle, NULL);
    evloop_close(&sc_server->handle, NULL);
}
static void sc_accept(evloop_stream *server, int status)
{
    REQUIRE_INT(status, ==, 0);
    if (server->handle.type == EVLOOP_TCP)
        evloop_tcp_init(server->handle.loop, &sc_peer);
    else
        evloop_unix_init(server->handle.loop, &sc_peer);
    REQUIRE_INT(evloop_accept(server, &sc_peer), ==, 0);
    evloop_read_start(&sc_peer, sc_peer_read);
}
static void shutdown_while_connecting(int unix_socket, const char *data)
{
    evloop *loop = new_loop();
    evloop_stream srv;
    evloop_timer g;
    char path[64];
    sc_connect_status = sc_shut_status = 1;
    sc_peer_eof = 0;
    sc_ngot = 0;
    sc_server = &srv;
    snprintf(path, sizeof path, "/tmp/evloop-test-sc-%d.sock", (int)getpid());
    if (unix_socket) {
        unlink(path);
        evloop_unix_init(loop, &srv);
        REQUIRE_INT(evloop_unix_bind(&srv, path), ==, 0);
        REQUIRE_INT(evloop_listen(&srv, 0, sc_accept), ==, 0);
        evloop_unix_init(loop, &sc_client);
        REQUIRE_INT(evloop_unix_connect(&sc_client, path, sc_connected), ==, 0);
    } else {
        struct sockaddr_storage a;
        int port = listen_local(loop, &srv, sc_accept);
        REQUIRE(port > 0);
        evloop_addr("127.0.0.1", port, &a);
        evloop_tcp_init(loop, &sc_client);
        REQUIRE_INT(evloop_tcp_connect(&sc_client, (struct sockaddr *)&a, sc_connected), ==, 0);
    }
    if (data[0])
        CHECK_INT(evloop_write_copy(&sc_client, data, strlen(data), NULL, NULL), ==, 0);
    CHECK_INT(evloop_shutdown(&sc_client, sc_shut), ==, 0);
    CHECK_INT(evloop_shutdown(&sc_client, sc_shut), ==, -EALREADY);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(sc_connect_status, ==, 0);
    CHECK_INT(sc_shut_status, ==, 0);
    CHECK_INT(sc_peer_eof, ==, 1);
    CHECK_MEM(sc_got, sc_ngot, data);
    free_loop(loop);
    unlink(path);
}

TEST(shutdown_while_connecting_tcp)
{
    shutdown_while_connecting(0, "");
    shutdown_while_connecting(0, "abc");
}

TEST(shutdown_while_connecting_unix)
{
    shutdown_while_connecting(1, "");
    shutdown_while_connecting(1, "abc");
}

/* Half-close over TCP: the client sends and shuts down its side; the
 * server reads to EOF, answers, shuts down; the client reads the answer,
 * then EOF. */
static evloop_stream hc_peer, hc_client, *hc_server;
static char hc_srv_got[16], hc_cli_got[16];
static size_t hc_srv_n, hc_cli_n;
static int hc_srv_eof, hc_cli_eof, hc_shut[2];
static void hc_server_shut(evloop_stream *s, int status)
{
    hc_shut[1] = status;
    evloop_close(&s->handle, NULL);
}
static void hc_client_shut(evloop_stream *s, int status)
{
    (void)s;
    hc_shut[0] = status;
}
static void hc_server_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0 && hc_srv_n + (size_t)n <= sizeof hc_srv_got) {
        memcpy(hc_srv_got + hc_srv_n, buf, (size_t)n);
        hc_srv_n += (size_t)n;
        return;
    }
    hc_srv_eof = n == EVLOOP_EOF;
    CHECK_INT(evloop_write_copy(s, "bye", 3, NULL, NULL), ==, 0); /* still writable */
    CHECK_INT(evloop_shutdown(s, hc_server_shut), ==, 0);
}
static void hc_client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0 && hc_cli_n + (size_t)n <= sizeof hc_cli_got) {
        memcpy(hc_cli_got + hc_cli_n, buf, (size_t)n);
        hc_cli_n += (size_t)n;
        return;
    }
    hc_cli_eof = n == EVLOOP_EOF;
    evloop_close(&s->handle, NULL);
    evloop_close(&hc_server->handle, NULL);
}
static void hc_accept(evloop_stream *server, int status)
{
    REQUIRE_INT(status, ==, 0);
    evloop_tcp_init(server->handle.loop, &hc_peer);
    REQUIRE_INT(evloop_accept(server, &hc_peer), ==, 0);
    evloop_read_start(&hc_peer, hc_server_read);
}
static void hc_connected(evloop_stream *s, int status)
{
    REQUIRE_INT(status, ==, 0);
    CHECK_INT(evloop_write_copy(s, "hello", 5, NULL, NULL), ==, 0);
    CHECK_INT(evloop_shutdown(s, hc_client_shut), ==, 0);
    evloop_read_start(s, hc_client_read); /* reading goes on after our shutdown */
}

TEST(tcp_half_close)
{
    evloop *loop = new_loop();
    evloop_stream srv;
    struct sockaddr_storage a;
    evloop_timer g;
    int port = listen_local(loop, &srv, hc_accept);
    REQUIRE(port > 0);
    hc_server = &srv;
    hc_srv_n = hc_cli_n = 0;
    hc_srv_eof = hc_cli_eof = 0;
    hc_shut[0] = hc_shut[1] = 1;
    evloop_addr("127.0.0.1", port, &a);
    evloop_tcp_init(loop, &hc_client);
    REQUIRE_INT(evloop_tcp_connect(&hc_client, (struct sockaddr *)&a, hc_connected), ==, 0);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_MEM(hc_srv_got, hc_srv_n, "hello");
    CHECK_INT(hc_srv_eof, ==, 1);
    CHECK_MEM(hc_cli_got, hc_cli_n, "bye");
    CHECK_INT(hc_cli_eof, ==, 1);
    CHECK_INT(hc_shut[0], ==, 0);
    CHECK_INT(hc_shut[1], ==, 0);
    free_loop(loop);
}

/* A write queued behind a full socket, then the stream closed: the callback
 * runs with -ECANCELED before the close callback. */
static int cancel_status, cancel_seen_before_close;
static void cancel_cb(evloop_write_req *req, int status)
{
    (void)req;
    cancel_status = status;
    cancel_seen_before_close = closed_count == 0;
}
TEST(close_cancels_queued_writes)
{
    evloop *loop = new_loop();
    evloop_stream a;
    evloop_write_req req;
    evloop_buf b;
    int sv[2];
    char *big = (char *)calloc(1, 8 << 20);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    b.iov_base = big;
    b.iov_len = 8 << 20; /* more than the socket buffer takes */
    REQUIRE_INT(evloop_write(&req, &a, &b, 1, cancel_cb), ==, 0);
    CHECK_UINT(evloop_stream_queued(&a), >, 0);
    CHECK_INT(evloop_try_write(&a, &b, 1), ==, -EAGAIN);
    closed_count = 0;
    cancel_status = 1;
    evloop_close(&a.handle, on_closed);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cancel_status, ==, -ECANCELED);
    CHECK_INT(cancel_seen_before_close, ==, 1);
    CHECK_INT(closed_count, ==, 1);
    close(sv[1]);
    free(big);
    free_loop(loop);
}

/* Many small buffers in one write (more than the inline four). */
TEST(write_many_buffers)
{
    evloop *loop = new_loop();
    evloop_stream a;
    evloop_write_req req;
    evloop_buf bufs[100];
    int sv[2], i;
    char expect[200], got[256];
    ssize_t n, total = 0;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    for (i = 0; i < 100; i++) {
        expect[2 * i] = (char)('a' + i % 26);
        expect[2 * i + 1] = (char)('A' + i % 26);
        bufs[i].iov_base = &expect[2 * i];
        bufs[i].iov_len = 2;
    }
    norder = 0;
    req.data = (void *)7;
    CHECK_INT(evloop_write(&req, &a, bufs, 100, log_write), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(norder, ==, 1);
    while (total < 200 && (n = read(sv[1], got + total, sizeof got - (size_t)total)) > 0)
        total += n;
    CHECK_INT(total, ==, 200);
    CHECK(memcmp(got, expect, 200) == 0);
    free_loop(loop);
    close(sv[1]);
}


/* Bytes that arrived while reading was stopped, or that are left after the
 * 32-buffers-per-wake-up cap, are read without any new event from the
 * kernel (edge-triggered epoll sends none). */
static size_t pause_got;
static evloop_timer pause_timer;
static int pause_stops;
static void pause_read(evloop_stream *s, ssize_t n, const char *buf);
static void pause_resume(evloop_timer *t)
{
    evloop_stream *s = (evloop_stream *)t->handle.data;
    evloop_read_start(s, pause_read);
}
static void pause_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    REQUIRE(n > 0);
    pause_got += (size_t)n;
    if (pause_got >= 150000) {
        evloop_close(&s->handle, NULL);
        return;
    }
    if (pause_stops < 3 && pause_got > 40000u * (size_t)(pause_stops + 1)) {
        pause_stops++;
        evloop_read_stop(s);
        evloop_timer_start(&pause_timer, pause_resume, 10, 0);
    }
}

TEST(read_resumes_without_new_events)
{
    evloop *loop;
    evloop_options o;
    evloop_stream a;
    evloop_timer g;
    int sv[2];
    char *data = (char *)calloc(1, 150000);
    memset(&o, 0, sizeof o);
    o.read_buffer_size = 1024; /* 32 reads take 32 KiB: the cap is hit */
    REQUIRE_INT(evloop_new(&loop, &o), ==, 0);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    {
        int sz = 1 << 20;
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    REQUIRE_INT(write(sv[1], data, 150000), ==, 150000); /* all before the loop runs */
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    evloop_timer_init(loop, &pause_timer);
    pause_timer.handle.data = &a;
    pause_got = 0;
    pause_stops = 0;
    evloop_read_start(&a, pause_read);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_UINT(pause_got, ==, 150000);
    CHECK_INT(pause_stops, ==, 3);
    close(sv[1]);
    free(data);
    free_loop(loop);
}


/* ---- closing and stopping from inside callbacks ------------------------------------ */

static int cl_status[4], cl_n, cl_closed, cl_drains;
static void cl_on_closed(evloop_handle *h)
{
    (void)h;
    cl_closed++;
}
static void cl_write_then_close(evloop_write_req *req, int status)
{
    cl_status[cl_n++] = status;
    if (cl_n == 1)
        evloop_close(&req->stream->handle, cl_on_closed);
}
static void cl_drain_close(evloop_stream *s)
{
    cl_drains++;
    CHECK(evloop_stream_writable(s));
    evloop_close(&s->handle, cl_on_closed);
}
static void cl_connect_close(evloop_stream *s, int status)
{
    CHECK_INT(status, ==, 0);
    evloop_close(&s->handle, cl_on_closed);
}
static void cl_record_write(evloop_write_req *req, int status)
{
    (void)req;
    cl_status[cl_n++] = status;
}
static void cl_sink_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n < 0)
        evloop_close(&s->handle, NULL);
}

/* A stream closed from its write callback, its drain callback and its
 * connect callback: what is still queued is cancelled, the close
 * callback runs once. */
TEST(close_stream_from_its_callbacks)
{
    evloop *loop = new_loop();
    evloop_stream a, b, srv, c;
    evloop_write_req r1, r2;
    evloop_buf small, large;
    struct sockaddr_storage addr;
    evloop_timer g;
    int sv[2], port;
    char *big = (char *)calloc(1, 8 << 20);
    small.iov_base = (void *)"x";
    small.iov_len = 1;
    large.iov_base = big;
    large.iov_len = 8 << 20; /* more than the socket takes */
    start_guard(loop, &g, 10000);
    /* the write callback: the first write is done, the second is queued */
    cl_n = cl_closed = 0;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    CHECK_INT(evloop_write(&r1, &a, &small, 1, cl_write_then_close), ==, 0);
    CHECK_INT(evloop_write(&r2, &a, &large, 1, cl_write_then_close), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cl_n, ==, 2);
    CHECK_INT(cl_status[0], ==, 0);
    CHECK_INT(cl_status[1], ==, -ECANCELED);
    CHECK_INT(cl_closed, ==, 1);
    close(sv[1]);
    /* the drain callback */
    cl_closed = cl_drains = 0;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_pipe_init(loop, &b);
    evloop_stream_open(&a, sv[0]);
    evloop_stream_open(&b, sv[1]);
    evloop_stream_set_hwm(&a, 1 << 20, cl_drain_close);
    CHECK_INT(evloop_write(&r1, &a, &large, 1, NULL), ==, 0);
    CHECK(!evloop_stream_writable(&a));
    evloop_read_start(&b, cl_sink_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cl_drains, ==, 1);
    CHECK_INT(cl_closed, ==, 1);
    /* the connect callback, with a write queued while connecting */
    cl_n = cl_closed = 0;
    port = listen_local(loop, &srv, names_conn);
    REQUIRE(port > 0);
    evloop_addr("127.0.0.1", port, &addr);
    evloop_tcp_init(loop, &c);
    REQUIRE_INT(evloop_tcp_connect(&c, (struct sockaddr *)&addr, cl_connect_close), ==, 0);
    CHECK_INT(evloop_write(&r1, &c, &large, 1, cl_record_write), ==, 0);
    while (!cl_closed && !guard_fired)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    CHECK_INT(cl_closed, ==, 1);
    CHECK_INT(cl_n, ==, 1);
    CHECK_INT(cl_status[0], ==, -ECANCELED);
    CHECK_INT(guard_fired, ==, 0);
    free_loop(loop);
    free(big);
}

/* ---- sendfile and detach ---------------------------------------------------------- */

static char file_got[3 << 20];
static size_t file_ngot;
static int file_status[3], file_nstatus;
static void file_write_done(evloop_write_req *req, int status)
{
    (void)req;
    file_status[file_nstatus++] = status;
}
static void file_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n < 0) {
        evloop_close(&s->handle, NULL);
        return;
    }
    if (file_ngot + (size_t)n <= sizeof file_got)
        memcpy(file_got + file_ngot, buf, (size_t)n);
    file_ngot += (size_t)n;
}
static void file_shut(evloop_stream *s, int status)
{
    CHECK_INT(status, ==, 0);
    evloop_close(&s->handle, NULL);
}

TEST(sendfile_in_order_with_writes)
{
    evloop *loop = new_loop();
    evloop_stream a, b;
    evloop_write_req r1, r2, r3;
    evloop_buf hb, tb;
    char path[64];
    int sv[2], fd;
    size_t i, size = 2u << 20; /* more than the socket takes at once */
    char *data = (char *)malloc(size);
    for (i = 0; i < size; i++)
        data[i] = (char)(i * 7 + i / 4096);
    snprintf(path, sizeof path, "/tmp/evloop-sendfile-%d", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE_INT(write(fd, data, size), ==, (ssize_t)size);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_pipe_init(loop, &b);
    evloop_stream_open(&a, sv[0]);
    evloop_stream_open(&b, sv[1]);
    file_ngot = 0;
    file_nstatus = 0;
    hb.iov_base = (void *)"HEAD";
    hb.iov_len = 4;
    tb.iov_base = (void *)"TAIL";
    tb.iov_len = 4;
    /* head, the file from offset 100, tail: received in that order */
    CHECK_INT(evloop_write(&r1, &a, &hb, 1, file_write_done), ==, 0);
    CHECK_INT(evloop_sendfile(&r2, &a, fd, 100, size - 100, file_write_done), ==, 0);
    CHECK_UINT(evloop_stream_queued(&a), >, 0);
    CHECK_INT(evloop_write(&r3, &a, &tb, 1, file_write_done), ==, 0);
    evloop_shutdown(&a, file_shut);
    evloop_read_start(&b, file_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(file_nstatus, ==, 3);
    CHECK_INT(file_status[1], ==, 0);
    REQUIRE_UINT(file_ngot, ==, size - 100 + 8);
    CHECK(memcmp(file_got, "HEAD", 4) == 0);
    CHECK(memcmp(file_got + 4, data + 100, size - 100) == 0);
    CHECK(memcmp(file_got + 4 + size - 100, "TAIL", 4) == 0);
    /* a file shorter than promised fails the request with -EIO */
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    file_nstatus = 0;
    CHECK_INT(evloop_sendfile(&r1, &a, -1, 0, 20, file_write_done), ==, -EINVAL);
    CHECK_INT(evloop_sendfile(&r1, &a, fd, (int64_t)size - 10, 20, file_write_done), ==, -EIO);
    /* 10 of the 20 bytes went out: the stream takes no more writes */
    CHECK_INT(evloop_write_copy(&a, "x", 1, NULL, NULL), ==, -EPIPE);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(file_nstatus, ==, 0);
    close(sv[1]);
    close(fd);
    unlink(path);
    free(data);
    free_loop(loop);
}

/* A file system without sendfile support: /proc files take the copy path. */
TEST(sendfile_fallback_copy)
{
    evloop *loop = new_loop();
    evloop_stream a, b;
    evloop_write_req r;
    int sv[2], fd = open("/proc/self/cmdline", O_RDONLY);
    char expect[256];
    ssize_t n;
    REQUIRE(fd >= 0);
    n = pread(fd, expect, sizeof expect, 0);
    REQUIRE(n > 0);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_pipe_init(loop, &b);
    evloop_stream_open(&a, sv[0]);
    evloop_stream_open(&b, sv[1]);
    file_ngot = 0;
    file_nstatus = 0;
    CHECK_INT(evloop_sendfile(&r, &a, fd, 0, (uint64_t)n, file_write_done), ==, 0);
    evloop_shutdown(&a, file_shut);
    evloop_read_start(&b, file_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(file_nstatus, ==, 1);
    CHECK_INT(file_status[0], ==, 0);
    CHECK_UINT(file_ngot, ==, (size_t)n);
    CHECK(memcmp(file_got, expect, (size_t)n) == 0);
    close(fd);
    free_loop(loop);
}

static void detach_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0) {
        memcpy(file_got + file_ngot, buf, (size_t)n);
        file_ngot += (size_t)n;
    }
    if (file_ngot >= 5 || n < 0)
        evloop_close(&s->handle, NULL);
}
static void detach_first(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    (void)n;
    /* the first read took whatever came; stop and hand the fd over */
    evloop_read_stop(s);
}

TEST(stream_detach_hands_over_fd)
{
    evloop *loop = new_loop();
    evloop_stream a, b;
    evloop_write_req r;
    evloop_buf buf;
    int sv[2], fd;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    CHECK_INT(write(sv[1], "12345", 5), ==, 5);
    evloop_read_start(&a, detach_first);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(write(sv[1], "67890", 5), ==, 5); /* unread when detached */
    buf.iov_base = (void *)"x";
    buf.iov_len = 1;
    fd = evloop_stream_detach(&a);
    CHECK_INT(fd, ==, sv[0]);
    CHECK_INT(evloop_stream_detach(&a), ==, -EBADF);
    CHECK_INT(evloop_write(&r, &a, &buf, 1, file_write_done), ==, -ENOTCONN);
    evloop_close(&a.handle, NULL); /* does not close fd */
    evloop_pipe_init(loop, &b);
    REQUIRE_INT(evloop_stream_open(&b, fd), ==, 0);
    file_ngot = 0;
    memset(file_got, 0, 16);
    evloop_read_start(&b, detach_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_MEM(file_got, file_ngot, "67890");
    close(sv[1]);
    free_loop(loop);
}

/* ---- a call that fails never calls back ----------------------------------------------- */

/* Makes the loop's backend refuse the next registration of a descriptor:
 * epoll_ctl on a descriptor that is not an epoll instance fails; the poll
 * backend's first registration needs memory. */
#ifndef EVLOOP_BACKEND_POLL
static int saved_backend_fd = -1;
#endif
static void break_backend(evloop *loop)
{
#ifdef EVLOOP_BACKEND_POLL
    (void)loop;
    alloc_fail = 1;
#else
    int devnull = open("/dev/null", O_RDONLY);
    saved_backend_fd = dup(evloop_backend_fd(loop));
    dup2(devnull, evloop_backend_fd(loop));
    close(devnull);
#endif
}
static void mend_backend(evloop *loop)
{
#ifdef EVLOOP_BACKEND_POLL
    (void)loop;
    alloc_fail = 0;
#else
    dup2(saved_backend_fd, evloop_backend_fd(loop));
    close(saved_backend_fd);
#endif
}

static int cb_calls;
static void count_write_cb(evloop_write_req *r, int status)
{
    (void)r;
    (void)status;
    cb_calls++;
}
static void count_connect_cb(evloop_stream *s, int status)
{
    (void)s;
    (void)status;
    cb_calls++;
}

TEST(failed_registration_never_calls_back)
{
    evloop *loop = new_loop(); /* nothing registered with the backend yet */
    evloop_stream a, c;
    evloop_write_req req;
    evloop_buf b;
    struct sockaddr_in sin;
    int sv[2], lfd, rc;
    cb_calls = 0;
    /* writes that must be queued, but writability cannot be watched */
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &a);
    REQUIRE_INT(evloop_stream_open(&a, sv[0]), ==, 0);
    fill_socket(sv[0]);
    b.iov_base = (void *)"x";
    b.iov_len = 1;
    break_backend(loop);
    rc = evloop_write(&req, &a, &b, 1, count_write_cb);
    mend_backend(loop);
    CHECK_INT(rc, <, 0);
    break_backend(loop);
    rc = evloop_write_copy(&a, "x", 1, count_write_cb, NULL);
    mend_backend(loop);
    CHECK_INT(rc, <, 0);
    CHECK_UINT(evloop_stream_queued(&a), ==, 0);
    CHECK(evloop_stream_writable(&a)); /* nothing went out: still usable */
    CHECK(!evloop_is_active(&a.handle));
    /* a connect whose result cannot be watched */
    lfd = plain_listener(&sin, 0);
    REQUIRE(lfd >= 0);
    evloop_tcp_init(loop, &c);
    break_backend(loop);
    rc = evloop_tcp_connect(&c, (struct sockaddr *)&sin, count_connect_cb);
    mend_backend(loop);
    CHECK_INT(rc, <, 0);
    CHECK_INT(evloop_stream_fd(&c), ==, -1); /* the socket it made is gone */
    CHECK(!evloop_is_active(&c.handle));
    evloop_close(&a.handle, NULL);
    evloop_close(&c.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cb_calls, ==, 0); /* not even -ECANCELED at close */
    close(sv[1]);
    close(lfd);
    free_loop(loop);
}

/* No memory for what is left after part of a write went out: the call
 * fails and the stream takes no more writes (its byte stream has a hole). */
TEST(write_fails_after_partial_write)
{
    evloop *loop = new_loop();
    evloop_stream a, p;
    evloop_write_req req;
    evloop_buf bufs[8];
    int sv[2], sv2[2], i, small = 65536;
    char *big = (char *)calloc(8, 65536);
    cb_calls = 0;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), ==, 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv2[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    evloop_pipe_init(loop, &a);
    evloop_pipe_init(loop, &p);
    evloop_stream_open(&a, sv[0]);
    evloop_stream_open(&p, sv2[0]);
    for (i = 0; i < 8; i++) { /* more than four: the rest needs an array */
        bufs[i].iov_base = big + i * 65536;
        bufs[i].iov_len = 65536;
    }
    alloc_fail = 1;
    CHECK_INT(evloop_write(&req, &a, bufs, 8, count_write_cb), ==, -ENOMEM);
    CHECK_INT(evloop_write_copy(&p, big, 8 * 65536, count_write_cb, NULL), ==, -ENOMEM);
    alloc_fail = 0;
    CHECK(!evloop_stream_writable(&a));
    CHECK(!evloop_stream_writable(&p));
    CHECK_INT(evloop_write_copy(&a, "x", 1, NULL, NULL), ==, -EPIPE);
    CHECK_INT(evloop_write_copy(&p, "x", 1, NULL, NULL), ==, -EPIPE);
    CHECK_INT(evloop_shutdown(&a, NULL), ==, -EPIPE);
    evloop_close(&a.handle, NULL);
    evloop_close(&p.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(cb_calls, ==, 0);
    close(sv[1]);
    close(sv2[1]);
    free(big);
    free_loop(loop);
}

/* ---- peer reset --------------------------------------------------------------------- */

static int reset_err;
static void reset_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n > 0)
        return;
    reset_err = (int)n;
    evloop_close(&s->handle, NULL);
}
/* The server resets the connection once the client's first bytes came. */
static void reset_server_read(evloop_stream *s, ssize_t n, const char *buf)
{
    struct linger lg;
    (void)buf;
    (void)n;
    lg.l_onoff = 1; /* close with RST: linger on, timeout 0 */
    lg.l_linger = 0;
    setsockopt(evloop_stream_fd(s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    evloop_close(&s->handle, echo_on_close);
}
static void reset_conn(evloop_stream *server, int status)
{
    conn *c = (conn *)calloc(1, sizeof *c);
    REQUIRE_INT(status, ==, 0);
    evloop_tcp_init(server->handle.loop, &c->s);
    c->s.handle.data = c;
    evloop_accept(server, &c->s);
    evloop_read_start(&c->s, reset_server_read);
    evloop_close(&server->handle, NULL);
}
static void reset_connected(evloop_stream *s, int status)
{
    REQUIRE_INT(status, ==, 0);
    evloop_write_copy(s, "x", 1, NULL, NULL);
    evloop_read_start(s, reset_read);
}

TEST(tcp_peer_reset)
{
    evloop *loop = new_loop();
    evloop_stream srv, c;
    struct sockaddr_storage a;
    evloop_timer g;
    int port = listen_local(loop, &srv, reset_conn);
    REQUIRE(port > 0);
    evloop_addr("127.0.0.1", port, &a);
    evloop_tcp_init(loop, &c);
    reset_err = 0;
    evloop_tcp_connect(&c, (struct sockaddr *)&a, reset_connected);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(reset_err, ==, -ECONNRESET);
    free_loop(loop);
}

/* The peer resets the connection while a write is queued: its callback
 * gets the error (-ECONNRESET, or -EPIPE once the socket knows). */
static int qreset_status = 1;
static void qreset_written(evloop_write_req *req, int status)
{
    (void)req;
    qreset_status = status;
}

TEST(tcp_peer_reset_fails_queued_write)
{
    evloop *loop = new_loop();
    evloop_stream c;
    evloop_write_req req;
    evloop_buf b;
    evloop_timer g;
    struct sockaddr_in sin;
    struct linger lg;
    int lfd, pfd, small = 65536;
    char *big = (char *)calloc(1, 8 << 20);
    lfd = plain_listener(&sin, small); /* a small receive buffer, inherited */
    REQUIRE(lfd >= 0);
    evloop_tcp_init(loop, &c);
    connect_status = 1;
    REQUIRE_INT(evloop_tcp_connect(&c, (struct sockaddr *)&sin, record_connect), ==, 0);
    start_guard(loop, &g, 5000);
    while (connect_status == 1 && !guard_fired)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    REQUIRE_INT(connect_status, ==, 0);
    pfd = accept(lfd, NULL, NULL);
    REQUIRE(pfd >= 0);
    setsockopt(evloop_stream_fd(&c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    b.iov_base = big;
    b.iov_len = 8 << 20;
    qreset_status = 1;
    REQUIRE_INT(evloop_write(&req, &c, &b, 1, qreset_written), ==, 0);
    CHECK_UINT(evloop_stream_queued(&c), >, 0);
    lg.l_onoff = 1; /* close with RST */
    lg.l_linger = 0;
    setsockopt(pfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(pfd);
    while (qreset_status == 1 && !guard_fired)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    CHECK(qreset_status == -ECONNRESET || qreset_status == -EPIPE);
    CHECK_UINT(evloop_stream_queued(&c), ==, 0);
    CHECK(!evloop_stream_writable(&c));
    CHECK_INT(evloop_write_copy(&c, "x", 1, NULL, NULL), ==, -EPIPE);
    close(lfd);
    free(big);
    free_loop(loop);
}

/* A write to a reset peer fails with an error, never SIGPIPE. */
TEST(write_to_closed_peer)
{
    evloop *loop = new_loop();
    evloop_stream a, p;
    int sv[2], pp[2], rc;
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    close(sv[1]);
    evloop_pipe_init(loop, &a);
    evloop_stream_open(&a, sv[0]);
    rc = evloop_write_copy(&a, "x", 1, NULL, NULL);
    CHECK_INT(rc, ==, -EPIPE);
    /* a pipe too (write(2), where only the ignored SIGPIPE protects us) */
    REQUIRE_INT(pipe(pp), ==, 0);
    close(pp[0]);
    evloop_pipe_init(loop, &p);
    evloop_stream_open(&p, pp[1]);
    CHECK_INT(evloop_write_copy(&p, "x", 1, NULL, NULL), ==, -EPIPE);
    free_loop(loop);
}

/* ---- EMFILE on accept ------------------------------------------------------------------ */

static int emfile_errors, emfile_accepted;
static void emfile_conn(evloop_stream *server, int status)
{
    conn *c;
    if (status < 0) {
        CHECK_INT(status, ==, -EMFILE);
        emfile_errors++;
        return;
    }
    c = (conn *)calloc(1, sizeof *c);
    evloop_tcp_init(server->handle.loop, &c->s);
    c->s.handle.data = c;
    if (evloop_accept(server, &c->s) == 0)
        emfile_accepted++;
    evloop_close(&c->s.handle, echo_on_close);
    evloop_close(&server->handle, NULL);
}
static int fillers[4096], nfillers;
static void release_fds(evloop_timer *t)
{
    (void)t;
    while (nfillers)
        close(fillers[--nfillers]);
}
/* Lowers the descriptor limit to a little above what is open, then opens
 * /dev/null until no descriptor is left (release_fds and setrlimit(old)
 * undo it). 0 when the process is out of descriptors. */
static int exhaust_fds(struct rlimit *old)
{
    struct rlimit lim;
    int fd;
    getrlimit(RLIMIT_NOFILE, old);
    lim = *old;
    fd = dup(0);
    close(fd);
    lim.rlim_cur = (rlim_t)fd + 8;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
        return -1;
    nfillers = 0;
    while (nfillers < 4096 && (fd = open("/dev/null", O_RDONLY)) >= 0)
        fillers[nfillers++] = fd;
    return errno == EMFILE ? 0 : -1;
}

TEST(emfile_on_accept_does_not_spin)
{
    evloop *loop = new_loop();
    evloop_stream srv;
    evloop_hook chk;
    evloop_timer release, g;
    struct rlimit old;
    int port, client;
    port = listen_local(loop, &srv, emfile_conn);
    REQUIRE(port > 0);
    /* a client that connects through the backlog before fds run out */
    client = connect_local(port);
    REQUIRE(client >= 0);
    REQUIRE_INT(exhaust_fds(&old), ==, 0);
    iterations = emfile_errors = emfile_accepted = 0;
    evloop_hook_init(loop, &chk, EVLOOP_HOOK_CHECK);
    evloop_hook_start(&chk, count_iter);
    evloop_unref(&chk.handle);
    evloop_timer_init(loop, &release);
    evloop_timer_start(&release, release_fds, 300, 0);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    setrlimit(RLIMIT_NOFILE, &old);
    release_fds(NULL);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(emfile_errors, >=, 1);
    CHECK_INT(emfile_errors, <=, 5);   /* once per 100 ms pause, not per wake-up */
    CHECK_INT(iterations, <, 50);      /* a spinning loop makes thousands */
    CHECK_INT(emfile_accepted, ==, 1); /* accepted once fds were free again */
    close(client);
    free_loop(loop);
}

/* Out of descriptors and without memory for the pause timer: the listener
 * is not paused (it could never resume); it accepts once fds are back. */
TEST(emfile_without_timer_memory_keeps_accepting)
{
    evloop *loop = new_loop(); /* no timer yet: the heap is not allocated */
    evloop_stream srv;
    struct rlimit old;
    int port, client, i;
    port = listen_local(loop, &srv, emfile_conn);
    REQUIRE(port > 0);
    client = connect_local(port);
    REQUIRE(client >= 0);
    REQUIRE_INT(exhaust_fds(&old), ==, 0);
    emfile_errors = emfile_accepted = 0;
    alloc_fail = 1;
    for (i = 0; i < 3; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    alloc_fail = 0;
    setrlimit(RLIMIT_NOFILE, &old);
    release_fds(NULL);
    CHECK_INT(emfile_errors, >=, 1);
    for (i = 0; i < 10 && !emfile_accepted; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(emfile_accepted, ==, 1);
    close(client);
    free_loop(loop);
}

/* accept_retry_ms is the pause of a listener out of descriptors. */
static uint64_t retry_due_in;
static void retry_conn(evloop_stream *server, int status)
{
    if (status < 0 && !retry_due_in)
        retry_due_in = evloop_timer_due_in(&server->handle.loop->accept_timer); /* white-box */
    emfile_conn(server, status);
}

TEST(option_accept_retry_ms)
{
    evloop *loop;
    evloop_options o;
    evloop_stream srv;
    evloop_timer g;
    struct rlimit old;
    int port, client;
    memset(&o, 0, sizeof o);
    o.accept_retry_ms = 30;
    REQUIRE_INT(evloop_new(&loop, &o), ==, 0);
    port = listen_local(loop, &srv, retry_conn);
    REQUIRE(port > 0);
    client = connect_local(port);
    REQUIRE(client >= 0);
    start_guard(loop, &g, 5000);
    REQUIRE_INT(exhaust_fds(&old), ==, 0);
    retry_due_in = 0;
    emfile_errors = emfile_accepted = 0;
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
    setrlimit(RLIMIT_NOFILE, &old);
    release_fds(NULL);
    CHECK_INT(emfile_errors, ==, 1);
    CHECK_UINT(retry_due_in, ==, 30);
    evloop_run(loop, EVLOOP_RUN_DEFAULT); /* resumes after 30 ms, accepts, closes */
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(emfile_accepted, ==, 1);
    close(client);
    free_loop(loop);
}

/* ---- signals --------------------------------------------------------------------------- */

static int sig_a, sig_b, sig_once;
static void on_sig_a(evloop_signal *s, int signum) { (void)s; CHECK_INT(signum, ==, SIGUSR1); sig_a++; }
static void on_sig_b(evloop_signal *s, int signum) { (void)s; (void)signum; sig_b++; }
static void on_sig_once(evloop_signal *s, int signum) { (void)s; (void)signum; sig_once++; }
static void raise_usr1(evloop_timer *t) { (void)t; kill(getpid(), SIGUSR1); }
static void stop_all_sig(evloop_timer *t)
{
    evloop_walk(t->handle.loop, close_any, NULL);
}

TEST(signals)
{
    evloop *loop = new_loop();
    evloop_signal a, b, once;
    evloop_timer t1, t2, done, g;
    struct sigaction sa;
    sig_a = sig_b = sig_once = 0;
    evloop_signal_init(loop, &a);
    evloop_signal_init(loop, &b);
    evloop_signal_init(loop, &once);
    CHECK_INT(evloop_signal_start(&a, on_sig_a, SIGKILL), ==, -EINVAL);
    CHECK_INT(evloop_signal_start(&a, on_sig_a, 0), ==, -EINVAL);
    REQUIRE_INT(evloop_signal_start(&a, on_sig_a, SIGUSR1), ==, 0);
    REQUIRE_INT(evloop_signal_start(&b, on_sig_b, SIGUSR1), ==, 0);
    REQUIRE_INT(evloop_signal_start_oneshot(&once, on_sig_once, SIGUSR1), ==, 0);
    evloop_timer_init(loop, &t1);
    evloop_timer_init(loop, &t2);
    evloop_timer_init(loop, &done);
    evloop_timer_start(&t1, raise_usr1, 5, 0);
    evloop_timer_start(&t2, raise_usr1, 60, 0);
    evloop_timer_start(&done, stop_all_sig, 200, 0);
    start_guard(loop, &g, 5000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(sig_a, ==, 2);
    CHECK_INT(sig_b, ==, 2);
    CHECK_INT(sig_once, ==, 1);
    /* the last handle gone: the default disposition is back */
    sigaction(SIGUSR1, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
    free_loop(loop);
}

/* A flood of one signal before the loop reads any (more than a pipe holds,
 * one byte per signal) must not cost another signal that follows. */
TEST(signal_flood_loses_no_other_signal)
{
    evloop *loop = new_loop();
    evloop_signal a, b;
    int i;
    sig_a = sig_b = 0;
    evloop_signal_init(loop, &a);
    evloop_signal_init(loop, &b);
    REQUIRE_INT(evloop_signal_start(&a, on_sig_a, SIGUSR1), ==, 0);
    REQUIRE_INT(evloop_signal_start(&b, on_sig_b, SIGUSR2), ==, 0);
    for (i = 0; i < 70000; i++)
        kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    for (i = 0; i < 3; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    CHECK_INT(sig_b, ==, 1);
    CHECK_INT(sig_a, >=, 1);
    CHECK_INT(sig_a, <=, 3); /* coalesced */
    free_loop(loop);
}

/* The signals a server handles: each handle gets its own number; once
 * they are closed, the previous disposition is back. */
static int sig_seen[EVLOOP__NSIG];
static void on_sig_record(evloop_signal *s, int signum)
{
    CHECK_INT(signum, ==, s->signum);
    sig_seen[signum]++;
}

TEST(signals_int_term_hup)
{
    evloop *loop = new_loop();
    evloop_signal h[3];
    const int nums[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    int i;
    memset(sig_seen, 0, sizeof sig_seen);
    for (i = 0; i < 3; i++) {
        evloop_signal_init(loop, &h[i]);
        REQUIRE_INT(evloop_signal_start(&h[i], on_sig_record, nums[i]), ==, 0);
    }
    for (i = 0; i < 3; i++)
        kill(getpid(), nums[i]);
    kill(getpid(), SIGTERM);
    run_for(loop, 20);
    CHECK_INT(sig_seen[SIGINT], ==, 1);
    CHECK_INT(sig_seen[SIGTERM], >=, 1); /* twice, maybe coalesced */
    CHECK_INT(sig_seen[SIGHUP], ==, 1);
    CHECK_INT(evloop_signal_stop(&h[0]), ==, 0);
    CHECK_INT(evloop_signal_stop(&h[0]), ==, 0); /* stopping twice is fine */
    CHECK(!evloop_is_active(&h[0].handle));
    sigaction(SIGINT, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
    free_loop(loop);
    sigaction(SIGTERM, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
}

/* Two loops watch one signal: each of them gets it. A handle restarted
 * with another number watches only that one. */
TEST(signal_two_loops_and_restart_with_another_number)
{
    evloop *l1 = new_loop(), *l2 = new_loop();
    evloop_signal a, b, keep;
    struct sigaction sa;
    memset(sig_seen, 0, sizeof sig_seen);
    sig_a = sig_b = 0;
    evloop_signal_init(l1, &a);
    evloop_signal_init(l2, &b);
    evloop_signal_start(&a, on_sig_a, SIGUSR1);
    evloop_signal_start(&b, on_sig_b, SIGUSR1);
    kill(getpid(), SIGUSR1);
    evloop_run(l1, EVLOOP_RUN_NOWAIT);
    evloop_run(l2, EVLOOP_RUN_NOWAIT);
    CHECK_INT(sig_a, ==, 1);
    CHECK_INT(sig_b, ==, 1);
    /* a moves to SIGUSR2; b (another loop) keeps SIGUSR1 caught */
    evloop_signal_init(l1, &keep);
    REQUIRE_INT(evloop_signal_start(&keep, on_sig_record, SIGUSR2), ==, 0);
    REQUIRE_INT(evloop_signal_start(&a, on_sig_record, SIGUSR2), ==, 0);
    CHECK_INT(a.signum, ==, SIGUSR2);
    kill(getpid(), SIGUSR1);
    evloop_run(l1, EVLOOP_RUN_NOWAIT);
    evloop_run(l2, EVLOOP_RUN_NOWAIT);
    CHECK_INT(sig_a, ==, 1); /* no longer */
    CHECK_INT(sig_b, ==, 2);
    kill(getpid(), SIGUSR2);
    evloop_run(l1, EVLOOP_RUN_NOWAIT);
    CHECK_INT(sig_seen[SIGUSR2], ==, 2); /* a and keep */
    evloop_close(&b.handle, NULL);
    evloop_run(l2, EVLOOP_RUN_NOWAIT);
    sigaction(SIGUSR1, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL); /* a let SIGUSR1 go when it moved */
    free_loop(l1);
    free_loop(l2);
}

/* ---- async: 4 threads x 100k sends --------------------------------------------------- */

#define ASYNC_THREADS 4
#define ASYNC_SENDS 100000
static evloop_async the_async;
static long async_counter, async_last_seen;
static int async_threads_done, async_calls;
static void *async_sender(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < ASYNC_SENDS; i++) {
        __atomic_add_fetch(&async_counter, 1, __ATOMIC_SEQ_CST);
        evloop_async_send(&the_async);
    }
    __atomic_add_fetch(&async_threads_done, 1, __ATOMIC_SEQ_CST);
    evloop_async_send(&the_async);
    return NULL;
}
static void on_async(evloop_async *a)
{
    long seen = __atomic_load_n(&async_counter, __ATOMIC_SEQ_CST);
    int done = __atomic_load_n(&async_threads_done, __ATOMIC_SEQ_CST);
    async_calls++;
    async_last_seen = seen;
    if (done == ASYNC_THREADS && seen == (long)ASYNC_THREADS * ASYNC_SENDS)
        evloop_close(&a->handle, NULL);
}

TEST(async_four_threads_never_lose_a_wakeup)
{
    evloop *loop = new_loop();
    pthread_t th[ASYNC_THREADS];
    evloop_timer g;
    int i;
    async_counter = async_last_seen = 0;
    async_threads_done = async_calls = 0;
    REQUIRE_INT(evloop_async_init(loop, &the_async, on_async), ==, 0);
    CHECK(evloop_is_active(&the_async.handle));
    for (i = 0; i < ASYNC_THREADS; i++)
        pthread_create(&th[i], NULL, async_sender, NULL);
    start_guard(loop, &g, 30000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT); /* ends only when the last send was seen */
    for (i = 0; i < ASYNC_THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(async_last_seen, ==, (long)ASYNC_THREADS * ASYNC_SENDS);
    CHECK_INT(async_calls, >=, 1);
    CHECK_INT(async_calls, <=, ASYNC_THREADS * (ASYNC_SENDS + 1)); /* coalesced */
    free_loop(loop);
}

static int async_plain;
static void on_async_plain(evloop_async *a) { async_plain++; evloop_unref(&a->handle); }
TEST(async_send_from_loop_thread_and_unref)
{
    evloop *loop = new_loop();
    evloop_async a;
    async_plain = 0;
    evloop_async_init(loop, &a, on_async_plain);
    evloop_async_send(&a);
    evloop_async_send(&a); /* coalesces */
    evloop_run(loop, EVLOOP_RUN_DEFAULT); /* the callback unrefs: the loop ends */
    CHECK_INT(async_plain, ==, 1);
    free_loop(loop);
}

/* ---- child processes -------------------------------------------------------------------- */

static int64_t exit_code;
static int exit_sig, exits;
static void on_exit_cb(evloop_process *p, int64_t status, int sig)
{
    exit_code = status;
    exit_sig = sig;
    exits++;
    evloop_close(&p->handle, NULL);
}

static int spawn_sh(evloop *loop, evloop_process *p, const char *script, evloop_process_options *o)
{
    static char *args[4];
    args[0] = (char *)"sh";
    args[1] = (char *)"-c";
    args[2] = (char *)script;
    args[3] = NULL;
    o->file = "sh";
    o->args = args;
    return evloop_spawn(loop, p, o, on_exit_cb);
}

TEST(process_exit_codes_and_signals)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    memset(&o, 0, sizeof o);
    exits = 0;
    REQUIRE_INT(spawn_sh(loop, &p, "exit 3", &o), ==, 0);
    CHECK_INT(p.pid, >, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 1);
    CHECK_INT(exit_code, ==, 3);
    CHECK_INT(exit_sig, ==, 0);
    REQUIRE_INT(spawn_sh(loop, &p, "kill -TERM $$", &o), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exit_sig, ==, SIGTERM);
    /* kill from the parent */
    REQUIRE_INT(spawn_sh(loop, &p, "sleep 10", &o), ==, 0);
    CHECK_INT(evloop_process_kill(&p, SIGKILL), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exit_sig, ==, SIGKILL);
    CHECK_INT(evloop_process_kill(&p, SIGKILL), ==, -ESRCH);
    free_loop(loop);
}

TEST(process_spawn_failure_leaves_nothing)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    char *args[] = {(char *)"nope", NULL};
    int status;
    memset(&o, 0, sizeof o);
    o.file = "/nonexistent/program";
    o.args = args;
    CHECK_INT(evloop_spawn(loop, &p, &o, on_exit_cb), ==, -ENOENT);
    {
        char path[64];
        int fd;
        snprintf(path, sizeof path, "/tmp/evloop-noexec-%d", (int)getpid());
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644); /* no execute bit */
        close(fd);
        o.file = path;
        CHECK_INT(evloop_spawn(loop, &p, &o, on_exit_cb), ==, -EACCES);
        unlink(path);
    }
    o.file = NULL;
    CHECK_INT(evloop_spawn(loop, &p, &o, on_exit_cb), ==, -EINVAL);
    CHECK_INT(waitpid(-1, &status, WNOHANG), <=, 0); /* no zombie */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    free_loop(loop);
}

static char proc_out[256];
static size_t proc_got;
static void proc_read(evloop_stream *s, ssize_t n, const char *buf)
{
    if (n > 0 && proc_got + (size_t)n < sizeof proc_out) {
        memcpy(proc_out + proc_got, buf, (size_t)n);
        proc_got += (size_t)n;
        proc_out[proc_got] = 0;
        return;
    }
    evloop_close(&s->handle, NULL);
}

TEST(process_stdio_pipes_env_cwd)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    evloop_stream in, out;
    char *env[] = {(char *)"FOO=bar baz", (char *)"PATH=/usr/bin:/bin", NULL};
    memset(&o, 0, sizeof o);
    evloop_pipe_init(loop, &in);
    evloop_pipe_init(loop, &out);
    o.stdio[0].kind = EVLOOP_STDIO_PIPE;
    o.stdio[0].stream = &in;
    o.stdio[1].kind = EVLOOP_STDIO_PIPE;
    o.stdio[1].stream = &out;
    o.stdio[2].kind = EVLOOP_STDIO_IGNORE;
    o.env = env;
    o.cwd = "/";
    proc_got = 0;
    exits = 0;
    REQUIRE_INT(spawn_sh(loop, &p, "echo \"$FOO\"; pwd; cat; echo oops >&2", &o), ==, 0);
    evloop_write_copy(&in, "from stdin\n", 11, NULL, NULL);
    evloop_shutdown(&in, NULL);
    evloop_read_start(&out, proc_read);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 1);
    CHECK_INT(exit_code, ==, 0);
    CHECK_STR(proc_out, "bar baz\n/\nfrom stdin\n");
    /* a pipe stream that is not a fresh pipe is refused */
    o.stdio[1].stream = &out;
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -EINVAL);
    free_loop(loop);
}

TEST(process_stdio_fd)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    char path[64], buf[64] = {0};
    int fd;
    ssize_t n;
    snprintf(path, sizeof path, "/tmp/evloop-test-out-%d", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    memset(&o, 0, sizeof o);
    o.stdio[1].kind = EVLOOP_STDIO_FD;
    o.stdio[1].fd = fd;
    exits = 0;
    REQUIRE_INT(spawn_sh(loop, &p, "printf to-file", &o), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 1);
    n = pread(fd, buf, sizeof buf - 1, 0);
    CHECK_INT(n, ==, 7);
    CHECK_STR(buf, "to-file");
    close(fd);
    unlink(path);
    free_loop(loop);
}

TEST(process_close_before_exit_reaps_later)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    evloop_timer t;
    evloop_signal s;
    pid_t pid;
    memset(&o, 0, sizeof o);
    exits = 0;
    REQUIRE_INT(spawn_sh(loop, &p, "sleep 0.05", &o), ==, 0);
    pid = p.pid;
    evloop_close(&p.handle, NULL); /* cancels the exit callback */
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    /* let it end; a SIGCHLD during a loop run reaps it */
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, count_timer, 200, 0);
    evloop_signal_init(loop, &s); /* another signal handle on the same pipe */
    evloop_signal_start(&s, on_sig_b, SIGUSR2);
    evloop_run(loop, EVLOOP_RUN_ONCE);
    evloop_close(&s.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 0);
    CHECK_INT(kill(pid, 0), ==, -1); /* gone, not a zombie */
    free_loop(loop);
}

/* EVLOOP_PROCESS_DETACHED: the child leads a session of its own. */
TEST(process_detached)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    /* field 6 of /proc/PID/stat is the session; a session leader's is its pid */
    const char *leader = "read -r a b c d e s rest < /proc/$$/stat; [ \"$s\" = \"$$\" ]";
    memset(&o, 0, sizeof o);
    exits = 0;
    o.flags = EVLOOP_PROCESS_DETACHED;
    REQUIRE_INT(spawn_sh(loop, &p, leader, &o), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 1);
    CHECK_INT(exit_code, ==, 0);
    o.flags = 0;
    REQUIRE_INT(spawn_sh(loop, &p, leader, &o), ==, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(exits, ==, 2);
    CHECK_INT(exit_code, ==, 1); /* in our session */
    free_loop(loop);
}

/* Bad options are refused before anything starts; no child is left. */
TEST(process_bad_options)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    int status;
    memset(&o, 0, sizeof o);
    exits = 0;
    o.stdio[1].kind = (evloop_stdio_kind)99;
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -EINVAL);
    o.stdio[1].kind = EVLOOP_STDIO_FD;
    o.stdio[1].fd = -1;
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -EBADF);
    o.stdio[1].kind = EVLOOP_STDIO_PIPE;
    o.stdio[1].stream = NULL;
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -EINVAL);
    memset(&o, 0, sizeof o);
    o.cwd = "/nonexistent/dir";
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -ENOENT);
    CHECK_INT(waitpid(-1, &status, WNOHANG), <=, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(exits, ==, 0);
    free_loop(loop);
}

/* No memory to give the parent's end of a stdio pipe to its stream: the
 * spawn fails before any child exists, and both ends are closed. */
TEST(process_spawn_pipe_without_memory)
{
    evloop *loop = new_loop();
    evloop_process p;
    evloop_process_options o;
    evloop_stream out;
    int fillers_n = 0, filler[256], lowest, rc, status;
    memset(&o, 0, sizeof o);
    exits = 0;
    REQUIRE_INT(spawn_sh(loop, &p, "true", &o), ==, 0); /* signal set-up done */
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    /* white-box: the pipe's descriptors will not fit the loop's fd table */
    while (fillers_n < 256 && (lowest = dup(0)) < loop->nwatchers)
        filler[fillers_n++] = lowest;
    REQUIRE(lowest >= loop->nwatchers);
    close(lowest);
    evloop_pipe_init(loop, &out);
    o.stdio[1].kind = EVLOOP_STDIO_PIPE;
    o.stdio[1].stream = &out;
    alloc_fail = 1;
    rc = spawn_sh(loop, &p, "echo hi", &o);
    alloc_fail = 0;
    CHECK_INT(rc, ==, -ENOMEM);
    CHECK_INT(evloop_stream_fd(&out), ==, -1);
    CHECK_INT(fcntl(lowest, F_GETFD), ==, -1); /* both ends closed */
    CHECK_INT(fcntl(lowest + 1, F_GETFD), ==, -1);
    CHECK_INT(waitpid(-1, &status, WNOHANG), <=, 0); /* no child */
    if (rc == 0)
        evloop_run(loop, EVLOOP_RUN_DEFAULT);
    /* the same stream twice is refused */
    o.stdio[2].kind = EVLOOP_STDIO_PIPE;
    o.stdio[2].stream = &out;
    CHECK_INT(spawn_sh(loop, &p, "true", &o), ==, -EINVAL);
    while (fillers_n)
        close(filler[--fillers_n]);
    free_loop(loop);
}

/* The struct of a process that ended is reused for the next child from its
 * close callback (as examples/watch.c restarts its command). */
static evloop_process respawn_p;
static int respawn_runs;
static void respawn_exit(evloop_process *p, int64_t status, int sig);
static void respawn_closed(evloop_handle *h)
{
    static char *args[] = {(char *)"true", NULL};
    evloop_process_options o;
    (void)h;
    if (respawn_runs == 3)
        return;
    memset(&o, 0, sizeof o);
    o.file = "true";
    o.args = args;
    CHECK_INT(evloop_spawn(h->loop, &respawn_p, &o, respawn_exit), ==, 0);
}
static void respawn_exit(evloop_process *p, int64_t status, int sig)
{
    CHECK_INT(status, ==, 0);
    CHECK_INT(sig, ==, 0);
    respawn_runs++;
    evloop_close(&p->handle, respawn_closed);
}

TEST(process_respawn_from_close_callback)
{
    evloop *loop = new_loop();
    evloop_timer g;
    respawn_runs = 0;
    respawn_p.handle.loop = loop; /* respawn_closed reads it for the first run */
    respawn_closed(&respawn_p.handle);
    start_guard(loop, &g, 10000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(respawn_runs, ==, 3);
    free_loop(loop);
}

/* Spawning into a struct that is still a live handle is misuse, caught by
 * EVLOOP_ASSERT (checked in a child process, which it aborts). */
TEST(process_spawn_into_live_handle_asserts)
{
    pid_t pid;
    int status = 0;
    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        evloop *loop;
        evloop_process p;
        evloop_process_options o;
        char *args[] = {(char *)"sleep", (char *)"1", NULL};
        memset(&o, 0, sizeof o);
        o.file = "sleep";
        o.args = args;
        (void)!freopen("/dev/null", "w", stderr); /* the assertion's message */
        if (evloop_new(&loop, NULL) != 0 || evloop_spawn(loop, &p, &o, NULL) != 0)
            _exit(3);
        evloop_close(&p.handle, NULL); /* closing, close callback not yet run */
        evloop_spawn(loop, &p, &o, NULL);
        _exit(0);
    }
    REQUIRE_INT(waitpid(pid, &status, 0), ==, pid);
    CHECK(WIFSIGNALED(status));
    CHECK_INT(WIFSIGNALED(status) ? WTERMSIG(status) : 0, ==, SIGABRT);
}

/* SIGCHLD watched by the user while the loop spawns children: both the
 * user's handle and the exit callbacks run, before and after the user's
 * handle is closed. */
TEST(signal_sigchld_watched_while_spawning)
{
    evloop *loop = new_loop();
    evloop_signal chld;
    evloop_process p;
    evloop_process_options o;
    evloop_timer g;
    memset(&o, 0, sizeof o);
    memset(sig_seen, 0, sizeof sig_seen);
    evloop_signal_init(loop, &chld);
    REQUIRE_INT(evloop_signal_start(&chld, on_sig_record, SIGCHLD), ==, 0);
    exits = 0;
    start_guard(loop, &g, 10000);
    REQUIRE_INT(spawn_sh(loop, &p, "exit 5", &o), ==, 0);
    while (!exits && !guard_fired)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    CHECK_INT(exits, ==, 1);
    CHECK_INT(exit_code, ==, 5);
    run_for(loop, 20); /* the handle may run in the same iteration or the next */
    CHECK_INT(sig_seen[SIGCHLD], >=, 1);
    evloop_close(&chld.handle, NULL);
    REQUIRE_INT(spawn_sh(loop, &p, "exit 6", &o), ==, 0);
    while (exits < 2 && !guard_fired)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    CHECK_INT(exits, ==, 2);
    CHECK_INT(exit_code, ==, 6);
    free_loop(loop);
}

/* ---- file watching ------------------------------------------------------------------------- */

typedef struct fsrec {
    char name[64];
    unsigned ev;
} fsrec;
static fsrec fsl[256];
static int nfs;
static void on_fs(evloop_fswatch *w, const char *name, unsigned ev)
{
    (void)w;
    if (nfs < 256) {
        snprintf(fsl[nfs].name, sizeof fsl[nfs].name, "%s", name);
        fsl[nfs].ev = ev;
        nfs++;
    }
}
static unsigned fs_events_for(const char *name)
{
    unsigned ev = 0;
    int i;
    for (i = 0; i < nfs; i++)
        if (strcmp(fsl[i].name, name) == 0)
            ev |= fsl[i].ev;
    return ev;
}
static int fs_count_for(const char *name)
{
    int i, n = 0;
    for (i = 0; i < nfs; i++)
        n += strcmp(fsl[i].name, name) == 0;
    return n;
}

static char fsdir[128];
static void sh(const char *fmt, const char *arg)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, fmt, arg, arg, arg, arg);
    if (system(cmd) != 0)
        fprintf(stderr, "command failed: %s\n", cmd);
}
static void run_for(evloop *loop, uint64_t ms)
{
    evloop_timer t;
    evloop_timer_init(loop, &t);
    evloop_timer_start(&t, count_timer, ms, 0);
    while (evloop_is_active(&t.handle))
        evloop_run(loop, EVLOOP_RUN_ONCE);
    evloop_close(&t.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_NOWAIT);
}

TEST(fswatch_directory_recursive)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    evloop_fswatch_options o;
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s/old", fsdir);
    memset(&o, 0, sizeof o);
    o.flags = EVLOOP_FSWATCH_RECURSIVE;
    nfs = 0;
    evloop_fswatch_init(loop, &w);
    CHECK_INT(evloop_fswatch_start(&w, "/nonexistent/dir", &o, on_fs), ==, -ENOENT);
    REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, on_fs), ==, 0);
    CHECK_INT(evloop_fswatch_start(&w, fsdir, &o, on_fs), ==, -EBUSY);
    sh("cd %s && echo 1 > a.txt && echo 2 >> a.txt && mv a.txt b.txt && rm b.txt", fsdir);
    sh("cd %s && echo x > old/in-old.txt", fsdir);
    run_for(loop, 100);
    /* a new subdirectory is followed, including files made in it at once */
    sh("cd %s && mkdir -p new/deeper && echo y > new/deeper/f.c", fsdir);
    run_for(loop, 100);
    sh("cd %s && echo z > new/deeper/g.c", fsdir);
    run_for(loop, 100);
    CHECK(fs_events_for("a.txt") & EVLOOP_FS_ADD);
    CHECK(fs_events_for("a.txt") & EVLOOP_FS_CHANGE);
    CHECK(fs_events_for("a.txt") & EVLOOP_FS_RENAME);
    CHECK(fs_events_for("b.txt") & EVLOOP_FS_RENAME);
    CHECK(fs_events_for("b.txt") & EVLOOP_FS_DELETE);
    CHECK(fs_events_for("old/in-old.txt") & EVLOOP_FS_ADD);
    CHECK(fs_events_for("new") & EVLOOP_FS_ADD);
    CHECK(fs_events_for("new/deeper/f.c") & EVLOOP_FS_ADD);
    CHECK(fs_events_for("new/deeper/g.c") & EVLOOP_FS_ADD);
    CHECK(fs_events_for("new/deeper/g.c") & EVLOOP_FS_CHANGE);
    evloop_fswatch_stop(&w);
    CHECK(!evloop_is_active(&w.handle));
    nfs = 0;
    sh("cd %s && echo again > c.txt", fsdir);
    run_for(loop, 30);
    CHECK_INT(nfs, ==, 0); /* stopped: nothing more */
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

TEST(fswatch_debounce_and_single_file)
{
    evloop *loop = new_loop();
    evloop_fswatch w, f;
    evloop_fswatch_options o;
    char file[192];
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw2-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s && echo 0 > %s/watched.c", fsdir);
    snprintf(file, sizeof file, "%s/watched.c", fsdir);
    memset(&o, 0, sizeof o);
    o.debounce_ms = 50;
    nfs = 0;
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, on_fs), ==, 0);
    /* a burst of 30 writes to one file and one other file */
    sh("cd %s && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do echo $i >> burst.txt; done; echo > other.txt", fsdir);
    run_for(loop, 20);
    CHECK_INT(nfs, ==, 0); /* still collecting */
    run_for(loop, 150);
    CHECK_INT(fs_count_for("burst.txt"), ==, 1); /* merged into one */
    CHECK(fs_events_for("burst.txt") == (EVLOOP_FS_ADD | EVLOOP_FS_CHANGE));
    CHECK_INT(fs_count_for("other.txt"), ==, 1);
    CHECK_STR(fsl[0].name, "burst.txt"); /* in order of first occurrence */
    evloop_close(&w.handle, NULL);
    /* one file, replaced the way editors save (write elsewhere, rename over) */
    nfs = 0;
    evloop_fswatch_init(loop, &f);
    REQUIRE_INT(evloop_fswatch_start(&f, file, NULL, on_fs), ==, 0);
    sh("cd %s && echo 1 > other.txt && echo new > tmp.swp && mv tmp.swp watched.c", fsdir);
    run_for(loop, 50);
    CHECK_INT(fs_count_for("other.txt"), ==, 0); /* only the file itself */
    CHECK_INT(fs_count_for("watched.c"), ==, 1);
    CHECK_UINT(fs_events_for("watched.c"), ==, EVLOOP_FS_CHANGE); /* saved, not renamed */
    nfs = 0;
    sh("cd %s && echo more >> watched.c", fsdir);
    run_for(loop, 50);
    CHECK_UINT(fs_events_for("watched.c"), ==, EVLOOP_FS_CHANGE); /* still watched */
    /* renamed away, then made again */
    nfs = 0;
    sh("cd %s && mv watched.c moved.c && echo back > watched.c", fsdir);
    run_for(loop, 50);
    REQUIRE_INT(nfs, >=, 2);
    CHECK_UINT(fsl[0].ev, ==, EVLOOP_FS_DELETE);
    CHECK_UINT(fsl[1].ev, ==, EVLOOP_FS_ADD);
    CHECK_INT(fs_count_for("moved.c"), ==, 0);
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* A callback that stops and restarts its own watcher: the delivery in
 * progress (a read batch, a new directory being scanned, a debounced
 * flush) must not touch the old state, and the rest of the old watch's
 * events is dropped; the new watch works. Under ASan this catches a use
 * after free. */
static evloop_fswatch_options restart_opts;
static int restart_count;
static void on_fs_restart(evloop_fswatch *w, const char *name, unsigned ev)
{
    on_fs(w, name, ev);
    if (restart_count++ == 0) {
        CHECK_INT(evloop_fswatch_stop(w), ==, 0);
        CHECK_INT(evloop_fswatch_start(w, fsdir, &restart_opts, on_fs_restart), ==, 0);
    }
}

TEST(fswatch_restart_from_callback)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    int debounced;
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw3-%d", (int)getpid());
    for (debounced = 0; debounced < 2; debounced++) {
        sh("rm -rf %s && mkdir -p %s", fsdir);
        memset(&restart_opts, 0, sizeof restart_opts);
        restart_opts.flags = EVLOOP_FSWATCH_RECURSIVE;
        restart_opts.debounce_ms = debounced ? 20 : 0;
        nfs = restart_count = 0;
        evloop_fswatch_init(loop, &w);
        REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &restart_opts, on_fs_restart), ==, 0);
        /* one read batch: a directory (scanned when it appears), then files */
        sh("mkdir %s/sub && touch %s/sub/in-sub %s/a %s/b", fsdir);
        run_for(loop, 100);
        CHECK_INT(nfs, ==, 1); /* the rest belonged to the stopped watch */
        CHECK_STR(fsl[0].name, "sub");
        sh("touch %s/after", fsdir);
        run_for(loop, 100);
        CHECK(fs_events_for("after") & EVLOOP_FS_ADD);
        evloop_close(&w.handle, NULL);
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    }
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* ---- memory: no allocation per event in steady state ----------------------------------------- */

/* Ping-pong between two streams, with a repeating timer, an immediate and
 * a next-tick per round; after a warm-up, evloop.h allocates nothing. */
static evloop_stream pp_a, pp_b;
static evloop_write_req pp_reqs[2][2];
static evloop_timer pp_timer;
static long pp_rounds, pp_allocs;
static int pp_ticks, pp_imms, pp_timer_runs;
static void pp_written(evloop_write_req *r, int status)
{
    (void)r;
    CHECK_INT(status, ==, 0);
}
static void pp_tick(evloop *l, void *a)
{
    (void)l;
    (void)a;
    pp_ticks++;
}
static void pp_imm(evloop *l, void *a)
{
    (void)a;
    pp_imms++;
    evloop_next_tick(l, pp_tick, NULL);
}
static void pp_on_timer(evloop_timer *t) { (void)t; pp_timer_runs++; }
static void pp_send(evloop_stream *s)
{
    evloop_buf b;
    int side = s == &pp_b;
    b.iov_base = (void *)"ping";
    b.iov_len = 4;
    /* two requests per side, used in turn: one's callback is always done */
    CHECK_INT(evloop_write(&pp_reqs[side][pp_rounds & 1], s, &b, 1, pp_written), ==, 0);
}
static void pp_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    REQUIRE(n == 4);
    if (s == &pp_a) {
        pp_rounds++;
        if (pp_rounds == 200) /* warmed up */
            alloc_count = 0;
        if (pp_rounds == 2200) {
            pp_allocs = alloc_count;
            evloop_close(&pp_a.handle, NULL);
            evloop_close(&pp_b.handle, NULL);
            evloop_close(&pp_timer.handle, NULL);
            return;
        }
    }
    evloop_set_immediate(s->handle.loop, pp_imm, NULL);
    pp_send(s);
}

/* Appends to file `writes` times, each time running the loop long enough
 * for the event to come (and its debounce to end); the events seen. */
static int events_after_writes(evloop *loop, const char *file, unsigned debounce_ms, int writes)
{
    int fd = open(file, O_WRONLY | O_APPEND), i;
    nfs = 0;
    for (i = 0; i < writes; i++) {
        CHECK_INT(write(fd, "x", 1), ==, 1);
        run_for(loop, debounce_ms ? 3 * debounce_ms : 10);
    }
    close(fd);
    return nfs;
}

TEST(no_allocation_in_steady_state)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    evloop_fswatch_options o;
    evloop_timer g;
    char file[192];
    int sv[2];
    unsigned debounce;
    /* streams, timers, immediates, next-tick */
    REQUIRE_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    evloop_pipe_init(loop, &pp_a);
    evloop_pipe_init(loop, &pp_b);
    evloop_stream_open(&pp_a, sv[0]);
    evloop_stream_open(&pp_b, sv[1]);
    evloop_timer_init(loop, &pp_timer);
    evloop_timer_start(&pp_timer, pp_on_timer, 1, 1);
    pp_rounds = pp_allocs = 0;
    pp_ticks = pp_imms = pp_timer_runs = 0;
    evloop_read_start(&pp_a, pp_read);
    evloop_read_start(&pp_b, pp_read);
    pp_send(&pp_a);
    start_guard(loop, &g, 20000);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(pp_rounds, ==, 2200);
    CHECK_INT(pp_allocs, ==, 0);
    CHECK_INT(pp_imms, >=, 4000);
    CHECK_INT(pp_ticks, ==, pp_imms);
    CHECK_INT(pp_timer_runs, >, 0);
    /* file events, delivered at once and debounced */
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw4-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s && touch %s/f", fsdir);
    snprintf(file, sizeof file, "%s/f", fsdir);
    for (debounce = 0; debounce <= 10; debounce += 10) {
        memset(&o, 0, sizeof o);
        o.debounce_ms = debounce;
        evloop_fswatch_init(loop, &w);
        REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, on_fs), ==, 0);
        CHECK_INT(events_after_writes(loop, file, debounce, 3), ==, 3); /* warm-up */
        alloc_count = 0;
        CHECK_INT(events_after_writes(loop, file, debounce, 10), ==, 10);
        CHECK_INT(alloc_count, ==, 0);
        CHECK_STR(fsl[0].name, "f");
        CHECK_UINT(fsl[0].ev, ==, EVLOOP_FS_CHANGE);
        evloop_close(&w.handle, NULL);
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    }
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* The watched directory: a symbolic link to it is followed; deleted or
 * moved away, it reports EVLOOP_FS_DELETE with an empty name, then
 * nothing (the moved directory is no longer watched). */
TEST(fswatch_root_symlink_deleted_moved)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    char path[192];
    int moved;
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw5-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s/real && ln -s real %s/link", fsdir);
    snprintf(path, sizeof path, "%s/link", fsdir);
    nfs = 0;
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, path, NULL, on_fs), ==, 0);
    sh("touch %s/real/x", fsdir);
    run_for(loop, 50);
    CHECK(fs_events_for("x") & EVLOOP_FS_ADD);
    evloop_close(&w.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_NOWAIT); /* its close callback: w is free again */
    snprintf(path, sizeof path, "%s/real", fsdir);
    for (moved = 0; moved < 2; moved++) {
        sh("rm -rf %s/moved %s/real && mkdir -p %s/real", fsdir);
        nfs = 0;
        evloop_fswatch_init(loop, &w);
        REQUIRE_INT(evloop_fswatch_start(&w, path, NULL, on_fs), ==, 0);
        if (moved)
            sh("mv %s/real %s/moved", fsdir);
        else
            sh("rm -rf %s/real", fsdir);
        run_for(loop, 50);
        REQUIRE_INT(nfs, ==, 1);
        CHECK_STR(fsl[0].name, "");
        CHECK_UINT(fsl[0].ev, ==, EVLOOP_FS_DELETE);
        CHECK(evloop_is_active(&w.handle));
        sh("mkdir -p %s/real %s/moved && touch %s/real/y %s/moved/y", fsdir);
        run_for(loop, 50);
        CHECK_INT(nfs, ==, 1); /* nothing more */
        evloop_close(&w.handle, NULL);
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    }
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* More events than the kernel queues before the loop reads: one
 * EVLOOP_FS_OVERFLOW with an empty name. */
static int overflow_seen, overflow_events;
static void on_fs_overflow(evloop_fswatch *w, const char *name, unsigned ev)
{
    (void)w;
    overflow_events++;
    if (ev & EVLOOP_FS_OVERFLOW) {
        CHECK_STR(name, "");
        CHECK_UINT(ev, ==, EVLOOP_FS_OVERFLOW);
        overflow_seen++;
    }
}

TEST(fswatch_overflow)
{
    evloop *loop;
    evloop_fswatch w;
    char path[192];
    long max = 16384, i;
    int fd[2];
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 16384;
        fclose(f);
    }
    if (max > (1L << 20))
        SKIP("fs.inotify.max_queued_events is too large to overflow quickly");
    loop = new_loop();
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw8-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s && touch %s/a %s/b", fsdir);
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, fsdir, NULL, on_fs_overflow), ==, 0);
    snprintf(path, sizeof path, "%s/a", fsdir);
    fd[0] = open(path, O_WRONLY);
    snprintf(path, sizeof path, "%s/b", fsdir);
    fd[1] = open(path, O_WRONLY);
    REQUIRE(fd[0] >= 0 && fd[1] >= 0);
    overflow_seen = overflow_events = 0;
    for (i = 0; i < max + 100; i++) /* alternating, so the kernel merges none */
        CHECK_INT(write(fd[i & 1], "x", 1), ==, 1);
    run_for(loop, 100);
    CHECK_INT(overflow_seen, ==, 1);
    CHECK_INT(overflow_events, >=, max / 2);
    close(fd[0]);
    close(fd[1]);
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* Recursive: a directory moved out of the tree is no longer watched; one
 * moved in is, and what it holds is reported as added. */
TEST(fswatch_directory_moved_out_and_in)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    evloop_fswatch_options o;
    char root[192];
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw9-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s/root/sub %s/outside/in-dir && touch %s/outside/in-dir/f", fsdir);
    snprintf(root, sizeof root, "%s/root", fsdir);
    memset(&o, 0, sizeof o);
    o.flags = EVLOOP_FSWATCH_RECURSIVE;
    nfs = 0;
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, root, &o, on_fs), ==, 0);
    sh("touch %s/root/sub/before", fsdir);
    run_for(loop, 50);
    CHECK(fs_events_for("sub/before") & EVLOOP_FS_ADD);
    sh("mv %s/root/sub %s/outside/sub", fsdir);
    run_for(loop, 50);
    CHECK_UINT(fs_events_for("sub"), ==, EVLOOP_FS_RENAME);
    sh("touch %s/outside/sub/after", fsdir);
    sh("mv %s/outside/in-dir %s/root/in", fsdir);
    run_for(loop, 50);
    CHECK_INT(fs_count_for("sub/after"), ==, 0);
    CHECK_UINT(fs_events_for("in"), ==, EVLOOP_FS_RENAME);
    CHECK(fs_events_for("in/f") & EVLOOP_FS_ADD);
    sh("touch %s/root/in/g", fsdir);
    run_for(loop, 50);
    CHECK(fs_events_for("in/g") & EVLOOP_FS_ADD);
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* Events that never pause are still delivered: at most ten debounce
 * periods after the first one (here 300 ms, while writes go on for
 * 1.5 s; without the cap the first delivery would wait for their end). */
static int cap_fd, cap_writes;
static double cap_first_write, cap_first_delivery;
static void cap_write(evloop_timer *t)
{
    CHECK_INT(write(cap_fd, "x", 1), ==, 1);
    if (!cap_first_write)
        cap_first_write = test_now_ms();
    if (++cap_writes == 150)
        evloop_timer_stop(t);
}
static void cap_on_fs(evloop_fswatch *w, const char *name, unsigned ev)
{
    (void)w;
    (void)name;
    (void)ev;
    if (!cap_first_delivery)
        cap_first_delivery = test_now_ms();
}

TEST(fswatch_debounce_cap)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    evloop_fswatch_options o;
    evloop_timer writer;
    char file[192];
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw10-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s && touch %s/f", fsdir);
    snprintf(file, sizeof file, "%s/f", fsdir);
    cap_fd = open(file, O_WRONLY);
    REQUIRE(cap_fd >= 0);
    memset(&o, 0, sizeof o);
    o.debounce_ms = 30;
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, cap_on_fs), ==, 0);
    cap_writes = 0;
    cap_first_write = cap_first_delivery = 0;
    evloop_timer_init(loop, &writer);
    evloop_timer_start(&writer, cap_write, 10, 10);
    while (evloop_is_active(&writer.handle))
        evloop_run(loop, EVLOOP_RUN_ONCE);
    run_for(loop, 100);
    CHECK(cap_first_delivery > 0);
    CHECK(cap_first_delivery - cap_first_write < 1000);
    close(cap_fd);
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* With no memory to arm the debounce timer (the heap is full and cannot
 * grow), an event is delivered at once instead of never. */
TEST(fswatch_debounce_without_timer_memory)
{
    evloop *loop = new_loop();
    evloop_fswatch w;
    evloop_fswatch_options o;
    evloop_timer *fill;
    char file[192];
    size_t i, nfill;
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw6-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s && touch %s/f", fsdir);
    snprintf(file, sizeof file, "%s/f", fsdir);
    memset(&o, 0, sizeof o);
    o.debounce_ms = 20;
    evloop_fswatch_init(loop, &w);
    REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, on_fs), ==, 0);
    CHECK_INT(events_after_writes(loop, file, 20, 1), ==, 1); /* buffers made */
    /* white-box: fill the timer heap to its capacity */
    nfill = loop->heap_cap - loop->heap_len;
    fill = (evloop_timer *)calloc(nfill, sizeof *fill);
    for (i = 0; i < nfill; i++) {
        evloop_timer_init(loop, &fill[i]);
        evloop_timer_start(&fill[i], count_timer, 60000, 0);
    }
    REQUIRE_UINT(loop->heap_len, ==, loop->heap_cap);
    nfs = 0;
    sh("echo x >> %s/f", fsdir);
    alloc_fail = 1;
    for (i = 0; i < 5 && !nfs; i++)
        evloop_run(loop, EVLOOP_RUN_NOWAIT);
    alloc_fail = 0;
    CHECK_INT(nfs, ==, 1);
    for (i = 0; i < nfill; i++)
        evloop_close(&fill[i].handle, NULL);
    free_loop(loop);
    free(fill);
    sh("rm -rf %s", fsdir);
}

/* Handles closed from their own callbacks: an fd watcher, a signal handle
 * (another one keeps SIGUSR1 caught), a file watcher while delivering a
 * read batch and while delivering a debounced burst. */
static int own_calls;
static void own_io(evloop_io *io, unsigned ev)
{
    (void)ev;
    own_calls++;
    evloop_close(&io->handle, on_closed);
}
static void own_sig(evloop_signal *sig, int signum)
{
    (void)signum;
    own_calls++;
    evloop_close(&sig->handle, on_closed);
}
static void own_fs(evloop_fswatch *w, const char *name, unsigned ev)
{
    on_fs(w, name, ev);
    evloop_close(&w->handle, on_closed);
}

TEST(handles_closed_from_their_own_callbacks)
{
    evloop *loop = new_loop();
    evloop_io io;
    evloop_signal self, keep;
    evloop_fswatch w;
    evloop_fswatch_options o;
    int p[2], debounced;
    REQUIRE_INT(pipe(p), ==, 0);
    CHECK_INT(write(p[1], "ab", 2), ==, 2);
    own_calls = closed_count = 0;
    evloop_io_init(loop, &io, p[0]);
    evloop_io_start(&io, EVLOOP_READABLE, own_io);
    evloop_run(loop, EVLOOP_RUN_DEFAULT); /* still readable, but closed */
    CHECK_INT(own_calls, ==, 1);
    CHECK_INT(closed_count, ==, 1);
    close(p[0]);
    close(p[1]);
    own_calls = closed_count = sig_b = 0;
    evloop_signal_init(loop, &self);
    evloop_signal_init(loop, &keep);
    evloop_signal_start(&self, own_sig, SIGUSR1);
    evloop_signal_start(&keep, on_sig_b, SIGUSR1);
    kill(getpid(), SIGUSR1);
    run_for(loop, 20);
    kill(getpid(), SIGUSR1);
    run_for(loop, 20);
    CHECK_INT(own_calls, ==, 1);
    CHECK_INT(closed_count, ==, 1);
    CHECK_INT(sig_b, ==, 2);
    evloop_close(&keep.handle, NULL);
    snprintf(fsdir, sizeof fsdir, "/tmp/evloop-fsw7-%d", (int)getpid());
    for (debounced = 0; debounced < 2; debounced++) {
        sh("rm -rf %s && mkdir -p %s", fsdir);
        memset(&o, 0, sizeof o);
        o.debounce_ms = debounced ? 20 : 0;
        nfs = closed_count = 0;
        evloop_fswatch_init(loop, &w);
        REQUIRE_INT(evloop_fswatch_start(&w, fsdir, &o, own_fs), ==, 0);
        sh("touch %s/a %s/b %s/c", fsdir);
        run_for(loop, 100);
        CHECK_INT(nfs, ==, 1); /* closed by the first delivery */
        CHECK_INT(closed_count, ==, 1);
    }
    sh("rm -rf %s", fsdir);
    free_loop(loop);
}

/* ---- errors ---------------------------------------------------------------------------------- */

TEST(error_names)
{
    CHECK_STR(evloop_err_name(-ECONNRESET), "ECONNRESET");
    CHECK_STR(evloop_strerror(-ECONNREFUSED), "connection refused");
    CHECK_STR(evloop_err_name(EVLOOP_EOF), "EOF");
    CHECK_STR(evloop_strerror(EVLOOP_EOF), "end of stream");
    CHECK_STR(evloop_err_name(0), "OK");
    CHECK_STR(evloop_err_name(-99999), "UNKNOWN");
    CHECK_STR(evloop_strerror(-99999), "unknown error");
}

int main(void)
{
    RUN(loop_new_run_free);
    RUN(loop_data_and_time);
    RUN(timer_oneshot_and_repeat);
    RUN(timer_again_unstarted);
    RUN(timers_10k_fire_in_order);
    RUN(timers_million);
    RUN(timers_modified_from_callbacks);
    RUN(timer_zero_restart_does_not_starve);
    RUN(repeating_timer_stopped_or_again_from_callback);
    RUN(next_tick_and_immediates_order);
    RUN(hooks_idle_prevents_blocking);
    RUN(hooks_stopped_and_started_in_their_phase);
    RUN(run_modes_and_stop);
    RUN(run_reentry_refused);
    RUN(ref_unref_and_walk);
    RUN(io_watcher_pipe);
    RUN(io_watcher_regular_file);
    RUN(io_stale_event_after_fd_reuse);
    RUN(addr_parsing);
    RUN(tcp_echo_ipv4);
    RUN(tcp_echo_ipv6);
    RUN(tcp_connect_refused);
    RUN(tcp_bind_errors);
    RUN(backend_fd_and_timeout);
    RUN(tcp_names_and_options);
    RUN(option_max_events_one);
    RUN(option_keep_sigpipe);
    RUN(option_bind_ipv6only);
    RUN(accept_several_per_wakeup_and_reuseport);
    RUN(bad_input_is_refused);
    RUN(unix_socket_echo);
    RUN(socketpair_64mib_backpressure);
    RUN(writes_shutdown_half_close);
    RUN(tcp_half_close);
    RUN(shutdown_while_connecting_tcp);
    RUN(shutdown_while_connecting_unix);
    RUN(close_cancels_queued_writes);
    RUN(write_many_buffers);
    RUN(close_stream_from_its_callbacks);
    RUN(read_resumes_without_new_events);
    RUN(sendfile_in_order_with_writes);
    RUN(sendfile_fallback_copy);
    RUN(stream_detach_hands_over_fd);
    RUN(failed_registration_never_calls_back);
    RUN(write_fails_after_partial_write);
    RUN(tcp_peer_reset);
    RUN(tcp_peer_reset_fails_queued_write);
    RUN(write_to_closed_peer);
    RUN(emfile_on_accept_does_not_spin);
    RUN(emfile_without_timer_memory_keeps_accepting);
    RUN(option_accept_retry_ms);
    RUN(signals);
    RUN(signal_flood_loses_no_other_signal);
    RUN(signals_int_term_hup);
    RUN(signal_two_loops_and_restart_with_another_number);
    RUN(async_four_threads_never_lose_a_wakeup);
    RUN(async_send_from_loop_thread_and_unref);
    RUN(process_exit_codes_and_signals);
    RUN(process_spawn_failure_leaves_nothing);
    RUN(process_stdio_pipes_env_cwd);
    RUN(process_stdio_fd);
    RUN(process_close_before_exit_reaps_later);
    RUN(process_detached);
    RUN(process_bad_options);
    RUN(process_spawn_pipe_without_memory);
    RUN(process_respawn_from_close_callback);
    RUN(process_spawn_into_live_handle_asserts);
    RUN(signal_sigchld_watched_while_spawning);
    RUN(fswatch_directory_recursive);
    RUN(fswatch_debounce_and_single_file);
    RUN(fswatch_restart_from_callback);
    RUN(fswatch_root_symlink_deleted_moved);
    RUN(fswatch_debounce_without_timer_memory);
    RUN(fswatch_overflow);
    RUN(fswatch_directory_moved_out_and_in);
    RUN(fswatch_debounce_cap);
    RUN(no_allocation_in_steady_state);
    RUN(handles_closed_from_their_own_callbacks);
    RUN(error_names);
    return test_done();
}
