/* hello - the TechEmpower "plaintext" and "json" endpoints on http.h.
 *
 *   cc -O2 examples/hello.c -o hello -pthread
 *   ./hello [--port N] [--host ADDR] [--threads N] [--keepalive SECONDS]
 *           (defaults: 0.0.0.0:8080, 1 thread, idle connections closed after 5 s;
 *           ADDR is numeric: 0.0.0.0, 127.0.0.1, ::, ::1)
 *
 *   GET /plaintext  ->  Hello, World!                       (text/plain)
 *   GET /json       ->  {"message":"Hello, World!"}         (application/json)
 *   anything else   ->  404
 *
 * With --threads N, N loops on N threads share the port through
 * SO_REUSEPORT (like Node's cluster): the kernel spreads the connections
 * and each one lives on one loop. SIGINT or SIGTERM stops every loop
 * gracefully: requests in flight are answered first.
 */
#define EVLOOP_IMPLEMENTATION
#define HTTP_IMPLEMENTATION
#include "../evloop.h"
#include "../http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct worker {
    evloop *loop;
    http_server *server;
    pthread_t thread;
    unsigned long requests;
} worker;

static bool path_is(const http_req *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.ptr, p, req->path.len) == 0;
}

static void on_request(http_req *req)
{
    worker *w = (worker *)http_server_get_data(req->server);
    w->requests++;
    if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD) {
        http_res_header(req, "Allow", "GET, HEAD");
        http_res_send(req, 405, "text/plain", "method not allowed\n", 19);
    } else if (path_is(req, "/plaintext")) {
        http_res_send(req, 200, "text/plain", "Hello, World!", 13);
    } else if (path_is(req, "/json")) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"message\":\"%s\"}", "Hello, World!");
        http_res_send(req, 200, "application/json", body, (size_t)n);
    } else {
        http_res_send(req, 404, "text/plain", "not found\n", 10);
    }
}

static void *run_worker(void *arg)
{
    worker *w = (worker *)arg;
    evloop_run(w->loop, EVLOOP_RUN_DEFAULT); /* until the server has shut down */
    return NULL;
}

int main(int argc, char **argv)
{
    const char *host = "0.0.0.0";
    int port = 8080, threads = 1, keepalive = 5, i, rc;
    worker workers[MAX_THREADS];
    http_server_options o;
    unsigned long total = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--keepalive") == 0 && i + 1 < argc)
            keepalive = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--port N] [--host ADDR] [--threads N] [--keepalive SECONDS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "--threads: 1 to %d\n", MAX_THREADS);
        return 2;
    }

    memset(&o, 0, sizeof o);
    o.server_name = "hello";
    o.reuseport = threads > 1;
    o.handle_signals = 1; /* SIGINT/SIGTERM: graceful shutdown of each loop */
    o.keepalive_timeout_ms = keepalive > 0 ? (unsigned)keepalive * 1000u : 5000u;
    o.max_connections = 100000;
    memset(workers, 0, sizeof workers);
    for (i = 0; i < threads; i++) {
        worker *w = &workers[i];
        if ((rc = evloop_new(&w->loop, NULL)) < 0 ||
            (rc = http_server_new(&w->server, w->loop, &o, on_request)) < 0 ||
            (rc = http_server_listen(w->server, host, port)) < 0) {
            fprintf(stderr, "listen on %s:%d: %s%s\n", host, port, evloop_strerror(rc),
                    rc == -EINVAL ? " (--host takes a numeric address)" : "");
            return 1;
        }
        http_server_set_data(w->server, w);
    }
    printf("hello: http://%s:%d/plaintext and /json, %d thread%s (Ctrl-C stops)\n",
           strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, http_server_port(workers[0].server),
           threads, threads > 1 ? "s" : "");
    fflush(stdout);
    for (i = 1; i < threads; i++)
        pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]);
    run_worker(&workers[0]);
    for (i = 0; i < threads; i++) {
        if (i > 0)
            pthread_join(workers[i].thread, NULL);
        total += workers[i].requests;
        http_server_free(workers[i].server);
        evloop_free(workers[i].loop);
    }
    printf("hello: %lu requests served\n", total);
    return 0;
}
