import AccessControl
import Hummingbird
import NIOCore
import Logging
import NetworkGuards
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
    /// The most audio one synchronous request makes (`--max-request-audio`): a whole-file
    /// answer past it is 413 `audio_too_long`; a streamed one ends there.
    public var maxRequestAudio: Duration
    /// Whether `POST /api/v1/voices/{name}/download` may install voices (`--allow-downloads`).
    public var allowDownloads: Bool
    /// How long a client may take no audio at all before its connection is closed and its
    /// synthesis cancelled (`--write-timeout`).
    public var writeTimeout: Duration
    /// The OpenAI-compatible routes' settings (`--openai-max-input`, `--openai-voice`).
    public var openAI = OpenAISettings()
    /// The Polly-compatible routes' settings (`--polly-voice`).
    public var polly = PollySettings()
    /// The keys file the server checks requests against (`--keys-file`); nil: no keys, open.
    public var keys: KeyRing?
    /// Per-client requests and characters per minute (`--rate-limit`, `--character-limit`).
    public var rateLimits: RateLimiter.Limits = .init()
    /// Origins whose pages may call the server (`--cors-origin`); none: no CORS headers at all.
    public var corsOrigins: [String] = []
    /// How long a new connection may take to send its first request's head (`--header-timeout`).
    public var headerTimeout: Duration = .seconds(10)
    /// How long a connection may wait between requests (`--idle-timeout`).
    public var idleTimeout: Duration = .seconds(60)
    /// Connections open at once; past it a new one is answered 503 and closed (`--max-connections`).
    public var maxConnections: Int = 1024
    /// The longest URL: a GET's text, percent-encoded (up to 12 bytes a character), and the rest.
    public var maxURLBytes: Int { max(16 * 1024, maxTextCharacters * 12 + 4096) }
    /// Whether text is normalized when a request does not say (`--no-normalize` turns it off).
    public var normalize: Bool

    public init(
        host: String = "127.0.0.1", port: Int = 5000, defaultVoice: String, defaultOptions: SynthesisOptions = .init(),
        workers: Int = 2, maxQueue: Int = 16, maxTextCharacters: Int = 10_000, maxRequestAudio: Duration = .seconds(20 * 60),
        allowDownloads: Bool = false, writeTimeout: Duration = .seconds(30), normalize: Bool = true
    ) {
        self.normalize = normalize
        self.maxRequestAudio = maxRequestAudio
        self.writeTimeout = writeTimeout
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
    let routes = serverRoutes(
        configuration: configuration, library: library, metrics: metrics, scheduler: scheduler, jobs: jobs, installer: installer)
    let router = Router(context: LarkRequestContext.self)
    let table = RouteTable(routes)
    // Outermost first: the log line sees the final status; metrics see mapped errors; CORS
    // headers go on errors too; the access gate runs before any body is read.
    router.add(middleware: RequestLogMiddleware(level: .info))
    router.add(middleware: MetricsMiddleware())
    if !configuration.corsOrigins.isEmpty { router.add(middleware: CORSGate(origins: configuration.corsOrigins)) }
    router.add(middleware: ErrorMappingMiddleware(routes: table))
    // The largest body any route takes (4 UTF-8 bytes a character, and room for JSON around it):
    // refused from its Content-Length before it is read.
    let maxBodyBytes = max(configuration.maxTextCharacters, jobs?.maxTextCharacters ?? 0) * 4 + 64 * 1024
    router.add(middleware: RequestLimitsMiddleware(maxURLBytes: configuration.maxURLBytes, maxBodyBytes: maxBodyBytes))
    router.add(middleware: AccessMiddleware(
        keys: configuration.keys, limiter: configuration.rateLimits.unlimited ? nil : RateLimiter(limits: configuration.rateLimits),
        routes: table, maxBodyBytes: maxBodyBytes))
    router.add(middleware: UnexpectedBodyMiddleware(limit: 1 << 20))
    router.add(routes)
    func amount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
    let writeTimeout = amount(configuration.writeTimeout)
    let headerTimeout = amount(configuration.headerTimeout), idleTimeout = amount(configuration.idleTimeout)
    let connections = OpenConnections(limit: configuration.maxConnections)
    return Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [
            WriteTimeoutHandler(timeout: writeTimeout),
            RequestHeadTimeoutHandler(headTimeout: headerTimeout, idleTimeout: idleTimeout),
            ConnectionLimitHandler(connections: connections),
            CloseAfterResponseHandler(),
        ])),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "lark"),
        logger: logger)
}

/// Every route of the server, as its controllers declare them. The job routes are there only
/// with `jobs` (without them their paths answer 404, not 405).
func serverRoutes(
    configuration: ServerConfiguration, library: VoiceLibrary, metrics: ServerMetrics, scheduler: SynthesisScheduler,
    jobs: JobsContext?, installer: VoiceInstaller?
) -> [Route] {
    let speech = SpeechController(library: library, configuration: configuration, scheduler: scheduler, metrics: metrics)
    var routes = speech.routes
    routes += OpenAIController(speech: speech).routes
    routes += PollyController(speech: speech, jobs: jobs).routes
    routes += VoiceCatalogController(library: library, installer: installer, allowDownloads: configuration.allowDownloads).routes
    if let jobs { routes += JobController(jobs: jobs, defaultVoice: configuration.defaultVoice).routes }
    routes += WebController().routes
    routes += ContractController().routes
    return routes
}
