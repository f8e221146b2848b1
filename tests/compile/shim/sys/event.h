/* The kqueue interface as FreeBSD and macOS declare it, so that evloop.h's
 * kqueue backend compiles on Linux too (tests/compile/evloop_kqueue.c).
 * Compile-only: nothing here is linked or run. */
#ifndef EVLOOP_TEST_SHIM_SYS_EVENT_H
#define EVLOOP_TEST_SHIM_SYS_EVENT_H
#include <stdint.h>
#include <time.h>

struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    intptr_t data;
    void *udata;
};

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

#define EV_SET(kevp, a, b, c, d, e, f)                                              \
    do {                                                                            \
        struct kevent *ev__ = (kevp);                                               \
        ev__->ident = (a);                                                          \
        ev__->filter = (short)(b);                                                  \
        ev__->flags = (unsigned short)(c);                                          \
        ev__->fflags = (unsigned int)(d);                                           \
        ev__->data = (e);                                                           \
        ev__->udata = (void *)(f);                                                  \
    } while (0)

#ifdef __cplusplus
extern "C" {
#endif
int kqueue(void);
int kevent(int kq, const struct kevent *changes, int nchanges, struct kevent *events, int nevents,
           const struct timespec *timeout);
#ifdef __cplusplus
}
#endif
#endif
