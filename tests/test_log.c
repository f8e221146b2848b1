/* build: tsan */
/* Tests for log.h: golden lines for every format and sink, escaping,
 * truncation, levels, children, sinks (files, stdout/stderr, a terminal,
 * pipes), rotation (size, daily, time zones, restarts, failures), the
 * asynchronous ring under load, drop and block policies, fatal/exit/fork
 * flushing and their time limits, write errors, a randomized run with
 * hostile bytes, and a pino line read back by pino-pretty (skipped when
 * node is not installed; a failure when CI is set and npm cannot install
 * it). */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 + posix_openpt() */
#define TEST_TIMEOUT 240
#define LOG_IMPLEMENTATION
#include "log.h"
#include "test.h"
#include "json_check.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>


/* 8 threads x LOAD_LINES lines: the full 800k at -O2, fewer under sanitizers. */
#define LOAD_THREADS 8
#define LOAD_LINES (TEST_SANITIZED ? 4000 : 100000)

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifdef TSAN_BUILD
/* Forked children exit through exit(): skip TSan's default 1 s pause there. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "atexit_sleep_ms=0"; }
#endif

/* 2024-05-01T12:00:00.123Z */
#define T0 1714564800123000000LL

/* ---- helpers ------------------------------------------------------------- */

static void snooze_us(long us)
{
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

/* Waits for the child process pid: 1 when it exited with status 0. */
static int child_ok(pid_t pid)
{
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int64_t clock_value = T0;
static int64_t fixed_clock(void *ud)
{
    (void)ud;
    return __atomic_load_n(&clock_value, __ATOMIC_RELAXED);
}

/* A callback sink that collects lines. */
typedef struct capture {
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
    int lines;
    int last_level;
} capture;

static void cap_init(capture *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

static void cap_free(capture *c)
{
    free(c->buf);
    pthread_mutex_destroy(&c->mu);
}

static void cap_cb(void *ud, int level, const char *line, size_t len)
{
    capture *c = (capture *)ud;
    pthread_mutex_lock(&c->mu);
    if (c->len + len + 1 > c->cap) {
        c->cap = (c->len + len + 1) * 2;
        c->buf = (char *)realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, line, len);
    c->len += len;
    c->buf[c->len] = 0;
    c->lines++;
    c->last_level = level;
    pthread_mutex_unlock(&c->mu);
}

/* Returns the captured text and clears it (caller frees). */
static char *cap_take(capture *c)
{
    char *s;
    pthread_mutex_lock(&c->mu);
    s = c->buf ? c->buf : strdup("");
    c->buf = NULL;
    c->len = c->cap = 0;
    c->lines = 0;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* A sink of this kind and format, without colours, the rest default. */
static log_sink sink_of(int kind, int format)
{
    log_sink s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.format = format;
    s.color = LOG_COLOR_NEVER;
    return s;
}

static log_sink cap_sink(capture *c, int format)
{
    log_sink s = sink_of(LOG_SINK_CALLBACK, format);
    s.callback = cap_cb;
    s.userdata = c;
    return s;
}

static log_sink file_sink(const char *path, int format)
{
    log_sink s = sink_of(LOG_SINK_FILE, format);
    s.path = path;
    return s;
}

/* JSON lines to a descriptor. */
static log_sink fd_sink(int fd)
{
    log_sink s = sink_of(LOG_SINK_FD, LOG_FORMAT_JSON);
    s.fd = fd;
    return s;
}

/* Every format, in the order of the LOG_FORMAT_ values. */
static const int all_formats[4] = {LOG_FORMAT_JSON, LOG_FORMAT_PINO, LOG_FORMAT_LOGFMT,
                                   LOG_FORMAT_PRETTY};

/* n capture sinks: s[i] writes lines of formats[i] into c[i]. */
static void cap_sinks(capture *c, log_sink *s, const int *formats, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        cap_init(&c[i]);
        s[i] = cap_sink(&c[i], formats[i]);
    }
}

static void cap_free_all(capture *c, int n)
{
    int i;
    for (i = 0; i < n; i++) cap_free(&c[i]);
}

static log_options base_opts(const log_sink *sinks, int n)
{
    log_options o;
    memset(&o, 0, sizeof o);
    o.sinks = sinks;
    o.nsinks = n;
    o.level = LOG_LEVEL_TRACE;
    o.level_env = "";
    o.now = fixed_clock;
    o.hostname = "box";
    return o;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- golden lines for every format ------------------------------------------ */

TEST(golden_formats)
{
    capture cj, cp, cl, cr, cc;
    log_sink s[5];
    log_options o;
    log_logger *lg, *child;
    log_field bound[2];
    char *out, pino[512];
    cap_init(&cj);
    cap_init(&cp);
    cap_init(&cl);
    cap_init(&cr);
    cap_init(&cc);
    s[0] = cap_sink(&cj, LOG_FORMAT_JSON);
    s[1] = cap_sink(&cp, LOG_FORMAT_PINO);
    s[2] = cap_sink(&cl, LOG_FORMAT_LOGFMT);
    s[3] = cap_sink(&cr, LOG_FORMAT_PRETTY);
    s[4] = cap_sink(&cc, LOG_FORMAT_PRETTY);
    s[4].color = LOG_COLOR_ALWAYS;
    o = base_opts(s, 5);
    o.name = "api";
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    bound[0] = LOG_STR("req", "r1");
    bound[1] = LOG_INT("n", 7);
    REQUIRE_INT(log_child(lg, &child, bound, 2), ==, 0);

    log_info(child, "hello \"world\"", LOG_STR("user", "a b"), LOG_INT("i", -5),
             LOG_UINT("u", 18446744073709551615ull), LOG_FLOAT("f", 0.1), LOG_BOOL("ok", 1),
             LOG_NULL("z"), LOG_STR("s", NULL));
    log_warnf(lg, "disk %d%% full", 91);

    out = cap_take(&cj);
    CHECK_STR(out,
              "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"name\":\"api\","
              "\"msg\":\"hello \\\"world\\\"\",\"req\":\"r1\",\"n\":7,\"user\":\"a b\",\"i\":-5,"
              "\"u\":18446744073709551615,\"f\":0.1,\"ok\":true,\"z\":null,\"s\":null}\n"
              "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"warn\",\"name\":\"api\","
              "\"msg\":\"disk 91% full\"}\n");
    CHECK_INT(json_lines_ok(out), ==, 2);
    free(out);

    out = cap_take(&cp);
    snprintf(pino, sizeof pino,
             "{\"level\":30,\"time\":1714564800123,\"pid\":%d,\"hostname\":\"box\",\"name\":\"api\","
             "\"req\":\"r1\",\"n\":7,\"user\":\"a b\",\"i\":-5,\"u\":18446744073709551615,\"f\":0.1,"
             "\"ok\":true,\"z\":null,\"s\":null,\"msg\":\"hello \\\"world\\\"\"}\n"
             "{\"level\":40,\"time\":1714564800123,\"pid\":%d,\"hostname\":\"box\",\"name\":\"api\","
             "\"msg\":\"disk 91%% full\"}\n",
             (int)getpid(), (int)getpid());
    CHECK_STR(out, pino);
    CHECK_INT(json_lines_ok(out), ==, 2);
    free(out);

    out = cap_take(&cl);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=info name=api msg=\"hello \\\"world\\\"\" "
                   "req=r1 n=7 user=\"a b\" i=-5 u=18446744073709551615 f=0.1 ok=true z=null s=null\n"
                   "time=2024-05-01T12:00:00.123Z level=warn name=api msg=\"disk 91% full\"\n");
    free(out);

    out = cap_take(&cr); /* TZ=UTC (main) */
    CHECK_STR(out, "2024-05-01 12:00:00.123 INFO  [api] hello \"world\" req=r1 n=7 user=\"a b\" i=-5 "
                   "u=18446744073709551615 f=0.1 ok=true z=null s=null\n"
                   "2024-05-01 12:00:00.123 WARN  [api] disk 91% full\n");
    free(out);

    out = cap_take(&cc);
    CHECK_STR(out, "\x1b[90m2024-05-01 12:00:00.123\x1b[0m \x1b[32mINFO \x1b[0m \x1b[35m[api] \x1b[0m"
                   "hello \"world\" \x1b[36mreq=\x1b[0mr1 \x1b[36mn=\x1b[0m7 \x1b[36muser=\x1b[0m\"a b\""
                   " \x1b[36mi=\x1b[0m-5 \x1b[36mu=\x1b[0m18446744073709551615 \x1b[36mf=\x1b[0m0.1"
                   " \x1b[36mok=\x1b[0mtrue \x1b[36mz=\x1b[0mnull \x1b[36ms=\x1b[0mnull\n"
                   "\x1b[90m2024-05-01 12:00:00.123\x1b[0m \x1b[33mWARN \x1b[0m \x1b[35m[api] \x1b[0m"
                   "disk 91% full\n");
    free(out);

    log_destroy(child);
    log_destroy(lg);
    cap_free(&cj);
    cap_free(&cp);
    cap_free(&cl);
    cap_free(&cr);
    cap_free(&cc);
}

/* Every level's name in each format, and the level filter per sink. */
TEST(levels_and_sink_filters)
{
    capture all, warn;
    log_sink s[2];
    log_options o;
    log_logger *lg;
    char *out;
    cap_init(&all);
    cap_init(&warn);
    s[0] = cap_sink(&all, LOG_FORMAT_LOGFMT);
    s[1] = cap_sink(&warn, LOG_FORMAT_PRETTY);
    s[1].level = LOG_LEVEL_WARN;
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_trace(lg, "t");
    log_debug(lg, "d");
    log_info(lg, "i");
    log_warn(lg, "w");
    log_error(lg, "e");
    log_fatal(lg, "f");
    log_emit(lg, LOG_LEVEL_ERROR, "dyn", LOG_INT("x", 1));
    out = cap_take(&all);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=trace msg=t\n"
                   "time=2024-05-01T12:00:00.123Z level=debug msg=d\n"
                   "time=2024-05-01T12:00:00.123Z level=info msg=i\n"
                   "time=2024-05-01T12:00:00.123Z level=warn msg=w\n"
                   "time=2024-05-01T12:00:00.123Z level=error msg=e\n"
                   "time=2024-05-01T12:00:00.123Z level=fatal msg=f\n"
                   "time=2024-05-01T12:00:00.123Z level=error msg=dyn x=1\n");
    free(out);
    out = cap_take(&warn);
    CHECK_STR(out, "2024-05-01 12:00:00.123 WARN  w\n"
                   "2024-05-01 12:00:00.123 ERROR e\n"
                   "2024-05-01 12:00:00.123 FATAL f\n"
                   "2024-05-01 12:00:00.123 ERROR dyn x=1\n");
    free(out);
    CHECK_INT(warn.last_level, ==, LOG_LEVEL_ERROR);

    log_set_level(lg, LOG_LEVEL_ERROR);
    CHECK_INT(log_get_level(lg), ==, LOG_LEVEL_ERROR);
    CHECK(!LOG_ENABLED(lg, LOG_LEVEL_WARN));
    CHECK(LOG_ENABLED(lg, LOG_LEVEL_ERROR));
    log_warn(lg, "hidden");
    log_error(lg, "shown");
    log_set_level(lg, LOG_LEVEL_OFF);
    log_fatal(lg, "hidden too");
    log_write(lg, LOG_LEVEL_FATAL, "direct call, also hidden", NULL, 0);
    out = cap_take(&all);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=error msg=shown\n");
    free(out);
    free(cap_take(&warn));
    log_destroy(lg);

    /* Sinks' levels fold into the gate: nothing below warn is even formatted. */
    s[0].level = LOG_LEVEL_WARN;
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    CHECK(!LOG_ENABLED(lg, LOG_LEVEL_INFO));
    CHECK(LOG_ENABLED(lg, LOG_LEVEL_WARN));
    log_destroy(lg);
    cap_free(&all);
    cap_free(&warn);
}

static int evaluated;
static int side_effect(void)
{
    evaluated++;
    return 1;
}

TEST(disabled_calls_do_not_evaluate_arguments)
{
    capture c;
    log_sink s;
    log_options o;
    log_logger *lg;
    cap_init(&c);
    s = cap_sink(&c, LOG_FORMAT_JSON);
    o = base_opts(&s, 1);
    o.level = LOG_LEVEL_INFO;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    evaluated = 0;
    log_debug(lg, "x", LOG_INT("v", side_effect()));
    log_debugf(lg, "%d", side_effect());
    log_emitf(lg, LOG_LEVEL_TRACE, (LOG_INT("v", side_effect())), "%d", side_effect());
    CHECK_INT(evaluated, ==, 0);
    CHECK_INT(c.lines, ==, 0);
    log_info(lg, "x", LOG_INT("v", side_effect()));
    CHECK_INT(evaluated, ==, 1);
    CHECK_INT(c.lines, ==, 1);
    log_destroy(lg);
    cap_free(&c);
}

TEST(level_from_environment)
{
    capture c;
    log_sink s;
    log_options o;
    log_logger *lg;
    static const struct { const char *val; int level; } cases[] = {
        {"debug", LOG_LEVEL_DEBUG}, {"WARNING", LOG_LEVEL_WARN}, {"Error", LOG_LEVEL_ERROR},
        {"silent", LOG_LEVEL_OFF},  {"35", 35},                  {"verbose", LOG_LEVEL_INFO},
        {"", LOG_LEVEL_INFO},       {"1000", LOG_LEVEL_INFO},
    };
    size_t i;
    cap_init(&c);
    s = cap_sink(&c, LOG_FORMAT_JSON);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o = base_opts(&s, 1);
        o.level = LOG_LEVEL_INFO;
        o.level_env = "TEST_LOG_LEVEL";
        setenv("TEST_LOG_LEVEL", cases[i].val, 1);
        REQUIRE_INT(log_create(&lg, &o), ==, 0);
        CHECK_INT(log_get_level(lg), ==, cases[i].level);
        log_destroy(lg);
    }
    /* The default variable is LOG_LEVEL; "" turns reading off. */
    setenv("LOG_LEVEL", "trace", 1);
    o = base_opts(&s, 1);
    o.level_env = NULL;
    o.level = LOG_LEVEL_ERROR;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    CHECK_INT(log_get_level(lg), ==, LOG_LEVEL_TRACE);
    log_destroy(lg);
    o.level_env = "";
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    CHECK_INT(log_get_level(lg), ==, LOG_LEVEL_ERROR);
    log_destroy(lg);
    unsetenv("LOG_LEVEL");
    unsetenv("TEST_LOG_LEVEL");
    cap_free(&c);
}

TEST(names_parse_and_errors)
{
    CHECK_STR(log_level_name(LOG_LEVEL_TRACE), "trace");
    CHECK_STR(log_level_name(LOG_LEVEL_INFO), "info");
    CHECK_STR(log_level_name(45), "warn");
    CHECK_STR(log_level_name(LOG_LEVEL_FATAL), "fatal");
    CHECK_STR(log_level_name(LOG_LEVEL_OFF), "off");
    CHECK_INT(log_level_parse("info"), ==, LOG_LEVEL_INFO);
    CHECK_INT(log_level_parse("FATAL"), ==, LOG_LEVEL_FATAL);
    CHECK_INT(log_level_parse("0"), ==, 0);
    CHECK_INT(log_level_parse("100"), ==, LOG_LEVEL_OFF);
    CHECK_INT(log_level_parse("101"), ==, -EINVAL);
    CHECK_INT(log_level_parse("-1"), ==, -EINVAL);
    CHECK_INT(log_level_parse("infox"), ==, -EINVAL);
    CHECK_INT(log_level_parse(NULL), ==, -EINVAL);
    CHECK_STR(log_strerror(-ENOSPC), "no space left on device");
    CHECK_STR(log_strerror(-EINVAL), "invalid argument");
    CHECK_STR(log_strerror(0), "success");
    CHECK_STR(log_strerror(-99999), "unknown error");
}

TEST(bad_options)
{
    log_sink s;
    log_options o;
    log_logger *lg = (log_logger *)&s;
    char longname[80];
    memset(&s, 0, sizeof s);
    o = base_opts(&s, 1);
    o.max_line = 100;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    CHECK(lg == NULL);
    o = base_opts(&s, 1);
    o.mode = 7;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o = base_opts(&s, 1);
    o.nsinks = LOG_MAX_SINKS + 1;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o = base_opts(&s, 1);
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    o.name = longname;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o.name = "bad\"name";
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.ring_bytes = 1000;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o.ring_bytes = 64 << 10;
    o.max_line = 1 << 20; /* more than half the ring */
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o.max_line = 0;
    o.ring_bytes = ((size_t)1 << 30) + 1; /* past the 1 GiB cap */
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    o.ring_bytes = (size_t)-1;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    s.kind = LOG_SINK_FILE;
    s.path = "no/such/dir/x.log";
    o = base_opts(&s, 1);
    CHECK_INT(log_create(&lg, &o), ==, -ENOENT);
    s.path = NULL;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    s.kind = LOG_SINK_CALLBACK;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    s.kind = 42;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    s.kind = LOG_SINK_STDOUT;
    s.format = 9;
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    CHECK(lg == NULL);
}

/* ---- escaping, NULLs, numbers ---------------------------------------------- */

TEST(escaping_hostile_strings)
{
    capture cj, cl, cr;
    log_sink s[3];
    log_options o;
    log_logger *lg;
    char ctl[40], *out, *p;
    int i;
    cap_init(&cj);
    cap_init(&cl);
    cap_init(&cr);
    s[0] = cap_sink(&cj, LOG_FORMAT_JSON);
    s[1] = cap_sink(&cl, LOG_FORMAT_LOGFMT);
    s[2] = cap_sink(&cr, LOG_FORMAT_PRETTY);
    o = base_opts(s, 3);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);

    /* quotes, backslashes and a key that tries to close the object */
    log_info(lg, "a\"b\\c", LOG_STR("k\"}\n{\"x", "v\"}\n{\"level\":\"fatal"));
    out = cap_take(&cj);
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"a\\\"b\\\\c\","
                   "\"k\\\"}\\n{\\\"x\":\"v\\\"}\\n{\\\"level\\\":\\\"fatal\"}\n");
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    out = cap_take(&cl);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=info msg=\"a\\\"b\\\\c\" "
                   "k_}_{_x=\"v\\\"}\\n{\\\"level\\\":\\\"fatal\"\n");
    free(out);
    free(cap_take(&cr));

    /* every control character, DEL, and an embedded NUL via LOG_STRN */
    for (i = 1; i < 32; i++) ctl[i - 1] = (char)i;
    ctl[31] = 0x7f;
    ctl[32] = 0;
    log_info(lg, ctl, LOG_STRN("nul", "a\0b", 3));
    out = cap_take(&cj);
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\""
                   "\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e"
                   "\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
                   "\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\u007f\",\"nul\":\"a\\u0000b\"}\n");
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    out = cap_take(&cr);
    CHECK(strchr(out, 0x1b) == NULL); /* no raw ESC reaches a terminal */
    CHECK_INT(count_lines(out), ==, 1);
    CHECK(strstr(out, "\\u001b") != NULL);
    free(out);
    free(cap_take(&cl));

    /* invalid UTF-8 is replaced byte by byte; valid UTF-8 passes */
    log_info(lg, "\x80|\xc0\xaf|\xe0\x80\x80|\xed\xa0\x80|\xf4\x90\x80\x80|\xf8|\xe2\x82|"
                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    out = cap_take(&cj);
    CHECK_INT(json_lines_ok(out), ==, 1);
    p = strstr(out, "\"msg\":\"");
    REQUIRE(p != NULL);
    CHECK_STR(p, "\"msg\":\"\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                 "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}\n");
    free(out);
    /* a string cut inside a UTF-8 sequence at the end */
    log_info(lg, "x", LOG_STRN("cut", "\xe2\x82\xac", 2));
    out = cap_take(&cj);
    CHECK(strstr(out, "\"cut\":\"\xef\xbf\xbd\xef\xbf\xbd\"}") != NULL);
    free(out);
    free(cap_take(&cl));
    free(cap_take(&cr));

    /* logfmt: empty values and '=' are quoted; keys are sanitised */
    log_info(lg, "", LOG_STR("", ""), LOG_STR("a=b", "c=d"), LOG_STR("sp ace", "\xc3\xa9"));
    out = cap_take(&cl);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=info msg=\"\" _=\"\" a_b=\"c=d\" "
                   "sp_ace=\xc3\xa9\n");
    free(out);
    out = cap_take(&cj);
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    free(cap_take(&cr));
    log_destroy(lg);
    cap_free(&cj);
    cap_free(&cl);
    cap_free(&cr);
}

TEST(null_strings)
{
    capture c, cl;
    log_sink s[2];
    log_options o;
    log_logger *lg;
    log_field f[2];
    char *out;
    cap_init(&c);
    cap_init(&cl);
    s[0] = cap_sink(&c, LOG_FORMAT_JSON);
    s[1] = cap_sink(&cl, LOG_FORMAT_PRETTY);
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, NULL, LOG_STR("s", NULL), LOG_STR(NULL, "v"), LOG_STRN("n", NULL, 5));
    f[0] = LOG_STR("a", NULL);
    f[1] = LOG_INT(NULL, 1);
    log_write(lg, LOG_LEVEL_INFO, NULL, f, 2);
    log_write(lg, LOG_LEVEL_INFO, "no fields", NULL, 3);
    out = cap_take(&c);
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":null,"
                   "\"s\":null,\"null\":\"v\",\"n\":null}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":null,"
                   "\"a\":null,\"null\":1}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"no fields\"}\n");
    CHECK_INT(json_lines_ok(out), ==, 3);
    free(out);
    out = cap_take(&cl);
    CHECK_STR(out, "2024-05-01 12:00:00.123 INFO  null s=null null=v n=null\n"
                   "2024-05-01 12:00:00.123 INFO  null a=null null=1\n"
                   "2024-05-01 12:00:00.123 INFO  no fields\n");
    free(out);
    log_destroy(lg);
    cap_free(&c);
    cap_free(&cl);
}

TEST(numbers)
{
    static const double vals[] = {0.1,     0.25,     12.5,     -3.75,   1.0 / 3.0, 2.0 / 3.0,
                                  1e-7,    1e21,     123456789.125, 3.0, 1e15 + 0.5, 5e-324,
                                  1.7976931348623157e308, 0.3, 100.0, 9007199254740993.0};
    capture c, cl;
    log_sink s[2];
    log_options o;
    log_logger *lg;
    char *out, *p;
    size_t i;
    cap_init(&c);
    cap_init(&cl);
    s[0] = cap_sink(&c, LOG_FORMAT_JSON);
    s[1] = cap_sink(&cl, LOG_FORMAT_LOGFMT);
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        double back;
        log_info(lg, "n", LOG_FLOAT("v", vals[i]));
        out = cap_take(&c);
        CHECK_INT(json_lines_ok(out), ==, 1);
        p = strstr(out, "\"v\":");
        REQUIRE(p != NULL);
        back = strtod(p + 4, NULL);
        if (back != vals[i]) {
            CHECK(back == vals[i]);
            fprintf(stderr, "  %.17g printed as %s", vals[i], p + 4);
        }
        free(out);
    }
    log_info(lg, "n", LOG_FLOAT("a", 0.1), LOG_FLOAT("b", 12.5), LOG_FLOAT("c", 100.0),
             LOG_FLOAT("d", -0.0), LOG_FLOAT("e", 0.3), LOG_FLOAT("f", 1e-5));
    out = cap_take(&c);
    CHECK(strstr(out, "\"a\":0.1,\"b\":12.5,\"c\":100,\"d\":-0,\"e\":0.3,\"f\":0.00001}") != NULL);
    free(out);
    /* outside the fixed-point range: the shortest exponent form */
    log_info(lg, "n", LOG_FLOAT("a", 1e300), LOG_FLOAT("b", 5e-324), LOG_FLOAT("c", -1e-7),
             LOG_FLOAT("d", 0.1 + 0.2), LOG_FLOAT("e", 1e21), LOG_FLOAT("f", 123456789012345678.0),
             LOG_FLOAT("g", 2.5e-8), LOG_FLOAT("h", 1.5e-323));
    out = cap_take(&c);
    CHECK(strstr(out, "\"a\":1e+300,\"b\":5e-324,\"c\":-1e-7,\"d\":0.30000000000000004,\"e\":1e+21,"
                      "\"f\":1.2345678901234568e+17,\"g\":2.5e-8,\"h\":1.5e-323}") != NULL);
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    free(cap_take(&cl));
    log_info(lg, "n", LOG_FLOAT("nan", NAN), LOG_FLOAT("inf", INFINITY), LOG_FLOAT("ninf", -INFINITY),
             LOG_INT("min", (long long)(-9223372036854775807LL - 1)), LOG_INT("zero", 0));
    out = cap_take(&c);
    CHECK(strstr(out, "\"nan\":null,\"inf\":null,\"ninf\":null,\"min\":-9223372036854775808,\"zero\":0}") != NULL);
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    out = cap_take(&cl);
    CHECK(strstr(out, "nan=NaN inf=+Inf ninf=-Inf min=-9223372036854775808 zero=0\n") != NULL);
    free(out);
    log_destroy(lg);
    cap_free(&c);
    cap_free(&cl);
}

/* ---- truncation --------------------------------------------------------------- */

TEST(truncation_marker)
{
    capture cj, cp, cl, cr;
    log_sink s[4];
    log_options o;
    log_logger *lg;
    log_stats st;
    char big[3000], *out;
    size_t n;
    cap_init(&cj);
    cap_init(&cp);
    cap_init(&cl);
    cap_init(&cr);
    s[0] = cap_sink(&cj, LOG_FORMAT_JSON);
    s[1] = cap_sink(&cp, LOG_FORMAT_PINO);
    s[2] = cap_sink(&cl, LOG_FORMAT_LOGFMT);
    s[3] = cap_sink(&cr, LOG_FORMAT_PRETTY);
    o = base_opts(s, 4);
    o.max_line = 512;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;

    log_info(lg, big, LOG_INT("after", 1));
    out = cap_take(&cj);
    n = strlen(out);
    CHECK_UINT(n, <=, 512);
    CHECK_UINT(n, >=, 400);
    CHECK_INT(json_lines_ok(out), ==, 1);
    CHECK(strstr(out, "xxx...\",\"truncated\":true}\n") != NULL);
    CHECK(strstr(out, "after") == NULL);
    free(out);
    out = cap_take(&cp); /* pino: the message alone is too long: it is cut, no fields */
    CHECK_UINT(strlen(out), <=, 512);
    CHECK_INT(json_lines_ok(out), ==, 1);
    CHECK(strstr(out, "\"hostname\":\"box\",\"msg\":\"xxx") != NULL);
    CHECK(strstr(out, "after") == NULL);
    CHECK(strstr(out, "xxx...\",\"truncated\":true}\n") != NULL);
    free(out);
    out = cap_take(&cl);
    CHECK_UINT(strlen(out), <=, 512);
    CHECK(strstr(out, "xxx... truncated=true\n") != NULL);
    free(out);
    out = cap_take(&cr);
    CHECK_UINT(strlen(out), <=, 512);
    CHECK(strstr(out, "xxx... [truncated]\n") != NULL);
    free(out);

    /* a long field value is cut; the fields after it are left out */
    log_info(lg, "m", LOG_INT("before", 1), LOG_STR("big", big), LOG_INT("after", 2));
    out = cap_take(&cj);
    CHECK_UINT(strlen(out), <=, 512);
    CHECK_INT(json_lines_ok(out), ==, 1);
    CHECK(strstr(out, "\"before\":1,\"big\":\"xxx") != NULL);
    CHECK(strstr(out, "xxx...\",\"truncated\":true}\n") != NULL);
    free(out);
    /* escapes are never cut in half */
    memset(big, '"', sizeof big - 1);
    log_info(lg, big);
    out = cap_take(&cj);
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    free(cap_take(&cp));
    free(cap_take(&cl));
    free(cap_take(&cr));
    log_get_stats(lg, &st);
    CHECK_UINT(st.truncated, ==, 3 * 4);
    log_destroy(lg);

    /* long lines under a large max_line: formatted whole (heap buffer) */
    o = base_opts(s, 1);
    o.max_line = 100000;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    {
        char *huge = (char *)malloc(50001);
        memset(huge, 'y', 50000);
        huge[50000] = 0;
        log_info(lg, huge);
        log_infof(lg, "%s", huge);
        out = cap_take(&cj);
        CHECK_INT(json_lines_ok(out), ==, 2);
        CHECK(strstr(out, "truncated") == NULL);
        CHECK_UINT(strlen(out), ==, 2 * (50000 + strlen("{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"\"}\n")));
        free(out);
        free(huge);
    }
    log_get_stats(lg, &st);
    CHECK_UINT(st.truncated, ==, 0);
    log_destroy(lg);
    cap_free(&cj);
    cap_free(&cp);
    cap_free(&cl);
    cap_free(&cr);
}

/* ---- printf messages, children ------------------------------------------------ */

TEST(printf_messages)
{
    capture c;
    log_sink s;
    log_options o;
    log_logger *lg;
    char *out, longarg[2000];
    cap_init(&c);
    s = cap_sink(&c, LOG_FORMAT_JSON);
    o = base_opts(&s, 1);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_infof(lg, "user %s logged in after %d tries (%.1f s)", "ann", 3, 1.5);
    log_emitf(lg, LOG_LEVEL_WARN, (LOG_STR("user", "ann"), LOG_BOOL("admin", 0)), "quota %u%%", 95u);
    log_info(lg, "100% literal, not a format %s %n");
    memset(longarg, 'z', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = 0;
    log_errorf(lg, "<%s>", longarg);
    out = cap_take(&c);
    CHECK_INT(json_lines_ok(out), ==, 4);
    CHECK(strstr(out, "\"msg\":\"user ann logged in after 3 tries (1.5 s)\"}\n") != NULL);
    CHECK(strstr(out, "\"level\":\"warn\",\"msg\":\"quota 95%\",\"user\":\"ann\",\"admin\":false}\n") != NULL);
    CHECK(strstr(out, "\"msg\":\"100% literal, not a format %s %n\"}\n") != NULL);
    CHECK(strstr(out, "\"msg\":\"<zzzzz") != NULL && strstr(out, "zzz>\"}\n") != NULL);
    free(out);
    log_destroy(lg);
    cap_free(&c);
}

TEST(children)
{
    capture c;
    log_sink s;
    log_options o;
    log_logger *lg, *a, *b;
    log_field fa[2], fb[1];
    char owned[8] = "mutable", *out;
    cap_init(&c);
    s = cap_sink(&c, LOG_FORMAT_JSON);
    o = base_opts(&s, 1);
    o.level = LOG_LEVEL_INFO;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    fa[0] = LOG_STR("svc", owned);
    fa[1] = LOG_FLOAT("ver", 1.5);
    REQUIRE_INT(log_child(lg, &a, fa, 2), ==, 0);
    owned[0] = 'X'; /* the child copied the string */
    fb[0] = LOG_INT("req", 42);
    REQUIRE_INT(log_child(a, &b, fb, 1), ==, 0);
    log_info(b, "nested", LOG_STR("k", "v"));
    log_info(a, "one level");
    log_info(lg, "root");
    /* levels: a child starts with the parent's and then has its own */
    log_set_level(b, LOG_LEVEL_DEBUG);
    log_debug(b, "child debug");
    log_debug(a, "hidden");
    log_set_level(lg, LOG_LEVEL_ERROR);
    log_info(a, "still shown");
    out = cap_take(&c);
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"nested\","
                   "\"svc\":\"mutable\",\"ver\":1.5,\"req\":42,\"k\":\"v\"}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"one level\","
                   "\"svc\":\"mutable\",\"ver\":1.5}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"root\"}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"debug\",\"msg\":\"child debug\","
                   "\"svc\":\"mutable\",\"ver\":1.5,\"req\":42}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"still shown\","
                   "\"svc\":\"mutable\",\"ver\":1.5}\n");
    free(out);
    log_destroy(b);
    CHECK_INT(log_child(NULL, &b, fb, 1), ==, -EINVAL);
    CHECK(b == NULL);
    CHECK_INT(log_child(lg, &b, NULL, 1), ==, -EINVAL);
    log_destroy(log_child(lg, &b, NULL, 0) == 0 ? b : NULL);
    log_destroy(a);
    log_destroy(lg);
    cap_free(&c);
}

/* A key given by its length (klen) is that many bytes, in every format and
 * in a child's bound fields: the bytes after it are not read (the heap
 * copy below has no NUL after "reqid", so ASan sees any strlen). */
TEST(keys_given_by_length)
{
    static const int formats[2] = {LOG_FORMAT_JSON, LOG_FORMAT_LOGFMT};
    capture c[2];
    log_sink s[2];
    log_options o;
    log_logger *lg, *child;
    log_field bound, call;
    char *key = (char *)malloc(5), *out;
    memcpy(key, "reqid", 5);
    cap_sinks(c, s, formats, 2);
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    bound = LOG_INT("x", 7);
    bound.key = key;
    bound.klen = 3; /* "req" */
    REQUIRE_INT(log_child(lg, &child, &bound, 1), ==, 0);
    call = LOG_STR("x", "v");
    call.key = key;
    call.klen = 5; /* "reqid", no NUL after it */
    log_info(child, "m", call);
    free(key); /* the child holds its own copy */
    log_info(child, "again");
    out = cap_take(&c[0]);
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"m\","
                   "\"req\":7,\"reqid\":\"v\"}\n"
                   "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"again\","
                   "\"req\":7}\n");
    free(out);
    out = cap_take(&c[1]);
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=info msg=m req=7 reqid=v\n"
                   "time=2024-05-01T12:00:00.123Z level=info msg=again req=7\n");
    free(out);
    log_destroy(child);
    log_destroy(lg);
    cap_free_all(c, 2);
}

/* ---- files, threads, rotation ------------------------------------------------------ */

typedef struct load_arg {
    log_logger *lg;
    int tid, lines;
} load_arg;

static void *load_thread(void *p)
{
    load_arg *a = (load_arg *)p;
    int i;
    for (i = 0; i < a->lines; i++)
        log_info(a->lg, "load line", LOG_INT("t", a->tid), LOG_INT("i", i),
                 LOG_STR("pad", "some padding so lines are of a realistic length"));
    return NULL;
}

static void run_load(log_logger *lg, int lines)
{
    pthread_t th[LOAD_THREADS];
    load_arg args[LOAD_THREADS];
    int t;
    for (t = 0; t < LOAD_THREADS; t++) {
        args[t].lg = lg;
        args[t].tid = t;
        args[t].lines = lines;
        pthread_create(&th[t], NULL, load_thread, &args[t]);
    }
    for (t = 0; t < LOAD_THREADS; t++) pthread_join(th[t], NULL);
}

/* strstr() limited to one line (the sanitizers' strstr measures the whole
 * haystack on every call, which makes a scan of a big file quadratic). */
static const char *line_find(const char *p, const char *needle)
{
    size_t n = strlen(needle);
    for (; *p && *p != '\n'; p++)
        if (*p == *needle && strncmp(p, needle, n) == 0) return p;
    return NULL;
}

/* Checks text: valid JSON lines, each (t, i) once; marks seen[]. Returns
 * the number of lines, or -1. */
static int check_load_text(const char *text, unsigned char *seen, int lines)
{
    const char *p = text;
    int n = 0;
    while (*p) {
        const char *tp, *ip;
        long t, i;
        if (!json_line_ok(p)) {
            fprintf(stderr, "bad line: %.200s\n", p);
            return -1;
        }
        tp = line_find(p, "\"t\":");
        ip = line_find(p, "\"i\":");
        if (!tp || !ip) return -1;
        t = strtol(tp + 4, NULL, 10);
        i = strtol(ip + 4, NULL, 10);
        if (t < 0 || t >= LOAD_THREADS || i < 0 || i >= lines) return -1;
        if (seen[t * lines + i]++) {
            fprintf(stderr, "duplicate line t=%ld i=%ld\n", t, i);
            return -1;
        }
        p = strchr(p, '\n') + 1;
        n++;
    }
    return n;
}

static void load_test(int mode)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    log_stats st;
    unsigned char *seen;
    char *text;
    int total = LOAD_THREADS * LOAD_LINES;
    const char *path = mode == LOG_MODE_ASYNC ? "load_async.log" : "load_sync.log";
    unlink(path);
    memset(&s, 0, sizeof s);
    s.kind = LOG_SINK_FILE;
    s.path = path;
    o = base_opts(&s, 1);
    o.now = NULL;
    o.mode = mode;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    run_load(lg, LOAD_LINES);
    log_flush(lg);
    log_get_stats(lg, &st);
    CHECK_UINT(st.lines, ==, (uint64_t)total);
    CHECK_UINT(st.write_errors, ==, 0);
    CHECK_UINT(st.dropped, ==, 0);
    log_destroy(lg);
    text = read_file(path, NULL);
    REQUIRE(text != NULL);
    seen = (unsigned char *)calloc((size_t)total, 1);
    CHECK_INT(check_load_text(text, seen, LOAD_LINES), ==, total);
    free(seen);
    free(text);
    unlink(path);
}

TEST(threads_sync_no_line_lost_or_interleaved) { load_test(LOG_MODE_SYNC); }
TEST(threads_async_no_line_lost_or_interleaved) { load_test(LOG_MODE_ASYNC); }

static void rotation_test(int mode)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    log_stats st;
    unsigned char *seen;
    int total = LOAD_THREADS * LOAD_LINES, got = 0, files = 0, k;
    const char *path = mode == LOG_MODE_ASYNC ? "rot_async.log" : "rot_sync.log";
    char name[64];
    uint64_t limit = (uint64_t)total * 170 / 6; /* about 6 files' worth */
    for (k = 0; k <= 40; k++) {
        snprintf(name, sizeof name, k ? "%s.%d" : "%s", path, k);
        unlink(name);
    }
    memset(&s, 0, sizeof s);
    s.kind = LOG_SINK_FILE;
    s.path = path;
    s.rotate_bytes = limit;
    s.keep = 40;
    o = base_opts(&s, 1);
    o.now = NULL;
    o.mode = mode;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    run_load(lg, LOAD_LINES);
    log_flush(lg);
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, >=, 3);
    CHECK_UINT(st.write_errors, ==, 0);
    seen = (unsigned char *)calloc((size_t)total, 1);
    for (k = 0; k <= 40; k++) {
        struct stat sb;
        char *text;
        int n;
        snprintf(name, sizeof name, k ? "%s.%d" : "%s", path, k);
        if (stat(name, &sb) != 0) continue;
        files++;
        CHECK_UINT((uint64_t)sb.st_size, <=, limit);
        text = read_file(name, NULL);
        REQUIRE(text != NULL);
        n = check_load_text(text, seen, LOAD_LINES);
        CHECK_INT(n, >, 0);
        got += n;
        free(text);
        unlink(name);
    }
    CHECK_INT(files, ==, (int)st.rotations + 1);
    CHECK_INT(got, ==, total);
    free(seen);
}

TEST(rotation_under_load_sync) { rotation_test(LOG_MODE_SYNC); }
TEST(rotation_under_load_async) { rotation_test(LOG_MODE_ASYNC); }

TEST(rotation_keeps_n_files_and_daily)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    char *text;
    int i;
    unlink("keep.log");
    for (i = 1; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "keep.log.%d", i);
        unlink(name);
    }
    memset(&s, 0, sizeof s);
    s.kind = LOG_SINK_FILE;
    s.path = "keep.log";
    s.rotate_bytes = 100; /* lines are 74 bytes: one per file */
    s.keep = 3;
    o = base_opts(&s, 1);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < 6; i++) log_info(lg, "rotating", LOG_INT("n", i));
    log_destroy(lg);
    text = read_file("keep.log", NULL);
    CHECK(text && strstr(text, "\"n\":5"));
    free(text);
    text = read_file("keep.log.1", NULL);
    CHECK(text && strstr(text, "\"n\":4"));
    free(text);
    text = read_file("keep.log.3", NULL);
    CHECK(text && strstr(text, "\"n\":2"));
    free(text);
    CHECK(access("keep.log.4", F_OK) != 0);
    for (i = 0; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, i ? "keep.log.%d" : "keep.log", i);
        unlink(name);
    }

    /* daily: the first line of a new (local, here UTC) day starts a new file */
    unlink("daily.log");
    unlink("daily.log.1");
    memset(&s, 0, sizeof s);
    s.kind = LOG_SINK_FILE;
    s.path = "daily.log";
    s.rotate_daily = 1;
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    __atomic_store_n(&clock_value, 1714607999000000000LL, __ATOMIC_RELAXED); /* 23:59:59 */
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "late");
    __atomic_store_n(&clock_value, 1714608001000000000LL, __ATOMIC_RELAXED); /* 00:00:01 */
    log_info(lg, "early");
    log_destroy(lg);
    __atomic_store_n(&clock_value, T0, __ATOMIC_RELAXED);
    text = read_file("daily.log.1", NULL);
    CHECK(text && strstr(text, "late") && !strstr(text, "early"));
    free(text);
    text = read_file("daily.log", NULL);
    CHECK(text && strstr(text, "\"time\":\"2024-05-02T00:00:01.000Z\"") && !strstr(text, "late"));
    free(text);
    unlink("daily.log");
    unlink("daily.log.1");
}

/* ---- async specifics: order, multi-format, drop and block policies ------------------- */

TEST(async_order_and_formats)
{
    capture c;
    log_sink s[2];
    log_options o;
    log_logger *lg;
    char *text, *out, *p;
    int i, n = TEST_SANITIZED ? 2000 : 20000;
    unlink("async_fmt.log");
    cap_init(&c);
    memset(&s[0], 0, sizeof s[0]);
    s[0].kind = LOG_SINK_FILE;
    s[0].path = "async_fmt.log";
    s[1] = cap_sink(&c, LOG_FORMAT_PRETTY);
    s[1].level = LOG_LEVEL_WARN;
    o = base_opts(s, 2);
    o.mode = LOG_MODE_ASYNC;
    o.ring_bytes = 64 << 10; /* small: laps the ring many times */
    o.max_line = 4096;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < n; i++) {
        if (i % 100 == 0) {
            char blob[3000]; /* multi-slot records around the ring's end */
            memset(blob, 'a' + i % 26, sizeof blob - 1);
            blob[sizeof blob - 1] = 0;
            log_warn(lg, "big", LOG_INT("i", i), LOG_STR("blob", blob));
        } else {
            log_info(lg, "seq", LOG_INT("i", i));
        }
    }
    log_flush(lg);
    text = read_file("async_fmt.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, n);
    for (i = 0, p = text; i < n && p; i++) { /* in order */
        char want[32];
        snprintf(want, sizeof want, "\"i\":%d", i);
        p = strstr(p, want);
        CHECK(p != NULL);
    }
    out = cap_take(&c);
    CHECK_INT(count_lines(out), ==, n / 100);
    free(out);
    free(text);
    log_destroy(lg);
    cap_free(&c);
    unlink("async_fmt.log");
}

/* A callback sink that blocks until released. */
static int gate_open;
static capture gate_cap;
static void gate_cb(void *ud, int level, const char *line, size_t len)
{
    while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE)) snooze_us(200);
    cap_cb(ud, level, line, len);
}

typedef struct policy_arg {
    log_logger *lg;
    int n, done;
} policy_arg;

static void *policy_thread(void *p)
{
    policy_arg *a = (policy_arg *)p;
    int i;
    for (i = 0; i < a->n; i++) log_info(a->lg, "fill", LOG_INT("i", i));
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *fatal_thread(void *p)
{
    policy_arg *a = (policy_arg *)p;
    log_fatal(a->lg, "never dropped");
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static log_options gated_opts(log_sink *s, int policy)
{
    log_options o;
    cap_init(&gate_cap);
    *s = cap_sink(&gate_cap, LOG_FORMAT_JSON);
    s->callback = gate_cb;
    o = base_opts(s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.full_policy = policy;
    o.ring_bytes = 64 << 10; /* 256 slots */
    o.max_line = 1024;
    return o;
}

TEST(drop_policy_counts_and_reports)
{
    log_sink s;
    log_options o = gated_opts(&s, LOG_FULL_DROP);
    log_logger *lg;
    log_stats st;
    policy_arg a;
    pthread_t th;
    char *out, *p;
    uint64_t reported = 0, fills = 0;
    __atomic_store_n(&gate_open, 0, __ATOMIC_RELEASE);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    a.lg = lg;
    a.n = 2000;
    a.done = 0;
    pthread_create(&th, NULL, policy_thread, &a);
    pthread_join(th, NULL); /* never blocks: full means dropped */
    log_get_stats(lg, &st);
    CHECK_UINT(st.dropped, >, 0);
    CHECK_UINT(st.dropped, <, 2000);
    /* a fatal line on the full ring waits instead of being dropped */
    a.n = 0;
    a.done = 0;
    pthread_create(&th, NULL, fatal_thread, &a);
    snooze_us(20000);
    CHECK_INT(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), ==, 0);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    log_flush(lg);
    log_destroy(lg); /* the writer reports before it stops */
    out = cap_take(&gate_cap);
    CHECK_INT(json_lines_ok(out), >, 0);
    for (p = out; (p = strstr(p, "\"msg\":\"log: ring full, lines dropped\",\"dropped\":")) != NULL; p++)
        reported += strtoull(p + strlen("\"msg\":\"log: ring full, lines dropped\",\"dropped\":"), NULL, 10);
    for (p = out; (p = strstr(p, "\"msg\":\"fill\"")) != NULL; p++) fills++;
    CHECK_UINT(reported, ==, st.dropped);
    CHECK_UINT(fills + st.dropped, ==, 2000);
    CHECK(strstr(out, "\"level\":\"warn\",\"msg\":\"log: ring full") != NULL);
    CHECK(strstr(out, "\"level\":\"fatal\",\"msg\":\"never dropped\"") != NULL);
    free(out);
    cap_free(&gate_cap);
}

TEST(block_policy_waits_and_loses_nothing)
{
    log_sink s;
    log_options o = gated_opts(&s, LOG_FULL_BLOCK);
    log_logger *lg;
    log_stats st;
    policy_arg a;
    pthread_t th;
    char *out;
    __atomic_store_n(&gate_open, 0, __ATOMIC_RELEASE);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    a.lg = lg;
    a.n = 2000;
    a.done = 0;
    pthread_create(&th, NULL, policy_thread, &a);
    snooze_us(50000);
    CHECK_INT(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), ==, 0); /* blocked on the full ring */
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    log_flush(lg);
    log_get_stats(lg, &st);
    CHECK_UINT(st.dropped, ==, 0);
    CHECK_UINT(st.lines, ==, 2000);
    out = cap_take(&gate_cap);
    CHECK_INT(json_lines_ok(out), ==, 2000);
    free(out);
    log_destroy(lg);
    cap_free(&gate_cap);
}

/* ---- fatal, exit and fork ------------------------------------------------------------ */

static capture slow_cap;
static void slow_cb(void *ud, int level, const char *line, size_t len)
{
    snooze_us(300);
    cap_cb(ud, level, line, len);
}

TEST(fatal_flushes_before_returning)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    int i;
    cap_init(&slow_cap);
    s = cap_sink(&slow_cap, LOG_FORMAT_JSON);
    s.callback = slow_cb;
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < 50; i++) log_info(lg, "before");
    log_fatal(lg, "the end");
    pthread_mutex_lock(&slow_cap.mu);
    CHECK_INT(slow_cap.lines, ==, 51);
    CHECK(slow_cap.buf && strstr(slow_cap.buf, "\"level\":\"fatal\",\"msg\":\"the end\"") != NULL);
    pthread_mutex_unlock(&slow_cap.mu);
    log_destroy(lg);
    cap_free(&slow_cap);
}

static log_logger *exit_logger; /* reachable, so leak checkers stay quiet */

/* In a child process: an async file logger, n lines, then `how` ends it. */
static int child_logs_then(const char *path, int n, int how)
{
    pid_t pid;
    int status = -1;
    unlink(path);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        log_sink s;
        log_options o;
        int i;
        memset(&s, 0, sizeof s);
        s.kind = LOG_SINK_FILE;
        s.path = path;
        o = base_opts(&s, 1);
        o.mode = LOG_MODE_ASYNC;
        o.writer_sleep_us = 1000000; /* an idle writer would sleep long */
        if (log_create(&exit_logger, &o) != 0) _exit(99);
        for (i = 0; i < n; i++) log_info(exit_logger, "child line", LOG_INT("i", i));
        if (how == 0) {
            log_fatal(exit_logger, "fatal then _exit");
            _exit(3);
        }
        exit(0); /* atexit flush */
    }
    if (pid < 0) return -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

TEST(fatal_then_exit_loses_nothing)
{
    char *text;
    int status = child_logs_then("fatal_exit.log", 1000, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    text = read_file("fatal_exit.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, 1001);
    CHECK(strstr(text, "\"level\":\"fatal\",\"msg\":\"fatal then _exit\"}\n") != NULL);
    free(text);
    unlink("fatal_exit.log");
}

TEST(exit_flushes_async_lines)
{
    char *text;
    int status = child_logs_then("at_exit.log", 1000, 1);
    CHECK(WIFEXITED(status));
    text = read_file("at_exit.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, 1000);
    free(text);
    unlink("at_exit.log");
}

TEST(fork_child_writes_synchronously)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    pid_t pid;
    int i;
    char *text, want[64];
    unlink("fork.log");
    memset(&s, 0, sizeof s);
    s.kind = LOG_SINK_FILE;
    s.path = "fork.log";
    s.format = LOG_FORMAT_PINO;
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "parent before");
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        for (i = 0; i < 10; i++) log_info(lg, "from child", LOG_INT("i", i));
        log_flush(lg);
        exit(0); /* must not wait for the parent's writer */
    }
    REQUIRE(pid > 0);
    log_info(lg, "parent after");
    CHECK(child_ok(pid));
    log_flush(lg);
    text = read_file("fork.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, 12);
    snprintf(want, sizeof want, "\"pid\":%d,", (int)pid);
    CHECK(strstr(text, want) != NULL); /* the child's own pid */
    CHECK(strstr(text, "parent after") != NULL);
    free(text);
    log_destroy(lg);
    unlink("fork.log");
}

/* ---- failures are contained ---------------------------------------------------------- */

static void error_case(int mode, int kind, const char *path, int fd, int want_err)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    log_stats st;
    int i;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.path = path;
    s.fd = fd;
    o = base_opts(&s, 1);
    o.mode = mode;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < 10; i++) log_error(lg, "into the void", LOG_INT("i", i));
    log_flush(lg);
    log_get_stats(lg, &st);
    CHECK_UINT(st.write_errors, ==, 10);
    CHECK_UINT(st.lines, ==, 0);
    CHECK_INT(st.last_error, ==, want_err);
    log_destroy(lg);
}

TEST(full_disk_and_closed_fd_are_counted)
{
    int m, fd, p[2];
    for (m = LOG_MODE_SYNC; m <= LOG_MODE_ASYNC; m++) {
        if (access("/dev/full", W_OK) == 0) error_case(m, LOG_SINK_FILE, "/dev/full", 0, -ENOSPC);
        fd = open("/dev/null", O_WRONLY);
        REQUIRE(fd >= 0);
        close(fd); /* a descriptor that is no longer open */
        error_case(m, LOG_SINK_FD, NULL, fd, -EBADF);
        /* a pipe whose reader is gone: EPIPE, and SIGPIPE must not kill us */
        REQUIRE_INT(pipe(p), ==, 0);
        close(p[0]);
        error_case(m, LOG_SINK_FD, NULL, p[1], -EPIPE);
        close(p[1]);
    }
}

TEST(stats_count_lines_and_bytes)
{
    capture c;
    log_sink s[2];
    log_options o;
    log_logger *lg;
    log_stats st;
    char *out;
    cap_init(&c);
    s[0] = cap_sink(&c, LOG_FORMAT_JSON);
    s[1] = cap_sink(&c, LOG_FORMAT_LOGFMT);
    s[1].level = LOG_LEVEL_ERROR;
    o = base_opts(s, 2);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "a");
    log_error(lg, "b");
    log_get_stats(lg, &st);
    out = cap_take(&c);
    CHECK_UINT(st.lines, ==, 3);
    CHECK_UINT(st.bytes, ==, strlen(out));
    CHECK_UINT(st.write_errors, ==, 0);
    CHECK_UINT(st.rotations, ==, 0);
    CHECK_INT(st.last_error, ==, 0);
    free(out);
    log_destroy(lg);
    cap_free(&c);
}

/* ---- more helpers ---------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = sec;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    utimensat(AT_FDCWD, path, ts, 0);
}

/* Removes path and path.1 .. path.n. */
static void unlink_rotated(const char *path, int n)
{
    char name[128];
    int k;
    for (k = 0; k <= n; k++) {
        snprintf(name, sizeof name, k ? "%s.%d" : "%s", path, k);
        unlink(name);
    }
}

static void set_clock(int64_t ns)
{
    __atomic_store_n(&clock_value, ns, __ATOMIC_RELAXED);
}

/* Runs fn(arg) in a child process. Returns its exit status, or -1 when it
 * died of a signal or did not end within limit_ms (then it is killed). */
static int run_child(int (*fn)(void *), void *arg, int limit_ms)
{
    pid_t pid;
    int status = 0;
    double end;
    fflush(NULL);
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(fn(arg));
    end = test_now_ms() + limit_ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return -1;
        if (test_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "child process still running after %d ms: killed\n", limit_ms);
            return -1;
        }
        snooze_us(2000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Length of the valid UTF-8 sequence at s, bounded by e (0 if invalid). */
static size_t utf8_seq(const unsigned char *s, const unsigned char *e)
{
    unsigned char tmp[4] = {0, 0, 0, 0};
    size_t n = (size_t)(e - s) < 4 ? (size_t)(e - s) : 4;
    memcpy(tmp, s, n);
    return js_utf8(tmp); /* the zeros past e fail as continuation bytes */
}

/* 1 when [p, p+n) is valid UTF-8 without C0 controls, DEL or C1 controls:
 * nothing in it can steer a terminal. */
static int text_clean(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p, *e = s + n;
    while (s < e) {
        if (*s < 0x20 || *s == 0x7f) return 0;
        if (*s >= 0x80) {
            size_t k = utf8_seq(s, e);
            if (!k || (s[0] == 0xc2 && s[1] < 0xa0)) return 0;
            s += k;
        } else {
            s++;
        }
    }
    return 1;
}

/* 1 when the JSON object that starts the line has the top-level key `key`. */
static int json_has_key(const char *line, const char *key)
{
    const char *p = js_ws(line + 1);
    size_t kl = strlen(key);
    if (*line != '{' || *p == '}') return 0;
    for (;;) {
        const char *k = p, *e = js_string(p);
        if (!e) return 0;
        if ((size_t)(e - k) == kl + 2 && strncmp(k + 1, key, kl) == 0) return 1;
        p = js_ws(e);
        if (*p++ != ':') return 0;
        p = js_value(p, 1);
        if (!p) return 0;
        p = js_ws(p);
        if (*p++ != ',') return 0;
        p = js_ws(p);
    }
}

/* rename() as log.h sees it (this program's definition comes first):
 * rename_hook.path names a file whose rename fails with EACCES (fail) or
 * first waits until the test forked (pause). */
static struct {
    const char *path;
    int fail, pause, entered, forked;
} rename_hook;

int rename(const char *from, const char *to)
{
    const char *p = __atomic_load_n(&rename_hook.path, __ATOMIC_ACQUIRE);
    if (p && strcmp(from, p) == 0) {
        if (__atomic_load_n(&rename_hook.fail, __ATOMIC_ACQUIRE)) {
            errno = EACCES;
            return -1;
        }
        if (__atomic_load_n(&rename_hook.pause, __ATOMIC_ACQUIRE)) {
            double end = test_now_ms() + 3000;
            __atomic_store_n(&rename_hook.entered, 1, __ATOMIC_RELEASE);
            while (!__atomic_load_n(&rename_hook.forked, __ATOMIC_ACQUIRE) && test_now_ms() < end)
                snooze_us(1000);
            snooze_us(100000); /* the fork() is under way now */
        }
    }
    return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

/* ---- truncation keeps the head and the message ------------------------------------- */

TEST(truncation_keeps_head_and_message)
{
    capture c[4];
    log_sink s[4];
    log_options o;
    log_logger *lg, *child;
    log_field bf;
    char big[3000], msg300[301], *out[4], want[512];
    int f, k;
    cap_sinks(c, s, all_formats, 4);
    o = base_opts(s, 4);
    o.max_line = 512;
    o.name = "api";
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memset(msg300, 'y', 300);
    msg300[300] = 0;
    bf = LOG_STR("bound", big);
    REQUIRE_INT(log_child(lg, &child, &bf, 1), ==, 0);
    for (k = 0; k < 3; k++) {
        const char *m = k == 2 ? msg300 : "m";
        if (k == 0) /* a call's field too long */
            log_info(lg, "m", LOG_INT("before", 1), LOG_STR("big", big), LOG_INT("after", 2));
        else if (k == 1) /* a bound field too long */
            log_info(child, "m", LOG_INT("after", 2));
        else /* a long message (that fits) and a field too long */
            log_info(lg, msg300, LOG_STR("big", big), LOG_INT("after", 2));
        for (f = 0; f < 4; f++) {
            out[f] = cap_take(&c[f]);
            CHECK_UINT(strlen(out[f]), <=, 512);
            CHECK_INT(count_lines(out[f]), ==, 1);
            CHECK(strstr(out[f], "after") == NULL);
        }
        CHECK_INT(json_lines_ok(out[0]), ==, 1);
        snprintf(want, sizeof want, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\","
                 "\"name\":\"api\",\"msg\":\"%s\",", m);
        CHECK(strncmp(out[0], want, strlen(want)) == 0);
        CHECK(strstr(out[0], "xxx...\",\"truncated\":true}\n") != NULL);
        /* pino: the message is last, whole, after the cut fields */
        CHECK_INT(json_lines_ok(out[1]), ==, 1);
        CHECK(json_has_key(out[1], "msg"));
        CHECK(strncmp(out[1], "{\"level\":30,\"time\":1714564800123,\"pid\":", 38) == 0);
        snprintf(want, sizeof want, "xxx...\",\"msg\":\"%s\",\"truncated\":true}\n", m);
        CHECK(strstr(out[1], want) != NULL);
        if (k == 0) CHECK(strstr(out[1], "\"before\":1,\"big\":\"xxx") != NULL);
        snprintf(want, sizeof want, "time=2024-05-01T12:00:00.123Z level=info name=api msg=%s ", m);
        CHECK(strncmp(out[2], want, strlen(want)) == 0);
        CHECK(strstr(out[2], "xxx... truncated=true\n") != NULL);
        snprintf(want, sizeof want, "2024-05-01 12:00:00.123 INFO  [api] %s ", m);
        CHECK(strncmp(out[3], want, strlen(want)) == 0);
        CHECK(strstr(out[3], "xxx... [truncated]\n") != NULL);
        for (f = 0; f < 4; f++) free(out[f]);
    }
    /* pino: a message that ends in escapes still fits in the room kept for it */
    {
        char esc[64], want_msg[400], *p = want_msg;
        size_t fill;
        memset(esc, '\n', sizeof esc - 1);
        esc[sizeof esc - 1] = 0;
        for (k = 0; k < (int)sizeof esc - 1; k++, p += 2) memcpy(p, "\\n", 2);
        *p = 0;
        for (fill = 250; fill < 420; fill++) { /* the field cut at every offset */
            log_info(lg, esc, LOG_STRN("big", big, fill));
            out[1] = cap_take(&c[1]);
            snprintf(want, sizeof want, ",\"msg\":\"%s\"", want_msg);
            CHECK(strstr(out[1], want) != NULL);
            CHECK_INT(json_lines_ok(out[1]), ==, 1);
            free(out[1]);
            for (f = 0; f < 4; f++) free(cap_take(&c[f]));
        }
    }
    log_destroy(child);
    log_destroy(lg);
    cap_free_all(c, 4);
}

/* Wherever the cut falls, no UTF-8 sequence is split, in any format. */
TEST(truncation_keeps_utf8_whole)
{
    capture c[4];
    log_sink s[4];
    log_options o;
    log_logger *lg;
    char text[1200], *out;
    int f, shift, i;
    cap_sinks(c, s, all_formats, 4);
    o = base_opts(s, 4);
    o.max_line = 512;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (shift = 0; shift < 8; shift++) {
        size_t n = 0;
        for (i = 0; i < shift; i++) text[n++] = 'a';
        while (n + 9 < sizeof text - 1) { /* e-acute, euro, grinning face */
            memcpy(text + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
            n += 9;
        }
        text[n] = 0;
        log_info(lg, text);
        log_info(lg, "m", LOG_STR("v", text));
        for (f = 0; f < 4; f++) {
            const char *p;
            out = cap_take(&c[f]);
            CHECK_INT(count_lines(out), ==, 2);
            for (p = out; *p; p = strchr(p, '\n') + 1) {
                size_t len = (size_t)(strchr(p, '\n') - p);
                CHECK_UINT(len + 1, <=, 512);
                CHECK(len > 400); /* cut near the limit, not far before it */
                if (f <= 1)
                    CHECK(json_line_ok(p));
                else
                    CHECK(text_clean(p, len));
            }
            free(out);
        }
    }
    log_destroy(lg);
    cap_free_all(c, 4);
}

/* ---- terminals: C1 controls, colour detection ------------------------------------------ */

TEST(c1_controls_escaped_for_terminals)
{
    static const int formats[3] = {LOG_FORMAT_JSON, LOG_FORMAT_LOGFMT, LOG_FORMAT_PRETTY};
    capture c[3];
    log_sink s[3];
    log_options o;
    log_logger *lg;
    char *out;
    cap_sinks(c, s, formats, 3);
    o = base_opts(s, 3);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    /* U+009B (C2 9B) is an 8-bit CSI: ESC [ to a terminal; U+00A0 is not a control */
    log_info(lg, "a\xc2\x9b" "31mred", LOG_STR("v", "\xc2\x9b" "2J"), LOG_STR("ok", "\xc2\xa0nbsp"),
             LOG_STR("k\xc2\x85", "\xc2\x80\xc2\x9f"));
    out = cap_take(&c[0]); /* JSON: valid characters, kept */
    CHECK_STR(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"a\xc2\x9b" "31mred\","
                   "\"v\":\"\xc2\x9b" "2J\",\"ok\":\"\xc2\xa0nbsp\",\"k\xc2\x85\":\"\xc2\x80\xc2\x9f\"}\n");
    CHECK_INT(json_lines_ok(out), ==, 1);
    free(out);
    out = cap_take(&c[1]); /* logfmt */
    CHECK_STR(out, "time=2024-05-01T12:00:00.123Z level=info msg=\"a\\u009b31mred\" v=\"\\u009b2J\" "
                   "ok=\xc2\xa0nbsp k__=\"\\u0080\\u009f\"\n");
    free(out);
    out = cap_take(&c[2]); /* pretty */
    CHECK_STR(out, "2024-05-01 12:00:00.123 INFO  a\\u009b31mred v=\"\\u009b2J\" ok=\xc2\xa0nbsp "
                   "k__=\"\\u0080\\u009f\"\n");
    free(out);
    log_destroy(lg);
    o.name = "x\xc2\x9b" "y"; /* the name is printed raw in pretty lines */
    CHECK_INT(log_create(&lg, &o), ==, -EINVAL);
    cap_free_all(c, 3);
}

/* A pseudo-terminal whose output is passed through as written. Returns the
 * master, or -1; *slave gets the terminal's descriptor. */
static int open_pty(int *slave)
{
    struct termios t;
    char *name;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || (name = ptsname(m)) == NULL) {
        close(m);
        return -1;
    }
    *slave = open(name, O_RDWR | O_NOCTTY);
    if (*slave < 0) {
        close(m);
        return -1;
    }
    if (tcgetattr(*slave, &t) == 0) { /* no "\n" -> "\r\n" */
        t.c_oflag &= ~(tcflag_t)OPOST;
        tcsetattr(*slave, TCSANOW, &t);
    }
    return m;
}

/* What the terminal shows, up to its first newline (waits up to 2 s). */
static void pty_read_line(int m, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap - 1) {
        struct pollfd pf;
        ssize_t r;
        pf.fd = m;
        pf.events = POLLIN;
        pf.revents = 0;
        if (poll(&pf, 1, 2000) <= 0) break;
        r = read(m, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (memchr(buf, '\n', n)) break;
    }
    buf[n] = 0;
}

static void set_env(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

TEST(pretty_colour_auto_on_a_terminal)
{
    static const struct { const char *no_color, *term; int colour; } cases[] = {
        {NULL, "xterm-256color", 1}, {"1", "xterm", 0}, {"", "xterm", 1},
        {NULL, "dumb", 0},           {NULL, NULL, 1},
    };
    static const char coloured[] = "\x1b[90m2024-05-01 12:00:00.123\x1b[0m \x1b[33mWARN \x1b[0m hi "
                                   "\x1b[36ma=\x1b[0m1\n";
    static const char plain[] = "2024-05-01 12:00:00.123 WARN  hi a=1\n";
    char *term0 = getenv("TERM") ? strdup(getenv("TERM")) : NULL;
    char *nc0 = getenv("NO_COLOR") ? strdup(getenv("NO_COLOR")) : NULL;
    char line[512], *text;
    log_sink s;
    log_options o;
    log_logger *lg;
    size_t i;
    int m, sl = -1, saved;
    m = open_pty(&sl);
    REQUIRE(m >= 0);
    fflush(stdout);
    saved = dup(1);
    REQUIRE(saved >= 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_env("NO_COLOR", cases[i].no_color);
        set_env("TERM", cases[i].term);
        memset(&s, 0, sizeof s);
        s.kind = LOG_SINK_STDOUT; /* fd 1: the terminal, for the moment */
        s.format = LOG_FORMAT_PRETTY;
        o = base_opts(&s, 1);
        dup2(sl, 1);
        if (log_create(&lg, &o) == 0) {
            log_warn(lg, "hi", LOG_INT("a", 1));
            log_destroy(lg);
        }
        dup2(saved, 1);
        pty_read_line(m, line, sizeof line);
        CHECK_STR(line, cases[i].colour ? coloured : plain);
    }
    close(saved);
    close(sl);
    close(m);
    /* a file is no terminal: no colour, TERM or not */
    set_env("NO_COLOR", NULL);
    set_env("TERM", "xterm");
    unlink("notty.log");
    s = file_sink("notty.log", LOG_FORMAT_PRETTY);
    s.color = LOG_COLOR_AUTO;
    o = base_opts(&s, 1);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_warn(lg, "hi", LOG_INT("a", 1));
    log_destroy(lg);
    text = read_file("notty.log", NULL);
    CHECK_STR(text, plain);
    free(text);
    unlink("notty.log");
    set_env("TERM", term0);
    set_env("NO_COLOR", nc0);
    free(term0);
    free(nc0);
}

/* ---- sinks: stdout/stderr, files ------------------------------------------------------- */

TEST(stdout_and_stderr_sinks)
{
    log_sink s[2];
    log_options o;
    log_logger *lg;
    char *out, *err;
    int mode;
    for (mode = LOG_MODE_SYNC; mode <= LOG_MODE_ASYNC; mode++) {
        int fo = open("std_out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open("std_err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int so, se, rc;
        REQUIRE(fo >= 0 && fe >= 0);
        fflush(stdout);
        fflush(stderr);
        so = dup(1);
        se = dup(2);
        dup2(fo, 1);
        dup2(fe, 2);
        memset(s, 0, sizeof s);
        s[0].kind = LOG_SINK_STDOUT;
        s[1].kind = LOG_SINK_STDERR;
        s[1].format = LOG_FORMAT_LOGFMT;
        s[1].level = LOG_LEVEL_WARN;
        o = base_opts(s, 2);
        o.mode = mode;
        rc = log_create(&lg, &o);
        if (rc == 0) {
            log_info(lg, "to stdout", LOG_INT("mode", mode));
            log_warn(lg, "to both");
            log_destroy(lg);
        }
        dup2(so, 1);
        dup2(se, 2);
        close(so);
        close(se);
        close(fo);
        close(fe);
        CHECK_INT(rc, ==, 0);
        out = read_file("std_out.txt", NULL);
        err = read_file("std_err.txt", NULL);
        CHECK_STR(out, mode == LOG_MODE_SYNC
                           ? "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"to stdout\",\"mode\":0}\n"
                             "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"warn\",\"msg\":\"to both\"}\n"
                           : "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"to stdout\",\"mode\":1}\n"
                             "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"warn\",\"msg\":\"to both\"}\n");
        CHECK_STR(err, "time=2024-05-01T12:00:00.123Z level=warn msg=\"to both\"\n");
        free(out);
        free(err);
    }
    unlink("std_out.txt");
    unlink("std_err.txt");
}

/* Exact files in both modes, every format. */
TEST(golden_file_sinks_sync_and_async)
{
    static const char *const paths[4] = {"g.json", "g.pino", "g.logfmt", "g.pretty"};
    char want[4][1024], *text;
    log_sink s[4];
    log_options o;
    log_logger *lg, *child;
    log_field b = LOG_STR("req", "r1");
    int mode, f;
    snprintf(want[0], sizeof want[0], "%s",
             "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"name\":\"svc\",\"msg\":\"hello\","
             "\"req\":\"r1\",\"k\":\"a b\",\"n\":1,\"f\":2.5}\n"
             "{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":\"error\",\"name\":\"svc\",\"msg\":\"w 2\"}\n");
    snprintf(want[1], sizeof want[1],
             "{\"level\":30,\"time\":1714564800123,\"pid\":%d,\"hostname\":\"box\",\"name\":\"svc\","
             "\"req\":\"r1\",\"k\":\"a b\",\"n\":1,\"f\":2.5,\"msg\":\"hello\"}\n"
             "{\"level\":50,\"time\":1714564800123,\"pid\":%d,\"hostname\":\"box\",\"name\":\"svc\","
             "\"msg\":\"w 2\"}\n", (int)getpid(), (int)getpid());
    snprintf(want[2], sizeof want[2], "%s",
             "time=2024-05-01T12:00:00.123Z level=info name=svc msg=hello req=r1 k=\"a b\" n=1 f=2.5\n"
             "time=2024-05-01T12:00:00.123Z level=error name=svc msg=\"w 2\"\n");
    snprintf(want[3], sizeof want[3], "%s",
             "2024-05-01 12:00:00.123 INFO  [svc] hello req=r1 k=\"a b\" n=1 f=2.5\n"
             "2024-05-01 12:00:00.123 ERROR [svc] w 2\n");
    for (mode = LOG_MODE_SYNC; mode <= LOG_MODE_ASYNC; mode++) {
        for (f = 0; f < 4; f++) {
            unlink(paths[f]);
            s[f] = file_sink(paths[f], f);
        }
        o = base_opts(s, 4);
        o.name = "svc";
        o.mode = mode;
        REQUIRE_INT(log_create(&lg, &o), ==, 0);
        REQUIRE_INT(log_child(lg, &child, &b, 1), ==, 0);
        log_info(child, "hello", LOG_STR("k", "a b"), LOG_INT("n", 1), LOG_FLOAT("f", 2.5));
        log_errorf(lg, "w %d", 2);
        log_destroy(child);
        log_destroy(lg);
        for (f = 0; f < 4; f++) {
            text = read_file(paths[f], NULL);
            CHECK_STR(text, want[f]);
            free(text);
            unlink(paths[f]);
        }
    }
}

/* O_APPEND: another writer's lines in between are never overwritten. */
TEST(file_sink_appends)
{
    log_sink s = file_sink("append.log", LOG_FORMAT_LOGFMT);
    log_options o;
    log_logger *lg;
    char *text;
    int mode;
    for (mode = LOG_MODE_SYNC; mode <= LOG_MODE_ASYNC; mode++) {
        int ext;
        write_text("append.log", "existing line\n");
        o = base_opts(&s, 1);
        o.mode = mode;
        REQUIRE_INT(log_create(&lg, &o), ==, 0);
        log_info(lg, "one");
        log_flush(lg);
        ext = open("append.log", O_WRONLY | O_APPEND);
        REQUIRE(ext >= 0);
        CHECK_INT(write(ext, "external\n", 9), ==, 9);
        close(ext);
        log_info(lg, "two");
        log_destroy(lg);
        text = read_file("append.log", NULL);
        CHECK_STR(text, "existing line\n"
                        "time=2024-05-01T12:00:00.123Z level=info msg=one\n"
                        "external\n"
                        "time=2024-05-01T12:00:00.123Z level=info msg=two\n");
        free(text);
    }
    unlink("append.log");
}

/* Lines far beyond the 4096-byte stack buffer, through the ring, whole. */
TEST(async_lines_longer_than_4096)
{
    log_sink s = file_sink("biglines.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    log_stats st;
    char *blob = (char *)malloc(50000), *text;
    const char *p;
    int i, n = 200;
    unlink("biglines.log");
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.max_line = 65536;
    o.ring_bytes = 1 << 20;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < n; i++) {
        size_t len = 4000 + (size_t)i * 997 % 45000;
        memset(blob, 'a' + i % 26, len);
        if (i % 3 == 0)
            log_info(lg, "big", LOG_INT("i", i), LOG_STRN("blob", blob, len));
        else
            log_infof(lg, "%.*s", (int)len, blob); /* a printf message past 1024 bytes */
    }
    log_flush(lg);
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.truncated, ==, 0);
    CHECK_UINT(st.lines, ==, (uint64_t)n);
    text = read_file("biglines.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, n);
    for (i = 0, p = text; i < n && *p; i++, p = strchr(p, '\n') + 1) {
        size_t len = 4000 + (size_t)i * 997 % 45000;
        const char *key = i % 3 == 0 ? "\"blob\":\"" : "\"msg\":\"";
        const char *v = line_find(p, key);
        REQUIRE(v != NULL);
        v += strlen(key);
        CHECK_UINT(strspn(v, "abcdefghijklmnopqrstuvwxyz"), ==, len);
        CHECK(v[0] == 'a' + i % 26);
    }
    free(text);
    free(blob);
    unlink("biglines.log");
}

/* ---- rotation: days, zones, restarts, failures ------------------------------------------ */

#define DAY1_2146 1714600000 /* 2024-05-01 21:46:40 UTC */
#define DAY2_0853 1714640000 /* 2024-05-02 08:53:20 UTC */
#define DAY2_2246 1714690000 /* 2024-05-02 22:46:40 UTC */

/* A restarted program finds yesterday's file: it is rotated before today's
 * first line; a file from earlier today, or an empty one, is kept. */
TEST(daily_rotation_after_a_restart)
{
    log_sink s = file_sink("restart.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    log_stats st;
    char *text;
    unlink_rotated("restart.log", 3);
    s.rotate_daily = 1;
    s.keep = 3;
    o = base_opts(&s, 1);
    /* yesterday's run left a line; its file was last written then */
    write_text("restart.log", "{\"msg\":\"day 1\"}\n");
    set_mtime("restart.log", DAY1_2146);
    set_clock((int64_t)DAY2_2246 * 1000000000);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "day 2");
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, ==, 1);
    text = read_file("restart.log.1", NULL);
    CHECK_STR(text, "{\"msg\":\"day 1\"}\n");
    free(text);
    text = read_file("restart.log", NULL);
    CHECK_STR(text, "{\"time\":\"2024-05-02T22:46:40.000Z\",\"level\":\"info\",\"msg\":\"day 2\"}\n");
    free(text);

    /* restarted later the same day: appends */
    set_mtime("restart.log", DAY2_0853);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "day 2 again");
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, ==, 0);
    text = read_file("restart.log", NULL);
    CHECK(text && count_lines(text) == 2);
    free(text);
    CHECK(access("restart.log.2", F_OK) != 0);

    /* an empty file is not rotated for its day, at a restart or at midnight */
    unlink_rotated("restart.log", 3);
    write_text("restart.log", "");
    set_mtime("restart.log", DAY1_2146);
    set_clock((int64_t)DAY1_2146 * 1000000000);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    set_clock((int64_t)DAY2_0853 * 1000000000); /* midnight passed without a line */
    log_info(lg, "first of day 2");
    set_clock((int64_t)DAY2_2246 * 1000000000);
    log_info(lg, "second of day 2");
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, ==, 0);
    CHECK(access("restart.log.1", F_OK) != 0);
    text = read_file("restart.log", NULL);
    CHECK(text && count_lines(text) == 2);
    free(text);
    unlink_rotated("restart.log", 3);
    set_clock(T0);
}

/* Local midnight in a zone 5:30 ahead of UTC (18:30 UTC), with size
 * rotation on as well; the UTC midnight is no day boundary there. */
TEST(daily_and_size_rotation_in_a_non_utc_zone)
{
    static const int64_t midnight = 1714588200; /* 2024-05-02 00:00 +05:30 */
    log_sink s = file_sink("zone.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    log_stats st;
    char *text, name[32];
    int i, mode, total;
    for (mode = LOG_MODE_SYNC; mode <= LOG_MODE_ASYNC; mode++) {
        unlink_rotated("zone.log", 10);
        setenv("TZ", "IST-5:30", 1);
        tzset();
        s.rotate_daily = 1;
        s.rotate_bytes = 250; /* two of these lines per file */
        s.keep = 10;
        o = base_opts(&s, 1);
        o.mode = mode;
        set_clock((midnight - 60) * 1000000000);
        REQUIRE_INT(log_create(&lg, &o), ==, 0);
        for (i = 0; i < 5; i++) log_info(lg, "before midnight", LOG_INT("n", i), LOG_STR("pad", "...."));
        log_flush(lg);
        set_clock((midnight + 1) * 1000000000);
        log_info(lg, "after midnight");
        set_clock((int64_t)(1714608000 + 60) * 1000000000); /* 00:01 UTC = 05:31 local */
        log_info(lg, "after UTC midnight");
        log_flush(lg);
        log_get_stats(lg, &st);
        log_destroy(lg);
        setenv("TZ", "UTC", 1);
        tzset();
        CHECK_UINT(st.rotations, ==, 3); /* 2 by size, 1 at local midnight */
        text = read_file("zone.log", NULL);
        CHECK(text && count_lines(text) == 2 && strstr(text, "after midnight") &&
              strstr(text, "after UTC midnight"));
        free(text);
        text = read_file("zone.log.1", NULL); /* the old day's last file: one line */
        CHECK(text && count_lines(text) == 1 && strstr(text, "\"n\":4"));
        free(text);
        for (i = 1, total = 0; i <= 3; i++) {
            snprintf(name, sizeof name, "zone.log.%d", i);
            text = read_file(name, NULL);
            CHECK(text != NULL);
            if (text) total += count_lines(text);
            CHECK(!text || strlen(text) <= 250);
            free(text);
        }
        CHECK_INT(total, ==, 5);
        CHECK(access("zone.log.4", F_OK) != 0);
        unlink_rotated("zone.log", 10);
    }
    set_clock(T0);
}

/* The live file cannot be renamed: lines keep going to it and the
 * history stays as it was, until a try after retry_ms succeeds. */
TEST(failed_rotation_keeps_history)
{
    log_sink s = file_sink("hist.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    log_stats st;
    char *text, name[32];
    int i;
    unlink_rotated("hist.log", 5);
    write_text("hist.log.1", "old 1\n");
    write_text("hist.log.2", "old 2\n");
    write_text("hist.log.3", "old 3\n");
    s.rotate_bytes = 100; /* every line wants a rotation */
    s.keep = 3;
    s.retry_ms = 60000;
    o = base_opts(&s, 1);
    __atomic_store_n(&rename_hook.fail, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.path, "hist.log", __ATOMIC_RELEASE);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    for (i = 0; i < 10; i++) log_info(lg, "cannot rotate", LOG_INT("i", i));
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, ==, 0);
    CHECK_UINT(st.lines, ==, 10);
    CHECK_UINT(st.write_errors, ==, 0);
    CHECK_INT(st.last_error, ==, -EACCES);
    for (i = 1; i <= 3; i++) {
        char want[16];
        snprintf(name, sizeof name, "hist.log.%d", i);
        snprintf(want, sizeof want, "old %d\n", i);
        text = read_file(name, NULL);
        CHECK_STR(text, want);
        free(text);
    }
    text = read_file("hist.log", NULL);
    CHECK_INT(json_lines_ok(text ? text : ""), ==, 10);
    free(text);

    /* the next try comes after retry_ms, and works once the cause is gone */
    s.retry_ms = 30;
    o = base_opts(&s, 1);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "still cannot");
    __atomic_store_n(&rename_hook.path, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.fail, 0, __ATOMIC_RELEASE);
    log_info(lg, "too early to try");
    snooze_us(60000);
    log_info(lg, "rotated");
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.rotations, ==, 1);
    text = read_file("hist.log.1", NULL);
    CHECK_INT(json_lines_ok(text ? text : ""), ==, 12);
    free(text);
    text = read_file("hist.log.2", NULL);
    CHECK_STR(text, "old 1\n");
    free(text);
    text = read_file("hist.log.3", NULL);
    CHECK_STR(text, "old 2\n");
    free(text);
    CHECK(access("hist.log.4", F_OK) != 0); /* the spare name is gone again */
    text = read_file("hist.log", NULL);
    CHECK(text && count_lines(text) == 1 && strstr(text, "\"msg\":\"rotated\""));
    free(text);
    unlink_rotated("hist.log", 5);
}

/* The file's directory vanishes: lines are counted as errors, opening is
 * retried no more often than retry_ms, and works again once it can. */
TEST(reopen_after_a_failed_open)
{
    log_sink s = file_sink("reopen.d/x.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    log_stats st;
    char *text;
    unlink("reopen.d/x.log");
    unlink("reopen.d/x.log.1");
    rmdir("reopen.d");
    REQUIRE_INT(mkdir("reopen.d", 0755), ==, 0);
    s.rotate_bytes = 100;
    s.retry_ms = 40;
    o = base_opts(&s, 1);
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "one");
    unlink("reopen.d/x.log");
    rmdir("reopen.d");
    log_info(lg, "two: rotation, the new file cannot be opened");
    log_info(lg, "three: too early to try again");
    log_get_stats(lg, &st);
    CHECK_UINT(st.write_errors, ==, 2);
    CHECK_INT(st.last_error, ==, -ENOENT);
    CHECK_INT(mkdir("reopen.d", 0755), ==, 0);
    log_info(lg, "four: still too early");
    snooze_us(60000);
    log_info(lg, "five");
    log_get_stats(lg, &st);
    log_destroy(lg);
    CHECK_UINT(st.write_errors, ==, 3);
    CHECK_UINT(st.lines, ==, 2);
    text = read_file("reopen.d/x.log", NULL);
    CHECK(text && count_lines(text) == 1 && strstr(text, "\"msg\":\"five\""));
    free(text);
    unlink("reopen.d/x.log");
    rmdir("reopen.d");
}

/* ---- fork: the parent owns rotation; fork() and rotation do not overlap ------------------ */

#define FORK_LINES 1500

static void log_paced(log_logger *lg, const char *who)
{
    int i;
    for (i = 0; i < FORK_LINES; i++) {
        log_info(lg, who, LOG_INT("i", i));
        if (i % 50 == 0) snooze_us(500);
    }
}

TEST(fork_child_never_rotates)
{
    log_sink s = file_sink("forkrot.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    unsigned char *seen = (unsigned char *)calloc(2 * FORK_LINES, 1);
    char name[64];
    int k, got = 0;
    pid_t pid;
    unlink_rotated("forkrot.log", 300);
    s.rotate_bytes = 1000; /* the parent's rotations push the child's file to ~.110 */
    s.keep = 300;
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        log_paced(lg, "child");
        log_flush(lg);
        _exit(0);
    }
    REQUIRE(pid > 0);
    log_paced(lg, "parent");
    CHECK(child_ok(pid));
    log_destroy(lg);
    for (k = 0; k <= 300; k++) {
        char *text;
        const char *p;
        snprintf(name, sizeof name, k ? "forkrot.log.%d" : "forkrot.log", k);
        text = read_file(name, NULL);
        if (!text) continue;
        for (p = text; *p; p = strchr(p, '\n') + 1) {
            const char *ip = line_find(p, "\"i\":");
            int who = line_find(p, "\"msg\":\"child\"") != NULL;
            long i = ip ? strtol(ip + 4, NULL, 10) : -1;
            CHECK(json_line_ok(p));
            if (i >= 0 && i < FORK_LINES && !seen[who * FORK_LINES + i]++) got++;
        }
        free(text);
    }
    CHECK_INT(got, ==, 2 * FORK_LINES);
    free(seen);
    unlink_rotated("forkrot.log", 300);
}

/* The child's descriptor is the live file, whatever the writer thread was
 * doing: fork() waits for a rotation under way. */
static int child_fd_is_live(log_logger *lg, const char *path)
{
    struct stat a, b;
    int fd = lg->core->sinks[0].fd;
    return fd >= 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino;
}

TEST(fork_waits_for_a_rotation_in_progress)
{
    log_sink s = file_sink("forkwait.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    double end;
    pid_t pid;
    unlink_rotated("forkwait.log", 4);
    s.rotate_bytes = 100;
    s.keep = 3;
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    log_info(lg, "first");
    log_flush(lg);
    __atomic_store_n(&rename_hook.entered, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.forked, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.pause, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.path, "forkwait.log", __ATOMIC_RELEASE);
    log_info(lg, "second: the writer rotates, and stops in rename()");
    for (end = test_now_ms() + 3000; !__atomic_load_n(&rename_hook.entered, __ATOMIC_ACQUIRE);)
        if (test_now_ms() > end) break;
    CHECK(__atomic_load_n(&rename_hook.entered, __ATOMIC_ACQUIRE));
    fflush(NULL);
    __atomic_store_n(&rename_hook.forked, 1, __ATOMIC_RELEASE);
    pid = fork();
    if (pid == 0) _exit(child_fd_is_live(lg, "forkwait.log") ? 0 : 1);
    __atomic_store_n(&rename_hook.path, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&rename_hook.pause, 0, __ATOMIC_RELEASE);
    REQUIRE(pid > 0);
    CHECK(child_ok(pid));
    log_destroy(lg);
    unlink_rotated("forkwait.log", 4);
}

/* ---- pipes: whole lines with several writers ---------------------------------------------- */

#define PIPE_PROCS 4
#define PIPE_LINES (TEST_SANITIZED ? 800 : 4000)

static int pipe_writer(void *arg)
{
    log_sink s = fd_sink(*(int *)arg);
    log_options o;
    log_logger *lg;
    char pad[301];
    int i;
    o = base_opts(&s, 1);
    o.now = NULL;
    o.mode = LOG_MODE_ASYNC;
    memset(pad, 'p', 300);
    pad[300] = 0;
    if (log_create(&lg, &o) != 0) return 1;
    for (i = 0; i < PIPE_LINES; i++)
        log_info(lg, "pipe line", LOG_INT("pid", (long long)getpid()), LOG_INT("i", i), LOG_STR("pad", pad));
    log_destroy(lg);
    return 0;
}

TEST(async_batches_stay_whole_on_a_shared_pipe)
{
    pid_t pids[PIPE_PROCS];
    size_t len = 0, cap = 1 << 20;
    char *buf = (char *)malloc(cap);
    int p[2], k, status;
    REQUIRE_INT(pipe(p), ==, 0);
    fflush(NULL);
    for (k = 0; k < PIPE_PROCS; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            close(p[0]);
            _exit(pipe_writer(&p[1]));
        }
    }
    close(p[1]);
    for (;;) { /* a slow reader: the pipe is full, writers wait inside writes */
        ssize_t r;
        if (cap - len < 65536) buf = (char *)realloc(buf, cap *= 2);
        r = read(p[0], buf + len, 16384);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        snooze_us(100);
    }
    buf[len] = 0;
    close(p[0]);
    for (k = 0; k < PIPE_PROCS; k++) {
        status = -1;
        if (pids[k] > 0) waitpid(pids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_INT(json_lines_ok(buf), ==, PIPE_PROCS * PIPE_LINES);
    free(buf);
}

/* ---- bounded waits: fatal, destroy, exit with a sink that takes nothing -------------------- */

static int stuck_sink_child(void *arg)
{
    log_sink s;
    log_options o;
    log_logger *lg;
    log_stats st;
    double t;
    int p[2], q[2], i;
    (void)arg;
    if (pipe(p) != 0 || pipe(q) != 0) return 10;
    /* a pipe nobody reads: the writer blocks in write() for good */
    s = fd_sink(p[1]);
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.full_policy = LOG_FULL_DROP;
    o.exit_timeout_ms = 300;
    if (log_create(&lg, &o) != 0) return 11;
    for (i = 0; i < 2000; i++) log_info(lg, "fill the pipe", LOG_INT("i", i));
    t = test_now_ms();
    log_fatal(lg, "crash");
    t = test_now_ms() - t;
    if (t < 250 || t > 3000) return 2;
    t = test_now_ms();
    log_destroy(lg);
    if (test_now_ms() - t > 3000) return 3;
    /* the ring is full as well: a fatal line waits for room, not forever */
    s.fd = q[1];
    o.ring_bytes = 64 << 10;
    o.max_line = 1024;
    if (log_create(&lg, &o) != 0) return 12;
    for (i = 0; i < 5000; i++) log_info(lg, "fill the ring", LOG_INT("i", i));
    t = test_now_ms();
    log_fatal(lg, "no room");
    if (test_now_ms() - t > 3000) return 4;
    log_get_stats(lg, &st);
    if (st.dropped < 1) return 5;
    t = test_now_ms();
    log_destroy(lg);
    if (test_now_ms() - t > 3000) return 6;
    return 0;
}

TEST(fatal_and_destroy_give_up_on_a_stuck_sink)
{
    CHECK_INT(run_child(stuck_sink_child, NULL, 30000), ==, 0);
}

static int stuck_exit_child(void *arg)
{
    log_sink s;
    log_options o;
    int p[2], i, no_atexit = *(int *)arg;
    if (pipe(p) != 0) return 10;
    s = fd_sink(p[1]);
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.full_policy = LOG_FULL_DROP;
    o.no_atexit = no_atexit;
    o.exit_timeout_ms = no_atexit ? 60000 : 300;
    if (log_create(&exit_logger, &o) != 0) return 11;
    for (i = 0; i < 2000; i++) log_info(exit_logger, "fill the pipe", LOG_INT("i", i));
    exit(0);
}

TEST(exit_timeout_and_no_atexit)
{
    int no = 0, yes = 1;
    double t = test_now_ms();
    CHECK_INT(run_child(stuck_exit_child, &no, 30000), ==, 0);
    t = test_now_ms() - t;
    CHECK(t >= 250); /* the exit flush waited, */
    CHECK(t < 5000); /* but only exit_timeout_ms */
    t = test_now_ms();
    CHECK_INT(run_child(stuck_exit_child, &yes, 30000), ==, 0);
    CHECK(test_now_ms() - t < 5000); /* no_atexit: no wait at all (60 s otherwise) */
}

/* ---- a write that fails inside a line --------------------------------------------------- */

static int partial_write_child(void *arg)
{
    log_sink s = file_sink("partial.log", LOG_FORMAT_JSON);
    log_options o;
    log_logger *lg;
    struct rlimit rl, small;
    int i;
    signal(SIGXFSZ, SIG_IGN);
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0) return 10;
    o = base_opts(&s, 1);
    o.mode = *(int *)arg;
    if (log_create(&lg, &o) != 0) return 11;
    small = rl;
    small.rlim_cur = 200; /* room for two lines and part of a third */
    if (setrlimit(RLIMIT_FSIZE, &small) != 0) return 12;
    for (i = 0; i < 5; i++) log_info(lg, "before the limit", LOG_INT("i", i));
    log_flush(lg);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 13; /* room again */
    log_info(lg, "after");
    log_destroy(lg);
    return 0;
}

TEST(a_line_cut_by_a_write_error_is_ended)
{
    char *text;
    const char *last;
    int mode;
    for (mode = LOG_MODE_SYNC; mode <= LOG_MODE_ASYNC; mode++) {
        unlink("partial.log");
        CHECK_INT(run_child(partial_write_child, &mode, 20000), ==, 0);
        text = read_file("partial.log", NULL);
        REQUIRE(text != NULL);
        CHECK_INT(count_lines(text), ==, 4); /* 2 lines, the fragment, "after" */
        CHECK(json_line_ok(text));
        CHECK(json_line_ok(strchr(text, '\n') + 1));
        last = strrchr(text, '\n');
        while (last > text && last[-1] != '\n') last--;
        CHECK(json_line_ok(last) && strstr(last, "\"msg\":\"after\""));
        CHECK_UINT(strlen(text) - strlen(last), ==, 201); /* up to the limit, and its '\n' */
        free(text);
    }
    unlink("partial.log");
}

/* ---- atexit handlers that run after log.h's ---------------------------------------------- */

static void late_lines(void)
{
    int i;
    for (i = 0; i < 1000; i++) log_info(exit_logger, "from atexit", LOG_INT("i", i));
}

/* Run in a fresh process image (see main): atexit() comes before the first
 * log_create(), so this handler runs after log.h's exit flush. */
static int scenario_late_atexit(void)
{
    log_sink s = file_sink(getenv("TEST_LOG_PATH"), LOG_FORMAT_JSON);
    log_options o;
    atexit(late_lines);
    o = base_opts(&s, 1);
    o.mode = LOG_MODE_ASYNC;
    o.writer_sleep_us = 1000000;
    if (log_create(&exit_logger, &o) != 0) return 99;
    log_info(exit_logger, "main");
    return 0;
}

static int exec_scenario(void *arg)
{
    setenv("TEST_LOG_SCENARIO", (const char *)arg, 1);
    setenv("TEST_LOG_PATH", "late_atexit.log", 1);
    execl("/proc/self/exe", "test_log", (char *)NULL);
    return 127;
}

TEST(lines_from_later_atexit_handlers_are_written)
{
    char *text;
    unlink("late_atexit.log");
    CHECK_INT(run_child(exec_scenario, (void *)"late_atexit", 60000), ==, 0);
    text = read_file("late_atexit.log", NULL);
    REQUIRE(text != NULL);
    CHECK_INT(json_lines_ok(text), ==, 1001);
    CHECK(strstr(text, "\"msg\":\"from atexit\",\"i\":999}\n") != NULL);
    free(text);
    unlink("late_atexit.log");
}

/* ---- hostile input, all formats, checked by parsers ---------------------------------------- */

static unsigned long long rnd_state = 88172645463325252ull;
static unsigned rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (unsigned)(rnd_state >> 11);
}

static void rnd_bytes(char *b, size_t n)
{
    static const unsigned char pool[] = {0,    1,    0x1b, '"',  '\\', '=',  ' ',  'a',  '\n',
                                         '\t', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0x9b, 0x85, 0xc3,
                                         0xa9, 0xe0, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0xf0, 0xf4,
                                         0x90, 0x9f, 0x98, 0xff, 0x8f, 'z',  '{',  '}'};
    size_t i;
    for (i = 0; i < n; i++) b[i] = (char)pool[rnd() % sizeof pool];
}

/* Every line of text is checked for its format; returns the number of bad ones. */
static int bad_lines(const char *text, int format, size_t max_line)
{
    const char *p;
    int bad = 0;
    for (p = text; *p; p = strchr(p, '\n') + 1) {
        size_t len = (size_t)(strchr(p, '\n') - p);
        int ok = len + 1 <= max_line;
        switch (format) {
        case LOG_FORMAT_JSON:
            ok = ok && json_line_ok(p) && json_has_key(p, "time") && json_has_key(p, "level") &&
                 json_has_key(p, "msg");
            break;
        case LOG_FORMAT_PINO:
            ok = ok && json_line_ok(p) && json_has_key(p, "level") && json_has_key(p, "time") &&
                 json_has_key(p, "pid") && json_has_key(p, "hostname") && json_has_key(p, "msg");
            break;
        case LOG_FORMAT_LOGFMT:
            ok = ok && text_clean(p, len) && strncmp(p, "time=", 5) == 0 && line_find(p, " msg=");
            break;
        default:
            ok = ok && text_clean(p, len) && len > 30;
        }
        if (!ok && bad++ < 3) fprintf(stderr, "format %d, bad line: %.300s\n", format, p);
    }
    return bad;
}

TEST(random_hostile_input_all_formats)
{
    static const size_t max_lines[] = {512, 2048, 16384};
    static char m[3000], k[40], v[3000];
    capture c[4];
    log_sink s[4];
    log_options o;
    log_logger *lg, *child;
    log_field bf[2];
    char bk[21], bv[300];
    int f, it, iters = TEST_SANITIZED ? 1000 : 5000;
    size_t mi;
    cap_sinks(c, s, all_formats, 4);
    for (mi = 0; mi < sizeof max_lines / sizeof max_lines[0]; mi++) {
        o = base_opts(s, 4);
        o.max_line = max_lines[mi];
        o.name = "svc";
        REQUIRE_INT(log_create(&lg, &o), ==, 0);
        rnd_bytes(bk, 20);
        bk[20] = 0;
        rnd_bytes(bv, sizeof bv);
        bf[0] = LOG_STRN(bk, bv, sizeof bv);
        bf[1] = LOG_FLOAT("bn", NAN);
        REQUIRE_INT(log_child(lg, &child, bf, 2), ==, 0);
        for (it = 0; it < iters; it++) {
            size_t mn = rnd() % (it % 10 == 0 ? sizeof m : 200);
            size_t vn = rnd() % (it % 7 == 0 ? sizeof v : 100);
            uint64_t bits = ((uint64_t)rnd() << 32) ^ rnd();
            double d;
            log_field fl[5];
            memcpy(&d, &bits, sizeof d);
            rnd_bytes(m, mn);
            rnd_bytes(k, sizeof k - 1);
            k[rnd() % sizeof k] = 0;
            k[sizeof k - 1] = 0;
            rnd_bytes(v, vn);
            fl[0] = LOG_STRN(k, v, vn);
            fl[1] = LOG_FLOAT("d", d);
            fl[2] = LOG_STR(NULL, NULL);
            fl[3] = LOG_INT(k, (long long)bits);
            fl[4] = LOG_UINT("u", bits);
            log_writen(it & 1 ? child : lg, 10 + (int)(rnd() % 60), m, mn, fl, 5);
            if (it % 100 == 99 || it == iters - 1) {
                for (f = 0; f < 4; f++) {
                    char *out = cap_take(&c[f]);
                    CHECK_INT(bad_lines(out, f, max_lines[mi]), ==, 0);
                    free(out);
                }
            }
        }
        log_destroy(child);
        log_destroy(lg);
    }
    cap_free_all(c, 4);
}

/* ---- pino-pretty reads our pino lines ---------------------------------------------- */

#define PINO_PRETTY_VERSION "13.2.0" /* pinned: its output format is what is checked */

TEST(pino_pretty_reads_pino_format)
{
    log_sink s;
    log_options o;
    log_logger *lg, *child;
    log_field f[1];
    char *out;
    int rc;
    const char *peers = "../log-peers"; /* build/log-peers: test runs in build/CONFIG */
    const char *ci = getenv("CI");
    char cmd[512];
    if (system("command -v node >/dev/null 2>&1") != 0) SKIP("node is not installed");
    /* CI installs node and npm and reaches the registry: there, no excuses */
    snprintf(cmd, sizeof cmd, "grep -qs '\"version\": \"%s\"' %s/node_modules/pino-pretty/package.json || "
             "timeout 120 npm install --prefix %s --no-audit --no-fund --silent pino-pretty@%s "
             ">/dev/null 2>&1", PINO_PRETTY_VERSION, peers, peers, PINO_PRETTY_VERSION);
    if (system(cmd) != 0) {
        if (ci && *ci) {
            CHECK(!"CI is set, node is installed, but npm could not install pino-pretty");
            return;
        }
        SKIP("pino-pretty could not be installed with npm");
    }
    unlink("pino.log");
    s = file_sink("pino.log", LOG_FORMAT_PINO);
    o = base_opts(&s, 1);
    o.name = "svc";
    REQUIRE_INT(log_create(&lg, &o), ==, 0);
    f[0] = LOG_STR("req_id", "abc-123");
    REQUIRE_INT(log_child(lg, &child, f, 1), ==, 0);
    log_warn(child, "hello from log.h", LOG_INT("status", 503), LOG_STR("quote", "a \"b\""));
    log_destroy(child);
    log_destroy(lg);
    snprintf(cmd, sizeof cmd, "TZ=UTC node %s/node_modules/pino-pretty/bin.js --colorize false "
             "--translateTime 'UTC:yyyy-mm-dd HH:MM:ss.l' < pino.log > pino.pretty 2>&1", peers);
    rc = system(cmd);
    CHECK_INT(rc, ==, 0);
    out = read_file("pino.pretty", NULL);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "[2024-05-01 12:00:00.123]") != NULL);
    CHECK(strstr(out, "WARN") != NULL);
    CHECK(strstr(out, "(svc/") != NULL || strstr(out, "svc") != NULL);
    CHECK(strstr(out, "hello from log.h") != NULL);
    CHECK(strstr(out, "req_id: \"abc-123\"") != NULL);
    CHECK(strstr(out, "status: 503") != NULL);
    CHECK(strstr(out, "quote: \"a \\\"b\\\"\"") != NULL);
    if (!strstr(out, "hello from log.h")) fprintf(stderr, "pino-pretty said:\n%s\n", out);
    free(out);
    unlink("pino.log");
    unlink("pino.pretty");
}

int main(void)
{
    const char *scenario = getenv("TEST_LOG_SCENARIO");
    setenv("TZ", "UTC", 1);
    tzset();
    unsetenv("LOG_LEVEL");
    if (scenario) { /* this program, run again by a test as a fresh process */
        unsetenv("TEST_LOG_SCENARIO");
        if (strcmp(scenario, "late_atexit") == 0) return scenario_late_atexit();
        return 98;
    }
    RUN(golden_formats);
    RUN(levels_and_sink_filters);
    RUN(disabled_calls_do_not_evaluate_arguments);
    RUN(level_from_environment);
    RUN(names_parse_and_errors);
    RUN(bad_options);
    RUN(escaping_hostile_strings);
    RUN(null_strings);
    RUN(numbers);
    RUN(truncation_marker);
    RUN(printf_messages);
    RUN(children);
    RUN(keys_given_by_length);
    RUN(stats_count_lines_and_bytes);
    RUN(full_disk_and_closed_fd_are_counted);
    RUN(fatal_flushes_before_returning);
    RUN(fatal_then_exit_loses_nothing);
    RUN(exit_flushes_async_lines);
    RUN(async_order_and_formats);
    RUN(drop_policy_counts_and_reports);
    RUN(block_policy_waits_and_loses_nothing);
    RUN(rotation_keeps_n_files_and_daily);
    RUN(threads_sync_no_line_lost_or_interleaved);
    RUN(threads_async_no_line_lost_or_interleaved);
    RUN(rotation_under_load_sync);
    RUN(rotation_under_load_async);
    RUN(fork_child_writes_synchronously);
    RUN(truncation_keeps_head_and_message);
    RUN(truncation_keeps_utf8_whole);
    RUN(c1_controls_escaped_for_terminals);
    RUN(pretty_colour_auto_on_a_terminal);
    RUN(stdout_and_stderr_sinks);
    RUN(golden_file_sinks_sync_and_async);
    RUN(file_sink_appends);
    RUN(async_lines_longer_than_4096);
    RUN(daily_rotation_after_a_restart);
    RUN(daily_and_size_rotation_in_a_non_utc_zone);
    RUN(failed_rotation_keeps_history);
    RUN(reopen_after_a_failed_open);
    RUN(fork_child_never_rotates);
    RUN(fork_waits_for_a_rotation_in_progress);
    RUN(async_batches_stay_whole_on_a_shared_pipe);
    RUN(fatal_and_destroy_give_up_on_a_stuck_sink);
    RUN(exit_timeout_and_no_atexit);
    RUN(a_line_cut_by_a_write_error_is_ended);
    RUN(lines_from_later_atexit_handlers_are_written);
    RUN(random_hostile_input_all_formats);
    RUN(pino_pretty_reads_pino_format);
    return test_done();
}
