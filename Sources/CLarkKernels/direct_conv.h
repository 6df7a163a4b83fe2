// The direct convolution itself, apart from ONNX Runtime (ort_custom_op.c calls it).
#ifndef LARK_DIRECT_CONV_H
#define LARK_DIRECT_CONV_H

#include "lark_kernels.h"

#include <stdlib.h>

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
    int packed;          // the packed FP32 path of the same ISA (LarkPackedIsa), LARK_PACKED_NONE if none
} LarkConvBlocks;

/// The packed FP32 path's instruction sets (direct_conv_avx2.c, direct_conv_avx512.c).
typedef enum { LARK_PACKED_NONE = 0, LARK_PACKED_AVX2 = 1, LARK_PACKED_AVX512 = 2 } LarkPackedIsa;

LarkConvBlocks lark_conv_blocks_scalar(void);
LarkConvBlocks lark_conv_blocks_avx2(void);
LarkConvBlocks lark_conv_blocks_avx512(void);
LarkConvBlocks lark_conv_blocks_neon(void);
/// The micro-kernels of `path` (LARK_PATH_BEST: this CPU's best), and in `*fp32_packed` the
/// packed FP32 path that goes with them (LarkPackedIsa; nonzero: there is one).
LarkConvBlocks lark_conv_blocks_for(LarkKernelPath path, int *fp32_packed);

typedef struct LarkDirectConv {
    int64_t batch, input_channels, output_channels, input_length, output_length;
    int64_t kernel, dilation, pad_begin;
    int has_pre_alpha, has_post_alpha;
    float pre_alpha, post_alpha;
    const float *x, *w, *b, *z;
    float *y;
    LarkConvBlocks blocks;
    // The distance between two channels' rows in X, Y and Z; 0 means dense (the input's or the
    // output's length). A fused operator (residual_stack.c) runs a tile of a longer sequence as a
    // sub-problem that reads and writes the full-length tensors in place.
    int64_t x_row, y_row, z_row;
    // Optional caller-owned room for a task's padded input copy (64-byte aligned), used when it is
    // at least as large as the copy; NULL: each task allocates its own.
    void *scratch;
    size_t scratch_bytes;
    // A sub-pixel output (0: none): the convolution's output channel j = o·subpixel + r is phase r
    // of Y's channel o, and its sample q goes to Y[o][q·subpixel + r − subpixel_crop] when that
    // lies in [0, subpixel_length) (a ConvTranspose of stride `subpixel` restated: see
    // DirectConvolutionRewrite's SubpixelOutput). Y has output_channels / subpixel channels of
    // y_row samples (y_row must be set); no Z or post-activation.
    int64_t subpixel, subpixel_crop, subpixel_length;
} LarkDirectConv;

/// Stores `count` results of output channel `j` from sample `q` on where a sub-pixel output puts
/// them (LarkDirectConv.subpixel), plus `bias`, dropping those its crop removes. `y`: the batch
/// item's Y.
static inline void lark_subpixel_store(const LarkDirectConv *conv, float *y, int64_t j, int64_t q, const float *values, int64_t count,
                                       float bias) {
    const int64_t s = conv->subpixel, r = j % s;
    float *row = y + j / s * conv->y_row;
    for (int64_t i = 0; i < count; i++) {
        const int64_t t = (q + i) * s + r - conv->subpixel_crop;
        if (t >= 0 && t < conv->subpixel_length) row[t] = values[i] + bias;
    }
}

/// The batch item `n`'s Y: output_channels rows, or output_channels / subpixel for a sub-pixel output.
static inline float *lark_item_output(const LarkDirectConv *conv, int64_t n) {
    const int64_t rows = conv->subpixel ? conv->output_channels / conv->subpixel : conv->output_channels;
    return conv->y + n * rows * (conv->y_row ? conv->y_row : conv->output_length);
}

/// The most bytes one task's padded input copy of `conv` takes (FP32 or bf16).
size_t lark_direct_conv_scratch_bytes(const LarkDirectConv *conv);

/// This thread's reusable scratch of at least `bytes` (64-byte aligned), kept for the thread's
/// life and grown as needed: ONNX Runtime's threads live as long as the process, and a fresh
/// allocation per task lands on fresh pages (a page fault per 4 KB) as often as not. One user at
/// a time; NULL when out of memory.
void *lark_thread_scratch(size_t bytes);

/// Room for a task's padded input copy from `conv->scratch`, else a new allocation (NULL when out
/// of memory); release it with lark_release_scratch.
static inline void *lark_take_scratch(const LarkDirectConv *conv, size_t bytes) {
    return conv->scratch && bytes <= conv->scratch_bytes ? conv->scratch : aligned_alloc(64, (bytes + 63) / 64 * 64);
}
static inline void lark_release_scratch(const LarkDirectConv *conv, void *scratch) {
    if (scratch != conv->scratch) free(scratch);
}

static inline int64_t lark_x_row(const LarkDirectConv *conv) { return conv->x_row ? conv->x_row : conv->input_length; }
static inline int64_t lark_y_row(const LarkDirectConv *conv) { return conv->y_row ? conv->y_row : conv->output_length; }
static inline int64_t lark_z_row(const LarkDirectConv *conv) { return conv->z_row ? conv->z_row : conv->output_length; }

/// The lanes of a 16-sample window that starts at input index `t` and lie inside [0, length): the
/// mask of a masked vector load at a row's ends (the other lanes are neither read nor kept).
static inline uint16_t lark_inside_lanes(int64_t t, int64_t length) {
    const int64_t lo = t < 0 ? (-t < 16 ? -t : 16) : 0;
    const int64_t hi = length - t < 16 ? (length - t > 0 ? length - t : 0) : 16;
    return hi > lo ? (uint16_t)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1)) : 0;
}

// Time tiles: the unit of work handed to one thread (a multiple of LARK_BLOCK_SAMPLES and of
// LARK_PACKED_SAMPLES, so that only a sequence's last tile has a partial block).
#define LARK_TILE_SAMPLES 384

/// How many independent tasks `conv` splits into (batch items × time tiles).
int64_t lark_direct_conv_tasks(const LarkDirectConv *conv);

/// Task `task`'s place: batch item `n`, first output sample `t0` and `length` samples of output.
typedef struct LarkConvTile {
    int64_t n, t0, length;
} LarkConvTile;
LarkConvTile lark_direct_conv_tile(const LarkDirectConv *conv, int64_t task);

/// Runs task `task` (0 ≤ task < lark_direct_conv_tasks). Returns 0, or -1 when out of memory.
int lark_direct_conv_task(const LarkDirectConv *conv, int64_t task);

/// A tile's padded and activated copy of the input: for each input channel, samples from
/// `t0 - pad_begin` on, enough for the tile's whole LARK_BLOCK_SAMPLES blocks plus the kernel's
/// reach plus a vector of slack, zero outside the input. Its row stride goes to `*stride`;
/// NULL when out of memory; the caller frees it.
float *lark_direct_conv_scratch(const LarkDirectConv *conv, int64_t n, int64_t t0, int64_t length, int64_t *stride);

/// Output channels [first_channel, M) of a tile from its scratch, with `conv->blocks`, finished.
void lark_direct_conv_channels(const LarkDirectConv *conv, const float *s, int64_t stride, int64_t n, int64_t t0, int64_t length,
                               int64_t first_channel);

/// Writes a micro-kernel's block `out` (channels × LARK_BLOCK_SAMPLES, `count` of them valid) to
/// output channels [o0, o0 + channels) at samples [t, t + count) of batch item `n`, adding the
/// bias and the residual and applying the post-activation.
void lark_direct_conv_finish(const LarkDirectConv *conv, int64_t n, int64_t t, int64_t o0, int64_t channels, int64_t count,
                             const float *out);

// MARK: - FP32 with packed weights on AVX-512 (direct_conv_avx512.c) or AVX2 (direct_conv_avx2.c)

// Output channels and 16-sample vectors of the packed path's register tile.
#define LARK_PACKED_CHANNELS 8
#define LARK_PACKED_VECTORS 3
#define LARK_PACKED_SAMPLES (16 * LARK_PACKED_VECTORS)

/// Room for the packed paths' padded input copy of a `length`-sample tile of `conv`: C rows of
/// the tile's whole blocks plus the kernel's reach plus a vector of slack, `*stride` floats apart
/// (a multiple of 16); as lark_take_scratch, released with lark_release_scratch.
static inline float *lark_take_packed_scratch(const LarkDirectConv *conv, int64_t length, int64_t *stride) {
    const int64_t blocks = (length + LARK_BLOCK_SAMPLES - 1) / LARK_BLOCK_SAMPLES;
    const int64_t span = blocks * LARK_BLOCK_SAMPLES + (conv->kernel - 1) * conv->dilation;
    *stride = (span + 16 + 15) / 16 * 16;
    return lark_take_scratch(conv, (size_t)(conv->input_channels * *stride) * sizeof(float));
}

/// This CPU's best packed FP32 path (LarkPackedIsa): AVX-512F, else AVX2 with FMA, else none.
int lark_packed_available(void);
/// The packed path `conv` runs: its micro-kernels' (a path forced for tests runs its own ISA), or
/// the CPU's best for a caller that set none.
static inline int lark_packed_isa(const LarkDirectConv *conv) {
    return conv->blocks.packed ? conv->blocks.packed : lark_packed_available();
}

/// The size, in floats, of a [M, C, K] weight tensor packed for the path: whole blocks of
/// LARK_PACKED_CHANNELS output channels only (the others run on `conv->blocks`).
int64_t lark_packed_weight_floats(int64_t output_channels, int64_t input_channels, int64_t kernel);

/// Packs W [M, C, K]: float (b, c, k, j) = W[b * LARK_PACKED_CHANNELS + j][c][k], so that one
/// step of the reduction reads the block's weights from one 32-byte run.
void lark_pack_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, float *packed);

/// Task `task` of `conv` with `packed` weights: whole blocks of channels on the packed kernel,
/// the rest on `conv->blocks`, on the packed path lark_packed_isa gives. Returns 0, or -1 when out
/// of memory.
int lark_direct_conv_packed_task(const LarkDirectConv *conv, const float *packed, int64_t task);
int lark_direct_conv_packed_task_avx512(const LarkDirectConv *conv, const float *packed, int64_t task);
int lark_direct_conv_packed_task_avx2(const LarkDirectConv *conv, const float *packed, int64_t task);

/// Rows already prepared (no padding, activation, bias or residual): for output channels
/// [0, blocks · LARK_PACKED_CHANNELS) and samples [0, length),
///   y[o · y_row + i] = Σ_c Σ_k W[o][c][k] · s[c · ss + i + k · d]
/// with `packed` weights. `s` rows must be readable to round_up(length, 16) + (k − 1) · d. When
/// `y_row` is a multiple of 8, AVX2 may write Y up to round_up(length, 8) (whole vectors).
/// winograd.c's products, on packed path `isa` (LarkPackedIsa).
void lark_packed_rows(int isa, const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                      float *y, int64_t y_row);
void lark_packed_rows_avx512(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                             float *y, int64_t y_row);
void lark_packed_rows_avx2(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                           float *y, int64_t y_row);

// MARK: - Winograd (winograd.c)

#define LARK_WINOGRAD_MAX_POINTS 12
#define LARK_WINOGRAD_MAX_OUTPUTS 8

/// F(m, r): m outputs of a phase per anchor from kernel pieces of r taps, with n = m + r − 1
/// products; a kernel longer than r is cut into `pieces` (then r must be m).
typedef struct LarkWinograd {
    int64_t m, r, n, pieces;
    float bt[LARK_WINOGRAD_MAX_POINTS][LARK_WINOGRAD_MAX_POINTS];  // input transform B^T [n][n]
    double g[LARK_WINOGRAD_MAX_POINTS][LARK_WINOGRAD_MAX_POINTS];  // kernel transform G [n][r]
    float at[LARK_WINOGRAD_MAX_OUTPUTS][LARK_WINOGRAD_MAX_POINTS];  // output transform A^T [m][n]
} LarkWinograd;

/// The transforms of F(m, r) for a kernel of `kernel` taps. Returns 0, or -1 for sizes it lacks.
int lark_winograd_plan(LarkWinograd *plan, int64_t kernel, int64_t m, int64_t r);

/// The size, in floats, of W [M, C, K] transformed for `plan` (lark_winograd_weights) for the
/// path lark_winograd_conv will run with the same `fp32_packed`.
int64_t lark_winograd_weight_floats(const LarkWinograd *plan, int64_t output_channels, int64_t input_channels, int fp32_packed);

/// U_p [M, C, pieces] for every point p (computed in double), into `out` as the path of
/// `fp32_packed` reads them: packed for the packed FP32 path (lark_pack_weights), plain for the
/// generic micro-kernels (and for output channels past the last whole packed block). Returns 0,
/// or -1 when out of memory.
int lark_winograd_weights(const LarkWinograd *plan, const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel,
                          int fp32_packed, float *out);

/// Output samples per time tile when a caller splits a convolution over threads for `plan`: one
/// of lark_winograd_conv's chunks (its rows fill about L2), so that a tile wastes no partial chunk.
int64_t lark_winograd_tile_samples(const LarkWinograd *plan, int64_t input_channels, int64_t output_channels);

/// The scratch one lark_winograd_conv call takes (pass it as `conv->scratch`, or it allocates).
size_t lark_winograd_scratch_bytes(const LarkWinograd *plan, int64_t input_channels, int64_t output_channels, int64_t dilation);

/// All of `conv` (every batch item, every output sample) by `plan` with `weights` from
/// lark_winograd_weights (`conv->w` unused): with `fp32_packed` (where the CPU has a packed path)
/// the transforms in that path's ISA (AVX-512: shuffled de-interleave; AVX2: a transpose at
/// dilation 1, gather instructions elsewhere) and the products on the packed kernel (lark_packed_isa), else portable
/// transforms and the products on `conv->blocks`. Returns 0, or -1 when out of memory.
int lark_winograd_conv(const LarkDirectConv *conv, const LarkWinograd *plan, const float *weights, int fp32_packed);

// MARK: - Weights held prepared in the graph (ort_custom_op.c; DirectConv and ResidualStack)

/// The form of W a kernel of these settings prepares for itself: NONE when it reads plain W, or
/// when its packed FP32 form leaves output channels past the last whole block to plain W.
LarkPreparedWeights lark_prepared_form(int bf16, int fp32_packed, int winograd, int64_t output_channels);

/// The size, in floats (bf16: 32-bit units), of W [M, C, K] in `form` (`plan` for the Winograd forms).
int64_t lark_prepared_floats(LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k);

/// Rows of a prepared W as a graph holds it, [R, C·K]: the form's floats zero-padded to whole rows
/// of C·K, so that its shape still says the multiply-adds per output sample, as a Conv's W does
/// (what NodeArithmetic counts a profile's FLOPs from).
int64_t lark_prepared_rows(LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k);

struct LarkTensor;
/// Whether `w` has the shape lark_prepared_rows gives.
int lark_prepared_shape_fits(const struct LarkTensor *w, LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k);

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
