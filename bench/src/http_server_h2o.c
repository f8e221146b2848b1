/* The h2o peer of bench/http_server: a program on Debian's libh2o-evloop
 * (one thread, h2o's own event loop) answering GET /plaintext with
 * "Hello, World!", the way h2o's own benchmark entries are written.
 *   h2o_hello PORT */
#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT("Hello, World!"));
    (void)self;
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/plaintext")))
        return -1;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    if ((sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&accept_ctx, sock);
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    int fd, one = 1;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    h2o_handler_t *handler;
    h2o_socket_t *sock;
    signal(SIGPIPE, SIG_IGN); /* as the h2o server does */
    h2o_config_init(&config);
    host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;
    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(0x7f000001);
    addr.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 8097));
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4096) != 0) {
        perror("bind/listen");
        return 1;
    }
    sock = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(sock, on_accept);
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return 0;
}
