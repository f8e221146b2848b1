/* Builds http.h with its implementation as C11 and C++17 (see build.sh). */
#define HTTP_IMPLEMENTATION
#include "http.h"
#include "http.h" /* a second include is harmless */

int http_compile_check(void);
int http_compile_check(void)
{
    http_msg_parser p;
    http_message m;
    http_header h[4];
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    http_parse_init(&p, HTTP_KIND_REQUEST, NULL);
    return http_parse_head(&p, req, sizeof req - 1, &m, h, 4);
}
