// The direct convolution in bfloat16 with AVX512-BF16 (`--precision bf16`): products of bf16
// weights and bf16 activations, accumulated in FP32, written as FP32.
//
// `vdpbf16ps` multiplies two pairs of bf16 values per 32-bit lane and adds both products to an
// FP32 accumulator: twice the multiply-adds of an FP32 FMA per instruction. So both operands
// hold *pairs of input channels*: the scratch copy of a tile stores, for each pair of channels
// (2p, 2p+1) and each sample t, one 32-bit unit {bf16 x[2p][t], bf16 x[2p+1][t]}, and the packed
// weights store {bf16 w[o][2p][k], bf16 w[o][2p+1][k]}. A vector of 16 consecutive units is then
// 16 consecutive samples of one channel pair, and one broadcast weight unit serves all of them,
// the same register blocking as the FP32 kernel (direct_conv_x86.c) with half the steps.
//
// The activations are rounded to bf16 (round to nearest even) while the tile is copied, after
// the fused pre-LeakyRelu; the weights once, when the kernel first runs.
#include "direct_conv.h"

#include <stdlib.h>
#include <string.h>

int lark_bf16_supported(void) { return lark_bf16_available(); }

int64_t lark_bf16_packed_weight_units(int64_t output_channels, int64_t input_channels, int64_t kernel) {
    return output_channels * ((input_channels + 1) / 2) * kernel;
}

/// FP32 → bf16, round to nearest even (NaN kept a NaN), as `vcvtneps2bf16` does.
static uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

void lark_bf16_pack_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, uint32_t *packed) {
    const int64_t pairs = (input_channels + 1) / 2;
    for (int64_t o = 0; o < output_channels; o++) {
        const float *wo = w + o * input_channels * kernel;
        for (int64_t p = 0; p < pairs; p++) {
            for (int64_t k = 0; k < kernel; k++) {
                const uint32_t low = to_bf16(wo[2 * p * kernel + k]);
                const uint32_t high = 2 * p + 1 < input_channels ? to_bf16(wo[(2 * p + 1) * kernel + k]) : 0;
                packed[(o * pairs + p) * kernel + k] = low | high << 16;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

int lark_bf16_available(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"); }

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

static int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

/// One row of the scratch: samples [first, first + count) of channels `a` and `b` (b may be
/// NULL: an odd channel count's last pair, whose second half is zero), zero outside the input's
/// [0, length), activated, rounded to bf16 and interleaved.
BF16_TARGET static void fill_row(uint32_t *row, int64_t count, const float *a, const float *b, int64_t first, int64_t length,
                                 int has_alpha, float alpha) {
    const __m512 alphas = _mm512_set1_ps(alpha), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < count; i += 16) {
        const int64_t t = first + i;  // the input index of lane 0
        // Only the lanes that hold input samples are loaded; the masked loads do not touch the others.
        const __mmask16 inside = lark_inside_lanes(t, length);
        __m512 x = _mm512_maskz_loadu_ps(inside, a + t);
        __m512 y = b ? _mm512_maskz_loadu_ps(inside, b + t) : zero;
        if (has_alpha) {
            x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, alphas);
            y = _mm512_mask_mul_ps(y, _mm512_cmp_ps_mask(y, zero, _CMP_LT_OQ), y, alphas);
        }
        const __m512i low = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x));
        const __m512i high = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(y));
        _mm512_store_si512(row + i, _mm512_or_si512(low, _mm512_slli_epi32(high, 16)));
    }
}

#define DP(acc, x, w) acc = _mm512_dpbf16_ps(acc, (__m512bh)(x), (__m512bh)(w))

/// 4 output channels × 64 samples: 16 accumulators, 4 input vectors, 1 weight broadcast.
/// Inlined into copies for the common kernel sizes, whose tap loops the compiler then unrolls
/// (a 3-tap loop's overhead is otherwise a visible part of each step).
BF16_TARGET static inline __attribute__((always_inline)) void four_bf16_body(
    const uint32_t *s, int64_t ss, const uint32_t *w, int64_t ws, int64_t pairs, int64_t k, int64_t d, float *out) {
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    __m512 a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (int64_t p = 0; p < pairs; p++) {
        const uint32_t *row = s + p * ss;
        const uint32_t *wp = w + p * k;
        for (int64_t kk = 0; kk < k; kk++) {
            const uint32_t *q = row + kk * d;
            const __m512i x0 = _mm512_loadu_si512(q), x1 = _mm512_loadu_si512(q + 16);
            const __m512i x2 = _mm512_loadu_si512(q + 32), x3 = _mm512_loadu_si512(q + 48);
            __m512i v = _mm512_set1_epi32((int)wp[kk]);
            DP(a00, x0, v); DP(a01, x1, v); DP(a02, x2, v); DP(a03, x3, v);
            v = _mm512_set1_epi32((int)wp[ws + kk]);
            DP(a10, x0, v); DP(a11, x1, v); DP(a12, x2, v); DP(a13, x3, v);
            v = _mm512_set1_epi32((int)wp[2 * ws + kk]);
            DP(a20, x0, v); DP(a21, x1, v); DP(a22, x2, v); DP(a23, x3, v);
            v = _mm512_set1_epi32((int)wp[3 * ws + kk]);
            DP(a30, x0, v); DP(a31, x1, v); DP(a32, x2, v); DP(a33, x3, v);
        }
    }
    _mm512_store_ps(out + 0, a00); _mm512_store_ps(out + 16, a01); _mm512_store_ps(out + 32, a02); _mm512_store_ps(out + 48, a03);
    _mm512_store_ps(out + 64, a10); _mm512_store_ps(out + 80, a11); _mm512_store_ps(out + 96, a12); _mm512_store_ps(out + 112, a13);
    _mm512_store_ps(out + 128, a20); _mm512_store_ps(out + 144, a21); _mm512_store_ps(out + 160, a22); _mm512_store_ps(out + 176, a23);
    _mm512_store_ps(out + 192, a30); _mm512_store_ps(out + 208, a31); _mm512_store_ps(out + 224, a32); _mm512_store_ps(out + 240, a33);
}

BF16_TARGET static void four_bf16(const uint32_t *s, int64_t ss, const uint32_t *w, int64_t ws, int64_t pairs, int64_t k,
                                  int64_t d, float *out) {
    switch (k) {
    case 3: four_bf16_body(s, ss, w, ws, pairs, 3, d, out); break;
    case 5: four_bf16_body(s, ss, w, ws, pairs, 5, d, out); break;
    case 7: four_bf16_body(s, ss, w, ws, pairs, 7, d, out); break;
    default: four_bf16_body(s, ss, w, ws, pairs, k, d, out); break;
    }
}

/// One output channel (conv_post): two sets of 4 accumulators over alternate taps.
BF16_TARGET static void one_bf16(const uint32_t *s, int64_t ss, const uint32_t *w, int64_t pairs, int64_t k, int64_t d,
                                 float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t p = 0; p < pairs; p++) {
        const uint32_t *row = s + p * ss;
        const uint32_t *wp = w + p * k;
        int64_t kk = 0;
        for (; kk + 1 < k; kk += 2) {
            const uint32_t *q = row + kk * d, *r = q + d;
            const __m512i v = _mm512_set1_epi32((int)wp[kk]), u = _mm512_set1_epi32((int)wp[kk + 1]);
            DP(a0, _mm512_loadu_si512(q), v); DP(a1, _mm512_loadu_si512(q + 16), v);
            DP(a2, _mm512_loadu_si512(q + 32), v); DP(a3, _mm512_loadu_si512(q + 48), v);
            DP(b0, _mm512_loadu_si512(r), u); DP(b1, _mm512_loadu_si512(r + 16), u);
            DP(b2, _mm512_loadu_si512(r + 32), u); DP(b3, _mm512_loadu_si512(r + 48), u);
        }
        for (; kk < k; kk++) {
            const uint32_t *q = row + kk * d;
            const __m512i v = _mm512_set1_epi32((int)wp[kk]);
            DP(a0, _mm512_loadu_si512(q), v); DP(a1, _mm512_loadu_si512(q + 16), v);
            DP(a2, _mm512_loadu_si512(q + 32), v); DP(a3, _mm512_loadu_si512(q + 48), v);
        }
    }
    _mm512_store_ps(out + 0, _mm512_add_ps(a0, b0)); _mm512_store_ps(out + 16, _mm512_add_ps(a1, b1));
    _mm512_store_ps(out + 32, _mm512_add_ps(a2, b2)); _mm512_store_ps(out + 48, _mm512_add_ps(a3, b3));
}

int lark_direct_conv_bf16_task(const LarkDirectConv *conv, const uint32_t *packed, int64_t task) {
    const LarkConvTile tile = lark_direct_conv_tile(conv, task);
    const int64_t n = tile.n, t0 = tile.t0, length = tile.length;
    const int64_t cin = conv->input_channels, cout = conv->output_channels, k = conv->kernel, d = conv->dilation;
    const int64_t pairs = (cin + 1) / 2;

    // As the FP32 driver: whole blocks of output plus the kernel's reach plus a vector of slack.
    const int64_t span = round_up(length, LARK_BLOCK_SAMPLES) + (k - 1) * d;
    const int64_t stride = round_up(span + 16, 16);
    uint32_t *s = lark_take_scratch(conv, (size_t)(pairs * stride) * sizeof(uint32_t));
    if (!s) return -1;
    const int64_t x_row = lark_x_row(conv);
    const float *x = conv->x + n * cin * x_row;
    const int64_t first = t0 - conv->pad_begin;
    for (int64_t p = 0; p < pairs; p++) {
        const float *a = x + 2 * p * x_row;
        const float *b = 2 * p + 1 < cin ? a + x_row : NULL;
        fill_row(s + p * stride, stride, a, b, first, conv->input_length, conv->has_pre_alpha, conv->pre_alpha);
    }

    float out[LARK_BLOCK_CHANNELS * LARK_BLOCK_SAMPLES] __attribute__((aligned(64)));
    const int64_t w_channel = pairs * k;
    for (int64_t o0 = 0; o0 < cout; o0 += LARK_BLOCK_CHANNELS) {
        const int64_t channels = cout - o0 < LARK_BLOCK_CHANNELS ? cout - o0 : LARK_BLOCK_CHANNELS;
        for (int64_t i0 = 0; i0 < length; i0 += LARK_BLOCK_SAMPLES) {
            if (channels == LARK_BLOCK_CHANNELS) {
                four_bf16(s + i0, stride, packed + o0 * w_channel, w_channel, pairs, k, d, out);
            } else {
                for (int64_t j = 0; j < channels; j++)
                    one_bf16(s + i0, stride, packed + (o0 + j) * w_channel, pairs, k, d, out + j * LARK_BLOCK_SAMPLES);
            }
            const int64_t count = length - i0 < LARK_BLOCK_SAMPLES ? length - i0 : LARK_BLOCK_SAMPLES;
            lark_direct_conv_finish(conv, n, t0 + i0, o0, channels, count, out);
        }
    }
    lark_release_scratch(conv, s);
    return 0;
}

#else

int lark_bf16_available(void) { return 0; }

int lark_direct_conv_bf16_task(const LarkDirectConv *conv, const uint32_t *packed, int64_t task) {
    (void)conv, (void)packed, (void)task;
    return -1;
}

#endif
