import Espeak

/// The terminator of one espeak-ng clause, recovered from the text the clause consumed.
///
/// Piper's espeak-ng build reports each clause's punctuation and whether it ends a sentence; the
/// releases Debian and PyPI ship do not export that call. The same facts can be read back from
/// the consumed text: espeak-ng reads one character past the clause (dropped here unless the
/// clause ended the text), then trailing spaces, quotes and brackets are skipped, and the run of
/// punctuation before them decides: an ellipsis gives none, a dash `;`, otherwise its first mark.
struct EspeakTerminator: Equatable {
    /// What Piper appends to the clause's phonemes (`.`, `?`, `!`, `,`, `:`, `;` or nothing).
    var punctuation: String
    var endsSentence: Bool

    /// Piper adds a space after the marks that do not end a sentence.
    var addsSpace: Bool { [",", ":", ";"].contains(punctuation) }

    init(punctuation: String, endsSentence: Bool) {
        self.punctuation = punctuation
        self.endsSentence = endsSentence
    }

    init(consumedText: String, isLast: Bool) {
        var text = Substring(consumedText)
        if !isLast, let last = text.last, last.isLetter || last.isNumber {
            text = text.dropLast()
        }
        while let last = text.last, last.isWhitespace || Self.closers.contains(last) {
            text = text.dropLast()
        }
        var run = ""
        while let last = text.last, Self.marks.contains(last) {
            run.insert(last, at: run.startIndex)
            text = text.dropLast()
        }
        guard let first = run.first, !run.hasPrefix("..") else {
            self.init(punctuation: "", endsSentence: false)
            return
        }
        switch first {
        case ".", "?", "!": self.init(punctuation: String(first), endsSentence: true)
        case ",", ":", ";": self.init(punctuation: String(first), endsSentence: false)
        case "—", "–": self.init(punctuation: ";", endsSentence: false)
        default: self.init(punctuation: "", endsSentence: false)  // "…"
        }
    }

    static let marks: Set<Character> = [".", "?", "!", ",", ":", ";", "…", "—", "–"]
    static let closers: Set<Character> = ["\"", "'", "“", "”", "‘", "’", "«", "»", ")", "]", "}", "(", "[", "{"]
}

/// The `ʲ` glide of Piper's espeak-ng build (upstream after 1.52.0).
///
/// espeak-ng's English rules put a palatal glide phoneme, named `;`, after `i`, `iː` or `ɪ` when a
/// vowel follows (`ðɪʲ ˈʌðɚ`, `θɹˈiːʲ ˈaʊɚz`, `dʒˈuːliʲəz`). The library here prints that phoneme
/// as nothing in IPA; Piper's prints `ʲ`. So the IPA and the phoneme-name output of the same clause
/// are walked side by side, and every phoneme named `;` becomes `ʲ`. The result has the separators
/// removed, so it equals espeak-ng's plain IPA plus the glides.
enum GlideRule {
    static let glide: Unicode.Scalar = "ʲ"

    static func apply(ipa: String, mnemonics: String?) -> String {
        let ipaUnits = units(of: ipa)
        guard let mnemonics else { return String(String.UnicodeScalarView(ipaUnits.joined())) }
        let nameUnits = units(of: mnemonics)
        guard nameUnits.count == ipaUnits.count else { return String(String.UnicodeScalarView(ipaUnits.joined())) }
        var result = String.UnicodeScalarView()
        for (ipaUnit, name) in zip(ipaUnits, nameUnits) {
            if name.elementsEqual([";"]) {
                result.append(glide)
            } else {
                result.append(contentsOf: ipaUnit)
            }
        }
        return String(result)
    }

    /// Splits separated output into phonemes (possibly empty) and the spaces between words.
    /// Works on code points: a combining mark after a separator must not merge with it.
    static func units(of separated: String) -> [ArraySlice<Unicode.Scalar>] {
        let scalars = Array(separated.unicodeScalars)
        var units: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for (index, scalar) in scalars.enumerated() where scalar == " " || scalar == EspeakClause.phonemeSeparator {
            units.append(scalars[start..<index])
            if scalar == " " { units.append(scalars[index...index]) }
            start = index + 1
        }
        units.append(scalars[start...])
        return units
    }
}
