// What Lark's custom operators need of ONNX Runtime's C API, declared in our own words (ONNX
// Runtime's header is not on this machine: see Sources/COnnxRuntime/ort_abi.h). The OrtApi
// members are reached by their fixed slot in the table (0-based, in the official header's member
// order; the same numbering as ort_abi.h), and the OrtCustomOp layout follows the official
// header's member order up to version 16 of that struct. Internal to CLarkKernels.
#ifndef LARK_ORT_CUSTOM_OP_H
#define LARK_ORT_CUSTOM_OP_H

#include <stddef.h>
#include <stdint.h>

typedef struct OrtStatus OrtStatus;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtShapeInfo OrtShapeInfo;  // OrtTensorTypeAndShapeInfo
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtSessionOptions OrtSessionOptions;

enum { ORT_INVALID_ARGUMENT = 2, ORT_RUNTIME_EXCEPTION = 6 };
enum { ELEMENT_FLOAT = 1 };
enum { CHARACTERISTIC_REQUIRED = 0, CHARACTERISTIC_OPTIONAL = 1 };

// MARK: - The OrtApi members used, by slot

#define SLOT(api, index, type) ((type)(((void *const *)(api))[index]))
#define CreateStatus(api) SLOT(api, 0, OrtStatus *(*)(int, const char *))
#define CreateCustomOpDomain(api) SLOT(api, 26, OrtStatus *(*)(const char *, OrtCustomOpDomain **))
#define CustomOpDomain_Add(api) SLOT(api, 27, OrtStatus *(*)(OrtCustomOpDomain *, const void *))
#define AddCustomOpDomain(api) SLOT(api, 28, OrtStatus *(*)(OrtSessionOptions *, OrtCustomOpDomain *))
#define GetTensorMutableData(api) SLOT(api, 51, OrtStatus *(*)(OrtValue *, void **))
#define GetDimensionsCount(api) SLOT(api, 61, OrtStatus *(*)(const OrtShapeInfo *, size_t *))
#define GetDimensions(api) SLOT(api, 62, OrtStatus *(*)(const OrtShapeInfo *, int64_t *, size_t))
#define GetTensorTypeAndShape(api) SLOT(api, 65, OrtStatus *(*)(const OrtValue *, OrtShapeInfo **))
#define KernelInfoGetAttribute_float(api) SLOT(api, 85, OrtStatus *(*)(const OrtKernelInfo *, const char *, float *))
#define KernelInfoGetAttribute_int64(api) SLOT(api, 86, OrtStatus *(*)(const OrtKernelInfo *, const char *, int64_t *))
#define KernelContext_GetInputCount(api) SLOT(api, 88, OrtStatus *(*)(const OrtKernelContext *, size_t *))
#define KernelContext_GetInput(api) SLOT(api, 90, OrtStatus *(*)(const OrtKernelContext *, size_t, const OrtValue **))
#define KernelContext_GetOutput(api) SLOT(api, 91, OrtStatus *(*)(OrtKernelContext *, size_t, const int64_t *, size_t, OrtValue **))
#define ReleaseStatus(api) SLOT(api, 93, void (*)(OrtStatus *))
#define ReleaseShapeInfo(api) SLOT(api, 99, void (*)(OrtShapeInfo *))
#define KernelInfoGetAttributeArray_int64(api) SLOT(api, 163, OrtStatus *(*)(const OrtKernelInfo *, const char *, int64_t *, size_t *))
#define KernelContext_ParallelFor(api) \
    SLOT(api, 274, OrtStatus *(*)(const OrtKernelContext *, void (*)(void *, size_t), size_t, size_t, void *))

// MARK: - The custom-op table (official member order; version 16 reads every member below)

typedef struct LarkOrtCustomOp {
    uint32_t version;
    void *(*CreateKernel)(const struct LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info);
    const char *(*GetName)(const struct LarkOrtCustomOp *op);
    const char *(*GetExecutionProviderType)(const struct LarkOrtCustomOp *op);
    int (*GetInputType)(const struct LarkOrtCustomOp *op, size_t index);
    size_t (*GetInputTypeCount)(const struct LarkOrtCustomOp *op);
    int (*GetOutputType)(const struct LarkOrtCustomOp *op, size_t index);
    size_t (*GetOutputTypeCount)(const struct LarkOrtCustomOp *op);
    void (*KernelCompute)(void *kernel, OrtKernelContext *context);
    void (*KernelDestroy)(void *kernel);
    int (*GetInputCharacteristic)(const struct LarkOrtCustomOp *op, size_t index);
    int (*GetOutputCharacteristic)(const struct LarkOrtCustomOp *op, size_t index);
    int (*GetInputMemoryType)(const struct LarkOrtCustomOp *op, size_t index);
    int (*GetVariadicInputMinArity)(const struct LarkOrtCustomOp *op);
    int (*GetVariadicInputHomogeneity)(const struct LarkOrtCustomOp *op);
    int (*GetVariadicOutputMinArity)(const struct LarkOrtCustomOp *op);
    int (*GetVariadicOutputHomogeneity)(const struct LarkOrtCustomOp *op);
    OrtStatus *(*CreateKernelV2)(const struct LarkOrtCustomOp *op, const void *api, const OrtKernelInfo *info, void **kernel);
    OrtStatus *(*KernelComputeV2)(void *kernel, OrtKernelContext *context);
} LarkOrtCustomOp;

_Static_assert(offsetof(LarkOrtCustomOp, KernelCompute) == 8 * sizeof(void *), "KernelCompute is member 8");
_Static_assert(offsetof(LarkOrtCustomOp, CreateKernelV2) == 17 * sizeof(void *), "CreateKernelV2 is member 17");

/// One ai.lark operator: ONNX Runtime's table first (so the pointer ONNX Runtime hands back to the
/// table's callbacks is this struct's), then what the shared callbacks below answer from. Every
/// input and output is float; inputs past `required_inputs` are optional.
typedef struct LarkOperator {
    LarkOrtCustomOp table;
    const char *name;
    size_t inputs, required_inputs, outputs;
} LarkOperator;

// The callbacks every ai.lark operator shares (ort_custom_op.c).
const char *lark_operator_name(const LarkOrtCustomOp *op);
const char *lark_operator_provider(const LarkOrtCustomOp *op);
int lark_operator_float_type(const LarkOrtCustomOp *op, size_t index);
size_t lark_operator_inputs(const LarkOrtCustomOp *op);
size_t lark_operator_outputs(const LarkOrtCustomOp *op);
int lark_operator_input_characteristic(const LarkOrtCustomOp *op, size_t index);
int lark_operator_output_characteristic(const LarkOrtCustomOp *op, size_t index);
int lark_operator_default_memory(const LarkOrtCustomOp *op, size_t index);
int lark_operator_one(const LarkOrtCustomOp *op);
/// An error status whose message names the operator: "ai.lark.NAME: message".
OrtStatus *lark_operator_failure(const void *api, int code, const char *operator_name, const char *message);

/// A float input's shape (at most 4 dimensions) and data, as every ai.lark operator reads them.
typedef struct LarkTensor {
    size_t rank;
    int64_t dims[4];
    float *data;
} LarkTensor;

/// Reads `value` into `tensor`; more than 4 dimensions is an error in `operator_name`'s name.
OrtStatus *lark_read_tensor(const void *api, const OrtValue *value, const char *operator_name, LarkTensor *tensor);
/// A node's attributes: an int64 array into `values` (at most `capacity`; the count, 0 when
/// absent), a float, an int64 (1 when present, else 0 and `value` untouched).
size_t lark_ints_attribute(const void *api, const OrtKernelInfo *info, const char *name, int64_t *values, size_t capacity);
int lark_float_attribute(const void *api, const OrtKernelInfo *info, const char *name, float *value);
int lark_int_attribute(const void *api, const OrtKernelInfo *info, const char *name, int64_t *value);
/// KernelDestroy for a kernel that is one malloc'd block.
void lark_operator_free_kernel(void *kernel);

/// An ai.lark operator's definition: its name, input counts, and its own create, compute and
/// destroy functions (CreateKernelV2 and KernelComputeV2: ONNX Runtime uses those from version 16).
#define LARK_OPERATOR(NAME, INPUTS, REQUIRED_INPUTS, OUTPUTS, CREATE, COMPUTE, DESTROY)                                   \
    {                                                                                                                     \
        .table = {                                                                                                        \
            .version = 16, .CreateKernel = NULL, .GetName = lark_operator_name,                                           \
            .GetExecutionProviderType = lark_operator_provider, .GetInputType = lark_operator_float_type,                 \
            .GetInputTypeCount = lark_operator_inputs, .GetOutputType = lark_operator_float_type,                         \
            .GetOutputTypeCount = lark_operator_outputs, .KernelCompute = NULL, .KernelDestroy = DESTROY,                 \
            .GetInputCharacteristic = lark_operator_input_characteristic,                                                 \
            .GetOutputCharacteristic = lark_operator_output_characteristic,                                               \
            .GetInputMemoryType = lark_operator_default_memory, .GetVariadicInputMinArity = lark_operator_one,            \
            .GetVariadicInputHomogeneity = lark_operator_one, .GetVariadicOutputMinArity = lark_operator_one,             \
            .GetVariadicOutputHomogeneity = lark_operator_one, .CreateKernelV2 = CREATE, .KernelComputeV2 = COMPUTE,      \
        },                                                                                                                \
        .name = NAME, .inputs = INPUTS, .required_inputs = REQUIRED_INPUTS, .outputs = OUTPUTS,                           \
    }

/// The ai.lark domain's other operators, each in its own file.
extern const LarkOperator lark_spline_flow_inverse_op;  // spline_flow.c
extern const LarkOperator lark_channel_layer_norm_op;  // channel_layer_norm.c
extern const LarkOperator lark_relative_key_logits_op;  // relative_attention.c
extern const LarkOperator lark_relative_value_weights_op;  // relative_attention.c
extern const LarkOperator lark_gated_tanh_op;  // gated_tanh.c
extern const LarkOperator lark_subpixel_interleave_op;  // subpixel_interleave.c
extern const LarkOperator lark_residual_stack_op;  // residual_stack.c
#endif
