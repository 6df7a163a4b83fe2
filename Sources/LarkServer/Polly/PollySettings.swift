/// How the Polly-compatible routes are configured (`--polly-voice NAME=VOICE[#SPEAKER]`).
public struct PollySettings: Sendable, Equatable {
    /// Polly voice names (`Joanna`, `Matthew`, …) mapped to Lark voices and speakers; any other
    /// `VoiceId` is taken as a Lark voice id.
    public var voices: VoiceNameMap

    public init(voices: VoiceNameMap = VoiceNameMap()) {
        self.voices = voices
    }
}
