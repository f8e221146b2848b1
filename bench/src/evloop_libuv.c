/* The libuv side of bench/evloop: the same three programs as
 * evloop_ours.c, written the way libuv is meant to be used. */
#include <uv.h>
#include "bench_common.h"

/* ---- timers ---- */
static long timers_fired;
static void timer_cb(uv_timer_t *t) { (void)t; timers_fired++; }

static int bench_timers(long n)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t *ts = (uv_timer_t *)malloc((size_t)n * sizeof *ts);
    uint64_t t0, t1, t2, t3, c0, c1, timeout = 0;
    long i;
    c0 = cpu_ns();
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        if (i % 1000 == 0)
            timeout++;
        uv_timer_init(loop, &ts[i]);
        uv_timer_start(&ts[i], timer_cb, timeout, 0);
    }
    t1 = now_ns();
    uv_run(loop, UV_RUN_DEFAULT);
    t2 = now_ns();
    for (i = 0; i < n; i++)
        uv_close((uv_handle_t *)&ts[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    t3 = now_ns();
    c1 = cpu_ns();
    if (timers_fired != n)
        return fprintf(stderr, "fired %ld of %ld\n", timers_fired, n), 1;
    /* the run phase mostly waits for deadlines: CPU time is the cost */
    printf("start_s=%.4f run_s=%.4f close_s=%.4f cpu_s=%.4f\n", (t1 - t0) / 1e9,
           (t2 - t1) / 1e9, (t3 - t2) / 1e9, (c1 - c0) / 1e9);
    uv_loop_close(loop);
    free(ts);
    return 0;
}

/* ---- ping-pong ---- */
static uv_tcp_t server, server_conn, client;
static uv_write_t sreq, creq;
static long round_trips;
static int pp_done;
static char ping[4] = {'P', 'I', 'N', 'G'};
static size_t client_got, server_got;
static char slab[65536];

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    (void)size;
    buf->base = slab;
    buf->len = sizeof slab;
}

static void noop_write(uv_write_t *r, int status) { (void)r; (void)status; }

static void server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    uv_buf_t b;
    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)s, NULL);
        if (!uv_is_closing((uv_handle_t *)&server))
            uv_close((uv_handle_t *)&server, NULL);
        return;
    }
    server_got += (size_t)n;
    while (server_got >= 4) {
        server_got -= 4;
        b = uv_buf_init(ping, 4);
        uv_write(&sreq, s, &b, 1, noop_write);
    }
}

static void client_send(void)
{
    uv_buf_t b = uv_buf_init(ping, 4);
    uv_write(&creq, (uv_stream_t *)&client, &b, 1, noop_write);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        return;
    client_got += (size_t)n;
    while (client_got >= 4) {
        client_got -= 4;
        round_trips++;
        if (pp_done) {
            uv_close((uv_handle_t *)s, NULL);
            if (!uv_is_closing((uv_handle_t *)&server))
                uv_close((uv_handle_t *)&server, NULL);
            return;
        }
        client_send();
    }
}

static void on_conn(uv_stream_t *srv, int status)
{
    (void)status;
    uv_tcp_init(srv->loop, &server_conn);
    uv_accept(srv, (uv_stream_t *)&server_conn);
    uv_tcp_nodelay(&server_conn, 1);
    uv_read_start((uv_stream_t *)&server_conn, alloc_cb, server_read);
}

static uv_connect_t connect_req;
static void on_connect(uv_connect_t *req, int status)
{
    if (status < 0)
        exit(1);
    uv_tcp_nodelay(&client, 1);
    uv_read_start(req->handle, alloc_cb, client_read);
    client_send();
}

static void on_deadline(uv_timer_t *t) { (void)t; pp_done = 1; }

static int bench_pingpong(double secs, int procs)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t deadline;
    struct sockaddr_in a;
    int len = sizeof a;
    uint64_t t0, t1;
    pid_t child = -1;
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&server, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&server, 128, on_conn);
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    if (procs == 2) {
        child = fork();
        if (child == 0) {
            uv_loop_fork(loop);
            uv_run(loop, UV_RUN_DEFAULT);
            _exit(0);
        }
        uv_close((uv_handle_t *)&server, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    uv_tcp_init(loop, &client);
    uv_tcp_connect(&connect_req, &client, (struct sockaddr *)&a, on_connect);
    uv_timer_init(loop, &deadline);
    uv_timer_start(&deadline, on_deadline, (uint64_t)(secs * 1000), 0);
    t0 = now_ns();
    uv_run(loop, UV_RUN_DEFAULT);
    t1 = now_ns();
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("round_trips=%ld per_s=%.0f\n", round_trips, round_trips / ((t1 - t0) / 1e9));
    if (child > 0)
        waitpid(child, NULL, 0);
    return uv_loop_close(loop) != 0;
}

/* ---- idle connections ---- */
static long accepted, target;
static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        uv_close((uv_handle_t *)s, NULL);
}
static void idle_conn(uv_stream_t *srv, int status)
{
    uv_tcp_t *c;
    if (status < 0)
        return;
    c = (uv_tcp_t *)malloc(sizeof *c);
    uv_tcp_init(srv->loop, c);
    uv_accept(srv, (uv_stream_t *)c);
    uv_read_start((uv_stream_t *)c, alloc_cb, idle_read);
    if (++accepted == target)
        uv_stop(srv->loop);
}

static int bench_idle(long n)
{
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a;
    int len = sizeof a;
    long rss0, rss1;
    pid_t child;
    target = n;
    raise_nofile((rlim_t)n + 100);
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&server, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&server, 4096, idle_conn);
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    rss0 = rss_kb();
    child = spawn_clients(ntohs(a.sin_port), n);
    uv_run(loop, UV_RUN_DEFAULT);
    rss1 = rss_kb();
    printf("connections=%ld rss_growth_kb=%ld bytes_per_conn=%.0f handle_bytes=%zu\n", accepted,
           rss1 - rss0, (rss1 - rss0) * 1024.0 / (double)accepted, sizeof(uv_tcp_t));
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
