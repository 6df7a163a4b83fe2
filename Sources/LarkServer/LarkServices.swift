import AudioStorage
import JobWorkers
import Logging
import ServiceLifecycle
import SpeechJobs
import SpeechService
import UnixSignals
import VoiceCatalog

/// The long-lived parts of one `lark serve` or `lark worker` process. The executable fills in
/// what it opened, as it opens it, and `serviceGroup` turns them into the process's one
/// `ServiceGroup`: the only place where anything is started or shut down.
public struct LarkServices: Sendable {
    public var voiceLibrary: VoiceLibrary
    /// The synthesis scheduler's threads: stopped after everything that synthesizes.
    public var synthesisScheduler: SynthesisScheduler?
    public var catalogClient: CatalogHTTPClient?
    public var jobStore: (any JobStore)?
    public var objectStore: (any ObjectStore)?
    public var callbackNotifier: CallbackNotifier?
    public var janitor: JobJanitor?
    public var jobWorkers: JobWorkerService?
    /// The front doors, by name: the HTTP server (`buildApplication`) and any server added later;
    /// none for `lark worker`. They stop first, in the reverse of this order.
    public var servers: [(name: String, service: any Service)] = []

    public init(voiceLibrary: VoiceLibrary, catalogClient: CatalogHTTPClient? = nil) {
        self.voiceLibrary = voiceLibrary
        self.catalogClient = catalogClient
    }

    /// The parts in dependency order: each uses only those before it. The group starts them in
    /// this order and, on SIGTERM or SIGINT, stops them one at a time in the reverse order, each
    /// after the one above it has finished: the server stops taking connections and drains its
    /// requests, the workers give their jobs back, the janitor and the callbacks stop, then the
    /// stores, the catalog client, the synthesis threads and the voices close.
    var ordered: [(name: String, service: any Service)] {
        var parts: [(String, any Service)] = [
            ("voice library", ClosingService { try await voiceLibrary.shutdown() })
        ]
        if let synthesisScheduler { parts.append(("synthesis scheduler", ClosingService { try await synthesisScheduler.shutdown() })) }
        if let catalogClient { parts.append(("catalog client", ClosingService { try await catalogClient.shutdown() })) }
        if let jobStore { parts.append(("job database", ClosingService { try await jobStore.close() })) }
        if let objectStore { parts.append(("object store", ClosingService { try await objectStore.shutdown() })) }
        if let callbackNotifier { parts.append(("callback notifier", callbackNotifier)) }
        if let janitor { parts.append(("retention janitor", janitor)) }
        if let jobWorkers { parts.append(("job workers", jobWorkers)) }
        return parts + servers
    }

    /// The process's one service group. `startupFailure`: an error met while opening the parts
    /// (after some were opened); the group then closes what was opened, in the same order as a
    /// SIGTERM would, and `run()` throws that error. Every part logs `stopped` with its name
    /// when it has stopped; any part that ends or fails shuts the whole group down in order.
    public func serviceGroup(
        startupFailure: (any Error)? = nil, signals: [UnixSignal] = [.sigterm, .sigint], logger: Logger
    ) -> ServiceGroup {
        var configurations = ordered.map { name, service in
            ServiceGroupConfiguration.ServiceConfiguration(
                service: LoggedService(name: name, base: service, logger: logger),
                successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: name)
        }
        if let startupFailure {
            // Last, so it is the first to stop: its error shuts the group down in order.
            configurations.append(.init(
                service: ClosureService { throw startupFailure }, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "start-up"))
        }
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(services: configurations, gracefulShutdownSignals: signals, logger: logger))
    }
}

/// A part that only needs closing: it waits for the graceful shutdown (or for its task to be
/// cancelled), then closes.
struct ClosingService: Service {
    let close: @Sendable () async throws -> Void

    init(_ close: @escaping @Sendable () async throws -> Void) {
        self.close = close
    }

    func run() async throws {
        // Cancellation ends the wait too (the group is being torn down): close all the same.
        try? await gracefulShutdown()
        try await close()
    }
}

/// Logs `stopped` (or `failed`) with the part's name once its `run` has returned.
struct LoggedService: Service {
    let name: String
    let base: any Service
    let logger: Logger

    func run() async throws {
        do {
            try await base.run()
            logger.info("stopped", metadata: ["service": "\(name)"])
        } catch {
            logger.info("stopped", metadata: ["service": "\(name)", "error": "\(error)"])
            throw error
        }
    }
}
