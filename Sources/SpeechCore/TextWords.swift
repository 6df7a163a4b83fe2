/// The words of a text as a reader sees them, with their UTF-8 byte ranges: runs between white
/// space, without the quotes, brackets and punctuation around them ("(Hello," → "Hello";
/// "$42.50" and "don't" stay whole). What word timings are given for.
public struct TextWord: Sendable, Equatable {
    public var text: String
    /// UTF-8 byte offsets into the text it was found in.
    public var bytes: Range<Int>

    public init(text: String, bytes: Range<Int>) {
        self.text = text
        self.bytes = bytes
    }
}

public enum TextWords {
    /// The words of `text[bytes]` (a byte range of `text`; the whole text when nil), with ranges in `text`.
    public static func words(in text: String, bytes: Range<Int>? = nil) -> [TextWord] {
        let utf8 = text.utf8
        let range = bytes ?? 0..<utf8.count
        guard !range.isEmpty,
              let lower = utf8.index(utf8.startIndex, offsetBy: range.lowerBound, limitedBy: utf8.endIndex),
              let upper = utf8.index(utf8.startIndex, offsetBy: range.upperBound, limitedBy: utf8.endIndex),
              let start = lower.samePosition(in: text), let end = upper.samePosition(in: text)
        else { return [] }
        var words: [TextWord] = []
        var offset = range.lowerBound
        var current: (start: Int, characters: [Character])?
        func flush() {
            guard let run = current else { return }
            current = nil
            var characters = run.characters[...]
            var startByte = run.start
            while let first = characters.first, leading.contains(first) || (first.isPunctuation && !kept.contains(first)) {
                startByte += first.utf8.count
                characters = characters.dropFirst()
            }
            while let last = characters.last, trailing.contains(last) || (last.isPunctuation && !kept.contains(last)) {
                characters = characters.dropLast()
            }
            guard !characters.isEmpty else { return }
            let word = String(characters)
            words.append(TextWord(text: word, bytes: startByte..<startByte + word.utf8.count))
        }
        for character in text[start..<end] {
            if character.isWhitespace {
                flush()
            } else if current == nil {
                current = (offset, [character])
            } else {
                current!.characters.append(character)
            }
            offset += character.utf8.count
        }
        flush()
        return words
    }

    private static let leading: Set<Character> = ["\"", "'", "“", "‘", "«", "(", "[", "{", "¿", "¡", "„", "‚"]
    private static let trailing: Set<Character> = ["\"", "'", "”", "’", "»", ")", "]", "}", ".", ",", ";", ":", "!", "?", "…"]
    /// Punctuation that is read out or belongs to the word ("#1", "50%", "@home").
    private static let kept: Set<Character> = ["#", "%", "@", "&", "*", "/", "\\", "§", "†", "‰"]
}
