import Espeak
@testable import Phonemizer
import Testing

/// Piper's phonemization rules, one at a time, without espeak-ng.
@Suite struct PhonemizerRuleTests {
    @Test(arguments: [
        ("Hello, w", false, ",", false),
        ("world. A", false, ".", true),
        ("Really?! Y", false, "?", true),
        ("Hello world... a", false, "", false),
        ("wait… t", false, "", false),
        ("yes — n", false, ";", false),
        ("\"quoted.\"", false, ".", true),
        ("(maybe) a", false, "", false),
        ("note: t", false, ":", false),
        ("a; b", false, ";", false),
        ("end", true, "", false),
        ("end.", true, ".", true),
        (", 3", false, ",", false),
    ])
    func terminatorFromConsumedText(consumed: String, isLast: Bool, punctuation: String, endsSentence: Bool) {
        let terminator = EspeakTerminator(consumedText: consumed, isLast: isLast)
        #expect(terminator == EspeakTerminator(punctuation: punctuation, endsSentence: endsSentence))
    }

    @Test func glidePhonemeBecomesPalatalMark() {
        let separator = String(Character(EspeakClause.phonemeSeparator))
        let ipa = ["ð", "ɪ", ""].joined(separator: separator) + " " + ["ˈʌ", "ð", "ɚ"].joined(separator: separator)
        let names = ["D", "I2", ";"].joined(separator: separator) + " " + ["'V", "D", "3"].joined(separator: separator)
        #expect(GlideRule.apply(ipa: ipa, mnemonics: names) == "ðɪʲ ˈʌðɚ")
        // A pause (also empty in IPA) is not a glide.
        let pauseIPA = ["ɹ", "i", ""].joined(separator: separator) + " æ"
        let pauseNames = ["r", "i", "_:"].joined(separator: separator) + " a"
        #expect(GlideRule.apply(ipa: pauseIPA, mnemonics: pauseNames) == "ɹi æ")
        // Without aligned names the IPA is returned as it is, separators removed.
        #expect(GlideRule.apply(ipa: ipa, mnemonics: nil) == "ðɪ ˈʌðɚ")
    }

    @Test func languageFlagsAreRemoved() {
        #expect(PiperPhonemizer.removeLanguageFlags("(en)hˈɛloʊ(fr) mɔ̃d") == "hˈɛloʊ mɔ̃d")
        #expect(PiperPhonemizer.removeLanguageFlags("a () b") == "a () b")
    }

    @Test func rawPhonemeBlocksSplitOnOneLine() {
        #expect(RawPhonemeBlocks.split("Hello [[ hɛlˈoʊ ]] world") == [.text("Hello "), .raw(" hɛlˈoʊ "), .text(" world")])
        #expect(RawPhonemeBlocks.split("a [[ b\n]] c") == [.text("a [[ b\n]] c")])
    }

    @Test func codePointsAreNFD() {
        #expect(PiperPhonemizer.codePoints("é") == ["e", "\u{301}"])
    }

    @Test func vowelClustersMergeLongestFirst() {
        let phonemizer = PiperPhonemizer(type: .espeak, espeakVoice: "x", vowelClusters: [["a", "ɪ"], ["a", "ɪ", "ə"]])
        #expect(phonemizer.mergeVowelClusters(["h", "a", "ɪ", "ə", "a", "ɪ"]) == ["h", "aɪə", "aɪ"])
    }

    /// A sentence over the limit is cut at the best break: a clause mark, then a word, then
    /// anywhere; nothing is lost and short sentences come back whole.
    @Test func longSentencesAreCutAtClausesThenWords() {
        let short = PiperPhonemizer.codePoints("ab cd, ef")
        #expect(LongSentenceSplitter.pieces(of: short, limit: 20) == [short])

        // "aaa, bbb ccc ddd": a clause break at 5, word breaks at 9 and 13.
        let clauses = PiperPhonemizer.codePoints("aaa, bbb ccc ddd")
        #expect(LongSentenceSplitter.pieces(of: clauses, limit: 10).map { $0.joined() } == ["aaa, ", "bbb ccc ", "ddd"])
        // A clause break in the first half of the window loses to the last word break.
        #expect(LongSentenceSplitter.pieces(of: clauses, limit: 14).map { $0.joined() } == ["aaa, bbb ccc ", "ddd"])
        // One word longer than the limit is cut inside it.
        let word = PiperPhonemizer.codePoints("abcdefghij")
        #expect(LongSentenceSplitter.pieces(of: word, limit: 4).map { $0.joined() } == ["abcd", "efgh", "ij"])

        let long = PiperPhonemizer.codePoints(Array(repeating: "wˈɑːtʃ ðə fˈɑːks, ænd", count: 40).joined(separator: " "))
        let pieces = LongSentenceSplitter.pieces(of: long)
        #expect(pieces.count > 1)
        #expect(pieces.allSatisfy { $0.count <= LongSentenceSplitter.defaultLimit })
        #expect(Array(pieces.joined()) == long)
        #expect(pieces.dropLast().allSatisfy { $0.suffix(2) == [",", " "] })
    }
}
