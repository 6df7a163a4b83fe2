/// Splits text into sentences for engines that do not split it themselves (espeak-ng voices).
///
/// Piper voices do not use this: their sentences come from espeak-ng's clause splitting, exactly
/// as Piper does it (see `Phonemizer`). Written by hand because the rule is small and the engines
/// need it without Foundation's locale machinery: a sentence ends after `.`, `!`, `?` or `…`
/// (with any closing quotes or brackets) followed by white space, and at every line break
/// that follows a blank line or ends a line with no punctuation.
public enum SentenceSegmenter {
    public static func sentences(in text: String) -> [String] {
        sentenceRanges(in: text).map(\.text)
    }

    /// The sentences with where each is in `text`: UTF-8 byte offsets, white space trimmed.
    public static func sentenceRanges(in text: String) -> [(text: String, bytes: Range<Int>)] {
        var result: [(text: String, bytes: Range<Int>)] = []
        var current = ""
        var currentStart = 0
        var offset = 0
        let characters = Array(text)
        var index = 0

        func flush() {
            let trimmed = current.trimmingWhitespace()
            if !trimmed.isEmpty {
                let leading = current.prefix { $0.isWhitespace }.utf8.count
                let start = currentStart + leading
                result.append((trimmed, start..<start + trimmed.utf8.count))
            }
            current = ""
            currentStart = offset
        }

        func take(_ character: Character) {
            current.append(character)
            offset += character.utf8.count
            index += 1
        }

        while index < characters.count {
            let character = characters[index]
            take(character)
            if character.isNewline {
                // A line break ends a sentence unless the line continues a sentence mid-way
                // (a line that ends in a letter, followed by a line starting in lowercase).
                let next = characters[index...].first { !$0.isWhitespace }
                let previous = current.dropLast().last { !$0.isWhitespace }
                if next == nil || previous.map(Self.isTerminal) ?? true || !(next!.isLowercase) {
                    flush()
                }
                continue
            }
            guard Self.isTerminal(character) else { continue }
            // Take the rest of a punctuation run ("?!", "...") and closing quotes or brackets.
            while index < characters.count, Self.isTerminal(characters[index]) || Self.isCloser(characters[index]) {
                take(characters[index])
            }
            if index == characters.count || characters[index].isWhitespace {
                flush()
            }
        }
        flush()
        return result
    }

    static func isTerminal(_ character: Character) -> Bool {
        ".!?…".contains(character)
    }

    static func isCloser(_ character: Character) -> Bool {
        "\"'”’»)]}".contains(character)
    }
}

extension String {
    /// The string without leading and trailing white space (Foundation-free).
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
