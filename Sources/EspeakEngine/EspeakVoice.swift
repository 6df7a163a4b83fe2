import Espeak
import SpeechCore
import Synchronization

/// One of espeak-ng's own voices as a Lark voice, named `espeak-ng:<language>` (`espeak-ng:de`).
///
/// espeak-ng synthesizes a whole text in one call; Lark splits the text into sentences first
/// (`SentenceSegmenter`) so that each sentence can be sent as soon as it is ready.
/// `EspeakRuntime` runs espeak-ng on its own thread, never on Swift's cooperative pool.
public struct EspeakVoice: SpeechVoice {
    public static let idPrefix = "espeak-ng:"

    public let info: VoiceInfo
    public let defaults = SynthesisDefaults(lengthScale: 1, noiseScale: 0, noiseW: 0)
    /// The voice's first language code, which its id is made of (`en-gb`).
    public let espeakName: String
    /// The voice file espeak-ng loads it from (`gmw/en`). Synthesis selects the voice by this:
    /// espeak-ng's `SetVoiceByName` finds a voice by its name or file, not by a language code,
    /// so `en-gb` (the file `gmw/en`, named "English (Great Britain)") would not be found.
    public let voiceFile: String
    /// Other names the voice answers to: its other language codes and its file name (`fr` for `roa/fr`).
    public let aliases: [String]
    private let runtime: EspeakRuntime

    init(entry: EspeakVoiceEntry, espeakName: String, sampleRate: Int, runtime: EspeakRuntime) {
        self.espeakName = espeakName
        voiceFile = entry.identifier
        self.runtime = runtime
        let fileName = entry.identifier.split(separator: "/").last.map(String.init)
        aliases = (entry.languages + [fileName].compactMap { $0 }).map { $0.lowercased() }.filter { $0 != espeakName }
        info = VoiceInfo(
            id: Self.idPrefix + espeakName, engine: .espeakNG,
            name: entry.name.replacingUnderscores(), languageCode: espeakName,
            languageName: entry.name.replacingUnderscores(), quality: nil, sampleRate: sampleRate,
            gender: entry.gender == 1 ? "male" : entry.gender == 2 ? "female" : nil, source: entry.identifier)
    }

    /// Every voice espeak-ng's data has and can load (a voice whose dictionary the data lacks
    /// is left out: it could be listed but never speak), keyed by its first language code.
    public static func all(runtime: EspeakRuntime = .shared) async throws(SpeechError) -> [EspeakVoice] {
        let entries = try await runtime.loadableVoices()
        let rate = await runtime.outputSampleRate
        var seen = Set<String>()
        var voices: [EspeakVoice] = []
        for entry in entries {
            guard let language = entry.languages.first, seen.insert(language).inserted else { continue }
            voices.append(EspeakVoice(entry: entry, espeakName: language, sampleRate: rate, runtime: runtime))
        }
        return voices.sorted { $0.espeakName < $1.espeakName }
    }

    public func prepare(_ text: String, options: SynthesisOptions) throws(SpeechError) -> PreparedSynthesis {
        try options.validate()
        if let speaker = options.speaker, speaker != .id(0) {
            throw .unknownSpeaker(speaker.description, available: ["0"])
        }
        let sentences = SentenceSegmenter.sentenceRanges(in: text)
        guard !sentences.isEmpty else { throw .emptyText }
        // Length scale maps onto espeak's rate: 2.0 speaks at half the normal 175 wpm.
        let rate = options.rate ?? options.lengthScale.map { Int((175 / Double($0)).rounded()) }.map { min(450, max(80, $0)) }
        let settings = Settings(
            voice: voiceFile, rate: rate, pitch: options.pitch, sampleRate: info.sampleRate,
            silenceSamples: Int(Double(info.sampleRate) * (options.sentenceSilence ?? 0)))
        let runtime = runtime
        return PreparedSynthesis(voice: info, text: text, options: options) { admission in
            Synthesis(sentences: sentences, settings: settings, runtime: runtime, admission: admission)
        }
    }

    struct Settings: Sendable {
        /// The voice file espeak-ng selects (`gmw/en`).
        var voice: String
        var rate: Int?
        var pitch: Int?
        var sampleRate: Int
        var silenceSamples: Int
    }

    /// One text's synthesis, a sentence per call, each in a place the admission gives (espeak-ng
    /// itself runs on its runtime's own thread).
    actor Synthesis: AudioChunkProducer {
        let sentences: [(text: String, bytes: Range<Int>)]
        let settings: Settings
        let runtime: EspeakRuntime
        let admission: any SynthesisAdmission
        private var position = 0

        init(sentences: [(text: String, bytes: Range<Int>)], settings: Settings, runtime: EspeakRuntime, admission: any SynthesisAdmission) {
            self.sentences = sentences
            self.settings = settings
            self.runtime = runtime
            self.admission = admission
        }

        func next() async throws -> AudioChunk? {
            guard position < sentences.count else { return nil }
            let index = position
            position += 1
            let (sentence, settings, runtime) = (sentences[index], settings, runtime)
            let (spoken, events) = try await admission.withPlace { _ in
                try Task.checkCancellation()
                return try await runtime.synthesizeWithEvents(sentence.text, voice: settings.voice, rate: settings.rate, pitch: settings.pitch)
            }
            var samples = spoken
            let offset = index > 0 ? settings.silenceSamples : 0
            if offset > 0 {
                samples.insert(contentsOf: repeatElement(0, count: offset), at: 0)
            }
            let marks = EspeakMarks.marks(
                sentence: sentence.text, bytes: sentence.bytes, events: events, sampleCount: spoken.count, offset: offset)
            return AudioChunk(
                samples: samples, sampleRate: settings.sampleRate, sentenceIndex: index, sentenceCount: sentences.count, marks: marks)
        }
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? " " : $0 })
    }
}
