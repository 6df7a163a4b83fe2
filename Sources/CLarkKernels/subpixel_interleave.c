// SubpixelInterleave (domain "ai.lark"): the last step of a transposed convolution restated in
// sub-pixel form (OnnxGraph's `TransposedConvPlan`): a convolution has computed each of the
// `stride` output phases as a block of channels; this puts the phases side by side in time and
// crops the padding, in one pass. As ONNX nodes that was Reshape, Transpose (the copy), Reshape
// and Slice (a second copy), and ONNX Runtime's Transpose ran slower with two threads than one.
//
//   input   X [N, s·C, T] (or [N, s·C, 1, T]), phase r of channel o in channel r·C + o;
//   output  Y [N, C, T·s − b − e] (or [N, C, 1, ...]): Y[n, o, j] = X[n, r·C + o, q] where
//           j + b = q·s + r;
//   attributes stride (s ≥ 1), pads ([b, e], each ≥ 0; [0, 0] when absent).
// Rows of Y are shared among ONNX Runtime's threads (KernelContext_ParallelFor) when there are
// enough values to pay for it.
#include "ort_custom_op.h"

#include <stdlib.h>
#include <string.h>

typedef struct SubpixelInterleaveKernel {
    const void *api;
    int64_t stride, pad_begin, pad_end;
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
} Job;

// On x86-64 Linux the row loop is compiled for AVX-512 and AVX2 as well, chosen when the program
// loads (an ifunc), so that the shuffles below are whole-vector instructions.
#if defined(__x86_64__) && defined(__linux__)
#define WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDEST_VECTORS
#endif

typedef float lark_v8 __attribute__((vector_size(32)));

// Unaligned loads and stores of 8 floats (macros: a function passing vectors by value would
// depend on the target's vector ABI).
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(lark_v8))
#define STORE8(p, v)                      \
    do {                                  \
        const lark_v8 stored_ = (v);      \
        memcpy((p), &stored_, sizeof stored_); \
    } while (0)

/// Stride 8: 8 positions q of the 8 phases, an 8×8 transpose (three rounds of shuffles), 64 outputs.
static inline __attribute__((always_inline)) void interleave8_block(const float **phases, int64_t q, float *y) {
    lark_v8 a[8], b[8], c[8];
    for (int r = 0; r < 8; r++) LOAD8(a[r], phases[r] + q);
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
        STORE8(y + 8 * k, __builtin_shufflevector(c[k], c[k + 4], 0, 1, 2, 3, 8, 9, 10, 11));
        STORE8(y + 8 * (k + 4), __builtin_shufflevector(c[k], c[k + 4], 4, 5, 6, 7, 12, 13, 14, 15));
    }
}

/// Stride 2: 8 positions q of the 2 phases zipped, 16 outputs.
static inline __attribute__((always_inline)) void interleave2_block(const float **phases, int64_t q, float *y) {
    lark_v8 a, b;
    LOAD8(a, phases[0] + q);
    LOAD8(b, phases[1] + q);
    STORE8(y, __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11));
    STORE8(y + 8, __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15));
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
/// group of `stride`, blocks of 8 groups through vector shuffles (strides 2 and 8, HiFi-GAN's),
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
    case 4: GROUPS_AND_TAIL(4); break;
    default: GROUPS_AND_TAIL(stride); break;
    }
}

static void run_task(void *data, size_t task) {
    const Job *job = data;
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
    if (dims[1] % kernel->stride != 0) return failure(api, ORT_INVALID_ARGUMENT, "X's channels are not a multiple of the stride");

    Job job = {.stride = kernel->stride, .pad_begin = kernel->pad_begin, .channels = dims[1] / kernel->stride, .length = dims[rank - 1]};
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
    const int64_t used = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
    if (used == 1) {
        run_task(&job, 0);
        return NULL;
    }
    return KernelContext_ParallelFor(api)(context, run_task, (size_t)used, 0, &job);
}

const LarkOperator lark_subpixel_interleave_op =
    LARK_OPERATOR("SubpixelInterleave", 1, 1, 1, create_kernel, compute, lark_operator_free_kernel);
