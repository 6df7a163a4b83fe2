import AudioEncoding
import Foundation
import Hummingbird
import SpeechCore
import SpeechService

/// Amazon Polly's REST API (`POST /v1/speech`, `GET /v1/voices`, `/v1/synthesisTasks`), as the
/// service model botocore ships describes it: requests and errors translated onto the one
/// synthesis path (`SpeechController`) and the job queue, so an AWS SDK only needs Lark's address
/// as its endpoint. Requests signed with SigV4 are taken as they come (authentication is off).
struct PollyController: Sendable {
    let speech: SpeechController
    let jobs: JobsContext?
    var settings: PollySettings { speech.configuration.polly }

    var routes: [Route] {
        [
            Route(.post, "/v1/speech") { request, context in try await polly(context) { try await synthesize(request) } },
            Route(.get, "/v1/voices") { request, context in try await polly(context) { try await describeVoices(request) } },
            Route(.post, "/v1/synthesisTasks", access: .scope(.jobs)) { request, context in
                try await polly(context) { try await startTask(request) }
            },
            Route(.get, "/v1/synthesisTasks", access: .scope(.jobs)) { request, context in
                try await polly(context) { try await listTasks(request) }
            },
            Route(.get, "/v1/synthesisTasks/:id", access: .scope(.jobs)) { _, context in
                try await polly(context) { try await getTask(context) }
            },
        ]
    }

    private func polly(_ context: LarkRequestContext, _ work: () async throws -> Response) async throws -> Response {
        try await PollyError.translating(context.logger, requestID: UUID().uuidString.lowercased(), work)
    }

    /// Whether a path is one of Polly's (its errors are answered in Polly's shape, even those
    /// raised before a handler runs: keys, rate limits, 405).
    static func owns(_ path: String) -> Bool {
        path == "/v1/speech" || path == "/v1/voices" || path == "/v1/synthesisTasks" || path.hasPrefix("/v1/synthesisTasks/")
    }

    // MARK: - SynthesizeSpeech

    /// The fields `SynthesizeSpeech` and `StartSpeechSynthesisTask` share.
    struct SpeechFields: Decodable {
        var Text: String
        var TextType: String?
        var VoiceId: String
        var OutputFormat: String
        var SampleRate: String?
        var SpeechMarkTypes: [String]?
        var LanguageCode: String?
        /// Accepted; Lark has one engine per voice, whatever is asked.
        var Engine: String?
        /// Accepted and not applied: Lark has no pronunciation lexicons.
        var LexiconNames: [String]?
        // Synthesis tasks only.
        var OutputS3BucketName: String?
        var OutputS3KeyPrefix: String?
        var SnsTopicArn: String?
    }

    /// A request checked as Polly checks it, ready for the synthesis path.
    struct Checked {
        var input: SpeechInput
        var voice: MappedVoice
        var format: AudioFormat
        var sampleRate: Int?
        /// Characters outside SSML tags: what Polly bills and reports.
        var requestCharacters: Int
        /// The speech marks asked for (`OutputFormat` json): the answer is these, not audio.
        var marks: Set<SpeechMark.Kind>?
    }

    private func synthesize(_ request: Request) async throws -> Response {
        let fields = try await Self.decode(request, limit: Self.maxCharacters)
        let checked = try await check(fields, limits: (total: Self.maxCharacters, billed: Self.maxBilledCharacters))
        let headers: HTTPFields = [.amznRequestCharacters: String(checked.requestCharacters)]
        if let kinds = checked.marks {
            return try await speechMarks(checked, kinds: kinds, headers: headers)
        }
        return try await speech.streamed(
            input: checked.input, voiceID: checked.voice.voice,
            options: SynthesisOptions(speaker: checked.voice.speaker.map(SpeakerSelector.init)),
            output: OutputChoice(format: checked.format.rawValue, sampleRate: checked.sampleRate, bitrate: nil),
            route: "/v1/speech", contentType: Self.contentType(checked.format), headers: headers)
    }

    /// Polly's limits for `SynthesizeSpeech`: 6,000 characters in all, 3,000 outside SSML tags.
    static let maxCharacters = 6000
    static let maxBilledCharacters = 3000

    /// Reads a JSON body of at most `limit` characters (AWS SDKs send it with several content
    /// types, so the type is not checked).
    static func decode(_ request: Request, limit: Int) async throws -> SpeechFields {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit * 4 + 64 * 1024)
        } catch {
            throw PollyError("TextLengthExceededException", "the request is larger than \(limit) characters of text allow")
        }
        do {
            return try JSONDecoder().decode(SpeechFields.self, from: Data(buffer.readableBytesView))
        } catch {
            throw PollyError.validation("the body is not the expected JSON: \(describeDecodingError(error))")
        }
    }

    /// Every check Polly makes before synthesizing, with Polly's exception for each.
    func check(_ fields: SpeechFields, limits: (total: Int, billed: Int)) async throws -> Checked {
        let markup: SpeechInput.Markup
        switch fields.TextType ?? "text" {
        case "text": markup = .text
        case "ssml": markup = .ssml
        case let other: throw PollyError.validation("TextType must be text or ssml, got '\(other)'")
        }
        let total = fields.Text.unicodeScalars.count
        let billed = markup == .ssml ? Self.charactersOutsideTags(fields.Text) : total
        guard total <= limits.total, billed <= limits.billed else {
            throw PollyError(
                "TextLengthExceededException",
                markup == .ssml
                    ? "the SSML has \(total) characters, \(billed) of them outside tags; the limits are \(limits.total) and \(limits.billed)"
                    : "the text has \(total) characters, more than the limit of \(limits.billed)")
        }
        if let engine = fields.Engine, !["standard", "neural", "long-form", "generative"].contains(engine) {
            throw PollyError("EngineNotSupportedException", "Engine must be standard, neural, long-form or generative, got '\(engine)'")
        }
        let marks = fields.SpeechMarkTypes ?? []
        for mark in marks where !["sentence", "ssml", "viseme", "word"].contains(mark) {
            throw PollyError.validation("SpeechMarkTypes may hold sentence, ssml, viseme and word, not '\(mark)'")
        }
        var markKinds: Set<SpeechMark.Kind>?
        let format: AudioFormat
        let sampleRate: Int?
        if fields.OutputFormat == "json" {
            guard !marks.isEmpty else {
                throw PollyError.validation("OutputFormat json needs SpeechMarkTypes: one or more of sentence, ssml, viseme, word")
            }
            if marks.contains("ssml"), markup != .ssml {
                throw PollyError("SsmlMarksNotSupportedForTextTypeException", "ssml speech marks need TextType ssml")
            }
            markKinds = Set(marks.compactMap(SpeechMark.Kind.init(rawValue:)))
            // The audio is made (at the voice's rate, unencoded) only to time the marks.
            format = .pcm
            sampleRate = nil
        } else {
            guard marks.isEmpty else {
                throw PollyError(
                    "MarksNotSupportedForFormatException", "SpeechMarkTypes need OutputFormat json, not \(fields.OutputFormat)")
            }
            guard let audioFormat = Self.format(fields.OutputFormat) else {
                throw PollyError.validation(
                    "OutputFormat '\(fields.OutputFormat)' is not supported; choose mp3, ogg_vorbis, ogg_opus, pcm, mulaw, alaw, json "
                        + "or one of Lark's: \(AudioFormat.names.joined(separator: ", "))")
            }
            format = audioFormat
            sampleRate = try Self.sampleRate(fields.SampleRate, outputFormat: fields.OutputFormat, format: format)
        }
        let voice = settings.voices[fields.VoiceId] ?? MappedVoice(voice: fields.VoiceId)
        if let language = fields.LanguageCode {
            let info: VoiceInfo
            do {
                info = try await speech.library.voice(voice.voice).info
            } catch let error as SpeechError {
                throw PollyError.validation(error.clientMessage)
            }
            guard Self.primaryLanguage(language) == Self.primaryLanguage(info.languageCode) else {
                throw PollyError(
                    "LanguageNotSupportedException",
                    "voice \(fields.VoiceId) speaks \(Self.pollyLanguageCode(info.languageCode)), not \(language)")
            }
        }
        let input = SpeechInput(fields.Text, markup: markup, normalize: speech.configuration.normalize)
        return Checked(input: input, voice: voice, format: format, sampleRate: sampleRate, requestCharacters: billed, marks: markKinds)
    }

    /// Polly's format names (`mulaw` and `alaw` are headerless, as Polly's), then Lark's own.
    static func format(_ name: String) -> AudioFormat? {
        switch name {
        case "mulaw": return .mulawRaw
        case "alaw": return .alawRaw
        default: return AudioFormat(name: name)
        }
    }

    static func contentType(_ format: AudioFormat) -> String {
        switch format {
        case .oggOpus: return "audio/ogg"
        case .mulawRaw: return "audio/mulaw"
        case .alawRaw: return "audio/alaw"
        default: return format.contentType
        }
    }

    /// Polly's rates per format (a string, as Polly takes it): pcm 8000 or 16000 (16000 by
    /// default); mp3 and ogg_vorbis 8000 to 24000 (22050); ogg_opus 8000 to 48000 (48000);
    /// mulaw and alaw 8000. Lark's other formats take their own rates.
    static func sampleRate(_ text: String?, outputFormat: String, format: AudioFormat) throws -> Int? {
        let rules: (allowed: [Int], defaultRate: Int)?
        switch outputFormat {
        case "pcm": rules = ([8000, 16000], 16000)
        case "mp3", "ogg_vorbis": rules = ([8000, 16000, 22050, 24000], 22050)
        case "ogg_opus": rules = ([8000, 16000, 24000, 48000], 48000)
        case "mulaw", "alaw": rules = ([8000], 8000)
        default: rules = nil
        }
        guard let text else { return rules?.defaultRate }
        let allowed = rules?.allowed ?? format.allowedSampleRates
        guard let rate = Int(text), allowed.contains(rate) else {
            throw PollyError(
                "InvalidSampleRateException",
                "SampleRate '\(text)' is not available for \(outputFormat); choose one of \(allowed.map(String.init).joined(separator: ", "))")
        }
        return rate
    }

    /// What Polly counts: the characters of an SSML document outside its tags.
    static func charactersOutsideTags(_ ssml: String) -> Int {
        var count = 0
        var inTag = false
        for scalar in ssml.unicodeScalars {
            if scalar == "<" { inTag = true } else if scalar == ">" { inTag = false } else if !inTag { count += 1 }
        }
        return count
    }

    /// `en_US` and `en-us` → `en-US`, Polly's spelling.
    static func pollyLanguageCode(_ code: String) -> String {
        let parts = code.split(whereSeparator: { $0 == "_" || $0 == "-" })
        return parts.enumerated().map { index, part in
            index == 0 ? part.lowercased() : part.count == 2 ? part.uppercased() : String(part)
        }.joined(separator: "-")
    }

    static func primaryLanguage(_ code: String) -> String {
        String(code.split(whereSeparator: { $0 == "_" || $0 == "-" }).first ?? "").lowercased()
    }

    // MARK: - DescribeVoices

    /// One voice in Polly's shape.
    struct Voice: Encodable {
        var Id: String
        var Name: String
        var Gender: String?
        var LanguageCode: String
        var LanguageName: String
        var AdditionalLanguageCodes: [String] = []
        /// Every engine: Lark speaks a voice the same way whichever engine a request names.
        var SupportedEngines = ["standard", "neural", "long-form", "generative"]
    }

    struct VoiceList: Encodable {
        var Voices: [Voice]
        var NextToken: String?
    }

    static let voicesPerPage = 50

    private func describeVoices(_ request: Request) async throws -> Response {
        let query = FormQuery(request.uri.query)
        if let engine = query.get("Engine"), !["standard", "neural", "long-form", "generative"].contains(engine) {
            throw PollyError.validation("Engine must be standard, neural, long-form or generative, got '\(engine)'")
        }
        if let include = query.get("IncludeAdditionalLanguageCodes"), include != "true", include != "false" {
            throw PollyError.validation("IncludeAdditionalLanguageCodes must be true or false, got '\(include)'")
        }
        var voices = try await speech.library.voices().map { info in
            Voice(
                Id: info.id, Name: info.name, Gender: info.gender?.capitalized, LanguageCode: Self.pollyLanguageCode(info.languageCode),
                LanguageName: info.languageName ?? info.languageCode)
        }
        if let language = query.get("LanguageCode") {
            // No Lark voice has additional languages, so IncludeAdditionalLanguageCodes adds none.
            voices = voices.filter { $0.LanguageCode.lowercased() == Self.pollyLanguageCode(language).lowercased() }
        }
        var offset = 0
        if let token = query.get("NextToken") {
            guard let parsed = Self.offset(fromToken: token), parsed <= voices.count else {
                throw PollyError("InvalidNextTokenException", "NextToken '\(token)' is not one this server gave")
            }
            offset = parsed
        }
        let end = min(voices.count, offset + Self.voicesPerPage)
        return try jsonResponse(VoiceList(
            Voices: Array(voices[offset..<end]), NextToken: end < voices.count ? Self.token(forOffset: end) : nil))
    }

    static func token(forOffset offset: Int) -> String {
        Data("voices:\(offset)".utf8).base64EncodedString()
    }

    static func offset(fromToken token: String) -> Int? {
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8), text.hasPrefix("voices:") else { return nil }
        return Int(text.dropFirst(7)).flatMap { $0 >= 0 ? $0 : nil }
    }
}
