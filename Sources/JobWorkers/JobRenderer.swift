import AudioEncoding
import Foundation
import SpeechCore
import SpeechJobs
import SpeechService

/// What a rendered job produced.
public struct RenderedAudio: Sendable {
    public var format: AudioFormat
    public var contentType: String
    public var sentences: Int
    public var bytes: Int
}

/// Turns a job's spec into an audio file, sentence by sentence, reporting progress after each
/// sentence. The same checks the live routes make run first (`check`), so a job that cannot
/// succeed is refused at submission instead of failing in a worker.
public struct JobRenderer: Sendable {
    let library: VoiceLibrary
    /// The server-wide synthesis defaults; the job's own values override them.
    let defaults: SynthesisOptions
    /// The most audio one job makes (`--max-job-audio`), checked as the audio is produced. The
    /// text limit alone does not bound it (200,000 characters of one-word sentences with 10 s of
    /// sentence silence would be over 100 hours, tens of GB of disk).
    let maxAudio: Duration

    public init(library: VoiceLibrary, defaults: SynthesisOptions, maxAudio: Duration = .seconds(2 * 3600)) {
        self.library = library
        self.defaults = defaults
        self.maxAudio = maxAudio
    }

    /// Throws what the job would fail with: empty text, unknown voice or speaker, bad option,
    /// format, rate or bitrate.
    public func check(_ spec: JobSpec) async throws {
        _ = try await prepare(spec)
    }

    private func prepare(_ spec: JobSpec) async throws -> (PreparedSynthesis, AudioOutput) {
        let requested = SynthesisOptions(
            speaker: spec.speaker.map(SpeakerSelector.init), lengthScale: spec.lengthScale, noiseScale: spec.noiseScale,
            noiseW: spec.noiseW, sentenceSilence: spec.sentenceSilence)
        let prepared = try await library.prepare(text: spec.text, voiceID: spec.voice, options: requested, defaults: defaults)
        guard let format = AudioFormat(name: spec.format) else { throw AudioOutputError.unknownFormat(spec.format) }
        let output = try AudioOutput(format: format, sampleRate: spec.sampleRate, bitrate: spec.bitrate, voiceRate: prepared.voice.sampleRate)
        return (prepared, output)
    }

    /// Writes the job's audio to `file` (created or truncated). `progress(done, total)` runs
    /// after every sentence; it throws to stop the rendering (a cancelled or lost job). Past
    /// `maxAudio` it throws `AudioOutputError.audioTooLong` (the job fails, not retried).
    public func render(
        _ spec: JobSpec, to file: URL, admission: any SynthesisAdmission,
        progress: @Sendable (_ done: Int, _ total: Int) async throws -> Void
    ) async throws -> RenderedAudio {
        try await render(spec, to: file, maxSeconds: Double(maxAudio.components.seconds), admission: admission, progress: progress)
    }

    func render(
        _ spec: JobSpec, to file: URL, maxSeconds: Double, admission: any SynthesisAdmission,
        progress: @Sendable (_ done: Int, _ total: Int) async throws -> Void
    ) async throws -> RenderedAudio {
        let (prepared, output) = try await prepare(spec)
        let total = max(1, SentenceSegmenter.sentences(in: spec.text).count)
        // 16-bit WAV is written as it comes and its header patched at the end, so a long text
        // never sits in memory; other containers are finished by the encoder in one piece.
        let incremental = output.format == .wav
        let encoder = try makeAudioEncoder(output: output, inputRate: prepared.voice.sampleRate, streaming: incremental)
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        var written = 0
        var done = 0
        var seconds = 0.0
        for try await chunk in prepared.start(on: admission) {
            seconds += chunk.duration
            guard seconds <= maxSeconds else { throw AudioOutputError.audioTooLong(limitSeconds: Int(maxSeconds)) }
            let bytes = try encoder.encode(chunk.samples)
            if !bytes.isEmpty {
                try handle.write(contentsOf: bytes)
                written += bytes.count
            }
            done = chunk.sentenceIndex + 1
            try await progress(done, max(total, done))
        }
        let tail = try encoder.finish()
        if !tail.isEmpty {
            try handle.write(contentsOf: tail)
            written += tail.count
        }
        if incremental {
            let header = WAV.header(sampleRate: output.sampleRate, sampleCount: (written - 44) / 2)
            try handle.seek(toOffset: 0)
            try handle.write(contentsOf: header)
        }
        try handle.synchronize()
        return RenderedAudio(format: output.format, contentType: output.format.contentType, sentences: done, bytes: written)
    }
}
