/// Dates and times: `March 3rd, 2025`, `Jan. 15`, `2025-03-03`, `3/3/2025` (month first for
/// en-US, day first for en-GB), `3 March 2025`, `7:45 a.m.`, `14:30`, `10:00`, `7pm`.
extension EnglishReader {
    /// A date in words: "March third, twenty twenty-five" (month first) or "the third of March,
    /// twenty twenty-five" (day first). Any part may be missing.
    func dateWords(year: Int?, month: Int?, day: Int?, dayFirst: Bool) -> String {
        let monthName = month.map { EnglishLexicon.months[$0 - 1] }
        let dayName = day.map { NumberWords.ordinal(UInt64($0)) }
        var words: String
        switch (monthName, dayName) {
        case let (month?, day?): words = dayFirst ? "the \(day) of \(month)" : "\(month) \(day)"
        case let (month?, nil): words = month
        case let (nil, day?): words = "the \(day)"
        case (nil, nil): words = ""
        }
        if let year {
            let yearWords = NumberWords.year(year)
            words = words.isEmpty ? yearWords : words + (dayName != nil ? ", " : " ") + yearWords
        }
        return words
    }

    static func isValid(month: Int, day: Int) -> Bool {
        (1...12).contains(month) && (1...31).contains(day)
    }

    /// `2025-03-03`.
    func isoDate(_ index: Int) -> Reading? {
        guard startsWord(index), isNumber(index, digits: 4...4), isSymbol(index + 1, "-"), isNumber(index + 2, digits: 2...2),
              isSymbol(index + 3, "-"), isNumber(index + 4, digits: 2...2), endsWord(at: index + 5),
              !(isSymbol(index + 5, "-") && isNumber(index + 6)),
              let year = value(index), let month = value(index + 2), let day = value(index + 4), Self.isValid(month: month, day: day)
        else { return nil }
        return Reading(end: index + 5, words: dateWords(year: year, month: month, day: day, dayFirst: dateOrder == .dayFirst))
    }

    /// `3/3/2025`, `03-04-25`: month first or day first by the voice's English; a first number
    /// over 12 can only be a day.
    func numericDate(_ index: Int) -> Reading? {
        guard startsWord(index), isNumber(index, digits: 1...2), let separator = self[index + 1], separator.isSymbol("/-."),
              isNumber(index + 2, digits: 1...2), isSymbol(index + 3, String(separator.text)), isNumber(index + 4, digits: 2...4),
              tokens[index + 4].text.count != 3, endsWord(at: index + 5), !isSymbol(index + 5, String(separator.text)),
              // "3.4.25" is a version or an address, not a date: dots only day first ("3.4.2025").
              separator.text != "." || (dateOrder == .dayFirst && tokens[index + 4].text.count == 4),
              let first = value(index), let second = value(index + 2), var year = value(index + 4)
        else { return nil }
        if tokens[index + 4].text.count == 2 { year += year < 50 ? 2000 : 1900 }
        var (month, day) = dateOrder == .dayFirst ? (second, first) : (first, second)
        if !Self.isValid(month: month, day: day), Self.isValid(month: day, day: month) { (month, day) = (day, month) }
        guard Self.isValid(month: month, day: day) else { return nil }
        return Reading(end: index + 5, words: dateWords(year: year, month: month, day: day, dayFirst: dateOrder == .dayFirst))
    }

    /// A day of the month after `index`: "3", "3rd", "03"; answers the day and where it ends.
    func dayOfMonth(_ index: Int) -> (day: Int, end: Int)? {
        guard isNumber(index, digits: 1...2), let day = value(index), (1...31).contains(day) else { return nil }
        if let suffix = self[index + 1], suffix.isWord, ["st", "nd", "rd", "th"].contains(suffix.text.lowercased()) {
            return endsWord(at: index + 2) ? (day, index + 2) : nil
        }
        return endsWord(at: index + 1) && !isSymbol(index + 1, ":/") ? (day, index + 1) : nil
    }

    /// The month named at `index` ("March", "Jan", "Jan.", "Sept."): its number and where it ends.
    func monthName(_ index: Int) -> (month: Int, end: Int, abbreviated: Bool)? {
        guard let token = self[index], token.isWord, let month = EnglishLexicon.monthNames[String(token.text)] else { return nil }
        let abbreviated = token.text.count <= 4 && token.text != "June" && token.text != "July" && token.text != "May"
        return (month, abbreviated && isSymbol(index + 1, ".") ? index + 2 : index + 1, abbreviated)
    }

    /// `March 3rd, 2025`, `Jan. 15`, `May 5 2024`, and `Jan. 2025` (an abbreviated month with a year).
    func monthDate(_ index: Int) -> Reading? {
        guard let (month, monthEnd, abbreviated) = monthName(index), isLineSpace(monthEnd) else { return nil }
        if let (day, dayEnd) = dayOfMonth(monthEnd + 1) {
            var end = dayEnd
            var year: Int?
            // ", 2025" or " 2025" after the day.
            var yearStart = dayEnd
            if isSymbol(yearStart, ",") { yearStart += 1 }
            if isLineSpace(yearStart), isNumber(yearStart + 1, digits: 4...4), endsWord(at: yearStart + 2),
               !(isSymbol(yearStart + 2, ".,") && isNumber(yearStart + 3)) {
                year = value(yearStart + 1)
                end = yearStart + 2
            }
            return Reading(end: end, words: dateWords(year: year, month: month, day: day, dayFirst: false))
        }
        if abbreviated, monthEnd == index + 2, isNumber(monthEnd + 1, digits: 4...4), Self.isYear(tokens[monthEnd + 1].text),
           endsWord(at: monthEnd + 2) {
            return Reading(end: monthEnd + 2, words: dateWords(year: value(monthEnd + 1), month: month, day: nil, dayFirst: false))
        }
        return nil
    }

    /// `3 March 2025`, `15th Jan.`: "the third of March twenty twenty-five".
    func dayMonthDate(_ index: Int) -> Reading? {
        guard startsWord(index), let (day, dayEnd) = dayOfMonth(index), isLineSpace(dayEnd),
              let (month, monthEnd, _) = monthName(dayEnd + 1)
        else { return nil }
        var end = monthEnd
        var words = "the \(NumberWords.ordinal(UInt64(day))) of \(EnglishLexicon.months[month - 1])"
        if isLineSpace(monthEnd), isNumber(monthEnd + 1, digits: 4...4), endsWord(at: monthEnd + 2), let year = value(monthEnd + 1) {
            words += " " + NumberWords.year(year)
            end = monthEnd + 2
        } else if monthEnd == dayEnd + 3 {
            // "15 Jan." : the period after the abbreviation stays where it may end the sentence.
            end = endAfterAbbreviation(dayEnd + 2)
        }
        return Reading(end: end, words: words)
    }

    // MARK: - Times

    /// `a.m.`, `am`, `AM`, `p.m.`, `PM` at `index`: "AM" or "PM" (which espeak-ng says as
    /// letters), and where it ends (a final period stays where it may end the sentence).
    func meridiem(_ index: Int) -> (end: Int, words: String)? {
        guard let token = self[index], token.isWord else { return nil }
        let letter = token.text.lowercased()
        if letter == "am" || letter == "pm", endsWord(at: index + 1) {
            return (index + 1, letter.uppercased())
        }
        guard letter == "a" || letter == "p", isSymbol(index + 1, "."), let m = self[index + 2], m.text.lowercased() == "m"
        else { return nil }
        let end = isSymbol(index + 3, ".") ? endAfterAbbreviation(index + 3) : index + 3
        return (end, letter.uppercased() + "M")
    }

    /// `7:45 a.m.`, `14:30`, `10:00` ("ten o'clock"), `7:05` ("seven oh five"), `7pm`.
    func time(_ index: Int) -> Reading? {
        guard startsWord(index), isNumber(index, digits: 1...2), let hour = value(index) else { return nil }
        var end = index + 1
        var minute = 0
        var second: Int?
        var hasMinutes = false
        if isSymbol(end, ":"), isNumber(end + 1, digits: 2...2), let minutes = value(end + 1), minutes < 60, hour < 24 {
            minute = minutes
            hasMinutes = true
            end += 2
            if isSymbol(end, ":"), isNumber(end + 1, digits: 2...2), let seconds = value(end + 1), seconds < 60 {
                second = seconds
                end += 2
            }
            guard endsWord(at: end) || meridiem(end) != nil, !(isSymbol(end, ":.") && isNumber(end + 1)) else { return nil }
        }
        var meridiemWords: String?
        let meridiemStart = isLineSpace(end) ? end + 1 : end
        if (1...12).contains(hour) || (hasMinutes && hour == 0), let found = meridiem(meridiemStart) {
            meridiemWords = found.words
            end = found.end
        }
        guard hasMinutes || meridiemWords != nil else { return nil }
        var words = NumberWords.cardinal(UInt64(hour))
        if minute == 0 {
            if meridiemWords == nil {
                words += hour == 0 || hour > 12 ? " hundred" : " o'clock"
            }
        } else if minute < 10 {
            words += " oh " + NumberWords.cardinal(UInt64(minute))
        } else {
            words += " " + NumberWords.cardinal(UInt64(minute))
        }
        if let meridiemWords { words += " " + meridiemWords }
        if let second, second > 0 {
            words += " and \(NumberWords.cardinal(UInt64(second))) \(second == 1 ? "second" : "seconds")"
        }
        return Reading(end: end, words: words)
    }
}
