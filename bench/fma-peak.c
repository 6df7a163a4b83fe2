// This CPU's FP32 peak: fused multiply-adds on independent registers, on 1 and 2 threads.
//
// The widest FMA the CPU has (AVX-512, AVX2+FMA, NEON) is chosen at run time. Independent
// accumulator chains per thread cover the FMA latency (4-5 cycles) on two (or four) FMA pipes,
// so the loop is bound by the pipes' throughput, not by the chains' latency: sixteen where the
// ISA has 32 vector registers, twelve with AVX2's sixteen (sixteen chains and the two constants
// do not fit there: the compiler spills chains to the stack, and a store-to-load round trip in
// a chain halves the measured rate, as seen on a Zen 3: 53 instead of ~105 GFLOP/s). A
// multiply-add counts as 2 FLOPs. Each figure is the best of several trials (a shared machine's
// load only ever slows a trial down).
//
// Two clocks: each thread's own CPU time gives the rate of a core while the thread runs on it
// (what a loaded machine still shows), and the wall clock gives what the threads achieved
// together (lower when other processes share the cores).
//
// Build and run: cc -O2 -pthread bench/fma-peak.c -o fma-peak && ./fma-peak [--json]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRIALS 7

// The sixteen chains as named variables, written out: a loop over an array of vectors is not
// unrolled at -O2, and its vectors then live in memory instead of registers.
#define DECLARE(type, init) type a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), \
    a5 = init(5), a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11), \
    a12 = init(12), a13 = init(13), a14 = init(14), a15 = init(15)
#define STEP(fma) a0 = fma(a0); a1 = fma(a1); a2 = fma(a2); a3 = fma(a3); a4 = fma(a4); a5 = fma(a5); \
    a6 = fma(a6); a7 = fma(a7); a8 = fma(a8); a9 = fma(a9); a10 = fma(a10); a11 = fma(a11); a12 = fma(a12); \
    a13 = fma(a13); a14 = fma(a14); a15 = fma(a15)
#define SUM(add) add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))), \
    add(add(add(a8, a9), add(a10, a11)), add(add(a12, a13), add(a14, a15))))
// Twelve chains, for ISAs with sixteen vector registers.
#define DECLARE12(type, init) type a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), \
    a5 = init(5), a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11)
#define STEP12(fma) a0 = fma(a0); a1 = fma(a1); a2 = fma(a2); a3 = fma(a3); a4 = fma(a4); a5 = fma(a5); \
    a6 = fma(a6); a7 = fma(a7); a8 = fma(a8); a9 = fma(a9); a10 = fma(a10); a11 = fma(a11)
#define SUM12(add) add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))), \
    add(add(a8, a9), add(a10, a11)))

// Each kernel runs `rounds` rounds of `chains` fused multiply-adds on vectors of `lanes` floats
// (choose() says both) and returns a value that depends on every chain (so the compiler keeps
// the work).
typedef float (*Kernel)(long rounds);

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

// acc = acc * a + b converges to b / (1 - a): no overflow and no denormals however long it runs.
__attribute__((target("avx512f"))) static float avx512(long rounds) {
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
#define INIT(c) _mm512_set1_ps((float)(c))
#define FMA(x) _mm512_fmadd_ps(x, a, b)
    DECLARE(__m512, INIT);
    for (long r = 0; r < rounds; r++) { STEP(FMA); }
    return _mm512_reduce_add_ps(SUM(_mm512_add_ps));
#undef INIT
#undef FMA
}

__attribute__((target("avx2,fma"))) static float avx2(long rounds) {
    const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
#define INIT(c) _mm256_set1_ps((float)(c))
#define FMA(x) _mm256_fmadd_ps(x, a, b)
    DECLARE12(__m256, INIT);
    for (long r = 0; r < rounds; r++) { STEP12(FMA); }
    __m256 sum = SUM12(_mm256_add_ps);
#undef INIT
#undef FMA
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0] + lanes[7];
}

static Kernel choose(const char **isa, int *lanes, int *chains) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { *isa = "avx512"; *lanes = 16; *chains = 16; return avx512; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { *isa = "avx2+fma"; *lanes = 8; *chains = 12; return avx2; }
    return NULL;
}
#elif defined(__aarch64__)
#include <arm_neon.h>

static float neon(long rounds) {
    const float32x4_t a = vdupq_n_f32(0.999f), b = vdupq_n_f32(0.001f);
#define INIT(c) vdupq_n_f32((float)(c))
#define FMA(x) vfmaq_f32(b, x, a)
    DECLARE(float32x4_t, INIT);
    for (long r = 0; r < rounds; r++) { STEP(FMA); }
    return vaddvq_f32(SUM(vaddq_f32));
#undef INIT
#undef FMA
}

static Kernel choose(const char **isa, int *lanes, int *chains) { *isa = "neon"; *lanes = 4; *chains = 16; return neon; }
#else
static Kernel choose(const char **isa, int *lanes, int *chains) { (void)isa; (void)lanes; (void)chains; return NULL; }
#endif

struct Work {
    Kernel kernel;
    long rounds;
    pthread_barrier_t *start;
    double cpu_seconds;
    volatile float sink;
};

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *work(void *argument) {
    struct Work *w = argument;
    pthread_barrier_wait(w->start);
    double begin = seconds(CLOCK_THREAD_CPUTIME_ID);
    w->sink = w->kernel(w->rounds);
    w->cpu_seconds = seconds(CLOCK_THREAD_CPUTIME_ID) - begin;
    return NULL;
}

struct Rate {
    double cpu;   // GFLOP/s summed over the threads, each over its own CPU time
    double wall;  // GFLOP/s of all threads together over the wall clock
};

// `threads` threads each running `rounds` rounds: the best rates of TRIALS trials.
static struct Rate measure(Kernel kernel, int lanes, int chains, int threads, long rounds) {
    struct Rate best = {0, 0};
    double flops_per_thread = 2.0 * chains * lanes * (double)rounds;
    for (int trial = 0; trial < TRIALS; trial++) {
        pthread_t ids[threads];
        struct Work work_items[threads];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
        for (int t = 0; t < threads; t++) {
            work_items[t] = (struct Work){kernel, rounds, &start, 0, 0};
            pthread_create(&ids[t], NULL, work, &work_items[t]);
        }
        pthread_barrier_wait(&start);
        double begin = seconds(CLOCK_MONOTONIC);
        for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
        double wall = seconds(CLOCK_MONOTONIC) - begin;
        pthread_barrier_destroy(&start);
        double cpu = 0;
        for (int t = 0; t < threads; t++) cpu += flops_per_thread / work_items[t].cpu_seconds / 1e9;
        if (cpu > best.cpu) best.cpu = cpu;
        if (flops_per_thread * threads / wall / 1e9 > best.wall) best.wall = flops_per_thread * threads / wall / 1e9;
    }
    return best;
}

int main(int argc, char **argv) {
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    const char *isa = NULL;
    int lanes = 0, chains = 0;
    Kernel kernel = choose(&isa, &lanes, &chains);
    if (!kernel) {
        fprintf(stderr, "fma-peak: this CPU has none of AVX-512, AVX2+FMA or NEON\n");
        return 1;
    }
    // About 0.1 s of CPU per trial and thread at ~300 GFLOP/s per core.
    long rounds = 30L * 1000 * 1000 * 16 * 16 / lanes / chains;
    kernel(rounds / 10);  // wakes the core up to its boost clock before the first trial
    struct Rate one = measure(kernel, lanes, chains, 1, rounds), two = measure(kernel, lanes, chains, 2, rounds);
    if (json) {
        printf("{\"isa\": \"%s\", \"gflops_1_thread\": %.1f, \"gflops_2_threads\": %.1f, "
               "\"wall_gflops_1_thread\": %.1f, \"wall_gflops_2_threads\": %.1f}\n",
               isa, one.cpu, two.cpu, one.wall, two.wall);
    } else {
        printf("FP32 FMA peak (%s, best of %d trials), GFLOP/s:\n", isa, TRIALS);
        printf("             per CPU-second  per wall-second\n");
        printf("  1 thread:  %14.1f  %15.1f\n", one.cpu, one.wall);
        printf("  2 threads: %14.1f  %15.1f\n", two.cpu, two.wall);
    }
    return 0;
}
