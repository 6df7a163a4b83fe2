/// Errors a caller can act on. Each has a stable `code` (for JSON bodies and scripts) and a
/// one-line `message` a person understands, naming the valid choices where there are some.
public enum SpeechError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyText
    case invalidText(String)
    /// An SSML document that cannot be spoken: `message` says what was found and what was
    /// expected; `line` and `column` (from 1, columns in characters) point at it.
    case invalidSSML(message: String, line: Int, column: Int)
    case textTooLong(length: Int, limit: Int)
    case unknownVoice(String, available: [String])
    case unknownSpeaker(String, available: [String])
    case speakerOutOfRange(Int, count: Int)
    case invalidOption(name: String, message: String)
    case voiceFileMissing(path: String)
    case invalidVoiceConfig(path: String, reason: String)
    case invalidModel(path: String, reason: String)
    case engineUnavailable(String)
    case synthesisFailed(String)

    public var code: String {
        switch self {
        case .emptyText: return "empty_text"
        case .invalidText: return "invalid_text"
        case .invalidSSML: return "invalid_ssml"
        case .textTooLong: return "text_too_long"
        case .unknownVoice: return "unknown_voice"
        case .unknownSpeaker: return "unknown_speaker"
        case .speakerOutOfRange: return "speaker_out_of_range"
        case .invalidOption: return "invalid_option"
        case .voiceFileMissing: return "voice_file_missing"
        case .invalidVoiceConfig: return "invalid_voice_config"
        case .invalidModel: return "invalid_model"
        case .engineUnavailable: return "engine_unavailable"
        case .synthesisFailed: return "synthesis_failed"
        }
    }

    public var message: String {
        switch self {
        case .emptyText:
            return "the text is empty: give some words to speak"
        case .invalidText(let why):
            return "the text cannot be read: \(why)"
        case .invalidSSML(let message, let line, let column):
            return "invalid SSML at line \(line), column \(column): \(message)"
        case .textTooLong(let length, let limit):
            return "the text has \(length) characters (Unicode code points), more than the limit of \(limit)"
        case .unknownVoice(let name, let available):
            return "unknown voice '\(name)'; available: \(Self.list(available))"
        case .unknownSpeaker(let name, let available):
            return "unknown speaker '\(name)'; this voice has: \(Self.list(available))"
        case .speakerOutOfRange(let id, let count):
            return count <= 1
                ? "speaker \(id) is out of range: this voice has a single speaker (0)"
                : "speaker \(id) is out of range: this voice has speakers 0 to \(count - 1)"
        case .invalidOption(_, let message):
            return message
        case .voiceFileMissing(let path):
            return "voice file not found: \(path)"
        case .invalidVoiceConfig(let path, let reason):
            return "invalid voice config \(path): \(reason)"
        case .invalidModel(let path, let reason):
            return "cannot load voice model \(path): \(reason)"
        case .engineUnavailable(let why):
            return why
        case .synthesisFailed(let why):
            return "synthesis failed: \(why)"
        }
    }

    public var description: String { message }

    /// What a client may be told: `message` without local file paths or engine internals (they
    /// stay in the server's log). The voice-loading errors name the files they could not read,
    /// and the engine's own failures quote its libraries; a client is told which kind of failure
    /// it was, not where.
    public var clientMessage: String {
        switch self {
        case .voiceFileMissing:
            return "a file of this voice is missing on the server; the server's log names it"
        case .invalidVoiceConfig:
            return "this voice's config on the server cannot be read; the server's log says why"
        case .invalidModel:
            return "this voice's model on the server cannot be loaded; the server's log says why"
        case .engineUnavailable:
            // espeak-ng's data directory, or the runtime's own words about its libraries.
            return "the speech engine is not available on this server; the server's log says why"
        case .synthesisFailed:
            return "synthesis failed on the server; the server's log says why"
        default:
            return message
        }
    }

    /// Whether `message` may name local files or engine internals, so that only `clientMessage`
    /// may leave the server (the full message goes to the log).
    public var namesLocalFiles: Bool {
        switch self {
        case .voiceFileMissing, .invalidVoiceConfig, .invalidModel, .engineUnavailable, .synthesisFailed: return true
        default: return false
        }
    }

    private static func list(_ items: [String], limit: Int = 40) -> String {
        if items.isEmpty { return "(none)" }
        let shown = items.prefix(limit).joined(separator: ", ")
        return items.count > limit ? shown + ", … (\(items.count) in all)" : shown
    }
}
