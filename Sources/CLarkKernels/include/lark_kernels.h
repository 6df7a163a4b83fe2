// Lark's own CPU kernels, registered with ONNX Runtime as custom operators.
//
// DirectConv (domain "ai.lark"): a 1-D convolution computed directly, without im2col, for
// the small convolutions of a HiFi-GAN decoder (32 channels at the full sample rate). It takes
// ONNX Conv's inputs and attributes plus three fusions:
//   inputs  X [N, C, T] (or [N, C, 1, T]), W [M, C, K] (or [M, C, 1, K]), optional B [M],
//           optional Z [N, M, T'] (a residual added to the result);
//   attributes kernel_shape, dilations, pads, strides (1 only), group (1 only), as Conv;
//           optional float pre_alpha: LeakyRelu applied to X as it is read;
//           optional float post_alpha: LeakyRelu applied to the result, after B and Z;
//           optional int bf16: 1 multiplies in bfloat16 (weights and activations rounded to bf16,
//           FP32 sums and output), only on CPUs with AVX512-BF16 (lark_bf16_supported);
//           optional int lark_kernel_path: force one SIMD path (LarkKernelPath), for tests and
//           benchmarks; absent, the best path this CPU has;
//           optional int prepared_weights (a LarkPreparedWeights form) with ints weight_shape
//           [M, C, K]: W is then the form lark_direct_conv_prepared_weights made of the
//           [M, C, K] weights, as [R, C·K] (zero-padded to whole rows), read in place (no copy of
//           W is prepared at run time).
#ifndef LARK_KERNELS_H
#define LARK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum LarkKernelPath {
    LARK_PATH_BEST = 0,
    LARK_PATH_SCALAR = 1,
    LARK_PATH_AVX2 = 2,
    LARK_PATH_AVX512 = 3,
    LARK_PATH_NEON = 4,
} LarkKernelPath;

/// Whether this CPU (and this build) can run `path`.
int lark_kernel_path_available(LarkKernelPath path);

/// The path LARK_PATH_BEST stands for on this CPU.
LarkKernelPath lark_kernel_best_path(void);

/// Whether this CPU (and this build) can run DirectConv's bf16 mode (AVX512-BF16).
int lark_bf16_supported(void);

/// The channel block of ONNX Runtime's blocked NCHWc layout on this CPU, as its MLAS library
/// picks it: 16 with AVX-512F, 8 on other x86-64 CPUs, 0 where MLAS has no blocked layout. What
/// SubpixelInterleave's `block` attribute is set to when it reads that layout (a wrong guess is
/// caught by the load-time probe, whose audio would then differ).
int lark_nchwc_block_size(void);

/// A key for lark_acquire_prepared from what decides a preparation's bytes (operator, shape, path, sizes).
uint64_t lark_prepared_key(const int64_t *fields, int count);

/// The weights prepared (packed, transformed) from `source` under `key`: the process's copy when
/// a kernel already made one (shared, read-only), else `prepare(context)`'s (malloc'ed), kept for
/// later callers (shared_prepared.c). NULL when out of memory. Every non-NULL result is given
/// back with lark_release_prepared.
void *lark_acquire_prepared(const void *source, uint64_t key, void *(*prepare)(void *context), void *context);

/// Gives back one lark_acquire_prepared result; the copy is freed with its last user.
void lark_release_prepared(void *data);

/// The forms DirectConv reads weights in, besides plain W (attribute `prepared_weights`).
typedef enum LarkPreparedWeights {
    LARK_PREPARED_NONE = 0,
    LARK_PREPARED_FP32_PACKED = 1,      // lark_pack_weights (whole 8-channel blocks only)
    LARK_PREPARED_BF16_PACKED = 2,      // lark_bf16_pack_weights
    LARK_PREPARED_WINOGRAD = 3,         // lark_winograd_weights, plain (generic micro-kernels)
    LARK_PREPARED_WINOGRAD_PACKED = 4,  // lark_winograd_weights for the packed FP32 path
} LarkPreparedWeights;

/// W [M, C, K] (`w`, M·C·K floats) as the DirectConv kernel with these attributes (`path`,
/// `bf16`, `winograd_outputs`/`winograd_taps`, 0 for none) prepares it on this CPU: a malloc'ed
/// copy of `*floats` floats in form `*form` (zero-padded to whole rows of C·K: a graph holds it
/// as [floats / (C·K), C·K]), for a graph to hold in W's place. NULL (form NONE)
/// when that kernel reads plain W, when its form still needs plain W too (packed FP32 with
/// output channels past the last whole block), or on bad sizes or no memory.
float *lark_direct_conv_prepared_weights(const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel, int64_t path,
                                         int64_t bf16, int64_t winograd_outputs, int64_t winograd_taps, int64_t *form, int64_t *floats);

/// A short name for a path ("avx512", "avx2", "neon", "scalar").
const char *lark_kernel_path_name(LarkKernelPath path);

/// Adds the "ai.lark" custom-operator domain to ONNX Runtime session options. `ort_api` is the
/// runtime's `const OrtApi *`, `session_options` an `OrtSessionOptions *`. Returns the runtime's
/// `OrtStatus *` (NULL on success). The domain is created once per process and never released:
/// every session made with these options keeps a pointer to it.
void *lark_kernels_register(const void *ort_api, void *session_options);

#endif
