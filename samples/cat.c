/*
 * cat: copies each file named in argv to stdout, or stdin when there are no
 * arguments ("-" also means stdin). A file that cannot be read is reported on
 * stderr as "cat: <name>: <reason>" and the others are still copied; the exit
 * code is 1 if anything failed, else 0.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int copy(FILE *in, const char *name) {
    char buf[16384];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) {
            fprintf(stderr, "cat: write error: %s\n", strerror(errno));
            return -1;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "cat: %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int status = 0;
    if (argc < 2) return copy(stdin, "-") == 0 ? 0 : 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            if (copy(stdin, "-") != 0) status = 1;
            continue;
        }
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "cat: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        if (copy(f, argv[i]) != 0) status = 1;
        fclose(f);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "cat: write error: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
