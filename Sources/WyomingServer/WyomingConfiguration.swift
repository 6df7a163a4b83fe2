import SpeechCore

/// Everything the Wyoming server is configured with, parsed at the edge by the executable.
public struct WyomingConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The voice used when a request names none (`-m`).
    public var defaultVoice: String
    /// Server-wide synthesis settings under every request's.
    public var defaultOptions: SynthesisOptions
    /// The longest text one `synthesize`, or one whole stream, may have (`--max-text-chars`).
    public var maxTextCharacters: Int
    /// The most audio one request makes (`--max-request-audio`): the audio ends after the
    /// sentence that passes it, with an `audio_too_long` error.
    public var maxRequestAudio: Duration
    /// Samples per `audio-chunk` event (wyoming-piper's default: 1024).
    public var samplesPerChunk: Int
    /// The program's name and version in `info`.
    public var programName: String
    public var version: String
    public var frameLimits: WyomingFrameLimits
    /// How long a connection may take none of the audio it asked for before it is closed and
    /// its synthesis ticket freed (`--write-timeout`, shared with the HTTP server).
    public var writeTimeout: Duration
    /// Whether text is normalized before phonemizing (`--no-normalize` turns it off): Wyoming
    /// requests cannot say, so the server's default always applies.
    public var normalize: Bool

    public init(
        host: String = "127.0.0.1", port: Int = 10200, defaultVoice: String, defaultOptions: SynthesisOptions = .init(),
        maxTextCharacters: Int = 10_000, maxRequestAudio: Duration = .seconds(20 * 60), samplesPerChunk: Int = 1024,
        programName: String = "lark", version: String = "1.0", frameLimits: WyomingFrameLimits? = nil,
        writeTimeout: Duration = .seconds(30), normalize: Bool = true
    ) {
        self.host = host
        self.port = port
        self.defaultVoice = defaultVoice
        self.defaultOptions = defaultOptions
        self.maxTextCharacters = maxTextCharacters
        self.maxRequestAudio = maxRequestAudio
        self.samplesPerChunk = max(1, samplesPerChunk)
        self.programName = programName
        self.version = version
        self.frameLimits = frameLimits ?? .forText(maxTextCharacters: maxTextCharacters)
        self.writeTimeout = writeTimeout
        self.normalize = normalize
    }
}

/// Where the Wyoming server reports what it did: the same counters as the HTTP routes
/// (the server's `ServerMetrics`, wired by the executable).
public protocol WyomingMetrics: Sendable {
    /// Time from a request's event to its first audio being ready to send.
    func timeToFirstAudio(_ duration: Duration)
    /// One sentence's audio, by voice id.
    func produced(_ chunk: AudioChunk, voice: String)
    /// A request refused because the scheduler was full.
    func rejected()
}

/// Metrics that go nowhere (tests, tools).
public struct NoWyomingMetrics: WyomingMetrics {
    public init() {}
    public func timeToFirstAudio(_ duration: Duration) {}
    public func produced(_ chunk: AudioChunk, voice: String) {}
    public func rejected() {}
}
