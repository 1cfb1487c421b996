/*
 * FP32 FMA peak microbenchmark for sd-serve `bench`. Each thread runs CH independent FMA dependency chains in
 * registers (enough to cover FMA latency × issue ports), so the loop is bound by FMA throughput only.
 * Usage: fma_peak <threads> <width: 512|256> <iterations>; prints two numbers (1 FMA = 2 FLOP): GFLOP/s over the
 * wall-clock span of all threads, and GFLOP per CPU-second of one thread (total FLOP / summed thread CPU time),
 * which stays right when other processes share the cores.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CH 12
static long iters;
static int width;
static pthread_barrier_t start;
static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double t_begin[1024], t_end[1024], cpu[1024];

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    int id = (int) (long) arg;
    float s = 0;
    pthread_barrier_wait(&start);
    t_begin[id] = now();
    double c0 = thread_cpu();
#ifdef __AVX512F__
    if (width == 512) {
        __m512 a[CH];
        __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
        for (int i = 0; i < CH; i++) a[i] = _mm512_set1_ps((float) i);
        for (long k = 0; k < iters; k++)
            for (int i = 0; i < CH; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
        for (int i = 0; i < CH; i++) s += _mm512_reduce_add_ps(a[i]);
    }
#endif
#ifdef __FMA__
    if (width == 256) {
        __m256 a[CH];
        __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
        for (int i = 0; i < CH; i++) a[i] = _mm256_set1_ps((float) i);
        for (long k = 0; k < iters; k++)
            for (int i = 0; i < CH; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
        float t[8];
        for (int i = 0; i < CH; i++) {
            _mm256_storeu_ps(t, a[i]);
            for (int j = 0; j < 8; j++) s += t[j];
        }
    }
#endif
    t_end[id] = now();
    cpu[id] = thread_cpu() - c0;
    sink = s;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fma_peak threads width iters\n"); return 2; }
    int n = atoi(argv[1]);
    width = atoi(argv[2]);
    iters = atol(argv[3]);
#ifndef __AVX512F__
    if (width == 512) { printf("unsupported\n"); return 0; }
#endif
#ifndef __FMA__
    if (width == 256) { printf("unsupported\n"); return 0; }
#endif
    if (n < 1 || n > 1024) { fprintf(stderr, "bad thread count\n"); return 2; }
    pthread_t *th = malloc(sizeof(pthread_t) * n);
    pthread_barrier_init(&start, 0, n + 1);
    for (int i = 0; i < n; i++) pthread_create(&th[i], 0, work, (void *) (long) i);
    pthread_barrier_wait(&start);
    for (int i = 0; i < n; i++) pthread_join(th[i], 0);
    /* Span from the first thread's start to the last thread's end, timed by the workers themselves. */
    double b = t_begin[0], e = t_end[0];
    for (int i = 1; i < n; i++) {
        if (t_begin[i] < b) b = t_begin[i];
        if (t_end[i] > e) e = t_end[i];
    }
    double t = e - b, cs = 0;
    for (int i = 0; i < n; i++) cs += cpu[i];
    double flop = (double) n * iters * CH * (width / 32) * 2;
    printf("%.3f %.3f\n", flop / t / 1e9, flop / cs / 1e9);
    return 0;
}
