/// What a rule read: the tokens it covers (up to `end`, exclusive) and the words they are said as.
struct Reading {
    var end: Int
    var words: String
}

/// The English reading rules over one stretch of tokens. `read(at:)` tries the rules that can
/// start at a token in a fixed order, most specific first (a phone number before a range, a
/// date before a fraction, a year before a plain number); the first that matches wins, and the
/// tokens it covers are never looked at again. The rules (in the `EnglishReader+…` files) follow
/// the ambiguity rules of NeMo's English grammars, Flite's token rules and gruut, in our words.
struct EnglishReader {
    let tokens: [Token]
    let dateOrder: EnglishNormalizer.DateOrder

    func read(at index: Int) -> Reading? {
        let rules: [(EnglishReader) -> (Int) -> Reading?]
        switch tokens[index].kind {
        case .space:
            return nil
        case .number:
            rules = [
                Self.phone, Self.code, Self.isoDate, Self.numericDate, Self.time, Self.dottedNumber, Self.dayMonthDate, Self.range,
                Self.height, Self.ratio, Self.decade, Self.measure, Self.dimensions, Self.mixedFraction, Self.fraction, Self.ordinal, Self.year,
                Self.number,
            ]
        case .symbol:
            rules = [
                Self.range, Self.moneyReading, Self.phone, Self.decade, Self.measure, Self.number, Self.vulgarFraction,
                Self.symbol,
            ]
        case .word:
            rules = [
                Self.webAddress, Self.monthDate, Self.version, Self.dottedAbbreviation, Self.weekday, Self.abbreviation, Self.roman,
                Self.shorthand,
            ]
        }
        for rule in rules {
            if let reading = rule(self)(index) { return reading }
        }
        return nil
    }

    func moneyReading(_ index: Int) -> Reading? {
        money(index).map { Reading(end: $0.end, words: $0.words) }
    }

    // MARK: - Looking around

    subscript(_ index: Int) -> Token? {
        index >= 0 && index < tokens.count ? tokens[index] : nil
    }

    func isNumber(_ index: Int, digits: ClosedRange<Int> = 1...Int.max) -> Bool {
        guard let token = self[index], token.isNumber else { return false }
        return digits.contains(token.text.count)
    }

    func isSymbol(_ index: Int, _ characters: String) -> Bool {
        self[index]?.isSymbol(characters) == true
    }

    /// True when the token at `index` is one of `words` (lowercase), in any case.
    func isWord(_ index: Int, _ words: Set<String>) -> Bool {
        guard let token = self[index], token.isWord else { return false }
        return words.contains(token.text.lowercased())
    }

    func value(_ index: Int) -> Int? {
        guard let token = self[index], token.isNumber, token.text.count <= 9 else { return nil }
        return Int(token.text)
    }

    /// True when a single-line space is at `index`.
    func isLineSpace(_ index: Int) -> Bool {
        guard let token = self[index], token.isSpace else { return false }
        return !token.containsNewline
    }

    /// True when nothing that belongs to the same word comes right before `index`. Letters and
    /// digits that touch ("5apples", "A4") count as apart: every number is rewritten into
    /// words with a space, so the next pass would see them apart (normalizing twice must give
    /// the same words as once).
    func startsWord(_ index: Int) -> Bool {
        guard let previous = self[index - 1] else { return true }
        let current = tokens[index]
        return previous.isSpace || previous.isSymbol("([{\"'“‘«/")
            || (current.isWord || current.isNumber) && (previous.isWord || previous.isNumber) && previous.kind != current.kind
    }

    /// True when nothing that belongs to the same word comes right after the token before
    /// `index` (letters after digits and digits after letters count as apart, as above).
    func endsWord(at index: Int) -> Bool {
        guard let next = self[index] else { return true }
        guard next.isWord || next.isNumber else { return true }
        return self[index - 1].map { $0.kind != .symbol && $0.kind != next.kind } ?? true
    }

    /// The next token after `index` that is not white space (crossing one space token).
    func nextContent(after index: Int) -> Int? {
        var next = index + 1
        if self[next]?.isSpace == true { next += 1 }
        return self[next] == nil ? nil : next
    }

    /// The token before `index` that is not white space, crossing one single-line space only.
    func previousOnLine(before index: Int) -> Int? {
        var previous = index - 1
        if let token = self[previous], token.isSpace {
            guard !token.containsNewline else { return nil }
            previous -= 1
        }
        return self[previous] == nil ? nil : previous
    }

    /// The word after `index`, past one single-line space.
    func nextWordOnLine(after index: Int) -> Int? {
        guard isLineSpace(index + 1), let token = self[index + 2], token.isWord else { return nil }
        return index + 2
    }

    /// True when the token at `index` starts a sentence: nothing before it but white space,
    /// opening quotes, or a sentence's end.
    func isSentenceStart(_ index: Int) -> Bool {
        var previous = index - 1
        while let token = self[previous] {
            if token.containsNewline { return true }
            if token.isSpace || token.isSymbol("\"'“‘«([") {
                previous -= 1
                continue
            }
            return token.isSymbol(".!?…")
        }
        return true
    }

    /// True when the sentence surely goes on after `index` (a period there is not its end): the
    /// next thing on the line is a lowercase word, a number, or a comma, semicolon or colon.
    func continuesSentence(after index: Int) -> Bool {
        var next = index + 1
        if let token = self[next], token.isSpace {
            guard !token.containsNewline else { return false }
            next += 1
        }
        guard let token = self[next] else { return false }
        return token.isLowercaseWord || token.isNumber || token.isSymbol(",;:")
    }

    /// The end of a reading that stopped before a period after an abbreviation (`St.`, `ft.`,
    /// `a.m.`): the period is covered (dropped) only where the sentence surely goes on, so that
    /// one that ends an abbreviation and a sentence still ends the sentence.
    func endAfterAbbreviation(_ end: Int) -> Int {
        isSymbol(end, ".") && continuesSentence(after: end) ? end + 1 : end
    }
}
