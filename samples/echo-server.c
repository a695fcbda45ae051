/* An echo server: every byte a client sends comes back, until the client ends its side; then
 * the connection closes. One event loop (poll) over the listener and up to 64 connections.
 *
 *   caplet run --listen 127.0.0.1:8080 samples/echo-server.wasm [CONNECTIONS]
 *   printf hello | nc -N 127.0.0.1 8080
 *
 * With CONNECTIONS, the server exits after serving that many (tests use it); else it serves
 * until stopped. */
#include <errno.h>
#include <poll.h>
#include "net-common.h"

#define MAXC 64
#define BUF (256 * 1024)

static char buf[BUF];

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 0, served = 0, accepted = 0;
    int listener = find_listener();
    if (listener < 0) {
        fprintf(stderr, "echo-server: no listening socket (run it with caplet run --listen ADDR)\n");
        return 2;
    }
    struct pollfd fds[MAXC + 1];
    int n = 0; /* connections, in fds[1..n] */
    for (;;) {
        fds[0].fd = listener;
        fds[0].events = (n < MAXC && (limit == 0 || accepted < limit)) ? POLLIN : 0;
        for (int i = 1; i <= n; i++) fds[i].events = POLLIN;
        if (fds[0].events == 0 && n == 0) break;
        if (poll(fds[0].events ? fds : fds + 1, fds[0].events ? n + 1 : n, -1) < 0) {
            perror("echo-server: poll");
            return 1;
        }
        if (fds[0].events && (fds[0].revents & POLLIN)) {
            int c = accept_one(listener);
            if (c >= 0) {
                accepted++;
                n++;
                fds[n].fd = c;
                fds[n].revents = 0;
            }
        }
        for (int i = 1; i <= n; i++) {
            if (!fds[i].revents) continue;
            ssize_t r = recv(fds[i].fd, buf, BUF, 0);
            if (r > 0 && send_all(fds[i].fd, buf, (size_t)r) == 0) continue;
            /* EOF, a reset, or a peer gone while we sent: this connection is over. */
            close(fds[i].fd);
            served++;
            fds[i] = fds[n];
            n--;
            i--;
        }
    }
    fprintf(stderr, "echo-server: served %ld connections\n", served);
    return 0;
}
