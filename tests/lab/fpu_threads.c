/*
 * Two threads of one process, each holding its own pattern in zmm16 and zmm31 (AVX-512
 * state), passing a token back and forth through two pipes: each round blocks one thread
 * and wakes the other. Inside a user-mode Linux guest every round goes through UML's save
 * and restore of the FPU state (and so through xstate.c's wrapper of ptrace): if that state
 * did not follow each thread intact, one would read the other's pattern. Prints "ok" and
 * the number of switches, or what it found; exit status 0 only when every check held.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#define ROUNDS 2000

struct worker {
    uint32_t pattern;
    int in, out; /* this thread's end of each pipe */
};

static void hold(uint32_t pattern) {
    __m512i value = _mm512_set1_epi32((int)pattern);
    __asm__ volatile("vmovdqa64 %0, %%zmm16\n\tvmovdqa64 %0, %%zmm31" : : "v"(value) : "xmm16", "xmm31");
}

static int holds(uint32_t pattern) {
    uint32_t low[16], high[16];
    __asm__ volatile("vmovdqu64 %%zmm16, %0\n\tvmovdqu64 %%zmm31, %1" : "=m"(low), "=m"(high));
    for (int i = 0; i < 16; i++)
        if (low[i] != pattern || high[i] != pattern) return 0;
    return 1;
}

static void *run(void *arg) {
    const struct worker *me = arg;
    char token;
    hold(me->pattern);
    for (int round = 0; round < ROUNDS; round++) {
        if (read(me->in, &token, 1) != 1) return (void *)2;
        if (!holds(me->pattern)) return (void *)1;
        if (write(me->out, &token, 1) != 1) return (void *)2;
    }
    return NULL;
}

int main(void) {
    int ping[2], pong[2];
    if (pipe(ping) || pipe(pong)) return 2;
    struct worker workers[2] = {{0x11111111u, ping[0], pong[1]}, {0x22222222u, pong[0], ping[1]}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, &workers[i]);
    if (write(ping[1], "t", 1) != 1) return 2; /* the first thread's first turn */
    int failed = 0;
    for (int i = 0; i < 2; i++) {
        void *result;
        pthread_join(threads[i], &result);
        if (result) {
            printf("thread %d %s\n", i, result == (void *)1 ? "lost its zmm16/zmm31 pattern" : "lost the token");
            failed = 1;
        }
    }
    if (!failed) printf("ok: %d switches between the two threads\n", 2 * ROUNDS);
    return failed;
}
