/* build: tsan poll */
/* Tests of pool.h's loop glue: completions on the loop thread, offloads,
 * resource acquires with loop callbacks. (tests/test_pool_alone.c covers
 * the pools without a loop.) */
#define EVLOOP_IMPLEMENTATION
#define POOL_IMPLEMENTATION
#include "../evloop.h"
#include "../pool.h"
#include "test.h"
#include "pool_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <linux/capability.h>
#include <sys/syscall.h>
#endif


/* ---- helpers --------------------------------------------------------------- */

static evloop *new_loop(void)
{
    evloop *loop = NULL;
    if (evloop_new(&loop, NULL) != 0) {
        fprintf(stderr, "evloop_new failed\n");
        exit(1);
    }
    return loop;
}

static void close_unowned(evloop_handle *h, void *arg)
{
    (void)arg;
    if (!evloop_is_closing(h) && !pool_loop_owns_handle(h))
        evloop_close(h, NULL);
}

/* Closes the binding and whatever else is left, then frees the loop. */
static void finish(evloop *loop, pool_loop *pl)
{
    if (pl)
        pool_loop_close(pl);
    evloop_walk(loop, close_unowned, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(evloop_free(loop), ==, 0);
}

static int guard_fired;
static void on_guard(evloop_timer *t)
{
    guard_fired = 1;
    fprintf(stderr, "guard timer fired: the loop did not finish in time\n");
    evloop_stop(t->handle.loop);
}

/* A timer that stops a stuck loop after ms; unreferenced. */
static void guard(evloop *loop, evloop_timer *t, uint64_t ms)
{
    guard_fired = 0;
    evloop_timer_init(loop, t);
    evloop_timer_start(t, on_guard, ms, 0);
    evloop_unref(&t->handle);
}

static pthread_t loop_thread;

/* ---- tasks completed on the loop ---------------------------------------------- */

typedef struct many {
    pool_loop *pl;
    pool_task *tasks;
    unsigned char *ran;
    size_t n, done, off_loop, bad_status;
} many;

static many M;

static void mark_ran(pool_task *t) { M.ran[t - M.tasks]++; }
static void count_done(pool_task *t, int status)
{
    (void)t;
    M.done++;
    if (!pthread_equal(pthread_self(), loop_thread))
        M.off_loop++;
    if (status != 0)
        M.bad_status++;
}

static void submit_all(evloop_timer *t)
{
    size_t i;
    (void)t;
    for (i = 0; i < M.n; i++)
        if (pool_loop_submit(M.pl, &M.tasks[i], mark_ran, count_done) != 0) {
            fprintf(stderr, "submit %zu failed\n", i);
            return;
        }
}

TEST(loop_tasks_complete_on_the_loop_thread)
{
    evloop *loop = new_loop();
    evloop_timer start, g;
    size_t i, bad = 0;
    memset(&M, 0, sizeof M);
    M.n = TEST_SANITIZED ? 50000 : 1000000;
    M.tasks = (pool_task *)calloc(M.n, sizeof *M.tasks);
    M.ran = (unsigned char *)calloc(M.n, 1);
    REQUIRE(M.tasks && M.ran);
    loop_thread = pthread_self();
    REQUIRE_INT(pool_loop_new(&M.pl, loop, NULL), ==, 0);
    guard(loop, &g, 60000);
    evloop_timer_init(loop, &start);
    evloop_timer_start(&start, submit_all, 0, 0);
    /* the loop ends by itself: an idle binding does not keep it alive */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_UINT(M.done, ==, M.n);
    CHECK_UINT(M.off_loop, ==, 0);
    CHECK_UINT(M.bad_status, ==, 0);
    for (i = 0; i < M.n; i++)
        bad += M.ran[i] != 1;
    CHECK_UINT(bad, ==, 0);
    finish(loop, M.pl);
    free(M.tasks);
    free(M.ran);
}

static void nop_work(pool_task *t) { (void)t; }

static int call_done_status = 1, call_ran;
static pthread_t call_done_thread;
static void call_fn(void *arg) { *(int *)arg = 42; }
static void call_done(void *arg, int status)
{
    call_ran = *(int *)arg;
    call_done_status = status;
    call_done_thread = pthread_self();
}

TEST(loop_call_and_shared_pool)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_task t;
    int v = 0;
    loop_thread = pthread_self();
    REQUIRE_INT(pool_threads_new(&tp, NULL), ==, 0);
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    CHECK(pool_loop_threads(pl) == tp);
    CHECK_INT(pool_threads_free(tp), ==, -EBUSY); /* bound */
    REQUIRE_INT(pool_loop_call(pl, call_fn, &v, call_done), ==, 0);
    CHECK_INT(pool_loop_call(pl, NULL, NULL, NULL), ==, -EINVAL);
    CHECK_INT(pool_loop_submit(pl, &t, nop_work, NULL), ==, -EINVAL); /* done required */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(call_done_status, ==, 0);
    CHECK_INT(call_ran, ==, 42);
    CHECK(pthread_equal(call_done_thread, loop_thread));
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0); /* unbound now */
}

/* The gate the loop tests hold their tasks at (a loop task's data is the
 * test's: it says which task it is). */
static gate worker_gate = GATE_INIT;
static void held_work(pool_task *t)
{
    (void)t;
    gate_pass(&worker_gate);
}

/* A pool of one worker bound to loop (*tp, *pl), and worker_gate closed. */
static int new_bound_pool(evloop *loop, pool_threads **tp, pool_loop **pl)
{
    pool_threads_options o = threads_opts(1);
    int rc;
    gate_reset(&worker_gate);
    if ((rc = pool_threads_new(tp, &o)) != 0)
        return rc;
    return pool_loop_new(pl, loop, *tp);
}

static int st_of[8];
static pool_loop *close_pl;
static void record_status(pool_task *t, int status) { st_of[(intptr_t)t->data] = status; }
static void open_gate_cb(evloop_timer *t)
{
    (void)t;
    gate_open(&worker_gate);
}

TEST(loop_cancel_staged_and_running)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_task running, a, b;
    evloop_timer opener;
    memset(st_of, 0x7f, sizeof st_of);
    REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
    running.data = (void *)(intptr_t)0;
    a.data = (void *)(intptr_t)1;
    b.data = (void *)(intptr_t)2;
    REQUIRE_INT(pool_loop_submit(pl, &running, held_work, record_status), ==, 0);
    REQUIRE_INT(pool_loop_submit(pl, &a, nop_work, record_status), ==, 0); /* staged */
    REQUIRE_INT(pool_loop_submit(pl, &b, nop_work, record_status), ==, 0);
    CHECK_INT(pool_cancel(&a), ==, 0); /* staged: cancelled before it reached the pool */
    CHECK_INT(st_of[1], ==, 0x7f7f7f7f); /* done runs later, on the loop */
    evloop_timer_init(loop, &opener);
    evloop_timer_start(&opener, open_gate_cb, 20, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_ONCE), >=, 0);
    gate_wait_for(&worker_gate, 1);
    CHECK_INT(pool_cancel(&running), ==, -EBUSY);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(st_of[0], ==, 0);
    CHECK_INT(st_of[1], ==, -ECANCELED);
    CHECK_INT(st_of[2], ==, 0);
    evloop_close(&opener.handle, NULL);
    finish(loop, pl);
    pool_threads_free(tp);
}

static int close_cb_count;
static void closes_binding(pool_task *t, int status)
{
    record_status(t, status);
    close_cb_count++;
    if ((intptr_t)t->data == 0)
        pool_loop_close(close_pl); /* from a done callback */
}

static void kick_gate(evloop_timer *t) { open_gate_cb(t); }

TEST(loop_close_cancels_queued_tasks)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_task running, blocker, q[5];
    evloop_timer opener;
    gate h;
    int i;
    gate_init(&h);
    memset(st_of, 0x7f, sizeof st_of);
    close_cb_count = 0;
    REQUIRE_INT(new_bound_pool(loop, &tp, &close_pl), ==, 0);
    running.data = (void *)(intptr_t)0;
    REQUIRE_INT(pool_loop_submit(close_pl, &running, held_work, closes_binding), ==, 0);
    gate_wait_for(&worker_gate, 1);
    /* the one worker: `running`, then a task of no binding that holds it,
     * then q[]. One at a time (the worker's tasks are slow): q[] stay
     * queued until running's done callback closes the binding. */
    blocker.data = &h;
    REQUIRE_INT(pool_submit(tp, &blocker, gate_work, NULL), ==, 0);
    for (i = 0; i < 5; i++) {
        q[i].data = (void *)(intptr_t)(i + 1);
        REQUIRE_INT(pool_loop_submit(close_pl, &q[i], nop_work, closes_binding), ==, 0);
    }
    evloop_timer_init(loop, &opener);
    evloop_timer_start(&opener, kick_gate, 10, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(close_cb_count, ==, 6);
    CHECK_INT(st_of[0], ==, 0);
    for (i = 1; i <= 5; i++)
        CHECK_INT(st_of[i], ==, -ECANCELED);
    evloop_close(&opener.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(evloop_free(loop), ==, 0); /* the binding closed its handles */
    gate_open(&h);
    CHECK_INT(pool_wait(&blocker, -1), ==, 0);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    gate_destroy(&h);
}

TEST(loop_close_with_work_queued_cancels_it)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_task running, q[5];
    int i;
    memset(st_of, 0x7f, sizeof st_of);
    REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
    running.data = (void *)(intptr_t)0;
    REQUIRE_INT(pool_loop_submit(pl, &running, held_work, record_status), ==, 0);
    gate_wait_for(&worker_gate, 1);
    for (i = 0; i < 5; i++) {
        q[i].data = (void *)(intptr_t)(i + 1);
        REQUIRE_INT(pool_loop_submit(pl, &q[i], nop_work, record_status), ==, 0);
    }
    pool_loop_close(pl);
    {
        pool_task late;
        CHECK_INT(pool_loop_submit(pl, &late, nop_work, record_status), ==, -ESHUTDOWN);
    }
    gate_open(&worker_gate);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(st_of[0], ==, 0);
    for (i = 1; i <= 5; i++)
        CHECK_INT(st_of[i], ==, -ECANCELED);
    CHECK_INT(evloop_free(loop), ==, 0);
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

static void *shutdown_thread(void *arg)
{
    pool_threads_shutdown((pool_threads *)arg, POOL_SHUTDOWN_CANCEL);
    return NULL;
}

TEST(loop_tasks_told_of_an_immediate_shutdown)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_task running, q[5];
    pthread_t th;
    int i;
    memset(st_of, 0x7f, sizeof st_of);
    REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
    running.data = (void *)(intptr_t)0;
    REQUIRE_INT(pool_loop_submit(pl, &running, held_work, record_status), ==, 0);
    gate_wait_for(&worker_gate, 1);
    for (i = 0; i < 5; i++) {
        q[i].data = (void *)(intptr_t)(i + 1);
        REQUIRE_INT(pool_loop_submit(pl, &q[i], nop_work, record_status), ==, 0);
    }
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_NOWAIT), ==, 1); /* hand them over */
    pthread_create(&th, NULL, shutdown_thread, tp);
    pthread_join(th, NULL);
    {
        pool_task late;
        late.data = (void *)(intptr_t)6;
        CHECK_INT(pool_loop_submit(pl, &late, nop_work, record_status), ==, -ESHUTDOWN);
    }
    gate_open(&worker_gate);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(st_of[0], ==, 0);
    for (i = 1; i <= 5; i++)
        CHECK_INT(st_of[i], ==, -ECANCELED);
    CHECK_INT(st_of[6], ==, 0x7f7f7f7f); /* a failed submit never calls done */
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

/* ---- shutdown with work a binding accepted ------------------------------------------ */

static pool_threads *sh_tp;
static pool_loop *sh_pl;
static pool_task sh_t[4];
static int sh_status[4], sh_order[4], sh_norder, sh_how;
static void sh_done(pool_task *t, int status)
{
    int i = (int)(t - sh_t);
    sh_status[i] = status;
    sh_order[sh_norder++] = i;
}
static void submit_then_shut_down(evloop_timer *tm)
{
    int i;
    (void)tm;
    /* the first at once (held at the gate, so running); the others staged */
    sh_t[0].data = NULL;
    CHECK_INT(pool_loop_submit(sh_pl, &sh_t[0], held_work, sh_done), ==, 0);
    gate_wait_for(&worker_gate, 1);
    for (i = 1; i < 4; i++)
        CHECK_INT(pool_loop_submit(sh_pl, &sh_t[i], nop_work, sh_done), ==, 0);
    CHECK_INT(pool_threads_shutdown(sh_tp, sh_how), ==, 0);
    CHECK_INT(pool_loop_submit(sh_pl, &sh_t[3], nop_work, sh_done), ==, -ESHUTDOWN);
    gate_open(&worker_gate);
}

static void run_staged_then_shutdown(int how)
{
    evloop *loop = new_loop();
    evloop_timer tm, g;
    memset(sh_status, 0x7f, sizeof sh_status);
    sh_norder = 0;
    sh_how = how;
    REQUIRE_INT(new_bound_pool(loop, &sh_tp, &sh_pl), ==, 0);
    guard(loop, &g, 5000);
    evloop_timer_init(loop, &tm);
    evloop_timer_start(&tm, submit_then_shut_down, 0, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(sh_norder, ==, 4);
    CHECK_INT(sh_status[0], ==, 0); /* running: finishes either way */
    evloop_close(&g.handle, NULL);
    finish(loop, sh_pl);
    CHECK_INT(pool_threads_free(sh_tp), ==, 0);
}

/* Tasks staged in a callback were accepted: a DRAIN runs them, in order. */
TEST(drain_runs_staged_loop_tasks)
{
    int i;
    run_staged_then_shutdown(POOL_SHUTDOWN_DRAIN);
    for (i = 0; i < 4; i++) {
        CHECK_INT(sh_status[i], ==, 0);
        CHECK_INT(sh_order[i], ==, i);
    }
}

/* A CANCEL cancels them, each told once, in submission order. */
TEST(cancel_shutdown_cancels_staged_loop_tasks_in_order)
{
    int i, k = 1;
    run_staged_then_shutdown(POOL_SHUTDOWN_CANCEL);
    for (i = 1; i < 4; i++)
        CHECK_INT(sh_status[i], ==, -ECANCELED);
    for (i = 0; i < 4; i++)
        if (sh_order[i] != 0)
            CHECK_INT(sh_order[i], ==, k++);
}

enum { RACE_N = 200 };
static pool_task race_t[RACE_N];
static int race_calls[RACE_N], race_bad;
static void race_done(pool_task *t, int status)
{
    race_calls[t - race_t]++;
    if (status != -ECANCELED)
        race_bad++;
}

/* pool_cancel from another thread while the loop closes the binding: each
 * task is told once, and the pool's queue and counts stay sound. */
TEST(loop_close_races_pool_cancel)
{
    int round, rounds = TEST_SANITIZED ? 10 : 50;
    for (round = 0; round < rounds && !test__cur_failed; round++) {
        evloop *loop = new_loop();
        pool_threads_stats st;
        pool_threads *tp;
        pool_loop *pl;
        pool_task running;
        canceller c;
        int i, once = 0;
        memset(race_calls, 0, sizeof race_calls);
        race_bad = 0;
        REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
        REQUIRE_INT(hold_worker(tp, &running, &worker_gate), ==, 0);
        for (i = 0; i < RACE_N; i++)
            REQUIRE_INT(pool_loop_submit(pl, &race_t[i], nop_work, race_done), ==, 0);
        CHECK_INT(evloop_run(loop, EVLOOP_RUN_NOWAIT), ==, 1); /* all queued now */
        canceller_start(&c, race_t, RACE_N);
        pool_loop_close(pl);
        pthread_join(c.th, NULL);
        CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
        for (i = 0; i < RACE_N; i++)
            once += race_calls[i] == 1;
        CHECK_INT(once, ==, RACE_N);
        CHECK_INT(race_bad, ==, 0);
        CHECK_INT(c.ok + c.busy, ==, RACE_N);
        pool_threads_get_stats(tp, &st);
        CHECK_UINT(st.queued, ==, 0);
        CHECK_UINT(st.pending, ==, 1); /* running */
        CHECK_UINT(st.cancelled, ==, RACE_N);
        CHECK_INT(evloop_free(loop), ==, 0);
        gate_open(&worker_gate);
        CHECK_INT(pool_threads_free(tp), ==, 0);
    }
}

/* ---- offloads ------------------------------------------------------------------ */

static char tmpdir[64];
static int req_status[8];
static pool_req reqs[8];
static void req_cb(pool_req *req, int status)
{
    CHECK_INT(status, ==, req->status);
    CHECK(pthread_equal(pthread_self(), loop_thread));
    req_status[req - reqs] = status;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

TEST(offloads_write_read_stat)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    char path[128], bad[160];
    static const char text[] = "hello, atomic world\n";
    int i;
    loop_thread = pthread_self();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pool_test_%d", (int)getpid());
    mkdir(tmpdir, 0700);
    snprintf(path, sizeof path, "%s/data.txt", tmpdir);
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    memset(req_status, 0x7f, sizeof req_status);

    REQUIRE_INT(pool_write_file(pl, &reqs[0], path, text, sizeof text - 1, 0600, req_cb), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(req_status[0], ==, 0);
    CHECK_INT(count_dir_entries(tmpdir), ==, 1); /* no temporary file left */

    REQUIRE_INT(pool_read_file(pl, &reqs[1], path, 0, req_cb), ==, 0);
    REQUIRE_INT(pool_stat(pl, &reqs[2], path, req_cb), ==, 0);
    snprintf(bad, sizeof bad, "%s/missing", tmpdir);
    REQUIRE_INT(pool_read_file(pl, &reqs[3], bad, 0, req_cb), ==, 0);
    REQUIRE_INT(pool_read_file(pl, &reqs[4], path, 5, req_cb), ==, 0); /* too big */
    REQUIRE_INT(pool_read_file(pl, &reqs[5], tmpdir, 0, req_cb), ==, 0);
    snprintf(bad, sizeof bad, "%s/no/such/dir/file", tmpdir);
    REQUIRE_INT(pool_write_file(pl, &reqs[6], bad, text, 3, 0, req_cb), ==, 0);
    REQUIRE_INT(pool_read_file(pl, &reqs[7], "/proc/self/status", 0, req_cb), ==, 0);
    CHECK_INT(pool_read_file(pl, &reqs[0], NULL, 0, req_cb), ==, -EINVAL);
    CHECK_INT(pool_write_file(pl, &reqs[0], path, NULL, 3, 0, req_cb), ==, -EINVAL);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);

    CHECK_INT(req_status[1], ==, 0);
    CHECK_MEM(reqs[1].buf, reqs[1].len, text);
    CHECK_INT(reqs[1].buf[reqs[1].len], ==, 0);
    CHECK_INT(req_status[2], ==, 0);
    CHECK_INT((int)reqs[2].st.st_size, ==, (int)sizeof text - 1);
    CHECK_INT((int)(reqs[2].st.st_mode & 0777), ==, 0600);
    CHECK_INT(req_status[3], ==, -ENOENT);
    CHECK_INT(req_status[4], ==, -EFBIG);
    CHECK_INT(req_status[5], ==, -EISDIR);
    CHECK_INT(req_status[6], ==, -ENOENT);
    if (access("/proc/self/status", R_OK) == 0) {
        CHECK_INT(req_status[7], ==, 0); /* size 0 in stat: read to the end */
        CHECK(reqs[7].len > 0 && strstr(reqs[7].buf, "Name:") != NULL);
    }
    for (i = 0; i < 8; i++)
        pool_req_cleanup(&reqs[i]);
    pool_req_cleanup(&reqs[1]); /* twice is fine */

    /* replace: the new content, still one file */
    REQUIRE_INT(pool_write_file(pl, &reqs[0], path, "v2", 2, 0, req_cb), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    REQUIRE_INT(pool_read_file(pl, &reqs[1], path, 2, req_cb), ==, 0); /* exactly max */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(req_status[1], ==, 0);
    CHECK_MEM(reqs[1].buf, reqs[1].len, "v2");
    CHECK_INT(count_dir_entries(tmpdir), ==, 1);
    pool_req_cleanup(&reqs[1]);
    unlink(path);
    rmdir(tmpdir);
    finish(loop, pl);
}

TEST(offload_getaddrinfo)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    struct addrinfo hints;
    loop_thread = pthread_self();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    memset(req_status, 0x7f, sizeof req_status);
    REQUIRE_INT(pool_getaddrinfo(pl, &reqs[0], "127.0.0.1", "8080", &hints, req_cb), ==, 0);
    REQUIRE_INT(pool_getaddrinfo(pl, &reqs[1], "not-a-number", NULL, &hints, req_cb), ==, 0);
    CHECK_INT(pool_getaddrinfo(pl, &reqs[2], NULL, NULL, NULL, req_cb), ==, -EINVAL);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(req_status[0], ==, 0);
    REQUIRE(reqs[0].ai != NULL);
    CHECK_INT(reqs[0].ai->ai_family, ==, AF_INET);
    CHECK_INT(evloop_addr_port(reqs[0].ai->ai_addr), ==, 8080);
    CHECK_INT(req_status[1], <, -POOL_EAI_BASE);
    CHECK(pool_eai_code(req_status[1]) != 0);
    CHECK(strlen(pool_strerror(req_status[1])) > 0);
    CHECK(reqs[1].ai == NULL);
    pool_req_cleanup(&reqs[0]);
    pool_req_cleanup(&reqs[1]);
    finish(loop, pl);
}

TEST(offload_cancel)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_task running;
    loop_thread = pthread_self();
    REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &worker_gate), ==, 0);
    memset(req_status, 0x7f, sizeof req_status);
    REQUIRE_INT(pool_stat(pl, &reqs[0], "/", req_cb), ==, 0);      /* queued */
    REQUIRE_INT(pool_read_file(pl, &reqs[1], "/", 0, req_cb), ==, 0); /* staged */
    REQUIRE_INT(pool_stat(pl, &reqs[2], "/", req_cb), ==, 0);      /* staged */
    CHECK_INT(pool_req_cancel(&reqs[0]), ==, 0);
    CHECK_INT(pool_req_cancel(&reqs[1]), ==, 0);
    CHECK_INT(pool_req_cancel(&reqs[1]), ==, -EBUSY); /* already cancelled */
    CHECK_INT(req_status[0], ==, 0x7f7f7f7f);         /* cb runs on the loop, later */
    gate_open(&worker_gate);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(req_status[0], ==, -ECANCELED);
    CHECK_INT(req_status[1], ==, -ECANCELED);
    CHECK(reqs[1].buf == NULL);
    CHECK_INT(req_status[2], ==, 0);
    CHECK(S_ISDIR(reqs[2].st.st_mode));
    CHECK_INT(pool_req_cancel(&reqs[2]), ==, -EBUSY); /* finished */
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

/* Runs one pool_write_file on pl and returns its status. */
static int write_now(evloop *loop, pool_loop *pl, const char *path, const void *data, size_t len)
{
    memset(req_status, 0x7f, sizeof req_status);
    if (pool_write_file(pl, &reqs[0], path, data, len, 0, req_cb) != 0)
        return 1;
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    return req_status[0];
}

/* Errors after the temporary file exists (the rename fails; a write fails)
 * remove it and leave the target as it was. */
TEST(write_errors_leave_no_temporary_file)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    char dir[64], sub[96], inner[128], path[96];
    size_t big = (size_t)2 << 20;
    char *data = (char *)calloc(big, 1);
    struct rlimit old, lim;
    void (*old_xfsz)(int);
    struct stat st;
    int rc;
    REQUIRE(data);
    loop_thread = pthread_self();
    snprintf(dir, sizeof dir, "/tmp/pool_werr_%d", (int)getpid());
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(inner, sizeof inner, "%s/sub/file", dir);
    snprintf(path, sizeof path, "%s/big", dir);
    REQUIRE_INT(mkdir(dir, 0700), ==, 0);
    REQUIRE_INT(mkdir(sub, 0700), ==, 0);
    close(open(inner, O_WRONLY | O_CREAT, 0600));
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);

    /* the rename fails: the target is a directory that is not empty */
    rc = write_now(loop, pl, sub, "abc", 3);
    CHECK(rc < 0 && rc != 0x7f7f7f7f);
    CHECK_INT(count_dir_entries(dir), ==, 1); /* sub only */
    CHECK_INT(count_dir_entries(sub), ==, 1);

    /* a write fails half-way: the file size limit (2 MiB written, 1 MiB
     * allowed; SIGXFSZ ignored so write returns EFBIG) */
    REQUIRE_INT(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = (rlim_t)1 << 20;
    old_xfsz = signal(SIGXFSZ, SIG_IGN);
    REQUIRE_INT(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);
    rc = write_now(loop, pl, path, data, big);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_xfsz);
    CHECK_INT(rc, ==, -EFBIG);
    CHECK_INT(count_dir_entries(dir), ==, 1); /* no temporary file, no big */
    CHECK_INT(stat(path, &st), ==, -1);

    /* and the same size without the limit works */
    CHECK_INT(write_now(loop, pl, path, data, big), ==, 0);
    CHECK_INT(stat(path, &st), ==, 0);
    CHECK_INT((int)(st.st_size >> 20), ==, 2);
    CHECK_INT(count_dir_entries(dir), ==, 2);
    finish(loop, pl);
    unlink(path);
    unlink(inner);
    rmdir(sub);
    rmdir(dir);
    free(data);
}

#if defined(__linux__)
/* thread_init of the workers below: without the capabilities that let
 * root read any directory, they obey its permissions like anyone. */
static int drop_dac_capabilities(void *ctx, unsigned index)
{
    struct __user_cap_header_struct h;
    struct __user_cap_data_struct d[2];
    (void)ctx;
    (void)index;
    memset(&h, 0, sizeof h);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    if (syscall(SYS_capget, &h, d) != 0)
        return -errno;
    d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    return syscall(SYS_capset, &h, d) != 0 ? -errno : 0;
}
#endif

/* The directory cannot be opened for its fsync (write and search, no
 * read permission): the rename has happened, and the error is reported. */
TEST(write_reports_a_directory_it_cannot_sync)
{
#if defined(__linux__)
    evloop *loop = new_loop();
    pool_threads_options o;
    pool_threads *tp;
    pool_loop *pl;
    char dir[64], path[96];
    loop_thread = pthread_self();
    o = threads_opts(1);
    o.thread_init = drop_dac_capabilities;
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    snprintf(dir, sizeof dir, "/tmp/pool_wdir_%d", (int)getpid());
    snprintf(path, sizeof path, "%s/f", dir);
    REQUIRE_INT(mkdir(dir, 0700), ==, 0);
    REQUIRE_INT(chmod(dir, 0300), ==, 0);
    CHECK_INT(write_now(loop, pl, path, "new", 3), ==, -EACCES);
    chmod(dir, 0700);
    CHECK_INT(count_dir_entries(dir), ==, 1); /* the file, no temporary one */
    {
        char buf[8] = {0};
        int fd = open(path, O_RDONLY);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK_INT((int)read(fd, buf, sizeof buf), ==, 3); /* renamed in place */
            close(fd);
        }
        CHECK_STR(buf, "new");
    }
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    unlink(path);
    rmdir(dir);
#else
    SKIP("drops Linux capabilities to be refused a directory as root");
#endif
}

/* A loop never blocks on a bounded pool's full queue: -EAGAIN. */
TEST(loop_submit_to_a_full_queue_fails_at_once)
{
    evloop *loop = new_loop();
    pool_threads_options o;
    pool_threads *tp;
    pool_loop *pl;
    pool_task running, queued, t;
    rescuer rs;
    double t0;
    o = threads_opts(1);
    o.max_queue = 1;
    o.full = POOL_FULL_BLOCK;
    gate_reset(&worker_gate);
    loop_thread = pthread_self();
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &worker_gate), ==, 0);
    REQUIRE_INT(pool_submit(tp, &queued, nop_work, NULL), ==, 0); /* full */
    rescuer_start(&rs, 1000, &worker_gate, NULL, NULL);
    t0 = test_now_ms();
    t.data = (void *)(intptr_t)0;
    CHECK_INT(pool_loop_submit(pl, &t, nop_work, record_status), ==, -EAGAIN);
    CHECK_INT(pool_loop_call(pl, call_fn, &call_ran, call_done), ==, -EAGAIN);
    CHECK_INT(pool_stat(pl, &reqs[0], "/", req_cb), ==, -EAGAIN);
    CHECK(test_now_ms() - t0 < 500);
    rescuer_stop(&rs);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    /* room again */
    memset(st_of, 0x7f, sizeof st_of);
    CHECK_INT(pool_loop_submit(pl, &t, nop_work, record_status), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(st_of[0], ==, 0);
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

/* ---- resource pool on a loop ------------------------------------------------------ */

typedef struct res {
    int id;
    int bad;
    int busy; /* atomic: 1 while someone holds it */
} res;

static int next_id, create_fail, validations;
static gate *create_hold; /* set: creates wait there */
static int r_create(void *ctx, void **out)
{
    res *r;
    (void)ctx;
    if (create_hold)
        gate_pass(create_hold);
    if (__atomic_load_n(&create_fail, __ATOMIC_SEQ_CST))
        return __atomic_load_n(&create_fail, __ATOMIC_SEQ_CST);
    r = (res *)calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_SEQ_CST);
    *out = r;
    return 0;
}
static void r_destroy(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}
static int r_validate(void *ctx, void *p)
{
    (void)ctx;
    __atomic_add_fetch(&validations, 1, __ATOMIC_SEQ_CST);
    return ((res *)p)->bad ? -EIO : 0;
}

static pool_res_options ropts(unsigned max)
{
    pool_res_options o;
    memset(&o, 0, sizeof o);
    o.create = r_create;
    o.destroy = r_destroy;
    o.validate = r_validate;
    o.max = max;
    next_id = create_fail = validations = 0;
    create_hold = NULL;
    return o;
}

typedef struct got {
    int status;
    pool_res_item *item;
    double at;
    int calls;
    int order;
} got;

static got G[8];
static pool_res_req RQ[8];
static int got_order;
static void res_cb(pool_res_req *req, int status, pool_res_item *item)
{
    got *g = &G[req - RQ];
    CHECK(pthread_equal(pthread_self(), loop_thread));
    g->status = status;
    g->item = item;
    g->at = test_now_ms();
    g->calls++;
    g->order = got_order++;
}

static void reset_got(void)
{
    memset(G, 0, sizeof G);
    got_order = 0;
}

TEST(async_acquire_immediate_and_create_failure)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(2);
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], 100, res_cb), ==, 0);
    CHECK_INT(G[0].calls, ==, 0); /* never inside the call */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[0].calls, ==, 1);
    CHECK_INT(G[0].status, ==, 0);
    REQUIRE(G[0].item != NULL);
    pool_res_release(G[0].item);
    /* idle now: handed out without a trip to a worker */
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[1], 100, res_cb), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[1].status, ==, 0);
    CHECK(G[1].item == G[0].item);
    /* a create that fails reaches the request */
    __atomic_store_n(&create_fail, -ECONNREFUSED, __ATOMIC_SEQ_CST);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[2], 100, res_cb), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[2].status, ==, -ECONNREFUSED);
    CHECK(G[2].item == NULL);
    CHECK_INT(pool_res_acquire_async(rp, pl, &RQ[3], 100, NULL), ==, -EINVAL);
    pool_res_release(G[1].item);
    CHECK_INT(pool_res_free(rp), ==, 0);
    finish(loop, pl);
}

typedef struct releaser {
    pool_res_item *item;
    int delay_ms;
} releaser;

static void *release_later(void *arg)
{
    releaser *r = (releaser *)arg;
    sleep_ms(r->delay_ms);
    pool_res_release(r->item);
    return NULL;
}

TEST(async_acquire_waits_times_out_and_is_served_in_order)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(1);
    pool_res_item *held;
    pool_res_stats st;
    releaser rel;
    pthread_t th;
    double t0;
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &held, -1), ==, 0);
    evloop_update_time(loop);
    t0 = test_now_ms();
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], 40, res_cb), ==, 0); /* times out */
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[1], 2000, res_cb), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[2], -1, res_cb), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[3], 2000, res_cb), ==, 0);
    CHECK_INT(pool_res_acquire_async(rp, pl, &RQ[4], 0, res_cb), ==, -EAGAIN);
    CHECK_INT(pool_res_cancel(&RQ[3]), ==, 0);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.waiting, ==, 3);
    rel.item = held;
    rel.delay_ms = 80; /* another thread releases after the timeout */
    pthread_create(&th, NULL, release_later, &rel);
    /* RQ[1] gets it, and releases it on the loop to RQ[2] */
    while (G[1].calls == 0 && test_now_ms() - t0 < 3000)
        evloop_run(loop, EVLOOP_RUN_ONCE);
    pthread_join(th, NULL);
    CHECK_INT(G[0].status, ==, -ETIMEDOUT);
    CHECK(G[0].at - t0 >= 39);
    CHECK(G[0].at - t0 < 40 + (TEST_SANITIZED ? 400 : 120));
    CHECK_INT(G[3].status, ==, -ECANCELED);
    CHECK_INT(G[1].status, ==, 0);
    REQUIRE(G[1].item == held);
    pool_res_release(G[1].item); /* on the loop thread */
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[2].status, ==, 0);
    CHECK(G[2].item == held);
    CHECK_INT(G[0].calls + G[1].calls + G[2].calls + G[3].calls, ==, 4);
    CHECK(G[3].order < G[0].order && G[0].order < G[1].order && G[1].order < G[2].order);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.timeouts, ==, 1);
    CHECK_UINT(st.created, ==, 1);
    pool_res_release(G[2].item);
    CHECK_INT(pool_res_free(rp), ==, 0);
    finish(loop, pl);
}

TEST(async_acquire_validates_on_a_worker)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(2);
    pool_res_item *it;
    pool_res_stats st;
    int first;
    o.validate_on_borrow = 1;
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &it, -1), ==, 0);
    first = ((res *)it->resource)->id;
    ((res *)it->resource)->bad = 1;
    pool_res_release(it);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], 1000, res_cb), ==, 0);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[0].status, ==, 0);
    REQUIRE(G[0].item != NULL);
    CHECK(((res *)G[0].item->resource)->id != first);
    CHECK_INT(__atomic_load_n(&validations, __ATOMIC_SEQ_CST), ==, 1);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.validation_failures, ==, 1);
    pool_res_release(G[0].item);
    CHECK_INT(pool_res_free(rp), ==, 0);
    finish(loop, pl);
}

TEST(async_and_blocking_waiters_share_one_line)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(1);
    pool_res_item *held;
    pool_res_stats st;
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &held, -1), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], -1, res_cb), ==, 0);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.waiting, ==, 1);
    /* the loop request was first: a blocking acquire now must wait */
    pool_res_release(held);
    {
        pool_res_item *b;
        CHECK_INT(pool_res_acquire(rp, &b, 0), ==, -EAGAIN); /* handed to RQ[0] */
    }
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[0].status, ==, 0);
    CHECK(G[0].item == held);
    pool_res_release(G[0].item);
    CHECK_INT(pool_res_drain(rp, 100), ==, 0);
    CHECK_INT(pool_res_acquire_async(rp, pl, &RQ[1], 10, res_cb), ==, -ESHUTDOWN);
    CHECK_INT(pool_res_free(rp), ==, 0);
    finish(loop, pl);
}

TEST(loop_close_withdraws_waiting_acquires)
{
    evloop *loop = new_loop();
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(1);
    pool_res_item *held;
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_loop_new(&pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &held, -1), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], 5000, res_cb), ==, 0);
    pool_loop_close(pl);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(G[0].status, ==, -ECANCELED);
    CHECK_INT(evloop_free(loop), ==, 0);
    pool_res_release(held);
    CHECK_INT(pool_res_free(rp), ==, 0);
}

/* A DRAIN while a loop request waits: the workers stay for the binding, so
 * the validation its grant needs still runs. */
TEST(drain_serves_a_waiting_loop_acquire)
{
    evloop *loop = new_loop();
    pool_threads *tp;
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(1);
    pool_res_item *held;
    evloop_timer g;
    o.validate_on_borrow = 1;
    o.idle_timeout_ms = -1;
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(new_bound_pool(loop, &tp, &pl), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &held, -1), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], -1, res_cb), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_DRAIN), ==, 0);
    sleep_ms(20); /* time enough for a worker to end */
    pool_res_release(held); /* grants RQ[0]: its validation goes to a worker */
    guard(loop, &g, 5000);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(G[0].calls, ==, 1);
    CHECK_INT(G[0].status, ==, 0);
    CHECK(G[0].item == held);
    CHECK_INT(__atomic_load_n(&validations, __ATOMIC_SEQ_CST), ==, 1);
    if (G[0].item)
        pool_res_release(G[0].item);
    CHECK_INT(pool_res_free(rp), ==, 0);
    evloop_close(&g.handle, NULL);
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

static gate exit_hold;
static void held_exit(void *ctx, unsigned index)
{
    (void)ctx;
    (void)index;
    gate_pass(&exit_hold);
}

/* A binding made after a DRAIN let the workers go (here, one still in its
 * thread_exit): work its requests need is refused, not queued for nobody. */
TEST(drain_refuses_loop_acquires_once_workers_left)
{
    evloop *loop = new_loop();
    pool_threads_options to;
    pool_threads *tp;
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(1);
    pool_res_item *held;
    pool_res_stats st;
    evloop_timer g;
    int rc;
    to = threads_opts(1);
    to.thread_exit = held_exit;
    o.validate_on_borrow = 1;
    o.idle_timeout_ms = -1;
    gate_init(&exit_hold);
    loop_thread = pthread_self();
    reset_got();
    REQUIRE_INT(pool_threads_new(&tp, &to), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_DRAIN), ==, 0);
    gate_wait_for(&exit_hold, 1); /* the worker has left its task loop */
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    guard(loop, &g, 3000);
    /* a create is needed at once: refused by the call */
    rc = pool_res_acquire_async(rp, pl, &RQ[0], -1, res_cb);
    CHECK_INT(rc, ==, -ESHUTDOWN);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 0);
    CHECK_UINT(st.creating, ==, 0);
    /* a validation needed later, when a release grants it: cb says so */
    REQUIRE_INT(pool_res_acquire(rp, &held, -1), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[1], -1, res_cb), ==, 0);
    pool_res_release(held);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(G[1].calls, ==, 1);
    CHECK_INT(G[1].status, ==, -ESHUTDOWN);
    CHECK(G[1].item == NULL);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.idle, ==, 1); /* the resource went back */
    CHECK_UINT(st.in_use, ==, 0);
    CHECK_UINT(st.waiting, ==, 0);
    gate_open(&exit_hold);
    if (rc == 0) /* the bug: RQ[0] sits in a queue nobody takes */
        pool_res_cancel(&RQ[0]);
    evloop_close(&g.handle, NULL);
    finish(loop, pl);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    CHECK_INT(pool_res_free(rp), ==, 0);
    gate_destroy(&exit_hold);
}

/* Closing the binding while the create or validation of a request is
 * queued (cancelled: the slot or the resource goes back) or running (it
 * completes and the request gets the resource). */
TEST(loop_close_with_a_request_task_queued_or_running)
{
    evloop *loop = new_loop();
    pool_threads_options to;
    pool_threads *tp;
    pool_loop *pl;
    pool_res *rp;
    pool_res_options o = ropts(2);
    pool_res_item *spare;
    pool_res_stats st;
    pool_task running;
    evloop_timer g;
    gate h;
    to = threads_opts(1);
    o.validate_on_borrow = 1;
    o.idle_timeout_ms = -1;
    loop_thread = pthread_self();
    reset_got();
    gate_reset(&worker_gate);
    gate_init(&h);
    REQUIRE_INT(pool_threads_new(&tp, &to), ==, 0);
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &spare, -1), ==, 0);
    pool_res_release(spare); /* one idle: a borrow needs a validation */

    /* queued: the one worker is held, a validation and a create wait */
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &worker_gate), ==, 0);
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[0], -1, res_cb), ==, 0); /* validate */
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[1], -1, res_cb), ==, 0); /* create */
    pool_loop_close(pl);
    guard(loop, &g, 5000);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(G[0].status, ==, -ECANCELED);
    CHECK_INT(G[1].status, ==, -ECANCELED);
    CHECK(G[0].item == NULL && G[1].item == NULL);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 1); /* the slot went back, the resource too */
    CHECK_UINT(st.idle, ==, 1);
    CHECK_UINT(st.in_use, ==, 0);
    CHECK_UINT(st.creating, ==, 0);
    gate_open(&worker_gate);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    evloop_close(&g.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);

    /* running: the create is under way on the worker when the binding closes */
    REQUIRE_INT(pool_res_acquire(rp, &spare, -1), ==, 0); /* no idle one now */
    REQUIRE_INT(pool_loop_new(&pl, loop, tp), ==, 0);
    create_hold = &h;
    REQUIRE_INT(pool_res_acquire_async(rp, pl, &RQ[2], -1, res_cb), ==, 0);
    gate_wait_for(&h, 1);
    pool_loop_close(pl);
    gate_open(&h);
    guard(loop, &g, 5000);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    CHECK_INT(G[2].calls, ==, 1);
    CHECK_INT(G[2].status, ==, 0);
    CHECK(G[2].item != NULL);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 2);
    CHECK_UINT(st.in_use, ==, 2);
    if (G[2].item)
        pool_res_release(G[2].item);
    pool_res_release(spare);
    create_hold = NULL;
    evloop_close(&g.handle, NULL);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    CHECK_INT(evloop_free(loop), ==, 0);
    CHECK_INT(pool_res_free(rp), ==, 0);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    gate_destroy(&h);
}

/* Loop acquires with short timeouts against blocking acquirers on other
 * threads, on a pool of 2: no resource is handed to two holders, none is
 * lost, and the counts add up. */
typedef struct loop_client {
    pool_res_req req;
    unsigned seed;
} loop_client;

static struct {
    pool_res *rp;
    pool_loop *pl;
    int target, finished, ok, timeouts, other, double_handed;
} LH;

static void loop_hammer_cb(pool_res_req *req, int status, pool_res_item *item);

static void loop_hammer_issue(loop_client *c)
{
    int rc;
    c->seed = c->seed * 1103515245u + 12345u;
    rc = pool_res_acquire_async(LH.rp, LH.pl, &c->req, 1 + (int)((c->seed >> 16) % 3), loop_hammer_cb);
    if (rc != 0) {
        LH.other++;
        LH.finished++;
    }
}

static void loop_hammer_cb(pool_res_req *req, int status, pool_res_item *item)
{
    loop_client *c = (loop_client *)req->data;
    LH.finished++;
    if (status == 0) {
        res *r = (res *)item->resource;
        if (__atomic_exchange_n(&r->busy, 1, __ATOMIC_SEQ_CST))
            LH.double_handed++;
        __atomic_store_n(&r->busy, 0, __ATOMIC_SEQ_CST);
        LH.ok++;
        if ((c->seed >> 12) % 50 == 0)
            pool_res_release_broken(item);
        else
            pool_res_release(item);
    } else if (status == -ETIMEDOUT) {
        LH.timeouts++;
    } else {
        LH.other++;
    }
    if (LH.finished < LH.target)
        loop_hammer_issue(c);
}

typedef struct blocking_hammer {
    pool_res *rp;
    int iterations, ok, double_handed;
    unsigned seed;
} blocking_hammer;

static void *blocking_hammer_main(void *arg)
{
    blocking_hammer *h = (blocking_hammer *)arg;
    int i;
    for (i = 0; i < h->iterations; i++) {
        pool_res_item *it;
        h->seed = h->seed * 1103515245u + 12345u;
        if (pool_res_acquire(h->rp, &it, (int)((h->seed >> 16) % 3)) != 0)
            continue;
        if (__atomic_exchange_n(&((res *)it->resource)->busy, 1, __ATOMIC_SEQ_CST))
            h->double_handed++;
        if ((h->seed >> 20) % 4 == 0)
            sched_yield();
        __atomic_store_n(&((res *)it->resource)->busy, 0, __ATOMIC_SEQ_CST);
        h->ok++;
        pool_res_release(it);
    }
    return NULL;
}

TEST(loop_acquire_timeout_release_race_hammer)
{
    evloop *loop = new_loop();
    pool_res_options o = ropts(2);
    pool_res_stats st;
    loop_client clients[4];
    blocking_hammer bh[2];
    pthread_t th[2];
    evloop_timer g;
    int i, blocking_ok = 0;
    o.idle_timeout_ms = -1;
    o.validate_on_borrow = 1; /* grants go through a worker too */
    loop_thread = pthread_self();
    memset(&LH, 0, sizeof LH);
    LH.target = TEST_SANITIZED ? 3000 : 20000;
    REQUIRE_INT(pool_loop_new(&LH.pl, loop, NULL), ==, 0);
    REQUIRE_INT(pool_res_new(&LH.rp, &o), ==, 0);
    for (i = 0; i < 2; i++) {
        memset(&bh[i], 0, sizeof bh[i]);
        bh[i].rp = LH.rp;
        bh[i].iterations = TEST_SANITIZED ? 3000 : 20000;
        bh[i].seed = (unsigned)i * 7919u + 3u;
        pthread_create(&th[i], NULL, blocking_hammer_main, &bh[i]);
    }
    for (i = 0; i < 4; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].req.data = &clients[i];
        clients[i].seed = (unsigned)i * 104729u + 1u;
        loop_hammer_issue(&clients[i]);
    }
    guard(loop, &g, 60000);
    CHECK_INT(evloop_run(loop, EVLOOP_RUN_DEFAULT), ==, 0);
    CHECK_INT(guard_fired, ==, 0);
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        blocking_ok += bh[i].ok;
        CHECK_INT(bh[i].double_handed, ==, 0);
    }
    CHECK_INT(LH.double_handed, ==, 0);
    CHECK_INT(LH.other, ==, 0);
    CHECK_INT(LH.ok + LH.timeouts, ==, LH.finished);
    CHECK_INT(LH.ok, >, 0);
    pool_res_get_stats(LH.rp, &st);
    CHECK_UINT(st.in_use, ==, 0);
    CHECK_UINT(st.waiting, ==, 0);
    CHECK_UINT(st.creating, ==, 0);
    CHECK_UINT(st.total, <=, 2);
    CHECK_UINT(st.idle, ==, st.total); /* nothing leaked */
    CHECK_UINT(st.created - st.destroyed, ==, st.total);
    CHECK_UINT(st.acquired, ==, (uint64_t)(LH.ok + blocking_ok));
    CHECK_INT(pool_res_free(LH.rp), ==, 0);
    evloop_close(&g.handle, NULL);
    finish(loop, LH.pl);
}

int main(void)
{
    RUN(loop_tasks_complete_on_the_loop_thread);
    RUN(loop_call_and_shared_pool);
    RUN(loop_cancel_staged_and_running);
    RUN(loop_close_cancels_queued_tasks);
    RUN(loop_close_with_work_queued_cancels_it);
    RUN(loop_tasks_told_of_an_immediate_shutdown);
    RUN(drain_runs_staged_loop_tasks);
    RUN(cancel_shutdown_cancels_staged_loop_tasks_in_order);
    RUN(loop_close_races_pool_cancel);
    RUN(offloads_write_read_stat);
    RUN(offload_getaddrinfo);
    RUN(offload_cancel);
    RUN(write_errors_leave_no_temporary_file);
    RUN(write_reports_a_directory_it_cannot_sync);
    RUN(loop_submit_to_a_full_queue_fails_at_once);
    RUN(async_acquire_immediate_and_create_failure);
    RUN(async_acquire_waits_times_out_and_is_served_in_order);
    RUN(async_acquire_validates_on_a_worker);
    RUN(async_and_blocking_waiters_share_one_line);
    RUN(loop_close_withdraws_waiting_acquires);
    RUN(drain_serves_a_waiting_loop_acquire);
    RUN(drain_refuses_loop_acquires_once_workers_left);
    RUN(loop_close_with_a_request_task_queued_or_running);
    RUN(loop_acquire_timeout_release_race_hammer);
    return test_done();
}
