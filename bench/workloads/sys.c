/* Syscall-bound workloads: each times a loop of one kind of host call, after a warm-up of a
 * tenth as many calls (so a JIT-compiled host is measured warm, as a long-running guest sees it).
 *   sys <op> <count> <dir>
 * op: write16      <count> x write(1, 16 bytes)           stdout discarded by the host
 *     filewrite16  <count> x write(fd, 16 bytes)          to <dir>/w16
 *     clock        <count> x clock_gettime(MONOTONIC)
 *     stat         <count> x stat(<dir>/statme)
 *     openclose    <count> x open(<dir>/statme) + close
 *     fileserve    <count> x open(<dir>/small.txt) + fstat + read it whole + close: what
 *                  samples/http-server.c does for each GET of a 16-byte file
 *     readdir      a directory of <count> entries in <dir>/many, listed 3 times; ops = entries listed ("." and ".." not counted)
 *     random       <count> KiB of random bytes, in 64 KiB requests
 *     fileio       <count> MiB written then read back in 64 KiB chunks (two results), after a warm-up
 *                  of a tenth as much through another file
 * Results: RESULT lines on stderr (common.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#ifdef __wasi__
#include <wasi/api.h>
static int fill_random(void *buf, size_t len) { return __wasi_random_get(buf, len) == 0 ? 0 : -1; }
#else
#include <sys/random.h>
static int fill_random(void *buf, size_t len) {
    size_t at = 0;
    while (at < len) { ssize_t n = getrandom((char *)buf + at, len - at, 0); if (n < 0) return -1; at += n; }
    return 0;
}
#endif

static char path[4096];
static const char *in(const char *dir, const char *name) { snprintf(path, sizeof path, "%s/%s", dir, name); return path; }
static void die(const char *what) { fprintf(stderr, "FAIL %s: %s\n", what, strerror(errno)); exit(1); }

#define TIMED(name, count, body)                                            \
    do {                                                                    \
        long warm_ = (count) / 10;                                          \
        for (long i = 0; i < warm_; i++) { body; }                          \
        uint64_t t0_ = now_ns();                                            \
        for (long i = 0; i < (count); i++) { body; }                        \
        report(name, now_ns() - t0_, (uint64_t)(count), check);             \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: sys <op> <count> <dir>\n"); return 2; }
    const char *op = argv[1], *dir = argv[3];
    long n = atol(argv[2]);
    uint64_t check = 0;
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    if (!strcmp(op, "write16")) {
        TIMED("write16", n, { if (write(1, buf, 16) != 16) die("write"); check++; });
    } else if (!strcmp(op, "filewrite16")) {
        int fd = open(in(dir, "w16"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("open w16");
        TIMED("filewrite16", n, { if (write(fd, buf, 16) != 16) die("write"); check++; });
        close(fd);
    } else if (!strcmp(op, "clock")) {
        struct timespec ts;
        TIMED("clock", n, { clock_gettime(CLOCK_MONOTONIC, &ts); check += ts.tv_nsec & 1; });
    } else if (!strcmp(op, "stat")) {
        int fd = open(in(dir, "statme"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, buf, 100) != 100) die("create statme");
        close(fd);
        struct stat st;
        char p[4096];
        strcpy(p, in(dir, "statme"));
        TIMED("stat", n, { if (stat(p, &st) != 0) die("stat"); check += st.st_size; });
    } else if (!strcmp(op, "openclose")) {
        int fd = open(in(dir, "statme"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("create statme");
        close(fd);
        char p[4096];
        strcpy(p, in(dir, "statme"));
        TIMED("openclose", n, { int f = open(p, O_RDONLY); if (f < 0) die("open"); close(f); check++; });
    } else if (!strcmp(op, "fileserve")) {
        int fd = open(in(dir, "small.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "hello, sockets!\n", 16) != 16) die("create small.txt");
        close(fd);
        char p[4096];
        strcpy(p, in(dir, "small.txt"));
        TIMED("fileserve", n, {
            int f = open(p, O_RDONLY);
            struct stat st;
            if (f < 0 || fstat(f, &st) != 0) die("open small.txt");
            if (read(f, buf, (size_t)st.st_size) != st.st_size) die("read small.txt");
            close(f);
            check += (unsigned char)buf[0];
        });
    } else if (!strcmp(op, "readdir")) {
        char d[4096];
        strcpy(d, in(dir, "many"));
        if (mkdir(d, 0755) != 0 && errno != EEXIST) die("mkdir many");
        for (long i = 0; i < n; i++) {
            char name[4200];
            snprintf(name, sizeof name, "%s/entry-%06ld", d, i);
            int fd = open(name, O_WRONLY | O_CREAT, 0644);
            if (fd < 0) die("create entry");
            close(fd);
        }
        long listed = 0;
        uint64_t t0 = now_ns();
        for (int pass = 0; pass < 3; pass++) {
            DIR *dh = opendir(d);
            if (!dh) die("opendir");
            struct dirent *e;
            while ((e = readdir(dh)) != NULL) {
                /* "." and ".." are listed by some hosts and not others: count only the entries made here. */
                if (e->d_name[0] == '.') continue;
                listed++;
                check += (unsigned char)e->d_name[strlen(e->d_name) - 1];
            }
            closedir(dh);
        }
        if (listed != 3 * n) { fprintf(stderr, "FAIL readdir listed %ld of %ld\n", listed, 3 * n); return 1; }
        report("readdir", now_ns() - t0, (uint64_t)listed, check);
    } else if (!strcmp(op, "random")) {
        long chunks = n / 64;
        TIMED("random", chunks, { if (fill_random(buf, 65536) != 0) die("random"); check += buf[i & 0xffff] & 1; });
    } else if (!strcmp(op, "fileio")) {
        long chunks = n * 16; /* 64 KiB chunks in n MiB */
        /* Warm-up, as TIMED does for the other ops: a tenth as many chunks through another file. */
        int warm = open(in(dir, "warm"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (warm < 0) die("open warm");
        for (long i = 0; i < chunks / 10; i++) if (write(warm, buf, 65536) != 65536) die("write warm");
        if (lseek(warm, 0, SEEK_SET) != 0) die("lseek warm");
        for (long i = 0; i < chunks / 10; i++) if (read(warm, buf, 65536) != 65536) die("read warm");
        close(warm);
        if (unlink(in(dir, "warm")) != 0) die("unlink warm");
        int fd = open(in(dir, "big"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("open big");
        uint64_t t0 = now_ns();
        for (long i = 0; i < chunks; i++) { buf[0] = (char)i; if (write(fd, buf, 65536) != 65536) die("write big"); }
        report("filewrite64k", now_ns() - t0, (uint64_t)chunks, check);
        if (lseek(fd, 0, SEEK_SET) != 0) die("lseek");
        t0 = now_ns();
        for (long i = 0; i < chunks; i++) { if (read(fd, buf, 65536) != 65536) die("read big"); check += (unsigned char)buf[0]; }
        report("fileread64k", now_ns() - t0, (uint64_t)chunks, check);
        close(fd);
    } else {
        fprintf(stderr, "unknown op %s\n", op);
        return 2;
    }
    return 0;
}
