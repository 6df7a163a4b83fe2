import CEspeakNG
import Glibc
import SpeechCore

/// The one owner of libespeak-ng.
///
/// espeak-ng keeps its state (data path, current voice, synthesis parameters, output buffers)
/// in process-wide globals and is not thread-safe, so the whole process shares one runtime and
/// every call goes through this actor. That is the single global Lark keeps, because the C
/// library forces it. Calls are short (a clause or a sentence), so they do not hold the actor long;
/// they run on the actor's own thread (`DedicatedThreadExecutor`), not on the cooperative pool.
public actor EspeakRuntime {
    public static let shared = EspeakRuntime()

    private static let executor = DedicatedThreadExecutor(name: "espeak-ng")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { Self.executor.asUnownedSerialExecutor() }

    /// The directory holding `espeak-ng-data` (or the data directory itself) once started.
    public private(set) var dataPath: String?
    private var currentVoice: String?
    private var sampleRate: Int = 22050
    private var cachedVoices: [EspeakVoiceEntry]?

    private init() {}

    /// Loads espeak-ng's data. Idempotent for the same path; a second, different path is an error
    /// because espeak-ng can hold only one.
    public func start(dataPath path: String?) throws(SpeechError) {
        if let dataPath {
            guard path == nil || path == dataPath else {
                throw .engineUnavailable("espeak-ng is already using data from \(dataPath); it cannot switch to \(path!) in the same process")
            }
            return
        }
        let resolved = path ?? ""
        if let path {
            espeak_ng_InitializePath(path)
        } else {
            espeak_ng_InitializePath(nil)
        }
        var context: espeak_ng_ERROR_CONTEXT?
        let status = espeak_ng_Initialize(&context)
        espeak_ng_ClearErrorContext(&context)
        guard status == ENS_OK else {
            throw .engineUnavailable("espeak-ng could not load its data from '\(resolved.isEmpty ? "the default location" : resolved)': \(Self.message(for: status))")
        }
        let outputStatus = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nil)
        guard outputStatus == ENS_OK else {
            throw .engineUnavailable("espeak-ng output could not start: \(Self.message(for: outputStatus))")
        }
        // Once more through the older entry point, which alone can turn on phoneme events (the
        // ng API's switch is newer than the library here); the data loaded fine just above.
        _ = espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, path,
            Int32(espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA | espeakINITIALIZE_DONT_EXIT))
        sampleRate = Int(espeak_ng_GetSampleRate())
        espeak_SetSynthCallback(espeakSynthCallback)
        dataPath = resolved
    }

    /// espeak-ng's native output rate (22050 Hz).
    public var outputSampleRate: Int { sampleRate }

    // MARK: - Voices

    /// Every voice espeak-ng's data has.
    public func voices() throws(SpeechError) -> [EspeakVoiceEntry] {
        try requireStarted()
        if let cachedVoices { return cachedVoices }
        var entries: [EspeakVoiceEntry] = []
        guard let list = espeak_ListVoices(nil) else { return [] }
        var index = 0
        while let voicePointer = list[index] {
            let voice = voicePointer.pointee
            index += 1
            guard let identifier = voice.identifier.map(String.init(cString:)) else { continue }
            let name = voice.name.map(String.init(cString:)) ?? identifier
            entries.append(EspeakVoiceEntry(
                identifier: identifier, name: name,
                languages: Self.parseLanguages(voice.languages), gender: Int(voice.gender)))
        }
        cachedVoices = entries
        return entries
    }

    /// The `languages` field is a run of (priority byte, NUL-terminated name) pairs ending in a zero byte.
    private static func parseLanguages(_ pointer: UnsafePointer<CChar>?) -> [String] {
        guard var cursor = pointer else { return [] }
        var result: [String] = []
        while cursor.pointee != 0 {
            cursor += 1  // the priority byte
            let name = String(cString: cursor)
            if name.isEmpty { break }
            result.append(name)
            cursor += name.utf8.count + 1
        }
        return result
    }

    /// The voices of `voices()` that espeak-ng can load (see `canLoad`), in one call.
    public func loadableVoices() throws(SpeechError) -> [EspeakVoiceEntry] {
        try voices().filter { canLoad(voiceFile: $0.identifier) }
    }

    /// Whether espeak-ng can load the voice in this voice file (`gmw/en`, as `voices()` lists
    /// it): `espeak_ListVoices` lists every voice file, also those whose dictionary the data
    /// lacks (Piper's data has no `fo_dict`, say), and selecting one of those fails. Read from
    /// the voice file rather than by selecting each voice, which would load every dictionary and
    /// have espeak-ng print its complaints on standard error. As espeak-ng reads it: the
    /// dictionary is the `dictionary` line's, else the first language's code up to its first `-`.
    public func canLoad(voiceFile identifier: String) -> Bool {
        guard (try? requireStarted()) != nil else { return false }
        var dataPointer: UnsafePointer<CChar>?
        _ = espeak_Info(&dataPointer)
        guard let dataPointer else { return true }
        let data = String(cString: dataPointer)
        guard let contents = ["lang", "voices"].lazy.compactMap({ Self.readFile("\(data)/\($0)/\(identifier)") }).first
        else { return true }
        var dictionary: String?
        var language: String?
        for line in contents.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: \.isWhitespace)
            guard words.count >= 2 else { continue }
            if words[0] == "dictionary" { dictionary = String(words[1]) }
            if words[0] == "language", language == nil, words[1] != "variant" {
                language = words[1].split(separator: "-").first.map(String.init)
            }
        }
        guard let name = dictionary ?? language else { return true }
        return access("\(data)/\(name)_dict", F_OK) == 0
    }

    /// A small text file's contents (a voice file is a few hundred bytes), or nil.
    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func select(voice: String) throws(SpeechError) {
        try requireStarted()
        if currentVoice == voice { return }
        let status = espeak_ng_SetVoiceByName(voice)
        guard status == ENS_OK else {
            currentVoice = nil
            // espeak-ng's own names: the engines above build their voice ids from them.
            let known = (try? voices().compactMap(\.languages.first)) ?? []
            throw .unknownVoice(voice, available: known)
        }
        currentVoice = voice
    }

    // MARK: - Phonemes

    /// Translates `text` into phonemes, one clause per entry, as espeak-ng's `TextToPhonemes` splits it.
    ///
    /// Each clause comes in IPA and in espeak-ng's own phoneme names, both with
    /// `EspeakClause.phonemeSeparator` between the phonemes of a word and spaces between words,
    /// so the two line up phoneme by phoneme (the IPA leaves some phonemes, such as the glide
    /// `;`, empty).
    public func clauses(of text: String, voice: String) throws(SpeechError) -> [EspeakClause] {
        try select(voice: voice)
        let separator = Int32(EspeakClause.phonemeSeparator.value) << 8
        let ipa = Self.textToPhonemes(text, mode: Int32(espeakPHONEMES_IPA) | separator)
        let names = Self.textToPhonemes(text, mode: separator)
        return ipa.enumerated().map { index, clause in
            EspeakClause(
                phonemes: clause.phonemes,
                mnemonics: index < names.count && names.count == ipa.count ? names[index].phonemes : nil,
                consumedText: clause.consumed, isLast: clause.isLast, consumedBytes: clause.bytes)
        }
    }

    /// `clauses(of:voice:)`, then each clause's words (`wordsOf(clauses)`, one list per clause)
    /// translated alone as `phonemesOfWords` does, in one turn of espeak-ng's thread: a text's
    /// phonemes with word timings cost one trip there, not one per clause (each trip waits for
    /// a thread to resume the caller, which on a busy machine is the larger part of the cost).
    public func clausesAndWords(
        of text: String, voice: String, wordsOf: @Sendable ([EspeakClause]) -> [[String]]
    ) throws(SpeechError) -> (clauses: [EspeakClause], wordPhonemes: [[String]]) {
        let clauses = try clauses(of: text, voice: voice)
        let words = try wordsOf(clauses).map { words throws(SpeechError) in try phonemesOfWords(words, voice: voice) }
        return (clauses, words)
    }

    /// Each of `words` translated alone, in IPA without separators (spaces between the words
    /// espeak-ng makes of it, "1984" → three): what word timings align with a clause's phonemes.
    public func phonemesOfWords(_ words: [String], voice: String) throws(SpeechError) -> [String] {
        try select(voice: voice)
        return words.map { word in
            Self.textToPhonemes(word, mode: Int32(espeakPHONEMES_IPA)).map(\.phonemes).joined(separator: " ")
        }
    }

    private static func textToPhonemes(_ text: String, mode: Int32) -> [(phonemes: String, consumed: String, isLast: Bool, bytes: Range<Int>)] {
        var clauses: [(phonemes: String, consumed: String, isLast: Bool, bytes: Range<Int>)] = []
        var utf8 = Array(text.utf8CString)
        utf8.withUnsafeMutableBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            let end = base + (buffer.count - 1)  // the terminating NUL
            var cursor: UnsafeRawPointer? = base
            // espeak-ng sets the cursor to NULL once it has said everything; it can still hold a
            // number back after the cursor reaches the end, so the end of the text is not the end.
            // The cap guards against a library that never does (each call consumes or flushes).
            var calls = 0
            while let start = cursor, calls <= buffer.count + 8 {
                calls += 1
                guard let phonemes = espeak_TextToPhonemes(&cursor, espeakCHARS_UTF8, mode) else { break }
                let stop = min(cursor ?? end, end)
                let consumed = String(decoding: UnsafeRawBufferPointer(start: start, count: max(0, stop - start)), as: UTF8.self)
                clauses.append((String(cString: phonemes), consumed, cursor == nil, (start - base)..<max(start - base, stop - base)))
            }
        }
        return clauses
    }

    // MARK: - Synthesis

    /// Synthesizes one piece of text with one of espeak-ng's own voices; returns 16-bit PCM at `outputSampleRate`.
    public func synthesize(_ text: String, voice: String, rate: Int?, pitch: Int?) throws(SpeechError) -> [Int16] {
        try synthesizeWithEvents(text, voice: voice, rate: rate, pitch: pitch).samples
    }

    /// Synthesizes like `synthesize`, with espeak-ng's events: where each word, phoneme and
    /// the end fall in the samples.
    public func synthesizeWithEvents(
        _ text: String, voice: String, rate: Int?, pitch: Int?
    ) throws(SpeechError) -> (samples: [Int16], events: [EspeakEvent]) {
        try select(voice: voice)
        espeak_ng_SetParameter(espeakRATE, Int32(rate ?? Int(espeakRATE_NORMAL)), 0)
        espeak_ng_SetParameter(espeakPITCH, Int32(pitch ?? 50), 0)
        let sink = SampleSink()
        let bytes = Array(text.utf8CString)
        let status = bytes.withUnsafeBufferPointer { buffer in
            withExtendedLifetime(sink) {
                espeak_ng_Synthesize(
                    buffer.baseAddress, buffer.count, 0, POS_CHARACTER, 0,
                    UInt32(espeakCHARS_UTF8), nil, Unmanaged.passUnretained(sink).toOpaque())
            }
        }
        guard status == ENS_OK else {
            throw .synthesisFailed("espeak-ng: \(Self.message(for: status))")
        }
        return (sink.samples, sink.events)
    }

    private func requireStarted() throws(SpeechError) {
        if dataPath == nil { try start(dataPath: nil) }
    }

    static func message(for status: espeak_ng_STATUS) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        espeak_ng_GetStatusCodeMessage(status, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Collects the samples of one synthesis call. Only touched inside `EspeakRuntime.synthesize`,
/// synchronously, on the actor's thread.
final class SampleSink {
    var samples: [Int16] = []
    var events: [EspeakEvent] = []
}

/// One of espeak-ng's synthesis events, copied out of the callback.
public struct EspeakEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case word, sentence, phoneme, end
    }

    public var kind: Kind
    /// 1-based position in the text, in Unicode code points, of what the event is about.
    public var textPosition: Int
    /// The sample the event happens at, from the start of the call's audio.
    public var sample: Int
    /// The phoneme in IPA for a phoneme event (empty for a pause).
    public var phoneme: String
}

/// espeak-ng's callback has no context argument of its own; each event carries the `user_data`
/// pointer passed to `espeak_ng_Synthesize`, which is the `SampleSink` of the call in progress.
private func espeakSynthCallback(
    _ wave: UnsafeMutablePointer<Int16>?, _ count: Int32, _ events: UnsafeMutablePointer<espeak_EVENT>?
) -> Int32 {
    guard let userData = events?.pointee.user_data else { return 0 }
    let sink = Unmanaged<SampleSink>.fromOpaque(userData).takeUnretainedValue()
    var event = events
    while let current = event?.pointee, current.type != espeakEVENT_LIST_TERMINATED {
        let kind: EspeakEvent.Kind?
        switch current.type {
        case espeakEVENT_WORD: kind = .word
        case espeakEVENT_SENTENCE: kind = .sentence
        case espeakEVENT_PHONEME: kind = .phoneme
        case espeakEVENT_END: kind = .end
        default: kind = nil
        }
        if let kind {
            var phoneme = ""
            if kind == .phoneme {
                // Up to 8 bytes, zero-terminated unless all 8 are used.
                phoneme = withUnsafeBytes(of: current.id.string) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
            sink.events.append(EspeakEvent(kind: kind, textPosition: Int(current.text_position), sample: Int(current.sample), phoneme: phoneme))
        }
        event = event.map { $0 + 1 }
    }
    if let wave, count > 0 {
        sink.samples.append(contentsOf: UnsafeBufferPointer(start: wave, count: Int(count)))
    }
    return 0  // 0 = continue synthesis
}

/// One clause as espeak-ng's `TextToPhonemes` returned it.
public struct EspeakClause: Sendable, Equatable {
    /// Placed between the phonemes of a word (U+2016, never part of espeak's IPA output).
    public static let phonemeSeparator: Unicode.Scalar = "\u{2016}"

    /// IPA with `phonemeSeparator` between phonemes and spaces between words.
    public var phonemes: String
    /// The same phonemes by espeak-ng's own names (`;` is the palatal glide), aligned with `phonemes`;
    /// nil if the two passes did not split the text alike.
    public var mnemonics: String?
    /// The input text this call consumed, including espeak-ng's one-character look-ahead.
    public var consumedText: String
    /// Whether this clause reached the end of the text (no look-ahead was consumed).
    public var isLast: Bool
    /// Where `consumedText` is, in UTF-8 bytes of the text given.
    public var consumedBytes: Range<Int>

    public init(phonemes: String, mnemonics: String?, consumedText: String, isLast: Bool, consumedBytes: Range<Int>? = nil) {
        self.phonemes = phonemes
        self.mnemonics = mnemonics
        self.consumedText = consumedText
        self.isLast = isLast
        self.consumedBytes = consumedBytes ?? 0..<consumedText.utf8.count
    }
}

/// One of espeak-ng's voices, as `espeak_ListVoices` lists it.
public struct EspeakVoiceEntry: Sendable, Equatable {
    /// The file within `espeak-ng-data/voices` (`gmw/en-US`).
    public var identifier: String
    /// The voice's name (`English_(America)`).
    public var name: String
    /// Language codes in priority order (`en-us`, `en`).
    public var languages: [String]
    /// 0 unknown, 1 male, 2 female.
    public var gender: Int
}
