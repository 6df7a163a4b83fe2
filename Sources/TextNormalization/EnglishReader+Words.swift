/// Words and symbols: abbreviations in context, Roman numerals in context, web and e-mail
/// addresses, and symbols (`&`, `#1`, `+`, `=`, `@`, `w/`).
extension EnglishReader {
    // MARK: - Abbreviations

    /// Whether the word before `index` makes `index` an address part ("Elm St.", "5th Ave."):
    /// a capitalized word that does not start the sentence, a number or an ordinal.
    func followsNameOrNumber(_ index: Int) -> Bool {
        guard let previous = previousOnLine(before: index), let token = self[previous] else { return false }
        if token.isNumber { return true }
        if token.isWord, ["st", "nd", "rd", "th"].contains(token.text.lowercased()), isNumber(previous - 1) { return true }
        return token.isCapitalized && !isSentenceStart(previous)
    }

    /// `Fri., Oct. 3rd`, `Mon. March 5`: a weekday's abbreviation before a comma or a date.
    func weekday(_ index: Int) -> Reading? {
        guard let name = EnglishLexicon.weekdays[String(tokens[index].text)], startsWord(index), isSymbol(index + 1, ".") else { return nil }
        if isSymbol(index + 2, ",") { return Reading(end: index + 2, words: name) }
        guard isLineSpace(index + 2), monthName(index + 3) != nil || isNumber(index + 3) else { return nil }
        return Reading(end: index + 2, words: name)
    }

    func abbreviation(_ index: Int) -> Reading? {
        let word = String(tokens[index].text)
        guard let uses = EnglishLexicon.abbreviations[word], startsWord(index) else { return nil }
        let hasPeriod = isSymbol(index + 1, ".")
        let afterAbbreviation = hasPeriod ? index + 2 : index + 1
        guard endsWord(at: index + 1) else { return nil }
        let nextIsName = nextWordOnLine(after: afterAbbreviation - 1).map { tokens[$0].isCapitalized } ?? false
        let nextIsNumber = isLineSpace(afterAbbreviation) && isNumber(afterAbbreviation + 1)
        // A period that may end the sentence stays; one inside it is read with the abbreviation.
        let keptPeriodEnd = hasPeriod ? endAfterAbbreviation(index + 1) : index + 1
        for use in uses {
            switch use {
            case .title(let words):
                if (hasPeriod || EnglishLexicon.bareTitles.contains(word)), nextIsName {
                    return Reading(end: afterAbbreviation, words: words)
                }
            case .address(let words):
                if followsNameOrNumber(index), hasPeriod || !nextIsName {
                    return Reading(end: keptPeriodEnd, words: words)
                }
            case .afterName(let words):
                guard let previous = previousOnLine(before: index) else { continue }
                if hasPeriod || word == "Jr" || word == "Sr", tokens[previous].isCapitalized || tokens[previous].isSymbol(",") {
                    return Reading(end: keptPeriodEnd, words: words)
                }
            case .beforeNumber(let words):
                if nextIsNumber, hasPeriod || word.count > 2 {
                    return Reading(end: afterAbbreviation, words: words)
                }
            case .always(let words, let bare):
                if hasPeriod || bare { return Reading(end: keptPeriodEnd, words: words) }
            case .between(let words):
                if self[afterAbbreviation] != nil { return Reading(end: afterAbbreviation, words: words) }
            }
        }
        return nil
    }

    /// "e.g.", "i.e.", "a.k.a.", and initials such as "U.S." (read as letters, "U S").
    func dottedAbbreviation(_ index: Int) -> Reading? {
        guard startsWord(index), tokens[index].text.count == 1, isSymbol(index + 1, ".") else { return nil }
        var letters: [Substring] = []
        var next = index
        while let token = self[next], token.isWord, token.text.count == 1, isSymbol(next + 1, ".") {
            letters.append(token.text)
            next += 2
        }
        // The last letter may lack its period ("e.g" is rare, "U.S" rarer): require all of them.
        guard letters.count >= 2, endsWord(at: next) else { return nil }
        let key = letters.joined(separator: ".")
        if let words = EnglishLexicon.dottedAbbreviations[key.lowercased()] {
            return Reading(end: endAfterAbbreviation(next - 1), words: words)
        }
        guard letters.allSatisfy({ $0.first!.isUppercase }) else { return nil }
        return Reading(end: endAfterAbbreviation(next - 1), words: letters.joined(separator: " "))
    }

    // MARK: - Roman numerals

    static func romanValue(_ text: Substring) -> Int? {
        let values: [Character: Int] = ["I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000]
        var total = 0
        var previous = 0
        for character in text.reversed() {
            guard let value = values[character] else { return nil }
            if value < previous { total -= value } else { total += value; previous = value }
        }
        // Only the canonical spelling counts ("IIII", "VX", "IC" are not numerals).
        return total > 0 && total < 4000 && romanNumeral(total) == text ? total : nil
    }

    static func romanNumeral(_ value: Int) -> String {
        let table: [(Int, String)] = [
            (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"),
            (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
        ]
        var rest = value
        var result = ""
        for (amount, numeral) in table {
            while rest >= amount {
                result += numeral
                rest -= amount
            }
        }
        return result
    }

    /// Only in context: after a regnal name ("Henry VIII" → "Henry the eighth") or a word that
    /// numbers things ("Chapter IV", "World War II"); never a lone "I".
    func roman(_ index: Int) -> Reading? {
        let text = tokens[index].text
        // A lone L, C, D or M is a letter ("Appendix C"); I, V and X may be numerals.
        guard text.count > 1 || "IVX".contains(text), endsWord(at: index + 1), startsWord(index), let value = Self.romanValue(text),
              let previous = previousOnLine(before: index), self[previous]?.isWord == true
        else { return nil }
        let before = String(tokens[previous].text)
        if EnglishLexicon.regnalNames.contains(before) {
            return Reading(end: index + 1, words: "the " + NumberWords.ordinal(UInt64(value)))
        }
        if EnglishLexicon.romanContextWords.contains(before.lowercased()), before.first?.isUppercase == true || text.count > 1 {
            return Reading(end: index + 1, words: NumberWords.cardinal(UInt64(value)))
        }
        return nil
    }

    // MARK: - Web and e-mail addresses

    /// `https://example.com/a`, `www.example.org`, `docs.python.org/3`, `jane.doe@example.com`:
    /// words as written (short technical ones spelled), symbols by name.
    func webAddress(_ index: Int) -> Reading? {
        guard startsWord(index) else { return nil }
        var end = index
        while let token = self[end], !token.isSpace { end += 1 }
        // Trailing punctuation belongs to the sentence.
        while end > index, tokens[end - 1].isSymbol(".,;:!?)]}\"'”’") { end -= 1 }
        guard end - index >= 3 else { return nil }
        let run = tokens[index..<end]
        let first = tokens[index].text.lowercased()
        let isScheme = ["http", "https", "ftp"].contains(first) && isSymbol(index + 1, ":") && isSymbol(index + 2, "/")
        let isWWW = first == "www" && isSymbol(index + 1, ".")
        let at = run.firstIndex { $0.isSymbol("@") }
        let isEmail = at.map { $0 > index && hasDomain(from: $0 + 1, to: end) } ?? false
        let isBareDomain = hasDomain(from: index, to: end)
        guard isScheme || isWWW || isEmail || isBareDomain else { return nil }
        let words = run.compactMap { token -> String? in
            switch token.kind {
            case .word:
                let lower = token.text.lowercased()
                return EnglishLexicon.spelledInAddresses.contains(lower) ? lower.map(String.init).joined(separator: " ") : String(token.text)
            case .number:
                return NumberWords.integer(token.text)
            case .symbol:
                return EnglishLexicon.addressSymbols[String(token.text)]
            case .space:
                return nil
            }
        }
        return Reading(end: end, words: words.joined(separator: " "))
    }

    /// Whether `word(.word)+` from `start` names a host ending in a known top-level domain (a
    /// path may follow after a slash).
    func hasDomain(from start: Int, to end: Int) -> Bool {
        var next = start
        var labels: [Substring] = []
        while next < end, let token = self[next], token.isWord || token.isNumber {
            labels.append(token.text)
            next += 1
            // Hyphens inside a label ("my-site.com").
            while next + 1 < end, isSymbol(next, "-"), self[next + 1]?.isWord == true || self[next + 1]?.isNumber == true {
                next += 2
            }
            guard next < end, isSymbol(next, ".") else { break }
            next += 1
        }
        guard labels.count >= 2, let last = labels.last, EnglishLexicon.topLevelDomains.contains(String(last)) else { return false }
        return next == end || isSymbol(next, "/:")
    }

    // MARK: - Symbols

    /// `&` → "and", `#1` → "number one", ` + ` → "plus", ` = ` → "equals", ` @ ` → "at".
    func symbol(_ index: Int) -> Reading? {
        let token = tokens[index]
        if token.isSymbol("&") { return Reading(end: index + 1, words: "and") }
        if token.isSymbol("#"), startsWord(index), let amount = quantity(index + 1, allowSign: false) {
            return Reading(end: amount.end, words: "number " + amount.words)
        }
        let spaced = (self[index - 1]?.isSpace ?? true) && (self[index + 1]?.isSpace ?? true)
        let betweenNumbers = isNumber(index - 1) && isNumber(index + 1)
        guard spaced || betweenNumbers else { return nil }
        switch token.text {
        case "+": return Reading(end: index + 1, words: "plus")
        case "=": return Reading(end: index + 1, words: "equals")
        case "@" where spaced: return Reading(end: index + 1, words: "at")
        case "×" where spaced: return Reading(end: index + 1, words: "times")
        default: return nil
        }
    }

    /// `w/` → "with".
    func shorthand(_ index: Int) -> Reading? {
        guard tokens[index].text == "w", startsWord(index), isSymbol(index + 1, "/"), self[index + 2]?.isSpace ?? true else { return nil }
        return Reading(end: index + 2, words: "with")
    }
}
