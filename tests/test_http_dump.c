/* Tests of examples/http_dump.c. The example is compiled into this program
 * (HTTP_DUMP_NO_MAIN leaves its main() out) and its http_dump_run() is fed
 * through a pipe by a writer thread, a few bytes per write, as a socket
 * would deliver them; its output goes to a memory stream. */
#define HTTP_DUMP_NO_MAIN
#include "../examples/http_dump.c"

#include <pthread.h>

#include "test.h"

typedef struct feed {
    int fd;
    const char *data;
    size_t len, piece;
} feed;

static void *writer(void *arg)
{
    feed *f = (feed *)arg;
    size_t off = 0;
    while (off < f->len) {
        size_t n = f->len - off < f->piece ? f->len - off : f->piece;
        ssize_t w = write(f->fd, f->data + off, n);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(f->fd);
    return NULL;
}

/* Runs http_dump with the options in `args` (space-separated, may be "")
 * on in[0..len), written `piece` bytes at a time. Returns its exit status;
 * *out gets what it printed (free it). */
static int dump_n(const char *args, const char *in, size_t len, size_t piece, char **out)
{
    char argbuf[256], *argv[8], *tok, *save = NULL;
    int argc = 0, fds[2], rc;
    size_t out_len = 0;
    FILE *o;
    pthread_t th;
    feed f;
    argv[argc++] = (char *)"http_dump";
    snprintf(argbuf, sizeof argbuf, "%s", args);
    for (tok = strtok_r(argbuf, " ", &save); tok && argc < 7; tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    if (pipe(fds) != 0) abort();
    f.fd = fds[1];
    f.data = in;
    f.len = len;
    f.piece = piece;
    o = open_memstream(out, &out_len);
    if (!o || pthread_create(&th, NULL, writer, &f) != 0) abort();
    rc = http_dump_run(argc, argv, fds[0], o);
    close(fds[0]); /* (a writer still blocked on a full pipe gets EPIPE) */
    pthread_join(th, NULL);
    fclose(o);
    return rc;
}

/* The output for `in` must be `want` exactly, whether the stream comes in
 * one write or a few bytes at a time; returns the exit status. */
static int dump_is(const char *args, const char *in, const char *want)
{
    static const size_t pieces[] = {1 << 20, 7, 1};
    size_t i;
    int rc = -1;
    for (i = 0; i < 3; i++) {
        char *got = NULL;
        int r = dump_n(args, in, strlen(in), pieces[i], &got);
        if (strcmp(got, want) != 0) {
            TEST__FAIL_HEAD();
            fprintf(stderr, "http_dump %s, writes of %zu, on \"%s\":\n  got:  %s\n  want: %s\n", args,
                    pieces[i], in, got, want);
        }
        if (i && r != rc) {
            TEST__FAIL_HEAD();
            fprintf(stderr, "exit status %d, then %d\n", rc, r);
        }
        rc = r;
        free(got);
    }
    return rc;
}

TEST(request_json)
{
    CHECK_INT(dump_is("--request", "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                      "{\"method\":\"GET\",\"target\":\"/a?b=1\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"x\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"),
              ==, 0);
    /* the default is --request; a body; HTTP/1.0 */
    CHECK_INT(dump_is("", "POST /p HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
                      "{\"method\":\"POST\",\"target\":\"/p\",\"version\":\"1.0\","
                      "\"headers\":[[\"Content-Length\",\"3\"]],\"body\":\"abc\","
                      "\"keep_alive\":false,\"upgrade\":false}\n"),
              ==, 0);
    /* chunked: decoded, with its trailers */
    CHECK_INT(dump_is("", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
                      "{\"method\":\"POST\",\"target\":\"/\",\"version\":\"1.1\",\"headers\":"
                      "[[\"Host\",\"h\"],[\"Transfer-Encoding\",\"chunked\"]],\"body\":\"abcde\","
                      "\"trailers\":[[\"T\",\"1\"],[\"U\",\"2\"]],\"keep_alive\":true,"
                      "\"upgrade\":false}\n"),
              ==, 0);
    /* an empty stream prints nothing */
    CHECK_INT(dump_is("", "", ""), ==, 0);
}

TEST(response_json)
{
    CHECK_INT(dump_is("--response", "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
                      "{\"status\":404,\"reason\":\"Not Found\",\"version\":\"1.1\","
                      "\"headers\":[[\"Content-Length\",\"2\"]],\"body\":\"no\","
                      "\"keep_alive\":true,\"upgrade\":false}\n"),
              ==, 0);
    /* a body until close, printed at the end of the stream */
    CHECK_INT(dump_is("--response", "HTTP/1.1 200 OK\r\n\r\nall of it",
                      "{\"status\":200,\"reason\":\"OK\",\"version\":\"1.1\",\"headers\":[],"
                      "\"body\":\"all of it\",\"keep_alive\":false,\"upgrade\":false}\n"),
              ==, 0);
}

TEST(head_responses)
{
    /* --head: Content-Length describes the response a GET would get; no body
     * follows, so the next bytes are the next response (after a 1xx too) */
    CHECK_INT(dump_is("--response --head",
                      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                      "HTTP/1.1 100 Continue\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                      "{\"status\":200,\"reason\":\"OK\",\"version\":\"1.1\",\"headers\":"
                      "[[\"Content-Length\",\"5\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"
                      "{\"status\":100,\"reason\":\"Continue\",\"version\":\"1.1\",\"headers\":[],"
                      "\"body\":\"\",\"keep_alive\":true,\"upgrade\":false}\n"
                      "{\"status\":200,\"reason\":\"OK\",\"version\":\"1.1\",\"headers\":"
                      "[[\"Content-Length\",\"7\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"),
              ==, 0);
    /* without --head the same bytes are a body */
    CHECK_INT(dump_is("--response", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/",
                      "{\"status\":200,\"reason\":\"OK\",\"version\":\"1.1\",\"headers\":"
                      "[[\"Content-Length\",\"5\"]],\"body\":\"HTTP/\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"),
              ==, 0);
}

TEST(lenient_options)
{
    static const char lf[] = "GET / HTTP/1.1\nHost: a\n\n";
    CHECK_INT(dump_is("--lenient", lf,
                      "{\"method\":\"GET\",\"target\":\"/\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"a\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"),
              ==, 0);
    CHECK_INT(dump_is("", lf, "{\"error\":\"BARE_LF\",\"status\":400,\"offset\":14}\n"), ==, 1);
    CHECK_INT(dump_is("--lenient-host", "GET / HTTP/1.1\r\n\r\n",
                      "{\"method\":\"GET\",\"target\":\"/\",\"version\":\"1.1\",\"headers\":[],"
                      "\"body\":\"\",\"keep_alive\":true,\"upgrade\":false}\n"),
              ==, 0);
    CHECK_INT(dump_is("", "GET / HTTP/1.1\r\n\r\n",
                      "{\"error\":\"MISSING_HOST\",\"status\":400,\"offset\":16}\n"),
              ==, 1);
}

TEST(error_lines)
{
    /* the offset is in the stream, across messages; nothing after the error */
    CHECK_INT(dump_is("", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost : a\r\n\r\n"
                          "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
                      "{\"method\":\"GET\",\"target\":\"/1\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"a\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"
                      "{\"error\":\"HEADER_NAME_SPACE\",\"status\":400,\"offset\":49}\n"),
              ==, 1);
    /* in a body */
    CHECK_INT(dump_is("", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabcX",
                      "{\"error\":\"CHUNK_CRLF\",\"status\":400,\"offset\":62}\n"),
              ==, 1);
    /* the stream ends inside a message: the offset is its length */
    CHECK_INT(dump_is("", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
                      "{\"error\":\"INCOMPLETE\",\"status\":400,\"offset\":50}\n"),
              ==, 1);
    CHECK_INT(dump_is("", "GET / HT", "{\"error\":\"INCOMPLETE\",\"status\":400,\"offset\":8}\n"),
              ==, 1);
    CHECK_INT(dump_is("--response", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "{\"error\":\"CL_AND_TE\",\"status\":400,\"offset\":36}\n"),
              ==, 1);
    CHECK_INT(dump_is("", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                      "{\"error\":\"TE_UNSUPPORTED\",\"status\":501,\"offset\":25}\n"),
              ==, 1);
}

TEST(escaping)
{
    /* non-printable bytes as \u00XX (upper-case hex), '"' and '\' escaped */
    CHECK_INT(dump_is("", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t\"q\" \\\x7e\r\n"
                          "Content-Length: 4\r\n\r\n\x01\n\x7f\xff",
                      "{\"method\":\"GET\",\"target\":\"/\",\"version\":\"1.1\",\"headers\":"
                      "[[\"Host\",\"a\"],[\"X\",\"caf\\u00C3\\u00A9\\u0009\\\"q\\\" \\\\~\"],"
                      "[\"Content-Length\",\"4\"]],\"body\":\"\\u0001\\u000A\\u007F\\u00FF\","
                      "\"keep_alive\":true,\"upgrade\":false}\n"),
              ==, 0);
}

TEST(pipelined_and_upgrades)
{
    CHECK_INT(dump_is("", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                          "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                          "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                      "{\"method\":\"GET\",\"target\":\"/1\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"a\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":false}\n"
                      "{\"method\":\"POST\",\"target\":\"/2\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"a\"],[\"Content-Length\",\"2\"]],\"body\":\"hi\","
                      "\"keep_alive\":true,\"upgrade\":false}\n"
                      "{\"method\":\"GET\",\"target\":\"/3\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"a\"],[\"Connection\",\"close\"]],\"body\":\"\","
                      "\"keep_alive\":false,\"upgrade\":false}\n"),
              ==, 0);
    /* after CONNECT the rest is not HTTP: it stops */
    CHECK_INT(dump_is("", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01 not http",
                      "{\"method\":\"CONNECT\",\"target\":\"h:443\",\"version\":\"1.1\","
                      "\"headers\":[[\"Host\",\"h:443\"]],\"body\":\"\",\"keep_alive\":true,"
                      "\"upgrade\":true}\n"),
              ==, 0);
}

TEST(trailers_as_many_as_headers)
{
    /* 256 fields in a head and 256 in a trailer section both fit; 257 not */
    size_t n, i;
    for (n = 256; n <= 257; n++) {
        char *in = (char *)malloc((256 + n) * 16 + 256), *p = in, *got = NULL, want[96];
        int rc;
        p += sprintf(p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n");
        for (i = 2; i < 256; i++) p += sprintf(p, "H%zu: %zu\r\n", i, i);
        p += sprintf(p, "\r\n1\r\nx\r\n0\r\n");
        for (i = 0; i < n; i++) p += sprintf(p, "T%zu: %zu\r\n", i, i);
        p += sprintf(p, "\r\n");
        rc = dump_n("", in, strlen(in), 1 << 20, &got);
        if (n == 256) {
            CHECK_INT(rc, ==, 0);
            CHECK(strstr(got, "[\"H255\",\"255\"]],\"body\":\"x\",\"trailers\":[[\"T0\",\"0\"]") != NULL);
            CHECK(strstr(got, "[\"T255\",\"255\"]],\"keep_alive\":true") != NULL);
        } else {
            snprintf(want, sizeof want, "{\"error\":\"TOO_MANY_HEADERS\",\"status\":431,\"offset\":");
            CHECK_INT(rc, ==, 1);
            CHECK(strncmp(got, want, strlen(want)) == 0);
        }
        free(got);
        free(in);
    }
}

TEST(usage_errors)
{
    char *got = NULL;
    /* --head describes responses: with requests it is a usage error */
    CHECK_INT(dump_n("--head", "", 0, 1, &got), ==, 2);
    CHECK_STR(got, "");
    free(got);
    CHECK_INT(dump_n("--request --head", "", 0, 1, &got), ==, 2);
    free(got);
    CHECK_INT(dump_n("--response --nope", "", 0, 1, &got), ==, 2);
    free(got);
    CHECK_INT(dump_n("--head --response", "", 0, 1, &got), ==, 0);
    free(got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a writer whose reader stopped early gets EPIPE */
    RUN(request_json);
    RUN(response_json);
    RUN(head_responses);
    RUN(lenient_options);
    RUN(error_lines);
    RUN(escaping);
    RUN(pipelined_and_upgrades);
    RUN(trailers_as_many_as_headers);
    RUN(usage_errors);
    return test_done();
}
