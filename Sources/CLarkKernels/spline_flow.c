// SplineFlowInverse (domain "ai.lark"): one flow of a VITS stochastic duration predictor
// (`ConvFlow`) run in reverse, after its convolutions: the inverse of a monotonic
// rational-quadratic spline with linear tails (Durkan et al., "Neural Spline Flows"), as VITS
// defines it. Exported to ONNX, this step is some 330 nodes per flow (softmax, cumulative sums,
// masks, gathers and scatters over a few hundred numbers); here it is one loop.
//
//   inputs  X [N, 2h, T]: the flow's input; the first h channels pass through, the last h are
//                         transformed;
//           H [N, h·(3·bins − 1), T]: the flow's projection (its last convolution's output);
//           mask [N, 1, T]: 1 for real frames, 0 for padding;
//   output  Y [N, 2h, T] = concat(X[:, :h], spline⁻¹(X[:, h:]; H · mask)) · mask;
//   attributes bins (int), tail_bound (float), logit_divisor (float: the widths' and heights'
//           logits are divided by it, √filter_channels in VITS), min_bin_width, min_bin_height,
//           min_derivative (floats, 1e-3 when absent).
// Per frame and transformed channel j, the projection's channels j·(3·bins − 1) + k hold the
// unnormalized widths (k < bins), heights (bins ≤ k < 2·bins) and inner derivatives (the rest).
// Values outside [−tail_bound, tail_bound] pass through unchanged. Deterministic: the duration
// predictor's random draw stays in the graph, before this node.
#include "ort_custom_op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_BINS = 64 };

typedef struct SplineFlowKernel {
    const void *api;
    int64_t bins;
    float tail_bound, logit_divisor, min_bin_width, min_bin_height, min_derivative;
    /// The derivative the linear tails meet the spline with at both ends: the padding of the
    /// derivatives' logits, chosen in VITS so that min_derivative + softplus(padding) = 1.
    float edge_logit;
} SplineFlowKernel;

static OrtStatus *failure(const void *api, int code, const char *message) { return lark_operator_failure(api, code, "SplineFlowInverse", message); }

static float float_attribute(const void *api, const OrtKernelInfo *info, const char *name, float fallback) {
    float value = fallback;
    OrtStatus *status = KernelInfoGetAttribute_float(api)(info, name, &value);
    if (status) {
        ReleaseStatus(api)(status);
        return fallback;
    }
    return value;
}

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op;
    SplineFlowKernel kernel = {.api = api};
    OrtStatus *status = KernelInfoGetAttribute_int64(api)(info, "bins", &kernel.bins);
    if (status) {
        ReleaseStatus(api)(status);
        return failure(api, ORT_INVALID_ARGUMENT, "the attribute bins is required");
    }
    kernel.tail_bound = float_attribute(api, info, "tail_bound", NAN);
    kernel.logit_divisor = float_attribute(api, info, "logit_divisor", 1);
    kernel.min_bin_width = float_attribute(api, info, "min_bin_width", 1e-3f);
    kernel.min_bin_height = float_attribute(api, info, "min_bin_height", 1e-3f);
    kernel.min_derivative = float_attribute(api, info, "min_derivative", 1e-3f);
    if (kernel.bins < 2 || kernel.bins > MAX_BINS) return failure(api, ORT_INVALID_ARGUMENT, "bins must be 2 to 64");
    if (!(kernel.tail_bound > 0) || !isfinite(kernel.tail_bound)) return failure(api, ORT_INVALID_ARGUMENT, "tail_bound must be positive");
    if (!(kernel.logit_divisor != 0) || !isfinite(kernel.logit_divisor)) return failure(api, ORT_INVALID_ARGUMENT, "logit_divisor must be finite, not 0");
    if (!(kernel.min_bin_width * kernel.bins < 1) || !(kernel.min_bin_height * kernel.bins < 1) || !(kernel.min_bin_width >= 0) ||
        !(kernel.min_bin_height >= 0) || !(kernel.min_derivative >= 0) || !(kernel.min_derivative < 1))
        return failure(api, ORT_INVALID_ARGUMENT, "minimum bin sizes or derivative out of range");
    kernel.edge_logit = (float)log(expm1(1.0 - (double)kernel.min_derivative));
    SplineFlowKernel *copy = malloc(sizeof kernel);
    if (!copy) return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    *copy = kernel;
    *out = copy;
    return NULL;
}

static float softplus(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/// Knot positions from logits, as VITS computes them: softmax, the minimum size mixed in,
/// cumulative sum scaled to [-bound, bound], the ends set exactly. `knots` has bins + 1 entries.
static void knots(const float *logits, int64_t stride, int64_t bins, float divisor, float minimum, float bound, float *knots) {
    float scaled[MAX_BINS];
    float largest = -INFINITY;
    for (int64_t k = 0; k < bins; k++) {
        scaled[k] = logits[k * stride] / divisor;
        if (scaled[k] > largest) largest = scaled[k];
    }
    float total = 0;
    for (int64_t k = 0; k < bins; k++) total += scaled[k] = expf(scaled[k] - largest);
    float sum = 0;
    knots[0] = -bound;
    for (int64_t k = 0; k < bins; k++) {
        sum += minimum + (1 - minimum * (float)bins) * (scaled[k] / total);
        knots[k + 1] = 2 * bound * sum - bound;
    }
    knots[bins] = bound;
}

/// The spline's inverse at y, for one frame's parameters (`logits[k * stride]`, already masked).
static float inverse(const SplineFlowKernel *kernel, const float *logits, int64_t stride, float y) {
    const int64_t bins = kernel->bins;
    const float bound = kernel->tail_bound;
    if (!(y >= -bound && y <= bound)) return y;  // the linear tails: identity
    float xs[MAX_BINS + 1], ys[MAX_BINS + 1];
    knots(logits, stride, bins, kernel->logit_divisor, kernel->min_bin_width, bound, xs);
    knots(logits + bins * stride, stride, bins, kernel->logit_divisor, kernel->min_bin_height, bound, ys);
    // The bin: how many knots (the last raised by 1e-6, as VITS's searchsorted does) are ≤ y, less one.
    int64_t bin = -1;
    for (int64_t k = 0; k <= bins; k++) bin += y >= (k == bins ? ys[k] + 1e-6f : ys[k]);
    if (bin < 0) bin = 0;
    if (bin > bins - 1) bin = bins - 1;
    const float *derivative_logits = logits + 2 * bins * stride;
    const float d0 = kernel->min_derivative + softplus(bin == 0 ? kernel->edge_logit : derivative_logits[(bin - 1) * stride]);
    const float d1 = kernel->min_derivative + softplus(bin == bins - 1 ? kernel->edge_logit : derivative_logits[bin * stride]);
    const float width = xs[bin + 1] - xs[bin], height = ys[bin + 1] - ys[bin];
    const float delta = height / width;
    const float dy = y - ys[bin];
    const float curvature = d0 + d1 - 2 * delta;
    const float a = dy * curvature + height * (delta - d0);
    const float b = height * d0 - dy * curvature;
    const float c = -delta * dy;
    const float discriminant = b * b - 4 * a * c;
    const float root = (2 * c) / (-b - sqrtf(discriminant));
    return root * width + xs[bin];
}


static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    const SplineFlowKernel *kernel = opaque;
    const void *api = kernel->api;
    LarkTensor t[3];
    for (size_t i = 0; i < 3; i++) {
        const OrtValue *value = NULL;
        OrtStatus *status = KernelContext_GetInput(api)(context, i, &value);
        if (status) return status;
        if (!value) return failure(api, ORT_INVALID_ARGUMENT, "X, H and mask are required");
        if ((status = lark_read_tensor(api, value, "SplineFlowInverse", &t[i]))) return status;
        if (t[i].rank != 3) return failure(api, ORT_INVALID_ARGUMENT, "inputs must be [N, C, T]");
    }
    const int64_t batch = t[0].dims[0], channels = t[0].dims[1], length = t[0].dims[2];
    const int64_t half = channels / 2, parameters = 3 * kernel->bins - 1;
    if (channels % 2 != 0) return failure(api, ORT_INVALID_ARGUMENT, "X must have an even number of channels");
    if (t[1].dims[0] != batch || t[1].dims[1] != half * parameters || t[1].dims[2] != length)
        return failure(api, ORT_INVALID_ARGUMENT, "H must be [N, (C / 2) * (3 * bins - 1), T]");
    if (t[2].dims[0] != batch || t[2].dims[1] != 1 || t[2].dims[2] != length)
        return failure(api, ORT_INVALID_ARGUMENT, "mask must be [N, 1, T]");

    OrtValue *output;
    OrtStatus *status = KernelContext_GetOutput(api)(context, 0, t[0].dims, 3, &output);
    if (status) return status;
    float *y;
    if ((status = GetTensorMutableData(api)(output, (void **)&y))) return status;

    float masked[3 * MAX_BINS];
    for (int64_t n = 0; n < batch; n++) {
        const float *x = t[0].data + n * channels * length, *mask = t[2].data + n * length;
        const float *h = t[1].data + n * half * parameters * length;
        float *out = y + n * channels * length;
        for (int64_t j = 0; j < half; j++) {
            for (int64_t s = 0; s < length; s++) {
                const float m = mask[s];
                out[j * length + s] = x[j * length + s] * m;
                for (int64_t k = 0; k < parameters; k++) masked[k] = h[(j * parameters + k) * length + s] * m;
                out[(half + j) * length + s] = inverse(kernel, masked, 1, x[(half + j) * length + s]) * m;
            }
        }
    }
    return NULL;
}

const LarkOperator lark_spline_flow_inverse_op = LARK_OPERATOR("SplineFlowInverse", 3, 3, 1, create_kernel, compute, lark_operator_free_kernel);
