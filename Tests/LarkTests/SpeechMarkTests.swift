import Espeak
import EspeakEngine
import Foundation
import OnnxGraph
import Phonemizer
import PiperEngine
import SpeechCore
import SpeechMarks
import Testing

/// Word, sentence and viseme timings from both engines, and the whole-request timeline.
@Suite(.serialized) struct SpeechMarkTests {
    static let silent = SynthesisOptions(noiseScale: 0, noiseW: 0)

    static func chunks(_ voice: any SpeechVoice, _ text: String, _ options: SynthesisOptions = silent) async throws -> [AudioChunk] {
        var chunks: [AudioChunk] = []
        for try await chunk in voice.synthesize(text, options: options, admission: Checkout.admission()) { chunks.append(chunk) }
        return chunks
    }

    static func espeak() async throws -> any SpeechVoice { try await Checkout.library.voice("espeak-ng:en-us") }

    static func slice(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    /// Marks of one chunk: inside its audio, in order, words not overlapping.
    static func checkShape(_ chunk: AudioChunk, offset: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let words = chunk.marks.filter { $0.kind == .word }
        for mark in chunk.marks {
            #expect(mark.startSample >= offset && mark.startSample <= mark.endSample && mark.endSample <= chunk.samples.count,
                    "\(mark) outside \(offset)..<\(chunk.samples.count)", sourceLocation: sourceLocation)
        }
        for (before, after) in zip(words, words.dropFirst()) {
            #expect(before.endSample <= after.startSample, "\(before.value) overlaps \(after.value)", sourceLocation: sourceLocation)
        }
    }

    @Test func durationOutputLeavesTheSamplesAsTheyAre() async throws {
        // The same espeak-ng data as the tests' library (espeak-ng holds one per process).
        try await EspeakRuntime.shared.start(dataPath: Checkout.deps)
        let source = PiperVoiceSource(id: "joe", modelPath: Checkout.joeModel)
        let text = "The quick brown fox jumps over the lazy dog. Then it naps."
        for rewrite in [false, true] {
            let timed = try PiperVoice(source: source, rewriteConvolutions: rewrite, timings: true)
            let plain = try PiperVoice(source: source, rewriteConvolutions: rewrite, timings: false)
            #expect(timed.reportsDurations && !plain.reportsDurations)
            let withMarks = try await Self.chunks(timed, text)
            let without = try await Self.chunks(plain, text)
            #expect(withMarks.map(\.samples) == without.map(\.samples), "rewrite \(rewrite): the duration output changed the audio")
            #expect(withMarks.allSatisfy { !$0.marks.isEmpty } && without.allSatisfy { $0.marks.isEmpty })
        }
    }

    /// A text's clauses and every clause's words come from espeak-ng in one turn of its thread:
    /// exactly what the two calls give one after the other.
    @Test func clausesAndWordsInOneTurnAreTheSeparateCalls() async throws {
        try await EspeakRuntime.shared.start(dataPath: Checkout.deps)
        let text = "On 3 May 1984, Dr. Smith paid $12.50 for it; really? Yes, twice. Then home"
        let wordsOf: @Sendable ([EspeakClause]) -> [[String]] = { clauses in
            clauses.map { clause in clause.consumedText.split(separator: " ").map(String.init) }
        }
        let together = try await EspeakRuntime.shared.clausesAndWords(of: text, voice: "en-us", wordsOf: wordsOf)
        let clauses = try await EspeakRuntime.shared.clauses(of: text, voice: "en-us")
        var words: [[String]] = []
        for clauseWords in wordsOf(clauses) {
            words.append(try await EspeakRuntime.shared.phonemesOfWords(clauseWords, voice: "en-us"))
        }
        #expect(clauses.count > 4)
        #expect(together.clauses == clauses)
        #expect(together.wordPhonemes == words)
        #expect(together.wordPhonemes.joined().contains { !$0.isEmpty })
    }

    @Test func durationOutputIsAddedOnceToTheOneCeil() throws {
        let model = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let timed = try #require(try DurationOutput.apply(to: model))
        #expect(timed.count > model.count)
        #expect(try DurationOutput.apply(to: timed) == nil, "a second pass must find the output already there")
    }

    @Test func piperTimingsCoverTheAudioExactlyWithSentenceSilence() async throws {
        let voice = try await PiperParityTests.joe()
        let text = "Good morning, everyone. This is a test of word timings!"
        var options = Self.silent
        options.sentenceSilence = 0.5
        let chunks = try await Self.chunks(voice, text, options)
        try #require(chunks.count == 2)
        var timeline = SpeechMarkTimeline(text: text)
        var before = 0
        var sentenceTimes: [TimedMark] = []
        for (index, chunk) in chunks.enumerated() {
            let offset = index == 0 ? 0 : 11025
            Self.checkShape(chunk, offset: offset)
            // The sentence spans exactly the model's audio: its frames times the hop length.
            let sentence = try #require(chunk.marks.first { $0.kind == .sentence })
            #expect(sentence.startSample == offset && sentence.endSample == chunk.samples.count)
            #expect((chunk.samples.count - offset) % 256 == 0)
            let words = chunk.marks.filter { $0.kind == .word }
            // The last word ends before the audio does; what follows it is the trailing pause.
            let last = try #require(words.last)
            #expect(last.endSample < chunk.samples.count && chunk.samples.count - last.endSample < 22050 / 2)
            let visemes = chunk.marks.filter { $0.kind == .viseme }
            #expect(visemes.first?.value == "sil" && visemes.first?.startSample == offset && visemes.last?.endSample == chunk.samples.count)
            // Visemes tile the sentence's audio without gaps.
            for (before, after) in zip(visemes, visemes.dropFirst()) { #expect(before.endSample == after.startSample) }
            let timed = timeline.add(chunk)
            let sentenceTime = try #require(timed.first { $0.kind == .sentence })
            #expect(sentenceTime.time == Int((Double(before + offset) / 22.05).rounded()))
            sentenceTimes.append(sentenceTime)
            before += chunk.samples.count
        }
        // The silence between the sentences shows up exactly: 500 ms from one's end to the next's start.
        #expect(abs(sentenceTimes[1].time - sentenceTimes[0].endTime - 500) <= 1)
        #expect(timeline.elapsedMilliseconds == Int((Double(before) / 22.05).rounded()))
        #expect(sentenceTimes[1].endTime == timeline.elapsedMilliseconds)
    }

    @Test func wordMarksSliceTheTextToTheWordIncludingExpandedWords() async throws {
        let voice = try await PiperParityTests.joe()
        let text = "Café au lait costs $42.50 in 1984, naïvely “priced”. Of the people: Dr. Smith."
        let chunks = try await Self.chunks(voice, text)
        let words = chunks.flatMap(\.marks).filter { $0.kind == .word }
        for word in words { #expect(Self.slice(text, word.textRange) == word.value) }
        #expect(words.map(\.value) == TextWords.words(in: text).map(\.text), "\(words.map(\.value))")
        // "$42.50" and "1984" are several spoken words each, one mark each.
        let price = try #require(words.first { $0.value == "$42.50" })
        #expect(price.endSample - price.startSample > 22050 / 2)
        let sentences = chunks.flatMap(\.marks).filter { $0.kind == .sentence }
        #expect(sentences.map { Self.slice(text, $0.textRange) } == [
            "Café au lait costs $42.50 in 1984, naïvely “priced”.", "Of the people: Dr.", "Smith."])
    }

    @Test func espeakMarksMatchEspeaksOwnEvents() async throws {
        let voice = try #require(try await Self.espeak() as? EspeakVoice)
        let text = "Hello wörld, it costs $42.50 in 1984. Yes, of the people!"
        for sentence in SentenceSegmenter.sentenceRanges(in: text) {
            let (samples, events) = try await EspeakRuntime.shared.synthesizeWithEvents(
                sentence.text, voice: voice.voiceFile, rate: nil, pitch: nil)
            let marks = EspeakMarks.marks(sentence: sentence.text, bytes: sentence.bytes, events: events, sampleCount: samples.count, offset: 100)
            let chunk = AudioChunk(samples: Array(repeating: 0, count: 100) + samples, sampleRate: 22050, sentenceIndex: 0, marks: marks)
            Self.checkShape(chunk, offset: 100)
            // espeak-ng's word events in text order (a stale repeat of an earlier one is left out,
            // as the marks leave it out).
            var wordEvents: [Int] = []
            var lastPosition = 0
            for event in events where event.kind == .word && event.textPosition >= lastPosition && event.sample >= (wordEvents.last ?? 0) {
                wordEvents.append(event.sample)
                lastPosition = event.textPosition
            }
            let words = marks.filter { $0.kind == .word }
            // Each word starts at one of espeak-ng's word events (but a word espeak-ng joined to the
            // one before it, "of the", which shares that word's event), and every event is inside a word.
            for (previous, word) in zip([nil] + words.map(Optional.some), words) {
                let shares = previous.map { $0.endSample == word.startSample && !wordEvents.contains($0.endSample - 100) } ?? false
                #expect(wordEvents.contains(word.startSample - 100) || shares, "\(word.value) starts at no word event: \(wordEvents)")
                #expect(Self.slice(text, word.textRange) == word.value)
            }
            for sample in wordEvents {
                #expect(words.contains { $0.startSample - 100 <= sample && sample < $0.endSample - 100 }, "event at \(sample): \(words)")
            }
            let mark = try #require(marks.first { $0.kind == .sentence })
            #expect(mark.startSample == 100 && mark.endSample == chunk.samples.count)
            #expect(Self.slice(text, mark.textRange) == sentence.text)
        }
        // Through the voice, with sentence silence: the words of the text, each once.
        var options = Self.silent
        options.sentenceSilence = 0.25
        let chunks = try await Self.chunks(voice, text, options)
        try #require(chunks.count == 2)
        #expect(chunks[1].marks.first { $0.kind == .sentence }?.startSample == 5512)
        let values = chunks.flatMap(\.marks).filter { $0.kind == .word }.map(\.value)
        #expect(values == ["Hello", "wörld", "it", "costs", "$42.50", "in", "1984", "Yes", "of", "the", "people"], "\(values)")
    }

    @Test func alignmentSplitsJoinedWordsAndSurvivesOddSpacing() {
        func points(_ text: String) -> [String] { text.unicodeScalars.map(String.init) }
        // espeak-ng says "of the" as one word: its sounds go back to their own words.
        let joined = WordAlignment.owners(of: points("ʌvðə pˈiːpəl."), words: [points("ʌv"), points("ðə"), points("pˈiːpəl")])
        #expect(joined == [0, 0, 1, 1, nil] + Array(repeating: 2, count: 7) + [nil])
        // "1984" is three spoken words of one text word.
        let expanded = WordAlignment.owners(of: points("ɪn nˈaɪntiːn ˈeɪɾi fˈoːɹ"), words: [points("ɪn"), points("nˈaɪntiːn ˈeɪɾi fˈoːɹ")])
        #expect(expanded.prefix(2) == [0, 0] && expanded.dropFirst(3).allSatisfy { $0 == 1 || $0 == nil } && expanded.last == 1)
        #expect(WordAlignment.owners(of: points("  a  "), words: [points("a")]) == [nil, nil, 0, nil, nil])
        #expect(WordAlignment.owners(of: points(" a"), words: []) == [nil, nil])
    }

    @Test func timelineCountsEveryChunkAndResampling() {
        let mark = SpeechMark(kind: .word, startSample: 11025, endSample: 22050, textRange: 7..<13, value: "wörld")
        let chunk = AudioChunk(samples: Array(repeating: 0, count: 22050), sampleRate: 22050, sentenceIndex: 0, marks: [mark])
        var timeline = SpeechMarkTimeline(text: "héllo wörld", outputRate: 16000)
        let first = timeline.add(chunk)
        #expect(first == [TimedMark(kind: .word, time: 500, endTime: 1000, bytes: 7..<13, characters: 6..<11, value: "wörld")])
        let second = timeline.add(chunk)
        #expect(second.first?.time == 1500 && second.first?.endTime == 2000)
        #expect(timeline.elapsedMilliseconds == 2000)
    }

    @Test func pollyLinesAndCaptions() {
        let text = "Hello there, world. Bye."
        let marks = [
            TimedMark(kind: .sentence, time: 0, endTime: 1200, bytes: 0..<19, characters: 0..<19, value: "Hello there, world."),
            TimedMark(kind: .word, time: 10, endTime: 400, bytes: 0..<5, characters: 0..<5, value: "Hello"),
            TimedMark(kind: .viseme, time: 10, endTime: 60, bytes: 0..<0, characters: 0..<0, value: "k"),
            TimedMark(kind: .word, time: 400, endTime: 800, bytes: 6..<11, characters: 6..<11, value: "there"),
            TimedMark(kind: .word, time: 800, endTime: 1150, bytes: 13..<18, characters: 13..<18, value: "world"),
            TimedMark(kind: .sentence, time: 1500, endTime: 2000, bytes: 20..<24, characters: 20..<24, value: "Bye."),
            TimedMark(kind: .word, time: 1500, endTime: 1900, bytes: 20..<23, characters: 20..<23, value: "Bye"),
        ]
        #expect(MarkFormats.pollyLine(marks[1]) == #"{"time":10,"type":"word","start":0,"end":5,"value":"Hello"}"#)
        #expect(MarkFormats.pollyLine(marks[2]) == #"{"time":10,"type":"viseme","value":"k"}"#)
        #expect(MarkFormats.jsonString("a\"b\\\n\u{1}") == #""a\"b\\\n\u0001""#)
        let captions = Captions(marks: marks, text: text, maxCharacters: 12)
        #expect(captions.cues.map(\.text) == ["Hello there,", "world.", "Bye."])
        #expect(captions.render(.srt).hasPrefix("1\n00:00:00,010 --> 00:00:00,800\nHello there,\n\n2\n"))
        let sentences = Captions(marks: marks, text: text, maxCharacters: 0)
        #expect(sentences.cues.map(\.text) == ["Hello there, world.", "Bye."])
        #expect(sentences.render(.vtt).hasPrefix("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nHello there, world.\n\n"))
    }
}
