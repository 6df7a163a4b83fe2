import Foundation
import NIOPosix
import OnnxGraph
import OnnxRuntime
import Phonemizer
import SpeechCore

/// How a Piper voice is loaded: where it is, and how its model runs.
public struct PiperVoiceSource: Sendable, Equatable {
    public var id: String
    public var modelPath: String
    /// Defaults to the model path with `.json` appended, as Piper does.
    public var configPath: String

    public init(id: String, modelPath: String, configPath: String? = nil) {
        self.id = id
        self.modelPath = modelPath
        self.configPath = configPath ?? modelPath + ".json"
    }
}

/// A Piper (VITS) voice: phonemize with espeak-ng, map to ids, run the ONNX model per sentence.
///
/// Follows Piper 1.8's `PiperVoice.synthesize`: one model run per sentence, each sentence's float
/// audio normalized and converted to 16-bit as Piper does, `sentence_silence` seconds of zeros
/// between sentences. Model runs happen on `threadPool`, never on the caller's thread.
public final class PiperVoice: SpeechVoice {
    public let info: VoiceInfo
    public let config: PiperVoiceConfig
    public let phonemizer: PiperPhonemizer
    public var defaults: SynthesisDefaults { config.defaults }
    private let mapper: PhonemeIDMapper
    private let pool: SessionPool
    private let threadPool: NIOThreadPool
    private let usesSpeakerInput: Bool
    /// How many of the model's 1-D convolutions run as 2-D ones (see `ConvolutionRewrite`);
    /// 0 when the rewrite is off, found nothing, or its model did not load.
    public let restatedConvolutions: Int

    /// Loads the config and the model, for up to `concurrency` sentence runs at once: with more
    /// than one, and several threads configured, a one-thread copy of the model serves the runs
    /// that overlap (see `SessionPool`). Throws `SpeechError` naming the file and the problem
    /// (missing file, invalid JSON, missing `phoneme_id_map`, corrupt model, no CUDA).
    /// `rewriteConvolutions`: run the model's 1-D convolutions as 2-D ones, which ONNX Runtime's
    /// CPU kernels do faster with the same results (`ConvolutionRewrite`); ignored on CUDA.
    public init(
        source: PiperVoiceSource, concurrency: Int = 1, configuration: SessionConfiguration = .init(),
        rewriteConvolutions: Bool = true, threadPool: NIOThreadPool
    ) throws(SpeechError) {
        let config = try PiperVoiceConfig.load(path: source.configPath)
        guard FileManager.default.fileExists(atPath: source.modelPath) else {
            throw .voiceFileMissing(path: source.modelPath)
        }
        let runtime: OnnxRuntime
        switch OnnxRuntime.shared {
        case .success(let shared): runtime = shared
        case .failure(let error): throw .engineUnavailable("ONNX Runtime could not start: \(error.message)")
        }
        var configurations = [configuration]
        if concurrency > 1, configuration.intraOpThreads != 1, !configuration.useCUDA {
            // The wide session keeps ONNX Runtime's spinning threads (fastest for a lone run): it
            // is idle whenever requests overlap (`SessionPool`), so its threads sleep then.
            var narrow = configuration
            narrow.intraOpThreads = 1
            configurations.append(narrow)
        }
        var loaded: [InferenceSession] = []
        var restated = 0
        do {
            if rewriteConvolutions, !configuration.useCUDA, let rewritten = Self.rewrittenModel(at: source.modelPath) {
                // A rewritten model that ONNX Runtime refuses falls back to the file as it is.
                if let sessions = Self.cleanedSessions(of: rewritten.model, configurations: configurations, runtime: runtime)
                    ?? (try? configurations.map({ sessionConfiguration throws(OnnxRuntimeError) in
                        try InferenceSession(model: rewritten.model, configuration: sessionConfiguration, runtime: runtime)
                    })) {
                    loaded = sessions
                    restated = rewritten.convertedConvolutions
                }
            }
            if loaded.isEmpty {
                loaded = try configurations.map { sessionConfiguration throws(OnnxRuntimeError) in
                    try InferenceSession(modelPath: source.modelPath, configuration: sessionConfiguration, runtime: runtime)
                }
            }
        } catch {
            if configuration.useCUDA, error.message.contains("CUDA") {
                throw .engineUnavailable(error.message)
            }
            throw .invalidModel(path: source.modelPath, reason: Self.firstLine(error.message))
        }
        restatedConvolutions = restated
        let inputs = Set(loaded[0].inputNames)
        for required in ["input", "input_lengths", "scales"] where !inputs.contains(required) {
            throw .invalidModel(
                path: source.modelPath,
                reason: "the model has no '\(required)' input (inputs: \(loaded[0].inputNames.joined(separator: ", "))); it is not a Piper voice")
        }
        self.config = config
        usesSpeakerInput = inputs.contains("sid")
        mapper = PhonemeIDMapper(map: config.phonemeIDMap)
        phonemizer = PiperPhonemizer(type: config.phonemeType, espeakVoice: config.espeakVoice, vowelClusters: config.vowelClusters)
        pool = SessionPool(wide: loaded.count > 1 ? loaded[0] : nil, narrow: loaded[loaded.count - 1], concurrency: concurrency)
        self.threadPool = threadPool
        info = Self.describe(id: source.id, modelPath: source.modelPath, config: config)
    }

    /// The model at `path` with its 1-D convolutions restated, or nil when the file cannot be
    /// read as protobuf or has nothing to restate (the caller then loads the file as it is, and
    /// ONNX Runtime reports what is wrong with it).
    private static func rewrittenModel(at path: String) -> ConvolutionRewrite.Result? {
        // Mapped, so the file's bytes are copied once (into the array the rewrite reads).
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped),
              let result = try? ConvolutionRewrite.apply(to: [UInt8](data)),
              result.convertedConvolutions > 0
        else { return nil }
        return result
    }

    /// Sessions of `model` as ONNX Runtime optimizes it on this machine, then with the blocked
    /// layout's stand-in convolutions made elementwise again (`BlockedLayoutCleanup`). Nil when
    /// any step fails, nothing was replaced, or the edited model's audio differs from the
    /// optimized model's on a probe (noise off): the caller then loads `model` the usual way.
    private static func cleanedSessions(
        of model: [UInt8], configurations: [SessionConfiguration], runtime: OnnxRuntime
    ) -> [InferenceSession]? {
        guard let (reference, optimized) = try? InferenceSession.optimizedModel(
                  model, configuration: configurations[configurations.count - 1], runtime: runtime),
              let cleaned = try? BlockedLayoutCleanup.apply(to: optimized), cleaned.replacedNodes > 0,
              let sessions = try? configurations.map({ configuration throws(OnnxRuntimeError) in
                  var basic = configuration
                  basic.optimization = .basic
                  return try InferenceSession(model: cleaned.model, configuration: basic, runtime: runtime)
              })
        else { return nil }
        // Ids 10–29 between Piper's start and end ids: some speech from any voice's alphabet.
        let ids: [Int64] = [1, 0] + (10..<30).flatMap { [Int64($0), 0] } + [2]
        var probe: [InputTensor] = [
            .int64(name: "input", shape: [1, Int64(ids.count)], values: ids),
            .int64(name: "input_lengths", shape: [1], values: [Int64(ids.count)]),
            .float32(name: "scales", shape: [3], values: [0, 1, 0]),
        ]
        if reference.inputNames.contains("sid") { probe.append(.int64(name: "sid", shape: [1], values: [0])) }
        guard let expected = try? reference.run(probe), let actual = try? sessions[sessions.count - 1].run(probe),
              expected.count == actual.count, !expected.isEmpty,
              zip(expected, actual).allSatisfy({ abs($0 - $1) < 1e-3 })
        else { return nil }
        return sessions
    }

    /// What listings show for a voice, from its config alone (without loading the model).
    public static func describe(id: String, modelPath: String, config: PiperVoiceConfig) -> VoiceInfo {
        // Piper's file names read LANGUAGE-NAME-QUALITY (en_US-joe-medium).
        let fileName = URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent
        let parts = fileName.split(separator: "-")
        let name: String = config.dataset ?? (parts.count >= 2 ? String(parts[1]) : fileName)
        let languageCode: String = config.languageCode ?? (parts.first.map(String.init) ?? config.espeakVoice)
        let quality: String? = config.quality ?? (parts.count >= 3 ? String(parts[2]) : nil)
        return VoiceInfo(
            id: id, engine: .piper, name: name, languageCode: languageCode, languageName: config.languageName,
            quality: quality, sampleRate: config.sampleRate, speakers: config.speakerNames, source: modelPath,
            defaults: config.defaults)
    }

    /// Model-level settings for one request, with the voice's defaults filled in.
    public struct ResolvedSettings: Sendable, Equatable {
        public var speakerID: Int?
        public var lengthScale: Float
        public var noiseScale: Float
        public var noiseW: Float
        public var silenceSamples: Int
    }

    public func resolve(_ options: SynthesisOptions) throws(SpeechError) -> ResolvedSettings {
        try options.validate()
        var speakerID: Int?
        switch options.speaker {
        case nil:
            speakerID = config.numSpeakers > 1 ? config.defaults.speakerID : nil
        case .id(let id):
            guard (0..<config.numSpeakers).contains(id) else {
                throw .speakerOutOfRange(id, count: config.numSpeakers)
            }
            speakerID = config.numSpeakers > 1 ? id : nil
        case .name(let name):
            guard let id = config.speakerIDMap[name] else {
                throw .unknownSpeaker(name, available: config.speakerNames.isEmpty ? ["0"] : config.speakerNames)
            }
            speakerID = id
        }
        return ResolvedSettings(
            speakerID: usesSpeakerInput ? speakerID : nil,
            lengthScale: options.lengthScale ?? config.defaults.lengthScale,
            noiseScale: options.noiseScale ?? config.defaults.noiseScale,
            noiseW: options.noiseW ?? config.defaults.noiseW,
            silenceSamples: Int(Double(config.sampleRate) * (options.sentenceSilence ?? 0)))
    }

    public func check(_ options: SynthesisOptions) throws(SpeechError) {
        _ = try resolve(options)
    }

    /// One run of the model: a sentence, or a piece of a sentence too long to run whole.
    public struct ModelRun: Sendable, Equatable {
        /// 0-based position of the sentence the run belongs to.
        public var sentence: Int
        public var phonemes: [String]
        /// True for the second and later pieces of a cut sentence (no sentence silence before it).
        public var continuesSentence: Bool
    }

    /// The model runs for `text`: its sentences, each cut into pieces when it is too long to run
    /// whole at this length scale (see `LongSentenceSplitter`).
    public func modelRuns(for text: String, lengthScale: Float = 1) async throws(SpeechError) -> [ModelRun] {
        let limit = LongSentenceSplitter.limit(lengthScale: lengthScale)
        return try await phonemizer.phonemize(text).enumerated().flatMap { sentence, phonemes in
            LongSentenceSplitter.pieces(of: phonemes, limit: limit).enumerated().map { piece, phonemes in
                ModelRun(sentence: sentence, phonemes: phonemes, continuesSentence: piece > 0)
            }
        }
    }

    /// What the model is fed for `run`: its phonemes as ids, framed as Piper frames them.
    public func phonemeIDs(for run: ModelRun) -> [Int64] {
        mapper.ids(for: run.phonemes).ids
    }

    /// Phoneme ids for each model run on `text`, for tests and diagnostics.
    public func phonemeIDs(for text: String) async throws(SpeechError) -> [[Int64]] {
        try await modelRuns(for: text).map(phonemeIDs(for:))
    }

    public func synthesize(_ text: String, options: SynthesisOptions) -> AsyncThrowingStream<AudioChunk, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: AudioChunk.self, throwing: (any Error).self)
        let pool = pool
        let task = Task {
            await pool.beginStream()
            do {
                let settings = try resolve(options)
                guard !text.trimmingWhitespace().isEmpty else { throw SpeechError.emptyText }
                let runs = try await modelRuns(for: text, lengthScale: settings.lengthScale)
                let sentenceCount = runs.last.map { $0.sentence + 1 } ?? 0
                for run in runs {
                    try Task.checkCancellation()
                    var samples = try await audio(for: phonemeIDs(for: run), settings: settings)
                    if run.sentence > 0, !run.continuesSentence, settings.silenceSamples > 0 {
                        samples.insert(contentsOf: repeatElement(0, count: settings.silenceSamples), at: 0)
                    }
                    continuation.yield(AudioChunk(
                        samples: samples, sampleRate: config.sampleRate, sentenceIndex: run.sentence,
                        phonemes: run.phonemes.joined(), sentenceCount: sentenceCount))
                }
                await pool.endStream()
                continuation.finish()
            } catch {
                await pool.endStream()
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Runs the model on one sentence's ids. Cancelling the calling task stops the run in progress.
    public func audio(for ids: [Int64], settings: ResolvedSettings) async throws -> [Int16] {
        var inputs: [InputTensor] = [
            .int64(name: "input", shape: [1, Int64(ids.count)], values: ids),
            .int64(name: "input_lengths", shape: [1], values: [Int64(ids.count)]),
            .float32(name: "scales", shape: [3], values: [settings.noiseScale, settings.lengthScale, settings.noiseW]),
        ]
        if let speaker = settings.speakerID {
            inputs.append(.int64(name: "sid", shape: [1], values: [Int64(speaker)]))
        }
        let modelInputs = inputs
        let session = await pool.acquire()
        let floats: [Float]
        do {
            // Released before returning (not in a detached task), so that the next sentence of
            // a lone request finds the pool idle again and gets the wide session.
            floats = try await run(modelInputs, on: session)
            await pool.release()
        } catch {
            await pool.release()
            throw error
        }
        try Task.checkCancellation()
        return PiperPCM.int16Samples(from: floats)
    }

    private func run(_ inputs: [InputTensor], on session: InferenceSession) async throws -> [Float] {
        try Task.checkCancellation()
        let cancellation = try RunCancellation(
            runtime: session.runtime, shrinkArena: session.configuration.memory == .shrinkAfterRun)
        return try await withTaskCancellationHandler {
            try await threadPool.runIfActive { () throws -> [Float] in
                do {
                    return try session.run(inputs, cancellation: cancellation)
                } catch {
                    throw SpeechError.synthesisFailed(Self.firstLine(String(describing: error)))
                }
            }
        } onCancel: {
            cancellation.terminate()
        }
    }

    private static func firstLine(_ message: String) -> String {
        String(message.split(whereSeparator: \.isNewline).first ?? Substring(message))
    }
}
