import Foundation
import PiperEngine
import SpeechCore
import SpeechService
import Testing

/// Lark against Piper 1.8.0's own Python package, on the same voice and the same 60 varied
/// sentences: the phoneme ids must be equal, and at zero noise the samples too (within 1e-3 of
/// full scale; the same ONNX Runtime with the same thread count gives identical results).
@Suite(.serialized) struct PiperParityTests {
    static let corpus: [String] = {
        let text = (try? String(contentsOfFile: Checkout.resources + "/parity-corpus.txt", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }()

    /// Lines where Lark's espeak-ng (Debian's 1.51 with Piper's data) is known to differ from
    /// Piper's own build, beyond the glide Lark reproduces: "one" ending a clause gets secondary
    /// stress there (`wˌʌn`) and primary stress here (`wˈʌn`). Listed, not hidden: the test fails
    /// if any other line differs, and also if one of these starts to match (then remove it here).
    static let knownDifferences: Set<String> = [
        "One, two, three, four, five, six, seven, eight, nine, ten."
    ]

    struct Reference: Decodable {
        var ids: [[Int64]]
        var samples: String?
    }

    /// Runs Piper's Python reference on `texts` (see Tests/reference/piper_reference.py).
    static func reference(_ texts: [String], idsOnly: Bool) throws -> [Reference] {
        let input = try JSONEncoder().encode(texts)
        var arguments = [Checkout.root + "/Tests/reference/piper_reference.py", "--model", Checkout.joeModel]
        if idsOnly { arguments.append("--ids-only") }
        let result = try runProcess(Checkout.referencePython, arguments, input: input)
        guard result.status == 0 else { throw ProbeError(message: "reference failed: \(result.stderr)") }
        return try JSONDecoder().decode([Reference].self, from: result.stdout)
    }

    static func joe() async throws -> PiperVoice {
        try #require(try await Checkout.library.voice(Checkout.joeModel) as? PiperVoice)
    }

    @Test func corpusIsLargeAndVaried() {
        #expect(Self.corpus.count >= 50)
    }

    @Test func phonemeIDsEqualPipers() async throws {
        let voice = try await Self.joe()
        let expected = try Self.reference(Self.corpus, idsOnly: true)
        try #require(expected.count == Self.corpus.count)
        var mismatches: [String] = []
        var matches = 0
        for (text, reference) in zip(Self.corpus, expected) {
            let ids = try await voice.phonemeIDs(for: text)
            if Self.knownDifferences.contains(text) {
                #expect(ids != reference.ids, "now matches Piper: remove from knownDifferences: \(text)")
                continue
            }
            if ids == reference.ids { matches += 1 }
            if ids != reference.ids {
                let phonemes = try await voice.phonemizer.phonemize(text).map { $0.joined() }
                mismatches.append("\(text) → \(phonemes)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(Self.corpus.count) differ:\n\(mismatches.joined(separator: "\n"))")
        #expect(matches >= 50)
    }

    @Test func samplesEqualPipersAtZeroNoise() async throws {
        let voice = try await Self.joe()
        let expected = try Self.reference(Self.corpus, idsOnly: false)
        let silent = SynthesisOptions(noiseScale: 0, noiseW: 0)
        var worst: (text: String, difference: Int) = ("", 0)
        var lengthMismatches: [String] = []
        for (text, reference) in zip(Self.corpus, expected) where !Self.knownDifferences.contains(text) {
            let referenceSamples = Self.decodeSamples(reference.samples ?? "")
            // Through the one synthesis path, with normalization off: Piper's exact samples.
            let prepared = try await Checkout.library.prepare(SpeechInput(text, normalize: false), voice: voice, options: silent)
            var samples: [Int16] = []
            for try await chunk in prepared.start(on: Checkout.admission()) { samples += chunk.samples }
            guard samples.count == referenceSamples.count else {
                lengthMismatches.append("\(text): \(samples.count) samples, Piper \(referenceSamples.count)")
                continue
            }
            let difference = zip(samples, referenceSamples).map { abs(Int($0) - Int($1)) }.max() ?? 0
            if difference > worst.difference { worst = (text, difference) }
        }
        #expect(lengthMismatches.isEmpty, "\(lengthMismatches.joined(separator: "\n"))")
        // 1e-3 of full scale is 32.767 in 16-bit samples.
        #expect(worst.difference <= 32, "largest difference \(worst.difference) in: \(worst.text)")
    }

    /// Every 15th plain word of Debian's American English word list (about 5,000), ten to a line:
    /// the glide and the terminator rules meet every pairing of word endings and beginnings.
    @Test func wordSweepPhonemeIDsEqualPipers() async throws {
        let list = try String(contentsOfFile: "/usr/share/dict/words", encoding: .utf8)
        let words = list.split(separator: "\n").filter { $0.allSatisfy { $0.isASCII && $0.isLetter } }
        let sample = stride(from: 0, to: words.count, by: 15).map { String(words[$0]) }
        let lines = stride(from: 0, to: sample.count, by: 10).map {
            sample[$0..<min($0 + 10, sample.count)].joined(separator: " ") + "."
        }
        let voice = try await Self.joe()
        let expected = try Self.reference(lines, idsOnly: true)
        var mismatches: [String] = []
        for (line, reference) in zip(lines, expected) where try await voice.phonemeIDs(for: line) != reference.ids {
            mismatches.append(line)
        }
        #expect(sample.count > 4000)
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(lines.count) lines differ:\n\(mismatches.prefix(10).joined(separator: "\n"))")
    }

    static func decodeSamples(_ base64: String) -> [Int16] {
        guard let data = Data(base64Encoded: base64) else { return [] }
        return data.withUnsafeBytes { raw in
            (0..<data.count / 2).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
        }
    }
}
