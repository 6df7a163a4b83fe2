import AudioEncoding
import Foundation
import Hummingbird
import SpeechCore
import SpeechMarks
import SpeechService

/// The speech routes: Piper's HTTP API (`GET /?text=`, `POST /`, `POST /synthesize`), the Polly
/// HTML5-client API (`GET /voices`, `GET /read`, streamed), Lark's own (`/api/v1/…`) and health.
/// Handlers only translate HTTP to domain calls and back.
struct SpeechController: Sendable {
    let library: VoiceLibrary
    let configuration: ServerConfiguration
    let scheduler: SynthesisScheduler
    let metrics: ServerMetrics

    /// Every route of this controller: registered as listed, and the source of the 405 table.
    var routes: [Route] {
        [
            Route(.get, "/", access: .pageOrSpeech) { request, _ in try await getRoot(request) },
            Route(.post, "/") { request, _ in try await postRoot(request) },
            Route(.post, "/synthesize") { request, context in try await synthesizeJSON(request, context: context) },
            Route(.get, "/voices") { _, _ in try await pollyVoices() },
            Route(.get, "/read") { request, _ in try await read(request) },
            Route(.post, "/api/v1/speech") { request, context in try await nativeSpeech(request, context: context) },
            Route(.get, "/healthz", access: .open) { _, _ in try jsonResponse(HealthDocument(status: "ok")) },
            Route(.get, "/readyz", access: .open) { _, context in try await ready(context: context) },
            Route(.get, "/metrics", access: .scope(.admin)) { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
            },
        ]
    }

    // MARK: - Piper-compatible

    private func getRoot(_ request: Request) async throws -> Response {
        let query = FormQuery(request.uri.query)
        guard let text = query.get("text") else {
            // A browser opening the server's address gets the web page.
            if request.headers[.accept]?.contains("text/html") == true { return WebController.page() }
            throw SpeechError.emptyText
        }
        let options = try options(from: query)
        let input = SpeechInput(
            text, markup: TextType.detected(in: text, flagged: TextType.flag(query.get("ssml"))), normalize: try normalize(from: query))
        let output = try OutputChoice(query: query, formatNames: ["format"], defaultFormat: "wav")
        return try await whileConnected(request) { _ in
            try await wholeFile(input: input, voiceID: query.get("voice"), options: options, output: output, route: "/")
        }
    }

    private func postRoot(_ request: Request) async throws -> Response {
        try await whileConnected(request) { request in
            let text = try await bodyText(request)
            let query = FormQuery(request.uri.query)
            let flagged = TextType.flag(query.get("ssml")) || TextType.isSSML(contentType: request.headers[.contentType])
            return try await wholeFile(
                input: SpeechInput(text, markup: TextType.detected(in: text, flagged: flagged), normalize: try normalize(from: query)),
                voiceID: query.get("voice"), options: try options(from: query),
                output: try OutputChoice(query: query, formatNames: ["format"], defaultFormat: "wav"), route: "/")
        }
    }

    /// Runs a whole-file route's work while watching the connection: a client that goes away
    /// cancels it, and with it the synthesis (a streamed answer notices instead when its write
    /// fails). `work` gets the request with the body it may read. Hummingbird closes such a
    /// connection after the response, and the response says so.
    private func whileConnected(_ request: Request, _ work: (Request) async throws -> Response) async throws -> Response {
        var response = try await request.body.consumeWithCancellationOnInboundClose { body in
            var watched = request
            watched.body = body
            return try await work(watched)
        }
        // Said, so that a keep-alive client opens a new connection instead of finding this one closed.
        response.headers[.connection] = "close"
        return response
    }

    /// Piper 1.8's `POST /synthesize` body and Lark's `POST /api/v1/speech` body: Piper's
    /// fields (`speaker_id`, `noise_w_scale`) and Lark's (`format`, `stream`, …) side by side.
    struct SpeechBody: Decodable {
        var text: String
        var voice: String?
        var speaker: String?
        var speaker_id: Int?
        var length_scale: Float?
        var noise_scale: Float?
        var noise_w_scale: Float?
        var noise_w: Float?
        var sentence_silence: Double?
        var format: String?
        var sample_rate: Int?
        var bitrate: Int?
        var stream: Bool?
        var normalize: RequestSwitch?
        /// `text` or `ssml` (Lark's routes; Piper's also tell SSML by its `<speak`).
        var text_type: String?
        /// Piper's `/synthesize`: the text is SSML.
        var ssml: Bool?
        /// Which marks to send with the audio (`SpeechController+Marks`).
        var marks: [String]?
        /// Characters per caption cue, for `format` `vtt` or `srt`.
        var caption_length: Int?

        var options: SynthesisOptions {
            SynthesisOptions(
                speaker: speaker.map(SpeakerSelector.init) ?? speaker_id.map(SpeakerSelector.id), lengthScale: length_scale,
                noiseScale: noise_scale, noiseW: noise_w_scale ?? noise_w, sentenceSilence: sentence_silence)
        }

        var output: OutputChoice {
            OutputChoice(format: format ?? "wav", sampleRate: sample_rate, bitrate: bitrate, captionLength: caption_length)
        }
    }

    private func synthesizeJSON(_ request: Request, context: LarkRequestContext) async throws -> Response {
        try await whileConnected(request) { request in
            let body = try await decodeJSONBody(SpeechBody.self, request, textLimit: configuration.maxTextCharacters)
            return try await wholeFile(
                input: try input(body, detect: true, flagged: TextType.flag(FormQuery(request.uri.query).get("ssml"))),
                voiceID: body.voice, options: body.options, output: body.output, route: "/synthesize")
        }
    }

    // MARK: - Polly example

    /// One voice as Polly's `DescribeVoices` lists it, plus Lark's fields.
    struct PollyVoice: Encodable {
        var Id: String
        var Name: String
        var LanguageCode: String
        var LanguageName: String
        var SupportedEngines = ["standard"]
        var Engine: String
        var SampleRate: Int
        var Speakers: [String]
        var SpeakerCount: Int
        var Gender: String?
        var Quality: String?
        /// The voice's own settings, for clients (the web page) to start from.
        var LengthScale: Double?
        var NoiseScale: Double?
        var NoiseW: Double?

        init(_ voice: VoiceInfo) {
            Id = voice.id
            Name = voice.name
            LanguageCode = voice.languageCode.replacingOccurrences(of: "_", with: "-")
            LanguageName = voice.languageName ?? voice.languageCode
            Engine = voice.engine.rawValue
            SampleRate = voice.sampleRate
            Speakers = voice.speakers
            SpeakerCount = voice.speakerCount
            Gender = voice.gender?.capitalized
            Quality = voice.quality
            LengthScale = voice.defaults.map { SpeechController.decimal($0.lengthScale) }
            NoiseScale = voice.defaults.map { SpeechController.decimal($0.noiseScale) }
            NoiseW = voice.defaults.map { SpeechController.decimal($0.noiseW) }
        }
    }

    private func pollyVoices() async throws -> Response {
        try jsonResponse(try await library.voices().map(PollyVoice.init))
    }

    /// A Float as the decimal its config file wrote (0.667, not 0.66699999570846558).
    static func decimal(_ value: Float) -> Double {
        Double(value.description) ?? Double(value)
    }

    /// `GET /read?text&voiceId&outputFormat`: audio sent sentence by sentence as it is made.
    private func read(_ request: Request) async throws -> Response {
        let query = FormQuery(request.uri.query)
        let output = try OutputChoice(query: query, formatNames: ["outputFormat", "format"], defaultFormat: "pcm")
        let text = query.get("text") ?? ""
        return try await streamed(
            input: SpeechInput(text, markup: TextType.detected(in: text, flagged: TextType.flag(query.get("ssml"))), normalize: try normalize(from: query)),
            voiceID: query.get("voiceId") ?? query.get("voice"),
            options: try options(from: query), output: output, route: "/read")
    }

    // MARK: - Lark's own API

    private func nativeSpeech(_ request: Request, context: LarkRequestContext) async throws -> Response {
        try await whileConnected(request) { request in
            let body = try await decodeJSONBody(SpeechBody.self, request, textLimit: configuration.maxTextCharacters)
            if let marks = body.marks, Captions.Format(rawValue: body.output.format.lowercased()) == nil {
                return try await markedSpeech(
                    input: SpeechInput(body.text), voiceID: body.voice, options: body.options, output: body.output,
                    kinds: try Self.markKinds(marks), stream: body.stream == true, route: "/api/v1/speech")
            }
            if body.stream == true {
                return try await streamed(
                    input: try input(body), voiceID: body.voice, options: body.options, output: body.output, route: "/api/v1/speech")
            }
            return try await wholeFile(
                input: try input(body), voiceID: body.voice, options: body.options, output: body.output, route: "/api/v1/speech")
        }
    }

    private func ready(context: LarkRequestContext) async throws -> Response {
        do {
            _ = try await library.voice(configuration.defaultVoice)
            return try jsonResponse(HealthDocument(status: "ready", voice: configuration.defaultVoice))
        } catch {
            // The reason can name the voice's files: it goes to the log, not to the client.
            context.logger.error("default voice not ready: \(error)")
            throw APIError(.serviceUnavailable, code: "not_ready", message: "the default voice is not loaded; the server's log says why")
        }
    }

    // MARK: - Synthesis

    /// The most audio one request makes, in seconds (`--max-request-audio`). A whole-file answer
    /// stays in memory until its last sentence (20 minutes of 22,050 Hz WAV is 53 MB), and the
    /// text limit alone does not bound it (10,000 characters of one-word sentences with 10 s of
    /// sentence silence would be over 9 hours).
    private var maxRequestSeconds: Double { Double(configuration.maxRequestAudio.components.seconds) }

    /// One whole file with exact sizes in its headers (Piper's routes answer WAV this way).
    private func wholeFile(
        input: SpeechInput, voiceID: String?, options: SynthesisOptions, output: OutputChoice, route: String
    ) async throws -> Response {
        if let captions = Captions.Format(rawValue: output.format.lowercased()) {
            return try await self.captions(
                captions, input: input, voiceID: voiceID, options: options, maxCharacters: try Self.captionLength(output.captionLength))
        }
        let start = ContinuousClock.now
        let speech = try await begin(input: input, voiceID: voiceID, options: options, output: output, streaming: false)
        var bytes: [UInt8] = []
        while let encoded = try await speech.next() {
            bytes += encoded
        }
        // Dropping `speech` on the way out cancels the synthesis and frees its place.
        if speech.passedLimit { throw APIError.audioTooLong(limitSeconds: Int(maxRequestSeconds)) }
        // A cancelled task ends the stream early: that is a client gone, not a finished text.
        try Task.checkCancellation()
        bytes += try await speech.finish()
        metrics.timeToFirstAudio(route: route).record(ContinuousClock.now - start)
        return Response(status: .ok, headers: [.contentType: speech.format.contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Chunked audio: the first sentence is synthesized before the response starts (so its errors
    /// get a proper status), then every sentence is encoded and written as soon as it exists. A
    /// client that goes away stops the synthesis: the failed write drops the stream, which
    /// cancels the engine.
    /// `headers`: a front door's own fields (Polly's request id); `contentType` replaces the
    /// format's own.
    func streamed(
        input: SpeechInput, voiceID: String?, options: SynthesisOptions, output: OutputChoice, route: String,
        contentType: String? = nil, headers: HTTPFields = [:]
    ) async throws -> Response {
        if let captions = Captions.Format(rawValue: output.format.lowercased()) {
            return try await self.captions(
                captions, input: input, voiceID: voiceID, options: options, maxCharacters: try Self.captionLength(output.captionLength))
        }
        let start = ContinuousClock.now
        let speech = try await begin(input: input, voiceID: voiceID, options: options, output: output, streaming: true)
        guard let first = try await speech.next() else { throw SpeechError.emptyText }
        metrics.timeToFirstAudio(route: route).record(ContinuousClock.now - start)
        let body = ResponseBody { writer in
            var pending: [UInt8]? = first
            while let bytes = pending {
                if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
                pending = try await speech.next()
            }
            let tail = try await speech.finish()
            if !tail.isEmpty { try await writer.write(ByteBuffer(bytes: tail)) }
            try await writer.finish(nil)
        }
        // Polly's HTML5 example names raw PCM this way.
        let defaultType = route == "/read" && speech.format == .pcm ? "audio/wave; codecs=1" : speech.format.contentType
        var fields = headers
        fields[.contentType] = contentType ?? defaultType
        return Response(status: .ok, headers: fields, body: body)
    }

    /// Checks everything (text, options, voice, format), then takes a ticket at the scheduler
    /// (or 503 with Retry-After at once) and starts the synthesis.
    func begin(
        input: SpeechInput, voiceID: String?, options: SynthesisOptions, output: OutputChoice, streaming: Bool
    ) async throws -> EncodedSpeech {
        let prepared = try await prepare(input: input, voiceID: voiceID, options: options)
        let audio = try output.resolve(voiceRate: prepared.voice.sampleRate)
        let encoder = try makeAudioEncoder(output: audio, inputRate: prepared.voice.sampleRate, streaming: streaming)
        guard let ticket = scheduler.admit() else {
            metrics.rejected.increment()
            throw APIError.busy(retryAfter: 1)
        }
        return EncodedSpeech(
            prepared.start(on: ticket), encoder: encoder, format: audio.format, ticket: ticket, scheduler: scheduler,
            counters: metrics.voiceCounters(prepared.voice.id), maxSeconds: maxRequestSeconds)
    }

    /// Checks the text and options and finds the voice, before any work or any byte is sent.
    private func prepare(input: SpeechInput, voiceID: String?, options: SynthesisOptions) async throws -> PreparedSynthesis {
        try TextLimit.check(input.text, limit: configuration.maxTextCharacters)
        try RequestAccess.chargeCharacters(input.text.unicodeScalars.count)
        return try await library.prepare(
            input, voiceID: voiceID ?? configuration.defaultVoice, options: options, defaults: configuration.defaultOptions)
    }

    // MARK: - Request parsing

    /// `normalize=0|1|true|false` from a query, else the server's default.
    private func normalize(from query: FormQuery) throws -> Bool {
        try query.get(RequestSwitch.normalize).map { try RequestSwitch.parse($0, name: RequestSwitch.normalize) } ?? configuration.normalize
    }

    /// A JSON body's text with its `normalize` (else the server's default), written as its
    /// `text_type` says; where that says nothing and `detect` is set (Piper's route), SSML when
    /// flagged or when it starts with `<speak`.
    private func input(_ body: SpeechBody, detect: Bool = false, flagged: Bool = false) throws -> SpeechInput {
        let markup = body.text_type == nil && detect
            ? TextType.detected(in: body.text, flagged: flagged || body.ssml == true) : try TextType.markup(textType: body.text_type)
        return SpeechInput(
            body.text, markup: markup, normalize: try body.normalize?.value(name: RequestSwitch.normalize) ?? configuration.normalize)
    }

    private func options(from query: FormQuery) throws -> SynthesisOptions {
        func number<T: LosslessStringConvertible>(_ name: String, _: T.Type) throws -> T? {
            guard let raw = query.get(name) else { return nil }
            guard let value = T(raw) else {
                throw SpeechError.invalidOption(name: name, message: "\(name) must be a number, got '\(raw)'")
            }
            return value
        }
        var speaker: SpeakerSelector?
        if let raw = query.get("speaker") ?? query.get("speaker_id") {
            speaker = SpeakerSelector(raw)
        }
        return SynthesisOptions(
            speaker: speaker, lengthScale: try number("length_scale", Float.self),
            noiseScale: try number("noise_scale", Float.self),
            noiseW: try number("noise_w", Float.self) ?? number("noise_w_scale", Float.self),
            sentenceSilence: try number("sentence_silence", Double.self))
    }

    /// A raw-text body: at most the text limit (in UTF-8 bytes, 4 per character), valid UTF-8.
    private func bodyText(_ request: Request) async throws -> String {
        let limit = configuration.maxTextCharacters * 4
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw SpeechError.textTooLong(length: limit + 1, limit: configuration.maxTextCharacters)
        }
        guard let text = String(validating: Array(buffer.readableBytesView), as: UTF8.self) else {
            throw SpeechError.invalidText("the request body is not valid UTF-8")
        }
        return text
    }
}

/// The format, rate and bitrate a request asked for, as given; checked against the voice's rate
/// by `resolve` (so a bad choice is answered before any synthesis).
struct OutputChoice: Sendable {
    var format: String
    var sampleRate: Int?
    var bitrate: Int?
    /// Characters per cue when `format` is captions (`vtt`, `srt`).
    var captionLength: Int?

    init(format: String, sampleRate: Int?, bitrate: Int?, captionLength: Int? = nil) {
        self.format = format
        self.sampleRate = sampleRate
        self.bitrate = bitrate
        self.captionLength = captionLength
    }

    /// The format (the first of `formatNames` given), `sample_rate` (or Polly's `SampleRate`) and
    /// `bitrate` from a query string.
    init(query: FormQuery, formatNames: [String], defaultFormat: String) throws {
        func number(_ names: [String]) throws -> Int? {
            guard let name = names.first(where: { query.get($0) != nil }), let raw = query.get(name) else { return nil }
            guard let value = Int(raw) else {
                throw SpeechError.invalidOption(name: name, message: "\(name) must be a whole number, got '\(raw)'")
            }
            return value
        }
        self.init(
            format: formatNames.lazy.compactMap(query.get).first ?? defaultFormat, sampleRate: try number(["sample_rate", "SampleRate"]),
            bitrate: try number(["bitrate"]), captionLength: try number(["caption_length"]))
    }

    func resolve(voiceRate: Int) throws(AudioOutputError) -> AudioOutput {
        guard let parsed = AudioFormat(name: format) else { throw .unknownFormat(format) }
        return try AudioOutput(format: parsed, sampleRate: sampleRate, bitrate: bitrate, voiceRate: voiceRate)
    }
}

/// One admitted request's synthesis, sentence by sentence, encoded on the scheduler's encoding
/// threads, with its ticket (given back as soon as the synthesis ends, fails or is dropped) and
/// its metrics. The synthesis runs at most one sentence ahead of `next` (`SpeechStream`).
/// `@unchecked Sendable`: used by one task at a time, first the handler (for the first
/// sentence), then the response body writer, never both.
final class EncodedSpeech: @unchecked Sendable {
    private let sentences: SpeechStream.Iterator
    private let encoder: SendableEncoder
    let format: AudioFormat
    private let ticket: SynthesisTicket
    private let scheduler: SynthesisScheduler
    private let counters: ServerMetrics.VoiceCounters
    /// Seconds of audio produced so far.
    private(set) var seconds: Double = 0
    /// The most audio this request makes (`--max-request-audio`); the stream ends after the
    /// sentence that passes it.
    private let maxSeconds: Double
    /// Whether the stream ended at `maxSeconds` rather than at the end of the text.
    private(set) var passedLimit = false
    /// The chunk whose bytes `next` returned last (its marks time them).
    private(set) var lastChunk: AudioChunk?

    init(
        _ stream: SpeechStream, encoder: any AudioEncoder, format: AudioFormat, ticket: SynthesisTicket,
        scheduler: SynthesisScheduler, counters: ServerMetrics.VoiceCounters, maxSeconds: Double = .infinity
    ) {
        self.maxSeconds = maxSeconds
        sentences = stream.makeAsyncIterator()
        self.encoder = SendableEncoder(encoder)
        self.format = format
        self.ticket = ticket
        self.scheduler = scheduler
        self.counters = counters
    }

    /// The next sentence's bytes (empty while the codec gathers a frame), or nil at the end.
    func next() async throws -> [UInt8]? {
        if seconds > maxSeconds {
            passedLimit = true
            ticket.release()
            return nil
        }
        do {
            guard let chunk = try await sentences.next() else {
                ticket.release()
                return nil
            }
            counters.count(chunk)
            lastChunk = chunk
            seconds += chunk.duration
            let encoder = encoder
            return try await scheduler.encode { try encoder.encoder.encode(chunk.samples) }
        } catch {
            ticket.release()
            throw error
        }
    }

    /// What the codec still holds, and the container's trailer.
    func finish() async throws -> [UInt8] {
        let encoder = encoder
        return try await scheduler.encode { try encoder.encoder.finish() }
    }
}

/// An encoder handed from one task to the next, one call at a time.
/// `@unchecked Sendable`: `EncodedSpeech` awaits each call before the next, so two threads
/// never use the encoder at once.
struct SendableEncoder: @unchecked Sendable {
    let encoder: any AudioEncoder
    init(_ encoder: any AudioEncoder) { self.encoder = encoder }
}

/// A JSON body holding a text of at most `textLimit` characters (4 UTF-8 bytes each, plus room
/// for the other fields): a body not sent as `application/json` is 415 (before it is read), a
/// longer body is 413, a body that is not the JSON expected is 400.
func decodeJSONBody<T: Decodable>(_ type: T.Type, _ request: Request, textLimit: Int) async throws -> T {
    guard isJSON(contentType: request.headers[.contentType]) else {
        // Read (and drop) what was sent first: a body nobody reads keeps a route that watches its
        // connection from ever answering.
        _ = try? await request.body.collect(upTo: textLimit * 4 + 64 * 1024)
        throw APIError.unsupportedMediaType(request.headers[.contentType])
    }
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: textLimit * 4 + 64 * 1024)
    } catch {
        throw SpeechError.textTooLong(length: textLimit + 1, limit: textLimit)
    }
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    } catch {
        throw APIError(.badRequest, code: "invalid_json", message: "the body is not the expected JSON: \(describeDecodingError(error))")
    }
}

/// Whether a Content-Type names JSON: `application/json`, in any case, with or without
/// parameters (`; charset=utf-8`).
func isJSON(contentType: String?) -> Bool {
    guard let contentType else { return false }
    let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
}

/// A JSON decoding failure in words a client can act on.
func describeDecodingError(_ error: any Error) -> String {
    if case DecodingError.keyNotFound(let key, _) = error { return "missing field '\(key.stringValue)'" }
    if case DecodingError.typeMismatch(_, let context) = error {
        return "wrong type for '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
    }
    return "malformed JSON"
}
