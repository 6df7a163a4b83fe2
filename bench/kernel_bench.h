// What the C kernel benches (bench/resblock-fusion.c, bench/direct-conv-32.c) share: aligned
// buffers, a fixed pseudo-random fill, and the largest difference between two results relative to
// the reference's largest value. Header-only: each bench is one translation unit built by its script.
#ifndef LARK_KERNEL_BENCH_H
#define LARK_KERNEL_BENCH_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "direct_conv.h"

/// This CPU's best micro-kernels, with the packed FP32 path of their ISA (AVX-512 or AVX2).
static inline LarkConvBlocks best_blocks(void) {
    int packed;
    return lark_conv_blocks_for(LARK_PATH_BEST, &packed);
}

/// `count` floats, 64-byte aligned; exits when out of memory.
static float *floats(int64_t count) {
    float *p = aligned_alloc(64, (size_t)((count * 4 + 63) / 64 * 64));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/// The same sequence on every run (xorshift64): values in [-1, 1).
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/// max |reference − actual| / max |reference| over `count` values.
static double relative_error(const float *reference, const float *actual, int64_t count) {
    double largest = 0, error = 0;
    for (int64_t i = 0; i < count; i++) {
        if (fabs(reference[i]) > largest) largest = fabs(reference[i]);
        if (fabs(reference[i] - actual[i]) > error) error = fabs(reference[i] - actual[i]);
    }
    return largest > 0 ? error / largest : error;
}

#endif
