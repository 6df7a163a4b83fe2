import Espeak
import SpeechCore

/// Timed marks for one sentence spoken by an espeak-ng voice, from espeak-ng's own events:
/// a word starts at its word event and ends where the next word or a pause starts; the words
/// espeak-ng makes of one text word ("1984" → three) are one mark; visemes come from the
/// phoneme events.
public enum EspeakMarks {
    /// `sentence` (at `bytes` of the text the voice was given) as marks: `events` and
    /// `sampleCount` are its synthesis's, `offset` where its audio starts in the chunk.
    public static func marks(
        sentence: String, bytes: Range<Int>, events: [EspeakEvent], sampleCount: Int, offset: Int
    ) -> [SpeechMark] {
        var marks = [SpeechMark(
            kind: .sentence, startSample: offset, endSample: offset + sampleCount, textRange: bytes, value: sentence)]
        let words = TextWordsInSentence(sentence)
        let end = events.last(where: { $0.kind == .end })?.sample ?? sampleCount
        var wordMarks: [(word: Int, start: Int, end: Int)] = []
        for (index, event) in events.enumerated() where event.kind == .word {
            guard let word = words.word(atCodePoint: event.textPosition - 1) else { continue }
            // Words come in text order; espeak-ng now and then repeats a stale event from earlier
            // in the sentence after the last word (seen under load, with other calls between).
            if let last = wordMarks.last, word < last.word || event.sample < last.start { continue }
            // Where this spoken word stops: the next word, a pause, or the end.
            let stop = events[(index + 1)...].first { $0.kind == .word || $0.kind == .end || ($0.kind == .phoneme && $0.phoneme.isEmpty) }?.sample ?? end
            if let last = wordMarks.last, last.word == word {
                wordMarks[wordMarks.count - 1].end = max(last.end, stop)
            } else {
                wordMarks.append((word, event.sample, max(event.sample, stop)))
            }
        }
        wordMarks = sharingJoinedWords(wordMarks, words: words.words)
        for mark in wordMarks {
            let word = words.words[mark.word]
            marks.append(SpeechMark(
                kind: .word, startSample: offset + mark.start, endSample: offset + min(mark.end, sampleCount),
                textRange: word.bytes.lowerBound + bytes.lowerBound..<word.bytes.upperBound + bytes.lowerBound, value: word.text))
        }
        // Visemes: each phoneme event until the next one (a pause is silence).
        let phonemes = events.filter { $0.kind == .phoneme }
        var visemes: [SpeechMark] = []
        for (index, event) in phonemes.enumerated() {
            let value = event.phoneme.isEmpty ? Viseme.silence : Viseme.of(event.phoneme) ?? Viseme.silence
            let stop = min(index + 1 < phonemes.count ? phonemes[index + 1].sample : end, sampleCount)
            let position = bytes.lowerBound + (words.word(atCodePoint: event.textPosition - 1).map { words.words[$0].bytes.lowerBound } ?? 0)
            if var last = visemes.last, last.value == value {
                last.endSample = offset + stop
                visemes[visemes.count - 1] = last
            } else {
                visemes.append(SpeechMark(
                    kind: .viseme, startSample: offset + min(event.sample, sampleCount), endSample: offset + max(min(event.sample, sampleCount), stop),
                    textRange: position..<position, value: value))
            }
        }
        marks += visemes
        return marks.sorted { $0.startSample < $1.startSample || ($0.startSample == $1.startSample && rank($0) < rank($1)) }
    }

    /// espeak-ng speaks some words as one ("of the" → `ʌvðə`) with one word event: the words
    /// between two events share the first one's time, in proportion to their length in text.
    static func sharingJoinedWords(
        _ marks: [(word: Int, start: Int, end: Int)], words: [TextWord]
    ) -> [(word: Int, start: Int, end: Int)] {
        var result: [(word: Int, start: Int, end: Int)] = []
        for (index, mark) in marks.enumerated() {
            let next = index + 1 < marks.count ? marks[index + 1].word : mark.word + 1
            guard next > mark.word + 1 else {
                result.append(mark)
                continue
            }
            let joined = mark.word..<next
            let total = joined.reduce(0) { $0 + words[$1].text.count }
            var start = mark.start
            var counted = 0
            for word in joined {
                counted += words[word].text.count
                let end = word == next - 1 ? mark.end : mark.start + (mark.end - mark.start) * counted / max(1, total)
                result.append((word, start, end))
                start = end
            }
        }
        return result
    }

    private static func rank(_ mark: SpeechMark) -> Int {
        switch mark.kind {
        case .sentence: 0
        case .word: 1
        case .ssml: 2
        case .viseme: 3
        }
    }
}

/// A sentence's words (`TextWords`' rule, byte ranges within the sentence) and which word a
/// code point position falls in.
struct TextWordsInSentence {
    let words: [TextWord]
    /// The UTF-8 offset of each code point.
    private let codePointBytes: [Int]

    init(_ sentence: String) {
        var offsets: [Int] = []
        var offset = 0
        for scalar in sentence.unicodeScalars {
            offsets.append(offset)
            offset += String(scalar).utf8.count
        }
        offsets.append(offset)
        codePointBytes = offsets
        words = TextWords.words(in: sentence)
    }

    /// The word at code point `index`, or the next word after it (an event can point at the
    /// punctuation before a word), or nil past the last word.
    func word(atCodePoint index: Int) -> Int? {
        guard index >= 0 else { return words.isEmpty ? nil : 0 }
        let byte = codePointBytes[min(index, codePointBytes.count - 1)]
        return words.firstIndex { $0.bytes.upperBound > byte }
    }
}
