import ArgumentParser
import Foundation
import JobWorkers
import LarkServer
import Logging
import ServiceLifecycle
import SpeechCore
import SpeechService

/// `lark worker`: job workers alone, no HTTP. Any number of them, on any number of machines,
/// share one queue (`--queue postgres://…`) and one store (`--storage s3://…`).
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run job workers without the HTTP server (many processes can share a PostgreSQL queue).")

    @Option(name: [.customLong("length-scale"), .customLong("length_scale")], help: "Default phoneme length for jobs that give none.") var lengthScale: Float?
    @Option(name: [.customLong("noise-scale"), .customLong("noise_scale")], help: "Default generator noise.") var noiseScale: Float?
    @Option(name: [.customLong("noise-w"), .customLong("noise_w")], help: "Default phoneme width noise.") var noiseW: Float?
    @Option(name: [.customLong("sentence-silence"), .customLong("sentence_silence")], help: "Default seconds of silence between sentences.") var sentenceSilence: Double?
    @Option(name: [.customLong("public-url"), .customLong("public_url")],
            help: "The server clients fetch local audio from, for callback audio URLs (default http://127.0.0.1:5000). Env: LARK_PUBLIC_URL.")
    var publicURL: String?
    @Flag(help: "Log at debug level.") var debug = false

    @OptionGroup var engine: EngineOptions
    @OptionGroup var normalization: NormalizationOptions
    @OptionGroup(title: "Jobs") var jobOptions: JobOptions

    func run() async throws {
        let defaults = try checkedDefaults(
            SynthesisOptions(lengthScale: lengthScale, noiseScale: noiseScale, noiseW: noiseW, sentenceSilence: sentenceSilence))
        var logger = Logger(label: "lark.worker")
        logger.logLevel = debug ? .debug : .info
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let resolved: JobOptions.Resolved
        do {
            resolved = try jobOptions.resolve(defaultWorkers: cores)
        } catch {
            throw fail(describe(error))
        }
        guard resolved.workers > 0 else { throw fail("--job-workers must be at least 1 for a worker") }
        let library = VoiceLibrary(
            configuration: engine.engineConfiguration(workers: resolved.workers, defaultThreads: 1, allowVoicePaths: false))
        let scheduler = SynthesisScheduler(workers: resolved.workers, maxQueue: 0)
        var services = LarkServices(voiceLibrary: library)
        services.synthesisScheduler = scheduler
        var startupFailure: (any Error)?
        do {
            _ = try await JobSystem.open(
                resolved, into: &services, library: library, defaults: defaults, normalize: normalization.normalize,
                scheduler: scheduler,
                publicURL: publicURL ?? ProcessInfo.processInfo.environment["LARK_PUBLIC_URL"] ?? "http://127.0.0.1:5000", logger: logger)
        } catch {
            startupFailure = fail(describe(error))
        }
        // The same group as `lark serve`'s, without the HTTP server.
        try await services.serviceGroup(startupFailure: startupFailure, logger: logger).run()
    }
}
