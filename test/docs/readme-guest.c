/*
 * readme-guest: the programs the README's examples name but do not ship, one binary chosen by
 * argv[0] (test/docs/readme-examples.test.ts builds it with clang-19 and copies it):
 *   prog*    prints its arguments, writes a line to /scratch/out.txt and /www/out.txt where
 *            those are mounted, reads /data/in.txt, and tries to create /data/new.txt (read-only)
 *   judge*   prints its arguments, then copies stdin to stdout
 *   client*  on the first granted connection (fd 3 when nothing is mounted): sends "ping\n",
 *            shuts down writing, prints what comes back until EOF
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void print_args(int argc, char **argv) {
    printf("args:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
}

static void try_write(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("written by prog\n", f);
    fclose(f);
    printf("wrote %s\n", path);
}

static int prog(int argc, char **argv) {
    print_args(argc, argv);
    try_write("/scratch/out.txt");
    try_write("/www/out.txt");
    char buf[256];
    FILE *in = fopen("/data/in.txt", "r");
    if (in) {
        size_t n = fread(buf, 1, sizeof buf - 1, in);
        buf[n] = 0;
        printf("/data/in.txt: %s", buf);
        fclose(in);
    }
    FILE *out = fopen("/data/new.txt", "w");
    printf("create /data/new.txt: %s\n", out ? "ok" : strerror(errno));
    return 0;
}

static int judge(int argc, char **argv) {
    print_args(argc, argv);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    return 0;
}

static int client(void) {
    const char msg[] = "ping\n";
    if (send(3, msg, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1)) {
        printf("send: %s\n", strerror(errno));
        return 1;
    }
    shutdown(3, SHUT_WR);
    char buf[512];
    ssize_t n;
    while ((n = recv(3, buf, sizeof buf, 0)) > 0) fwrite(buf, 1, (size_t)n, stdout);
    return n < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *name = argc > 0 ? argv[0] : "";
    const char *slash = strrchr(name, '/');
    if (slash) name = slash + 1;
    if (strncmp(name, "prog", 4) == 0) return prog(argc, argv);
    if (strncmp(name, "judge", 5) == 0) return judge(argc, argv);
    if (strncmp(name, "client", 6) == 0) return client();
    fprintf(stderr, "readme-guest: unknown name %s\n", name);
    return 2;
}
