/* bench/http_parser: joyent's http-parser (libhttp-parser-dev). Callbacks
 * record the same views our parser returns, so both do the same work. */
#include <http_parser.h>
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

static int on_url(http_parser *p, const char *at, size_t n)
{
    rec *r = (rec *)p->data;
    r->url = at;
    r->url_len = n;
    return 0;
}
static int on_field(http_parser *p, const char *at, size_t n)
{
    rec *r = (rec *)p->data;
    if (r->nh < 64) { r->names[r->nh].p = at; r->names[r->nh].n = n; }
    return 0;
}
static int on_value(http_parser *p, const char *at, size_t n)
{
    rec *r = (rec *)p->data;
    if (r->nh < 64) { r->values[r->nh].p = at; r->values[r->nh].n = n; }
    r->nh++;
    return 0;
}
static int on_body(http_parser *p, const char *at, size_t n)
{
    rec *r = (rec *)p->data;
    (void)at;
    r->body += n;
    return 0;
}
static int on_complete(http_parser *p)
{
    ((rec *)p->data)->done = 1;
    return 0;
}

static http_parser_settings settings;
static http_parser req_parser, resp_parser;
static rec r;

static void setup(void)
{
    static int ready;
    if (ready) return;
    ready = 1;
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_field;
    settings.on_header_value = on_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_complete;
    http_parser_init(&req_parser, HTTP_REQUEST);
    http_parser_init(&resp_parser, HTTP_RESPONSE);
    req_parser.data = resp_parser.data = &r;
}

size_t peer_joyent(const char *buf, size_t len, int response)
{
    http_parser *p;
    size_t n;
    setup();
    p = response ? &resp_parser : &req_parser;
    r.nh = 0;
    r.done = 0;
    r.body = 0;
    n = http_parser_execute(p, &settings, buf, len);
    if (n != len || !r.done) return 0;
    return (size_t)r.nh + r.body + r.url_len;
}
