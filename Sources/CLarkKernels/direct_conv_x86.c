// The direct convolution's micro-kernels for x86-64: AVX-512F and AVX2 with FMA. Each function
// carries its own `target` attribute, so the file builds for any x86-64 CPU and direct_conv.c
// calls these only when the CPU reports the features.
//
// Register blocking: each step of the (channel, tap) loop loads a few vectors of consecutive
// input samples, broadcasts one weight per output channel, and does one FMA per pair, so the
// accumulators (output channels × sample vectors) stay in registers for the whole reduction.
#include "direct_conv.h"

#if defined(__x86_64__)
#include <immintrin.h>

// MARK: AVX-512: 4 channels × 4 vectors of 16 samples = 16 accumulators of 32 registers.

__attribute__((target("avx512f"))) static void four_avx512(
    const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    __m512 a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (int64_t c = 0; c < cin; c++) {
        const float *row = s + c * ss;
        const float *wc = w + c * k;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *p = row + kk * d;
            const __m512 x0 = _mm512_loadu_ps(p), x1 = _mm512_loadu_ps(p + 16);
            const __m512 x2 = _mm512_loadu_ps(p + 32), x3 = _mm512_loadu_ps(p + 48);
            __m512 v = _mm512_set1_ps(wc[kk]);
            a00 = _mm512_fmadd_ps(v, x0, a00); a01 = _mm512_fmadd_ps(v, x1, a01);
            a02 = _mm512_fmadd_ps(v, x2, a02); a03 = _mm512_fmadd_ps(v, x3, a03);
            v = _mm512_set1_ps(wc[ws + kk]);
            a10 = _mm512_fmadd_ps(v, x0, a10); a11 = _mm512_fmadd_ps(v, x1, a11);
            a12 = _mm512_fmadd_ps(v, x2, a12); a13 = _mm512_fmadd_ps(v, x3, a13);
            v = _mm512_set1_ps(wc[2 * ws + kk]);
            a20 = _mm512_fmadd_ps(v, x0, a20); a21 = _mm512_fmadd_ps(v, x1, a21);
            a22 = _mm512_fmadd_ps(v, x2, a22); a23 = _mm512_fmadd_ps(v, x3, a23);
            v = _mm512_set1_ps(wc[3 * ws + kk]);
            a30 = _mm512_fmadd_ps(v, x0, a30); a31 = _mm512_fmadd_ps(v, x1, a31);
            a32 = _mm512_fmadd_ps(v, x2, a32); a33 = _mm512_fmadd_ps(v, x3, a33);
        }
    }
    _mm512_store_ps(out + 0, a00); _mm512_store_ps(out + 16, a01); _mm512_store_ps(out + 32, a02); _mm512_store_ps(out + 48, a03);
    _mm512_store_ps(out + 64, a10); _mm512_store_ps(out + 80, a11); _mm512_store_ps(out + 96, a12); _mm512_store_ps(out + 112, a13);
    _mm512_store_ps(out + 128, a20); _mm512_store_ps(out + 144, a21); _mm512_store_ps(out + 160, a22); _mm512_store_ps(out + 176, a23);
    _mm512_store_ps(out + 192, a30); _mm512_store_ps(out + 208, a31); _mm512_store_ps(out + 224, a32); _mm512_store_ps(out + 240, a33);
}

// One output channel (conv_post): two sets of 4 accumulators over alternate taps, so that eight
// FMA chains are in flight instead of four.
__attribute__((target("avx512f"))) static void one_avx512(
    const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    (void)ws;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t c = 0; c < cin; c++) {
        const float *row = s + c * ss;
        const float *wc = w + c * k;
        int64_t kk = 0;
        for (; kk + 1 < k; kk += 2) {
            const float *p = row + kk * d, *q = p + d;
            const __m512 v = _mm512_set1_ps(wc[kk]), u = _mm512_set1_ps(wc[kk + 1]);
            a0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p), a0); a1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 16), a1);
            a2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 32), a2); a3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 48), a3);
            b0 = _mm512_fmadd_ps(u, _mm512_loadu_ps(q), b0); b1 = _mm512_fmadd_ps(u, _mm512_loadu_ps(q + 16), b1);
            b2 = _mm512_fmadd_ps(u, _mm512_loadu_ps(q + 32), b2); b3 = _mm512_fmadd_ps(u, _mm512_loadu_ps(q + 48), b3);
        }
        for (; kk < k; kk++) {
            const float *p = row + kk * d;
            const __m512 v = _mm512_set1_ps(wc[kk]);
            a0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p), a0); a1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 16), a1);
            a2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 32), a2); a3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(p + 48), a3);
        }
    }
    _mm512_store_ps(out + 0, _mm512_add_ps(a0, b0)); _mm512_store_ps(out + 16, _mm512_add_ps(a1, b1));
    _mm512_store_ps(out + 32, _mm512_add_ps(a2, b2)); _mm512_store_ps(out + 48, _mm512_add_ps(a3, b3));
}

// MARK: AVX2: 16 registers, so 4 channels × 2 vectors of 8 samples, four times per block.

__attribute__((target("avx2,fma"))) static void four_avx2(
    const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    for (int part = 0; part < LARK_BLOCK_SAMPLES; part += 16) {
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
        __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int64_t c = 0; c < cin; c++) {
            const float *row = s + c * ss + part;
            const float *wc = w + c * k;
            for (int64_t kk = 0; kk < k; kk++) {
                const float *p = row + kk * d;
                const __m256 x0 = _mm256_loadu_ps(p), x1 = _mm256_loadu_ps(p + 8);
                __m256 v = _mm256_broadcast_ss(wc + kk);
                a00 = _mm256_fmadd_ps(v, x0, a00); a01 = _mm256_fmadd_ps(v, x1, a01);
                v = _mm256_broadcast_ss(wc + ws + kk);
                a10 = _mm256_fmadd_ps(v, x0, a10); a11 = _mm256_fmadd_ps(v, x1, a11);
                v = _mm256_broadcast_ss(wc + 2 * ws + kk);
                a20 = _mm256_fmadd_ps(v, x0, a20); a21 = _mm256_fmadd_ps(v, x1, a21);
                v = _mm256_broadcast_ss(wc + 3 * ws + kk);
                a30 = _mm256_fmadd_ps(v, x0, a30); a31 = _mm256_fmadd_ps(v, x1, a31);
            }
        }
        float *o = out + part;
        _mm256_store_ps(o, a00); _mm256_store_ps(o + 8, a01);
        _mm256_store_ps(o + 64, a10); _mm256_store_ps(o + 72, a11);
        _mm256_store_ps(o + 128, a20); _mm256_store_ps(o + 136, a21);
        _mm256_store_ps(o + 192, a30); _mm256_store_ps(o + 200, a31);
    }
}

// One output channel (conv_post): the block's 64 samples as eight accumulators in one pass, so
// that eight FMA chains are in flight (four left it bound by the FMA latency: ~9 GFLOP/s).
__attribute__((target("avx2,fma"))) static void one_avx2(
    const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    (void)ws;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t c = 0; c < cin; c++) {
        const float *row = s + c * ss;
        const float *wc = w + c * k;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *p = row + kk * d;
            const __m256 v = _mm256_broadcast_ss(wc + kk);
            a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p), a0); a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 16), a2); a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 24), a3);
            a4 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 32), a4); a5 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 40), a5);
            a6 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 48), a6); a7 = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + 56), a7);
        }
    }
    _mm256_store_ps(out, a0); _mm256_store_ps(out + 8, a1); _mm256_store_ps(out + 16, a2); _mm256_store_ps(out + 24, a3);
    _mm256_store_ps(out + 32, a4); _mm256_store_ps(out + 40, a5); _mm256_store_ps(out + 48, a6); _mm256_store_ps(out + 56, a7);
}

LarkConvBlocks lark_conv_blocks_avx512(void) { return (LarkConvBlocks){four_avx512, one_avx512, LARK_PACKED_AVX512}; }
LarkConvBlocks lark_conv_blocks_avx2(void) { return (LarkConvBlocks){four_avx2, one_avx2, LARK_PACKED_AVX2}; }

#else

LarkConvBlocks lark_conv_blocks_avx512(void) { return lark_conv_blocks_scalar(); }
LarkConvBlocks lark_conv_blocks_avx2(void) { return lark_conv_blocks_scalar(); }

#endif
