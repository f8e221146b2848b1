/* pool.h - a thread pool for blocking and CPU work, and a generic resource
 * pool (min/max, acquire timeouts, idle eviction, validation), in one
 * header. With evloop.h included first, work completes on the loop thread
 * and resources can be acquired with a loop callback.
 * MIT licensed (see the end of the file).
 *
 * CONTENTS
 *   1. Quick start                 7. Resource pool
 *   2. Compile-time options        8. Resource pool on a loop
 *   3. Thread pool                 9. Errors
 *   4. Tasks and their lifetime   10. Threading and limits
 *   5. Shutdown                   11. How it works (performance notes)
 *   6. Loop glue (evloop.h)
 *
 * 1. QUICK START -------------------------------------------------------------
 *
 *   In exactly one .c file:
 *
 *     #define POOL_IMPLEMENTATION
 *     #include "pool.h"
 *
 *   and in any other file just `#include "pool.h"`. Build with one call:
 *
 *     cc -O2 app.c -o app -pthread
 *
 *   Run a function on a worker thread and wait for it:
 *
 *     static void square(pool_task *t) { int *v = t->data; *v *= *v; }
 *     int main(void) {
 *         pool_threads *tp;
 *         pool_task task;
 *         int v = 7;
 *         pool_threads_new(&tp, NULL);          (one worker per core)
 *         task.data = &v;
 *         pool_submit(tp, &task, square, NULL);
 *         pool_wait(&task, -1);                 (v is now 49)
 *         pool_threads_free(tp);                (finishes the queue, joins)
 *     }
 *
 *   With the event loop, the completion runs on the loop thread:
 *
 *     #define EVLOOP_IMPLEMENTATION
 *     #define POOL_IMPLEMENTATION
 *     #include "evloop.h"                       (first: switches the glue on)
 *     #include "pool.h"
 *
 *     static void hash(pool_task *t) { ... CPU work, on a worker ... }
 *     static void hashed(pool_task *t, int status) { ... on the loop ... }
 *     ...
 *     pool_loop *pl;
 *     pool_loop_new(&pl, loop, NULL);           (NULL: its own thread pool)
 *     pool_loop_submit(pl, &task, hash, hashed);
 *     evloop_run(loop, EVLOOP_RUN_DEFAULT);     (returns after `hashed`)
 *     pool_loop_close(pl);
 *     evloop_run(loop, EVLOOP_RUN_DEFAULT);     (finishes the close)
 *
 *   A resource pool of connections (blocking form, any thread):
 *
 *     pool_res_options o = {0};
 *     o.create = my_connect; o.destroy = my_close; o.ctx = &cfg;
 *     o.max = 8;
 *     pool_res_new(&rp, &o);
 *     pool_res_item *it;
 *     if (pool_res_acquire(rp, &it, 500) == 0) {   (wait at most 500 ms)
 *         use(it->resource);
 *         pool_res_release(it);                    (or _release_broken)
 *     }
 *
 *   examples/pool_demo.c shows both pools on a loop.
 *
 * 2. COMPILE-TIME OPTIONS (define before including the header) ---------------
 *
 *   POOL_IMPLEMENTATION   in one file: compile the implementation there.
 *   POOL_STATIC           make every function static (use with one file).
 *   POOL_API              decoration of every declaration (default extern).
 *   POOL_MALLOC(n), POOL_FREE(p)
 *                         allocator (default malloc/free); define both in the
 *                         implementation file.
 *   POOL_ASSERT(c)        check of programmer misuse (default assert()).
 *
 *   The loop glue (sections 6 and 8) is compiled when evloop.h was included
 *   before pool.h; pool.h never includes evloop.h itself. Including pool.h a
 *   second time after evloop.h also adds the glue.
 *
 *   The implementation needs POSIX 2008 (clock_gettime, getaddrinfo...). On
 *   Linux this header defines _GNU_SOURCE when it comes before any system
 *   header; if your file includes system headers first, compile with
 *   -D_GNU_SOURCE (or -std=gnu11), else the build stops with a message.
 *
 * 3. THREAD POOL -------------------------------------------------------------
 *
 *   pool_threads_new(&tp, &opts) starts the workers; opts may be NULL. Every
 *   field of pool_threads_options is optional (all zero = defaults):
 *
 *     threads      number of workers; 0: the number of online cores (the
 *                  CPUs this process may run on), at most POOL_MAX_THREADS
 *     max_queue    at most this many tasks wait in the queue; 0: no limit.
 *                  A bounded pool's workers take one task at a time (no
 *                  batching, section 11), so the bound is exact.
 *     full         what a submit does when max_queue tasks wait:
 *                  POOL_FULL_BLOCK (default) waits for room, POOL_FULL_FAIL
 *                  fails with -EAGAIN. A submit from one of the pool's own
 *                  workers, or from a loop (section 6), never waits: it
 *                  fails with -EAGAIN.
 *     name         thread-name prefix, default "pool": workers are named
 *                  "pool-0", "pool-1"... (the prefix is cut to 10 bytes so
 *                  names fit the OS limit of 15)
 *     stack_size   worker stack size in bytes, at least PTHREAD_STACK_MIN
 *                  (a smaller one makes pool_threads_new fail with
 *                  -EINVAL); 0: the system default
 *     thread_init  int thread_init(ctx, index): runs on each worker before
 *                  it takes any task; a non-zero (negative errno) return
 *                  makes pool_threads_new fail with it (no task runs)
 *     thread_exit  void thread_exit(ctx, index): runs on each worker as it
 *                  ends (after its last task; not on a worker whose
 *                  thread_init failed)
 *     ctx          passed to both hooks
 *
 *   pool_threads_new returns once every worker has run thread_init.
 *   pool_threads_size() is the number of workers; pool_threads_get_stats()
 *   fills a pool_threads_stats: workers alive, idle workers, submitters
 *   blocked on a full queue, threads sleeping in pool_wait or
 *   pool_threads_wait, tasks queued (in the queue, not yet taken by a
 *   worker; tasks a worker has taken into its batch, section 11, are
 *   pending but no longer queued), tasks pending (submitted and not
 *   finished), and counts of submitted, completed and cancelled tasks.
 *   Loop tasks still staged in a binding (section 6) are counted once
 *   they are handed over.
 *
 * 4. TASKS AND THEIR LIFETIME ------------------------------------------------
 *
 *   A pool_task is caller-provided memory, like a loop handle: embed it in
 *   your own struct or set task.data. It needs no initialisation; submit
 *   sets it up (and keeps `data`). Submitting never allocates.
 *
 *     pool_submit(tp, task, work, done)
 *         work(task) runs on a worker. done(task, status), if not NULL,
 *         runs right after on the same worker with status 0, or with
 *         -ECANCELED if the task was cancelled before it started.
 *
 *     pool_call(tp, fn, arg, done)
 *         the convenience form: fn(arg) on a worker, then done(arg, status)
 *         (done may be NULL). The pool allocates a small record for it and
 *         reuses records, so steady use does not call malloc.
 *
 *   Ownership: from a successful submit the task belongs to the pool. It is
 *   yours again
 *     - when done is called (inside done you may free it, reuse it or
 *       submit it again), or
 *     - for a task without done: when pool_wait(task, ...) has returned 0 or
 *       -ECANCELED (pool_wait(task, 0) polls), or after pool_threads_wait()
 *       or pool_threads_free() returned.
 *   A submit that fails (returns < 0) never calls done and leaves the task
 *   yours.
 *
 *   pool_wait(task, timeout_ms) waits for a task submitted without done
 *   (-EINVAL for one with done: its done callback is the notification).
 *   Returns 0 when work has run, -ECANCELED when it was cancelled,
 *   -ETIMEDOUT when timeout_ms passed first (-1: no limit, 0: poll).
 *
 *   pool_threads_wait(tp, timeout_ms) waits until every submitted task has
 *   finished (work returned, and done, when it runs on a worker, returned).
 *   -EDEADLK when called from one of the pool's workers. Loop tasks a
 *   binding still stages (section 6; handed over when the submitting loop
 *   callback returns) are not yet the pool's, so it does not wait for them.
 *
 *   pool_cancel(task) removes a task that has not started: 0, and its done
 *   gets -ECANCELED (a waiter of a task without done gets -ECANCELED). For
 *   a task in the queue, done runs inside pool_cancel on the calling
 *   thread; a task a worker has already taken into its batch (section 11)
 *   is skipped by that worker, which calls done(task, -ECANCELED) itself,
 *   promptly. Loop tasks always complete on their loop. -EBUSY when the
 *   task is running or finished (its done runs or ran with status 0), or
 *   already cancelled or being cancelled - by an earlier pool_cancel, a
 *   CANCEL shutdown or a pool_loop_close - (its done gets or got
 *   -ECANCELED, once).
 *
 *   Order: tasks start in the order of submission (FIFO); with more than
 *   one worker they may finish in any order.
 *
 * 5. SHUTDOWN ----------------------------------------------------------------
 *
 *   pool_threads_shutdown(tp, how) stops taking new tasks (submits then fail
 *   with -ESHUTDOWN, and submitters blocked on a full queue wake with it)
 *   and returns at once; it never waits:
 *
 *     POOL_SHUTDOWN_DRAIN   the queued tasks still run (graceful). So does
 *                           what a loop binding accepted before: tasks it
 *                           still stages (section 6) and the create or
 *                           validate work of its resource requests (section
 *                           8). While a pool_loop is bound, the workers stay
 *                           for that; they end once the queue is empty and
 *                           the last binding is closed.
 *     POOL_SHUTDOWN_CANCEL  the queued tasks do not run: each one's done
 *                           gets -ECANCELED (called from pool_threads_shutdown
 *                           for queued ones, in queue order, from the worker
 *                           for batched ones; loop tasks on their loop).
 *                           Running tasks finish normally. CANCEL after DRAIN
 *                           upgrades it.
 *
 *   pool_threads_free(tp) starts a DRAIN shutdown unless one was started,
 *   waits for the workers to finish and end, and frees the pool. It may be
 *   called from any thread and any callback, including from a task or a
 *   done callback running on the pool's own workers: then it does not wait
 *   (a thread cannot join itself); the pool is freed by its last worker
 *   once the queue is done, and the caller must not use tp again. From a
 *   done callback that pool_threads_shutdown is running (a CANCEL reporting
 *   the queue), it returns at once too, and the pool is freed when that
 *   shutdown has reported every task (on its thread, or by the last worker
 *   when the shutdown runs on a worker). Callers the shutdown woke -
 *   submitters blocked on a full queue, pool_wait and pool_threads_wait -
 *   are let out before the memory goes. It fails with -EBUSY (and frees
 *   nothing) while a pool_loop is bound to the pool. It cannot interrupt a
 *   task: a task that never returns keeps free (and the process) waiting -
 *   that is the only way free blocks forever.
 *
 * 6. LOOP GLUE (evloop.h included first) -------------------------------------
 *
 *   pool_loop_new(&pl, loop, tp) binds a thread pool to a loop; tp NULL makes
 *   a pool with default options that the binding owns (freed by
 *   pool_loop_close). Several loops may share one pool, each with its own
 *   binding. Everything below is called on the loop's thread.
 *
 *     pool_loop_submit(pl, task, work, done)
 *         like uv_queue_work: work(task) on a worker, then done(task,
 *         status) on the loop thread (status 0 or -ECANCELED). done is
 *         required. The task is yours again when done is called. It
 *         never blocks the loop: with a bounded pool whose queue is full
 *         it fails with -EAGAIN, whatever the `full` option says.
 *     pool_loop_call(pl, fn, arg, done)
 *         fn(arg) on a worker, done(arg, status) on the loop (may be NULL).
 *     pool_cancel(task) works on loop tasks (queued, staged or batched)
 *         from any thread; their done then runs on the loop with
 *         -ECANCELED, never inside pool_cancel.
 *
 *   Handing over: the first task submitted in a loop callback goes to the
 *   pool at once; the ones after it in the same callback are staged and
 *   handed over together, every 128 tasks and when the callback returns
 *   (a next-tick). So a burst of submits costs one lock, not one per task.
 *   A callback that submits several tasks and then computes for long
 *   delays the start of all but the first until it returns (or 128 are
 *   staged). Pools with max_queue submit each task at once. Outside a
 *   callback (before evloop_run), staged tasks are handed over when the
 *   loop next runs. A staged task was accepted: a DRAIN shutdown still
 *   runs it, a CANCEL shutdown cancels it (done gets -ECANCELED, in
 *   submission order).
 *
 *   Completions are batched: workers put finished tasks on a lock-free list
 *   and wake the loop once (evloop_async_send) for a whole batch; the loop
 *   runs the done callbacks of one batch in completion order, in its poll
 *   phase. A binding keeps the loop alive only while it has work
 *   outstanding (tasks, requests below), so a loop with an idle binding
 *   ends as usual.
 *
 *   Ready-made offloads, each with a pool_req (caller-provided, no
 *   initialisation needed; `data` is yours) and a callback cb(req, status)
 *   on the loop. The status is also in req->status. Strings are copied, so
 *   they need not outlive the call.
 *
 *     pool_read_file(pl, req, path, max_size, cb)
 *         reads the whole file: req->buf (NUL-terminated, allocated with
 *         POOL_MALLOC) and req->len. max_size 0 means 64 MiB; a larger file
 *         fails with -EFBIG. Works for files whose size is unknown (/proc).
 *     pool_write_file(pl, req, path, data, len, mode, cb)
 *         replaces the file atomically: writes a temporary file in the same
 *         directory (path.tmp-XXXXXX, close-on-exec), fsyncs it, renames
 *         it over path and fsyncs the directory; after a crash path holds
 *         the old or the new content, never a mix. The file gets exactly
 *         `mode` (the umask does not apply; 0 means 0644) and the calling
 *         process's owner: an old file's mode and owner are not kept.
 *         `data` is borrowed until cb. An error before the rename removes
 *         the temporary file and leaves path as it was. An error opening or
 *         syncing the directory comes after the rename: path already has
 *         the new content, the status says its durability is unknown.
 *     pool_stat(pl, req, path, cb)
 *         stat(2) into req->st.
 *     pool_getaddrinfo(pl, req, node, service, hints, cb)
 *         getaddrinfo(3) into req->ai (free it with pool_req_cleanup or
 *         freeaddrinfo). hints may be NULL. Its own failures come as
 *         status POOL_EAI_ERROR(code) (< 0; pool_strerror names them;
 *         pool_eai_code(status) gives back the EAI_ value), its
 *         EAI_SYSTEM as the negative errno, EAI_MEMORY as -ENOMEM.
 *     pool_req_cancel(req)   like pool_cancel (cb gets -ECANCELED).
 *     pool_req_cleanup(req)  frees req->buf and req->ai (safe to call twice
 *                            and on a request that failed).
 *
 *   pool_loop_close(pl) cancels the binding's queued tasks and waiting
 *   resource requests (their callbacks get -ECANCELED), lets running ones
 *   complete, and then closes its two loop handles (an async and a timer)
 *   and frees the binding (and the pool it owns). Run the loop until it
 *   ends to let that happen; evloop_free fails with -EBUSY before. Do not
 *   submit after close. Calling it from a done callback is fine.
 *   The binding's handles appear in evloop_walk with handle.data == pl:
 *   code that closes every handle should skip them and call
 *   pool_loop_close (pool_loop_owns_handle(h) tells them apart).
 *
 * 7. RESOURCE POOL -----------------------------------------------------------
 *
 *   pool_res_new(&rp, &opts) makes a pool of resources that your callbacks
 *   create and destroy (connections, handles, buffers). Options (all zero =
 *   defaults, only create is required):
 *
 *     create(ctx, &resource)  makes one; returns 0 or a negative errno
 *     destroy(ctx, resource)  frees one (may be NULL)
 *     validate(ctx, resource) 0 when the resource is healthy (may be NULL)
 *     ctx                     passed to the three callbacks
 *     min                     kept created (warm), default 0
 *     max                     at most this many exist, default 10
 *     validate_on_borrow      1: validate before handing one out
 *     idle_timeout_ms         destroy resources idle this long, down to
 *                             min; 0: 30000, < 0: never
 *     max_lifetime_ms         destroy resources this old (an idle one at
 *                             once, a borrowed one on release); 0: no limit
 *     health_interval_ms      validate every idle resource this often; 0:
 *                             never
 *     create_retry_ms         after a failed create to keep min, wait this
 *                             long before the next (doubling up to 64x);
 *                             0: 500
 *     max_waiters             acquires that may wait at once; more fail
 *                             with -EAGAIN; 0: no limit
 *     name                    name of the keeper thread, default "pool-res"
 *                             (15 bytes at most)
 *
 *   The callbacks run on the thread that needs them (an acquirer, a
 *   releaser, the keeper, or a pool worker for loop requests) and never
 *   with a pool lock held. A keeper thread is started when min, an idle
 *   timeout, a lifetime or a health interval needs it: it keeps min
 *   resources created, evicts idle and expired ones, and runs the health
 *   checks.
 *
 *   pool_res_acquire(rp, &item, timeout_ms) from any thread: returns 0 and
 *   *item, whose item->resource is the resource (item->data is yours while
 *   you hold it). Idle resources are reused most-recently-released first
 *   (so surplus ones age out); when none is idle and fewer than max exist,
 *   the acquirer creates one itself; else it waits, first come first
 *   served, until a release hands it one. timeout_ms -1: no limit; 0: do
 *   not wait (-EAGAIN). Errors: -ETIMEDOUT, -EAGAIN, -ESHUTDOWN (draining),
 *   or create's error: a failed create reaches the acquirer that needed it
 *   (waiters that got the free slot try once each; the pool never retries
 *   in a loop). The timeout bounds the wait, not a create in progress.
 *
 *   pool_res_release(item) gives it back; pool_res_release_broken(item)
 *   destroys it and frees its slot (a waiter creates a replacement, or the
 *   keeper does to keep min). The item must not be used after either.
 *   A resource that fails validation on borrow is destroyed and replaced
 *   by a new one for the same acquirer.
 *
 *   A release and a timing-out acquire race safely: the hand-off happens
 *   under the pool's lock, so a resource is given to exactly one waiter,
 *   or back to the idle list, never lost.
 *
 *   pool_res_drain(rp, timeout_ms) refuses new acquires (-ESHUTDOWN), lets
 *   waiting ones be served, waits until every resource is back, destroys
 *   them all and returns 0 (or -ETIMEDOUT; draining goes on). Draining is
 *   final. pool_res_clear(rp) destroys the idle resources now and returns
 *   how many (borrowed ones stay valid; min is rebuilt unless draining).
 *   pool_res_free(rp) frees the pool; -EBUSY (nothing freed) while
 *   resources are borrowed, acquires wait, or an acquirer is creating or
 *   validating one (the keeper's own work does not count: free stops it).
 *   pool_res_get_stats(rp, &st): total, idle, in_use, waiting, creating;
 *   counts of acquired, created, destroyed, timeouts, create_failures,
 *   validation_failures.
 *
 * 8. RESOURCE POOL ON A LOOP (evloop.h included first) -----------------------
 *
 *   pool_res_acquire_async(rp, pl, req, timeout_ms, cb), on pl's loop
 *   thread: cb(req, status, item) runs later on the loop with status 0 and
 *   the item, or -ETIMEDOUT / -ECANCELED / create's error / -ESHUTDOWN
 *   (pl's thread pool has no worker left to create or validate) and NULL.
 *   Never inside the call; a call that fails (-ESHUTDOWN, -EAGAIN) never
 *   runs cb. create and validate, which block, run on pl's worker threads;
 *   the timeout runs on a loop timer. Like a loop timer (and libuv's), the
 *   timeout counts from the loop's cached time (evloop_now, taken when
 *   the loop iteration began): in a callback that has computed for long,
 *   call evloop_update_time first, or the wait is that much shorter.
 *   Async and blocking acquirers share one FIFO. pool_res_cancel(req)
 *   withdraws a waiting request (cb gets -ECANCELED); -EBUSY if it was
 *   already granted (cb brings the item).
 *   Release items from any thread, the loop included (release is quick;
 *   release_broken runs destroy on the calling thread).
 *
 * 9. ERRORS ------------------------------------------------------------------
 *
 *   Functions that can fail return 0 or a negative errno: -EINVAL (bad
 *   argument), -ENOMEM, -EAGAIN (queue full, would wait), -ESHUTDOWN (pool
 *   shut down or draining), -ECANCELED, -ETIMEDOUT, -EBUSY, -EDEADLK (a
 *   wait that would never end), -EFBIG (file larger than max_size), or a
 *   system call's error (-ENOENT...). pool_strerror(err) gives a message.
 *   POOL_ASSERT catches NULL pools and tasks. Submitting a task that is
 *   still queued or running is not detected (a task needs no
 *   initialisation, so its fields cannot tell a live task from fresh
 *   memory): it corrupts the queue - do not.
 *
 * 10. THREADING AND LIMITS ---------------------------------------------------
 *
 *   Thread-safe, from any thread: pool_submit, pool_call, pool_cancel,
 *   pool_wait, pool_threads_wait/shutdown/get_stats/size, every pool_res_
 *   function except pool_res_acquire_async / pool_res_cancel (loop thread).
 *   pool_threads_free and pool_res_free: once, when nobody else calls into
 *   the pool any more (threads already asleep in pool_threads' blocking
 *   calls are woken and let out first, section 5). pool_loop_* and the
 *   offloads: the binding's loop thread.
 *   Callbacks may call any of these functions (a done callback may submit,
 *   cancel, shut down or free its pool). Waiting from a worker for tasks of
 *   the same pool can deadlock when every worker waits (pool_threads_wait
 *   detects it and returns -EDEADLK).
 *
 *   Limits: POOL_MAX_THREADS (1024) workers; max_queue as above; at most
 *   128 loop tasks staged per binding before a hand-over; resources
 *   as min/max above; read_file's max_size. Memory: a pool allocates at
 *   creation; submit and pool_loop_submit never allocate; pool_call and
 *   pool_loop_call reuse records (up to 1024 kept); resources allocate one
 *   small record each when created.
 *
 * 11. HOW IT WORKS (performance notes) ---------------------------------------
 *
 *   One FIFO queue under a mutex. An idle worker sleeps on a condition
 *   variable and is woken only when needed (a burst of submits wakes each
 *   sleeping worker once, not once per task). A worker takes a batch of
 *   tasks per lock when tasks are tiny: it measures the time per task and
 *   takes as many as fit in about 50 microseconds (at most 128, at most a
 *   fair share of the queue), so long tasks are taken one at a time and
 *   never wait behind another task on a busy worker. Loop completions of a
 *   batch are published with one atomic operation and one wake-up.
 */

#ifndef POOL_H
#define POOL_H

#if !defined(_GNU_SOURCE) && defined(__linux__)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef POOL_API
#if defined(POOL_STATIC) && defined(__GNUC__)
#define POOL_API static __attribute__((unused))
#elif defined(POOL_STATIC)
#define POOL_API static
#else
#define POOL_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define POOL_MAX_THREADS 1024

/* ---- thread pool ------------------------------------------------------------ */

typedef struct pool_threads pool_threads;
typedef struct pool_task pool_task;

typedef void (*pool_work_fn)(pool_task *task);
typedef void (*pool_done_fn)(pool_task *task, int status);
typedef void (*pool_fn)(void *arg);
typedef void (*pool_call_done_fn)(void *arg, int status);

/* A unit of work. `data` is yours; every other field is private. */
struct pool_task {
    void *data;
    pool_task *next, *prev;
    pool_work_fn work;
    pool_done_fn done;
    void *owner;       /* the loop binding of a loop task, or NULL */
    pool_threads *tp;
    int state;         /* atomic */
    int status;
    unsigned flags;
};

enum {
    POOL_FULL_BLOCK = 0, /* a submit to a full queue waits for room */
    POOL_FULL_FAIL = 1   /* ... fails with -EAGAIN */
};

enum {
    POOL_SHUTDOWN_DRAIN = 0, /* queued tasks still run */
    POOL_SHUTDOWN_CANCEL = 1 /* queued tasks are cancelled */
};

typedef struct pool_threads_options {
    unsigned threads;   /* 0: online cores */
    unsigned max_queue; /* 0: no limit */
    int full;           /* POOL_FULL_BLOCK or POOL_FULL_FAIL */
    const char *name;   /* thread-name prefix; default "pool" */
    size_t stack_size;  /* 0: system default; else >= PTHREAD_STACK_MIN */
    int (*thread_init)(void *ctx, unsigned index);
    void (*thread_exit)(void *ctx, unsigned index);
    void *ctx;
} pool_threads_options;

typedef struct pool_threads_stats {
    unsigned threads;   /* workers alive */
    unsigned idle;      /* workers waiting for work */
    unsigned blocked;   /* submitters waiting for room in a full queue */
    unsigned waiters;   /* threads in pool_wait or pool_threads_wait */
    size_t queued;      /* tasks in the queue, not yet taken by a worker */
    size_t pending;     /* tasks submitted and not finished */
    uint64_t submitted, completed, cancelled;
} pool_threads_stats;

/* Starts the workers. opts may be NULL. Returns 0, -EINVAL (threads >
 * POOL_MAX_THREADS, bad full, stack_size too small), -ENOMEM, -EAGAIN (no
 * thread), or thread_init's error. */
POOL_API int pool_threads_new(pool_threads **out, const pool_threads_options *opts);
/* Drains (unless shut down), joins the workers and frees the pool; see
 * section 5 for calls from the pool's own workers. -EBUSY while a
 * pool_loop is bound to it. */
POOL_API int pool_threads_free(pool_threads *tp);
/* POOL_SHUTDOWN_DRAIN or POOL_SHUTDOWN_CANCEL; never waits. -EINVAL for a
 * bad how. */
POOL_API int pool_threads_shutdown(pool_threads *tp, int how);
/* Waits until no task is pending. 0, -ETIMEDOUT, -EDEADLK (on a worker). */
POOL_API int pool_threads_wait(pool_threads *tp, int timeout_ms);
POOL_API unsigned pool_threads_size(const pool_threads *tp);
POOL_API void pool_threads_get_stats(pool_threads *tp, pool_threads_stats *out);

/* Queues task: work(task) on a worker, then done(task, status) (may be
 * NULL) on that worker. 0, -ESHUTDOWN, -EAGAIN (full, POOL_FULL_FAIL or
 * from a worker), -EINVAL (NULL work). */
POOL_API int pool_submit(pool_threads *tp, pool_task *task, pool_work_fn work, pool_done_fn done);
/* fn(arg) on a worker, then done(arg, status) (may be NULL). Errors as
 * pool_submit, and -ENOMEM. */
POOL_API int pool_call(pool_threads *tp, pool_fn fn, void *arg, pool_call_done_fn done);
/* Cancels a task that has not started: 0 (done gets -ECANCELED), -EBUSY
 * (running, finished, or already cancelled or being cancelled). */
POOL_API int pool_cancel(pool_task *task);
/* Waits for a task submitted without done: 0 (ran), -ECANCELED,
 * -ETIMEDOUT, -EINVAL (the task has a done callback). timeout_ms -1: no
 * limit. */
POOL_API int pool_wait(pool_task *task, int timeout_ms);

/* The number of CPUs this process may run on (at least 1). */
POOL_API unsigned pool_cpu_count(void);
/* A message for a negative errno value (or a POOL_EAI_ERROR status). */
POOL_API const char *pool_strerror(int err);

/* getaddrinfo's own errors as a status: below -3000. */
#define POOL_EAI_BASE 3000
#define POOL_EAI_ERROR(code) (-(POOL_EAI_BASE + ((code) < 0 ? -(code) : (code))))
/* The EAI_ code of a POOL_EAI_ERROR status, 0 for any other status. */
POOL_API int pool_eai_code(int status);

/* ---- resource pool ----------------------------------------------------------- */

typedef struct pool_res pool_res;

/* A borrowed resource: `resource` is what create made; `data` is yours
 * while you hold the item. */
typedef struct pool_res_item {
    void *resource;
    void *data;
} pool_res_item;

typedef struct pool_res_options {
    int (*create)(void *ctx, void **resource);   /* required */
    void (*destroy)(void *ctx, void *resource);  /* may be NULL */
    int (*validate)(void *ctx, void *resource);  /* 0: healthy; may be NULL */
    void *ctx;
    unsigned min;              /* default 0 */
    unsigned max;              /* default 10 */
    int validate_on_borrow;    /* 1: validate before each hand-out */
    int idle_timeout_ms;       /* 0: 30000; < 0: never */
    int max_lifetime_ms;       /* 0: no limit */
    int health_interval_ms;    /* 0: no periodic check */
    int create_retry_ms;       /* 0: 500 */
    unsigned max_waiters;      /* 0: no limit */
    const char *name;          /* keeper thread name; default "pool-res" */
} pool_res_options;

typedef struct pool_res_stats {
    size_t total;     /* created and not destroyed, plus being created */
    size_t idle;      /* ready to hand out */
    size_t in_use;    /* borrowed (or being validated for a borrower) */
    size_t waiting;   /* acquires waiting */
    size_t creating;  /* creates in progress */
    uint64_t acquired, created, destroyed, timeouts, create_failures, validation_failures;
} pool_res_stats;

/* Private: a waiting acquire. */
typedef struct pool__waiter {
    struct pool__waiter *next, *prev;
    void *node;       /* the granted resource */
    void *cond;       /* blocking waiter: its condition variable */
    void *req;        /* loop waiter: its pool_res_req */
    int (*wake)(struct pool__waiter *w);
    int state;
} pool__waiter;

/* 0, -EINVAL (no create, min > max), -ENOMEM, -EAGAIN (no thread). */
POOL_API int pool_res_new(pool_res **out, const pool_res_options *opts);
/* -EBUSY while resources are borrowed, acquires wait or an acquirer
 * creates or validates one; else destroys everything and frees the pool. */
POOL_API int pool_res_free(pool_res *rp);
/* 0 and *out; -ETIMEDOUT, -EAGAIN, -ESHUTDOWN, or create's error. */
POOL_API int pool_res_acquire(pool_res *rp, pool_res_item **out, int timeout_ms);
POOL_API void pool_res_release(pool_res_item *item);
POOL_API void pool_res_release_broken(pool_res_item *item);
/* 0 once all are back and destroyed; -ETIMEDOUT. */
POOL_API int pool_res_drain(pool_res *rp, int timeout_ms);
/* Destroys the idle resources; returns how many. */
POOL_API int pool_res_clear(pool_res *rp);
POOL_API void pool_res_get_stats(pool_res *rp, pool_res_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* POOL_H */

/* ---- loop glue: declarations (evloop.h came first) ----------------------------- */
#if defined(EVLOOP_H) && !defined(POOL__EVLOOP_H)
#define POOL__EVLOOP_H

#include <sys/stat.h> /* struct stat */
#include <netdb.h>    /* struct addrinfo */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pool_loop pool_loop;
typedef struct pool_req pool_req;
typedef struct pool_res_req pool_res_req;

typedef void (*pool_req_cb)(pool_req *req, int status);
typedef void (*pool_res_cb)(pool_res_req *req, int status, pool_res_item *item);

/* An offload request: `data` is yours, results are read-only. */
struct pool_req {
    void *data;
    int status;              /* as given to cb */
    char *buf;               /* read_file: contents (NUL-terminated) */
    size_t len;              /* read_file: bytes in buf */
    struct stat st;          /* stat */
    struct addrinfo *ai;     /* getaddrinfo */
    /* private */
    pool_task task;
    pool_req_cb cb;
    char *path, *service;
    const void *wdata;
    size_t wlen, max;
    unsigned mode;
    int has_hints;
    struct addrinfo hints;
};

/* An asynchronous acquire: `data` is yours, the rest is private. */
struct pool_res_req {
    void *data;
    pool_task task;
    pool__waiter w;
    pool_res *rp;
    pool_loop *pl;
    pool_res_cb cb;
    void *node;
    pool_res_req *lnext, *lprev; /* the binding's list, in deadline order */
    uint64_t deadline;           /* loop time, UINT64_MAX: none */
    int inlist;
    int status;
};

/* Binds tp (NULL: a new default pool, owned) to loop. 0, -ENOMEM, or
 * pool_threads_new's / evloop_async_init's error. */
POOL_API int pool_loop_new(pool_loop **out, evloop *loop, pool_threads *tp);
/* Cancels what is queued, closes and frees the binding once nothing is
 * outstanding (run the loop). */
POOL_API void pool_loop_close(pool_loop *pl);
POOL_API pool_threads *pool_loop_threads(const pool_loop *pl);
/* 1 when h is one of a binding's internal handles. */
POOL_API int pool_loop_owns_handle(const evloop_handle *h);
/* work(task) on a worker, done(task, status) on the loop (required). 0,
 * -EINVAL, -ESHUTDOWN, -EAGAIN (bounded queue full: never waits). */
POOL_API int pool_loop_submit(pool_loop *pl, pool_task *task, pool_work_fn work, pool_done_fn done);
/* fn(arg) on a worker, done(arg, status) on the loop (may be NULL). */
POOL_API int pool_loop_call(pool_loop *pl, pool_fn fn, void *arg, pool_call_done_fn done);

POOL_API int pool_read_file(pool_loop *pl, pool_req *req, const char *path, size_t max_size,
                            pool_req_cb cb);
POOL_API int pool_write_file(pool_loop *pl, pool_req *req, const char *path, const void *data,
                             size_t len, unsigned mode, pool_req_cb cb);
POOL_API int pool_stat(pool_loop *pl, pool_req *req, const char *path, pool_req_cb cb);
POOL_API int pool_getaddrinfo(pool_loop *pl, pool_req *req, const char *node, const char *service,
                              const struct addrinfo *hints, pool_req_cb cb);
POOL_API int pool_req_cancel(pool_req *req);
POOL_API void pool_req_cleanup(pool_req *req);

/* On pl's loop thread: cb(req, status, item) later on the loop. 0,
 * -ESHUTDOWN (draining), -EAGAIN (max_waiters), -EINVAL. */
POOL_API int pool_res_acquire_async(pool_res *rp, pool_loop *pl, pool_res_req *req, int timeout_ms,
                                    pool_res_cb cb);
/* Withdraws a waiting request: 0 (cb gets -ECANCELED), -EBUSY. */
POOL_API int pool_res_cancel(pool_res_req *req);

#ifdef __cplusplus
}
#endif

#endif /* loop glue declarations */

/* ============================================================================
 * IMPLEMENTATION
 * ========================================================================== */
#if defined(POOL_IMPLEMENTATION) && !defined(POOL__IMPLEMENTED)
#define POOL__IMPLEMENTED

#if defined(__GLIBC__) && !defined(__USE_XOPEN2K8)
#error "pool.h: the implementation needs POSIX 2008: include pool.h before any system header, or compile with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#if defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#include <pthread_np.h>
#endif

#ifndef POOL_ASSERT
#include <assert.h>
#define POOL_ASSERT(c) assert(c)
#endif
#ifndef POOL_MALLOC
#define POOL_MALLOC(n) malloc(n)
#define POOL_FREE(p) free(p)
#endif

#ifdef POOL_STATIC
#define POOL__DEF POOL_API
#else
#define POOL__DEF
#endif

#if defined(__cplusplus)
#define POOL__TLS thread_local
#else
#define POOL__TLS _Thread_local
#endif

#define POOL__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define POOL__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Doubly linked lists (the queue, idle resources, waiters): node n, with
 * next and prev, at the end of / out of the list (head, tail). */
#define POOL__DLIST_APPEND(head, tail, n)                                   \
    do {                                                                    \
        (n)->next = NULL;                                                   \
        (n)->prev = (tail);                                                 \
        if (tail)                                                           \
            (tail)->next = (n);                                             \
        else                                                                \
            (head) = (n);                                                   \
        (tail) = (n);                                                       \
    } while (0)
#define POOL__DLIST_UNLINK(head, tail, n)                                   \
    do {                                                                    \
        if ((n)->prev)                                                      \
            (n)->prev->next = (n)->next;                                    \
        else                                                                \
            (head) = (n)->next;                                             \
        if ((n)->next)                                                      \
            (n)->next->prev = (n)->prev;                                    \
        else                                                                \
            (tail) = (n)->prev;                                             \
        (n)->next = (n)->prev = NULL;                                       \
    } while (0)

/* ---- time and condition variables ------------------------------------------ */

static uint64_t pool__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pool__now_ms(void) { return pool__now_ns() / 1000000u; }

/* A deadline on the monotonic clock; UINT64_MAX: none. */
static uint64_t pool__deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    return pool__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

static int pool__cond_init(pthread_cond_t *c)
{
#if defined(__APPLE__)
    return -pthread_cond_init(c, NULL);
#else
    pthread_condattr_t a;
    int rc;
    if ((rc = pthread_condattr_init(&a)) != 0)
        return -rc;
    /* timed waits are computed on the monotonic clock: without it, fail */
    if ((rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
#endif
}

/* Waits on c until signalled or the deadline: 0, or -ETIMEDOUT once the
 * deadline has passed. */
static int pool__cond_wait(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline)
{
    struct timespec ts;
    uint64_t now;
    if (deadline == UINT64_MAX) {
        pthread_cond_wait(c, m);
        return 0;
    }
    now = pool__now_ns();
    if (now >= deadline)
        return -ETIMEDOUT;
#if defined(__APPLE__)
    {
        struct timespec rt;
        uint64_t abs;
        clock_gettime(CLOCK_REALTIME, &rt);
        abs = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec + (deadline - now);
        ts.tv_sec = (time_t)(abs / 1000000000u);
        ts.tv_nsec = (long)(abs % 1000000000u);
    }
#else
    ts.tv_sec = (time_t)(deadline / 1000000000u);
    ts.tv_nsec = (long)(deadline % 1000000000u);
#endif
    pthread_cond_timedwait(c, m, &ts);
    return 0;
}

static void pool__set_thread_name(const char *name)
{
#if defined(__linux__)
    prctl(PR_SET_NAME, (unsigned long)(uintptr_t)name, 0, 0, 0);
#elif defined(__APPLE__)
    pthread_setname_np(name);
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
    pthread_set_name_np(pthread_self(), name);
#elif defined(__NetBSD__)
    pthread_setname_np(pthread_self(), "%s", (void *)(uintptr_t)name);
#else
    (void)name;
#endif
}

POOL__DEF unsigned pool_cpu_count(void)
{
    long n;
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
#endif
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* ---- errors ------------------------------------------------------------------ */

POOL__DEF int pool_eai_code(int status)
{
    int n;
    if (status > -(POOL_EAI_BASE + 1) || status < -(POOL_EAI_BASE + 1000))
        return 0;
    n = -status - POOL_EAI_BASE;
#if EAI_NONAME < 0
    return -n;
#else
    return n;
#endif
}

POOL__DEF const char *pool_strerror(int err)
{
    if (pool_eai_code(err))
        return gai_strerror(pool_eai_code(err));
    switch (-err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory";
    case EAGAIN: return "resource temporarily unavailable (queue full or would wait)";
    case ESHUTDOWN: return "pool is shut down or draining";
    case ECANCELED: return "operation canceled";
    case ETIMEDOUT: return "timed out";
    case EBUSY: return "busy (already running, finished, or in use)";
    case EDEADLK: return "the wait would deadlock";
    case EFBIG: return "file too large";
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EEXIST: return "file exists";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "not a directory";
    case ENOSPC: return "no space left on device";
    case EIO: return "input/output error";
    case EROFS: return "read-only file system";
    case EMFILE: return "too many open files";
    case ENFILE: return "too many open files in system";
    case ENAMETOOLONG: return "file name too long";
    case ELOOP: return "too many levels of symbolic links";
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset by peer";
    case EPIPE: return "broken pipe";
    case EINTR: return "interrupted system call";
    default: return "unknown error";
    }
}

/* ---- thread pool ------------------------------------------------------------- */

enum {
    POOL__S_QUEUED = 1,  /* in the shared queue */
    POOL__S_CLAIMED,     /* in a worker's batch, not started */
    POOL__S_CANCELLING,  /* cancel under way: reported once, by whoever took it
                          * (its worker for a batched task) */
    POOL__S_RUNNING,
    POOL__S_FINISHED,
    POOL__S_CANCELLED,
    POOL__S_STAGED,      /* a loop task not yet handed to the pool */
    POOL__S_MASK = 0xff,
    POOL__S_WAITED = 0x100 /* a pool_wait sleeps on it */
};

enum {
    POOL__T_CALL = 1,     /* a pool_call record */
    POOL__T_INTERNAL = 2  /* internal: ignores max_queue */
};

#define POOL__BATCH_NS 50000u /* a batch of tiny tasks takes about this long */
#define POOL__BATCH_MAX 128u
#define POOL__KEEP_CALLS 1024u

/* A loop binding, seen from the core: where finished loop tasks go. */
typedef struct pool__owner {
    void (*push)(struct pool__owner *o, pool_task *first, pool_task *last);
} pool__owner;

typedef struct pool__call {
    pool_task task;
    pool_fn fn;
    pool_call_done_fn done;
    void *arg;
} pool__call;

typedef struct pool__worker {
    pool_threads *tp;
    pthread_t th;
    unsigned index;
    int joinable;
    /* finished loop tasks of the current batch, newest first */
    pool__owner *chain_owner;
    pool_task *chain_first, *chain_last;
    /* pool_call records to give back */
    pool_task *recycle;
    int need_bcast;
} pool__worker;

struct pool_threads {
    pthread_mutex_t mu;
    pthread_cond_t work_cond;   /* idle workers */
    pthread_cond_t space_cond;  /* submitters waiting for room */
    pthread_cond_t finish_cond; /* pool_wait, pool_threads_wait */
    pthread_cond_t start_cond;  /* pool_threads_new waits for thread_init */
    pthread_cond_t quiet_cond;  /* a free waits for sleeping callers to leave */
    pool_task *head, *tail;     /* the queue */
    size_t nqueued, pending;
    unsigned nthreads, nalive, nstarted, nidle, nwake;
    unsigned nlooping;          /* workers that have not left their task loop */
    /* callers that may touch the pool after a shutdown woke them: a free
     * waits until they are gone */
    unsigned nblocked;          /* submitters waiting for room */
    unsigned nwaiters;          /* pool_wait sleepers */
    unsigned nwaiting_all;      /* pool_threads_wait sleepers */
    unsigned nreporting;        /* shutdowns reporting cancelled tasks */
    int freeing;                /* a free waits on quiet_cond */
    int free_deferred;          /* freed when the shutdown report ends */
    int init_error;
    int stopping;               /* atomic: 0, 1 drain, 2 cancel */
    int self_free;              /* freed by the last worker */
    unsigned nbindings;
    uint64_t submitted, completed, cancelled;
    pool_task *free_calls;
    size_t nfree_calls;
    pool_threads_options o;
    char name[16];
    pool__worker *workers;
};

static POOL__TLS pool__worker *pool__self;

static int pool__on_worker(const pool_threads *tp) { return pool__self && pool__self->tp == tp; }

/* A shutdown reporting cancelled tasks on this thread (their callbacks
 * may free the pool: such a free is left to the end of the report). */
typedef struct pool__report {
    pool_threads *tp;
    struct pool__report *outer;
} pool__report;

static POOL__TLS pool__report *pool__reports;

static int pool__reporting(const pool_threads *tp)
{
    const pool__report *r;
    for (r = pool__reports; r; r = r->outer)
        if (r->tp == tp)
            return 1;
    return 0;
}

/* A caller that slept in the pool (or reported off its lock) is done with
 * it: wakes a free waiting for that. mu held. */
static void pool__left(pool_threads *tp)
{
    if (tp->freeing)
        pthread_cond_broadcast(&tp->quiet_cond);
}

/* Whether a task handed to the pool now will run (mu held). Before a
 * shutdown, any; during a DRAIN, only what was accepted before it (loop
 * tasks staged by a binding, work for a binding's resource requests), and
 * only while a worker still takes tasks; after a CANCEL, none. */
static int pool__will_run(const pool_threads *tp, int accepted)
{
    if (!tp->stopping)
        return 1;
    return accepted && tp->stopping == 1 && tp->nlooping > 0;
}

/* Whether an idle worker may end (mu held): after a CANCEL; after a DRAIN
 * once no binding is left that could still hand over accepted work. */
static int pool__worker_may_end(const pool_threads *tp)
{
    return tp->stopping == 2 || (tp->stopping == 1 && tp->nbindings == 0);
}

/* Raises the shutdown level to `level` (1 drain, 2 cancel) and wakes
 * everyone who sleeps on it (mu held). */
static void pool__stop(pool_threads *tp, int level)
{
    if (tp->stopping < level)
        __atomic_store_n(&tp->stopping, level, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&tp->work_cond);
    pthread_cond_broadcast(&tp->space_cond);
}

/* Moves a task from state `from` to `to`, keeping the WAITED bit; 0 when
 * it was not in `from`. */
static int pool__transition(int *state, int from, int to)
{
    int s = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    while ((s & POOL__S_MASK) == from) {
        if (__atomic_compare_exchange_n(state, &s, (s & ~POOL__S_MASK) | to, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return 1;
    }
    return 0;
}

/* Appends t to the singly linked list (*head, *tail) of tasks to report. */
static void pool__list_append(pool_task **head, pool_task **tail, pool_task *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

/* Marks a queued task as taken into a batch (mu held). */
static void pool__claim(pool_task *t) { pool__transition(&t->state, POOL__S_QUEUED, POOL__S_CLAIMED); }

static void pool__call_work(pool_task *t)
{
    pool__call *c = (pool__call *)(void *)t;
    c->fn(c->arg);
}

/* Gives the pool_call records in list back (mu held). */
static void pool__recycle_calls(pool_threads *tp, pool_task *list)
{
    while (list) {
        pool_task *next = list->next;
        if (tp->nfree_calls < POOL__KEEP_CALLS) {
            list->next = tp->free_calls;
            tp->free_calls = list;
            tp->nfree_calls++;
        } else {
            POOL_FREE(list);
        }
        list = next;
    }
}

/* Reports the end of a task, off a worker (pool_cancel, shutdown): calls
 * its done or wakes its waiter. mu not held. A done callback may free the
 * pool, so nothing here touches tp after calling it. */
static void pool__finish_now(pool_threads *tp, pool_task *t, int status)
{
    int fin = status ? POOL__S_CANCELLED : POOL__S_FINISHED;
    if (t->owner) {
        pool__owner *o = (pool__owner *)t->owner;
        t->status = status;
        POOL__STORE(&t->state, fin);
        t->next = NULL;
        o->push(o, t, t);
    } else if (t->flags & POOL__T_CALL) {
        pool__call *c = (pool__call *)(void *)t;
        pool_call_done_fn done = c->done;
        void *arg = c->arg;
        t->next = NULL;
        pthread_mutex_lock(&tp->mu); /* the record first: done may free tp */
        pool__recycle_calls(tp, t);
        pthread_mutex_unlock(&tp->mu);
        if (done)
            done(arg, status);
    } else if (t->done) {
        POOL__STORE(&t->state, fin);
        t->done(t, status);
    } else {
        int old;
        t->status = status;
        old = __atomic_exchange_n(&t->state, fin, __ATOMIC_SEQ_CST);
        if (old & POOL__S_WAITED) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_broadcast(&tp->finish_cond);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

static void pool__flush_chain(pool__worker *w)
{
    if (w->chain_first) {
        w->chain_owner->push(w->chain_owner, w->chain_first, w->chain_last);
        w->chain_first = w->chain_last = NULL;
        w->chain_owner = NULL;
    }
}

/* Reports the end of a task on its worker. */
static void pool__finish_on_worker(pool__worker *w, pool_task *t, int status)
{
    int fin = status ? POOL__S_CANCELLED : POOL__S_FINISHED;
    if (t->owner) {
        pool__owner *o = (pool__owner *)t->owner;
        t->status = status;
        POOL__STORE(&t->state, fin);
        if (w->chain_owner != o)
            pool__flush_chain(w);
        w->chain_owner = o;
        t->next = w->chain_first; /* newest first: the loop reverses */
        w->chain_first = t;
        if (!w->chain_last)
            w->chain_last = t;
    } else if (t->flags & POOL__T_CALL) {
        pool__call *c = (pool__call *)(void *)t;
        if (c->done)
            c->done(c->arg, status);
        t->next = w->recycle;
        w->recycle = t;
    } else if (t->done) {
        POOL__STORE(&t->state, fin);
        t->done(t, status);
    } else {
        t->status = status;
        if (__atomic_exchange_n(&t->state, fin, __ATOMIC_SEQ_CST) & POOL__S_WAITED)
            w->need_bcast = 1;
    }
}

static void pool__destroy(pool_threads *tp);

static void *pool__worker_main(void *arg)
{
    pool__worker *w = (pool__worker *)arg;
    pool_threads *tp = w->tp;
    char name[16];
    int rc = 0, last, self_free;
    uint64_t est_ns = 0; /* time per task, moving average; 0: unknown */
    size_t nbatch = 0, ncancelled = 0;
    unsigned wake = 0;

    pool__self = w;
    {   /* "<prefix>-<index>": prefix <= 10 bytes, index < 10000 */
        size_t k = strlen(tp->name);
        unsigned i = w->index, div = 1000;
        memcpy(name, tp->name, k);
        name[k++] = '-';
        while (div > 1 && i < div)
            div /= 10;
        for (; div; div /= 10)
            name[k++] = (char)('0' + (i / div) % 10);
        name[k] = '\0';
    }
    pool__set_thread_name(name);
    if (tp->o.thread_init)
        rc = tp->o.thread_init(tp->o.ctx, w->index);

    pthread_mutex_lock(&tp->mu);
    tp->nstarted++;
    if (rc && !tp->init_error)
        tp->init_error = rc < 0 ? rc : -rc;
    pthread_cond_broadcast(&tp->start_cond);
    /* with an init error the pool is being torn down: stopping is set */
    for (;;) {
        pool_task *batch, *t, *next;
        size_t n, share, limit, i;
        uint64_t t0, t1;

        /* account for the previous batch */
        if (nbatch) {
            tp->pending -= nbatch;
            tp->completed += nbatch - ncancelled;
            tp->cancelled += ncancelled;
            if (w->recycle) {
                pool__recycle_calls(tp, w->recycle);
                w->recycle = NULL;
            }
            if (w->need_bcast || (tp->pending == 0 && tp->nwaiting_all))
                pthread_cond_broadcast(&tp->finish_cond);
            w->need_bcast = 0;
            nbatch = ncancelled = 0;
        }
        while (!tp->head && !pool__worker_may_end(tp)) {
            tp->nidle++;
            pthread_cond_wait(&tp->work_cond, &tp->mu);
            tp->nidle--;
            if (tp->nwake)
                tp->nwake--;
        }
        if (!tp->head) {
            /* stopping, and nothing left; from now on pool__will_run no
             * longer counts on this worker (same lock as the test above) */
            tp->nlooping--;
            break;
        }

        /* take a batch: as many tiny tasks as fit in POOL__BATCH_NS, at most
         * a fair share of the queue */
        limit = est_ns ? (size_t)(POOL__BATCH_NS / est_ns) : 1;
        if (limit < 1)
            limit = 1;
        if (limit > POOL__BATCH_MAX || tp->o.max_queue)
            limit = tp->o.max_queue ? 1 : POOL__BATCH_MAX; /* bounded: one at a time */
        share = tp->nqueued / tp->nthreads;
        if (share < 1)
            share = 1;
        n = limit < share ? limit : share;
        batch = t = tp->head;
        pool__claim(t);
        for (i = 1; i < n && t->next; i++) {
            t = t->next;
            pool__claim(t);
        }
        n = i;
        tp->head = t->next;
        if (tp->head)
            tp->head->prev = NULL;
        else
            tp->tail = NULL;
        t->next = NULL;
        tp->nqueued -= n;
        nbatch = n;
        wake = tp->head && tp->nidle > tp->nwake;
        if (wake)
            tp->nwake++;
        if (tp->nblocked)
            pthread_cond_broadcast(&tp->space_cond); /* room in the queue */
        pthread_mutex_unlock(&tp->mu);
        if (wake)
            pthread_cond_signal(&tp->work_cond);

        t0 = pool__now_ns();
        for (t = batch; t; t = next) {
            next = t->next;
            if (__atomic_load_n(&tp->stopping, __ATOMIC_RELAXED) == 2 ||
                !pool__transition(&t->state, POOL__S_CLAIMED, POOL__S_RUNNING)) {
                ncancelled++;
                pool__finish_on_worker(w, t, -ECANCELED);
                continue;
            }
            t->work(t);
            pool__finish_on_worker(w, t, 0);
        }
        pool__flush_chain(w);
        t1 = pool__now_ns();
        {
            uint64_t per = (t1 - t0) / n + 1;
            est_ns = est_ns ? (est_ns * 3 + per) / 4 : per;
        }
        pthread_mutex_lock(&tp->mu);
    }
    pthread_mutex_unlock(&tp->mu);

    if (tp->o.thread_exit && !rc)
        tp->o.thread_exit(tp->o.ctx, w->index);

    pthread_mutex_lock(&tp->mu);
    tp->nalive--;
    last = tp->nalive == 0;
    self_free = tp->self_free;
    if (tp->nwaiting_all)
        pthread_cond_broadcast(&tp->finish_cond);
    pthread_mutex_unlock(&tp->mu);
    pool__self = NULL;
    if (last && self_free)
        pool__destroy(tp);
    return NULL;
}

/* The pool's lock and condition variables: 0, or a negative errno with
 * nothing left initialised. */
static int pool__sync_init(pool_threads *tp)
{
    pthread_cond_t *conds[5];
    size_t i, k;
    int rc;
    conds[0] = &tp->work_cond;
    conds[1] = &tp->space_cond;
    conds[2] = &tp->finish_cond;
    conds[3] = &tp->start_cond;
    conds[4] = &tp->quiet_cond;
    if ((rc = pthread_mutex_init(&tp->mu, NULL)) != 0)
        return -rc;
    for (i = 0; i < sizeof conds / sizeof *conds; i++) {
        if ((rc = pool__cond_init(conds[i])) < 0) {
            for (k = 0; k < i; k++)
                pthread_cond_destroy(conds[k]);
            pthread_mutex_destroy(&tp->mu);
            return rc;
        }
    }
    return 0;
}

/* Frees the pool once its workers are gone. Callers a shutdown woke
 * (blocked submitters, pool_wait and pool_threads_wait sleepers) and a
 * shutdown still reporting on another thread may not have left yet: wait
 * for them, so none touches freed memory. */
static void pool__destroy(pool_threads *tp)
{
    pthread_mutex_lock(&tp->mu);
    tp->freeing = 1;
    while (tp->nblocked || tp->nwaiters || tp->nwaiting_all || tp->nreporting)
        pthread_cond_wait(&tp->quiet_cond, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    while (tp->free_calls) {
        pool_task *c = tp->free_calls;
        tp->free_calls = c->next;
        POOL_FREE(c);
    }
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->work_cond);
    pthread_cond_destroy(&tp->space_cond);
    pthread_cond_destroy(&tp->finish_cond);
    pthread_cond_destroy(&tp->start_cond);
    pthread_cond_destroy(&tp->quiet_cond);
    POOL_FREE(tp->workers);
    POOL_FREE(tp);
}

POOL__DEF int pool_threads_new(pool_threads **out, const pool_threads_options *opts)
{
    pool_threads *tp;
    pthread_attr_t attr;
    unsigned i, n;
    int rc = 0;

    POOL_ASSERT(out);
    *out = NULL;
    tp = (pool_threads *)POOL_MALLOC(sizeof *tp);
    if (!tp)
        return -ENOMEM;
    memset(tp, 0, sizeof *tp);
    if (opts)
        tp->o = *opts;
    if (tp->o.threads > POOL_MAX_THREADS ||
        (tp->o.full != POOL_FULL_BLOCK && tp->o.full != POOL_FULL_FAIL)) {
        POOL_FREE(tp);
        return -EINVAL;
    }
    n = tp->o.threads ? tp->o.threads : pool_cpu_count();
    if (n > POOL_MAX_THREADS)
        n = POOL_MAX_THREADS;
    snprintf(tp->name, 11, "%s", tp->o.name && *tp->o.name ? tp->o.name : "pool");
    tp->o.name = NULL;
    tp->workers = (pool__worker *)POOL_MALLOC(n * sizeof *tp->workers);
    if (!tp->workers) {
        POOL_FREE(tp);
        return -ENOMEM;
    }
    memset(tp->workers, 0, n * sizeof *tp->workers);
    if ((rc = pthread_attr_init(&attr)) != 0) {
        POOL_FREE(tp->workers);
        POOL_FREE(tp);
        return -rc;
    }
    /* a stack below PTHREAD_STACK_MIN is refused here, not ignored */
    if (tp->o.stack_size && pthread_attr_setstacksize(&attr, tp->o.stack_size) != 0)
        rc = -EINVAL;
    else
        rc = pool__sync_init(tp);
    if (rc < 0) {
        pthread_attr_destroy(&attr);
        POOL_FREE(tp->workers);
        POOL_FREE(tp);
        return rc;
    }
    pthread_mutex_lock(&tp->mu);
    for (i = 0; i < n; i++) {
        pool__worker *w = &tp->workers[i];
        w->tp = tp;
        w->index = i;
        if ((rc = pthread_create(&w->th, &attr, pool__worker_main, w)) != 0) {
            rc = rc == EINVAL ? -EINVAL : -EAGAIN;
            break;
        }
        w->joinable = 1;
        tp->nthreads++;
        tp->nalive++;
        tp->nlooping++;
    }
    pthread_attr_destroy(&attr);
    while (tp->nstarted < tp->nthreads)
        pthread_cond_wait(&tp->start_cond, &tp->mu);
    if (!rc)
        rc = tp->init_error;
    if (rc)
        pool__stop(tp, 1);
    pthread_mutex_unlock(&tp->mu);
    if (rc) {
        for (i = 0; i < tp->nthreads; i++)
            pthread_join(tp->workers[i].th, NULL);
        pool__destroy(tp);
        return rc;
    }
    *out = tp;
    return 0;
}

/* Queues t (mu held by the caller; released here). The worker is woken
 * before the lock is let go: once it is, the task may run and its done
 * callback free the pool, and a free may be waiting for a submitter that
 * slept for room - nothing may touch tp after the unlock. */
static int pool__enqueue_locked(pool_threads *tp, pool_task *t)
{
    int wake;
    t->tp = tp;
    __atomic_store_n(&t->state, POOL__S_QUEUED, __ATOMIC_RELAXED);
    POOL__DLIST_APPEND(tp->head, tp->tail, t);
    tp->nqueued++;
    tp->pending++;
    tp->submitted++;
    wake = tp->nidle > tp->nwake;
    if (wake) {
        tp->nwake++;
        pthread_cond_signal(&tp->work_cond);
    }
    pthread_mutex_unlock(&tp->mu);
    return 0;
}

/* Takes mu and waits for room; returns with mu held (0) or released (< 0).
 * internal: work a binding accepted earlier (no max_queue, runs during a
 * DRAIN while a worker is left); nowait: never sleep (-EAGAIN when full). */
static int pool__admit(pool_threads *tp, int internal, int nowait)
{
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        if (!pool__will_run(tp, internal)) {
            pthread_mutex_unlock(&tp->mu);
            return -ESHUTDOWN;
        }
        if (internal || !tp->o.max_queue || tp->nqueued < tp->o.max_queue)
            return 0;
        if (nowait || tp->o.full == POOL_FULL_FAIL || pool__on_worker(tp)) {
            pthread_mutex_unlock(&tp->mu);
            return -EAGAIN;
        }
        tp->nblocked++;
        pthread_cond_wait(&tp->space_cond, &tp->mu);
        tp->nblocked--;
        pool__left(tp);
    }
}

/* Submits a prepared task (work, done, owner, flags set). */
static int pool__submit(pool_threads *tp, pool_task *t, int nowait)
{
    int rc = pool__admit(tp, (t->flags & POOL__T_INTERNAL) != 0, nowait);
    if (rc < 0)
        return rc;
    return pool__enqueue_locked(tp, t);
}

POOL__DEF int pool_submit(pool_threads *tp, pool_task *task, pool_work_fn work, pool_done_fn done)
{
    POOL_ASSERT(tp && task);
    if (!work)
        return -EINVAL;
    task->work = work;
    task->done = done;
    task->owner = NULL;
    task->flags = 0;
    task->status = 0;
    return pool__submit(tp, task, 0);
}

POOL__DEF int pool_call(pool_threads *tp, pool_fn fn, void *arg, pool_call_done_fn done)
{
    pool__call *c;
    int rc;
    POOL_ASSERT(tp);
    if (!fn)
        return -EINVAL;
    if ((rc = pool__admit(tp, 0, 0)) < 0)
        return rc;
    if (tp->free_calls) {
        c = (pool__call *)(void *)tp->free_calls;
        tp->free_calls = c->task.next;
        tp->nfree_calls--;
    } else if (!(c = (pool__call *)POOL_MALLOC(sizeof *c))) {
        pthread_mutex_unlock(&tp->mu);
        return -ENOMEM;
    }
    c->task.data = NULL;
    c->task.work = pool__call_work;
    c->task.done = NULL;
    c->task.owner = NULL;
    c->task.flags = POOL__T_CALL;
    c->task.status = 0;
    c->fn = fn;
    c->done = done;
    c->arg = arg;
    return pool__enqueue_locked(tp, &c->task);
}

/* Takes a queued task out of the queue to report it cancelled (mu held).
 * It becomes CANCELLING at once, under the lock: whoever reports it next
 * (off the lock) is the only one, and a pool_cancel meanwhile refuses it. */
static void pool__dequeue_cancelled(pool_threads *tp, pool_task *t)
{
    POOL__DLIST_UNLINK(tp->head, tp->tail, t);
    pool__transition(&t->state, POOL__S_QUEUED, POOL__S_CANCELLING);
    tp->nqueued--;
    tp->pending--;
    tp->cancelled++;
}

/* After tasks left the queue without running (mu held): wakes whoever
 * waits for the pool to empty or for room. */
static void pool__dequeued(pool_threads *tp)
{
    if (tp->pending == 0 && tp->nwaiting_all)
        pthread_cond_broadcast(&tp->finish_cond);
    if (tp->nblocked)
        pthread_cond_broadcast(&tp->space_cond);
}

POOL__DEF int pool_cancel(pool_task *t)
{
    pool_threads *tp;
    int s;
    POOL_ASSERT(t && t->tp);
    tp = t->tp;
    pthread_mutex_lock(&tp->mu);
    s = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) & POOL__S_MASK;
    if (s == POOL__S_QUEUED) {
        pool__dequeue_cancelled(tp, t);
        pool__dequeued(tp);
        pthread_mutex_unlock(&tp->mu);
        pool__finish_now(tp, t, -ECANCELED);
        return 0;
    }
    if ((s == POOL__S_CLAIMED && pool__transition(&t->state, POOL__S_CLAIMED, POOL__S_CANCELLING)) ||
        (s == POOL__S_STAGED && pool__transition(&t->state, POOL__S_STAGED, POOL__S_CANCELLING))) {
        pthread_mutex_unlock(&tp->mu); /* its worker (or its loop) reports it */
        return 0;
    }
    /* running, finished, or already being cancelled (by a pool_cancel, a
     * shutdown or a loop close): reported once, by whoever started that */
    pthread_mutex_unlock(&tp->mu);
    return -EBUSY;
}

POOL__DEF int pool_wait(pool_task *t, int timeout_ms)
{
    pool_threads *tp;
    uint64_t deadline = pool__deadline(timeout_ms);
    int rc = 0;
    POOL_ASSERT(t && t->tp);
    if (t->done || t->owner || (t->flags & POOL__T_CALL))
        return -EINVAL;
    tp = t->tp;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        int s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST), timed_out;
        if ((s & POOL__S_MASK) == POOL__S_FINISHED || (s & POOL__S_MASK) == POOL__S_CANCELLED) {
            rc = (s & POOL__S_MASK) == POOL__S_FINISHED ? 0 : -ECANCELED;
            break;
        }
        if (!(s & POOL__S_WAITED) &&
            !__atomic_compare_exchange_n(&t->state, &s, s | POOL__S_WAITED, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            continue; /* changed under us: look again */
        tp->nwaiters++;
        timed_out = pool__cond_wait(&tp->finish_cond, &tp->mu, deadline) < 0;
        tp->nwaiters--;
        pool__left(tp);
        if (timed_out) {
            rc = -ETIMEDOUT;
            s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST) & POOL__S_MASK;
            if (s == POOL__S_FINISHED)
                rc = 0;
            else if (s == POOL__S_CANCELLED)
                rc = -ECANCELED;
            break;
        }
    }
    pthread_mutex_unlock(&tp->mu);
    return rc;
}

POOL__DEF int pool_threads_wait(pool_threads *tp, int timeout_ms)
{
    uint64_t deadline = pool__deadline(timeout_ms);
    int rc = 0;
    POOL_ASSERT(tp);
    if (pool__on_worker(tp))
        return -EDEADLK;
    pthread_mutex_lock(&tp->mu);
    while (tp->pending && tp->nalive) {
        tp->nwaiting_all++;
        rc = pool__cond_wait(&tp->finish_cond, &tp->mu, deadline);
        tp->nwaiting_all--;
        pool__left(tp);
        if (rc < 0) {
            rc = tp->pending ? -ETIMEDOUT : 0;
            break;
        }
    }
    pthread_mutex_unlock(&tp->mu);
    return rc;
}

static void pool__free_now(pool_threads *tp);

/* Reports the tasks a CANCEL shutdown took off the queue (counted in
 * nreporting, mu not held). Their callbacks may free the pool: such a free
 * only marks it, and the pool is freed here once the report is over. */
static void pool__report_cancelled(pool_threads *tp, pool_task *list)
{
    pool__report frame;
    int deferred;
    frame.tp = tp;
    frame.outer = pool__reports;
    pool__reports = &frame;
    while (list) {
        pool_task *next = list->next;
        pool__finish_now(tp, list, -ECANCELED);
        list = next;
    }
    pool__reports = frame.outer;
    pthread_mutex_lock(&tp->mu);
    tp->nreporting--;
    pool__left(tp);
    deferred = tp->free_deferred;
    tp->free_deferred = 0;
    pthread_mutex_unlock(&tp->mu);
    if (deferred)
        pool__free_now(tp);
}

POOL__DEF int pool_threads_shutdown(pool_threads *tp, int how)
{
    pool_task *list = NULL;
    POOL_ASSERT(tp);
    if (how != POOL_SHUTDOWN_DRAIN && how != POOL_SHUTDOWN_CANCEL)
        return -EINVAL;
    pthread_mutex_lock(&tp->mu);
    pool__stop(tp, how == POOL_SHUTDOWN_CANCEL ? 2 : 1);
    if (how == POOL_SHUTDOWN_CANCEL && tp->head) {
        pool_task *tail = NULL;
        while (tp->head) { /* in queue order */
            pool_task *t = tp->head;
            pool__dequeue_cancelled(tp, t);
            pool__list_append(&list, &tail, t);
        }
        pool__dequeued(tp);
        tp->nreporting++;
    }
    pthread_mutex_unlock(&tp->mu);
    if (list)
        pool__report_cancelled(tp, list);
    return 0;
}

/* The end of pool_threads_free, the shutdown started: joins the workers
 * and frees the pool, or, on one of its own workers (which cannot join
 * itself), leaves that to the last worker to end. */
static void pool__free_now(pool_threads *tp)
{
    unsigned i;
    pthread_mutex_lock(&tp->mu);
    if (pool__on_worker(tp)) {
        for (i = 0; i < tp->nthreads; i++)
            pthread_detach(tp->workers[i].th);
        tp->self_free = 1;
        pthread_mutex_unlock(&tp->mu);
        return;
    }
    pthread_mutex_unlock(&tp->mu);
    for (i = 0; i < tp->nthreads; i++)
        pthread_join(tp->workers[i].th, NULL);
    pool__destroy(tp);
}

POOL__DEF int pool_threads_free(pool_threads *tp)
{
    POOL_ASSERT(tp);
    pthread_mutex_lock(&tp->mu);
    if (tp->nbindings) {
        pthread_mutex_unlock(&tp->mu);
        return -EBUSY;
    }
    pool__stop(tp, 1);
    if (pool__reporting(tp)) {
        /* from a callback of a shutdown this thread is reporting: the
         * report still walks its list; it frees the pool at the end */
        tp->free_deferred = 1;
        pthread_mutex_unlock(&tp->mu);
        return 0;
    }
    pthread_mutex_unlock(&tp->mu);
    pool__free_now(tp);
    return 0;
}

POOL__DEF unsigned pool_threads_size(const pool_threads *tp) { return tp->nthreads; }

POOL__DEF void pool_threads_get_stats(pool_threads *tp, pool_threads_stats *out)
{
    pthread_mutex_lock(&tp->mu);
    out->threads = tp->nalive;
    out->idle = tp->nidle;
    out->blocked = tp->nblocked;
    out->waiters = tp->nwaiters + tp->nwaiting_all;
    out->queued = tp->nqueued;
    out->pending = tp->pending;
    out->submitted = tp->submitted;
    out->completed = tp->completed;
    out->cancelled = tp->cancelled;
    pthread_mutex_unlock(&tp->mu);
}

/* ---- resource pool ------------------------------------------------------------- */

typedef struct pool__rnode {
    pool_res_item pub; /* first: an item is its node */
    pool_res *rp;
    struct pool__rnode *next, *prev; /* the idle list */
    uint64_t created, idle_since, checked; /* ms */
} pool__rnode;

enum { POOL__W_WAITING = 1, POOL__W_GRANTED, POOL__W_SLOT, POOL__W_OVER };

struct pool_res {
    pthread_mutex_t mu;
    pthread_cond_t keeper_cond, drain_cond;
    pool__rnode *idle_head, *idle_tail; /* most recently released first */
    pool__waiter *wq_head, *wq_tail;    /* FIFO */
    size_t nidle, nwaiting, total, in_use, creating, checking;
    uint64_t acquired, created, destroyed, timeouts, create_failures, validation_failures;
    int draining, stopping, has_keeper;
    /* 1 while the keeper's own create or health check is in progress: it
     * is counted in creating or checking, but pool_res_free joins the
     * keeper, so it does not make free fail */
    int keeper_own;
    pthread_t keeper;
    uint64_t retry_at, backoff, next_health;
    uint64_t keeper_until; /* ms the keeper sleeps until; UINT64_MAX: no deadline */
    pool_res_options o;
    char name[16];
};

static uint64_t pool__min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

#define POOL__RES_IDLE_DEFAULT 30000
#define POOL__RES_RETRY_DEFAULT 500

static void pool__res_notify(pool_res *rp)
{
    if (rp->draining)
        pthread_cond_broadcast(&rp->drain_cond);
}

static void pool__res_idle_push(pool_res *rp, pool__rnode *n)
{
    uint64_t end = UINT64_MAX;
    n->idle_since = pool__now_ms();
    /* wake the keeper only if it sleeps past this one's eviction */
    if (rp->o.idle_timeout_ms >= 0 && rp->total > rp->o.min)
        end = n->idle_since + (uint64_t)rp->o.idle_timeout_ms;
    if (rp->o.max_lifetime_ms > 0)
        end = pool__min_u64(end, n->created + (uint64_t)rp->o.max_lifetime_ms);
    if (rp->has_keeper && end < rp->keeper_until) {
        rp->keeper_until = end;
        pthread_cond_signal(&rp->keeper_cond);
    }
    n->prev = NULL;
    n->next = rp->idle_head;
    if (rp->idle_head)
        rp->idle_head->prev = n;
    else
        rp->idle_tail = n;
    rp->idle_head = n;
    rp->nidle++;
}

static void pool__res_idle_unlink(pool_res *rp, pool__rnode *n)
{
    POOL__DLIST_UNLINK(rp->idle_head, rp->idle_tail, n);
    rp->nidle--;
}

static void pool__res_wq_remove(pool_res *rp, pool__waiter *w)
{
    POOL__DLIST_UNLINK(rp->wq_head, rp->wq_tail, w);
    rp->nwaiting--;
    pool__res_notify(rp);
}

static void pool__res_wq_push(pool_res *rp, pool__waiter *w)
{
    POOL__DLIST_APPEND(rp->wq_head, rp->wq_tail, w);
    rp->nwaiting++;
}

/* Hands a free resource (counted in total only) to the first waiter, or
 * to the idle list. 1 when nobody takes it (draining): destroy it. mu held. */
static int pool__res_give(pool_res *rp, pool__rnode *n)
{
    while (rp->wq_head) {
        pool__waiter *w = rp->wq_head;
        pool__res_wq_remove(rp, w);
        w->node = n;
        w->state = POOL__W_GRANTED;
        rp->in_use++;
        if (w->wake(w) == 0)
            return 0;
        rp->in_use--; /* the waiter could not take it (its loop pool is gone) */
    }
    if (rp->draining)
        return 1;
    pool__res_idle_push(rp, n);
    return 0;
}

/* A unit of capacity is free (a resource destroyed, a create failed): the
 * first waiter may create with it, else total shrinks. mu held. */
static void pool__res_slot(pool_res *rp)
{
    while (rp->wq_head) {
        pool__waiter *w = rp->wq_head;
        pool__res_wq_remove(rp, w);
        w->node = NULL;
        w->state = POOL__W_SLOT;
        rp->creating++;
        if (w->wake(w) == 0)
            return;
        rp->creating--;
    }
    rp->total--;
    if (rp->has_keeper && !rp->draining && rp->total < rp->o.min)
        pthread_cond_signal(&rp->keeper_cond);
    pool__res_notify(rp);
}

static void pool__res_destroy_node(pool_res *rp, pool__rnode *n)
{
    if (rp->o.destroy)
        rp->o.destroy(rp->o.ctx, n->pub.resource);
    POOL_FREE(n);
}

/* Destroys n (mu held, released meanwhile) and frees its slot. */
static void pool__res_discard(pool_res *rp, pool__rnode *n)
{
    pthread_mutex_unlock(&rp->mu);
    pool__res_destroy_node(rp, n);
    pthread_mutex_lock(&rp->mu);
    rp->destroyed++;
    pool__res_slot(rp);
}

/* Creates one resource; 0 and *out, or a negative errno. No lock. */
static int pool__res_create(pool_res *rp, pool__rnode **out)
{
    void *res = NULL;
    pool__rnode *n;
    int rc = rp->o.create(rp->o.ctx, &res);
    if (rc != 0)
        return rc < 0 ? rc : -rc;
    n = (pool__rnode *)POOL_MALLOC(sizeof *n);
    if (!n) {
        if (rp->o.destroy)
            rp->o.destroy(rp->o.ctx, res);
        return -ENOMEM;
    }
    memset(n, 0, sizeof *n);
    n->pub.resource = res;
    n->rp = rp;
    n->created = n->checked = pool__now_ms();
    *out = n;
    return 0;
}

static int pool__res_expired(const pool_res *rp, const pool__rnode *n, uint64_t now)
{
    return rp->o.max_lifetime_ms > 0 && now - n->created >= (uint64_t)rp->o.max_lifetime_ms;
}

/* Turns what an acquirer holds - a resource (counted in in_use) or a slot
 * (counted in creating) - into a usable resource: checks its lifetime,
 * validates it on borrow, replaces it when bad, creates for a slot.
 * 0 and *io, or an error (the capacity is released). No lock. */
static int pool__res_prepare(pool_res *rp, pool__rnode **io)
{
    pool__rnode *n = *io;
    int rc;
    if (n) {
        int expired = pool__res_expired(rp, n, pool__now_ms());
        int bad = !expired && rp->o.validate_on_borrow && rp->o.validate &&
                  rp->o.validate(rp->o.ctx, n->pub.resource) != 0;
        if (!expired && !bad)
            return 0;
        pool__res_destroy_node(rp, n);
        pthread_mutex_lock(&rp->mu);
        rp->destroyed++;
        if (bad)
            rp->validation_failures++;
        rp->in_use--;
        rp->creating++; /* keep the slot: replace it */
        pthread_mutex_unlock(&rp->mu);
    }
    rc = pool__res_create(rp, &n);
    pthread_mutex_lock(&rp->mu);
    rp->creating--;
    if (rc == 0) {
        rp->created++;
        rp->in_use++;
    } else {
        rp->create_failures++;
        pool__res_slot(rp);
    }
    pthread_mutex_unlock(&rp->mu);
    *io = rc == 0 ? n : NULL;
    return rc;
}

static int pool__res_wake_blocking(pool__waiter *w)
{
    pthread_cond_signal((pthread_cond_t *)w->cond);
    return 0;
}

POOL__DEF int pool_res_acquire(pool_res *rp, pool_res_item **out, int timeout_ms)
{
    pool__rnode *n = NULL;
    int rc;
    POOL_ASSERT(rp && out);
    *out = NULL;
    pthread_mutex_lock(&rp->mu);
    if (rp->draining) {
        pthread_mutex_unlock(&rp->mu);
        return -ESHUTDOWN;
    }
    if (!rp->wq_head && rp->idle_head) {
        n = rp->idle_head;
        pool__res_idle_unlink(rp, n);
        rp->in_use++;
    } else if (!rp->wq_head && rp->total < rp->o.max) {
        rp->total++;
        rp->creating++;
    } else if (timeout_ms == 0 || (rp->o.max_waiters && rp->nwaiting >= rp->o.max_waiters)) {
        pthread_mutex_unlock(&rp->mu);
        return -EAGAIN;
    } else {
        uint64_t deadline = pool__deadline(timeout_ms);
        pthread_cond_t cond;
        pool__waiter w;
        if ((rc = pool__cond_init(&cond)) < 0) {
            pthread_mutex_unlock(&rp->mu);
            return rc;
        }
        memset(&w, 0, sizeof w);
        w.cond = &cond;
        w.wake = pool__res_wake_blocking;
        w.state = POOL__W_WAITING;
        pool__res_wq_push(rp, &w);
        while (w.state == POOL__W_WAITING)
            if (pool__cond_wait(&cond, &rp->mu, deadline) < 0)
                break;
        if (w.state == POOL__W_WAITING) {
            /* timed out, and no release got to it first: under the lock,
             * so a concurrent release hands its resource to someone else */
            pool__res_wq_remove(rp, &w);
            rp->timeouts++;
            pthread_mutex_unlock(&rp->mu);
            pthread_cond_destroy(&cond);
            return -ETIMEDOUT;
        }
        n = (pool__rnode *)w.node; /* GRANTED: a resource; SLOT: NULL */
        pthread_mutex_unlock(&rp->mu);
        pthread_cond_destroy(&cond);
        goto prepare;
    }
    pthread_mutex_unlock(&rp->mu);
prepare:
    if ((rc = pool__res_prepare(rp, &n)) < 0)
        return rc;
    pthread_mutex_lock(&rp->mu);
    rp->acquired++;
    pthread_mutex_unlock(&rp->mu);
    *out = &n->pub;
    return 0;
}

POOL__DEF void pool_res_release(pool_res_item *item)
{
    pool__rnode *n = (pool__rnode *)(void *)item;
    pool_res *rp;
    int expired;
    POOL_ASSERT(item);
    rp = n->rp;
    expired = pool__res_expired(rp, n, pool__now_ms());
    pthread_mutex_lock(&rp->mu);
    rp->in_use--;
    if (expired || pool__res_give(rp, n))
        pool__res_discard(rp, n);
    else
        pool__res_notify(rp);
    pthread_mutex_unlock(&rp->mu);
}

POOL__DEF void pool_res_release_broken(pool_res_item *item)
{
    pool__rnode *n = (pool__rnode *)(void *)item;
    pool_res *rp;
    POOL_ASSERT(item);
    rp = n->rp;
    pool__res_destroy_node(rp, n);
    pthread_mutex_lock(&rp->mu);
    rp->in_use--;
    rp->destroyed++;
    pool__res_slot(rp);
    pthread_mutex_unlock(&rp->mu);
}

/* Takes the whole idle list (mu held); returns it. */
static pool__rnode *pool__res_take_idle(pool_res *rp, size_t *count)
{
    pool__rnode *list = rp->idle_head;
    *count = rp->nidle;
    rp->total -= rp->nidle;
    rp->idle_head = rp->idle_tail = NULL;
    rp->nidle = 0;
    return list;
}

static void pool__res_destroy_list(pool_res *rp, pool__rnode *list)
{
    while (list) {
        pool__rnode *next = list->next;
        pool__res_destroy_node(rp, list);
        list = next;
    }
}

POOL__DEF int pool_res_clear(pool_res *rp)
{
    size_t n;
    pool__rnode *list;
    POOL_ASSERT(rp);
    pthread_mutex_lock(&rp->mu);
    list = pool__res_take_idle(rp, &n);
    pthread_mutex_unlock(&rp->mu);
    pool__res_destroy_list(rp, list);
    pthread_mutex_lock(&rp->mu);
    rp->destroyed += n;
    if (rp->has_keeper && rp->total < rp->o.min)
        pthread_cond_signal(&rp->keeper_cond);
    pool__res_notify(rp);
    pthread_mutex_unlock(&rp->mu);
    return (int)n;
}

POOL__DEF int pool_res_drain(pool_res *rp, int timeout_ms)
{
    uint64_t deadline = pool__deadline(timeout_ms);
    size_t n;
    pool__rnode *list;
    int rc = 0;
    POOL_ASSERT(rp);
    pthread_mutex_lock(&rp->mu);
    rp->draining = 1;
    if (rp->has_keeper)
        pthread_cond_signal(&rp->keeper_cond);
    list = pool__res_take_idle(rp, &n);
    pthread_mutex_unlock(&rp->mu);
    pool__res_destroy_list(rp, list);
    pthread_mutex_lock(&rp->mu);
    rp->destroyed += n;
    /* whatever comes back from now on, with no waiter left, is destroyed */
    while (rp->in_use || rp->creating || rp->checking || rp->nwaiting) {
        if (pool__cond_wait(&rp->drain_cond, &rp->mu, deadline) < 0) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&rp->mu);
    return rc;
}

POOL__DEF void pool_res_get_stats(pool_res *rp, pool_res_stats *out)
{
    POOL_ASSERT(rp && out);
    pthread_mutex_lock(&rp->mu);
    out->total = rp->total;
    out->idle = rp->nidle;
    out->in_use = rp->in_use;
    out->waiting = rp->nwaiting;
    out->creating = rp->creating;
    out->acquired = rp->acquired;
    out->created = rp->created;
    out->destroyed = rp->destroyed;
    out->timeouts = rp->timeouts;
    out->create_failures = rp->create_failures;
    out->validation_failures = rp->validation_failures;
    pthread_mutex_unlock(&rp->mu);
}


/* The keeper: keeps min created, evicts idle and expired resources, runs
 * the health checks. */
static void *pool__keeper_main(void *arg)
{
    pool_res *rp = (pool_res *)arg;
    const uint64_t retry_max = (uint64_t)rp->o.create_retry_ms * 64u;
    pool__set_thread_name(rp->name);
    pthread_mutex_lock(&rp->mu);
    while (!rp->stopping) {
        uint64_t now = pool__now_ms(), next = UINT64_MAX;
        pool__rnode *n, *victim = NULL;

        /* 1. keep min created */
        if (!rp->draining && rp->total < rp->o.min) {
            if (now >= rp->retry_at) {
                int rc;
                rp->total++;
                rp->creating++;
                rp->keeper_own = 1;
                pthread_mutex_unlock(&rp->mu);
                rc = pool__res_create(rp, &n);
                pthread_mutex_lock(&rp->mu);
                rp->keeper_own = 0;
                rp->creating--;
                if (rc < 0) {
                    rp->create_failures++;
                    rp->retry_at = pool__now_ms() + rp->backoff;
                    rp->backoff = pool__min_u64(rp->backoff * 2, retry_max);
                    pool__res_slot(rp);
                } else {
                    rp->created++;
                    rp->backoff = (uint64_t)rp->o.create_retry_ms;
                    rp->retry_at = 0;
                    if (pool__res_give(rp, n))
                        pool__res_discard(rp, n);
                }
                continue;
            }
            next = rp->retry_at;
        }

        /* 2. evict expired and long-idle resources (oldest idle last) */
        for (n = rp->idle_tail; n; n = n->prev) {
            if (rp->o.max_lifetime_ms > 0) {
                uint64_t end = n->created + (uint64_t)rp->o.max_lifetime_ms;
                if (now >= end) {
                    victim = n;
                    break;
                }
                next = pool__min_u64(next, end);
            }
            if (rp->o.idle_timeout_ms >= 0 && rp->total > rp->o.min) {
                uint64_t end = n->idle_since + (uint64_t)rp->o.idle_timeout_ms;
                if (now >= end) {
                    victim = n;
                    break;
                }
                next = pool__min_u64(next, end);
            }
        }
        if (victim) {
            pool__res_idle_unlink(rp, victim);
            pool__res_discard(rp, victim);
            continue;
        }

        /* 3. health checks: every idle resource once per interval */
        if (rp->o.health_interval_ms > 0 && rp->o.validate && !rp->draining) {
            if (!rp->next_health)
                rp->next_health = now + (uint64_t)rp->o.health_interval_ms;
            if (now >= rp->next_health) {
                for (n = rp->idle_tail; n; n = n->prev)
                    if (n->checked < rp->next_health)
                        break;
                if (n) {
                    int ok;
                    pool__res_idle_unlink(rp, n);
                    rp->checking++;
                    rp->keeper_own = 1;
                    pthread_mutex_unlock(&rp->mu);
                    ok = rp->o.validate(rp->o.ctx, n->pub.resource) == 0;
                    pthread_mutex_lock(&rp->mu);
                    rp->keeper_own = 0;
                    rp->checking--;
                    n->checked = pool__now_ms();
                    if (!ok) {
                        rp->validation_failures++;
                        pool__res_discard(rp, n);
                    } else if (pool__res_give(rp, n)) {
                        pool__res_discard(rp, n);
                    }
                    pool__res_notify(rp);
                    continue;
                }
                rp->next_health += (uint64_t)rp->o.health_interval_ms;
                if (rp->next_health <= now)
                    rp->next_health = now + (uint64_t)rp->o.health_interval_ms;
            }
            next = pool__min_u64(next, rp->next_health);
        }
        rp->keeper_until = next;
        pool__cond_wait(&rp->keeper_cond, &rp->mu,
                        next == UINT64_MAX ? UINT64_MAX : next * 1000000u + 999999u);
        rp->keeper_until = 0; /* awake: no need to signal */
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

POOL__DEF int pool_res_new(pool_res **out, const pool_res_options *opts)
{
    pool_res *rp;
    int rc;
    POOL_ASSERT(out);
    *out = NULL;
    if (!opts || !opts->create)
        return -EINVAL;
    rp = (pool_res *)POOL_MALLOC(sizeof *rp);
    if (!rp)
        return -ENOMEM;
    memset(rp, 0, sizeof *rp);
    rp->o = *opts;
    if (!rp->o.max)
        rp->o.max = 10;
    if (rp->o.min > rp->o.max) {
        POOL_FREE(rp);
        return -EINVAL;
    }
    if (rp->o.idle_timeout_ms == 0)
        rp->o.idle_timeout_ms = POOL__RES_IDLE_DEFAULT;
    if (rp->o.create_retry_ms <= 0)
        rp->o.create_retry_ms = POOL__RES_RETRY_DEFAULT;
    rp->backoff = (uint64_t)rp->o.create_retry_ms;
    snprintf(rp->name, sizeof rp->name, "%s", rp->o.name && *rp->o.name ? rp->o.name : "pool-res");
    rp->o.name = NULL;
    if ((rc = pthread_mutex_init(&rp->mu, NULL)) != 0) {
        rc = -rc;
        goto fail_mutex;
    }
    if ((rc = pool__cond_init(&rp->keeper_cond)) < 0)
        goto fail_keeper_cond;
    if ((rc = pool__cond_init(&rp->drain_cond)) < 0)
        goto fail_drain_cond;
    if (rp->o.min || rp->o.idle_timeout_ms >= 0 || rp->o.max_lifetime_ms > 0 ||
        (rp->o.health_interval_ms > 0 && rp->o.validate)) {
        rp->has_keeper = 1; /* before the thread exists: it reads it */
        if (pthread_create(&rp->keeper, NULL, pool__keeper_main, rp) != 0) {
            rc = -EAGAIN;
            goto fail_keeper;
        }
    }
    *out = rp;
    return 0;

fail_keeper:
    pthread_cond_destroy(&rp->drain_cond);
fail_drain_cond:
    pthread_cond_destroy(&rp->keeper_cond);
fail_keeper_cond:
    pthread_mutex_destroy(&rp->mu);
fail_mutex:
    POOL_FREE(rp);
    return rc;
}

POOL__DEF int pool_res_free(pool_res *rp)
{
    size_t n;
    pool__rnode *list;
    POOL_ASSERT(rp);
    pthread_mutex_lock(&rp->mu);
    /* an acquirer creating or validating comes back to rp->mu: busy */
    if (rp->in_use || rp->nwaiting || rp->creating + rp->checking > (size_t)rp->keeper_own) {
        pthread_mutex_unlock(&rp->mu);
        return -EBUSY;
    }
    rp->stopping = 1;
    if (rp->has_keeper)
        pthread_cond_signal(&rp->keeper_cond);
    pthread_mutex_unlock(&rp->mu);
    if (rp->has_keeper)
        pthread_join(rp->keeper, NULL);
    list = pool__res_take_idle(rp, &n);
    pool__res_destroy_list(rp, list);
    pthread_mutex_destroy(&rp->mu);
    pthread_cond_destroy(&rp->keeper_cond);
    pthread_cond_destroy(&rp->drain_cond);
    POOL_FREE(rp);
    return 0;
}

#endif /* POOL_IMPLEMENTATION */

/* ---- loop glue: implementation ------------------------------------------------------ */
#if defined(POOL_IMPLEMENTATION) && defined(EVLOOP_H) && !defined(POOL__EVLOOP_IMPLEMENTED)
#define POOL__EVLOOP_IMPLEMENTED

#include <fcntl.h>
#include <sys/stat.h>

struct pool_loop {
    pool__owner owner;   /* first: the core sees a binding as its owner */
    evloop *loop;
    pool_threads *tp;
    int owns_tp;
    evloop_async async;  /* wakes the loop for finished tasks */
    evloop_timer timer;  /* acquire timeouts */
    pool_task *done_head; /* atomic: finished tasks, newest first */
    int sending;          /* atomic: pushers that may still touch async */
    size_t outstanding;   /* tasks and requests whose callback is due */
    int closing, nclosed, dispatching;
    pool_task *free_calls;
    size_t nfree_calls;
    pool_res_req *reqs_head, *reqs_tail;
    pool_task *staged_head, *staged_tail; /* loop tasks not yet handed over */
    size_t nstaged;
    int tick_scheduled;
};

#define POOL__STAGE_MAX 128

static void pool__loop_finalize(pool_loop *pl);

/* Any thread: puts the chain first..last (newest first) on the binding's
 * list and wakes the loop if the list was empty. */
static void pool__loop_push(pool__owner *o, pool_task *first, pool_task *last)
{
    pool_loop *pl = (pool_loop *)(void *)o;
    pool_task *head = __atomic_load_n(&pl->done_head, __ATOMIC_ACQUIRE);
    int counted = 0;
    for (;;) {
        if (!head && !counted) {
            /* this push may wake the loop: the binding must not be freed
             * until the wake-up call is over */
            __atomic_add_fetch(&pl->sending, 1, __ATOMIC_SEQ_CST);
            counted = 1;
        }
        last->next = head;
        if (__atomic_compare_exchange_n(&pl->done_head, &head, first, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            break;
    }
    if (!head)
        evloop_async_send(&pl->async);
    if (counted)
        __atomic_sub_fetch(&pl->sending, 1, __ATOMIC_RELEASE);
}

static void pool__loop_hold(pool_loop *pl)
{
    if (pl->outstanding++ == 0)
        evloop_ref(&pl->async.handle);
}

/* After callbacks: lets the loop end when nothing is outstanding, and
 * finishes a close. */
static void pool__loop_settle(pool_loop *pl)
{
    if (pl->outstanding || pl->dispatching)
        return;
    if (pl->closing)
        pool__loop_finalize(pl);
    else
        evloop_unref(&pl->async.handle);
}

static void pool__loop_async_cb(evloop_async *a)
{
    pool_loop *pl = (pool_loop *)a->handle.data;
    pool_task *list = __atomic_exchange_n(&pl->done_head, (pool_task *)NULL, __ATOMIC_ACQUIRE);
    pool_task *rev = NULL;
    while (list) { /* newest first -> completion order */
        pool_task *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    pl->dispatching++;
    while (rev) {
        pool_task *t = rev;
        rev = t->next;
        pl->outstanding--;
        t->done(t, t->status);
    }
    pl->dispatching--;
    pool__loop_settle(pl);
}

static void pool__loop_closed(evloop_handle *h)
{
    pool_loop *pl = (pool_loop *)h->data;
    if (++pl->nclosed < 2)
        return;
    pthread_mutex_lock(&pl->tp->mu);
    /* workers a DRAIN kept for this binding's work may end now */
    if (--pl->tp->nbindings == 0 && pl->tp->stopping)
        pthread_cond_broadcast(&pl->tp->work_cond);
    pthread_mutex_unlock(&pl->tp->mu);
    if (pl->owns_tp)
        pool_threads_free(pl->tp);
    while (pl->free_calls) {
        pool_task *c = pl->free_calls;
        pl->free_calls = c->next;
        POOL_FREE(c);
    }
    POOL_FREE(pl);
}

static void pool__loop_finalize(pool_loop *pl)
{
    if (pl->closing == 2)
        return;
    pl->closing = 2;
    while (__atomic_load_n(&pl->sending, __ATOMIC_ACQUIRE))
        sched_yield(); /* a worker is inside evloop_async_send: a few instructions */
    evloop_timer_stop(&pl->timer);
    evloop_close(&pl->async.handle, pool__loop_closed);
    evloop_close(&pl->timer.handle, pool__loop_closed);
}

static void pool__loop_arm(pool_loop *pl);
static void pool__loop_timer_cb(evloop_timer *timer);

POOL__DEF int pool_loop_new(pool_loop **out, evloop *loop, pool_threads *tp)
{
    pool_loop *pl;
    int rc;
    POOL_ASSERT(out && loop);
    *out = NULL;
    pl = (pool_loop *)POOL_MALLOC(sizeof *pl);
    if (!pl)
        return -ENOMEM;
    memset(pl, 0, sizeof *pl);
    pl->owner.push = pool__loop_push;
    pl->loop = loop;
    if (!tp) {
        if ((rc = pool_threads_new(&tp, NULL)) < 0) {
            POOL_FREE(pl);
            return rc;
        }
        pl->owns_tp = 1;
    }
    pl->tp = tp;
    if ((rc = evloop_async_init(loop, &pl->async, pool__loop_async_cb)) < 0) {
        if (pl->owns_tp)
            pool_threads_free(tp);
        POOL_FREE(pl);
        return rc;
    }
    evloop_timer_init(loop, &pl->timer); /* cannot fail */
    /* a start sets the callback, which tells pool_loop_owns_handle it is ours */
    if (evloop_timer_start(&pl->timer, pool__loop_timer_cb, UINT32_MAX, 0) == 0)
        evloop_timer_stop(&pl->timer);
    pl->async.handle.data = pl;
    pl->timer.handle.data = pl;
    evloop_unref(&pl->async.handle);
    evloop_unref(&pl->timer.handle);
    pthread_mutex_lock(&tp->mu);
    tp->nbindings++;
    pthread_mutex_unlock(&tp->mu);
    *out = pl;
    return 0;
}

POOL__DEF pool_threads *pool_loop_threads(const pool_loop *pl) { return pl->tp; }

POOL__DEF int pool_loop_owns_handle(const evloop_handle *h)
{
    if (h->type == EVLOOP_ASYNC)
        return ((const evloop_async *)(const void *)h)->cb == pool__loop_async_cb;
    if (h->type == EVLOOP_TIMER)
        return ((const evloop_timer *)(const void *)h)->cb == pool__loop_timer_cb;
    return 0;
}

/* Hands the staged tasks to the pool: one lock for all of them. They were
 * accepted (their submit returned 0), so a DRAIN still runs them; after a
 * CANCEL (or with no worker left) they are cancelled, in submission order. */
static void pool__loop_flush(pool_loop *pl)
{
    pool_threads *tp = pl->tp;
    pool_task *t, *next, *cancelled = NULL, *ctail = NULL;
    size_t n = 0, nc = 0;
    unsigned wake = 0, i;
    int run;
    if (!pl->staged_head)
        return;
    pthread_mutex_lock(&tp->mu);
    run = pool__will_run(tp, 1);
    for (t = pl->staged_head; t; t = next) {
        next = t->next;
        if (run && pool__transition(&t->state, POOL__S_STAGED, POOL__S_QUEUED)) {
            POOL__DLIST_APPEND(tp->head, tp->tail, t);
            n++;
        } else { /* cancelled meanwhile, or the pool will not run it: from
                  * now on a pool_cancel refuses it, as after a loop close */
            pool__transition(&t->state, POOL__S_STAGED, POOL__S_CANCELLING);
            pool__list_append(&cancelled, &ctail, t);
            nc++;
        }
    }
    pl->staged_head = pl->staged_tail = NULL;
    pl->nstaged = 0;
    tp->nqueued += n;
    tp->pending += n;
    tp->submitted += n + nc;
    tp->cancelled += nc;
    while (wake < n && tp->nidle > tp->nwake) {
        tp->nwake++;
        wake++;
    }
    pthread_mutex_unlock(&tp->mu);
    for (i = 0; i < wake; i++)
        pthread_cond_signal(&tp->work_cond);
    for (t = cancelled; t; t = next) {
        next = t->next;
        pool__finish_now(tp, t, -ECANCELED);
    }
}

static void pool__loop_flush_tick(evloop *loop, void *arg)
{
    pool_loop *pl = (pool_loop *)arg;
    (void)loop;
    pl->tick_scheduled = 0;
    pool__loop_flush(pl);
}

/* Submits a loop task whose fields are set. From a loop callback, the
 * first task goes to the pool at once and the following ones are staged
 * and handed over together (every POOL__STAGE_MAX, and when the callback
 * returns), which saves a lock and a wake-up per task in bursts. */
static int pool__loop_submit(pool_loop *pl, pool_task *t)
{
    pool_threads *tp = pl->tp;
    int rc;
    if (pl->closing || __atomic_load_n(&tp->stopping, __ATOMIC_RELAXED))
        return -ESHUTDOWN;
    t->owner = &pl->owner;
    t->status = 0;
    if (pl->staged_head || (pl->tick_scheduled && !tp->o.max_queue)) {
        t->tp = tp;
        t->next = NULL;
        __atomic_store_n(&t->state, POOL__S_STAGED, __ATOMIC_RELAXED);
        if (pl->staged_tail)
            pl->staged_tail->next = t;
        else
            pl->staged_head = t;
        pl->staged_tail = t;
        pool__loop_hold(pl);
        if (++pl->nstaged >= POOL__STAGE_MAX)
            pool__loop_flush(pl);
        return 0;
    }
    if ((rc = pool__submit(tp, t, 1)) < 0) /* the loop thread never waits for room */
        return rc;
    pool__loop_hold(pl);
    if (!tp->o.max_queue && !pl->tick_scheduled &&
        evloop_next_tick(pl->loop, pool__loop_flush_tick, pl) == 0)
        pl->tick_scheduled = 1; /* the next submits of this callback are staged */
    return 0;
}

POOL__DEF int pool_loop_submit(pool_loop *pl, pool_task *task, pool_work_fn work, pool_done_fn done)
{
    POOL_ASSERT(pl && task);
    if (!work || !done)
        return -EINVAL;
    if (pl->closing)
        return -ESHUTDOWN;
    task->work = work;
    task->done = done;
    task->flags = 0;
    return pool__loop_submit(pl, task);
}

static void pool__loop_call_done(pool_task *t, int status)
{
    pool__call *c = (pool__call *)(void *)t;
    pool_loop *pl = (pool_loop *)t->owner;
    pool_call_done_fn done = c->done;
    void *arg = c->arg;
    if (pl->nfree_calls < POOL__KEEP_CALLS) {
        t->next = pl->free_calls;
        pl->free_calls = t;
        pl->nfree_calls++;
    } else {
        POOL_FREE(c);
    }
    if (done)
        done(arg, status);
}

POOL__DEF int pool_loop_call(pool_loop *pl, pool_fn fn, void *arg, pool_call_done_fn done)
{
    pool__call *c;
    int rc;
    POOL_ASSERT(pl);
    if (!fn)
        return -EINVAL;
    if (pl->free_calls) {
        c = (pool__call *)(void *)pl->free_calls;
        pl->free_calls = c->task.next;
        pl->nfree_calls--;
    } else if (!(c = (pool__call *)POOL_MALLOC(sizeof *c))) {
        return -ENOMEM;
    }
    c->task.data = NULL;
    c->task.work = pool__call_work;
    c->task.done = pool__loop_call_done;
    c->task.flags = 0;
    c->fn = fn;
    c->done = done;
    c->arg = arg;
    if ((rc = pool__loop_submit(pl, &c->task)) < 0) {
        c->task.next = pl->free_calls;
        pl->free_calls = &c->task;
        pl->nfree_calls++;
    }
    return rc;
}

/* ---- offloads ---- */

static char *pool__strdup(const char *s)
{
    size_t n;
    char *d;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = (char *)POOL_MALLOC(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void pool__req_done(pool_task *t, int status)
{
    pool_req *req = (pool_req *)t->data;
    POOL_FREE(req->path);
    POOL_FREE(req->service);
    req->path = req->service = NULL;
    if (status)
        req->status = status;
    req->cb(req, req->status);
}

/* Starts an offload; service (allocated, may be NULL) becomes the request's. */
static int pool__req_start(pool_loop *pl, pool_req *req, const char *path, char *service,
                           pool_work_fn work, pool_req_cb cb)
{
    int rc;
    POOL_ASSERT(pl && req);
    req->service = service;
    req->path = NULL;
    if (!cb || !path) {
        POOL_FREE(service);
        return -EINVAL;
    }
    req->status = 0;
    req->buf = NULL;
    req->len = 0;
    req->ai = NULL;
    req->cb = cb;
    if (!(req->path = pool__strdup(path))) {
        POOL_FREE(service);
        return -ENOMEM;
    }
    req->task.data = req;
    req->task.work = work;
    req->task.done = pool__req_done;
    req->task.flags = 0;
    if ((rc = pool__loop_submit(pl, &req->task)) < 0) {
        POOL_FREE(req->path);
        POOL_FREE(req->service);
        req->path = req->service = NULL;
    }
    return rc;
}

static void pool__read_work(pool_task *t)
{
    pool_req *req = (pool_req *)t->data;
    size_t cap, len = 0, max = req->max;
    char *buf;
    struct stat st;
    int fd;
    do
        fd = open(req->path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        req->status = -errno;
        return;
    }
    if (fstat(fd, &st) < 0)
        req->status = -errno;
    else if (S_ISDIR(st.st_mode))
        req->status = -EISDIR;
    else if (st.st_size > 0 && (uint64_t)st.st_size > (uint64_t)max)
        req->status = -EFBIG;
    if (req->status) {
        close(fd);
        return;
    }
    /* the size is a hint: /proc files say 0, files may grow meanwhile */
    cap = (st.st_size > 0 ? (size_t)st.st_size : 4096) + 1;
    if (cap > max + 1)
        cap = max + 1;
    if (!(buf = (char *)POOL_MALLOC(cap))) {
        req->status = -ENOMEM;
        close(fd);
        return;
    }
    for (;;) {
        ssize_t r;
        if (len == cap - 1) { /* full */
            char probe, *nb;
            size_t ncap;
            if (len == max) { /* at the limit: is there more? */
                do
                    r = read(fd, &probe, 1);
                while (r < 0 && errno == EINTR);
                if (r != 0)
                    req->status = r > 0 ? -EFBIG : -errno;
                break;
            }
            ncap = cap - 1 > (max - (cap - 1)) ? max + 1 : (cap - 1) * 2 + 1;
            if (!(nb = (char *)POOL_MALLOC(ncap))) {
                req->status = -ENOMEM;
                break;
            }
            memcpy(nb, buf, len);
            POOL_FREE(buf);
            buf = nb;
            cap = ncap;
        }
        r = read(fd, buf + len, cap - 1 - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            req->status = -errno;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (req->status) {
        POOL_FREE(buf);
        return;
    }
    buf[len] = '\0';
    req->buf = buf;
    req->len = len;
}

POOL__DEF int pool_read_file(pool_loop *pl, pool_req *req, const char *path, size_t max_size,
                             pool_req_cb cb)
{
    req->max = max_size ? max_size : (size_t)64 << 20;
    return pool__req_start(pl, req, path, NULL, pool__read_work, cb);
}

static int pool__write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates a temporary file beside path, close-on-exec from the start: its
 * name, path + ".tmp-" + 6 random characters, is written into tmp (room
 * for plen + 12 bytes). mkostemp would do it but is not POSIX (glibc
 * declares it only with _GNU_SOURCE), so this is the same loop with
 * open(O_EXCL | O_CLOEXEC). Returns the fd or a negative errno. */
static int pool__open_temp(char *tmp, size_t plen)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned counter; /* atomic: two threads never try the same names */
    uint64_t x = pool__now_ns() ^ ((uint64_t)(uintptr_t)tmp << 16) ^
                 (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15u);
    int attempt, i, fd;
    memcpy(tmp + plen, ".tmp-", 5);
    tmp[plen + 11] = '\0';
    for (attempt = 0; attempt < 100; attempt++) {
        uint64_t r;
        x = x * 6364136223846793005u + 1442695040888963407u;
        r = x >> 11;
        for (i = 0; i < 6; i++) {
            tmp[plen + 5 + i] = chars[r % 62];
            r /= 62;
        }
        do
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* fsyncs the directory that holds path (its name built in buf, which has
 * room for path): 0 or a negative errno. File systems that cannot sync a
 * directory (EINVAL, EROFS) count as success. */
static int pool__sync_dir(const char *path, char *buf)
{
    const char *slash = strrchr(path, '/');
    int dfd, rc = 0;
    if (slash == path)
        memcpy(buf, "/", 2);
    else if (slash) {
        memcpy(buf, path, (size_t)(slash - path));
        buf[slash - path] = '\0';
    } else
        memcpy(buf, ".", 2);
    do
        dfd = open(buf, O_RDONLY | O_CLOEXEC);
    while (dfd < 0 && errno == EINTR);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) < 0 && errno != EINVAL && errno != EROFS)
        rc = -errno;
    close(dfd);
    return rc;
}

static void pool__write_work(pool_task *t)
{
    pool_req *req = (pool_req *)t->data;
    size_t plen = strlen(req->path);
    char *tmp = (char *)POOL_MALLOC(plen + 12);
    int fd, rc;
    if (!tmp) {
        req->status = -ENOMEM;
        return;
    }
    memcpy(tmp, req->path, plen);
    if ((fd = pool__open_temp(tmp, plen)) < 0) {
        req->status = fd;
        POOL_FREE(tmp);
        return;
    }
    /* exactly mode, whatever the umask (the temp file was made 0600) */
    rc = fchmod(fd, (mode_t)req->mode) < 0 ? -errno : 0;
    if (!rc)
        rc = pool__write_all(fd, (const char *)req->wdata, req->wlen);
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && !rc && errno != EINTR)
        rc = -errno;
    if (!rc && rename(tmp, req->path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        req->status = rc;
        POOL_FREE(tmp);
        return;
    }
    /* make the rename durable; an error now comes after the rename: path
     * has the new content, but it may not survive a crash */
    req->status = pool__sync_dir(req->path, tmp);
    POOL_FREE(tmp);
}

POOL__DEF int pool_write_file(pool_loop *pl, pool_req *req, const char *path, const void *data,
                              size_t len, unsigned mode, pool_req_cb cb)
{
    if (len && !data)
        return -EINVAL;
    req->wdata = data;
    req->wlen = len;
    req->mode = mode ? mode : 0644;
    return pool__req_start(pl, req, path, NULL, pool__write_work, cb);
}

static void pool__stat_work(pool_task *t)
{
    pool_req *req = (pool_req *)t->data;
    if (stat(req->path, &req->st) < 0)
        req->status = -errno;
}

POOL__DEF int pool_stat(pool_loop *pl, pool_req *req, const char *path, pool_req_cb cb)
{
    return pool__req_start(pl, req, path, NULL, pool__stat_work, cb);
}

static void pool__gai_work(pool_task *t)
{
    pool_req *req = (pool_req *)t->data;
    int rc = getaddrinfo(req->path[0] ? req->path : NULL, req->service,
                         req->has_hints ? &req->hints : NULL, &req->ai);
    if (rc == 0)
        return;
    req->ai = NULL;
    if (rc == EAI_SYSTEM)
        req->status = errno ? -errno : -EIO;
    else if (rc == EAI_MEMORY)
        req->status = -ENOMEM;
    else
        req->status = POOL_EAI_ERROR(rc);
}

POOL__DEF int pool_getaddrinfo(pool_loop *pl, pool_req *req, const char *node, const char *service,
                               const struct addrinfo *hints, pool_req_cb cb)
{
    char *svc;
    POOL_ASSERT(req);
    if (!node && !service)
        return -EINVAL;
    req->has_hints = hints != NULL;
    if (hints) {
        memset(&req->hints, 0, sizeof req->hints);
        req->hints.ai_flags = hints->ai_flags;
        req->hints.ai_family = hints->ai_family;
        req->hints.ai_socktype = hints->ai_socktype;
        req->hints.ai_protocol = hints->ai_protocol;
    }
    /* node is kept in path ("" for none), service beside it */
    svc = service ? pool__strdup(service) : NULL;
    if (service && !svc)
        return -ENOMEM;
    return pool__req_start(pl, req, node ? node : "", svc, pool__gai_work, cb);
}

POOL__DEF int pool_req_cancel(pool_req *req) { return pool_cancel(&req->task); }

POOL__DEF void pool_req_cleanup(pool_req *req)
{
    POOL_FREE(req->buf);
    req->buf = NULL;
    req->len = 0;
    if (req->ai)
        freeaddrinfo(req->ai);
    req->ai = NULL;
}

/* ---- resource pool on a loop ---- */

static void pool__loop_req_unlink(pool_loop *pl, pool_res_req *r)
{
    if (!r->inlist)
        return;
    if (r->lprev)
        r->lprev->lnext = r->lnext;
    else
        pl->reqs_head = r->lnext;
    if (r->lnext)
        r->lnext->lprev = r->lprev;
    else
        pl->reqs_tail = r->lprev;
    r->lnext = r->lprev = NULL;
    r->inlist = 0;
}

static void pool__loop_req_insert(pool_loop *pl, pool_res_req *r)
{
    pool_res_req *after = pl->reqs_tail;
    while (after && after->deadline > r->deadline)
        after = after->lprev;
    r->lprev = after;
    r->lnext = after ? after->lnext : pl->reqs_head;
    if (r->lnext)
        r->lnext->lprev = r;
    else
        pl->reqs_tail = r;
    if (after)
        after->lnext = r;
    else
        pl->reqs_head = r;
    r->inlist = 1;
}

static void pool__loop_arm(pool_loop *pl)
{
    pool_res_req *r = pl->reqs_head;
    uint64_t now = evloop_now(pl->loop);
    if (!r || r->deadline == UINT64_MAX || pl->closing == 2) {
        evloop_timer_stop(&pl->timer);
        return;
    }
    /* -ENOMEM from the timer heap: the timeout fires with the next one */
    (void)evloop_timer_start(&pl->timer, pool__loop_timer_cb, r->deadline > now ? r->deadline - now : 0, 0);
}

static void pool__loop_timer_cb(evloop_timer *timer)
{
    pool_loop *pl = (pool_loop *)timer->handle.data;
    uint64_t now = evloop_now(pl->loop);
    pool_res_req *r, *next;
    pl->dispatching++;
    for (r = pl->reqs_head; r && r->deadline <= now; r = next) {
        pool_res *rp = r->rp;
        int timed_out = 0;
        next = r->lnext;
        pthread_mutex_lock(&rp->mu);
        if (r->w.state == POOL__W_WAITING) {
            pool__res_wq_remove(rp, &r->w);
            r->w.state = POOL__W_OVER;
            rp->timeouts++;
            timed_out = 1;
        }
        pthread_mutex_unlock(&rp->mu);
        pool__loop_req_unlink(pl, r);
        if (timed_out) {
            pl->outstanding--;
            r->cb(r, -ETIMEDOUT, NULL);
        }
    }
    pl->dispatching--;
    pool__loop_arm(pl);
    pool__loop_settle(pl);
}

/* On the loop: delivers an acquire request. */
static void pool__res_req_done(pool_task *t, int status)
{
    pool_res_req *r = (pool_res_req *)t->data;
    pool__rnode *n = (pool__rnode *)r->node;
    pool__loop_req_unlink(r->pl, r);
    if (status) { /* the prepare task was cancelled: give back what it held */
        pool_res *rp = r->rp;
        r->node = NULL;
        pthread_mutex_lock(&rp->mu);
        if (n) {
            rp->in_use--;
            if (pool__res_give(rp, n))
                pool__res_discard(rp, n);
        } else if (r->w.state == POOL__W_SLOT) {
            rp->creating--;
            pool__res_slot(rp);
        }
        pthread_mutex_unlock(&rp->mu);
        n = NULL;
    } else {
        status = r->status;
    }
    r->node = NULL;
    r->cb(r, status, status == 0 && n ? &n->pub : NULL);
}

/* On a worker: validates or creates for an acquire request. */
static void pool__res_req_work(pool_task *t)
{
    pool_res_req *r = (pool_res_req *)t->data;
    pool__rnode *n = (pool__rnode *)r->node;
    r->status = pool__res_prepare(r->rp, &n);
    r->node = n;
    if (r->status == 0) {
        pthread_mutex_lock(&r->rp->mu);
        r->rp->acquired++;
        pthread_mutex_unlock(&r->rp->mu);
    }
}

static int pool__res_needs_prepare(pool_res *rp, pool__rnode *n)
{
    return !n || (rp->o.validate_on_borrow && rp->o.validate) ||
           pool__res_expired(rp, n, pool__now_ms());
}

/* rp->mu held: the request got a resource (w->node) or a slot. */
static int pool__res_wake_async(pool__waiter *w)
{
    pool_res_req *r = (pool_res_req *)w->req;
    pool_res *rp = r->rp;
    r->node = w->node;
    if (pool__res_needs_prepare(rp, (pool__rnode *)r->node)) {
        r->task.status = 0;
        if (pool__submit(r->pl->tp, &r->task, 1) < 0) {
            /* no worker left to run it: the request fails */
            r->node = NULL;
            r->status = -ESHUTDOWN;
            w->state = POOL__W_OVER;
            r->pl->owner.push(&r->pl->owner, &r->task, &r->task);
            return -1;
        }
        return 0;
    }
    r->status = 0;
    rp->acquired++;
    r->task.status = 0;
    r->pl->owner.push(&r->pl->owner, &r->task, &r->task);
    return 0;
}

POOL__DEF int pool_res_acquire_async(pool_res *rp, pool_loop *pl, pool_res_req *req, int timeout_ms,
                                     pool_res_cb cb)
{
    pool__rnode *n = NULL;
    int grant = 0;
    POOL_ASSERT(rp && pl && req);
    if (!cb)
        return -EINVAL;
    if (pl->closing)
        return -ESHUTDOWN;
    req->rp = rp;
    req->pl = pl;
    req->cb = cb;
    req->node = NULL;
    req->status = 0;
    req->inlist = 0;
    req->lnext = req->lprev = NULL;
    req->task.data = req;
    req->task.work = pool__res_req_work;
    req->task.done = pool__res_req_done;
    req->task.owner = &pl->owner;
    req->task.flags = POOL__T_INTERNAL;
    req->task.status = 0;
    req->task.tp = pl->tp;
    memset(&req->w, 0, sizeof req->w);
    req->w.req = req;
    req->w.wake = pool__res_wake_async;

    pthread_mutex_lock(&rp->mu);
    if (rp->draining) {
        pthread_mutex_unlock(&rp->mu);
        return -ESHUTDOWN;
    }
    if (!rp->wq_head && rp->idle_head) {
        n = rp->idle_head;
        pool__res_idle_unlink(rp, n);
        rp->in_use++;
        req->w.state = POOL__W_GRANTED;
        grant = 1;
    } else if (!rp->wq_head && rp->total < rp->o.max) {
        rp->total++;
        rp->creating++;
        req->w.state = POOL__W_SLOT;
        grant = 1;
    } else if (timeout_ms == 0 || (rp->o.max_waiters && rp->nwaiting >= rp->o.max_waiters)) {
        pthread_mutex_unlock(&rp->mu);
        return -EAGAIN;
    } else {
        req->w.state = POOL__W_WAITING;
        pool__res_wq_push(rp, &req->w);
    }
    if (grant) {
        req->node = n;
        if (pool__res_needs_prepare(rp, n)) {
            if (pool__submit(pl->tp, &req->task, 1) < 0) {
                /* no worker to create or validate: give back, fail */
                if (n) {
                    rp->in_use--;
                    if (pool__res_give(rp, n))
                        pool__res_discard(rp, n);
                } else {
                    rp->creating--;
                    pool__res_slot(rp);
                }
                pthread_mutex_unlock(&rp->mu);
                return -ESHUTDOWN;
            }
        } else {
            rp->acquired++;
            pl->owner.push(&pl->owner, &req->task, &req->task);
        }
    }
    pthread_mutex_unlock(&rp->mu);
    req->deadline = timeout_ms < 0 ? UINT64_MAX : evloop_now(pl->loop) + (uint64_t)timeout_ms;
    pool__loop_hold(pl);
    pool__loop_req_insert(pl, req);
    if (pl->reqs_head == req && timeout_ms > 0)
        pool__loop_arm(pl);
    return 0;
}

POOL__DEF int pool_res_cancel(pool_res_req *req)
{
    pool_res *rp = req->rp;
    int waiting;
    pthread_mutex_lock(&rp->mu);
    waiting = req->w.state == POOL__W_WAITING;
    if (waiting) {
        pool__res_wq_remove(rp, &req->w);
        req->w.state = POOL__W_OVER;
    }
    pthread_mutex_unlock(&rp->mu);
    if (!waiting)
        return -EBUSY;
    req->status = -ECANCELED;
    req->task.status = 0;
    req->pl->owner.push(&req->pl->owner, &req->task, &req->task);
    return 0;
}

POOL__DEF void pool_loop_close(pool_loop *pl)
{
    pool_threads *tp = pl->tp;
    pool_task *t, *next, *list = NULL, *tail = NULL;
    pool_res_req *r, *rnext;
    size_t nstaged = 0;
    if (pl->closing)
        return;
    pl->closing = 1;
    /* take the staged tasks and the binding's queued ones, under the lock
     * and marked CANCELLING (a pool_cancel meanwhile refuses them) */
    pthread_mutex_lock(&tp->mu);
    for (t = pl->staged_head; t; t = t->next) {
        pool__transition(&t->state, POOL__S_STAGED, POOL__S_CANCELLING);
        nstaged++;
    }
    list = pl->staged_head;
    tail = pl->staged_tail;
    pl->staged_head = pl->staged_tail = NULL;
    pl->nstaged = 0;
    tp->submitted += nstaged;
    tp->cancelled += nstaged;
    for (t = tp->head; t; t = next) {
        next = t->next;
        if (t->owner != &pl->owner)
            continue;
        pool__dequeue_cancelled(tp, t);
        pool__list_append(&list, &tail, t);
    }
    pool__dequeued(tp);
    pthread_mutex_unlock(&tp->mu);
    /* their done callbacks run on the loop, with -ECANCELED */
    for (t = list; t; t = next) {
        next = t->next;
        pool__finish_now(tp, t, -ECANCELED);
    }
    /* withdraw the waiting acquire requests */
    for (r = pl->reqs_head; r; r = rnext) {
        rnext = r->lnext;
        pool_res_cancel(r);
    }
    pool__loop_settle(pl);
}

#endif /* loop glue implementation */

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
