/* A minimal HTTP/1.1 static file server: GET and HEAD of files under ROOT (a read-only --dir),
 * keep-alive (HTTP/1.1 default, "Connection: close" ends it), Content-Length on every reply.
 * One event loop (poll) over the listener and up to 64 connections.
 *
 *   caplet run --listen 127.0.0.1:8080 --dir ./site:/www:ro samples/http-server.wasm [ROOT] [CONNECTIONS]
 *   curl http://127.0.0.1:8080/index.html
 *
 * ROOT defaults to /www. With CONNECTIONS, the server exits after serving that many. */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "net-common.h"

#define MAXC 64
#define REQ 8192
#define MAX_FILE (64L * 1024 * 1024)

struct conn { int fd; size_t len; char req[REQ]; };
static struct conn conns[MAXC];
static const char *root = "/www";

static int reply(int fd, int status, const char *reason, const char *type, const char *body, size_t len, int head, int keep) {
    char h[512];
    int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: %s\r\nConnection: %s\r\n\r\n",
                     status, reason, len, type, keep ? "keep-alive" : "close");
    struct iovec iov[2] = { { h, (size_t)n }, { (void *)body, head ? 0 : len } };
    size_t total = (size_t)n + iov[1].iov_len;
    /* One writev: one send for the header and the body together. */
    ssize_t w = writev(fd, iov, 2);
    if (w < 0) return -1;
    if ((size_t)w < total) {
        size_t done = (size_t)w;
        if (done < (size_t)n) { if (send_all(fd, h + done, (size_t)n - done)) return -1; done = (size_t)n; }
        if (!head && send_all(fd, body + (done - (size_t)n), len - (done - (size_t)n))) return -1;
    }
    return 0;
}

static const char *type_of(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html";
    if (!strcmp(dot, ".txt")) return "text/plain";
    if (!strcmp(dot, ".css")) return "text/css";
    if (!strcmp(dot, ".js")) return "text/javascript";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

/* Serves one request (the header block is req[0..hlen)); returns whether to keep the connection. */
static int serve(int fd, char *req, size_t hlen, int *ok) {
    char method[8], path[1024], version[16];
    req[hlen - 1] = '\0';
    if (sscanf(req, "%7s %1023s %15s", method, path, version) != 3) {
        *ok = reply(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, 0, 0) == 0;
        return 0;
    }
    int keep = strcmp(version, "HTTP/1.1") == 0;
    for (char *line = strstr(req, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *v = line + 2;
        if (!strncasecmp(v, "Connection:", 11)) {
            v += 11;
            while (*v == ' ') v++;
            if (!strncasecmp(v, "close", 5)) keep = 0;
            else if (!strncasecmp(v, "keep-alive", 10)) keep = 1;
        } else if (!strncasecmp(v, "Content-Length:", 15) && atol(v + 15) != 0) {
            *ok = reply(fd, 413, "Payload Too Large", "text/plain", "no request bodies\n", 18, 0, 0) == 0;
            return 0;
        }
    }
    int head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET")) {
        *ok = reply(fd, 405, "Method Not Allowed", "text/plain", "GET or HEAD\n", 12, 0, keep) == 0;
        return keep;
    }
    char *q = strchr(path, '?');
    if (q) *q = '\0';
    if (path[0] != '/' || strstr(path, "..")) {
        *ok = reply(fd, 404, "Not Found", "text/plain", "not found\n", 10, head, keep) == 0;
        return keep;
    }
    char file[1200];
    snprintf(file, sizeof file, "%s%s", root, strcmp(path, "/") ? path : "/index.html");
    int f = open(file, O_RDONLY);
    struct stat st;
    if (f < 0 || fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
        if (f >= 0) close(f);
        *ok = reply(fd, 404, "Not Found", "text/plain", "not found\n", 10, head, keep) == 0;
        return keep;
    }
    char *body = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (body && got < (size_t)st.st_size) {
        ssize_t r = read(f, body + got, (size_t)st.st_size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(f);
    if (!body || got != (size_t)st.st_size) {
        free(body);
        *ok = reply(fd, 500, "Internal Server Error", "text/plain", "read failed\n", 12, head, 0) == 0;
        return 0;
    }
    *ok = reply(fd, 200, "OK", type_of(file), body, got, head, keep) == 0;
    free(body);
    return keep;
}

/* Reads what arrived and answers every complete request; returns 0 when the connection is over. */
static int on_readable(struct conn *c) {
    if (c->len == REQ) return 0;
    ssize_t r = recv(c->fd, c->req + c->len, REQ - c->len, 0);
    if (r <= 0) return 0;
    c->len += (size_t)r;
    for (;;) {
        char *end = NULL;
        for (size_t i = 3; i < c->len; i++) {
            if (c->req[i - 3] == '\r' && c->req[i - 2] == '\n' && c->req[i - 1] == '\r' && c->req[i] == '\n') { end = c->req + i + 1; break; }
        }
        if (!end) {
            if (c->len == REQ) { int ok; reply(c->fd, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10, 0, 0); (void)ok; return 0; }
            return 1;
        }
        size_t hlen = (size_t)(end - c->req);
        int ok = 1;
        int keep = serve(c->fd, c->req, hlen, &ok);
        if (!keep || !ok) return 0;
        memmove(c->req, end, c->len - hlen);
        c->len -= hlen;
    }
}

int main(int argc, char **argv) {
    if (argc > 1) root = argv[1];
    long limit = argc > 2 ? atol(argv[2]) : 0, accepted = 0, served = 0;
    int listener = find_listener();
    if (listener < 0) {
        fprintf(stderr, "http-server: no listening socket (run it with caplet run --listen ADDR)\n");
        return 2;
    }
    struct pollfd fds[MAXC + 1];
    int n = 0;
    for (;;) {
        int listening = n < MAXC && (limit == 0 || accepted < limit);
        if (!listening && n == 0) break;
        fds[0].fd = listener;
        fds[0].events = POLLIN;
        for (int i = 0; i < n; i++) { fds[i + 1].fd = conns[i].fd; fds[i + 1].events = POLLIN; fds[i + 1].revents = 0; }
        fds[0].revents = 0;
        if (poll(listening ? fds : fds + 1, listening ? n + 1 : n, -1) < 0) { perror("http-server: poll"); return 1; }
        for (int i = n - 1; i >= 0; i--) {
            if (!fds[i + 1].revents) continue;
            if (on_readable(&conns[i])) continue;
            close(conns[i].fd);
            served++;
            conns[i] = conns[n - 1];
            n--;
        }
        if (listening && (fds[0].revents & POLLIN)) {
            int c = accept_one(listener);
            if (c >= 0) { conns[n].fd = c; conns[n].len = 0; n++; accepted++; }
        }
    }
    fprintf(stderr, "http-server: served %ld connections\n", served);
    return 0;
}
