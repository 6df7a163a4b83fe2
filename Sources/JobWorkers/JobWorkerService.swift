import AudioEncoding
import AudioStorage
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import SpeechCore
import SpeechJobs
import SpeechService
import Synchronization

public struct JobWorkerConfiguration: Sendable {
    /// Jobs synthesized at once by this process (each with a ticket at the synthesis scheduler, behind live requests).
    public var workers: Int
    /// How long a claim lasts without a heartbeat; a dead worker's job is claimed again after it.
    public var lease: Duration
    /// How often an idle worker looks for work.
    public var pollInterval: Duration
    public var retry: RetryPolicy
    /// Where rendered audio waits before it is uploaded.
    public var scratchDirectory: URL
    /// Names this process's workers in the store (host and pid by default).
    public var name: String

    public init(
        workers: Int = 1, lease: Duration = .seconds(30), pollInterval: Duration = .milliseconds(500),
        retry: RetryPolicy = RetryPolicy(),
        scratchDirectory: URL = FileManager.default.temporaryDirectory.appendingPathComponent("lark-jobs"),
        name: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    ) {
        self.workers = workers
        self.lease = lease
        self.pollInterval = pollInterval
        self.retry = retry
        self.scratchDirectory = scratchDirectory
        self.name = name
    }
}

/// The job workers of one process: each claims a due job, renders it to a scratch file while a
/// heartbeat keeps its lease (and notices a cancellation), stores the audio, and marks the job
/// done; failures are retried with back-off, then fail the job with the reason. A finished
/// job's callback goes to the `CallbackNotifier` (a service of its own, which outlives the
/// workers). On graceful shutdown each worker gives its job back to the queue.
///
/// Audio is written exactly once per job: a job claimed again after its worker died checks the
/// store first, and an object already there (uploads are whole-or-nothing) finishes the job.
public final class JobWorkerService: Service {
    private let store: any JobStore
    private let objects: any ObjectStore
    private let renderer: JobRenderer
    private let scheduler: SynthesisScheduler
    private let presenter: JobPresenter
    private let notifier: CallbackNotifier
    private let configuration: JobWorkerConfiguration
    private let logger: Logger
    /// Wakes idle workers when a job is submitted in this process (others find it by polling).
    private let doorbell = Doorbell()

    public init(
        store: any JobStore, objects: any ObjectStore, renderer: JobRenderer, scheduler: SynthesisScheduler, presenter: JobPresenter,
        notifier: CallbackNotifier, configuration: JobWorkerConfiguration, logger: Logger
    ) {
        self.store = store
        self.objects = objects
        self.renderer = renderer
        self.scheduler = scheduler
        self.presenter = presenter
        self.notifier = notifier
        self.configuration = configuration
        self.logger = logger
    }

    /// Tells idle workers that a job was just queued.
    public func jobSubmitted() {
        doorbell.ring()
    }

    public func run() async throws {
        try FileManager.default.createDirectory(at: configuration.scratchDirectory, withIntermediateDirectories: true)
        logger.info("job workers started", metadata: ["workers": "\(configuration.workers)", "name": "\(configuration.name)"])
        // Graceful shutdown cancels the workers: a job in progress is given back to the queue.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<max(0, self.configuration.workers) {
                    group.addTask { await self.workLoop(name: "\(self.configuration.name)-\(index)") }
                }
            }
        }
        logger.info("job workers stopped")
    }

    // MARK: - Working

    private func workLoop(name: String) async {
        while !Task.isCancelled {
            // A job's runs give their working memory back after each run: a long text's
            // thousands of runs of different lengths would otherwise grow and fragment the
            // engine's pool, which live requests keep warm for speed (bench/results/job-memory.md).
            guard let ticket = await scheduler.admitBackground(memory: .shrinkAfterRun) else { return }
            let job: Job?
            do {
                job = try await store.claim(worker: name, lease: configuration.lease, now: Timestamp.now)
            } catch is CancellationError {
                // Shutting down between jobs: nothing to give back.
                ticket.release()
                return
            } catch {
                ticket.release()
                logger.error("could not claim a job", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
                continue
            }
            guard let job else {
                ticket.release()
                await doorbell.wait(upTo: configuration.pollInterval)
                continue
            }
            await process(job, worker: name, admission: ticket)
            ticket.release()
        }
    }

    private enum Outcome {
        case rendered(RenderedAudio)
        case stop(HeartbeatReply)
    }

    private func process(_ job: Job, worker: String, admission: SynthesisTicket) async {
        var log = logger
        log[metadataKey: "job"] = "\(job.id)"
        log.info("job started", metadata: ["attempt": "\(job.attempts)", "voice": "\(job.spec.voice)"])
        let extensionName = AudioFormat(name: job.spec.format)?.fileExtension ?? "bin"
        let key = job.spec.objectKey ?? "\(job.spec.keyPrefix ?? "jobs/")\(job.id).\(extensionName)"
        let scratch = configuration.scratchDirectory.appendingPathComponent("\(job.id)-\(worker).\(extensionName)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        do {
            // A job may name a bucket of its own (a Polly synthesis task).
            var objects = self.objects
            if let bucket = job.spec.bucket { objects = try self.objects.bucket(bucket) }
            // A previous attempt stored the audio and died before saying so: it is done.
            if try await objects.exists(key: key) {
                log.info("job audio already stored", metadata: ["key": "\(key)"])
                try await finish(job, worker: worker, key: key, log: log)
                return
            }
            var outcome = try await renderWithHeartbeat(job, worker: worker, to: scratch, admission: admission)
            if case .rendered(let audio) = outcome {
                // The final progress, and a last check that the job is still this worker's.
                let reply = try await persisting("heartbeat", log: log) {
                    try await self.store.heartbeat(
                        id: job.id, worker: worker, lease: self.configuration.lease, sentencesDone: audio.sentences,
                        sentencesTotal: audio.sentences, now: Timestamp.now)
                }
                if reply != .proceed { outcome = .stop(reply) }
            }
            switch outcome {
            case .rendered(let audio):
                // Captions first: the audio's presence is what says a job's objects are stored.
                if let captions = audio.captions {
                    let file = scratch.appendingPathExtension(captions.format.fileExtension)
                    defer { try? FileManager.default.removeItem(at: file) }
                    try Data(captions.text.utf8).write(to: file)
                    let captionsKey = JobCaptions.key(forAudioKey: key, format: captions.format)
                    try await objects.put(key: captionsKey, file: file, contentType: captions.format.contentType)
                    log.info("job captions stored", metadata: ["key": "\(captionsKey)"])
                }
                try await objects.put(key: key, file: scratch, contentType: audio.contentType)
                log.info("job audio stored", metadata: ["key": "\(key)", "bytes": "\(audio.bytes)", "sentences": "\(audio.sentences)"])
                try await finish(job, worker: worker, key: key, log: log)
            case .stop(.cancelRequested):
                try await persisting("finish cancelled", log: log) {
                    try await self.store.finishCancelled(id: job.id, worker: worker, now: Timestamp.now)
                }
                log.info("job cancelled")
                await finished(job.id, status: .cancelled)
            case .stop:
                log.warning("job lease lost to another worker; dropping this attempt")
            }
        } catch is CancellationError {
            // This process is shutting down: the job goes back to the queue as it was. This task
            // is cancelled, and the database refuses queries from a cancelled task, so the
            // release runs in a task of its own, awaited here.
            let store = self.store
            let released = await Task { try? await store.release(id: job.id, worker: worker, now: Timestamp.now) }.value
            if released == true {
                log.info("job given back (shutting down)")
            } else {
                log.warning("job not given back (shutting down); another worker takes it when its lease ends")
            }
        } catch {
            await failed(job, worker: worker, error: error, log: log)
        }
    }

    private func finish(_ job: Job, worker: String, key: String, log: Logger) async throws {
        let succeeded = try await persisting("succeed", log: log) {
            try await self.store.succeed(id: job.id, worker: worker, objectKey: key, now: Timestamp.now)
        }
        if succeeded {
            log.info("job succeeded")
            await finished(job.id, status: .succeeded)
        } else if let now = try? await store.job(id: job.id), now.status == .succeeded, now.objectKey == key, now.leaseOwner == nil,
                  now.attempts == job.attempts {
            // An earlier try of this call was done, but its answer was lost with the connection.
            log.info("job succeeded")
            await finished(job.id, status: .succeeded)
        } else {
            log.warning("job finished, but another worker holds it now")
        }
    }

    private func failed(_ job: Job, worker: String, error: any Error, log: Logger) async {
        let reason = Self.describe(error)
        // A job that cannot succeed (its voice or options are wrong) is not retried.
        var permanent = error is SpeechError || error is AudioOutputError
        if case StorageError.invalidKey? = error as? StorageError { permanent = true }
        if case StorageError.invalidConfiguration? = error as? StorageError { permanent = true }
        let delay = permanent ? nil : configuration.retry.delay(afterAttempts: job.attempts, maxAttempts: job.maxAttempts)
        let retryAt = delay.map { Timestamp.now + $0.milliseconds }
        do {
            try await persisting("fail", log: log) {
                try await self.store.fail(id: job.id, worker: worker, error: reason, retryAt: retryAt, now: Timestamp.now)
            }
        } catch {
            log.error("could not record the job's failure", metadata: ["error": "\(error)"])
            return
        }
        if let delay {
            log.warning("job attempt failed; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
        } else {
            log.error("job failed", metadata: ["error": "\(error)"])
            await finished(job.id, status: .failed)
        }
    }

    /// Renders while a heartbeat extends the lease every third of it; whichever ends first
    /// stops the other.
    private func renderWithHeartbeat(
        _ job: Job, worker: String, to file: URL, admission: SynthesisTicket
    ) async throws -> Outcome {
        let progress = ProgressBox()
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask {
                .rendered(try await self.renderer.render(job.spec, to: file, admission: admission) { done, total in
                    progress.value.withLock { $0 = (done, total) }
                    try Task.checkCancellation()
                })
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: self.configuration.lease / 3)
                    // While the database is unreachable the rendering goes on: the heartbeat that
                    // gets through says whether the job is still this worker's.
                    let reply = try await self.persisting("heartbeat", log: self.logger) {
                        let (done, total) = progress.value.withLock { $0 }
                        return try await self.store.heartbeat(
                            id: job.id, worker: worker, lease: self.configuration.lease, sentencesDone: done,
                            sentencesTotal: total, now: Timestamp.now)
                    }
                    if reply != .proceed { return .stop(reply) }
                }
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }

    /// Runs a call to the job store, waiting out a database that cannot be reached for a while
    /// (restarting, failing over): retried with a growing pause until it gets through or this
    /// worker is cancelled, so a job in progress is neither dropped nor rendered again. Every
    /// call it guards is safe to repeat: each names this worker's lease in its `WHERE`.
    @discardableResult
    private func persisting<T: Sendable>(_ call: String, log: Logger, _ body: () async throws -> T) async throws -> T {
        var pause = Duration.milliseconds(250)
        var waited = false
        while true {
            do {
                let result = try await body()
                if waited { log.info("job database reachable again", metadata: ["call": "\(call)"]) }
                return result
            } catch JobStoreError.unavailable(let detail) {
                if !waited { log.warning("job database unreachable; retrying", metadata: ["call": "\(call)", "error": "\(detail)"]) }
                waited = true
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(4))
            }
        }
    }

    /// Counts the job and sends its callback, if it has one.
    private func finished(_ id: String, status: JobStatus) async {
        Counter(label: "lark_jobs_finished_total", dimensions: [("status", status.rawValue)]).increment()
        guard let job = try? await store.job(id: id), let callback = job.spec.callbackURL else { return }
        let document = await presenter.document(job)
        guard let body = try? JSONEncoder().encode(document) else { return }
        notifier.enqueue(body, to: callback, jobID: id)
    }

    static func describe(_ error: any Error) -> String {
        // Errors a job can never get past carry their code, as the API's error bodies do.
        if let error = error as? SpeechError { return "\(error.code): \(error.clientMessage)" }
        if let error = error as? AudioOutputError { return "\(error.code): \(error.message)" }
        // A job's error is sent to clients: no file system paths (the log has the detail).
        if isOutOfSpace(error) {
            return "storage_full: the server's disk for job audio is full, so this job's audio did not fit; nothing of it was kept"
        }
        if let error = error as? StorageError { return error.message }
        if let error = error as? AudioFileError { return "the job's audio could not be written on the server: \(error.reason)" }
        return String(describing: error)
    }

    /// A full disk, in the scratch file (the encoder's writes), the captions, or the local store.
    static func isOutOfSpace(_ error: any Error) -> Bool {
        if let error = error as? AudioFileError { return error.outOfSpace }
        if case StorageError.noSpace? = error as? StorageError { return true }
        if let error = error as? CocoaError { return error.code == .fileWriteOutOfSpace }
        return false
    }
}

/// Sentences done and expected, written by the rendering task and read by the heartbeat.
final class ProgressBox: Sendable {
    let value = Mutex<(done: Int, total: Int?)>((0, nil))
}

/// Lets a submission wake the idle workers of its own process at once.
final class Doorbell: Sendable {
    private struct Waiters {
        var next = 0
        var list: [(id: Int, continuation: CheckedContinuation<Void, Never>)] = []
        /// Waits whose continuation is not registered yet, and those of them already over.
        var pending: Set<Int> = []
        var over: Set<Int> = []
    }
    private let waiters = Mutex(Waiters())

    func ring() {
        let all = waiters.withLock { state in
            defer { state.list.removeAll() }
            return state.list
        }
        for waiter in all { waiter.continuation.resume() }
    }

    /// Returns when rung, or after `limit`; a worker that times out wakes only itself.
    func wait(upTo limit: Duration) async {
        let id = waiters.withLock { state in
            state.next += 1
            state.pending.insert(state.next)
            return state.next
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: limit) }
            group.addTask {
                await withCheckedContinuation { continuation in
                    let alreadyOver = self.waiters.withLock { state in
                        state.pending.remove(id)
                        if state.over.remove(id) != nil { return true }
                        state.list.append((id, continuation))
                        return false
                    }
                    if alreadyOver { continuation.resume() }
                }
            }
            await group.next()
            group.cancelAll()
            // The continuation task ends only when resumed: resume this waiter's own, if a ring
            // has not already.
            let mine = waiters.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.list.firstIndex(where: { $0.id == id }) else {
                    // Not registered yet: its registration will find it over. (Otherwise it was rung.)
                    if state.pending.contains(id) { state.over.insert(id) }
                    return nil
                }
                return state.list.remove(at: index).continuation
            }
            mine?.resume()
        }
    }
}
