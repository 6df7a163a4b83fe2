/// A voice another API names (OpenAI's `alloy`, Polly's `Joanna`) and the Lark voice and speaker
/// that speak for it, from `--openai-voice` / `--polly-voice NAME=VOICE[#SPEAKER]` or a mapping file.
public struct MappedVoice: Sendable, Equatable {
    public var voice: String
    public var speaker: String?

    public init(voice: String, speaker: String? = nil) {
        self.voice = voice
        self.speaker = speaker
    }

    /// `VOICE` or `VOICE#SPEAKER` (a speaker name or number).
    public init?(spec: String) {
        let parts = spec.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let voice = parts.first, !voice.isEmpty else { return nil }
        if parts.count == 2, parts[1].isEmpty { return nil }
        self.init(voice: voice, speaker: parts.count == 2 ? parts[1] : nil)
    }
}

/// Names of another API's voices mapped to Lark voices; names match in any case.
public struct VoiceNameMap: Sendable, Equatable {
    public private(set) var entries: [String: MappedVoice] = [:]

    public init(_ entries: [String: MappedVoice] = [:]) {
        for (name, voice) in entries { self.entries[name.lowercased()] = voice }
    }

    /// Adds `NAME=VOICE[#SPEAKER]`; false (and nothing added) when the entry is not of that form.
    public mutating func add(_ entry: String) -> Bool {
        let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, let voice = MappedVoice(spec: parts[1]) else { return false }
        entries[parts[0].lowercased()] = voice
        return true
    }

    public subscript(name: String) -> MappedVoice? { entries[name.lowercased()] }
}
