import AudioEncoding
import Foundation
@testable import PiperEngine
import Phonemizer
import SpeechCore
import Testing

@Suite struct PiperEngineTests {
    /// The one place that decides whether a run gives ONNX Runtime's arena back: the server's
    /// `--memory`, the run's size, and what the work asked for (a job: after every run).
    @Test func arenaShrinksForLargeRunsAndForWorkThatAsks() {
        #expect(!PiperVoice.shrinksArena(after: .arena, large: false, requested: nil), "interactive runs keep the arena warm")
        #expect(!PiperVoice.shrinksArena(after: .arena, large: false, requested: .keep))
        #expect(PiperVoice.shrinksArena(after: .arena, large: true, requested: nil))
        #expect(PiperVoice.shrinksArena(after: .arena, large: false, requested: .shrinkAfterRun), "a job's runs give it back")
        #expect(PiperVoice.shrinksArena(after: .shrinkAfterRun, large: false, requested: .keep), "--memory shrink is for every run")
        #expect(!PiperVoice.shrinksArena(after: .noArena, large: true, requested: .shrinkAfterRun), "no arena, nothing to shrink")
    }

    @Test func idsFollowPipersLayout() {
        let mapper = PhonemeIDMapper(map: ["^": [1], "_": [0], "$": [2], "a": [14], "b": [15]])
        let (ids, unknown) = mapper.ids(for: ["a", "?", "b"])
        #expect(ids == [1, 0, 14, 0, 15, 0, 2])
        #expect(unknown == ["?"])
    }

    @Test func pcmConversionNormalizesAndTruncatesLikePiper() {
        #expect(PiperPCM.int16Samples(from: [0.5, -0.25, 0.1]) == [32767, -16383, 6553])
        #expect(PiperPCM.int16Samples(from: [0, 1e-9]) == [0, 0])
    }

    @Test func configErrorsNameTheField() throws {
        #expect(throws: SpeechError.invalidVoiceConfig(path: "x", reason: "missing or invalid audio.sample_rate")) {
            try PiperVoiceConfig.parse(["phoneme_id_map": ["^": [1]]], path: "x")
        }
        #expect(throws: SpeechError.invalidVoiceConfig(path: "x", reason: "phoneme_type 'pinyin' is not supported (supported: espeak, text)")) {
            try PiperVoiceConfig.parse([
                "audio": ["sample_rate": 16000], "phoneme_type": "pinyin",
                "phoneme_id_map": ["^": [1], "_": [0], "$": [2]],
            ], path: "x")
        }
    }

    @Test func configDefaultsComeFromInference() throws {
        let config = try PiperVoiceConfig.load(path: Checkout.joeModel + ".json")
        #expect(config.sampleRate == 22050)
        #expect(config.defaults == SynthesisDefaults(lengthScale: 1, noiseScale: 0.667, noiseW: 0.8))
        #expect(config.espeakVoice == "en-us")
    }

    @Test func wavHeaderDescribesMono16Bit() {
        let header = WAV.header(sampleRate: 22050, sampleCount: 100)
        #expect(header.count == 44)
        #expect(Array(header[0..<4]) == Array("RIFF".utf8))
        #expect(header[40] == 200 && header[41] == 0)  // data size: 100 samples × 2 bytes
        let streaming = WAV.header(sampleRate: 22050, sampleCount: nil)
        #expect(Array(streaming[40..<44]) == [0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test func sentencesStreamOneAtATime() async throws {
        let voice = try await Checkout.library.voice(Checkout.joeModel)
        var indices: [Int] = []
        for try await chunk in voice.synthesize("One sentence. Another one! And a third?", options: SynthesisOptions(), admission: Checkout.admission()) {
            indices.append(chunk.sentenceIndex)
            #expect(chunk.sampleRate == 22050)
            #expect(!chunk.samples.isEmpty)
        }
        #expect(indices == [0, 1, 2])
    }

    /// Text with no sentence punctuation is one sentence; past the limit it runs in pieces, which
    /// stay sentence 0 and get no sentence silence between them.
    @Test func overlongSentenceRunsInPieces() async throws {
        let voice = try #require(try await Checkout.library.voice(Checkout.joeModel) as? PiperVoice)
        let text = Array(repeating: "many people watch from far away", count: 12).joined(separator: " ")
        let runs = try await voice.modelRuns(for: text)
        #expect(runs.count >= 2)
        #expect(runs.allSatisfy { $0.sentence == 0 && $0.phonemes.count <= LongSentenceSplitter.defaultLimit })
        #expect(runs.map(\.continuesSentence) == [false] + Array(repeating: true, count: runs.count - 1))
        #expect(Array(runs.map(\.phonemes).joined()) == (try await voice.phonemizer.phonemize(text)).first)
        // Slower speech gets shorter pieces: the audio per run, not the phonemes, takes the memory.
        let slow = try await voice.modelRuns(for: text, lengthScale: 4)
        #expect(slow.count > runs.count)
        #expect(slow.allSatisfy { $0.phonemes.count <= LongSentenceSplitter.defaultLimit / 4 })

        // Without noise the durations are fixed, so a second of silence would show in the length.
        func chunks(silence: Double?) async throws -> [AudioChunk] {
            var chunks: [AudioChunk] = []
            let options = SynthesisOptions(noiseScale: 0, noiseW: 0, sentenceSilence: silence)
            for try await chunk in voice.synthesize(text, options: options, admission: Checkout.admission()) { chunks.append(chunk) }
            return chunks
        }
        let withSilence = try await chunks(silence: 1)
        let without = try await chunks(silence: nil)
        #expect(withSilence.map(\.sentenceIndex) == Array(repeating: 0, count: runs.count))
        #expect(withSilence.map(\.samples.count) == without.map(\.samples.count))
    }

    @Test func cancellingStopsSynthesisEarly() async throws {
        let voice = try await Checkout.library.voice(Checkout.joeModel)
        let text = Array(repeating: "This is a fairly long sentence that takes a while to say.", count: 30).joined(separator: " ")
        let start = ContinuousClock.now
        let firstChunk = ClockBox()
        let task = Task {
            var chunks = 0
            for try await _ in voice.synthesize(text, options: SynthesisOptions(), admission: Checkout.admission()) {
                chunks += 1
                if chunks == 1 {
                    firstChunk.instant = ContinuousClock.now
                    withUnsafeCurrentTask { $0?.cancel() }
                }
            }
            return chunks
        }
        let chunks = try? await task.value
        let end = ContinuousClock.now
        #expect((chunks ?? 1) < 5)
        // Relative to one sentence's time, so a busy machine (other suites run alongside) does
        // not fail it: the whole text would take about 30 sentences' time.
        let oneSentence = (firstChunk.instant ?? end) - start
        #expect(end - (firstChunk.instant ?? end) < oneSentence * 3 + .milliseconds(500),
                "stopping took \(end - (firstChunk.instant ?? end)); one sentence took \(oneSentence)")
    }

    @Test func espeakVoiceRejectsEmptyText() async throws {
        let voice = try await Checkout.library.voice("espeak-ng:de")
        await #expect(throws: SpeechError.emptyText) {
            _ = try await voice.synthesizeAll(" \n ", options: SynthesisOptions(), admission: Checkout.admission())
        }
    }
}

final class ClockBox: @unchecked Sendable {
    var instant: ContinuousClock.Instant?
}
