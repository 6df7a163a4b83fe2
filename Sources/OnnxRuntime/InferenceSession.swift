import CLarkKernels
import COnnxRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a session runs: threads, graph optimization, device.
public struct SessionConfiguration: Sendable, Equatable {
    /// Threads inside one operator (0 lets ONNX Runtime pick, one per core).
    public var intraOpThreads: Int
    /// Threads across independent operators (VITS graphs are sequential: 1 is best).
    public var interOpThreads: Int
    /// Run on CUDA instead of the CPU.
    public var useCUDA: Bool
    /// What happens to the CPU memory a run used.
    public var memory: MemoryPolicy
    /// How much ONNX Runtime rewrites the graph while loading it.
    public var optimization: Optimization
    /// Where ONNX Runtime's profile of every run goes (a path prefix; nil: no profile). See
    /// `InferenceSession.endProfiling`.
    public var profilePrefix: String?
    /// Whether the session's pool threads spin (busy-wait) for the next parallel part of a run
    /// instead of sleeping until they are woken (ONNX Runtime's default). A VITS run has hundreds
    /// of small parallel parts: on an idle machine spinning starts each sooner, but a spinning
    /// thread holds its core between them, from every other process and session, and on a busy
    /// machine from the run's own thread (both measured: bench/results/overhead.md).
    public var spinning: Bool

    public enum Optimization: Sendable, Equatable {
        /// Every rewrite, including the CPU's blocked (NCHWc) layout (ONNX Runtime's default).
        case all
        /// Only the basic, layout-independent ones: for a model that ONNX Runtime already
        /// optimized on this machine (see `InferenceSession.optimizedModel`).
        case basic
    }

    /// ONNX Runtime keeps activations in an arena that grows to the largest runs seen and never
    /// shrinks: fastest, but a server's memory then stays at its worst case. Every CPU session
    /// with an arena shares the process's one (`OnnxRuntime`), so that worst case is that of the
    /// runs under way at once, not of each session.
    public enum MemoryPolicy: String, Sendable, Equatable, CaseIterable {
        /// The shared arena keeps what it has grown to.
        case arena
        /// The arena gives back its free chunks after every run.
        case shrinkAfterRun = "shrink"
        /// No arena: every tensor is allocated and freed with the system allocator.
        case noArena = "none"
    }

    public init(
        intraOpThreads: Int = 1, interOpThreads: Int = 1, useCUDA: Bool = false,
        memory: MemoryPolicy = .arena, optimization: Optimization = .all, profilePrefix: String? = nil, spinning: Bool = true
    ) {
        self.profilePrefix = profilePrefix
        self.spinning = spinning
        self.intraOpThreads = intraOpThreads
        self.interOpThreads = interOpThreads
        self.useCUDA = useCUDA
        self.memory = memory
        self.optimization = optimization
    }
}

extension SessionConfiguration {
    /// The session configuration entries (ONNX Runtime's `AddSessionConfigEntry` keys and values)
    /// these settings ask for.
    var sessionEntries: [(key: String, value: String)] {
        var entries: [(key: String, value: String)] = []
        if memory != .noArena && !useCUDA {
            // The process's one CPU arena (see `OnnxRuntime`), not one of the session's own.
            entries.append(("session.use_env_allocators", "1"))
        }
        // A one-thread session has no pool (its nodes run on the caller's thread).
        if intraOpThreads != 1, !spinning { entries.append(("session.intra_op.allow_spinning", "0")) }
        return entries
    }
}

/// An input tensor: its name, shape and data.
public enum InputTensor: Sendable {
    case int64(name: String, shape: [Int64], values: [Int64])
    case float32(name: String, shape: [Int64], values: [Float])

    var name: String {
        switch self {
        case .int64(let name, _, _), .float32(let name, _, _): return name
        }
    }
}

/// Lets another thread stop a `run` in progress (a client went away).
/// `@unchecked Sendable`: ONNX Runtime documents `RunOptionsSetTerminate` as safe to call from any thread.
public final class RunCancellation: @unchecked Sendable {
    let runtime: OnnxRuntime
    let options: OpaquePointer

    /// `shrinkArena`: give the arena's free chunks back once the run ends.
    public init(runtime: OnnxRuntime, shrinkArena: Bool = false) throws(OnnxRuntimeError) {
        self.runtime = runtime
        var options: OpaquePointer?
        try runtime.check(runtime.api.pointee.CreateRunOptions(&options))
        self.options = options!
        if shrinkArena {
            try runtime.check(runtime.api.pointee.AddRunConfigEntry(options, "memory.enable_memory_arena_shrinkage", "cpu:0"))
        }
    }

    /// Makes the current (and any later) run with these options fail quickly.
    public func terminate() {
        _ = try? runtime.check(runtime.api.pointee.RunOptionsSetTerminate(options))
    }

    deinit { runtime.api.pointee.ReleaseRunOptions(options) }
}

/// One loaded model. The only owner of its `OrtSession`, released in `deinit`.
///
/// `@unchecked Sendable`: ONNX Runtime allows concurrent `Run` calls on one session, and the
/// Swift state here is immutable after `init`. `SessionPool` relies on that: overlapping
/// sentence runs share one single-thread session (see `bench/RESULTS.md` for why not one each).
public final class InferenceSession: @unchecked Sendable {
    public let runtime: OnnxRuntime
    let session: OpaquePointer
    public let inputNames: [String]
    public let outputNames: [String]
    public let configuration: SessionConfiguration
    /// The weights this session uses in place, kept as long as it lives.
    public let weights: SharedWeights?

    /// Loads the model at `path`. Throws if the file is missing or not a valid ONNX model, or if
    /// CUDA is asked for and this ONNX Runtime build has no CUDA provider.
    /// `weights`: this model's weights, held once for every session created with them.
    public convenience init(
        modelPath path: String, configuration: SessionConfiguration, runtime: OnnxRuntime, weights: SharedWeights? = nil
    ) throws(OnnxRuntimeError) {
        try self.init(configuration: configuration, runtime: runtime, weights: weights) { options throws(OnnxRuntimeError) in
            var session: OpaquePointer?
            if let weights {
                try runtime.check(runtime.api.pointee.CreateSessionWithPrepackedWeightsContainer(
                    runtime.environment, path, options, weights.container, &session))
            } else {
                try runtime.check(runtime.api.pointee.CreateSession(runtime.environment, path, options, &session))
            }
            return session!
        }
    }

    /// Loads a model from its bytes (a model Lark rewrote before loading). ONNX Runtime copies
    /// what it needs: `model` may be freed once this returns.
    /// `externalDataFolder`: where the files its external-data initializers name are (a model
    /// whose shared weights are stubs, `InitializerStubs`, names an existing file there).
    public convenience init(
        model: [UInt8], configuration: SessionConfiguration, runtime: OnnxRuntime, weights: SharedWeights? = nil,
        externalDataFolder: String? = nil
    ) throws(OnnxRuntimeError) {
        try self.init(configuration: configuration, runtime: runtime, weights: weights, externalDataFolder: externalDataFolder) {
            options throws(OnnxRuntimeError) in
            var session: OpaquePointer?
            let status = model.withUnsafeBytes { bytes in
                if let weights {
                    return runtime.api.pointee.CreateSessionFromArrayWithPrepackedWeightsContainer(
                        runtime.environment, bytes.baseAddress, bytes.count, options, weights.container, &session)
                }
                return runtime.api.pointee.CreateSessionFromArray(runtime.environment, bytes.baseAddress, bytes.count, options, &session)
            }
            try runtime.check(status)
            return session!
        }
    }

    /// Loads `model` with every optimization, as ONNX Runtime writes the optimized graph out:
    /// the session, and the optimized model's bytes. That graph holds this machine's blocked
    /// layout (weights reordered for its vector width), so it is only for loading here, with
    /// `.basic` optimization.
    public static func optimizedModel(
        _ model: [UInt8], configuration: SessionConfiguration, runtime: OnnxRuntime
    ) throws(OnnxRuntimeError) -> (session: InferenceSession, optimized: [UInt8]) {
        let path = NSTemporaryDirectory() + "lark-optimized-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).onnx"
        defer { unlink(path) }
        let session = try InferenceSession(configuration: configuration, runtime: runtime, optimizedModelPath: path) { options throws(OnnxRuntimeError) in
            var session: OpaquePointer?
            let status = model.withUnsafeBytes { bytes in
                runtime.api.pointee.CreateSessionFromArray(runtime.environment, bytes.baseAddress, bytes.count, options, &session)
            }
            try runtime.check(status)
            return session!
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OnnxRuntimeError(code: -1, message: "ONNX Runtime did not write the optimized model to \(path)")
        }
        return (session, [UInt8](data))
    }

    private init(
        configuration: SessionConfiguration, runtime: OnnxRuntime, optimizedModelPath: String? = nil, weights: SharedWeights? = nil,
        externalDataFolder: String? = nil, create: (OpaquePointer?) throws(OnnxRuntimeError) -> OpaquePointer
    ) throws(OnnxRuntimeError) {
        self.runtime = runtime
        self.configuration = configuration
        self.weights = weights
        let api = runtime.api.pointee
        var options: OpaquePointer?
        try runtime.check(api.CreateSessionOptions(&options))
        defer { api.ReleaseSessionOptions(options) }
        try runtime.check(api.SetIntraOpNumThreads(options, Int32(configuration.intraOpThreads)))
        try runtime.check(api.SetInterOpNumThreads(options, Int32(configuration.interOpThreads)))
        let level = configuration.optimization == .all ? LARK_ORT_OPTIMIZE_ALL : LARK_ORT_OPTIMIZE_BASIC
        try runtime.check(api.SetSessionGraphOptimizationLevel(options, level))
        if let optimizedModelPath {
            try runtime.check(api.SetOptimizedModelFilePath(options, optimizedModelPath))
        }
        try runtime.check(api.SetSessionLogSeverityLevel(options, Int32(LARK_ORT_LOG_ERROR.rawValue)))
        // Lark's own operators (`ai.lark`, CLarkKernels), which rewritten voices may contain.
        try runtime.check(OpaquePointer(lark_kernels_register(UnsafeRawPointer(runtime.api), UnsafeMutableRawPointer(options))))
        if configuration.memory == .noArena {
            try runtime.check(api.DisableCpuMemArena(options))
        }
        for (key, value) in configuration.sessionEntries {
            try runtime.check(api.AddSessionConfigEntry(options, key, value))
        }
        if let externalDataFolder {
            try runtime.check(api.AddSessionConfigEntry(options, "session.model_external_initializers_file_folder_path", externalDataFolder))
        }
        if configuration.useCUDA {
            try Self.appendCUDA(to: options!, runtime: runtime)
        }
        if let prefix = configuration.profilePrefix {
            try Self.enableProfiling(options!, prefix: prefix, runtime: runtime)
        }
        try weights?.add(to: options)
        try Self.enterCustomDomain(runtime)
        let session = try create(options)
        self.session = session

        do {
            inputNames = try Self.names(of: session, runtime: runtime, count: api.SessionGetInputCount, name: api.SessionGetInputName)
            outputNames = try Self.names(of: session, runtime: runtime, count: api.SessionGetOutputCount, name: api.SessionGetOutputName)
        } catch {
            api.ReleaseSession(session)
            throw error
        }
    }

    deinit { runtime.api.pointee.ReleaseSession(session) }

    /// ONNX Runtime enters a session's custom domain (`ai.lark`) in ONNX's process-wide table of
    /// domains the first time one registers it, by a look-up and then an insert with no lock
    /// between: two sessions created at once before that (a voice's wide and narrow sessions) can
    /// both insert, and one fails ("the domain is already exist"). So the first session of the
    /// process is a tiny one made alone (an `Identity` graph: milliseconds), and every real
    /// session after it, created at the same time as others or not, finds the domain there.
    private static let customDomain = NSLock()
    nonisolated(unsafe) private static var customDomainEntered = false  // guarded by `customDomain`

    private static func enterCustomDomain(_ runtime: OnnxRuntime) throws(OnnxRuntimeError) {
        customDomain.lock()
        defer { customDomain.unlock() }
        guard !customDomainEntered else { return }
        let api = runtime.api.pointee
        var options: OpaquePointer?
        try runtime.check(api.CreateSessionOptions(&options))
        defer { api.ReleaseSessionOptions(options) }
        try runtime.check(api.SetSessionLogSeverityLevel(options, Int32(LARK_ORT_LOG_ERROR.rawValue)))
        try runtime.check(OpaquePointer(lark_kernels_register(UnsafeRawPointer(runtime.api), UnsafeMutableRawPointer(options))))
        var session: OpaquePointer?
        let status = identityModel.withUnsafeBytes { bytes in
            api.CreateSessionFromArray(runtime.environment, bytes.baseAddress, bytes.count, options, &session)
        }
        try runtime.check(status)
        api.ReleaseSession(session)
        customDomainEntered = true
    }

    /// `y = Identity(x)`, x and y float [1], opset 13, as ONNX protobuf bytes (written out by
    /// hand: this module has no protobuf writer, and the model never changes).
    private static let identityModel: [UInt8] = {
        let tensorOfOne: [UInt8] = [0x0A, 0x08, 0x08, 0x01, 0x12, 0x04, 0x0A, 0x02, 0x08, 0x01]  // TypeProto: float [1]
        func valueInfo(_ name: UInt8) -> [UInt8] { [0x0A, 0x01, name, 0x12, UInt8(tensorOfOne.count)] + tensorOfOne }
        let node: [UInt8] = [0x0A, 0x01, 0x78, 0x12, 0x01, 0x79, 0x22, 0x08] + Array("Identity".utf8)
        let graph: [UInt8] = [0x0A, UInt8(node.count)] + node + [0x12, 0x01, 0x67]
            + [0x5A, UInt8(valueInfo(0x78).count)] + valueInfo(0x78) + [0x62, UInt8(valueInfo(0x79).count)] + valueInfo(0x79)
        return [0x08, 0x07] + [0x3A, UInt8(graph.count)] + graph + [0x42, 0x02, 0x10, 0x0D]
    }()

    /// Asks for the CUDA execution provider (as Piper does, with heuristic convolution search).
    private static func appendCUDA(to options: OpaquePointer, runtime: OnnxRuntime) throws(OnnxRuntimeError) {
        let providers = try runtime.availableProviders()
        guard providers.contains("CUDAExecutionProvider") else {
            throw OnnxRuntimeError(
                code: -1,
                message: "CUDA was requested but this ONNX Runtime (\(runtime.version)) has no CUDA execution provider; available: \(providers.joined(separator: ", ")). Install a GPU build of ONNX Runtime or run without --cuda")
        }
        let api = runtime.api.pointee
        var cuda: OpaquePointer?
        try runtime.check(api.CreateCUDAProviderOptions(&cuda))
        defer { api.ReleaseCUDAProviderOptions(cuda) }
        try withCStrings(["cudnn_conv_algo_search"]) { keys throws(OnnxRuntimeError) in
            try withCStrings(["HEURISTIC"]) { values throws(OnnxRuntimeError) in
                try runtime.check(api.UpdateCUDAProviderOptions(cuda, keys, values, 1))
            }
        }
        try runtime.check(api.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda))
    }

    private typealias CountFunction = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?) -> OpaquePointer?
    private typealias NameFunction = @convention(c) (
        OpaquePointer?, Int, OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> OpaquePointer?

    private static func names(
        of session: OpaquePointer, runtime: OnnxRuntime, count: CountFunction, name: NameFunction
    ) throws(OnnxRuntimeError) -> [String] {
        var allocator: OpaquePointer?
        try runtime.check(runtime.api.pointee.GetAllocatorWithDefaultOptions(&allocator))
        var total = 0
        try runtime.check(count(session, &total))
        var result: [String] = []
        for index in 0..<total {
            var pointer: UnsafeMutablePointer<CChar>?
            try runtime.check(name(session, index, allocator, &pointer))
            if let pointer {
                result.append(String(cString: pointer))
                _ = runtime.api.pointee.AllocatorFree(allocator, pointer)
            }
        }
        return result
    }

    /// Runs the model and returns its first output as floats. Blocks the calling thread:
    /// call it from a thread pool, never from an event loop.
    public func run(_ inputs: [InputTensor], cancellation: RunCancellation? = nil) throws(OnnxRuntimeError) -> [Float] {
        try run(inputs, outputs: [outputNames[0]], cancellation: cancellation)[0]
    }

    /// Runs the model and returns the named float outputs, in the order asked.
    public func run(
        _ inputs: [InputTensor], outputs requested: [String], cancellation: RunCancellation? = nil
    ) throws(OnnxRuntimeError) -> [[Float]] {
        try run(inputs, outputs: requested, cancellation: cancellation, copyingOutputs: true)
    }

    /// Runs the model for its time alone: its first output is computed but not copied out, as
    /// that copy (fresh pages, megabytes for a decoder's activations) is no part of the model's
    /// cost (`DirectConvolutionChoice` times the kernel against ONNX Runtime's path this way).
    public func runDiscardingOutput(_ inputs: [InputTensor]) throws(OnnxRuntimeError) {
        _ = try run(inputs, outputs: [outputNames[0]], cancellation: nil, copyingOutputs: false)
    }

    private func run(
        _ inputs: [InputTensor], outputs requested: [String], cancellation: RunCancellation?, copyingOutputs: Bool
    ) throws(OnnxRuntimeError) -> [[Float]] {
        let api = runtime.api.pointee
        var values: [OpaquePointer?] = []
        defer { values.forEach { api.ReleaseValue($0) } }
        // The tensors point into these arrays, so they must outlive the run. They are read through
        // withUnsafeBytes: ONNX Runtime never writes an input, and asking for mutable bytes would
        // copy each array (the caller's `inputs` shares its storage), a fresh copy, page faults
        // and all, of every input on every run.
        let int64Storage = inputs.map { input -> [Int64] in
            if case .int64(_, _, let data) = input { return data } else { return [] }
        }
        let floatStorage = inputs.map { input -> [Float] in
            if case .float32(_, _, let data) = input { return data } else { return [] }
        }
        for (index, input) in inputs.enumerated() {
            var value: OpaquePointer?
            let status: OpaquePointer?
            switch input {
            case .int64(_, let shape, _):
                status = int64Storage[index].withUnsafeBytes { bytes in
                    api.CreateTensorWithDataAsOrtValue(
                        runtime.cpuMemory, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, shape, shape.count, LARK_ORT_INT64, &value)
                }
            case .float32(_, let shape, _):
                status = floatStorage[index].withUnsafeBytes { bytes in
                    api.CreateTensorWithDataAsOrtValue(
                        runtime.cpuMemory, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, shape, shape.count, LARK_ORT_FLOAT, &value)
                }
            }
            try runtime.check(status)
            values.append(value)
        }

        var outputs = [OpaquePointer?](repeating: nil, count: requested.count)
        let inputNames = inputs.map(\.name)
        let status = withCStrings(inputNames) { inputNamePointers in
            withCStrings(requested) { outputNamePointers in
                values.withUnsafeBufferPointer { valuePointers in
                    valuePointers.withMemoryRebound(to: OpaquePointer?.self) { rebound in
                        outputs.withUnsafeMutableBufferPointer { outputPointers in
                            api.Run(
                                session, cancellation?.options, inputNamePointers,
                                UnsafePointer(rebound.baseAddress), inputs.count,
                                outputNamePointers, requested.count, outputPointers.baseAddress)
                        }
                    }
                }
            }
        }
        try runtime.check(status)
        defer { outputs.forEach { api.ReleaseValue($0) } }
        guard copyingOutputs else { return [] }
        return try outputs.map { output throws(OnnxRuntimeError) in try floats(of: output) }
    }

    private func floats(of output: OpaquePointer?) throws(OnnxRuntimeError) -> [Float] {
        let api = runtime.api.pointee
        var shapeInfo: OpaquePointer?
        try runtime.check(api.GetTensorTypeAndShape(output, &shapeInfo))
        defer { api.ReleaseTensorTypeAndShapeInfo(shapeInfo) }
        var count = 0
        try runtime.check(api.GetTensorShapeElementCount(shapeInfo, &count))
        var data: UnsafeMutableRawPointer?
        try runtime.check(api.GetTensorMutableData(output, &data))
        guard let data, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: count))
    }
}

/// Calls `body` with a C array of C strings that lives for the duration of the call.
func withCStrings<Result, Failure: Error>(
    _ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) throws(Failure) -> Result
) throws(Failure) -> Result {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer { buffer throws(Failure) in
        try body(buffer.baseAddress!)
    }
}
