/* bench/http_parser: stand-ins for peers that are not installed; the table
 * leaves them out (see the BENCH_NO_* flags). */
#include "http_parser_peers.h"

#ifdef BENCH_NO_JOYENT
size_t peer_joyent(const char *buf, size_t len, int response)
{
    (void)buf; (void)len; (void)response;
    return 0;
}
#endif
#ifdef BENCH_NO_LLHTTP
size_t peer_llhttp(const char *buf, size_t len, int response)
{
    (void)buf; (void)len; (void)response;
    return 0;
}
#endif
#ifdef BENCH_NO_PICO
size_t peer_pico(const char *buf, size_t len, int response)
{
    (void)buf; (void)len; (void)response;
    return 0;
}
#endif
