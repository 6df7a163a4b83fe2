import AudioStorage
import Foundation
import Hummingbird
import HummingbirdTesting
import JobWorkers
@testable import LarkServer
import Logging
import ServiceLifecycle
import SpeechJobs
import SpeechService
import Synchronization
import Testing
import VoiceCatalog

/// The process's one service group (`LarkServices.serviceGroup`), with every part real: the
/// order in which the parts stop, and a start-up that fails part-way. The route table: every
/// registered path answers 405 with `Allow` for a method it does not have.
@Suite(.serialized) struct LarkServicesTests {
    /// Keeps what was logged, in order.
    final class LogRecorder: Sendable {
        let entries = Mutex<[(message: String, service: String?)]>([])

        var stopped: [String] {
            entries.withLock { $0.filter { $0.message == "stopped" }.compactMap(\.service) }
        }

        var logger: Logger {
            Logger(label: "lark.test") { _ in Handler(recorder: self) }
        }

        struct Handler: LogHandler {
            let recorder: LogRecorder
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .info

            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }

            func log(event: LogEvent) {
                let service = event.metadata?["service"].map { "\($0)" }
                recorder.entries.withLock { $0.append(("\(event.message)", service)) }
            }
        }
    }

    /// Every part of a `lark serve` process, opened in a scratch directory (no voice is loaded).
    struct Parts {
        var services: LarkServices
        var store: SQLJobStore
        var library: VoiceLibrary
        var jobs: JobsContext
        var scheduler: SynthesisScheduler
        var directory: URL
    }

    static func openParts(logger: Logger) async throws -> Parts {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appending(path: "lark-services-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let library = VoiceLibrary(configuration: Checkout.engineConfiguration())
        var services = LarkServices(voiceLibrary: library, catalogClient: CatalogHTTPClient())
        let store = try await JobQueueLocation.sqlite(path: directory.appending(path: "jobs.sqlite").path).open(logger: logger)
        services.jobStore = store
        let objects = LocalDirectoryStore(root: directory.appending(path: "audio"))
        services.objectStore = objects
        let notifier = CallbackNotifier(policy: try CallbackPolicy(), store: store, logger: logger)
        services.callbackNotifier = notifier
        let scheduler = SynthesisScheduler(workers: 1, maxQueue: 1)
        services.synthesisScheduler = scheduler
        let presenter = JobPresenter(objects: objects, publicURL: "http://127.0.0.1", retention: .seconds(3600))
        let renderer = JobRenderer(library: library, defaults: .init())
        let workers = JobWorkerService(
            store: store, objects: objects, renderer: renderer, scheduler: scheduler, presenter: presenter, notifier: notifier,
            configuration: JobWorkerConfiguration(workers: 1, scratchDirectory: directory.appending(path: "scratch")), logger: logger)
        services.jobWorkers = workers
        services.janitor = JobJanitor(store: store, objects: objects, retention: .seconds(3600), logger: logger)
        let jobs = JobsContext(
            store: store, objects: objects, renderer: renderer, presenter: presenter, workers: workers, callbacks: try CallbackPolicy())
        return Parts(services: services, store: store, library: library, jobs: jobs, scheduler: scheduler, directory: directory)
    }

    static let serveOrder = [
        "http server", "job workers", "retention janitor", "callback notifier", "object store", "job database",
        "catalog client", "synthesis scheduler", "voice library",
    ]

    @Test func partsStopInReverseDependencyOrder() async throws {
        let recorder = LogRecorder()
        var parts = try await Self.openParts(logger: recorder.logger)
        defer { try? FileManager.default.removeItem(at: parts.directory) }
        let metrics = ServerMetrics()
        let app = buildApplication(
            configuration: ServerConfiguration(port: 0, defaultVoice: "en_US-joe-medium"), library: parts.library,
            metrics: metrics, scheduler: parts.scheduler, jobs: parts.jobs, logger: recorder.logger)
        parts.services.servers.append(("http server", app))
        let group = parts.services.serviceGroup(signals: [], logger: recorder.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Until the server listens and the workers have started.
            for _ in 0..<200 {
                let started = recorder.entries.withLock { entries in
                    entries.contains { $0.message.contains("started") && $0.message.contains("Server") }
                        && entries.contains { $0.message == "job workers started" }
                }
                if started { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            // What SIGTERM and SIGINT do.
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(recorder.stopped == Self.serveOrder)
        // The workers had stopped before the database closed; the database is closed now.
        let messages = recorder.entries.withLock { $0.map(\.message) }
        let workersStopped = try #require(messages.firstIndex(of: "job workers stopped"))
        let databaseStopped = try #require(recorder.entries.withLock { $0.firstIndex { $0.service == "job database" } })
        #expect(workersStopped < databaseStopped)
        await #expect(throws: (any Error).self) { _ = try await parts.store.job(id: "none") }
    }

    struct StartupFailed: Error {}

    @Test func aStartUpThatFailsClosesWhatWasOpenedInTheSameOrder() async throws {
        let recorder = LogRecorder()
        let parts = try await Self.openParts(logger: recorder.logger)
        defer { try? FileManager.default.removeItem(at: parts.directory) }
        // Everything but the HTTP server was opened, then start-up failed.
        let group = parts.services.serviceGroup(startupFailure: StartupFailed(), signals: [], logger: recorder.logger)
        await #expect(throws: StartupFailed.self) { try await group.run() }
        #expect(recorder.stopped == Array(Self.serveOrder.dropFirst()))
        await #expect(throws: (any Error).self) { _ = try await parts.store.job(id: "none") }
    }

    @Test func everyRoutePathAnswers405WithAllowForAnotherMethod() async throws {
        let logger = Logger(label: "lark.test")
        let parts = try await Self.openParts(logger: logger)
        defer { try? FileManager.default.removeItem(at: parts.directory) }
        let metrics = ServerMetrics()
        let configuration = ServerConfiguration(defaultVoice: "en_US-joe-medium")
        let scheduler = metrics.makeScheduler(workers: 1, maxQueue: 1)
        let routes = serverRoutes(
            configuration: configuration, library: parts.library, metrics: metrics, scheduler: scheduler, jobs: parts.jobs, installer: nil)
        let app = buildApplication(
            configuration: configuration, library: parts.library, metrics: metrics, scheduler: scheduler, jobs: parts.jobs, logger: logger)
        // Each path as a request would name it, with the methods its routes declare.
        var methods: [(path: String, allowed: [HTTPRequest.Method])] = []
        for route in routes {
            let path = route.path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
                segment == "**" ? "a/b.wav" : segment.hasPrefix(":") || segment.hasPrefix("{") ? "x" : String(segment)
            }.joined(separator: "/")
            if let index = methods.firstIndex(where: { $0.path == path }) {
                methods[index].allowed.append(route.method)
            } else {
                methods.append((path, [route.method]))
            }
        }
        #expect(methods.count >= 15)
        let paths = methods
        try await app.test(.router) { client in
            for (path, allowed) in paths {
                let wrong = [HTTPRequest.Method.put, .patch].first { !allowed.contains($0) }!
                try await client.execute(uri: path, method: wrong) { response in
                    #expect(response.status == .methodNotAllowed, "\(wrong) \(path)")
                    #expect(response.headers[.allow] == allowed.map(\.rawValue).joined(separator: ", "), "\(wrong) \(path)")
                }
            }
            // A registered path whose handler finds nothing is still a 404, not a 405.
            try await client.execute(uri: "/static/nothing.js", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
        // Close the parts the way a start-up that stops here would.
        let group = parts.services.serviceGroup(startupFailure: StartupFailed(), signals: [], logger: logger)
        await #expect(throws: StartupFailed.self) { try await group.run() }
    }
}
