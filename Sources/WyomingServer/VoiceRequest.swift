import Foundation
import SpeechCore

/// The `voice` of a `synthesize` or `synthesize-start`: a voice by `name` (with an optional
/// `speaker`), or only a `language`, which picks an installed voice for it.
struct VoiceRequest: Sendable, Equatable {
    var name: String?
    var speaker: String?
    var language: String?

    init(name: String? = nil, speaker: String? = nil, language: String? = nil) {
        self.name = name
        self.speaker = speaker
        self.language = language
    }

    /// Reads an event's `voice` object (absent: the server's default voice). `speaker` may be
    /// a name or a number.
    init(_ value: JSONValue?) {
        guard let object = value?.object else { return }
        name = object["name"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        speaker = object["speaker"]?.string ?? object["speaker"]?.int.map(String.init)
        language = object["language"]?.string.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The voice id for a language alone: the default voice when it speaks it, else the first
    /// Piper voice, else an espeak-ng voice; an exact match (`en_US`, `en-us`) before a voice of
    /// the same language elsewhere (`en` → `en_GB`). Nil when no voice speaks it.
    static func voice(forLanguage language: String, defaultVoice: VoiceInfo?, voices: [VoiceInfo]) -> String? {
        let wanted = normalized(language)
        let primary = wanted.split(separator: "-").first.map(String.init) ?? wanted
        let candidates = (defaultVoice.map { [$0] } ?? []) + voices.filter { $0.engine == .piper } + voices.filter { $0.engine == .espeakNG }
        if let exact = candidates.first(where: { normalized($0.languageCode) == wanted }) { return exact.id }
        return candidates.first { normalized($0.languageCode).split(separator: "-").first.map(String.init) == primary }?.id
    }

    private static func normalized(_ code: String) -> String {
        code.lowercased().replacingOccurrences(of: "_", with: "-")
    }
}
