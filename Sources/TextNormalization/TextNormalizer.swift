import Foundation
import SpeechCore

/// Rewrites a language's written forms (numbers, dates, abbreviations, symbols) into the words
/// they are read as, keeping the way back to the input's offsets.
public protocol LanguageNormalizer: Sendable {
    func normalize(_ text: String) -> NormalizedText
}

/// The per-language hook: which normalizer a voice's language gets.
public enum TextNormalizer {
    /// English for `en*` voices (Piper's `en_GB`, espeak-ng's `en-gb`…): day-first dates for the
    /// English of Britain, Ireland, Australia, New Zealand, India and South Africa, month-first
    /// for the United States and the rest. Nil (text passes through unchanged) for other languages.
    public static func `for`(languageCode: String) -> (any LanguageNormalizer)? {
        let code = languageCode.lowercased().replacingOccurrences(of: "-", with: "_")
        guard code == "en" || code.hasPrefix("en_") else { return nil }
        let region = code.dropFirst(3).prefix(2)
        let dayFirst: Set<Substring> = ["gb", "ie", "au", "nz", "in", "za", "sc", "rp"]
        return EnglishNormalizer(dateOrder: dayFirst.contains(region) ? .dayFirst : .monthFirst)
    }
}

/// Text split into plain parts and Piper's `[[ raw phonemes ]]` blocks (Piper's pattern
/// `\[\[.*?\]\]`: a block does not cross a line break), which normalization never touches.
enum RawPhonemeSpans {
    /// The parts in order, each with whether it is a raw block.
    static func split(_ text: String) -> [(part: Substring, isRaw: Bool)] {
        var parts: [(Substring, Bool)] = []
        var plainStart = text.startIndex
        for (block, _) in RawPhonemeBlockScanner.blocks(in: text) {
            if plainStart < block.lowerBound { parts.append((text[plainStart..<block.lowerBound], false)) }
            parts.append((text[block], true))
            plainStart = block.upperBound
        }
        if plainStart < text.endIndex { parts.append((text[plainStart...], false)) }
        return parts
    }
}
