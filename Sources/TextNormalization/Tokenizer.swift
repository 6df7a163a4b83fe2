/// One piece of text as the reading rules see it.
struct Token: Sendable {
    enum Kind: Sendable {
        /// A run of letters (and combining marks).
        case word
        /// A run of ASCII digits.
        case number
        /// A run of white space.
        case space
        /// Any other single character (punctuation, currency, `°`, `%`, …).
        case symbol
    }

    var kind: Kind
    var text: Substring
    /// Where it is in the input, in UTF-8 bytes.
    var bytes: Range<Int>

    var isWord: Bool { kind == .word }
    var isNumber: Bool { kind == .number }
    var isSpace: Bool { kind == .space }
    func isSymbol(_ characters: String) -> Bool { kind == .symbol && characters.contains(text) }
    var isCapitalized: Bool { kind == .word && text.first?.isUppercase == true }
    var isLowercaseWord: Bool { kind == .word && text.first?.isLowercase == true }
    var containsNewline: Bool { kind == .space && text.contains(where: \.isNewline) }
}

/// Splits text into words, digit runs, white space and single symbols, keeping each one's UTF-8
/// range. Written by hand: it runs over every character of every request, and these four
/// classes are all the rules need.
enum Tokenizer {
    static func tokens(of text: Substring, baseOffset: Int) -> [Token] {
        var tokens: [Token] = []
        var index = text.startIndex
        var offset = baseOffset
        while index < text.endIndex {
            let character = text[index]
            let kind = Self.kind(of: character)
            var end = text.index(after: index)
            if kind != .symbol {
                while end < text.endIndex, Self.kind(of: text[end]) == kind { end = text.index(after: end) }
            }
            let piece = text[index..<end]
            let length = piece.utf8.count
            tokens.append(Token(kind: kind, text: piece, bytes: offset..<offset + length))
            offset += length
            index = end
        }
        return tokens
    }

    private static func kind(of character: Character) -> Token.Kind {
        if character.isWhitespace { return .space }
        if character.isASCII, character.isNumber { return .number }
        if character.isLetter { return .word }
        return .symbol
    }
}
