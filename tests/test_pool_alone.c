/* build: tsan */
/* Tests of pool.h alone (no evloop.h): the thread pool and the resource
 * pool, from plain threads. */
#define POOL_IMPLEMENTATION
#include "../pool.h"
#include "test.h"
#include "pool_test_util.h"

#include <errno.h>
#include <pthread.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif


/* ---- thread pool -------------------------------------------------------------- */

static unsigned char *hits;
static void hit(void *arg) { hits[(size_t)(uintptr_t)arg]++; }

TEST(million_tasks_run_exactly_once)
{
    size_t n = TEST_SANITIZED ? 100000 : 1000000, i, bad = 0;
    pool_threads *tp;
    pool_threads_stats st;
    hits = (unsigned char *)calloc(n, 1);
    REQUIRE(hits);
    REQUIRE_INT(pool_threads_new(&tp, NULL), ==, 0);
    for (i = 0; i < n; i++)
        REQUIRE_INT(pool_call(tp, hit, (void *)(uintptr_t)i, NULL), ==, 0);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    for (i = 0; i < n; i++)
        bad += hits[i] != 1;
    CHECK_UINT(bad, ==, 0);
    pool_threads_get_stats(tp, &st);
    CHECK_UINT(st.submitted, ==, n);
    CHECK_UINT(st.completed, ==, n);
    CHECK_UINT(st.pending, ==, 0);
    CHECK_UINT(st.threads, ==, pool_cpu_count());
    CHECK_INT(pool_threads_free(tp), ==, 0);
    free(hits);
}

static void square(pool_task *t) { *(int *)t->data *= *(int *)t->data; }

TEST(submit_and_wait_for_one)
{
    pool_threads *tp;
    pool_task t;
    int v = 7;
    REQUIRE_INT(pool_threads_new(&tp, NULL), ==, 0);
    t.data = &v;
    REQUIRE_INT(pool_submit(tp, &t, square, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, -1), ==, 0);
    CHECK_INT(v, ==, 49);
    CHECK_INT(pool_wait(&t, 0), ==, 0); /* finished stays finished */
    /* the same task again */
    REQUIRE_INT(pool_submit(tp, &t, square, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, 1000), ==, 0);
    CHECK_INT(v, ==, 2401);
    CHECK_INT(pool_submit(tp, &t, NULL, NULL), ==, -EINVAL);
    pool_threads_free(tp);
}

static pthread_t done_thread;
static int done_status = 1;
static void record_done(pool_task *t, int status)
{
    (void)t;
    done_thread = pthread_self();
    done_status = status;
}

TEST(done_runs_on_the_worker_and_wait_refuses_it)
{
    pool_threads *tp;
    pool_task t;
    int v = 3;
    REQUIRE_INT(pool_threads_new(&tp, NULL), ==, 0);
    t.data = &v;
    REQUIRE_INT(pool_submit(tp, &t, square, record_done), ==, 0);
    CHECK_INT(pool_wait(&t, 0), ==, -EINVAL);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    CHECK_INT(v, ==, 9);
    CHECK_INT(done_status, ==, 0);
    CHECK(!pthread_equal(done_thread, pthread_self()));
    pool_threads_free(tp);
}

static int call_sum, call_done_count;
static void add_arg(void *arg) { __atomic_add_fetch(&call_sum, (int)(intptr_t)arg, __ATOMIC_SEQ_CST); }
static void call_done(void *arg, int status)
{
    (void)arg;
    if (status == 0)
        counter_add(&call_done_count);
}

TEST(pool_call_runs_fn_and_done)
{
    pool_threads *tp;
    pool_threads_options o;
    int i;
    o = threads_opts(3);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    CHECK_UINT(pool_threads_size(tp), ==, 3);
    for (i = 1; i <= 100; i++)
        REQUIRE_INT(pool_call(tp, add_arg, (void *)(intptr_t)i, call_done), ==, 0);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    CHECK_INT(counter_get(&call_sum), ==, 5050);
    CHECK_INT(counter_get(&call_done_count), ==, 100);
    CHECK_INT(pool_call(tp, NULL, NULL, NULL), ==, -EINVAL);
    pool_threads_free(tp);
}

TEST(bad_options)
{
    pool_threads *tp = (pool_threads *)1;
    pool_threads_options o;
    o = threads_opts(POOL_MAX_THREADS + 1);
    CHECK_INT(pool_threads_new(&tp, &o), ==, -EINVAL);
    CHECK(tp == NULL);
    o.threads = 1;
    o.full = 7;
    CHECK_INT(pool_threads_new(&tp, &o), ==, -EINVAL);
}

TEST(bounded_queue_fails_when_full)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_task running, q[3];
    gate g;
    int i;
    gate_init(&g);
    o = threads_opts(1);
    o.max_queue = 2;
    o.full = POOL_FULL_FAIL;
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0); /* the queue is empty */
    for (i = 0; i < 2; i++) {
        q[i].data = &g;
        CHECK_INT(pool_submit(tp, &q[i], gate_work, NULL), ==, 0);
    }
    q[2].data = &g;
    CHECK_INT(pool_submit(tp, &q[2], gate_work, NULL), ==, -EAGAIN);
    CHECK_INT(pool_call(tp, hit, NULL, NULL), ==, -EAGAIN);
    gate_open(&g);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    CHECK_INT(pool_submit(tp, &q[2], gate_work, NULL), ==, 0);
    pool_threads_free(tp);
    gate_destroy(&g);
}

/* A pool whose one worker is held at g and whose queue (max_queue 1) is
 * full: the next submit from a thread that is not a worker blocks. */
typedef struct full_pool {
    pool_threads *tp;
    pool_task running, queued;
    gate g;
} full_pool;

static int full_pool_new(full_pool *f)
{
    pool_threads_options o = threads_opts(1);
    int rc;
    o.max_queue = 1;
    gate_init(&f->g);
    if ((rc = pool_threads_new(&f->tp, &o)) != 0)
        return rc;
    if ((rc = hold_worker(f->tp, &f->running, &f->g)) != 0)
        return rc;
    f->queued.data = &f->g;
    return pool_submit(f->tp, &f->queued, gate_work, NULL);
}

/* A thread that submits a task waiting at g. */
typedef struct blocked_submit {
    pool_threads *tp;
    pool_task task;
    gate *g;
    int rc, returned;
    pthread_t th;
} blocked_submit;

static void *submit_thread(void *arg)
{
    blocked_submit *b = (blocked_submit *)arg;
    b->task.data = b->g;
    b->rc = pool_submit(b->tp, &b->task, gate_work, NULL);
    __atomic_store_n(&b->returned, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void blocked_submit_start(blocked_submit *b, full_pool *f)
{
    memset(b, 0, sizeof *b);
    b->tp = f->tp;
    b->g = &f->g;
    pthread_create(&b->th, NULL, submit_thread, b);
}

TEST(bounded_queue_blocks_until_room)
{
    full_pool f;
    blocked_submit b;
    REQUIRE_INT(full_pool_new(&f), ==, 0);
    blocked_submit_start(&b, &f);
    sleep_ms(30);
    CHECK_INT(__atomic_load_n(&b.returned, __ATOMIC_SEQ_CST), ==, 0); /* still blocked */
    gate_open(&f.g);
    pthread_join(b.th, NULL);
    CHECK_INT(b.rc, ==, 0);
    CHECK_INT(pool_threads_wait(f.tp, -1), ==, 0);
    pool_threads_free(f.tp);
    gate_destroy(&f.g);
}

TEST(shutdown_wakes_a_blocked_submitter)
{
    full_pool f;
    blocked_submit b;
    REQUIRE_INT(full_pool_new(&f), ==, 0);
    blocked_submit_start(&b, &f);
    sleep_ms(20);
    CHECK_INT(pool_threads_shutdown(f.tp, POOL_SHUTDOWN_CANCEL), ==, 0);
    pthread_join(b.th, NULL);
    CHECK_INT(b.rc, ==, -ESHUTDOWN);
    CHECK_INT(pool_wait(&f.queued, 0), ==, -ECANCELED);
    gate_open(&f.g);
    CHECK_INT(pool_wait(&f.running, -1), ==, 0); /* the running one finished */
    CHECK_INT(pool_threads_free(f.tp), ==, 0);
    gate_destroy(&f.g);
}

static int drained;
static void count_work(pool_task *t)
{
    (void)t;
    counter_add(&drained);
}

static int cancel_status[4];
static pthread_t cancel_thread;
static void cancel_done(pool_task *t, int status)
{
    cancel_status[(intptr_t)t->data] = status;
    cancel_thread = pthread_self();
}

TEST(cancel_a_queued_task)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_task running, a, b, c;
    gate g;
    gate_init(&g);
    o = threads_opts(1);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
    memset(cancel_status, 0x7f, sizeof cancel_status);
    a.data = (void *)(intptr_t)1;
    b.data = (void *)(intptr_t)2;
    REQUIRE_INT(pool_submit(tp, &a, count_work, cancel_done), ==, 0);
    REQUIRE_INT(pool_submit(tp, &b, count_work, cancel_done), ==, 0);
    CHECK_INT(pool_cancel(&b), ==, 0);
    CHECK_INT(cancel_status[2], ==, -ECANCELED);           /* done ran inside cancel */
    CHECK(pthread_equal(cancel_thread, pthread_self()));
    CHECK_INT(pool_cancel(&b), ==, -EBUSY);                /* already cancelled */
    CHECK_INT(pool_cancel(&running), ==, -EBUSY);          /* running */
    /* a task without done: its waiter learns it was cancelled */
    c.data = &g;
    REQUIRE_INT(pool_submit(tp, &c, gate_work, NULL), ==, 0);
    CHECK_INT(pool_wait(&c, 10), ==, -ETIMEDOUT);
    CHECK_INT(pool_cancel(&c), ==, 0);
    CHECK_INT(pool_wait(&c, -1), ==, -ECANCELED);
    CHECK_INT(pool_cancel(&a), ==, 0);
    CHECK_INT(cancel_status[1], ==, -ECANCELED);
    gate_open(&g);
    CHECK_INT(pool_wait(&running, -1), ==, 0);
    CHECK_INT(pool_cancel(&running), ==, -EBUSY);          /* finished */
    {
        pool_threads_stats st;
        pool_threads_get_stats(tp, &st);
        CHECK_UINT(st.cancelled, ==, 3);
        CHECK_UINT(st.completed, ==, 1);
    }
    pool_threads_free(tp);
    gate_destroy(&g);
}


TEST(graceful_shutdown_finishes_the_queue)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_task running, q[100], late;
    gate g;
    int i;
    gate_init(&g);
    o = threads_opts(2);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
    drained = 0;
    for (i = 0; i < 100; i++)
        REQUIRE_INT(pool_submit(tp, &q[i], count_work, NULL), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_DRAIN), ==, 0);
    CHECK_INT(pool_submit(tp, &late, count_work, NULL), ==, -ESHUTDOWN);
    CHECK_INT(pool_call(tp, hit, NULL, NULL), ==, -ESHUTDOWN);
    CHECK_INT(pool_threads_shutdown(tp, 9), ==, -EINVAL);
    gate_open(&g);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    CHECK_INT(drained, ==, 100);
    gate_destroy(&g);
}

static int cancelled_count, ran_count;
static void tally_done(pool_task *t, int status)
{
    (void)t;
    counter_add(status == -ECANCELED ? &cancelled_count : &ran_count);
}

TEST(immediate_shutdown_cancels_the_queue)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_task running, q[200];
    gate g;
    int i;
    gate_init(&g);
    o = threads_opts(1);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    running.data = &g;
    REQUIRE_INT(pool_submit(tp, &running, gate_work, tally_done), ==, 0);
    gate_wait_for(&g, 1);
    cancelled_count = ran_count = 0;
    for (i = 0; i < 200; i++)
        REQUIRE_INT(pool_submit(tp, &q[i], count_work, tally_done), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_CANCEL), ==, 0);
    CHECK_INT(counter_get(&cancelled_count), ==, 200); /* told at once */
    gate_open(&g);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    CHECK_INT(ran_count, ==, 1); /* the running one finished normally */
    gate_destroy(&g);
}

/* Tiny tasks go in batches: a shutdown CANCEL reaches tasks a worker has
 * already taken, and each task is reported exactly once either way. */
TEST(cancel_shutdown_during_a_burst_reports_each_task_once)
{
    enum { N = 20000 };
    pool_threads *tp;
    pool_task *q = (pool_task *)calloc(N, sizeof *q);
    int i;
    REQUIRE(q);
    REQUIRE_INT(pool_threads_new(&tp, NULL), ==, 0);
    cancelled_count = ran_count = 0;
    for (i = 0; i < N; i++)
        REQUIRE_INT(pool_submit(tp, &q[i], count_work, tally_done), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_CANCEL), ==, 0);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    CHECK_INT(cancelled_count + ran_count, ==, N);
    free(q);
}

static int exits_seen;
static pool_threads *self_tp;
static void exit_hook(void *ctx, unsigned index)
{
    (void)ctx;
    (void)index;
    counter_add(&exits_seen);
}
static void free_from_done(pool_task *t, int status)
{
    (void)t;
    (void)status;
    CHECK_INT(pool_threads_free(self_tp), ==, 0);
}

TEST(free_from_a_done_callback_on_a_worker)
{
    pool_threads_options o;
    pool_task t, more[10];
    int i;
    o = threads_opts(2);
    o.thread_exit = exit_hook;
    exits_seen = 0;
    drained = 0;
    REQUIRE_INT(pool_threads_new(&self_tp, &o), ==, 0);
    for (i = 0; i < 10; i++)
        REQUIRE_INT(pool_submit(self_tp, &more[i], count_work, NULL), ==, 0);
    REQUIRE_INT(pool_submit(self_tp, &t, count_work, free_from_done), ==, 0);
    /* the pool frees itself once its workers are done */
    wait_for_count(&exits_seen, 2, 5000);
    CHECK_INT(counter_get(&exits_seen), ==, 2);
    CHECK_INT(counter_get(&drained), ==, 11);
    sleep_ms(20); /* let the last worker finish freeing */
}

/* The done callback frees the pool while pool_submit may not have
 * returned yet on the submitting thread: the submit must not touch the
 * pool once the task can run (TSan sees it otherwise). */
TEST(free_from_a_done_while_the_submit_returns)
{
    int round, rounds = TEST_SANITIZED ? 100 : 300;
    for (round = 0; round < rounds && !test__cur_failed; round++) {
        pool_threads_options o;
        pool_task t;
        o = threads_opts(2);
        o.thread_exit = exit_hook;
        exits_seen = 0;
        REQUIRE_INT(pool_threads_new(&self_tp, &o), ==, 0);
        sleep_ms(1); /* both workers asleep: the submit wakes one */
        REQUIRE_INT(pool_submit(self_tp, &t, count_work, free_from_done), ==, 0);
        wait_for_count(&exits_seen, 2, 5000);
        CHECK_INT(counter_get(&exits_seen), ==, 2);
        sleep_ms(1); /* the last worker frees the pool after its exit hook */
    }
}

static int init_calls;
static int init_hook(void *ctx, unsigned index)
{
    (void)ctx;
    counter_add(&init_calls);
    return index == 1 ? -EIO : 0;
}
static int ok_init(void *ctx, unsigned index)
{
    (void)ctx;
    (void)index;
    counter_add(&init_calls);
    return 0;
}

TEST(init_and_exit_hooks)
{
    pool_threads *tp;
    pool_threads_options o;
    o = threads_opts(3);
    o.thread_init = ok_init;
    o.thread_exit = exit_hook;
    init_calls = exits_seen = 0;
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    CHECK_INT(counter_get(&init_calls), ==, 3); /* before new returned */
    pool_threads_free(tp);
    CHECK_INT(exits_seen, ==, 3);
    /* a failing init makes new fail; no task runs */
    o.thread_init = init_hook;
    init_calls = exits_seen = 0;
    tp = NULL;
    CHECK_INT(pool_threads_new(&tp, &o), ==, -EIO);
    CHECK(tp == NULL);
    CHECK_INT(init_calls, ==, 3);
    CHECK_INT(exits_seen, ==, 2); /* the ones whose init succeeded */
}

#if defined(__linux__)
static char seen_name[32];
static void read_name(pool_task *t)
{
    (void)t;
    prctl(PR_GET_NAME, (unsigned long)(uintptr_t)seen_name, 0, 0, 0);
}
#endif

TEST(thread_names)
{
#if defined(__linux__)
    pool_threads *tp;
    pool_threads_options o;
    pool_task t;
    o = threads_opts(1);
    o.name = "crunch-with-a-long-name";
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(pool_submit(tp, &t, read_name, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, -1), ==, 0);
    CHECK_STR(seen_name, "crunch-wit-0"); /* prefix cut to 10 bytes */
    pool_threads_free(tp);
    o.name = NULL;
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(pool_submit(tp, &t, read_name, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, -1), ==, 0);
    CHECK_STR(seen_name, "pool-0");
    pool_threads_free(tp);
#else
    SKIP("thread names are read back on Linux only");
#endif
}

static pool_threads *inner_tp;
static int inner_wait_rc, inner_submit_rc;
static pool_task inner_extra;
static void waits_inside(pool_task *t)
{
    (void)t;
    inner_wait_rc = pool_threads_wait(inner_tp, 100);
}
static void submits_inside(pool_task *t)
{
    gate_pass((gate *)t->data);
    inner_submit_rc = pool_submit(inner_tp, &inner_extra, count_work, NULL);
}

TEST(waits_and_submits_from_a_worker_do_not_deadlock)
{
    pool_threads_options o;
    pool_task t, t2, blocker, queued;
    gate g, g2;
    gate_init(&g);
    gate_init(&g2);
    o = threads_opts(2);
    o.max_queue = 1;
    REQUIRE_INT(pool_threads_new(&inner_tp, &o), ==, 0);
    REQUIRE_INT(pool_submit(inner_tp, &t, waits_inside, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, -1), ==, 0);
    CHECK_INT(inner_wait_rc, ==, -EDEADLK);
    /* both workers busy, the queue full: a worker's submit fails at once
     * (with POOL_FULL_BLOCK a thread that is not a worker would wait) */
    REQUIRE_INT(hold_worker(inner_tp, &blocker, &g), ==, 0);
    t2.data = &g2;
    REQUIRE_INT(pool_submit(inner_tp, &t2, submits_inside, NULL), ==, 0);
    gate_wait_for(&g2, 1);
    REQUIRE_INT(pool_submit(inner_tp, &queued, count_work, NULL), ==, 0);
    gate_open(&g2);
    CHECK_INT(pool_wait(&t2, -1), ==, 0);
    CHECK_INT(inner_submit_rc, ==, -EAGAIN);
    gate_open(&g);
    CHECK_INT(pool_threads_wait(inner_tp, -1), ==, 0);
    CHECK_INT(pool_threads_wait(inner_tp, 0), ==, 0);
    pool_threads_free(inner_tp);
    gate_destroy(&g);
    gate_destroy(&g2);
}

TEST(wait_all_times_out)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_task running;
    gate g;
    double t0;
    gate_init(&g);
    o = threads_opts(1);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
    t0 = test_now_ms();
    CHECK_INT(pool_threads_wait(tp, 30), ==, -ETIMEDOUT);
    CHECK(test_now_ms() - t0 >= 29);
    gate_open(&g);
    pool_threads_free(tp);
    gate_destroy(&g);
}

TEST(strerror_names_errors)
{
    CHECK_STR(pool_strerror(-ESHUTDOWN), "pool is shut down or draining");
    CHECK_STR(pool_strerror(-ETIMEDOUT), "timed out");
    CHECK_STR(pool_strerror(-123456), "unknown error");
    CHECK_INT(pool_eai_code(-ENOENT), ==, 0);
    CHECK_INT(pool_eai_code(POOL_EAI_ERROR(EAI_NONAME)), ==, EAI_NONAME);
    CHECK(strlen(pool_strerror(POOL_EAI_ERROR(EAI_NONAME))) > 0);
}

/* ---- shutdown and cancel racing, frees from callbacks ------------------------------ */

static pool_task cq[3];
static int cq_calls[3], cq_status[3], cq_cancel_rc;
static void cq_done(pool_task *t, int status)
{
    int i = (int)(t - cq);
    cq_calls[i]++;
    cq_status[i] = status;
    if (i == 0)
        cq_cancel_rc = pool_cancel(&cq[1]); /* being reported by the shutdown */
}

TEST(cancel_from_a_done_run_by_a_cancel_shutdown)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_threads_stats st;
    pool_task running;
    gate g;
    int i;
    gate_init(&g);
    o = threads_opts(1);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
    memset(cq_calls, 0, sizeof cq_calls);
    for (i = 0; i < 3; i++)
        REQUIRE_INT(pool_submit(tp, &cq[i], count_work, cq_done), ==, 0);
    CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_CANCEL), ==, 0);
    CHECK_INT(cq_cancel_rc, ==, -EBUSY); /* already being cancelled */
    for (i = 0; i < 3; i++) {
        CHECK_INT(cq_calls[i], ==, 1);
        CHECK_INT(cq_status[i], ==, -ECANCELED);
    }
    pool_threads_get_stats(tp, &st);
    CHECK_UINT(st.queued, ==, 0);
    CHECK_UINT(st.pending, ==, 1); /* the running one */
    CHECK_UINT(st.cancelled, ==, 3);
    gate_open(&g);
    CHECK_INT(pool_wait(&running, -1), ==, 0);
    pool_threads_get_stats(tp, &st);
    CHECK_UINT(st.pending, ==, 0);
    CHECK_UINT(st.completed, ==, 1);
    CHECK_INT(pool_threads_free(tp), ==, 0);
    gate_destroy(&g);
}

enum { RACE_N = 300 };
static pool_task race_q[RACE_N];
static int race_calls[RACE_N];
static void race_done(pool_task *t, int status)
{
    CHECK_INT(status, ==, -ECANCELED);
    counter_add(&race_calls[t - race_q]);
    sched_yield(); /* a slower report: a longer overlap with the canceller */
}

/* pool_cancel from another thread while a CANCEL shutdown takes the queue:
 * every task is reported once, by one of them, and the queue stays sound. */
TEST(cancel_races_a_cancel_shutdown)
{
    int round, rounds = TEST_SANITIZED ? 30 : 200;
    for (round = 0; round < rounds; round++) {
        pool_threads *tp;
        pool_threads_options o;
        pool_threads_stats st;
        pool_task running;
        canceller c;
        gate g;
        int i, once = 0;
        gate_init(&g);
        o = threads_opts(1);
        REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
        /* nothing else starts: all of race_q stays queued */
        REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
        memset(race_calls, 0, sizeof race_calls);
        for (i = 0; i < RACE_N; i++)
            REQUIRE_INT(pool_submit(tp, &race_q[i], count_work, race_done), ==, 0);
        canceller_start(&c, race_q, RACE_N);
        CHECK_INT(pool_threads_shutdown(tp, POOL_SHUTDOWN_CANCEL), ==, 0);
        pthread_join(c.th, NULL);
        for (i = 0; i < RACE_N; i++)
            once += counter_get(&race_calls[i]) == 1;
        CHECK_INT(once, ==, RACE_N);
        CHECK_INT(c.ok + c.busy, ==, RACE_N);
        pool_threads_get_stats(tp, &st);
        CHECK_UINT(st.queued, ==, 0);
        CHECK_UINT(st.pending, ==, 1);
        CHECK_UINT(st.cancelled, ==, RACE_N);
        gate_open(&g);
        CHECK_INT(pool_threads_free(tp), ==, 0);
        gate_destroy(&g);
        if (test__cur_failed)
            break;
    }
}

static pool_threads *cb_free_tp;
static int cb_free_rc = 1, cb_after_calls;
static void nothing(void *arg) { (void)arg; }
static void free_in_call_done(void *arg, int status)
{
    gate *g = (gate *)arg;
    CHECK_INT(status, ==, -ECANCELED);
    gate_open(g); /* the running task may end: free joins its worker */
    cb_free_rc = pool_threads_free(cb_free_tp);
}
static void after_free_done(void *arg, int status)
{
    (void)arg;
    CHECK_INT(status, ==, -ECANCELED);
    counter_add(&cb_after_calls);
}
static void after_free_task_done(pool_task *t, int status)
{
    (void)t;
    CHECK_INT(status, ==, -ECANCELED);
    counter_add(&cb_after_calls);
}

/* A done callback run by pool_threads_shutdown frees the pool: the
 * shutdown still reports the tasks after it, then the pool is freed. */
TEST(free_from_a_done_run_by_a_cancel_shutdown)
{
    pool_threads_options o;
    pool_task running, last;
    gate g;
    gate_init(&g);
    o = threads_opts(1);
    cb_free_rc = 1;
    cb_after_calls = 0;
    REQUIRE_INT(pool_threads_new(&cb_free_tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(cb_free_tp, &running, &g), ==, 0);
    REQUIRE_INT(pool_call(cb_free_tp, nothing, &g, free_in_call_done), ==, 0);
    REQUIRE_INT(pool_call(cb_free_tp, nothing, NULL, after_free_done), ==, 0);
    REQUIRE_INT(pool_submit(cb_free_tp, &last, count_work, after_free_task_done), ==, 0);
    CHECK_INT(pool_threads_shutdown(cb_free_tp, POOL_SHUTDOWN_CANCEL), ==, 0);
    /* freed now (ASan sees any use after it) */
    CHECK_INT(cb_free_rc, ==, 0);
    CHECK_INT(counter_get(&cb_after_calls), ==, 2);
    gate_destroy(&g);
}

static void shutdown_inside(pool_task *t)
{
    gate_pass((gate *)t->data); /* until the others are queued */
    pool_threads_shutdown(cb_free_tp, POOL_SHUTDOWN_CANCEL);
}
static void free_in_task_done(pool_task *t, int status)
{
    (void)t;
    CHECK_INT(status, ==, -ECANCELED);
    cb_free_rc = pool_threads_free(cb_free_tp);
}

/* The same when the shutdown runs in a task: the pool is freed by its
 * last worker once the report is over. */
TEST(free_from_a_done_run_by_a_cancel_shutdown_on_a_worker)
{
    pool_threads_options o;
    pool_task starter, victim, last;
    gate g;
    gate_init(&g);
    o = threads_opts(1);
    o.thread_exit = exit_hook;
    exits_seen = 0;
    cb_free_rc = 1;
    cb_after_calls = 0;
    REQUIRE_INT(pool_threads_new(&cb_free_tp, &o), ==, 0);
    /* one worker: starter runs first, the others wait behind it */
    starter.data = &g;
    REQUIRE_INT(pool_submit(cb_free_tp, &starter, shutdown_inside, NULL), ==, 0);
    REQUIRE_INT(pool_submit(cb_free_tp, &victim, count_work, free_in_task_done), ==, 0);
    REQUIRE_INT(pool_submit(cb_free_tp, &last, count_work, after_free_task_done), ==, 0);
    gate_open(&g);
    wait_for_count(&exits_seen, 1, 5000);
    CHECK_INT(counter_get(&exits_seen), ==, 1);
    CHECK_INT(cb_free_rc, ==, 0);
    CHECK_INT(counter_get(&cb_after_calls), ==, 1);
    sleep_ms(20); /* let the last worker finish freeing */
    gate_destroy(&g);
}

typedef struct sleeper {
    pool_threads *tp;
    pool_task task, *wait_on;
    int kind; /* 0 submit, 1 pool_wait, 2 pool_threads_wait */
    int rc;
} sleeper;

static void *sleeper_main(void *arg)
{
    sleeper *s = (sleeper *)arg;
    if (s->kind == 0) {
        s->rc = pool_submit(s->tp, &s->task, count_work, NULL);
    } else if (s->kind == 1) {
        s->rc = pool_wait(s->wait_on, -1);
    } else {
        s->rc = pool_threads_wait(s->tp, -1);
    }
    return NULL;
}

/* pool_threads_free while submitters sleep on a full queue and waiters on
 * tasks: the shutdown wakes them, and the pool is freed only once they
 * have left it (ASan and TSan see a use after free otherwise). */
TEST(free_waits_for_the_callers_it_woke)
{
    enum { NS = 3, NW = 3, NA = 2, NT = NS + NW + NA };
    int round, rounds = TEST_SANITIZED ? 15 : 40;
    for (round = 0; round < rounds; round++) {
        full_pool f;
        pool_threads_stats st;
        sleeper sl[NT];
        pthread_t th[NT];
        int i, waited = 0;
        REQUIRE_INT(full_pool_new(&f), ==, 0);
        for (i = 0; i < NT; i++) {
            memset(&sl[i], 0, sizeof sl[i]);
            sl[i].tp = f.tp;
            sl[i].wait_on = &f.queued;
            sl[i].kind = i < NS ? 0 : i < NS + NW ? 1 : 2;
            pthread_create(&th[i], NULL, sleeper_main, &sl[i]);
        }
        for (;;) { /* until every one sleeps inside the pool */
            pool_threads_get_stats(f.tp, &st);
            if ((st.blocked == NS && st.waiters == NW + NA) || waited >= 5000)
                break;
            sleep_ms(1);
            waited++;
        }
        CHECK_UINT(st.blocked, ==, NS);
        CHECK_UINT(st.waiters, ==, NW + NA);
        /* the gate first: the waiters wake as the pool ends, close to
         * the free (a submitter may get room before the shutdown) */
        gate_open(&f.g);
        CHECK_INT(pool_threads_free(f.tp), ==, 0);
        for (i = 0; i < NT; i++) {
            pthread_join(th[i], NULL);
            if (i < NS)
                CHECK(sl[i].rc == 0 || sl[i].rc == -ESHUTDOWN);
            else
                CHECK_INT(sl[i].rc, ==, 0);
        }
        gate_destroy(&f.g);
        if (test__cur_failed)
            break;
    }
}

TEST(stats_count_queued_and_pending)
{
    pool_threads *tp;
    pool_threads_options o;
    pool_threads_stats st;
    pool_task running, q[3];
    gate g;
    int i;
    gate_init(&g);
    o = threads_opts(1);
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    REQUIRE_INT(hold_worker(tp, &running, &g), ==, 0);
    for (i = 0; i < 3; i++)
        REQUIRE_INT(pool_submit(tp, &q[i], count_work, NULL), ==, 0);
    pool_threads_get_stats(tp, &st);
    CHECK_UINT(st.threads, ==, 1);
    CHECK_UINT(st.idle, ==, 0);
    CHECK_UINT(st.queued, ==, 3); /* the running one is not waiting to start */
    CHECK_UINT(st.pending, ==, 4);
    CHECK_UINT(st.submitted, ==, 4);
    CHECK_UINT(st.blocked, ==, 0);
    CHECK_UINT(st.waiters, ==, 0);
    gate_open(&g);
    CHECK_INT(pool_threads_wait(tp, -1), ==, 0);
    pool_threads_get_stats(tp, &st);
    CHECK_UINT(st.queued, ==, 0);
    CHECK_UINT(st.pending, ==, 0);
    CHECK_UINT(st.completed, ==, 4);
    pool_threads_free(tp);
    gate_destroy(&g);
}

static size_t stack_seen;
static void read_stack_size(pool_task *t)
{
    (void)t;
#if defined(__GLIBC__)
    {
        pthread_attr_t a;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            pthread_attr_getstacksize(&a, &stack_seen);
            pthread_attr_destroy(&a);
        }
    }
#endif
}

TEST(stack_size_is_applied_or_refused)
{
    pool_threads *tp = (pool_threads *)1;
    pool_threads_options o;
    pool_task t;
    o = threads_opts(2);
    o.stack_size = 1; /* below PTHREAD_STACK_MIN: refused, not ignored */
    CHECK_INT(pool_threads_new(&tp, &o), ==, -EINVAL);
    CHECK(tp == NULL);
    o.stack_size = (size_t)PTHREAD_STACK_MIN - 1;
    CHECK_INT(pool_threads_new(&tp, &o), ==, -EINVAL);
    /* twice the default: only a stack that big passes (glibc may reuse a
     * cached stack larger than asked, so only a lower bound is checked) */
    o.stack_size = (size_t)4 << 20;
#if defined(__GLIBC__)
    {
        pthread_attr_t a;
        size_t def = 0;
        if (pthread_getattr_default_np(&a) == 0) {
            pthread_attr_getstacksize(&a, &def);
            pthread_attr_destroy(&a);
        }
        if (def * 2 > o.stack_size)
            o.stack_size = def * 2;
    }
#endif
    REQUIRE_INT(pool_threads_new(&tp, &o), ==, 0);
    stack_seen = 0;
    REQUIRE_INT(pool_submit(tp, &t, read_stack_size, NULL), ==, 0);
    CHECK_INT(pool_wait(&t, -1), ==, 0);
#if defined(__GLIBC__)
    CHECK_UINT(stack_seen, >=, o.stack_size);
#endif
    CHECK_INT(pool_threads_free(tp), ==, 0);
}

/* ---- resource pool ---------------------------------------------------------------- */

typedef struct res {
    int id;
    int busy;  /* atomic: 1 while someone holds it */
    int bad;   /* atomic: validate fails */
} res;

typedef struct factory {
    int next_id, created, destroyed, fail, validated;
} factory;

static int f_create(void *ctx, void **out)
{
    factory *f = (factory *)ctx;
    res *r;
    int rc = __atomic_load_n(&f->fail, __ATOMIC_SEQ_CST);
    counter_add(&f->created);
    if (rc)
        return rc;
    r = (res *)calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->id = __atomic_add_fetch(&f->next_id, 1, __ATOMIC_SEQ_CST);
    *out = r;
    return 0;
}

static void f_destroy(void *ctx, void *p)
{
    factory *f = (factory *)ctx;
    counter_add(&f->destroyed);
    free(p);
}

static int f_validate(void *ctx, void *p)
{
    factory *f = (factory *)ctx;
    counter_add(&f->validated);
    return __atomic_load_n(&((res *)p)->bad, __ATOMIC_SEQ_CST) ? -EIO : 0;
}

static pool_res_options res_opts(factory *f, unsigned min, unsigned max)
{
    pool_res_options o;
    memset(&o, 0, sizeof o);
    memset(f, 0, sizeof *f);
    o.create = f_create;
    o.destroy = f_destroy;
    o.validate = f_validate;
    o.ctx = f;
    o.min = min;
    o.max = max;
    return o;
}

static int rid(pool_res_item *it) { return ((res *)it->resource)->id; }

/* Polls stats until cond holds or ms pass. */
#define WAIT_UNTIL(rp, st, cond, ms)                                        \
    do {                                                                    \
        int waited_ = 0;                                                    \
        for (;;) {                                                          \
            pool_res_get_stats((rp), &(st));                                \
            if ((cond) || waited_ >= (ms))                                  \
                break;                                                      \
            sleep_ms(2);                                                    \
            waited_ += 2;                                                   \
        }                                                                   \
    } while (0)

TEST(resource_acquire_release_reuses)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 2);
    pool_res *rp;
    pool_res_item *a, *b, *c;
    pool_res_stats st;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, 0), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &b, 0), ==, 0);
    CHECK(rid(a) != rid(b));
    CHECK_INT(pool_res_acquire(rp, &c, 0), ==, -EAGAIN); /* full, no wait */
    CHECK(c == NULL);
    pool_res_release(a);
    REQUIRE_INT(pool_res_acquire(rp, &c, 0), ==, 0);
    CHECK(c == a); /* reused, not created */
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 2);
    CHECK_UINT(st.in_use, ==, 2);
    CHECK_UINT(st.idle, ==, 0);
    CHECK_UINT(st.created, ==, 2);
    CHECK_UINT(st.acquired, ==, 3);
    CHECK_INT(pool_res_free(rp), ==, -EBUSY);
    pool_res_release(b);
    pool_res_release(c);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.idle, ==, 2);
    CHECK_INT(pool_res_free(rp), ==, 0);
    CHECK_INT(f.destroyed, ==, 2);
}

TEST(resource_bad_options)
{
    factory f;
    pool_res_options o = res_opts(&f, 3, 2);
    pool_res *rp;
    CHECK_INT(pool_res_new(&rp, &o), ==, -EINVAL); /* min > max */
    o.min = 0;
    o.create = NULL;
    CHECK_INT(pool_res_new(&rp, &o), ==, -EINVAL);
    CHECK_INT(pool_res_new(&rp, NULL), ==, -EINVAL);
}

TEST(resource_acquire_timeout_fires_on_time)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 1);
    pool_res *rp;
    pool_res_item *a, *b;
    pool_res_stats st;
    double t0, el;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    t0 = test_now_ms();
    CHECK_INT(pool_res_acquire(rp, &b, 40), ==, -ETIMEDOUT);
    el = test_now_ms() - t0;
    CHECK(el >= 39);
    CHECK(el < 40 + (TEST_SANITIZED ? 400 : 100));
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.timeouts, ==, 1);
    CHECK_UINT(st.waiting, ==, 0);
    pool_res_release(a);
    CHECK_INT(pool_res_free(rp), ==, 0);
}

typedef struct waiter_arg {
    pool_res *rp;
    int index;
    int *order;
    int *norder;
    int rc;
} waiter_arg;

static void *fifo_waiter(void *arg)
{
    waiter_arg *w = (waiter_arg *)arg;
    pool_res_item *it;
    w->rc = pool_res_acquire(w->rp, &it, 2000);
    if (w->rc == 0) {
        int k = __atomic_fetch_add(w->norder, 1, __ATOMIC_SEQ_CST);
        w->order[k] = w->index;
        pool_res_release(it);
    }
    return NULL;
}

/* Starts a thread that acquires from rp, then notes its index in order[]. */
static void fifo_waiter_start(pthread_t *th, waiter_arg *w, pool_res *rp, int index, int *order,
                              int *norder)
{
    w->rp = rp;
    w->index = index;
    w->order = order;
    w->norder = norder;
    pthread_create(th, NULL, fifo_waiter, w);
}

TEST(resource_waiters_are_served_in_order)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 1);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    pthread_t th[4];
    waiter_arg wa[4];
    int order[4] = {-1, -1, -1, -1}, norder = 0, i;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    for (i = 0; i < 4; i++) {
        fifo_waiter_start(&th[i], &wa[i], rp, i, order, &norder);
        WAIT_UNTIL(rp, st, st.waiting == (size_t)i + 1, 2000); /* queued in this order */
    }
    pool_res_release(a);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < 4; i++) {
        CHECK_INT(wa[i].rc, ==, 0);
        CHECK_INT(order[i], ==, i);
    }
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.created, ==, 1); /* one resource handed along the line */
    pool_res_free(rp);
}

TEST(resource_validation_failure_replaces_it)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 2);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    int first;
    o.validate_on_borrow = 1;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0); /* new: not validated */
    first = rid(a);
    CHECK_INT(f.validated, ==, 0);
    __atomic_store_n(&((res *)a->resource)->bad, 1, __ATOMIC_SEQ_CST);
    pool_res_release(a);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    CHECK(rid(a) != first);
    CHECK_INT(f.validated, ==, 1);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.validation_failures, ==, 1);
    CHECK_UINT(st.destroyed, ==, 1);
    CHECK_UINT(st.total, ==, 1);
    pool_res_release(a);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0); /* healthy: reused */
    CHECK_INT(f.validated, ==, 2);
    pool_res_release(a);
    pool_res_free(rp);
}

TEST(resource_min_kept_warm)
{
    factory f;
    pool_res_options o = res_opts(&f, 2, 4);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    WAIT_UNTIL(rp, st, st.idle == 2, 2000);
    CHECK_UINT(st.total, ==, 2);
    CHECK_UINT(st.idle, ==, 2);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    pool_res_release_broken(a); /* destroyed: the keeper replaces it */
    WAIT_UNTIL(rp, st, st.idle == 2, 2000);
    CHECK_UINT(st.total, ==, 2);
    CHECK_UINT(st.destroyed, ==, 1);
    CHECK_UINT(st.created, ==, 3);
    CHECK_INT(pool_res_clear(rp), ==, 2);
    WAIT_UNTIL(rp, st, st.idle == 2, 2000);
    CHECK_UINT(st.idle, ==, 2); /* rebuilt after clear */
    pool_res_free(rp);
    CHECK_INT(f.destroyed, ==, f.created);
}

TEST(resource_idle_eviction_down_to_min)
{
    factory f;
    pool_res_options o = res_opts(&f, 1, 4);
    pool_res *rp;
    pool_res_item *it[3];
    pool_res_stats st;
    int i;
    o.idle_timeout_ms = 30;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    for (i = 0; i < 3; i++)
        REQUIRE_INT(pool_res_acquire(rp, &it[i], -1), ==, 0);
    for (i = 0; i < 3; i++)
        pool_res_release(it[i]);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, >=, 3);
    WAIT_UNTIL(rp, st, st.total == 1, 2000);
    CHECK_UINT(st.total, ==, 1);
    CHECK_UINT(st.idle, ==, 1);
    sleep_ms(60);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 1); /* never below min */
    pool_res_free(rp);
}

TEST(resource_max_lifetime)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 2);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    int first;
    o.max_lifetime_ms = 30;
    o.idle_timeout_ms = -1;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    first = rid(a);
    sleep_ms(40);
    pool_res_release(a); /* too old: destroyed on release */
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.destroyed, ==, 1);
    CHECK_UINT(st.total, ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    CHECK(rid(a) != first);
    pool_res_release(a); /* young: kept, then evicted by the keeper */
    WAIT_UNTIL(rp, st, st.total == 0, 2000);
    CHECK_UINT(st.destroyed, ==, 2);
    pool_res_free(rp);
}

TEST(resource_health_check)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 3);
    pool_res *rp;
    pool_res_item *it[3];
    pool_res_stats st;
    int i;
    o.health_interval_ms = 20;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    for (i = 0; i < 3; i++)
        REQUIRE_INT(pool_res_acquire(rp, &it[i], -1), ==, 0);
    __atomic_store_n(&((res *)it[1]->resource)->bad, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < 3; i++)
        pool_res_release(it[i]);
    WAIT_UNTIL(rp, st, st.validation_failures == 1 && counter_get(&f.validated) >= 3, 2000);
    CHECK_UINT(st.validation_failures, ==, 1);
    CHECK_UINT(st.total, ==, 2);
    CHECK_INT(counter_get(&f.validated), >=, 3);
    pool_res_free(rp);
}

TEST(resource_create_failure_reaches_the_acquirer)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 2);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    f.fail = -ECONNREFUSED;
    CHECK_INT(pool_res_acquire(rp, &a, 100), ==, -ECONNREFUSED);
    CHECK_INT(pool_res_acquire(rp, &a, 100), ==, -ECONNREFUSED);
    CHECK_INT(f.created, ==, 2); /* one attempt per acquire, no retry loop */
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.create_failures, ==, 2);
    CHECK_UINT(st.total, ==, 0);
    __atomic_store_n(&f.fail, 0, __ATOMIC_SEQ_CST);
    REQUIRE_INT(pool_res_acquire(rp, &a, 100), ==, 0);
    pool_res_release(a);
    pool_res_free(rp);
}

TEST(resource_failed_replacement_reaches_the_waiter)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 1);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    pthread_t th;
    waiter_arg wa;
    int order[1], norder = 0;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    fifo_waiter_start(&th, &wa, rp, 0, order, &norder);
    WAIT_UNTIL(rp, st, st.waiting == 1, 2000);
    __atomic_store_n(&f.fail, -EHOSTUNREACH, __ATOMIC_SEQ_CST);
    pool_res_release_broken(a); /* the waiter gets the slot, its create fails */
    pthread_join(th, NULL);
    CHECK_INT(wa.rc, ==, -EHOSTUNREACH);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 0);
    CHECK_UINT(st.waiting, ==, 0);
    pool_res_free(rp);
}

typedef struct hammer {
    pool_res *rp;
    int iterations, ok, timeouts, double_handed;
    unsigned seed;
} hammer;

static void *hammer_thread(void *arg)
{
    hammer *h = (hammer *)arg;
    int i;
    for (i = 0; i < h->iterations; i++) {
        pool_res_item *it;
        int rc;
        h->seed = h->seed * 1103515245u + 12345u;
        rc = pool_res_acquire(h->rp, &it, (int)(h->seed >> 16) % 2);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            h->timeouts++;
            continue;
        }
        if (rc != 0)
            continue;
        if (__atomic_exchange_n(&((res *)it->resource)->busy, 1, __ATOMIC_SEQ_CST))
            h->double_handed++;
        if ((h->seed >> 20) % 8 == 0)
            sched_yield();
        __atomic_store_n(&((res *)it->resource)->busy, 0, __ATOMIC_SEQ_CST);
        h->ok++;
        if ((h->seed >> 12) % 50 == 0)
            pool_res_release_broken(it);
        else
            pool_res_release(it);
    }
    return NULL;
}

TEST(resource_timeout_release_race_hammer)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 2);
    pool_res *rp;
    pool_res_stats st;
    pthread_t th[4];
    hammer h[4];
    int i, ok = 0, dbl = 0, to = 0;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    for (i = 0; i < 4; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].rp = rp;
        h[i].iterations = TEST_SANITIZED ? 3000 : 30000;
        h[i].seed = (unsigned)i * 7919u + 1u;
        pthread_create(&th[i], NULL, hammer_thread, &h[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += h[i].ok;
        dbl += h[i].double_handed;
        to += h[i].timeouts;
    }
    CHECK_INT(dbl, ==, 0);
    CHECK_INT(ok + to, <=, 4 * h[0].iterations);
    CHECK_INT(ok, >, 0);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.in_use, ==, 0);
    CHECK_UINT(st.waiting, ==, 0);
    CHECK_UINT(st.creating, ==, 0);
    CHECK_UINT(st.total, <=, 2);
    CHECK_UINT(st.idle, ==, st.total); /* nothing leaked */
    CHECK_UINT(st.created - st.destroyed, ==, st.total);
    CHECK_UINT(st.acquired, ==, (uint64_t)ok);
    pool_res_free(rp);
    CHECK_INT(f.created, ==, f.destroyed);
}

TEST(resource_drain_and_free)
{
    factory f;
    pool_res_options o = res_opts(&f, 1, 3);
    pool_res *rp;
    pool_res_item *a, *b;
    pool_res_stats st;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &b, -1), ==, 0);
    pool_res_release(b);
    CHECK_INT(pool_res_drain(rp, 20), ==, -ETIMEDOUT); /* a is out */
    CHECK_INT(pool_res_acquire(rp, &b, 0), ==, -ESHUTDOWN);
    pool_res_release(a);
    CHECK_INT(pool_res_drain(rp, 1000), ==, 0);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 0);
    sleep_ms(10);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 0); /* min is not rebuilt while draining */
    CHECK_INT(pool_res_free(rp), ==, 0);
    CHECK_INT(f.destroyed, ==, f.created);
}

TEST(resource_max_waiters)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 1);
    pool_res *rp;
    pool_res_item *a;
    pthread_t th;
    waiter_arg wa;
    pool_res_stats st;
    int order[1], norder = 0;
    o.max_waiters = 1;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    fifo_waiter_start(&th, &wa, rp, 0, order, &norder);
    WAIT_UNTIL(rp, st, st.waiting == 1, 2000);
    {
        pool_res_item *b;
        CHECK_INT(pool_res_acquire(rp, &b, 100), ==, -EAGAIN);
    }
    pool_res_release(a);
    pthread_join(th, NULL);
    CHECK_INT(wa.rc, ==, 0);
    pool_res_free(rp);
}

/* A factory whose create, destroy or validate can be held at a gate. */
typedef struct slow_factory {
    factory f;
    gate create_gate, destroy_gate, validate_gate;
    int hold_create, hold_destroy, hold_validate; /* atomic */
    int fail_first;                               /* creates that fail first */
    double create_at[8];                          /* ms of each attempt */
    int attempts;                                 /* atomic */
} slow_factory;

static int sf_create(void *ctx, void **out)
{
    slow_factory *sf = (slow_factory *)ctx;
    int k = __atomic_fetch_add(&sf->attempts, 1, __ATOMIC_SEQ_CST);
    if (k < 8)
        sf->create_at[k] = test_now_ms();
    if (counter_get(&sf->hold_create))
        gate_pass(&sf->create_gate);
    if (k < sf->fail_first)
        return -ECONNREFUSED;
    return f_create(&sf->f, out);
}
static void sf_destroy(void *ctx, void *p)
{
    slow_factory *sf = (slow_factory *)ctx;
    if (counter_get(&sf->hold_destroy))
        gate_pass(&sf->destroy_gate);
    f_destroy(&sf->f, p);
}
static int sf_validate(void *ctx, void *p)
{
    slow_factory *sf = (slow_factory *)ctx;
    if (counter_get(&sf->hold_validate))
        gate_pass(&sf->validate_gate);
    return f_validate(&sf->f, p);
}

static pool_res_options slow_opts(slow_factory *sf, unsigned min, unsigned max)
{
    pool_res_options o = res_opts(&sf->f, min, max);
    memset(sf, 0, sizeof *sf);
    gate_init(&sf->create_gate);
    gate_init(&sf->destroy_gate);
    gate_init(&sf->validate_gate);
    o.create = sf_create;
    o.destroy = sf_destroy;
    o.validate = sf_validate;
    o.ctx = sf;
    return o;
}

static void slow_done(slow_factory *sf)
{
    gate_destroy(&sf->create_gate);
    gate_destroy(&sf->destroy_gate);
    gate_destroy(&sf->validate_gate);
}

/* Opens the factory's gates after ms unless stopped first. */
static void rescue_factory(rescuer *r, slow_factory *sf, int ms)
{
    rescuer_start(r, ms, &sf->create_gate, &sf->destroy_gate, &sf->validate_gate);
}

typedef struct acquirer {
    pool_res *rp;
    pool_res_item *it;
    int timeout_ms, rc;
} acquirer;
static void *acquire_main(void *arg)
{
    acquirer *a = (acquirer *)arg;
    a->rc = pool_res_acquire(a->rp, &a->it, a->timeout_ms);
    return NULL;
}

/* Starts a thread that acquires from rp (result in a->rc and a->it). */
static void acquirer_start(pthread_t *th, acquirer *a, pool_res *rp, int timeout_ms)
{
    memset(a, 0, sizeof *a);
    a->rp = rp;
    a->timeout_ms = timeout_ms;
    pthread_create(th, NULL, acquire_main, a);
}

/* The keeper evicts an idle resource (its destroy is slow) while an
 * acquirer creates one: pool_res_free must see the acquirer. */
TEST(resource_free_is_busy_while_an_acquirer_creates)
{
    slow_factory sf;
    pool_res_options o = slow_opts(&sf, 0, 2);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    acquirer acq;
    rescuer rs;
    pthread_t th;
    int rc;
    o.idle_timeout_ms = 10;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    __atomic_store_n(&sf.hold_destroy, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&sf.hold_create, 1, __ATOMIC_SEQ_CST);
    pool_res_release(a);
    gate_wait_for(&sf.destroy_gate, 1); /* the keeper is destroying it */
    acquirer_start(&th, &acq, rp, -1);
    gate_wait_for(&sf.create_gate, 1); /* the acquirer is creating */
    rescue_factory(&rs, &sf, 1000);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.creating, ==, 1);
    rc = pool_res_free(rp);
    CHECK_INT(rc, ==, -EBUSY);
    rescuer_stop(&rs);
    pthread_join(th, NULL);
    if (rc == 0) { /* freed under the acquirer: nothing more to check */
        slow_done(&sf);
        return;
    }
    CHECK_INT(acq.rc, ==, 0);
    pool_res_release(acq.it);
    CHECK_INT(pool_res_free(rp), ==, 0);
    CHECK_INT(sf.f.created, ==, sf.f.destroyed);
    slow_done(&sf);
}

/* The only resource is in the keeper's health check and an acquire waits
 * for it: nothing is borrowed, and free still refuses. */
TEST(resource_free_is_busy_while_only_waiters_remain)
{
    slow_factory sf;
    pool_res_options o = slow_opts(&sf, 0, 1);
    pool_res *rp;
    pool_res_item *a;
    pool_res_stats st;
    acquirer acq;
    rescuer rs;
    pthread_t th;
    o.health_interval_ms = 10;
    o.idle_timeout_ms = -1;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    __atomic_store_n(&sf.hold_validate, 1, __ATOMIC_SEQ_CST);
    pool_res_release(a);
    gate_wait_for(&sf.validate_gate, 1); /* the keeper holds it */
    acquirer_start(&th, &acq, rp, 5000);
    WAIT_UNTIL(rp, st, st.waiting == 1, 2000);
    CHECK_UINT(st.waiting, ==, 1);
    CHECK_UINT(st.in_use, ==, 0);
    CHECK_UINT(st.creating, ==, 0);
    rescue_factory(&rs, &sf, 1000);
    CHECK_INT(pool_res_free(rp), ==, -EBUSY);
    rescuer_stop(&rs); /* opens the gate: the check ends, the waiter gets it */
    pthread_join(th, NULL);
    CHECK_INT(acq.rc, ==, 0);
    pool_res_release(acq.it);
    CHECK_INT(pool_res_free(rp), ==, 0);
    slow_done(&sf);
}

/* The keeper keeps min: creates that fail are retried after
 * create_retry_ms, doubling, and the first success ends the backoff. */
TEST(resource_keeper_retries_min_with_backoff)
{
    slow_factory sf;
    pool_res_options o = slow_opts(&sf, 1, 2);
    pool_res *rp;
    pool_res_stats st;
    double gap[3];
    int i, tol = TEST_SANITIZED ? 200 : 60;
    o.create_retry_ms = 25;
    sf.fail_first = 3;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    WAIT_UNTIL(rp, st, st.idle == 1, 3000);
    CHECK_UINT(st.idle, ==, 1);
    CHECK_UINT(st.total, ==, 1);
    CHECK_UINT(st.create_failures, ==, 3);
    CHECK_UINT(st.created, ==, 1);
    REQUIRE_INT(counter_get(&sf.attempts), ==, 4);
    for (i = 0; i < 3; i++)
        gap[i] = sf.create_at[i + 1] - sf.create_at[i];
    CHECK(gap[0] >= 24 && gap[0] < 25 + tol);  /* create_retry_ms */
    CHECK(gap[1] >= 49 && gap[1] < 50 + tol);  /* doubled */
    CHECK(gap[2] >= 99 && gap[2] < 100 + tol); /* and again */
    sleep_ms(30);
    CHECK_INT(counter_get(&sf.attempts), ==, 4); /* min is met: no more */
    CHECK_INT(pool_res_free(rp), ==, 0);
    slow_done(&sf);
}

/* drain lets the acquires already waiting be served, refuses new ones,
 * and returns once everything is back. */
TEST(resource_drain_serves_waiting_acquires)
{
    factory f;
    pool_res_options o = res_opts(&f, 0, 1);
    pool_res *rp;
    pool_res_item *a, *b;
    pool_res_stats st;
    acquirer acq[2];
    pthread_t th[2];
    int i;
    REQUIRE_INT(pool_res_new(&rp, &o), ==, 0);
    REQUIRE_INT(pool_res_acquire(rp, &a, -1), ==, 0);
    for (i = 0; i < 2; i++) {
        acquirer_start(&th[i], &acq[i], rp, 5000);
        WAIT_UNTIL(rp, st, st.waiting == (size_t)i + 1, 2000);
    }
    CHECK_INT(pool_res_drain(rp, 20), ==, -ETIMEDOUT); /* a is out, two wait */
    CHECK_INT(pool_res_acquire(rp, &b, 100), ==, -ESHUTDOWN);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.waiting, ==, 2);
    pool_res_release(a); /* to the first waiter */
    pthread_join(th[0], NULL);
    CHECK_INT(acq[0].rc, ==, 0);
    CHECK(acq[0].it == a);
    pool_res_release(acq[0].it); /* to the second */
    pthread_join(th[1], NULL);
    CHECK_INT(acq[1].rc, ==, 0);
    CHECK_INT(pool_res_drain(rp, 20), ==, -ETIMEDOUT);
    pool_res_release(acq[1].it); /* nobody waits: destroyed */
    CHECK_INT(pool_res_drain(rp, 1000), ==, 0);
    pool_res_get_stats(rp, &st);
    CHECK_UINT(st.total, ==, 0);
    CHECK_UINT(st.destroyed, ==, 1);
    CHECK_INT(pool_res_free(rp), ==, 0);
}

int main(void)
{
    RUN(million_tasks_run_exactly_once);
    RUN(submit_and_wait_for_one);
    RUN(done_runs_on_the_worker_and_wait_refuses_it);
    RUN(pool_call_runs_fn_and_done);
    RUN(bad_options);
    RUN(bounded_queue_fails_when_full);
    RUN(bounded_queue_blocks_until_room);
    RUN(shutdown_wakes_a_blocked_submitter);
    RUN(cancel_a_queued_task);
    RUN(graceful_shutdown_finishes_the_queue);
    RUN(immediate_shutdown_cancels_the_queue);
    RUN(cancel_shutdown_during_a_burst_reports_each_task_once);
    RUN(free_from_a_done_callback_on_a_worker);
    RUN(free_from_a_done_while_the_submit_returns);
    RUN(init_and_exit_hooks);
    RUN(thread_names);
    RUN(waits_and_submits_from_a_worker_do_not_deadlock);
    RUN(wait_all_times_out);
    RUN(strerror_names_errors);
    RUN(cancel_from_a_done_run_by_a_cancel_shutdown);
    RUN(cancel_races_a_cancel_shutdown);
    RUN(free_from_a_done_run_by_a_cancel_shutdown);
    RUN(free_from_a_done_run_by_a_cancel_shutdown_on_a_worker);
    RUN(free_waits_for_the_callers_it_woke);
    RUN(stats_count_queued_and_pending);
    RUN(stack_size_is_applied_or_refused);
    RUN(resource_acquire_release_reuses);
    RUN(resource_bad_options);
    RUN(resource_acquire_timeout_fires_on_time);
    RUN(resource_waiters_are_served_in_order);
    RUN(resource_validation_failure_replaces_it);
    RUN(resource_min_kept_warm);
    RUN(resource_idle_eviction_down_to_min);
    RUN(resource_max_lifetime);
    RUN(resource_health_check);
    RUN(resource_create_failure_reaches_the_acquirer);
    RUN(resource_failed_replacement_reaches_the_waiter);
    RUN(resource_timeout_release_race_hammer);
    RUN(resource_drain_and_free);
    RUN(resource_max_waiters);
    RUN(resource_free_is_busy_while_an_acquirer_creates);
    RUN(resource_free_is_busy_while_only_waiters_remain);
    RUN(resource_keeper_retries_min_with_backoff);
    RUN(resource_drain_serves_waiting_acquires);
    return test_done();
}
