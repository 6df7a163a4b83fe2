// The part of ONNX Runtime's C ABI that Lark calls, declared by Lark.
//
// No package on this machine ships onnxruntime_c_api.h, so this header states the ABI itself.
// The runtime exports one symbol, OrtGetApiBase(); everything else is reached through the OrtApi
// table of function pointers it returns. That table's member order is fixed forever and only grows
// at the end, so a table that names the members we use at their fixed slots, with opaque
// placeholders for the rest, is valid for every runtime that supports the API version we request.
// Slot numbers follow the official header's member order (0-based); the static assertions pin them.
#ifndef LARK_ORT_ABI_H
#define LARK_ORT_ABI_H

#include <stddef.h>
#include <stdint.h>

// The API version Lark asks for. Slots up to 254 exist from this version on; the 1.31 runtime
// serves every version up to its own.
#define LARK_ORT_API_VERSION 22

typedef struct OrtEnv OrtEnv;
typedef struct OrtStatus OrtStatus;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtSession OrtSession;
typedef struct OrtValue OrtValue;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtAllocator OrtAllocator;
typedef struct OrtCUDAProviderOptionsV2 OrtCUDAProviderOptionsV2;
typedef struct OrtArenaCfg OrtArenaCfg;
typedef struct OrtPrepackedWeightsContainer OrtPrepackedWeightsContainer;

typedef enum LarkOrtLoggingLevel {
    LARK_ORT_LOG_VERBOSE = 0,
    LARK_ORT_LOG_INFO = 1,
    LARK_ORT_LOG_WARNING = 2,
    LARK_ORT_LOG_ERROR = 3,
    LARK_ORT_LOG_FATAL = 4,
} LarkOrtLoggingLevel;

typedef enum LarkOrtGraphOptimization {
    LARK_ORT_OPTIMIZE_NONE = 0,
    LARK_ORT_OPTIMIZE_BASIC = 1,
    LARK_ORT_OPTIMIZE_EXTENDED = 2,
    LARK_ORT_OPTIMIZE_ALL = 99,
} LarkOrtGraphOptimization;

typedef enum LarkOrtElementType {
    LARK_ORT_FLOAT = 1,
    LARK_ORT_INT64 = 7,
} LarkOrtElementType;

typedef enum LarkOrtAllocatorType {
    LARK_ORT_DEVICE_ALLOCATOR = 0,
    LARK_ORT_ARENA_ALLOCATOR = 1,
} LarkOrtAllocatorType;

typedef enum LarkOrtMemType {
    LARK_ORT_MEM_DEFAULT = 0,
} LarkOrtMemType;

// The table. `skipped_A_B` stands for slots A through B, which Lark never calls.
typedef struct LarkOrtApi {
    void *skipped_0_0[1];
    int (*GetErrorCode)(const OrtStatus *status);                                           // 1
    const char *(*GetErrorMessage)(const OrtStatus *status);                                // 2
    OrtStatus *(*CreateEnv)(LarkOrtLoggingLevel level, const char *logid, OrtEnv **out);     // 3
    void *skipped_4_6[3];
    OrtStatus *(*CreateSession)(const OrtEnv *env, const char *model_path,
                                const OrtSessionOptions *options, OrtSession **out);        // 7
    OrtStatus *(*CreateSessionFromArray)(const OrtEnv *env, const void *model_data, size_t model_data_length,
                                         const OrtSessionOptions *options, OrtSession **out);  // 8
    OrtStatus *(*Run)(OrtSession *session, const OrtRunOptions *run_options,
                      const char *const *input_names, const OrtValue *const *inputs, size_t input_count,
                      const char *const *output_names, size_t output_count, OrtValue **outputs); // 9
    OrtStatus *(*CreateSessionOptions)(OrtSessionOptions **out);                             // 10
    OrtStatus *(*SetOptimizedModelFilePath)(OrtSessionOptions *options, const char *path);   // 11
    void *skipped_12_13[2];
    OrtStatus *(*EnableProfiling)(OrtSessionOptions *options, const char *profile_file_prefix); // 14
    void *skipped_15_18[4];
    OrtStatus *(*DisableCpuMemArena)(OrtSessionOptions *options);                            // 19
    void *skipped_20_21[2];
    OrtStatus *(*SetSessionLogSeverityLevel)(OrtSessionOptions *options, int level);          // 22
    OrtStatus *(*SetSessionGraphOptimizationLevel)(OrtSessionOptions *options,
                                                   LarkOrtGraphOptimization level);          // 23
    OrtStatus *(*SetIntraOpNumThreads)(OrtSessionOptions *options, int threads);             // 24
    OrtStatus *(*SetInterOpNumThreads)(OrtSessionOptions *options, int threads);             // 25
    void *skipped_26_29[4];
    OrtStatus *(*SessionGetInputCount)(const OrtSession *session, size_t *out);              // 30
    OrtStatus *(*SessionGetOutputCount)(const OrtSession *session, size_t *out);             // 31
    void *skipped_32_35[4];
    OrtStatus *(*SessionGetInputName)(const OrtSession *session, size_t index,
                                      OrtAllocator *allocator, char **out);                  // 36
    OrtStatus *(*SessionGetOutputName)(const OrtSession *session, size_t index,
                                       OrtAllocator *allocator, char **out);                 // 37
    void *skipped_38_38[1];
    OrtStatus *(*CreateRunOptions)(OrtRunOptions **out);                                      // 39
    void *skipped_40_45[6];
    OrtStatus *(*RunOptionsSetTerminate)(OrtRunOptions *options);                            // 46
    OrtStatus *(*RunOptionsUnsetTerminate)(OrtRunOptions *options);                          // 47
    void *skipped_48_48[1];
    OrtStatus *(*CreateTensorWithDataAsOrtValue)(const OrtMemoryInfo *info, void *data, size_t byte_count,
                                                 const int64_t *shape, size_t rank,
                                                 LarkOrtElementType type, OrtValue **out);    // 49
    void *skipped_50_50[1];
    OrtStatus *(*GetTensorMutableData)(OrtValue *value, void **out);                         // 51
    void *skipped_52_63[12];
    OrtStatus *(*GetTensorShapeElementCount)(const OrtTensorTypeAndShapeInfo *info, size_t *out); // 64
    OrtStatus *(*GetTensorTypeAndShape)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);  // 65
    void *skipped_66_68[3];
    OrtStatus *(*CreateCpuMemoryInfo)(LarkOrtAllocatorType type, LarkOrtMemType mem_type,
                                      OrtMemoryInfo **out);                                  // 69
    void *skipped_70_75[6];
    OrtStatus *(*AllocatorFree)(OrtAllocator *allocator, void *pointer);                     // 76
    void *skipped_77_77[1];
    OrtStatus *(*GetAllocatorWithDefaultOptions)(OrtAllocator **out);                        // 78
    void *skipped_79_91[13];
    void (*ReleaseEnv)(OrtEnv *env);                                                         // 92
    void (*ReleaseStatus)(OrtStatus *status);                                                // 93
    void (*ReleaseMemoryInfo)(OrtMemoryInfo *info);                                          // 94
    void (*ReleaseSession)(OrtSession *session);                                             // 95
    void (*ReleaseValue)(OrtValue *value);                                                   // 96
    void (*ReleaseRunOptions)(OrtRunOptions *options);                                       // 97
    void *skipped_98_98[1];
    void (*ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo *info);                  // 99
    void (*ReleaseSessionOptions)(OrtSessionOptions *options);                               // 100
    void *skipped_101_109[9];
    OrtStatus *(*SessionEndProfiling)(OrtSession *session, OrtAllocator *allocator, char **out); // 110
    void *skipped_111_124[14];
    OrtStatus *(*GetAvailableProviders)(char ***out, int *count);                            // 125
    OrtStatus *(*ReleaseAvailableProviders)(char **providers, int count);                    // 126
    void *skipped_127_129[3];
    OrtStatus *(*AddSessionConfigEntry)(OrtSessionOptions *options, const char *key,
                                        const char *value);                                  // 130
    void *skipped_131_143[13];
    OrtStatus *(*CreateAndRegisterAllocator)(OrtEnv *env, const OrtMemoryInfo *info,
                                             const OrtArenaCfg *arena_cfg);                  // 144
    void *skipped_145_149[5];
    OrtStatus *(*AddInitializer)(OrtSessionOptions *options, const char *name,
                                 const OrtValue *value);                                     // 150
    void *skipped_151_164[14];
    OrtStatus *(*AddRunConfigEntry)(OrtRunOptions *options, const char *key,
                                    const char *value);                                      // 165
    OrtStatus *(*CreatePrepackedWeightsContainer)(OrtPrepackedWeightsContainer **out);       // 166
    void (*ReleasePrepackedWeightsContainer)(OrtPrepackedWeightsContainer *container);       // 167
    OrtStatus *(*CreateSessionWithPrepackedWeightsContainer)(
        const OrtEnv *env, const char *model_path, const OrtSessionOptions *options,
        OrtPrepackedWeightsContainer *container, OrtSession **out);                          // 168
    OrtStatus *(*CreateSessionFromArrayWithPrepackedWeightsContainer)(
        const OrtEnv *env, const void *model_data, size_t model_data_length,
        const OrtSessionOptions *options, OrtPrepackedWeightsContainer *container,
        OrtSession **out);                                                                    // 169
    void *skipped_170_203[34];
    OrtStatus *(*SessionOptionsAppendExecutionProvider_CUDA_V2)(OrtSessionOptions *options,
                                                                const OrtCUDAProviderOptionsV2 *cuda); // 204
    OrtStatus *(*CreateCUDAProviderOptions)(OrtCUDAProviderOptionsV2 **out);                 // 205
    OrtStatus *(*UpdateCUDAProviderOptions)(OrtCUDAProviderOptionsV2 *cuda, const char *const *keys,
                                            const char *const *values, size_t count);        // 206
    void *skipped_207_207[1];
    void (*ReleaseCUDAProviderOptions)(OrtCUDAProviderOptionsV2 *cuda);                      // 208
    void *skipped_209_253[45];
    const char *(*GetBuildInfoString)(void);                                                 // 254
} LarkOrtApi;

typedef struct LarkOrtApiBase {
    const LarkOrtApi *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} LarkOrtApiBase;

// The runtime's single exported entry point.
const LarkOrtApiBase *OrtGetApiBase(void);

#define LARK_ORT_SLOT(member, index) \
    _Static_assert(offsetof(LarkOrtApi, member) == (index) * sizeof(void *), #member " must be slot " #index)
LARK_ORT_SLOT(GetErrorCode, 1);
LARK_ORT_SLOT(CreateEnv, 3);
LARK_ORT_SLOT(CreateSession, 7);
LARK_ORT_SLOT(CreateSessionFromArray, 8);
LARK_ORT_SLOT(Run, 9);
LARK_ORT_SLOT(CreateSessionOptions, 10);
LARK_ORT_SLOT(SetOptimizedModelFilePath, 11);
LARK_ORT_SLOT(DisableCpuMemArena, 19);
LARK_ORT_SLOT(SetSessionLogSeverityLevel, 22);
LARK_ORT_SLOT(SetIntraOpNumThreads, 24);
LARK_ORT_SLOT(SessionGetInputCount, 30);
LARK_ORT_SLOT(SessionGetInputName, 36);
LARK_ORT_SLOT(CreateRunOptions, 39);
LARK_ORT_SLOT(RunOptionsSetTerminate, 46);
LARK_ORT_SLOT(CreateTensorWithDataAsOrtValue, 49);
LARK_ORT_SLOT(GetTensorMutableData, 51);
LARK_ORT_SLOT(GetTensorShapeElementCount, 64);
LARK_ORT_SLOT(GetTensorTypeAndShape, 65);
LARK_ORT_SLOT(CreateCpuMemoryInfo, 69);
LARK_ORT_SLOT(AllocatorFree, 76);
LARK_ORT_SLOT(GetAllocatorWithDefaultOptions, 78);
LARK_ORT_SLOT(ReleaseEnv, 92);
LARK_ORT_SLOT(ReleaseRunOptions, 97);
LARK_ORT_SLOT(ReleaseTensorTypeAndShapeInfo, 99);
LARK_ORT_SLOT(ReleaseSessionOptions, 100);
LARK_ORT_SLOT(GetAvailableProviders, 125);
LARK_ORT_SLOT(AddSessionConfigEntry, 130);
LARK_ORT_SLOT(CreateAndRegisterAllocator, 144);
LARK_ORT_SLOT(AddRunConfigEntry, 165);
LARK_ORT_SLOT(AddInitializer, 150);
LARK_ORT_SLOT(CreatePrepackedWeightsContainer, 166);
LARK_ORT_SLOT(ReleasePrepackedWeightsContainer, 167);
LARK_ORT_SLOT(CreateSessionWithPrepackedWeightsContainer, 168);
LARK_ORT_SLOT(CreateSessionFromArrayWithPrepackedWeightsContainer, 169);
LARK_ORT_SLOT(EnableProfiling, 14);
LARK_ORT_SLOT(SessionEndProfiling, 110);
LARK_ORT_SLOT(SessionOptionsAppendExecutionProvider_CUDA_V2, 204);
LARK_ORT_SLOT(ReleaseCUDAProviderOptions, 208);
LARK_ORT_SLOT(GetBuildInfoString, 254);
#undef LARK_ORT_SLOT

#endif
