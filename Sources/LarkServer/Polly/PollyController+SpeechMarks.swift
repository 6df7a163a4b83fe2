import Foundation
import Hummingbird
import SpeechCore
import SpeechMarks

/// `SynthesizeSpeech` with `OutputFormat` json: Polly's speech marks, one JSON object a line,
/// written sentence by sentence as the synthesis goes. The synthesis is the one every audio
/// request takes (`SpeechController.begin`, a scheduler ticket); its audio is only counted.
extension PollyController {
    func speechMarks(_ checked: Checked, kinds: Set<SpeechMark.Kind>, headers: HTTPFields) async throws -> Response {
        let start = ContinuousClock.now
        let stream = try await speech.begin(
            input: checked.input, voiceID: checked.voice.voice,
            options: SynthesisOptions(speaker: checked.voice.speaker.map(SpeakerSelector.init)),
            output: OutputChoice(format: "pcm", sampleRate: nil, bitrate: nil), streaming: true)
        var timeline = SpeechMarkTimeline(text: checked.input.text, kinds: kinds)
        // The first sentence is made before answering, so a failure still gets Polly's error.
        guard try await stream.next() != nil else { throw SpeechError.emptyText }
        let first = stream.lastChunk.map { timeline.add($0) } ?? []
        speech.metrics.timeToFirstAudio(route: "/v1/speech").record(ContinuousClock.now - start)
        let body = ResponseBody { [timeline] writer in
            var timeline = timeline
            var marks = first
            while true {
                if !marks.isEmpty { try await writer.write(ByteBuffer(string: MarkFormats.pollySpeechMarks(marks))) }
                guard try await stream.next() != nil else { break }
                marks = stream.lastChunk.map { timeline.add($0) } ?? []
            }
            _ = try await stream.finish()
            try await writer.finish(nil)
        }
        var fields = headers
        fields[.contentType] = "application/x-json-stream"
        return Response(status: .ok, headers: fields, body: body)
    }
}
