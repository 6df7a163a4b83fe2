import ArgumentParser
import AudioStorage
import Foundation
import JobWorkers
import LarkServer
import Logging
import SpeechCore
import SpeechJobs
import SpeechService

/// The options of the job queue, its storage and its workers, shared by `serve` and `worker`.
/// Each also reads a `LARK_*` variable.
struct JobOptions: ParsableArguments {
    @Option(name: [.customLong("jobs-dir"), .customLong("jobs_dir")],
            help: "Where the default queue (jobs.sqlite) and the default storage (audio/) live (default ./lark-jobs). Env: LARK_JOBS_DIR.")
    var jobsDir: String?
    @Option(help: "The job queue: a SQLite file (sqlite:///path/jobs.db) or postgres://user:password@host:port/db. Env: LARK_QUEUE.")
    var queue: String?
    @Option(help: "Where job audio goes: a directory, or s3://bucket/prefix. Env: LARK_STORAGE.")
    var storage: String?
    @Option(name: [.customLong("s3-endpoint"), .customLong("s3_endpoint")],
            help: "S3-compatible endpoint URL (default: AWS for the region). Env: LARK_S3_ENDPOINT.")
    var s3Endpoint: String?
    @Option(name: [.customLong("s3-region"), .customLong("s3_region")], help: "S3 region (default us-east-1). Env: LARK_S3_REGION or AWS_REGION.")
    var s3Region: String?
    @Option(name: [.customLong("s3-addressing"), .customLong("s3_addressing")],
            help: "path or virtual-host (default: virtual-host on AWS, path with --s3-endpoint). Env: LARK_S3_ADDRESSING.")
    var s3Addressing: String?
    @Option(name: [.customLong("job-workers"), .customLong("job_workers")],
            help: "Jobs synthesized at once in this process (serve default 1; 0 = the API only). Env: LARK_JOB_WORKERS.")
    var jobWorkers: Int?
    @Option(name: [.customLong("job-ttl"), .customLong("job_ttl")],
            help: "How long finished jobs and their audio are kept: 72h, 30m, 90s (default 72h). Env: LARK_JOB_TTL.")
    var jobTTL: String?
    @Option(name: [.customLong("job-lease"), .customLong("job_lease")],
            help: "How long a worker holds a job without a heartbeat before another may take it (default 30s). Env: LARK_JOB_LEASE.")
    var jobLease: String?
    @Option(name: [.customLong("job-attempts"), .customLong("job_attempts")],
            help: "Attempts per job before it fails (default 3). Env: LARK_JOB_ATTEMPTS.")
    var jobAttempts: Int?
    @Option(name: [.customLong("job-retry-delay"), .customLong("job_retry_delay")],
            help: "Back-off before the first retry, doubled each time (default 2s). Env: LARK_JOB_RETRY_DELAY.")
    var jobRetryDelay: String?
    @Option(name: [.customLong("max-job-audio"), .customLong("max_job_audio")],
            help: "The most audio one job makes: 2h, 30m, 90s (default 2h); a job past it fails with audio_too_long. Env: LARK_MAX_JOB_AUDIO.")
    var maxJobAudio: String?
    @Option(name: [.customLong("callback-allow"), .customLong("callback_allow")],
            help: ArgumentHelp(
                "A host name, address or CIDR block callbacks may reach although it is loopback, link-local, private, multicast or unspecified (repeatable). Env: LARK_CALLBACK_ALLOW (comma-separated).",
                valueName: "host-or-cidr"))
    var callbackAllow: [String] = []

    struct Resolved {
        var queue: JobQueueLocation
        var storage: StorageConfiguration
        var storageDescription: String
        var workers: Int
        var worker: JobWorkerConfiguration
        var maxAttempts: Int
        /// How long finished jobs and their audio are kept (`--job-ttl`).
        var retention: Duration
        /// The most audio one job makes (`--max-job-audio`).
        var maxAudio: Duration
        /// Where callbacks may go (`--callback-allow`).
        var callbacks: CallbackPolicy
    }

    func resolve(defaultWorkers: Int) throws -> Resolved {
        let environment = ProcessInfo.processInfo.environment
        func value(_ option: String?, _ variable: String) -> String? { option ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 } }
        let directory = value(jobsDir, "LARK_JOBS_DIR") ?? FileManager.default.currentDirectoryPath + "/lark-jobs"
        let queue = try JobQueueLocation(value(queue, "LARK_QUEUE") ?? directory + "/jobs.sqlite")
        let storageSpec = value(storage, "LARK_STORAGE") ?? directory + "/audio"
        var addressing: S3Addressing?
        if let raw = value(s3Addressing, "LARK_S3_ADDRESSING") {
            guard let parsed = S3Addressing(rawValue: raw == "virtual" ? "virtual-host" : raw) else {
                throw ValidationError("--s3-addressing must be path or virtual-host, got '\(raw)'")
            }
            addressing = parsed
        }
        var credentials: S3Credentials?
        if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] {
            credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        }
        let storage = try StorageConfiguration.parse(
            storageSpec, s3Endpoint: value(s3Endpoint, "LARK_S3_ENDPOINT"),
            s3Region: value(s3Region, "LARK_S3_REGION") ?? environment["AWS_REGION"], addressing: addressing, credentials: credentials)
        let workers = max(0, jobWorkers ?? environment["LARK_JOB_WORKERS"].flatMap(Int.init) ?? defaultWorkers)
        let attempts = max(1, jobAttempts ?? environment["LARK_JOB_ATTEMPTS"].flatMap(Int.init) ?? 3)
        let retry = RetryPolicy(
            maxAttempts: attempts, base: try Self.duration(value(jobRetryDelay, "LARK_JOB_RETRY_DELAY") ?? "2s", option: "--job-retry-delay"))
        let worker = JobWorkerConfiguration(
            workers: workers, lease: try Self.duration(value(jobLease, "LARK_JOB_LEASE") ?? "30s", option: "--job-lease"),
            retry: retry,
            scratchDirectory: URL(fileURLWithPath: directory).appendingPathComponent("scratch"))
        var allowed = callbackAllow
        if allowed.isEmpty, let list = value(nil, "LARK_CALLBACK_ALLOW") {
            allowed = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let callbacks: CallbackPolicy
        do {
            callbacks = try CallbackPolicy(allow: allowed)
        } catch {
            throw ValidationError(error.description)
        }
        return Resolved(
            queue: queue, storage: storage, storageDescription: storageSpec, workers: workers, worker: worker, maxAttempts: attempts,
            retention: try Self.duration(value(jobTTL, "LARK_JOB_TTL") ?? "72h", option: "--job-ttl"),
            maxAudio: try Self.duration(value(maxJobAudio, "LARK_MAX_JOB_AUDIO") ?? "2h", option: "--max-job-audio"),
            callbacks: callbacks)
    }

    /// `72h`, `30m`, `90s`, `500ms`, or a number of seconds.
    static func duration(_ text: String, option: String) throws -> Duration {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)), number > 0 { return .milliseconds(Int64(number * scale * 1000)) }
        }
        if let number = Double(text), number > 0 { return .milliseconds(Int64(number * 1000)) }
        throw ValidationError("\(option) must be a positive duration like 72h, 30m, 90s or 500ms, got '\(text)'")
    }
}

/// The job machinery of one process, opened from `JobOptions`: the queue, the storage, the
/// callbacks and, when `workers` > 0, the workers and the retention janitor. Each part goes into
/// `services` as soon as it is open, so whatever happens next, the service group closes it.
struct JobSystem {
    let store: SQLJobStore
    let objects: any ObjectStore
    let presenter: JobPresenter
    let renderer: JobRenderer
    let workers: JobWorkerService?

    static func open(
        _ options: JobOptions.Resolved, into services: inout LarkServices, library: VoiceLibrary, defaults: SynthesisOptions,
        normalize: Bool, scheduler: SynthesisScheduler, publicURL: String, logger: Logger
    ) async throws -> JobSystem {
        let store = try await options.queue.open(logger: logger)
        services.jobStore = store
        let objects = try makeObjectStore(options.storage, logger: logger)
        services.objectStore = objects
        let notifier = CallbackNotifier(policy: options.callbacks, store: store, logger: logger)
        services.callbackNotifier = notifier
        let presenter = JobPresenter(objects: objects, publicURL: publicURL, retention: options.retention)
        let renderer = JobRenderer(library: library, defaults: defaults, maxAudio: options.maxAudio, normalize: normalize)
        var workers: JobWorkerService?
        if options.workers > 0 {
            workers = JobWorkerService(
                store: store, objects: objects, renderer: renderer, scheduler: scheduler, presenter: presenter, notifier: notifier,
                configuration: options.worker, logger: logger)
            services.jobWorkers = workers
            services.janitor = JobJanitor(store: store, objects: objects, retention: options.retention, logger: logger)
        }
        logger.info(
            "jobs ready",
            metadata: ["queue": "\(options.queue)", "storage": "\(options.storageDescription)", "workers": "\(options.workers)"])
        return JobSystem(store: store, objects: objects, presenter: presenter, renderer: renderer, workers: workers)
    }
}
