// ResidualStack (domain "ai.lark"): one HiFi-GAN multi-receptive-field level, the residual blocks
// that read the same input after an upsampling, their sum, its scale (1/3 for three blocks) and
// optionally the LeakyRelu after it, as one operator.
//
//   inputs  X [N, C, T] (or [N, C, 1, T]), then for every convolution, in order, W [C, C, K] (or
//           [C, C, 1, K]) and B [C];
//   attributes block_steps (ints): steps per block; step_convs (ints): convolutions per step, one
//           entry per step of all blocks in order (1: HiFi-GAN's ResBlock2 step
//           x + conv(lrelu(x)); 2: ResBlock1's x + conv2(lrelu(conv1(lrelu(x))))); kernels and
//           dilations (ints): one per convolution (same-length padding, odd kernels);
//           alpha (float, default 0.1): the blocks' LeakyRelu slope; scale (float, default 1);
//           optional post_alpha (float): a LeakyRelu after the scale; optional int bf16;
//           optional int tile: time tile in samples (default by channel count);
//           optional int lark_kernel_path (LarkKernelPath), for tests;
//           optional winograd_outputs and winograd_taps (ints, one per convolution): F(m, r) for
//           the convolutions with m > 0 (winograd.c; FP32 only), DirectConv's kernel for m = 0;
//           optional prepared_weights (ints, one per convolution, LarkPreparedWeights): a
//           convolution with a form there has that form of its W as an [R, C·K] input in W's
//           place (lark_direct_conv_prepared_weights), read in place;
//           optional int post_kernel (odd): a one-channel convolution of the level's result
//           (HiFi-GAN's conv_post), whose weight PW [1, C, K] (or [1, C, 1, K]) and optional bias
//           PB [1] follow the convolutions' inputs.
//   output  Y, X's shape: post_lrelu(scale · Σ_blocks block(X)); with post_kernel, Y [N, 1, T]
//           (or [N, 1, 1, T]) = PW ⊛ that + PB (same-length padding, dilation 1).
//
// Why: ONNX Runtime runs each of a level's convolutions as a separate node over the whole
// sequence, with LeakyRelu, residual Add and layout reorders between them: every intermediate
// (megabytes per sentence at the high rates) goes out to memory and back once per node. Here each
// time tile runs every block's steps over the tile plus the halo its later steps read (clipped to
// the sequence; outside [0, T) every intermediate counts as zero, as the unfused graph pads each
// convolution's input), in scratch that stays in L2, and the blocks' sum goes straight into Y.
// The convolutions themselves are DirectConv's (direct_conv*.c) on tile-sized sub-problems that
// read X and write Y in place through row strides. With a post convolution the level's result
// never leaves the tile's scratch: at the full sample rate it was a C-channel tensor written to
// memory only to be read back by that one-channel convolution.
#include "direct_conv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ort_custom_op.h"
#include "widest_vectors.h"

#define MAX_CONVS 24
#define MAX_BLOCKS 8
#define MAX_STEPS 24

typedef enum { FP32_GENERIC, FP32_PACKED, BF16 } Path;

typedef struct StackKernel {
    const void *api;
    int64_t blocks, convs;
    int64_t block_first[MAX_BLOCKS + 1];  // block b's convolutions are [block_first[b], block_first[b + 1])
    int64_t kernel[MAX_CONVS], dilation[MAX_CONVS];
    int64_t ends_step[MAX_CONVS];  // 1 when the convolution is its step's last (its result gets the residual)
    int64_t reach_after[MAX_CONVS];  // samples each side the rest of its block reads beyond its output
    int64_t halo;  // the widest block's whole reach: samples each side a tile's scratch holds beyond it
    float alpha, scale, post_alpha;
    int has_post;
    int64_t post_kernel, post_reach;  // the post convolution's taps (0: none) and its reach each side
    int64_t tile;
    Path path;
    LarkConvBlocks conv_blocks;
    // Weights packed once, on the first run, for the packed FP32 or the bf16 path (see DirectConv),
    // or transformed for the convolution's Winograd plan.
    pthread_mutex_t packing;
    const float *packed_from[MAX_CONVS];
    void *packed[MAX_CONVS];
    int winograd[MAX_CONVS];
    LarkWinograd plan[MAX_CONVS];
    int64_t prepared_form[MAX_CONVS];  // W given in this form (LarkPreparedWeights), or NONE
} StackKernel;

static OrtStatus *failure(const void *api, int code, const char *message) { return lark_operator_failure(api, code, "ResidualStack", message); }

/// Whether a weight is [·, ·, K] or [·, ·, 1, K] (the plain and the 4-D graph's forms).
static int has_kernel(const LarkTensor *w, int64_t k) {
    return (w->rank == 3 && w->dims[2] == k) || (w->rank == 4 && w->dims[2] == 1 && w->dims[3] == k);
}

/// The default time tile, by measurement on joe's levels (bench/results/residual-stack.md: 768 to
/// 6144 samples were within a few percent of each other at every channel count; these were at the
/// top or next to it): long enough that the halos (up to 45 samples a side) cost little, short
/// enough that the blocks' two rows of scratch stay in a 1 MB L2 and a sentence has several tiles
/// per thread. Multiples of DirectConv's own tile.
static int64_t default_tile(int64_t channels) {
    if (channels <= 32) return 6 * LARK_TILE_SAMPLES;
    if (channels <= 64) return 4 * LARK_TILE_SAMPLES;
    return 2 * LARK_TILE_SAMPLES;
}

/// `reach_after` and `halo` from the blocks' convolutions (`block_first`, `kernel`, `dilation`).
static void set_reaches(StackKernel *kernel) {
    kernel->halo = 0;
    for (int64_t b = 0; b < kernel->blocks; b++) {
        int64_t after = kernel->post_reach;  // the post convolution reads the level's result that far beyond the tile
        for (int64_t j = kernel->block_first[b + 1] - 1; j >= kernel->block_first[b]; j--) {
            kernel->reach_after[j] = after;
            after += (kernel->kernel[j] - 1) / 2 * kernel->dilation[j];
        }
        if (after > kernel->halo) kernel->halo = after;
    }
}

static OrtStatus *create_kernel(const LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **out) {
    (void)op;
    StackKernel kernel = {.api = api, .alpha = 0.1f, .scale = 1.0f};
    int64_t block_steps[MAX_BLOCKS], step_convs[MAX_STEPS], kernels[MAX_CONVS], dilations[MAX_CONVS];
    const size_t blocks = lark_ints_attribute(api, info, "block_steps", block_steps, MAX_BLOCKS);
    const size_t steps = lark_ints_attribute(api, info, "step_convs", step_convs, MAX_STEPS);
    const size_t convs = lark_ints_attribute(api, info, "kernels", kernels, MAX_CONVS);
    if (blocks < 1 || blocks > MAX_BLOCKS) return failure(api, ORT_INVALID_ARGUMENT, "block_steps must list 1 to 8 blocks");
    if (steps < 1 || steps > MAX_STEPS) return failure(api, ORT_INVALID_ARGUMENT, "step_convs must list 1 to 24 steps");
    if (convs < 1 || convs > MAX_CONVS) return failure(api, ORT_INVALID_ARGUMENT, "kernels must list 1 to 24 convolutions");
    if (lark_ints_attribute(api, info, "dilations", dilations, MAX_CONVS) != convs)
        return failure(api, ORT_INVALID_ARGUMENT, "dilations must list one value per convolution");
    size_t step = 0, conv = 0;
    for (size_t b = 0; b < blocks; b++) {
        kernel.block_first[b] = (int64_t)conv;
        if (block_steps[b] < 1) return failure(api, ORT_INVALID_ARGUMENT, "a block needs at least one step");
        for (int64_t s = 0; s < block_steps[b]; s++, step++) {
            if (step >= steps || step_convs[step] < 1 || step_convs[step] > 2)
                return failure(api, ORT_INVALID_ARGUMENT, "step_convs must give 1 or 2 for every step of block_steps");
            for (int64_t j = 0; j < step_convs[step]; j++, conv++) {
                if (conv >= convs) return failure(api, ORT_INVALID_ARGUMENT, "kernels lists fewer convolutions than step_convs");
                if (kernels[conv] < 1 || kernels[conv] % 2 == 0 || dilations[conv] < 1)
                    return failure(api, ORT_INVALID_ARGUMENT, "kernels must be odd and dilations positive");
                kernel.kernel[conv] = kernels[conv], kernel.dilation[conv] = dilations[conv];
                kernel.ends_step[conv] = j == step_convs[step] - 1;
            }
        }
    }
    if (step != steps || conv != convs) return failure(api, ORT_INVALID_ARGUMENT, "step_convs and kernels list more than block_steps has");
    kernel.blocks = (int64_t)blocks, kernel.convs = (int64_t)convs;
    kernel.block_first[blocks] = (int64_t)convs;
    lark_int_attribute(api, info, "post_kernel", &kernel.post_kernel);
    if (kernel.post_kernel < 0 || (kernel.post_kernel > 0 && kernel.post_kernel % 2 == 0))
        return failure(api, ORT_INVALID_ARGUMENT, "post_kernel must be odd");
    kernel.post_reach = kernel.post_kernel > 0 ? (kernel.post_kernel - 1) / 2 : 0;
    set_reaches(&kernel);
    lark_float_attribute(api, info, "alpha", &kernel.alpha);
    lark_float_attribute(api, info, "scale", &kernel.scale);
    kernel.has_post = lark_float_attribute(api, info, "post_alpha", &kernel.post_alpha);
    lark_int_attribute(api, info, "tile", &kernel.tile);
    if (kernel.tile < 0) return failure(api, ORT_INVALID_ARGUMENT, "tile must be positive");
    int64_t bf16 = 0, path = LARK_PATH_BEST;
    lark_int_attribute(api, info, "bf16", &bf16);
    lark_int_attribute(api, info, "lark_kernel_path", &path);
    if (bf16 && !lark_bf16_available()) return failure(api, ORT_INVALID_ARGUMENT, "bf16 needs a CPU with AVX512-BF16");
    if (!lark_kernel_path_available((LarkKernelPath)path)) return failure(api, ORT_INVALID_ARGUMENT, "lark_kernel_path names a path this CPU lacks");
    int64_t outputs[MAX_CONVS] = {0}, taps[MAX_CONVS] = {0};
    const size_t sized = lark_ints_attribute(api, info, "winograd_outputs", outputs, MAX_CONVS);
    if (sized && (sized != convs || lark_ints_attribute(api, info, "winograd_taps", taps, MAX_CONVS) != convs))
        return failure(api, ORT_INVALID_ARGUMENT, "winograd_outputs and winograd_taps must list one value per convolution");
    for (size_t j = 0; j < sized; j++) {
        if (!outputs[j]) continue;
        if (bf16) return failure(api, ORT_INVALID_ARGUMENT, "Winograd convolutions are FP32 only");
        if (lark_winograd_plan(&kernel.plan[j], kernel.kernel[j], outputs[j], taps[j]))
            return failure(api, ORT_INVALID_ARGUMENT, "a Winograd size is out of range (at most 8 outputs and 12 points; r = m when the kernel is longer than r)");
        kernel.winograd[j] = 1;
    }
    int packed;
    kernel.conv_blocks = lark_conv_blocks_for((LarkKernelPath)path, &packed);
    kernel.path = bf16 ? BF16 : packed ? FP32_PACKED : FP32_GENERIC;
    const size_t forms = lark_ints_attribute(api, info, "prepared_weights", kernel.prepared_form, MAX_CONVS);
    if (forms && forms != convs) return failure(api, ORT_INVALID_ARGUMENT, "prepared_weights must list one value per convolution");
    for (size_t j = 0; j < forms; j++) {
        // The channel count is X's, known at run time: a packed FP32 form is checked against it there.
        const LarkPreparedWeights own = lark_prepared_form(kernel.path == BF16, kernel.path == FP32_PACKED, kernel.winograd[j], LARK_PACKED_CHANNELS);
        if (kernel.prepared_form[j] != LARK_PREPARED_NONE && kernel.prepared_form[j] != own)
            return failure(api, ORT_INVALID_ARGUMENT, "prepared_weights names a form this CPU's kernel does not read (prepared for another CPU or path)");
    }
    StackKernel *copy = malloc(sizeof kernel);
    if (!copy) return failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    *copy = kernel;
    pthread_mutex_init(&copy->packing, NULL);
    *out = copy;
    return NULL;
}

// MARK: - One run

typedef struct Job {
    const StackKernel *kernel;
    int64_t batch, channels, length, tile, tiles;
    size_t conv_scratch_floats;  // DirectConv's padded input copy of one of its tasks, at the widest reach
    const float *x;
    float *y;
    const float *w[MAX_CONVS], *b[MAX_CONVS];
    const float *post_w, *post_b;  // the post convolution's (post_kernel)
    const void *packed[MAX_CONVS];
    atomic_int failed;
} Job;

/// A range of positions [begin, end) of one channel-major tensor: where position `begin` of
/// channel 0 is, and the distance between channels.
typedef struct Span {
    float *data;
    int64_t row, begin, end;
} Span;

static int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

/// One convolution of a block over output positions [out->begin, out->end), reading `in` (which
/// covers them plus the reach, or the sequence's end), with `z` added when given.
static int convolve(const Job *job, int64_t j, const Span *in, const Span *out, const Span *z, float *scratch) {
    const StackKernel *kernel = job->kernel;
    const int64_t reach = (kernel->kernel[j] - 1) / 2 * kernel->dilation[j];
    int64_t base = out->begin - reach;
    if (base < in->begin) base = in->begin;
    LarkDirectConv conv = {
        .batch = 1, .input_channels = job->channels, .output_channels = job->channels,
        .input_length = in->end - base, .output_length = out->end - out->begin,
        .kernel = kernel->kernel[j], .dilation = kernel->dilation[j], .pad_begin = reach - (out->begin - base),
        .has_pre_alpha = 1, .pre_alpha = kernel->alpha,
        .x = in->data + (base - in->begin), .w = job->w[j], .b = job->b[j],
        .z = z ? z->data + (out->begin - z->begin) : NULL, .y = out->data,
        .blocks = kernel->conv_blocks, .x_row = in->row, .y_row = out->row, .z_row = z ? z->row : 0,
        .scratch = scratch, .scratch_bytes = job->conv_scratch_floats * sizeof(float),
    };
    if (kernel->winograd[j]) return lark_winograd_conv(&conv, &kernel->plan[j], job->packed[j], kernel->path == FP32_PACKED);
    const int64_t tasks = lark_direct_conv_tasks(&conv);
    for (int64_t task = 0; task < tasks; task++) {
        int status;
        switch (kernel->path) {
        case FP32_PACKED: status = lark_direct_conv_packed_task(&conv, job->packed[j], task); break;
        case BF16: status = lark_direct_conv_bf16_task(&conv, job->packed[j], task); break;
        default: status = lark_direct_conv_task(&conv, task); break;
        }
        if (status) return status;
    }
    return 0;
}

/// The positions convolution `j`'s result is needed at for a tile [t0, t0 + length) of a sequence
/// of `t`: the tile plus what the rest of its block reads beyond it, inside the sequence.
static void covered(const StackKernel *kernel, int64_t j, int64_t t0, int64_t length, int64_t t, int64_t *begin, int64_t *end) {
    const int64_t reach = kernel->reach_after[j];
    *begin = t0 - reach < 0 ? 0 : t0 - reach;
    *end = t0 + length + reach > t ? t : t0 + length + reach;
}

/// Y's rows (`channels` of them, `y_row` apart) plus a block's result (`from`, rows `from_row`
/// apart; NULL: none), and on the level's last block (`final`) times `scale` and through the
/// LeakyRelu of slope `alpha`, in one pass over [0, length). Built for the widest vectors the CPU
/// has (baseline x86-64 is SSE2: 4 lanes, and its select took three instructions).
WIDEST_VECTORS static void sum_block(float *y, int64_t y_row, const float *from, int64_t from_row, int64_t channels, int64_t length, int final,
                                     float scale, float alpha) {
    for (int64_t ch = 0; ch < channels; ch++) {
        float *to = y + ch * y_row;
        const float *add = from ? from + ch * from_row : NULL;
        if (add && !final) {
            for (int64_t i = 0; i < length; i++) to[i] += add[i];
        } else if (add) {
            for (int64_t i = 0; i < length; i++) {
                const float v = (to[i] + add[i]) * scale;
                to[i] = v < 0 ? v * alpha : v;
            }
        } else {
            for (int64_t i = 0; i < length; i++) {
                const float v = to[i] * scale;
                to[i] = v < 0 ? v * alpha : v;
            }
        }
    }
}

static int run_tile(const Job *job, int64_t task) {
    const StackKernel *kernel = job->kernel;
    const int64_t c = job->channels, t = job->length, n = task / job->tiles;
    const int64_t t0 = (task % job->tiles) * job->tile, length = t - t0 < job->tile ? t - t0 : job->tile;
    const int64_t row = round_up(job->tile + 2 * kernel->halo, 16);
    // Three rows of scratch for the blocks' steps, and with a post convolution a fourth for the
    // level's result, over the tile plus the post convolution's reach.
    const int64_t rows = kernel->post_kernel ? 4 : 3;
    float *scratch = lark_thread_scratch((size_t)(rows * c * row + job->conv_scratch_floats) * sizeof(float));
    if (!scratch) return -1;
    float *buffers[3] = {scratch, scratch + c * row, scratch + 2 * c * row};
    float *level = kernel->post_kernel ? scratch + 3 * c * row : NULL;
    const Span x = {.data = (float *)job->x + n * c * t, .row = t, .begin = 0, .end = t};
    float *conv_scratch = scratch + rows * c * row;  // DirectConv's padded input copies, one at a time
    float *y = job->y + n * (level ? 1 : c) * t;
    // The level's result is summed into Y's tile, or with a post convolution into that fourth row
    // over the tile plus the post convolution's reach (inside the sequence).
    const int64_t level_begin = t0 - kernel->post_reach < 0 ? 0 : t0 - kernel->post_reach;
    const int64_t level_end = t0 + length + kernel->post_reach > t ? t : t0 + length + kernel->post_reach;
    float *const sum = level ? level : y + t0;
    const int64_t sum_row = level ? row : t;

    for (int64_t b = 0; b < kernel->blocks; b++) {
        Span in = x;  // the step's input: X, then the previous step's result
        int in_buffer = -1;
        for (int64_t j = kernel->block_first[b]; j < kernel->block_first[b + 1]; j++) {
            // A ResBlock1 step's first convolution: its result (over the second's reach too) into
            // the third buffer, where the second reads it.
            Span middle;
            const Span *source = &in;
            if (!kernel->ends_step[j]) {
                middle = (Span){.data = buffers[2], .row = row};
                covered(kernel, j, t0, length, t, &middle.begin, &middle.end);
                if (convolve(job, j, &in, &middle, NULL, conv_scratch)) return -1;
                source = &middle;
                j++;
            }
            // The step's result x + conv(…): into Y for block 0's last step, else into the buffer
            // that does not hold the step's input.
            const int last = j == kernel->block_first[b + 1] - 1, target = in_buffer == 0 ? 1 : 0;
            Span result = last && b == 0 ? (Span){.data = sum, .row = sum_row} : (Span){.data = buffers[target], .row = row};
            covered(kernel, j, t0, length, t, &result.begin, &result.end);
            if (convolve(job, j, source, &result, &in, conv_scratch)) return -1;
            if (!last) in = result, in_buffer = target;
        }
        // The block's result for [t0, t0 + length) is in Y (block 0) or in buffers[0 or 1]: sum it in.
        const int final = b == kernel->blocks - 1;
        const float *add = NULL;
        if (b > 0) add = buffers[in_buffer == 0 ? 1 : 0];
        if (!add && !(final && (kernel->scale != 1.0f || kernel->has_post))) continue;
        sum_block(sum, sum_row, add, row, c, level_end - level_begin, final, kernel->scale, kernel->has_post ? kernel->post_alpha : 1.0f);
    }
    if (!level) return 0;
    // The post convolution of the level's result, read from the scratch row (zero outside [0, T)).
    LarkDirectConv post = {
        .batch = 1, .input_channels = c, .output_channels = 1, .input_length = level_end - level_begin, .output_length = length,
        .kernel = kernel->post_kernel, .dilation = 1, .pad_begin = kernel->post_reach - (t0 - level_begin),
        .x = level, .w = job->post_w, .b = job->post_b, .y = y + t0, .blocks = kernel->conv_blocks, .x_row = row, .y_row = t,
        .scratch = conv_scratch, .scratch_bytes = job->conv_scratch_floats * sizeof(float),
    };
    const int64_t tasks = lark_direct_conv_tasks(&post);
    for (int64_t task = 0; task < tasks; task++)
        if (lark_direct_conv_task(&post, task)) return -1;
    return 0;
}

static void run_task(void *opaque, size_t task) {
    Job *job = opaque;
    if (run_tile(job, (int64_t)task)) atomic_store(&job->failed, 1);
}

static void *pack(const StackKernel *kernel, int64_t j, const float *w, int64_t channels, int64_t k) {
    if (kernel->winograd[j]) {
        const int packed = kernel->path == FP32_PACKED;
        float *transformed = malloc((size_t)lark_winograd_weight_floats(&kernel->plan[j], channels, channels, packed) * sizeof(float));
        if (transformed && lark_winograd_weights(&kernel->plan[j], w, channels, channels, k, packed, transformed)) free(transformed), transformed = NULL;
        return transformed;
    }
    if (kernel->path == BF16) {
        uint32_t *packed = malloc((size_t)lark_bf16_packed_weight_units(channels, channels, k) * sizeof(uint32_t));
        if (packed) lark_bf16_pack_weights(w, channels, channels, k, packed);
        return packed;
    }
    const int64_t floats = lark_packed_weight_floats(channels, channels, k);
    float *packed = malloc((size_t)(floats > 0 ? floats : 1) * sizeof(float));
    if (packed) lark_pack_weights(w, channels, channels, k, packed);
    return packed;
}

typedef struct Preparation {
    const StackKernel *kernel;
    int64_t j, channels;
    const float *w;
} Preparation;

static void *prepare(void *context) {
    const Preparation *p = context;
    return pack(p->kernel, p->j, p->w, p->channels, p->kernel->kernel[p->j]);
}

static OrtStatus *compute(void *opaque, OrtKernelContext *context) {
    StackKernel *kernel = opaque;
    const void *api = kernel->api;
    size_t inputs = 0;
    OrtStatus *status = KernelContext_GetInputCount(api)(context, &inputs);
    if (status) return status;
    if (inputs < (size_t)(1 + 2 * kernel->convs)) return failure(api, ORT_INVALID_ARGUMENT, "X and a W and B per convolution are required");
    if (kernel->post_kernel && inputs < (size_t)(2 + 2 * kernel->convs))
        return failure(api, ORT_INVALID_ARGUMENT, "post_kernel needs the post convolution's PW after the convolutions' inputs");
    LarkTensor x;
    const OrtValue *value = NULL;
    if ((status = KernelContext_GetInput(api)(context, 0, &value))) return status;
    if ((status = lark_read_tensor(api, value, "ResidualStack", &x))) return status;
    Job job = {.kernel = kernel};
    if (x.rank == 3) job.batch = x.dims[0], job.channels = x.dims[1], job.length = x.dims[2];
    else if (x.rank == 4 && x.dims[2] == 1) job.batch = x.dims[0], job.channels = x.dims[1], job.length = x.dims[3];
    else return failure(api, ORT_INVALID_ARGUMENT, "X must be [N, C, T] or [N, C, 1, T]");
    for (int64_t j = 0; j < kernel->convs; j++) {
        LarkTensor w, b;
        if ((status = KernelContext_GetInput(api)(context, (size_t)(1 + 2 * j), &value))) return status;
        if (!value) return failure(api, ORT_INVALID_ARGUMENT, "a convolution's W is missing");
        if ((status = lark_read_tensor(api, value, "ResidualStack", &w))) return status;
        if ((status = KernelContext_GetInput(api)(context, (size_t)(2 + 2 * j), &value))) return status;
        if (!value) return failure(api, ORT_INVALID_ARGUMENT, "a convolution's B is missing");
        if ((status = lark_read_tensor(api, value, "ResidualStack", &b))) return status;
        if (b.rank != 1 || b.dims[0] != job.channels) return failure(api, ORT_INVALID_ARGUMENT, "every B must be [C]");
        job.b[j] = b.data;
        const LarkPreparedWeights form = (LarkPreparedWeights)kernel->prepared_form[j];
        if (form != LARK_PREPARED_NONE) {
            // W in the form the kernel reads, in place (nothing to prepare).
            if (form == LARK_PREPARED_FP32_PACKED && job.channels % LARK_PACKED_CHANNELS != 0)
                return failure(api, ORT_INVALID_ARGUMENT, "a packed W needs channels in whole 8-channel blocks");
            if (!lark_prepared_shape_fits(&w, form, kernel->winograd[j] ? &kernel->plan[j] : NULL, job.channels, job.channels, kernel->kernel[j]))
                return failure(api, ORT_INVALID_ARGUMENT, "a prepared W's size does not fit the channels, the kernel and the Winograd size");
            job.packed[j] = w.data;
            continue;
        }
        if (!has_kernel(&w, kernel->kernel[j]) || w.dims[0] != job.channels || w.dims[1] != job.channels)
            return failure(api, ORT_INVALID_ARGUMENT, "every W must be [C, C, K] with X's C and the kernels attribute's K");
        job.w[j] = w.data;
    }
    if (kernel->post_kernel) {
        LarkTensor w, b;
        const size_t first = (size_t)(1 + 2 * kernel->convs);
        if ((status = KernelContext_GetInput(api)(context, first, &value))) return status;
        if (!value) return failure(api, ORT_INVALID_ARGUMENT, "the post convolution's PW is missing");
        if ((status = lark_read_tensor(api, value, "ResidualStack", &w))) return status;
        if (!has_kernel(&w, kernel->post_kernel) || w.dims[0] != 1 || w.dims[1] != job.channels)
            return failure(api, ORT_INVALID_ARGUMENT, "PW must be [1, C, K] with X's C and post_kernel's K");
        job.post_w = w.data;
        value = NULL;
        if (inputs > first + 1 && (status = KernelContext_GetInput(api)(context, first + 1, &value))) return status;
        if (value) {  // PB (VITS's conv_post has none)
            if ((status = lark_read_tensor(api, value, "ResidualStack", &b))) return status;
            if (b.rank != 1 || b.dims[0] != 1) return failure(api, ORT_INVALID_ARGUMENT, "PB must be [1]");
            job.post_b = b.data;
        }
    }
    int64_t y_dims[4];
    memcpy(y_dims, x.dims, sizeof y_dims);
    if (kernel->post_kernel) y_dims[1] = 1;
    OrtValue *output;
    if ((status = KernelContext_GetOutput(api)(context, 0, y_dims, x.rank, &output))) return status;
    if ((status = GetTensorMutableData(api)(output, (void **)&job.y))) return status;
    job.x = x.data;
    if (job.batch == 0 || job.length == 0 || job.channels == 0) return NULL;

    void *owned[MAX_CONVS] = {0};
    OrtStatus *result = NULL;
    int prepared = kernel->path != FP32_GENERIC;
    for (int64_t j = 0; j < kernel->convs; j++) prepared |= kernel->winograd[j];
    if (prepared) {
        pthread_mutex_lock(&kernel->packing);
        for (int64_t j = 0; j < kernel->convs && !result; j++) {
            if ((kernel->path == FP32_GENERIC && !kernel->winograd[j]) || kernel->prepared_form[j] != LARK_PREPARED_NONE) continue;
            if (!kernel->packed[j]) {
                // The process's copy, shared with the other sessions' kernels (shared_prepared.c).
                const int64_t fields[] = {'R', job.channels, kernel->kernel[j], kernel->path, kernel->winograd[j] ? kernel->plan[j].m : 0,
                                          kernel->winograd[j] ? kernel->plan[j].r : 0};
                Preparation preparation = {.kernel = kernel, .j = j, .w = job.w[j], .channels = job.channels};
                kernel->packed[j] = lark_acquire_prepared(job.w[j], lark_prepared_key(fields, (int)(sizeof fields / sizeof *fields)), prepare, &preparation);
                kernel->packed_from[j] = job.w[j];
            }
            // W at another address than the first run's: packed for this run alone.
            job.packed[j] = kernel->packed_from[j] == job.w[j] ? kernel->packed[j] : (owned[j] = pack(kernel, j, job.w[j], job.channels, kernel->kernel[j]));
            if (!job.packed[j]) result = failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
        }
        pthread_mutex_unlock(&kernel->packing);
    }
    if (!result) {
        job.tile = kernel->tile ? kernel->tile : default_tile(job.channels);
        job.tiles = (job.length + job.tile - 1) / job.tile;
        for (int64_t j = 0; j < kernel->convs; j++) {
            const LarkDirectConv conv = {.input_channels = job.channels, .kernel = kernel->kernel[j], .dilation = kernel->dilation[j]};
            const size_t floats = (kernel->winograd[j] ? lark_winograd_scratch_bytes(&kernel->plan[j], job.channels, job.channels, kernel->dilation[j])
                                                       : lark_direct_conv_scratch_bytes(&conv)) / sizeof(float) + 16;
            if (floats > job.conv_scratch_floats) job.conv_scratch_floats = floats;
        }
        if (kernel->post_kernel) {
            const LarkDirectConv post = {.input_channels = job.channels, .kernel = kernel->post_kernel, .dilation = 1};
            const size_t floats = lark_direct_conv_scratch_bytes(&post) / sizeof(float) + 16;
            if (floats > job.conv_scratch_floats) job.conv_scratch_floats = floats;
        }
        atomic_init(&job.failed, 0);
        const int64_t tasks = job.batch * job.tiles;
        if (tasks == 1) run_task(&job, 0);
        else result = KernelContext_ParallelFor(api)(context, run_task, (size_t)tasks, 0, &job);
        if (!result && atomic_load(&job.failed)) result = failure(api, ORT_RUNTIME_EXCEPTION, "out of memory");
    }
    for (int64_t j = 0; j < kernel->convs; j++) free(owned[j]);
    return result;
}

static void destroy_kernel(void *opaque) {
    StackKernel *kernel = opaque;
    pthread_mutex_destroy(&kernel->packing);
    for (int64_t j = 0; j < kernel->convs; j++) lark_release_prepared(kernel->packed[j]);
    free(kernel);
}

const LarkOperator lark_residual_stack_op =
    LARK_OPERATOR("ResidualStack", 3 + 2 * MAX_CONVS, 3, 1, create_kernel, compute, destroy_kernel);
