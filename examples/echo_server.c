/* echo_server - a TCP echo server on evloop.h.
 *
 *   cc -O2 examples/echo_server.c -o echo_server -pthread
 *   ./echo_server [--port N] [--host ADDR]      (default 0.0.0.0:7000)
 *
 * Every byte a client sends comes back. Many clients at once; a client that
 * sends faster than it reads is paused (its reads stop) until what is queued
 * for it has drained, so memory stays bounded. Ctrl-C (SIGINT) or SIGTERM
 * closes the listener and every connection, and the program exits cleanly.
 */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH_WATER (1u << 20) /* per connection: pause reading above 1 MiB queued */

static evloop_stream server;
static evloop_signal sigint, sigterm;
static unsigned long connections, open_connections;

static void on_conn_closed(evloop_handle *h)
{
    free(h->data);
    open_connections--;
}

static void on_drain(evloop_stream *c);

static void on_read(evloop_stream *c, ssize_t n, const char *buf)
{
    int rc;
    if (n < 0) { /* EOF or error: done with this client */
        if (n != EVLOOP_EOF)
            fprintf(stderr, "client: %s\n", evloop_strerror((int)n));
        evloop_close(&c->handle, on_conn_closed);
        return;
    }
    rc = evloop_write_copy(c, buf, (size_t)n, NULL, NULL);
    if (rc < 0) {
        evloop_close(&c->handle, on_conn_closed);
        return;
    }
    if (!evloop_stream_writable(c)) /* the client is not reading: wait */
        evloop_read_stop(c);
}

static void on_drain(evloop_stream *c) { evloop_read_start(c, on_read); }

static void on_connection(evloop_stream *srv, int status)
{
    evloop_stream *c;
    if (status < 0) {
        fprintf(stderr, "accept: %s\n", evloop_strerror(status));
        return;
    }
    c = (evloop_stream *)malloc(sizeof *c);
    if (!c)
        return; /* not accepted: the loop closes it */
    c->handle.data = c;
    evloop_tcp_init(srv->handle.loop, c);
    if (evloop_accept(srv, c) < 0) {
        evloop_close(&c->handle, on_conn_closed);
        open_connections++;
        return;
    }
    connections++;
    open_connections++;
    evloop_tcp_nodelay(c, 1);
    evloop_stream_set_hwm(c, HIGH_WATER, on_drain);
    evloop_read_start(c, on_read);
}

static void close_all(evloop_handle *h, void *arg)
{
    (void)arg;
    if (!evloop_is_closing(h))
        evloop_close(h, h->type == EVLOOP_TCP && h != &server.handle ? on_conn_closed : NULL);
}

static void on_signal(evloop_signal *s, int signum)
{
    fprintf(stderr, "\n%s: closing %lu connection(s)\n", signum == SIGINT ? "SIGINT" : "SIGTERM",
            open_connections);
    evloop_walk(s->handle.loop, close_all, NULL);
}

int main(int argc, char **argv)
{
    const char *host = "0.0.0.0";
    int port = 7000, i, rc;
    struct sockaddr_storage addr;
    evloop *loop;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--port N] [--host ADDR]\n", argv[0]);
            return 2;
        }
    }
    if ((rc = evloop_new(&loop, NULL)) < 0 || (rc = evloop_addr(host, port, &addr)) < 0) {
        fprintf(stderr, "%s\n", evloop_strerror(rc));
        return 1;
    }
    evloop_tcp_init(loop, &server);
    if ((rc = evloop_tcp_bind(&server, (struct sockaddr *)&addr, 0)) < 0 ||
        (rc = evloop_listen(&server, 1024, on_connection)) < 0) {
        fprintf(stderr, "listen on %s:%d: %s\n", host, port, evloop_strerror(rc));
        return 1;
    }
    evloop_sockname(&server, &addr);
    printf("echo server listening on %s:%d (%s)\n", host, evloop_addr_port((struct sockaddr *)&addr),
           evloop_backend_name(loop));
    fflush(stdout);

    evloop_signal_init(loop, &sigint);
    evloop_signal_init(loop, &sigterm);
    evloop_signal_start(&sigint, on_signal, SIGINT);
    evloop_signal_start(&sigterm, on_signal, SIGTERM);

    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    printf("served %lu connection(s)\n", connections);
    return evloop_free(loop) == 0 ? 0 : 1;
}
