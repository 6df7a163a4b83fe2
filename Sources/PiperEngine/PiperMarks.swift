import Phonemizer
import SpeechCore

/// Timed marks for one model run, from the frames the model held each phoneme id for
/// (`DurationOutput`): a frame is `hop` samples of audio, so each phoneme's place in the audio
/// is exact, and words, the sentence and visemes follow from which phonemes they are made of.
enum PiperMarks {
    /// The decoder's hop length, derived from a run: its samples over its frames, which must
    /// divide exactly (256 for every Piper VITS voice); nil when they do not.
    static func hopLength(samples: Int, frames: [Float]) -> Int? {
        let total = frames.reduce(0) { $0 + Int($1) }
        guard total > 0, samples % total == 0 else { return nil }
        return samples / total
    }

    /// `run`'s marks; `spans` are each phoneme's ids (`PhonemeIDMapper.idsWithSpans`), `frames`
    /// each id's frames, `offset` where the run's audio starts in its chunk (after the silence
    /// before a sentence), `text` the UTF-8 bytes of the text the voice was given.
    static func marks(
        for run: PiperVoice.ModelRun, spans: [Range<Int>], frames: [Float], hop: Int, offset: Int, text: [UInt8]
    ) -> [SpeechMark] {
        // Where each id starts, in samples of the chunk; one more entry for the end.
        var starts = [Int](repeating: offset, count: frames.count + 1)
        for (index, count) in frames.enumerated() { starts[index + 1] = starts[index] + Int(count) * hop }
        let end = starts[frames.count]
        var marks: [SpeechMark] = []
        if !run.continuesSentence, let bytes = run.sentenceBytes {
            marks.append(SpeechMark(kind: .sentence, startSample: offset, endSample: end, textRange: bytes, value: string(text, bytes)))
        }
        // Words, in the order they are heard: from the first sample of their first phoneme to
        // the last of their last.
        var wordSpans: [Int: (first: Int, last: Int)] = [:]
        for (index, owner) in run.owners.enumerated() {
            guard let owner, index < spans.count, !spans[index].isEmpty else { continue }
            wordSpans[owner] = (wordSpans[owner]?.first ?? index, index)
        }
        for (word, span) in wordSpans.sorted(by: { $0.value.first < $1.value.first }) {
            let bytes = run.words[word].bytes
            marks.append(SpeechMark(
                kind: .word, startSample: starts[spans[span.first].lowerBound], endSample: starts[spans[span.last].upperBound],
                textRange: bytes, value: run.words[word].text))
        }
        marks += visemes(run: run, spans: spans, starts: starts)
        return marks.sorted { $0.startSample < $1.startSample || ($0.startSample == $1.startSample && order($0) < order($1)) }
    }

    /// Sentence before word before viseme at the same sample, as Polly lists them.
    private static func order(_ mark: SpeechMark) -> Int {
        switch mark.kind {
        case .sentence: 0
        case .word: 1
        case .ssml: 2
        case .viseme: 3
        }
    }

    /// One viseme per run of phonemes with the same mouth shape; the ids before the first
    /// phoneme and after the last, and punctuation, are silence.
    private static func visemes(run: PiperVoice.ModelRun, spans: [Range<Int>], starts: [Int]) -> [SpeechMark] {
        var visemes: [SpeechMark] = []
        func add(_ value: String, _ ids: Range<Int>, at position: Int) {
            guard !ids.isEmpty else { return }
            if var last = visemes.last, last.value == value {
                last.endSample = starts[ids.upperBound]
                visemes[visemes.count - 1] = last
                return
            }
            visemes.append(SpeechMark(
                kind: .viseme, startSample: starts[ids.lowerBound], endSample: starts[ids.upperBound],
                textRange: position..<position, value: value))
        }
        let firstID = spans.first(where: { !$0.isEmpty })?.lowerBound ?? (starts.count - 1)
        let sentenceStart = run.sentenceBytes?.lowerBound ?? 0
        add(Viseme.silence, 0..<firstID, at: sentenceStart)
        var position = sentenceStart
        for (index, phoneme) in run.phonemes.enumerated() where index < spans.count && !spans[index].isEmpty {
            if let owner = run.owners[index] { position = run.words[owner].bytes.lowerBound }
            if let viseme = Viseme.of(phoneme) {
                add(viseme, spans[index], at: position)
            } else if var last = visemes.last {
                // A stress mark, a space or a length mark: the mouth keeps its shape.
                last.endSample = starts[spans[index].upperBound]
                visemes[visemes.count - 1] = last
            }
        }
        let lastID = spans.last(where: { !$0.isEmpty })?.upperBound ?? 0
        add(Viseme.silence, lastID..<(starts.count - 1), at: position)
        return visemes
    }

    private static func string(_ text: [UInt8], _ bytes: Range<Int>) -> String {
        guard bytes.upperBound <= text.count else { return "" }
        return String(decoding: text[bytes], as: UTF8.self)
    }
}
