/* A directory walk, as `find | xargs cat` or a build tool's scan does it: every directory is
 * listed, every entry lstat'ed, every regular file opened, read whole in 64 KiB chunks, closed.
 *   walk <dir>
 * Prints one RESULT line (walk: ns, ops = files read, check = bytes read) on stderr. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

static char buf[65536];
static long files, dirs;
static uint64_t bytes;

static void die(const char *what, const char *path) { fprintf(stderr, "FAIL %s %s: %s\n", what, path, strerror(errno)); exit(1); }

static void walk(char *path, size_t len) {
    DIR *d = opendir(path);
    if (!d) die("opendir", path);
    dirs++;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(e->d_name);
        if (len + 1 + n + 1 > 4096) continue;
        path[len] = '/';
        memcpy(path + len + 1, e->d_name, n + 1);
        struct stat st;
        if (lstat(path, &st) != 0) die("lstat", path);
        if (S_ISDIR(st.st_mode)) {
            walk(path, len + 1 + n);
        } else if (S_ISREG(st.st_mode)) {
            int fd = open(path, O_RDONLY);
            if (fd < 0) die("open", path);
            ssize_t r;
            while ((r = read(fd, buf, sizeof buf)) > 0) bytes += (uint64_t)r;
            if (r < 0) die("read", path);
            close(fd);
            files++;
        }
        path[len] = 0;
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: walk <dir>\n"); return 2; }
    static char path[4096];
    strncpy(path, argv[1], sizeof path - 1);
    uint64_t t0 = now_ns();
    walk(path, strlen(path));
    report("walk", now_ns() - t0, (uint64_t)files, bytes);
    printf("%ld files in %ld directories, %llu bytes\n", files, dirs, (unsigned long long)bytes);
    return 0;
}
