/* The peers of bench/http_parser: each parses one whole message from buf
 * (a request, or a response when response != 0) and returns a checksum of
 * what it found (0 on failure). Each lives in its own file because their
 * headers define clashing names. */
#ifndef HTTP_PARSER_PEERS_H
#define HTTP_PARSER_PEERS_H
#include <stddef.h>
size_t peer_joyent(const char *buf, size_t len, int response);
size_t peer_llhttp(const char *buf, size_t len, int response);
size_t peer_pico(const char *buf, size_t len, int response);
#endif
