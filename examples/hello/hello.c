/* The README's demo program: build it with `gcc -static`, package it with zeroimage. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("hello from a zeroimage container (uid %d)\n", (int)getuid());
    for (int i = 1; i < argc; i++) printf("arg: %s\n", argv[i]);
    return 0;
}
