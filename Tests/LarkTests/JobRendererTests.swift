import AudioEncoding
import Foundation
@testable import JobWorkers
import SpeechJobs
import Testing

/// The job renderer in-process: past its most audio a job fails with `audio_too_long` (a
/// permanent failure), instead of filling the disk.
@Suite struct JobRendererTests {
    @Test func renderingStopsPastTheMostAudio() async throws {
        let renderer = JobRenderer(library: Checkout.library, defaults: .init())
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lark-render-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: file) }
        // Three short sentences with 2 s of silence between them: well past a 3 s limit.
        let spec = JobSpec(text: "Go. Go. Go.", voice: Checkout.joeModel, sentenceSilence: 2)
        await #expect(throws: AudioOutputError.audioTooLong(limitSeconds: 3)) {
            _ = try await renderer.render(spec, to: file, maxSeconds: 3, admission: Checkout.admission()) { _, _ in }
        }
        // Under the limit the same job renders whole.
        let rendered = try await renderer.render(spec, to: file, maxSeconds: 60, admission: Checkout.admission()) { _, _ in }
        #expect(rendered.sentences == 3)
    }
}
