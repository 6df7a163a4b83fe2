// The direct convolution itself, apart from ONNX Runtime (ort_custom_op.c calls it).
#ifndef LARK_DIRECT_CONV_H
#define LARK_DIRECT_CONV_H

#include "lark_kernels.h"

// Output samples computed per call of a micro-kernel, and output channels per block.
#define LARK_BLOCK_SAMPLES 64
#define LARK_BLOCK_CHANNELS 4

// A micro-kernel: for j < channels (1 or LARK_BLOCK_CHANNELS) and i < LARK_BLOCK_SAMPLES,
//   out[j * LARK_BLOCK_SAMPLES + i] = Σ_c Σ_k w[j * w_channel_stride + c * kernel + k] * s[c * s_stride + i + k * dilation]
// `s` is a zero-padded, already activated copy of the input, so there are no edge cases.
typedef void (*LarkConvBlock)(
    const float *s, int64_t s_stride, const float *w, int64_t w_channel_stride, int64_t input_channels,
    int64_t kernel, int64_t dilation, float *out);

typedef struct LarkConvBlocks {
    LarkConvBlock four;  // LARK_BLOCK_CHANNELS output channels
    LarkConvBlock one;   // one output channel
} LarkConvBlocks;

LarkConvBlocks lark_conv_blocks_scalar(void);
LarkConvBlocks lark_conv_blocks_avx2(void);
LarkConvBlocks lark_conv_blocks_avx512(void);
LarkConvBlocks lark_conv_blocks_neon(void);

typedef struct LarkDirectConv {
    int64_t batch, input_channels, output_channels, input_length, output_length;
    int64_t kernel, dilation, pad_begin;
    int has_pre_alpha, has_post_alpha;
    float pre_alpha, post_alpha;
    const float *x, *w, *b, *z;
    float *y;
    LarkConvBlocks blocks;
} LarkDirectConv;

// Time tiles: the unit of work handed to one thread.
#define LARK_TILE_SAMPLES 256

/// How many independent tasks `conv` splits into (batch items × time tiles).
int64_t lark_direct_conv_tasks(const LarkDirectConv *conv);

/// Runs task `task` (0 ≤ task < lark_direct_conv_tasks). Returns 0, or -1 when out of memory.
int lark_direct_conv_task(const LarkDirectConv *conv, int64_t task);

/// Writes a micro-kernel's block `out` (channels × LARK_BLOCK_SAMPLES, `count` of them valid) to
/// output channels [o0, o0 + channels) at samples [t, t + count) of batch item `n`, adding the
/// bias and the residual and applying the post-activation.
void lark_direct_conv_finish(const LarkDirectConv *conv, int64_t n, int64_t t, int64_t o0, int64_t channels, int64_t count,
                             const float *out);

// MARK: - bfloat16 (direct_conv_bf16.c)

/// Whether this CPU can run the bf16 path (AVX512-BF16).
int lark_bf16_available(void);

/// The size, in 32-bit units, of a [M, C, K] weight tensor packed for the bf16 path.
int64_t lark_bf16_packed_weight_units(int64_t output_channels, int64_t input_channels, int64_t kernel);

/// Rounds W [M, C, K] to bf16 and packs it: unit (o, p, k) = {W[o][2p][k], W[o][2p+1][k]} (low, high
/// half; zero past an odd C's last channel).
void lark_bf16_pack_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, uint32_t *packed);

/// Task `task` of `conv` in bf16 with `packed` weights (`conv->w` unused; `conv->blocks` unused).
/// Returns 0, or -1 when out of memory or the CPU lacks the path.
int lark_direct_conv_bf16_task(const LarkDirectConv *conv, const uint32_t *packed, int64_t task);

#endif
