/* pool_bench.c - benchmarks of pool.h (see bench/pool).
 *
 *   pool_bench tasks N            N empty tasks submitted from an evloop
 *                                 callback, each completed back on the loop;
 *                                 prints tasks per second
 *   pool_bench res THREADS MAX N  N acquire+release pairs per thread on a
 *                                 resource pool of at most MAX; prints
 *                                 pairs per second (all threads together)
 */
#define EVLOOP_IMPLEMENTATION
#define POOL_IMPLEMENTATION
#include "../../evloop.h"
#include "../../pool.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tasks ---- */

static pool_task *tasks, warm;
static long n_tasks, n_done;
static pool_loop *pl;

static void work(pool_task *t) { (void)t; }
static void done(pool_task *t, int status)
{
    (void)t;
    if (status == 0)
        n_done++;
}

static void start(evloop_timer *t)
{
    long i;
    (void)t;
    for (i = 0; i < n_tasks; i++)
        if (pool_loop_submit(pl, &tasks[i], work, done) != 0) {
            fprintf(stderr, "submit failed\n");
            exit(1);
        }
}

static int bench_tasks(long n)
{
    evloop *loop;
    evloop_timer t;
    uint64_t t0, t1;
    n_tasks = n;
    tasks = (pool_task *)calloc((size_t)n, sizeof *tasks);
    if (!tasks || evloop_new(&loop, NULL) < 0 || pool_loop_new(&pl, loop, NULL) < 0)
        return 1;
    /* warm-up, as uv_tasks does for libuv: one task run to completion
     * before the clock starts (the workers already exist) */
    if (pool_loop_submit(pl, &warm, work, done) != 0)
        return 1;
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    n_done = 0;
    evloop_timer_init(loop, &t);
    t0 = evloop_hrtime();
    evloop_timer_start(&t, start, 0, 0);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    t1 = evloop_hrtime();
    if (n_done != n_tasks) {
        fprintf(stderr, "only %ld of %ld tasks completed\n", n_done, n_tasks);
        return 1;
    }
    evloop_close(&t.handle, NULL);
    pool_loop_close(pl);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    evloop_free(loop);
    free(tasks);
    printf("%.0f\n", (double)n / ((double)(t1 - t0) / 1e9));
    return 0;
}

/* ---- resource pool ---- */

static int r_create(void *ctx, void **out)
{
    (void)ctx;
    *out = malloc(64);
    return *out ? 0 : -ENOMEM;
}
static void r_destroy(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static pool_res *rp;
static long per_thread;

static void *res_thread(void *arg)
{
    long i;
    (void)arg;
    for (i = 0; i < per_thread; i++) {
        pool_res_item *it;
        if (pool_res_acquire(rp, &it, -1) != 0) {
            fprintf(stderr, "acquire failed\n");
            exit(1);
        }
        ((char *)it->resource)[0]++;
        pool_res_release(it);
    }
    return NULL;
}

static int bench_res(int threads, unsigned max, long n)
{
    pool_res_options o;
    pthread_t th[64];
    uint64_t t0, t1;
    int i;
    memset(&o, 0, sizeof o);
    o.create = r_create;
    o.destroy = r_destroy;
    o.max = max;
    if (threads < 1 || threads > 64 || pool_res_new(&rp, &o) < 0)
        return 1;
    per_thread = n;
    t0 = evloop_hrtime();
    for (i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, res_thread, NULL);
    for (i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    t1 = evloop_hrtime();
    pool_res_free(rp);
    printf("%.0f\n", (double)n * threads / ((double)(t1 - t0) / 1e9));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "tasks") == 0)
        return bench_tasks(atol(argv[2]));
    if (argc >= 5 && strcmp(argv[1], "res") == 0)
        return bench_res(atoi(argv[2]), (unsigned)atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: pool_bench tasks N | res THREADS MAX N\n");
    return 2;
}
