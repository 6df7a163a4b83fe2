/// What a caller asked to be spoken, exactly as it arrived: the one input of every synthesis
/// route, job and command. Text offsets that reach the caller (word marks, captions) count in
/// this `text`'s UTF-8 bytes, whatever normalization or SSML made of it on the way to an engine.
public struct SpeechInput: Sendable, Equatable {
    /// How `text` is written.
    public enum Markup: String, Sendable, Codable, CaseIterable {
        /// Plain text (Piper's `[[ phonemes ]]` blocks included).
        case text
        /// An SSML document (`<speak>…</speak>`).
        case ssml
    }

    public var text: String
    public var markup: Markup
    /// Rewrite numbers, dates, abbreviations and symbols into the words they are read as, before
    /// phonemizing, for voices whose language has a normalizer. Off: Piper 1.8's exact phonemes.
    public var normalize: Bool

    public init(_ text: String, markup: Markup = .text, normalize: Bool = true) {
        self.text = text
        self.markup = markup
        self.normalize = normalize
    }
}
