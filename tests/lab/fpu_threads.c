/*
 * Two threads of one process, each holding its own pattern in zmm16 and zmm31 (AVX-512
 * state, beyond the 832 bytes user-mode Linux saves by itself) and yielding the CPU between
 * checks. Inside a user-mode Linux guest both threads share one host process, so every
 * switch between them goes through UML's save and restore of the FPU state: if the part
 * beyond 832 bytes were not kept per thread, one thread would read the other's pattern.
 * Prints "ok" or what it found; exit status 0 only when every check held.
 */
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ROUNDS 2000

static volatile int last = -1;       /* the thread that checked last */
static volatile long interleavings;  /* checks that followed the other thread's */

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

struct worker {
    int id;
    uint32_t pattern;
};

static void *run(void *arg) {
    const struct worker *me = arg;
    hold(me->pattern);
    for (int round = 0; round < ROUNDS; round++) {
        sched_yield();
        if (!holds(me->pattern)) return (void *)1;
        if (last != me->id) interleavings++;
        last = me->id;
    }
    return NULL;
}

int main(void) {
    pthread_t threads[2];
    struct worker workers[2] = {{0, 0x11111111u}, {1, 0x22222222u}};
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, &workers[i]);
    int failed = 0;
    for (int i = 0; i < 2; i++) {
        void *result;
        pthread_join(threads[i], &result);
        if (result) {
            printf("thread %d lost its zmm16/zmm31 pattern %#x\n", i, workers[i].pattern);
            failed = 1;
        }
    }
    if (!failed) printf("ok: %d rounds per thread, %ld interleaved\n", ROUNDS, interleavings);
    return failed;
}
