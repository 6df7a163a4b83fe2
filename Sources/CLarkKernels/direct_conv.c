// The direct convolution's driver: tiles of time, a padded and activated copy of the input for
// each tile, micro-kernels per block of output channels, then bias, residual and activation.
//
// Why not im2col: for 32 channels and kernels of 3–11 taps at dilations up to 5, the unrolled
// input is 96–352 times the output's size per sample (tens of MB per sentence) and the matrix
// product that follows is too thin to amortize it. Here each input tile is copied once (with its
// halo) and every multiply-add reads it straight from cache.
#include "direct_conv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void leaky_relu(float *values, int64_t count, float alpha) {
    for (int64_t i = 0; i < count; i++) values[i] = values[i] < 0 ? values[i] * alpha : values[i];
}

static int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

static int64_t tiles_per_item(const LarkDirectConv *conv) { return (conv->output_length + LARK_TILE_SAMPLES - 1) / LARK_TILE_SAMPLES; }

int64_t lark_direct_conv_tasks(const LarkDirectConv *conv) { return conv->batch * tiles_per_item(conv); }

LarkConvTile lark_direct_conv_tile(const LarkDirectConv *conv, int64_t task) {
    const int64_t tiles = tiles_per_item(conv), t0 = (task % tiles) * LARK_TILE_SAMPLES;
    const int64_t left = conv->output_length - t0;
    return (LarkConvTile){.n = task / tiles, .t0 = t0, .length = left < LARK_TILE_SAMPLES ? left : LARK_TILE_SAMPLES};
}

float *lark_direct_conv_scratch(const LarkDirectConv *conv, int64_t n, int64_t t0, int64_t length, int64_t *stride_out) {
    const int64_t cin = conv->input_channels, k = conv->kernel, d = conv->dilation;
    // The input this tile reads: whole blocks of output, plus the kernel's reach, plus one
    // vector of slack so that micro-kernels may read past the end into zeros.
    const int64_t span = round_up(length, LARK_BLOCK_SAMPLES) + (k - 1) * d;
    const int64_t stride = round_up(span + 16, 16);
    float *s = lark_take_scratch(conv, (size_t)(cin * stride) * sizeof(float));
    if (!s) return NULL;
    const int64_t x_row = lark_x_row(conv);
    const float *x = conv->x + n * cin * x_row;
    const int64_t first = t0 - conv->pad_begin;  // the input index of each scratch row's start
    const int64_t begin = first < 0 ? -first : 0;  // scratch columns [begin, end) hold input samples
    int64_t end = conv->input_length - first;
    if (end > span) end = span;
    if (end < begin) end = begin;
    for (int64_t c = 0; c < cin; c++) {
        float *row = s + c * stride;
        memset(row, 0, (size_t)begin * sizeof(float));
        memcpy(row + begin, x + c * x_row + first + begin, (size_t)(end - begin) * sizeof(float));
        memset(row + end, 0, (size_t)(stride - end) * sizeof(float));
        // Branch-free (a select), so that the signs of real audio cost no mispredictions.
        if (conv->has_pre_alpha) leaky_relu(row + begin, end - begin, conv->pre_alpha);
    }
    *stride_out = stride;
    return s;
}

void lark_direct_conv_channels(const LarkDirectConv *conv, const float *s, int64_t stride, int64_t n, int64_t t0, int64_t length,
                               int64_t first_channel) {
    const int64_t cin = conv->input_channels, cout = conv->output_channels, k = conv->kernel, d = conv->dilation;
    float out[LARK_BLOCK_CHANNELS * LARK_BLOCK_SAMPLES] __attribute__((aligned(64)));
    const int64_t w_channel = cin * k;
    for (int64_t o0 = first_channel; o0 < cout; o0 += LARK_BLOCK_CHANNELS) {
        const int64_t channels = cout - o0 < LARK_BLOCK_CHANNELS ? cout - o0 : LARK_BLOCK_CHANNELS;
        for (int64_t i0 = 0; i0 < length; i0 += LARK_BLOCK_SAMPLES) {
            if (channels == LARK_BLOCK_CHANNELS) {
                conv->blocks.four(s + i0, stride, conv->w + o0 * w_channel, w_channel, cin, k, d, out);
            } else {
                for (int64_t j = 0; j < channels; j++) {
                    conv->blocks.one(s + i0, stride, conv->w + (o0 + j) * w_channel, w_channel, cin, k, d,
                                     out + j * LARK_BLOCK_SAMPLES);
                }
            }
            const int64_t count = length - i0 < LARK_BLOCK_SAMPLES ? length - i0 : LARK_BLOCK_SAMPLES;
            lark_direct_conv_finish(conv, n, t0 + i0, o0, channels, count, out);
        }
    }
}

size_t lark_direct_conv_scratch_bytes(const LarkDirectConv *conv) {
    const int64_t span = round_up(LARK_TILE_SAMPLES, LARK_BLOCK_SAMPLES) + (conv->kernel - 1) * conv->dilation;
    return (size_t)(conv->input_channels * round_up(span + 16, 16)) * sizeof(float);
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
typedef struct ThreadScratch {
    void *data;
    size_t bytes;
} ThreadScratch;
static void free_thread_scratch(void *opaque) {
    ThreadScratch *scratch = opaque;
    free(scratch->data);
    free(scratch);
}
static void make_scratch_key(void) { pthread_key_create(&scratch_key, free_thread_scratch); }

void *lark_thread_scratch(size_t bytes) {
    pthread_once(&scratch_once, make_scratch_key);
    ThreadScratch *scratch = pthread_getspecific(scratch_key);
    if (!scratch) {
        if (!(scratch = calloc(1, sizeof *scratch))) return NULL;
        pthread_setspecific(scratch_key, scratch);
    }
    if (scratch->bytes < bytes) {
        free(scratch->data);
        scratch->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        scratch->bytes = scratch->data ? bytes : 0;
    }
    return scratch->data;
}

int lark_direct_conv_task(const LarkDirectConv *conv, int64_t task) {
    const LarkConvTile tile = lark_direct_conv_tile(conv, task);
    const int64_t n = tile.n, t0 = tile.t0, length = tile.length;
    int64_t stride;
    float *s = lark_direct_conv_scratch(conv, n, t0, length, &stride);
    if (!s) return -1;
    lark_direct_conv_channels(conv, s, stride, n, t0, length, 0);
    lark_release_scratch(conv, s);
    return 0;
}

void lark_direct_conv_finish(const LarkDirectConv *conv, int64_t n, int64_t t, int64_t o0, int64_t channels, int64_t count,
                             const float *out) {
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv);
    if (conv->subpixel) {
        for (int64_t j = 0; j < channels; j++)
            lark_subpixel_store(conv, lark_item_output(conv, n), o0 + j, t, out + j * LARK_BLOCK_SAMPLES, count, conv->b ? conv->b[o0 + j] : 0.0f);
        return;
    }
    float *y = conv->y + n * cout * y_row;
    const float *z = conv->z ? conv->z + n * cout * z_row : NULL;
    for (int64_t j = 0; j < channels; j++) {
        const int64_t o = o0 + j;
        const float bias = conv->b ? conv->b[o] : 0.0f;
        float *to = y + o * y_row + t;
        const float *residual = z ? z + o * z_row + t : NULL;
        const float *from = out + j * LARK_BLOCK_SAMPLES;
        for (int64_t i = 0; i < count; i++) to[i] = from[i] + bias;
        if (residual)
            for (int64_t i = 0; i < count; i++) to[i] += residual[i];
        if (conv->has_post_alpha) leaky_relu(to, count, conv->post_alpha);
    }
}

// MARK: - The portable path

static void block_scalar(const float *s, int64_t s_stride, const float *w, int64_t w_channel_stride, int64_t cin,
                         int64_t k, int64_t d, float *out, int channels) {
    for (int j = 0; j < channels; j++) {
        float *acc = out + j * LARK_BLOCK_SAMPLES;
        for (int i = 0; i < LARK_BLOCK_SAMPLES; i++) acc[i] = 0;
        for (int64_t c = 0; c < cin; c++) {
            for (int64_t kk = 0; kk < k; kk++) {
                const float weight = w[j * w_channel_stride + c * k + kk];
                const float *row = s + c * s_stride + kk * d;
                for (int i = 0; i < LARK_BLOCK_SAMPLES; i++) acc[i] += weight * row[i];
            }
        }
    }
}

static void four_scalar(const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    block_scalar(s, ss, w, ws, cin, k, d, out, LARK_BLOCK_CHANNELS);
}

static void one_scalar(const float *s, int64_t ss, const float *w, int64_t ws, int64_t cin, int64_t k, int64_t d, float *out) {
    block_scalar(s, ss, w, ws, cin, k, d, out, 1);
}

LarkConvBlocks lark_conv_blocks_scalar(void) { return (LarkConvBlocks){four_scalar, one_scalar, LARK_PACKED_NONE}; }

// MARK: - Choosing a path

int lark_kernel_path_available(LarkKernelPath path) {
    switch (path) {
    case LARK_PATH_BEST:
    case LARK_PATH_SCALAR:
        return 1;
#if defined(__x86_64__)
    case LARK_PATH_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LARK_PATH_AVX512:
        return __builtin_cpu_supports("avx512f");
#endif
#if defined(__aarch64__)
    case LARK_PATH_NEON:
        return 1;  // Advanced SIMD is part of every AArch64 CPU
#endif
    default:
        return 0;
    }
}

LarkKernelPath lark_kernel_best_path(void) {
    if (lark_kernel_path_available(LARK_PATH_AVX512)) return LARK_PATH_AVX512;
    if (lark_kernel_path_available(LARK_PATH_AVX2)) return LARK_PATH_AVX2;
    if (lark_kernel_path_available(LARK_PATH_NEON)) return LARK_PATH_NEON;
    return LARK_PATH_SCALAR;
}

LarkConvBlocks lark_conv_blocks_for(LarkKernelPath path, int *fp32_packed) {
    *fp32_packed = 0;
    switch (path == LARK_PATH_BEST ? lark_kernel_best_path() : path) {
    case LARK_PATH_AVX512: {
        const LarkConvBlocks blocks = lark_conv_blocks_avx512();
        *fp32_packed = blocks.packed;
        return blocks;
    }
    case LARK_PATH_AVX2: {
        const LarkConvBlocks blocks = lark_conv_blocks_avx2();
        *fp32_packed = blocks.packed;
        return blocks;
    }
    case LARK_PATH_NEON: return lark_conv_blocks_neon();
    default: return lark_conv_blocks_scalar();
    }
}

// MARK: - The packed FP32 path: AVX-512 where the CPU has it, else AVX2 with FMA

int lark_packed_available(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return LARK_PACKED_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return LARK_PACKED_AVX2;
#endif
    return LARK_PACKED_NONE;
}

int lark_direct_conv_packed_task(const LarkDirectConv *conv, const float *packed, int64_t task) {
    switch (lark_packed_isa(conv)) {
    case LARK_PACKED_AVX512: return lark_direct_conv_packed_task_avx512(conv, packed, task);
    case LARK_PACKED_AVX2: return lark_direct_conv_packed_task_avx2(conv, packed, task);
    default: return -1;
    }
}

void lark_packed_rows(int isa, const float *s, int64_t ss, const float *packed, int64_t cin, int64_t blocks, int64_t k, int64_t d,
                      int64_t length, float *y, int64_t y_row) {
    if (isa == LARK_PACKED_AVX512) lark_packed_rows_avx512(s, ss, packed, cin, blocks, k, d, length, y, y_row);
    else if (isa == LARK_PACKED_AVX2) lark_packed_rows_avx2(s, ss, packed, cin, blocks, k, d, length, y, y_row);
}

const char *lark_kernel_path_name(LarkKernelPath path) {
    switch (path) {
    case LARK_PATH_BEST: return lark_kernel_path_name(lark_kernel_best_path());
    case LARK_PATH_SCALAR: return "scalar";
    case LARK_PATH_AVX2: return "avx2";
    case LARK_PATH_AVX512: return "avx512";
    case LARK_PATH_NEON: return "neon";
    }
    return "unknown";
}
