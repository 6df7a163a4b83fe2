import AudioEncoding
import Foundation
import SSML
import SpeechCore
import TextNormalization

/// SSML's synthesis: the document's pieces, each spoken by its voice through that voice's own
/// `prepare` (the one synthesis path), joined into one stream at the request's voice's rate.
///
/// Consecutive pieces with the same settings form one run, prepared as one text (so a sentence
/// with an `<emphasis>` or a `<sub>` inside stays one sentence); a `<break>`, `<mark>`, `<s>`,
/// `<p>` or a change of voice, rate, volume or pitch starts a new run. Breaks are chunks of
/// silence of exactly their length; volume is a gain on the run's samples; audio of a voice at
/// another rate is resampled. Each run's chunks are passed on as they come, so SSML streams
/// sentence by sentence like text. The marks a voice puts on its chunks are moved into the
/// document's UTF-8 offsets, and each `<mark>` becomes an `.ssml` mark on the chunk that follows it.
extension VoiceLibrary {
    func prepareSSML(_ input: SpeechInput, voice main: any SpeechVoice, options: SynthesisOptions) async throws -> PreparedSynthesis {
        let document = try SSMLParser.parse(input.text)
        try options.validate()
        var planner = SSMLPlanner(main: main, options: options, normalize: input.normalize)
        // Each voice choice once per document (a choice by language lists the voices).
        var chosen: [String: any SpeechVoice] = [:]
        for item in document.items {
            switch item {
            case .speech(let speech):
                let key = "\(speech.settings.voiceName ?? "")\u{0}\(speech.settings.language ?? "")"
                let voice: any SpeechVoice
                if let known = chosen[key] {
                    voice = known
                } else {
                    voice = try await ssmlVoice(for: speech, main: main, document: input.text)
                    chosen[key] = voice
                }
                try await planner.add(speech, voice: voice)
            case .pause(let seconds, _):
                try planner.endRun()
                planner.steps.append(.silence(samples: Int((seconds * Double(main.info.sampleRate)).rounded())))
                planner.pausedSinceRun = true
            case .mark(let name, let source):
                try planner.endRun()
                planner.steps.append(.mark(name: name, source: source))
            case .sentenceBoundary:
                try planner.endRun()
                planner.boundarySinceRun = true
            }
        }
        try planner.endRun()
        guard planner.steps.contains(where: \.makesAudio) else { throw SpeechError.emptyText }
        let (steps, rate) = (planner.steps, main.info.sampleRate)
        return PreparedSynthesis(voice: main.info, text: input.text, options: options) { admission in
            SSMLProducer(steps: steps, sampleRate: rate, admission: admission)
        }
    }

    /// The voice a piece asks for: by name; else by language: a Piper voice of exactly that
    /// language and region (the request's first), else the request's voice if it speaks the
    /// language in any region, else another Piper voice of the language, else espeak-ng's voice
    /// of that language and region, else of the language; without either, the request's voice.
    private func ssmlVoice(for speech: SSMLSpeech, main: any SpeechVoice, document: String) async throws -> any SpeechVoice {
        if let name = speech.settings.voiceName { return try await voice(name) }
        guard let language = speech.settings.language else { return main }
        let wanted = LanguageTag(language)
        if LanguageTag(main.info.languageCode) == wanted { return main }
        let candidates = try await voices()
        let piper = candidates.filter { $0.engine == .piper }, espeak = candidates.filter { $0.engine == .espeakNG }
        if let exact = piper.first(where: { LanguageTag($0.languageCode) == wanted }) { return try await voice(exact.id) }
        if LanguageTag(main.info.languageCode).primary == wanted.primary { return main }
        let choice = piper.first { LanguageTag($0.languageCode).primary == wanted.primary }
            ?? espeak.first { LanguageTag($0.languageCode) == wanted }
            ?? espeak.first { LanguageTag($0.languageCode).primary == wanted.primary }
        if let choice { return try await voice(choice.id) }
        let position = SSMLParser.lineAndColumn(ofByte: speech.source.lowerBound, in: document)
        throw SpeechError.invalidSSML(
            message: "no voice here speaks '\(language)' (see GET /voices for the languages there are)", line: position.line,
            column: position.column)
    }
}

/// A language code compared loosely: `en-US`, `en_us` and `EN-us` are the same.
private struct LanguageTag: Equatable {
    let code: String
    init(_ raw: String) { code = raw.lowercased().replacingOccurrences(of: "_", with: "-") }
    var primary: Substring { code.split(separator: "-").first ?? Substring(code) }
}

/// One step of an SSML synthesis.
enum SSMLStep: Sendable {
    case run(SSMLRun)
    case silence(samples: Int)
    /// `<say-as interpret-as="expletive">`: a tone instead of the word.
    case bleep(samples: Int, gain: Float)
    case mark(name: String, source: Int)

    var makesAudio: Bool {
        switch self {
        case .run, .silence, .bleep: return true
        case .mark: return false
        }
    }
}

/// A run of text one voice speaks with one set of settings, and where its text came from.
struct SSMLRun: Sendable {
    let prepared: PreparedSynthesis
    /// Where each part of the run's text (UTF-8 offsets) came from in the document.
    let segments: [SSMLSegment]
    /// Linear gain on the samples (0 for `silent`).
    let gain: Float
    /// Samples of silence before the run (the request's sentence silence after an `<s>` or `<p>`).
    let leadingSilence: Int

    /// A range of the run's text as a range of the document (see `[SSMLSegment].documentRange`).
    func documentRange(of range: Range<Int>) -> Range<Int> {
        segments.documentRange(of: range)
    }
}

struct SSMLSegment: Sendable {
    /// UTF-8 offsets in the run's text.
    let text: Range<Int>
    /// UTF-8 offsets in the document.
    let source: Range<Int>
    let literal: Bool
}

extension [SSMLSegment] {
    /// A range of a run's text as a range of the document: offset for offset where the text
    /// is the document's own bytes, else the whole of the elements it came from. An empty
    /// range (a position) maps to the position where it falls.
    func documentRange(of range: Range<Int>) -> Range<Int> {
        let touched: [SSMLSegment]
        if range.isEmpty {
            let holder = first { $0.text.contains(range.lowerBound) } ?? first { $0.text.upperBound == range.lowerBound }
            touched = holder.map { [$0] } ?? []
        } else {
            touched = filter { $0.text.overlaps(range) }
        }
        guard let first = touched.first, let last = touched.last else {
            return self.last.map { $0.source.upperBound ..< $0.source.upperBound } ?? 0 ..< 0
        }
        if touched.count == 1, first.literal {
            let lower = first.source.lowerBound + Swift.max(range.lowerBound - first.text.lowerBound, 0)
            let upper = first.source.lowerBound + Swift.min(range.upperBound - first.text.lowerBound, first.text.count)
            return lower ..< Swift.max(lower, upper)
        }
        return first.source.lowerBound ..< Swift.max(first.source.lowerBound, last.source.upperBound)
    }
}

/// Gathers a document's pieces into runs and steps.
private struct SSMLPlanner {
    let main: any SpeechVoice
    let options: SynthesisOptions
    /// Whether text is normalized for the voices whose language has a normalizer, as plain text is.
    let normalize: Bool
    var steps: [SSMLStep] = []
    var boundarySinceRun = false
    var pausedSinceRun = false
    private var hadRun = false
    /// The run being gathered.
    private var voice: (any SpeechVoice)?
    private var settings: SSMLSettings?
    private var text = ""
    private var segments: [SSMLSegment] = []

    init(main: any SpeechVoice, options: SynthesisOptions, normalize: Bool) {
        self.main = main
        self.options = options
        self.normalize = normalize
    }

    mutating func add(_ speech: SSMLSpeech, voice pieceVoice: any SpeechVoice) async throws {
        if let current = voice, current.info.id != pieceVoice.info.id || settings != speech.settings { try endRun() }
        let spoken: String
        var literal = speech.literal
        switch speech.content {
        case .text(let written):
            spoken = written
        case .substitute(let alias):
            spoken = alias
        case .phonemes(let ipa, let written):
            // Piper voices take IPA directly (Piper's raw-phoneme blocks); espeak-ng's own voices
            // read phonemes in espeak-ng's notation, not IPA, so they speak the element's text.
            spoken = pieceVoice.info.engine == .piper ? "[[ \(ipa) ]]" : written
        case .sayAs(let written, let kind, let format, let detail):
            if kind == .expletive {
                try endRun()
                let seconds = min(1.5, max(0.3, 0.08 * Double(written.count)))
                steps.append(.bleep(samples: Int(seconds * Double(main.info.sampleRate)), gain: Self.gain(speech.settings.volumeDecibels)))
                return
            }
            spoken = Self.sayAs(written, interpretAs: kind, format: format, detail: detail, language: pieceVoice.info.languageCode)
            literal = literal && spoken == written
        }
        voice = pieceVoice
        settings = speech.settings
        let start = text.utf8.count
        text += spoken
        segments.append(SSMLSegment(text: start ..< text.utf8.count, source: speech.source, literal: literal))
    }

    /// Prepares the run gathered so far (blank runs are dropped) and starts a new one.
    mutating func endRun() throws {
        defer {
            voice = nil
            settings = nil
            text = ""
            segments = []
        }
        guard let voice, let settings, !text.trimmingWhitespace().isEmpty else { return }
        var runOptions = options
        if voice.info.id != main.info.id { runOptions.speaker = nil }
        let lengthScale = Double(options.lengthScale ?? voice.defaults.lengthScale) / settings.speed
        runOptions.lengthScale = Float(min(5, max(0.05, lengthScale)))
        if let pitch = settings.pitch { runOptions.pitch = pitch }
        // The run is normalized as a plain text would be (its marks come back in the run's text).
        let prepared: PreparedSynthesis
        if normalize, let normalizer = TextNormalizer.for(languageCode: voice.info.languageCode) {
            prepared = try NormalizedSynthesis.prepare(text, normalizer: normalizer, voice: voice, options: runOptions)
        } else {
            prepared = try voice.prepare(text, options: runOptions)
        }
        let silence = hadRun && boundarySinceRun && !pausedSinceRun ? Int((options.sentenceSilence ?? 0) * Double(main.info.sampleRate)) : 0
        steps.append(.run(SSMLRun(prepared: prepared, segments: segments, gain: Self.gain(settings.volumeDecibels), leadingSilence: silence)))
        hadRun = true
        boundarySinceRun = false
        pausedSinceRun = false
    }

    /// `<say-as>`'s words, from the normalizer of the voice's language; a text it cannot read
    /// that way, or a language without a normalizer, is spoken as written.
    static func sayAs(_ written: String, interpretAs kind: SayAsKind, format: String?, detail: String?, language: String) -> String {
        guard let english = TextNormalizer.for(languageCode: language) as? EnglishNormalizer else { return written }
        return english.sayAs(written, interpretAs: kind.rawValue, format: format, detail: detail) ?? written
    }

    static func gain(_ decibels: Double) -> Float {
        decibels == -.infinity ? 0 : Float(pow(10, decibels / 20))
    }
}

/// Plays the steps in order: each run's chunks as its voice makes them (resampled, with their
/// gain and marks moved into the document), silences and bleeps as chunks of their own.
/// `@unchecked Sendable`: `AudioChunkProducer.next` is never called again before the previous
/// call returned, so its state is touched by one call at a time.
private final class SSMLProducer: AudioChunkProducer, @unchecked Sendable {
    private let steps: [SSMLStep]
    private let sampleRate: Int
    private let admission: any SynthesisAdmission
    private var position = 0
    private var current: (run: SSMLRun, sentences: SpeechStream.Iterator, first: Bool)?
    /// `<mark>`s met since the last chunk: they go on the next one, at its start.
    private var pendingMarks: [SpeechMark] = []
    /// Sentence numbers already used by earlier runs, and the highest one given so far.
    private var sentenceBase = 0
    private var lastSentence = -1

    init(steps: [SSMLStep], sampleRate: Int, admission: any SynthesisAdmission) {
        self.steps = steps
        self.sampleRate = sampleRate
        self.admission = admission
    }

    func next() async throws -> AudioChunk? {
        while true {
            if let (run, sentences, first) = current.map({ ($0.run, $0.sentences, $0.first) }) {
                if let chunk = try await sentences.next() {
                    current?.first = false
                    return try place(chunk, of: run, first: first)
                }
                current = nil
                sentenceBase = lastSentence + 1
                continue
            }
            guard position < steps.count else {
                guard !pendingMarks.isEmpty else { return nil }
                // Marks after the last sound: an empty chunk carries them.
                return chunk(samples: [])
            }
            let step = steps[position]
            position += 1
            switch step {
            case .run(let run):
                current = (run, run.prepared.start(on: admission).makeAsyncIterator(), true)
            case .silence(let count):
                return chunk(samples: [Int16](repeating: 0, count: count))
            case .bleep(let count, let gain):
                let amplitude = Double(gain) * 0.3 * Double(Int16.max)
                let samples = (0..<count).map { index in
                    Int16((amplitude * sin(2 * Double.pi * 1000 * Double(index) / Double(sampleRate))).rounded())
                }
                return chunk(samples: samples)
            case .mark(let name, let source):
                pendingMarks.append(SpeechMark(kind: .ssml, startSample: 0, endSample: 0, textRange: source ..< source, value: name))
            }
        }
    }

    /// A chunk of this synthesis's own (silence, bleep), with the marks waiting for one.
    private func chunk(samples: [Int16]) -> AudioChunk {
        defer { pendingMarks = [] }
        return AudioChunk(samples: samples, sampleRate: sampleRate, sentenceIndex: max(lastSentence, 0), marks: pendingMarks)
    }

    /// A run's chunk at the request's rate, with the run's gain and leading silence, its marks
    /// in document offsets, and its sentence numbered after the earlier runs' sentences.
    private func place(_ chunk: AudioChunk, of run: SSMLRun, first: Bool) throws -> AudioChunk {
        var samples = try SampleRateConversion.convert(chunk.samples, from: chunk.sampleRate, to: sampleRate)
        if run.gain != 1 {
            for index in samples.indices {
                samples[index] = Int16(clamping: Int((Float(samples[index]) * run.gain).rounded()))
            }
        }
        let lead = first ? run.leadingSilence : 0
        if lead > 0 { samples.insert(contentsOf: repeatElement(0, count: lead), at: 0) }
        let scale = Double(sampleRate) / Double(chunk.sampleRate)
        func move(_ sample: Int) -> Int { lead + Int((Double(sample) * scale).rounded()) }
        let marks = pendingMarks + chunk.marks.map { mark in
            var moved = mark
            moved.startSample = move(mark.startSample)
            moved.endSample = move(mark.endSample)
            moved.textRange = run.documentRange(of: mark.textRange)
            return moved
        }.mergingWordsOfOneSpan()
        pendingMarks = []
        let sentence = sentenceBase + chunk.sentenceIndex
        lastSentence = max(lastSentence, sentence)
        return AudioChunk(samples: samples, sampleRate: sampleRate, sentenceIndex: sentence, phonemes: chunk.phonemes, marks: marks)
    }
}
