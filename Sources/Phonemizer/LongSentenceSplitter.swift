/// Cuts a very long sentence's phonemes into pieces the model can run one at a time.
///
/// Why: a VITS model runs a sentence in one pass, and its activations grow with the sentence's
/// audio (about 25 MB per second of speech for a medium voice). Text with no sentence punctuation
/// (a pasted log line, a list without full stops) becomes one sentence: 2,500 characters of it
/// made 138 s of audio in a single run, held 3.7 GB, and gave its first audio after the whole
/// run. Piper runs such text whole; Lark cuts it so memory and time to first audio stay bounded.
/// Ordinary sentences are far below the limit, so they keep Piper's exact phonemes.
///
/// Where it cuts, best first: after a clause mark (`,` `;` `:` with the space Piper adds), after
/// a word (a space), and only inside a word that alone is longer than the limit.
public enum LongSentenceSplitter {
    /// The most phonemes one model run gets at length scale 1: about 14 s of speech.
    public static let defaultLimit = 300

    /// The limit for a length scale: slower speech makes more audio per phoneme, and the audio is
    /// what takes the memory (sixty words at length scale 20 made 285 s of speech and 5.8 GB).
    public static func limit(lengthScale: Float) -> Int {
        max(8, Int(Float(defaultLimit) / max(1, lengthScale)))
    }

    /// `phonemes` itself when it fits, else pieces of at most `limit` phonemes that join back to it.
    public static func pieces(of phonemes: [String], limit: Int = defaultLimit) -> [[String]] {
        precondition(limit > 1, "a piece needs room for more than one phoneme")
        guard phonemes.count > limit else { return [phonemes] }
        var pieces: [[String]] = []
        var start = 0
        while phonemes.count - start > limit {
            let end = cut(phonemes, from: start, limit: limit)
            pieces.append(Array(phonemes[start..<end]))
            start = end
        }
        pieces.append(Array(phonemes[start...]))
        return pieces
    }

    /// Where the piece starting at `start` ends (exclusive): the last clause break in its second
    /// half, else the last word break in it, else the limit itself.
    private static func cut(_ phonemes: [String], from start: Int, limit: Int) -> Int {
        let latest = start + limit
        let earliestClause = start + limit / 2
        var wordBreak: Int?
        var index = latest
        // Below the clause half, only a first word break is still worth finding.
        while index > start + 1, wordBreak == nil || index >= earliestClause {
            if phonemes[index - 1] == " " {
                if index >= earliestClause, clauseMarks.contains(phonemes[index - 2]) { return index }
                if wordBreak == nil { wordBreak = index }
            }
            index -= 1
        }
        return wordBreak ?? latest
    }

    private static let clauseMarks: Set<String> = [",", ";", ":"]
}
