// The 4×4 transpose within each 128-bit lane that AVX2's sub-pixel epilogue (direct_conv_avx2.c)
// and Winograd's gathers and finishes (winograd.c) share. Include after <immintrin.h>, on x86-64.
#ifndef LARK_AVX2_TRANSPOSE_H
#define LARK_AVX2_TRANSPOSE_H

/// The four rows' 4×4 blocks transposed within each 128-bit lane (row k of lane l gets column k).
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void transpose_lanes(__m256 *a, __m256 *b, __m256 *c,
                                                                                                   __m256 *d) {
    const __m256 ab_low = _mm256_unpacklo_ps(*a, *b), ab_high = _mm256_unpackhi_ps(*a, *b);
    const __m256 cd_low = _mm256_unpacklo_ps(*c, *d), cd_high = _mm256_unpackhi_ps(*c, *d);
    *a = _mm256_shuffle_ps(ab_low, cd_low, 0x44), *b = _mm256_shuffle_ps(ab_low, cd_low, 0xEE);
    *c = _mm256_shuffle_ps(ab_high, cd_high, 0x44), *d = _mm256_shuffle_ps(ab_high, cd_high, 0xEE);
}

#endif
