/// Mouth shapes, in Amazon Polly's set of visemes (`p`, `t`, `S`, `T`, `f`, `k`, `i`, `r`, `s`,
/// `u`, `@`, `a`, `e`, `E`, `o`, `O`, `sil`), from IPA phonemes: the table is Lark's own, by
/// where the sound is made (lips, teeth, tongue tip, palate, back; vowel height and rounding).
public enum Viseme {
    public static let silence = "sil"

    /// The viseme of one IPA phoneme (a code point or a cluster such as `aɪ`, read by its first
    /// sound), or nil for marks that shape nothing themselves (stress, length, spaces).
    public static func of(_ phoneme: String) -> String? {
        for scalar in phoneme.unicodeScalars {
            if let viseme = table[scalar] { return viseme }
        }
        if phoneme.unicodeScalars.contains(where: { punctuation.contains($0) }) { return silence }
        return nil
    }

    private static let punctuation: Set<Unicode.Scalar> = [".", ",", ";", ":", "!", "?", "—", "…"]

    private static let table: [Unicode.Scalar: String] = {
        var table: [Unicode.Scalar: String] = [:]
        func add(_ viseme: String, _ symbols: String) {
            for scalar in symbols.unicodeScalars { table[scalar] = viseme }
        }
        add("p", "pbmɱɓ")
        add("f", "fvʋɸβ")
        add("T", "θð")
        add("t", "tdnlɾɫʈɖɳɭɗʔ")
        add("S", "ʃʒɕʑʂʐ")
        add("s", "sz")
        add("k", "kgɡŋxɣhɦçʝqɢχɲʎcɟʀ")
        add("r", "ɹrɻʁ")
        add("i", "iɪjyʏɨ")
        add("u", "uʊwɯʉɥ")
        add("@", "əɚɐɜɝɘɵ")
        add("a", "aæɑɶ")
        add("e", "eø")
        add("E", "ɛœʌɞ")
        add("o", "oɤ")
        add("O", "ɔɒ")
        return table
    }()
}
