// Winograd 1-D convolutions (Sources/CLarkKernels/winograd.c) against DirectConv's packed FP32
// AVX-512 kernel on joe's fused-level convolutions (#23), one thread: for each channel count,
// kernel/dilation and F(m, r), GFLOP/s of useful work (2·C·C·K per output sample, best of REPS,
// thread CPU time) both ways, and each result's largest error against a float64 reference
// relative to the reference's largest value.
//
// Then joe's whole fused level (ResidualStack's run_tile, residual_stack.c included here) at 32,
// 64 and 128 channels with candidate sets of Winograd sizes per convolution, GFLOP/s of useful
// work (2·C²·30 per sample) and the error against the level run directly.
//
// Build and run: bash bench/winograd   (env: REPS=5 LENGTH=16000 CHECK=1 LEVELS=1 SHAPES=1
//                LEVEL32=53000 LEVEL64=26500 LEVEL128=13250)
#include "direct_conv.h"
#include "kernel_bench.h"
#include "residual_stack.c"  // ort_custom_op.c registers it

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int64_t env_int(const char *name, int64_t fallback) {
    const char *v = getenv(name);
    return v && *v ? atoll(v) : fallback;
}

/// y = conv(lrelu(x)) + b + z in float64, as DirectConv computes it.
static void reference(const LarkDirectConv *conv, double *out) {
    const int64_t c = conv->input_channels, m = conv->output_channels, t = conv->output_length, k = conv->kernel, d = conv->dilation;
    double *act = malloc(sizeof(double) * c * t);
    for (int64_t i = 0; i < c * t; i++) act[i] = conv->has_pre_alpha && conv->x[i] < 0 ? conv->x[i] * (double)conv->pre_alpha : conv->x[i];
    for (int64_t o = 0; o < m; o++)
        for (int64_t i = 0; i < t; i++) {
            double sum = conv->b[o] + conv->z[o * t + i];
            for (int64_t ci = 0; ci < c; ci++)
                for (int64_t kk = 0; kk < k; kk++) {
                    const int64_t at = i + kk * d - conv->pad_begin;
                    if (at >= 0 && at < t) sum += conv->w[(o * c + ci) * k + kk] * act[ci * t + at];
                }
            out[o * t + i] = sum;
        }
    free(act);
}

static double error_against(const double *ref, const float *y, int64_t count) {
    double largest = 0, error = 0;
    for (int64_t i = 0; i < count; i++) {
        if (fabs(ref[i]) > largest) largest = fabs(ref[i]);
        if (fabs(ref[i] - y[i]) > error) error = fabs(ref[i] - y[i]);
    }
    return error / largest;
}

/// joe's fused level (three ResBlock2 blocks k3 [1,2], k5 [2,6], k7 [3,12], sum / 3, LeakyRelu
/// after) over T samples as ResidualStack runs it (run_tile over all tiles, one thread), each
/// convolution by F(outputs[j], taps[j]) or directly (outputs 0). Best seconds of `reps`; `y` out.
static double level(int64_t channels, int64_t T, int64_t reps, const int64_t *outputs, const int64_t *taps, const float *x, float *const *w,
                    float *const *b, float *y) {
    static const int64_t kernels[6] = {3, 3, 5, 5, 7, 7}, dilations[6] = {1, 2, 2, 6, 3, 12};
    StackKernel kernel = {.blocks = 3, .convs = 6, .alpha = 0.1f, .scale = 1.0f / 3.0f, .post_alpha = 0.1f, .has_post = 1,
                          .path = FP32_PACKED, .conv_blocks = best_blocks()};
    for (int i = 0; i <= 3; i++) kernel.block_first[i] = 2 * i;
    for (int j = 0; j < 6; j++) kernel.kernel[j] = kernels[j], kernel.dilation[j] = dilations[j], kernel.ends_step[j] = 1;
    set_reaches(&kernel);
    Job job = {.kernel = &kernel, .batch = 1, .channels = channels, .length = T, .x = x, .y = y};
    for (int j = 0; j < 6; j++) {
        if (outputs[j]) kernel.winograd[j] = !lark_winograd_plan(&kernel.plan[j], kernels[j], outputs[j], taps[j]);
        job.w[j] = w[j], job.b[j] = b[j], job.packed[j] = pack(&kernel, j, w[j], channels, kernels[j]);
        const LarkDirectConv conv = {.input_channels = channels, .kernel = kernels[j], .dilation = dilations[j]};
        const size_t f = (kernel.winograd[j] ? lark_winograd_scratch_bytes(&kernel.plan[j], channels, channels, dilations[j])
                                             : lark_direct_conv_scratch_bytes(&conv)) / sizeof(float) + 16;
        if (f > job.conv_scratch_floats) job.conv_scratch_floats = f;
    }
    job.tile = default_tile(channels), job.tiles = (T + job.tile - 1) / job.tile;
    atomic_init(&job.failed, 0);
    double best = 1e9;
    for (int64_t r = 0; r < reps; r++) {
        const double start = now();
        for (int64_t task = 0; task < job.tiles; task++) run_task(&job, (size_t)task);
        const double took = now() - start;
        if (took < best) best = took;
    }
    for (int j = 0; j < 6; j++) free((void *)job.packed[j]);
    return atomic_load(&job.failed) ? -1 : best;
}

/// Best of `reps` runs of `conv` on DirectConv's packed kernel, seconds.
static double packed_seconds(const LarkDirectConv *conv, const float *packed, int64_t reps) {
    double best = 1e9;
    for (int64_t rep = 0; rep < reps; rep++) {
        const double start = now();
        for (int64_t task = 0; task < lark_direct_conv_tasks(conv); task++) lark_direct_conv_packed_task(conv, packed, task);
        const double took = now() - start;
        if (took < best) best = took;
    }
    return best;
}

/// Best of `reps` runs of `conv` as Winograd `plan` with transformed weights `u`, seconds.
static double winograd_seconds(const LarkDirectConv *conv, const LarkWinograd *plan, const float *u, int64_t reps) {
    double best = 1e9;
    for (int64_t rep = 0; rep < reps; rep++) {
        const double start = now();
        lark_winograd_conv(conv, plan, u, 1);
        const double took = now() - start;
        if (took < best) best = took;
    }
    return best;
}

static void levels(int64_t reps) {
    static const int64_t kernels[6] = {3, 3, 5, 5, 7, 7};
    // Candidates: direct; F(4, K) for k5/k7 ("wide"); that and F(3,3) for k3 ("all"); F(4,4) pieces for k7.
    static const struct { const char *name; int64_t outputs[6], taps[6]; } candidates[] = {
        {"direct", {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}},
        {"k5,k7 F(4,K)", {0, 0, 4, 4, 4, 4}, {0, 0, 5, 5, 7, 7}},
        {"k7 F(4,7)", {0, 0, 0, 0, 4, 4}, {0, 0, 0, 0, 7, 7}},
        {"all: k3 F(3,3), k5,k7 F(4,K)", {3, 3, 4, 4, 4, 4}, {3, 3, 5, 5, 7, 7}},
        {"k7 F(4,4)x2", {0, 0, 0, 0, 4, 4}, {0, 0, 0, 0, 4, 4}},
    };
    printf("\nfused level (ResidualStack, 1 thread): channels samples candidate ms GFLOP/s(useful) speedup error_vs_direct\n");
    const int64_t channel_counts[] = {32, 64, 128}, lengths[] = {env_int("LEVEL32", 53000), env_int("LEVEL64", 26500), env_int("LEVEL128", 13250)};
    for (int ci = 0; ci < 3; ci++) {
        const int64_t c = channel_counts[ci], T = lengths[ci];
        float *x = floats(c * T), *y = floats(c * T), *ref = floats(c * T), *w[6], *b[6];
        for (int64_t i = 0; i < c * T; i++) x[i] = uniform();
        for (int j = 0; j < 6; j++) {
            w[j] = floats(c * c * kernels[j]), b[j] = floats(c);
            for (int64_t i = 0; i < c * c * kernels[j]; i++) w[j][i] = uniform() * 1.7f / sqrtf((float)(c * kernels[j]));
            for (int64_t i = 0; i < c; i++) b[j][i] = 0.1f * uniform();
        }
        double direct = 0;
        for (size_t k = 0; k < sizeof candidates / sizeof candidates[0]; k++) {
            const double s = level(c, T, reps, candidates[k].outputs, candidates[k].taps, x, w, b, k ? y : ref);
            if (k == 0) direct = s;
            const double flops = 2.0 * c * c * 30 * T;
            printf("%lld %lld %-30s %8.3f %6.1f %.2f %.1e\n", (long long)c, (long long)T, candidates[k].name, s * 1e3, flops / s * 1e-9, direct / s,
                   k ? relative_error(ref, y, c * T) : 0.0);
            fflush(stdout);
        }
        for (int j = 0; j < 6; j++) free(w[j]), free(b[j]);
        free(x), free(y), free(ref);
    }
}

/// The flow's and text encoder's convolutions (channels change, dilation 1, no activation, bias,
/// "same" padding) at frame-rate lengths: the packed direct kernel against F(m, K) and F(m, r)
/// pieces, one thread (#23, the DirectConv Winograd route). BIG=1.
static void big_shapes(int64_t reps, int64_t check) {
    static const int64_t shapes[][3] = {{192, 384, 5}, {192, 768, 3}, {768, 192, 3}};
    static const int64_t configs[][2] = {{4, 0}, {6, 0}, {2, 0}, {3, 0}, {4, 3}};
    const int64_t lengths[] = {256, 1024};
    printf("\nbig shapes: cin cout kernel T F(m,r) direct_GFLOPs winograd_GFLOPs speedup direct_error winograd_error\n");
    for (int li = 0; li < 2; li++)
        for (int si = 0; si < 3; si++) {
            const int64_t cin = shapes[si][0], cout = shapes[si][1], k = shapes[si][2], t = lengths[li];
            float *x = floats(cin * t), *w = floats(cout * cin * k), *b = floats(cout), *z = floats(cout * t), *y = floats(cout * t);
            for (int64_t i = 0; i < cin * t; i++) x[i] = uniform();
            for (int64_t i = 0; i < cout * t; i++) z[i] = 0;
            for (int64_t i = 0; i < cout * cin * k; i++) w[i] = uniform() * 1.7f / sqrtf((float)(cin * k));
            for (int64_t i = 0; i < cout; i++) b[i] = uniform() * 0.1f;
            LarkDirectConv conv = {
                .batch = 1, .input_channels = cin, .output_channels = cout, .input_length = t, .output_length = t, .kernel = k, .dilation = 1,
                .pad_begin = (k - 1) / 2, .x = x, .w = w, .b = b, .z = z, .y = y, .blocks = best_blocks(),
            };
            double *ref = malloc(sizeof(double) * cout * t);
            if (check) reference(&conv, ref);
            float *packed = floats(lark_packed_weight_floats(cout, cin, k) + 16);
            lark_pack_weights(w, cout, cin, k, packed);
            conv.scratch_bytes = lark_direct_conv_scratch_bytes(&conv);
            conv.scratch = floats((int64_t)conv.scratch_bytes / 4 + 16);
            const double best = packed_seconds(&conv, packed, reps);
            const double flops = 2.0 * cin * cout * k * t;
            const double direct_error = check ? error_against(ref, y, cout * t) : 0;
            for (int fi = 0; fi < 5; fi++) {
                const int64_t m = configs[fi][0], r = configs[fi][1] ? configs[fi][1] : k;
                LarkWinograd plan;
                if (lark_winograd_plan(&plan, k, m, r)) continue;
                float *u = floats(lark_winograd_weight_floats(&plan, cout, cin, 1) + 16);
                lark_winograd_weights(&plan, w, cout, cin, k, 1, u);
                LarkDirectConv wconv = conv;
                wconv.scratch_bytes = lark_winograd_scratch_bytes(&plan, cin, cout, 1);
                wconv.scratch = floats((int64_t)wconv.scratch_bytes / 4 + 16);
                memset(y, 0, sizeof(float) * cout * t);
                const double wbest = winograd_seconds(&wconv, &plan, u, reps);
                const double werror = check ? error_against(ref, y, cout * t) : 0;
                printf("%lld %lld k%lld %lld F(%lld,%lld)x%lld %.1f %.1f %.2f %.1e %.1e\n", (long long)cin, (long long)cout, (long long)k, (long long)t,
                       (long long)m, (long long)r, (long long)plan.pieces, flops / best * 1e-9, flops / wbest * 1e-9, best / wbest, direct_error, werror);
                fflush(stdout);
                free(u), free(wconv.scratch);
            }
            free(x), free(w), free(b), free(z), free(y), free(ref), free(packed), free(conv.scratch);
        }
}

int main(void) {
    const int64_t reps = env_int("REPS", 5), length = env_int("LENGTH", 16000), check = env_int("CHECK", 1);
    if (env_int("BIG", 0)) { big_shapes(reps, check); return 0; }
    if (env_int("LEVELS", 1)) levels(reps);
    if (!env_int("SHAPES", 1)) return 0;
    static const int64_t shapes[][2] = {{3, 1}, {3, 2}, {5, 2}, {5, 6}, {7, 3}, {7, 12}};
    static const int64_t configs[][2] = {{2, 2}, {3, 3}, {4, 4}, {4, 0}, {6, 0}, {2, 0}};  // r 0: one piece of K taps
    const int64_t channel_counts[] = {32, 64, 128};
    printf("channels kernel dilation F(m,r) direct_GFLOPs winograd_GFLOPs speedup direct_error winograd_error\n");
    for (int ci = 0; ci < 3; ci++) {
        const int64_t c = channel_counts[ci], t = length * 32 / c;
        for (int si = 0; si < 6; si++) {
            const int64_t k = shapes[si][0], d = shapes[si][1];
            float *x = floats(c * t), *w = floats(c * c * k), *b = floats(c), *z = floats(c * t), *y = floats(c * t);
            for (int64_t i = 0; i < c * t; i++) x[i] = uniform(), z[i] = uniform();
            for (int64_t i = 0; i < c * c * k; i++) w[i] = uniform() * 1.7f / sqrtf((float)(c * k));
            for (int64_t i = 0; i < c; i++) b[i] = uniform() * 0.1f;
            LarkDirectConv conv = {
                .batch = 1, .input_channels = c, .output_channels = c, .input_length = t, .output_length = t, .kernel = k, .dilation = d,
                .pad_begin = (k - 1) / 2 * d, .has_pre_alpha = 1, .pre_alpha = 0.1f, .x = x, .w = w, .b = b, .z = z, .y = y,
                .blocks = best_blocks(),
            };
            double *ref = malloc(sizeof(double) * c * t);
            if (check) reference(&conv, ref);
            float *packed = floats(lark_packed_weight_floats(c, c, k) + 16);
            lark_pack_weights(w, c, c, k, packed);
            conv.scratch = floats((int64_t)lark_direct_conv_scratch_bytes(&conv) / 4 + 16);
            conv.scratch_bytes = lark_direct_conv_scratch_bytes(&conv);
            const double best = packed_seconds(&conv, packed, reps);
            const double flops = 2.0 * c * c * k * t;
            const double direct_error = check ? error_against(ref, y, c * t) : 0;
            for (int fi = 0; fi < 6; fi++) {
                const int64_t m = configs[fi][0], r = configs[fi][1] ? configs[fi][1] : k;
                LarkWinograd plan;
                if (lark_winograd_plan(&plan, k, m, r)) continue;
                float *u = floats(lark_winograd_weight_floats(&plan, c, c, 1) + 16);
                lark_winograd_weights(&plan, w, c, c, k, 1, u);
                LarkDirectConv wconv = conv;
                wconv.scratch_bytes = lark_winograd_scratch_bytes(&plan, c, c, d);
                wconv.scratch = floats((int64_t)wconv.scratch_bytes / 4 + 16);
                memset(y, 0, sizeof(float) * c * t);
                const double wbest = winograd_seconds(&wconv, &plan, u, reps);
                const double werror = check ? error_against(ref, y, c * t) : 0;
                printf("%lld k%lld d%lld F(%lld,%lld)x%lld %.1f %.1f %.2f %.1e %.1e\n", (long long)c, (long long)k, (long long)d, (long long)m,
                       (long long)r, (long long)plan.pieces, flops / best * 1e-9, flops / wbest * 1e-9, best / wbest, direct_error, werror);
                fflush(stdout);
                free(u), free(wconv.scratch);
            }
            free(x), free(w), free(b), free(z), free(y), free(ref), free(packed), free(conv.scratch);
        }
    }
    return 0;
}
