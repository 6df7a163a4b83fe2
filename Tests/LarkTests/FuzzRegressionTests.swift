import Foundation
import SpeechCore
import Testing
import VoiceCatalog

/// Inputs the fuzz targets (Fuzz/Targets) stopped on, kept as tests. `Fuzz/run.sh` writes new
/// ones to `.build-fuzz/crashes/`.
@Suite struct FuzzRegressionTests {
    static func voice(_ key: String) -> CatalogVoice {
        CatalogVoice(key: key, name: key, language: .init(code: "en_US"), quality: "medium", files: [:])
    }

    /// fuzz-catalog: a key ending in `.onnx` could not be found by its own key (the suffix was
    /// dropped before looking it up).
    @Test func catalogKeyEndingInOnnxIsFoundByItsKey() {
        let catalog = Catalog(voices: ["en_US-joe-m.onnx": Self.voice("en_US-joe-m.onnx"), "en_US-amy-low": Self.voice("en_US-amy-low")])
        #expect(catalog.voice(named: "en_US-joe-m.onnx")?.key == "en_US-joe-m.onnx")
        // A model's file name still names its voice.
        #expect(catalog.voice(named: "en_US-amy-low.onnx")?.key == "en_US-amy-low")
    }

    /// fuzz-sentences: a mark clustered onto a space (" \u{61A}") is white space to the splitter
    /// and trimmed with it; control characters and replacement characters stay in the sentence.
    @Test func sentencesArePiecesOfTheTextInOrder() {
        let inputs = [
            String(repeating: "\u{FFFD}", count: 6) + "\" \u{61A}\u{0B}-\0\0\u{FFFD}\u{FFFD}\0",
            "2Hi.\u{02} How are yo9.\n n are yo9.\n\u{591}\u{FFFD}\u{7F}F\u{FFFD}\u{FFFD}H..",
        ]
        for text in inputs {
            let sentences = SentenceSegmenter.sentences(in: text)
            #expect(!sentences.isEmpty)
            var rest = Substring(text)
            for sentence in sentences {
                #expect(sentence.contains { !$0.isWhitespace })
                guard let range = rest.range(of: sentence) else {
                    Issue.record("\(sentence.debugDescription) is not in what is left of \(text.debugDescription)")
                    break
                }
                rest = rest[range.upperBound...]
            }
        }
        #expect(SentenceSegmenter.sentences(in: inputs[0]) == [String(repeating: "\u{FFFD}", count: 6) + "\"", "-\0\0\u{FFFD}\u{FFFD}\0"])
    }
}
