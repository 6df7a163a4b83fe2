import Foundation
import Hummingbird
import SpeechCore
import SpeechMarks

/// Speech with its timings: `POST /api/v1/speech` with `"marks"` (NDJSON when streamed, one
/// JSON object otherwise), and captions (`format` `vtt` or `srt`) on every synthesis route.
/// The same synthesis as the audio routes (`begin`); this file only writes what it gives.
extension SpeechController {
    /// The mark kinds a request's `marks` list names; 400 for an empty list or an unknown kind.
    static func markKinds(_ names: [String]) throws -> Set<SpeechMark.Kind> {
        guard !names.isEmpty else {
            throw SpeechError.invalidOption(name: "marks", message: "marks must list at least one of word, sentence, viseme, ssml")
        }
        var kinds = Set<SpeechMark.Kind>()
        for name in names {
            guard let kind = SpeechMark.Kind(rawValue: name.lowercased()) else {
                throw SpeechError.invalidOption(
                    name: "marks", message: "marks: '\(name)' is not a kind of mark; use word, sentence, viseme or ssml")
            }
            kinds.insert(kind)
        }
        return kinds
    }

    /// The caption length option: characters per cue, 0 for one cue per sentence.
    static func captionLength(_ value: Int?) throws -> Int {
        guard let value else { return Captions.defaultMaxCharacters }
        guard Captions.maxCharactersRange.contains(value) else {
            throw SpeechError.invalidOption(
                name: "caption_length",
                message: "caption_length must be between 0 (one cue per sentence) and \(Captions.maxCharactersRange.upperBound) characters, got \(value)")
        }
        return value
    }

    /// Audio with its marks. Streamed: one NDJSON line per sentence as soon as it is encoded,
    /// `{"audio": base64 of its bytes, "marks": [...]}` (the bytes of all lines make the file);
    /// else one object with the whole audio and every mark.
    func markedSpeech(
        input: SpeechInput, voiceID: String?, options: SynthesisOptions, output: OutputChoice, kinds: Set<SpeechMark.Kind>,
        stream: Bool, route: String
    ) async throws -> Response {
        let start = ContinuousClock.now
        let speech = try await begin(input: input, voiceID: voiceID, options: options, output: output, streaming: stream)
        var timeline = SpeechMarkTimeline(text: input.text, kinds: kinds, outputRate: output.sampleRate)
        @Sendable func line(_ bytes: [UInt8], _ marks: [TimedMark]) -> ByteBuffer {
            ByteBuffer(string: "{\"audio\":\"\(Data(bytes).base64EncodedString())\",\"marks\":\(MarkFormats.larkJSONArray(marks))}\n")
        }
        if stream {
            guard let first = try await speech.next() else { throw SpeechError.emptyText }
            let firstMarks = speech.lastChunk.map { timeline.add($0) } ?? []
            metrics.timeToFirstAudio(route: route).record(ContinuousClock.now - start)
            let body = ResponseBody { [timeline] writer in
                var timeline = timeline
                try await writer.write(line(first, firstMarks))
                while let bytes = try await speech.next() {
                    let marks = speech.lastChunk.map { timeline.add($0) } ?? []
                    try await writer.write(line(bytes, marks))
                }
                let tail = try await speech.finish()
                if !tail.isEmpty { try await writer.write(line(tail, [])) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
        }
        var bytes: [UInt8] = []
        var marks: [TimedMark] = []
        while let encoded = try await speech.next() {
            bytes += encoded
            if let chunk = speech.lastChunk { marks += timeline.add(chunk) }
        }
        if speech.passedLimit { throw APIError.audioTooLong(limitSeconds: Int(configuration.maxRequestAudio.components.seconds)) }
        try Task.checkCancellation()
        bytes += try await speech.finish()
        metrics.timeToFirstAudio(route: route).record(ContinuousClock.now - start)
        let document = "{\"audio\":\"\(Data(bytes).base64EncodedString())\",\"content_type\":\(MarkFormats.jsonString(speech.format.contentType))"
            + ",\"marks\":\(MarkFormats.larkJSONArray(marks))}"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: document)))
    }

    /// Captions of the text as spoken (the audio is made, as for any request, and dropped).
    func captions(
        _ format: Captions.Format, input: SpeechInput, voiceID: String?, options: SynthesisOptions, maxCharacters: Int
    ) async throws -> Response {
        let speech = try await begin(
            input: input, voiceID: voiceID, options: options, output: OutputChoice(format: "pcm", sampleRate: nil, bitrate: nil),
            streaming: true)
        var timeline = SpeechMarkTimeline(text: input.text, kinds: [.word, .sentence])
        var marks: [TimedMark] = []
        while try await speech.next() != nil {
            if let chunk = speech.lastChunk { marks += timeline.add(chunk) }
        }
        if speech.passedLimit { throw APIError.audioTooLong(limitSeconds: Int(configuration.maxRequestAudio.components.seconds)) }
        try Task.checkCancellation()
        let text = Captions(marks: marks, text: input.text, maxCharacters: maxCharacters).render(format)
        return Response(status: .ok, headers: [.contentType: format.contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
