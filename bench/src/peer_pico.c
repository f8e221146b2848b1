/* bench/http_parser: picohttpparser, as built into Debian's libh2o-evloop
 * (which exports phr_parse_request). Requests only: its chunked decoder
 * rewrites the buffer in place, so it cannot parse the same input twice. */
#include <stddef.h>

#include "http_parser_peers.h"

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

size_t peer_pico(const char *buf, size_t len, int response)
{
    struct phr_header h[64];
    size_t nh = 64, ml, pl;
    const char *m, *path;
    int minor, n;
    if (response) return 0;
    n = phr_parse_request(buf, len, &m, &ml, &path, &pl, &minor, h, &nh, 0);
    if (n != (int)len) return 0;
    return nh + pl;
}
