// The direct convolution's micro-kernels for AArch64 Advanced SIMD (NEON): 32 registers of 4
// floats, so 4 channels × 4 vectors (16 samples) = 16 accumulators, four times per block.
#include "direct_conv.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static void four_neon(const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    for (int part = 0; part < LARK_BLOCK_SAMPLES; part += 16) {
        float32x4_t acc[4][4];
        for (int j = 0; j < 4; j++)
            for (int v = 0; v < 4; v++) acc[j][v] = vdupq_n_f32(0);
        for (int64_t c = 0; c < cin; c++) {
            const float *row = s + c * ss + part;
            const float *wc = w + c * k;
            for (int64_t kk = 0; kk < k; kk++) {
                const float *p = row + kk * d;
                const float32x4_t x0 = vld1q_f32(p), x1 = vld1q_f32(p + 4), x2 = vld1q_f32(p + 8), x3 = vld1q_f32(p + 12);
                for (int j = 0; j < 4; j++) {
                    const float32x4_t v = vdupq_n_f32(wc[j * ws + kk]);
                    acc[j][0] = vfmaq_f32(acc[j][0], v, x0);
                    acc[j][1] = vfmaq_f32(acc[j][1], v, x1);
                    acc[j][2] = vfmaq_f32(acc[j][2], v, x2);
                    acc[j][3] = vfmaq_f32(acc[j][3], v, x3);
                }
            }
        }
        for (int j = 0; j < 4; j++)
            for (int v = 0; v < 4; v++) vst1q_f32(out + j * LARK_BLOCK_SAMPLES + part + 4 * v, acc[j][v]);
    }
}

static void one_neon(const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    (void)ws;
    for (int part = 0; part < LARK_BLOCK_SAMPLES; part += 32) {
        float32x4_t acc[8];
        for (int v = 0; v < 8; v++) acc[v] = vdupq_n_f32(0);
        for (int64_t c = 0; c < cin; c++) {
            const float *row = s + c * ss + part;
            const float *wc = w + c * k;
            for (int64_t kk = 0; kk < k; kk++) {
                const float *p = row + kk * d;
                const float32x4_t v = vdupq_n_f32(wc[kk]);
                for (int u = 0; u < 8; u++) acc[u] = vfmaq_f32(acc[u], v, vld1q_f32(p + 4 * u));
            }
        }
        for (int v = 0; v < 8; v++) vst1q_f32(out + part + 4 * v, acc[v]);
    }
}

LarkConvBlocks lark_conv_blocks_neon(void) { return (LarkConvBlocks){four_neon, one_neon, LARK_PACKED_NONE}; }

#else

LarkConvBlocks lark_conv_blocks_neon(void) { return lark_conv_blocks_scalar(); }

#endif
