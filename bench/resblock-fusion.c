// What fusing a HiFi-GAN ResBlock1 step's two convolutions per time tile would gain (#23).
//
// One step: y = x + conv2(lrelu(conv1(lrelu(x)), dilation d), dilation 1), LeakyRelu slope 0.1,
// biases, same-length padding. Timed, best of REPS, at 1 and 2 threads:
//   (a) unfused: conv1 over the whole sequence into a full-size buffer H, then conv2 with Z = x,
//       as ort_custom_op.c runs DirectConv on AVX-512 (lark_direct_conv_packed_task over all
//       of a convolution's tasks, the threads taking tasks from a shared counter);
//   (b) fused: per time tile of TILE samples, conv1 on the tile plus conv2's halo into a small
//       scratch, then conv2 from that scratch, then y = that + x for the tile: the same kernel,
//       called on tile-sized sub-problems (offset pointers, shifted padding). The kernel's
//       epilogue writes rows `output_length` apart, so a sub-problem cannot write into the
//       full-length Y with its residual directly; the residual add and the store to Y are one
//       extra pass over the tile, in cache (a fused operator would give the epilogue a row
//       stride instead).
//   (c) with CHAIN=1, the whole resblock (d = 1, 3, 5 chained, 6 convolutions) unfused and fused
//       per tile (each step's halo recomputed: 6(k-1) samples on each side of a tile).
// Checks that (b) and (c) match (a) within 1e-5 relative to the output's largest magnitude.
//
// Build and run: bash bench/resblock-fusion (cc -O2 -march=native with Sources/CLarkKernels).
#include "direct_conv.h"
#include "kernel_bench.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const float SLOPE = 0.1f;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// One convolution's weights: W [C, C, K] (packed), bias, dilation, padding.
typedef struct Conv {
    int64_t channels, kernel, dilation, pad;
    float *w, *packed, *b;
} Conv;

static Conv make_conv(int64_t channels, int64_t kernel, int64_t dilation) {
    Conv c = {.channels = channels, .kernel = kernel, .dilation = dilation, .pad = dilation * (kernel - 1) / 2};
    const int64_t n = channels * channels * kernel;
    c.w = floats(n);
    // Scaled like a trained layer's (sum of |w| per output about 1), so activations stay O(1).
    const float scale = 1.7f / sqrtf((float)(channels * kernel));
    for (int64_t i = 0; i < n; i++) c.w[i] = uniform() * scale;
    c.packed = floats(lark_packed_weight_floats(channels, channels, kernel) + 16);
    lark_pack_weights(c.w, channels, channels, kernel, c.packed);
    c.b = floats(channels);
    for (int64_t i = 0; i < channels; i++) c.b[i] = 0.1f * uniform();
    return c;
}

static void free_conv(Conv *c) { free(c->w), free(c->packed), free(c->b); }

/// The kernel's problem for `c` with pre-LeakyRelu: input rows `in_length` apart covering global
/// samples [in_at, in_at + in_length), output rows `out_length` apart covering [out_at, ...).
/// Output sample g reads input g - pad + k·d; the sub-problem's padding is shifted to match, and
/// its scratch copy zero-fills whatever lies outside the input range (the sequence's padding,
/// provided the input range is the whole needed range clipped to the sequence).
static LarkDirectConv problem(const Conv *c, const float *x, int64_t in_at, int64_t in_length, float *y, int64_t out_at,
                              int64_t out_length, const float *z) {
    return (LarkDirectConv){
        .batch = 1,
        .input_channels = c->channels,
        .output_channels = c->channels,
        .input_length = in_length,
        .output_length = out_length,
        .kernel = c->kernel,
        .dilation = c->dilation,
        .pad_begin = c->pad + in_at - out_at,
        .has_pre_alpha = 1,
        .pre_alpha = SLOPE,
        .x = x,
        .w = c->w,
        .b = c->b,
        .z = z,
        .y = y,
        .blocks = best_blocks(),
    };
}

static void run_all_tasks(const LarkDirectConv *p, const float *packed) {
    const int64_t tasks = lark_direct_conv_tasks(p);
    for (int64_t t = 0; t < tasks; t++)
        if (lark_direct_conv_packed_task(p, packed, t)) exit(1);
}

// MARK: - Threads

typedef struct Team Team;
typedef void (*Work)(Team *team, int thread, int64_t item);
struct Team {
    int64_t items;
    atomic_long next;
    Work work;
    void *context;
};

// A persistent pool whose helpers spin between regions (as ONNX Runtime's pool spins between
// ParallelFor calls), so that the unfused version's many short regions pay no thread start-up.
static struct {
    int helpers;
    Team *team;
    atomic_long generation, finished;
    atomic_int quit;
    pthread_t ids[8];
} pool;

static void take_items(Team *team, int index) {
    for (;;) {
        const int64_t item = atomic_fetch_add(&team->next, 1);
        if (item >= team->items) return;
        team->work(team, index, item);
    }
}

static void *helper_main(void *arg) {
    const int index = (int)(intptr_t)arg;
    long seen = 0;
    for (;;) {
        long generation;
        while ((generation = atomic_load(&pool.generation)) == seen) {
            if (atomic_load(&pool.quit)) return NULL;
            __builtin_ia32_pause();
        }
        seen = generation;
        take_items(pool.team, index);
        atomic_fetch_add(&pool.finished, 1);
    }
}

static void pool_start(int threads) {
    pool.helpers = threads - 1;
    atomic_store(&pool.quit, 0);
    for (int i = 0; i < pool.helpers; i++) pthread_create(&pool.ids[i], NULL, helper_main, (void *)(intptr_t)(i + 1));
}

static void pool_stop(void) {
    atomic_store(&pool.quit, 1);
    for (int i = 0; i < pool.helpers; i++) pthread_join(pool.ids[i], NULL);
    pool.helpers = 0;
}

/// Runs work(item) for item < items on the pool's threads and the caller, items taken in order
/// from a shared counter, as ONNX Runtime's ParallelFor hands out DirectConv's tasks.
static void parallel(int64_t items, Work work, void *context) {
    Team team = {.items = items, .work = work, .context = context};
    atomic_init(&team.next, 0);
    if (pool.helpers) {
        pool.team = &team;
        atomic_store(&pool.finished, 0);
        atomic_fetch_add(&pool.generation, 1);
    }
    take_items(&team, 0);
    while (atomic_load(&pool.finished) < pool.helpers) __builtin_ia32_pause();
}

// MARK: - (a) unfused

typedef struct ConvJob {
    const LarkDirectConv *p;
    const float *packed;
} ConvJob;

static void conv_task(Team *team, int thread, int64_t item) {
    (void)thread;
    const ConvJob *job = team->context;
    if (lark_direct_conv_packed_task(job->p, job->packed, item)) exit(1);
}

static void whole_conv(const LarkDirectConv *p, const float *packed) {
    ConvJob job = {p, packed};
    parallel(lark_direct_conv_tasks(p), conv_task, &job);
}

/// Steps `steps` of a resblock, unfused: each conv over the whole sequence; x → h → y (then y is
/// the next step's x, through `spare`). Returns the buffer holding the result.
static float *unfused(const Conv *conv1, const Conv *conv2, int steps, int64_t T, const float *x, float *h, float *y,
                      float *spare) {
    const float *in = x;
    float *out = y;
    for (int s = 0; s < steps; s++) {
        LarkDirectConv p1 = problem(&conv1[s], in, 0, T, h, 0, T, NULL);
        whole_conv(&p1, conv1[s].packed);
        LarkDirectConv p2 = problem(&conv2[s], h, 0, T, out, 0, T, in);
        whole_conv(&p2, conv2[s].packed);
        in = out;
        out = out == y ? spare : y;
    }
    return (float *)in;
}

// MARK: - (b), (c) fused per tile

typedef struct Fused {
    const Conv *conv1, *conv2;
    int steps;
    int64_t T, tile, C;
    const float *x;
    float *y;
    float *scratch[8][4];  // per thread: conv1's output, conv2's output, two steps' outputs (in turn)
} Fused;

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/// The halo each step's input needs on each side of its output: conv1's reach plus conv2's.
static int64_t step_halo(const Conv *conv1, const Conv *conv2) { return conv1->pad + conv2->pad; }

static void fused_tile(Team *team, int thread, int64_t item) {
    const Fused *f = team->context;
    const int64_t C = f->C, T = f->T, t0 = item * f->tile, t1 = min64(t0 + f->tile, T);
    // Global ranges: what each step must produce, from the last step back.
    int64_t out_at[8], out_end[8];
    int64_t at = t0, end = t1;
    for (int s = f->steps - 1; s >= 0; s--) {
        out_at[s] = at, out_end[s] = end;
        const int64_t h = step_halo(&f->conv1[s], &f->conv2[s]);
        at = max64(at - h, 0), end = min64(end + h, T);
    }
    // Step 0 reads X in place (rows T apart, range [0, T)); later steps read the previous
    // step's output from scratch (rows of its own length).
    const float *in = f->x;
    int64_t in_at = 0, in_length = T;
    float *const *buffers = f->scratch[thread];
    for (int s = 0; s < f->steps; s++) {
        const Conv *c1 = &f->conv1[s], *c2 = &f->conv2[s];
        const int64_t a = out_at[s], b = out_end[s];
        // conv1's output over [a - pad2, b + pad2) clipped to the sequence: conv2's padding
        // beyond the sequence comes from its own scratch copy's zero fill.
        const int64_t ha = max64(a - c2->pad, 0), hb = min64(b + c2->pad, T);
        float *h = buffers[0];
        LarkDirectConv p1 = problem(c1, in, in_at, in_length, h, ha, hb - ha, NULL);
        run_all_tasks(&p1, c1->packed);
        float *o = buffers[1];
        LarkDirectConv p2 = problem(c2, h, ha, hb - ha, o, a, b - a, NULL);
        run_all_tasks(&p2, c2->packed);
        // The residual: o + x over [a, b), stored to Y on the last step, else kept as the next
        // step's input (in scratch buffers 2 and 3 in turn, so it never overwrites its own x).
        const int64_t n = b - a;
        float *dest = s == f->steps - 1 ? f->y + a : buffers[2 + s % 2];
        const int64_t dest_row = s == f->steps - 1 ? T : n;
        for (int64_t ch = 0; ch < C; ch++) {
            const float *from = o + ch * n, *res = in + ch * in_length + (a - in_at);
            float *to = dest + ch * dest_row;
            for (int64_t i = 0; i < n; i++) to[i] = from[i] + res[i];
        }
        in = dest, in_at = a, in_length = n;
    }
}

static void fused(Fused *f) { parallel((f->T + f->tile - 1) / f->tile, fused_tile, f); }

// MARK: - Measuring

static int REPS = 5;

// FLUSH=1: before each timed run, write a buffer larger than the L3 cache, so that X (and the
// weights) come from memory, as after the decoder's other operators rather than a rerun.
static float *flush_buffer;
static const int64_t FLUSH_FLOATS = 24 << 20;  // 96 MB
static void flush_caches(void) {
    if (!flush_buffer) return;
    for (int64_t i = 0; i < FLUSH_FLOATS; i += 16) flush_buffer[i] += 1.0f;
}

typedef struct Shape {
    int64_t C, k, T;
    int steps;        // 1: one step of dilation d; 3: the resblock, d = 1, 3, 5
    int64_t d;
} Shape;

static int failures = 0;

static void measure(Shape shape, const int64_t *tiles, int tile_count, int max_threads) {
    const int64_t C = shape.C, k = shape.k, T = shape.T, n = C * T;
    Conv conv1[3], conv2[3];
    const int64_t dilations[3] = {1, 3, 5};
    for (int s = 0; s < shape.steps; s++) {
        conv1[s] = make_conv(C, k, shape.steps == 1 ? shape.d : dilations[s]);
        conv2[s] = make_conv(C, k, 1);
    }
    float *x = floats(n), *h = floats(n), *ya = floats(n), *spare = floats(n), *yb = floats(n);
    for (int64_t i = 0; i < n; i++) x[i] = uniform();
    memset(h, 0, n * 4), memset(ya, 0, n * 4), memset(spare, 0, n * 4), memset(yb, 0, n * 4);
    const double flops = 2.0 * 2.0 * C * C * k * T * shape.steps;  // useful multiply-adds only

    int64_t halo = 0;
    for (int s = 0; s < shape.steps; s++) halo += step_halo(&conv1[s], &conv2[s]);
    const int64_t largest_tile = tiles[tile_count - 1] + 2 * halo + 64;
    Fused f = {.conv1 = conv1, .conv2 = conv2, .steps = shape.steps, .T = T, .C = C, .x = x, .y = yb};
    for (int t = 0; t < max_threads; t++)
        for (int b = 0; b < 4; b++) f.scratch[t][b] = floats(C * largest_tile);

    char name[64];
    if (shape.steps == 1)
        snprintf(name, sizeof name, "C=%lld k=%lld d=%lld T=%lld", (long long)C, (long long)k, (long long)shape.d, (long long)T);
    else
        snprintf(name, sizeof name, "C=%lld k=%lld d=1,3,5 T=%lld", (long long)C, (long long)k, (long long)T);

    for (int threads = 1; threads <= max_threads; threads++) {
        pool_start(threads);
        double best_a = 1e30;
        const float *result = NULL;
        for (int r = 0; r < REPS; r++) {
            flush_caches();
            const double t = now();
            result = unfused(conv1, conv2, shape.steps, T, x, h, ya, spare);
            best_a = fmin(best_a, now() - t);
        }
        printf("| %-26s | %d | %7.1f |", name, threads, flops / best_a * 1e-9);
        double best_speedup = 0;
        int64_t best_tile = 0;
        for (int i = 0; i < tile_count; i++) {
            f.tile = tiles[i];
            double best_b = 1e30;
            for (int r = 0; r < REPS; r++) {
                flush_caches();
                const double t = now();
                fused(&f);
                best_b = fmin(best_b, now() - t);
            }
            const int ok = relative_error(result, yb, n) <= 1e-5;
            if (!ok) failures++;
            printf(" %7.1f%s |", flops / best_b * 1e-9, ok ? "" : " MISMATCH");
            if (best_a / best_b > best_speedup) best_speedup = best_a / best_b, best_tile = tiles[i];
            memset(yb, 0, n * 4);
        }
        printf(" %.2f× (%lld) |\n", best_speedup, (long long)best_tile);
        fflush(stdout);
        pool_stop();
    }
    for (int t = 0; t < max_threads; t++)
        for (int b = 0; b < 4; b++) free(f.scratch[t][b]);
    free(x), free(h), free(ya), free(spare), free(yb);
    for (int s = 0; s < shape.steps; s++) free_conv(&conv1[s]), free_conv(&conv2[s]);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    if (!lark_packed_available()) {
        fprintf(stderr, "this benchmark times DirectConv's AVX-512 path; this CPU lacks AVX-512F\n");
        return 1;
    }
    const char *reps = getenv("REPS");
    if (reps) REPS = atoi(reps);
    const char *threads_env = getenv("THREADS");
    const int max_threads = threads_env ? atoi(threads_env) : 2;
    const char *lengths_env = getenv("LENGTHS");  // e.g. "106000,20000"
    int64_t lengths[4] = {106000, 20000};
    int length_count = 2;
    if (lengths_env) {
        length_count = 0;
        for (const char *p = lengths_env; *p && length_count < 4;) {
            lengths[length_count++] = strtoll(p, (char **)&p, 10);
            if (*p == ',') p++;
        }
    }
    const int64_t tiles[] = {256, 512, 1024, 2048, 4096};
    const int tile_count = 5;
    if (getenv("FLUSH") && atoi(getenv("FLUSH"))) {
        flush_buffer = floats(FLUSH_FLOATS);
        memset(flush_buffer, 0, FLUSH_FLOATS * 4);
    }
    const int chain = getenv("CHAIN") ? atoi(getenv("CHAIN")) : 1;

    printf("GFLOP/s (useful: 2·C²·k·T per convolution), best of %d%s; fused columns: tile size in samples.\n\n", REPS,
           flush_buffer ? ", caches flushed before each run" : "");
    printf("| shape                      | threads | (a) unfused |");
    for (int i = 0; i < tile_count; i++) printf(" (b) tile %lld |", (long long)tiles[i]);
    printf(" best speed-up (tile) |\n|---|---|---|");
    for (int i = 0; i < tile_count; i++) printf("---|");
    printf("---|\n");
    const int64_t channels[] = {32, 64}, kernels[] = {3, 7, 11}, dilations[] = {1, 3, 5};
    for (int l = 0; l < length_count; l++)
        for (int c = 0; c < 2; c++)
            for (int kk = 0; kk < 3; kk++)
                for (int dd = 0; dd < 3; dd++)
                    measure((Shape){.C = channels[c], .k = kernels[kk], .T = lengths[l], .steps = 1, .d = dilations[dd]}, tiles, tile_count,
                            max_threads);
    if (chain) {
        printf("\nWhole resblock (3 steps, d = 1, 3, 5: 6 convolutions), unfused vs fused per tile:\n\n");
        printf("| shape                      | threads | (a) unfused |");
        for (int i = 0; i < tile_count; i++) printf(" (c) tile %lld |", (long long)tiles[i]);
        printf(" best speed-up (tile) |\n|---|---|---|");
        for (int i = 0; i < tile_count; i++) printf("---|");
        printf("---|\n");
        for (int l = 0; l < length_count; l++)
            for (int c = 0; c < 2; c++)
                for (int kk = 0; kk < 3; kk++)
                    measure((Shape){.C = channels[c], .k = kernels[kk], .T = lengths[l], .steps = 3}, tiles, tile_count, max_threads);
    }
    if (failures) printf("\n%d fused results differ from the unfused ones by more than 1e-5 relative\n", failures);
    return failures ? 1 : 0;
}
