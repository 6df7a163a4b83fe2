import SpeechCore

/// SSML's `<say-as>`: one span read the way the caller says it is meant, by the same rules
/// that normalize plain text.
extension EnglishNormalizer {
    /// The words for `text` read as `interpretAs` (SSML's `interpret-as`: characters,
    /// spell-out, verbatim, cardinal, number, ordinal, digits, fraction, date, time, telephone,
    /// currency, unit, expletive, bleep), with `format` for dates (`mdy`, `dmy`, `ymd`, `md`,
    /// `dm`, `ym`, `my`, `y`, `m`, `d`). `detail` is accepted and not used. Nil when the text
    /// cannot be read that way (the caller then speaks it as plain text).
    public func sayAs(_ text: String, interpretAs: String, format: String?, detail: String?) -> String? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        let reader = EnglishReader(tokens: Tokenizer.tokens(of: Substring(trimmed), baseOffset: 0), dateOrder: dateOrder)
        /// A rule's reading, only where it covers the whole text.
        func whole(_ reading: Reading?) -> String? {
            guard let reading, reading.end == reader.tokens.count else { return nil }
            return reading.words
        }
        switch interpretAs.lowercased() {
        case "characters", "spell-out", "verbatim", "letters":
            return Self.spell(trimmed)
        case "cardinal", "number":
            return whole(reader.number(0))
        case "ordinal":
            if let ordinal = whole(reader.ordinal(0)) { return ordinal }
            guard let amount = reader.quantity(0, allowSign: false), amount.fraction == nil, amount.end == reader.tokens.count,
                  let value = UInt64(amount.integer)
            else { return nil }
            return NumberWords.ordinal(value)
        case "digits":
            let digits = trimmed.filter { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, trimmed.allSatisfy({ ($0.isASCII && $0.isNumber) || $0.isWhitespace }) else { return nil }
            return NumberWords.digits(Substring(digits))
        case "fraction":
            return whole(reader.mixedFraction(0)) ?? whole(reader.fraction(0)) ?? whole(reader.vulgarFraction(0))
        case "date":
            return date(reader, format: format?.lowercased())
        case "time":
            return whole(reader.time(0))
        case "telephone":
            let groups = trimmed.split { !($0.isASCII && $0.isNumber) }
            guard !groups.isEmpty, trimmed.allSatisfy({ ($0.isASCII && $0.isNumber) || " ()+-./".contains($0) }) else { return nil }
            return groups.map { NumberWords.digits($0, zero: "oh") }.joined(separator: ", ")
        case "currency":
            guard let money = reader.money(0), money.end == reader.tokens.count else { return nil }
            return money.words
        case "unit", "measure":
            return whole(reader.measure(0))
        case "expletive", "bleep":
            return "beep"
        default:
            return nil
        }
    }

    /// A date's parts in the order `format` gives them (or any date the plain-text rules read).
    private func date(_ reader: EnglishReader, format: String?) -> String? {
        let count = reader.tokens.count
        guard let format, !format.isEmpty else {
            for reading in [reader.isoDate(0), reader.numericDate(0), reader.monthDate(0), reader.dayMonthDate(0), reader.year(0)] {
                if let reading, reading.end == count { return reading.words }
            }
            return nil
        }
        // The parts: numbers, and month names in place of a number.
        var parts: [(number: Int?, month: Int?)] = []
        var index = 0
        while index < count {
            let token = reader.tokens[index]
            if token.isNumber {
                guard let value = reader.value(index) else { return nil }
                parts.append((value, nil))
                // An ordinal suffix after a day ("3rd").
                if let suffix = reader[index + 1], suffix.isWord, ["st", "nd", "rd", "th"].contains(suffix.text.lowercased()) { index += 1 }
            } else if let (month, end, _) = reader.monthName(index) {
                parts.append((nil, month))
                index = end - 1
            } else if !(token.isSpace || token.isSymbol("/-.,")) {
                return nil
            }
            index += 1
        }
        guard parts.count == format.count else { return nil }
        var year: Int?
        var month: Int?
        var day: Int?
        for (letter, part) in zip(format, parts) {
            switch letter {
            case "y":
                guard var value = part.number else { return nil }
                if value < 100 { value += value < 50 ? 2000 : 1900 }
                year = value
            case "m":
                guard let value = part.month ?? part.number, (1...12).contains(value) else { return nil }
                month = value
            case "d":
                guard let value = part.number, (1...31).contains(value) else { return nil }
                day = value
            default:
                return nil
            }
        }
        let dayFirst = format.first == "d" || (dateOrder == .dayFirst && format.first != "m")
        return reader.dateWords(year: year, month: month, day: day, dayFirst: dayFirst)
    }

    /// Letter by letter: letters as capitals (espeak-ng says a lone capital as its name; "A"
    /// mid-sentence would be the article, so it is written "eigh"), digits as words, symbols by name.
    static func spell(_ text: String) -> String {
        var words: [String] = []
        for character in text {
            if character.isWhitespace { continue }
            if character.isASCII, let digit = character.wholeNumberValue {
                words.append(NumberWords.digits(Substring(String(digit))))
            } else if character.isLetter {
                let upper = character.uppercased()
                words.append(upper == "A" ? "eigh" : upper)
            } else if let name = EnglishLexicon.addressSymbols[String(character)] {
                words.append(name)
            } else {
                words.append(String(character))
            }
        }
        return words.joined(separator: " ")
    }
}
