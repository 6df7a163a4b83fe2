// The direct convolution's FP32 path for AVX-512 with packed weights: the path DirectConv takes
// on AVX-512 CPUs unless told otherwise (direct_conv_x86.c's 4-channel micro-kernel remains for
// a convolution's last few output channels and for tests that force it).
//
// Register tile: 8 output channels × 3 vectors of 16 samples = 24 accumulators, plus 3 input
// vectors and a broadcast weight, of 32 registers. Each step of the (channel, tap) reduction
// loads 3 input vectors and broadcasts 8 weights for 24 FMAs; the weights of a block of 8
// output channels are packed (lark_pack_weights) so that those 8 come from one 32-byte run
// instead of 8 rows, and the reduction walks them in order.
//
// Loop order: sample blocks outer, channel blocks inner, so that one block's input window
// (C channels × (48 + the kernel's reach) samples: ≤ 30 KB for 64 channels) stays in L1 while
// every block of output channels reads it; the packed weights stream from L2.
//
// Epilogue: bias, residual Z and post-LeakyRelu are applied to the accumulators and the result
// is stored straight to Y (masked at a sequence's end), with no second pass over the output.
#include "direct_conv.h"

#include <stdlib.h>

int64_t lark_packed_weight_floats(int64_t output_channels, int64_t input_channels, int64_t kernel) {
    return output_channels / LARK_PACKED_CHANNELS * LARK_PACKED_CHANNELS * input_channels * kernel;
}

void lark_pack_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, float *packed) {
    const int64_t blocks = output_channels / LARK_PACKED_CHANNELS;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t c = 0; c < input_channels; c++)
            for (int64_t k = 0; k < kernel; k++)
                for (int64_t j = 0; j < LARK_PACKED_CHANNELS; j++)
                    packed[((b * input_channels + c) * kernel + k) * LARK_PACKED_CHANNELS + j] =
                        w[((b * LARK_PACKED_CHANNELS + j) * input_channels + c) * kernel + k];
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/// Where one register tile's results go, and what is added to them on the way.
typedef struct Epilogue {
    const float *bias;  // the block's LARK_PACKED_CHANNELS biases, or NULL
    const float *z;     // the residual at the block's first channel and the tile's first sample, or NULL
    float *y;           // the output, likewise
    int64_t y_row, z_row;  // the distance between two channels' rows in Y and in Z
    int has_post;
    float post_alpha;
    __mmask16 last;     // the lanes of the tile's last vector that lie inside the output
} Epilogue;

/// One register tile: LARK_PACKED_CHANNELS channels × `vectors` (1–3) vectors, `k` taps. Inlined
/// into copies with constant `vectors` (and `k` for the common sizes) whose loops the compiler
/// unrolls, so the accumulators stay in registers.
AVX512 static inline __attribute__((always_inline)) void tile(
    const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const int vectors, const Epilogue *e) {
    // Everything the epilogue reads, in locals: through `e` the compiler would reload each field
    // after every store to Y (it may alias), and would not unroll the epilogue.
    const float *const bias_at = e->bias, *const z = e->z;
    float *const y = e->y;
    const int64_t y_row = e->y_row, z_row = e->z_row;
    const int has_post = e->has_post;
    const __mmask16 last = e->last;
    __m512 acc[LARK_PACKED_CHANNELS][LARK_PACKED_VECTORS];
#pragma clang loop unroll(full)
    for (int j = 0; j < LARK_PACKED_CHANNELS; j++)
#pragma clang loop unroll(full)
        for (int v = 0; v < LARK_PACKED_VECTORS; v++) acc[j][v] = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        const float *row = s + c * ss;
        const float *wc = w + c * k * LARK_PACKED_CHANNELS;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *p = row + kk * d;
            const float *wk = wc + kk * LARK_PACKED_CHANNELS;
            __m512 x[LARK_PACKED_VECTORS];
            for (int v = 0; v < vectors; v++) x[v] = _mm512_loadu_ps(p + 16 * v);
            for (int j = 0; j < LARK_PACKED_CHANNELS; j++) {
                const __m512 weight = _mm512_set1_ps(wk[j]);
                for (int v = 0; v < vectors; v++) acc[j][v] = _mm512_fmadd_ps(weight, x[v], acc[j][v]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps(), alpha = _mm512_set1_ps(e->post_alpha);
#pragma clang loop unroll(full)
    for (int j = 0; j < LARK_PACKED_CHANNELS; j++) {
        const __m512 bias = bias_at ? _mm512_set1_ps(bias_at[j]) : zero;
#pragma clang loop unroll(full)
        for (int v = 0; v < LARK_PACKED_VECTORS; v++) {
            if (v >= vectors) break;
            const __mmask16 lanes = v == vectors - 1 ? last : (__mmask16)0xFFFF;
            __m512 r = _mm512_add_ps(acc[j][v], bias);
            if (z) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(lanes, z + j * z_row + 16 * v));
            if (has_post) r = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), r, alpha);
            _mm512_mask_storeu_ps(y + j * y_row + 16 * v, lanes, r);
        }
    }
}

#define PACKED_TILE_TARGET AVX512
#include "packed_tiles.h"

/// The tile's padded, activated copy of the input, as lark_direct_conv_scratch makes it, in one
/// vectorized pass per row (masked loads at the input's ends, LeakyRelu on the way).
AVX512 static float *scratch(const LarkDirectConv *conv, int64_t n, int64_t t0, int64_t length, int64_t *stride_out) {
    const int64_t cin = conv->input_channels, in_length = conv->input_length, x_row = lark_x_row(conv);
    int64_t stride;
    float *s = lark_take_packed_scratch(conv, length, &stride);
    if (!s) return NULL;
    const float *x = conv->x + n * cin * x_row;
    const int64_t first = t0 - conv->pad_begin;
    const __m512 alpha = _mm512_set1_ps(conv->pre_alpha), zero = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        const float *from = x + c * x_row;
        float *row = s + c * stride;
        for (int64_t i = 0; i < stride; i += 16) {
            const int64_t t = first + i;  // the input index of lane 0
            __m512 v;
            if (t >= 0 && t + 16 <= in_length) {
                v = _mm512_loadu_ps(from + t);
            } else {
                const __mmask16 inside = lark_inside_lanes(t, in_length);
                v = _mm512_maskz_loadu_ps(inside, from + t);
            }
            if (conv->has_pre_alpha) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
            _mm512_store_ps(row + i, v);
        }
    }
    *stride_out = stride;
    return s;
}

/// Asks for the lines of rows [0, channels) of `values` (rows `row` apart) at samples [0, 48)
/// ahead of their use: Z and Y are megabytes per sentence, far out of cache, and each
/// tile touches 2 × 8 rows of them, too many streams for the hardware prefetcher to follow.
static inline void prefetch_rows(const float *values, int64_t channels, int64_t row, int write) {
    for (int64_t o = 0; o < channels; o++) {
        const float *p = values + o * row;
        if (write) {
            __builtin_prefetch(p, 1, 3), __builtin_prefetch(p + 16, 1, 3), __builtin_prefetch(p + 32, 1, 3), __builtin_prefetch(p + 47, 1, 3);
        } else {
            __builtin_prefetch(p, 0, 3), __builtin_prefetch(p + 16, 0, 3), __builtin_prefetch(p + 32, 0, 3), __builtin_prefetch(p + 47, 0, 3);
        }
    }
}

/// Asks for rows [first_row, last_row) of the next tile's input window, into L2: the scratch
/// copy reads C rows of X, each a short stream the hardware prefetcher picks up only after a few
/// misses, so without this each tile begins with C rows' worth of waits for memory.
static inline void prefetch_next_input(const LarkDirectConv *conv, int64_t n, int64_t t0, int64_t first_row, int64_t last_row) {
    const int64_t next = t0 + LARK_TILE_SAMPLES;
    if (next >= conv->output_length) return;
    int64_t begin = next - conv->pad_begin, end = begin + LARK_TILE_SAMPLES + (conv->kernel - 1) * conv->dilation;
    if (begin < 0) begin = 0;
    if (end > conv->input_length) end = conv->input_length;
    const int64_t x_row = lark_x_row(conv);
    const float *x = conv->x + n * conv->input_channels * x_row;
    for (int64_t c = first_row; c < last_row; c++) {
        const float *row = x + c * x_row;
        for (int64_t i = begin; i < end; i += 16) __builtin_prefetch(row + i, 0, 2);
        if (end > begin) __builtin_prefetch(row + end - 1, 0, 2);
    }
}

/// A sub-pixel output's whole blocks of channels (LarkDirectConv.subpixel): each block's 48
/// samples as plain rows (lark_packed_rows_avx512) into a block of its own, then to their places
/// in Y with the bias (lark_subpixel_store). Not vectorized as AVX2's is (its 4×4 transposes): no
/// AVX-512 machine was at hand to measure one.
static void subpixel_blocks(const LarkDirectConv *conv, const float *s, int64_t stride, const float *packed, int64_t n, int64_t t0,
                            int64_t length, int64_t blocks) {
    const int64_t cin = conv->input_channels, k = conv->kernel, d = conv->dilation;
    float block[LARK_PACKED_CHANNELS * LARK_PACKED_SAMPLES] __attribute__((aligned(64)));
    float *y = lark_item_output(conv, n);
    for (int64_t i0 = 0; i0 < length; i0 += LARK_PACKED_SAMPLES) {
        const int64_t count = length - i0 < LARK_PACKED_SAMPLES ? length - i0 : LARK_PACKED_SAMPLES;
        for (int64_t b = 0; b < blocks; b++) {
            lark_packed_rows_avx512(s + i0, stride, packed + b * cin * k * LARK_PACKED_CHANNELS, cin, 1, k, d, count, block, LARK_PACKED_SAMPLES);
            for (int64_t j = 0; j < LARK_PACKED_CHANNELS; j++) {
                const int64_t o = b * LARK_PACKED_CHANNELS + j;
                lark_subpixel_store(conv, y, o, t0 + i0, block + j * LARK_PACKED_SAMPLES, count, conv->b ? conv->b[o] : 0.0f);
            }
        }
    }
}

int lark_direct_conv_packed_task_avx512(const LarkDirectConv *conv, const float *packed, int64_t task) {
    const LarkConvTile tile = lark_direct_conv_tile(conv, task);
    const int64_t n = tile.n, t0 = tile.t0, length = tile.length;
    int64_t stride;
    float *s = scratch(conv, n, t0, length, &stride);
    if (!s) return -1;
    const int64_t cin = conv->input_channels, cout = conv->output_channels, k = conv->kernel, d = conv->dilation;
    const int64_t y_row = lark_y_row(conv), z_row = lark_z_row(conv), blocks = cout / LARK_PACKED_CHANNELS;
    float *y = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    const int64_t packed_channels = blocks * LARK_PACKED_CHANNELS;
    if (conv->subpixel) {
        subpixel_blocks(conv, s, stride, packed, n, t0, length, blocks);
    } else {
        if (z) prefetch_rows(z, packed_channels, z_row, 0);
        prefetch_rows(y, packed_channels, y_row, 1);
    }
    for (int64_t i0 = 0; i0 < length && !conv->subpixel; i0 += LARK_PACKED_SAMPLES) {
        const int64_t count = length - i0 < LARK_PACKED_SAMPLES ? length - i0 : LARK_PACKED_SAMPLES;
        // The next tile's input, an eighth of its rows per block (a tile has 8 blocks).
        const int64_t block = i0 / LARK_PACKED_SAMPLES, rows = (cin + 7) / 8;
        prefetch_next_input(conv, n, t0, block * rows < cin ? block * rows : cin, (block + 1) * rows < cin ? (block + 1) * rows : cin);
        const int vectors = (int)((count + 15) / 16);
        const int64_t tail = count - 16 * (vectors - 1);
        const Tile run = tile_for(k, vectors);
        for (int64_t b = 0; b < blocks; b++) {
            const int64_t y_at = b * LARK_PACKED_CHANNELS * y_row + i0, z_at = b * LARK_PACKED_CHANNELS * z_row + i0;
            // The same channels' Z and Y for the next block, while this one computes: spread over
            // the blocks of channels, so that few requests are in flight at once.
            if (length - i0 > LARK_PACKED_SAMPLES) {
                if (z) prefetch_rows(z + z_at + LARK_PACKED_SAMPLES, LARK_PACKED_CHANNELS, z_row, 0);
                prefetch_rows(y + y_at + LARK_PACKED_SAMPLES, LARK_PACKED_CHANNELS, y_row, 1);
            }
            const Epilogue e = {
                .bias = conv->b ? conv->b + b * LARK_PACKED_CHANNELS : NULL,
                .z = z ? z + z_at : NULL,
                .y = y + y_at,
                .y_row = y_row,
                .z_row = z_row,
                .has_post = conv->has_post_alpha,
                .post_alpha = conv->post_alpha,
                .last = (__mmask16)(tail == 16 ? 0xFFFF : (1u << tail) - 1),
            };
            run(s + i0, stride, packed + b * cin * k * LARK_PACKED_CHANNELS, cin, k, d, &e);
        }
    }
    if (packed_channels < cout) lark_direct_conv_channels(conv, s, stride, n, t0, length, packed_channels);
    lark_release_scratch(conv, s);
    return 0;
}

void lark_packed_rows_avx512(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                             float *y, int64_t y_row) {
    for (int64_t i0 = 0; i0 < length; i0 += LARK_PACKED_SAMPLES) {
        const int64_t count = length - i0 < LARK_PACKED_SAMPLES ? length - i0 : LARK_PACKED_SAMPLES;
        const int vectors = (int)((count + 15) / 16);
        const int64_t tail = count - 16 * (vectors - 1);
        const Tile run = tile_for(k, vectors);
        for (int64_t b = 0; b < blocks; b++) {
            const Epilogue e = {
                .y = y + b * LARK_PACKED_CHANNELS * y_row + i0,
                .y_row = y_row,
                .last = (__mmask16)(tail == 16 ? 0xFFFF : (1u << tail) - 1),
            };
            run(s + i0, ss, packed + b * cin * k * LARK_PACKED_CHANNELS, cin, k, d, &e);
        }
    }
}

#else

void lark_packed_rows_avx512(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                             float *y, int64_t y_row) {
    (void)s, (void)ss, (void)packed, (void)cin, (void)blocks, (void)k, (void)d, (void)length, (void)y, (void)y_row;
}

int lark_direct_conv_packed_task_avx512(const LarkDirectConv *conv, const float *packed, int64_t task) {
    (void)conv, (void)packed, (void)task;
    return -1;
}

#endif
