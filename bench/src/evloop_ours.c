/* The evloop.h side of bench/evloop. The same three programs as
 * evloop_libuv.c, written the way each library is meant to be used:
 *   timers N        start N timers (1000 per distinct timeout), run them all
 *   pingpong SECS   one client and one server on one loop over loopback,
 *                   4-byte messages back and forth, round trips counted
 *   pingpong2 SECS  the same with the server in a child process
 *   idle N          accept N connections from a child process and report
 *                   the server's RSS growth per connection
 * Each prints one line of key=value results.
 */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
#include "bench_common.h"

/* ---- timers ---- */
static long timers_fired;
static void timer_cb(evloop_timer *t) { (void)t; timers_fired++; }

static int bench_timers(long n)
{
    evloop *loop;
    evloop_timer *ts = (evloop_timer *)malloc((size_t)n * sizeof *ts);
    uint64_t t0, t1, t2, t3, c0, c1, timeout = 0;
    long i;
    evloop_new(&loop, NULL);
    c0 = cpu_ns();
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        if (i % 1000 == 0)
            timeout++;
        evloop_timer_init(loop, &ts[i]);
        evloop_timer_start(&ts[i], timer_cb, timeout, 0);
    }
    t1 = now_ns();
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    t2 = now_ns();
    for (i = 0; i < n; i++)
        evloop_close(&ts[i].handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    t3 = now_ns();
    c1 = cpu_ns();
    if (timers_fired != n)
        return fprintf(stderr, "fired %ld of %ld\n", timers_fired, n), 1;
    /* the run phase mostly waits for deadlines: CPU time is the cost */
    printf("start_s=%.4f run_s=%.4f close_s=%.4f cpu_s=%.4f\n", (t1 - t0) / 1e9,
           (t2 - t1) / 1e9, (t3 - t2) / 1e9, (c1 - c0) / 1e9);
    evloop_free(loop);
    free(ts);
    return 0;
}

/* ---- ping-pong ---- */
static evloop_stream server, server_conn, client;
static evloop_write_req sreq, creq;
static long round_trips;
static int pp_done;
static char ping[4] = {'P', 'I', 'N', 'G'};
static size_t client_got, server_got;

static void noop_write(evloop_write_req *r, int status) { (void)r; (void)status; }

static void server_read(evloop_stream *s, ssize_t n, const char *buf)
{
    evloop_buf b;
    (void)buf;
    if (n < 0) {
        evloop_close(&s->handle, NULL);
        if (!evloop_is_closing(&server.handle))
            evloop_close(&server.handle, NULL);
        return;
    }
    server_got += (size_t)n;
    while (server_got >= 4) { /* echo each complete message */
        server_got -= 4;
        b.iov_base = ping;
        b.iov_len = 4;
        evloop_write(&sreq, s, &b, 1, noop_write);
    }
}

static void client_send(void)
{
    evloop_buf b;
    b.iov_base = ping;
    b.iov_len = 4;
    evloop_write(&creq, &client, &b, 1, noop_write);
}

static void client_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n < 0)
        return;
    client_got += (size_t)n;
    while (client_got >= 4) {
        client_got -= 4;
        round_trips++;
        if (pp_done) {
            evloop_close(&s->handle, NULL);
            if (server.handle.loop == s->handle.loop && !evloop_is_closing(&server.handle))
                evloop_close(&server.handle, NULL);
            return;
        }
        client_send();
    }
}

static void on_conn(evloop_stream *srv, int status)
{
    (void)status;
    evloop_tcp_init(srv->handle.loop, &server_conn);
    evloop_accept(srv, &server_conn);
    evloop_tcp_nodelay(&server_conn, 1);
    evloop_read_start(&server_conn, server_read);
}

static void on_connect(evloop_stream *s, int status)
{
    if (status < 0)
        exit(1);
    evloop_tcp_nodelay(s, 1);
    evloop_read_start(s, client_read);
    client_send();
}

static void on_deadline(evloop_timer *t) { (void)t; pp_done = 1; }

/* procs == 2: the echo server runs in a child process with its own loop
 * (libuv's layout); procs == 1: client and server share one loop. */
static int bench_pingpong(double secs, int procs)
{
    evloop *loop;
    evloop_timer deadline;
    struct sockaddr_storage a;
    uint64_t t0, t1;
    pid_t child = -1;
    if (procs == 2) { /* a loop is not shared across fork: each makes its own */
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        socklen_t len = sizeof a;
        evloop_addr("127.0.0.1", 0, &a);
        bind(lfd, (struct sockaddr *)&a, sizeof(struct sockaddr_in));
        listen(lfd, 128);
        getsockname(lfd, (struct sockaddr *)&a, &len);
        child = fork();
        if (child == 0) { /* the server: runs until the client hangs up */
            evloop_new(&loop, NULL);
            evloop_tcp_init(loop, &server);
            evloop_stream_open(&server, lfd);
            evloop_listen(&server, 128, on_conn);
            evloop_run(loop, EVLOOP_RUN_DEFAULT);
            _exit(0);
        }
        close(lfd);
        evloop_new(&loop, NULL);
    } else {
        evloop_new(&loop, NULL);
        evloop_tcp_init(loop, &server);
        evloop_addr("127.0.0.1", 0, &a);
        evloop_tcp_bind(&server, (struct sockaddr *)&a, 0);
        evloop_listen(&server, 128, on_conn);
        evloop_sockname(&server, &a);
    }
    evloop_tcp_init(loop, &client);
    evloop_tcp_connect(&client, (struct sockaddr *)&a, on_connect);
    evloop_timer_init(loop, &deadline);
    evloop_timer_start(&deadline, on_deadline, (uint64_t)(secs * 1000), 0);
    t0 = now_ns();
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    t1 = now_ns();
    evloop_close(&deadline.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    printf("round_trips=%ld per_s=%.0f\n", round_trips, round_trips / ((t1 - t0) / 1e9));
    if (child > 0)
        waitpid(child, NULL, 0);
    return evloop_free(loop) != 0;
}

/* ---- idle connections ---- */
static long accepted, target;
static void idle_read(evloop_stream *s, ssize_t n, const char *buf)
{
    (void)buf;
    if (n < 0)
        evloop_close(&s->handle, NULL);
}
static void idle_conn(evloop_stream *srv, int status)
{
    evloop_stream *c;
    if (status < 0)
        return;
    c = (evloop_stream *)malloc(sizeof *c);
    evloop_tcp_init(srv->handle.loop, c);
    evloop_accept(srv, c);
    evloop_read_start(c, idle_read);
    if (++accepted == target)
        evloop_stop(srv->handle.loop);
}

static int bench_idle(long n)
{
    evloop *loop;
    struct sockaddr_storage a;
    long rss0, rss1;
    pid_t child;
    target = n;
    raise_nofile((rlim_t)n + 100);
    evloop_new(&loop, NULL);
    evloop_tcp_init(loop, &server);
    evloop_addr("127.0.0.1", 0, &a);
    evloop_tcp_bind(&server, (struct sockaddr *)&a, 0);
    evloop_listen(&server, 4096, idle_conn);
    evloop_sockname(&server, &a);
    rss0 = rss_kb();
    child = spawn_clients(evloop_addr_port((struct sockaddr *)&a), n);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    rss1 = rss_kb();
    printf("connections=%ld rss_growth_kb=%ld bytes_per_conn=%.0f handle_bytes=%zu\n", accepted,
           rss1 - rss0, (rss1 - rss0) * 1024.0 / (double)accepted, sizeof(evloop_stream));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "timers") == 0)
        return bench_timers(atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "pingpong") == 0)
        return bench_pingpong(atof(argv[2]), 1);
    if (argc == 3 && strcmp(argv[1], "pingpong2") == 0)
        return bench_pingpong(atof(argv[2]), 2);
    if (argc == 3 && strcmp(argv[1], "idle") == 0)
        return bench_idle(atol(argv[2]));
    fprintf(stderr, "usage: %s timers N | pingpong SECONDS | pingpong2 SECONDS | idle N\n", argv[0]);
    return 2;
}
