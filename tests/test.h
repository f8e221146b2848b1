/* test.h - the project's own tiny test harness.
 *
 * One test file is one program. It defines test functions with TEST(),
 * runs them from main() with RUN(), and ends with `return test_done();`.
 *
 *     #include "test.h"
 *     TEST(adds) { CHECK_INT(1 + 1, ==, 2); }
 *     int main(void) { RUN(adds); return test_done(); }
 *
 * Checks do not stop the test; the REQUIRE_ forms return from the test
 * function when they fail (use them where going on would crash). A failed
 * check prints file:line, the expression and the values compared.
 *
 * The program ends with the line `NAME: N passed, N failed, N skipped`,
 * which build.sh reads, and exits non-zero when anything failed.
 * A watchdog (alarm) kills a program that runs longer than TEST_TIMEOUT
 * seconds (default 120), so a hung test fails instead of stalling the run.
 *
 * TEST_FILTER=substring in the environment runs only the tests whose name
 * contains it. TEST_SANITIZED is 1 under AddressSanitizer or
 * ThreadSanitizer, for tests that scale their load down there.
 */
#ifndef TEST_H
#define TEST_H

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

#ifndef TEST_TIMEOUT
#define TEST_TIMEOUT 120
#endif

static int test__passed, test__failed, test__skipped;
static int test__cur_failed, test__cur_skipped;
static const char *test__cur_name;

#define TEST(name) static void name(void)

#define RUN(name) test__run(#name, name)

/* Marks the running test as skipped (an absent tool, say) and returns. */
#define SKIP(why)                                                            \
    do {                                                                     \
        printf("  skip %s: %s\n", test__cur_name, (why));                    \
        test__cur_skipped = 1;                                               \
        return;                                                              \
    } while (0)

#define TEST__FAIL_HEAD() \
    (test__cur_failed++, fprintf(stderr, "%s:%d: in %s: ", __FILE__, __LINE__, test__cur_name))

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "CHECK(%s) failed\n", #cond);                    \
        }                                                                    \
    } while (0)

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "REQUIRE(%s) failed\n", #cond);                  \
            return;                                                          \
        }                                                                    \
    } while (0)

#define TEST__CMP_INT(a, op, b, onfail)                                      \
    do {                                                                     \
        intmax_t test__a = (intmax_t)(a), test__b = (intmax_t)(b);           \
        if (!(test__a op test__b)) {                                         \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "%s %s %s failed: %jd vs %jd\n", #a, #op, #b,    \
                    test__a, test__b);                                       \
            onfail;                                                          \
        }                                                                    \
    } while (0)

#define TEST__CMP_UINT(a, op, b, onfail)                                     \
    do {                                                                     \
        uintmax_t test__a = (uintmax_t)(a), test__b = (uintmax_t)(b);        \
        if (!(test__a op test__b)) {                                         \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "%s %s %s failed: %ju vs %ju\n", #a, #op, #b,    \
                    test__a, test__b);                                       \
            onfail;                                                          \
        }                                                                    \
    } while (0)

/* Signed comparison: CHECK_INT(rc, ==, 0). */
#define CHECK_INT(a, op, b) TEST__CMP_INT(a, op, b, (void)0)
#define REQUIRE_INT(a, op, b) TEST__CMP_INT(a, op, b, return)
/* Unsigned comparison, for sizes and counters past INTMAX_MAX. */
#define CHECK_UINT(a, op, b) TEST__CMP_UINT(a, op, b, (void)0)
#define REQUIRE_UINT(a, op, b) TEST__CMP_UINT(a, op, b, return)

#define TEST__STR(a, b, onfail)                                              \
    do {                                                                     \
        const char *test__a = (a), *test__b = (b);                           \
        if (!test__a || !test__b || strcmp(test__a, test__b) != 0) {         \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "%s == %s failed:\n    got      \"%s\"\n"        \
                    "    expected \"%s\"\n", #a, #b,                         \
                    test__a ? test__a : "(null)",                            \
                    test__b ? test__b : "(null)");                           \
            onfail;                                                          \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b) TEST__STR(a, b, (void)0)
#define REQUIRE_STR(a, b) TEST__STR(a, b, return)

/* Compares a (pointer, length) view with a C string. */
#define CHECK_MEM(p, n, s)                                                   \
    do {                                                                     \
        const char *test__p = (const char *)(p), *test__s = (s);             \
        size_t test__n = (size_t)(n), test__sl = strlen(test__s);            \
        if (test__n != test__sl || (test__n && memcmp(test__p, test__s, test__n) != 0)) { \
            TEST__FAIL_HEAD();                                               \
            fprintf(stderr, "%s == %s failed:\n    got      \"%.*s\"\n"      \
                    "    expected \"%s\"\n", #p, #s,                         \
                    test__p ? (int)test__n : 0, test__p ? test__p : "",      \
                    test__s);                                                \
        }                                                                    \
    } while (0)

static void test__watchdog(int sig)
{
    static const char msg[] = "\ntest watchdog: timed out\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
    _exit(124);
}

static void test__run(const char *name, void (*fn)(void))
{
    static int armed;
    const char *filter = getenv("TEST_FILTER");
    struct timespec t0, t1;
    if (!armed) {
        armed = 1;
        signal(SIGALRM, test__watchdog);
        alarm(TEST_TIMEOUT);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    if (filter && *filter && !strstr(name, filter))
        return;
    test__cur_name = name;
    test__cur_failed = 0;
    test__cur_skipped = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (test__cur_failed) {
        test__failed++;
        printf("  FAIL %s\n", name);
    } else if (test__cur_skipped) {
        test__skipped++;
    } else {
        test__passed++;
        printf("  ok   %s (%.0f ms)\n", name,
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
}

/* Prints the summary line and gives main()'s exit status. */
#define test_done() test__done(__FILE__)

static int test__done(const char *file)
{
    const char *base = strrchr(file, '/');
    int len;
    base = base ? base + 1 : file;
    len = (int)strcspn(base, ".");
    printf("%.*s: %d passed, %d failed, %d skipped\n", len, base,
           test__passed, test__failed, test__skipped);
    return test__failed ? 1 : 0;
}

/* Milliseconds on the monotonic clock, for bounds in tests. */
static inline double test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif /* TEST_H */
