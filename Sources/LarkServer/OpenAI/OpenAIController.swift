import AudioEncoding
import Foundation
import Hummingbird
import SpeechCore
import SpeechService

/// OpenAI's speech API (`POST /v1/audio/speech`, `GET /v1/models`, `GET /v1/audio/voices`):
/// requests and errors translated onto the one synthesis path (`SpeechController.begin`), so
/// an OpenAI client only needs Lark's address as its base URL.
struct OpenAIController: Sendable {
    let speech: SpeechController
    var settings: OpenAISettings { speech.configuration.openAI }

    var routes: [Route] {
        [
            Route(.post, "/v1/audio/speech") { request, context in
                try await OpenAIError.translating(context.logger) { try await create(request) }
            },
            Route(.get, "/v1/models") { _, context in
                try await OpenAIError.translating(context.logger) { try jsonResponse(ModelList(data: Self.models.map(Model.init))) }
            },
            Route(.get, "/v1/models/:id") { _, context in
                try await OpenAIError.translating(context.logger) { try model(context) }
            },
            Route(.get, "/v1/audio/voices") { _, context in
                try await OpenAIError.translating(context.logger) { try await voices() }
            },
        ]
    }

    /// Whether a path is one of OpenAI's (its errors are answered in OpenAI's shape, even those
    /// raised before a handler runs: keys, rate limits, 405).
    static func owns(_ path: String) -> Bool {
        path.hasPrefix("/v1/audio/") || path == "/v1/models" || path.hasPrefix("/v1/models/")
    }

    // MARK: - Speech

    /// `voice`: a name, or `{"id": name}` (a custom voice's shape).
    struct VoiceField: Decodable {
        var name: String

        init(from decoder: any Decoder) throws {
            if let name = try? decoder.singleValueContainer().decode(String.self) {
                self.name = name
            } else {
                name = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .id)
            }
        }

        enum CodingKeys: String, CodingKey { case id }
    }

    /// The body of `POST /v1/audio/speech`, as OpenAI defines it.
    struct SpeechRequest: Decodable {
        var model: String
        var input: String
        var voice: VoiceField
        /// Accepted; Piper and espeak-ng voices cannot follow spoken instructions.
        var instructions: String?
        var response_format: String?
        var speed: Double?
        var stream_format: String?
    }

    /// OpenAI's `response_format` names and Lark's formats for them.
    static let formats: [String: AudioFormat] = ["mp3": .mp3, "opus": .oggOpus, "aac": .aac, "flac": .flac, "wav": .wav, "pcm": .pcm]

    private func create(_ request: Request) async throws -> Response {
        let body = try await decodeJSONBody(SpeechRequest.self, request, textLimit: settings.maxInputCharacters)
        let characters = body.input.unicodeScalars.count
        guard characters <= settings.maxInputCharacters else {
            throw OpenAIError(
                .badRequest, message: "input has \(characters) characters, more than the limit of \(settings.maxInputCharacters)",
                param: "input", code: "string_above_max_length")
        }
        let formatName = (body.response_format ?? "mp3").lowercased()
        guard let format = Self.formats[formatName] else {
            throw OpenAIError(
                .badRequest, message: "response_format '\(formatName)' is not supported; choose one of mp3, opus, aac, flac, wav, pcm",
                param: "response_format", code: "invalid_value")
        }
        let streamFormat = body.stream_format ?? "audio"
        guard streamFormat == "audio" || streamFormat == "sse" else {
            throw OpenAIError(
                .badRequest, message: "stream_format '\(streamFormat)' is not supported; choose audio or sse",
                param: "stream_format", code: "invalid_value")
        }
        let mapped = resolve(body.voice.name)
        var options = SynthesisOptions(speaker: mapped.speaker.map(SpeakerSelector.init))
        if let speed = body.speed {
            guard speed >= 0.25, speed <= 4, speed.isFinite else {
                throw OpenAIError(.badRequest, message: "speed must be from 0.25 to 4.0, got \(speed)", param: "speed", code: "invalid_value")
            }
            if speed != 1 { options.lengthScale = try await baseLengthScale(mapped.voice) / Float(speed) }
        }
        // OpenAI's pcm is 24 kHz; every other format keeps its own default rate.
        let output = OutputChoice(format: format.rawValue, sampleRate: format == .pcm ? 24_000 : nil, bitrate: nil)
        // Plain text (OpenAI has no SSML), normalized as the server's routes are by default.
        let input = SpeechInput(body.input, normalize: speech.configuration.normalize)
        if streamFormat == "sse" {
            return try await events(input: input, voice: mapped.voice, options: options, output: output, characters: characters)
        }
        return try await speech.streamed(
            input: input, voiceID: mapped.voice, options: options, output: output, route: "/v1/audio/speech",
            contentType: format.contentType)
    }

    /// A mapped name, an OpenAI voice name (the default voice unless mapped), or a Lark voice id.
    func resolve(_ name: String) -> MappedVoice {
        if let mapped = settings.voices[name] { return mapped }
        if OpenAISettings.voiceNames.contains(name.lowercased()) { return MappedVoice(voice: speech.configuration.defaultVoice) }
        return MappedVoice(voice: name)
    }

    /// The length scale that speed 1 means for this voice: the server's default, else the voice's own.
    private func baseLengthScale(_ voiceID: String) async throws -> Float {
        if let configured = speech.configuration.defaultOptions.lengthScale { return configured }
        return try await speech.library.voice(voiceID).info.defaults?.lengthScale ?? 1
    }

    /// `stream_format: "sse"`: each sentence's encoded audio as a `speech.audio.delta` event
    /// (base64), then `speech.audio.done` with the usage (characters count as input tokens; no
    /// output tokens are made).
    private func events(
        input: SpeechInput, voice: String, options: SynthesisOptions, output: OutputChoice, characters: Int
    ) async throws -> Response {
        let start = ContinuousClock.now
        let encoded = try await speech.begin(input: input, voiceID: voice, options: options, output: output, streaming: true)
        guard let first = try await encoded.next() else { throw SpeechError.emptyText }
        speech.metrics.timeToFirstAudio(route: "/v1/audio/speech").record(ContinuousClock.now - start)
        let body = ResponseBody { writer in
            var pending: [UInt8]? = first
            while let bytes = pending {
                if !bytes.isEmpty { try await writer.write(try Self.event(AudioDelta(audio: Data(bytes).base64EncodedString()))) }
                pending = try await encoded.next()
            }
            let tail = try await encoded.finish()
            if !tail.isEmpty { try await writer.write(try Self.event(AudioDelta(audio: Data(tail).base64EncodedString()))) }
            try await writer.write(try Self.event(AudioDone(usage: .init(input_tokens: characters, output_tokens: 0, total_tokens: characters))))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    private static func event(_ value: some Encodable) throws -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(try JSONEncoder().encode(value))
        buffer.writeString("\n\n")
        return buffer
    }

    struct AudioDelta: Encodable {
        var type = "speech.audio.delta"
        var audio: String
    }

    struct AudioDone: Encodable {
        struct Usage: Encodable {
            var input_tokens: Int
            var output_tokens: Int
            var total_tokens: Int
        }

        var type = "speech.audio.done"
        var usage: Usage
    }

    // MARK: - Models and voices

    /// Every model name is accepted by `/v1/audio/speech`; these are the ones listed.
    static let models = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "lark"]

    struct Model: Encodable {
        var id: String
        var object = "model"
        /// Unknown: these names are aliases of Lark's one synthesis path.
        var created = 0
        var owned_by = "lark"

        init(_ id: String) { self.id = id }
    }

    struct ModelList: Encodable {
        var object = "list"
        var data: [Model]
    }

    private func model(_ context: LarkRequestContext) throws -> Response {
        let id = try context.parameters.require("id")
        guard Self.models.contains(id) else {
            throw OpenAIError(
                .notFound, message: "the model '\(id)' does not exist; this server lists \(Self.models.joined(separator: ", "))",
                param: "model", code: "model_not_found")
        }
        return try jsonResponse(Model(id))
    }

    /// `{"voices": [{"id", "name"}]}` (Open WebUI's and Kokoro-FastAPI's shape): OpenAI's names,
    /// then every Lark voice.
    struct VoiceList: Encodable {
        struct Entry: Encodable {
            var id: String
            var name: String
        }

        var voices: [Entry]
    }

    private func voices() async throws -> Response {
        let named = OpenAISettings.voiceNames.map { VoiceList.Entry(id: $0, name: $0) }
        let lark = try await speech.library.voices().map { VoiceList.Entry(id: $0.id, name: $0.name) }
        return try jsonResponse(VoiceList(voices: named + lark))
    }
}
