// DirectConv as an ONNX Runtime custom operator (domain "ai.lark"), through the C API's
// custom-op interface: an OrtCustomOp table of callbacks, added to a custom-op domain, which
// is added to each session's options. The domain also holds SplineFlowInverse (spline_flow.c) and
// ChannelLayerNorm (channel_layer_norm.c), RelativeKeyLogits and RelativeValueWeights
// (relative_attention.c), GatedTanh (gated_tanh.c), SubpixelInterleave (subpixel_interleave.c) and
// ResidualStack (residual_stack.c).
// What this file needs of ONNX Runtime's C API is declared in ort_custom_op.h.
#include "direct_conv.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ort_custom_op.h"

// MARK: - The kernel

typedef struct DirectConvKernel {
    const void *api;
    int64_t dilation, pad_begin, pad_end;
    int has_pre_alpha, has_post_alpha;
    float pre_alpha, post_alpha;
    LarkConvBlocks blocks;
    // bf16 (lark_bf16_pack_weights) and FP32 on AVX-512 (lark_pack_weights): W packed once, on
    // the first run. W is an initializer in every graph Lark writes, so its data stays at one
    // address for the session's life; a W at another address is packed for that run alone.
    int bf16, fp32_packed;
    // Optional F(winograd_outputs, winograd_taps) (winograd.c; FP32): then the cached weights are
    // W transformed for that plan, and each time tile is one lark_winograd_conv sub-problem.
    int64_t winograd_outputs, winograd_taps;
    // A graph that holds W in the form this kernel reads (attribute prepared_weights, a
    // LarkPreparedWeights; weight_shape [M, C, K]): W is read in place, nothing is prepared.
    int64_t prepared_form, weight_shape[3];
    // A sub-pixel output (attributes subpixel_stride, subpixel_pads; LarkDirectConv.subpixel): 0, none.
    int64_t subpixel, subpixel_pads[2];
    pthread_mutex_t packing;
    const float *packed_from;
    void *packed;
} DirectConvKernel;

static OrtStatus *failure(const void *api, int code, const char *message) { return lark_operator_failure(api, code, "DirectConv", message); }

size_t lark_ints_attribute(const void *api, const OrtKernelInfo *info, const char *name, int64_t *values, size_t capacity) {
    size_t count = 0;
    OrtStatus *status = KernelInfoGetAttributeArray_int64(api)(info, name, NULL, &count);
    if (status) {
        ReleaseStatus(api)(status);
        return 0;
    }
    if (count == 0 || count > capacity) return count;
    status = KernelInfoGetAttributeArray_int64(api)(info, name, values, &count);
    if (status) {
        ReleaseStatus(api)(status);
        return 0;
    }
    return count;
}

int lark_float_attribute(const void *api, const OrtKernelInfo *info, const char *name, float *value) {
    OrtStatus *status = KernelInfoGetAttribute_float(api)(info, name, value);
    if (status) {
        ReleaseStatus(api)(status);
        return 0;
    }
    return 1;
}

int lark_int_attribute(const void *api, const OrtKernelInfo *info, const char *name, int64_t *value) {
    OrtStatus *status = KernelInfoGetAttribute_int64(api)(info, name, value);
    if (status) {
        ReleaseStatus(api)(status);
        return 0;
    }
    return 1;
}

/// A 1-D attribute given as [v] or, for the 2-D form of height one, [1, v] (`leading` for the height).
static int one_dimensional(const int64_t *values, size_t count, int64_t leading, int64_t *out) {
    if (count == 1) *out = values[0];
    else if (count == 2 && values[0] == leading) *out = values[1];
    else return 0;
    return 1;
}

/// The form of W a kernel of these settings prepares for itself: NONE when it reads plain W, or
/// when its packed FP32 form leaves output channels past the last whole block to plain W.
LarkPreparedWeights lark_prepared_form(int bf16, int fp32_packed, int winograd, int64_t output_channels) {
    if (winograd) return fp32_packed ? LARK_PREPARED_WINOGRAD_PACKED : LARK_PREPARED_WINOGRAD;
    if (bf16) return LARK_PREPARED_BF16_PACKED;
    if (fp32_packed && output_channels % LARK_PACKED_CHANNELS == 0) return LARK_PREPARED_FP32_PACKED;
    return LARK_PREPARED_NONE;
}

/// The size, in floats (bf16: 32-bit units), of W [M, C, K] in `form` (`plan` for the Winograd forms).
int64_t lark_prepared_floats(LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k) {
    switch (form) {
    case LARK_PREPARED_FP32_PACKED: return lark_packed_weight_floats(m, c, k);
    case LARK_PREPARED_BF16_PACKED: return lark_bf16_packed_weight_units(m, c, k);
    case LARK_PREPARED_WINOGRAD: return plan ? lark_winograd_weight_floats(plan, m, c, 0) : 0;
    case LARK_PREPARED_WINOGRAD_PACKED: return plan ? lark_winograd_weight_floats(plan, m, c, 1) : 0;
    default: return 0;
    }
}

int64_t lark_prepared_rows(LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k) {
    return (lark_prepared_floats(form, plan, m, c, k) + c * k - 1) / (c * k);
}

/// Whether `w` is a prepared W of `form` for [M, C, K]: [R, C·K] with lark_prepared_rows' R.
int lark_prepared_shape_fits(const LarkTensor *w, LarkPreparedWeights form, const LarkWinograd *plan, int64_t m, int64_t c, int64_t k) {
    return w->rank == 2 && w->dims[1] == c * k && w->dims[0] == lark_prepared_rows(form, plan, m, c, k);
}

float *lark_direct_conv_prepared_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, int64_t path,
                                         int64_t bf16, int64_t winograd_outputs, int64_t winograd_taps, int64_t *form, int64_t *floats) {
    *form = LARK_PREPARED_NONE, *floats = 0;
    if (output_channels < 1 || input_channels < 1 || kernel < 1 || !lark_kernel_path_available((LarkKernelPath)path)) return NULL;
    if (bf16 && (!lark_bf16_available() || winograd_outputs > 0)) return NULL;
    LarkWinograd plan;
    if (winograd_outputs > 0 && lark_winograd_plan(&plan, kernel, winograd_outputs, winograd_taps)) return NULL;
    int packed;
    (void)lark_conv_blocks_for((LarkKernelPath)path, &packed);
    const int fp32_packed = !bf16 && packed;
    const LarkPreparedWeights chosen = lark_prepared_form(bf16 != 0, fp32_packed, winograd_outputs > 0, output_channels);
    const int64_t count = lark_prepared_rows(chosen, winograd_outputs > 0 ? &plan : NULL, output_channels, input_channels, kernel) * input_channels * kernel;
    if (chosen == LARK_PREPARED_NONE || count < 1) return NULL;
    // Zeroed: the forms' padding is then the same bytes on every build of a cache entry.
    float *out = calloc((size_t)count, sizeof(float));
    if (!out) return NULL;
    switch (chosen) {
    case LARK_PREPARED_FP32_PACKED: lark_pack_weights(w, output_channels, input_channels, kernel, out); break;
    case LARK_PREPARED_BF16_PACKED: lark_bf16_pack_weights(w, output_channels, input_channels, kernel, (uint32_t *)out); break;
    default:
        if (lark_winograd_weights(&plan, w, output_channels, input_channels, kernel, fp32_packed, out)) {
            free(out);
            return NULL;
        }
    }
    *form = chosen, *floats = count;
    return out;
}

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op;
    DirectConvKernel kernel = {.api = api, .dilation = 1};
    int64_t values[4];
    size_t count;
    if ((count = lark_ints_attribute(api, info, "dilations", values, 4)) && !one_dimensional(values, count, 1, &kernel.dilation))
        return failure(api, ORT_INVALID_ARGUMENT, "dilations must be [d] or [1, d]");
    if ((count = lark_ints_attribute(api, info, "strides", values, 4))) {
        int64_t stride;
        if (!one_dimensional(values, count, 1, &stride) || stride != 1) return failure(api, ORT_INVALID_ARGUMENT, "only stride 1 is supported");
    }
    if ((count = lark_ints_attribute(api, info, "pads", values, 4))) {
        if (count == 2) kernel.pad_begin = values[0], kernel.pad_end = values[1];
        else if (count == 4 && values[0] == 0 && values[2] == 0) kernel.pad_begin = values[1], kernel.pad_end = values[3];
        else return failure(api, ORT_INVALID_ARGUMENT, "pads must be [b, e] or [0, b, 0, e]");
    }
    int64_t group = 1, path = LARK_PATH_BEST;
    if (lark_int_attribute(api, info, "group", &group) && group != 1) return failure(api, ORT_INVALID_ARGUMENT, "only group 1 is supported");
    kernel.has_pre_alpha = lark_float_attribute(api, info, "pre_alpha", &kernel.pre_alpha);
    kernel.has_post_alpha = lark_float_attribute(api, info, "post_alpha", &kernel.post_alpha);
    lark_int_attribute(api, info, "lark_kernel_path", &path);
    int64_t bf16 = 0;
    lark_int_attribute(api, info, "bf16", &bf16);
    if (bf16 && !lark_bf16_available()) return failure(api, ORT_INVALID_ARGUMENT, "bf16 needs a CPU with AVX512-BF16");
    kernel.bf16 = bf16 != 0;
    if (!lark_kernel_path_available((LarkKernelPath)path)) return failure(api, ORT_INVALID_ARGUMENT, "lark_kernel_path names a path this CPU lacks");
    if (kernel.dilation < 1 || kernel.pad_begin < 0 || kernel.pad_end < 0) return failure(api, ORT_INVALID_ARGUMENT, "negative padding or dilation");
    if (lark_int_attribute(api, info, "winograd_outputs", &kernel.winograd_outputs) && kernel.winograd_outputs > 0) {
        LarkWinograd plan;
        if (kernel.bf16) return failure(api, ORT_INVALID_ARGUMENT, "Winograd convolutions are FP32 only");
        if (!lark_int_attribute(api, info, "winograd_taps", &kernel.winograd_taps) ||
            lark_winograd_plan(&plan, kernel.winograd_taps, kernel.winograd_outputs, kernel.winograd_taps))
            return failure(api, ORT_INVALID_ARGUMENT, "a Winograd size is out of range (at most 8 outputs and 12 points)");
    } else {
        kernel.winograd_outputs = 0;
    }
    if (lark_int_attribute(api, info, "subpixel_stride", &kernel.subpixel) && kernel.subpixel != 0) {
        if (kernel.subpixel < 2) return failure(api, ORT_INVALID_ARGUMENT, "subpixel_stride must be at least 2");
        if (lark_ints_attribute(api, info, "subpixel_pads", kernel.subpixel_pads, 2) != 2 || kernel.subpixel_pads[0] < 0 ||
            kernel.subpixel_pads[1] < 0)
            return failure(api, ORT_INVALID_ARGUMENT, "subpixel_stride needs subpixel_pads [b, e], not negative");
        if (kernel.bf16 || kernel.winograd_outputs || kernel.has_post_alpha)
            return failure(api, ORT_INVALID_ARGUMENT, "a sub-pixel output takes no bf16, Winograd or post_alpha");
    } else {
        kernel.subpixel = 0;
    }
    int packed;
    kernel.blocks = lark_conv_blocks_for((LarkKernelPath)path, &packed);
    kernel.fp32_packed = !kernel.bf16 && packed;
    if (lark_int_attribute(api, info, "prepared_weights", &kernel.prepared_form) && kernel.prepared_form != LARK_PREPARED_NONE) {
        if (lark_ints_attribute(api, info, "weight_shape", kernel.weight_shape, 3) != 3 || kernel.weight_shape[0] < 1 ||
            kernel.weight_shape[1] < 1 || kernel.weight_shape[2] < 1)
            return failure(api, ORT_INVALID_ARGUMENT, "prepared_weights needs weight_shape [M, C, K]");
        if (kernel.prepared_form != lark_prepared_form(kernel.bf16, kernel.fp32_packed, kernel.winograd_outputs > 0, kernel.weight_shape[0]))
            return failure(api, ORT_INVALID_ARGUMENT, "prepared_weights names a form this CPU's kernel does not read (prepared for another CPU or path)");
    } else {
        kernel.prepared_form = LARK_PREPARED_NONE;
    }
    DirectConvKernel *copy = malloc(sizeof kernel);
    if (!copy) return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    *copy = kernel;
    pthread_mutex_init(&copy->packing, NULL);
    *out = copy;
    return NULL;
}

/// Reads [N, C, T] or [N, C, 1, T] as batch, channels and length.
static int as_sequence(const LarkTensor *t, int64_t *batch, int64_t *channels, int64_t *length) {
    if (t->rank == 3) *batch = t->dims[0], *channels = t->dims[1], *length = t->dims[2];
    else if (t->rank == 4 && t->dims[2] == 1) *batch = t->dims[0], *channels = t->dims[1], *length = t->dims[3];
    else return 0;
    return 1;
}

typedef struct Job {
    const LarkDirectConv *conv;
    int bf16, fp32_packed;
    const void *packed;  // bf16 or FP32 packed weights, or NULL for the FP32 path of conv->blocks
    const LarkWinograd *plan;  // with `packed` transformed for it, or NULL
    int64_t tile;  // output samples per task with a plan
    atomic_int failed;
} Job;

/// Task `task` (batch item × time tile) of a Winograd DirectConv: the tile as a sub-problem of
/// one batch item that reads and writes the full tensors through the row strides.
static int winograd_task(const Job *job, int64_t task) {
    const LarkDirectConv *full = job->conv;
    const int64_t tiles = (full->output_length + job->tile - 1) / job->tile;
    const int64_t n = task / tiles, t0 = task % tiles * job->tile;
    const int64_t length = full->output_length - t0 < job->tile ? full->output_length - t0 : job->tile;
    const int64_t cin = full->input_channels, cout = full->output_channels;
    int64_t base = t0 - full->pad_begin;  // the first input sample the tile reads
    if (base < 0) base = 0;
    if (base > full->input_length) base = full->input_length;
    LarkDirectConv conv = *full;
    conv.batch = 1, conv.input_length = full->input_length - base, conv.output_length = length;
    conv.pad_begin = full->pad_begin - (t0 - base);
    conv.x = full->x + n * cin * lark_x_row(full) + base, conv.x_row = lark_x_row(full);
    conv.y = full->y + n * cout * lark_y_row(full) + t0, conv.y_row = lark_y_row(full);
    if (full->z) conv.z = full->z + n * cout * lark_z_row(full) + t0, conv.z_row = lark_z_row(full);
    conv.scratch_bytes = lark_winograd_scratch_bytes(job->plan, cin, cout, full->dilation);
    if (!(conv.scratch = lark_thread_scratch(conv.scratch_bytes))) conv.scratch_bytes = 0;
    return lark_winograd_conv(&conv, job->plan, job->packed, job->fp32_packed);
}

static void run_task(void *data, size_t task) {
    Job *job = data;
    if (job->plan) {
        if (winograd_task(job, (int64_t)task) != 0) atomic_store(&job->failed, 1);
        return;
    }
    // The task's padded input copy in this thread's scratch, not a fresh allocation.
    LarkDirectConv conv = *job->conv;
    conv.scratch_bytes = lark_direct_conv_scratch_bytes(&conv);
    if (!(conv.scratch = lark_thread_scratch(conv.scratch_bytes))) conv.scratch_bytes = 0;
    const int result = !job->packed ? lark_direct_conv_task(&conv, (int64_t)task)
                       : job->bf16  ? lark_direct_conv_bf16_task(&conv, job->packed, (int64_t)task)
                                    : lark_direct_conv_packed_task(&conv, job->packed, (int64_t)task);
    if (result != 0) atomic_store(&job->failed, 1);
}

static void *packed_weights(const LarkDirectConv *conv, int bf16, int fp32_packed, const LarkWinograd *plan) {
    const int64_t m = conv->output_channels, c = conv->input_channels, k = conv->kernel;
    if (plan) {
        float *transformed = malloc((size_t)lark_winograd_weight_floats(plan, m, c, fp32_packed) * sizeof(float));
        if (transformed && lark_winograd_weights(plan, conv->w, m, c, k, fp32_packed, transformed)) free(transformed), transformed = NULL;
        return transformed;
    }
    if (bf16) {
        uint32_t *packed = malloc((size_t)lark_bf16_packed_weight_units(m, c, k) * sizeof(uint32_t));
        if (packed) lark_bf16_pack_weights(conv->w, m, c, k, packed);
        return packed;
    }
    // One float more than needed, so that a convolution with no whole block still gets a pointer.
    float *packed = malloc((size_t)(lark_packed_weight_floats(m, c, k) + 1) * sizeof(float));
    if (packed) lark_pack_weights(conv->w, m, c, k, packed);
    return packed;
}

typedef struct Preparation {
    const LarkDirectConv *conv;
    const DirectConvKernel *kernel;
    const LarkWinograd *plan;
} Preparation;

static void *prepare(void *context) {
    const Preparation *p = context;
    return packed_weights(p->conv, p->kernel->bf16, p->kernel->fp32_packed, p->plan);
}

/// The kernel's cached packed weights for `conv->w` (the process's copy, shared with the other
/// sessions' kernels: shared_prepared.c); else (`*owned` set) a copy packed for this run.
static const void *cached_weights(DirectConvKernel *kernel, const LarkDirectConv *conv, const LarkWinograd *plan, void **owned) {
    *owned = NULL;
    pthread_mutex_lock(&kernel->packing);
    if (!kernel->packed) {
        const int64_t fields[] = {'D', conv->output_channels, conv->input_channels, conv->kernel, kernel->bf16, kernel->fp32_packed,
                                  plan ? plan->m : 0, plan ? plan->r : 0};
        Preparation preparation = {.conv = conv, .kernel = kernel, .plan = plan};
        kernel->packed = lark_acquire_prepared(conv->w, lark_prepared_key(fields, (int)(sizeof fields / sizeof *fields)), prepare, &preparation);
        if (kernel->packed) kernel->packed_from = conv->w;
    }
    const void *packed = kernel->packed_from == conv->w ? kernel->packed : NULL;
    pthread_mutex_unlock(&kernel->packing);
    if (!packed) packed = *owned = packed_weights(conv, kernel->bf16, kernel->fp32_packed, plan);
    return packed;
}

static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    DirectConvKernel *kernel = opaque;
    const void *api = kernel->api;
    size_t inputs = 0;
    OrtStatus *status = KernelContext_GetInputCount(api)(context, &inputs);
    if (status) return status;
    LarkTensor t[4] = {0};
    int present[4] = {0};
    for (size_t i = 0; i < 4 && i < inputs; i++) {
        const OrtValue *value = NULL;
        if ((status = KernelContext_GetInput(api)(context, i, &value))) return status;
        if (!value) continue;
        if ((status = lark_read_tensor(api, value, "DirectConv", &t[i]))) return status;
        present[i] = 1;
    }
    if (!present[0] || !present[1]) return failure(api, ORT_INVALID_ARGUMENT, "X and W are required");

    LarkDirectConv conv = {.dilation = kernel->dilation, .pad_begin = kernel->pad_begin, .blocks = kernel->blocks};
    if (!as_sequence(&t[0], &conv.batch, &conv.input_channels, &conv.input_length))
        return failure(api, ORT_INVALID_ARGUMENT, "X must be [N, C, T] or [N, C, 1, T]");
    if (kernel->prepared_form) {
        if (t[1].rank != 2) return failure(api, ORT_INVALID_ARGUMENT, "a prepared W must be 2-D");
        if (kernel->weight_shape[1] != conv.input_channels) return failure(api, ORT_INVALID_ARGUMENT, "weight_shape's input channels differ from X's");
        conv.output_channels = kernel->weight_shape[0];
        conv.kernel = kernel->weight_shape[2];
    } else {
        if (t[1].rank != t[0].rank || (t[1].rank == 4 && t[1].dims[2] != 1))
            return failure(api, ORT_INVALID_ARGUMENT, "W must be [M, C, K] (or [M, C, 1, K] for a 4-D X)");
        if (t[1].dims[1] != conv.input_channels) return failure(api, ORT_INVALID_ARGUMENT, "W's input channels differ from X's");
        conv.output_channels = t[1].dims[0];
        conv.kernel = t[1].dims[t[1].rank - 1];
    }
    conv.output_length = conv.input_length + kernel->pad_begin + kernel->pad_end - kernel->dilation * (conv.kernel - 1);
    if (conv.output_length < 1 || conv.kernel < 1) return failure(api, ORT_INVALID_ARGUMENT, "the input is shorter than the kernel's reach");
    if (present[2]) {
        if (t[2].rank != 1 || t[2].dims[0] != conv.output_channels) return failure(api, ORT_INVALID_ARGUMENT, "B must be [M]");
        conv.b = t[2].data;
    }
    int64_t dims[4] = {conv.batch, conv.output_channels, 1, 1};
    size_t rank = t[0].rank;
    dims[rank - 1] = conv.output_length;
    if (kernel->subpixel) {
        // Y: the phases side by side in time, cropped (LarkDirectConv.subpixel).
        conv.subpixel = kernel->subpixel, conv.subpixel_crop = kernel->subpixel_pads[0];
        conv.subpixel_length = conv.output_length * kernel->subpixel - kernel->subpixel_pads[0] - kernel->subpixel_pads[1];
        if (conv.output_channels % kernel->subpixel) return failure(api, ORT_INVALID_ARGUMENT, "W's output channels are not a whole number of phases");
        if (conv.subpixel_length < 1) return failure(api, ORT_INVALID_ARGUMENT, "subpixel_pads crop more than the output");
        if (present[3]) return failure(api, ORT_INVALID_ARGUMENT, "a sub-pixel output takes no Z");
        dims[1] = conv.output_channels / kernel->subpixel, dims[rank - 1] = conv.y_row = conv.subpixel_length;
    }
    if (present[3]) {
        if (t[3].rank != rank || memcmp(t[3].dims, dims, rank * sizeof(int64_t)) != 0)
            return failure(api, ORT_INVALID_ARGUMENT, "Z must have the output's shape");
        conv.z = t[3].data;
    }
    conv.has_pre_alpha = kernel->has_pre_alpha, conv.pre_alpha = kernel->pre_alpha;
    conv.has_post_alpha = kernel->has_post_alpha, conv.post_alpha = kernel->post_alpha;
    conv.x = t[0].data, conv.w = kernel->prepared_form ? NULL : t[1].data;

    OrtValue *output;
    if ((status = KernelContext_GetOutput(api)(context, 0, dims, rank, &output))) return status;
    if ((status = GetTensorMutableData(api)(output, (void **)&conv.y))) return status;

    Job job = {.conv = &conv, .bf16 = kernel->bf16, .fp32_packed = kernel->fp32_packed};
    LarkWinograd plan;
    int64_t tasks = lark_direct_conv_tasks(&conv);
    if (kernel->winograd_outputs) {
        if (lark_winograd_plan(&plan, conv.kernel, kernel->winograd_outputs, kernel->winograd_taps))
            return failure(api, ORT_INVALID_ARGUMENT, "the Winograd size does not fit W's kernel (r = m when the kernel is longer than r)");
        job.plan = &plan;
        job.tile = lark_winograd_tile_samples(&plan, conv.input_channels, conv.output_channels);
        // A short sequence (the flow's sentences: 1-5 chunks) in at least 4 tiles, so that a second
        // thread has work; no shorter than one packed block of samples.
        if (conv.batch * ((conv.output_length + job.tile - 1) / job.tile) < 4) {
            const int64_t quarter = (conv.output_length + 3) / 4;
            job.tile = (quarter + LARK_PACKED_SAMPLES - 1) / LARK_PACKED_SAMPLES * LARK_PACKED_SAMPLES;
            if (job.tile < 2 * LARK_PACKED_SAMPLES) job.tile = 2 * LARK_PACKED_SAMPLES;
        }
        tasks = conv.batch * ((conv.output_length + job.tile - 1) / job.tile);
    }
    void *owned = NULL;
    if (kernel->prepared_form) {
        if (!lark_prepared_shape_fits(&t[1], (LarkPreparedWeights)kernel->prepared_form, job.plan, conv.output_channels, conv.input_channels, conv.kernel))
            return failure(api, ORT_INVALID_ARGUMENT, "a prepared W's size does not fit weight_shape and the Winograd size");
        job.packed = t[1].data;
    } else if ((kernel->bf16 || kernel->fp32_packed || job.plan) && !(job.packed = cached_weights(kernel, &conv, job.plan, &owned))) {
        return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    }
    atomic_init(&job.failed, 0);
    if (tasks == 1) {
        run_task(&job, 0);
    } else if ((status = KernelContext_ParallelFor(api)(context, run_task, (size_t)tasks, 0, &job))) {
        free(owned);
        return status;
    }
    free(owned);
    return atomic_load(&job.failed) ? failure(api, ORT_RUNTIME_EXCEPTION, "out of memory") : NULL;
}

static void destroy_kernel(void *opaque) {
    DirectConvKernel *kernel = opaque;
    pthread_mutex_destroy(&kernel->packing);
    lark_release_prepared(kernel->packed);
    free(kernel);
}
static const LarkOperator direct_conv_op = LARK_OPERATOR("DirectConv", 4, 2, 1, create_kernel, compute, destroy_kernel);

// MARK: - The callbacks every ai.lark operator shares

OrtStatus *lark_read_tensor(const void *api, const OrtValue *value, const char *operator_name, LarkTensor *tensor) {
    OrtShapeInfo *info;
    OrtStatus *status = GetTensorTypeAndShape(api)(value, &info);
    if (status) return status;
    status = GetDimensionsCount(api)(info, &tensor->rank);
    if (!status && tensor->rank > 4) status = lark_operator_failure(api, ORT_INVALID_ARGUMENT, operator_name, "a tensor of more than 4 dimensions");
    if (!status) status = GetDimensions(api)(info, tensor->dims, tensor->rank);
    ReleaseShapeInfo(api)(info);
    if (!status) status = GetTensorMutableData(api)((OrtValue *)value, (void **)&tensor->data);
    return status;
}

static const LarkOperator *operator_of(const LarkOrtCustomOp *op) { return (const LarkOperator *)op; }
const char *lark_operator_name(const LarkOrtCustomOp *op) { return operator_of(op)->name; }
const char *lark_operator_provider(const LarkOrtCustomOp *op) { (void)op; return NULL; }  // CPU
int lark_operator_float_type(const LarkOrtCustomOp *op, size_t index) { (void)op, (void)index; return ELEMENT_FLOAT; }
size_t lark_operator_inputs(const LarkOrtCustomOp *op) { return operator_of(op)->inputs; }
size_t lark_operator_outputs(const LarkOrtCustomOp *op) { return operator_of(op)->outputs; }
int lark_operator_input_characteristic(const LarkOrtCustomOp *op, size_t index) {
    return index < operator_of(op)->required_inputs ? CHARACTERISTIC_REQUIRED : CHARACTERISTIC_OPTIONAL;
}
int lark_operator_output_characteristic(const LarkOrtCustomOp *op, size_t index) { (void)op, (void)index; return CHARACTERISTIC_REQUIRED; }
int lark_operator_default_memory(const LarkOrtCustomOp *op, size_t index) { (void)op, (void)index; return 0; }
int lark_operator_one(const LarkOrtCustomOp *op) { (void)op; return 1; }
void lark_operator_free_kernel(void *kernel) { free(kernel); }
OrtStatus *lark_operator_failure(const void *api, int code, const char *operator_name, const char *message) {
    char text[256];
    snprintf(text, sizeof text, "ai.lark.%s: %s", operator_name, message);
    return CreateStatus(api)(code, text);
}

// MARK: - Registration

static pthread_once_t domain_once = PTHREAD_ONCE_INIT;
static OrtCustomOpDomain *domain;
static OrtStatus *domain_status;
static const void *domain_api;

static void create_domain(void) {
    const void *api = domain_api;
    domain_status = CreateCustomOpDomain(api)("ai.lark", &domain);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &direct_conv_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_spline_flow_inverse_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_channel_layer_norm_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_relative_key_logits_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_relative_value_weights_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_gated_tanh_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_subpixel_interleave_op.table);
    if (!domain_status) domain_status = CustomOpDomain_Add(api)(domain, &lark_residual_stack_op.table);
}

void *lark_kernels_register(const void *ort_api, void *session_options) {
    domain_api = ort_api;
    pthread_once(&domain_once, create_domain);
    if (domain_status) return failure(ort_api, ORT_RUNTIME_EXCEPTION, "the ai.lark domain could not be created");
    return AddCustomOpDomain(ort_api)((OrtSessionOptions *)session_options, domain);
}
