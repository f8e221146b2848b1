/* Opens N keep-alive connections to 127.0.0.1:PORT, makes one request on
 * each (GET /plaintext), reads the response, and keeps them open until
 * killed; prints "ready" when all N are idle. Used by bench/http_server
 * to measure the server's memory per idle keep-alive connection.
 *   http_idle_clients PORT N */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static const char req[] = "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n";
    struct sockaddr_in a;
    struct rlimit rl;
    int port, n, i;
    if (argc != 3)
        return 2;
    port = atoi(argv[1]);
    n = atoi(argv[2]);
    rl.rlim_cur = rl.rlim_max = (rlim_t)n + 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 1;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 0; i < n; i++) {
        char buf[1024] = "";
        size_t got = 0;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            send(fd, req, sizeof req - 1, 0) != (ssize_t)(sizeof req - 1)) {
            fprintf(stderr, "connection %d: ", i);
            perror("");
            return 1;
        }
        while (!strstr(buf, "Hello, World!")) { /* the whole response */
            ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (k <= 0) {
                fprintf(stderr, "connection %d closed early\n", i);
                return 1;
            }
            got += (size_t)k;
            buf[got] = 0;
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
