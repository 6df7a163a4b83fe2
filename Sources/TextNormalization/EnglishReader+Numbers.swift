/// Numbers in their many roles: plain, negative and decimal quantities, money, measures,
/// percentages, ranges, fractions, ordinals, years, decades, phone numbers, versions.
extension EnglishReader {
    /// A number as written: optional minus, digits with optional thousands commas, optional decimals.
    struct Quantity {
        var end: Int
        var words: String
        var negative: Bool
        /// The integer digits without commas ("" for ".5").
        var integer: Substring
        var fraction: Substring?
        /// Exactly one: takes a singular unit.
        var isOne: Bool { fraction == nil && integer == "1" }
    }

    func quantity(_ index: Int, allowSign: Bool = true) -> Quantity? {
        var next = index
        var negative = false
        if allowSign, isSymbol(index, "-−"), startsWord(index), isNumber(index + 1) || (isSymbol(index + 1, ".") && isNumber(index + 2)) {
            negative = true
            next += 1
        }
        var integer: Substring = ""
        if let first = self[next], first.isNumber {
            var digits = String(first.text)
            next += 1
            if first.text.count <= 3 {
                // "1,500" but not "1,5000" or "2,3" (a group is a digit run exactly three long).
                while isSymbol(next, ","), isNumber(next + 1, digits: 3...3) {
                    digits += tokens[next + 1].text
                    next += 2
                }
            }
            integer = Substring(digits)
        } else if !(isSymbol(next, ".") && isNumber(next + 1) && (negative || startsWord(next))) {
            return nil
        }
        var fraction: Substring?
        // A decimal point, unless a third part follows (a version or address: "2.4.1").
        if isSymbol(next, "."), isNumber(next + 1), !(isSymbol(next + 2, ".") && isNumber(next + 3)) {
            fraction = tokens[next + 1].text
            next += 2
        }
        guard self[next]?.isNumber != true else { return nil }
        var words = fraction.map { NumberWords.decimal(integer: integer, fraction: $0) } ?? NumberWords.integer(integer)
        if negative { words = "minus " + words }
        return Quantity(end: next, words: words, negative: negative, integer: integer, fraction: fraction)
    }

    /// `5'11"` (a height): "five feet eleven inches".
    func height(_ index: Int) -> Reading? {
        guard isNumber(index, digits: 1...1), isSymbol(index + 1, "'’′"), let feet = value(index) else { return nil }
        let inchesAt = isLineSpace(index + 2) ? index + 3 : index + 2
        guard isNumber(inchesAt, digits: 1...2), isSymbol(inchesAt + 1, "\"”″"), let inches = value(inchesAt), inches < 12 else { return nil }
        let feetWords = NumberWords.cardinal(UInt64(feet)) + (feet == 1 ? " foot" : " feet")
        let inchWords = NumberWords.cardinal(UInt64(inches)) + (inches == 1 ? " inch" : " inches")
        return Reading(end: inchesAt + 2, words: feetWords + " " + inchWords)
    }

    /// `2:1`, `16:9`: a ratio, where the numbers cannot be a time (the time rule, tried first,
    /// takes two-digit minutes under 60 after an hour: "7:45").
    func ratio(_ index: Int) -> Reading? {
        guard startsWord(index), isNumber(index, digits: 1...3), isSymbol(index + 1, ":"), isNumber(index + 2, digits: 1...3),
              endsWord(at: index + 3), !isSymbol(index + 3, ":"), let left = value(index), let right = value(index + 2)
        else { return nil }
        return Reading(end: index + 3, words: "\(NumberWords.cardinal(UInt64(left))) to \(NumberWords.cardinal(UInt64(right)))")
    }

    /// A plain number: "1,500", "-3.5", "0.75", ".5", "42".
    /// A number glued to letters ("A4", "3D") is read too: the words get spaces around them.
    func number(_ index: Int) -> Reading? {
        return quantity(index).map { Reading(end: $0.end, words: $0.words) }
    }

    /// A number that is a code, read digit by digit: `911`, and after a word that names a code
    /// within three words before it ("ZIP code is 90210", "PIN 1234", "ext. 204").
    func code(_ index: Int) -> Reading? {
        guard let token = self[index], token.isNumber, startsWord(index), endsWord(at: index + 1),
              !isSymbol(index + 1, ".,") || !isNumber(index + 2)
        else { return nil }
        var isCode = EnglishLexicon.digitNames.contains(String(token.text))
        var previous = index
        for _ in 0..<4 where !isCode {
            guard let before = previousOnLine(before: previous), !isNumber(before) else { break }
            isCode = isWord(before, EnglishLexicon.digitContextWords)
            previous = before
        }
        return isCode ? Reading(end: index + 1, words: NumberWords.digits(token.text)) : nil
    }

    // MARK: - Money

    /// `$42.50`, `£3.20`, `€5`, `¥100`, `$1.5 million`, `$5k`: the words, and where a currency
    /// amount ends. `amount` is the number words only (for ranges: "$10-$20").
    func money(_ index: Int) -> (end: Int, words: String, currency: EnglishLexicon.Currency, scale: String?)? {
        guard let symbol = self[index], symbol.kind == .symbol, let currency = EnglishLexicon.currencies[String(symbol.text)],
              startsWord(index) || isSymbol(index - 1, "-–"), var amount = quantity(index + 1, allowSign: false)
        else { return nil }
        var end = amount.end
        var scale: String?
        if let suffix = self[end], suffix.isWord, let name = EnglishLexicon.scaleSuffixes[String(suffix.text)], endsWord(at: end + 1) {
            scale = name
            end += 1
        } else if let word = nextWordOnLine(after: end - 1), let name = EnglishLexicon.scaleWords[String(tokens[word].text)] {
            scale = name
            end = word + 1
        }
        guard endsWord(at: end) else { return nil }
        amount.end = end
        return (end, moneyWords(amount, currency: currency, scale: scale), currency, scale)
    }

    func moneyWords(_ amount: Quantity, currency: EnglishLexicon.Currency, scale: String?) -> String {
        if let scale { return "\(amount.words) \(scale) \(currency.plural)" }
        let whole = UInt64(amount.integer) ?? 0
        let wholeWords = amount.integer.isEmpty ? "zero" : NumberWords.integer(amount.integer)
        let unit = amount.integer == "1" ? currency.singular : currency.plural
        guard let fraction = amount.fraction else { return "\(wholeWords) \(unit)" }
        guard fraction.count == 2, let minor = currency.minor, let cents = UInt64(fraction) else {
            return "\(amount.words) \(currency.plural)"
        }
        let centWords = NumberWords.cardinal(cents) + " " + (cents == 1 ? minor.singular : minor.plural)
        if cents == 0 { return "\(wholeWords) \(unit)" }
        if whole == 0 { return centWords }
        return "\(wholeWords) \(unit) and \(centWords)"
    }

    // MARK: - Measures, percentages

    /// A unit written after a number (attached or after one space), longest symbol first.
    func unit(at index: Int, attached: Bool) -> (end: Int, unit: EnglishLexicon.Unit)? {
        for length in stride(from: EnglishLexicon.longestUnitTokens, through: 1, by: -1) {
            guard index + length <= tokens.count else { continue }
            let pieces = tokens[index..<index + length]
            guard !pieces.contains(where: \.isSpace) else { continue }
            let symbol = pieces.map(\.text).joined()
            guard let unit = EnglishLexicon.units[symbol], attached || !unit.attachedOnly else { continue }
            // The unit must end there ("5 kgs" is a unit, "5 kgb" is not; "50%" may touch anything).
            if pieces.last?.isWord == true, self[index + length]?.isWord == true { continue }
            if self[index + length]?.isNumber == true { continue }
            return (index + length, unit)
        }
        return nil
    }

    /// `2.5 kg`, `30cm`, `65 mph`, `-12°C`, `50%`: the number, then the unit, plural by value.
    func measure(_ index: Int) -> Reading? {
        guard let amount = quantity(index) else { return nil }
        return measure(after: amount)
    }

    func measure(after amount: Quantity) -> Reading? {
        let attached = self[amount.end]?.isSpace != true
        let start = attached ? amount.end : amount.end + 1
        guard attached || isLineSpace(amount.end), let (end, unit) = unit(at: start, attached: attached) else { return nil }
        let words = amount.words + " " + (amount.isOne ? unit.singular : unit.plural)
        // "5 ft. tall": the abbreviation's period goes where the sentence goes on.
        let finalEnd = tokens[end - 1].isWord ? endAfterAbbreviation(end) : end
        return Reading(end: finalEnd, words: words)
    }

    // MARK: - Ranges

    /// `10-20`, `3–7`, `5-10 kg`, `$10-$20`, `1990-1995`: "to" between the two ends.
    func range(_ index: Int) -> Reading? {
        let leftMoney = money(index)
        let left: (end: Int, words: String, integer: Substring)
        if let leftMoney {
            left = (leftMoney.end, leftMoney.words, "")
        } else if let amount = quantity(index) {
            left = (amount.end, amount.words, amount.fraction == nil && !amount.negative ? amount.integer : "")
        } else {
            return nil
        }
        var dash = left.end
        let spaced = isLineSpace(dash)
        if spaced { dash += 1 }
        guard isSymbol(dash, spaced ? "–" : "-–") else { return nil }
        var right = dash + 1
        if spaced {
            guard isLineSpace(right) else { return nil }
            right += 1
        }
        // "1-800-555-0199", "10-20-30": not a range.
        guard isNumber(right) || self[right]?.kind == .symbol else { return nil }
        let rightEnd: Int
        let rightWords: String
        if let money = money(right) {
            (rightEnd, rightWords) = (money.end, money.words)
        } else if let amount = quantity(right, allowSign: false) {
            if let leftMoney {
                // "$10-20": the currency is said once, after the second amount.
                let leftAmount = quantity(index + 1, allowSign: false)?.words ?? left.words
                let rightMoney = moneyWords(amount, currency: leftMoney.currency, scale: leftMoney.scale)
                return Reading(end: amount.end, words: "\(leftAmount) to \(rightMoney)")
            }
            if let measured = measure(after: amount) {
                (rightEnd, rightWords) = (measured.end, measured.words)
            } else if Self.isYear(left.integer), amount.fraction == nil, amount.integer.count == 4 || amount.integer.count == 2 {
                let leftYear = NumberWords.year(Int(left.integer)!)
                let rightYear = amount.integer.count == 4 ? NumberWords.year(Int(amount.integer)!) : NumberWords.integer(amount.integer)
                return isSymbol(amount.end, "-") ? nil : Reading(end: amount.end, words: "\(leftYear) to \(rightYear)")
            } else {
                (rightEnd, rightWords) = (amount.end, amount.words)
            }
        } else {
            return nil
        }
        guard !(isSymbol(rightEnd, "-–") && isNumber(rightEnd + 1)) else { return nil }
        return Reading(end: rightEnd, words: "\(left.words) to \(rightWords)")
    }

    static func isYear(_ digits: Substring) -> Bool {
        digits.count == 4 && (1000...2099).contains(Int(digits) ?? 0)
    }

    // MARK: - Fractions

    func fractionWords(numerator: Int, denominator: Int) -> String {
        let count = NumberWords.cardinal(UInt64(numerator))
        switch denominator {
        case 2: return numerator == 1 ? "one half" : "\(count) halves"
        case 4: return numerator == 1 ? "one quarter" : "\(count) quarters"
        default:
            let part = NumberWords.ordinal(UInt64(denominator))
            return numerator == 1 ? "one \(part)" : "\(count) \(NumberWords.plural(part))"
        }
    }

    /// The fraction after a whole number: "a half", "three quarters".
    func fractionAfterWhole(numerator: Int, denominator: Int) -> String {
        guard numerator == 1 else { return fractionWords(numerator: numerator, denominator: denominator) }
        switch denominator {
        case 2: return "a half"
        case 4: return "a quarter"
        default: return "a " + NumberWords.ordinal(UInt64(denominator))
        }
    }

    /// `3/4`, `1/2`, and names written like fractions (`24/7`). Dates with a year were taken first.
    func fraction(_ index: Int) -> Reading? {
        guard isNumber(index, digits: 1...3), isSymbol(index + 1, "/"), isNumber(index + 2, digits: 1...3),
              startsWord(index) || isSymbol(index - 1, "-"), !isSymbol(index - 1, "/")
        else { return nil }
        let written = "\(tokens[index].text)/\(tokens[index + 2].text)"
        if let name = EnglishLexicon.slashNames[written], endsWord(at: index + 3), !isSymbol(index + 3, "/") {
            return Reading(end: index + 3, words: name)
        }
        guard endsWord(at: index + 3), !isSymbol(index + 3, "/"), let numerator = value(index), let denominator = value(index + 2),
              denominator >= 2
        else { return nil }
        // "10/10", "3/3": a score, not an improper fraction.
        if numerator >= denominator {
            return Reading(
                end: index + 3, words: "\(NumberWords.cardinal(UInt64(numerator))) out of \(NumberWords.cardinal(UInt64(denominator)))")
        }
        return Reading(end: index + 3, words: fractionWords(numerator: numerator, denominator: denominator))
    }

    /// `1 1/2` → "one and a half", `2½` → "two and a half".
    func mixedFraction(_ index: Int) -> Reading? {
        guard isNumber(index), startsWord(index), let whole = value(index) else { return nil }
        if let symbol = self[index + 1], symbol.kind == .symbol, let vulgar = EnglishLexicon.vulgarFractions[symbol.text.first!] {
            return Reading(
                end: index + 2,
                words: "\(NumberWords.cardinal(UInt64(whole))) and \(fractionAfterWhole(numerator: vulgar.numerator, denominator: vulgar.denominator))")
        }
        guard isLineSpace(index + 1), isNumber(index + 2, digits: 1...2), isSymbol(index + 3, "/"), isNumber(index + 4, digits: 1...2),
              endsWord(at: index + 5), !isSymbol(index + 5, "/"), let numerator = value(index + 2), let denominator = value(index + 4),
              numerator < denominator, denominator >= 2
        else { return nil }
        return Reading(
            end: index + 5,
            words: "\(NumberWords.cardinal(UInt64(whole))) and \(fractionAfterWhole(numerator: numerator, denominator: denominator))")
    }

    func vulgarFraction(_ index: Int) -> Reading? {
        guard let token = self[index], let vulgar = EnglishLexicon.vulgarFractions[token.text.first!] else { return nil }
        return Reading(end: index + 1, words: fractionWords(numerator: vulgar.numerator, denominator: vulgar.denominator))
    }

    // MARK: - Ordinals, years, decades

    /// `1st`, `22nd`, `100th`, `1,000th`.
    func ordinal(_ index: Int) -> Reading? {
        guard let amount = quantity(index, allowSign: false), amount.fraction == nil, let suffix = self[amount.end],
              suffix.isWord, ["st", "nd", "rd", "th"].contains(suffix.text.lowercased()), endsWord(at: amount.end + 1),
              let value = UInt64(amount.integer)
        else { return nil }
        return Reading(end: amount.end + 1, words: NumberWords.ordinal(value))
    }

    /// `1990s`, `1990's`, `'90s`, `the 80s`.
    func decade(_ index: Int) -> Reading? {
        var number = index
        let apostrophe = isSymbol(index, "'’")
        if apostrophe {
            guard startsWord(index), isNumber(index + 1, digits: 2...2) else { return nil }
            number += 1
        }
        guard let value = value(number), value % 10 == 0, isNumber(number, digits: 2...4) else { return nil }
        var end = number + 1
        if !apostrophe, isSymbol(end, "'’") { end += 1 }
        guard let suffix = self[end], suffix.isWord, suffix.text == "s", endsWord(at: end + 1) else { return nil }
        switch tokens[number].text.count {
        case 4 where (1000...2090).contains(value):
            return Reading(end: end + 1, words: NumberWords.decade(value))
        case 2 where apostrophe:
            return Reading(end: end + 1, words: value == 0 ? "two thousands" : NumberWords.decade(value))
        case 2:
            // "the 80s", "in her 30s": a decade only after such a word ("30s" alone is seconds).
            let decadeWords: Set<String> = ["the", "early", "late", "mid", "her", "his", "their", "my", "your", "our", "its"]
            guard value >= 10, let previous = previousOnLine(before: number), isWord(previous, decadeWords) else { return nil }
            return Reading(end: end + 1, words: NumberWords.decade(value))
        default:
            return nil
        }
    }

    /// A bare four-digit number from 1000 to 2099 with no comma or unit is a year (`1776`,
    /// `2024`), except before a plural noun with nothing saying "year" before it ("1776
    /// people" is a count, "in 1990 prices rose" a year).
    func year(_ index: Int) -> Reading? {
        guard isNumber(index, digits: 4...4), Self.isYear(tokens[index].text), endsWord(at: index + 1),
              !(isSymbol(index + 1, ".,") && isNumber(index + 2)), !isSymbol(index - 1, ".,")
        else { return nil }
        if let next = nextWordOnLine(after: index), isPluralNoun(tokens[next].text) {
            let previous = previousOnLine(before: index)
            guard let previous, isWord(previous, EnglishLexicon.yearContextWords) || EnglishLexicon.monthNames[String(tokens[previous].text)] != nil
            else { return nil }
        }
        return Reading(end: index + 1, words: NumberWords.year(Int(tokens[index].text)!))
    }

    func isPluralNoun(_ word: Substring) -> Bool {
        guard word.first?.isLowercase == true else { return false }
        let lower = String(word)
        if EnglishLexicon.irregularPlurals.contains(lower) { return true }
        return lower.count > 3 && lower.hasSuffix("s") && !lower.hasSuffix("ss") && !lower.hasSuffix("us")
            && !lower.hasSuffix("is") && !EnglishLexicon.notPlurals.contains(lower)
    }

    // MARK: - Phone numbers, dimensions, versions

    /// `(555) 123-4567`, `555-123-4567`, `555.123.4567`, `1-800-555-0199`, `+44 20 7946 0958`,
    /// `555-0199`: read in digit groups.
    func phone(_ index: Int) -> Reading? {
        guard startsWord(index) else { return nil }
        var groups: [Substring] = []
        var next = index
        func take(_ digits: ClosedRange<Int>) -> Bool {
            guard isNumber(next, digits: digits) else { return false }
            groups.append(tokens[next].text)
            next += 1
            return true
        }
        func separator(_ characters: String, allowSpace: Bool = false) -> Bool {
            if isSymbol(next, characters) {
                next += 1
                return true
            }
            if allowSpace, isLineSpace(next) {
                next += 1
                return true
            }
            return false
        }
        if isSymbol(index, "(") {
            next += 1
            guard take(3...3), isSymbol(next, ")") else { return nil }
            next += 1
            if isLineSpace(next) { next += 1 }
            guard take(3...3), separator("-."), take(4...4) else { return nil }
        } else if isSymbol(index, "+") {
            next += 1
            guard take(1...3) else { return nil }
            while separator("-. ", allowSpace: true), take(1...4) {}
            if groups.count < 3 || groups.joined().count < 8 || groups.joined().count > 15 { return nil }
            if self[next - 1]?.isNumber != true { next -= 1 }
        } else if isNumber(index, digits: 1...1), tokens[index].text == "1", isSymbol(index + 1, "-") {
            next += 2
            groups.append("1")
            guard take(3...3), separator("-"), take(3...3), separator("-"), take(4...4) else { return nil }
        } else if isNumber(index, digits: 3...3) {
            next += 1
            groups.append(tokens[index].text)
            guard let separatorToken = self[next], separatorToken.isSymbol("-."), separator("-.") else { return nil }
            if take(3...3) {
                guard isSymbol(next, String(separatorToken.text)), separator("-."), take(4...4) else { return nil }
            } else {
                // A seven-digit local number only with a hyphen ("555-0199", not "555.0199").
                guard separatorToken.text == "-", take(4...4) else { return nil }
            }
        } else {
            return nil
        }
        guard endsWord(at: next), !(isSymbol(next, "-.") && isNumber(next + 1)) else { return nil }
        let words = groups.map { NumberWords.digits($0, zero: "oh") }.joined(separator: ", ")
        return Reading(end: next, words: words)
    }

    /// `4x4`, `1920×1080`: "by".
    func dimensions(_ index: Int) -> Reading? {
        guard isNumber(index), let by = self[index + 1], by.text == "x" || by.text == "×", isNumber(index + 2), endsWord(at: index + 3)
        else { return nil }
        return Reading(
            end: index + 3, words: "\(NumberWords.integer(tokens[index].text)) by \(NumberWords.integer(tokens[index + 2].text))")
    }

    /// Numbers with three or more dotted parts: a version (`2.4.1` → "two point four point
    /// one") or an IPv4 address (four parts up to 255, read with "dot").
    func dottedNumber(_ index: Int) -> Reading? {
        guard startsWord(index) || isWord(index - 1, ["v", "V"]) else { return nil }
        var parts: [Substring] = [tokens[index].text]
        var next = index + 1
        while isSymbol(next, "."), isNumber(next + 1) {
            parts.append(tokens[next + 1].text)
            next += 2
        }
        guard parts.count >= 3, endsWord(at: next) else { return nil }
        let isAddress = parts.count == 4 && parts.allSatisfy { (Int($0) ?? 256) <= 255 } && !isWord(index - 1, ["v", "V"])
        let words = parts.map { NumberWords.integer($0) }.joined(separator: isAddress ? " dot " : " point ")
        return Reading(end: next, words: words)
    }

    /// `v2.4.1`, `V2`: "version …".
    func version(_ index: Int) -> Reading? {
        guard let token = self[index], token.text == "v" || token.text == "V", startsWord(index), isNumber(index + 1) else { return nil }
        if let dotted = dottedNumber(index + 1) {
            return Reading(end: dotted.end, words: "version " + dotted.words)
        }
        guard let amount = quantity(index + 1, allowSign: false), endsWord(at: amount.end) else { return nil }
        // "v10.15" is version ten point fifteen, not a decimal.
        let parts = [amount.integer] + (amount.fraction.map { [$0] } ?? [])
        return Reading(end: amount.end, words: "version " + parts.map { NumberWords.integer($0) }.joined(separator: " point "))
    }
}
