/* log.h - structured logging for C: levels, JSON / pino / logfmt / pretty
 * lines, child loggers with bound fields, several sinks, rotating files and
 * an asynchronous writer thread. One header, libc + POSIX + pthreads.
 *
 * ==========================================================================
 * CONTENTS
 *   1. Quick start                 7. Sinks and rotation
 *   2. Compile-time options        8. Synchronous and asynchronous modes
 *   3. Levels                      9. Errors, limits and failure handling
 *   4. Logging calls and fields   10. Threads, fork, exit
 *   5. Output formats             11. API reference
 *   6. Child loggers              12. License (end of file)
 *
 * ==========================================================================
 * 1. QUICK START
 *
 *     // app.c
 *     #define LOG_IMPLEMENTATION
 *     #include "log.h"
 *
 *     int main(void) {
 *         log_logger *lg;
 *         if (log_create(&lg, NULL) != 0) return 1;    // JSON lines to stdout
 *         log_info(lg, "server started", LOG_INT("port", 8080));
 *         log_warnf(lg, "disk %d%% full", 91);
 *         log_destroy(lg);
 *     }
 *
 *     cc -O2 app.c -o app -pthread
 *
 * prints
 *
 *     {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"server started","port":8080}
 *     {"time":"2024-05-01T12:00:00.123Z","level":"warn","msg":"disk 91% full"}
 *
 * With a strict `-std=c11` the implementation needs POSIX.1-2008: put
 * `#define _POSIX_C_SOURCE 200809L` (or _GNU_SOURCE) before the first
 * #include of the file that defines LOG_IMPLEMENTATION.
 *
 * A fuller set-up (JSON to a rotating file, pretty colour output to the
 * terminal, asynchronous writer, a child logger per request):
 *
 *     log_sink sinks[2] = {{0}};
 *     sinks[0].kind = LOG_SINK_FILE;  sinks[0].path = "app.log";
 *     sinks[0].rotate_bytes = 64 << 20;  sinks[0].keep = 5;
 *     sinks[1].kind = LOG_SINK_STDERR; sinks[1].format = LOG_FORMAT_PRETTY;
 *     sinks[1].level = LOG_LEVEL_WARN;
 *     log_options o = {0};
 *     o.sinks = sinks; o.nsinks = 2; o.mode = LOG_MODE_ASYNC;
 *     log_logger *lg; int rc = log_create(&lg, &o);
 *     if (rc) { fprintf(stderr, "log: %s\n", log_strerror(rc)); exit(1); }
 *
 *     log_field req[] = { LOG_STR("req_id", id), LOG_STR("path", path) };
 *     log_logger *rl;
 *     if (log_child(lg, &rl, req, 2) == 0) {
 *         log_info(rl, "request done", LOG_INT("status", 200), LOG_FLOAT("ms", 1.25));
 *         log_destroy(rl);
 *     }
 *
 * ==========================================================================
 * 2. COMPILE-TIME OPTIONS (define before including log.h)
 *
 *   LOG_IMPLEMENTATION  in exactly one .c file: compiles the implementation.
 *   LOG_STATIC          (where LOG_IMPLEMENTATION is defined, before every
 *                       include of log.h in that file) makes every function
 *                       static, for a program that keeps the logger private
 *                       to one translation unit.
 *   LOG_API             declaration decorator (default `extern`, or
 *                       `static` with LOG_STATIC).
 *   LOG_MALLOC(n), LOG_REALLOC(p, n), LOG_FREE(p)
 *                       the allocator (default malloc/realloc/free); define
 *                       all three with LOG_IMPLEMENTATION.
 *   LOG_ASSERT(x)       checks for programmer misuse (default assert()).
 *
 * ==========================================================================
 * 3. LEVELS
 *
 *   LOG_LEVEL_TRACE 10, LOG_LEVEL_DEBUG 20, LOG_LEVEL_INFO 30,
 *   LOG_LEVEL_WARN 40, LOG_LEVEL_ERROR 50, LOG_LEVEL_FATAL 60, LOG_LEVEL_OFF 100
 *
 * The numbers are pino's, so the pino format prints them as they are. (The
 * names deliberately differ from syslog.h's LOG_INFO, LOG_ERR, ...: both
 * headers can be included in one file.) A line is written when its level is
 * >= the logger's level AND >= the sink's own minimum level.
 *
 * The logger's level comes from log_options.level (default INFO), overridden
 * by the environment variable named in log_options.level_env (default
 * "LOG_LEVEL"; "" reads no variable). Accepted values, case-insensitive:
 * trace, debug, info, warn (or warning), error, fatal, off (or silent), or a
 * number 0..100. An unparsable value is ignored with one note on stderr.
 * log_set_level() changes it at run time from any thread.
 *
 * The level check is a macro: log_info(lg, ...) first compares the level
 * with one relaxed atomic load from `lg`; when disabled, none of the other
 * arguments are evaluated and nothing else runs. The value loaded already
 * folds in the sinks' minimum levels, so a call that no sink would accept
 * is equally cheap. LOG_ENABLED(lg, level) is the same test as an
 * expression, for guarding expensive preparation.
 *
 * ==========================================================================
 * 4. LOGGING CALLS AND FIELDS
 *
 *   log_info(lg, msg, field...)          constant message + typed fields
 *   log_infof(lg, fmt, arg...)           printf-style message (format-checked)
 *   log_emit(lg, level, msg, field...)   level chosen at run time
 *   log_emitf(lg, level, (field, ...), fmt, arg...)
 *                                        fields (parenthesised, at least one)
 *                                        and a printf-style message
 *
 * with trace/debug/info/warn/error/fatal in place of info (log_tracef,
 * log_debugf, ... likewise). In the msg form the message is printed as is:
 * a '%' in it is just a character. msg may be NULL (printed as null).
 *
 * Fields are built with these macros; each is an inline constructor, so the
 * compiler checks the value's type (a string where an integer is expected is
 * a compile error, in C and in C++):
 *
 *   LOG_STR(key, const char *s)         string; NULL prints as null
 *   LOG_STRN(key, const char *s, n)     string of n bytes (need not be
 *                                       NUL-terminated; may hold NULs)
 *   LOG_INT(key, long long v)           signed integer
 *   LOG_UINT(key, unsigned long long v) unsigned integer
 *   LOG_FLOAT(key, double v)            number; the shortest form that
 *                                       reads back as the same double (0.1,
 *                                       12.5, 1e+300, 5e-324, 1e-7); NaN/Inf
 *                                       print as null in JSON and as
 *                                       NaN/+Inf/-Inf in logfmt/pretty
 *   LOG_BOOL(key, int v)                true / false
 *   LOG_NULL(key)                       null
 *
 * Keys are strings (a NULL key prints as "null"). The strings a field points
 * to only need to live for the duration of the call: the line is formatted
 * before the call returns, in both modes. Duplicate keys are written as
 * given. The functions log_write(), log_writef() and log_vwritef() take a
 * field array and a count, for callers that build fields at run time; they
 * check the level themselves too.
 *
 * log_fatal*() does not exit: it writes the line, waits until every line
 * logged before it has reached its sinks (asynchronous mode included; at
 * most log_options.exit_timeout_ms, so a sink that accepts nothing cannot
 * hang it), and returns, so the program may abort() or exit() right after.
 *
 * ==========================================================================
 * 5. OUTPUT FORMATS (log_sink.format)
 *
 * LOG_FORMAT_JSON (default): one JSON object per line, in this order: time
 * (ISO 8601 UTC, milliseconds), level (name), name (when log_options.name is
 * set), msg, the child loggers' bound fields, the call's fields:
 *
 *   {"time":"2024-05-01T12:00:00.123Z","level":"info","name":"api","msg":"hi","req":7,"ok":true}
 *
 * LOG_FORMAT_PINO: the shape pino writes, so pino's tools (pino-pretty,
 * pino-elasticsearch, ...) read it: numeric level, time in epoch
 * milliseconds, pid, hostname, name, bound fields, fields, msg last:
 *
 *   {"level":30,"time":1714564800123,"pid":4242,"hostname":"box","req":7,"msg":"hi"}
 *
 * LOG_FORMAT_LOGFMT: key=value pairs; a value is quoted (with JSON escapes)
 * when it is empty or holds a space, '=', '"', '\', a control character
 * (C0 or C1, see Escaping below) or DEL. Key bytes outside '!'..'~' and '='
 * or '"' are replaced by '_':
 *
 *   time=2024-05-01T12:00:00.123Z level=info msg=hi req=7 user="a b"
 *
 * LOG_FORMAT_PRETTY: for people: local time, padded upper-case level, the
 * name in brackets, the message, then key=value pairs quoted as in logfmt:
 *
 *   2024-05-01 14:00:00.123 INFO  [api] hi req=7 user="a b"
 *
 * Colours (ANSI) are used according to log_sink.color: LOG_COLOR_AUTO
 * (default) colours when the sink's descriptor is a terminal, TERM is not
 * "dumb" and NO_COLOR is unset or empty; LOG_COLOR_ALWAYS / LOG_COLOR_NEVER
 * force it. Only the pretty format uses colours.
 *
 * Escaping (all formats): every line is exactly one line. In JSON strings
 * and quoted logfmt values '"', '\' and control characters are escaped
 * (\n \r \t \b \f, others \u00XX) and DEL becomes \u007f. The pretty
 * message escapes control characters and DEL the same way, so a hostile
 * string cannot move the terminal cursor or forge a line. logfmt and pretty
 * output, which people read on terminals, also escape the C1 controls
 * U+0080..U+009F (valid UTF-8 C2 80..C2 9F; U+009B is an 8-bit CSI) as
 * \u0080..\u009f; JSON keeps them, as the valid characters they are.
 * Invalid UTF-8 (stray continuation bytes, overlong forms, surrogates, code
 * points past U+10FFFF, sequences cut short) is replaced, byte by byte, by
 * U+FFFD written as its UTF-8 bytes EF BF BD; valid UTF-8 passes through.
 *
 * ==========================================================================
 * 6. CHILD LOGGERS
 *
 * log_child(parent, &child, fields, n) makes a logger that writes through
 * the parent's sinks and adds the bound fields to every line (after msg in
 * JSON, before the call's fields). A child of a child carries both sets. It
 * is one allocation (fields and strings copied), so one per request is
 * cheap. The child starts with the parent's level; log_set_level() on it
 * changes only that child, and later changes to the parent do not reach
 * existing children. Destroy children with log_destroy() before their root.
 *
 * ==========================================================================
 * 7. SINKS AND ROTATION (log_options.sinks: an array of log_sink)
 *
 * Up to LOG_MAX_SINKS (8) sinks, each with its own format and minimum level.
 * NULL/0 sinks means one default sink: JSON to stdout. log_sink fields (all
 * zero = defaults):
 *
 *   kind          LOG_SINK_STDOUT (default), LOG_SINK_STDERR, LOG_SINK_FD,
 *                 LOG_SINK_FILE, LOG_SINK_CALLBACK
 *   format        LOG_FORMAT_JSON (default), _PINO, _LOGFMT, _PRETTY
 *   level         minimum level for this sink; 0 = every line the logger
 *                 passes
 *   color         LOG_COLOR_AUTO (default), _ALWAYS, _NEVER (pretty only)
 *   fd            LOG_SINK_FD: the descriptor; never closed by log.h
 *   path          LOG_SINK_FILE: the file, opened at log_create with
 *                 O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC (the string is copied)
 *   file_mode     permissions of a created file; 0 = 0644
 *   rotate_bytes  LOG_SINK_FILE: rotate before a line would make the file
 *                 larger than this; 0 = no size rotation. A single line
 *                 longer than it still goes, whole, into a fresh file.
 *   rotate_daily  LOG_SINK_FILE: non-zero rotates at local midnight (on
 *                 the first line whose timestamp is on a new day). A file
 *                 that is opened non-empty (at log_create, after a restart)
 *                 and was last written (mtime) before today's midnight is
 *                 rotated before the first line goes in, so one file never
 *                 holds two days; an empty file is never rotated for a day.
 *                 Both limits may be set: whichever comes first rotates.
 *   keep          rotated files kept: path.1 (newest) .. path.keep; 0 = 5
 *   retry_ms      LOG_SINK_FILE: after a failed open or rename, the next
 *                 try comes no sooner than this (monotonic clock); 0 = 1000
 *   callback      LOG_SINK_CALLBACK: void cb(void *userdata, int level,
 *                 const char *line, size_t len); line is the formatted line
 *                 with its '\n' (not NUL-terminated), valid during the call
 *   userdata      passed to callback
 *
 * Rotation renames path.(keep-1) -> path.keep, ..., path -> path.1 and
 * opens a new path. It is decided line by line before each write by the one
 * party that owns the file: the writer thread in asynchronous mode, the
 * caller holding the sink's lock in synchronous mode. So no line is split
 * across files or lost at a rotation, however many threads log. The live
 * file is moved first, to the spare name path.(keep+1), and only then the
 * older files: when the live file cannot be renamed the history is left
 * as it is, lines keep going to the current file and the rotation is tried
 * again after retry_ms (last_error has the rename error). If the new file
 * cannot be opened, the lines count as write errors and opening is retried
 * at most once per retry_ms.
 *
 * The process that created the logger owns rotation. A child made with
 * fork() never rotates: it keeps appending to the file it inherited, which
 * the parent's rotations rename to path.1, path.2, ...; the child's lines
 * are lost only once that file falls off the end of the kept files, so a
 * long-lived child should make its own logger. Two unrelated processes must
 * not rotate the same file.
 *
 * ==========================================================================
 * 8. SYNCHRONOUS AND ASYNCHRONOUS MODES (log_options.mode)
 *
 * LOG_MODE_SYNC (default): the calling thread formats the line on its
 * stack and writes it with one write() per sink while holding that sink's
 * lock, so lines from different threads never interleave and a line is on
 * its way to the kernel when the call returns (nothing is buffered in the
 * process). Costs one system call per line per sink. A line of at most
 * PIPE_BUF (4096) bytes is one write(), which the kernel keeps whole on a
 * pipe that other processes write to as well.
 *
 * LOG_MODE_ASYNC: the calling thread formats the line and copies it into a
 * lock-free multi-producer ring (one compare-and-swap to reserve space, one
 * store to publish); no lock and no system call on the caller's path, and
 * no allocation for lines up to 4096 bytes and printf messages up to 1023
 * bytes (section 9). One background writer thread owns the sinks: it takes
 * published lines in ticket order and writes them in batches with writev()
 * (up to 256 lines per call). To a pipe or socket (a FIFO, stdout piped to
 * another program, ...) a batch is split into writes of at most PIPE_BUF
 * bytes of whole lines, so that lines stay whole when other processes (a
 * forked child, say) write to the same pipe; a single line longer than
 * PIPE_BUF cannot be written atomically to a pipe and may be interleaved
 * with another writer's bytes. When the logger is idle the writer sleeps,
 * at most log_options.writer_sleep_us (default 10000 = 10 ms) between looks,
 * so a line reaches its sink within about that time; callers wake it early
 * when the ring is a quarter full, and log_flush()/fatal lines wake it at
 * once. After a partial batch the writer naps 100 us so that lines gather
 * and it works in large batches, away from the memory callers are writing.
 * When the ring is full, log_options.full_policy decides:
 *   LOG_FULL_BLOCK (default)  the caller waits for space (spins, yields,
 *                             then sleeps until the writer frees a batch);
 *   LOG_FULL_DROP             the line is dropped and counted; when space
 *                             returns the writer itself logs, at warn level,
 *                             "log: ring full, lines dropped" with the field
 *                             dropped=N. log_get_stats() has the total.
 * Under LOG_FULL_BLOCK a sink that accepts nothing (a pipe nobody reads)
 * blocks the callers once the ring is full; LOG_FULL_DROP never blocks.
 * Fatal lines are the exception under both policies: they wait for space,
 * at most exit_timeout_ms, and are dropped and counted only after that.
 * The ring holds log_options.ring_bytes (default 4 MiB; 64 KiB .. 1 GiB,
 * rounded down to a power of two) in 256-byte slots; a line takes
 * ceil((len + 16) / 256) consecutive slots (a line that would wrap past the
 * ring's end skips the slots left there). The ring is allocated and touched
 * at log_create().
 *
 * Cost, measured on a 2-core VM (bench/log): about 180 ns per async call
 * with a message and three fields (21 of them reading the clock), 4.5 to 6
 * million lines per second to a file from one thread.
 *
 * log_flush() waits until every line logged before it was written, however
 * long that takes. Lines are also flushed at exit (section 10) unless
 * log_options.no_atexit is set, before log_fatal*() returns, and by
 * log_destroy(); these three wait at most log_options.exit_timeout_ms
 * (default 5000) for the writer, so a sink that accepts nothing cannot hang
 * the end of the program.
 *
 * ==========================================================================
 * 9. ERRORS, LIMITS AND FAILURE HANDLING
 *
 * Functions that can fail return 0 or a negative errno value; log_strerror()
 * names it. log_create() fails with -EINVAL (bad option), -ENOMEM, or the
 * open() error of a file sink (-ENOENT, -EACCES, ...), and -EAGAIN when the
 * writer thread cannot be started.
 *
 * Logging calls never fail and never crash the program: a write error
 * (ENOSPC on a full disk, EBADF on a closed descriptor, EPIPE on a pipe
 * whose reader left, EIO, ...) counts the line as lost for that sink and
 * goes on; SIGPIPE is suppressed for the write (the writer thread blocks all
 * signals; in synchronous mode SIGPIPE is blocked around writes to pipes and
 * sockets and a resulting pending SIGPIPE is consumed). A descriptor in
 * non-blocking mode that stays full for 1 s loses the rest of the line
 * (-EAGAIN). A write that fails part-way through a line (that, or ENOSPC,
 * EFBIG after some bytes went in) leaves the start of the line in the
 * sink; log.h ends that fragment with a '\n' before its next write there,
 * so the lines after it are whole (the fragment itself is incomplete and
 * counted as a write error). log_get_stats() exposes the counters and the
 * last error.
 *
 *   log_options.max_line  longest line in bytes, '\n' included; default
 *                         16384, allowed 512 .. 1 MiB (and at most half the
 *                         ring in asynchronous mode). A longer line is cut:
 *                         the string being written ends with "..." and the
 *                         rest of the fields are left out, then a field
 *                         truncated=true closes the line ("truncated":true in
 *                         JSON, " [truncated]" in pretty). The result is still
 *                         valid JSON / logfmt and never longer than max_line.
 *                         In every format time, level, name and the message
 *                         survive: fields are what gets cut (the message
 *                         itself is cut only when it alone is too long). The
 *                         pino format, where msg comes last, keeps room for
 *                         the message before it writes the fields. Lines are
 *                         formatted on the stack up to 4096 bytes; a longer
 *                         one is formatted again into a temporary heap
 *                         buffer of max_line bytes (a malloc and a second
 *                         pass; if the allocation fails the line is cut at
 *                         4096 bytes).
 *   log_options.name      at most 64 bytes, without control characters (C0,
 *                         DEL, C1), '"' or '\' (else -EINVAL).
 *   hostname              (pino) the first 64 bytes are used.
 *   printf messages       formatted with vsnprintf into a 1024-byte stack
 *                         buffer; a longer one is formatted again into a
 *                         heap buffer (at most max_line bytes kept). %s with
 *                         NULL is the C library's business (glibc prints
 *                         "(null)").
 *
 * ==========================================================================
 * 10. THREADS, FORK, EXIT
 *
 * Every logging call, log_flush(), log_set_level(), log_get_level(),
 * log_get_stats() and log_child() may be called from any thread at any time.
 * log_create() and log_destroy() may not race with other calls on the same
 * logger; log_destroy() of a root must come after its children's and after
 * every other thread stopped logging through it. Callback sinks run on the
 * writer thread (asynchronous) or on the logging thread under the sink's
 * lock (synchronous); they must not log through the same logger (that
 * could wait for itself) and must not call exit().
 *
 * fork(): a child process gets no writer thread. log.h notices (through
 * pthread_atfork) and makes every asynchronous logger inherited by the
 * child write synchronously, in the child, from then on, with the child's
 * pid; lines still in the ring at the fork are the parent's to write. The
 * child's exit does not wait for a writer that is not there. The child's
 * file descriptors are shared with the parent: both keep appending whole
 * lines (O_APPEND), and the child never rotates (section 7). Sink locks
 * are taken around fork(), and the writer thread holds its sink's lock
 * while it rotates, so the child never inherits a held lock or a half-done
 * rotation (a fork() waits for a rotation in progress).
 *
 * exit(): an atexit handler, registered by the first log_create(), makes
 * the writer of every live asynchronous logger (unless no_atexit) write
 * what is queued and end, waiting at most exit_timeout_ms; from then on
 * that logger writes synchronously, on the calling thread. So lines logged
 * by atexit handlers that run after it (C runs them in reverse order: those
 * registered before the first log_create) are written too. A writer that
 * does not finish in time (its sink accepts nothing) is left behind and
 * the logger stays asynchronous: later lines may be lost. Lines logged by
 * other threads while exit() runs may be lost; _exit() and signals that
 * kill the process skip the flush (log fatal errors with log_fatal*(),
 * which flushes, before aborting).
 *
 * ==========================================================================
 * 11. API REFERENCE
 *
 * int  log_create(log_logger **out, const log_options *opts)
 *      Makes a root logger; opts may be NULL (all defaults). On success
 *      *out owns the sinks' files and (async) the writer thread; free it
 *      with log_destroy(). Strings in opts are copied. log_options fields
 *      (all zero = defaults):
 *        level            LOG_LEVEL_INFO                 (section 3)
 *        level_env        "LOG_LEVEL"; "" reads none     (section 3)
 *        name             none; "name" field of every line, <= 64 bytes
 *        sinks, nsinks    one JSON sink on stdout        (section 7)
 *        mode             LOG_MODE_SYNC                  (section 8)
 *        full_policy      LOG_FULL_BLOCK                 (section 8)
 *        ring_bytes       4 MiB, 64 KiB .. 1 GiB         (section 8)
 *        max_line         16384, 512 .. 1 MiB            (section 9)
 *        writer_sleep_us  10000, at least 100            (section 8)
 *        exit_timeout_ms  5000: longest wait for the writer at exit,
 *                         in log_fatal*() and in log_destroy()
 *        no_atexit        0: flush asynchronous loggers at exit
 *        hostname         gethostname(); pino's "hostname" (first 64 bytes)
 *        now, now_ud      CLOCK_REALTIME; a wall clock in ns since the
 *                         epoch, called on the logging thread (tests, replay)
 * void log_destroy(log_logger *lg)
 *      Child: frees it. Root: flushes, stops and joins the writer, closes
 *      the files it opened, frees everything. NULL is allowed. It waits at
 *      most exit_timeout_ms for the writer: a writer blocked in a write
 *      that does not return (a pipe nobody reads) is left running,
 *      detached, and frees the logger (closing its files) when that write
 *      returns and the queued lines are written.
 * int  log_child(log_logger *parent, log_logger **out, const log_field *f, size_t n)
 *      Child logger with bound fields (copied); 0, -EINVAL or -ENOMEM.
 *      Free with log_destroy() before the root.
 * void log_set_level(log_logger *lg, int level) / int log_get_level(const log_logger *lg)
 *      The logger's own level (0 or below means TRACE, above OFF means OFF).
 * void log_write(log_logger *lg, int level, const char *msg, const log_field *f, size_t n)
 * void log_writen(log_logger *lg, int level, const char *msg, size_t msglen,
 *                 const log_field *f, size_t n)    (msg of msglen bytes)
 * void log_writef(log_logger *lg, int level, const log_field *f, size_t n, const char *fmt, ...)
 * void log_vwritef(log_logger *lg, int level, const log_field *f, size_t n, const char *fmt, va_list ap)
 *      The functions behind the macros (f may be NULL when n is 0). A
 *      log_field built by hand rather than with LOG_STR() & co must set
 *      klen to the key's length (the key need not end with a NUL then) or
 *      0 (= strlen(key)) and, for strings, len to the length or
 *      (size_t)-1 (= strlen).
 * int  log_flush(log_logger *lg)
 *      Async: waits until every line logged before the call was written
 *      (without a time limit); sync: nothing to do. Returns 0.
 * void log_get_stats(const log_logger *lg, log_stats *out)
 *      Counters of the root (a child reports its root's): lines written,
 *      bytes, write_errors (lines a sink failed to write), dropped (ring
 *      full: drop policy, or a fatal line after exit_timeout_ms), truncated,
 *      rotations, last_error (negative errno of the last failed write,
 *      open or rename, 0 if none). Counts are per sink line: a line written to two
 *      sinks counts twice.
 * const char *log_strerror(int err)     message for a negative errno value
 * const char *log_level_name(int level) "trace" .. "fatal", "off"
 * int  log_level_parse(const char *s)   level for a name or number, or -EINVAL
 *
 * Ownership in short: log.h owns what it allocates (loggers, copies of
 * option strings and bound fields, ring, files it opened); the caller owns
 * everything it passes in, which log.h never keeps beyond the call except as
 * copies; the user's LOG_SINK_FD descriptor and stdout/stderr are never closed.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef LOG_API
#ifdef LOG_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define LOG_API static __attribute__((unused))
#else
#define LOG_API static
#endif
#else
#define LOG_API extern
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LOG__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LOG__PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    LOG_LEVEL_TRACE = 10,
    LOG_LEVEL_DEBUG = 20,
    LOG_LEVEL_INFO = 30,
    LOG_LEVEL_WARN = 40,
    LOG_LEVEL_ERROR = 50,
    LOG_LEVEL_FATAL = 60,
    LOG_LEVEL_OFF = 100
};

enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_PINO, LOG_FORMAT_LOGFMT, LOG_FORMAT_PRETTY };
enum { LOG_COLOR_AUTO = 0, LOG_COLOR_ALWAYS, LOG_COLOR_NEVER };
enum { LOG_SINK_STDOUT = 0, LOG_SINK_STDERR, LOG_SINK_FD, LOG_SINK_FILE, LOG_SINK_CALLBACK };
enum { LOG_MODE_SYNC = 0, LOG_MODE_ASYNC };
enum { LOG_FULL_BLOCK = 0, LOG_FULL_DROP };
enum {
    LOG_FIELD_END = 0, /* internal: ends a macro-built field list */
    LOG_FIELD_STR,
    LOG_FIELD_INT,
    LOG_FIELD_UINT,
    LOG_FIELD_FLOAT,
    LOG_FIELD_BOOL,
    LOG_FIELD_NULL
};

#define LOG_MAX_SINKS 8

typedef struct log_logger log_logger;

/* One typed field. Build it with LOG_STR(), LOG_INT(), ... */
typedef struct log_field {
    const char *key;
    int type;    /* LOG_FIELD_* */
    unsigned klen; /* length of key, 0 = strlen(key) */
    size_t len;  /* LOG_FIELD_STR: byte length, (size_t)-1 = strlen */
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double f;
        int b;
    } v;
} log_field;

typedef void (*log_callback)(void *userdata, int level, const char *line, size_t len);

typedef struct log_sink {
    int kind;              /* LOG_SINK_*, default stdout */
    int format;            /* LOG_FORMAT_*, default JSON */
    int level;             /* minimum level, 0 = all */
    int color;             /* LOG_COLOR_*, default auto */
    int fd;                /* LOG_SINK_FD */
    const char *path;      /* LOG_SINK_FILE */
    unsigned file_mode;    /* default 0644 */
    uint64_t rotate_bytes; /* 0 = no size rotation */
    int rotate_daily;      /* rotate at local midnight */
    int keep;              /* rotated files kept, default 5 */
    log_callback callback; /* LOG_SINK_CALLBACK */
    void *userdata;
    unsigned retry_ms;     /* after a failed open/rename, next try; default 1000 */
} log_sink;

typedef struct log_options {
    int level;                /* default LOG_LEVEL_INFO */
    const char *level_env;    /* NULL = "LOG_LEVEL", "" = none */
    const char *name;         /* "name" field, NULL = none, <= 64 bytes */
    const log_sink *sinks;    /* NULL/0 = JSON to stdout */
    int nsinks;
    int mode;                 /* LOG_MODE_SYNC / LOG_MODE_ASYNC */
    int full_policy;          /* LOG_FULL_BLOCK / LOG_FULL_DROP */
    size_t ring_bytes;        /* async ring, default 4 MiB, 64 KiB .. 1 GiB */
    size_t max_line;          /* default 16384, 512 .. 1 MiB */
    unsigned writer_sleep_us; /* async idle sleep, default 10000 */
    unsigned exit_timeout_ms; /* longest wait at exit, fatal, destroy; default 5000 */
    int no_atexit;            /* do not flush at exit */
    const char *hostname;     /* pino "hostname", NULL = gethostname() */
    int64_t (*now)(void *ud); /* wall clock in ns since the epoch, NULL = CLOCK_REALTIME */
    void *now_ud;
} log_options;

typedef struct log_stats {
    uint64_t lines;        /* lines written (per sink) */
    uint64_t bytes;        /* bytes written */
    uint64_t write_errors; /* lines a sink failed to write */
    uint64_t dropped;      /* lines dropped: ring full (drop policy, fatal timeout) */
    uint64_t truncated;    /* lines cut at max_line */
    uint64_t rotations;    /* file rotations */
    int last_error;        /* last write/open/rename error (-errno), 0 if none */
} log_stats;

LOG_API int log_create(log_logger **out, const log_options *opts);
LOG_API void log_destroy(log_logger *lg);
LOG_API int log_child(log_logger *parent, log_logger **out, const log_field *fields, size_t n);
LOG_API void log_set_level(log_logger *lg, int level);
LOG_API int log_get_level(const log_logger *lg);
LOG_API void log_write(log_logger *lg, int level, const char *msg, const log_field *fields, size_t n);
LOG_API void log_writen(log_logger *lg, int level, const char *msg, size_t msglen,
                        const log_field *fields, size_t n);
LOG_API void log_writef(log_logger *lg, int level, const log_field *fields, size_t n, const char *fmt, ...)
    LOG__PRINTF(5, 6);
LOG_API void log_vwritef(log_logger *lg, int level, const log_field *fields, size_t n, const char *fmt,
                         va_list ap) LOG__PRINTF(5, 0);
LOG_API int log_flush(log_logger *lg);
LOG_API void log_get_stats(const log_logger *lg, log_stats *out);
LOG_API const char *log_strerror(int err);
LOG_API const char *log_level_name(int level);
LOG_API int log_level_parse(const char *s);

/* ---- field constructors --------------------------------------------------- */

/* The constructors are inline so that strlen() of literal keys and strings
 * is computed by the compiler. */
static inline log_field log__fmake(const char *k, int type)
{
    log_field f;
    f.key = k;
    f.type = type;
    f.klen = k ? (unsigned)strlen(k) : 0;
    f.len = 0;
    f.v.u = 0;
    return f;
}
static inline log_field log__fstr(const char *k, const char *s)
{
    log_field f = log__fmake(k, LOG_FIELD_STR);
    f.v.s = s;
    f.len = s ? strlen(s) : 0;
    return f;
}
static inline log_field log__fstrn(const char *k, const char *s, size_t n)
{
    log_field f = log__fmake(k, LOG_FIELD_STR);
    f.v.s = s;
    f.len = n;
    return f;
}
static inline log_field log__fint(const char *k, long long v)
{
    log_field f = log__fmake(k, LOG_FIELD_INT);
    f.v.i = v;
    return f;
}
static inline log_field log__fuint(const char *k, unsigned long long v)
{
    log_field f = log__fmake(k, LOG_FIELD_UINT);
    f.v.u = v;
    return f;
}
static inline log_field log__ffloat(const char *k, double v)
{
    log_field f = log__fmake(k, LOG_FIELD_FLOAT);
    f.v.f = v;
    return f;
}
static inline log_field log__fbool(const char *k, int v)
{
    log_field f = log__fmake(k, LOG_FIELD_BOOL);
    f.v.b = v != 0;
    return f;
}

#define LOG_STR(k, s) log__fstr((k), (s))
#define LOG_STRN(k, s, n) log__fstrn((k), (s), (n))
#define LOG_INT(k, v) log__fint((k), (v))
#define LOG_UINT(k, v) log__fuint((k), (v))
#define LOG_FLOAT(k, v) log__ffloat((k), (v))
#define LOG_BOOL(k, v) log__fbool((k), (v))
#define LOG_NULL(k) log__fmake((k), LOG_FIELD_NULL)

/* ---- the level gate -------------------------------------------------------- */

/* The first member of every logger: the lowest level any of its lines can be
 * written at (its own level and its sinks' levels folded together). */
struct log__head {
    int gate;
};

static inline int log__gate(const log_logger *lg)
{
    return __atomic_load_n(&((const struct log__head *)(const void *)lg)->gate, __ATOMIC_RELAXED);
}

#define LOG_ENABLED(lg, level) ((int)(level) >= log__gate(lg))

/* ---- logging macros ---------------------------------------------------------- */

#define LOG__FIRST(...) LOG__FIRST_(__VA_ARGS__, 0)
#define LOG__FIRST_(first, ...) first
#define LOG__REST(...) LOG__REST_(__VA_ARGS__, log__fmake(NULL, LOG_FIELD_END))
#define LOG__REST_(first, ...) __VA_ARGS__
#define LOG__UNPAREN(...) __VA_ARGS__

#define LOG__EMIT(lg, lvl, ...)                                                            \
    do {                                                                                   \
        log_logger *log__lg = (lg);                                                        \
        int log__lv = (lvl);                                                               \
        if (LOG_ENABLED(log__lg, log__lv)) {                                               \
            const char *log__m = LOG__FIRST(__VA_ARGS__);                                  \
            const log_field log__f[] = {LOG__REST(__VA_ARGS__)};                           \
            log_writen(log__lg, log__lv, log__m, log__m ? strlen(log__m) : 0, log__f,      \
                       sizeof log__f / sizeof log__f[0] - 1);                              \
        }                                                                                  \
    } while (0)

#define LOG__EMITF(lg, lvl, ...)                                                           \
    do {                                                                                   \
        log_logger *log__lg = (lg);                                                        \
        int log__lv = (lvl);                                                               \
        if (LOG_ENABLED(log__lg, log__lv))                                                 \
            log_writef(log__lg, log__lv, NULL, 0, __VA_ARGS__);                            \
    } while (0)

#define log_emit(lg, level, ...) LOG__EMIT(lg, level, __VA_ARGS__)
#define log_emitf(lg, level, fields, ...)                                                  \
    do {                                                                                   \
        log_logger *log__lg = (lg);                                                        \
        int log__lv = (level);                                                             \
        if (LOG_ENABLED(log__lg, log__lv)) {                                               \
            const log_field log__f[] = {LOG__UNPAREN fields, log__fmake(NULL, LOG_FIELD_END)}; \
            log_writef(log__lg, log__lv, log__f, sizeof log__f / sizeof log__f[0] - 1,     \
                       __VA_ARGS__);                                                       \
        }                                                                                  \
    } while (0)

#define log_trace(lg, ...) LOG__EMIT(lg, LOG_LEVEL_TRACE, __VA_ARGS__)
#define log_debug(lg, ...) LOG__EMIT(lg, LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) LOG__EMIT(lg, LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(lg, ...) LOG__EMIT(lg, LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(lg, ...) LOG__EMIT(lg, LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatal(lg, ...) LOG__EMIT(lg, LOG_LEVEL_FATAL, __VA_ARGS__)

#define log_tracef(lg, ...) LOG__EMITF(lg, LOG_LEVEL_TRACE, __VA_ARGS__)
#define log_debugf(lg, ...) LOG__EMITF(lg, LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_infof(lg, ...) LOG__EMITF(lg, LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warnf(lg, ...) LOG__EMITF(lg, LOG_LEVEL_WARN, __VA_ARGS__)
#define log_errorf(lg, ...) LOG__EMITF(lg, LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatalf(lg, ...) LOG__EMITF(lg, LOG_LEVEL_FATAL, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* LOG_H */

/* ========================================================================== */
/*                              IMPLEMENTATION                                */
/* ========================================================================== */

#if defined(LOG_IMPLEMENTATION) && !defined(LOG__IMPLEMENTATION_DONE)
#define LOG__IMPLEMENTATION_DONE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__) && (!defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L)
#error "log.h: the implementation needs POSIX.1-2008: #define _POSIX_C_SOURCE 200809L before the first #include"
#endif

#ifndef LOG_MALLOC
#define LOG_MALLOC(n) malloc(n)
#define LOG_REALLOC(p, n) realloc((p), (n))
#define LOG_FREE(p) free(p)
#endif
#ifndef LOG_ASSERT
#include <assert.h>
#define LOG_ASSERT(x) assert(x)
#endif

#ifdef __cplusplus
#define LOG__TLS thread_local
#else
#define LOG__TLS _Thread_local
#endif

#ifdef IOV_MAX
#define LOG__IOV (IOV_MAX < 1024 ? IOV_MAX : 1024)
#else
#define LOG__IOV 1024
#endif

#define LOG__SLOT 256u     /* ring slot size */
#define LOG__HDR 16u       /* record header inside the first slot */
#define LOG__STACK 4096u   /* lines up to this size are formatted on the stack */
#define LOG__RESERVE 48    /* room kept for the truncation marker and line end */
#define LOG__NV 5          /* output variants: the formats, pretty twice */
#define LOG__V_PAD 0xffu   /* ring record that only fills the ring's end */
#define LOG__BATCH 256     /* records per writer batch */
#define LOG__RING_MAX ((size_t)1 << 30) /* largest log_options.ring_bytes */

enum { LOG__V_JSON = 0, LOG__V_PINO, LOG__V_LOGFMT, LOG__V_PRETTY, LOG__V_PRETTY_COLOR };

struct log__sink {
    int kind, variant, level;
    int fd, own_fd;
    int is_pipe;          /* FIFO or socket: SIGPIPE guard, batches of <= PIPE_BUF */
    int partial;          /* the last write stopped inside a line */
    char *path, *scratch; /* scratch: room for "path.N" names */
    unsigned mode;
    uint64_t rotate_bytes;
    int rotate_daily, keep;
    uint64_t size;        /* current file size (FILE) */
    int64_t next_day;     /* ns time of the next local midnight */
    int64_t retry_at;     /* monotonic ns; after a failed open or rename, no try before it */
    int64_t retry_ns;     /* log_sink.retry_ms */
    log_callback cb;
    void *ud;
    pthread_mutex_t mu;   /* sync: serialises writes and rotation; async: rotation (vs fork) */
    uint64_t lines, bytes, errors, rotations; /* atomic, owner-written */
};

struct log__item {
    const char *line;
    size_t len;
    int64_t time;
    int variant, level;
};

struct log__core;

struct log_logger {
    struct log__head head;
    int level;
    struct log__core *core;
    log_field *bound;
    size_t nbound;
};

struct log__core {
    log_logger root;
    int mode, policy, nsinks;
    int direct; /* atomic; async logger now written by its callers: forked child, after exit */
    size_t max_line;
    int vmin[LOG__NV], min_level;
    struct log__sink sinks[LOG_MAX_SINKS];
    char name[160];        /* JSON-escaped name, "" = none */
    size_t name_len;
    char pidhost[224];     /* ,"pid":N,"hostname":"h" */
    size_t pidhost_len;
    char hostname[160];    /* JSON-escaped */
    int64_t (*now)(void *);
    void *now_ud;
    unsigned sleep_us;
    long timeout_ms; /* exit_timeout_ms: exit flush, fatal lines, log_destroy */
    int no_atexit, registered;
    struct log__core *next;
    /* asynchronous mode */
    unsigned char *data;
    uint64_t *seq;
    uint64_t nslots, mask;
    char *wbuf; /* writer's own format buffer (drop reports) */
    struct log__item *items;
    struct iovec *iov;
    size_t *lens;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t wake_cv, done_cv;
    pthread_cond_t space_cv;
    int sleeping, stop, waiters, space_waiters;
    int writer_done, orphan; /* under mu: the writer has ended / must free the core */
    int writer_lost;         /* left behind at exit, still using the core: never free it */
    char pad0[64];
    uint64_t tail; /* next ticket to reserve (producers) */
    char pad1[64];
    uint64_t done; /* every ticket below this was written (writer) */
    char pad2[64];
    uint64_t dropped, dropped_pending, truncated;
    int last_error;
};

/* ---- small helpers ----------------------------------------------------------- */

#define LOG__LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOG__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LOG__ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static int64_t log__realtime(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t log__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void log__timedwait(pthread_cond_t *cv, pthread_mutex_t *mu, long us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += us / 1000000;
    ts.tv_nsec += (us % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

static void log__set_error(struct log__core *c, int err)
{
    LOG__STORE(&c->last_error, err);
}

static int log__clamp_level(int level)
{
    if (level < 0) return 0;
    if (level > LOG_LEVEL_OFF) return LOG_LEVEL_OFF;
    return level;
}

static void log__update_gate(log_logger *lg)
{
    int g = LOG__LOAD(&lg->level);
    if (g < lg->core->min_level) g = lg->core->min_level;
    LOG__STORE(&lg->head.gate, g);
}

/* ---- public small functions -------------------------------------------------- */

static const char *const log__lnames[] = {"trace", "debug", "info", "warn", "error", "fatal", "off"};
static const unsigned char log__lnlen[] = {5, 5, 4, 4, 5, 5, 3};

static int log__lvl_idx(int level)
{
    int i = level / 10 - 1;
    return i < 0 ? 0 : i > 5 ? 5 : i;
}

LOG_API const char *log_level_name(int level)
{
    if (level >= LOG_LEVEL_OFF) return "off";
    if (level >= LOG_LEVEL_FATAL) return "fatal";
    if (level >= LOG_LEVEL_ERROR) return "error";
    if (level >= LOG_LEVEL_WARN) return "warn";
    if (level >= LOG_LEVEL_INFO) return "info";
    if (level >= LOG_LEVEL_DEBUG) return "debug";
    return "trace";
}

static int log__ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == 0 && *b == 0;
}

LOG_API int log_level_parse(const char *s)
{
    static const struct { const char *name; int level; } names[] = {
        {"trace", LOG_LEVEL_TRACE}, {"debug", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},
        {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN}, {"error", LOG_LEVEL_ERROR},
        {"fatal", LOG_LEVEL_FATAL}, {"off", LOG_LEVEL_OFF},     {"silent", LOG_LEVEL_OFF},
    };
    size_t i;
    int v = 0;
    if (!s || !*s) return -EINVAL;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (log__ieq(s, names[i].name)) return names[i].level;
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 3) return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    return v <= LOG_LEVEL_OFF ? v : -EINVAL;
}

LOG_API const char *log_strerror(int err)
{
    switch (-err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory";
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EEXIST: return "file exists";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "not a directory";
    case EROFS: return "read-only file system";
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EFBIG: return "file too large";
    case EBADF: return "bad file descriptor";
    case EPIPE: return "broken pipe";
    case EAGAIN: return "resource temporarily unavailable";
    case EIO: return "input/output error";
    case EMFILE: return "too many open files";
    case ENFILE: return "too many open files in system";
    case ENAMETOOLONG: return "file name too long";
    case EINTR: return "interrupted system call";
    case ECONNRESET: return "connection reset by peer";
    default: return "unknown error";
    }
}

/* ---- output buffer with a hard limit --------------------------------------- */

typedef struct log__out {
    char *p, *lim; /* lim: end of the buffer minus LOG__RESERVE */
    int trunc;
} log__out;

#if defined(__GNUC__) || defined(__clang__)
#define LOG__INLINE static inline __attribute__((always_inline))
#else
#define LOG__INLINE static inline
#endif

/* memcpy for the short pieces a line is made of, without a library call. */
LOG__INLINE void log__copy(char *d, const char *s, size_t n)
{
    if (n <= 16) {
        if (n >= 8) {
            uint64_t a, b;
            memcpy(&a, s, 8);
            memcpy(&b, s + n - 8, 8);
            memcpy(d, &a, 8);
            memcpy(d + n - 8, &b, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, s, 4);
            memcpy(&b, s + n - 4, 4);
            memcpy(d, &a, 4);
            memcpy(d + n - 4, &b, 4);
        } else {
            size_t i;
            for (i = 0; i < n; i++) d[i] = s[i];
        }
    } else {
        memcpy(d, s, n);
    }
}

/* Appends structural bytes; when they do not fit, marks the line truncated. */
LOG__INLINE void log__raw(log__out *o, const char *s, size_t n)
{
    if (o->trunc || (size_t)(o->lim - o->p) < n) {
        o->trunc = 1;
        return;
    }
    log__copy(o->p, s, n);
    o->p += n;
}

#define LOG__RAWS(o, lit) log__raw((o), (lit), sizeof(lit) - 1)

/* Appends inside the reserve: only for the fixed-size line ends. */
static void log__tail(log__out *o, const char *s, size_t n)
{
    memcpy(o->p, s, n);
    o->p += n;
}

#define LOG__TAILS(o, lit) log__tail((o), (lit), sizeof(lit) - 1)

/* Byte classes: 0 copy as is, 1 escape, 2 non-ASCII (UTF-8 check), 3 the
 * lead byte 0xC2, which also starts the C1 controls U+0080..U+009F. JSON
 * escapes '"' and '\' and lets C1 through (they are valid JSON); LF
 * (logfmt and pretty values, read on terminals) also escapes C1, since
 * U+009B is an 8-bit CSI; TEXT (pretty messages) escapes only control
 * bytes, DEL and C1. */
#define LOG__C16(a) a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a
/* 0x00..0x7f in a quoted string: controls, '"', backslash and DEL */
#define LOG__C_QUOTED_ASCII                                                  \
    LOG__C16(1), LOG__C16(1),                                                \
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20..0x2f */         \
    LOG__C16(0), LOG__C16(0),                                                \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50..0x5f */         \
    LOG__C16(0),                                                             \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1  /* 0x70..0x7f */
#define LOG__C_HIGH(c2)                                                      \
    LOG__C16(2), LOG__C16(2), LOG__C16(2), LOG__C16(2), /* 0x80..0xbf */     \
    2, 2, c2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,    /* 0xc0..0xcf */     \
    LOG__C16(2), LOG__C16(2), LOG__C16(2)               /* 0xd0..0xff */
static const unsigned char log__json_class[256] = {LOG__C_QUOTED_ASCII, LOG__C_HIGH(2)};
static const unsigned char log__lf_class[256] = {LOG__C_QUOTED_ASCII, LOG__C_HIGH(3)};
static const unsigned char log__text_class[256] = {
    LOG__C16(1), LOG__C16(1),
    LOG__C16(0), LOG__C16(0), LOG__C16(0), LOG__C16(0), LOG__C16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    LOG__C_HIGH(3),
};

/* 1 when s[0..n) starts with a C1 control (U+0080..U+009F: C2 80..C2 9F). */
static int log__is_c1(const unsigned char *s, size_t n)
{
    return n >= 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f;
}

/* logfmt/pretty values that need quotes: controls, space, '"', '=', '\',
 * DEL, C1 controls */
static int log__needs_quote(const char *s, size_t n)
{
    size_t i;
    if (n == 0) return 1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7f) return 1;
        if (c == 0xc2 && log__is_c1((const unsigned char *)s + i, n - i)) return 1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (s[0] >= 0x80), 0 if invalid. */
static size_t log__utf8_len(const unsigned char *s, const unsigned char *e)
{
    unsigned c = s[0];
    size_t n = (size_t)(e - s);
    if (c >= 0xc2 && c <= 0xdf) return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = 0x80, hi = 0xbf;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80) return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = 0x80, hi = 0xbf;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* One byte that is not copied as is, at s < e, written at *pp (which has
 * room for 6 bytes): a JSON escape, a valid UTF-8 sequence, a C1 control
 * as \u00XX (class 3 tables), or U+FFFD for an invalid byte. Returns how
 * many bytes of s it took. Out of log__esc's loop, which stays small. */
static size_t log__esc_one(char **pp, const unsigned char *s, const unsigned char *e,
                           const unsigned char *cls)
{
    static const char hex[] = "0123456789abcdef";
    char *p = *pp;
    size_t k;
    if (*s < 0x80) {
        unsigned c = *s;
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
        k = 1;
    } else if (cls[*s] == 3 && log__is_c1(s, (size_t)(e - s))) {
        memcpy(p, "\\u00", 4); /* the code point is the second byte */
        p[4] = hex[s[1] >> 4];
        p[5] = hex[s[1] & 15];
        p += 6;
        k = 2;
    } else if ((k = log__utf8_len(s, e)) != 0) {
        memcpy(p, s, k);
        p += k;
    } else {
        *p++ = (char)0xef;
        *p++ = (char)0xbf;
        *p++ = (char)0xbd;
        k = 1;
    }
    *pp = p;
    return k;
}

/* Appends s escaped by the class table; stops at the limit (trunc) without
 * ever cutting an escape or a UTF-8 sequence. */
static void log__esc(log__out *o, const char *str, size_t n, const unsigned char *cls)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + n;
    char *p = o->p, *lim = o->lim;
    if (o->trunc) return;
    while (s < e) {
        const unsigned char *r = s;
        size_t run;
        while (r < e && !cls[*r]) r++;
        run = (size_t)(r - s);
        if (run) {
            if (run > (size_t)(lim - p)) {
                run = (size_t)(lim - p);
                memcpy(p, s, run);
                p += run;
                o->trunc = 1;
                break;
            }
            log__copy(p, (const char *)s, run);
            p += run;
            s = r;
            if (s == e) break;
        }
        if (lim - p < 6) {
            o->trunc = 1;
            break;
        }
        s += log__esc_one(&p, s, e, cls);
    }
    o->p = p;
}

static char *log__utoa(char *p, unsigned long long v)
{
    static const char d2[] = "00010203040506070809101112131415161718192021222324252627282930313233343536"
                             "37383940414243444546474849505152535455565758596061626364656667686970717273"
                             "7475767778798081828384858687888990919293949596979899";
    char tmp[24], *t = tmp + sizeof tmp;
    size_t n;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--t = d2[i + 1];
        *--t = d2[i];
    }
    if (v >= 10) {
        *--t = d2[v * 2 + 1];
        *--t = d2[v * 2];
    } else {
        *--t = (char)('0' + v);
    }
    n = (size_t)(tmp + sizeof tmp - t);
    log__copy(p, t, n);
    return p + n;
}

static char *log__itoa(char *p, long long v)
{
    if (v < 0) {
        *p++ = '-';
        return log__utoa(p, 0ull - (unsigned long long)v);
    }
    return log__utoa(p, (unsigned long long)v);
}

/* v in the exponent or long form: the shortest of %.15g, %.16g and %.17g
 * that reads back as v. A normal double that some decimal of at most 15
 * digits reads back as gets exactly that decimal from %.15g (its rounding
 * error is below half a step of the 15-digit grid), so these three tries
 * find the shortest form; subnormals have fewer digits of precision and
 * start from one digit. Whatever decimal point the C library's locale
 * uses, the output has '.'. p needs 32 bytes. */
static char *log__dtoa_slow(char *p, double v)
{
    char tmp[48];
    const char *t;
    double a = v < 0 ? -v : v;
    int prec = a < 2.2250738585072014e-308 ? 1 : 15, n = 0, dot = 0;
    for (; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (n <= 0 || n >= (int)sizeof tmp) return p;
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    for (t = tmp; *t; t++) {
        char ch = *t;
        if (ch == 'e') { /* e-07 -> e-7, as JavaScript writes it */
            *p++ = *t++;
            *p++ = *t++;
            while (t[0] == '0' && t[1]) t++;
            while (*t) *p++ = *t++;
            break;
        }
        if ((ch >= '0' && ch <= '9') || ch == '-') {
            *p++ = ch;
            dot = 0;
        } else if (!dot) { /* the locale's radix character, maybe several bytes */
            *p++ = '.';
            dot = 1;
        }
    }
    return p;
}

/* Shortest fixed-point form u / 10^k that reads back as exactly v (the
 * common case, fast), else log__dtoa_slow(). Returns NULL for NaN and
 * infinities. p needs 32 bytes. */
static char *log__dtoa(char *p, double v)
{
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    double a = v < 0 ? -v : v;
    int k;
    if (v != v || a > 1.7976931348623157e308) return NULL;
    if (a == 0) {
        if (1.0 / v < 0) *p++ = '-';
        *p++ = '0';
        return p;
    }
    if (a < 9007199254740992.0 && a >= 1e-5) {
        for (k = 0; k < 18; k++) {
            double m = a * p10[k];
            unsigned long long u;
            if (m >= 9007199254740992.0) break;
            u = (unsigned long long)(m + 0.5);
            /* cheap filter first: only a near-integer m can be the answer */
            if (((double)u - m) * ((double)u - m) > m * m * 1e-24 + 1e-30) continue;
            if ((double)u / p10[k] == a) {
                char digits[24];
                char *d = log__utoa(digits, u);
                int nd = (int)(d - digits), i;
                if (v < 0) *p++ = '-';
                if (k == 0) {
                    memcpy(p, digits, (size_t)nd);
                    return p + nd;
                }
                if (nd <= k) {
                    *p++ = '0';
                    *p++ = '.';
                    for (i = nd; i < k; i++) *p++ = '0';
                    memcpy(p, digits, (size_t)nd);
                    return p + nd;
                }
                memcpy(p, digits, (size_t)(nd - k));
                p += nd - k;
                *p++ = '.';
                memcpy(p, digits + nd - k, (size_t)k);
                return p + k;
            }
        }
    }
    return log__dtoa_slow(p, v);
}

/* ---- timestamps (per-thread cache of the per-second part) ------------------ */

struct log__tcache {
    int64_t utc_sec, loc_sec;
    char utc[24]; /* 2024-05-01T12:00:00. */
    char loc[24]; /* 2024-05-01 12:00:00. */
};
static LOG__TLS struct log__tcache log__tc = {-1, -1, {0}, {0}};

static void log__put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

static void log__fill_date(char *b, const struct tm *tm, char sep)
{
    int y = tm->tm_year + 1900;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    b[0] = (char)('0' + y / 1000);
    b[1] = (char)('0' + y / 100 % 10);
    b[2] = (char)('0' + y / 10 % 10);
    b[3] = (char)('0' + y % 10);
    b[4] = '-';
    log__put2(b + 5, tm->tm_mon + 1);
    b[7] = '-';
    log__put2(b + 8, tm->tm_mday);
    b[10] = sep;
    log__put2(b + 11, tm->tm_hour);
    b[13] = ':';
    log__put2(b + 14, tm->tm_min);
    b[16] = ':';
    log__put2(b + 17, tm->tm_sec);
    b[19] = '.';
}

/* Writes 23 bytes: "YYYY-MM-DDTHH:MM:SS.mmm" (UTC) or with ' ' (local). */
static void log__time(char *dst, int64_t ns, int local)
{
    int64_t sec, ms;
    struct log__tcache *tc = &log__tc;
    if (ns < 0) ns = 0;
    sec = ns / 1000000000;
    ms = ns / 1000000 % 1000;
    if (local) {
        if (tc->loc_sec != sec) {
            struct tm tm;
            time_t t = (time_t)sec;
            localtime_r(&t, &tm);
            log__fill_date(tc->loc, &tm, ' ');
            tc->loc_sec = sec;
        }
        memcpy(dst, tc->loc, 20);
    } else {
        if (tc->utc_sec != sec) {
            struct tm tm;
            time_t t = (time_t)sec;
            gmtime_r(&t, &tm);
            log__fill_date(tc->utc, &tm, 'T');
            tc->utc_sec = sec;
        }
        memcpy(dst, tc->utc, 20);
    }
    dst[20] = (char)('0' + ms / 100);
    dst[21] = (char)('0' + ms / 10 % 10);
    dst[22] = (char)('0' + ms % 10);
}

/* ---- formatting ------------------------------------------------------------- */

static size_t log__slen(const log_field *f)
{
    return f->len == (size_t)-1 ? strlen(f->v.s) : f->len;
}

static size_t log__klen(const log_field *f)
{
    return f->klen ? f->klen : strlen(f->key);
}

/* Quoted string value with the truncation marker: "abc" or "ab...";
 * cls: log__json_class (JSON) or log__lf_class (logfmt/pretty). */
static void log__quoted_str(log__out *o, const char *s, size_t n, const unsigned char *cls)
{
    if (!s) {
        LOG__RAWS(o, "null");
        return;
    }
    if (o->trunc) return;
    if (o->lim - o->p < 1) {
        o->trunc = 1;
        LOG__TAILS(o, "\"...\"");
        return;
    }
    *o->p++ = '"';
    log__esc(o, s, n, cls);
    if (o->trunc || o->lim - o->p < 1) {
        o->trunc = 1;
        LOG__TAILS(o, "...\"");
        return;
    }
    *o->p++ = '"';
}

/* A number as text; returns its length (0 for NaN/Inf in JSON mode). */
static size_t log__num(char *buf, const log_field *f, int json)
{
    char *e;
    switch (f->type) {
    case LOG_FIELD_INT: return (size_t)(log__itoa(buf, f->v.i) - buf);
    case LOG_FIELD_UINT: return (size_t)(log__utoa(buf, f->v.u) - buf);
    default:
        e = log__dtoa(buf, f->v.f);
        if (e) return (size_t)(e - buf);
        if (json) return 0;
        if (f->v.f != f->v.f) {
            memcpy(buf, "NaN", 3);
            return 3;
        }
        memcpy(buf, f->v.f < 0 ? "-Inf" : "+Inf", 4);
        return 4;
    }
}

static void log__json_field(log__out *o, const log_field *f)
{
    char *start = o->p, num[40];
    size_t n;
    LOG__RAWS(o, ",\"");
    if (f->key)
        log__esc(o, f->key, log__klen(f), log__json_class);
    else
        LOG__RAWS(o, "null");
    LOG__RAWS(o, "\":");
    if (o->trunc) {
        o->p = start;
        return;
    }
    switch (f->type) {
    case LOG_FIELD_STR:
        log__quoted_str(o, f->v.s, f->v.s ? log__slen(f) : 0, log__json_class);
        if (o->trunc && !f->v.s) o->p = start;
        return;
    case LOG_FIELD_INT:
    case LOG_FIELD_UINT:
    case LOG_FIELD_FLOAT:
        n = log__num(num, f, 1);
        if (n)
            log__raw(o, num, n);
        else
            LOG__RAWS(o, "null");
        break;
    case LOG_FIELD_BOOL:
        if (f->v.b)
            LOG__RAWS(o, "true");
        else
            LOG__RAWS(o, "false");
        break;
    default: LOG__RAWS(o, "null"); break;
    }
    if (o->trunc) o->p = start;
}

/* logfmt/pretty key: bytes outside '!'..'~', '=' and '"' become '_'. */
static void log__lf_key(log__out *o, const log_field *f)
{
    const char *k = f->key ? f->key : "null";
    size_t i, n = f->key ? log__klen(f) : 4;
    if (n == 0) {
        LOG__RAWS(o, "_");
        return;
    }
    if ((size_t)(o->lim - o->p) < n) {
        o->trunc = 1;
        return;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        o->p[i] = (c <= 0x20 || c >= 0x7f || c == '=' || c == '"') ? '_' : (char)c;
    }
    o->p += n;
}

/* logfmt/pretty string value: bare when safe, else quoted JSON-escaped. */
static void log__lf_str(log__out *o, const char *s, size_t n)
{
    if (!s) {
        LOG__RAWS(o, "null");
        return;
    }
    if (log__needs_quote(s, n)) {
        log__quoted_str(o, s, n, log__lf_class);
        return;
    }
    log__esc(o, s, n, log__lf_class);
    if (o->trunc) LOG__TAILS(o, "...");
}

/* JSON: the bound fields, then the call's, until one does not fit. */
LOG__INLINE void log__json_fields(log__out *o, const log_logger *lg, const log_field *f, size_t nf)
{
    size_t i;
    for (i = 0; i < lg->nbound && !o->trunc; i++) log__json_field(o, &lg->bound[i]);
    for (i = 0; i < nf && !o->trunc; i++) log__json_field(o, &f[i]);
}

static void log__pino_msg(log__out *o, const char *msg, size_t msglen)
{
    LOG__RAWS(o, ",\"msg\":");
    log__quoted_str(o, msg, msglen, log__json_class);
}

/* A pino line that did not fit. pino puts msg last, but the message must
 * survive a cut like in the other formats, where it comes before the
 * fields: measure it, keep room for it, let the fields have the rest, then
 * write it. A message that does not fit even alone is cut and the fields
 * are left out. mark: where the fields start. */
static void log__pino_refit(log__out *o, char *mark, const log_logger *lg, const char *msg,
                            size_t msglen, const log_field *f, size_t nf)
{
    char *lim = o->lim;
    size_t need;
    int cut;
    o->p = mark;
    o->trunc = 0;
    log__pino_msg(o, msg, msglen);
    if (o->trunc) return;
    /* + the '..."' a cut string field writes past the limit, + the room
     * log__esc wants free for one escape */
    need = (size_t)(o->p - mark) + 4 + 6;
    o->p = mark;
    o->lim = (size_t)(lim - mark) > need ? lim - need : mark;
    log__json_fields(o, lg, f, nf);
    cut = o->trunc;
    o->lim = lim;
    o->trunc = 0;
    log__pino_msg(o, msg, msglen);
    o->trunc |= cut;
}

static const char *const log__pretty_lvl[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "FATAL"};
static const char *const log__pretty_col[] = {"\x1b[90m", "\x1b[34m", "\x1b[32m",
                                              "\x1b[33m", "\x1b[31m", "\x1b[1;41m"};

/* logfmt or pretty field: " key=value" */
static void log__lf_field(log__out *o, const log_field *f, int color)
{
    char *start = o->p, num[40];
    size_t n;
    if (color)
        LOG__RAWS(o, " \x1b[36m");
    else
        LOG__RAWS(o, " ");
    log__lf_key(o, f);
    if (color)
        LOG__RAWS(o, "=\x1b[0m");
    else
        LOG__RAWS(o, "=");
    if (o->trunc) {
        o->p = start;
        return;
    }
    switch (f->type) {
    case LOG_FIELD_STR:
        log__lf_str(o, f->v.s, f->v.s ? log__slen(f) : 0);
        if (o->trunc && !f->v.s) o->p = start;
        return;
    case LOG_FIELD_INT:
    case LOG_FIELD_UINT:
    case LOG_FIELD_FLOAT:
        n = log__num(num, f, 0);
        log__raw(o, num, n);
        break;
    case LOG_FIELD_BOOL:
        if (f->v.b)
            LOG__RAWS(o, "true");
        else
            LOG__RAWS(o, "false");
        break;
    default: LOG__RAWS(o, "null"); break;
    }
    if (o->trunc) o->p = start;
}

/* Formats one line for variant v into buf[0..cap); returns its length and
 * sets *trunc when it had to be cut. cap >= 256. */
static size_t log__format(const struct log__core *c, const log_logger *lg, int v, int level,
                          int64_t t, const char *msg, size_t msglen, const log_field *f, size_t nf,
                          char *buf, size_t cap, int *trunc)
{
    log__out o;
    size_t i;
    char tmp[40], *mark;
    int li = log__lvl_idx(level);
    o.p = buf;
    o.lim = buf + cap - LOG__RESERVE;
    o.trunc = 0;
    switch (v) {
    case LOG__V_JSON: /* the fixed start always fits: max_line >= 512 */
        LOG__TAILS(&o, "{\"time\":\"");
        log__time(o.p, t, 0);
        o.p += 23;
        LOG__RAWS(&o, "Z\",\"level\":\"");
        log__raw(&o, log__lnames[li], log__lnlen[li]);
        LOG__RAWS(&o, "\"");
        if (c->name_len) {
            LOG__RAWS(&o, ",\"name\":\"");
            log__raw(&o, c->name, c->name_len);
            LOG__RAWS(&o, "\"");
        }
        LOG__RAWS(&o, ",\"msg\":");
        log__quoted_str(&o, msg, msglen, log__json_class);
        log__json_fields(&o, lg, f, nf);
        if (o.trunc)
            LOG__TAILS(&o, ",\"truncated\":true}\n");
        else
            LOG__TAILS(&o, "}\n");
        break;
    case LOG__V_PINO:
        LOG__RAWS(&o, "{\"level\":");
        log__raw(&o, tmp, (size_t)(log__itoa(tmp, level) - tmp));
        LOG__RAWS(&o, ",\"time\":");
        log__raw(&o, tmp, (size_t)(log__itoa(tmp, t / 1000000) - tmp));
        log__raw(&o, c->pidhost, c->pidhost_len);
        if (c->name_len) {
            LOG__RAWS(&o, ",\"name\":\"");
            log__raw(&o, c->name, c->name_len);
            LOG__RAWS(&o, "\"");
        }
        mark = o.p;
        log__json_fields(&o, lg, f, nf);
        if (!o.trunc) log__pino_msg(&o, msg, msglen);
        if (o.trunc) log__pino_refit(&o, mark, lg, msg, msglen, f, nf);
        if (o.trunc)
            LOG__TAILS(&o, ",\"truncated\":true}\n");
        else
            LOG__TAILS(&o, "}\n");
        break;
    case LOG__V_LOGFMT:
        LOG__TAILS(&o, "time=");
        log__time(o.p, t, 0);
        o.p += 23;
        LOG__RAWS(&o, "Z level=");
        log__raw(&o, log__lnames[li], log__lnlen[li]);
        if (c->name_len) {
            LOG__RAWS(&o, " name=");
            log__lf_str(&o, c->name, c->name_len);
        }
        LOG__RAWS(&o, " msg=");
        log__lf_str(&o, msg, msglen);
        for (i = 0; i < lg->nbound && !o.trunc; i++) log__lf_field(&o, &lg->bound[i], 0);
        for (i = 0; i < nf && !o.trunc; i++) log__lf_field(&o, &f[i], 0);
        if (o.trunc)
            LOG__TAILS(&o, " truncated=true\n");
        else
            LOG__TAILS(&o, "\n");
        break;
    default: { /* pretty */
        int col = v == LOG__V_PRETTY_COLOR;
        if (col) LOG__TAILS(&o, "\x1b[90m");
        log__time(o.p, t, 1);
        o.p += 23;
        if (col) {
            LOG__RAWS(&o, "\x1b[0m ");
            log__raw(&o, log__pretty_col[li], strlen(log__pretty_col[li]));
            log__raw(&o, log__pretty_lvl[li], 5);
            LOG__RAWS(&o, "\x1b[0m ");
        } else {
            LOG__RAWS(&o, " ");
            log__raw(&o, log__pretty_lvl[li], 5);
            LOG__RAWS(&o, " ");
        }
        if (c->name_len) {
            if (col) LOG__RAWS(&o, "\x1b[35m");
            LOG__RAWS(&o, "[");
            log__raw(&o, c->name, c->name_len);
            LOG__RAWS(&o, "] ");
            if (col) LOG__RAWS(&o, "\x1b[0m");
        }
        if (msg) {
            log__esc(&o, msg, msglen, log__text_class);
            if (o.trunc) LOG__TAILS(&o, "...");
        } else {
            LOG__RAWS(&o, "null");
        }
        for (i = 0; i < lg->nbound && !o.trunc; i++) log__lf_field(&o, &lg->bound[i], col);
        for (i = 0; i < nf && !o.trunc; i++) log__lf_field(&o, &f[i], col);
        if (o.trunc && col)
            LOG__TAILS(&o, "\x1b[0m [truncated]\n");
        else if (o.trunc)
            LOG__TAILS(&o, " [truncated]\n");
        else
            LOG__TAILS(&o, "\n");
        break;
    }
    }
    *trunc = o.trunc;
    return (size_t)(o.p - buf);
}

/* ---- sinks: writing, rotation ----------------------------------------------- */

static int64_t log__next_midnight(int64_t ns)
{
    struct tm tm;
    time_t t = (time_t)(ns / 1000000000), n;
    localtime_r(&t, &tm);
    tm.tm_hour = 0;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tm.tm_mday += 1;
    tm.tm_isdst = -1;
    n = mktime(&tm);
    if (n <= t) n = t + 86400;
    return (int64_t)n * 1000000000;
}

/* Opens the sink's file. On success the new descriptor replaces s->fd and
 * only then is the old one closed, so s->fd never names a closed
 * descriptor; on failure s->fd is left as it was. */
static int log__open_file(struct log__sink *s)
{
    struct stat st;
    int old = s->fd, fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, (mode_t)s->mode);
    if (fd < 0) return -errno;
    s->size = 0;
    if (fstat(fd, &st) == 0) {
        s->size = (uint64_t)st.st_size;
        s->is_pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    }
    s->fd = fd;
    s->own_fd = 1;
    s->partial = 0;
    if (old >= 0) close(old);
    return 0;
}

/* Daily rotation: the day of the file just opened ends at the next local
 * midnight after its last write (its mtime; now if it is empty or its
 * mtime is in the future), so a file a restarted program finds from an
 * earlier day is rotated before the first line of today goes in. */
static void log__start_day(struct log__sink *s, int64_t now)
{
    struct stat st;
    int64_t since = now;
    if (s->size > 0 && fstat(s->fd, &st) == 0) {
        int64_t m = (int64_t)st.st_mtime * 1000000000;
        if (m < now) since = m;
    }
    s->next_day = log__next_midnight(since);
}

/* After a failed open or rename: no new try for retry_ms. */
static void log__backoff(struct log__core *c, struct log__sink *s, int err)
{
    log__set_error(c, err);
    s->retry_at = log__mono_ns() + s->retry_ns;
}

/* path -> path.1, path.1 -> path.2, ..., path.(keep-1) -> path.keep, and a
 * new path. The live file is first moved to the spare name path.(keep+1):
 * if that fails (the history is still intact) the sink keeps writing to
 * the file it has and tries again after retry_ms, instead of shifting the
 * history on every line. */
static void log__rotate(struct log__core *c, struct log__sink *s, int64_t t)
{
    size_t cap = strlen(s->path) + 16;
    char *from = s->scratch, *to = s->scratch + cap;
    int i, rc, staged = 1;
    snprintf(to, cap, "%s.%d", s->path, s->keep + 1);
    if (rename(s->path, to) != 0) {
        if (errno != ENOENT) {
            log__backoff(c, s, -errno);
            return;
        }
        staged = 0; /* removed by someone else: nothing to keep */
    }
    if (staged) {
        for (i = s->keep - 1; i >= 1; i--) {
            snprintf(from, cap, "%s.%d", s->path, i);
            snprintf(to, cap, "%s.%d", s->path, i + 1);
            if (rename(from, to) != 0 && errno != ENOENT) log__set_error(c, -errno);
        }
        snprintf(from, cap, "%s.%d", s->path, s->keep + 1);
        snprintf(to, cap, "%s.1", s->path);
        if (rename(from, to) != 0) log__set_error(c, -errno);
    }
    LOG__ADD(&s->rotations, 1);
    rc = log__open_file(s);
    if (rc) {
        int old = s->fd;
        s->fd = -1;
        close(old);
        log__backoff(c, s, rc);
        return;
    }
    s->retry_at = 0;
    if (s->rotate_daily) log__start_day(s, t);
}

/* Before writing `len` more bytes at time t (pending: bytes queued but not
 * yet written): 1 when the file must be rotated, reopened, or its day
 * advanced first (log__prepare, after the caller wrote what is pending). */
static int log__need_rotate(const struct log__sink *s, int64_t t, uint64_t pending, size_t len)
{
    uint64_t size = s->size + pending;
    int due;
    if (s->kind != LOG_SINK_FILE) return 0;
    due = s->fd < 0 || (s->rotate_bytes && size > 0 && size + len > s->rotate_bytes) ||
          (s->rotate_daily && t >= s->next_day);
    return due && (!s->retry_at || log__mono_ns() >= s->retry_at);
}

/* Acts on log__need_rotate(), by the sink's owner holding its lock. */
static void log__prepare(struct log__core *c, struct log__sink *s, int64_t t)
{
    int rc;
    if (s->fd >= 0) {
        if (s->rotate_daily && t >= s->next_day && s->size == 0) {
            s->next_day = log__next_midnight(t); /* an empty file is today's already */
            return;
        }
        log__rotate(c, s, t);
        return;
    }
    rc = log__open_file(s);
    if (rc) {
        log__backoff(c, s, rc);
        return;
    }
    s->retry_at = 0;
    if (s->rotate_daily) log__start_day(s, t);
}

/* Writes iov[0..n) completely (iov is consumed); returns the bytes written
 * and sets *err to 0 or a negative errno. sync: on the logging thread,
 * where SIGPIPE must be held off (the writer thread blocks all signals). */
static size_t log__writev_all(struct log__sink *s, struct iovec *iov, int n, int sync, int *err)
{
    size_t total = 0;
    sigset_t pipeset, old;
    int blocked = 0, pending_before = 0;
    *err = 0;
    if (sync && s->is_pipe) {
        sigset_t pend;
        sigemptyset(&pipeset);
        sigaddset(&pipeset, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, &pipeset, &old) == 0) {
            blocked = 1;
            if (sigpending(&pend) == 0) pending_before = sigismember(&pend, SIGPIPE) == 1;
        }
    }
    while (n > 0) {
        ssize_t w = n == 1 ? write(s->fd, iov[0].iov_base, iov[0].iov_len) : writev(s->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pf;
                pf.fd = s->fd;
                pf.events = POLLOUT;
                pf.revents = 0;
                if (poll(&pf, 1, 1000) > 0) continue;
                *err = -EAGAIN;
                break;
            }
            *err = -errno;
            break;
        }
        if (w == 0) {
            *err = -EIO;
            break;
        }
        total += (size_t)w;
        while (n > 0 && (size_t)w >= iov[0].iov_len) {
            w -= (ssize_t)iov[0].iov_len;
            iov++;
            n--;
        }
        if (n > 0 && w > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= (size_t)w;
        }
    }
    if (blocked) {
        if (*err == -EPIPE && !pending_before) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return total;
}

/* A write that failed inside a line left a fragment without its '\n':
 * end it, so the next line starts on a line of its own. 0 if that fails. */
static int log__end_fragment(struct log__core *c, struct log__sink *s, int sync)
{
    struct iovec nl;
    int err;
    nl.iov_base = (void *)(uintptr_t)"\n";
    nl.iov_len = 1;
    if (log__writev_all(s, &nl, 1, sync, &err) != 1) {
        log__set_error(c, err);
        return 0;
    }
    s->partial = 0;
    s->size += 1;
    LOG__ADD(&s->bytes, 1);
    return 1;
}

/* Writes out n queued lines of the given lengths; counts them. */
static void log__flush_iov(struct log__core *c, struct log__sink *s, struct iovec *iov,
                           const size_t *lens, int n, int sync)
{
    int err, i;
    size_t w, acc = 0, whole = 0;
    uint64_t ok = 0;
    if (n == 0) return;
    if (s->fd < 0 || (s->partial && !log__end_fragment(c, s, sync))) {
        LOG__ADD(&s->errors, (uint64_t)n); /* the open or write error is recorded */
        return;
    }
    w = log__writev_all(s, iov, n, sync, &err);
    for (i = 0; i < n; i++) {
        acc += lens[i];
        if (acc <= w) {
            ok++;
            whole = acc;
        }
    }
    s->size += w;
    LOG__ADD(&s->bytes, (uint64_t)w);
    LOG__ADD(&s->lines, ok);
    if (err) {
        LOG__ADD(&s->errors, (uint64_t)n - ok);
        log__set_error(c, err);
        if (w > whole) s->partial = 1;
    }
}

/* Rotation by the sink's owner; `lock`: the owner is the writer thread,
 * which takes the sink's lock for it so that fork() (which holds every sink
 * lock) never copies a half-done rotation. */
static void log__prepare_locked(struct log__core *c, struct log__sink *s, int64_t t, int lock)
{
    if (lock) pthread_mutex_lock(&s->mu);
    log__prepare(c, s, t);
    if (lock) pthread_mutex_unlock(&s->mu);
}

/* One line to one sink, by its owner (sync: lock held; else the writer). */
static void log__sink_line(struct log__core *c, struct log__sink *s, int level, int64_t t,
                           const char *line, size_t len, int sync)
{
    struct iovec iov;
    if (s->kind == LOG_SINK_CALLBACK) {
        s->cb(s->ud, level, line, len);
        LOG__ADD(&s->lines, 1);
        LOG__ADD(&s->bytes, (uint64_t)len);
        return;
    }
    if (log__need_rotate(s, t, 0, len)) log__prepare_locked(c, s, t, !sync);
    iov.iov_base = (void *)(uintptr_t)line;
    iov.iov_len = len;
    log__flush_iov(c, s, &iov, &len, 1, sync);
}

/* A formatted line of variant v to every sink that takes it. */
static void log__dispatch(struct log__core *c, int v, int level, int64_t t, const char *line,
                          size_t len, int sync)
{
    int i;
    for (i = 0; i < c->nsinks; i++) {
        struct log__sink *s = &c->sinks[i];
        if (s->variant != v || level < s->level) continue;
        if (sync) pthread_mutex_lock(&s->mu);
        log__sink_line(c, s, level, t, line, len, sync);
        if (sync) pthread_mutex_unlock(&s->mu);
    }
}

/* ---- the asynchronous ring --------------------------------------------------- */

struct log__rec {
    uint32_t len;
    uint16_t nslots;
    uint8_t variant, level;
    int64_t time;
};

static void log__wake_writer(struct log__core *c)
{
    pthread_mutex_lock(&c->mu);
    LOG__STORE(&c->sleeping, 0);
    pthread_cond_signal(&c->wake_cv);
    pthread_mutex_unlock(&c->mu);
}

/* Copies one line into the ring. Returns the ticket after it, or 0 when the
 * line was dropped (drop policy, ring full; or a fatal line that found the
 * ring full for exit_timeout_ms). */
static uint64_t log__enqueue(struct log__core *c, int v, int level, int64_t t, const char *line,
                             size_t len)
{
    uint64_t k = (LOG__HDR + len + LOG__SLOT - 1) / LOG__SLOT, t0, pad, total, spins = 0;
    int64_t deadline = 0;
    struct log__rec r;
    t0 = __atomic_load_n(&c->tail, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t off = t0 & c->mask;
        pad = off + k > c->nslots ? c->nslots - off : 0;
        total = pad + k;
        /* Slots below done + nslots are free: the writer has finished with
         * the previous lap's records there (acquire: its reads are over). */
        if (t0 + total <= __atomic_load_n(&c->done, __ATOMIC_ACQUIRE) + c->nslots) {
            if (__atomic_compare_exchange_n(&c->tail, &t0, t0 + total, 1, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                break;
            continue; /* t0 now holds the current tail */
        }
        /* full: the drop policy drops the line (a fatal one waits, below) */
        if (c->policy == LOG_FULL_DROP && level < LOG_LEVEL_FATAL) {
            LOG__ADD(&c->dropped, 1);
            LOG__ADD(&c->dropped_pending, 1);
            if (LOG__LOAD(&c->sleeping)) log__wake_writer(c);
            return 0;
        }
        spins++;
        if (LOG__LOAD(&c->sleeping)) log__wake_writer(c);
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else if (spins < 96) {
            sched_yield();
        } else { /* wait for the writer to free a batch */
            uint64_t seen = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
            if (level >= LOG_LEVEL_FATAL) { /* the program is ending: not forever */
                int64_t now = log__mono_ns();
                if (!deadline) {
                    deadline = now + (int64_t)c->timeout_ms * 1000000;
                } else if (now >= deadline) {
                    LOG__ADD(&c->dropped, 1);
                    return 0;
                }
            }
            pthread_mutex_lock(&c->mu);
            LOG__ADD(&c->space_waiters, 1);
            if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) == seen) {
                LOG__STORE(&c->sleeping, 0);
                pthread_cond_signal(&c->wake_cv);
                log__timedwait(&c->space_cv, &c->mu, 1000);
            }
            LOG__ADD(&c->space_waiters, -1);
            pthread_mutex_unlock(&c->mu);
        }
        t0 = __atomic_load_n(&c->tail, __ATOMIC_RELAXED);
    }
    if (pad) {
        memset(&r, 0, sizeof r);
        r.nslots = (uint16_t)pad;
        r.variant = LOG__V_PAD;
        memcpy(c->data + (t0 & c->mask) * LOG__SLOT, &r, sizeof r);
        __atomic_store_n(&c->seq[t0 & c->mask], t0 + 1, __ATOMIC_RELEASE);
        t0 += pad;
    }
    r.len = (uint32_t)len;
    r.nslots = (uint16_t)k;
    r.variant = (uint8_t)v;
    r.level = (uint8_t)level;
    r.time = t;
    {
        unsigned char *dst = c->data + (t0 & c->mask) * LOG__SLOT;
        memcpy(dst, &r, sizeof r);
        memcpy(dst + LOG__HDR, line, len);
    }
    __atomic_store_n(&c->seq[t0 & c->mask], t0 + 1, __ATOMIC_RELEASE);
    {   /* the next line most likely goes right after this one: own it early */
        const unsigned char *next = c->data + ((t0 + k) & c->mask) * LOG__SLOT;
        __builtin_prefetch(next, 1, 3);
        __builtin_prefetch(next + 64, 1, 3);
        __builtin_prefetch(next + 128, 1, 3);
    }
    if (LOG__LOAD(&c->sleeping) &&
        t0 + k - __atomic_load_n(&c->done, __ATOMIC_RELAXED) > c->nslots / 4)
        log__wake_writer(c);
    return t0 + k;
}

/* One wait on done_cv (mu held): at most 100 ms, and not past deadline
 * (monotonic ns; 0: none). 0, without waiting, once the deadline passed. */
static int log__nap_done(struct log__core *c, int64_t deadline)
{
    int64_t left = deadline ? deadline - log__mono_ns() : 100000000;
    if (left <= 0) return 0;
    log__timedwait(&c->done_cv, &c->mu, left < 100000000 ? (long)(left / 1000) + 1 : 100000);
    return 1;
}

/* Waits until the writer has written every ticket below target, at most
 * timeout_ms (0: no limit). */
static void log__wait_done(struct log__core *c, uint64_t target, long timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? log__mono_ns() + (int64_t)timeout_ms * 1000000 : 0;
    if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) >= target) return;
    pthread_mutex_lock(&c->mu);
    LOG__ADD(&c->waiters, 1);
    LOG__STORE(&c->sleeping, 0);
    pthread_cond_signal(&c->wake_cv);
    while (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) < target && log__nap_done(c, deadline)) {
    }
    LOG__ADD(&c->waiters, -1);
    pthread_mutex_unlock(&c->mu);
}

/* The writer: one batch of records to every sink, in order. A pipe or
 * socket gets writes of at most PIPE_BUF bytes of whole lines, which the
 * kernel keeps whole when other processes write to the same pipe. */
static void log__write_batch(struct log__core *c, const struct log__item *it, int n,
                             struct iovec *iov, size_t *lens)
{
    int si, i;
    for (si = 0; si < c->nsinks; si++) {
        struct log__sink *s = &c->sinks[si];
        int q = 0;
        uint64_t pending = 0, most = s->is_pipe ? PIPE_BUF : UINT64_MAX;
        for (i = 0; i < n; i++) {
            if (it[i].variant != s->variant || it[i].level < s->level) continue;
            if (s->kind == LOG_SINK_CALLBACK) {
                log__sink_line(c, s, it[i].level, it[i].time, it[i].line, it[i].len, 0);
                continue;
            }
            if (log__need_rotate(s, it[i].time, pending, it[i].len)) {
                log__flush_iov(c, s, iov, lens, q, 0);
                q = 0;
                pending = 0;
                log__prepare_locked(c, s, it[i].time, 1);
            }
            if (q && pending + it[i].len > most) {
                log__flush_iov(c, s, iov, lens, q, 0);
                q = 0;
                pending = 0;
            }
            iov[q].iov_base = (void *)(uintptr_t)it[i].line;
            iov[q].iov_len = it[i].len;
            lens[q++] = it[i].len;
            pending += it[i].len;
            if (q == LOG__IOV) {
                log__flush_iov(c, s, iov, lens, q, 0);
                q = 0;
                pending = 0;
            }
        }
        log__flush_iov(c, s, iov, lens, q, 0);
    }
}

static void log__report_drops(struct log__core *c)
{
    uint64_t n = __atomic_exchange_n(&c->dropped_pending, 0, __ATOMIC_RELAXED);
    int64_t t;
    int v;
    if (!n) return;
    t = c->now(c->now_ud);
    for (v = 0; v < LOG__NV; v++) {
        log_field f = log__fuint("dropped", n);
        int trunc;
        size_t len;
        static const char msg[] = "log: ring full, lines dropped";
        if (c->vmin[v] > LOG_LEVEL_WARN) continue;
        len = log__format(c, &c->root, v, LOG_LEVEL_WARN, t, msg, sizeof msg - 1, &f, 1, c->wbuf,
                          c->max_line, &trunc);
        log__dispatch(c, v, LOG_LEVEL_WARN, t, c->wbuf, len, 0);
    }
}

static void log__free_core(struct log__core *c);

static void *log__writer(void *arg)
{
    struct log__core *c = (struct log__core *)arg;
    struct log__item *items = c->items;
    uint64_t h = 0;
    long nap = 100;
    for (;;) {
        uint64_t h0 = h;
        int n = 0;
        while (n < LOG__BATCH) {
            struct log__rec r;
            const unsigned char *p;
            if (__atomic_load_n(&c->seq[h & c->mask], __ATOMIC_ACQUIRE) != h + 1) break;
            p = c->data + (h & c->mask) * LOG__SLOT;
            memcpy(&r, p, sizeof r);
            if (r.variant != LOG__V_PAD) {
                items[n].line = (const char *)p + LOG__HDR;
                items[n].len = r.len;
                items[n].time = r.time;
                items[n].variant = r.variant;
                items[n].level = r.level;
                n++;
            }
            h += r.nslots;
        }
        if (h != h0) {
            if (n) log__write_batch(c, items, n, c->iov, c->lens);
            __atomic_store_n(&c->done, h, __ATOMIC_RELEASE); /* frees the slots */
            log__report_drops(c);
            if (LOG__LOAD(&c->waiters) || LOG__LOAD(&c->space_waiters)) {
                pthread_mutex_lock(&c->mu);
                pthread_cond_broadcast(&c->done_cv);
                pthread_cond_broadcast(&c->space_cv);
                pthread_mutex_unlock(&c->mu);
            }
            nap = 100;
            /* A full batch: more is waiting. A partial one: nap briefly, so
             * lines gather and the writer works in large batches, away from
             * the cache lines the callers are writing. */
            if (n == LOG__BATCH || LOG__LOAD(&c->waiters) || LOG__LOAD(&c->space_waiters)) continue;
        } else {
            log__report_drops(c);
        }
        pthread_mutex_lock(&c->mu);
        if (c->stop && __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) == h) break; /* mu held */
        __atomic_store_n(&c->sleeping, 1, __ATOMIC_SEQ_CST);
        if (h != h0 || __atomic_load_n(&c->seq[h & c->mask], __ATOMIC_SEQ_CST) != h + 1) {
            long us = (LOG__LOAD(&c->waiters) || c->stop) ? 50 : nap;
            log__timedwait(&c->wake_cv, &c->mu, us);
            if (h == h0) nap = nap * 2 > (long)c->sleep_us ? (long)c->sleep_us : nap * 2;
        }
        LOG__STORE(&c->sleeping, 0);
        if (LOG__LOAD(&c->waiters)) pthread_cond_broadcast(&c->done_cv);
        pthread_mutex_unlock(&c->mu);
    }
    { /* tell log__stop_writer; free the core if it stopped waiting for us */
        int orphan = c->orphan;
        c->writer_done = 1;
        pthread_cond_broadcast(&c->done_cv);
        pthread_mutex_unlock(&c->mu);
        if (orphan) log__free_core(c);
    }
    return NULL;
}

/* Asks the writer to write what is queued and end, and waits for it at most
 * timeout_ms. Returns 1 when it ended (joined), 0 when it is still busy in
 * a write that does not return: it is then detached and, if `orphan`,
 * frees the core itself when it ends. */
static int log__stop_writer(struct log__core *c, long timeout_ms, int orphan)
{
    int64_t deadline = log__mono_ns() + (int64_t)timeout_ms * 1000000;
    int done;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->wake_cv);
    while (!c->writer_done && log__nap_done(c, deadline)) {
    }
    done = c->writer_done;
    if (!done) {
        c->orphan = orphan;
        c->writer_lost = !orphan;
    }
    pthread_mutex_unlock(&c->mu);
    if (done)
        pthread_join(c->thread, NULL);
    else
        pthread_detach(c->thread);
    c->thread_started = 0;
    return done;
}

/* ---- process-wide registry: atexit flush, fork handling ------------------------ */

static pthread_mutex_t log__reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log__core *log__reg_head;
static pthread_once_t log__reg_once = PTHREAD_ONCE_INIT;

static void log__render_pidhost(struct log__core *c)
{
    char *p = c->pidhost;
    memcpy(p, ",\"pid\":", 7);
    p = log__itoa(p + 7, (long long)getpid());
    memcpy(p, ",\"hostname\":\"", 13);
    p += 13;
    memcpy(p, c->hostname, strlen(c->hostname));
    p += strlen(c->hostname);
    *p++ = '"';
    c->pidhost_len = (size_t)(p - c->pidhost);
}

/* At exit: every asynchronous logger's writer writes what is queued and
 * ends (at most exit_timeout_ms); from then on the logger writes on the
 * calling thread, so lines logged by atexit handlers that run after this
 * one (those registered before the first log_create) are written too. */
static void log__atexit(void)
{
    struct log__core *c;
    pthread_mutex_lock(&log__reg_mu);
    for (c = log__reg_head; c; c = c->next)
        if (c->thread_started && !c->no_atexit && log__stop_writer(c, c->timeout_ms, 0))
            __atomic_store_n(&c->direct, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&log__reg_mu);
}

static void log__fork_prepare(void)
{
    struct log__core *c;
    int i;
    pthread_mutex_lock(&log__reg_mu);
    for (c = log__reg_head; c; c = c->next)
        for (i = 0; i < c->nsinks; i++) pthread_mutex_lock(&c->sinks[i].mu);
}

static void log__fork_parent(void)
{
    struct log__core *c;
    int i;
    for (c = log__reg_head; c; c = c->next)
        for (i = c->nsinks - 1; i >= 0; i--) pthread_mutex_unlock(&c->sinks[i].mu);
    pthread_mutex_unlock(&log__reg_mu);
}

/* In a forked child: no writer thread came along, so asynchronous loggers
 * write on the calling thread; and the files belong to the parent, which
 * rotates them, so the child never does (two processes renaming the same
 * files would lose lines). */
static void log__fork_child(void)
{
    struct log__core *c;
    int i;
    for (c = log__reg_head; c; c = c->next) {
        for (i = c->nsinks - 1; i >= 0; i--) {
            c->sinks[i].rotate_bytes = 0;
            c->sinks[i].rotate_daily = 0;
            pthread_mutex_unlock(&c->sinks[i].mu);
        }
        if (c->mode == LOG_MODE_ASYNC) {
            c->thread_started = 0;
            LOG__STORE(&c->direct, 1);
        }
        log__render_pidhost(c);
    }
    pthread_mutex_unlock(&log__reg_mu);
}

static void log__reg_init(void)
{
    atexit(log__atexit);
    pthread_atfork(log__fork_prepare, log__fork_parent, log__fork_child);
}

static void log__register(struct log__core *c)
{
    pthread_once(&log__reg_once, log__reg_init);
    pthread_mutex_lock(&log__reg_mu);
    c->next = log__reg_head;
    log__reg_head = c;
    c->registered = 1;
    pthread_mutex_unlock(&log__reg_mu);
}

static void log__unregister(struct log__core *c)
{
    struct log__core **pp;
    if (!c->registered) return;
    pthread_mutex_lock(&log__reg_mu);
    for (pp = &log__reg_head; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&log__reg_mu);
}

/* ---- create / destroy -------------------------------------------------------- */

static void log__free_core(struct log__core *c)
{
    int i;
    for (i = 0; i < c->nsinks; i++) {
        struct log__sink *s = &c->sinks[i];
        if (s->own_fd && s->fd >= 0) close(s->fd);
        LOG_FREE(s->path);
        LOG_FREE(s->scratch);
        pthread_mutex_destroy(&s->mu);
    }
    if (c->mode == LOG_MODE_ASYNC) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->wake_cv);
        pthread_cond_destroy(&c->done_cv);
        pthread_cond_destroy(&c->space_cv);
    }
    LOG_FREE(c->data);
    LOG_FREE(c->seq);
    LOG_FREE(c->wbuf);
    LOG_FREE(c->items);
    LOG_FREE(c->iov);
    LOG_FREE(c->lens);
    LOG_FREE(c);
}

/* Copies s JSON-escaped into dst (cap bytes), returns the length. */
static size_t log__esc_copy(char *dst, size_t cap, const char *s)
{
    log__out o;
    o.p = dst;
    o.lim = dst + cap - 1;
    o.trunc = 0;
    log__esc(&o, s, strlen(s), log__json_class);
    *o.p = 0;
    return (size_t)(o.p - dst);
}

static int log__init_sink(struct log__core *c, struct log__sink *s, const log_sink *d)
{
    int color = 0;
    s->kind = d->kind;
    s->level = log__clamp_level(d->level);
    s->fd = -1;
    s->mode = d->file_mode ? d->file_mode : 0644;
    s->keep = d->keep > 0 ? d->keep : 5;
    s->rotate_bytes = d->rotate_bytes;
    s->rotate_daily = d->rotate_daily;
    s->retry_ns = (int64_t)(d->retry_ms ? d->retry_ms : 1000) * 1000000;
    if (d->format < LOG_FORMAT_JSON || d->format > LOG_FORMAT_PRETTY) return -EINVAL;
    if (d->color < LOG_COLOR_AUTO || d->color > LOG_COLOR_NEVER) return -EINVAL;
    switch (d->kind) {
    case LOG_SINK_STDOUT: s->fd = 1; break;
    case LOG_SINK_STDERR: s->fd = 2; break;
    case LOG_SINK_FD:
        if (d->fd < 0) return -EINVAL;
        s->fd = d->fd;
        break;
    case LOG_SINK_FILE: {
        size_t n;
        int rc;
        if (!d->path || !*d->path) return -EINVAL;
        n = strlen(d->path);
        s->path = (char *)LOG_MALLOC(n + 1);
        s->scratch = (char *)LOG_MALLOC(2 * (n + 16));
        if (!s->path || !s->scratch) return -ENOMEM;
        memcpy(s->path, d->path, n + 1);
        rc = log__open_file(s);
        if (rc) return rc;
        if (s->rotate_daily) log__start_day(s, c->now(c->now_ud));
        break;
    }
    case LOG_SINK_CALLBACK:
        if (!d->callback) return -EINVAL;
        s->cb = d->callback;
        s->ud = d->userdata;
        break;
    default: return -EINVAL;
    }
    if (s->fd >= 0 && d->kind != LOG_SINK_FILE) {
        struct stat st;
        if (fstat(s->fd, &st) == 0) s->is_pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    }
    if (d->format == LOG_FORMAT_PRETTY) {
        if (d->color == LOG_COLOR_ALWAYS) {
            color = 1;
        } else if (d->color == LOG_COLOR_AUTO && s->fd >= 0 && isatty(s->fd)) {
            const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
            color = !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
        }
    }
    s->variant = d->format == LOG_FORMAT_PRETTY && color ? LOG__V_PRETTY_COLOR : d->format;
    return 0;
}

LOG_API int log_create(log_logger **out, const log_options *opts)
{
    log_options o;
    log_sink def;
    const log_sink *sinks;
    struct log__core *c;
    int i, rc, nsinks;
    uint64_t nslots = 1;
    const char *env;
    LOG_ASSERT(out);
    *out = NULL;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    memset(&def, 0, sizeof def);
    sinks = o.sinks;
    nsinks = o.nsinks;
    if (!sinks || nsinks <= 0) {
        sinks = &def;
        nsinks = 1;
    }
    if (nsinks > LOG_MAX_SINKS) return -EINVAL;
    if (o.mode != LOG_MODE_SYNC && o.mode != LOG_MODE_ASYNC) return -EINVAL;
    if (o.full_policy != LOG_FULL_BLOCK && o.full_policy != LOG_FULL_DROP) return -EINVAL;
    if (!o.max_line) o.max_line = 16384;
    if (o.max_line < 512 || o.max_line > (1u << 20)) return -EINVAL;
    if (!o.ring_bytes) o.ring_bytes = 4u << 20;
    if (o.ring_bytes < (64u << 10) || o.ring_bytes > LOG__RING_MAX) return -EINVAL;
    if (o.name) {
        const char *p;
        size_t n = strlen(o.name);
        if (n > 64) return -EINVAL;
        for (p = o.name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f ||
                log__is_c1((const unsigned char *)p, n - (size_t)(p - o.name)))
                return -EINVAL;
    }
    if (o.mode == LOG_MODE_ASYNC) {
        while (nslots * 2 * LOG__SLOT <= o.ring_bytes) nslots *= 2;
        if (2 * ((LOG__HDR + o.max_line + LOG__SLOT - 1) / LOG__SLOT) > nslots) return -EINVAL;
    }

    c = (struct log__core *)LOG_MALLOC(sizeof *c);
    if (!c) return -ENOMEM;
    memset(c, 0, sizeof *c);
    c->nslots = nslots;
    c->root.core = c;
    c->mode = o.mode;
    c->policy = o.full_policy;
    c->max_line = o.max_line;
    c->now = o.now ? o.now : log__realtime;
    c->now_ud = o.now_ud;
    c->sleep_us = o.writer_sleep_us ? o.writer_sleep_us : 10000;
    if (c->sleep_us < 100) c->sleep_us = 100;
    c->timeout_ms = o.exit_timeout_ms ? (long)o.exit_timeout_ms : 5000;
    c->no_atexit = o.no_atexit;
    if (o.name) c->name_len = log__esc_copy(c->name, sizeof c->name, o.name);
    {
        char host[256];
        if (o.hostname) {
            snprintf(host, sizeof host, "%s", o.hostname);
        } else if (gethostname(host, sizeof host) != 0) {
            host[0] = 0;
        }
        host[64] = 0; /* bounded, so the fixed part of a line always fits */
        log__esc_copy(c->hostname, sizeof c->hostname, host);
        tzset();
        log__render_pidhost(c);
    }
    for (i = 0; i < LOG_MAX_SINKS; i++) c->sinks[i].fd = -1;
    for (i = 0; i < nsinks; i++) {
        pthread_mutex_init(&c->sinks[i].mu, NULL);
        c->nsinks = i + 1;
        rc = log__init_sink(c, &c->sinks[i], &sinks[i]);
        if (rc) {
            c->mode = LOG_MODE_SYNC;
            log__free_core(c);
            return rc;
        }
    }
    for (i = 0; i < LOG__NV; i++) c->vmin[i] = LOG_LEVEL_OFF + 1;
    c->min_level = LOG_LEVEL_OFF + 1;
    for (i = 0; i < c->nsinks; i++) {
        struct log__sink *s = &c->sinks[i];
        if (s->level < c->vmin[s->variant]) c->vmin[s->variant] = s->level;
        if (s->level < c->min_level) c->min_level = s->level;
    }

    c->root.level = o.level ? log__clamp_level(o.level) : LOG_LEVEL_INFO;
    env = o.level_env ? o.level_env : "LOG_LEVEL";
    if (*env) {
        const char *val = getenv(env);
        if (val) {
            int lv = log_level_parse(val);
            if (lv >= 0)
                c->root.level = lv;
            else
                fprintf(stderr, "log.h: ignoring %s=\"%.40s\" (expected trace, debug, info, warn, "
                                "error, fatal, off or 0..100)\n", env, val);
        }
    }
    log__update_gate(&c->root);

    if (c->mode == LOG_MODE_ASYNC) {
        uint64_t n = c->nslots;
        pthread_condattr_t ca;
        sigset_t all, old;
        c->nslots = n;
        c->mask = n - 1;
        c->data = (unsigned char *)LOG_MALLOC(n * LOG__SLOT);
        c->seq = (uint64_t *)LOG_MALLOC(n * sizeof(uint64_t));
        c->wbuf = (char *)LOG_MALLOC(c->max_line);
        c->items = (struct log__item *)LOG_MALLOC(sizeof(struct log__item) * LOG__BATCH);
        c->iov = (struct iovec *)LOG_MALLOC(sizeof(struct iovec) * LOG__IOV);
        c->lens = (size_t *)LOG_MALLOC(sizeof(size_t) * LOG__IOV);
        pthread_mutex_init(&c->mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->wake_cv, &ca);
        pthread_cond_init(&c->done_cv, &ca);
        pthread_cond_init(&c->space_cv, &ca);
        pthread_condattr_destroy(&ca);
        if (!c->data || !c->seq || !c->wbuf || !c->items || !c->iov || !c->lens) {
            log__free_core(c);
            return -ENOMEM;
        }
        memset(c->seq, 0, n * sizeof(uint64_t)); /* 0: no ticket published */
        memset(c->data, 0, n * LOG__SLOT); /* fault the ring in now, not on the callers' path */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&c->thread, NULL, log__writer, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc) {
            log__free_core(c);
            return -EAGAIN;
        }
        c->thread_started = 1;
    }
    log__register(c);
    *out = &c->root;
    return 0;
}

LOG_API void log_destroy(log_logger *lg)
{
    struct log__core *c;
    if (!lg) return;
    c = lg->core;
    if (lg != &c->root) {
        LOG_FREE(lg);
        return;
    }
    log__unregister(c);
    /* a writer stuck in a write that never returns frees the core itself */
    if (c->thread_started && !log__stop_writer(c, c->timeout_ms, 1)) return;
    if (c->writer_lost) return; /* the exit flush gave up on it: the process is ending */
    log__free_core(c);
}

LOG_API int log_child(log_logger *parent, log_logger **out, const log_field *fields, size_t n)
{
    size_t i, total = parent ? parent->nbound + n : 0, bytes;
    log_logger *ch;
    log_field *f;
    char *str;
    if (!out) return -EINVAL;
    *out = NULL;
    if (!parent || (n && !fields)) return -EINVAL;
    bytes = sizeof(log_logger) + total * sizeof(log_field);
    for (i = 0; i < total; i++) {
        const log_field *src = i < parent->nbound ? &parent->bound[i] : &fields[i - parent->nbound];
        if (src->key) bytes += log__klen(src) + 1;
        if (src->type == LOG_FIELD_STR && src->v.s) bytes += log__slen(src) + 1;
    }
    ch = (log_logger *)LOG_MALLOC(bytes);
    if (!ch) return -ENOMEM;
    f = (log_field *)(void *)(ch + 1);
    str = (char *)(f + total);
    for (i = 0; i < total; i++) {
        const log_field *src = i < parent->nbound ? &parent->bound[i] : &fields[i - parent->nbound];
        f[i] = *src;
        if (src->type < LOG_FIELD_STR || src->type > LOG_FIELD_NULL) f[i].type = LOG_FIELD_NULL;
        if (src->key) { /* klen bytes, which need not end with a NUL */
            size_t kl = log__klen(src);
            memcpy(str, src->key, kl);
            str[kl] = 0;
            f[i].key = str;
            f[i].klen = (unsigned)kl;
            str += kl + 1;
        }
        if (src->type == LOG_FIELD_STR && src->v.s) {
            size_t sl = log__slen(src);
            memcpy(str, src->v.s, sl);
            str[sl] = 0;
            f[i].v.s = str;
            f[i].len = sl;
            str += sl + 1;
        }
    }
    ch->core = parent->core;
    ch->bound = f;
    ch->nbound = total;
    ch->level = LOG__LOAD(&parent->level);
    log__update_gate(ch);
    *out = ch;
    return 0;
}

LOG_API void log_set_level(log_logger *lg, int level)
{
    LOG__STORE(&lg->level, log__clamp_level(level));
    log__update_gate(lg);
}

LOG_API int log_get_level(const log_logger *lg)
{
    return LOG__LOAD(&lg->level);
}

/* ---- the logging path ----------------------------------------------------------- */

static void log__emit(log_logger *lg, int level, const char *msg, size_t msglen,
                      const log_field *f, size_t nf)
{
    struct log__core *c = lg->core;
    int64_t t;
    int v, async, trunc;
    uint64_t end = 0;
    char stackbuf[LOG__STACK];
    if (level < log__gate(lg) || level >= LOG_LEVEL_OFF) return;
    if (level < LOG_LEVEL_TRACE) level = LOG_LEVEL_TRACE;
    t = c->now(c->now_ud);
    async = c->mode == LOG_MODE_ASYNC && !__atomic_load_n(&c->direct, __ATOMIC_ACQUIRE);
    for (v = 0; v < LOG__NV; v++) {
        char *buf = stackbuf, *heap = NULL;
        size_t cap = c->max_line < sizeof stackbuf ? c->max_line : sizeof stackbuf, len;
        if (c->vmin[v] > level) continue;
        len = log__format(c, lg, v, level, t, msg, msglen, f, nf, buf, cap, &trunc);
        if (trunc && cap < c->max_line && (heap = (char *)LOG_MALLOC(c->max_line)) != NULL) {
            buf = heap;
            len = log__format(c, lg, v, level, t, msg, msglen, f, nf, buf, c->max_line, &trunc);
        }
        if (trunc) LOG__ADD(&c->truncated, 1);
        if (async) {
            uint64_t e = log__enqueue(c, v, level, t, buf, len);
            if (e) end = e;
        } else {
            log__dispatch(c, v, level, t, buf, len, 1);
        }
        LOG_FREE(heap);
    }
    if (async && level >= LOG_LEVEL_FATAL && end) log__wait_done(c, end, c->timeout_ms);
}

LOG_API void log_write(log_logger *lg, int level, const char *msg, const log_field *fields, size_t n)
{
    log__emit(lg, level, msg, msg ? strlen(msg) : 0, fields, fields ? n : 0);
}

LOG_API void log_writen(log_logger *lg, int level, const char *msg, size_t msglen,
                        const log_field *fields, size_t n)
{
    log__emit(lg, level, msg, msg ? msglen : 0, fields, fields ? n : 0);
}

LOG_API void log_vwritef(log_logger *lg, int level, const log_field *fields, size_t n,
                         const char *fmt, va_list ap)
{
    char mb[1024], *m = mb;
    int len;
    va_list ap2;
    if (level < log__gate(lg) || level >= LOG_LEVEL_OFF) return;
    if (!fmt) {
        log__emit(lg, level, NULL, 0, fields, fields ? n : 0);
        return;
    }
    va_copy(ap2, ap);
    len = vsnprintf(mb, sizeof mb, fmt, ap);
    if (len < 0) {
        len = 0;
        mb[0] = 0;
    } else if ((size_t)len >= sizeof mb) {
        size_t want = (size_t)len + 1 < lg->core->max_line + 1 ? (size_t)len + 1 : lg->core->max_line + 1;
        char *hm = (char *)LOG_MALLOC(want);
        if (hm) {
            vsnprintf(hm, want, fmt, ap2);
            m = hm;
            len = (int)(want - 1);
        } else {
            len = (int)sizeof mb - 1;
        }
    }
    va_end(ap2);
    log__emit(lg, level, m, (size_t)len, fields, fields ? n : 0);
    if (m != mb) LOG_FREE(m);
}

LOG_API void log_writef(log_logger *lg, int level, const log_field *fields, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwritef(lg, level, fields, n, fmt, ap);
    va_end(ap);
}

LOG_API int log_flush(log_logger *lg)
{
    struct log__core *c = lg->core;
    if (c->mode == LOG_MODE_ASYNC && !__atomic_load_n(&c->direct, __ATOMIC_ACQUIRE))
        log__wait_done(c, __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE), 0);
    return 0;
}

LOG_API void log_get_stats(const log_logger *lg, log_stats *out)
{
    const struct log__core *c = lg->core;
    int i;
    memset(out, 0, sizeof *out);
    for (i = 0; i < c->nsinks; i++) {
        out->lines += LOG__LOAD(&c->sinks[i].lines);
        out->bytes += LOG__LOAD(&c->sinks[i].bytes);
        out->write_errors += LOG__LOAD(&c->sinks[i].errors);
        out->rotations += LOG__LOAD(&c->sinks[i].rotations);
    }
    out->dropped = LOG__LOAD(&c->dropped);
    out->truncated = LOG__LOAD(&c->truncated);
    out->last_error = LOG__LOAD(&c->last_error);
}

#endif /* LOG_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the project's authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DIRECT, INDIRECT OR
OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
*/
