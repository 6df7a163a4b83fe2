import Espeak
import Foundation
import SpeechCore

/// How a voice turns text into phonemes (a Piper config's `phoneme_type`).
public enum PhonemeType: String, Sendable, Codable {
    /// IPA from espeak-ng, with Piper's clause and sentence rules.
    case espeak
    /// The text's own characters (NFD code points) are the phonemes.
    case text
}

/// Text → phonemes per sentence, reproducing Piper 1.8.0's `PiperVoice.phonemize` exactly.
///
/// Piper's rules (its `espeakbridge.c`, `phonemize_espeak.py` and `voice.py`), in short:
/// 1. Text inside `[[ … ]]` is raw phonemes; everything else goes to espeak-ng.
/// 2. espeak-ng is called clause by clause; each clause gets its terminator (`.`, `?`, `!`, `,`,
///    `:`, `;`), followed by a space after `,` `:` `;`. Language-switch flags like `(en)` are removed,
///    the result is NFD-normalized and split into code points.
/// 3. A sentence ends after `.`, `?` or `!`, and at the end of the text.
/// Piper's own espeak-ng build also inserts a `ʲ` glide that the library here lacks; `GlideRule`
/// adds it, and `EspeakTerminator` recovers the terminators Piper's build reports directly.
public struct PiperPhonemizer: Sendable {
    public var type: PhonemeType
    /// espeak-ng voice (`en-us`).
    public var espeakVoice: String
    /// Vowel sequences the voice's id map has as single phonemes (`["a", "ɪ"]` → `aɪ`).
    public var vowelClusters: [[String]]
    private let runtime: EspeakRuntime

    public init(type: PhonemeType, espeakVoice: String, vowelClusters: [[String]] = [], runtime: EspeakRuntime = .shared) {
        self.type = type
        self.espeakVoice = espeakVoice
        self.vowelClusters = vowelClusters
        self.runtime = runtime
    }

    /// The phonemes of each sentence of `text`; empty sentences are left out.
    public func phonemize(_ text: String) async throws(SpeechError) -> [[String]] {
        switch type {
        case .text:
            // Piper treats the whole text as one sentence; splitting lets long texts stream.
            return SentenceSegmenter.sentences(in: text).map { Self.codePoints($0) }.filter { !$0.isEmpty }
        case .espeak:
            return try await phonemizeWithEspeak(text).filter { !$0.isEmpty }
        }
    }

    private func phonemizeWithEspeak(_ text: String) async throws(SpeechError) -> [[String]] {
        var sentences: [[String]] = []
        var previousWasRaw = false
        let parts = RawPhonemeBlocks.split(text)
        for (index, part) in parts.enumerated() {
            if case .raw(let inner) = part {
                previousWasRaw = true
                if sentences.isEmpty { sentences.append([]) }
                if index > 0, case .text(let before) = parts[index - 1], before.hasSuffix(" ") {
                    sentences[sentences.count - 1].append(" ")
                }
                sentences[sentences.count - 1].append(contentsOf: inner.trimmingWhitespace().unicodeScalars.map(String.init))
                if index + 1 < parts.count, case .text(let after) = parts[index + 1], after.hasPrefix(" ") {
                    sentences[sentences.count - 1].append(" ")
                }
                continue
            }
            guard case .text(let plain) = part else { continue }
            var partSentences = try await espeakSentences(plain)
            if previousWasRaw, !partSentences.isEmpty {
                sentences[sentences.count - 1].append(contentsOf: partSentences.removeFirst())
            }
            sentences.append(contentsOf: partSentences)
            previousWasRaw = false
        }
        return sentences
    }

    /// One text part through espeak-ng, grouped into sentences by Piper's rules.
    private func espeakSentences(_ text: String) async throws(SpeechError) -> [[String]] {
        guard !text.isEmpty else { return [] }
        let clauses = try await runtime.clauses(of: text, voice: espeakVoice)
        var sentences: [[String]] = []
        var current: [String] = []
        for clause in clauses {
            let terminator = EspeakTerminator(consumedText: clause.consumedText, isLast: clause.isLast)
            var phonemes = Self.removeLanguageFlags(GlideRule.apply(ipa: clause.phonemes, mnemonics: clause.mnemonics))
            phonemes += terminator.punctuation
            if terminator.addsSpace { phonemes += " " }
            current.append(contentsOf: Self.codePoints(phonemes))
            if terminator.endsSentence {
                sentences.append(mergeVowelClusters(current))
                current = []
            }
        }
        if !current.isEmpty { sentences.append(mergeVowelClusters(current)) }
        return sentences
    }

    /// Removes espeak-ng's language-switch markers such as `(en)` or `(fr)`.
    static func removeLanguageFlags(_ phonemes: String) -> String {
        guard phonemes.contains("(") else { return phonemes }
        var result = ""
        var rest = Substring(phonemes)
        while let open = rest.firstIndex(of: "(") {
            let afterOpen = rest.index(after: open)
            // Only a non-empty group closed by ')' is a flag, as in the pattern `\([^)]+\)`.
            guard let close = rest[afterOpen...].firstIndex(of: ")"), close > afterOpen else {
                result += rest[...open]
                rest = rest[afterOpen...]
                continue
            }
            result += rest[..<open]
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    /// NFD code points, each its own phoneme (accents become separate symbols, as in Piper).
    static func codePoints(_ text: String) -> [String] {
        text.decomposedStringWithCanonicalMapping.unicodeScalars.map(String.init)
    }

    /// Merges adjacent phonemes that form a known vowel cluster, longest first.
    func mergeVowelClusters(_ phonemes: [String]) -> [String] {
        guard !vowelClusters.isEmpty else { return phonemes }
        let longest = vowelClusters.map(\.count).max() ?? 0
        var result: [String] = []
        var index = 0
        while index < phonemes.count {
            var matched = 0
            var length = min(longest, phonemes.count - index)
            while length >= 2 {
                if vowelClusters.contains(Array(phonemes[index..<index + length])) {
                    matched = length
                    break
                }
                length -= 1
            }
            if matched > 0 {
                result.append(phonemes[index..<index + matched].joined())
                index += matched
            } else {
                result.append(phonemes[index])
                index += 1
            }
        }
        return result
    }
}

/// Text split into plain parts and `[[ raw phoneme ]]` blocks (Piper's `\[\[.*?\]\]`, where `.`
/// does not cross a line break).
enum RawPhonemeBlocks: Equatable {
    case text(String)
    case raw(String)

    static func split(_ text: String) -> [RawPhonemeBlocks] {
        var parts: [RawPhonemeBlocks] = []
        var plainStart = text.startIndex
        var searchFrom = text.startIndex
        while let open = text.range(of: "[[", range: searchFrom..<text.endIndex) {
            let lineEnd = text[open.upperBound...].firstIndex(where: \.isNewline) ?? text.endIndex
            guard let close = text.range(of: "]]", range: open.upperBound..<lineEnd) else {
                searchFrom = text.index(after: open.lowerBound)
                continue
            }
            parts.append(.text(String(text[plainStart..<open.lowerBound])))
            parts.append(.raw(String(text[open.upperBound..<close.lowerBound])))
            plainStart = close.upperBound
            searchFrom = close.upperBound
        }
        parts.append(.text(String(text[plainStart...])))
        return parts
    }
}
