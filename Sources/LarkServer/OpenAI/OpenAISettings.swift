/// How the OpenAI-compatible routes are configured (`--openai-max-input`, `--openai-voice`,
/// `--openai-voices-file`).
public struct OpenAISettings: Sendable, Equatable {
    /// The longest `input` accepted, in characters (OpenAI's own limit is 4,096).
    public var maxInputCharacters: Int
    /// OpenAI voice names (or any other name) mapped to Lark voices and speakers. An OpenAI
    /// voice name that is not mapped speaks with the server's default voice.
    public var voices: VoiceNameMap

    public init(maxInputCharacters: Int = 4096, voices: VoiceNameMap = VoiceNameMap()) {
        self.maxInputCharacters = maxInputCharacters
        self.voices = voices
    }

    /// OpenAI's built-in voices.
    public static let voiceNames = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"]
}
