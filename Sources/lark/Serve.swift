import ArgumentParser
import AccessControl
import Foundation
import Hummingbird
import LarkServer
import Logging
import SpeechCore
import ServiceLifecycle
import SpeechJobs
import SpeechService
import JobWorkers
import VoiceCatalog

/// `lark serve`: Piper's server options (dash and underscore spellings), plus Lark's own.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP server (Piper-compatible and streaming APIs).")

    @Option(help: "Address to listen on. Env: LARK_HOST.") var host: String?
    @Option(help: "Port to listen on. Env: LARK_PORT.") var port: Int?
    @Option(name: [.short, .customLong("model")], help: "Default voice: a name in a data directory (downloaded from the catalog when none has it; aliases work), or a path to its .onnx (requests can only name voices). Env: LARK_MODEL.") var model: String?
    @Option(name: [.short, .long], help: "The voice's .onnx.json when -m is a model path (default: the model path + .json).") var config: String?
    @Option(name: [.short, .long], help: "Speaker id or name used when a request gives none.") var speaker: String?
    @Option(name: [.customLong("length-scale"), .customLong("length_scale")], help: "Default phoneme length (above 1 is slower).") var lengthScale: Float?
    @Option(name: [.customLong("noise-scale"), .customLong("noise_scale")], help: "Default generator noise.") var noiseScale: Float?
    @Option(name: [.customLong("noise-w"), .customLong("noise_w")], help: "Default phoneme width noise.") var noiseW: Float?
    @Option(name: [.customLong("sentence-silence"), .customLong("sentence_silence")], help: "Default seconds of silence between sentences.") var sentenceSilence: Double?
    @Option(help: "Sentences synthesized at once, and requests served at once (default: one per core). Env: LARK_WORKERS.") var workers: Int?
    @Option(name: [.customLong("max-queue"), .customLong("max_queue")], help: "Requests that may wait for a worker before the server answers 503 (default 16). Env: LARK_MAX_QUEUE.") var maxQueue: Int?
    @Option(name: [.customLong("max-text-chars"), .customLong("max_text_chars")], help: "Longest text accepted (default 10000). Env: LARK_MAX_TEXT_CHARS.") var maxTextChars: Int?
    @Option(name: [.customLong("write-timeout"), .customLong("write_timeout")],
            help: "Seconds a client may take no audio at all before its connection is closed and its synthesis cancelled (default 30). Env: LARK_WRITE_TIMEOUT.")
    var writeTimeout: Int?
    @Option(name: [.customLong("max-request-audio"), .customLong("max_request_audio")],
            help: "The most audio one synchronous request makes: 20m, 90s, 1h (default 20m); a whole file past it is 413 audio_too_long, a stream ends there. Env: LARK_MAX_REQUEST_AUDIO.")
    var maxRequestAudio: String?
    @Flag(name: [.customLong("update-voices"), .customLong("update_voices")],
          help: "Fetch the voice catalog again before starting (it is cached in the download directory).")
    var updateVoices = false
    @Flag(name: [.customLong("allow-downloads"), .customLong("allow_downloads")],
          help: "Let clients install catalog voices with POST /api/v1/voices/{name}/download. Env: LARK_ALLOW_DOWNLOADS=1.")
    var allowDownloads = false
    @Flag(help: "Log at debug level.") var debug = false
    @Option(name: .customLong("member"), help: "POST /api/texts: a member and the voice it speaks with, as ID=VOICE (repeatable).")
    var members: [String] = []
    @Option(name: [.customLong("members-file"), .customLong("members_file")],
            help: "POST /api/texts: a JSON object mapping member ids to voices. Env: LARK_MEMBERS_FILE.")
    var membersFile: String?
    @Option(name: [.customLong("public-url"), .customLong("public_url")],
            help: "How clients reach this server, for job audio URLs (default http://HOST:PORT). Env: LARK_PUBLIC_URL.")
    var publicURL: String?
    @Flag(name: [.customLong("disable-jobs"), .customLong("disable_jobs")], help: "Serve no job API and run no job workers.")
    var disableJobs = false
    @Option(name: .customLong("openai-max-input"), help: "POST /v1/audio/speech: the longest input, in characters (default 4096, as OpenAI).")
    var openAIMaxInput: Int?
    @Option(name: .customLong("openai-voice"), help: "POST /v1/audio/speech: an OpenAI voice name and the voice that speaks for it, as NAME=VOICE[#SPEAKER] (repeatable; unmapped OpenAI names use the default voice).")
    var openAIVoices: [String] = []
    @Option(name: .customLong("openai-voices-file"), help: "A JSON object of OpenAI voice names to VOICE[#SPEAKER] (the options win).")
    var openAIVoicesFile: String?
    @Option(name: .customLong("polly-voice"), help: "POST /v1/speech: a Polly VoiceId and the voice that speaks for it, as NAME=VOICE[#SPEAKER] (repeatable).")
    var pollyVoices: [String] = []
    @OptionGroup(title: "Wyoming (Home Assistant)") var wyoming: WyomingOptions

    @OptionGroup var engine: EngineOptions
    @OptionGroup(title: "Jobs") var jobOptions: JobOptions
    @OptionGroup(title: "Access") var access: AccessOptions
    @Option(name: [.customLong("header-timeout"), .customLong("header_timeout")],
            help: "Seconds a new connection may take to send a request's head (default 10). Env: LARK_HEADER_TIMEOUT.")
    var headerTimeout: Int?
    @Option(name: [.customLong("idle-timeout"), .customLong("idle_timeout")],
            help: "Seconds a keep-alive connection may wait between requests (default 60). Env: LARK_IDLE_TIMEOUT.")
    var idleTimeout: Int?
    @Option(name: [.customLong("max-connections"), .customLong("max_connections")],
            help: "Connections open at once; past it a new one is answered 503 and closed (default 1024). Env: LARK_MAX_CONNECTIONS.")
    var maxConnections: Int?
    @OptionGroup var normalization: NormalizationOptions
    @OptionGroup var catalog: CatalogOptions

    func run() async throws {
        try await start(servingHTTP: true)
    }

    /// Runs the server: HTTP (with jobs) and, when asked, Wyoming; `servingHTTP` false runs
    /// Wyoming alone (`lark wyoming`).
    func start(servingHTTP: Bool) async throws {
        let defaultOptions = try checkedDefaults(SynthesisOptions(
            speaker: speaker.map(SpeakerSelector.init), lengthScale: lengthScale, noiseScale: noiseScale,
            noiseW: noiseW, sentenceSilence: sentenceSilence))
        let environment = ProcessInfo.processInfo.environment
        let workers = max(1, workers ?? environment["LARK_WORKERS"].flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount)
        var engineConfiguration = engine.engineConfiguration(
            workers: workers, defaultThreads: ProcessInfo.processInfo.activeProcessorCount, allowVoicePaths: false)
        let catalogSettings = catalog.settings(dataDirectories: engineConfiguration.dataDirectories)
        engineConfiguration.dataDirectories = catalog.searchDirectories(engineConfiguration.dataDirectories)
        let http = CatalogHTTPClient()
        let installer = VoiceInstaller(settings: catalogSettings, dataDirectories: engineConfiguration.dataDirectories, http: http)
        var logger = Logger(label: "lark")
        logger.logLevel = debug ? .debug : .info
        var services = LarkServices(voiceLibrary: VoiceLibrary(configuration: engineConfiguration), catalogClient: http)
        var startupFailure: (any Error)?
        do {
            try await open(&services, installer: installer, workers: workers, defaultOptions: defaultOptions, servingHTTP: servingHTTP, logger: logger)
        } catch {
            startupFailure = error
        }
        // Serves until SIGTERM or SIGINT; a failed start-up only closes what was opened.
        try await services.serviceGroup(startupFailure: startupFailure, logger: logger).run()
    }

    /// Loads the default voice, opens the jobs and builds the HTTP and Wyoming servers, into
    /// `services`. Start-up failures are reported as one-line messages (`ExitCode`).
    private func open(
        _ services: inout LarkServices, installer: VoiceInstaller, workers: Int, defaultOptions: SynthesisOptions,
        servingHTTP http: Bool, logger: Logger
    ) async throws {
        let library = services.voiceLibrary
        let environment = ProcessInfo.processInfo.environment
        let defaultVoice: String
        do {
            defaultVoice = try await prepareDefaultVoice(library: library, installer: installer, logger: logger)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(describe(error))
        }
        var configuration = ServerConfiguration(
            host: host ?? environment["LARK_HOST"] ?? "127.0.0.1",
            port: port ?? environment["LARK_PORT"].flatMap(Int.init) ?? 5000,
            defaultVoice: defaultVoice,
            defaultOptions: defaultOptions,
            workers: workers,
            maxQueue: maxQueue ?? environment["LARK_MAX_QUEUE"].flatMap(Int.init) ?? 16,
            maxTextCharacters: maxTextChars ?? environment["LARK_MAX_TEXT_CHARS"].flatMap(Int.init) ?? 10_000,
            maxRequestAudio: try Self.requestAudioLimit(maxRequestAudio ?? environment["LARK_MAX_REQUEST_AUDIO"]),
            allowDownloads: allowDownloads || environmentFlag(environment["LARK_ALLOW_DOWNLOADS"]) == true,
            writeTimeout: .seconds(max(1, writeTimeout ?? environment["LARK_WRITE_TIMEOUT"].flatMap(Int.init) ?? 30)),
            normalize: normalization.normalize)
        do {
            configuration.openAI = OpenAISettings(
                maxInputCharacters: max(1, openAIMaxInput ?? 4096),
                voices: try await voiceMap(openAIVoices, file: openAIVoicesFile, option: "--openai-voice", library: library))
            configuration.polly = PollySettings(voices: try await voiceMap(pollyVoices, file: nil, option: "--polly-voice", library: library))
        } catch {
            throw fail(describe(error))
        }
        try configureAccess(&configuration, logger: logger)
        configuration.headerTimeout = .seconds(max(1, headerTimeout ?? environment["LARK_HEADER_TIMEOUT"].flatMap(Int.init) ?? 10))
        configuration.idleTimeout = .seconds(max(1, idleTimeout ?? environment["LARK_IDLE_TIMEOUT"].flatMap(Int.init) ?? 60))
        configuration.maxConnections = max(1, maxConnections ?? environment["LARK_MAX_CONNECTIONS"].flatMap(Int.init) ?? 1024)
        let metrics = ServerMetrics()
        metrics.bootstrapSwiftMetrics()
        let scheduler = metrics.makeScheduler(workers: configuration.workers, maxQueue: configuration.maxQueue)
        services.synthesisScheduler = scheduler
        var jobsContext: JobsContext?
        if http, !disableJobs {
            do {
                let resolved = try jobOptions.resolve(defaultWorkers: 1)
                let memberVoices = try memberMap()
                for (member, voice) in memberVoices.sorted(by: { $0.key < $1.key }) {
                    do { _ = try await library.voice(voice) } catch {
                        throw ValidationError("--member \(member)=\(voice): \(describe(error))")
                    }
                }
                let system = try await JobSystem.open(
                    resolved, into: &services, library: library, defaults: configuration.defaultOptions,
                    normalize: configuration.normalize, scheduler: scheduler,
                    publicURL: publicURL ?? environment["LARK_PUBLIC_URL"] ?? "http://\(configuration.host):\(configuration.port)",
                    logger: logger)
                jobsContext = JobsContext(
                    store: system.store, objects: system.objects, renderer: system.renderer, presenter: system.presenter,
                    workers: system.workers, callbacks: resolved.callbacks, maxAttempts: resolved.maxAttempts, members: memberVoices)
            } catch {
                throw fail(describe(error))
            }
        }
        if http {
            let app = buildApplication(
                configuration: configuration, library: library, metrics: metrics, scheduler: scheduler, jobs: jobsContext, logger: logger,
                installer: installer)
            services.servers.append(("http server", app))
        }
        services.servers += try wyoming.services(
            http: configuration, standalone: http ? nil : (host, port), library: library, scheduler: scheduler, metrics: metrics,
            logger: logger)
    }

    /// Keys, rate limits and CORS; a warning when the server listens beyond this machine with
    /// no keys.
    private func configureAccess(_ configuration: inout ServerConfiguration, logger: Logger) throws {
        let keyFile = KeyFile(path: access.keysPath(jobsDir: jobOptions.jobsDir))
        do {
            configuration.keys = try KeyRing(file: keyFile)
        } catch {
            throw fail(error.description)
        }
        configuration.rateLimits = try access.limits()
        configuration.corsOrigins = try access.origins()
        if configuration.keys?.enforcing == true {
            logger.info("API keys required (\(configuration.keys?.keys.count ?? 0) in \(keyFile.path))")
        } else if !Self.isLoopback(configuration.host) {
            logger.warning(
                "listening on \(configuration.host) with no API keys: anyone who can reach this port can use every route; add keys with `lark keys add NAME` (file \(keyFile.path))")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refreshes the catalog when asked, downloads the `-m` voice when no data directory has it
    /// (as Piper's server does; an alias works too), and loads it before the server listens, so
    /// the first request does not pay for it. Answers the default voice's id.
    private func prepareDefaultVoice(library: VoiceLibrary, installer: VoiceInstaller, logger: Logger) async throws -> String {
        var requested = model ?? ProcessInfo.processInfo.environment["LARK_MODEL"] ?? "en_US-joe-medium"
        if updateVoices {
            let fetched = try await installer.update()
            logger.info("voice catalog updated: \(fetched.voices.count) voices, cached in \(installer.settings.cachedCatalogPath)")
        }
        // Only the operator may name a voice by path; requests name voices by id.
        if config != nil || requested.hasSuffix(".onnx") || requested.contains("/") {
            return try await library.voice(modelPath: requested, configPath: config).info.id
        }
        if !requested.hasPrefix("espeak-ng:"), installer.directories.locate(requested, allowPaths: false) == nil {
            let result: InstalledVoice
            do {
                result = try await installer.install(requested, progress: ProgressPrinter().handler)
            } catch {
                throw fail("voice '\(requested)' is in no data directory (\(installer.directories.directories.joined(separator: ", "))) and was not downloaded: \(error.message)")
            }
            if result.downloaded {
                logger.info("downloaded voice \(result.voice.key) into \(installer.settings.downloadDirectory)")
            }
            requested = result.voice.key
        }
        if let cached = installer.cachedCatalog() { await library.setAliases(cached.aliases) }
        return try await library.voice(requested).info.id
    }

    /// `--max-request-audio` (default 20 minutes), reported as a one-line start-up error when malformed.
    private static func requestAudioLimit(_ text: String?) throws -> Duration {
        do {
            return try JobOptions.duration(text ?? "20m", option: "--max-request-audio")
        } catch {
            throw fail(describe(error))
        }
    }

    /// `NAME=VOICE[#SPEAKER]` options over a JSON file of `NAME: "VOICE[#SPEAKER]"`, each voice
    /// checked to exist (a wrong mapping stops the start, not a request).
    private func voiceMap(_ entries: [String], file: String?, option: String, library: VoiceLibrary) async throws -> VoiceNameMap {
        var map = VoiceNameMap()
        if let file {
            guard let data = FileManager.default.contents(atPath: file),
                  let object = try? JSONDecoder().decode([String: String].self, from: data)
            else { throw ValidationError("\(option)s file \(file) is not a readable JSON object of voice names to VOICE[#SPEAKER]") }
            for (name, voice) in object.sorted(by: { $0.key < $1.key }) {
                guard map.add("\(name)=\(voice)") else {
                    throw ValidationError("\(file): '\(name)' maps to '\(voice)', which is not VOICE[#SPEAKER]")
                }
            }
        }
        for entry in entries {
            guard map.add(entry) else { throw ValidationError("\(option) takes NAME=VOICE[#SPEAKER], got '\(entry)'") }
        }
        for (name, mapped) in map.entries.sorted(by: { $0.key < $1.key }) {
            do { _ = try await library.voice(mapped.voice) } catch {
                throw ValidationError("\(option) \(name)=\(mapped.voice): \(describe(error))")
            }
        }
        return map
    }

    /// `--member ID=VOICE` options and the `--members-file` JSON object, the options winning.
    private func memberMap() throws -> [String: String] {
        var map: [String: String] = [:]
        if let path = membersFile ?? ProcessInfo.processInfo.environment["LARK_MEMBERS_FILE"] {
            guard let data = FileManager.default.contents(atPath: path),
                  let object = try? JSONDecoder().decode([String: String].self, from: data)
            else { throw ValidationError("--members-file \(path) is not a readable JSON object of member id to voice name") }
            map = object
        }
        for entry in members {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--member takes ID=VOICE, got '\(entry)'")
            }
            map[parts[0]] = parts[1]
        }
        return map
    }
}
