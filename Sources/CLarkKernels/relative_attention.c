// The two relative-position terms of VITS's windowed self-attention (Shaw et al.), as ONNX
// Runtime custom operators (domain "ai.lark"). Exported to ONNX each is some 35 nodes of padding,
// reshaping and slicing per layer (VITS's `_get_relative_embeddings`,
// `_relative_position_to_absolute_position` and back) around a small matrix product; the
// attention's two large products stay ONNX Runtime's. With w the window and E an embedding table
// of 2w + 1 rows (shared by the heads, or one table per head):
//
// RelativeKeyLogits: inputs Q [N, H, T, D] (the scaled queries), E [1 or H, 2w + 1, D];
//   output [N, H, T, T] with entry (i, j) = Q[i] · E[j − i + w] where |j − i| ≤ w, else 0.
// RelativeValueWeights: inputs P [N, H, T, T] (the attention weights), E [1 or H, 2w + 1, D];
//   output [N, H, T, D] with row i = Σ over |j − i| ≤ w of P[i, j] · E[j − i + w].
// Rows of the output are shared among ONNX Runtime's threads when there is enough work.
#include "ort_custom_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct RelativeKernel {
    const void *api;
    int values;  // 0: RelativeKeyLogits, 1: RelativeValueWeights
} RelativeKernel;

static OrtStatus *failure(const void *api, int values, const char *message) {
    return lark_operator_failure(api, ORT_INVALID_ARGUMENT, values ? "RelativeValueWeights" : "RelativeKeyLogits", message);
}

/// Rows of the output (one query i of one batch item and head each) are independent: each task
/// computes a run of `rows_per_task` of them.
typedef struct Job {
    const float *x, *table;
    float *y;
    int values, shared_table;
    int64_t heads, length, depth, window, width, rows, rows_per_task;
} Job;

/// Less work than this (values cleared or multiplied) a task is not worth handing to another thread.
static const int64_t values_per_task = 32768;

static void run_task(void *data, size_t task) {
    const Job *job = data;
    const int64_t first_row = (int64_t)task * job->rows_per_task;
    const int64_t end_row = first_row + job->rows_per_task < job->rows ? first_row + job->rows_per_task : job->rows;
    const int64_t length = job->length, depth = job->depth, window = job->window, width = job->width;
    const int64_t in_width = job->values ? length : depth;
    for (int64_t row = first_row; row < end_row; row++) {
        const int64_t item = row / length, i = row % length, h = item % job->heads;
        const float *table = job->table + (job->shared_table ? 0 : h) * (2 * window + 1) * depth;
        const float *in = job->x + row * in_width;
        float *out = job->y + row * width;
        memset(out, 0, (size_t)width * sizeof(float));
        const int64_t first = i - window < 0 ? 0 : i - window, last = i + window >= length ? length - 1 : i + window;
        for (int64_t j = first; j <= last; j++) {
            const float *entry = table + (j - i + window) * depth;
            if (job->values) {
                const float weight = in[j];
                for (int64_t c = 0; c < depth; c++) out[c] += weight * entry[c];
            } else {
                float sum = 0;
                for (int64_t c = 0; c < depth; c++) sum += in[c] * entry[c];
                out[j] = sum;
            }
        }
    }
}

static OrtStatus *compute(void *opaque, OrtKernelContext *context, int values) {
    const void *api = ((const RelativeKernel *)opaque)->api;
    LarkTensor x, e;
    const char *name = values ? "RelativeValueWeights" : "RelativeKeyLogits";
    const OrtValue *value = NULL;
    OrtStatus *status = KernelContext_GetInput(api)(context, 0, &value);
    if (!status && value) status = lark_read_tensor(api, value, name, &x);
    if (status) return status;
    if (!value || (status = KernelContext_GetInput(api)(context, 1, &value)) || !value) return status ? status : failure(api, values, "two inputs are required");
    if ((status = lark_read_tensor(api, value, name, &e))) return status;
    if (x.rank != 4 || e.rank != 3) return failure(api, values, "the first input must be 4-D, E [1 or H, 2w + 1, D]");
    const int64_t batch = x.dims[0], heads = x.dims[1], length = x.dims[2];
    const int64_t rows = e.dims[1], depth = e.dims[2], window = (rows - 1) / 2;
    if (rows % 2 == 0 || (e.dims[0] != 1 && e.dims[0] != heads)) return failure(api, values, "E must be [1 or H, 2w + 1, D]");
    if (values ? x.dims[3] != length : x.dims[3] != depth)
        return failure(api, values, values ? "P must be [N, H, T, T]" : "Q must be [N, H, T, D] with E's D");
    const int64_t out_dims[4] = {batch, heads, length, values ? depth : length};
    OrtValue *output;
    if ((status = KernelContext_GetOutput(api)(context, 0, out_dims, 4, &output))) return status;
    float *y;
    if ((status = GetTensorMutableData(api)(output, (void **)&y))) return status;
    Job job = {
        .x = x.data, .table = e.data, .y = y, .values = values, .heads = heads, .length = length, .depth = depth, .window = window,
        .width = out_dims[3], .shared_table = e.dims[0] == 1,
    };
    // Each row costs its output's width (cleared) and up to 2w + 1 products of D.
    const int64_t rows_total = batch * heads * length, row_cost = job.width + (2 * window + 1) * depth;
    const int64_t wanted = rows_total * row_cost / values_per_task;
    const int64_t tasks = wanted < 1 ? 1 : (wanted < rows_total ? wanted : rows_total);
    job.rows_per_task = (rows_total + tasks - 1) / tasks;
    job.rows = rows_total;
    const int64_t used = rows_total == 0 ? 0 : (rows_total + job.rows_per_task - 1) / job.rows_per_task;
    if (used <= 1) {
        if (used == 1) run_task(&job, 0);
        return NULL;
    }
    return KernelContext_ParallelFor(api)(context, run_task, (size_t)used, 0, &job);
}

static OrtStatus *compute_keys(void *kernel, OrtKernelContext *context) { return compute(kernel, context, 0); }
static OrtStatus *compute_values(void *kernel, OrtKernelContext *context) { return compute(kernel, context, 1); }

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)info;
    RelativeKernel *kernel = malloc(sizeof *kernel);
    if (!kernel) return CreateStatus(api)(ORT_RUNTIME_EXCEPTION, "ai.lark relative attention: out of memory");
    kernel->api = api;
    kernel->values = op->KernelComputeV2 == compute_values;
    *out = kernel;
    return NULL;
}

const LarkOperator lark_relative_key_logits_op =
    LARK_OPERATOR("RelativeKeyLogits", 2, 2, 1, create_kernel, compute_keys, lark_operator_free_kernel);
const LarkOperator lark_relative_value_weights_op =
    LARK_OPERATOR("RelativeValueWeights", 2, 2, 1, create_kernel, compute_values, lark_operator_free_kernel);
