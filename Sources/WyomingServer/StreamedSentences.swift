import Foundation
import SpeechCore

/// Text arriving in pieces (`synthesize-chunk`s, often a word at a time from a language model),
/// cut into sentences as soon as each is certainly complete, by the same rule the espeak-ng
/// voices split text with (`SentenceSegmenter`).
struct StreamedSentences {
    /// Text received and not yet handed out as a sentence.
    private(set) var pending = ""

    /// Adds `text`; answers the sentences it completed, in order.
    mutating func add(_ text: String) -> [String] {
        pending += text
        var sentences = SentenceSegmenter.sentences(in: pending)
        guard let last = sentences.last else { return [] }
        // Every sentence but the last was closed by what follows it. The last is complete only
        // when its closing punctuation is already followed by white space.
        if Self.endsSentence(last), pending.last?.isWhitespace == true {
            pending = ""
            return sentences
        }
        sentences.removeLast()
        if !sentences.isEmpty, let start = pending.range(of: last, options: .backwards)?.lowerBound {
            pending = String(pending[start...])
        } else if !sentences.isEmpty {
            pending = last
        }
        return sentences
    }

    /// What is left at the end of the stream (nil when only white space is).
    mutating func finish() -> String? {
        defer { pending = "" }
        let rest = pending.trimmingWhitespace()
        return rest.isEmpty ? nil : rest
    }

    private static let closers: Set<Character> = ["\"", "'", "”", "’", "»", ")", "]", "}"]

    private static func endsSentence(_ sentence: String) -> Bool {
        guard let last = sentence.last(where: { !closers.contains($0) }) else { return false }
        return ".!?…".contains(last)
    }
}
