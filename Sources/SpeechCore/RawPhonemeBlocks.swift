/// Where Piper's `[[ raw phonemes ]]` blocks are in a text: Piper's pattern `\[\[.*?\]\]`, where
/// `.` does not cross a line break. Shared by the phonemizer (which speaks a block's phonemes as
/// they are) and the normalizer (which never rewrites a block). Scanned by hand: SpeechCore does
/// without Foundation.
public enum RawPhonemeBlockScanner {
    /// Each block in order: the whole block with its brackets, and the phonemes inside.
    public static func blocks(in text: String) -> [(block: Range<String.Index>, phonemes: Range<String.Index>)] {
        var blocks: [(Range<String.Index>, Range<String.Index>)] = []
        var index = text.startIndex
        while let open = pair("[", in: text, from: index, stopAtNewline: false) {
            let inside = text.index(open, offsetBy: 2)
            guard let close = pair("]", in: text, from: inside, stopAtNewline: true) else {
                index = text.index(after: open)
                continue
            }
            let end = text.index(close, offsetBy: 2)
            blocks.append((open..<end, inside..<close))
            index = end
        }
        return blocks
    }

    /// The index of the first two `character`s in a row from `start` (before the next line break
    /// when `stopAtNewline`).
    private static func pair(_ character: Character, in text: String, from start: String.Index, stopAtNewline: Bool) -> String.Index? {
        var index = start
        while index < text.endIndex {
            let current = text[index]
            if stopAtNewline, current.isNewline { return nil }
            let next = text.index(after: index)
            if current == character, next < text.endIndex, text[next] == character { return index }
            index = next
        }
        return nil
    }
}
