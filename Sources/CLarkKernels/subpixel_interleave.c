// SubpixelInterleave (domain "ai.lark"): the last step of a transposed convolution restated in
// sub-pixel form (OnnxGraph's `TransposedConvPlan`): a convolution has computed each of the
// `stride` output phases as a block of channels; this puts the phases side by side in time and
// crops the padding, in one pass. As ONNX nodes that was Reshape, Transpose (the copy), Reshape
// and Slice (a second copy), and ONNX Runtime's Transpose ran slower with two threads than one.
//
//   input   X [N, s·C, T] (or [N, s·C, 1, T]), phase r of channel o in channel r·C + o;
//   output  Y [N, C, T·s − b − e] (or [N, C, 1, ...]): Y[n, o, j] = X[n, r·C + o, q] where
//           j + b = q·s + r;
//   attributes stride (s ≥ 1), pads ([b, e], each ≥ 0; [0, 0] when absent);
//           optional block (B > 0) with channels (s·C): X is in ONNX Runtime's blocked NCHWc
//           layout, [N, s·C padded to B, 1, T] stored as [N, ⌈s·C/B⌉, 1, T, B] (channel c at block
//           c / B, lane c % B), read as it is, without the ReorderOutput to the plain layout that
//           would otherwise come first (OnnxGraph's `BlockedLayoutCleanup` sets these).
// Rows of Y are shared among ONNX Runtime's threads (KernelContext_ParallelFor) when there are
// enough values to pay for it.
#include "ort_custom_op.h"
#include "widest_vectors.h"
#include "lark_kernels.h"

#include <stdlib.h>
#include <string.h>

typedef struct SubpixelInterleaveKernel {
    const void *api;
    int64_t stride, pad_begin, pad_end;
    /// The blocked layout's channel block and X's real channels (s·C); 0 and 0 for the plain layout.
    int64_t block, channels;
} SubpixelInterleaveKernel;

static OrtStatus *failure(const void *api, int code, const char *message) { return lark_operator_failure(api, code, "SubpixelInterleave", message); }

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op;
    SubpixelInterleaveKernel kernel = {.api = api};
    OrtStatus *status = KernelInfoGetAttribute_int64(api)(info, "stride", &kernel.stride);
    if (status) {
        ReleaseStatus(api)(status);
        return failure(api, ORT_INVALID_ARGUMENT, "the stride attribute is required");
    }
    int64_t pads[2] = {0, 0};
    size_t count = 0;
    if ((status = KernelInfoGetAttributeArray_int64(api)(info, "pads", NULL, &count))) {
        ReleaseStatus(api)(status);
        count = 0;
    }
    if (count != 0) {
        if (count != 2) return failure(api, ORT_INVALID_ARGUMENT, "pads must be [b, e]");
        if ((status = KernelInfoGetAttributeArray_int64(api)(info, "pads", pads, &count))) return status;
    }
    kernel.pad_begin = pads[0], kernel.pad_end = pads[1];
    if ((status = KernelInfoGetAttribute_int64(api)(info, "block", &kernel.block))) {
        ReleaseStatus(api)(status);
        kernel.block = 0;
    }
    if (kernel.block != 0) {
        if (kernel.block < 1 || kernel.block > 64) return failure(api, ORT_INVALID_ARGUMENT, "block must be 1 to 64");
        if ((status = KernelInfoGetAttribute_int64(api)(info, "channels", &kernel.channels))) {
            ReleaseStatus(api)(status);
            return failure(api, ORT_INVALID_ARGUMENT, "a blocked X needs the channels attribute");
        }
    }
    if (kernel.stride < 1 || kernel.stride > 64) return failure(api, ORT_INVALID_ARGUMENT, "stride must be 1 to 64");
    if (kernel.pad_begin < 0 || kernel.pad_end < 0) return failure(api, ORT_INVALID_ARGUMENT, "pads must not be negative");
    SubpixelInterleaveKernel *copy = malloc(sizeof kernel);
    if (!copy) return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    *copy = kernel;
    *out = copy;
    return NULL;
}

typedef struct Job {
    const float *x;
    float *y;
    int64_t channels, stride, length, pad_begin, output_length;
    int64_t rows, rows_per_task;
    /// Blocked X: the channel block (0 for the plain layout) and the blocks per item; each task
    /// takes `rows_per_task` rows (a multiple of the block) over `slab` positions q of X.
    int64_t block, blocks, slab, slabs;
} Job;

// The row loop below is built for the widest vectors (widest_vectors.h), so that the shuffles
// are whole-vector instructions.

typedef float lark_v8 __attribute__((vector_size(32)));

// Unaligned loads and stores of 8 floats (macros: a function passing vectors by value would
// depend on the target's vector ABI).
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(lark_v8))
#define STORE8(p, v)                      \
    do {                                  \
        const lark_v8 stored_ = (v);      \
        memcpy((p), &stored_, sizeof stored_); \
    } while (0)

/// 8×8 transpose in registers: vector i of `a` becomes column i of `dst` (value k of it at
/// dst + k·dst_row + i), in three rounds of shuffles.
static inline __attribute__((always_inline)) void transpose8_vectors(const lark_v8 a[8], float *dst, int64_t dst_row) {
    lark_v8 b[8], c[8];
    for (int r = 0; r < 8; r += 2) {
        b[r] = __builtin_shufflevector(a[r], a[r + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        b[r + 1] = __builtin_shufflevector(a[r], a[r + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int r = 0; r < 8; r += 4) {
        c[r] = __builtin_shufflevector(b[r], b[r + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        c[r + 1] = __builtin_shufflevector(b[r], b[r + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        c[r + 2] = __builtin_shufflevector(b[r + 1], b[r + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        c[r + 3] = __builtin_shufflevector(b[r + 1], b[r + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; k++) {
        STORE8(dst + k * dst_row, __builtin_shufflevector(c[k], c[k + 4], 0, 1, 2, 3, 8, 9, 10, 11));
        STORE8(dst + (k + 4) * dst_row, __builtin_shufflevector(c[k], c[k + 4], 4, 5, 6, 7, 12, 13, 14, 15));
    }
}

/// Stride 8: 8 positions q of the 8 phases, an 8×8 transpose, 64 outputs.
static inline __attribute__((always_inline)) void interleave8_block(const float **phases, int64_t q, float *y) {
    lark_v8 a[8];
    for (int r = 0; r < 8; r++) LOAD8(a[r], phases[r] + q);
    transpose8_vectors(a, y, 8);
}

/// Stride 2: 8 positions q of the 2 phases zipped, 16 outputs.
static inline __attribute__((always_inline)) void interleave2_block(const float **phases, int64_t q, float *y) {
    lark_v8 a, b;
    LOAD8(a, phases[0] + q);
    LOAD8(b, phases[1] + q);
    STORE8(y, __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11));
    STORE8(y + 8, __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15));
}

/// Stride 4: 8 positions q of the 4 phases, pairs zipped and the pairs zipped again, 32 outputs.
static inline __attribute__((always_inline)) void interleave4_block(const float **phases, int64_t q, float *y) {
    lark_v8 a0, a1, a2, a3;
    LOAD8(a0, phases[0] + q);
    LOAD8(a1, phases[1] + q);
    LOAD8(a2, phases[2] + q);
    LOAD8(a3, phases[3] + q);
    const lark_v8 low01 = __builtin_shufflevector(a0, a1, 0, 8, 1, 9, 2, 10, 3, 11);
    const lark_v8 high01 = __builtin_shufflevector(a0, a1, 4, 12, 5, 13, 6, 14, 7, 15);
    const lark_v8 low23 = __builtin_shufflevector(a2, a3, 0, 8, 1, 9, 2, 10, 3, 11);
    const lark_v8 high23 = __builtin_shufflevector(a2, a3, 4, 12, 5, 13, 6, 14, 7, 15);
    STORE8(y, __builtin_shufflevector(low01, low23, 0, 1, 8, 9, 2, 3, 10, 11));
    STORE8(y + 8, __builtin_shufflevector(low01, low23, 4, 5, 12, 13, 6, 7, 14, 15));
    STORE8(y + 16, __builtin_shufflevector(high01, high23, 0, 1, 8, 9, 2, 3, 10, 11));
    STORE8(y + 24, __builtin_shufflevector(high01, high23, 4, 5, 12, 13, 6, 7, 14, 15));
}

/// One output, position j of the row (j + b = q·s + r).
#define ONE(STRIDE) y[j] = phases[(j + b) % (STRIDE)][(j + b) / (STRIDE)]
/// Whole groups of `STRIDE` outputs from j on, then the ragged tail up to `to`.
#define GROUPS_AND_TAIL(STRIDE)                                                 \
    for (; j + (STRIDE) <= to; j += (STRIDE)) {                                 \
        const int64_t q = (j + b) / (STRIDE);                                   \
        for (int64_t r = 0; r < (STRIDE); r++) y[j + r] = phases[r][q];         \
    }                                                                           \
    for (; j < to; j++) ONE(STRIDE)

/// Outputs [0, to) of one row whose phase r is `phases[r]`: a ragged head one by one up to a whole
/// group of `stride`, blocks of 8 groups through vector shuffles (strides 2, 4 and 8, HiFi-GAN's),
/// then whole groups with a constant stride (so that the compiler unrolls them), and the tail.
WIDEST_VECTORS void lark_subpixel_interleave_row(const float **phases, int64_t stride, int64_t b, int64_t to, float *y);
WIDEST_VECTORS void lark_subpixel_interleave_row(const float **phases, int64_t stride, int64_t b, int64_t to, float *y) {
    int64_t j = 0;
    for (; j < to && (j + b) % stride != 0; j++) ONE(stride);
    switch (stride) {
    case 2:
        for (; j + 16 <= to; j += 16) interleave2_block(phases, (j + b) / 2, y + j);
        GROUPS_AND_TAIL(2);
        break;
    case 8:
        for (; j + 64 <= to; j += 64) interleave8_block(phases, (j + b) / 8, y + j);
        GROUPS_AND_TAIL(8);
        break;
    case 4:
        for (; j + 32 <= to; j += 32) interleave4_block(phases, (j + b) / 4, y + j);
        GROUPS_AND_TAIL(4);
        break;
    default: GROUPS_AND_TAIL(stride); break;
    }
}

/// Outputs [from, to) of one row read from the blocked layout: phase r's value at position q is
/// `phases[r][q·STEP]` (STEP = the channel block). A ragged head, whole groups of `STRIDE` with
/// constants the compiler unrolls, then the tail.
#define BLOCKED_ONE(STRIDE, STEP) y[j] = phases[(j + b) % (STRIDE)][((j + b) / (STRIDE)) * (STEP)]
#define BLOCKED_ROW(STRIDE, STEP)                                                           \
    do {                                                                                    \
        int64_t j = from;                                                                   \
        for (; j < to && (j + b) % (STRIDE) != 0; j++) BLOCKED_ONE(STRIDE, STEP);            \
        for (; j + (STRIDE) <= to; j += (STRIDE)) {                                         \
            const int64_t at = ((j + b) / (STRIDE)) * (STEP);                               \
            for (int64_t r = 0; r < (STRIDE); r++) y[j + r] = phases[r][at];                \
        }                                                                                   \
        for (; j < to; j++) BLOCKED_ONE(STRIDE, STEP);                                      \
    } while (0)

static void blocked_row(const float **phases, int64_t stride, int64_t step, int64_t b, int64_t from, int64_t to, float *y) {
    if (stride == 2 && step == 16) BLOCKED_ROW(2, 16);
    else if (stride == 4 && step == 16) BLOCKED_ROW(4, 16);
    else if (stride == 8 && step == 16) BLOCKED_ROW(8, 16);
    else if (stride == 2 && step == 8) BLOCKED_ROW(2, 8);
    else if (stride == 4 && step == 8) BLOCKED_ROW(4, 8);
    else if (stride == 8 && step == 8) BLOCKED_ROW(8, 8);
    else BLOCKED_ROW(stride, step);
}

/// 8×8 transpose: row i of `src` (8 values at src + i·src_row) becomes column i of `dst` (value k
/// of it at dst + k·dst_row + i).
static inline __attribute__((always_inline)) void transpose8(const float *src, int64_t src_row, float *dst, int64_t dst_row) {
    lark_v8 a[8];
    for (int r = 0; r < 8; r++) LOAD8(a[r], src + r * src_row);
    transpose8_vectors(a, dst, dst_row);
}

/// Positions of X per tile of the blocked path, and the most values its scratch holds (s · block
/// · tile: 64 KiB, on the stack).
enum { TILE = 128, SCRATCH_VALUES = 16384 };

/// Positions [q0, q1) of `stride` blocks of X (phase r's block at blocks[r]), each [q][block],
/// transposed into scratch rows: lane l of phase r at scratch + (r·block + l)·TILE, position q at
/// index q − q0.
WIDEST_VECTORS void lark_subpixel_unblock_tile(const float **blocks, int64_t stride, int64_t block, int64_t q0, int64_t q1, float *scratch);
WIDEST_VECTORS void lark_subpixel_unblock_tile(const float **blocks, int64_t stride, int64_t block, int64_t q0, int64_t q1, float *scratch) {
    // Positions outermost: the phases' blocks are read side by side, as concurrent streams.
    int64_t q = q0;
    for (; q + 8 <= q1; q += 8)
        for (int64_t r = 0; r < stride; r++)
            for (int64_t l = 0; l < block; l += 8)
                transpose8(blocks[r] + q * block + l, block, scratch + (r * block + l) * TILE + (q - q0), TILE);
    for (; q < q1; q++)
        for (int64_t r = 0; r < stride; r++)
            for (int64_t l = 0; l < block; l++) scratch[(r * block + l) * TILE + (q - q0)] = blocks[r][q * block + l];
}

typedef float lark_v16 __attribute__((vector_size(64)));
typedef float lark_v4 __attribute__((vector_size(16)));

/// Stride 4 or 8, block 16, one whole block of rows: positions [qa, qb) (whole groups of
/// `stride` outputs inside the crop), straight from the blocked layout into the rows. At each
/// position each four phases' vectors (16 lanes = 16 rows) are transposed 4×16 → 16×4 in two
/// rounds of shuffles, and each row gets those 4 outputs as one 16-byte store.
WIDEST_VECTORS void lark_subpixel_blocked16(const float **phases, int64_t stride, int64_t qa, int64_t qb, int64_t b, float *y, int64_t y_row);
WIDEST_VECTORS void lark_subpixel_blocked16(const float **phases, int64_t stride, int64_t qa, int64_t qb, int64_t b, float *y, int64_t y_row) {
    for (int64_t q = qa; q < qb; q++)
        for (int64_t h = 0; h < stride; h += 4) {
        lark_v16 a0, a1, a2, a3;
        memcpy(&a0, phases[h] + q * 16, sizeof a0);
        memcpy(&a1, phases[h + 1] + q * 16, sizeof a1);
        memcpy(&a2, phases[h + 2] + q * 16, sizeof a2);
        memcpy(&a3, phases[h + 3] + q * 16, sizeof a3);
        const lark_v16 low01 = __builtin_shufflevector(a0, a1, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
        const lark_v16 high01 = __builtin_shufflevector(a0, a1, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
        const lark_v16 low23 = __builtin_shufflevector(a2, a3, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
        const lark_v16 high23 = __builtin_shufflevector(a2, a3, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
        // Quarter k of lanes[m] holds lane 4k + m's four phases.
        const lark_v16 lanes[4] = {
            __builtin_shufflevector(low01, low23, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
            __builtin_shufflevector(low01, low23, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31),
            __builtin_shufflevector(high01, high23, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
            __builtin_shufflevector(high01, high23, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31),
        };
        float *out = y + q * stride - b + h;
        for (int m = 0; m < 4; m++) {
            const lark_v4 k0 = __builtin_shufflevector(lanes[m], lanes[m], 0, 1, 2, 3);
            const lark_v4 k1 = __builtin_shufflevector(lanes[m], lanes[m], 4, 5, 6, 7);
            const lark_v4 k2 = __builtin_shufflevector(lanes[m], lanes[m], 8, 9, 10, 11);
            const lark_v4 k3 = __builtin_shufflevector(lanes[m], lanes[m], 12, 13, 14, 15);
            memcpy(out + m * y_row, &k0, sizeof k0);
            memcpy(out + (4 + m) * y_row, &k1, sizeof k1);
            memcpy(out + (8 + m) * y_row, &k2, sizeof k2);
            memcpy(out + (12 + m) * y_row, &k3, sizeof k3);
        }
    }
}

/// Blocked X, a task's rows (one block of them) over its slab of positions. Where those rows are
/// one whole block of each phase (C a multiple of the block): with block 16 and stride 4 or 8
/// straight into the rows (`lark_subpixel_blocked16`); otherwise in tiles of positions, each
/// tile's blocks transposed into the plain layout in a scratch (8×8 shuffles) and interleaved from
/// there by the plain path's row loop. Where they are not, each value is read where it is, tile
/// by tile for all rows, so that a tile of X is read from memory once for the rows that share it.
static void run_blocked_task(const Job *job, size_t task) {
    const int64_t s = job->stride, b = job->pad_begin, step = job->block;
    const int64_t group = (int64_t)task / job->slabs, start = ((int64_t)task % job->slabs) * job->slab;
    const int64_t first = group * job->rows_per_task;
    const int64_t last = first + job->rows_per_task < job->rows ? first + job->rows_per_task : job->rows;
    const int64_t end = start + job->slab < job->length ? start + job->slab : job->length;
    const float *phases[64];
    if ((s == 4 || s == 8) && step == 16 && job->channels % 16 == 0 && last - first == 16) {
        // Whole groups of s outputs inside the crop straight from the blocked layout; the ragged
        // ends of each row one by one.
        const int64_t n = first / job->channels, o = first % job->channels;
        for (int64_t r = 0; r < s; r++) phases[r] = job->x + ((n * job->blocks + (r * job->channels + o) / 16) * job->length) * 16;
        int64_t qa = (b + s - 1) / s > start ? (b + s - 1) / s : start;
        int64_t qb = (job->output_length + b) / s < end ? (job->output_length + b) / s : end;
        if (qb < qa) qb = qa;
        float *y = job->y + first * job->output_length;
        lark_subpixel_blocked16(phases, s, qa, qb, b, y, job->output_length);
        const int64_t from = start * s - b > 0 ? start * s - b : 0;
        const int64_t to = end * s - b < job->output_length ? end * s - b : job->output_length;
        for (int64_t lane = 0; lane < 16; lane++) {
            const float *row[8];
            for (int64_t r = 0; r < s; r++) row[r] = phases[r] + lane;
            blocked_row(row, s, 16, b, from, qa * s - b < to ? qa * s - b : to, y + lane * job->output_length);
            blocked_row(row, s, 16, b, qb * s - b > from ? qb * s - b : from, to, y + lane * job->output_length);
        }
        return;
    }
    const int transposed = (step == 8 || step == 16) && job->channels % step == 0 && s * step * TILE <= SCRATCH_VALUES
                           && last - first == step;
    float scratch[transposed ? SCRATCH_VALUES : 1];
    for (int64_t q0 = start; q0 < end; q0 += TILE) {
        const int64_t q1 = q0 + TILE < end ? q0 + TILE : end;
        const int64_t from = q0 * s - b > 0 ? q0 * s - b : 0;
        const int64_t to = q1 * s - b < job->output_length ? q1 * s - b : job->output_length;
        if (from >= to) continue;
        if (transposed) {
            const int64_t n = first / job->channels, o = first % job->channels;
            for (int64_t r = 0; r < s; r++) phases[r] = job->x + ((n * job->blocks + (r * job->channels + o) / step) * job->length) * step;
            lark_subpixel_unblock_tile(phases, s, step, q0, q1, scratch);
            for (int64_t lane = 0; lane < step; lane++) {
                for (int64_t r = 0; r < s; r++) phases[r] = scratch + (r * step + lane) * TILE;
                lark_subpixel_interleave_row(phases, s, from + b - q0 * s, to - from, job->y + (first + lane) * job->output_length + from);
            }
            continue;
        }
        for (int64_t row = first; row < last; row++) {
            const int64_t n = row / job->channels, o = row % job->channels;
            for (int64_t r = 0; r < s; r++) {
                const int64_t c = r * job->channels + o;
                phases[r] = job->x + ((n * job->blocks + c / step) * job->length) * step + c % step;
            }
            blocked_row(phases, s, step, b, from, to, job->y + row * job->output_length);
        }
    }
}

static void run_task(void *data, size_t task) {
    const Job *job = data;
    if (job->block) {
        run_blocked_task(job, task);
        return;
    }
    const int64_t first = (int64_t)task * job->rows_per_task;
    const int64_t last = first + job->rows_per_task < job->rows ? first + job->rows_per_task : job->rows;
    const float *phases[64];
    for (int64_t row = first; row < last; row++) {
        const int64_t n = row / job->channels, o = row % job->channels;
        const float *item = job->x + n * job->stride * job->channels * job->length;
        for (int64_t r = 0; r < job->stride; r++) phases[r] = item + (r * job->channels + o) * job->length;
        lark_subpixel_interleave_row(phases, job->stride, job->pad_begin, job->output_length, job->y + row * job->output_length);
    }
}

/// Below this many output values a task's share is not worth handing to another thread.
static const int64_t values_per_task = 32768;

static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    const SubpixelInterleaveKernel *kernel = opaque;
    const void *api = kernel->api;
    const OrtValue *value = NULL;
    OrtStatus *status = KernelContext_GetInput(api)(context, 0, &value);
    if (status) return status;
    if (!value) return failure(api, ORT_INVALID_ARGUMENT, "X is required");
    OrtShapeInfo *info;
    if ((status = GetTensorTypeAndShape(api)(value, &info))) return status;
    size_t rank = 0;
    int64_t dims[4] = {0};
    status = GetDimensionsCount(api)(info, &rank);
    if (!status && (rank < 3 || rank > 4)) status = failure(api, ORT_INVALID_ARGUMENT, "X must be [N, s·C, T] or [N, s·C, 1, T]");
    if (!status) status = GetDimensions(api)(info, dims, rank);
    ReleaseShapeInfo(api)(info);
    if (status) return status;
    if (rank == 4 && dims[2] != 1) return failure(api, ORT_INVALID_ARGUMENT, "X must be [N, s·C, T] or [N, s·C, 1, T]");
    int64_t channels = dims[1];
    if (kernel->block) {
        channels = kernel->channels;
        if (rank != 4 || dims[1] % kernel->block != 0 || channels > dims[1] || dims[1] - channels >= kernel->block)
            return failure(api, ORT_INVALID_ARGUMENT, "a blocked X must be [N, channels padded to the block, 1, T]");
    }
    if (channels % kernel->stride != 0) return failure(api, ORT_INVALID_ARGUMENT, "X's channels are not a multiple of the stride");

    Job job = {.stride = kernel->stride, .pad_begin = kernel->pad_begin, .channels = channels / kernel->stride, .length = dims[rank - 1],
               .block = kernel->block, .blocks = kernel->block ? dims[1] / kernel->block : 0};
    job.output_length = job.length * job.stride - kernel->pad_begin - kernel->pad_end;
    if (job.output_length < 0) return failure(api, ORT_INVALID_ARGUMENT, "X is shorter than the pads");
    if ((status = GetTensorMutableData(api)((OrtValue *)value, (void **)&job.x))) return status;
    dims[1] = job.channels;
    dims[rank - 1] = job.output_length;
    OrtValue *output;
    if ((status = KernelContext_GetOutput(api)(context, 0, dims, rank, &output))) return status;
    if ((status = GetTensorMutableData(api)(output, (void **)&job.y))) return status;

    job.rows = dims[0] * job.channels;
    if (job.rows == 0 || job.output_length == 0) return NULL;
    const int64_t wanted = job.rows * job.output_length / values_per_task;
    const int64_t tasks = wanted < 1 ? 1 : (wanted < job.rows ? wanted : job.rows);
    job.rows_per_task = (job.rows + tasks - 1) / tasks;
    int64_t used = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
    if (job.block) {
        // Blocked X: a block of rows per task (rows that read the same cache lines stay on one
        // thread), and the wanted tasks made up by slabs of time.
        job.rows_per_task = job.block;
        const int64_t groups = (job.rows + job.block - 1) / job.block;
        job.slabs = (tasks + groups - 1) / groups;
        job.slab = (job.length + job.slabs - 1) / job.slabs;
        job.slabs = (job.length + job.slab - 1) / job.slab;
        used = groups * job.slabs;
    }
    if (used == 1) {
        run_task(&job, 0);
        return NULL;
    }
    return KernelContext_ParallelFor(api)(context, run_task, (size_t)used, 0, &job);
}

int lark_nchwc_block_size(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") ? 16 : 8;
#else
    return 0;
#endif
}

const LarkOperator lark_subpixel_interleave_op =
    LARK_OPERATOR("SubpixelInterleave", 1, 1, 1, create_kernel, compute, lark_operator_free_kernel);
