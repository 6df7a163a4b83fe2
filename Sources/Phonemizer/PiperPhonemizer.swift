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
        try await sentences(of: text, withWords: false).map(\.phonemes)
    }

    /// Each sentence of `text` (empty ones left out) with its phonemes, exactly those of
    /// `phonemize`, and which word of the text each phoneme belongs to (`withWords`; see
    /// `WordAlignment`). Words come from espeak-ng's text only, not from `[[ raw ]]` phonemes.
    public func sentences(of text: String, withWords: Bool = true) async throws(SpeechError) -> [PhonemizedSentence] {
        switch type {
        case .text:
            // Piper treats the whole text as one sentence; splitting lets long texts stream.
            return SentenceSegmenter.sentences(in: text).map { Self.codePoints($0) }.filter { !$0.isEmpty }.map {
                PhonemizedSentence(phonemes: $0, owners: Array(repeating: nil, count: $0.count), words: [], textBytes: nil)
            }
        case .espeak:
            return try await phonemizeWithEspeak(text, withWords: withWords).filter { !$0.phonemes.isEmpty }
        }
    }

    private func phonemizeWithEspeak(_ text: String, withWords: Bool) async throws(SpeechError) -> [PhonemizedSentence] {
        var sentences: [PhonemizedSentence] = []
        var previousWasRaw = false
        let parts = RawPhonemeBlocks.split(text)
        var offset = 0
        for (index, part) in parts.enumerated() {
            if case .raw(let inner) = part {
                offset += inner.utf8.count + 4  // with its [[ ]]
                previousWasRaw = true
                if sentences.isEmpty { sentences.append(PhonemizedSentence()) }
                if index > 0, case .text(let before) = parts[index - 1], before.hasSuffix(" ") {
                    sentences[sentences.count - 1].append([" "])
                }
                sentences[sentences.count - 1].append(inner.trimmingWhitespace().unicodeScalars.map(String.init))
                if index + 1 < parts.count, case .text(let after) = parts[index + 1], after.hasPrefix(" ") {
                    sentences[sentences.count - 1].append([" "])
                }
                continue
            }
            guard case .text(let plain) = part else { continue }
            var partSentences = try await espeakSentences(plain, offset: offset, withWords: withWords)
            offset += plain.utf8.count
            if previousWasRaw, !partSentences.isEmpty {
                sentences[sentences.count - 1].append(partSentences.removeFirst())
            }
            sentences.append(contentsOf: partSentences)
            previousWasRaw = false
        }
        return sentences
    }

    /// One text part (at byte `offset` of the whole text) through espeak-ng, grouped into
    /// sentences by Piper's rules.
    private func espeakSentences(_ text: String, offset: Int, withWords: Bool) async throws(SpeechError) -> [PhonemizedSentence] {
        guard !text.isEmpty else { return [] }
        // One trip to espeak-ng's thread for the clauses and every clause's words.
        let (clauses, clauseWordPhonemes) = try await runtime.clausesAndWords(of: text, voice: espeakVoice) { clauses in
            withWords ? Self.clauseBytes(of: clauses).map { TextWords.words(in: text, bytes: $0).map(\.text) } : []
        }
        var sentences: [PhonemizedSentence] = []
        var current = PhonemizedSentence()
        let utf8 = Array(text.utf8)
        for (index, (clause, clauseBytes)) in zip(clauses, Self.clauseBytes(of: clauses)).enumerated() {
            let terminator = EspeakTerminator(consumedText: clause.consumedText, isLast: clause.isLast)
            let spoken = Self.codePoints(Self.removeLanguageFlags(GlideRule.apply(ipa: clause.phonemes, mnemonics: clause.mnemonics)))
            var owners = [Int?](repeating: nil, count: spoken.count)
            var words: [TextWord] = []
            if withWords {
                words = TextWords.words(in: text, bytes: clauseBytes)
                owners = WordAlignment.owners(of: spoken, words: clauseWordPhonemes[index].map(Self.codePoints))
                words = words.map { TextWord(text: $0.text, bytes: $0.bytes.lowerBound + offset..<$0.bytes.upperBound + offset) }
            }
            var tail = terminator.punctuation
            if terminator.addsSpace { tail += " " }
            let ending = Self.codePoints(tail)
            current.append(spoken + ending, owners: owners + Array(repeating: nil, count: ending.count), words: words)
            current.extendText(to: clauseBytes, offset: offset, in: utf8)
            if terminator.endsSentence {
                sentences.append(current.mergingVowelClusters(vowelClusters))
                current = PhonemizedSentence()
            }
        }
        if !current.phonemes.isEmpty { sentences.append(current.mergingVowelClusters(vowelClusters)) }
        return sentences
    }

    /// Each clause's own text, in UTF-8 bytes: espeak-ng read one character ahead, which the
    /// next clause speaks.
    static func clauseBytes(of clauses: [EspeakClause]) -> [Range<Int>] {
        var clauseStart = 0
        return clauses.map { clause in
            var clauseEnd = clause.consumedBytes.upperBound
            if !clause.isLast, let last = clause.consumedText.last, last.isLetter || last.isNumber {
                clauseEnd -= last.utf8.count
            }
            let bytes = clauseStart..<max(clauseStart, clauseEnd)
            clauseStart = bytes.upperBound
            return bytes
        }
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
        Self.mergeVowelClusters(phonemes, clusters: vowelClusters).map(\.phoneme)
    }

    /// Each merged phoneme with the index of the first phoneme it was made of.
    static func mergeVowelClusters(_ phonemes: [String], clusters: [[String]]) -> [(phoneme: String, source: Int)] {
        guard !clusters.isEmpty else { return phonemes.enumerated().map { ($1, $0) } }
        let longest = clusters.map(\.count).max() ?? 0
        var result: [(phoneme: String, source: Int)] = []
        var index = 0
        while index < phonemes.count {
            var matched = 0
            var length = min(longest, phonemes.count - index)
            while length >= 2 {
                if clusters.contains(Array(phonemes[index..<index + length])) {
                    matched = length
                    break
                }
                length -= 1
            }
            if matched > 0 {
                result.append((phonemes[index..<index + matched].joined(), index))
                index += matched
            } else {
                result.append((phonemes[index], index))
                index += 1
            }
        }
        return result
    }
}

/// One sentence as the voice speaks it: its phonemes, and the words of the text they say.
public struct PhonemizedSentence: Sendable, Equatable {
    public var phonemes: [String] = []
    /// For each phoneme, the index in `words` of the word it belongs to (nil: a space,
    /// punctuation, or a phoneme given raw).
    public var owners: [Int?] = []
    /// The text's words in this sentence (UTF-8 byte ranges in the whole text given).
    public var words: [TextWord] = []
    /// Where the sentence is in the text given (UTF-8 bytes, without surrounding white space);
    /// nil when it is not known.
    public var textBytes: Range<Int>?

    mutating func append(_ more: [String], owners moreOwners: [Int?]? = nil, words moreWords: [TextWord] = []) {
        let base = words.count
        phonemes += more
        owners += (moreOwners ?? Array(repeating: nil, count: more.count)).map { $0.map { $0 + base } }
        words += moreWords
    }

    mutating func append(_ other: PhonemizedSentence) {
        append(other.phonemes, owners: other.owners, words: other.words)
        if let bytes = other.textBytes {
            textBytes = textBytes.map { min($0.lowerBound, bytes.lowerBound)..<max($0.upperBound, bytes.upperBound) } ?? bytes
        }
    }

    /// Widens `textBytes` over `bytes` of `text` (found at `offset` of the whole), white space trimmed.
    mutating func extendText(to bytes: Range<Int>, offset: Int, in utf8: [UInt8]) {
        var lower = bytes.lowerBound, upper = min(bytes.upperBound, utf8.count)
        while lower < upper, Self.isSpace(utf8[lower]) { lower += 1 }
        while upper > lower, Self.isSpace(utf8[upper - 1]) { upper -= 1 }
        guard lower < upper else { return }
        let range = lower + offset..<upper + offset
        textBytes = textBytes.map { min($0.lowerBound, range.lowerBound)..<max($0.upperBound, range.upperBound) } ?? range
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

    func mergingVowelClusters(_ clusters: [[String]]) -> PhonemizedSentence {
        guard !clusters.isEmpty else { return self }
        let merged = PiperPhonemizer.mergeVowelClusters(phonemes, clusters: clusters)
        var result = self
        result.phonemes = merged.map(\.phoneme)
        result.owners = merged.map { owners[$0.source] }
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
        for (block, phonemes) in RawPhonemeBlockScanner.blocks(in: text) {
            parts.append(.text(String(text[plainStart..<block.lowerBound])))
            parts.append(.raw(String(text[phonemes])))
            plainStart = block.upperBound
        }
        parts.append(.text(String(text[plainStart...])))
        return parts
    }
}
