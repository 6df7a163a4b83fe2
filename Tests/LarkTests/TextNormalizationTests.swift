import Foundation
import Phonemizer
import SpeechCore
import SpeechService
import Testing
import TextNormalization

/// English normalization: the corpus row by row, the offset map, sentence boundaries (by
/// Lark's segmenter and by espeak-ng's own clause splitting), raw phoneme blocks, the
/// per-language hook and `say-as`.
@Suite struct TextNormalizationTests {
    struct Row: CustomStringConvertible {
        var kind: String
        var input: String
        var expected: String
        var note: String
        var description: String { "\(kind): \(input)" }
    }

    static let corpus: [Row] = {
        let path = Checkout.resources + "/normalization-corpus.tsv"
        let lines = (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").dropFirst() ?? []
        return lines.map { line in
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Row(kind: columns[0], input: columns[1], expected: columns[2], note: columns.count > 3 ? columns[3] : "")
        }
    }()

    static let english = EnglishNormalizer(dateOrder: .monthFirst)

    @Test func corpusHasFifteenRowsPerClass() {
        let counts = Dictionary(grouping: Self.corpus, by: \.kind).mapValues(\.count)
        let classes = [
            "money", "decimal", "fraction", "ordinal", "year", "date", "time", "phone", "measure", "percent", "range", "roman",
            "abbreviation", "symbol", "version", "url", "unchanged",
        ]
        for kind in classes {
            #expect(counts[kind, default: 0] >= 15, "\(kind) has \(counts[kind, default: 0]) rows")
        }
        #expect(Set(counts.keys) == Set(classes))
    }

    @Test(arguments: corpus)
    func corpusRowReadsAsExpected(_ row: Row) {
        let normalized = Self.english.normalize(row.input)
        #expect(normalized.text == row.expected, "\(row.note)")
        // Normalizing twice gives the same words as once.
        #expect(Self.english.normalize(normalized.text).text == normalized.text)
        #expect(Self.english.normalize(row.expected).text == row.expected)
        if row.kind == "unchanged" { #expect(row.input == row.expected) }
    }

    @Test func britishEnglishReadsDatesDayFirst() throws {
        let british = try #require(TextNormalizer.for(languageCode: "en_GB"))
        #expect(british.normalize("Born on 3/4/2025 here.").text == "Born on the third of April, twenty twenty-five here.")
        #expect(british.normalize("Due 2025-03-03.").text == "Due the third of March, twenty twenty-five.")
        #expect(british.normalize("Held 4.3.2025 there.").text == "Held the fourth of March, twenty twenty-five there.")
        let american = try #require(TextNormalizer.for(languageCode: "en_US"))
        #expect(american.normalize("Born on 3/4/2025 here.").text == "Born on March fourth, twenty twenty-five here.")
        // The rest of English reads numbers the same way.
        #expect(british.normalize("It costs £3.20.").text == american.normalize("It costs £3.20.").text)
    }

    @Test func onlyEnglishVoicesAreNormalized() {
        for code in ["en_US", "en_GB", "en-us", "en", "en_AU", "EN_in"] {
            #expect(TextNormalizer.for(languageCode: code) != nil, "\(code)")
        }
        for code in ["de_DE", "fr", "es_MX", "zh", "eng", "espeak-ng:en"] {
            #expect(TextNormalizer.for(languageCode: code) == nil, "\(code)")
        }
    }

    // MARK: - The offset map

    /// The UTF-8 byte range of the first `piece` in `text`.
    static func bytes(of piece: String, in text: String) -> Range<Int> {
        let range = text.range(of: piece)!
        let start = text.utf8.distance(from: text.startIndex, to: range.lowerBound)
        return start..<start + piece.utf8.count
    }

    @Test func everyWordOfARewrittenSpanMapsToTheWholeSpan() {
        let input = "Pay “$42.50” to Zoë at 7:45 a.m. today."
        let normalized = Self.english.normalize(input)
        #expect(normalized.text == "Pay “forty-two dollars and fifty cents” to Zoë at seven forty-five AM today.")
        let money = Self.bytes(of: "$42.50", in: input)
        for word in ["forty-two", "dollars", "and", "fifty", "cents", "forty-two dollars and fifty cents"] {
            #expect(normalized.originalRange(of: Self.bytes(of: word, in: normalized.text)) == money, "\(word)")
        }
        // Copied text maps to itself, shifted by what the rewrites before it changed.
        for word in ["Pay", "Zoë", "today", "“", "”"] {
            #expect(normalized.originalRange(of: Self.bytes(of: word, in: normalized.text)) == Self.bytes(of: word, in: input), "\(word)")
        }
        #expect(normalized.originalRange(of: Self.bytes(of: "AM", in: normalized.text)) == Self.bytes(of: "7:45 a.m.", in: input))
        // A range across copied and rewritten text covers both originals.
        let across = Self.bytes(of: "to Zoë at seven", in: normalized.text)
        #expect(normalized.originalRange(of: across) == Self.bytes(of: "to Zoë at 7:45 a.m.", in: input))
        // Empty ranges stay empty.
        #expect(normalized.originalRange(of: 0..<0) == 0..<0)
        let end = normalized.text.utf8.count
        #expect(normalized.originalRange(of: end..<end) == input.utf8.count..<input.utf8.count)
    }

    /// A voice that speaks nothing, for checking what `VoiceLibrary.prepare` hands a voice and
    /// how marks come back: one chunk whose word marks cover each word of the text it was given.
    struct MarkingVoice: SpeechVoice {
        var info = VoiceInfo(id: "marking", engine: .espeakNG, name: "marking", languageCode: "en_US", sampleRate: 16_000)
        var defaults = SynthesisDefaults()

        func prepare(_ text: String, options: SynthesisOptions) throws(SpeechError) -> PreparedSynthesis {
            PreparedSynthesis(voice: info, text: text, options: options) { _ in OneChunk(text: text) }
        }

        final class OneChunk: AudioChunkProducer, @unchecked Sendable {
            // `next` is never called concurrently (the producer contract), so `done` needs no lock.
            let text: String
            var done = false
            init(text: String) { self.text = text }

            func next() async throws -> AudioChunk? {
                guard !done else { return nil }
                done = true
                var marks: [SpeechMark] = []
                var offset = 0
                for word in text.split(separator: " ", omittingEmptySubsequences: false) {
                    let length = word.utf8.count
                    if length > 0 {
                        marks.append(SpeechMark(kind: .word, startSample: marks.count * 10, endSample: marks.count * 10 + 10,
                                                textRange: offset..<offset + length, value: String(word)))
                    }
                    offset += length + 1
                }
                marks.append(SpeechMark(kind: .sentence, startSample: 0, endSample: marks.count * 10, textRange: 0..<text.utf8.count, value: text))
                return AudioChunk(samples: [], sampleRate: 16_000, sentenceIndex: 0, phonemes: text, marks: marks)
            }
        }
    }

    @Test func marksOfANormalizedSynthesisPointIntoTheCallersText() async throws {
        let input = "It costs $42.50 on Elm St. today."
        let prepared = try await Checkout.library.prepare(SpeechInput(input), voice: MarkingVoice(), options: .init())
        #expect(prepared.text == input)
        var chunks: [AudioChunk] = []
        for try await chunk in prepared.start(on: Checkout.admission()) { chunks.append(chunk) }
        let chunk = try #require(chunks.first)
        #expect(chunk.phonemes == "It costs forty-two dollars and fifty cents on Elm Street today.")
        let words = chunk.marks.filter { $0.kind == .word }
        // "$42.50" is read as five words: one mark spans them, from the first's start to the last's end.
        #expect(words.map(\.value) == ["It", "costs", "$42.50", "on", "Elm", "St.", "today."])
        #expect(words[2].startSample == 20 && words[2].endSample == 70)
        for mark in chunk.marks {
            let bytes = Array(input.utf8)[mark.textRange]
            #expect(String(decoding: bytes, as: UTF8.self) == mark.value)
        }
        #expect(chunk.marks.last?.textRange == 0..<input.utf8.count)

        // Switched off, the voice gets the text as written.
        let plain = try await Checkout.library.prepare(SpeechInput(input, normalize: false), voice: MarkingVoice(), options: .init())
        for try await chunk in plain.start(on: Checkout.admission()) { #expect(chunk.phonemes == input) }
        // A language without a normalizer passes through.
        var german = MarkingVoice()
        german.info.languageCode = "de_DE"
        let passed = try await Checkout.library.prepare(SpeechInput(input), voice: german, options: .init())
        for try await chunk in passed.start(on: Checkout.admission()) { #expect(chunk.phonemes == input) }
    }

    // MARK: - Sentences and raw blocks

    static let sentenceCases: [(text: String, sentences: Int)] = [
        ("I live on Elm St. It is quiet.", 2),
        ("Dr. Smith lives on Sunset Dr. near the park.", 1),
        ("Buy pens, paper, etc. Then go home.", 2),
        ("Bring pens, paper, etc. and more.", 1),
        ("We met at 7:45 a.m. Then we left.", 2),
        ("We met at 7:45 a.m. and left at 10:00.", 1),
        ("Mr. and Mrs. Smith met Prof. Lee on Jan. 15 at St. Mary's.", 1),
        ("It costs $3.50. That is 2.5 kg of it.", 2),
        ("Read it, e.g. the 3rd chapter. Now.", 2),
        ("It was Smith vs. Jones in Apt. 4 at No. 5 Main St.", 1),
    ]

    @Test func sentenceBoundariesStayWhereTheyWere() async throws {
        let phonemizer = PiperPhonemizer(type: .espeak, espeakVoice: "en-us")
        try await Checkout.library.startEspeak()
        for (text, count) in Self.sentenceCases {
            let normalized = Self.english.normalize(text).text
            #expect(SentenceSegmenter.sentences(in: normalized).count == count, "\(normalized)")
            let espeakSentences = try await phonemizer.phonemize(normalized)
            #expect(espeakSentences.count == count, "espeak-ng: \(normalized)")
            // The text ends the way it ended.
            #expect(normalized.last == text.last)
        }
    }

    @Test func rawPhonemeBlocksAreNeverTouched() {
        let input = "Say [[ 42 $5 St. ]] and 42, [[ Dr. 7:45 ]] then [[ open 3/4"
        let normalized = Self.english.normalize(input)
        #expect(normalized.text == "Say [[ 42 $5 St. ]] and forty-two, [[ Dr. 7:45 ]] then [[ open three quarters")
        #expect(normalized.originalRange(of: Self.bytes(of: "[[ Dr. 7:45 ]]", in: normalized.text)) == Self.bytes(of: "[[ Dr. 7:45 ]]", in: input))
    }

    @Test func longTextsAreQuick() {
        let paragraph = "On March 3rd, 2025 at 7:45 a.m., Dr. Smith paid $42.50 for 2.5 kg of apples on Elm St. and called (555) 123-4567. "
        let text = String(repeating: paragraph, count: 500)
        let start = ContinuousClock.now
        let normalized = Self.english.normalize(text)
        let elapsed = ContinuousClock.now - start
        #expect(normalized.spans.count == 500 * 7)
        // Generous: about 55,000 characters; a slow rule would take minutes.
        #expect(elapsed < .seconds(20), "\(elapsed)")
    }

    // MARK: - say-as

    @Test(arguments: [
        ("ABC", "characters", nil, "eigh B C"),
        ("a1-", "spell-out", nil, "eigh one dash"),
        ("1234", "cardinal", nil, "one thousand two hundred thirty-four"),
        ("-3.5", "number", nil, "minus three point five"),
        ("21", "ordinal", nil, "twenty-first"),
        ("3rd", "ordinal", nil, "third"),
        ("2049", "digits", nil, "two zero four nine"),
        ("3/4", "fraction", nil, "three quarters"),
        ("1 1/2", "fraction", nil, "one and a half"),
        ("3/4/2025", "date", "mdy", "March fourth, twenty twenty-five"),
        ("3/4/2025", "date", "dmy", "the third of April, twenty twenty-five"),
        ("2025-03-04", "date", "ymd", "March fourth, twenty twenty-five"),
        ("12/25", "date", "md", "December twenty-fifth"),
        ("25/12", "date", "dm", "the twenty-fifth of December"),
        ("2025/03", "date", "ym", "March twenty twenty-five"),
        ("03/2025", "date", "my", "March twenty twenty-five"),
        ("1999", "date", "y", "nineteen ninety-nine"),
        ("March 3rd, 2025", "date", nil, "March third, twenty twenty-five"),
        ("7:45pm", "time", nil, "seven forty-five PM"),
        ("(555) 123-4567", "telephone", nil, "five five five, one two three, four five six seven"),
        ("$42.50", "currency", nil, "forty-two dollars and fifty cents"),
        ("2.5 kg", "unit", nil, "two point five kilograms"),
        ("darn", "expletive", nil, "beep"),
    ] as [(String, String, String?, String)])
    func sayAsReadsTheWayItIsTold(text: String, interpretAs: String, format: String?, expected: String) {
        #expect(Self.english.sayAs(text, interpretAs: interpretAs, format: format, detail: nil) == expected)
    }

    @Test func sayAsAnswersNilWhenTheTextCannotBeReadThatWay() {
        #expect(Self.english.sayAs("hello", interpretAs: "cardinal", format: nil, detail: nil) == nil)
        #expect(Self.english.sayAs("12 apples", interpretAs: "number", format: nil, detail: nil) == nil)
        #expect(Self.english.sayAs("13/13/2025", interpretAs: "date", format: "mdy", detail: nil) == nil)
        #expect(Self.english.sayAs("3/4", interpretAs: "date", format: "mdy", detail: nil) == nil)
        #expect(Self.english.sayAs("noon", interpretAs: "time", format: nil, detail: nil) == nil)
        #expect(Self.english.sayAs("call me", interpretAs: "telephone", format: nil, detail: nil) == nil)
        #expect(Self.english.sayAs("42", interpretAs: "no-such-type", format: nil, detail: nil) == nil)
        #expect(Self.english.sayAs("   ", interpretAs: "characters", format: nil, detail: nil) == nil)
    }
}
