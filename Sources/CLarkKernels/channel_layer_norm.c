// ChannelLayerNorm (domain "ai.lark"): layer normalization over the channels of [N, C, T], as
// VITS writes it (transpose to [N, T, C], normalize the last axis, transpose back). Exported to
// ONNX that is eleven nodes (two transposes, two means, a power, a square root...) that ONNX
// Runtime does not fuse; here it is one pass over the values.
//
//   inputs  X [N, C, T], gamma [C], beta [C];
//   output  Y [N, C, T]: (X − mean) / √(variance + epsilon) · gamma + beta, the mean and the
//           (biased) variance taken over C for each n and t;
//   attribute epsilon (float, 1e-5 when absent).
// Runs of columns (time steps) are shared among ONNX Runtime's threads when there are enough.
#include "ort_custom_op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ChannelLayerNormKernel {
    const void *api;
    float epsilon;
} ChannelLayerNormKernel;

static OrtStatus *failure(const void *api, int code, const char *message) { return lark_operator_failure(api, code, "ChannelLayerNorm", message); }

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op;
    ChannelLayerNormKernel kernel = {.api = api, .epsilon = 1e-5f};
    OrtStatus *status = KernelInfoGetAttribute_float(api)(info, "epsilon", &kernel.epsilon);
    if (status) ReleaseStatus(api)(status);
    if (!(kernel.epsilon >= 0) || !isfinite(kernel.epsilon)) return failure(api, ORT_INVALID_ARGUMENT, "epsilon must be finite, not negative");
    ChannelLayerNormKernel *copy = malloc(sizeof kernel);
    if (!copy) return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    *copy = kernel;
    *out = copy;
    return NULL;
}

static OrtStatus *read_tensor(const void *api, const OrtValue *value, size_t expected_rank, int64_t *dims, float **data) {
    OrtShapeInfo *info;
    OrtStatus *status = GetTensorTypeAndShape(api)(value, &info);
    if (status) return status;
    size_t rank = 0;
    status = GetDimensionsCount(api)(info, &rank);
    if (!status && rank != expected_rank) status = failure(api, ORT_INVALID_ARGUMENT, "X must be [N, C, T], gamma and beta [C]");
    if (!status) status = GetDimensions(api)(info, dims, rank);
    ReleaseShapeInfo(api)(info);
    if (!status) status = GetTensorMutableData(api)((OrtValue *)value, (void **)data);
    return status;
}

/// Normalizes `count` columns of one batch item (each row `length` long) from column 0 of `x` and
/// `y`. Sums over channels with the time axis innermost, so that each step is a vector operation
/// over a run of columns; `scratch` holds 2·count floats.
static void normalize(const float *x, int64_t channels, int64_t length, int64_t count, const float *gamma, const float *beta,
                      float epsilon, float *scratch, float *y) {
    float *mean = scratch, *scale = scratch + count;
    memset(mean, 0, (size_t)count * sizeof(float));
    memset(scale, 0, (size_t)count * sizeof(float));
    for (int64_t c = 0; c < channels; c++)
        for (int64_t t = 0; t < count; t++) mean[t] += x[c * length + t];
    const float inverse_channels = 1.0f / (float)channels;
    for (int64_t t = 0; t < count; t++) mean[t] *= inverse_channels;
    for (int64_t c = 0; c < channels; c++)
        for (int64_t t = 0; t < count; t++) {
            const float d = x[c * length + t] - mean[t];
            scale[t] += d * d;
        }
    for (int64_t t = 0; t < count; t++) scale[t] = 1.0f / sqrtf(scale[t] * inverse_channels + epsilon);
    for (int64_t c = 0; c < channels; c++)
        for (int64_t t = 0; t < count; t++) y[c * length + t] = (x[c * length + t] - mean[t]) * scale[t] * gamma[c] + beta[c];
}

/// Each task normalizes a run of at most `columns` columns of one batch item (columns are
/// independent), with scratch of its own on the stack.
enum { most_columns = 1024 };
typedef struct Job {
    const float *x, *gamma, *beta;
    float *y, epsilon;
    int64_t channels, length, columns, tasks_per_item;
} Job;

/// Fewer values than this a task is not worth handing to another thread.
static const int64_t values_per_task = 32768;

static void run_task(void *data, size_t task) {
    const Job *job = data;
    const int64_t n = (int64_t)task / job->tasks_per_item, from = ((int64_t)task % job->tasks_per_item) * job->columns;
    const int64_t count = job->length - from < job->columns ? job->length - from : job->columns;
    float scratch[2 * most_columns];
    const int64_t offset = n * job->channels * job->length + from;
    normalize(job->x + offset, job->channels, job->length, count, job->gamma, job->beta, job->epsilon, scratch, job->y + offset);
}

static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    const ChannelLayerNormKernel *kernel = opaque;
    const void *api = kernel->api;
    int64_t dims[3][3];
    float *data[3];
    static const size_t ranks[3] = {3, 1, 1};
    for (size_t i = 0; i < 3; i++) {
        const OrtValue *value = NULL;
        OrtStatus *status = KernelContext_GetInput(api)(context, i, &value);
        if (status) return status;
        if (!value) return failure(api, ORT_INVALID_ARGUMENT, "X, gamma and beta are required");
        if ((status = read_tensor(api, value, ranks[i], dims[i], &data[i]))) return status;
    }
    const int64_t batch = dims[0][0], channels = dims[0][1], length = dims[0][2];
    if (dims[1][0] != channels || dims[2][0] != channels) return failure(api, ORT_INVALID_ARGUMENT, "gamma and beta must be [C]");
    OrtValue *output;
    OrtStatus *status = KernelContext_GetOutput(api)(context, 0, dims[0], 3, &output);
    if (status) return status;
    float *y;
    if ((status = GetTensorMutableData(api)(output, (void **)&y))) return status;
    if (batch * channels * length == 0) return NULL;
    Job job = {.x = data[0], .gamma = data[1], .beta = data[2], .y = y, .epsilon = kernel->epsilon, .channels = channels, .length = length};
    // Runs of whole vectors of columns, as many as the work pays for, each at most `most_columns`.
    const int64_t wanted = (channels * length + values_per_task - 1) / values_per_task;
    job.columns = (length + wanted - 1) / wanted;
    job.columns = (job.columns + 15) / 16 * 16;
    if (job.columns > most_columns) job.columns = most_columns;
    job.tasks_per_item = (length + job.columns - 1) / job.columns;
    const int64_t tasks = batch * job.tasks_per_item;
    if (tasks == 1) {
        run_task(&job, 0);
        return NULL;
    }
    return KernelContext_ParallelFor(api)(context, run_task, (size_t)tasks, 0, &job);
}

const LarkOperator lark_channel_layer_norm_op = LARK_OPERATOR("ChannelLayerNorm", 3, 3, 1, create_kernel, compute, lark_operator_free_kernel);
