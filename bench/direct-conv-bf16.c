// The direct convolution's FP32 (AVX-512, packed weights) and bf16 (AVX512-BF16) paths alone, on the decoder's
// shapes: GFLOP/s on one thread, and each path's largest error against a double-precision
// reference relative to the output's largest value. ONNX Runtime's own Conv is compared in
// `lark bench --direct-conv` style through the voice-cache build (bench/direct-conv); this
// program times only Lark's kernels, with no ONNX Runtime in the way.
// Build and run: bash bench/direct-conv-bf16
#include "../Sources/CLarkKernels/direct_conv.h"

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

static float uniform(unsigned long long *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*state >> 40) / (double)(1 << 24)) * 2 - 1;
}

int main(int argc, char **argv) {
    const int64_t samples = argc > 1 ? atoll(argv[1]) : 8192;
    const int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (!lark_bf16_available()) { fprintf(stderr, "this CPU lacks AVX512-BF16\n"); return 1; }
    // HiFi-GAN's residual convolutions: resblock type 1 (kernels 3/7/11 at dilations 1/3/5, and
    // 1) and Piper's medium voices' type 2 (kernels 3/5/7 at dilations 1,2 / 2,6 / 3,12).
    static const int channels[] = {256, 128, 64, 32};
    static const int taps[][2] = {{3, 1}, {3, 3}, {3, 5}, {7, 1}, {7, 3}, {7, 5}, {11, 1}, {11, 3}, {11, 5},
                                  {3, 2}, {5, 2}, {5, 6}, {7, 12}};
    printf("%-24s | %10s | %10s | %6s | %9s | %9s\n", "shape", "fp32 GF/s", "bf16 GF/s", "ratio", "fp32 err", "bf16 err");
    for (int ci = 0; ci < 4; ci++) {
        for (int ki = 0; ki < (int)(sizeof taps / sizeof taps[0]); ki++) {
            {
                const int64_t c = channels[ci], k = taps[ki][0], d = taps[ki][1];
                const int64_t pad = d * (k - 1) / 2;
                unsigned long long state = (unsigned long long)(c * 1000 + k * 10 + d);
                float *x = malloc(sizeof(float) * c * samples), *w = malloc(sizeof(float) * c * c * k);
                float *b = malloc(sizeof(float) * c), *z = malloc(sizeof(float) * c * samples);
                float *y32 = malloc(sizeof(float) * c * samples), *y16 = malloc(sizeof(float) * c * samples);
                for (int64_t i = 0; i < c * samples; i++) x[i] = uniform(&state), z[i] = uniform(&state);
                const float scale = 1 / sqrtf((float)(c * k));
                for (int64_t i = 0; i < c * c * k; i++) w[i] = uniform(&state) * scale;
                for (int64_t i = 0; i < c; i++) b[i] = uniform(&state) * 0.1f;
                float *packed32 = malloc(sizeof(float) * (size_t)(lark_packed_weight_floats(c, c, k) + 1));
                uint32_t *packed = aligned_alloc(64, ((size_t)lark_bf16_packed_weight_units(c, c, k) * 4 + 63) / 64 * 64);
                LarkDirectConv conv = {
                    .batch = 1, .input_channels = c, .output_channels = c, .input_length = samples, .output_length = samples,
                    .kernel = k, .dilation = d, .pad_begin = pad, .has_pre_alpha = 1, .pre_alpha = 0.1f,
                    .x = x, .w = w, .b = b, .z = z, .blocks = lark_conv_blocks_avx512()};
                double best32 = 1e9, best16 = 1e9;
                for (int r = 0; r < rounds; r++) {
                    double start = now();
                    lark_pack_weights(w, c, c, k, packed32);
                    conv.y = y32;
                    for (int64_t t = 0; t < lark_direct_conv_tasks(&conv); t++) lark_direct_conv_packed_task(&conv, packed32, t);
                    double middle = now();
                    lark_bf16_pack_weights(w, c, c, k, packed);
                    conv.y = y16;
                    for (int64_t t = 0; t < lark_direct_conv_tasks(&conv); t++) lark_direct_conv_bf16_task(&conv, packed, t);
                    double end = now();
                    if (middle - start < best32) best32 = middle - start;
                    if (end - middle < best16) best16 = end - middle;
                }
                // Reference at a few sampled outputs, in double.
                double e32 = 0, e16 = 0, largest = 0;
                for (int probe = 0; probe < 512; probe++) {
                    const int64_t o = (probe * 7919) % c, t = probe == 0 ? 0 : probe == 1 ? samples - 1 : (probe * 104729) % samples;
                    double sum = b[o] + z[o * samples + t];
                    for (int64_t i = 0; i < c; i++)
                        for (int64_t kk = 0; kk < k; kk++) {
                            const int64_t at = t - pad + kk * d;
                            if (at < 0 || at >= samples) continue;
                            const double v = x[i * samples + at];
                            sum += (double)w[(o * c + i) * k + kk] * (v < 0 ? v * 0.1f : v);
                        }
                    if (fabs(sum) > largest) largest = fabs(sum);
                    if (fabs(sum - y32[o * samples + t]) > e32) e32 = fabs(sum - y32[o * samples + t]);
                    if (fabs(sum - y16[o * samples + t]) > e16) e16 = fabs(sum - y16[o * samples + t]);
                }
                const double flops = 2.0 * c * c * k * samples;
                char name[64];
                snprintf(name, sizeof name, "%lld->%lld k%lld d%lld", (long long)c, (long long)c, (long long)k, (long long)d);
                printf("%-24s | %10.1f | %10.1f | %6.2f | %9.2e | %9.2e\n", name, flops / best32 / 1e9, flops / best16 / 1e9,
                       best32 / best16, e32 / largest, e16 / largest);
                fflush(stdout);
                free(x), free(w), free(b), free(z), free(y32), free(y16), free(packed), free(packed32);
            }
        }
    }
    return 0;
}
