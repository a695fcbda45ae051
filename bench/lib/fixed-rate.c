// An open-loop HTTP/1.1 load generator in C, the same measurement as fixed-rate.mjs with a loader
// that costs the machine a few percent of a core instead of most of one: on a 2-core machine the
// Node loader's own CPU competes with the server it measures. POSTs `body` at a fixed rate,
// evenly spaced (a timerfd ticking at the interval), over keep-alive connections opened as needed
// (one request in flight per connection, no pipelining, as Node's http.Agent does), and measures
// each request from the moment it was due, so a stalled loader or server is charged to the
// latency. Collects the server's `Server-Timing` entries per name. Prints one JSON object.
//
//   fixed-rate HOST PORT PATH RATE SECONDS BODYFILE [MAXCONN]
//
// Linux only (epoll, timerfd). Built by bench/lib/fixed-rate-native.mjs with the machine's
// clang-19 -O2; not a test, not shipped.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TIMINGS 16
#define RBUF 65536

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

typedef struct {
  int fd;
  int busy;      // a request is in flight
  int connected; // the non-blocking connect finished
  long req;      // index of the request in flight
  size_t sent;   // bytes of the request written so far
  char rbuf[RBUF];
  size_t rlen;
} conn_t;

static struct sockaddr_in addr;
static char *request;
static size_t request_len;
static double *due, *done_at, *sent_at;
static long total, next_send, finished, bad;
static conn_t *conns;
static int nconns, maxconns, ep;
static long *waiting; // requests due while every connection was busy (FIFO)
static long wait_head, wait_tail;

static char timing_name[MAX_TIMINGS][32];
static double *timing_val[MAX_TIMINGS];
static long timing_n[MAX_TIMINGS];
static int ntimings;
// FIXED_RATE_TRACE=FILE: one line per request (due, CLOCK_MONOTONIC ms; latency, the server's
// timings by name), to see whether slow requests come alone or in bursts.
static double *per_req[MAX_TIMINGS];
static long current_req = -1;

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void record_timing(const char *name, size_t nlen, double v) {
  int i;
  for (i = 0; i < ntimings; i++)
    if (strlen(timing_name[i]) == nlen && memcmp(timing_name[i], name, nlen) == 0) break;
  if (i == ntimings) {
    if (ntimings == MAX_TIMINGS || nlen >= sizeof timing_name[0]) return;
    memcpy(timing_name[i], name, nlen);
    timing_name[i][nlen] = 0;
    timing_val[i] = malloc(sizeof(double) * total);
    ntimings++;
  }
  if (timing_n[i] < total) timing_val[i][timing_n[i]++] = v;
  if (per_req[0] && current_req >= 0) per_req[i][current_req] = v;
}

// "a;dur=1.2, b;dur=3" → record each entry.
static void parse_server_timing(const char *p, const char *end) {
  while (p < end) {
    while (p < end && (*p == ' ' || *p == ',')) p++;
    const char *name = p;
    while (p < end && *p != ';' && *p != ',') p++;
    size_t nlen = p - name;
    const char *dur = NULL;
    while (p < end && *p != ',') {
      if (end - p > 4 && strncmp(p, "dur=", 4) == 0) dur = p + 4;
      p++;
    }
    if (dur && nlen) record_timing(name, nlen, strtod(dur, NULL));
  }
}

static void close_conn(conn_t *c) {
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->connected = 0;
  c->rlen = 0;
}

static void want(conn_t *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
}

static int open_conn(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->connected = 0;
  c->rlen = 0;
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
  return 0;
}

static void try_write(conn_t *c) {
  while (c->sent < request_len) {
    ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
    if (n < 0) {
      if (errno == EAGAIN) {
        want(c, EPOLLIN | EPOLLOUT);
        return;
      }
      return; // the read side sees the error
    }
    if (c->sent == 0) sent_at[c->req] = now_ms();
    c->sent += n;
  }
  want(c, EPOLLIN);
}

static void start(conn_t *c, long req) {
  c->busy = 1;
  c->req = req;
  c->sent = 0;
  if (c->fd < 0 && open_conn(c) < 0) {
    bad++;
    done_at[req] = now_ms();
    finished++;
    c->busy = 0;
    return;
  }
  if (c->connected) try_write(c);
  // else: the connect's EPOLLOUT starts the write
}

static void dispatch(long req) {
  for (int i = 0; i < nconns; i++)
    if (!conns[i].busy) {
      start(&conns[i], req);
      return;
    }
  if (nconns < maxconns) {
    conns[nconns].fd = -1;
    start(&conns[nconns++], req);
    return;
  }
  waiting[wait_tail++] = req;
}

static void finish(conn_t *c, int ok) {
  done_at[c->req] = now_ms();
  if (!ok) bad++;
  finished++;
  c->busy = 0;
  if (wait_head < wait_tail) start(c, waiting[wait_head++]);
}

// A complete response in c->rbuf? Then consume it and finish the request.
static void parse(conn_t *c) {
  char *buf = c->rbuf;
  char *hdr_end = memmem(buf, c->rlen, "\r\n\r\n", 4);
  if (!hdr_end) return;
  size_t head = hdr_end + 4 - buf;
  int status = 0;
  if (c->rlen > 12) status = atoi(buf + 9);
  long clen = 0;
  int close_after = 0;
  char *timing = NULL, *timing_end = NULL;
  // header lines: from after the status line to the last one, whose \r is at hdr_end
  for (char *line = memchr(buf, '\n', head); line && line + 1 < hdr_end;) {
    line++;
    char *eol = memchr(line, '\r', hdr_end + 1 - line);
    if (!eol) break;
    size_t len = eol - line;
    if (len > 15 && strncasecmp(line, "content-length:", 15) == 0) clen = strtol(line + 15, NULL, 10);
    else if (len > 14 && strncasecmp(line, "server-timing:", 14) == 0) timing = line + 14, timing_end = eol;
    else if (len > 11 && strncasecmp(line, "connection:", 11) == 0 && memmem(line, len, "close", 5)) close_after = 1;
    line = memchr(eol, '\n', hdr_end + 2 - eol);
  }
  if (c->rlen < head + clen) return; // the body is still coming
  current_req = c->req;
  if (timing) parse_server_timing(timing, timing_end);
  current_req = -1;
  size_t used = head + clen;
  memmove(buf, buf + used, c->rlen - used);
  c->rlen -= used;
  if (close_after) close_conn(c);
  finish(c, status == 200);
}

static void on_event(conn_t *c, uint32_t events) {
  if (!c->connected) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      close_conn(c);
      if (c->busy) finish(c, 0);
      return;
    }
    c->connected = 1;
    if (c->busy) try_write(c);
    else want(c, EPOLLIN);
    return;
  }
  if (events & EPOLLOUT) try_write(c);
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (;;) {
      if (c->rlen == RBUF) {
        fprintf(stderr, "fixed-rate: a response over %d bytes\n", RBUF);
        exit(2);
      }
      ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
      if (n > 0) {
        c->rlen += n;
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      // closed or failed: a request in flight fails; an idle connection is reopened when next used
      int busy = c->busy;
      close_conn(c);
      if (busy) finish(c, 0);
      return;
    }
    if (c->busy) parse(c);
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(double *v, long n, double p) {
  if (n == 0) return -1;
  long i = (long)(n * p / 100);
  return v[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: fixed-rate HOST PORT PATH RATE SECONDS BODYFILE [MAXCONN]\n");
    return 2;
  }
  double rate = atof(argv[4]), seconds = atof(argv[5]);
  maxconns = argc > 7 ? atoi(argv[7]) : 256;
  addr.sin_family = AF_INET;
  addr.sin_port = htons(atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("address");
  FILE *f = fopen(argv[6], "rb");
  if (!f) die("body");
  static char body[1 << 20];
  size_t blen = fread(body, 1, sizeof body, f);
  fclose(f);
  request = malloc(blen + 512);
  request_len = snprintf(request, 512, "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                         argv[3], argv[1], argv[2], blen);
  memcpy(request + request_len, body, blen);
  request_len += blen;

  total = (long)(rate * seconds + 0.5);
  if (total < 1) total = 1;
  due = calloc(total, sizeof(double));
  done_at = calloc(total, sizeof(double));
  sent_at = calloc(total, sizeof(double));
  waiting = calloc(total, sizeof(long));
  conns = calloc(maxconns, sizeof(conn_t));
  for (int i = 0; i < maxconns; i++) conns[i].fd = -1;

  ep = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tfd < 0) die("epoll/timerfd");
  double interval_ns = 1e9 / rate;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  t0.tv_nsec += 20000000; // start 20 ms from now, as fixed-rate.mjs does
  if (t0.tv_nsec >= 1000000000) t0.tv_sec++, t0.tv_nsec -= 1000000000;
  double start_ms = t0.tv_sec * 1e3 + t0.tv_nsec / 1e6;
  for (long i = 0; i < total; i++) due[i] = start_ms + i * interval_ns / 1e6;
  struct itimerspec its = {.it_value = t0, .it_interval = {.tv_sec = (time_t)(interval_ns / 1e9), .tv_nsec = (long)interval_ns % 1000000000}};
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

  const char *trace = getenv("FIXED_RATE_TRACE");
  if (trace)
    for (int i = 0; i < MAX_TIMINGS; i++) per_req[i] = calloc(total, sizeof(double));
  double *late = calloc(total, sizeof(double));
  struct epoll_event evs[64];
  while (finished < total) {
    int n = epoll_wait(ep, evs, 64, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof ticks) != sizeof ticks) continue;
        double t = now_ms();
        // every request now due, however many ticks a stall merged
        while (next_send < total && due[next_send] <= t + 0.001) {
          late[next_send] = t - due[next_send];
          dispatch(next_send++);
        }
        if (next_send == total) {
          epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL);
          close(tfd);
        }
      } else {
        on_event(evs[i].data.ptr, evs[i].events);
      }
    }
  }
  double elapsed = (now_ms() - start_ms) / 1e3;
  if (trace) {
    FILE *tf = fopen(trace, "w");
    if (!tf) die("trace");
    fprintf(tf, "due latency sent");
    for (int i = 0; i < ntimings; i++) fprintf(tf, " %s", timing_name[i]);
    fprintf(tf, "\n");
    for (long r = 0; r < total; r++) {
      fprintf(tf, "%.3f %.3f %.3f", due[r], done_at[r] - due[r], sent_at[r] ? sent_at[r] - due[r] : -1);
      for (int i = 0; i < ntimings; i++) fprintf(tf, " %.3f", per_req[i][r]);
      fprintf(tf, "\n");
    }
    fclose(tf);
  }
  double *lat = malloc(sizeof(double) * total), *snt = malloc(sizeof(double) * total);
  for (long i = 0; i < total; i++) {
    lat[i] = done_at[i] - due[i];
    snt[i] = sent_at[i] ? done_at[i] - sent_at[i] : lat[i];
  }
  qsort(lat, total, sizeof(double), cmp);
  qsort(snt, total, sizeof(double), cmp);
  qsort(late, total, sizeof(double), cmp);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"loaderCpu\":%.3f,\"rps\":%.1f,\"total\":%ld,\"bad\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"sentP50\":%.3f,\"sentP99\":%.3f,\"loaderLateP99\":%.3f,\"connections\":%d,\"server\":{",
         cpu, total / elapsed, total, bad, pct(lat, total, 50), pct(lat, total, 99), lat[total - 1], pct(snt, total, 50), pct(snt, total, 99), pct(late, total, 99),
         nconns);
  for (int i = 0; i < ntimings; i++) {
    qsort(timing_val[i], timing_n[i], sizeof(double), cmp);
    printf("%s\"%s\":{\"p50\":%.3f,\"p99\":%.3f}", i ? "," : "", timing_name[i], pct(timing_val[i], timing_n[i], 50), pct(timing_val[i], timing_n[i], 99));
  }
  printf("}}\n");
  return 0;
}
