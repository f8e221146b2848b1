/* uv_tasks.c - the libuv peer of `pool_bench tasks N`: N empty
 * uv_queue_work requests submitted from a loop callback, each completed
 * back on the loop; prints tasks per second.
 *
 * libuv starts its threads on the first uv_queue_work; pool.h's start in
 * pool_loop_new, before pool_bench's clock. So one request is run to
 * completion before the clock starts here too: both are timed warm. */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_work_t *reqs, warm;
static long n_tasks, n_done;

static void work(uv_work_t *r) { (void)r; }
static void after(uv_work_t *r, int status)
{
    (void)r;
    if (status == 0)
        n_done++;
}

static void start(uv_timer_t *t)
{
    long i;
    for (i = 0; i < n_tasks; i++)
        if (uv_queue_work(t->loop, &reqs[i], work, after) != 0) {
            fprintf(stderr, "uv_queue_work failed\n");
            exit(1);
        }
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t t;
    uint64_t t0, t1;
    n_tasks = argc > 1 ? atol(argv[1]) : 1000000;
    reqs = (uv_work_t *)calloc((size_t)n_tasks, sizeof *reqs);
    if (!reqs)
        return 1;
    /* warm-up: the thread pool exists before the clock starts */
    if (uv_queue_work(loop, &warm, work, after) != 0)
        return 1;
    uv_run(loop, UV_RUN_DEFAULT);
    n_done = 0;
    uv_timer_init(loop, &t);
    t0 = uv_hrtime();
    uv_timer_start(&t, start, 0, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    t1 = uv_hrtime();
    if (n_done != n_tasks) {
        fprintf(stderr, "only %ld of %ld completed\n", n_done, n_tasks);
        return 1;
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(reqs);
    printf("%.0f\n", (double)n_tasks / ((double)(t1 - t0) / 1e9));
    return 0;
}
