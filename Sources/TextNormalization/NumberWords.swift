/// English number words: the core every reading rule builds on (cardinals, ordinals, years in
/// pairs, digit by digit, decimals). American style: no "and" inside a number ("one hundred five").
public enum NumberWords {
    private static let ones = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    ]
    private static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    private static let scales: [(value: UInt64, name: String)] = [
        (1_000_000_000_000_000, "quadrillion"), (1_000_000_000_000, "trillion"), (1_000_000_000, "billion"),
        (1_000_000, "million"), (1_000, "thousand"),
    ]

    /// The most digits read as one number; longer runs are read digit by digit.
    static let maxCardinalDigits = 18

    /// `1234` → "one thousand two hundred thirty-four".
    public static func cardinal(_ value: UInt64) -> String {
        if value < 20 { return ones[Int(value)] }
        if value < 100 {
            let unit = value % 10
            return tens[Int(value / 10)] + (unit == 0 ? "" : "-" + ones[Int(unit)])
        }
        if value < 1000 {
            let rest = value % 100
            return ones[Int(value / 100)] + " hundred" + (rest == 0 ? "" : " " + cardinal(rest))
        }
        for scale in scales where value >= scale.value {
            let rest = value % scale.value
            return cardinal(value / scale.value) + " " + scale.name + (rest == 0 ? "" : " " + cardinal(rest))
        }
        return ones[0]
    }

    /// A run of ASCII digits as a number: a cardinal, or digit by digit when it has a leading
    /// zero ("007") or is too long to be read as one number.
    public static func integer(_ digits: Substring) -> String {
        if digits.count > 1 && digits.first == "0" || digits.count > maxCardinalDigits {
            return self.digits(digits)
        }
        return cardinal(UInt64(digits) ?? 0)
    }

    /// Each digit on its own: "2049" → "two zero four nine"; `zero` names 0 ("oh" in phone numbers).
    public static func digits(_ digits: Substring, zero: String = "zero") -> String {
        digits.compactMap(\.wholeNumberValue).map { $0 == 0 ? zero : ones[$0] }.joined(separator: " ")
    }

    /// `1` → "first", `22` → "twenty-second", `100` → "one hundredth".
    public static func ordinal(_ value: UInt64) -> String {
        ordinal(of: cardinal(value))
    }

    /// The ordinal of a cardinal's words: only its last word changes.
    static func ordinal(of words: String) -> String {
        let cut = words.lastIndex { $0 == " " || $0 == "-" }.map { words.index(after: $0) } ?? words.startIndex
        let head = words[..<cut]
        let last = String(words[cut...])
        let irregular = [
            "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth",
        ]
        if let word = irregular[last] { return head + word }
        if last.hasSuffix("y") { return head + last.dropLast() + "ieth" }
        return head + last + "th"
    }

    /// A year read the way people say it: 1776 "seventeen seventy-six", 1905 "nineteen oh five",
    /// 1900 "nineteen hundred", 2000 "two thousand", 2007 "two thousand seven", 2024 "twenty
    /// twenty-four". Outside 1000–9999, a cardinal.
    public static func year(_ value: Int) -> String {
        guard (1000...9999).contains(value) else { return cardinal(UInt64(max(0, value))) }
        let high = value / 100
        let low = value % 100
        if value % 1000 == 0 || (high % 10 == 0 && low < 10) {
            // 1000, 2000, 2005, 3008: "two thousand five".
            return cardinal(UInt64(value))
        }
        if low == 0 { return cardinal(UInt64(high)) + " hundred" }
        if low < 10 { return cardinal(UInt64(high)) + " oh " + ones[low] }
        return cardinal(UInt64(high)) + " " + cardinal(UInt64(low))
    }

    /// A decade: 1990 "nineteen nineties", 1900 "nineteen hundreds", 2000 "two thousands", 80 "eighties".
    public static func decade(_ value: Int) -> String {
        plural(value >= 1000 ? year(value) : cardinal(UInt64(value)))
    }

    /// The plural of a number's last word ("ninety" → "nineties", "hundred" → "hundreds").
    static func plural(_ words: String) -> String {
        if words.hasSuffix("y") { return words.dropLast() + "ies" }
        if words.hasSuffix("x") { return words + "es" }
        return words + "s"
    }

    /// A decimal written as integer and fraction digits: "3", "14" → "three point one four";
    /// an empty integer part reads "point five".
    public static func decimal(integer: Substring, fraction: Substring) -> String {
        let whole = integer.isEmpty ? "" : self.integer(integer) + " "
        return whole + "point " + digits(fraction)
    }
}
