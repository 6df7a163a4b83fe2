import Hummingbird
import Logging
import SpeechCore
import SpeechService
import VoiceCatalog

/// Everything `lark serve` is configured with, parsed at the edge by the executable.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The voice used when a request names none (`-m`).
    public var defaultVoice: String
    /// Server-wide synthesis settings; a request's own values override them.
    public var defaultOptions: SynthesisOptions
    public var workers: Int
    public var maxQueue: Int
    public var maxTextCharacters: Int
    /// Whether `POST /api/v1/voices/{name}/download` may install voices (`--allow-downloads`).
    public var allowDownloads: Bool

    public init(
        host: String = "127.0.0.1", port: Int = 5000, defaultVoice: String, defaultOptions: SynthesisOptions = .init(),
        workers: Int = 2, maxQueue: Int = 16, maxTextCharacters: Int = 10_000, allowDownloads: Bool = false
    ) {
        self.allowDownloads = allowDownloads
        self.host = host
        self.port = port
        self.defaultVoice = defaultVoice
        self.defaultOptions = defaultOptions
        self.workers = workers
        self.maxQueue = maxQueue
        self.maxTextCharacters = maxTextCharacters
    }
}

/// Builds the whole application: the one place where routes, middleware and services are wired.
/// `metrics` should have had `bootstrapSwiftMetrics()` called, for the HTTP metrics to appear.
/// `scheduler` is shared with the job workers, if the process runs any; `jobs` nil leaves the job
/// routes out (they answer 404). `installer`: the voice catalog, for `?available=1` and
/// downloads (nil: neither is offered).
public func buildApplication(
    configuration: ServerConfiguration, library: VoiceLibrary, metrics: ServerMetrics, scheduler: SynthesisScheduler,
    jobs: JobsContext?, logger: Logger, installer: VoiceInstaller? = nil
) -> some ApplicationProtocol {
    let router = Router()
    // Outermost first: the log line sees the final status; metrics see mapped errors.
    router.add(middleware: RequestLogMiddleware(level: .info))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMappingMiddleware(jobsEnabled: jobs != nil))
    SpeechController(
        library: library, configuration: configuration,
        scheduler: scheduler, metrics: metrics
    ).addRoutes(to: router)
    VoiceCatalogController(
        library: library, installer: installer, allowDownloads: configuration.allowDownloads
    ).addRoutes(to: router)
    if let jobs {
        JobController(jobs: jobs, defaultVoice: configuration.defaultVoice).addRoutes(to: router)
    }
    WebController().addRoutes(to: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "lark"),
        logger: logger)
}

/// The methods a path has, over every controller (nil for a path that does not exist), for 405s.
/// Job paths count only when the job routes are there (`--disable-jobs` leaves them 404).
func allowedMethods(path: String, jobsEnabled: Bool) -> [String]? {
    SpeechController.routes[path] ?? WebController.routes[path] ?? (jobsEnabled ? JobController.allowedMethods(path: path) : nil)
}
