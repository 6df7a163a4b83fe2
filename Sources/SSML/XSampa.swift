/// X-SAMPA → IPA, for `<phoneme alphabet="x-sampa">`. The table follows the X-SAMPA chart (John
/// Wells, 1995): each ASCII symbol, with its `\` and `_` forms, and its IPA character.
enum XSampa {
    /// The IPA spelling of `text`, or nil (with the offending symbol) when a symbol is unknown.
    static func ipa(_ text: String) -> Result<String, SSMLValues.Problem> {
        var output = ""
        var rest = Substring(text)
        while let first = rest.first {
            if first == " " {
                output.append(" ")
                rest = rest.dropFirst()
                continue
            }
            // Longest symbol first: `t_h` before `t`, `r\`` before `r\` before `r`.
            guard let length = (1...min(maxSymbolLength, rest.count)).reversed().first(where: { symbols[String(rest.prefix($0))] != nil }),
                let ipa = symbols[String(rest.prefix(length))]
            else {
                return .failure(.init("'\(first)' in \(SSMLValues.quoted(text)) is not an X-SAMPA symbol"))
            }
            output += ipa
            rest = rest.dropFirst(length)
        }
        return .success(output)
    }

    private static let maxSymbolLength = symbols.keys.map(\.count).max() ?? 1

    static let symbols: [String: String] = [
        // Lower-case letters are IPA's own.
        "a": "a", "b": "b", "c": "c", "d": "d", "e": "e", "f": "f", "g": "ɡ", "h": "h", "i": "i", "j": "j",
        "k": "k", "l": "l", "m": "m", "n": "n", "o": "o", "p": "p", "q": "q", "r": "r", "s": "s", "t": "t",
        "u": "u", "v": "v", "w": "w", "x": "x", "y": "y", "z": "z",
        // Capitals and symbols.
        "A": "ɑ", "B": "β", "C": "ç", "D": "ð", "E": "ɛ", "F": "ɱ", "G": "ɣ", "H": "ɥ", "I": "ɪ", "J": "ɲ",
        "K": "ɬ", "L": "ʎ", "M": "ɯ", "N": "ŋ", "O": "ɔ", "P": "ʋ", "Q": "ɒ", "R": "ʁ", "S": "ʃ", "T": "θ",
        "U": "ʊ", "V": "ʌ", "W": "ʍ", "X": "χ", "Y": "ʏ", "Z": "ʒ",
        "\"": "ˈ", "%": "ˌ", ":": "ː", ":\\": "ˑ", "@": "ə", "@\\": "ɘ", "{": "æ", "}": "ʉ", "1": "ɨ", "2": "ø",
        "3": "ɜ", "3\\": "ɞ", "4": "ɾ", "5": "ɫ", "6": "ɐ", "7": "ɤ", "8": "ɵ", "9": "œ", "&": "ɶ", "?": "ʔ",
        "?\\": "ʕ", "<\\": "ʢ", ">\\": "ʡ", "^": "ꜛ", "!": "ꜜ", "!\\": "ǃ", "|": "|", "|\\": "ǀ", "||": "‖",
        "|\\|\\": "ǁ", "=\\": "ǂ", "-\\": "‿", ".": ".", "'": "ʲ", "`": "˞", "~": "̃", "=": "̩",
        "@`": "ɚ", "3`": "ɝ",
        // Backslash forms.
        "B\\": "ʙ", "G\\": "ɢ", "G\\_<": "ʛ", "H\\": "ʜ", "I\\": "ᵻ", "J\\": "ɟ", "J\\_<": "ʄ", "K\\": "ɮ",
        "L\\": "ʟ", "M\\": "ɰ", "N\\": "ɴ", "O\\": "ʘ", "R\\": "ʀ", "U\\": "ᵿ", "X\\": "ħ", "h\\": "ɦ",
        "j\\": "ʝ", "l\\": "ɺ", "p\\": "ɸ", "r\\": "ɹ", "r\\`": "ɻ", "s\\": "ɕ", "v\\": "ʋ", "x\\": "ɧ",
        "z\\": "ʑ", "b_<": "ɓ", "d_<": "ɗ", "g_<": "ɠ",
        // Retroflexes.
        "d`": "ɖ", "l`": "ɭ", "n`": "ɳ", "r`": "ɽ", "s`": "ʂ", "t`": "ʈ", "z`": "ʐ",
        // Diacritics written after a symbol.
        "_h": "ʰ", "_w": "ʷ", "_j": "ʲ", "_G": "ˠ", "_?\\": "ˤ", "_~": "̃", "_0": "̥", "_=": "̩", "_^": "̯",
        "_}": "̚", "_\"": "̈", "_+": "̟", "_-": "̠", "_A": "̘", "_a": "̺", "_d": "̪", "_e": "̴", "_k": "̰",
        "_m": "̻", "_n": "ⁿ", "_o": "̞", "_q": "̙", "_r": "̝", "_t": "̤", "_v": "̬", "_x": "̽", "_X": "̆",
        "_c": "̜", "_O": "̹", "_N": "̼", "_l": "ˡ", "_>": "ʼ",
    ]
}
