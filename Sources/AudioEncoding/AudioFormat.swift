/// Every output format Lark writes, by the names clients use (Polly's `ogg_vorbis`, `mp3`, `pcm`;
/// OpenAI's `mp3`, `opus`, `aac`, `flac`, `wav`, `pcm`), with its sample-rate and bitrate rules.
public enum AudioFormat: String, Sendable, CaseIterable {
    case wav
    case pcm
    case mp3
    case oggVorbis = "ogg_vorbis"
    case oggOpus = "ogg_opus"
    case flac
    case aac
    /// G.711 μ-law in WAV (8 kHz telephony); `mulawRaw` without the header.
    case mulaw
    case mulawRaw = "mulaw_raw"
    case alaw
    case alawRaw = "alaw_raw"

    /// Every accepted spelling, canonical names first.
    public static let names: [String] = allCases.map(\.rawValue) + aliases.keys.sorted()
    static let aliases: [String: AudioFormat] = [
        "opus": .oggOpus, "ogg": .oggVorbis, "vorbis": .oggVorbis, "ulaw": .mulaw, "pcm_mulaw": .mulaw,
        "pcm_alaw": .alaw,
    ]

    /// The sample rates a client may ask for (the issue's list; every codec below takes them
    /// unless `allowedSampleRates` says otherwise).
    public static let sampleRates = [8000, 16000, 22050, 24000, 44100, 48000]

    public init?(name: String) {
        let lowered = name.lowercased()
        guard let format = AudioFormat(rawValue: lowered) ?? Self.aliases[lowered] else { return nil }
        self = format
    }

    public var contentType: String {
        switch self {
        case .wav, .mulaw, .alaw: return "audio/wav"
        case .pcm: return "audio/pcm"
        case .mp3: return "audio/mpeg"
        case .oggVorbis: return "audio/ogg"
        case .oggOpus: return "audio/ogg; codecs=opus"
        case .flac: return "audio/flac"
        case .aac: return "audio/aac"
        case .mulawRaw: return "audio/basic"
        case .alawRaw: return "audio/x-alaw-basic"
        }
    }

    /// File name extension for downloads.
    public var fileExtension: String {
        switch self {
        case .wav, .mulaw, .alaw: return "wav"
        case .pcm: return "pcm"
        case .mp3: return "mp3"
        case .oggVorbis: return "ogg"
        case .oggOpus: return "opus"
        case .flac: return "flac"
        case .aac: return "aac"
        case .mulawRaw: return "ulaw"
        case .alawRaw: return "alaw"
        }
    }

    /// Rates this format can be written at.
    public var allowedSampleRates: [Int] {
        switch self {
        case .mulaw, .mulawRaw, .alaw, .alawRaw: return [8000]
        case .oggOpus: return [8000, 16000, 24000, 48000]
        default: return Self.sampleRates
        }
    }

    /// The rate used when the request names none: the voice's own where the format allows it.
    public func defaultSampleRate(voiceRate: Int) -> Int {
        if allowedSampleRates.contains(voiceRate) || self == .wav || self == .pcm { return voiceRate }
        return allowedSampleRates.first { $0 >= voiceRate } ?? allowedSampleRates.last!
    }

    /// Bits per second the codec accepts, and its default; nil where there is no bitrate.
    public var bitrateRange: (range: ClosedRange<Int>, defaultValue: Int)? {
        switch self {
        case .mp3: return (32_000...320_000, 64_000)
        case .oggVorbis: return (32_000...256_000, 0)  // 0: quality-based VBR (see FFmpegEncoder)
        case .oggOpus: return (6_000...256_000, 32_000)
        case .aac: return (32_000...256_000, 64_000)
        default: return nil
        }
    }
}

/// A request's format, rate and bitrate, checked against each other.
public struct AudioOutput: Sendable, Equatable {
    public var format: AudioFormat
    public var sampleRate: Int
    public var bitrate: Int?

    /// Nil arguments take the format's defaults. Throws `AudioOutputError` naming valid choices.
    public init(format: AudioFormat, sampleRate: Int?, bitrate: Int?, voiceRate: Int) throws(AudioOutputError) {
        self.format = format
        if let sampleRate {
            guard format.allowedSampleRates.contains(sampleRate) || (sampleRate == voiceRate && (format == .wav || format == .pcm)) else {
                throw .unsupportedSampleRate(sampleRate, format: format)
            }
            self.sampleRate = sampleRate
        } else {
            self.sampleRate = format.defaultSampleRate(voiceRate: voiceRate)
        }
        if let bitrate {
            guard let allowed = format.bitrateRange else { throw .bitrateNotApplicable(format) }
            guard allowed.range.contains(bitrate) else { throw .bitrateOutOfRange(bitrate, format: format, range: allowed.range) }
            self.bitrate = bitrate
        } else {
            self.bitrate = format.bitrateRange.flatMap { $0.defaultValue > 0 ? $0.defaultValue : nil }
        }
    }
}

public enum AudioOutputError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownFormat(String)
    case unsupportedSampleRate(Int, format: AudioFormat)
    case bitrateNotApplicable(AudioFormat)
    case bitrateOutOfRange(Int, format: AudioFormat, range: ClosedRange<Int>)
    case unsupportedSettings(String)
    case encoderFailed(String)
    /// The audio passed the most one rendering makes (`--max-job-audio`, `--max-request-audio`).
    case audioTooLong(limitSeconds: Int)

    public var code: String {
        switch self {
        case .unknownFormat: return "unsupported_format"
        case .unsupportedSampleRate: return "unsupported_sample_rate"
        case .bitrateNotApplicable, .bitrateOutOfRange: return "invalid_bitrate"
        case .unsupportedSettings: return "unsupported_audio_settings"
        case .encoderFailed: return "encoding_failed"
        case .audioTooLong: return "audio_too_long"
        }
    }

    public var message: String {
        switch self {
        case .unknownFormat(let name):
            return "unsupported output format '\(name)'; available: \(AudioFormat.names.joined(separator: ", "))"
        case .unsupportedSampleRate(let rate, let format):
            return "sample rate \(rate) is not available for \(format.rawValue); choose one of \(format.allowedSampleRates.map(String.init).joined(separator: ", "))"
        case .bitrateNotApplicable(let format):
            return "\(format.rawValue) has no bitrate; bitrate applies to mp3, ogg_vorbis, ogg_opus and aac"
        case .bitrateOutOfRange(let bitrate, let format, let range):
            return "bitrate \(bitrate) is out of range for \(format.rawValue): \(range.lowerBound) to \(range.upperBound) bits per second"
        case .unsupportedSettings(let detail):
            return "these audio settings cannot be encoded: \(detail)"
        case .encoderFailed(let detail):
            return "the audio encoder failed: \(detail)"
        case .audioTooLong(let seconds):
            return "the audio passed \(Self.spoken(seconds: seconds)), the most one output may hold on this server; "
                + "split the text into several parts"
        }
    }

    public var description: String { message }

    /// `7200` → `2 h`, `1200` → `20 min`, `45` → `45 s`.
    public static func spoken(seconds: Int) -> String {
        if seconds >= 3600, seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds >= 60, seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}
