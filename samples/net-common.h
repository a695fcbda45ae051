/* Finding the listening socket caplet granted (--listen), shared by the socket samples.
 *
 * Under caplet (wasm32-wasi) granted sockets are descriptors after the preopened directories.
 * A server finds its listener as systemd socket activation does (LISTEN_FDS and
 * LISTEN_FDS_START, with --listen-env), or else by probing descriptors from 3 up: the first
 * socket that may accept and not read (SOCK_ACCEPT without FD_READ) is the listener, as
 * wasmtime's --tcplisten guests do (a --connect grant has both: it redials). Built natively (for benchmarks), it listens itself on 127.0.0.1:$PORT
 * (0 by default) and prints "port N" on stderr. */
#ifndef NET_COMMON_H
#define NET_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef __wasi__
#include <wasi/api.h>
static int find_listener(void) {
    const char *n = getenv("LISTEN_FDS"), *start = getenv("LISTEN_FDS_START");
    if (n && atoi(n) > 0) return start ? atoi(start) : 3;
    for (int fd = 3; fd < 1024; fd++) {
        __wasi_fdstat_t st;
        __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
        if (e == __WASI_ERRNO_BADF) break;
        /* A listener may accept and cannot read (a connect grant may accept too: it redials). */
        if (e == 0 && st.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM && (st.fs_rights_base & __WASI_RIGHTS_SOCK_ACCEPT) &&
            !(st.fs_rights_base & __WASI_RIGHTS_FD_READ))
            return fd;
    }
    return -1;
}
#else
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
static int find_listener(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(getenv("PORT") ? atoi(getenv("PORT")) : 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) return -1;
    getsockname(fd, (struct sockaddr *)&a, &len);
    fprintf(stderr, "port %d\n", ntohs(a.sin_port));
    return fd;
}
#endif

/* Accepts one connection (no address: WASI has none to give). */
static int accept_one(int listener) {
    int c = accept(listener, NULL, NULL);
#ifndef __wasi__
    if (c >= 0) { int one = 1; setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
#endif
    return c;
}

/* Sends all of buf (a blocking socket may still take it in pieces). */
static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}
#endif
