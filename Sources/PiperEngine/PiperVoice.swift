import Foundation
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
/// between sentences. Model runs happen where a `SynthesisAdmission` places them, never on the
/// caller's thread.
public final class PiperVoice: SpeechVoice {
    public let info: VoiceInfo
    public let config: PiperVoiceConfig
    public let phonemizer: PiperPhonemizer
    public var defaults: SynthesisDefaults { config.defaults }
    private let mapper: PhonemeIDMapper
    /// Runs several threads (for a run that is alone); nil when the voice has one session.
    private let wide: InferenceSession?
    /// Runs one thread (for runs that overlap others): one core per run beats several threads
    /// per run when requests overlap. ONNX Runtime lets one session serve concurrent runs.
    private let narrow: InferenceSession
    private let usesSpeakerInput: Bool
    /// How many of the model's 1-D convolutions run as 2-D ones (see `ConvolutionRewrite`);
    /// 0 when the rewrite is off, found nothing, or its model did not load.
    public let restatedConvolutions: Int

    /// Loads the config and the model, for up to `concurrency` sentence runs at once: with more
    /// than one, and several threads configured, a one-thread session of the model serves the
    /// runs that overlap, and the wide one a run that is alone. Throws `SpeechError` naming the file and the problem
    /// (missing file, invalid JSON, missing `phoneme_id_map`, corrupt model, no CUDA).
    /// `rewriteConvolutions`: run the model's 1-D convolutions as 2-D ones, which ONNX Runtime's
    /// CPU kernels do faster with the same results (`ConvolutionRewrite`); ignored on CUDA.
    /// `cache`: where the rewritten model, optimized for this machine, is kept between loads
    /// (nil: built on every load). See `PiperModelLoader`.
    /// `timings`: the model reports its phoneme durations, and chunks carry word, sentence and
    /// viseme marks (off only to measure what they cost).
    /// `precision`: bf16 runs the convolutions Lark's kernel wins on in bfloat16 (`ComputePrecision`;
    /// needs the rewrite and AVX512-BF16: else the voice fails to load with the reason).
    public init(
        source: PiperVoiceSource, concurrency: Int = 1, configuration: SessionConfiguration = .init(),
        rewriteConvolutions: Bool = true, cache: OptimizedVoiceCache? = nil, timings: Bool = true,
        precision: ComputePrecision = .fp32
    ) throws(SpeechError) {
        let config = try PiperVoiceConfig.load(path: source.configPath)
        guard FileManager.default.fileExists(atPath: source.modelPath) else {
            throw .voiceFileMissing(path: source.modelPath)
        }
        if let reason = precision.unsupportedReason { throw .engineUnavailable(reason) }
        if precision == .bf16, !rewriteConvolutions || configuration.useCUDA {
            throw .engineUnavailable("precision bf16 runs on the convolution rewrite, on the CPU: not with the rewrite off or CUDA")
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
        let loaded: [InferenceSession]
        do {
            let result = try PiperModelLoader(
                source: source, configurations: configurations, runtime: runtime, rewrite: rewriteConvolutions, cache: cache,
                timings: timings, precision: precision
            ).load()
            loaded = result.sessions
            restatedConvolutions = result.restatedConvolutions
        } catch {
            if configuration.useCUDA, error.message.contains("CUDA") {
                throw .engineUnavailable(error.message)
            }
            throw .invalidModel(path: source.modelPath, reason: Self.firstLine(error.message))
        }
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
        wide = loaded.count > 1 ? loaded[0] : nil
        narrow = loaded[loaded.count - 1]
        info = Self.describe(id: source.id, modelPath: source.modelPath, config: config)
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
            quality: quality, sampleRate: config.sampleRate, speakers: config.speakerNames, source: nil,
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

    public func prepare(_ text: String, options: SynthesisOptions) throws(SpeechError) -> PreparedSynthesis {
        guard !text.trimmingWhitespace().isEmpty else { throw .emptyText }
        let settings = try resolve(options)
        return PreparedSynthesis(voice: info, text: text, options: options) { [self] admission in
            Synthesis(voice: self, text: text, settings: settings, admission: admission)
        }
    }

    /// One run of the model: a sentence, or a piece of a sentence too long to run whole.
    public struct ModelRun: Sendable, Equatable {
        /// 0-based position of the sentence the run belongs to.
        public var sentence: Int
        public var phonemes: [String]
        /// True for the second and later pieces of a cut sentence (no sentence silence before it).
        public var continuesSentence: Bool
        /// For each phoneme, the index in `words` of the word it says (empty without words).
        public var owners: [Int?] = []
        /// The words of the run's sentence (UTF-8 byte ranges in the text).
        public var words: [TextWord] = []
        /// Where the run's sentence is in the text (UTF-8 bytes), where known.
        public var sentenceBytes: Range<Int>?
    }

    /// The model runs for `text`: its sentences, each cut into pieces when it is too long to run
    /// whole at this length scale (see `LongSentenceSplitter`). `withWords`: also find which
    /// word each phoneme says, for timings (see `WordAlignment`).
    public func modelRuns(for text: String, lengthScale: Float = 1, withWords: Bool = false) async throws(SpeechError) -> [ModelRun] {
        let limit = LongSentenceSplitter.limit(lengthScale: lengthScale)
        return try await phonemizer.sentences(of: text, withWords: withWords).enumerated().flatMap { index, sentence in
            var start = 0
            return LongSentenceSplitter.pieces(of: sentence.phonemes, limit: limit).enumerated().map { piece, phonemes in
                defer { start += phonemes.count }
                return ModelRun(
                    sentence: index, phonemes: phonemes, continuesSentence: piece > 0,
                    owners: withWords ? Array(sentence.owners[start..<start + phonemes.count]) : [],
                    words: withWords ? sentence.words : [], sentenceBytes: sentence.textBytes)
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

    /// One text's synthesis: phonemized on the first call, then one model run per call, each
    /// under the admission (a place per run, on a synthesis thread).
    private actor Synthesis: AudioChunkProducer {
        let voice: PiperVoice
        let text: String
        let settings: ResolvedSettings
        let admission: any SynthesisAdmission
        private var runs: [ModelRun]?
        private var position = 0

        init(voice: PiperVoice, text: String, settings: ResolvedSettings, admission: any SynthesisAdmission) {
            self.voice = voice
            self.text = text
            self.settings = settings
            self.admission = admission
        }

        func next() async throws -> AudioChunk? {
            let timed = voice.reportsDurations
            if runs == nil { runs = try await voice.modelRuns(for: text, lengthScale: settings.lengthScale, withWords: timed) }
            guard let runs, position < runs.count else { return nil }
            let run = runs[position]
            position += 1
            try Task.checkCancellation()
            let (ids, spans, _) = voice.mapper.idsWithSpans(for: run.phonemes)
            let output = try await voice.run(ids, settings: settings, admission: admission)
            var samples = output.samples
            var offset = 0
            if run.sentence > 0, !run.continuesSentence, settings.silenceSamples > 0 {
                samples.insert(contentsOf: repeatElement(0, count: settings.silenceSamples), at: 0)
                offset = settings.silenceSamples
            }
            var marks: [SpeechMark] = []
            if let frames = output.frames, frames.count == ids.count,
               let hop = PiperMarks.hopLength(samples: output.samples.count, frames: frames) {
                if utf8 == nil { utf8 = Array(text.utf8) }
                marks = PiperMarks.marks(for: run, spans: spans, frames: frames, hop: hop, offset: offset, text: utf8!)
            }
            return AudioChunk(
                samples: samples, sampleRate: voice.config.sampleRate, sentenceIndex: run.sentence, phonemes: run.phonemes.joined(),
                sentenceCount: (runs.last?.sentence ?? run.sentence) + 1, marks: marks)
        }

        private var utf8: [UInt8]?
    }

    /// Phoneme ids (times the length scale) past which a run gives its arena growth back: about
    /// 200 phonemes, a long sentence of ordinary text.
    static let largeRunIDs: Float = 400

    /// Runs the model on one sentence's ids, in a place the admission gives: on the wide session
    /// when the run is alone, else on the narrow one. Cancelling the calling task stops the run.
    public func audio(for ids: [Int64], settings: ResolvedSettings, admission: any SynthesisAdmission) async throws -> [Int16] {
        try await run(ids, settings: settings, admission: admission).samples
    }

    /// Stops the profiler of a voice loaded with `SessionConfiguration.profilePrefix` and writes
    /// its traces: one file per session (the wide one first), for `SessionProfile`.
    public func endProfiling() throws(SpeechError) -> [String] {
        do {
            return try [wide, narrow].compactMap { $0 }.map { session throws(OnnxRuntimeError) in try session.endProfiling() }
        } catch {
            throw .synthesisFailed("cannot write the model's profile: \(error.message)")
        }
    }

    /// Whether the model reports how many frames it holds each phoneme id (`DurationOutput`),
    /// which word timings come from.
    public var reportsDurations: Bool { narrow.outputNames.contains(DurationOutput.outputName) }

    /// A run's samples, and each id's frames where the model reports them.
    func run(
        _ ids: [Int64], settings: ResolvedSettings, admission: any SynthesisAdmission
    ) async throws -> (samples: [Int16], frames: [Float]?) {
        var inputs: [InputTensor] = [
            .int64(name: "input", shape: [1, Int64(ids.count)], values: ids),
            .int64(name: "input_lengths", shape: [1], values: [Int64(ids.count)]),
            .float32(name: "scales", shape: [3], values: [settings.noiseScale, settings.lengthScale, settings.noiseW]),
        ]
        if let speaker = settings.speakerID {
            inputs.append(.int64(name: "sid", shape: [1], values: [Int64(speaker)]))
        }
        let modelInputs = inputs
        let (wide, narrow) = (wide, narrow)
        let large = Float(ids.count) * settings.lengthScale > Self.largeRunIDs
        let requested = admission.memory
        let outputs = try await admission.withPlace { place in
            try Task.checkCancellation()
            let session = place.alone ? wide ?? narrow : narrow
            let cancellation = try RunCancellation(
                runtime: session.runtime,
                shrinkArena: Self.shrinksArena(after: session.configuration.memory, large: large, requested: requested))
            var names = [session.outputNames[0]]
            if session.outputNames.contains(DurationOutput.outputName) { names.append(DurationOutput.outputName) }
            let outputNames = names
            return try await place.runBlocking(interrupt: cancellation.terminate) { () throws -> [[Float]] in
                do {
                    return try session.run(modelInputs, outputs: outputNames, cancellation: cancellation)
                } catch {
                    throw SpeechError.synthesisFailed(Self.firstLine(String(describing: error)))
                }
            }
        }
        try Task.checkCancellation()
        return (PiperPCM.int16Samples(from: outputs[0]), outputs.count > 1 ? outputs[1] : nil)
    }

    /// Whether a run gives the arena's free memory back once it ends: the one place that decides.
    /// ONNX Runtime's arena grows to the largest runs it has seen and keeps that size (and
    /// fragments as runs of different lengths come and go). With the arena kept (`--memory
    /// arena`, the default), interactive runs keep it warm; a run far longer than a sentence of
    /// ordinary text (`large`: its ids times its length scale) gives its growth back, so a few
    /// long or stretched texts do not raise a server's memory for good; so does every run of work
    /// that asks for it (`requested`: a job, whose thousands of runs would otherwise grow the
    /// arena for good).
    static func shrinksArena(after memory: SessionConfiguration.MemoryPolicy, large: Bool, requested: ModelMemory?) -> Bool {
        switch memory {
        case .noArena: return false
        case .shrinkAfterRun: return true
        case .arena: return large || (requested.map { $0 != .keep } ?? false)
        }
    }

    private static func firstLine(_ message: String) -> String {
        String(message.split(whereSeparator: \.isNewline).first ?? Substring(message))
    }
}
