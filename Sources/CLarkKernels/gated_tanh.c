// GatedTanh (domain "ai.lark"): WaveNet's gated activation as VITS's flows use it
// (`fused_add_tanh_sigmoid_multiply` with no speaker conditioning): the first half of the
// channels through tanh times the second half through a sigmoid. Exported to ONNX that is a
// zero tensor made and added (Shape, ConstantOfShape, Add), two slices, two activations and a
// product: eight nodes per layer, sixteen layers; here it is one pass.
//
//   input   X [N, 2C, T] (or [N, 2C, 1, T]);
//   output  Y [N, C, T] (or [N, C, 1, T]) = tanh(X[:, :C]) · sigmoid(X[:, C:]).
// Runs of the output are shared among ONNX Runtime's threads when there are enough of them.
#include "ort_custom_op.h"
#include "widest_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct GatedTanhKernel {
    const void *api;
} GatedTanhKernel;

static OrtStatus *failure(const void *api, const char *message) { return lark_operator_failure(api, ORT_INVALID_ARGUMENT, "GatedTanh", message); }

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op, (void)info;
    GatedTanhKernel *kernel = malloc(sizeof *kernel);
    if (!kernel) return CreateStatus(api)(ORT_RUNTIME_EXCEPTION, "ai.lark.GatedTanh: out of memory");
    kernel->api = api;
    *out = kernel;
    return NULL;
}

/// e^x for x in about [−87, 88] (clamped), to about 2 ulp: Cody and Waite's reduction by ln 2
/// and Cephes's polynomial. Plain arithmetic, without libm's calls, so that the loops below are
/// vectorized (libm's tanhf and expf made this operator slower than ONNX Runtime's own nodes).
static inline float exponential(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float shifter = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer
    const float n = (x * 1.44269504088896341f + shifter) - shifter;
    const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;  // 2^n
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/// tanh(a) · sigmoid(b); tanh through e^(2a), its argument clamped where tanh is ±1 in floats.
static inline float gate(float a, float b) {
    a = a > 9.0f ? 9.0f : (a < -9.0f ? -9.0f : a);
    const float e = exponential(2.0f * a);
    return (e - 1.0f) / ((e + 1.0f) * (1.0f + exponential(-b)));
}

// The loop below is built for the widest vectors (widest_vectors.h): the baseline's 4-wide
// vectors made it slower than ONNX Runtime's kernels.

WIDEST_VECTORS void lark_gated_tanh_rows(const float *first, const float *second, int64_t count, float *out);
WIDEST_VECTORS void lark_gated_tanh_rows(const float *first, const float *second, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) out[i] = gate(first[i], second[i]);
}

/// One batch item's `count` outputs are cut into runs of at most `per_task`, one task each.
typedef struct Job {
    const float *x;
    float *y;
    int64_t count, per_task, tasks_per_item;
} Job;

/// Fewer values than this a task is not worth handing to another thread (~10 µs of gates).
static const int64_t values_per_task = 16384;

static void run_task(void *data, size_t task) {
    const Job *job = data;
    const int64_t n = (int64_t)task / job->tasks_per_item, from = ((int64_t)task % job->tasks_per_item) * job->per_task;
    const int64_t count = job->count - from < job->per_task ? job->count - from : job->per_task;
    const float *first = job->x + n * 2 * job->count + from, *second = first + job->count;
    lark_gated_tanh_rows(first, second, count, job->y + n * job->count + from);
}

static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    const void *api = ((const GatedTanhKernel *)opaque)->api;
    const OrtValue *value = NULL;
    OrtStatus *status = KernelContext_GetInput(api)(context, 0, &value);
    if (status) return status;
    if (!value) return failure(api, "X is required");
    OrtShapeInfo *info;
    if ((status = GetTensorTypeAndShape(api)(value, &info))) return status;
    size_t rank = 0;
    int64_t dims[4] = {0};
    status = GetDimensionsCount(api)(info, &rank);
    if (!status && (rank < 3 || rank > 4)) status = failure(api, "X must be [N, 2C, T] or [N, 2C, 1, T]");
    if (!status) status = GetDimensions(api)(info, dims, rank);
    ReleaseShapeInfo(api)(info);
    if (status) return status;
    if (rank == 4 && dims[2] != 1) return failure(api, "X must be [N, 2C, T] or [N, 2C, 1, T]");
    if (dims[1] % 2 != 0) return failure(api, "X must have an even number of channels");
    float *x;
    if ((status = GetTensorMutableData(api)((OrtValue *)value, (void **)&x))) return status;
    const int64_t batch = dims[0], half = dims[1] / 2, length = dims[rank - 1];
    dims[1] = half;
    OrtValue *output;
    if ((status = KernelContext_GetOutput(api)(context, 0, dims, rank, &output))) return status;
    float *y;
    if ((status = GetTensorMutableData(api)(output, (void **)&y))) return status;
    Job job = {.x = x, .y = y, .count = half * length};
    if (job.count == 0 || batch == 0) return NULL;
    const int64_t wanted = (job.count + values_per_task - 1) / values_per_task;
    job.per_task = (job.count + wanted - 1) / wanted;
    job.tasks_per_item = (job.count + job.per_task - 1) / job.per_task;
    const int64_t tasks = batch * job.tasks_per_item;
    if (tasks == 1) {
        run_task(&job, 0);
        return NULL;
    }
    return KernelContext_ParallelFor(api)(context, run_task, (size_t)tasks, 0, &job);
}

const LarkOperator lark_gated_tanh_op = LARK_OPERATOR("GatedTanh", 1, 1, 1, create_kernel, compute, lark_operator_free_kernel);
