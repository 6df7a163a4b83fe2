/// A timed event in synthesized audio: a sentence or word being spoken, a mouth shape, or an
/// SSML `<mark>` reached. Engines attach them to the `AudioChunk` whose samples they time.
public struct SpeechMark: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case sentence, word, viseme, ssml
    }

    public var kind: Kind
    /// Where the event starts and ends, in samples from the first sample of its chunk.
    public var startSample: Int
    public var endSample: Int
    /// The UTF-8 byte range of what is spoken, in the text the voice was given (`prepare`'s);
    /// the layers that rewrote the caller's text before that (normalization, SSML) map it back
    /// into `SpeechInput.text`. Empty at the position of a viseme's word or an SSML mark.
    public var textRange: Range<Int>
    /// The text as written (word, sentence), the viseme's symbol, or the SSML mark's name.
    public var value: String

    public init(kind: Kind, startSample: Int, endSample: Int, textRange: Range<Int>, value: String) {
        self.kind = kind
        self.startSample = startSample
        self.endSample = endSample
        self.textRange = textRange
        self.value = value
    }
}

extension Array where Element == SpeechMark {
    /// The marks with each run of word marks that point at the same text (one written word
    /// that normalization, SSML or espeak-ng read as several: "$42.50", "1984") made into one
    /// mark from the first word's start to the last one's end. Other marks are kept as they are.
    public func mergingWordsOfOneSpan() -> [SpeechMark] {
        var merged: [SpeechMark] = []
        var lastWord: Int?
        for mark in self {
            if mark.kind == .word, let index = lastWord, merged[index].textRange == mark.textRange, !mark.textRange.isEmpty {
                merged[index].endSample = Swift.max(merged[index].endSample, mark.endSample)
                continue
            }
            if mark.kind == .word { lastWord = merged.count }
            merged.append(mark)
        }
        return merged
    }
}
