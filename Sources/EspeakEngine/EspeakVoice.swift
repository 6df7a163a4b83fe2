import Espeak
import SpeechCore
import Synchronization

/// One of espeak-ng's own voices as a Lark voice, named `espeak-ng:<language>` (`espeak-ng:de`).
///
/// espeak-ng synthesizes a whole text in one call; Lark splits the text into sentences first
/// (`SentenceSegmenter`) so that each sentence can be sent as soon as it is ready.
public struct EspeakVoice: SpeechVoice {
    public static let idPrefix = "espeak-ng:"

    public let info: VoiceInfo
    public let defaults = SynthesisDefaults(lengthScale: 1, noiseScale: 0, noiseW: 0)
    /// The name espeak-ng selects the voice by (its first language code).
    public let espeakName: String
    /// Other names the voice answers to: its other language codes and its file name (`fr` for `roa/fr`).
    public let aliases: [String]
    private let runtime: EspeakRuntime

    init(entry: EspeakVoiceEntry, espeakName: String, sampleRate: Int, runtime: EspeakRuntime) {
        self.espeakName = espeakName
        self.runtime = runtime
        let fileName = entry.identifier.split(separator: "/").last.map(String.init)
        aliases = (entry.languages + [fileName].compactMap { $0 }).map { $0.lowercased() }.filter { $0 != espeakName }
        info = VoiceInfo(
            id: Self.idPrefix + espeakName, engine: .espeakNG,
            name: entry.name.replacingUnderscores(), languageCode: espeakName,
            languageName: entry.name.replacingUnderscores(), quality: nil, sampleRate: sampleRate,
            gender: entry.gender == 1 ? "male" : entry.gender == 2 ? "female" : nil, source: entry.identifier)
    }

    /// Every voice espeak-ng's data has, keyed by its first language code.
    public static func all(runtime: EspeakRuntime = .shared) async throws(SpeechError) -> [EspeakVoice] {
        let entries = try await runtime.voices()
        let rate = await runtime.outputSampleRate
        var seen = Set<String>()
        var voices: [EspeakVoice] = []
        for entry in entries {
            guard let language = entry.languages.first, seen.insert(language).inserted else { continue }
            voices.append(EspeakVoice(entry: entry, espeakName: language, sampleRate: rate, runtime: runtime))
        }
        return voices.sorted { $0.espeakName < $1.espeakName }
    }

    public func check(_ options: SynthesisOptions) throws(SpeechError) {
        try options.validate()
        if let speaker = options.speaker, speaker != .id(0) {
            throw .unknownSpeaker(speaker.description, available: ["0"])
        }
    }

    /// One sentence is synthesized each time the consumer asks for the next chunk, in its task:
    /// espeak-ng speaks hundreds of times faster than real time, so a push stream would run ahead
    /// of any encoder or client, and a long text's audio would wait in the stream's buffer.
    /// Cancelling the consumer stops after the sentence in progress.
    public func synthesize(_ text: String, options: SynthesisOptions) -> AsyncThrowingStream<AudioChunk, any Error> {
        let queue = SentenceQueue()
        // Length scale maps onto espeak's rate: 2.0 speaks at half the normal 175 wpm.
        let rate = options.rate ?? options.lengthScale.map { Int((175 / Double($0)).rounded()) }.map { min(450, max(80, $0)) }
        let silence = Int(Double(info.sampleRate) * (options.sentenceSilence ?? 0))
        return AsyncThrowingStream { () async throws -> AudioChunk? in
            try Task.checkCancellation()
            let next = try queue.next { () throws(SpeechError) -> [String] in
                try check(options)
                let sentences = SentenceSegmenter.sentences(in: text)
                guard !sentences.isEmpty else { throw SpeechError.emptyText }
                return sentences
            }
            guard let (index, sentence, count) = next else { return nil }
            var samples = try await runtime.synthesize(sentence, voice: espeakName, rate: rate, pitch: options.pitch)
            if index > 0, silence > 0 {
                samples.insert(contentsOf: repeatElement(0, count: silence), at: 0)
            }
            return AudioChunk(samples: samples, sampleRate: info.sampleRate, sentenceIndex: index, sentenceCount: count)
        }
    }
}

/// The sentences of one `synthesize` call and the next one to speak (split on the first request).
private final class SentenceQueue: Sendable {
    private let state = Mutex<(sentences: [String]?, next: Int)>((nil, 0))

    /// The next sentence, its index and the number of sentences; nil after the last.
    func next(split: () throws(SpeechError) -> [String]) throws(SpeechError) -> (index: Int, sentence: String, count: Int)? {
        try state.withLock { state throws(SpeechError) -> (index: Int, sentence: String, count: Int)? in
            let sentences: [String]
            if let known = state.sentences {
                sentences = known
            } else {
                sentences = try split()
                state.sentences = sentences
            }
            guard state.next < sentences.count else { return nil }
            defer { state.next += 1 }
            return (state.next, sentences[state.next], sentences.count)
        }
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? " " : $0 })
    }
}
