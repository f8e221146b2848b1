/* bench/http_parser: llhttp (C sources from Debian's node-llhttp, compiled
 * with the benchmark). Callbacks record the same views our parser returns. */
#include <llhttp.h>
#include <string.h>

#include "http_parser_peers.h"

typedef struct rec {
    const char *url;
    size_t url_len;
    struct { const char *p; size_t n; } names[64], values[64];
    int nh;
    size_t body;
    int done;
} rec;

static rec r;

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    r.url = at;
    r.url_len = n;
    return 0;
}
static int on_field(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    if (r.nh < 64) { r.names[r.nh].p = at; r.names[r.nh].n = n; }
    return 0;
}
static int on_value(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    if (r.nh < 64) { r.values[r.nh].p = at; r.values[r.nh].n = n; }
    r.nh++;
    return 0;
}
static int on_body(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    (void)at;
    r.body += n;
    return 0;
}
static int on_complete(llhttp_t *p)
{
    (void)p;
    r.done = 1;
    return 0;
}

static llhttp_settings_t settings;
static llhttp_t req_parser, resp_parser;

static void setup(void)
{
    static int ready;
    if (ready) return;
    ready = 1;
    llhttp_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_field;
    settings.on_header_value = on_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_complete;
    llhttp_init(&req_parser, HTTP_REQUEST, &settings);
    llhttp_init(&resp_parser, HTTP_RESPONSE, &settings);
}

size_t peer_llhttp(const char *buf, size_t len, int response)
{
    llhttp_t *p;
    setup();
    p = response ? &resp_parser : &req_parser;
    r.nh = 0;
    r.done = 0;
    r.body = 0;
    if (llhttp_execute(p, buf, len) != HPE_OK || !r.done) return 0;
    return (size_t)r.nh + r.body + r.url_len;
}
