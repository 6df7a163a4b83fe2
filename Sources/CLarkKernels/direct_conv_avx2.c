// The direct convolution's FP32 path for AVX2 with FMA and packed weights: what
// direct_conv_avx512.c is for AVX-512, on CPUs without it (Zen 2/3, Haswell to Alder Lake). The
// weights are packed the same way (lark_pack_weights: blocks of LARK_PACKED_CHANNELS output
// channels), so a cache's prepared weights and Winograd's U_p serve both paths.
//
// Register tile: AVX2 has 16 vector registers, so 4 output channels × 3 vectors of 8 samples =
// 12 accumulators, plus 3 input vectors and a broadcast weight. Each step of the (channel, tap)
// reduction loads 3 input vectors and broadcasts 4 weights for 12 FMAs: 6 cycles of two FMA pipes
// against 7 loads, which the load ports (2-3 per cycle) keep up with, and 12 chains cover the FMA
// latency (4-5 cycles on two pipes). A packed block of 8 channels runs as two halves over the
// same input window (the window stays in L1), and a 48-sample block (LARK_PACKED_SAMPLES) as two
// 24-sample tiles.
//
// Loop order and epilogue as on AVX-512: sample blocks outer, channel blocks inner; bias,
// residual Z and post-LeakyRelu applied to the accumulators, stored straight to Y (masked at a
// sequence's end).
#include "direct_conv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx2_transpose.h"

#define AVX2 __attribute__((target("avx2,fma")))

// Output channels and 8-sample vectors of one register tile.
enum { HALF = 4, VECTORS = 3, TILE_SAMPLES = 8 * VECTORS };

/// Where one register tile's results go, and what is added to them on the way.
typedef struct Epilogue {
    const float *bias;  // the tile's HALF biases, or NULL
    const float *z;     // the residual at the tile's first channel and first sample, or NULL
    float *y;           // the output, likewise
    int64_t y_row, z_row;
    int has_post;
    float post_alpha;
    int tail;           // the samples of the tile's last vector that lie inside the output (1-8)
    // A sub-pixel output (LarkDirectConv.subpixel; then `y` is the batch item's Y): the
    // convolution, its tile's first output channel and first sample.
    const LarkDirectConv *subpixel;
    int64_t channel, sample;
} Epilogue;

/// Lane masks for maskload/maskstore: lanes [0, n) set, from an 8-lane window into this table.
static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/// The epilogue of one accumulator: bias, residual, post-activation, store (masked for the last
/// vector of a sequence's end).
AVX2 static inline __attribute__((always_inline)) void finish_vector(
    __m256 r, __m256 bias, const float *z, float *y, int whole, __m256i last, int has_post, __m256 alpha) {
    r = _mm256_add_ps(r, bias);
    if (z) r = _mm256_add_ps(r, whole ? _mm256_loadu_ps(z) : _mm256_maskload_ps(z, last));
    if (has_post) r = _mm256_blendv_ps(r, _mm256_mul_ps(r, alpha), _mm256_cmp_ps(r, _mm256_setzero_ps(), _CMP_LT_OQ));
    if (whole) _mm256_storeu_ps(y, r);
    else _mm256_maskstore_ps(y, last, r);
}

/// One reduction step of a full tile (3 vectors): three input vectors and four broadcast weights
/// in ymm12-15, twelve FMAs into the accumulators. Written in assembly because the compiler,
/// left to itself, schedules the next step's loads early, runs out of AVX2's 16 registers and
/// spills accumulators to the stack: a store-to-load round trip inside an FMA chain made the
/// kernel latency-bound (58-63% of peak on a Zen 3). The accumulators stay in the twelve
/// registers the compiler gives them across steps.
AVX2 static inline __attribute__((always_inline)) void step3(
    const float *p, const float *w, __m256 *a00, __m256 *a01, __m256 *a02, __m256 *a10, __m256 *a11, __m256 *a12, __m256 *a20,
    __m256 *a21, __m256 *a22, __m256 *a30, __m256 *a31, __m256 *a32) {
    __asm__("vmovups (%[p]), %%ymm12\n\t"
            "vmovups 32(%[p]), %%ymm13\n\t"
            "vmovups 64(%[p]), %%ymm14\n\t"
            "vbroadcastss (%[w]), %%ymm15\n\t"
            "vfmadd231ps %%ymm12, %%ymm15, %[a00]\n\t"
            "vfmadd231ps %%ymm13, %%ymm15, %[a01]\n\t"
            "vfmadd231ps %%ymm14, %%ymm15, %[a02]\n\t"
            "vbroadcastss 4(%[w]), %%ymm15\n\t"
            "vfmadd231ps %%ymm12, %%ymm15, %[a10]\n\t"
            "vfmadd231ps %%ymm13, %%ymm15, %[a11]\n\t"
            "vfmadd231ps %%ymm14, %%ymm15, %[a12]\n\t"
            "vbroadcastss 8(%[w]), %%ymm15\n\t"
            "vfmadd231ps %%ymm12, %%ymm15, %[a20]\n\t"
            "vfmadd231ps %%ymm13, %%ymm15, %[a21]\n\t"
            "vfmadd231ps %%ymm14, %%ymm15, %[a22]\n\t"
            "vbroadcastss 12(%[w]), %%ymm15\n\t"
            "vfmadd231ps %%ymm12, %%ymm15, %[a30]\n\t"
            "vfmadd231ps %%ymm13, %%ymm15, %[a31]\n\t"
            "vfmadd231ps %%ymm14, %%ymm15, %[a32]"
            : [a00] "+x"(*a00), [a01] "+x"(*a01), [a02] "+x"(*a02), [a10] "+x"(*a10), [a11] "+x"(*a11), [a12] "+x"(*a12),
              [a20] "+x"(*a20), [a21] "+x"(*a21), [a22] "+x"(*a22), [a30] "+x"(*a30), [a31] "+x"(*a31), [a32] "+x"(*a32)
            : [p] "r"(p), [w] "r"(w)
            : "xmm12", "xmm13", "xmm14", "xmm15", "memory");
}

/// The epilogue of a tile of a sub-pixel output (Epilogue.subpixel). When the stride is a multiple
/// of HALF and the tile's places lie inside Y, its HALF channels are phases r..r+3 of one channel of
/// Y, so each sample's four results are four adjacent floats of Y: a 4×4 transpose per 128-bit lane
/// turns the accumulators into those pieces, stored 16 bytes at a time (this is what the separate
/// interleave pass, SubpixelInterleave, did with a second trip through memory). Elsewhere (a
/// sequence's ends, other strides) the tile goes through a block and lark_subpixel_store.
AVX2 static inline __attribute__((always_inline)) void subpixel_finish(__m256 rows[HALF][VECTORS], const int vectors, const Epilogue *e) {
    const LarkDirectConv *conv = e->subpixel;
    const int64_t stride = conv->subpixel, count = 8 * (vectors - 1) + e->tail;
    const int64_t first = e->sample * stride - conv->subpixel_crop, end = (e->sample + count) * stride - conv->subpixel_crop;
    if (stride % HALF == 0 && first >= 0 && end <= conv->subpixel_length) {
        float *to = e->y + e->channel / stride * conv->y_row + first + e->channel % stride;
        const __m128 bias4 = e->bias ? _mm_loadu_ps(e->bias) : _mm_setzero_ps();
        const __m256 bias = _mm256_set_m128(bias4, bias4);
        for (int v = 0; v < vectors; v++) {
            __m256 p[HALF] = {rows[0][v], rows[1][v], rows[2][v], rows[3][v]};
            transpose_lanes(&p[0], &p[1], &p[2], &p[3]);
            const int valid = v < vectors - 1 ? 8 : e->tail;  // samples 8v + i, i < valid
            for (int i = 0; i < HALF; i++) {
                const __m256 piece = _mm256_add_ps(p[i], bias);  // samples 8v + i (low lane) and 8v + 4 + i
                if (i < valid) _mm_storeu_ps(to + (8 * v + i) * stride, _mm256_castps256_ps128(piece));
                if (i + 4 < valid) _mm_storeu_ps(to + (8 * v + 4 + i) * stride, _mm256_extractf128_ps(piece, 1));
            }
        }
        return;
    }
    float block[HALF][TILE_SAMPLES] __attribute__((aligned(32)));
    for (int j = 0; j < HALF; j++)
        for (int v = 0; v < vectors; v++) _mm256_store_ps(block[j] + 8 * v, rows[j][v]);
    for (int j = 0; j < HALF; j++) lark_subpixel_store(conv, e->y, e->channel + j, e->sample, block[j], count, e->bias ? e->bias[j] : 0.0f);
}

/// One register tile: HALF channels × `vectors` (1–3) vectors, `k` taps, weights `w` of a packed
/// block offset to the tile's first channel (LARK_PACKED_CHANNELS apart per reduction step).
/// Inlined into copies with constant `vectors` and `k` (and `subpixel`: the epilogue of a
/// sub-pixel output); full tiles step in assembly (step3).
AVX2 static inline __attribute__((always_inline)) void tile_of(
    const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const int vectors, const int subpixel, const Epilogue *e) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
    __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
    for (int64_t c = 0; c < cin; c++) {
        const float *row = s + c * ss;
        const float *wc = w + c * k * LARK_PACKED_CHANNELS;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *p = row + kk * d;
            const float *wk = wc + kk * LARK_PACKED_CHANNELS;
            if (vectors == 3) {
                step3(p, wk, &a00, &a01, &a02, &a10, &a11, &a12, &a20, &a21, &a22, &a30, &a31, &a32);
                continue;
            }
            const __m256 x0 = _mm256_loadu_ps(p);
            const __m256 x1 = vectors > 1 ? _mm256_loadu_ps(p + 8) : x0;
            __m256 v = _mm256_broadcast_ss(wk);
            a00 = _mm256_fmadd_ps(v, x0, a00);
            if (vectors > 1) a01 = _mm256_fmadd_ps(v, x1, a01);
            v = _mm256_broadcast_ss(wk + 1);
            a10 = _mm256_fmadd_ps(v, x0, a10);
            if (vectors > 1) a11 = _mm256_fmadd_ps(v, x1, a11);
            v = _mm256_broadcast_ss(wk + 2);
            a20 = _mm256_fmadd_ps(v, x0, a20);
            if (vectors > 1) a21 = _mm256_fmadd_ps(v, x1, a21);
            v = _mm256_broadcast_ss(wk + 3);
            a30 = _mm256_fmadd_ps(v, x0, a30);
            if (vectors > 1) a31 = _mm256_fmadd_ps(v, x1, a31);
        }
    }
    __m256 rows[HALF][VECTORS] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
    if (subpixel) {
        subpixel_finish(rows, vectors, e);
        return;
    }
    const float *const z = e->z;
    float *const y = e->y;
    const int64_t y_row = e->y_row, z_row = e->z_row;
    const int has_post = e->has_post, tail = e->tail;
    const __m256 alpha = _mm256_set1_ps(e->post_alpha), zero = _mm256_setzero_ps();
    const __m256i last = _mm256_loadu_si256((const __m256i *)(mask_table + 8 - tail));
    for (int j = 0; j < HALF; j++) {
        const __m256 bias = e->bias ? _mm256_broadcast_ss(e->bias + j) : zero;
        for (int v = 0; v < vectors; v++)
            finish_vector(rows[j][v], bias, z ? z + j * z_row + 8 * v : NULL, y + j * y_row + 8 * v, v < vectors - 1 || tail == 8, last,
                          has_post, alpha);
    }
}

AVX2 static inline __attribute__((always_inline)) void tile(
    const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const int vectors, const Epilogue *e) {
    tile_of(s, ss, w, cin, k, d, vectors, 0, e);
}

#define PACKED_TILE_TARGET AVX2
#include "packed_tiles.h"

// The tiles of a sub-pixel output: HiFi-GAN's upsamplings restated have 2 taps (kernel = 2 × stride).
#define SUBPIXEL_TILE(name, taps, vectors)                                                                                   \
    AVX2 static void name(const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const Epilogue *e) { \
        (void)k;                                                                                                             \
        tile_of(s, ss, w, cin, taps, d, vectors, 1, e);                                                                      \
    }
SUBPIXEL_TILE(subpixel_k2_v1, 2, 1)
SUBPIXEL_TILE(subpixel_k2_v2, 2, 2)
SUBPIXEL_TILE(subpixel_k2_v3, 2, 3)
SUBPIXEL_TILE(subpixel_kn_v1, k, 1)
SUBPIXEL_TILE(subpixel_kn_v2, k, 2)
SUBPIXEL_TILE(subpixel_kn_v3, k, 3)
#undef SUBPIXEL_TILE

static Tile subpixel_tile_for(int64_t k, int vectors) {
    static const Tile tiles[2][3] = {{subpixel_k2_v1, subpixel_k2_v2, subpixel_k2_v3}, {subpixel_kn_v1, subpixel_kn_v2, subpixel_kn_v3}};
    return tiles[k == 2 ? 0 : 1][vectors - 1];
}

/// Samples [i0, i0 + count) (count ≤ LARK_PACKED_SAMPLES) of every whole block of channels: per
/// block, each half of its channels over each 24-sample tile. `e` carries what all tiles share;
/// `z` and `y` point at channel 0, sample 0.
AVX2 static void packed_block(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d,
                              int64_t i0, int64_t count, const float *bias, const float *z, float *y, const Epilogue *shared) {
    for (int64_t b = 0; b < blocks; b++) {
        const float *w = packed + b * cin * k * LARK_PACKED_CHANNELS;
        for (int64_t h = 0; h < LARK_PACKED_CHANNELS; h += HALF) {
            const int64_t o = b * LARK_PACKED_CHANNELS + h;
            for (int64_t t = 0; t < count; t += TILE_SAMPLES) {
                const int64_t n = count - t < TILE_SAMPLES ? count - t : TILE_SAMPLES;
                const int vectors = (int)((n + 7) / 8);
                Epilogue e = *shared;
                e.bias = bias ? bias + o : NULL;
                e.tail = (int)(n - 8 * (vectors - 1));
                if (shared->subpixel) {
                    e.channel = o, e.sample = shared->sample + i0 + t;
                    subpixel_tile_for(k, vectors)(s + i0 + t, ss, w + h, cin, k, d, &e);
                    continue;
                }
                e.z = z ? z + o * shared->z_row + i0 + t : NULL;
                e.y = y + o * shared->y_row + i0 + t;
                tile_for(k, vectors)(s + i0 + t, ss, w + h, cin, k, d, &e);
            }
        }
    }
}

/// The tile's padded, activated copy of the input, as lark_direct_conv_scratch makes it, in the
/// thread's reusable scratch: whole vectors where they lie inside the input, single samples at
/// its ends.
AVX2 static float *scratch(const LarkDirectConv *conv, int64_t n, int64_t t0, int64_t length, int64_t *stride_out) {
    const int64_t cin = conv->input_channels, in_length = conv->input_length, x_row = lark_x_row(conv);
    int64_t stride;
    float *s = lark_take_packed_scratch(conv, length, &stride);
    if (!s) return NULL;
    const float *x = conv->x + n * cin * x_row;
    const int64_t first = t0 - conv->pad_begin;
    const __m256 alpha = _mm256_set1_ps(conv->pre_alpha), zero = _mm256_setzero_ps();
    const int pre = conv->has_pre_alpha;
    const float pre_alpha = conv->pre_alpha;
    for (int64_t c = 0; c < cin; c++) {
        const float *from = x + c * x_row;
        float *row = s + c * stride;
        for (int64_t i = 0; i < stride; i += 8) {
            const int64_t t = first + i;
            if (t >= 0 && t + 8 <= in_length) {
                __m256 v = _mm256_loadu_ps(from + t);
                if (pre) v = _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
                _mm256_store_ps(row + i, v);
            } else {
                for (int64_t l = 0; l < 8; l++) {
                    const float value = t + l >= 0 && t + l < in_length ? from[t + l] : 0.0f;
                    row[i + l] = pre && value < 0 ? value * pre_alpha : value;
                }
            }
        }
    }
    *stride_out = stride;
    return s;
}

int lark_direct_conv_packed_task_avx2(const LarkDirectConv *conv, const float *packed, int64_t task) {
    const LarkConvTile tile = lark_direct_conv_tile(conv, task);
    const int64_t n = tile.n, t0 = tile.t0, length = tile.length;
    int64_t stride;
    float *s = scratch(conv, n, t0, length, &stride);
    if (!s) return -1;
    const int64_t cin = conv->input_channels, cout = conv->output_channels, k = conv->kernel, d = conv->dilation;
    const int64_t blocks = cout / LARK_PACKED_CHANNELS;
    Epilogue shared = {
        .y_row = lark_y_row(conv), .z_row = lark_z_row(conv), .has_post = conv->has_post_alpha, .post_alpha = conv->post_alpha,
    };
    if (conv->subpixel) shared.subpixel = conv, shared.y = lark_item_output(conv, n), shared.sample = t0;
    float *y = conv->subpixel ? NULL : conv->y + n * cout * shared.y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * shared.z_row + t0 : NULL;
    for (int64_t i0 = 0; i0 < length; i0 += LARK_PACKED_SAMPLES) {
        const int64_t count = length - i0 < LARK_PACKED_SAMPLES ? length - i0 : LARK_PACKED_SAMPLES;
        packed_block(s, stride, packed, cin, blocks, k, d, i0, count, conv->b, z, y, &shared);
    }
    if (blocks * LARK_PACKED_CHANNELS < cout) lark_direct_conv_channels(conv, s, stride, n, t0, length, blocks * LARK_PACKED_CHANNELS);
    lark_release_scratch(conv, s);
    return 0;
}

/// One full register tile of a 1-tap product (Winograd's): HALF channels × 24 samples, stored
/// as they are. What `tile` does for these, without its epilogue's bias, residual, activation and
/// masks, and called directly rather than through a table: at 32 input channels a tile's
/// reduction is only 32 steps (~190 cycles), and that per-tile work took ~15% of it.
AVX2 static inline __attribute__((always_inline)) void product_tile(
    const float *s, int64_t ss, const float *w, int64_t cin, float *y, int64_t y_row) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
    __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
    for (int64_t c = 0; c < cin; c++)
        step3(s + c * ss, w + c * LARK_PACKED_CHANNELS, &a00, &a01, &a02, &a10, &a11, &a12, &a20, &a21, &a22, &a30, &a31, &a32);
    _mm256_storeu_ps(y, a00), _mm256_storeu_ps(y + 8, a01), _mm256_storeu_ps(y + 16, a02);
    y += y_row;
    _mm256_storeu_ps(y, a10), _mm256_storeu_ps(y + 8, a11), _mm256_storeu_ps(y + 16, a12);
    y += y_row;
    _mm256_storeu_ps(y, a20), _mm256_storeu_ps(y + 8, a21), _mm256_storeu_ps(y + 16, a22);
    y += y_row;
    _mm256_storeu_ps(y, a30), _mm256_storeu_ps(y + 8, a31), _mm256_storeu_ps(y + 16, a32);
}

/// Eight columns of a 1-tap product for a whole packed block (8 channels), stored whole: the
/// last columns of a row (fewer than 24), where a HALF tile of one vector would run 4 FMA chains
/// and wait on their latency; here 8 chains share each input load. Products' M rows are whole
/// vectors long (winograd.c's m_row), so the columns past the row's end land in its padding.
AVX2 static inline __attribute__((always_inline)) void product_columns(
    const float *s, int64_t ss, const float *w, int64_t cin, float *y, int64_t y_row) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t c = 0; c < cin; c++) {
        const __m256 x = _mm256_loadu_ps(s + c * ss);
        const float *wc = w + c * LARK_PACKED_CHANNELS;
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc), x, a0), a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 1), x, a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 2), x, a2), a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 3), x, a3);
        a4 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 4), x, a4), a5 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 5), x, a5);
        a6 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 6), x, a6), a7 = _mm256_fmadd_ps(_mm256_broadcast_ss(wc + 7), x, a7);
    }
    _mm256_storeu_ps(y, a0), _mm256_storeu_ps(y + y_row, a1), _mm256_storeu_ps(y + 2 * y_row, a2), _mm256_storeu_ps(y + 3 * y_row, a3);
    y += 4 * y_row;
    _mm256_storeu_ps(y, a4), _mm256_storeu_ps(y + y_row, a5), _mm256_storeu_ps(y + 2 * y_row, a6), _mm256_storeu_ps(y + 3 * y_row, a7);
}

AVX2 void lark_packed_rows_avx2(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d,
                                int64_t length, float *y, int64_t y_row) {
    const Epilogue shared = {.y_row = y_row};
    int64_t first = 0;  // the samples before it ran as product_tile
    if (k == 1) {
        first = length / TILE_SAMPLES * TILE_SAMPLES;
        // Sample tiles outer, channels inner, as packed_block: the tile's input stays in L1.
        for (int64_t t = 0; t < first; t += TILE_SAMPLES)
            for (int64_t b = 0; b < blocks; b++)
                for (int64_t h = 0; h < LARK_PACKED_CHANNELS; h += HALF)
                    product_tile(s + t, ss, packed + b * cin * LARK_PACKED_CHANNELS + h, cin, y + (b * LARK_PACKED_CHANNELS + h) * y_row + t, y_row);
        if (y_row % 8 == 0) {  // rows of whole vectors (Winograd's M): the rest as whole vectors too
            for (; first < length; first += 8)
                for (int64_t b = 0; b < blocks; b++)
                    product_columns(s + first, ss, packed + b * cin * LARK_PACKED_CHANNELS, cin, y + b * LARK_PACKED_CHANNELS * y_row + first, y_row);
        }
    }
    for (int64_t i0 = first; i0 < length; i0 += LARK_PACKED_SAMPLES) {
        const int64_t count = length - i0 < LARK_PACKED_SAMPLES ? length - i0 : LARK_PACKED_SAMPLES;
        packed_block(s, ss, packed, cin, blocks, k, d, i0, count, NULL, NULL, y, &shared);
    }
}

#else

int lark_direct_conv_packed_task_avx2(const LarkDirectConv *conv, const float *packed, int64_t task) {
    (void)conv, (void)packed, (void)task;
    return -1;
}

void lark_packed_rows_avx2(const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d, int64_t length,
                           float *y, int64_t y_row) {
    (void)s, (void)ss, (void)packed, (void)cin, (void)blocks, (void)k, (void)d, (void)length, (void)y, (void)y_row;
}

#endif
