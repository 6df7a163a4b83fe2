import CLarkKernels
import Foundation
import Synchronization
import OnnxGraph
import OnnxRuntime
import SpeechCore

/// Turns a Piper model file into the sessions a voice runs, the fastest way this machine allows:
///
/// 1. a valid entry in the optimized-voice cache: its sessions load straight from the entry's
///    file (no rewrite, no second optimization), then one probe run checks them;
/// 2. else the model is rewritten (`ConvolutionRewrite`), ONNX Runtime optimizes it for this
///    machine, `BlockedLayoutCleanup` edits the optimized graph, and a probe run compares it with
///    the optimized graph before the edit; the result goes into the cache;
/// 3. else (rewrite off, CUDA, or anything above failing) the file as it is.
struct PiperModelLoader: Sendable {
    let source: PiperVoiceSource
    /// One per session the voice keeps (see `SessionPool`): the first is the wide one.
    let configurations: [SessionConfiguration]
    let runtime: OnnxRuntime
    let rewrite: Bool
    let cache: OptimizedVoiceCache?
    /// Whether the graph reports its phoneme durations (`DurationOutput`), for word timings.
    var timings = true
    /// bf16: the convolutions DirectConv wins on multiply in bfloat16 (a cache entry of its own).
    var precision: ComputePrecision = .fp32

    struct Loaded {
        var sessions: [InferenceSession]
        var restatedConvolutions: Int
    }

    /// The options the cached graph is optimized with. Fixed, so that every thread and memory
    /// setting shares one entry: the optimized graph does not depend on them.
    private static let optimizing = SessionConfiguration(intraOpThreads: 1, interOpThreads: 1)
    private static let optimizingDescription = "optimization=all intra=1 inter=1"

    func load() throws(OnnxRuntimeError) -> Loaded {
        guard rewrite, !configurations[0].useCUDA else { return try plain() }
        // Graphs without the duration output are not cached (they serve benchmarks only).
        let cache = timings ? cache : nil
        let session = Self.optimizingDescription + (precision == .fp32 ? "" : " precision=\(precision.rawValue)")
        let key = cache.flatMap { try? $0.key(forModelAt: source.modelPath, onnxRuntime: runtime.version, session: session) }
        guard let cache, let key else { return try builtOrPlain(cache: nil, key: nil) }
        if let loaded = cached(cache, key: key) { return loaded }
        // One process builds; the others wait for it, then find its entry.
        return try cache.whileBuilding(key: key, voice: source.id) { () throws(OnnxRuntimeError) -> Loaded in
            if let loaded = cached(cache, key: key) { return loaded }
            return try builtOrPlain(cache: cache, key: key)
        }
    }

    private func builtOrPlain(cache: OptimizedVoiceCache?, key: OptimizedVoiceCache.Key?) throws(OnnxRuntimeError) -> Loaded {
        if let built = try built(cache: cache, key: key) { return built }
        return try plain()
    }

    private func plain() throws(OnnxRuntimeError) -> Loaded {
        // The file's graph with only the duration output added (`DurationOutput`): the same
        // computation, so the same samples as Piper's; the file as it is when that edit fails.
        let timed = !timings ? nil : (try? Data(contentsOf: URL(fileURLWithPath: source.modelPath), options: .alwaysMapped))
            .flatMap { try? DurationOutput.apply(to: [UInt8]($0)) }
        let sessions = try Self.sessions(for: configurations) { configuration throws(OnnxRuntimeError) in
            if let timed { return try InferenceSession(model: timed, configuration: configuration, runtime: runtime) }
            return try InferenceSession(modelPath: source.modelPath, configuration: configuration, runtime: runtime)
        }
        return Loaded(sessions: sessions, restatedConvolutions: 0)
    }

    /// The cache's entry as sessions, or nil (and the entry deleted) when it fails a check. Its
    /// checksum is verified beside the sessions' load (both take a core for a good part of a
    /// second); sessions of an entry that fails are dropped unused.
    private func cached(_ cache: OptimizedVoiceCache, key: OptimizedVoiceCache.Key) -> Loaded? {
        guard let entry = cache.header(for: key, voice: source.id) else { return nil }
        do {
            let verified = Mutex(false)
            let shared = sharedModel { [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry.path), options: .alwaysMapped)) }
            let sessions = try Self.sessions(for: configurations, besides: { verified.withLock { $0 = cache.verify(entry) } }) {
                configuration throws(OnnxRuntimeError) in
                try session(configuration, shared: shared) { basic, weights throws(OnnxRuntimeError) in
                    try InferenceSession(modelPath: entry.path, configuration: basic, runtime: runtime, weights: weights)
                }
            }
            guard verified.withLock({ $0 }) else { return nil }
            guard let audio = try? Self.probe(sessions[sessions.count - 1]), Self.matches(audio, entry.header.probe) else {
                cache.reject(path: entry.path, voice: source.id, reason: "its audio differs from the model's on a probe")
                return nil
            }
            return Loaded(sessions: sessions, restatedConvolutions: entry.header.restatedConvolutions)
        } catch {
            cache.reject(path: entry.path, voice: source.id, reason: "ONNX Runtime could not load it: \(error.message)")
            return nil
        }
    }

    /// Rewrites, optimizes and cleans the model, checks it, and stores it in the cache. Nil when
    /// the model has nothing to rewrite or a step fails (the caller loads the file as it is).
    private func built(cache: OptimizedVoiceCache?, key: OptimizedVoiceCache.Key?) throws(OnnxRuntimeError) -> Loaded? {
        let started = Date()
        guard let rewritten = rewrittenModel() else { return nil }
        if let cache, key != nil { cache.onEvent(.building(voice: source.id)) }
        if let (model, sessions, expected) = cleaned(rewritten.model) {
            if let cache, let key {
                cache.store(
                    model: model, key: key, voice: source.id, probe: expected, restatedConvolutions: rewritten.converted,
                    directConvolutions: rewritten.direct, residualStacks: rewritten.levels, buildSeconds: Date().timeIntervalSince(started))
            }
            return Loaded(sessions: sessions, restatedConvolutions: rewritten.converted)
        }
        // A rewritten model that ONNX Runtime optimizes but the cleanup cannot use still runs.
        guard let sessions = try? Self.sessions(for: configurations, { configuration throws(OnnxRuntimeError) in
            try InferenceSession(model: rewritten.model, configuration: configuration, runtime: runtime)
        }) else { return nil }
        return Loaded(sessions: sessions, restatedConvolutions: rewritten.converted)
    }

    /// The model file with its duration predictor's spline flows, its layer normalizations, its
    /// attention's relative-position terms and its flows' gates as one node each
    /// (`SplineFlowRewrite`, `ChannelLayerNormRewrite`, `RelativeAttentionRewrite`,
    /// `GatedActivationRewrite`), its flows' scales by one removed (`UnitScaleRewrite`), its small convolutions on Lark's own kernel where that is faster here
    /// (`DirectConvolutionRewrite`, decided by timing each shape: `DirectConvolutionChoice`), its
    /// other 1-D convolutions restated and its phoneme durations as an extra output
    /// (`DurationOutput`, where the graph has them), with the timing decisions; nil when the file
    /// cannot be read as protobuf or has nothing to restate (the caller then loads the file as it
    /// is, and ONNX Runtime reports what is wrong with it).
    private func rewrittenModel() -> (model: [UInt8], converted: Int, direct: [DirectConvolutionDecision], levels: [ResidualStackDecision])? {
        // Mapped, so the file's bytes are copied once (into the array the rewrite reads).
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: source.modelPath), options: .alwaysMapped) else { return nil }
        var model = [UInt8](data)
        if let flows = try? SplineFlowRewrite.apply(to: model), flows.replaced > 0 { model = flows.model }
        if let norms = try? ChannelLayerNormRewrite.apply(to: model), norms.replaced > 0 { model = norms.model }
        if let attention = try? RelativeAttentionRewrite.apply(to: model), attention.replaced > 0 { model = attention.model }
        if let gates = try? GatedActivationRewrite.apply(to: model), gates.replaced > 0 { model = gates.model }
        if let scales = try? UnitScaleRewrite.apply(to: model), scales.removed > 0 { model = scales.model }
        let bf16 = precision == .bf16
        // HiFi-GAN's levels as one fused node each, where that is faster here (timed per level).
        let levels = ResidualStackChoice.decide(in: model, runtime: runtime, bf16: bf16)
        let fusedLevels = Set(levels.indices.filter { levels[$0].used })
        let winograd = Dictionary(uniqueKeysWithValues: levels.enumerated().compactMap { index, level in level.winograd.map { (index, $0) } })
        if !fusedLevels.isEmpty, let stacks = try? ResidualStackRewrite.apply(to: model, chosen: fusedLevels, bf16: bf16, winograd: winograd),
            stacks.replaced > 0
        {
            model = stacks.model
        }
        let decisions = DirectConvolutionChoice.decide(
            (try? DirectConvolutionRewrite.candidates(in: model, bf16: bf16)) ?? [], runtime: runtime, bf16: bf16)
        let chosen = Set(decisions.filter(\.used).map(\.shape))
        let winogradSizes = Dictionary(decisions.filter(\.used).compactMap { decision in decision.winograd.map { (decision.shape, $0) } }) { first, _ in first }
        if let direct = try? DirectConvolutionRewrite.apply(to: model, chosen: chosen, bf16: bf16, winograd: winogradSizes), direct.replaced > 0 {
            model = direct.model
        }
        guard let result = try? ConvolutionRewrite.apply(to: model), result.convertedConvolutions > 0 else { return nil }
        let timed = timings ? (try? DurationOutput.apply(to: result.model)) ?? nil : nil
        return (timed ?? result.model, result.convertedConvolutions, decisions, levels)
    }

    /// `model` as ONNX Runtime optimizes it on this machine, then with the blocked layout's
    /// stand-in convolutions made elementwise again (`BlockedLayoutCleanup`), its shape
    /// annotations removed (`ShapeAnnotations`: a session of it loads in a fraction of the time)
    /// and DirectConv's weights stored as its kernel reads them (`PreparedWeightsRewrite`): the cleaned model,
    /// its sessions, and the optimized graph's audio on the probe. Nil when any step fails or
    /// the cleaned model's audio differs on the probe (noise off).
    private func cleaned(_ model: [UInt8]) -> (model: [UInt8], sessions: [InferenceSession], expected: [Float])? {
        guard let (optimized, expected) = optimizedAndProbed(model),
              // (Nothing to clean is fine: a graph whose upsamplings are all DirectConv has no stand-ins.)
              let cleaned = try? BlockedLayoutCleanup.apply(to: optimized, nchwcBlock: Int(lark_nchwc_block_size())),
              let unprepared = try? ShapeAnnotations.remove(from: cleaned.model).model,
              // DirectConv's weights in the form its kernel reads (one copy of them, not two).
              case let final = (try? PreparedWeightsRewrite.apply(to: unprepared, prepare: PreparedConvolutionWeights.prepare))?.model ?? unprepared,
              case let shared = sharedModel({ final }),
              let sessions = try? Self.sessions(for: configurations, { configuration throws(OnnxRuntimeError) in
                  try session(configuration, shared: shared) { basic, weights throws(OnnxRuntimeError) in
                      try InferenceSession(model: final, configuration: basic, runtime: runtime, weights: weights)
                  }
              }),
              let actual = try? Self.probe(sessions[sessions.count - 1]), Self.matches(actual, expected)
        else { return nil }
        return (final, sessions, expected)
    }

    /// `model` as ONNX Runtime optimizes it here, and that graph's audio on the probe. The session
    /// that optimized it is gone when this returns, before the cleaned model's sessions are
    /// created: a voice's worth of memory less at a first load's peak.
    private func optimizedAndProbed(_ model: [UInt8]) -> (model: [UInt8], expected: [Float])? {
        guard let (reference, optimized) = try? InferenceSession.optimizedModel(model, configuration: Self.optimizing, runtime: runtime),
              let expected = try? Self.probe(reference)
        else { return nil }
        return (optimized, expected)
    }

    /// A model's weights held once for all its sessions (`SharedWeights`), and the model as those
    /// sessions load it: without the shared weights' bytes (`InitializerStubs`), so that ONNX
    /// Runtime's parse of it, once per session and at the same time, does not hold another copy
    /// of them each. The stubs name the voice's model file, which exists (their data is never read).
    /// Only large float tensors are stubs: ONNX Runtime's shape inference reads small constants
    /// (axes, shapes) from the model itself.
    struct SharedModel {
        let weights: SharedWeights
        let stubbed: [UInt8]
        let folder: String

        func session(_ configuration: SessionConfiguration, runtime: OnnxRuntime) throws(OnnxRuntimeError) -> InferenceSession {
            try InferenceSession(model: stubbed, configuration: configuration, runtime: runtime, weights: weights, externalDataFolder: folder)
        }
    }

    static let smallestStub = 64 * 1024

    /// A session of `configuration` (made basic): from `shared`'s stubbed graph when the voice shares
    /// its weights, else, or when that graph fails to load, from `whole` (the whole graph, given the
    /// shared weights if any).
    private func session(
        _ configuration: SessionConfiguration, shared: SharedModel?,
        whole: (SessionConfiguration, SharedWeights?) throws(OnnxRuntimeError) -> InferenceSession
    ) throws(OnnxRuntimeError) -> InferenceSession {
        let basic = Self.basic(configuration)
        if let shared, let stubbed = try? shared.session(basic, runtime: runtime) { return stubbed }
        return try whole(basic, shared?.weights)
    }

    /// The model's weights held once for all its sessions, when the voice keeps more than one:
    /// its narrow session then costs little more memory than its graph. Nil for a voice of one
    /// session, or when the model's weights cannot be read (each session then loads its own
    /// copy, as ONNX Runtime does by default). The model's bytes are gone when this returns.
    private func sharedModel(_ model: () throws -> [UInt8]) -> SharedModel? {
        guard configurations.count > 1, let bytes = try? model() else { return nil }
        return Self.sharedModel(bytes, modelPath: source.modelPath, runtime: runtime)
    }

    /// `model`'s weights as `SharedWeights` and the model with stubs for its large ones, naming
    /// the file at `modelPath`; nil when the weights cannot be read or the stubs written.
    static func sharedModel(_ model: [UInt8], modelPath: String, runtime: OnnxRuntime) -> SharedModel? {
        guard let initializers = try? ModelInitializers.read(model), !initializers.isEmpty,
              let weights = try? SharedWeights(
                  tensors: initializers.map { .init(name: $0.name, elementType: $0.dataType, shape: $0.dims, bytes: model[$0.rawData]) },
                  runtime: runtime)
        else { return nil }
        let file = URL(fileURLWithPath: modelPath).standardizedFileURL
        let large = Set(initializers.filter { $0.dataType == 1 && $0.rawData.count >= smallestStub }.map(\.name))
        guard let stubbed = try? InitializerStubs.apply(to: model, names: large, location: file.lastPathComponent) else { return nil }
        return SharedModel(weights: weights, stubbed: stubbed, folder: file.deletingLastPathComponent().path)
    }

    /// One session per configuration, created at the same time: a session's creation is
    /// single-threaded work in ONNX Runtime (about a second for a medium voice), so a voice's
    /// wide and narrow sessions load in the time of one on two cores.
    /// `besides`: other work to run at the same time.
    private static func sessions(
        for configurations: [SessionConfiguration], besides: (@Sendable () -> Void)? = nil,
        _ create: @Sendable (SessionConfiguration) throws(OnnxRuntimeError) -> InferenceSession
    ) throws(OnnxRuntimeError) -> [InferenceSession] {
        if configurations.count == 1, besides == nil { return [try create(configurations[0])] }
        let results = Mutex([Result<InferenceSession, OnnxRuntimeError>?](repeating: nil, count: configurations.count))
        DispatchQueue.concurrentPerform(iterations: configurations.count + (besides == nil ? 0 : 1)) { index in
            guard index < configurations.count else { return besides?() ?? () }
            let result = Result { () throws(OnnxRuntimeError) in try create(configurations[index]) }
            results.withLock { $0[index] = result }
        }
        return try results.withLock { $0 }.map { result throws(OnnxRuntimeError) in try result!.get() }
    }

    /// A model ONNX Runtime already optimized for this machine loads with the basic,
    /// layout-independent optimizations only.
    private static func basic(_ configuration: SessionConfiguration) -> SessionConfiguration {
        var basic = configuration
        basic.optimization = .basic
        return basic
    }

    /// Audio for ids 10–29 between Piper's start and end ids (some speech from any voice's
    /// alphabet), noise off: the same on every run of a given graph.
    static func probe(_ session: InferenceSession) throws(OnnxRuntimeError) -> [Float] {
        let ids: [Int64] = [1, 0] + (10..<30).flatMap { [Int64($0), 0] } + [2]
        var inputs: [InputTensor] = [
            .int64(name: "input", shape: [1, Int64(ids.count)], values: ids),
            .int64(name: "input_lengths", shape: [1], values: [Int64(ids.count)]),
            .float32(name: "scales", shape: [3], values: [0, 1, 0]),
        ]
        if session.inputNames.contains("sid") { inputs.append(.int64(name: "sid", shape: [1], values: [0])) }
        return try session.run(inputs)
    }

    private static func matches(_ actual: [Float], _ expected: [Float]) -> Bool {
        !expected.isEmpty && actual.count == expected.count && zip(expected, actual).allSatisfy { abs($0 - $1) < 1e-3 }
    }
}
