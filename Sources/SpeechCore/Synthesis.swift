/// Which speaker of a multi-speaker voice to use: by id or by name from the voice's speaker map.
public enum SpeakerSelector: Sendable, Equatable, CustomStringConvertible {
    case id(Int)
    case name(String)

    /// Parses a request's speaker value: a whole number is an id, anything else a name.
    public init(_ text: String) {
        if let number = Int(text) { self = .id(number) } else { self = .name(text) }
    }

    public var description: String {
        switch self {
        case .id(let id): return String(id)
        case .name(let name): return name
        }
    }
}

/// Per-request synthesis settings. Anything left nil falls back to the voice's defaults.
public struct SynthesisOptions: Sendable, Equatable {
    public var speaker: SpeakerSelector?
    /// Phoneme duration multiplier: above 1 is slower.
    public var lengthScale: Float?
    /// Generator noise (Piper's `noise_scale`).
    public var noiseScale: Float?
    /// Phoneme width noise (Piper's `noise_w`).
    public var noiseW: Float?
    /// Seconds of silence between sentences.
    public var sentenceSilence: Double?
    /// espeak-ng speaking rate in words per minute (80–450).
    public var rate: Int?
    /// espeak-ng base pitch (0–100, 50 is normal).
    public var pitch: Int?

    public init(
        speaker: SpeakerSelector? = nil, lengthScale: Float? = nil, noiseScale: Float? = nil,
        noiseW: Float? = nil, sentenceSilence: Double? = nil, rate: Int? = nil, pitch: Int? = nil
    ) {
        self.speaker = speaker
        self.lengthScale = lengthScale
        self.noiseScale = noiseScale
        self.noiseW = noiseW
        self.sentenceSilence = sentenceSilence
        self.rate = rate
        self.pitch = pitch
    }

    /// These options with every unset field taken from `fallback` (server-wide defaults under a request).
    public func merged(over fallback: SynthesisOptions) -> SynthesisOptions {
        SynthesisOptions(
            speaker: speaker ?? fallback.speaker,
            lengthScale: lengthScale ?? fallback.lengthScale,
            noiseScale: noiseScale ?? fallback.noiseScale,
            noiseW: noiseW ?? fallback.noiseW,
            sentenceSilence: sentenceSilence ?? fallback.sentenceSilence,
            rate: rate ?? fallback.rate,
            pitch: pitch ?? fallback.pitch
        )
    }

    /// The longest silence between sentences: a pause, not a way to make hours of audio from a
    /// few words.
    public static let maxSentenceSilence: Double = 10

    /// Rejects values no engine can use, naming the valid range.
    public func validate() throws(SpeechError) {
        func check(_ value: Float?, _ name: String, _ range: ClosedRange<Float>) throws(SpeechError) {
            guard let value else { return }
            guard value.isFinite, range.contains(value) else {
                throw .invalidOption(name: name, message: "\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            }
        }
        // A model run holds about 25 MB per second of the audio it makes, so the settings that
        // stretch the audio are bounded. Phoneme durations grow with noise_w faster than
        // exponentially: sixty words gave 19 s of speech at 1, 54 s at 2 and 400 s at 3, and at 4
        // the run outgrew the machine's 24 GB and the kernel killed the server. length_scale 20
        // with noise_w 2 made 753 s of those sixty words and peaked at 4 GB; at 5 and 2, 1.3-1.7 GB.
        try check(lengthScale, "length_scale", 0.05...5)
        try check(noiseScale, "noise_scale", 0...10)
        try check(noiseW, "noise_w", 0...2)
        if let sentenceSilence, !(sentenceSilence.isFinite && (0...Self.maxSentenceSilence).contains(sentenceSilence)) {
            throw .invalidOption(
                name: "sentence_silence",
                message: "sentence_silence must be between 0 and \(Int(Self.maxSentenceSilence)) seconds, got \(sentenceSilence)")
        }
        if let rate, !(80...450).contains(rate) {
            throw .invalidOption(name: "rate", message: "rate must be between 80 and 450 words per minute, got \(rate)")
        }
        if let pitch, !(0...100).contains(pitch) {
            throw .invalidOption(name: "pitch", message: "pitch must be between 0 and 100, got \(pitch)")
        }
    }
}

/// The settings a voice uses when a request does not give them (a Piper config's `inference` block).
public struct SynthesisDefaults: Sendable, Codable, Equatable {
    public var lengthScale: Float
    public var noiseScale: Float
    public var noiseW: Float
    public var speakerID: Int

    public init(lengthScale: Float = 1, noiseScale: Float = 0.667, noiseW: Float = 0.8, speakerID: Int = 0) {
        self.lengthScale = lengthScale
        self.noiseScale = noiseScale
        self.noiseW = noiseW
        self.speakerID = speakerID
    }
}

/// One sentence of synthesized speech: 16-bit mono PCM.
public struct AudioChunk: Sendable {
    public var samples: [Int16]
    public var sampleRate: Int
    /// 0-based position of the sentence in the request.
    public var sentenceIndex: Int
    /// The phonemes that produced the audio, where the engine has them (for diagnostics).
    public var phonemes: String?
    /// How many sentences the engine makes of the whole request (as it split the text, so
    /// `sentenceIndex` runs up to it), where the engine knows that when it yields the chunk.
    public var sentenceCount: Int?
    /// The timed events in `samples`, in the order they start, where the engine makes them.
    public var marks: [SpeechMark]

    public init(
        samples: [Int16], sampleRate: Int, sentenceIndex: Int, phonemes: String? = nil, sentenceCount: Int? = nil,
        marks: [SpeechMark] = []
    ) {
        self.marks = marks
        self.samples = samples
        self.sampleRate = sampleRate
        self.sentenceIndex = sentenceIndex
        self.phonemes = phonemes
        self.sentenceCount = sentenceCount
    }

    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// How long a text may be, counted the way it costs: in Unicode code points (a grapheme cluster
/// can hold any number of them: one `a` with 14,000 combining accents is one `Character`),
/// and, as a cheap first check, in UTF-8 bytes (at most 4 per code point).
public enum TextLimit {
    /// Throws `textTooLong` when `text` has more than `limit` code points or more than 4 × `limit`
    /// UTF-8 bytes. A blank text passes (it is refused as empty by the checks after this one).
    public static func check(_ text: String, limit: Int) throws(SpeechError) {
        if text.utf8.count > 4 * limit {
            throw .textTooLong(length: text.unicodeScalars.count, limit: limit)
        }
        let count = text.unicodeScalars.count
        guard count <= limit || text.trimmingWhitespace().isEmpty else {
            throw .textTooLong(length: count, limit: limit)
        }
    }
}
