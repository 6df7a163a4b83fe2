import SpeechCore

/// WebVTT and SubRip captions from a request's timed marks.
///
/// A cue is a group of consecutive words of one sentence whose text (as the caller wrote it,
/// punctuation included) fits in `maxCharacters`; a word longer than that is a cue alone. With
/// `maxCharacters` 0, or a voice that gives no word marks, each sentence is one cue.
public struct Captions: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case vtt, srt

        public var contentType: String { self == .vtt ? "text/vtt; charset=utf-8" : "application/x-subrip; charset=utf-8" }
        public var fileExtension: String { rawValue }
    }

    public struct Cue: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var text: String
    }

    /// The longest cue, in characters (Netflix's and the BBC's guideline for one line is 42).
    public static let defaultMaxCharacters = 42
    public static let maxCharactersRange = 0...1000

    public let cues: [Cue]

    /// `marks`: the request's timed marks (words and sentences), in order; `text`: the caller's text.
    public init(marks: [TimedMark], text: String, maxCharacters: Int = Self.defaultMaxCharacters) {
        let utf8 = Array(text.utf8)
        func slice(_ bytes: Range<Int>) -> String {
            guard bytes.upperBound <= utf8.count, !bytes.isEmpty else { return "" }
            return String(decoding: utf8[bytes], as: UTF8.self)
                .split(whereSeparator: \.isWhitespace).joined(separator: " ")
        }
        /// A word's text to the next white space, so a cue keeps the punctuation after its last word.
        func extendToSpace(_ end: Int) -> Int {
            var end = end
            while end < utf8.count, ![0x20, 0x0A, 0x0D, 0x09].contains(utf8[end]) { end += 1 }
            return end
        }
        let sentences = marks.filter { $0.kind == .sentence }
        let words = marks.filter { $0.kind == .word }
        var cues: [Cue] = []
        if words.isEmpty || maxCharacters == 0 {
            cues = sentences.map { Cue(start: $0.time, end: $0.endTime, text: slice($0.bytes)) }
        } else {
            var group: [TimedMark] = []
            var sentenceIndex = 0
            func sentence(of word: TimedMark) -> Int {
                while sentenceIndex + 1 < sentences.count, sentences[sentenceIndex + 1].time <= word.time,
                      sentences[sentenceIndex + 1].bytes.lowerBound <= word.bytes.lowerBound {
                    sentenceIndex += 1
                }
                return sentenceIndex
            }
            var groupSentence = -1
            func flush() {
                guard let first = group.first, let last = group.last else { return }
                cues.append(Cue(
                    start: first.time, end: last.endTime,
                    text: slice(first.bytes.lowerBound..<extendToSpace(last.bytes.upperBound))))
                group = []
            }
            for word in words {
                let index = sentence(of: word)
                if let first = group.first {
                    let candidate = slice(first.bytes.lowerBound..<extendToSpace(word.bytes.upperBound))
                    if index != groupSentence || candidate.count > maxCharacters { flush() }
                }
                if group.isEmpty { groupSentence = index }
                group.append(word)
            }
            flush()
        }
        // Cues in order and never overlapping (a player shows one at a time).
        for index in cues.indices.dropFirst() where cues[index].start < cues[index - 1].end {
            cues[index - 1].end = cues[index].start
        }
        self.cues = cues.filter { !$0.text.isEmpty && $0.end > $0.start }
    }

    public func render(_ format: Format) -> String {
        switch format {
        case .vtt:
            return "WEBVTT\n\n" + cues.map { "\(Self.time($0.start, ".")) --> \(Self.time($0.end, "."))\n\(Self.escapeVTT($0.text))\n\n" }.joined()
        case .srt:
            return cues.enumerated().map { index, cue in
                "\(index + 1)\n\(Self.time(cue.start, ",")) --> \(Self.time(cue.end, ","))\n\(cue.text)\n\n"
            }.joined()
        }
    }

    /// `hh:mm:ss.mmm` (`,` before the milliseconds in SubRip).
    static func time(_ milliseconds: Int, _ separator: String) -> String {
        let ms = max(0, milliseconds)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = ms % 1000
        let fractionText = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(two(ms / 3_600_000)):\(two(ms / 60_000 % 60)):\(two(ms / 1000 % 60))\(separator)\(fractionText)"
    }

    /// WebVTT cue text may not hold `<`, `&` or `-->` as such.
    static func escapeVTT(_ text: String) -> String {
        text.replacingAll("&", with: "&amp;").replacingAll("<", with: "&lt;").replacingAll(">", with: "&gt;")
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
