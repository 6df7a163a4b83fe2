// DirectConv's FP32 packed AVX-512 kernel on the 32-channel convolutions of joe's last HiFi-GAN
// level (#23): k3 d1, k3 d2, k5 d2, k5 d6, k7 d3, k7 d12, each with pre-LeakyRelu 0.1, bias and a
// residual Z, one thread, over T samples, as ResidualStack and DirectConv call it
// (lark_direct_conv_packed_task over all tasks, a reused scratch). Prints GFLOP/s (2·C·C·K·T per
// run, best of REPS, thread CPU time) and checks each result against the scalar path to 1e-5 of its largest value.
//
// Then the whole fused level (ResidualStack's run_tile, residual_stack.c included here: three
// ResBlock2 blocks k3 [1,2], k5 [2,6], k7 [3,12], sum / 3, LeakyRelu 0.01 after, as joe's
// 32-channel level), one thread, GFLOP/s of useful work (2·C²·30 per sample, halos not counted),
// checked against the level computed unfused with the scalar path.
//
// Build and run: bash bench/direct-conv-32   (env: REPS=7 LENGTHS=16000,106000 CHANNELS=32)
#include "direct_conv.h"
#include "kernel_bench.h"
#include "residual_stack.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);  // CPU time: on a shared machine a wall-clock run of a few ms is often cut by another process
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int64_t env_int(const char *name, int64_t fallback) {
    const char *v = getenv(name);
    return v && *v ? atoll(v) : fallback;
}

/// One unfused convolution on the scalar path: y = conv(lrelu(x)) + b (+ z).
static void reference_conv(const float *x, const float *w, const float *b, const float *z, float *y, int64_t c, int64_t t,
                           int64_t k, int64_t d) {
    LarkDirectConv conv = {
        .batch = 1, .input_channels = c, .output_channels = c, .input_length = t, .output_length = t,
        .kernel = k, .dilation = d, .pad_begin = (k - 1) / 2 * d, .has_pre_alpha = 1, .pre_alpha = 0.1f,
        .x = x, .w = w, .b = b, .z = z, .y = y, .blocks = lark_conv_blocks_scalar(),
    };
    for (int64_t task = 0; task < lark_direct_conv_tasks(&conv); task++) lark_direct_conv_task(&conv, task);
}

/// The fused level over T samples: best seconds of `reps`, and the error against the unfused
/// reference relative to its largest value.
static double level(int64_t channels, int64_t T, int64_t reps, double *error) {
    static const int64_t kernels[6] = {3, 3, 5, 5, 7, 7}, dilations[6] = {1, 2, 2, 6, 3, 12};
    StackKernel kernel = {.blocks = 3, .convs = 6, .alpha = 0.1f, .scale = 1.0f / 3.0f, .post_alpha = 0.01f, .has_post = 1,
                          .path = FP32_PACKED, .conv_blocks = best_blocks()};
    for (int b = 0; b <= 3; b++) kernel.block_first[b] = 2 * b;
    for (int j = 0; j < 6; j++) kernel.kernel[j] = kernels[j], kernel.dilation[j] = dilations[j], kernel.ends_step[j] = 1;
    set_reaches(&kernel);
    Job job = {.kernel = &kernel, .batch = 1, .channels = channels, .length = T};
    float *x = floats(channels * T), *y = floats(channels * T), *ref = floats(channels * T), *h = floats(channels * T), *o = floats(channels * T);
    for (int64_t i = 0; i < channels * T; i++) x[i] = uniform();
    for (int j = 0; j < 6; j++) {
        const int64_t cc = channels * channels * kernels[j];
        float *w = floats(cc), *b = floats(channels), *packed = floats(lark_packed_weight_floats(channels, channels, kernels[j]) + 16);
        const float scale = 1.7f / sqrtf((float)(channels * kernels[j]));
        for (int64_t i = 0; i < cc; i++) w[i] = uniform() * scale;
        for (int64_t i = 0; i < channels; i++) b[i] = 0.1f * uniform();
        lark_pack_weights(w, channels, channels, kernels[j], packed);
        job.w[j] = w, job.b[j] = b, job.packed[j] = packed;
        const LarkDirectConv conv = {.input_channels = channels, .kernel = kernels[j], .dilation = dilations[j]};
        const size_t f = lark_direct_conv_scratch_bytes(&conv) / sizeof(float);
        if (f > job.conv_scratch_floats) job.conv_scratch_floats = f;
    }
    memset(ref, 0, (size_t)(channels * T) * sizeof(float));
    for (int b = 0; b < 3; b++) {
        reference_conv(x, job.w[2 * b], job.b[2 * b], x, h, channels, T, kernels[2 * b], dilations[2 * b]);
        reference_conv(h, job.w[2 * b + 1], job.b[2 * b + 1], h, o, channels, T, kernels[2 * b + 1], dilations[2 * b + 1]);
        for (int64_t i = 0; i < channels * T; i++) ref[i] += o[i];
    }
    for (int64_t i = 0; i < channels * T; i++) {
        const float v = ref[i] * (1.0f / 3.0f);
        ref[i] = v < 0 ? v * 0.01f : v;
    }
    job.x = x, job.y = y, job.tile = env_int("TILE", default_tile(channels)), job.tiles = (T + job.tile - 1) / job.tile;
    atomic_init(&job.failed, 0);
    double best = 1e9;
    for (int64_t r = 0; r < reps; r++) {
        const double start = now();
        for (int64_t task = 0; task < job.tiles; task++) run_task(&job, (size_t)task);
        const double took = now() - start;
        if (took < best) best = took;
    }
    *error = atomic_load(&job.failed) ? 1 : relative_error(ref, y, channels * T);
    for (int j = 0; j < 6; j++) free((void *)job.w[j]), free((void *)job.b[j]), free((void *)job.packed[j]);
    free(x), free(y), free(ref), free(h), free(o);
    return best;
}

int main(void) {
    const int64_t reps = env_int("REPS", 7), channels = env_int("CHANNELS", 32);
    const char *lengths_env = getenv("LENGTHS") ? getenv("LENGTHS") : "16000,106000";
    static const int64_t shapes[][2] = {{3, 1}, {3, 2}, {5, 2}, {5, 6}, {7, 3}, {7, 12}};
    const int shape_count = (int)(sizeof shapes / sizeof shapes[0]);
    printf("channels %lld, best of %lld, 1 thread\n", (long long)channels, (long long)reps);
    char lengths[256];
    snprintf(lengths, sizeof lengths, "%s", lengths_env);
    for (char *item = strtok(lengths, ","); item; item = strtok(NULL, ",")) {
        const int64_t T = atoll(item);
        double total_flops = 0, total_s = 0;
        for (int s = 0; s < shape_count; s++) {
            const int64_t k = shapes[s][0], d = shapes[s][1], cc = channels * channels * k;
            float *w = floats(cc), *b = floats(channels), *x = floats(channels * T), *z = floats(channels * T);
            float *y = floats(channels * T), *ref = floats(channels * T);
            const float scale = 1.7f / sqrtf((float)(channels * k));
            for (int64_t i = 0; i < cc; i++) w[i] = uniform() * scale;
            for (int64_t i = 0; i < channels; i++) b[i] = 0.1f * uniform();
            for (int64_t i = 0; i < channels * T; i++) x[i] = uniform(), z[i] = uniform();
            float *packed = floats(lark_packed_weight_floats(channels, channels, k) + 16);
            lark_pack_weights(w, channels, channels, k, packed);
            LarkDirectConv conv = {
                .batch = 1, .input_channels = channels, .output_channels = channels, .input_length = T, .output_length = T,
                .kernel = k, .dilation = d, .pad_begin = (k - 1) / 2 * d, .has_pre_alpha = 1, .pre_alpha = 0.1f,
                .x = x, .w = w, .b = b, .z = z, .y = ref, .blocks = lark_conv_blocks_scalar(),
            };
            const size_t scratch_bytes = lark_direct_conv_scratch_bytes(&conv);
            conv.scratch = floats((int64_t)scratch_bytes / 4 + 16), conv.scratch_bytes = scratch_bytes;
            const int64_t tasks = lark_direct_conv_tasks(&conv);
            for (int64_t t = 0; t < tasks; t++) lark_direct_conv_task(&conv, t);
            conv.y = y, conv.blocks = best_blocks();
            double best = 1e9;
            for (int64_t r = 0; r < reps; r++) {
                const double start = now();
                for (int64_t t = 0; t < tasks; t++)
                    if (lark_direct_conv_packed_task(&conv, packed, t)) return 1;
                const double took = now() - start;
                if (took < best) best = took;
            }
            const double error = relative_error(ref, y, channels * T);
            const double flops = 2.0 * (double)cc * (double)T;
            printf("T %6lld  k%lld d%-2lld  %7.3f ms  %6.1f GFLOP/s  err %.1e%s\n", (long long)T, (long long)k, (long long)d,
                   best * 1e3, flops / best * 1e-9, error, error > 1e-5 ? "  MISMATCH" : "");
            if (error > 1e-5) return 2;
            total_flops += flops, total_s += best;
            free(w), free(b), free(x), free(z), free(y), free(ref), free(packed), free(conv.scratch);
        }
        printf("T %6lld  all six   %7.3f ms  %6.1f GFLOP/s\n", (long long)T, total_s * 1e3, total_flops / total_s * 1e-9);
        double error;
        const double took = level(channels, T, reps, &error);
        printf("T %6lld  level     %7.3f ms  %6.1f GFLOP/s  err %.1e%s\n", (long long)T, took * 1e3,
               2.0 * channels * channels * 30 * T / took * 1e-9, error, error > 1e-5 ? "  MISMATCH" : "");
        if (error > 1e-5) return 2;
    }
    return 0;
}
