/* evloop.h - an event loop in one header: timers, immediates, next-tick,
 * fd watchers, TCP and Unix sockets with buffered writes and backpressure,
 * signals, thread-safe wake-ups, child processes and file watching.
 * MIT licensed (see the end of the file).
 *
 * CONTENTS
 *   1. Quick start            7. Streams: TCP, Unix sockets, pipes
 *   2. Compile-time options   8. Signals
 *   3. The loop and phases    9. Async wake-ups (thread-safe)
 *   4. Handles and lifetime  10. Child processes
 *   5. Timers, hooks, ticks  11. File watching
 *   6. Fd watchers           12. Errors, limits, threading
 *
 * 1. QUICK START ---------------------------------------------------------
 *
 *   In exactly one .c file:
 *
 *     #define EVLOOP_IMPLEMENTATION
 *     #include "evloop.h"
 *
 *   and in any other file just `#include "evloop.h"`. Build with one call:
 *
 *     cc -O2 app.c -o app -pthread
 *
 *   A timer that fires after 100 ms, then the loop ends (no active handles):
 *
 *     static void on_timer(evloop_timer *t) { puts("tick"); }
 *     int main(void) {
 *         evloop *loop;
 *         evloop_timer t;
 *         evloop_new(&loop, NULL);
 *         evloop_timer_init(loop, &t);
 *         evloop_timer_start(&t, on_timer, 100, 0);
 *         evloop_run(loop, EVLOOP_RUN_DEFAULT);
 *         evloop_close(&t.handle, NULL);
 *         evloop_run(loop, EVLOOP_RUN_DEFAULT);    (runs the close callback)
 *         evloop_free(loop);
 *     }
 *
 *   A TCP echo server is examples/echo_server.c.
 *
 * 2. COMPILE-TIME OPTIONS (define before including the header) ------------
 *
 *   EVLOOP_IMPLEMENTATION   in one file: compile the implementation there.
 *   EVLOOP_STATIC           make every function static (the implementation
 *                           then lives in each file that defines
 *                           EVLOOP_IMPLEMENTATION; use with one file).
 *   EVLOOP_API              decoration of every declaration (default extern).
 *   EVLOOP_MALLOC(n), EVLOOP_REALLOC(p, n), EVLOOP_FREE(p)
 *                           allocator (default malloc/realloc/free); define
 *                           all three in the implementation file.
 *   EVLOOP_ASSERT(c)        check of programmer misuse (default assert()).
 *   EVLOOP_BACKEND_POLL     use poll(2) instead of the platform's default
 *                           (epoll on Linux, kqueue on macOS and the BSDs).
 *   EVLOOP_BACKEND_KQUEUE   use kqueue where the platform has it but is not
 *                           recognised as one of those.
 *
 *   The implementation uses POSIX and Linux interfaces (accept4, pipe2,
 *   inotify) that glibc declares only with _GNU_SOURCE (strict -std=c11
 *   hides even POSIX). evloop.h defines _GNU_SOURCE itself when it comes
 *   before every system header, so: in the file that defines
 *   EVLOOP_IMPLEMENTATION, include evloop.h first, and plain -std=c11 (or
 *   any -std) works. If a system header must come first there, compile
 *   that file with -D_GNU_SOURCE; -std=gnu11 alone is not enough (it does
 *   not define _GNU_SOURCE), and the build stops with an #error that says
 *   so. Files that include only the declarations need nothing.
 *
 * 3. THE LOOP AND ITS PHASES ----------------------------------------------
 *
 *   evloop_new() makes a loop; evloop_run() runs it; evloop_free() frees it
 *   once every handle is closed. One iteration of evloop_run() goes through
 *   the phases of Node's loop, in this order:
 *
 *     timers     callbacks of timers whose deadline has passed, in order of
 *                deadline (equal deadlines: in order of starting)
 *     pending    callbacks deferred from the previous iteration: completed
 *                writes, connects, shutdowns
 *     idle       idle hooks (while any is active, the poll does not block)
 *     prepare    prepare hooks, just before blocking
 *     poll       wait for I/O (blocks until the next timer when nothing else
 *                is ready) and run the I/O callbacks
 *     check      immediates (evloop_set_immediate) and check hooks
 *     close      close callbacks
 *
 *   After every callback the loop runs the next-tick queue until it is empty
 *   (evloop_next_tick, like process.nextTick), before it moves on.
 *
 *   Run modes: EVLOOP_RUN_DEFAULT runs until no active, referenced handle is
 *   left (or evloop_stop); EVLOOP_RUN_ONCE runs one iteration, blocking in
 *   the poll if nothing is ready; EVLOOP_RUN_NOWAIT runs one iteration
 *   without blocking. ONCE and NOWAIT let a host program drive the loop;
 *   evloop_backend_fd() and evloop_backend_timeout() give what to wait on.
 *
 *   The loop caches the time at the start of each iteration (evloop_now(),
 *   milliseconds on the monotonic clock); evloop_update_time() refreshes it.
 *   Timers are relative to the cached time.
 *
 *   By default the loop sets SIGPIPE to be ignored when it was left at its
 *   default disposition (writes to a closed peer then fail with -EPIPE
 *   instead of killing the process); evloop_options.keep_sigpipe opts out.
 *
 * 4. HANDLES AND THEIR LIFETIME --------------------------------------------
 *
 *   Every handle type (evloop_timer, evloop_hook, evloop_io, evloop_stream,
 *   evloop_signal, evloop_async, evloop_process, evloop_fswatch) begins with
 *   a member `evloop_handle handle`. You allocate handles (on the stack, in
 *   your own structs, with malloc); the loop never allocates or frees them.
 *   `handle.data` is yours; every other field is private.
 *
 *     init      evloop_X_init(loop, &x, ...) sets up the handle.
 *     use       start/stop as often as needed.
 *     close     evloop_close(&x.handle, close_cb) stops everything the
 *               handle does; its close_cb runs in the close phase. Only then
 *               may the memory be reused or freed. Pending write callbacks
 *               run first, with -ECANCELED.
 *
 *   A handle is active while it can produce events (a started timer, a
 *   reading or listening stream, a stream with queued writes, a running
 *   process...). evloop_run(DEFAULT) returns when no active handle is
 *   referenced; evloop_unref() makes a handle not keep the loop alive
 *   (evloop_ref() undoes it). evloop_free() fails with -EBUSY while any
 *   handle is not closed; evloop_walk() visits them (to close them all).
 *
 *   Callbacks of a call: a call that fails returns a negative errno and
 *   never runs its callback; a call that succeeds runs its callback exactly
 *   once, never from inside the call itself.
 *
 * 5. TIMERS, HOOKS, IMMEDIATES, NEXT-TICK -----------------------------------
 *
 *   evloop_timer_start(t, cb, timeout, repeat): cb after `timeout` ms, then
 *   every `repeat` ms if repeat > 0. Start, stop and restart from any
 *   callback. A binary-heap (4-ary) keeps timers: start and stop are
 *   O(log n), a million live timers are fine. A repeating timer is
 *   rescheduled `repeat` ms after the loop time at which it ran.
 *
 *   evloop_hook: idle, prepare and check hooks (EVLOOP_HOOK_IDLE, _PREPARE,
 *   _CHECK) run once per iteration in their phase while started.
 *   evloop_set_immediate(loop, cb, arg) runs cb(loop, arg) once in the next
 *   check phase, like setImmediate; immediates queued during the check
 *   phase run in the next iteration. evloop_next_tick(loop, cb, arg) runs
 *   cb as soon as the current callback returns, like process.nextTick.
 *   Both copy (cb, arg) into a queue that grows as needed and never shrinks
 *   (no allocation in steady state).
 *
 * 6. FD WATCHERS -------------------------------------------------------------
 *
 *   evloop_io watches a descriptor you own for EVLOOP_READABLE and/or
 *   EVLOOP_WRITABLE (level-triggered). Closing the handle does not close the
 *   descriptor. Only one watcher (io handle or stream) per descriptor.
 *   EVLOOP_DISCONNECT comes with the other events on a hang-up or an error
 *   (epoll's EPOLLHUP/EPOLLERR/EPOLLRDHUP, poll's POLLHUP/POLLERR/POLLNVAL,
 *   kqueue's EV_EOF/EV_ERROR). Regular files and directories are always
 *   "ready", so evloop_io_start refuses them with -EPERM on every backend;
 *   for other descriptors that do not support polling (some devices, such
 *   as /dev/null) epoll refuses them with -EPERM, while poll and kqueue
 *   report them always ready.
 *
 * 7. STREAMS: TCP, UNIX SOCKETS, PIPES ----------------------------------------
 *
 *   One type, evloop_stream, for TCP sockets (evloop_tcp_init), Unix-domain
 *   sockets (evloop_unix_init) and pipes or any stream descriptor
 *   (evloop_pipe_init + evloop_stream_open). A stream owns its descriptor:
 *   closing the handle closes it.
 *
 *   Servers: evloop_tcp_bind / evloop_unix_bind, then evloop_listen(s,
 *   backlog, on_connection). on_connection(server, status) runs once per
 *   accepted connection (several per wake-up); call evloop_accept(server,
 *   client) inside it with an initialized client, or the connection is
 *   closed. When the process runs out of descriptors (EMFILE, ENFILE), the
 *   server stops accepting for evloop_options.accept_retry_ms (default 100)
 *   and reports the error once to on_connection; pending connections wait
 *   in the kernel's backlog instead of spinning the loop.
 *   Clients: evloop_tcp_connect / evloop_unix_connect(s, ..., on_connect).
 *
 *   Reading: evloop_read_start(s, on_read). on_read(s, nread, buf) gets
 *   nread > 0 bytes at buf, or nread == EVLOOP_EOF at end of stream, or a
 *   negative errno; after EOF or an error, reading is stopped. buf points
 *   into a buffer the loop shares between all streams (read_buffer_size,
 *   default 64 KiB): it is valid only until on_read returns, so copy what
 *   you keep. Idle connections cost no buffer memory.
 *
 *   Writing: evloop_write(req, s, bufs, n, on_write) writes at once what the
 *   kernel takes and queues the rest. The request and the bytes stay yours
 *   and must stay valid, untouched, until on_write(req, status) runs (the
 *   array `bufs` itself is copied). Queued writes go out in order, several
 *   per writev. Status is 0, or a negative errno (then the connection is
 *   unusable), or -ECANCELED when the stream was closed first. A write
 *   call that fails returns the error and never runs on_write; if it
 *   fails after part of its bytes went out (no memory to queue the rest),
 *   the stream is unusable from then on: later writes fail with -EPIPE.
 *   evloop_write_copy() copies what it cannot write at once, so the
 *   caller's bytes may be reused immediately; its callback may be NULL.
 *   evloop_try_write() writes what it can now and never queues.
 *
 *   Backpressure: evloop_stream_queued(s) is the number of bytes waiting.
 *   evloop_stream_set_hwm(s, high_water_mark, on_drain): once a write
 *   leaves the queue at or above the mark, evloop_stream_writable() is 0
 *   and on_drain(s) runs when the queue is empty again (Node's 'drain').
 *
 *   evloop_sendfile(req, s, fd, offset, len, on_write) queues bytes of a
 *   file, in order with the other writes (sendfile(2) on Linux; a read and
 *   a write elsewhere); the file descriptor must stay open until on_write.
 *
 *   evloop_shutdown(s, on_shutdown) half-closes (SHUT_WR) after the queued
 *   writes (and, on a stream still connecting, once it is connected); the
 *   stream can still read. A connect or a queued write that fails fails the
 *   shutdown with the same error. evloop_tcp_nodelay and
 *   evloop_tcp_keepalive set TCP options on an open socket.
 *   evloop_stream_detach(s) hands the descriptor out without closing it
 *   (for a protocol upgrade that moves the connection elsewhere).
 *
 * 8. SIGNALS -------------------------------------------------------------------
 *
 *   evloop_signal_start(sig, cb, signum) runs cb(sig, signum) on the loop
 *   thread each time the process receives signum; signals that arrive
 *   before the loop gets to them coalesce (one call per signal number),
 *   but none is lost, however many arrive.
 *   Several handles, and several loops, may watch the same signal; the
 *   previous disposition is restored when the last handle stops. A handle
 *   made with evloop_signal_start_oneshot stops after its first delivery.
 *
 * 9. ASYNC WAKE-UPS --------------------------------------------------------------
 *
 *   evloop_async_send(a) is the one function of this header that may be
 *   called from any thread (and from a signal handler). It makes the loop
 *   run a's callback at least once after the call; several sends before
 *   the callback runs coalesce into one call. An async handle is active
 *   (keeps the loop alive) until closed, unless unreferenced. Close it (on
 *   the loop thread) only once no other thread can call evloop_async_send
 *   on it any more, e.g. after joining them: a send that races with the
 *   close, or comes after it, uses memory the close gave back to you.
 *
 * 10. CHILD PROCESSES --------------------------------------------------------------
 *
 *   evloop_spawn(loop, p, options, on_exit) starts `options->file` with
 *   argv `options->args` (searched in PATH when file has no slash),
 *   environment `options->env` (NULL: inherit), working directory
 *   `options->cwd`. options->stdio[0..2] say what the child's stdin, stdout
 *   and stderr are: EVLOOP_STDIO_INHERIT (the default), EVLOOP_STDIO_IGNORE
 *   (/dev/null), EVLOOP_STDIO_PIPE (a socket pair; `stream` must point to a
 *   stream made with evloop_pipe_init and not yet opened, a different one
 *   for each of the three, which becomes the parent's end), or
 *   EVLOOP_STDIO_FD (`fd` is duplicated into the child). A program that
 *   cannot be executed makes evloop_spawn fail with its errno (-ENOENT,
 *   -EACCES) and no process is left behind. on_exit(p, exit_status,
 *   term_signal) runs once the child has ended; the pipes may still hold
 *   data to read after that. evloop_process_kill sends a signal.
 *   Children are reaped with waitpid() on their pid when SIGCHLD arrives:
 *   do not reap them elsewhere (waitpid(-1, ...)) in the same process.
 *
 *   evloop_spawn initializes p itself (there is no evloop_process_init): p
 *   must not be a live handle. To run another child in the same struct,
 *   close the previous one and spawn from its close callback, or later;
 *   EVLOOP_ASSERT catches a struct still in use. When evloop_spawn fails,
 *   p is not a handle (nothing to close). Closing a process that is still
 *   running cancels its exit callback; the child keeps running and is
 *   reaped in the background when it ends (no zombie is left).
 *
 * 11. FILE WATCHING ---------------------------------------------------------------
 *
 *   evloop_fswatch_start(w, path, options, cb) watches a file or a directory
 *   (inotify; Linux only, -ENOSYS elsewhere). cb(w, name, events) gets the
 *   path relative to the watched directory (for a file: its name) and
 *   EVLOOP_FS_ADD / _CHANGE / _DELETE / _RENAME bits. The name is valid
 *   only during the callback (copy it to keep it). With
 *   EVLOOP_FSWATCH_RECURSIVE subdirectories are watched too, including
 *   ones created later (files already in them are reported as added). With
 *   options->debounce_ms > 0 events are collected until no new one arrives
 *   for that long (at most 10 times that long after the first), merged per
 *   path, and delivered in order of first occurrence.
 *
 *   In a directory, a rename reports EVLOOP_FS_RENAME for the old name and
 *   for the new one. A single file is watched through its directory, by
 *   name: a file renamed over it (how editors save) reports
 *   EVLOOP_FS_CHANGE, the file renamed away EVLOOP_FS_DELETE, made again
 *   EVLOOP_FS_ADD. A symbolic link given as the directory is followed
 *   (links inside the tree are not); a link given as the single file is
 *   watched as the link's own name in its directory (writes through it to
 *   a target that lives elsewhere are not seen). Deleting (or moving) the
 *   watched directory reports EVLOOP_FS_DELETE with an empty name; the
 *   watcher then stays started but sees nothing more. When the kernel's
 *   event queue overflows, cb runs once with EVLOOP_FS_OVERFLOW and an
 *   empty name: rescan what you watch. A callback may stop, restart or
 *   close its watcher; events not yet delivered are then dropped.
 *
 * 12. ERRORS, LIMITS, THREADING ------------------------------------------------------
 *
 *   Errors: functions that can fail return 0 or a negative errno value
 *   (-EINVAL, -ENOMEM, -ECONNREFUSED, ...); EVLOOP_EOF marks the end of a
 *   stream. evloop_strerror(err) gives a message, evloop_err_name(err) the
 *   symbol ("ECONNRESET"). Misuse (a NULL handle, starting a closed handle)
 *   is caught by EVLOOP_ASSERT.
 *
 *   Limits (evloop_options, all zero = defaults):
 *     read_buffer_size   shared read buffer, default 65536 bytes
 *     max_events         events taken per poll, default 1024 (epoll and
 *                        kqueue; the poll backend takes all at once)
 *     accept_retry_ms    pause of a listener out of descriptors, default 100
 *     keep_sigpipe       1: leave SIGPIPE's disposition alone
 *   Listen backlog: evloop_listen's argument, default 511 when <= 0.
 *   Up to 64 loops in one process may watch signals (or spawn processes).
 *
 *   Threading: a loop and its handles belong to the thread that runs it.
 *   Only evloop_async_send() may be called from other threads. Different
 *   loops may run on different threads at once (one loop per thread, like
 *   Node's cluster); signals are delivered to every loop that watches them.
 *
 *   Memory: no allocation per event in steady state. Queues (timers heap,
 *   next-tick, immediates, fd table, a file watcher's path and debounce
 *   buffers) grow geometrically and are reused. evloop_write_copy
 *   allocates for the part it cannot write at once, evloop_write for an
 *   array of more than 4 buffers it cannot write at once, a file watcher
 *   for each new directory it follows.
 */

#ifndef EVLOOP_H
#define EVLOOP_H

#if !defined(_GNU_SOURCE) && defined(__linux__)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>  /* ssize_t, pid_t */
#include <sys/uio.h>    /* struct iovec */
#include <sys/socket.h> /* struct sockaddr, struct sockaddr_storage */

#ifndef EVLOOP_API
#if defined(EVLOOP_STATIC) && defined(__GNUC__)
#define EVLOOP_API static __attribute__((unused))
#elif defined(EVLOOP_STATIC)
#define EVLOOP_API static
#else
#define EVLOOP_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types ----------------------------------------------------------------- */

typedef struct evloop evloop;
typedef struct evloop_handle evloop_handle;
typedef struct evloop_timer evloop_timer;
typedef struct evloop_hook evloop_hook;
typedef struct evloop_io evloop_io;
typedef struct evloop_stream evloop_stream;
typedef struct evloop_write_req evloop_write_req;
typedef struct evloop_signal evloop_signal;
typedef struct evloop_async evloop_async;
typedef struct evloop_process evloop_process;
typedef struct evloop_fswatch evloop_fswatch;

/* A byte range for writes: { .iov_base, .iov_len }, the same as writev's. */
typedef struct iovec evloop_buf;

/* The end of a stream, as on_read's nread. Not an errno value. */
#define EVLOOP_EOF (-4095)

typedef enum evloop_run_mode {
    EVLOOP_RUN_DEFAULT = 0, /* until no active referenced handle, or stop */
    EVLOOP_RUN_ONCE,        /* one iteration; may block in the poll */
    EVLOOP_RUN_NOWAIT       /* one iteration; never blocks */
} evloop_run_mode;

typedef enum evloop_handle_type {
    EVLOOP_TIMER = 1,
    EVLOOP_HOOK,
    EVLOOP_IO,
    EVLOOP_TCP,
    EVLOOP_UNIX,
    EVLOOP_PIPE,
    EVLOOP_SIGNAL,
    EVLOOP_ASYNC,
    EVLOOP_PROCESS,
    EVLOOP_FSWATCH
} evloop_handle_type;

/* Events of an fd watcher. */
enum {
    EVLOOP_READABLE = 1,
    EVLOOP_WRITABLE = 2,
    EVLOOP_DISCONNECT = 4 /* reported with READABLE on hang-up or error */
};

typedef struct evloop_options {
    size_t read_buffer_size;  /* shared read buffer; default 65536 */
    int max_events;           /* events per poll (epoll, kqueue); default 1024 */
    unsigned accept_retry_ms; /* listener pause after EMFILE; default 100 */
    int keep_sigpipe;         /* 1: do not ignore SIGPIPE */
} evloop_options;

typedef void (*evloop_close_cb)(evloop_handle *handle);
typedef void (*evloop_timer_cb)(evloop_timer *timer);
typedef void (*evloop_hook_cb)(evloop_hook *hook);
typedef void (*evloop_io_cb)(evloop_io *io, unsigned events);
typedef void (*evloop_task_cb)(evloop *loop, void *arg);
typedef void (*evloop_connection_cb)(evloop_stream *server, int status);
typedef void (*evloop_connect_cb)(evloop_stream *stream, int status);
typedef void (*evloop_read_cb)(evloop_stream *stream, ssize_t nread, const char *buf);
typedef void (*evloop_write_cb)(evloop_write_req *req, int status);
typedef void (*evloop_shutdown_cb)(evloop_stream *stream, int status);
typedef void (*evloop_drain_cb)(evloop_stream *stream);
typedef void (*evloop_signal_cb)(evloop_signal *sig, int signum);
typedef void (*evloop_async_cb)(evloop_async *async);
typedef void (*evloop_exit_cb)(evloop_process *proc, int64_t exit_status, int term_signal);
typedef void (*evloop_fswatch_cb)(evloop_fswatch *w, const char *name, unsigned events);

/* The common head of every handle. Only `data` is yours. */
struct evloop_handle {
    void *data;
    evloop *loop;
    evloop_close_cb close_cb;
    evloop_handle *next, *prev;  /* the loop's list of handles */
    evloop_handle *closing_next; /* the loop's list of closing handles */
    uint32_t flags;
    uint8_t type;
};

/* A node of a circular doubly linked list. Private. */
typedef struct evloop__queue {
    struct evloop__queue *next, *prev;
} evloop__queue;

/* An fd the loop polls; embedded in the handles that poll. Private. */
typedef struct evloop__watcher {
    void (*cb)(evloop *loop, struct evloop__watcher *w, unsigned events);
    int fd;
    int poll_index;      /* poll backend: slot in the pollfd array, or -1 */
    uint8_t events;      /* wanted */
    uint8_t registered;  /* what the backend has */
    uint8_t et;          /* edge-triggered: registered once, every edge reported */
} evloop__watcher;

struct evloop_timer {
    evloop_handle handle;
    evloop_timer_cb cb;
    uint64_t due;        /* loop time of the next run */
    uint64_t repeat;
    size_t heap_index;   /* position in the loop's heap, or SIZE_MAX */
};

typedef enum evloop_hook_kind {
    EVLOOP_HOOK_IDLE = 0,
    EVLOOP_HOOK_PREPARE,
    EVLOOP_HOOK_CHECK
} evloop_hook_kind;

struct evloop_hook {
    evloop_handle handle;
    evloop_hook_cb cb;
    evloop__queue node; /* the loop's list of started hooks of this kind */
    evloop_hook_kind kind;
};

struct evloop_io {
    evloop_handle handle;
    evloop__watcher w;
    evloop_io_cb cb;
};

struct evloop_write_req {
    void *data;                /* yours */
    evloop_stream *stream;     /* read-only */
    evloop_write_cb cb;
    evloop_write_req *next;
    evloop_buf *bufs;          /* bufsml, or allocated when more than 4 */
    unsigned nbufs;            /* entries in bufs */
    unsigned index;            /* first entry not yet fully written */
    int status;
    uint32_t flags;
    union {
        evloop_buf bufsml[4];  /* up to four buffers, inline */
        struct {
            int fd;
            int64_t offset;
            uint64_t left;
        } file;                /* evloop_sendfile */
    } u;
};

struct evloop_stream {
    evloop_handle handle;
    evloop__watcher w;
    evloop_read_cb read_cb;
    union {
        evloop_connection_cb connection; /* listening stream */
        evloop_connect_cb connect;       /* connecting stream */
    } cb;
    evloop_shutdown_cb shutdown_cb;
    evloop_drain_cb drain_cb;
    evloop_write_req *wq_head, *wq_tail;     /* writing, in order */
    evloop_write_req *done_head, *done_tail; /* finished, callback due */
    evloop_stream *pending_next;             /* the loop's pending list */
    size_t queued;                           /* bytes not yet written */
    size_t hwm;                              /* high-water mark, 0: none */
    int accepted_fd;                         /* listening: offered fd */
    int error;                               /* deferred connect/shutdown status */
};

struct evloop_signal {
    evloop_handle handle;
    evloop_signal_cb cb;
    evloop__queue node; /* the loop's list of started signal handles */
    int signum;
    int oneshot;
};

struct evloop_async {
    evloop_handle handle;
    evloop_async_cb cb;
    evloop__queue node; /* the loop's list of async handles */
    int pending;               /* atomic */
};

typedef enum evloop_stdio_kind {
    EVLOOP_STDIO_INHERIT = 0, /* the parent's descriptor */
    EVLOOP_STDIO_IGNORE,      /* /dev/null */
    EVLOOP_STDIO_PIPE,        /* a socket pair; .stream is the parent's end */
    EVLOOP_STDIO_FD           /* .fd duplicated into the child */
} evloop_stdio_kind;

typedef struct evloop_stdio {
    evloop_stdio_kind kind;
    int fd;                /* EVLOOP_STDIO_FD */
    evloop_stream *stream; /* EVLOOP_STDIO_PIPE: made with evloop_pipe_init */
} evloop_stdio;

enum {
    EVLOOP_PROCESS_DETACHED = 1 /* child in a new session (setsid) */
};

typedef struct evloop_process_options {
    const char *file;       /* program; PATH is searched when it has no '/' */
    char *const *args;      /* argv, NULL-terminated (args[0]: its name) */
    char *const *env;       /* NULL-terminated "K=V" list; NULL: inherit */
    const char *cwd;        /* NULL: the parent's */
    evloop_stdio stdio[3];  /* stdin, stdout, stderr */
    unsigned flags;         /* EVLOOP_PROCESS_* */
} evloop_process_options;

struct evloop_process {
    evloop_handle handle;
    evloop_exit_cb exit_cb;
    evloop_process *next_child; /* the loop's list of running children */
    pid_t pid;                  /* read-only */
    int term_signal;            /* read-only, once exited */
    int64_t exit_status;        /* read-only, once exited */
};

/* File-watch events. */
enum {
    EVLOOP_FS_ADD = 1,
    EVLOOP_FS_CHANGE = 2,
    EVLOOP_FS_DELETE = 4,
    EVLOOP_FS_RENAME = 8,
    EVLOOP_FS_OVERFLOW = 16
};

enum {
    EVLOOP_FSWATCH_RECURSIVE = 1
};

typedef struct evloop_fswatch_options {
    unsigned flags;       /* EVLOOP_FSWATCH_RECURSIVE */
    unsigned debounce_ms; /* 0: deliver each event at once */
} evloop_fswatch_options;

struct evloop_fswatch {
    evloop_handle handle;
    evloop__watcher w;
    evloop_fswatch_cb cb;
    evloop_timer debounce;
    struct evloop__fswatch_state *st; /* private, allocated by start */
    unsigned gen; /* counts stops: a callback may stop (and restart) w */
};

/* ---- the loop ---------------------------------------------------------------- */

/* Makes a loop in *loopp. opts may be NULL. Returns 0, -ENOMEM, or the
 * backend's error (-EMFILE). Free it with evloop_free. */
EVLOOP_API int evloop_new(evloop **loopp, const evloop_options *opts);
/* Frees the loop: -EBUSY (and nothing freed) while a handle is not closed,
 * i.e. until its close callback has run. */
EVLOOP_API int evloop_free(evloop *loop);
/* Runs the loop (see the phases above). Returns 1 if active handles remain
 * (stopped, or ONCE/NOWAIT), 0 when nothing is left, -EBUSY when called
 * from inside a callback of the same loop. */
EVLOOP_API int evloop_run(evloop *loop, evloop_run_mode mode);
/* Makes evloop_run return after the current iteration. */
EVLOOP_API void evloop_stop(evloop *loop);
/* 1 when the loop has active referenced handles or work queued. */
EVLOOP_API int evloop_alive(const evloop *loop);
/* The cached loop time in ms (monotonic clock, arbitrary origin). */
EVLOOP_API uint64_t evloop_now(const evloop *loop);
EVLOOP_API void evloop_update_time(evloop *loop);
/* Monotonic time in nanoseconds, not cached. */
EVLOOP_API uint64_t evloop_hrtime(void);
/* The poll descriptor (epoll/kqueue; -1 for poll) and the timeout the next
 * iteration would block for (-1: forever), for embedding in another loop. */
EVLOOP_API int evloop_backend_fd(const evloop *loop);
EVLOOP_API int evloop_backend_timeout(const evloop *loop);
EVLOOP_API const char *evloop_backend_name(const evloop *loop);
EVLOOP_API void evloop_set_data(evloop *loop, void *data);
EVLOOP_API void *evloop_get_data(const evloop *loop);

/* Runs cb(loop, arg) right after the current callback (or at the start of
 * the next evloop_run). -ENOMEM if the queue cannot grow. */
EVLOOP_API int evloop_next_tick(evloop *loop, evloop_task_cb cb, void *arg);
/* Runs cb(loop, arg) once in the next check phase. -ENOMEM as above. */
EVLOOP_API int evloop_set_immediate(evloop *loop, evloop_task_cb cb, void *arg);

/* ---- handles ---------------------------------------------------------------- */

/* Closes any handle; close_cb (may be NULL) runs in the close phase, after
 * which the memory may be reused. Closing twice is misuse. */
EVLOOP_API void evloop_close(evloop_handle *h, evloop_close_cb close_cb);
EVLOOP_API int evloop_is_closing(const evloop_handle *h);
EVLOOP_API int evloop_is_active(const evloop_handle *h);
EVLOOP_API void evloop_ref(evloop_handle *h);
EVLOOP_API void evloop_unref(evloop_handle *h);
EVLOOP_API int evloop_has_ref(const evloop_handle *h);
/* Calls cb for every handle not yet closed (close callback not run). The
 * callback may close the handle it is given. */
EVLOOP_API void evloop_walk(evloop *loop, void (*cb)(evloop_handle *h, void *arg), void *arg);
EVLOOP_API const char *evloop_handle_type_name(evloop_handle_type type);

/* ---- timers and hooks ----------------------------------------------------- */

EVLOOP_API int evloop_timer_init(evloop *loop, evloop_timer *t);
/* Starts (or restarts) t: cb after timeout ms, then every repeat ms when
 * repeat > 0. -ENOMEM if the heap cannot grow. */
EVLOOP_API int evloop_timer_start(evloop_timer *t, evloop_timer_cb cb, uint64_t timeout, uint64_t repeat);
EVLOOP_API int evloop_timer_stop(evloop_timer *t);
/* Restarts a repeating timer with its repeat as timeout; -EINVAL if it was
 * never started. */
EVLOOP_API int evloop_timer_again(evloop_timer *t);
EVLOOP_API void evloop_timer_set_repeat(evloop_timer *t, uint64_t repeat);
EVLOOP_API uint64_t evloop_timer_get_repeat(const evloop_timer *t);
/* Milliseconds until it fires (0 if due or stopped). */
EVLOOP_API uint64_t evloop_timer_due_in(const evloop_timer *t);

EVLOOP_API int evloop_hook_init(evloop *loop, evloop_hook *h, evloop_hook_kind kind);
EVLOOP_API int evloop_hook_start(evloop_hook *h, evloop_hook_cb cb);
EVLOOP_API int evloop_hook_stop(evloop_hook *h);

/* ---- fd watchers ------------------------------------------------------------ */

/* Watches fd (yours; made non-blocking by you). -EBADF for a bad fd. */
EVLOOP_API int evloop_io_init(evloop *loop, evloop_io *io, int fd);
/* events: EVLOOP_READABLE | EVLOOP_WRITABLE. -EEXIST when another watcher
 * has the fd, -EPERM for a regular file or directory (and, with epoll,
 * any descriptor that cannot be polled; see section 6). */
EVLOOP_API int evloop_io_start(evloop_io *io, unsigned events, evloop_io_cb cb);
EVLOOP_API int evloop_io_stop(evloop_io *io);

/* ---- streams ---------------------------------------------------------------- */

EVLOOP_API int evloop_tcp_init(evloop *loop, evloop_stream *s);
EVLOOP_API int evloop_unix_init(evloop *loop, evloop_stream *s);
EVLOOP_API int evloop_pipe_init(evloop *loop, evloop_stream *s);
/* Adopts an open stream descriptor (socket, pipe, tty); the stream owns it
 * from then on. It is made non-blocking and close-on-exec. */
EVLOOP_API int evloop_stream_open(evloop_stream *s, int fd);
EVLOOP_API int evloop_stream_fd(const evloop_stream *s);

/* Parses a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "0.0.0.0")
 * and a port into *out. -EINVAL if ip is not numeric. */
EVLOOP_API int evloop_addr(const char *ip, int port, struct sockaddr_storage *out);
/* The port of an AF_INET/AF_INET6 address, -1 for others. */
EVLOOP_API int evloop_addr_port(const struct sockaddr *addr);

enum {
    EVLOOP_BIND_REUSEPORT = 1, /* SO_REUSEPORT: N loops share the port */
    EVLOOP_BIND_IPV6ONLY = 2   /* IPv6 socket refuses IPv4-mapped peers */
};
/* Creates the socket and binds it (SO_REUSEADDR always). */
EVLOOP_API int evloop_tcp_bind(evloop_stream *s, const struct sockaddr *addr, unsigned flags);
/* Binds to a filesystem path (it must not exist). */
EVLOOP_API int evloop_unix_bind(evloop_stream *s, const char *path);
/* Listens; backlog <= 0 means 511. cb runs once per connection. */
EVLOOP_API int evloop_listen(evloop_stream *s, int backlog, evloop_connection_cb cb);
/* Inside the connection callback: gives the new connection to client (made
 * with evloop_tcp_init / evloop_unix_init, not yet opened). -EAGAIN when
 * there is no connection to take. */
EVLOOP_API int evloop_accept(evloop_stream *server, evloop_stream *client);
EVLOOP_API int evloop_tcp_connect(evloop_stream *s, const struct sockaddr *addr, evloop_connect_cb cb);
EVLOOP_API int evloop_unix_connect(evloop_stream *s, const char *path, evloop_connect_cb cb);
EVLOOP_API int evloop_sockname(const evloop_stream *s, struct sockaddr_storage *out);
EVLOOP_API int evloop_peername(const evloop_stream *s, struct sockaddr_storage *out);
EVLOOP_API int evloop_tcp_nodelay(evloop_stream *s, int on);
/* SO_KEEPALIVE, first probe after delay_s seconds of silence. */
EVLOOP_API int evloop_tcp_keepalive(evloop_stream *s, int on, unsigned delay_s);

EVLOOP_API int evloop_read_start(evloop_stream *s, evloop_read_cb cb);
EVLOOP_API int evloop_read_stop(evloop_stream *s);
EVLOOP_API int evloop_is_reading(const evloop_stream *s);

/* Writes bufs[0..n) in order; see section 7. req and the bytes must stay
 * valid until cb. -EPIPE after shutdown, on a closing stream or after a
 * failed write, -ENOTCONN before the stream is open, -ENOMEM, or the error
 * of the first write attempt (the callback does not run then). */
EVLOOP_API int evloop_write(evloop_write_req *req, evloop_stream *s, const evloop_buf *bufs,
                            unsigned n, evloop_write_cb cb);
/* Like evloop_write, but copies what is not written at once; cb may be NULL
 * and then gets req->data == arg. */
EVLOOP_API int evloop_write_copy(evloop_stream *s, const void *data, size_t len,
                                 evloop_write_cb cb, void *arg);
/* Writes what the kernel takes now, never queues: bytes written (>= 0), or
 * -EAGAIN when writes are queued, or an error. */
EVLOOP_API ssize_t evloop_try_write(evloop_stream *s, const evloop_buf *bufs, unsigned n);
/* Queues len bytes of the file fd from offset, in order with the other
 * writes: sendfile(2) where the kernel can, read and write elsewhere. fd
 * must stay open until cb. A file that ends early fails with -EIO. */
EVLOOP_API int evloop_sendfile(evloop_write_req *req, evloop_stream *s, int fd, int64_t offset,
                               uint64_t len, evloop_write_cb cb);
EVLOOP_API size_t evloop_stream_queued(const evloop_stream *s);
EVLOOP_API void evloop_stream_set_hwm(evloop_stream *s, size_t high_water_mark, evloop_drain_cb cb);
/* 0 while the queue is above the high-water mark (wait for drain). */
EVLOOP_API int evloop_stream_writable(const evloop_stream *s);
EVLOOP_API int evloop_shutdown(evloop_stream *s, evloop_shutdown_cb cb);
/* Gives up the descriptor without closing it: reading stops, the loop
 * forgets it, and it is returned (>= 0) for you to close or to adopt in
 * another stream with evloop_stream_open (bytes not yet read stay in the
 * kernel for the new owner). -EBUSY while writes, a connect or a shutdown
 * are pending; -EBADF without a descriptor. The handle must still be
 * closed. (An HTTP server hands an upgraded connection over this way.) */
EVLOOP_API int evloop_stream_detach(evloop_stream *s);

/* ---- signals, async -------------------------------------------------------- */

EVLOOP_API int evloop_signal_init(evloop *loop, evloop_signal *sig);
EVLOOP_API int evloop_signal_start(evloop_signal *sig, evloop_signal_cb cb, int signum);
EVLOOP_API int evloop_signal_start_oneshot(evloop_signal *sig, evloop_signal_cb cb, int signum);
EVLOOP_API int evloop_signal_stop(evloop_signal *sig);

EVLOOP_API int evloop_async_init(evloop *loop, evloop_async *a, evloop_async_cb cb);
/* Thread-safe and async-signal-safe; always returns 0. The callback runs
 * at least once after this call (sends before it runs coalesce). The
 * handle must not be closed while another thread may still call this. */
EVLOOP_API int evloop_async_send(evloop_async *a);

/* ---- processes -------------------------------------------------------------- */

/* Starts a child in p (initialized here; p must not be a live handle, see
 * section 10). On failure p is not a handle and cb never runs. */
EVLOOP_API int evloop_spawn(evloop *loop, evloop_process *p, const evloop_process_options *opts,
                            evloop_exit_cb cb);
/* -ESRCH once the child has been reaped. */
EVLOOP_API int evloop_process_kill(evloop_process *p, int signum);

/* ---- file watching ----------------------------------------------------------- */

EVLOOP_API int evloop_fswatch_init(evloop *loop, evloop_fswatch *w);
/* opts may be NULL. -ENOENT for a path that does not exist, -ENOSYS
 * without inotify. */
EVLOOP_API int evloop_fswatch_start(evloop_fswatch *w, const char *path,
                                    const evloop_fswatch_options *opts, evloop_fswatch_cb cb);
EVLOOP_API int evloop_fswatch_stop(evloop_fswatch *w);

/* ---- errors ------------------------------------------------------------------- */

EVLOOP_API const char *evloop_strerror(int err);
EVLOOP_API const char *evloop_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* EVLOOP_H */

/* ============================================================================
 * IMPLEMENTATION
 * ========================================================================== */
#if defined(EVLOOP_IMPLEMENTATION) && !defined(EVLOOP__IMPLEMENTED)
#define EVLOOP__IMPLEMENTED

#if defined(__GLIBC__) && !defined(__USE_GNU)
#error "evloop.h: the implementation needs _GNU_SOURCE: include evloop.h before any system header, or compile with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#if defined(EVLOOP_BACKEND_POLL)
#define EVLOOP__POLL 1
#elif defined(EVLOOP_BACKEND_KQUEUE)
#define EVLOOP__KQUEUE 1
#elif defined(__linux__)
#define EVLOOP__EPOLL 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)
#define EVLOOP__KQUEUE 1
#else
#define EVLOOP__POLL 1
#endif

#if defined(EVLOOP__EPOLL)
#include <sys/epoll.h>
#elif defined(EVLOOP__KQUEUE)
#include <sys/event.h>
#endif
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/sendfile.h>
#endif

#ifndef EVLOOP_ASSERT
#include <assert.h>
#define EVLOOP_ASSERT(c) assert(c)
#endif
#ifndef EVLOOP_MALLOC
#define EVLOOP_MALLOC(n) malloc(n)
#define EVLOOP_REALLOC(p, n) realloc(p, n)
#define EVLOOP_FREE(p) free(p)
#endif

#ifdef EVLOOP_STATIC
#define EVLOOP__DEF EVLOOP_API
#else
#define EVLOOP__DEF
#endif

extern char **environ;

#define EVLOOP__CONTAINER(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* handle flags */
#define EVLOOP__F_ACTIVE     0x0001u
#define EVLOOP__F_REF        0x0002u
#define EVLOOP__F_CLOSING    0x0004u
#define EVLOOP__F_CLOSED     0x0008u
#define EVLOOP__F_INTERNAL   0x0010u /* the loop's own: not listed, not counted */
/* stream flags */
#define EVLOOP__S_READING    0x0020u
#define EVLOOP__S_LISTENING  0x0040u
#define EVLOOP__S_CONNECTING 0x0080u
#define EVLOOP__S_CONNECTED  0x0100u /* connect result due in the pending phase */
#define EVLOOP__S_SHUTTING   0x0200u /* shutdown requested, not yet done */
#define EVLOOP__S_SHUT       0x0400u /* shutdown done, callback maybe due */
#define EVLOOP__S_SHUT_CB    0x0800u /* shutdown callback due in pending */
#define EVLOOP__S_NEED_DRAIN 0x1000u
#define EVLOOP__S_SOCKET     0x2000u
#define EVLOOP__S_PENDING    0x4000u /* on the loop's pending list */
#define EVLOOP__S_PAUSED     0x8000u /* listener paused after EMFILE */
#define EVLOOP__S_EOF        0x10000u
#define EVLOOP__S_WFAILED    0x20000u /* a write failed: stream unusable */
#define EVLOOP__S_RHINT      0x40000u /* there may be bytes to read */
#define EVLOOP__S_READ_DUE   0x80000u /* read from the pending phase */
#define EVLOOP__S_HUP        0x100000u /* the peer hung up: read to the end */
/* process flags */
#define EVLOOP__P_EXITED     0x0020u
/* io flags */
#define EVLOOP__IO_FILE      0x0020u /* a regular file or directory: no readiness */
/* write request flags */
#define EVLOOP__W_OWNED      1u /* allocated by evloop_write_copy */
#define EVLOOP__W_HEAPBUFS   2u /* bufs array allocated */
#define EVLOOP__W_FILE       4u /* evloop_sendfile: bytes of a file */

#define EVLOOP__NSIG 65
#define EVLOOP__MAX_SIGLOOPS 64

/* ---- internal structures ------------------------------------------------- */

typedef struct evloop__task {
    evloop_task_cb cb;
    void *arg;
} evloop__task;

typedef struct evloop__taskq { /* ring buffer, capacity a power of two */
    evloop__task *buf;
    size_t cap, head, count;
} evloop__taskq;

typedef struct evloop__heap_entry {
    uint64_t due;
    uint64_t seq;
    evloop_timer *t;
} evloop__heap_entry;

struct evloop {
    void *data;
    uint64_t time;         /* cached, ms */
    unsigned active;       /* active referenced handles */
    unsigned nhandles;     /* handles not yet closed (public ones) */
    int running;
    int stop_flag;
    evloop_handle *handles; /* doubly linked via next/prev */
    evloop_handle *closing_head, *closing_tail;
    evloop_stream *pending_head, *pending_tail;
    evloop__queue hooks[3];
    evloop__queue asyncs;
    evloop__taskq ticks, immediates;

    /* timers: a 4-ary min-heap ordered by (due, seq) */
    evloop__heap_entry *heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* descriptors: watcher by fd */
    evloop__watcher **watchers;
    int nwatchers;

    /* backend */
    int backend_fd;
    int max_events;
#if defined(EVLOOP__POLL)
    struct pollfd *pfds;
    int npfds, cappfds;
    int pfds_dirty;
#else
    void *events;
    int batch_next, batch_len; /* events of the poll not yet dispatched */
#endif

    char *rbuf;
    size_t rbuf_size;

    evloop_timer accept_timer; /* resumes listeners paused by EMFILE */
    unsigned accept_retry_ms;

    /* async wake-ups: an eventfd (or a pipe) */
    evloop__watcher async_w;
    int async_wfd;
    int async_wake; /* atomic: a wake-up is in flight */

    /* signals: this loop's end of the process-wide signal delivery */
    evloop__watcher sig_w;
    int sig_wfd;
    int sig_slot;
    evloop__queue signals;  /* started signal handles */
    evloop_process *children;
    pid_t *orphans; /* children whose handle was closed while running */
    size_t norphans, caporphans;
    int sigchld_ref;
};

/* ---- small utilities ----------------------------------------------------- */

/* evloop__queue: a circular doubly linked list with a sentinel. Removing a
 * node needs no head, which lets a phase move its list aside and run it
 * while callbacks start and stop other members. */
static void evloop__q_init(evloop__queue *q) { q->next = q->prev = q; }
static int evloop__q_empty(const evloop__queue *q) { return q->next == q; }
static void evloop__q_remove(evloop__queue *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
static void evloop__q_push(evloop__queue *q, evloop__queue *n)
{
    n->prev = q->prev;
    n->next = q;
    q->prev->next = n;
    q->prev = n;
}
/* Moves every node of `from` to the (empty) `to`. */
static void evloop__q_move(evloop__queue *from, evloop__queue *to)
{
    if (evloop__q_empty(from)) {
        evloop__q_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    evloop__q_init(from);
}

static uint64_t evloop__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int evloop__set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
        return -errno;
    return 0;
}

static void evloop__close_fd(int fd)
{
    int saved = errno;
    if (fd >= 0)
        (void)close(fd); /* never retried on EINTR: the fd is gone on Linux */
    errno = saved;
}

/* A non-blocking, close-on-exec pipe. */
static int evloop__pipe(int fds[2])
{
#if defined(__linux__)
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0 ? -errno : 0;
#else
    int rc;
    if (pipe(fds) < 0)
        return -errno;
    if ((rc = evloop__set_flags(fds[0])) < 0 || (rc = evloop__set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    return 0;
#endif
}

static int evloop__socket(int domain, int type)
{
    int fd, rc;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)rc;
#else
    fd = socket(domain, type, 0);
    if (fd < 0)
        return -errno;
    if ((rc = evloop__set_flags(fd)) < 0) {
        close(fd);
        return rc;
    }
#endif
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return fd;
}

/* ---- run-queues: next-tick and immediates -------------------------------------------- */

static int evloop__taskq_push(evloop__taskq *q, evloop_task_cb cb, void *arg)
{
    if (q->count == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64, i;
        evloop__task *nb = (evloop__task *)EVLOOP_MALLOC(ncap * sizeof *nb);
        if (!nb)
            return -ENOMEM;
        for (i = 0; i < q->count; i++)
            nb[i] = q->buf[(q->head + i) & (q->cap - 1)];
        EVLOOP_FREE(q->buf);
        q->buf = nb;
        q->cap = ncap;
        q->head = 0;
    }
    q->buf[(q->head + q->count) & (q->cap - 1)].cb = cb;
    q->buf[(q->head + q->count) & (q->cap - 1)].arg = arg;
    q->count++;
    return 0;
}

static evloop__task evloop__taskq_pop(evloop__taskq *q)
{
    evloop__task t = q->buf[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    return t;
}

static void evloop__run_ticks(evloop *loop)
{
    while (loop->ticks.count) {
        evloop__task t = evloop__taskq_pop(&loop->ticks);
        t.cb(loop, t.arg);
    }
}

/* After every callback the loop makes: run the next-tick queue. */
#define EVLOOP__TICKS(loop)                  \
    do {                                     \
        if ((loop)->ticks.count)             \
            evloop__run_ticks(loop);         \
    } while (0)

EVLOOP__DEF int evloop_next_tick(evloop *loop, evloop_task_cb cb, void *arg)
{
    EVLOOP_ASSERT(loop && cb);
    return evloop__taskq_push(&loop->ticks, cb, arg);
}

EVLOOP__DEF int evloop_set_immediate(evloop *loop, evloop_task_cb cb, void *arg)
{
    EVLOOP_ASSERT(loop && cb);
    return evloop__taskq_push(&loop->immediates, cb, arg);
}

/* ---- handles --------------------------------------------------------------------------- */

static void evloop__activate(evloop_handle *h)
{
    if (h->flags & EVLOOP__F_ACTIVE)
        return;
    h->flags |= EVLOOP__F_ACTIVE;
    if (h->flags & EVLOOP__F_REF)
        h->loop->active++;
}

static void evloop__deactivate(evloop_handle *h)
{
    if (!(h->flags & EVLOOP__F_ACTIVE))
        return;
    h->flags &= ~EVLOOP__F_ACTIVE;
    if (h->flags & EVLOOP__F_REF)
        h->loop->active--;
}

/* Sets up the head of a handle whose whole struct the caller zeroed; the
 * user's `data` survives init. */
static void evloop__handle_init(evloop *loop, evloop_handle *h, int type, void *data)
{
    h->data = data;
    h->loop = loop;
    h->type = (uint8_t)type;
    h->flags = EVLOOP__F_REF;
    h->prev = NULL;
    h->next = loop->handles;
    if (loop->handles)
        loop->handles->prev = h;
    loop->handles = h;
    loop->nhandles++;
}

/* The loop's own handles: never listed, never keep the loop alive. */
static void evloop__handle_init_internal(evloop *loop, evloop_handle *h, int type)
{
    h->loop = loop;
    h->type = (uint8_t)type;
    h->flags = EVLOOP__F_INTERNAL;
}

#define EVLOOP__INIT(loop, obj, type)                     \
    do {                                                  \
        void *evloop__data = (obj)->handle.data;          \
        memset((obj), 0, sizeof *(obj));                  \
        evloop__handle_init((loop), &(obj)->handle, (type), evloop__data); \
    } while (0)

EVLOOP__DEF int evloop_is_closing(const evloop_handle *h)
{
    return (h->flags & (EVLOOP__F_CLOSING | EVLOOP__F_CLOSED)) != 0;
}

EVLOOP__DEF int evloop_is_active(const evloop_handle *h) { return (h->flags & EVLOOP__F_ACTIVE) != 0; }
EVLOOP__DEF int evloop_has_ref(const evloop_handle *h) { return (h->flags & EVLOOP__F_REF) != 0; }

EVLOOP__DEF void evloop_ref(evloop_handle *h)
{
    if (h->flags & (EVLOOP__F_REF | EVLOOP__F_INTERNAL))
        return;
    h->flags |= EVLOOP__F_REF;
    if (h->flags & EVLOOP__F_ACTIVE)
        h->loop->active++;
}

EVLOOP__DEF void evloop_unref(evloop_handle *h)
{
    if (!(h->flags & EVLOOP__F_REF))
        return;
    h->flags &= ~EVLOOP__F_REF;
    if (h->flags & EVLOOP__F_ACTIVE)
        h->loop->active--;
}

EVLOOP__DEF void evloop_walk(evloop *loop, void (*cb)(evloop_handle *h, void *arg), void *arg)
{
    evloop_handle *h = loop->handles, *next;
    while (h) {
        next = h->next; /* cb may close h; closing keeps it listed */
        if (!(h->flags & EVLOOP__F_CLOSED))
            cb(h, arg);
        h = next;
    }
}

EVLOOP__DEF const char *evloop_handle_type_name(evloop_handle_type type)
{
    switch (type) {
    case EVLOOP_TIMER: return "timer";
    case EVLOOP_HOOK: return "hook";
    case EVLOOP_IO: return "io";
    case EVLOOP_TCP: return "tcp";
    case EVLOOP_UNIX: return "unix";
    case EVLOOP_PIPE: return "pipe";
    case EVLOOP_SIGNAL: return "signal";
    case EVLOOP_ASYNC: return "async";
    case EVLOOP_PROCESS: return "process";
    case EVLOOP_FSWATCH: return "fswatch";
    }
    return "unknown";
}

/* ---- descriptor table and backends ----------------------------------------------- */

static int evloop__backend_init(evloop *loop);
static void evloop__backend_free(evloop *loop);
static int evloop__backend_update(evloop *loop, evloop__watcher *w);
static void evloop__backend_remove(evloop *loop, evloop__watcher *w);
static void evloop__backend_drop_events(evloop *loop, int fd);
static void evloop__backend_poll(evloop *loop, int timeout);

static void evloop__watcher_init(evloop__watcher *w, int fd,
                                 void (*cb)(evloop *, evloop__watcher *, unsigned))
{
    w->cb = cb;
    w->fd = fd;
    w->poll_index = -1;
    w->events = 0;
    w->registered = 0;
    w->et = 0;
}

/* Enters w in the fd table (the fd must be open). -EEXIST if taken. */
static int evloop__watcher_attach(evloop *loop, evloop__watcher *w)
{
    int fd = w->fd;
    EVLOOP_ASSERT(fd >= 0);
    if (fd >= loop->nwatchers) {
        int n = loop->nwatchers ? loop->nwatchers : 64, i;
        evloop__watcher **nw;
        while (n <= fd)
            n *= 2;
        nw = (evloop__watcher **)EVLOOP_REALLOC(loop->watchers, (size_t)n * sizeof *nw);
        if (!nw)
            return -ENOMEM;
        for (i = loop->nwatchers; i < n; i++)
            nw[i] = NULL;
        loop->watchers = nw;
        loop->nwatchers = n;
    }
    if (loop->watchers[fd] && loop->watchers[fd] != w)
        return -EEXIST;
    loop->watchers[fd] = w;
    return 0;
}

/* Sets the events the loop waits for on w. */
static int evloop__watcher_set(evloop *loop, evloop__watcher *w, unsigned events)
{
    int rc;
    uint8_t old = w->events;
    w->events = (uint8_t)events;
    if (w->events == w->registered)
        return 0;
    rc = evloop__backend_update(loop, w);
    if (rc < 0)
        w->events = old;
    return rc;
}

/* Forgets w before its descriptor is closed. Events of the poll being
 * dispatched that are still due for its fd are dropped: a callback may
 * reuse the fd number for a new watcher, which must not get them. */
static void evloop__watcher_detach(evloop *loop, evloop__watcher *w)
{
    if (w->fd < 0)
        return;
    w->events = 0;
    if (w->registered)
        evloop__backend_remove(loop, w);
    if (w->fd < loop->nwatchers && loop->watchers[w->fd] == w)
        loop->watchers[w->fd] = NULL;
    evloop__backend_drop_events(loop, w->fd);
}

/* Translates what the backend saw into the events w asked for. */
static unsigned evloop__revents(const evloop__watcher *w, int readable, int writable, int hangup)
{
    unsigned ev = 0;
    if (readable)
        ev |= EVLOOP_READABLE;
    if (writable)
        ev |= EVLOOP_WRITABLE;
    if (hangup)
        ev |= EVLOOP_DISCONNECT | (w->events & (EVLOOP_READABLE | EVLOOP_WRITABLE));
    return ev & (w->events | EVLOOP_DISCONNECT);
}

static void evloop__dispatch(evloop *loop, int fd, int readable, int writable, int hangup)
{
    evloop__watcher *w;
    unsigned ev;
    if (fd < 0 || fd >= loop->nwatchers || !(w = loop->watchers[fd]))
        return;
    if (w->et) { /* every edge counts, wanted or not: the owner keeps hints */
        ev = (readable || hangup ? (unsigned)EVLOOP_READABLE : 0u) |
             (writable || hangup ? (unsigned)EVLOOP_WRITABLE : 0u) |
             (hangup ? (unsigned)EVLOOP_DISCONNECT : 0u);
        w->cb(loop, w, ev);
        return;
    }
    if (!w->events)
        return;
    ev = evloop__revents(w, readable, writable, hangup);
    if (ev & (EVLOOP_READABLE | EVLOOP_WRITABLE))
        w->cb(loop, w, ev);
}

#if defined(EVLOOP__EPOLL)

static int evloop__backend_init(evloop *loop)
{
    loop->backend_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->backend_fd < 0)
        return -errno;
    loop->events = EVLOOP_MALLOC((size_t)loop->max_events * sizeof(struct epoll_event));
    if (!loop->events) {
        close(loop->backend_fd);
        return -ENOMEM;
    }
    return 0;
}

static void evloop__backend_free(evloop *loop)
{
    evloop__close_fd(loop->backend_fd);
    EVLOOP_FREE(loop->events);
}

static int evloop__backend_update(evloop *loop, evloop__watcher *w)
{
    struct epoll_event e;
    int op;
    memset(&e, 0, sizeof e);
    if (w->et) { /* registered for everything, once; never modified */
        if (w->registered || !w->events)
            return 0;
        e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        e.data.fd = w->fd;
        if (epoll_ctl(loop->backend_fd, EPOLL_CTL_ADD, w->fd, &e) < 0)
            return -errno;
        w->registered = EVLOOP_READABLE | EVLOOP_WRITABLE;
        return 0;
    }
    e.events = ((w->events & EVLOOP_READABLE) ? EPOLLIN : 0u) |
               ((w->events & EVLOOP_WRITABLE) ? EPOLLOUT : 0u);
    e.data.fd = w->fd;
    op = !w->registered ? EPOLL_CTL_ADD : !w->events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(loop->backend_fd, op, w->fd, &e) < 0) {
        if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
            op = -1;
        else
            return -errno;
        if (op >= 0 && epoll_ctl(loop->backend_fd, op, w->fd, &e) < 0)
            return -errno;
    }
    w->registered = w->events;
    return 0;
}

static void evloop__backend_remove(evloop *loop, evloop__watcher *w)
{
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    (void)epoll_ctl(loop->backend_fd, EPOLL_CTL_DEL, w->fd, &e);
    w->registered = 0;
}

static void evloop__backend_drop_events(evloop *loop, int fd)
{
    struct epoll_event *ev = (struct epoll_event *)loop->events;
    int i;
    for (i = loop->batch_next; i < loop->batch_len; i++)
        if (ev[i].data.fd == fd)
            ev[i].data.fd = -1;
}

static void evloop__backend_poll(evloop *loop, int timeout)
{
    struct epoll_event *ev = (struct epoll_event *)loop->events;
    int n = epoll_wait(loop->backend_fd, ev, loop->max_events, timeout), i;
    if (timeout != 0)
        evloop_update_time(loop);
    loop->batch_len = n > 0 ? n : 0;
    for (i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        loop->batch_next = i + 1;
        evloop__dispatch(loop, ev[i].data.fd, (e & EPOLLIN) != 0, (e & EPOLLOUT) != 0,
                         (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0);
    }
    loop->batch_len = 0;
}

#elif defined(EVLOOP__KQUEUE)

static int evloop__backend_init(evloop *loop)
{
    int rc;
    loop->backend_fd = kqueue();
    if (loop->backend_fd < 0)
        return -errno;
    if (fcntl(loop->backend_fd, F_SETFD, FD_CLOEXEC) < 0) {
        rc = -errno;
        close(loop->backend_fd);
        return rc;
    }
    loop->events = EVLOOP_MALLOC((size_t)loop->max_events * sizeof(struct kevent));
    if (!loop->events) {
        close(loop->backend_fd);
        return -ENOMEM;
    }
    return 0;
}

static void evloop__backend_free(evloop *loop)
{
    evloop__close_fd(loop->backend_fd);
    EVLOOP_FREE(loop->events);
}

/* Adds or deletes the read and write filters whose wish changed. */
static int evloop__kq_apply(evloop *loop, evloop__watcher *w, unsigned want, int ignore_errors)
{
    struct kevent ch[2];
    int n = 0;
    unsigned have = w->registered;
    if ((want ^ have) & EVLOOP_READABLE) {
        EV_SET(&ch[n], (uintptr_t)w->fd, EVFILT_READ,
               (want & EVLOOP_READABLE) ? EV_ADD : EV_DELETE, 0, 0, 0);
        n++;
    }
    if ((want ^ have) & EVLOOP_WRITABLE) {
        EV_SET(&ch[n], (uintptr_t)w->fd, EVFILT_WRITE,
               (want & EVLOOP_WRITABLE) ? EV_ADD : EV_DELETE, 0, 0, 0);
        n++;
    }
    if (n && kevent(loop->backend_fd, ch, n, NULL, 0, NULL) < 0 && !ignore_errors &&
        errno != ENOENT)
        return -errno;
    w->registered = (uint8_t)want;
    return 0;
}

static int evloop__backend_update(evloop *loop, evloop__watcher *w)
{
    return evloop__kq_apply(loop, w, w->events, 0);
}

static void evloop__backend_remove(evloop *loop, evloop__watcher *w)
{
    (void)evloop__kq_apply(loop, w, 0, 1);
}

static void evloop__backend_drop_events(evloop *loop, int fd)
{
    struct kevent *ev = (struct kevent *)loop->events;
    int i;
    for (i = loop->batch_next; i < loop->batch_len; i++)
        if (ev[i].ident == (uintptr_t)fd)
            ev[i].ident = (uintptr_t)-1;
}

static void evloop__backend_poll(evloop *loop, int timeout)
{
    struct kevent *ev = (struct kevent *)loop->events;
    struct timespec ts, *tsp = NULL;
    int n, i;
    if (timeout >= 0) {
        ts.tv_sec = timeout / 1000;
        ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(loop->backend_fd, NULL, 0, ev, loop->max_events, tsp);
    if (timeout != 0)
        evloop_update_time(loop);
    loop->batch_len = n > 0 ? n : 0;
    for (i = 0; i < n; i++) {
        int fd = ev[i].ident > (uintptr_t)INT_MAX ? -1 : (int)ev[i].ident;
        int hup = (ev[i].flags & (EV_ERROR | EV_EOF)) != 0; /* EV_EOF: the peer hung up */
        loop->batch_next = i + 1;
        evloop__dispatch(loop, fd, ev[i].filter == EVFILT_READ, ev[i].filter == EVFILT_WRITE, hup);
    }
    loop->batch_len = 0;
}

#else /* poll(2) */

static int evloop__backend_init(evloop *loop)
{
    loop->backend_fd = -1;
    return 0;
}

static void evloop__backend_free(evloop *loop) { EVLOOP_FREE(loop->pfds); }

static int evloop__backend_update(evloop *loop, evloop__watcher *w)
{
    short ev = (short)(((w->events & EVLOOP_READABLE) ? POLLIN : 0) |
                       ((w->events & EVLOOP_WRITABLE) ? POLLOUT : 0));
    if (!w->events) {
        evloop__backend_remove(loop, w);
        return 0;
    }
    if (w->poll_index < 0) {
        if (loop->npfds == loop->cappfds) {
            int ncap = loop->cappfds ? loop->cappfds * 2 : 64;
            struct pollfd *np =
                (struct pollfd *)EVLOOP_REALLOC(loop->pfds, (size_t)ncap * sizeof *np);
            if (!np)
                return -ENOMEM;
            loop->pfds = np;
            loop->cappfds = ncap;
        }
        w->poll_index = loop->npfds++;
        loop->pfds[w->poll_index].fd = w->fd;
        loop->pfds[w->poll_index].revents = 0;
    }
    loop->pfds[w->poll_index].events = ev;
    w->registered = w->events;
    return 0;
}

/* Leaves a hole (fd -1, which poll ignores); holes are compacted before the
 * next poll, so the array never moves while events are dispatched. */
static void evloop__backend_remove(evloop *loop, evloop__watcher *w)
{
    if (w->poll_index >= 0) {
        loop->pfds[w->poll_index].fd = -1;
        loop->pfds[w->poll_index].revents = 0;
        loop->pfds_dirty = 1;
        w->poll_index = -1;
    }
    w->registered = 0;
}

/* Nothing to drop: removing a watcher clears its slot (fd -1), and a new
 * watcher of the same fd gets a slot past the ones being dispatched. */
static void evloop__backend_drop_events(evloop *loop, int fd)
{
    (void)loop;
    (void)fd;
}

static void evloop__poll_compact(evloop *loop)
{
    int i, j = 0;
    for (i = 0; i < loop->npfds; i++) {
        int fd = loop->pfds[i].fd;
        if (fd < 0)
            continue;
        loop->pfds[j] = loop->pfds[i];
        if (fd < loop->nwatchers && loop->watchers[fd])
            loop->watchers[fd]->poll_index = j;
        j++;
    }
    loop->npfds = j;
    loop->pfds_dirty = 0;
}

static void evloop__backend_poll(evloop *loop, int timeout)
{
    int n, i, count;
    if (loop->pfds_dirty)
        evloop__poll_compact(loop);
    n = poll(loop->pfds, (nfds_t)loop->npfds, timeout);
    if (timeout != 0)
        evloop_update_time(loop);
    if (n <= 0)
        return;
    count = loop->npfds; /* entries added by callbacks have no events yet */
    for (i = 0; i < count; i++) {
        struct pollfd p = loop->pfds[i]; /* the array may grow during callbacks */
        if (p.fd < 0 || !p.revents)
            continue;
        loop->pfds[i].revents = 0;
        evloop__dispatch(loop, p.fd, (p.revents & POLLIN) != 0, (p.revents & POLLOUT) != 0,
                         (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0);
    }
}

#endif

/* ---- timers ------------------------------------------------------------------------ */

static int evloop__heap_less(const evloop__heap_entry *a, const evloop__heap_entry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void evloop__heap_place(evloop *loop, size_t i, evloop__heap_entry e)
{
    loop->heap[i] = e;
    e.t->heap_index = i;
}

static void evloop__heap_up(evloop *loop, size_t i)
{
    evloop__heap_entry e = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!evloop__heap_less(&e, &loop->heap[parent]))
            break;
        evloop__heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    evloop__heap_place(loop, i, e);
}

static void evloop__heap_down(evloop *loop, size_t i)
{
    evloop__heap_entry e = loop->heap[i];
    size_t n = loop->heap_len;
    for (;;) {
        size_t c = 4 * i + 1, best, end, k;
        if (c >= n)
            break;
        best = c;
        end = c + 4 < n ? c + 4 : n;
        for (k = c + 1; k < end; k++)
            if (evloop__heap_less(&loop->heap[k], &loop->heap[best]))
                best = k;
        if (!evloop__heap_less(&loop->heap[best], &e))
            break;
        evloop__heap_place(loop, i, loop->heap[best]);
        i = best;
    }
    evloop__heap_place(loop, i, e);
}

static void evloop__heap_remove(evloop *loop, evloop_timer *t)
{
    size_t i = t->heap_index;
    evloop__heap_entry last;
    EVLOOP_ASSERT(i < loop->heap_len && loop->heap[i].t == t);
    t->heap_index = SIZE_MAX;
    last = loop->heap[--loop->heap_len];
    if (i == loop->heap_len)
        return;
    evloop__heap_place(loop, i, last);
    if (i > 0 && evloop__heap_less(&last, &loop->heap[(i - 1) / 4]))
        evloop__heap_up(loop, i);
    else
        evloop__heap_down(loop, i);
}

/* Puts t in the heap (or moves it) with deadline `due`. */
static int evloop__timer_schedule(evloop_timer *t, uint64_t due)
{
    evloop *loop = t->handle.loop;
    evloop__heap_entry e;
    e.due = due;
    e.seq = loop->timer_seq++;
    e.t = t;
    t->due = due;
    if (t->heap_index != SIZE_MAX) {
        size_t i = t->heap_index;
        loop->heap[i] = e;
        evloop__heap_up(loop, i);
        evloop__heap_down(loop, t->heap_index);
        return 0;
    }
    if (loop->heap_len == loop->heap_cap) {
        size_t ncap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        evloop__heap_entry *nh =
            (evloop__heap_entry *)EVLOOP_REALLOC(loop->heap, ncap * sizeof *nh);
        if (!nh)
            return -ENOMEM;
        loop->heap = nh;
        loop->heap_cap = ncap;
    }
    loop->heap[loop->heap_len] = e;
    t->heap_index = loop->heap_len++;
    evloop__heap_up(loop, t->heap_index);
    return 0;
}

EVLOOP__DEF int evloop_timer_init(evloop *loop, evloop_timer *t)
{
    EVLOOP_ASSERT(loop && t);
    EVLOOP__INIT(loop, t, EVLOOP_TIMER);
    t->heap_index = SIZE_MAX;
    return 0;
}

EVLOOP__DEF int evloop_timer_start(evloop_timer *t, evloop_timer_cb cb, uint64_t timeout,
                                   uint64_t repeat)
{
    evloop *loop = t->handle.loop;
    uint64_t due = loop->time + timeout;
    int rc;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&t->handle));
    if (due < loop->time)
        due = UINT64_MAX; /* saturate */
    rc = evloop__timer_schedule(t, due);
    if (rc < 0)
        return rc;
    t->cb = cb;
    t->repeat = repeat;
    evloop__activate(&t->handle);
    return 0;
}

EVLOOP__DEF int evloop_timer_stop(evloop_timer *t)
{
    if (t->heap_index != SIZE_MAX)
        evloop__heap_remove(t->handle.loop, t);
    evloop__deactivate(&t->handle);
    return 0;
}

EVLOOP__DEF int evloop_timer_again(evloop_timer *t)
{
    if (!t->cb)
        return -EINVAL;
    if (!t->repeat)
        return 0;
    return evloop_timer_start(t, t->cb, t->repeat, t->repeat);
}

EVLOOP__DEF void evloop_timer_set_repeat(evloop_timer *t, uint64_t repeat) { t->repeat = repeat; }
EVLOOP__DEF uint64_t evloop_timer_get_repeat(const evloop_timer *t) { return t->repeat; }

EVLOOP__DEF uint64_t evloop_timer_due_in(const evloop_timer *t)
{
    uint64_t now = t->handle.loop->time;
    if (t->heap_index == SIZE_MAX || t->due <= now)
        return 0;
    return t->due - now;
}

/* Runs the timers due at the phase's start. A timer started by a callback
 * of this phase (a newer seq) waits for the next iteration, even with a
 * zero timeout, so a callback that restarts itself cannot starve the loop. */
static void evloop__run_timers(evloop *loop)
{
    uint64_t now = loop->time, seq_limit = loop->timer_seq;
    while (loop->heap_len) {
        evloop__heap_entry top = loop->heap[0];
        evloop_timer *t = top.t;
        if (top.due > now || top.seq >= seq_limit)
            break;
        evloop__heap_remove(loop, t);
        if (t->repeat) {
            uint64_t due = now + t->repeat;
            (void)evloop__timer_schedule(t, due < now ? UINT64_MAX : due); /* room: just freed */
        } else {
            evloop__deactivate(&t->handle);
        }
        t->cb(t);
        EVLOOP__TICKS(loop);
    }
}

/* ---- hooks: idle, prepare, check ------------------------------------------------------ */

EVLOOP__DEF int evloop_hook_init(evloop *loop, evloop_hook *h, evloop_hook_kind kind)
{
    EVLOOP_ASSERT(loop && h);
    if ((int)kind < 0 || (int)kind > 2)
        return -EINVAL;
    EVLOOP__INIT(loop, h, EVLOOP_HOOK);
    h->kind = kind;
    evloop__q_init(&h->node);
    return 0;
}

EVLOOP__DEF int evloop_hook_start(evloop_hook *h, evloop_hook_cb cb)
{
    EVLOOP_ASSERT(cb && !evloop_is_closing(&h->handle));
    h->cb = cb;
    if (h->handle.flags & EVLOOP__F_ACTIVE)
        return 0;
    evloop__q_push(&h->handle.loop->hooks[h->kind], &h->node);
    evloop__activate(&h->handle);
    return 0;
}

EVLOOP__DEF int evloop_hook_stop(evloop_hook *h)
{
    if (!(h->handle.flags & EVLOOP__F_ACTIVE))
        return 0;
    evloop__q_remove(&h->node);
    evloop__deactivate(&h->handle);
    return 0;
}

static void evloop__run_hooks(evloop *loop, int kind)
{
    evloop__queue tmp, *n;
    if (evloop__q_empty(&loop->hooks[kind]))
        return;
    evloop__q_move(&loop->hooks[kind], &tmp);
    while (!evloop__q_empty(&tmp)) {
        evloop_hook *h;
        n = tmp.next;
        evloop__q_remove(n);
        evloop__q_push(&loop->hooks[kind], n);
        h = EVLOOP__CONTAINER(n, evloop_hook, node);
        h->cb(h);
        EVLOOP__TICKS(loop);
    }
}

/* The check phase: immediates queued before it, then check hooks. */
static void evloop__run_check(evloop *loop)
{
    size_t n = loop->immediates.count;
    while (n-- && loop->immediates.count) {
        evloop__task t = evloop__taskq_pop(&loop->immediates);
        t.cb(loop, t.arg);
        EVLOOP__TICKS(loop);
    }
    evloop__run_hooks(loop, EVLOOP_HOOK_CHECK);
}

/* ---- the loop ---------------------------------------------------------------------- */

static void evloop__accept_resume(evloop_timer *t);
static void evloop__stream_close(evloop_stream *s);
static void evloop__stream_finish_close(evloop_stream *s);
static void evloop__signal_close(evloop_signal *sig);
static void evloop__async_close(evloop_async *a);
static void evloop__process_close(evloop_process *p);
static void evloop__fswatch_close(evloop_fswatch *w);
static void evloop__signals_release(evloop *loop);
static void evloop__run_pending(evloop *loop);

EVLOOP__DEF int evloop_new(evloop **loopp, const evloop_options *opts)
{
    evloop *loop;
    evloop_options o;
    int rc, i;
    EVLOOP_ASSERT(loopp);
    *loopp = NULL;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    loop = (evloop *)EVLOOP_MALLOC(sizeof *loop);
    if (!loop)
        return -ENOMEM;
    memset(loop, 0, sizeof *loop);
    for (i = 0; i < 3; i++)
        evloop__q_init(&loop->hooks[i]);
    evloop__q_init(&loop->asyncs);
    evloop__q_init(&loop->signals);
    loop->max_events = o.max_events > 0 ? o.max_events : 1024;
    loop->rbuf_size = o.read_buffer_size ? o.read_buffer_size : 65536;
    loop->accept_retry_ms = o.accept_retry_ms ? o.accept_retry_ms : 100;
    loop->async_wfd = -1;
    loop->sig_wfd = -1;
    loop->sig_slot = -1;
    evloop__watcher_init(&loop->async_w, -1, NULL);
    evloop__watcher_init(&loop->sig_w, -1, NULL);
    loop->rbuf = (char *)EVLOOP_MALLOC(loop->rbuf_size);
    if (!loop->rbuf) {
        EVLOOP_FREE(loop);
        return -ENOMEM;
    }
    rc = evloop__backend_init(loop);
    if (rc < 0) {
        EVLOOP_FREE(loop->rbuf);
        EVLOOP_FREE(loop);
        return rc;
    }
    evloop__handle_init_internal(loop, &loop->accept_timer.handle, EVLOOP_TIMER);
    loop->accept_timer.heap_index = SIZE_MAX;
    if (!o.keep_sigpipe) {
        struct sigaction sa;
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
            !(sa.sa_flags & SA_SIGINFO)) {
            sa.sa_handler = SIG_IGN;
            (void)sigaction(SIGPIPE, &sa, NULL);
        }
    }
    loop->time = evloop__mono_ns() / 1000000u;
    *loopp = loop;
    return 0;
}

EVLOOP__DEF int evloop_free(evloop *loop)
{
    size_t i;
    if (!loop)
        return 0;
    if (loop->nhandles || loop->running)
        return -EBUSY;
    if (loop->accept_timer.heap_index != SIZE_MAX)
        evloop__heap_remove(loop, &loop->accept_timer);
    evloop__signals_release(loop);
    if (loop->async_w.fd >= 0) {
        evloop__watcher_detach(loop, &loop->async_w);
        if (loop->async_wfd != loop->async_w.fd)
            evloop__close_fd(loop->async_wfd);
        evloop__close_fd(loop->async_w.fd);
    }
    for (i = 0; i < loop->norphans; i++) /* reap what has ended; the rest reparent */
        (void)waitpid(loop->orphans[i], NULL, WNOHANG);
    evloop__backend_free(loop);
    EVLOOP_FREE(loop->orphans);
    EVLOOP_FREE(loop->watchers);
    EVLOOP_FREE(loop->heap);
    EVLOOP_FREE(loop->ticks.buf);
    EVLOOP_FREE(loop->immediates.buf);
    EVLOOP_FREE(loop->rbuf);
    EVLOOP_FREE(loop);
    return 0;
}

EVLOOP__DEF uint64_t evloop_hrtime(void) { return evloop__mono_ns(); }
EVLOOP__DEF uint64_t evloop_now(const evloop *loop) { return loop->time; }
EVLOOP__DEF void evloop_update_time(evloop *loop) { loop->time = evloop__mono_ns() / 1000000u; }
EVLOOP__DEF void evloop_stop(evloop *loop) { loop->stop_flag = 1; }
EVLOOP__DEF void evloop_set_data(evloop *loop, void *data) { loop->data = data; }
EVLOOP__DEF void *evloop_get_data(const evloop *loop) { return loop->data; }
EVLOOP__DEF int evloop_backend_fd(const evloop *loop) { return loop->backend_fd; }

EVLOOP__DEF const char *evloop_backend_name(const evloop *loop)
{
    (void)loop;
#if defined(EVLOOP__EPOLL)
    return "epoll";
#elif defined(EVLOOP__KQUEUE)
    return "kqueue";
#else
    return "poll";
#endif
}

EVLOOP__DEF int evloop_alive(const evloop *loop)
{
    return loop->active > 0 || loop->closing_head || loop->pending_head || loop->ticks.count ||
           loop->immediates.count;
}

EVLOOP__DEF int evloop_backend_timeout(const evloop *loop)
{
    uint64_t due;
    if (loop->stop_flag || !evloop_alive(loop))
        return 0;
    if (loop->pending_head || loop->closing_head || loop->immediates.count || loop->ticks.count ||
        !evloop__q_empty(&loop->hooks[EVLOOP_HOOK_IDLE]))
        return 0;
    if (!loop->heap_len)
        return -1;
    due = loop->heap[0].due;
    if (due <= loop->time)
        return 0;
    return due - loop->time > (uint64_t)INT_MAX ? INT_MAX : (int)(due - loop->time);
}

/* The close phase: close callbacks of the handles closed before it began,
 * in the order they were closed. */
static void evloop__run_closing(evloop *loop)
{
    evloop_handle *h = loop->closing_head;
    loop->closing_head = loop->closing_tail = NULL;
    while (h) {
        evloop_handle *next = h->closing_next;
        switch (h->type) {
        case EVLOOP_TCP:
        case EVLOOP_UNIX:
        case EVLOOP_PIPE:
            evloop__stream_finish_close((evloop_stream *)(void *)h);
            break;
        default:
            break;
        }
        /* unlink from the loop's list; the memory is the user's again */
        if (h->prev)
            h->prev->next = h->next;
        else
            loop->handles = h->next;
        if (h->next)
            h->next->prev = h->prev;
        h->next = h->prev = NULL;
        loop->nhandles--;
        h->flags = (h->flags & ~EVLOOP__F_CLOSING) | EVLOOP__F_CLOSED;
        if (h->close_cb) {
            h->close_cb(h);
            EVLOOP__TICKS(loop);
        }
        h = next;
    }
}

EVLOOP__DEF void evloop_close(evloop_handle *h, evloop_close_cb close_cb)
{
    evloop *loop = h->loop;
    EVLOOP_ASSERT(!(h->flags & (EVLOOP__F_CLOSING | EVLOOP__F_CLOSED)));
    EVLOOP_ASSERT(!(h->flags & EVLOOP__F_INTERNAL));
    h->flags |= EVLOOP__F_CLOSING;
    h->close_cb = close_cb;
    switch ((evloop_handle_type)h->type) {
    case EVLOOP_TIMER:
        evloop_timer_stop((evloop_timer *)(void *)h);
        break;
    case EVLOOP_HOOK:
        evloop_hook_stop((evloop_hook *)(void *)h);
        break;
    case EVLOOP_IO:
        evloop_io_stop((evloop_io *)(void *)h);
        evloop__watcher_detach(loop, &((evloop_io *)(void *)h)->w);
        break;
    case EVLOOP_TCP:
    case EVLOOP_UNIX:
    case EVLOOP_PIPE:
        evloop__stream_close((evloop_stream *)(void *)h);
        break;
    case EVLOOP_SIGNAL:
        evloop__signal_close((evloop_signal *)(void *)h);
        break;
    case EVLOOP_ASYNC:
        evloop__async_close((evloop_async *)(void *)h);
        break;
    case EVLOOP_PROCESS:
        evloop__process_close((evloop_process *)(void *)h);
        break;
    case EVLOOP_FSWATCH:
        evloop__fswatch_close((evloop_fswatch *)(void *)h);
        break;
    }
    evloop__deactivate(h);
    h->closing_next = NULL;
    if (loop->closing_tail)
        loop->closing_tail->closing_next = h;
    else
        loop->closing_head = h;
    loop->closing_tail = h;
}

EVLOOP__DEF int evloop_run(evloop *loop, evloop_run_mode mode)
{
    int alive;
    if (loop->running)
        return -EBUSY;
    loop->running = 1;
    EVLOOP__TICKS(loop);
    alive = evloop_alive(loop);
    if (!alive)
        evloop_update_time(loop);
    while (alive && !loop->stop_flag) {
        int timeout = 0, ran_pending = loop->pending_head != NULL;
        evloop_update_time(loop);
        evloop__run_timers(loop);
        evloop__run_pending(loop);
        evloop__run_hooks(loop, EVLOOP_HOOK_IDLE);
        evloop__run_hooks(loop, EVLOOP_HOOK_PREPARE);
        if ((mode == EVLOOP_RUN_ONCE && !ran_pending) || mode == EVLOOP_RUN_DEFAULT)
            timeout = evloop_backend_timeout(loop);
        evloop__backend_poll(loop, timeout);
        evloop__run_check(loop);
        evloop__run_closing(loop);
        if (mode == EVLOOP_RUN_ONCE) {
            /* the poll may have waited for a timer: run it, as promised */
            evloop_update_time(loop);
            evloop__run_timers(loop);
        }
        alive = evloop_alive(loop);
        if (mode != EVLOOP_RUN_DEFAULT)
            break;
    }
    loop->stop_flag = 0;
    loop->running = 0;
    return alive;
}

/* ---- fd watchers (public) -------------------------------------------------------- */

static void evloop__io_cb(evloop *loop, evloop__watcher *w, unsigned events)
{
    evloop_io *io = EVLOOP__CONTAINER(w, evloop_io, w);
    io->cb(io, events);
    EVLOOP__TICKS(loop);
}

EVLOOP__DEF int evloop_io_init(evloop *loop, evloop_io *io, int fd)
{
    struct stat sb;
    EVLOOP_ASSERT(loop && io);
    if (fd < 0 || fstat(fd, &sb) < 0)
        return -EBADF;
    EVLOOP__INIT(loop, io, EVLOOP_IO);
    evloop__watcher_init(&io->w, fd, evloop__io_cb);
    /* epoll refuses these, poll and kqueue call them always ready: refuse
     * them on every backend */
    if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))
        io->handle.flags |= EVLOOP__IO_FILE;
    return 0;
}

EVLOOP__DEF int evloop_io_start(evloop_io *io, unsigned events, evloop_io_cb cb)
{
    evloop *loop = io->handle.loop;
    int rc;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&io->handle));
    events &= EVLOOP_READABLE | EVLOOP_WRITABLE;
    if (!events)
        return -EINVAL;
    if (io->handle.flags & EVLOOP__IO_FILE)
        return -EPERM;
    rc = evloop__watcher_attach(loop, &io->w);
    if (rc < 0)
        return rc;
    rc = evloop__watcher_set(loop, &io->w, events);
    if (rc < 0) {
        if (!io->w.registered)
            evloop__watcher_detach(loop, &io->w);
        return rc;
    }
    io->cb = cb;
    evloop__activate(&io->handle);
    return 0;
}

EVLOOP__DEF int evloop_io_stop(evloop_io *io)
{
    evloop *loop = io->handle.loop;
    if (!(io->handle.flags & EVLOOP__F_ACTIVE))
        return 0;
    (void)evloop__watcher_set(loop, &io->w, 0);
    evloop__deactivate(&io->handle);
    return 0;
}

/* ---- streams: setup ------------------------------------------------------------------ */

#define EVLOOP__MAX_IOV 64 /* iovecs per writev */

static void evloop__stream_io(evloop *loop, evloop__watcher *w, unsigned events);

static int evloop__stream_init(evloop *loop, evloop_stream *s, int type)
{
    EVLOOP_ASSERT(loop && s);
    EVLOOP__INIT(loop, s, type);
    evloop__watcher_init(&s->w, -1, evloop__stream_io);
    s->accepted_fd = -1;
    return 0;
}

EVLOOP__DEF int evloop_tcp_init(evloop *loop, evloop_stream *s) { return evloop__stream_init(loop, s, EVLOOP_TCP); }
EVLOOP__DEF int evloop_unix_init(evloop *loop, evloop_stream *s) { return evloop__stream_init(loop, s, EVLOOP_UNIX); }
EVLOOP__DEF int evloop_pipe_init(evloop *loop, evloop_stream *s) { return evloop__stream_init(loop, s, EVLOOP_PIPE); }
EVLOOP__DEF int evloop_stream_fd(const evloop_stream *s) { return s->w.fd; }

/* Gives s its descriptor. known_socket: a socket already non-blocking. */
static int evloop__stream_set_fd(evloop_stream *s, int fd, int known_socket)
{
    int rc;
    if (known_socket) {
        s->handle.flags |= EVLOOP__S_SOCKET;
    } else {
        struct stat st;
        if ((rc = evloop__set_flags(fd)) < 0)
            return rc;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            s->handle.flags |= EVLOOP__S_SOCKET;
    }
    s->w.fd = fd;
#if defined(EVLOOP__EPOLL)
    s->w.et = 1; /* a listener goes back to level-triggered */
#endif
    rc = evloop__watcher_attach(s->handle.loop, &s->w);
    if (rc < 0)
        s->w.fd = -1;
    return rc;
}

/* Takes back the descriptor evloop__stream_set_fd gave s, without closing it. */
static void evloop__stream_unset_fd(evloop_stream *s)
{
    evloop__watcher_detach(s->handle.loop, &s->w);
    s->w.fd = -1;
    s->w.et = 0;
    s->handle.flags &= ~EVLOOP__S_SOCKET;
}

EVLOOP__DEF int evloop_stream_open(evloop_stream *s, int fd)
{
    EVLOOP_ASSERT(!evloop_is_closing(&s->handle));
    if (s->w.fd >= 0)
        return -EBUSY;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    return evloop__stream_set_fd(s, fd, 0);
}

/* What the stream waits for, and whether it keeps the loop alive, follow
 * from its state; called after every change of it. */
static int evloop__stream_sync(evloop_stream *s)
{
    uint32_t f = s->handle.flags;
    unsigned ev = 0;
    int rc = 0;
    if (f & (EVLOOP__F_CLOSING | EVLOOP__F_CLOSED))
        return 0;
    if ((f & EVLOOP__S_READING) || ((f & EVLOOP__S_LISTENING) && !(f & EVLOOP__S_PAUSED)))
        ev |= EVLOOP_READABLE;
    if (((f & EVLOOP__S_CONNECTING) && !(f & EVLOOP__S_CONNECTED)) ||
        (s->wq_head && !(f & EVLOOP__S_CONNECTING)))
        ev |= EVLOOP_WRITABLE;
    if (s->w.fd >= 0)
        rc = evloop__watcher_set(s->handle.loop, &s->w, ev);
    if ((f & (EVLOOP__S_READING | EVLOOP__S_LISTENING | EVLOOP__S_CONNECTING |
              EVLOOP__S_SHUTTING | EVLOOP__S_SHUT_CB)) ||
        s->wq_head || s->done_head)
        evloop__activate(&s->handle);
    else
        evloop__deactivate(&s->handle);
    return rc;
}

static void evloop__add_pending(evloop_stream *s)
{
    evloop *loop = s->handle.loop;
    if (s->handle.flags & EVLOOP__S_PENDING)
        return;
    s->handle.flags |= EVLOOP__S_PENDING;
    s->pending_next = NULL;
    if (loop->pending_tail)
        loop->pending_tail->pending_next = s;
    else
        loop->pending_head = s;
    loop->pending_tail = s;
}

static void evloop__remove_pending(evloop_stream *s)
{
    evloop *loop = s->handle.loop;
    evloop_stream **pp = &loop->pending_head, *prev = NULL;
    s->handle.flags &= ~EVLOOP__S_PENDING;
    while (*pp && *pp != s) {
        prev = *pp;
        pp = &(*pp)->pending_next;
    }
    if (!*pp)
        return; /* not on the list: the pending phase is running it */
    *pp = s->pending_next;
    if (loop->pending_tail == s)
        loop->pending_tail = prev;
}

/* ---- addresses, bind, listen, accept, connect ---------------------------------------- */

EVLOOP__DEF int evloop_addr(const char *ip, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (!ip || port < 0 || port > 65535)
        return -EINVAL;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)out;
        if (inet_pton(AF_INET6, ip, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)out;
        if (inet_pton(AF_INET, ip, &a4->sin_addr) != 1)
            return -EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    }
    return 0;
}

EVLOOP__DEF int evloop_addr_port(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)addr)->sin_port);
    if (addr->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)addr)->sin6_port);
    return -1;
}

static socklen_t evloop__addr_len(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return (socklen_t)sizeof(struct sockaddr_in);
    if (addr->sa_family == AF_INET6)
        return (socklen_t)sizeof(struct sockaddr_in6);
    return 0;
}

static int evloop__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n = path ? strlen(path) : 0;
    memset(sun, 0, sizeof *sun);
    if (!n)
        return -EINVAL;
    if (n >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Creates a socket, lets prepare() set options, binds it, adopts it. */
static int evloop__bind(evloop_stream *s, int domain, const struct sockaddr *addr, socklen_t len,
                        unsigned flags)
{
    int fd, rc, one = 1;
    EVLOOP_ASSERT(!evloop_is_closing(&s->handle));
    if (s->w.fd >= 0)
        return -EBUSY;
    fd = evloop__socket(domain, SOCK_STREAM);
    if (fd < 0)
        return fd;
    if (domain != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    if (flags & EVLOOP_BIND_REUSEPORT) {
#ifdef SO_REUSEPORT
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            goto fail;
#else
        errno = ENOTSUP;
        goto fail;
#endif
    }
    if (domain == AF_INET6) {
        int only = (flags & EVLOOP_BIND_IPV6ONLY) ? 1 : 0;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) < 0)
            goto fail;
    }
    if (bind(fd, addr, len) < 0)
        goto fail;
    rc = evloop__stream_set_fd(s, fd, 1);
    if (rc < 0)
        close(fd);
    return rc;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

EVLOOP__DEF int evloop_tcp_bind(evloop_stream *s, const struct sockaddr *addr, unsigned flags)
{
    socklen_t len = evloop__addr_len(addr);
    if (!len || s->handle.type != EVLOOP_TCP)
        return -EINVAL;
    return evloop__bind(s, addr->sa_family, addr, len, flags);
}

EVLOOP__DEF int evloop_unix_bind(evloop_stream *s, const char *path)
{
    struct sockaddr_un sun;
    socklen_t len;
    int rc = evloop__unix_addr(path, &sun, &len);
    if (rc < 0)
        return rc;
    if (s->handle.type != EVLOOP_UNIX)
        return -EINVAL;
    return evloop__bind(s, AF_UNIX, (const struct sockaddr *)(const void *)&sun, len, 0);
}

EVLOOP__DEF int evloop_listen(evloop_stream *s, int backlog, evloop_connection_cb cb)
{
    int rc;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&s->handle));
    if (s->w.fd < 0 || !(s->handle.flags & EVLOOP__S_SOCKET) ||
        (s->handle.flags & EVLOOP__S_READING))
        return -EINVAL;
    if (listen(s->w.fd, backlog > 0 ? backlog : 511) < 0)
        return -errno;
    s->w.et = 0; /* level-triggered: a batch may leave connections waiting */
    s->cb.connection = cb;
    s->handle.flags |= EVLOOP__S_LISTENING;
    rc = evloop__stream_sync(s);
    if (rc < 0) {
        s->handle.flags &= ~EVLOOP__S_LISTENING;
        evloop__stream_sync(s);
    }
    return rc;
}

static int evloop__accept4(int lfd)
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0 && evloop__set_flags(fd) < 0) {
        evloop__close_fd(fd);
        errno = EMFILE;
        return -1;
    }
#ifdef SO_NOSIGPIPE
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return fd;
#endif
}

static void evloop__accept_resume(evloop_timer *t)
{
    evloop_handle *h;
    for (h = t->handle.loop->handles; h; h = h->next) {
        if ((h->flags & EVLOOP__S_PAUSED) && !(h->flags & EVLOOP__F_CLOSING) &&
            (h->type == EVLOOP_TCP || h->type == EVLOOP_UNIX)) {
            h->flags &= ~EVLOOP__S_PAUSED;
            evloop__stream_sync((evloop_stream *)(void *)h);
        }
    }
}

/* Out of descriptors: stop polling the listener for a while instead of
 * waking up for the same unacceptable connection again and again. */
static void evloop__accept_pause(evloop_stream *s)
{
    evloop *loop = s->handle.loop;
    if (loop->accept_timer.heap_index == SIZE_MAX &&
        evloop_timer_start(&loop->accept_timer, evloop__accept_resume, loop->accept_retry_ms,
                           0) < 0)
        return; /* no memory for the timer: better polling on than never resuming */
    s->handle.flags |= EVLOOP__S_PAUSED;
    evloop__stream_sync(s);
}

static void evloop__accept_batch(evloop *loop, evloop_stream *s)
{
    int i;
    for (i = 0; i < 128; i++) {
        int fd = evloop__accept4(s->w.fd);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                evloop__accept_pause(s);
            s->cb.connection(s, -err);
            EVLOOP__TICKS(loop);
            return;
        }
        s->accepted_fd = fd;
        s->cb.connection(s, 0);
        EVLOOP__TICKS(loop);
        if (s->accepted_fd >= 0) { /* not taken: refuse it */
            evloop__close_fd(s->accepted_fd);
            s->accepted_fd = -1;
        }
        if ((s->handle.flags & (EVLOOP__F_CLOSING | EVLOOP__S_PAUSED)) ||
            !(s->handle.flags & EVLOOP__S_LISTENING))
            return;
    }
}

EVLOOP__DEF int evloop_accept(evloop_stream *server, evloop_stream *client)
{
    int fd, rc;
    EVLOOP_ASSERT(!evloop_is_closing(&client->handle));
    if (server->accepted_fd < 0)
        return -EAGAIN;
    if (client->w.fd >= 0 || client->handle.type == EVLOOP_PIPE)
        return -EINVAL;
    fd = server->accepted_fd;
    server->accepted_fd = -1;
    rc = evloop__stream_set_fd(client, fd, 1);
    if (rc < 0)
        evloop__close_fd(fd);
    return rc;
}

static int evloop__connect(evloop_stream *s, int domain, const struct sockaddr *addr,
                           socklen_t len, evloop_connect_cb cb)
{
    int created = 0, r;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&s->handle));
    if (s->handle.flags & EVLOOP__S_CONNECTING)
        return -EALREADY;
    if (s->handle.flags & (EVLOOP__S_LISTENING | EVLOOP__S_READING))
        return -EISCONN;
    if (s->w.fd < 0) {
        int fd = evloop__socket(domain, SOCK_STREAM);
        if (fd < 0)
            return fd;
        if ((r = evloop__stream_set_fd(s, fd, 1)) < 0) {
            close(fd);
            return r;
        }
        created = 1;
    }
    do
        r = connect(s->w.fd, addr, len);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EINPROGRESS) {
        r = -errno;
        goto fail;
    }
    s->cb.connect = cb;
    s->handle.flags |= EVLOOP__S_CONNECTING | (r == 0 ? EVLOOP__S_CONNECTED : 0u);
    if ((r = evloop__stream_sync(s)) < 0) { /* cannot watch for the result */
        s->handle.flags &= ~(EVLOOP__S_CONNECTING | EVLOOP__S_CONNECTED);
        (void)evloop__stream_sync(s);
        goto fail;
    }
    if (s->handle.flags & EVLOOP__S_CONNECTED) { /* done at once (Unix sockets) */
        s->error = 0;
        evloop__add_pending(s); /* reported from the pending phase */
    }
    return 0;
fail:
    if (created) {
        int fd = s->w.fd;
        evloop__stream_unset_fd(s);
        evloop__close_fd(fd);
    }
    return r;
}

EVLOOP__DEF int evloop_tcp_connect(evloop_stream *s, const struct sockaddr *addr, evloop_connect_cb cb)
{
    socklen_t len = evloop__addr_len(addr);
    if (!len || s->handle.type != EVLOOP_TCP)
        return -EINVAL;
    return evloop__connect(s, addr->sa_family, addr, len, cb);
}

EVLOOP__DEF int evloop_unix_connect(evloop_stream *s, const char *path, evloop_connect_cb cb)
{
    struct sockaddr_un sun;
    socklen_t len;
    int rc = evloop__unix_addr(path, &sun, &len);
    if (rc < 0)
        return rc;
    if (s->handle.type != EVLOOP_UNIX)
        return -EINVAL;
    return evloop__connect(s, AF_UNIX, (const struct sockaddr *)(const void *)&sun, len, cb);
}

static void evloop__fail_writes(evloop_stream *s, int err);
static void evloop__shutdown_if_due(evloop_stream *s);

static void evloop__finish_connect(evloop *loop, evloop_stream *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->w.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS)
        return;
    s->handle.flags &= ~EVLOOP__S_CONNECTING;
    if (err)
        evloop__fail_writes(s, -err);
    else
        evloop__shutdown_if_due(s);
    evloop__stream_sync(s);
    s->cb.connect(s, -err);
    EVLOOP__TICKS(loop);
}

EVLOOP__DEF int evloop_sockname(const evloop_stream *s, struct sockaddr_storage *out)
{
    socklen_t len = sizeof *out;
    memset(out, 0, sizeof *out);
    if (s->w.fd < 0)
        return -EBADF;
    return getsockname(s->w.fd, (struct sockaddr *)(void *)out, &len) < 0 ? -errno : 0;
}

EVLOOP__DEF int evloop_peername(const evloop_stream *s, struct sockaddr_storage *out)
{
    socklen_t len = sizeof *out;
    memset(out, 0, sizeof *out);
    if (s->w.fd < 0)
        return -EBADF;
    return getpeername(s->w.fd, (struct sockaddr *)(void *)out, &len) < 0 ? -errno : 0;
}

EVLOOP__DEF int evloop_tcp_nodelay(evloop_stream *s, int on)
{
    on = on ? 1 : 0;
    if (s->w.fd < 0)
        return -EBADF;
    return setsockopt(s->w.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0 ? -errno : 0;
}

EVLOOP__DEF int evloop_tcp_keepalive(evloop_stream *s, int on, unsigned delay_s)
{
    int v = on ? 1 : 0;
    if (s->w.fd < 0)
        return -EBADF;
    if (setsockopt(s->w.fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) < 0)
        return -errno;
    if (on && delay_s) {
        int d = delay_s > INT_MAX ? INT_MAX : (int)delay_s;
#if defined(TCP_KEEPIDLE)
        if (setsockopt(s->w.fd, IPPROTO_TCP, TCP_KEEPIDLE, &d, sizeof d) < 0)
            return -errno;
#elif defined(TCP_KEEPALIVE)
        if (setsockopt(s->w.fd, IPPROTO_TCP, TCP_KEEPALIVE, &d, sizeof d) < 0)
            return -errno;
#endif
        (void)d;
    }
    return 0;
}

/* ---- streams: reading ------------------------------------------------------------------ */

EVLOOP__DEF int evloop_read_start(evloop_stream *s, evloop_read_cb cb)
{
    int rc;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&s->handle));
    if (s->w.fd < 0)
        return -ENOTCONN;
    if (s->handle.flags & EVLOOP__S_LISTENING)
        return -EINVAL;
    s->read_cb = cb;
    if (s->handle.flags & EVLOOP__S_READING)
        return 0;
    s->handle.flags |= EVLOOP__S_READING;
    rc = evloop__stream_sync(s);
    if (rc < 0) {
        s->handle.flags &= ~EVLOOP__S_READING;
        evloop__stream_sync(s);
        return rc;
    }
    if (s->handle.flags & EVLOOP__S_RHINT) { /* bytes came while stopped */
        s->handle.flags |= EVLOOP__S_READ_DUE;
        evloop__add_pending(s);
    }
    return 0;
}

EVLOOP__DEF int evloop_read_stop(evloop_stream *s)
{
    if (!(s->handle.flags & EVLOOP__S_READING))
        return 0;
    s->handle.flags &= ~EVLOOP__S_READING;
    evloop__stream_sync(s);
    return 0;
}

EVLOOP__DEF int evloop_is_reading(const evloop_stream *s)
{
    return (s->handle.flags & EVLOOP__S_READING) != 0;
}

/* Reads until the socket is empty (a short read says so), the reader stops,
 * or 32 buffers went by, so one busy connection cannot starve the rest.
 * RHINT stays set while bytes may remain; a reader still reading after 32
 * buffers continues from the next pending phase (edge-triggered, no new
 * event would come). */
static void evloop__stream_read(evloop *loop, evloop_stream *s)
{
    int i;
    for (i = 0; i < 32; i++) {
        ssize_t n;
        if (!(s->handle.flags & EVLOOP__S_READING))
            return;
        if (s->handle.flags & EVLOOP__S_SOCKET) /* recv skips the VFS layer read() takes */
            n = recv(s->w.fd, loop->rbuf, loop->rbuf_size, 0);
        else
            n = read(s->w.fd, loop->rbuf, loop->rbuf_size);
        if (n > 0) {
            int drained = (size_t)n < loop->rbuf_size && !(s->handle.flags & EVLOOP__S_HUP);
            if (drained)
                s->handle.flags &= ~EVLOOP__S_RHINT;
            s->read_cb(s, n, loop->rbuf);
            EVLOOP__TICKS(loop);
            if (drained)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        s->handle.flags &= ~EVLOOP__S_RHINT;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        s->handle.flags &= ~EVLOOP__S_READING;
        if (n == 0)
            s->handle.flags |= EVLOOP__S_EOF;
        evloop__stream_sync(s);
        s->read_cb(s, n == 0 ? (ssize_t)EVLOOP_EOF : (ssize_t)-errno, NULL);
        EVLOOP__TICKS(loop);
        return;
    }
    if ((s->handle.flags & (EVLOOP__S_READING | EVLOOP__F_CLOSING)) == EVLOOP__S_READING) {
        s->handle.flags |= EVLOOP__S_READ_DUE;
        evloop__add_pending(s);
    }
}

/* ---- streams: writing --------------------------------------------------------------------- */

static ssize_t evloop__writev(evloop_stream *s, const evloop_buf *iov, unsigned n)
{
    ssize_t r;
    if (n > EVLOOP__MAX_IOV)
        n = EVLOOP__MAX_IOV;
    do {
#ifdef MSG_NOSIGNAL
        if ((s->handle.flags & EVLOOP__S_SOCKET) && n == 1) { /* cheaper than sendmsg */
            r = send(s->w.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else if (s->handle.flags & EVLOOP__S_SOCKET) {
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = (struct iovec *)(uintptr_t)iov;
            m.msg_iovlen = n;
            r = sendmsg(s->w.fd, &m, MSG_NOSIGNAL);
        } else
#endif
        if (n == 1)
            r = write(s->w.fd, iov[0].iov_base, iov[0].iov_len);
        else
            r = writev(s->w.fd, iov, (int)n);
    } while (r < 0 && errno == EINTR);
    return r;
}

static size_t evloop__bufs_size(const evloop_buf *bufs, unsigned n)
{
    size_t total = 0;
    unsigned i;
    for (i = 0; i < n; i++)
        total += bufs[i].iov_len;
    return total;
}

/* Consumes up to *n written bytes from req; 1 when req is complete. */
static int evloop__req_advance(evloop_write_req *req, size_t *n)
{
    while (req->index < req->nbufs) {
        evloop_buf *b = &req->bufs[req->index];
        if (*n < b->iov_len) {
            b->iov_base = (char *)b->iov_base + *n;
            b->iov_len -= *n;
            *n = 0;
            return 0;
        }
        *n -= b->iov_len;
        req->index++;
    }
    return 1;
}

/* Runs a finished request's callback and frees what the loop allocated. */
static void evloop__req_complete(evloop *loop, evloop_write_req *req)
{
    evloop_write_cb cb = req->cb;
    uint32_t flags = req->flags;
    if (flags & EVLOOP__W_HEAPBUFS)
        EVLOOP_FREE(req->bufs);
    req->bufs = NULL;
    if (cb) {
        cb(req, req->status);
        EVLOOP__TICKS(loop);
    }
    if (flags & EVLOOP__W_OWNED)
        EVLOOP_FREE(req);
}

/* Moves every queued request to the done list with status err; a shutdown
 * waiting for them (or for the connect) fails with err too. */
static void evloop__fail_writes(evloop_stream *s, int err)
{
    evloop_write_req *r = s->wq_head;
    if (s->handle.flags & EVLOOP__S_SHUTTING) {
        s->error = err;
        s->handle.flags = (s->handle.flags & ~EVLOOP__S_SHUTTING) | EVLOOP__S_SHUT | EVLOOP__S_SHUT_CB;
        evloop__add_pending(s);
    }
    if (!r)
        return;
    while (r) {
        r->status = err;
        r = r->next;
    }
    if (s->done_tail)
        s->done_tail->next = s->wq_head;
    else
        s->done_head = s->wq_head;
    s->done_tail = s->wq_tail;
    s->wq_head = s->wq_tail = NULL;
    s->queued = 0;
    s->handle.flags |= EVLOOP__S_WFAILED;
    evloop__add_pending(s);
}

static void evloop__do_shutdown(evloop_stream *s)
{
    s->error = shutdown(s->w.fd, SHUT_WR) < 0 ? -errno : 0;
    s->handle.flags = (s->handle.flags & ~EVLOOP__S_SHUTTING) | EVLOOP__S_SHUT | EVLOOP__S_SHUT_CB;
}

/* A requested shutdown happens once the stream is connected and its write
 * queue is empty; its callback runs from the pending phase. Called where
 * either condition may have become true outside evloop__stream_flush. */
static void evloop__shutdown_if_due(evloop_stream *s)
{
    if ((s->handle.flags & (EVLOOP__S_SHUTTING | EVLOOP__S_CONNECTING | EVLOOP__F_CLOSING)) ==
            EVLOOP__S_SHUTTING &&
        !s->wq_head) {
        evloop__do_shutdown(s);
        evloop__add_pending(s);
    }
}

static void evloop__run_shutdown_cb(evloop *loop, evloop_stream *s)
{
    s->handle.flags &= ~EVLOOP__S_SHUT_CB;
    evloop__stream_sync(s);
    if (s->shutdown_cb) {
        s->shutdown_cb(s, s->error);
        EVLOOP__TICKS(loop);
    }
}

/* Where sendfile(2) cannot (other systems, some file systems): a read and
 * a write through a buffer on the stack. Returns bytes written, 0 at the
 * end of the file, -1 with errno. */
static ssize_t evloop__file_copy(evloop_stream *s, evloop_write_req *req, size_t want)
{
    char buf[16384];
    evloop_buf b;
    ssize_t n;
    if (want > sizeof buf)
        want = sizeof buf;
    n = pread(req->u.file.fd, buf, want, (off_t)req->u.file.offset);
    if (n <= 0)
        return n;
    b.iov_base = buf;
    b.iov_len = (size_t)n;
    return evloop__writev(s, &b, 1);
}

/* Sends from a file request: 1 when all of it went, 0 when the socket is
 * full, or a negative errno (-EIO: the file ended early). */
static int evloop__file_step(evloop_stream *s, evloop_write_req *req)
{
    while (req->u.file.left) {
        size_t want = req->u.file.left > (1u << 30) ? (1u << 30) : (size_t)req->u.file.left;
        ssize_t r;
#if defined(__linux__)
        off_t off = (off_t)req->u.file.offset;
        r = sendfile(s->w.fd, req->u.file.fd, &off, want);
        if (r < 0 && (errno == EINVAL || errno == ENOSYS))
            r = evloop__file_copy(s, req, want);
#else
        r = evloop__file_copy(s, req, want);
#endif
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        if (r == 0)
            return -EIO;
        req->u.file.offset += r;
        req->u.file.left -= (uint64_t)r;
        s->queued -= (size_t)r;
    }
    return 1;
}

/* Writable: sends queued requests, several per writev (a file request goes
 * alone), then runs the callbacks of those finished, the drain callback,
 * and a due shutdown. */
static void evloop__stream_flush(evloop *loop, evloop_stream *s)
{
    evloop_write_req *done = NULL, **dtail = &done;
    for (;;) {
        evloop_buf iov[EVLOOP__MAX_IOV];
        unsigned n = 0, i;
        size_t asked = 0, wrote;
        ssize_t r;
        evloop_write_req *q;
        if (!s->wq_head)
            break;
        if (s->wq_head->flags & EVLOOP__W_FILE) {
            int rc = evloop__file_step(s, s->wq_head);
            if (rc < 0)
                evloop__fail_writes(s, rc);
            if (rc <= 0)
                break;
            q = s->wq_head;
            s->wq_head = q->next;
            if (!s->wq_head)
                s->wq_tail = NULL;
            q->status = 0;
            q->next = NULL;
            *dtail = q;
            dtail = &q->next;
            continue;
        }
        for (q = s->wq_head; q && n < EVLOOP__MAX_IOV && !(q->flags & EVLOOP__W_FILE); q = q->next)
            for (i = q->index; i < q->nbufs && n < EVLOOP__MAX_IOV; i++) {
                iov[n++] = q->bufs[i];
                asked += q->bufs[i].iov_len;
            }
        r = evloop__writev(s, iov, n);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            evloop__fail_writes(s, -errno);
            break;
        }
        wrote = (size_t)r;
        s->queued -= wrote;
        while (s->wq_head && !(s->wq_head->flags & EVLOOP__W_FILE) &&
               evloop__req_advance(s->wq_head, &wrote)) {
            q = s->wq_head;
            s->wq_head = q->next;
            if (!s->wq_head)
                s->wq_tail = NULL;
            q->status = 0;
            q->next = NULL;
            *dtail = q;
            dtail = &q->next;
        }
        if ((size_t)r < asked)
            break; /* the kernel's buffer is full */
    }
    evloop__stream_sync(s);
    while (done) {
        evloop_write_req *q = done;
        done = q->next;
        evloop__req_complete(loop, q);
    }
    if (s->handle.flags & (EVLOOP__F_CLOSING | EVLOOP__S_WFAILED))
        return;
    if (!s->queued && (s->handle.flags & EVLOOP__S_NEED_DRAIN)) {
        s->handle.flags &= ~EVLOOP__S_NEED_DRAIN;
        if (s->drain_cb) {
            s->drain_cb(s);
            EVLOOP__TICKS(loop);
        }
    }
    if (!(s->handle.flags & EVLOOP__F_CLOSING) && (s->handle.flags & EVLOOP__S_SHUTTING) &&
        !s->wq_head) {
        evloop__do_shutdown(s);
        evloop__run_shutdown_cb(loop, s);
    }
}

/* Common checks of the write calls. */
static int evloop__write_check(const evloop_stream *s)
{
    uint32_t f = s->handle.flags;
    if (f & (EVLOOP__F_CLOSING | EVLOOP__F_CLOSED | EVLOOP__S_SHUTTING | EVLOOP__S_SHUT |
             EVLOOP__S_WFAILED))
        return -EPIPE;
    if (s->w.fd < 0 || (f & EVLOOP__S_LISTENING))
        return -ENOTCONN;
    return 0;
}

/* Appends req (whose bufs hold what is left) to the write queue. When the
 * backend refuses to watch for writability, the queue is left as it was
 * and the error returned: req is not queued, its callback will not run. */
static int evloop__enqueue(evloop_stream *s, evloop_write_req *req, size_t left)
{
    evloop_write_req *tail = s->wq_tail;
    uint32_t drain = s->handle.flags & EVLOOP__S_NEED_DRAIN;
    int rc;
    req->next = NULL;
    if (tail)
        tail->next = req;
    else
        s->wq_head = req;
    s->wq_tail = req;
    s->queued += left;
    if (s->hwm && s->queued >= s->hwm)
        s->handle.flags |= EVLOOP__S_NEED_DRAIN;
    rc = evloop__stream_sync(s);
    if (rc < 0) {
        if (tail)
            tail->next = NULL;
        else
            s->wq_head = NULL;
        s->wq_tail = tail;
        s->queued -= left;
        s->handle.flags = (s->handle.flags & ~EVLOOP__S_NEED_DRAIN) | drain;
        (void)evloop__stream_sync(s);
    }
    return rc;
}

/* A write call fails after part of its bytes went out: the peer got a
 * truncated message, so the stream must not carry any more writes. */
static int evloop__write_failed(evloop_stream *s, int partial, int err)
{
    if (partial)
        s->handle.flags |= EVLOOP__S_WFAILED;
    return err;
}

static void evloop__done_later(evloop_stream *s, evloop_write_req *req)
{
    req->status = 0;
    req->next = NULL;
    if (s->done_tail)
        s->done_tail->next = req;
    else
        s->done_head = req;
    s->done_tail = req;
    evloop__add_pending(s);
    evloop__stream_sync(s);
}

EVLOOP__DEF int evloop_write(evloop_write_req *req, evloop_stream *s, const evloop_buf *bufs,
                             unsigned n, evloop_write_cb cb)
{
    size_t total = evloop__bufs_size(bufs, n), wrote = 0;
    unsigned i;
    int rc = evloop__write_check(s), partial;
    if (rc < 0)
        return rc;
    req->stream = s;
    req->cb = cb;
    req->flags = 0;
    req->status = 0;
    req->index = 0;
    if (!s->wq_head && !(s->handle.flags & EVLOOP__S_CONNECTING) && total) {
        ssize_t r = evloop__writev(s, bufs, n);
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        wrote = r > 0 ? (size_t)r : 0;
    }
    if (wrote == total) {
        req->bufs = NULL;
        req->nbufs = 0;
        evloop__done_later(s, req);
        return 0;
    }
    /* keep a copy of the descriptors of what is left */
    partial = wrote > 0;
    while (n && wrote >= bufs[0].iov_len) {
        wrote -= bufs[0].iov_len;
        bufs++;
        n--;
    }
    if (n <= 4) {
        req->bufs = req->u.bufsml;
    } else {
        req->bufs = (evloop_buf *)EVLOOP_MALLOC(n * sizeof *bufs);
        if (!req->bufs)
            return evloop__write_failed(s, partial, -ENOMEM);
        req->flags |= EVLOOP__W_HEAPBUFS;
    }
    for (i = 0; i < n; i++)
        req->bufs[i] = bufs[i];
    req->nbufs = n;
    req->bufs[0].iov_base = (char *)req->bufs[0].iov_base + wrote;
    req->bufs[0].iov_len -= wrote;
    rc = evloop__enqueue(s, req, evloop__bufs_size(req->bufs, n));
    if (rc < 0) {
        if (req->flags & EVLOOP__W_HEAPBUFS)
            EVLOOP_FREE(req->bufs);
        req->bufs = NULL;
        return evloop__write_failed(s, partial, rc);
    }
    return 0;
}

EVLOOP__DEF int evloop_write_copy(evloop_stream *s, const void *data, size_t len,
                                  evloop_write_cb cb, void *arg)
{
    size_t wrote = 0, left;
    evloop_write_req *req;
    int rc = evloop__write_check(s);
    if (rc < 0)
        return rc;
    if (!s->wq_head && !(s->handle.flags & EVLOOP__S_CONNECTING) && len) {
        evloop_buf b;
        ssize_t r;
        b.iov_base = (void *)(uintptr_t)data;
        b.iov_len = len;
        r = evloop__writev(s, &b, 1);
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        wrote = r > 0 ? (size_t)r : 0;
        if (wrote == len && !cb)
            return 0;
    }
    left = len - wrote;
    req = (evloop_write_req *)EVLOOP_MALLOC(sizeof *req + left);
    if (!req)
        return evloop__write_failed(s, wrote > 0, -ENOMEM);
    memset(req, 0, sizeof *req);
    req->data = arg;
    req->stream = s;
    req->cb = cb;
    req->flags = EVLOOP__W_OWNED;
    if (!left) {
        evloop__done_later(s, req);
        return 0;
    }
    memcpy(req + 1, (const char *)data + wrote, left);
    req->bufs = req->u.bufsml;
    req->nbufs = 1;
    req->u.bufsml[0].iov_base = (void *)(req + 1);
    req->u.bufsml[0].iov_len = left;
    rc = evloop__enqueue(s, req, left);
    if (rc < 0) {
        EVLOOP_FREE(req);
        return evloop__write_failed(s, wrote > 0, rc);
    }
    return 0;
}

EVLOOP__DEF ssize_t evloop_try_write(evloop_stream *s, const evloop_buf *bufs, unsigned n)
{
    ssize_t r;
    int rc = evloop__write_check(s);
    if (rc < 0)
        return rc;
    if (s->wq_head || (s->handle.flags & EVLOOP__S_CONNECTING))
        return -EAGAIN;
    if (!evloop__bufs_size(bufs, n))
        return 0;
    r = evloop__writev(s, bufs, n);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

EVLOOP__DEF int evloop_sendfile(evloop_write_req *req, evloop_stream *s, int fd, int64_t offset,
                                uint64_t len, evloop_write_cb cb)
{
    int rc = evloop__write_check(s);
    if (rc < 0)
        return rc;
    if (fd < 0 || offset < 0)
        return -EINVAL;
    req->stream = s;
    req->cb = cb;
    req->flags = EVLOOP__W_FILE;
    req->status = 0;
    req->index = 0;
    req->bufs = NULL;
    req->nbufs = 0;
    req->u.file.fd = fd;
    req->u.file.offset = offset;
    req->u.file.left = len;
    if (!len) {
        evloop__done_later(s, req);
        return 0;
    }
    s->queued += len;
    if (!s->wq_head && !(s->handle.flags & EVLOOP__S_CONNECTING)) {
        rc = evloop__file_step(s, req);
        if (rc < 0) {
            s->queued -= req->u.file.left;
            return evloop__write_failed(s, req->u.file.left != len, rc);
        }
        if (rc == 1) {
            evloop__done_later(s, req);
            return 0;
        }
    }
    s->queued -= req->u.file.left; /* evloop__enqueue counts it again */
    rc = evloop__enqueue(s, req, req->u.file.left);
    return rc < 0 ? evloop__write_failed(s, req->u.file.left != len, rc) : 0;
}

EVLOOP__DEF int evloop_stream_detach(evloop_stream *s)
{
    int fd = s->w.fd;
    EVLOOP_ASSERT(!evloop_is_closing(&s->handle));
    if (fd < 0)
        return -EBADF;
    if (s->wq_head || s->done_head ||
        (s->handle.flags & (EVLOOP__S_CONNECTING | EVLOOP__S_SHUTTING | EVLOOP__S_SHUT_CB |
                            EVLOOP__S_LISTENING)))
        return -EBUSY;
    s->handle.flags &= ~(EVLOOP__S_READING | EVLOOP__S_RHINT | EVLOOP__S_HUP | EVLOOP__S_READ_DUE);
    if (s->handle.flags & EVLOOP__S_PENDING)
        evloop__remove_pending(s);
    evloop__stream_unset_fd(s);
    evloop__stream_sync(s);
    return fd;
}

EVLOOP__DEF size_t evloop_stream_queued(const evloop_stream *s) { return s->queued; }

EVLOOP__DEF void evloop_stream_set_hwm(evloop_stream *s, size_t high_water_mark, evloop_drain_cb cb)
{
    s->hwm = high_water_mark;
    s->drain_cb = cb;
    if (s->hwm && s->queued >= s->hwm)
        s->handle.flags |= EVLOOP__S_NEED_DRAIN;
}

EVLOOP__DEF int evloop_stream_writable(const evloop_stream *s)
{
    return !(s->handle.flags & EVLOOP__S_NEED_DRAIN) && evloop__write_check(s) == 0;
}

EVLOOP__DEF int evloop_shutdown(evloop_stream *s, evloop_shutdown_cb cb)
{
    int rc = evloop__write_check(s);
    if (rc < 0)
        return rc == -EPIPE && (s->handle.flags & (EVLOOP__S_SHUTTING | EVLOOP__S_SHUT))
                   ? -EALREADY
                   : rc;
    s->shutdown_cb = cb;
    s->handle.flags |= EVLOOP__S_SHUTTING;
    evloop__shutdown_if_due(s); /* else after the connect or the queued writes */
    evloop__stream_sync(s);
    return 0;
}

/* ---- streams: events, pending phase, close ------------------------------------------ */

static void evloop__stream_io(evloop *loop, evloop__watcher *w, unsigned events)
{
    evloop_stream *s = EVLOOP__CONTAINER(w, evloop_stream, w);
    uint32_t f = s->handle.flags;
    if (f & EVLOOP__S_LISTENING) {
        evloop__accept_batch(loop, s);
        return;
    }
    if (events & EVLOOP_READABLE)
        s->handle.flags |= EVLOOP__S_RHINT;
    if (events & EVLOOP_DISCONNECT) /* a short read no longer means "drained" */
        s->handle.flags |= EVLOOP__S_HUP;
    if ((f & EVLOOP__S_CONNECTING) && !(f & EVLOOP__S_CONNECTED)) {
        if (!(events & EVLOOP_WRITABLE))
            return;
        evloop__finish_connect(loop, s);
        if (s->handle.flags & (EVLOOP__S_CONNECTING | EVLOOP__F_CLOSING))
            return;
    }
    if ((events & EVLOOP_WRITABLE) && s->wq_head)
        evloop__stream_flush(loop, s);
    if ((s->handle.flags & (EVLOOP__S_READING | EVLOOP__S_RHINT | EVLOOP__F_CLOSING)) ==
        (EVLOOP__S_READING | EVLOOP__S_RHINT))
        evloop__stream_read(loop, s);
}

/* Deferred results of one stream: connect, finished writes, shutdown. */
static void evloop__stream_pending(evloop *loop, evloop_stream *s)
{
    evloop_write_req *done;
    if (s->handle.flags & EVLOOP__F_CLOSING)
        return; /* its close delivers everything */
    if (s->handle.flags & EVLOOP__S_CONNECTED) {
        s->handle.flags &= ~(EVLOOP__S_CONNECTING | EVLOOP__S_CONNECTED);
        evloop__shutdown_if_due(s); /* its callback runs below, after this one */
        evloop__stream_sync(s);
        s->cb.connect(s, s->error);
        EVLOOP__TICKS(loop);
    }
    done = s->done_head;
    s->done_head = s->done_tail = NULL;
    evloop__stream_sync(s);
    while (done) {
        evloop_write_req *q = done;
        done = q->next;
        evloop__req_complete(loop, q);
    }
    if ((s->handle.flags & EVLOOP__S_SHUT_CB) && !(s->handle.flags & EVLOOP__F_CLOSING))
        evloop__run_shutdown_cb(loop, s);
    if (s->handle.flags & EVLOOP__S_READ_DUE) {
        s->handle.flags &= ~EVLOOP__S_READ_DUE;
        if ((s->handle.flags & (EVLOOP__S_READING | EVLOOP__F_CLOSING)) == EVLOOP__S_READING)
            evloop__stream_read(loop, s);
    }
}

static void evloop__run_pending(evloop *loop)
{
    evloop_stream *s = loop->pending_head;
    loop->pending_head = loop->pending_tail = NULL;
    while (s) {
        evloop_stream *next = s->pending_next;
        s->handle.flags &= ~EVLOOP__S_PENDING;
        evloop__stream_pending(loop, s);
        s = next;
    }
}

static void evloop__stream_close(evloop_stream *s)
{
    evloop *loop = s->handle.loop;
    s->handle.flags &= ~(EVLOOP__S_READING | EVLOOP__S_LISTENING | EVLOOP__S_PAUSED);
    if (s->w.fd >= 0) {
        evloop__watcher_detach(loop, &s->w);
        evloop__close_fd(s->w.fd);
        s->w.fd = -1;
    }
    if (s->accepted_fd >= 0) {
        evloop__close_fd(s->accepted_fd);
        s->accepted_fd = -1;
    }
    if (s->handle.flags & EVLOOP__S_PENDING)
        evloop__remove_pending(s);
}

/* In the close phase, before the close callback: every callback still owed
 * runs, so each call that succeeded gets its callback exactly once. */
static void evloop__stream_finish_close(evloop_stream *s)
{
    evloop *loop = s->handle.loop;
    if (s->handle.flags & EVLOOP__S_CONNECTING) {
        s->handle.flags &= ~(EVLOOP__S_CONNECTING | EVLOOP__S_CONNECTED);
        s->cb.connect(s, -ECANCELED);
        EVLOOP__TICKS(loop);
    }
    while (s->done_head) {
        evloop_write_req *q = s->done_head;
        s->done_head = q->next;
        evloop__req_complete(loop, q);
    }
    s->done_tail = NULL;
    while (s->wq_head) {
        evloop_write_req *q = s->wq_head;
        s->wq_head = q->next;
        q->status = -ECANCELED;
        evloop__req_complete(loop, q);
    }
    s->wq_tail = NULL;
    s->queued = 0;
    if (s->handle.flags & (EVLOOP__S_SHUTTING | EVLOOP__S_SHUT_CB)) {
        int status = (s->handle.flags & EVLOOP__S_SHUTTING) ? -ECANCELED : s->error;
        s->handle.flags &= ~(EVLOOP__S_SHUTTING | EVLOOP__S_SHUT_CB);
        if (s->shutdown_cb) {
            s->shutdown_cb(s, status);
            EVLOOP__TICKS(loop);
        }
    }
}

/* ---- signals ---------------------------------------------------------------------------- */

/* Process-wide: each loop that watches signals has a slot. The handler
 * sets the signal's bit in the pending mask of every such loop and, when
 * no wake-up is in flight for that loop yet, writes one byte into its
 * pipe; the loop empties the pipe, then takes the mask. A pipe therefore
 * never fills up, and a signal is never lost (only coalesced with others
 * of the same number). slots[] holds write fds plus one (0 means free) so
 * the table needs no initializer. */
static int evloop__sig_slots[EVLOOP__MAX_SIGLOOPS];
/* Signal signum is bit (signum - 1) % 32 of word (signum - 1) / 32. */
#define EVLOOP__SIG_WORDS ((EVLOOP__NSIG + 30) / 32)
#define EVLOOP__SIG_WORD(signum) (((signum) - 1) / 32)
#define EVLOOP__SIG_BIT(signum) (1u << ((unsigned)((signum) - 1) % 32u))
static unsigned evloop__sig_pending[EVLOOP__MAX_SIGLOOPS][EVLOOP__SIG_WORDS];
static int evloop__sig_wake[EVLOOP__MAX_SIGLOOPS]; /* a byte is (being) written */
static int evloop__sig_inflight; /* handlers running now */
static unsigned evloop__sig_refs[EVLOOP__NSIG];
static struct sigaction evloop__sig_saved[EVLOOP__NSIG];
static pthread_mutex_t evloop__sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void evloop__sig_handler(int signum)
{
    int saved = errno, i;
    __atomic_add_fetch(&evloop__sig_inflight, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < EVLOOP__MAX_SIGLOOPS; i++) {
        int fd = __atomic_load_n(&evloop__sig_slots[i], __ATOMIC_SEQ_CST);
        if (fd <= 0)
            continue;
        __atomic_fetch_or(&evloop__sig_pending[i][EVLOOP__SIG_WORD(signum)], EVLOOP__SIG_BIT(signum),
                          __ATOMIC_SEQ_CST);
        if (!__atomic_exchange_n(&evloop__sig_wake[i], 1, __ATOMIC_SEQ_CST)) {
            unsigned char b = 1;
            ssize_t r = write(fd - 1, &b, 1);
            (void)r;
        }
    }
    __atomic_sub_fetch(&evloop__sig_inflight, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

/* Installs the handler for signum on its first user. */
static int evloop__sig_ref(int signum)
{
    int rc = 0;
    pthread_mutex_lock(&evloop__sig_lock);
    if (evloop__sig_refs[signum] == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = evloop__sig_handler;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signum, &sa, &evloop__sig_saved[signum]) < 0)
            rc = -errno;
    }
    if (!rc)
        evloop__sig_refs[signum]++;
    pthread_mutex_unlock(&evloop__sig_lock);
    return rc;
}

/* Restores the previous disposition when the last user goes. */
static void evloop__sig_unref(int signum)
{
    pthread_mutex_lock(&evloop__sig_lock);
    if (evloop__sig_refs[signum] && --evloop__sig_refs[signum] == 0)
        (void)sigaction(signum, &evloop__sig_saved[signum], NULL);
    pthread_mutex_unlock(&evloop__sig_lock);
}

static void evloop__reap(evloop *loop);

/* Runs the handles watching signum (and reaps children on SIGCHLD). */
static void evloop__sig_dispatch(evloop *loop, int signum)
{
    evloop__queue tmp;
    if (signum == SIGCHLD && (loop->children || loop->norphans))
        evloop__reap(loop);
    evloop__q_move(&loop->signals, &tmp);
    while (!evloop__q_empty(&tmp)) {
        evloop__queue *q = tmp.next;
        evloop_signal *sig = EVLOOP__CONTAINER(q, evloop_signal, node);
        evloop__q_remove(q);
        evloop__q_push(&loop->signals, q);
        if (sig->signum != signum)
            continue;
        if (sig->oneshot)
            evloop_signal_stop(sig);
        sig->cb(sig, signum);
        EVLOOP__TICKS(loop);
    }
}

static void evloop__sig_read(evloop *loop, evloop__watcher *w, unsigned events)
{
    unsigned char buf[64];
    unsigned pending[EVLOOP__SIG_WORDS];
    int slot = loop->sig_slot, signum, i;
    ssize_t n;
    (void)events;
    while ((n = read(w->fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        ;
    /* in this order: a signal after the store writes a new byte */
    __atomic_store_n(&evloop__sig_wake[slot], 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < EVLOOP__SIG_WORDS; i++)
        pending[i] = __atomic_exchange_n(&evloop__sig_pending[slot][i], 0u, __ATOMIC_SEQ_CST);
    for (signum = 1; signum < EVLOOP__NSIG; signum++)
        if (pending[EVLOOP__SIG_WORD(signum)] & EVLOOP__SIG_BIT(signum))
            evloop__sig_dispatch(loop, signum);
}

/* Gives the loop its signal pipe and slot, once. */
static int evloop__sig_setup(evloop *loop)
{
    int fds[2], rc, i;
    if (loop->sig_slot >= 0)
        return 0;
    if ((rc = evloop__pipe(fds)) < 0)
        return rc;
    for (i = 0; i < EVLOOP__MAX_SIGLOOPS; i++) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&evloop__sig_slots[i], &expected, fds[1] + 1, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            break;
    }
    if (i == EVLOOP__MAX_SIGLOOPS) {
        close(fds[0]);
        close(fds[1]);
        return -ENOSPC;
    }
    evloop__watcher_init(&loop->sig_w, fds[0], evloop__sig_read);
    if ((rc = evloop__watcher_attach(loop, &loop->sig_w)) < 0 ||
        (rc = evloop__watcher_set(loop, &loop->sig_w, EVLOOP_READABLE)) < 0) {
        __atomic_store_n(&evloop__sig_slots[i], 0, __ATOMIC_SEQ_CST);
        evloop__watcher_detach(loop, &loop->sig_w);
        close(fds[0]);
        close(fds[1]);
        loop->sig_w.fd = -1;
        return rc;
    }
    loop->sig_wfd = fds[1];
    loop->sig_slot = i;
    return 0;
}

/* At evloop_free: leave the process-wide table. A handler that read the
 * slot before it was cleared may still be writing: wait for it to finish
 * before the pipe closes. */
static void evloop__signals_release(evloop *loop)
{
    int i;
    if (loop->sigchld_ref) {
        evloop__sig_unref(SIGCHLD);
        loop->sigchld_ref = 0;
    }
    if (loop->sig_slot < 0)
        return;
    __atomic_store_n(&evloop__sig_slots[loop->sig_slot], 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&evloop__sig_inflight, __ATOMIC_SEQ_CST))
        sched_yield();
    /* no handler can touch the slot now: leave it clean for the next loop */
    for (i = 0; i < EVLOOP__SIG_WORDS; i++)
        __atomic_store_n(&evloop__sig_pending[loop->sig_slot][i], 0u, __ATOMIC_SEQ_CST);
    __atomic_store_n(&evloop__sig_wake[loop->sig_slot], 0, __ATOMIC_SEQ_CST);
    evloop__watcher_detach(loop, &loop->sig_w);
    evloop__close_fd(loop->sig_w.fd);
    evloop__close_fd(loop->sig_wfd);
    loop->sig_slot = -1;
}

EVLOOP__DEF int evloop_signal_init(evloop *loop, evloop_signal *sig)
{
    EVLOOP_ASSERT(loop && sig);
    EVLOOP__INIT(loop, sig, EVLOOP_SIGNAL);
    evloop__q_init(&sig->node);
    return 0;
}

static int evloop__signal_start(evloop_signal *sig, evloop_signal_cb cb, int signum, int oneshot)
{
    evloop *loop = sig->handle.loop;
    int rc;
    EVLOOP_ASSERT(cb && !evloop_is_closing(&sig->handle));
    if (signum <= 0 || signum >= EVLOOP__NSIG || signum == SIGKILL || signum == SIGSTOP)
        return -EINVAL;
    if ((sig->handle.flags & EVLOOP__F_ACTIVE) && sig->signum == signum) {
        sig->cb = cb;
        sig->oneshot = oneshot;
        return 0;
    }
    if ((rc = evloop__sig_setup(loop)) < 0 || (rc = evloop__sig_ref(signum)) < 0)
        return rc;
    evloop_signal_stop(sig);
    sig->cb = cb;
    sig->signum = signum;
    sig->oneshot = oneshot;
    evloop__q_push(&loop->signals, &sig->node);
    evloop__activate(&sig->handle);
    return 0;
}

EVLOOP__DEF int evloop_signal_start(evloop_signal *sig, evloop_signal_cb cb, int signum)
{
    return evloop__signal_start(sig, cb, signum, 0);
}

EVLOOP__DEF int evloop_signal_start_oneshot(evloop_signal *sig, evloop_signal_cb cb, int signum)
{
    return evloop__signal_start(sig, cb, signum, 1);
}

EVLOOP__DEF int evloop_signal_stop(evloop_signal *sig)
{
    if (!(sig->handle.flags & EVLOOP__F_ACTIVE))
        return 0;
    evloop__q_remove(&sig->node);
    evloop__sig_unref(sig->signum);
    evloop__deactivate(&sig->handle);
    return 0;
}

static void evloop__signal_close(evloop_signal *sig) { evloop_signal_stop(sig); }

/* ---- async wake-ups --------------------------------------------------------------------- */

static void evloop__async_read(evloop *loop, evloop__watcher *w, unsigned events)
{
    char buf[64];
    evloop__queue tmp;
    (void)events;
    while (read(w->fd, buf, sizeof buf) > 0 || errno == EINTR)
        ; /* an eventfd drains in one read; a pipe may take several */
    /* Cleared before the scan: a send that comes after the scan has looked
     * at its handle sees 0 here and writes a new wake-up. */
    __atomic_store_n(&loop->async_wake, 0, __ATOMIC_SEQ_CST);
    evloop__q_move(&loop->asyncs, &tmp);
    while (!evloop__q_empty(&tmp)) {
        evloop__queue *q = tmp.next;
        evloop_async *a = EVLOOP__CONTAINER(q, evloop_async, node);
        evloop__q_remove(q);
        evloop__q_push(&loop->asyncs, q);
        if (__atomic_exchange_n(&a->pending, 0, __ATOMIC_SEQ_CST) && a->cb) {
            a->cb(a);
            EVLOOP__TICKS(loop);
        }
    }
}

static int evloop__async_setup(evloop *loop)
{
    int rc, rfd, wfd;
    if (loop->async_w.fd >= 0)
        return 0;
#if defined(__linux__)
    rfd = wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rfd < 0)
        return -errno;
#else
    {
        int fds[2];
        if ((rc = evloop__pipe(fds)) < 0)
            return rc;
        rfd = fds[0];
        wfd = fds[1];
    }
#endif
    evloop__watcher_init(&loop->async_w, rfd, evloop__async_read);
    if ((rc = evloop__watcher_attach(loop, &loop->async_w)) < 0 ||
        (rc = evloop__watcher_set(loop, &loop->async_w, EVLOOP_READABLE)) < 0) {
        evloop__watcher_detach(loop, &loop->async_w);
        if (wfd != rfd)
            close(wfd);
        close(rfd);
        loop->async_w.fd = -1;
        return rc;
    }
    loop->async_wfd = wfd;
    return 0;
}

EVLOOP__DEF int evloop_async_init(evloop *loop, evloop_async *a, evloop_async_cb cb)
{
    int rc;
    EVLOOP_ASSERT(loop && a);
    if ((rc = evloop__async_setup(loop)) < 0)
        return rc;
    EVLOOP__INIT(loop, a, EVLOOP_ASYNC);
    a->cb = cb;
    evloop__q_push(&loop->asyncs, &a->node);
    evloop__activate(&a->handle);
    return 0;
}

EVLOOP__DEF int evloop_async_send(evloop_async *a)
{
    evloop *loop = a->handle.loop;
    if (__atomic_exchange_n(&a->pending, 1, __ATOMIC_SEQ_CST))
        return 0; /* a wake-up for it is on its way */
    if (!__atomic_exchange_n(&loop->async_wake, 1, __ATOMIC_SEQ_CST)) {
#if defined(__linux__)
        uint64_t one = 1;
        ssize_t r;
        do
            r = write(loop->async_wfd, &one, sizeof one);
        while (r < 0 && errno == EINTR);
#else
        char one = 1;
        ssize_t r;
        do
            r = write(loop->async_wfd, &one, 1);
        while (r < 0 && errno == EINTR);
#endif
        (void)r; /* EAGAIN: the counter or pipe is full, so the loop is awake */
    }
    return 0;
}

static void evloop__async_close(evloop_async *a) { evloop__q_remove(&a->node); }

/* ---- child processes ----------------------------------------------------------------------- */

/* In the child, between fork and exec: only async-signal-safe calls. */
static void evloop__child(const evloop_process_options *o, const int src[3], int errfd)
{
    int i, err, fds[3];
    sigset_t none;
    for (i = 1; i < EVLOOP__NSIG; i++) {
        if (i == SIGKILL || i == SIGSTOP)
            continue;
        (void)signal(i, SIG_DFL);
    }
    if (o->flags & EVLOOP_PROCESS_DETACHED)
        (void)setsid();
    /* move sources out of the way of the slots 0..2 they are going to */
    for (i = 0; i < 3; i++) {
        fds[i] = src[i];
        if (fds[i] >= 0 && fds[i] < 3 && fds[i] != i) {
            fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (fds[i] < 0)
                goto fail;
        }
    }
    for (i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        if (fds[i] == i) {
            int fl = fcntl(i, F_GETFD);
            if (fl < 0 || fcntl(i, F_SETFD, fl & ~FD_CLOEXEC) < 0)
                goto fail;
        } else if (dup2(fds[i], i) < 0) {
            goto fail;
        }
        /* a blocking descriptor, as programs expect of their stdio */
        (void)fcntl(i, F_SETFL, fcntl(i, F_GETFL) & ~O_NONBLOCK);
    }
    if (o->cwd && chdir(o->cwd) < 0)
        goto fail;
    if (o->env)
        environ = (char **)(uintptr_t)o->env;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(o->file, o->args);
fail:
    err = errno;
    {
        ssize_t r = write(errfd, &err, sizeof err);
        (void)r;
    }
    _exit(127);
}

EVLOOP__DEF int evloop_spawn(evloop *loop, evloop_process *p, const evloop_process_options *o,
                             evloop_exit_cb cb)
{
    int pairs[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int src[3] = {-1, -1, -1}, given[3] = {0, 0, 0};
    int errpipe[2] = {-1, -1};
    int rc, i, err = 0;
    sigset_t all, old;
    pid_t pid;
    ssize_t n;
    EVLOOP_ASSERT(loop && p && o);
    /* p must not be listed (a live handle, or a closed one whose close
     * callback is still due): init would wipe it while the loop holds it.
     * A walk of the handles is cheap next to the fork. */
    {
        const evloop_handle *h;
        for (h = loop->handles; h; h = h->next)
            EVLOOP_ASSERT(h != &p->handle);
    }
    if (!o->file || !o->args || !o->args[0])
        return -EINVAL;
    for (i = 0; i < 3; i++) {
        const evloop_stdio *sd = &o->stdio[i];
        int j;
        if (sd->kind == EVLOOP_STDIO_PIPE &&
            (!sd->stream || sd->stream->handle.type != EVLOOP_PIPE || sd->stream->w.fd >= 0 ||
             evloop_is_closing(&sd->stream->handle)))
            return -EINVAL;
        for (j = 0; j < i && sd->kind == EVLOOP_STDIO_PIPE; j++)
            if (o->stdio[j].kind == EVLOOP_STDIO_PIPE && o->stdio[j].stream == sd->stream)
                return -EINVAL; /* one stream for two of the child's descriptors */
        if (sd->kind == EVLOOP_STDIO_FD && sd->fd < 0)
            return -EBADF;
        if ((unsigned)sd->kind > EVLOOP_STDIO_FD)
            return -EINVAL;
    }
    if ((rc = evloop__sig_setup(loop)) < 0)
        return rc;
    if (!loop->sigchld_ref) {
        if ((rc = evloop__sig_ref(SIGCHLD)) < 0)
            return rc;
        loop->sigchld_ref = 1;
    }
    for (i = 0; i < 3; i++) {
        switch (o->stdio[i].kind) {
        case EVLOOP_STDIO_PIPE:
#if defined(SOCK_CLOEXEC)
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) < 0) {
#else
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) < 0) {
#endif
                rc = -errno;
                goto fail;
            }
            src[i] = pairs[i][1];
            /* the parent's end goes to its stream now: nothing may fail
             * once the child runs */
            if ((rc = evloop__stream_set_fd(o->stdio[i].stream, pairs[i][0], 0)) < 0)
                goto fail;
            given[i] = 1;
            break;
        case EVLOOP_STDIO_IGNORE:
            src[i] = pairs[i][1] = open("/dev/null", (i == 0 ? O_RDONLY : O_RDWR) | O_CLOEXEC);
            if (src[i] < 0) {
                rc = -errno;
                goto fail;
            }
            break;
        case EVLOOP_STDIO_FD:
            src[i] = o->stdio[i].fd;
            break;
        case EVLOOP_STDIO_INHERIT:
            break;
        }
    }
    if ((rc = evloop__pipe(errpipe)) < 0)
        goto fail;
    (void)fcntl(errpipe[0], F_SETFL, fcntl(errpipe[0], F_GETFL) & ~O_NONBLOCK);
    /* no handler may run in the child before it resets them */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        evloop__child(o, src, errpipe[1]);
    if (pid < 0)
        err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    errpipe[1] = -1;
    if (pid < 0) {
        rc = -err;
        goto fail;
    }
    /* exec succeeded when the close-on-exec pipe closes without a word */
    do
        n = read(errpipe[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    errpipe[0] = -1;
    if (n == (ssize_t)sizeof err) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        rc = -err;
        goto fail;
    }
    for (i = 0; i < 3; i++)
        evloop__close_fd(pairs[i][1]); /* the child's ends */
    EVLOOP__INIT(loop, p, EVLOOP_PROCESS);
    p->pid = pid;
    p->exit_cb = cb;
    p->next_child = loop->children;
    loop->children = p;
    evloop__activate(&p->handle);
    return 0;
fail:
    for (i = 0; i < 3; i++) {
        if (given[i])
            evloop__stream_unset_fd(o->stdio[i].stream);
        evloop__close_fd(pairs[i][0]);
        evloop__close_fd(pairs[i][1]);
    }
    evloop__close_fd(errpipe[0]);
    evloop__close_fd(errpipe[1]);
    return rc;
}

/* SIGCHLD: collects this loop's children that ended, then reports them
 * (the callbacks may spawn or close processes, so not while walking). */
static void evloop__reap(evloop *loop)
{
    evloop_process **pp = &loop->children, *ended = NULL, **tail = &ended;
    size_t i;
    while (*pp) {
        evloop_process *p = *pp;
        int status = 0;
        pid_t r;
        do
            r = waitpid(p->pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0 || (r < 0 && errno != ECHILD)) {
            pp = &p->next_child;
            continue;
        }
        *pp = p->next_child;
        p->exit_status = 0;
        p->term_signal = 0;
        if (r > 0 && WIFEXITED(status))
            p->exit_status = WEXITSTATUS(status);
        else if (r > 0 && WIFSIGNALED(status))
            p->term_signal = WTERMSIG(status);
        p->handle.flags |= EVLOOP__P_EXITED;
        p->next_child = NULL;
        *tail = p;
        tail = &p->next_child;
    }
    for (i = 0; i < loop->norphans;) {
        if (waitpid(loop->orphans[i], NULL, WNOHANG) != 0)
            loop->orphans[i] = loop->orphans[--loop->norphans];
        else
            i++;
    }
    while (ended) {
        evloop_process *p = ended;
        ended = p->next_child;
        p->next_child = NULL;
        if (p->handle.flags & EVLOOP__F_CLOSING)
            continue; /* closing it cancelled the exit callback */
        evloop__deactivate(&p->handle);
        if (p->exit_cb) {
            p->exit_cb(p, p->exit_status, p->term_signal);
            EVLOOP__TICKS(loop);
        }
    }
}

EVLOOP__DEF int evloop_process_kill(evloop_process *p, int signum)
{
    if (p->pid <= 0 || (p->handle.flags & (EVLOOP__P_EXITED | EVLOOP__F_CLOSED)))
        return -ESRCH;
    return kill(p->pid, signum) < 0 ? -errno : 0;
}

static void evloop__process_close(evloop_process *p)
{
    evloop *loop = p->handle.loop;
    evloop_process **pp = &loop->children;
    while (*pp && *pp != p)
        pp = &(*pp)->next_child;
    if (!*pp || (p->handle.flags & EVLOOP__P_EXITED))
        return; /* already reaped */
    *pp = p->next_child;
    /* still running: reap it later so it does not linger as a zombie */
    if (loop->norphans == loop->caporphans) {
        size_t ncap = loop->caporphans ? loop->caporphans * 2 : 8;
        pid_t *no = (pid_t *)EVLOOP_REALLOC(loop->orphans, ncap * sizeof *no);
        if (!no)
            return;
        loop->orphans = no;
        loop->caporphans = ncap;
    }
    loop->orphans[loop->norphans++] = p->pid;
}

/* ---- file watching --------------------------------------------------------------------- */

static void evloop__fs_read(evloop *loop, evloop__watcher *iow, unsigned events);
static void evloop__fs_flush(evloop_timer *t);

EVLOOP__DEF int evloop_fswatch_init(evloop *loop, evloop_fswatch *w)
{
    EVLOOP_ASSERT(loop && w);
    EVLOOP__INIT(loop, w, EVLOOP_FSWATCH);
    evloop__watcher_init(&w->w, -1, evloop__fs_read);
    evloop__handle_init_internal(loop, &w->debounce.handle, EVLOOP_TIMER);
    w->debounce.heap_index = SIZE_MAX;
    return 0;
}

#if defined(__linux__)

typedef struct evloop__wd {
    int wd;
    char *rel; /* directory relative to the root; "" for the root */
} evloop__wd;

typedef struct evloop__fsev {
    size_t name; /* offset of the path in the queue's names */
    unsigned events;
} evloop__fsev;

/* Debounced events, merged per path, in order of first occurrence. A flush
 * empties it but keeps its memory for the next burst. */
typedef struct evloop__fsq {
    evloop__fsev *ev;
    size_t n, cap;
    char *names; /* the paths, each NUL-terminated */
    size_t len, names_cap;
} evloop__fsq;

struct evloop__fswatch_state {
    char *root;  /* the directory watched */
    char *only;  /* watching one file: its name in root */
    unsigned flags, debounce_ms;
    evloop__wd *wds;
    size_t nwds, capwds;
    evloop__fsq q;
    uint64_t burst_start;
    char *path; /* the path of the event being delivered; reused */
    size_t path_cap;
};

#define EVLOOP__IN_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | \
                         IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static char *evloop__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = (char *)EVLOOP_MALLOC(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* "a/b", or b when a is empty. */
static char *evloop__join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *d = (char *)EVLOOP_MALLOC(na + nb + 2);
    if (!d)
        return NULL;
    if (na) {
        memcpy(d, a, na);
        d[na++] = '/';
    }
    memcpy(d + na, b, nb + 1);
    return d;
}

/* Makes room for `need` elements of `size` bytes in *buf (capacity *cap,
 * doubled as needed, never shrunk). */
static int evloop__reserve(void **buf, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap : 16;
    void *nb;
    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    nb = EVLOOP_REALLOC(*buf, ncap * size);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* rel "/" name in the state's path buffer (name alone when rel is ""). */
static const char *evloop__fs_path(struct evloop__fswatch_state *st, const char *rel,
                                   const char *name)
{
    size_t nr = strlen(rel), nn = strlen(name);
    if (evloop__reserve((void **)&st->path, &st->path_cap, nr + nn + 2, 1) < 0)
        return NULL;
    memcpy(st->path, rel, nr);
    if (nr)
        st->path[nr++] = '/';
    memcpy(st->path + nr, name, nn + 1);
    return st->path;
}

/* Delivers an event, or adds it to the debounce queue and (re)arms the
 * flush. Without memory for the queue, or for the timer, it goes out now. */
static void evloop__fs_emit(evloop_fswatch *w, const char *path, unsigned events)
{
    struct evloop__fswatch_state *st = w->st;
    evloop__fsq *q = &st->q;
    evloop *loop = w->handle.loop;
    uint64_t now = loop->time, due, limit;
    size_t i;
    if (!st->debounce_ms) {
        w->cb(w, path, events);
        EVLOOP__TICKS(loop);
        return;
    }
    for (i = 0; i < q->n; i++)
        if (strcmp(q->names + q->ev[i].name, path) == 0)
            break;
    if (i < q->n) {
        q->ev[i].events |= events;
    } else {
        size_t len = strlen(path) + 1;
        if (evloop__reserve((void **)&q->ev, &q->cap, q->n + 1, sizeof *q->ev) < 0 ||
            evloop__reserve((void **)&q->names, &q->names_cap, q->len + len, 1) < 0) {
            w->cb(w, path, events);
            EVLOOP__TICKS(loop);
            return;
        }
        if (!q->n)
            st->burst_start = now;
        memcpy(q->names + q->len, path, len);
        q->ev[q->n].name = q->len;
        q->ev[q->n].events = events;
        q->n++;
        q->len += len;
    }
    limit = st->burst_start + 10u * (uint64_t)st->debounce_ms;
    due = now + st->debounce_ms < limit ? now + st->debounce_ms : limit;
    if (evloop_timer_start(&w->debounce, evloop__fs_flush, due > now ? due - now : 0, 0) < 0)
        evloop__fs_flush(&w->debounce); /* no room for the timer: no delay either */
}

/* The debounce timer: delivers the queue from a copy (a callback may stop
 * w, which frees st), then gives the memory back for the next burst. No
 * event can be queued meanwhile: inotify is read in the poll phase only. */
static void evloop__fs_flush(evloop_timer *t)
{
    evloop_fswatch *w = EVLOOP__CONTAINER(t, evloop_fswatch, debounce);
    evloop__fsq q = w->st->q;
    unsigned gen = w->gen;
    size_t i;
    memset(&w->st->q, 0, sizeof w->st->q);
    evloop_timer_stop(&w->debounce); /* when called directly by evloop__fs_emit */
    for (i = 0; i < q.n && w->gen == gen; i++) { /* until a callback stops w */
        w->cb(w, q.names + q.ev[i].name, q.ev[i].events);
        EVLOOP__TICKS(w->handle.loop);
    }
    if (w->gen == gen) {
        q.n = q.len = 0;
        w->st->q = q;
    } else {
        EVLOOP_FREE(q.ev);
        EVLOOP_FREE(q.names);
    }
}

/* Watches root/rel; with RECURSIVE its subdirectories too. report: also
 * announce what is found as added (a directory that appeared later). */
static int evloop__fs_add_dir(evloop_fswatch *w, const char *rel, int report)
{
    struct evloop__fswatch_state *st = w->st;
    char *full = rel[0] ? evloop__join(st->root, rel) : evloop__strdup(st->root);
    int wd, rc = 0;
    unsigned gen = w->gen;
    size_t i;
    if (!full)
        return -ENOMEM;
    /* the root may be a symbolic link to a directory; links inside the tree
     * are not followed (they could loop) */
    wd = inotify_add_watch(w->w.fd, full,
                           EVLOOP__IN_MASK | IN_ONLYDIR | (rel[0] ? IN_DONT_FOLLOW : 0u));
    if (wd < 0) {
        rc = -errno;
        EVLOOP_FREE(full);
        return rc;
    }
    for (i = 0; i < st->nwds && st->wds[i].wd != wd; i++)
        ;
    if (i == st->nwds &&
        evloop__reserve((void **)&st->wds, &st->capwds, st->nwds + 1, sizeof *st->wds) < 0) {
        EVLOOP_FREE(full);
        return -ENOMEM;
    }
    {
        char *copy = evloop__strdup(rel);
        if (!copy) {
            EVLOOP_FREE(full);
            return -ENOMEM;
        }
        if (i == st->nwds)
            st->nwds++;
        else
            EVLOOP_FREE(st->wds[i].rel);
        st->wds[i].wd = wd;
        st->wds[i].rel = copy;
    }
    if (st->flags & EVLOOP_FSWATCH_RECURSIVE) {
        DIR *d = opendir(full);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL && w->gen == gen) {
            char *child;
            int isdir;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            child = evloop__join(rel, e->d_name);
            if (!child)
                break;
            isdir = e->d_type == DT_DIR;
            if (e->d_type == DT_UNKNOWN) {
                struct stat sb;
                char *cf = evloop__join(full, e->d_name);
                isdir = cf && lstat(cf, &sb) == 0 && S_ISDIR(sb.st_mode);
                EVLOOP_FREE(cf);
            }
            if (report)
                evloop__fs_emit(w, child, EVLOOP_FS_ADD);
            if (isdir && w->gen == gen)
                (void)evloop__fs_add_dir(w, child, report); /* gone already: fine */
            EVLOOP_FREE(child);
        }
        if (d)
            closedir(d);
    }
    EVLOOP_FREE(full);
    return 0;
}

/* A directory moved away: stop watching it and everything under it (all
 * of the tree for the root, rel ""). */
static void evloop__fs_forget(evloop_fswatch *w, const char *rel)
{
    struct evloop__fswatch_state *st = w->st;
    size_t n = strlen(rel), i;
    for (i = 0; i < st->nwds;) {
        const char *r = st->wds[i].rel;
        if (!n || (strncmp(r, rel, n) == 0 && (r[n] == 0 || r[n] == '/'))) {
            (void)inotify_rm_watch(w->w.fd, st->wds[i].wd);
            EVLOOP_FREE(st->wds[i].rel);
            st->wds[i] = st->wds[--st->nwds];
        } else {
            i++;
        }
    }
}

static void evloop__fs_event(evloop_fswatch *w, const struct inotify_event *e, const char *name)
{
    struct evloop__fswatch_state *st = w->st;
    const char *rel, *path;
    unsigned ev = 0, gen = w->gen;
    int isdir = (e->mask & IN_ISDIR) != 0;
    size_t i;
    if (e->mask & IN_Q_OVERFLOW) {
        evloop__fs_emit(w, "", EVLOOP_FS_OVERFLOW);
        return;
    }
    for (i = 0; i < st->nwds && st->wds[i].wd != e->wd; i++)
        ;
    if (i == st->nwds)
        return;
    if (e->mask & IN_IGNORED) {
        EVLOOP_FREE(st->wds[i].rel);
        st->wds[i] = st->wds[--st->nwds];
        return;
    }
    rel = st->wds[i].rel;
    if (!e->len || !name[0]) { /* about the watched directory itself */
        if ((e->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && !rel[0]) {
            evloop__fs_emit(w, st->only ? st->only : "", EVLOOP_FS_DELETE);
            if (w->gen == gen) /* moved away, it would go on reporting */
                evloop__fs_forget(w, "");
        }
        return;
    }
    if (st->only && (rel[0] || strcmp(name, st->only) != 0))
        return;
    if (e->mask & IN_CREATE)
        ev = EVLOOP_FS_ADD;
    else if (e->mask & IN_DELETE)
        ev = EVLOOP_FS_DELETE;
    else if (e->mask & IN_MOVED_TO) /* a watched file replaced by a rename: saved */
        ev = st->only ? EVLOOP_FS_CHANGE : EVLOOP_FS_RENAME;
    else if (e->mask & IN_MOVED_FROM) /* a watched file renamed away: gone */
        ev = st->only ? EVLOOP_FS_DELETE : EVLOOP_FS_RENAME;
    else if ((e->mask & (IN_MODIFY | IN_ATTRIB)) && !isdir)
        ev = EVLOOP_FS_CHANGE;
    if (!ev)
        return;
    path = evloop__fs_path(st, rel, name);
    if (!path)
        return;
    evloop__fs_emit(w, path, ev);
    /* the callback may have stopped w, freeing st: look at it only if not */
    if (w->gen == gen && isdir && (st->flags & EVLOOP_FSWATCH_RECURSIVE)) {
        if (e->mask & (IN_CREATE | IN_MOVED_TO))
            (void)evloop__fs_add_dir(w, path, 1);
        else if (e->mask & IN_MOVED_FROM)
            evloop__fs_forget(w, path);
    }
}

static void evloop__fs_read(evloop *loop, evloop__watcher *iow, unsigned events)
{
    evloop_fswatch *w = EVLOOP__CONTAINER(iow, evloop_fswatch, w);
    unsigned gen = w->gen;
    (void)events;
    for (;;) {
        ssize_t n = read(iow->fd, loop->rbuf, loop->rbuf_size), off = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        while (off + (ssize_t)sizeof(struct inotify_event) <= n) {
            struct inotify_event e;
            memcpy(&e, loop->rbuf + off, sizeof e);
            evloop__fs_event(w, &e, loop->rbuf + off + sizeof e);
            off += (ssize_t)(sizeof e + e.len);
            if (w->gen != gen) /* stopped or closed: the rest is the old watch's */
                return;
        }
    }
}

static void evloop__fs_free_state(struct evloop__fswatch_state *st)
{
    size_t i;
    for (i = 0; i < st->nwds; i++)
        EVLOOP_FREE(st->wds[i].rel);
    EVLOOP_FREE(st->wds);
    EVLOOP_FREE(st->q.ev);
    EVLOOP_FREE(st->q.names);
    EVLOOP_FREE(st->path);
    EVLOOP_FREE(st->root);
    EVLOOP_FREE(st->only);
    EVLOOP_FREE(st);
}

EVLOOP__DEF int evloop_fswatch_start(evloop_fswatch *w, const char *path,
                                     const evloop_fswatch_options *opts, evloop_fswatch_cb cb)
{
    evloop *loop = w->handle.loop;
    struct evloop__fswatch_state *st;
    struct stat sb;
    int fd, rc;
    EVLOOP_ASSERT(cb && path && !evloop_is_closing(&w->handle));
    if (w->st)
        return -EBUSY;
    if (stat(path, &sb) < 0)
        return -errno;
    st = (struct evloop__fswatch_state *)EVLOOP_MALLOC(sizeof *st);
    if (!st)
        return -ENOMEM;
    memset(st, 0, sizeof *st);
    if (opts) {
        st->flags = opts->flags;
        st->debounce_ms = opts->debounce_ms;
    }
    if (S_ISDIR(sb.st_mode)) {
        st->root = evloop__strdup(path);
    } else { /* one file: watch its directory, keep its name */
        const char *slash = strrchr(path, '/');
        st->flags &= ~(unsigned)EVLOOP_FSWATCH_RECURSIVE;
        st->only = evloop__strdup(slash ? slash + 1 : path);
        if (!slash) {
            st->root = evloop__strdup(".");
        } else if (slash == path) {
            st->root = evloop__strdup("/");
        } else if ((st->root = (char *)EVLOOP_MALLOC((size_t)(slash - path) + 1)) != NULL) {
            memcpy(st->root, path, (size_t)(slash - path));
            st->root[slash - path] = 0;
        }
        if (!st->only) {
            evloop__fs_free_state(st);
            return -ENOMEM;
        }
    }
    if (!st->root) {
        evloop__fs_free_state(st);
        return -ENOMEM;
    }
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        evloop__fs_free_state(st);
        return rc;
    }
    w->w.fd = fd;
    w->st = st;
    w->cb = cb;
    if ((rc = evloop__fs_add_dir(w, "", 0)) < 0 ||
        (rc = evloop__watcher_attach(loop, &w->w)) < 0 ||
        (rc = evloop__watcher_set(loop, &w->w, EVLOOP_READABLE)) < 0) {
        evloop__watcher_detach(loop, &w->w);
        close(fd);
        w->w.fd = -1;
        w->st = NULL;
        evloop__fs_free_state(st);
        return rc;
    }
    evloop__activate(&w->handle);
    return 0;
}

EVLOOP__DEF int evloop_fswatch_stop(evloop_fswatch *w)
{
    if (!w->st)
        return 0;
    w->gen++; /* tells a delivery in progress that st is gone */
    evloop_timer_stop(&w->debounce);
    evloop__watcher_detach(w->handle.loop, &w->w);
    evloop__close_fd(w->w.fd);
    w->w.fd = -1;
    evloop__fs_free_state(w->st);
    w->st = NULL;
    evloop__deactivate(&w->handle);
    return 0;
}

#else /* no inotify */

static void evloop__fs_read(evloop *loop, evloop__watcher *iow, unsigned events)
{
    (void)loop;
    (void)iow;
    (void)events;
}

static void evloop__fs_flush(evloop_timer *t) { (void)t; }

EVLOOP__DEF int evloop_fswatch_start(evloop_fswatch *w, const char *path,
                                     const evloop_fswatch_options *opts, evloop_fswatch_cb cb)
{
    (void)w;
    (void)path;
    (void)opts;
    (void)cb;
    return -ENOSYS;
}

EVLOOP__DEF int evloop_fswatch_stop(evloop_fswatch *w)
{
    (void)w;
    return 0;
}

#endif

static void evloop__fswatch_close(evloop_fswatch *w) { evloop_fswatch_stop(w); }

/* ---- errors -------------------------------------------------------------------------------- */

static const struct evloop__err {
    int code;
    const char *name;
    const char *msg;
} evloop__errors[] = {
    {EPERM, "EPERM", "operation not permitted"},
    {ENOENT, "ENOENT", "no such file or directory"},
    {ESRCH, "ESRCH", "no such process"},
    {EINTR, "EINTR", "interrupted system call"},
    {EIO, "EIO", "i/o error"},
    {ENXIO, "ENXIO", "no such device or address"},
    {E2BIG, "E2BIG", "argument list too long"},
    {EBADF, "EBADF", "bad file descriptor"},
    {ECHILD, "ECHILD", "no child processes"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {ENOMEM, "ENOMEM", "not enough memory"},
    {EACCES, "EACCES", "permission denied"},
    {EFAULT, "EFAULT", "bad address"},
    {EBUSY, "EBUSY", "resource busy"},
    {EEXIST, "EEXIST", "already exists"},
    {ENOTDIR, "ENOTDIR", "not a directory"},
    {EISDIR, "EISDIR", "is a directory"},
    {EINVAL, "EINVAL", "invalid argument"},
    {ENFILE, "ENFILE", "too many open files in the system"},
    {EMFILE, "EMFILE", "too many open files"},
    {ENOSPC, "ENOSPC", "no space left"},
    {EROFS, "EROFS", "read-only file system"},
    {EPIPE, "EPIPE", "broken pipe"},
    {ERANGE, "ERANGE", "result out of range"},
    {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
    {ENOSYS, "ENOSYS", "function not implemented"},
    {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
    {ELOOP, "ELOOP", "too many symbolic links"},
    {EOVERFLOW, "EOVERFLOW", "value too large"},
    {ENOTSOCK, "ENOTSOCK", "not a socket"},
    {EMSGSIZE, "EMSGSIZE", "message too long"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT", "protocol not supported"},
    {ENOTSUP, "ENOTSUP", "operation not supported"},
    {EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported"},
    {EADDRINUSE, "EADDRINUSE", "address already in use"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL", "address not available"},
    {ENETDOWN, "ENETDOWN", "network is down"},
    {ENETUNREACH, "ENETUNREACH", "network is unreachable"},
    {ECONNABORTED, "ECONNABORTED", "connection aborted"},
    {ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {ENOBUFS, "ENOBUFS", "no buffer space available"},
    {EISCONN, "EISCONN", "socket is already connected"},
    {ENOTCONN, "ENOTCONN", "socket is not connected"},
    {ETIMEDOUT, "ETIMEDOUT", "timed out"},
    {ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {EHOSTUNREACH, "EHOSTUNREACH", "host is unreachable"},
    {EALREADY, "EALREADY", "operation already in progress"},
    {EINPROGRESS, "EINPROGRESS", "operation in progress"},
    {ECANCELED, "ECANCELED", "operation canceled"},
    {EPROTO, "EPROTO", "protocol error"},
};

static const struct evloop__err *evloop__err_find(int err)
{
    size_t i;
    for (i = 0; i < sizeof evloop__errors / sizeof evloop__errors[0]; i++)
        if (evloop__errors[i].code == -err)
            return &evloop__errors[i];
    return NULL;
}

EVLOOP__DEF const char *evloop_strerror(int err)
{
    const struct evloop__err *e;
    if (err == 0)
        return "success";
    if (err == EVLOOP_EOF)
        return "end of stream";
    e = evloop__err_find(err);
    return e ? e->msg : "unknown error";
}

EVLOOP__DEF const char *evloop_err_name(int err)
{
    const struct evloop__err *e;
    if (err == 0)
        return "OK";
    if (err == EVLOOP_EOF)
        return "EOF";
    e = evloop__err_find(err);
    return e ? e->name : "UNKNOWN";
}

#endif /* EVLOOP_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the project's authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
