/* hello: the smallest caplet guest. Prints one line and exits 0. */
#include <stdio.h>

int main(void) {
    puts("hello from caplet");
    return 0;
}
