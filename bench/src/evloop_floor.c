/* bench/src/evloop_floor.c - the floor under bench/evloop's ping-pong: the
 * same exchange written straight on epoll, with no event loop library.
 *
 *   evloop_floor SECS
 *
 * One thread, a client and a server socket over loopback, 4-byte messages
 * back and forth, TCP_NODELAY on both. Each hop costs the fewest system
 * calls a readiness loop can make: epoll_wait (edge-triggered, so never
 * re-armed), one recv, one send. No timers, no queues, no callbacks: what
 * it reaches is what any epoll-based loop can reach on this machine, and
 * the ratio of a library to it is the share the library itself costs.
 */
#include "bench_common.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

static int tcp_pair(int fds[2])
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    fds[1] = accept(lfd, NULL, NULL);
    close(lfd);
    if (fds[1] < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static char buf[65536];
    struct epoll_event ev[64], e;
    int fds[2], ep, n, i;
    size_t got[2] = {0, 0};
    long round_trips = 0;
    double secs = argc > 1 ? atof(argv[1]) : 3;
    uint64_t t0, end, t1;
    if (tcp_pair(fds) != 0 || (ep = epoll_create1(0)) < 0)
        return perror("setup"), 1;
    for (i = 0; i < 2; i++) {
        e.events = EPOLLIN | EPOLLET;
        e.data.u32 = (uint32_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) != 0)
            return perror("epoll_ctl"), 1;
    }
    t0 = now_ns();
    end = t0 + (uint64_t)(secs * 1e9);
    if (send(fds[0], "PING", 4, 0) != 4)
        return perror("send"), 1;
    for (;;) {
        n = epoll_wait(ep, ev, 64, -1);
        for (i = 0; i < n; i++) {
            int k = (int)ev[i].data.u32;
            ssize_t r = recv(fds[k], buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0)
                return fprintf(stderr, "recv: %zd\n", r), 1;
            for (got[k] += (size_t)r; got[k] >= 4; got[k] -= 4) {
                if (k == 0 && ++round_trips % 1024 == 0 && now_ns() >= end)
                    goto done;
                if (send(fds[k], "PING", 4, 0) != 4)
                    return perror("send"), 1;
            }
        }
    }
done:
    t1 = now_ns();
    printf("round_trips=%ld per_s=%.0f\n", round_trips, round_trips / ((t1 - t0) / 1e9));
    return 0;
}
