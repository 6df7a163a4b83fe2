import COnnxRuntime

/// An error ONNX Runtime reported, with its own message.
public struct OnnxRuntimeError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var description: String { message }
}

/// The ONNX Runtime library and its one environment.
///
/// ONNX Runtime wants a single `OrtEnv` per process (it owns the global thread pools and the
/// logger), so `OnnxRuntime.shared` is created once, on first use, and lives as long as the process.
/// `@unchecked Sendable`: the API table is immutable, and ONNX Runtime documents the environment as
/// safe to share across threads.
public final class OnnxRuntime: @unchecked Sendable {
    let api: UnsafePointer<LarkOrtApi>
    let environment: OpaquePointer
    /// CPU memory description used for every input tensor.
    let cpuMemory: OpaquePointer

    /// The process's runtime, or the reason it could not start.
    public static let shared: Result<OnnxRuntime, OnnxRuntimeError> = Result { () throws(OnnxRuntimeError) in try OnnxRuntime() }

    /// The library's version string, such as `1.31.1`.
    public let version: String

    private init() throws(OnnxRuntimeError) {
        guard let base = OrtGetApiBase(), let api = base.pointee.GetApi(UInt32(LARK_ORT_API_VERSION)) else {
            throw OnnxRuntimeError(code: -1, message: "the ONNX Runtime library does not support C API version \(LARK_ORT_API_VERSION)")
        }
        self.api = api
        version = base.pointee.GetVersionString().map { String(cString: $0) } ?? "unknown"
        var environment: OpaquePointer?
        try Self.check(api, api.pointee.CreateEnv(LARK_ORT_LOG_ERROR, "lark", &environment))
        self.environment = environment!
        var memory: OpaquePointer?
        try Self.check(api, api.pointee.CreateCpuMemoryInfo(LARK_ORT_ARENA_ALLOCATOR, LARK_ORT_MEM_DEFAULT, &memory))
        cpuMemory = memory!
        // One CPU arena for the whole process, which sessions opt into (`sharesArena`). Each
        // session would otherwise grow an arena of its own to the largest run it has seen and
        // keep it: a voice's wide and narrow sessions, and every voice, each held that much
        // although at most `workers` runs are under way at once.
        try Self.check(api, api.pointee.CreateAndRegisterAllocator(self.environment, cpuMemory, nil))
    }

    deinit {
        api.pointee.ReleaseMemoryInfo(cpuMemory)
        api.pointee.ReleaseEnv(environment)
    }

    /// The execution providers this build of the library has (`CPUExecutionProvider`, and
    /// `CUDAExecutionProvider` only in a GPU build).
    public func availableProviders() throws(OnnxRuntimeError) -> [String] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var count: Int32 = 0
        try check(api.pointee.GetAvailableProviders(&names, &count))
        defer { _ = api.pointee.ReleaseAvailableProviders(names, count) }
        return (0..<Int(count)).compactMap { names?[$0].map { String(cString: $0) } }
    }

    func check(_ status: OpaquePointer?) throws(OnnxRuntimeError) {
        try Self.check(api, status)
    }

    /// Turns a non-null `OrtStatus` into an error and releases it.
    static func check(_ api: UnsafePointer<LarkOrtApi>, _ status: OpaquePointer?) throws(OnnxRuntimeError) {
        guard let status else { return }
        let code = Int(api.pointee.GetErrorCode(status))
        let message = api.pointee.GetErrorMessage(status).map { String(cString: $0) } ?? "unknown error"
        api.pointee.ReleaseStatus(status)
        throw OnnxRuntimeError(code: code, message: message)
    }
}
