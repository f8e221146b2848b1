/* log.h compiles as C11 and C++17 with warnings as errors, next to the
 * system headers whose names it must not take: syslog.h (LOG_INFO, LOG_ERR,
 * LOG_DEBUG, LOG_WARNING, ...) and math.h (log, logf, ...). Every macro is
 * expanded once so C++ sees them too. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <syslog.h>

#define LOG_IMPLEMENTATION
#include "log.h"

int compile_check_log(void);

int compile_check_log(void)
{
    log_logger *lg, *child;
    log_field bound[2] = {LOG_STR("svc", "api"), LOG_UINT("shard", 3u)};
    log_stats st;
    log_options o;
    log_sink sink;
    memset(&o, 0, sizeof o);
    memset(&sink, 0, sizeof sink);
    sink.kind = LOG_SINK_STDERR;
    sink.format = LOG_FORMAT_PRETTY;
    o.sinks = &sink;
    o.nsinks = 1;
    if (log_create(&lg, &o) != 0) return 1;
    if (log_child(lg, &child, bound, 2) == 0) {
        log_trace(child, "t");
        log_debug(child, "d", LOG_NULL("n"));
        log_info(child, "i", LOG_STR("s", "v"), LOG_STRN("sn", "abc", 2), LOG_INT("i", -1),
                 LOG_FLOAT("f", log(2.0)), LOG_BOOL("b", 1));
        log_warn(child, "w");
        log_error(child, "e");
        log_tracef(child, "%d", 1);
        log_debugf(child, "%s", "x");
        log_infof(child, "%u", 2u);
        log_warnf(child, "%ld", 3L);
        log_errorf(child, "%.1f", 4.0);
        log_emit(child, LOG_LEVEL_WARN, "dyn", LOG_INT("k", 5));
        log_emitf(child, LOG_LEVEL_INFO, (LOG_INT("a", 1), LOG_STR("b", "c")), "%s", "fmt");
        if (LOG_ENABLED(child, LOG_LEVEL_DEBUG)) log_write(child, LOG_LEVEL_DEBUG, "w", bound, 2);
        log_destroy(child);
    }
    log_set_level(lg, log_level_parse("warn"));
    log_fatalf(lg, "%s", log_level_name(log_get_level(lg)));
    log_fatal(lg, "f");
    log_flush(lg);
    log_get_stats(lg, &st);
    syslog(LOG_INFO | LOG_USER, "%s %d", log_strerror(st.last_error), LOG_ERR + LOG_DEBUG + LOG_WARNING);
    log_destroy(lg);
    return 0;
}
