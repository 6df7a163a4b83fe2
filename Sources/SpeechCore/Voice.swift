/// The engine family a voice belongs to.
public enum EngineKind: String, Sendable, Codable, CaseIterable {
    /// A Piper (VITS) model run with ONNX Runtime.
    case piper
    /// One of espeak-ng's own formant voices.
    case espeakNG = "espeak-ng"
}

/// What a client may know about a voice before asking it to speak.
public struct VoiceInfo: Sendable, Codable, Equatable {
    /// The id requests name the voice by: a Piper file stem (`en_US-joe-medium`) or `espeak-ng:<name>`.
    public var id: String
    public var engine: EngineKind
    /// A human-readable name (`joe`, `German`).
    public var name: String
    /// BCP-47-like language code with an underscore, as Piper writes it (`en_US`, `de`).
    public var languageCode: String
    /// The language in English (`English (United States)`), where known.
    public var languageName: String?
    /// Piper's quality tier (`x_low`, `low`, `medium`, `high`), where known.
    public var quality: String?
    public var sampleRate: Int
    /// Speaker names in id order; empty for single-speaker voices.
    public var speakers: [String]
    /// `male`, `female` or nil where the voice does not say.
    public var gender: String?
    /// Where the voice comes from, in words that name no server path: `data-dir:N` (the Nth
    /// data directory, from 0), `model-option` (the operator's `--model PATH`), or an
    /// espeak-ng voice file inside espeak-ng's data (`gmw/en`).
    public var source: String?
    /// The voice's own synthesis settings (a Piper config's `inference` block), where it has them.
    public var defaults: SynthesisDefaults?

    public init(
        id: String, engine: EngineKind, name: String, languageCode: String, languageName: String? = nil,
        quality: String? = nil, sampleRate: Int, speakers: [String] = [], gender: String? = nil,
        source: String? = nil, defaults: SynthesisDefaults? = nil
    ) {
        self.id = id
        self.engine = engine
        self.name = name
        self.languageCode = languageCode
        self.languageName = languageName
        self.quality = quality
        self.sampleRate = sampleRate
        self.speakers = speakers
        self.gender = gender
        self.source = source
        self.defaults = defaults
    }

    /// The number of speakers (1 for single-speaker voices).
    public var speakerCount: Int { max(1, speakers.count) }
}

/// A voice that is loaded and ready to speak.
///
/// `prepare` checks a text and options once; the `PreparedSynthesis` it answers yields one chunk
/// per sentence as soon as each is ready, so callers can stream. Cancelling the consuming task
/// stops synthesis after the sentence in progress (or sooner, where the engine can interrupt one).
public protocol SpeechVoice: Sendable {
    var info: VoiceInfo { get }
    /// Synthesis settings the voice uses when a request leaves them out.
    var defaults: SynthesisDefaults { get }
    /// Checks that `text` is not blank and that `options` suit this voice (values, speaker), and
    /// answers the synthesis to start: the only place a request's options are checked.
    func prepare(_ text: String, options: SynthesisOptions) throws(SpeechError) -> PreparedSynthesis
}

extension SpeechVoice {
    /// `prepare` then `start`, for callers that check nothing beforehand: a failed check ends
    /// the stream with its error.
    public func synthesize(_ text: String, options: SynthesisOptions, admission: any SynthesisAdmission) -> SpeechStream {
        do {
            return try prepare(text, options: options).start(on: admission)
        } catch {
            return SpeechStream { Refused(error: error) }
        }
    }

    /// Synthesizes all of `text` and returns the concatenated samples (for callers that need a whole file).
    public func synthesizeAll(
        _ text: String, options: SynthesisOptions, admission: any SynthesisAdmission
    ) async throws -> [Int16] {
        var samples: [Int16] = []
        for try await chunk in synthesize(text, options: options, admission: admission) {
            samples.append(contentsOf: chunk.samples)
        }
        return samples
    }
}

/// The producer of a synthesis that failed its checks: its first chunk is the error.
private struct Refused: AudioChunkProducer {
    let error: SpeechError
    func next() async throws -> AudioChunk? { throw error }
}
