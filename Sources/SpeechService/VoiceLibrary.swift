import Foundation
import Espeak
import EspeakEngine
import NIOPosix
import OnnxRuntime
import PiperEngine
import SpeechCore
import TextNormalization
import VoiceCatalog

/// Settings for the engines, parsed at the edge (arguments, environment) by the executable.
public struct EngineConfiguration: Sendable {
    /// Where Piper voices are looked up, in order.
    public var dataDirectories: [String]
    /// The directory that holds `espeak-ng-data` (nil: espeak-ng's default location).
    public var espeakDataPath: String?
    /// ONNX Runtime threads inside a model run that runs alone; runs that overlap other
    /// requests get one thread each (see `SessionPool`).
    public var threadsPerSession: Int
    /// ONNX Runtime's threads busy-wait between a run's parallel parts instead of sleeping
    /// (`SessionConfiguration.spinning`): faster on an idle machine, slower on a shared one.
    public var spinWait = true
    /// Model copies per Piper voice, and threads in the synthesis pool: how many sentences run at once.
    public var workers: Int
    public var useCUDA: Bool
    /// What ONNX Runtime does with a run's memory afterwards.
    public var memory: ModelMemory
    /// Whether voices may be named by a file path (the CLI allows it; the server does not).
    public var allowVoicePaths: Bool
    /// Run Piper models' 1-D convolutions as 2-D ones (faster on the CPU, same audio).
    public var rewriteConvolutions: Bool
    /// Where Piper voices optimized for this machine are kept between loads (nil: none kept).
    public var voiceCache: OptimizedVoiceCache?
    /// The arithmetic of Piper voices' convolutions (`ComputePrecision`; bf16 needs the rewrite).
    public var precision: ComputePrecision = .fp32
    /// Piper voices report their phoneme durations and give word timings (off only to measure
    /// what timings cost: `lark bench --compare-timings`).
    public var timings = true
    /// Piper voices' sessions record ONNX Runtime profiles under this path prefix (only to
    /// measure: `lark bench --flops` and `--profile`; see `PiperVoice.endProfiling`).
    public var profilePrefix: String?

    public init(
        dataDirectories: [String], espeakDataPath: String?, threadsPerSession: Int = 1, workers: Int = 1,
        useCUDA: Bool = false, allowVoicePaths: Bool = false, memory: ModelMemory = .keep,
        rewriteConvolutions: Bool = true, voiceCache: OptimizedVoiceCache? = nil
    ) {
        self.voiceCache = voiceCache
        self.memory = memory
        self.rewriteConvolutions = rewriteConvolutions
        self.dataDirectories = dataDirectories
        self.espeakDataPath = espeakDataPath
        self.threadsPerSession = threadsPerSession
        self.workers = workers
        self.useCUDA = useCUDA
        self.allowVoicePaths = allowVoicePaths
    }
}

/// Every voice Lark can speak with, by id: Piper voices in the data directories and espeak-ng's
/// own voices. Piper voices are loaded on first use and kept, once per model file however they
/// are named (name, alias, `name.onnx`, path). Models load on a thread of their own, so a voice
/// being loaded never delays synthesis with a voice already loaded.
///
/// A voice's files may change while it is loaded (`VoiceFileStamp`, checked on every request):
/// a replaced model or config is loaded again, and requests already running finish with the
/// old one; a deleted model leaves the loaded voice as it is (its sessions hold the model in
/// memory) until the process restarts.
public actor VoiceLibrary {
    public let configuration: EngineConfiguration
    private let directories: VoiceDirectories
    private let loader: NIOThreadPool
    /// Loaded and loading Piper voices by their model file's resolved path, with the stamp of
    /// the files they were loaded from.
    private var models: [String: (task: Task<any SpeechVoice, any Error>, stamp: VoiceFileStamp?)] = [:]
    /// Loads that failed on the files themselves (a corrupt model, an unreadable config), by
    /// model path: the same files fail again at once, without a new load; changed files are tried.
    private var failedLoads: [String: (stamp: VoiceFileStamp, error: SpeechError)] = [:]
    /// What each loaded Piper voice is, by model path (for listings: they never wait for a load).
    private var loadedInfo: [String: VoiceInfo] = [:]
    /// Names already resolved to a model path, so that a request does not scan the directories.
    private var located: [String: PiperVoiceSource] = [:]
    private var espeakVoices: [String: EspeakVoice]?
    /// Former voice names (from the catalog's `aliases`) and the voice key each stands for.
    private var aliases: [String: String] = [:]

    public init(configuration: EngineConfiguration) {
        self.configuration = configuration
        directories = VoiceDirectories(configuration.dataDirectories)
        loader = NIOThreadPool(numberOfThreads: 1)
        loader.start()
    }

    /// Lets old names select voices: `alias → key`, from the voice catalog. An alias never
    /// shadows a voice that is installed under that name.
    public func setAliases(_ aliases: [String: String]) {
        self.aliases = aliases
    }

    /// Stops the loading thread (after a load in progress).
    public func shutdown() async throws {
        try await loader.shutdownGracefully()
    }

    /// Starts espeak-ng with the configured data (needed by both engines). Safe to call twice.
    public func startEspeak() async throws(SpeechError) {
        try await EspeakRuntime.shared.start(dataPath: configuration.espeakDataPath)
    }

    /// Descriptions of every voice, Piper voices first. Reads configs only; loads no model.
    public func voices() async throws(SpeechError) -> [VoiceInfo] {
        var infos: [VoiceInfo] = []
        for files in directories.scan() {
            guard let config = try? PiperVoiceConfig.load(path: files.configPath) else { continue }
            var info = PiperVoice.describe(id: files.name, modelPath: files.modelPath, config: config)
            // Listings never show server paths: which data directory, by its place in the list.
            info.source = files.directoryIndex.map { "data-dir:\($0)" }
            infos.append(info)
        }
        // Voices loaded from explicit paths (`--model path.onnx`) are not in any data directory.
        let scanned = Set(infos.map(\.id))
        infos += loadedInfo.values.filter { !scanned.contains($0.id) }.sorted { $0.id < $1.id }.map { loaded in
            var info = loaded
            info.source = "model-option"
            return info
        }
        let espeak = try await espeakVoiceMap().values.map(\.info)
        infos += Dictionary(espeak.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }).values.sorted { $0.id < $1.id }
        return infos
    }

    /// Everything a synthesis is checked for before any work starts (live requests and jobs
    /// alike), once: a text that is not blank, `options` merged over `defaults` and valid, and a
    /// voice that exists and accepts them. Answers the synthesis, ready to start.
    public func prepare(
        _ input: SpeechInput, voiceID: String, options: SynthesisOptions, defaults: SynthesisOptions
    ) async throws -> PreparedSynthesis {
        guard !input.text.trimmingWhitespace().isEmpty else { throw SpeechError.emptyText }
        let voice = try await voice(voiceID)
        return try await prepare(input, voice: voice, options: options.merged(over: defaults))
    }

    /// The one way from a caller's input to a voice's synthesis, for every route, job and
    /// command: SSML is parsed and plain text normalized here, before the voice sees it.
    public func prepare(
        _ input: SpeechInput, voice: any SpeechVoice, options: SynthesisOptions
    ) async throws -> PreparedSynthesis {
        switch input.markup {
        case .text:
            guard input.normalize, let normalizer = TextNormalizer.for(languageCode: voice.info.languageCode) else {
                return try voice.prepare(input.text, options: options)
            }
            return try NormalizedSynthesis.prepare(input.text, normalizer: normalizer, voice: voice, options: options)
        case .ssml:
            return try await prepareSSML(input, voice: voice, options: options)
        }
    }

    /// The voice with this id (Piper file stem, model path where allowed, or `espeak-ng:<language>`).
    public func voice(_ id: String) async throws -> any SpeechVoice {
        if id.hasPrefix(EspeakVoice.idPrefix) {
            let name = String(id.dropFirst(EspeakVoice.idPrefix.count))
            let map = try await espeakVoiceMap()
            guard let voice = map[name] ?? map[name.lowercased()] else {
                let canonical = Set(map.values.map(\.info.id))
                throw SpeechError.unknownVoice(id, available: canonical.sorted())
            }
            return voice
        }
        if let source = located[id] { return try await load(source) }
        guard let files = directories.locate(id, allowPaths: configuration.allowVoicePaths) else {
            if let key = aliases[id], key != id, directories.locate(key, allowPaths: false) != nil {
                return try await voice(key)
            }
            throw SpeechError.unknownVoice(id, available: await availableIDs())
        }
        let source = PiperVoiceSource(id: files.name, modelPath: files.modelPath, configPath: files.configPath)
        let voice = try await load(source)
        located[id] = source
        return voice
    }

    /// Loads a voice from explicit model and config paths (`--model` with `--config`); requests
    /// can then name it by its id (the file's stem), never by the path.
    public func voice(modelPath: String, configPath: String?) async throws -> any SpeechVoice {
        let source = PiperVoiceSource(id: VoiceFiles.stem(of: modelPath), modelPath: modelPath, configPath: configPath)
        let voice = try await load(source)
        if located[source.id] == nil, directories.locate(source.id, allowPaths: false) == nil { located[source.id] = source }
        return voice
    }

    /// The voice of `source`'s model file: the one already loaded or loading, else a new load.
    /// The task is registered before anything awaits, so concurrent first requests share it.
    private func load(_ source: PiperVoiceSource) async throws -> any SpeechVoice {
        let key = URL(fileURLWithPath: source.modelPath).resolvingSymlinksInPath().standardizedFileURL.path
        let stamp = VoiceFileStamp(source)
        if let loaded = models[key] {
            // Deleted: the loaded voice goes on. Unchanged: it is the one. Replaced: load again.
            if stamp == nil || stamp == loaded.stamp { return try await loaded.task.value }
            models[key] = nil
            loadedInfo[key] = nil
        }
        if let stamp, let failed = failedLoads[key], failed.stamp == stamp { throw failed.error }
        let (configuration, loader) = (configuration, loader)
        let task = Task<any SpeechVoice, any Error> {
            try await EspeakRuntime.shared.start(dataPath: configuration.espeakDataPath)
            return try await loader.runIfActive {
                try PiperVoice(
                    source: source, concurrency: configuration.workers,
                    configuration: SessionConfiguration(
                        intraOpThreads: configuration.threadsPerSession, interOpThreads: 1, useCUDA: configuration.useCUDA,
                        memory: .init(configuration.memory), profilePrefix: configuration.profilePrefix,
                        spinning: configuration.spinWait),
                    rewriteConvolutions: configuration.rewriteConvolutions, cache: configuration.voiceCache,
                    timings: configuration.timings, precision: configuration.precision)
            }
        }
        models[key] = (task, stamp)
        do {
            let voice = try await task.value
            loadedInfo[key] = voice.info
            failedLoads[key] = nil
            return voice
        } catch {
            // A failed load is not kept: the next request tries again (the file may be fixed),
            // at once when the files are what failed and have not changed since.
            if models[key]?.task == task { models[key] = nil }
            if let stamp, let error = error as? SpeechError, Self.isFault(ofFiles: error) { failedLoads[key] = (stamp, error) }
            throw error
        }
    }

    /// Whether a failed load was the voice's files' fault (not the machine's, such as memory).
    private static func isFault(ofFiles error: SpeechError) -> Bool {
        switch error {
        case .invalidModel, .invalidVoiceConfig: true
        default: false
        }
    }

    private func availableIDs() async -> [String] {
        directories.scan().map(\.name) + ["espeak-ng:<language>, e.g. espeak-ng:en-us (see `lark voices`)"]
    }

    private func espeakVoiceMap() async throws(SpeechError) -> [String: EspeakVoice] {
        if let espeakVoices { return espeakVoices }
        try await startEspeak()
        let voices = try await EspeakVoice.all()
        var map = Dictionary(voices.map { ($0.espeakName, $0) }, uniquingKeysWith: { first, _ in first })
        // Aliases never shadow a canonical name (`en` stays the `en` voice, not `en-us`'s alias).
        for voice in voices {
            for alias in voice.aliases where map[alias] == nil { map[alias] = voice }
        }
        espeakVoices = map
        return map
    }
}

extension VoiceFiles {
    /// `a/b/en_US-joe-medium.onnx` → `en_US-joe-medium`.
    static func stem(of modelPath: String) -> String {
        let file = modelPath.split(separator: "/").last.map(String.init) ?? modelPath
        return file.hasSuffix(".onnx") ? String(file.dropLast(5)) : file
    }
}
