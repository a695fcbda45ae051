/*
 * tee: copies stdin to stdout and to each file named in argv (created or
 * truncated; "-a" first appends instead). A file that cannot be opened is
 * reported on stderr as "tee: <name>: <reason>" and the others are still
 * written; the exit code is 1 if anything failed, else 0.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_FILES 32

int main(int argc, char **argv) {
    FILE *out[MAX_FILES];
    int n = 0, status = 0, first = 1;
    const char *mode = "wb";
    if (argc > 1 && strcmp(argv[1], "-a") == 0) { mode = "ab"; first = 2; }
    for (int i = first; i < argc; i++) {
        if (n == MAX_FILES) { fprintf(stderr, "tee: at most %d files\n", MAX_FILES); return 1; }
        FILE *f = fopen(argv[i], mode);
        if (!f) { fprintf(stderr, "tee: %s: %s\n", argv[i], strerror(errno)); status = 1; continue; }
        out[n++] = f;
    }
    char buf[16384];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, got, stdout);
        for (int i = 0; i < n; i++) {
            if (fwrite(buf, 1, got, out[i]) != got) { fprintf(stderr, "tee: write error: %s\n", strerror(errno)); status = 1; }
        }
    }
    for (int i = 0; i < n; i++) {
        if (fclose(out[i]) != 0) { fprintf(stderr, "tee: close: %s\n", strerror(errno)); status = 1; }
    }
    return status;
}
