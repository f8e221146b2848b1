/* pool_test_util.h - helpers shared by the tests of pool.h (test_pool.c,
 * test_pool_alone.c): gates that hold tasks until the test opens them, a
 * rescuer that opens them if a test would hang, small counters. Include it
 * after pool.h and test.h. */
#ifndef POOL_TEST_UTIL_H
#define POOL_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

static inline void sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static inline int counter_get(int *c) { return __atomic_load_n(c, __ATOMIC_SEQ_CST); }
static inline void counter_add(int *c) { __atomic_add_fetch(c, 1, __ATOMIC_SEQ_CST); }

/* Polls *c until it reaches n or ms pass. */
static inline void wait_for_count(int *c, int n, int ms)
{
    int waited = 0;
    while (counter_get(c) < n && waited < ms) {
        sleep_ms(1);
        waited++;
    }
}

/* ---- gates ------------------------------------------------------------------ */

/* A gate tasks (or callbacks) wait at until the test opens it. A static
 * gate may start as GATE_INIT instead of gate_init(). */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int open, waiting;
} gate;

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static inline void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = 0;
    g->waiting = 0;
}

static inline void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
}

/* Closes the gate again and forgets who passed it. */
static inline void gate_reset(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 0;
    g->waiting = 0;
    pthread_mutex_unlock(&g->mu);
}

static inline void gate_pass(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until n have come to the gate. */
static inline void gate_wait_for(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

/* A task's work: waits at the gate in its data. */
static inline void gate_work(pool_task *t) { gate_pass((gate *)t->data); }

/* Submits `running`, which waits at g, and returns once a worker holds it
 * (with one worker, the tasks submitted next stay queued). 0 or the
 * submit's error. */
static inline int hold_worker(pool_threads *tp, pool_task *running, gate *g)
{
    int rc;
    running->data = g;
    if ((rc = pool_submit(tp, running, gate_work, NULL)) == 0)
        gate_wait_for(g, 1);
    return rc;
}

/* ---- a rescuer: opens gates for a test that would hang ------------------------- */

/* Opens its gates after ms unless stopped first: a call that wrongly waits
 * for a gate then shows as a failed check, not a hang. */
typedef struct rescuer {
    gate *gates[3];
    int ms, stop; /* stop: atomic */
    pthread_t th;
} rescuer;

static inline void *rescuer__main(void *arg)
{
    rescuer *r = (rescuer *)arg;
    int waited = 0, i;
    while (!counter_get(&r->stop) && waited < r->ms) {
        sleep_ms(5);
        waited += 5;
    }
    for (i = 0; i < 3; i++)
        if (r->gates[i])
            gate_open(r->gates[i]);
    return NULL;
}

/* Starts a rescuer for up to three gates (b and c may be NULL). */
static inline void rescuer_start(rescuer *r, int ms, gate *a, gate *b, gate *c)
{
    memset(r, 0, sizeof *r);
    r->gates[0] = a;
    r->gates[1] = b;
    r->gates[2] = c;
    r->ms = ms;
    pthread_create(&r->th, NULL, rescuer__main, r);
}

/* Stops it: it opens its gates now, and is joined. */
static inline void rescuer_stop(rescuer *r)
{
    counter_add(&r->stop);
    pthread_join(r->th, NULL);
}

/* ---- a canceller: pool_cancel from another thread, racing a shutdown ---------- */

/* Cancels tasks[n-1] .. tasks[0] one by one, counting what pool_cancel said. */
typedef struct canceller {
    pool_task *tasks;
    int n;
    int ok, busy, tried; /* tried: atomic */
    pthread_t th;
} canceller;

static inline void *canceller__main(void *arg)
{
    canceller *c = (canceller *)arg;
    int i;
    for (i = c->n - 1; i >= 0; i--) {
        int rc = pool_cancel(&c->tasks[i]);
        if (rc == 0)
            c->ok++;
        else if (rc == -EBUSY)
            c->busy++;
        counter_add(&c->tried);
        sched_yield();
    }
    return NULL;
}

/* Starts it and returns once it is under way (10 tries made), so that what
 * the test does next meets it in the middle; join c->th afterwards. */
static inline void canceller_start(canceller *c, pool_task *tasks, int n)
{
    memset(c, 0, sizeof *c);
    c->tasks = tasks;
    c->n = n;
    pthread_create(&c->th, NULL, canceller__main, c);
    while (counter_get(&c->tried) < 10)
        sched_yield();
}

/* ---- options ---------------------------------------------------------------- */

/* Thread pool options with `threads` workers, the rest default. */
static inline pool_threads_options threads_opts(unsigned threads)
{
    pool_threads_options o;
    memset(&o, 0, sizeof o);
    o.threads = threads;
    return o;
}

#endif /* POOL_TEST_UTIL_H */
