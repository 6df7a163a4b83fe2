import AudioEncoding
import Foundation
import SpeechCore
import SpeechJobs
import SpeechMarks
import SpeechService

/// What a rendered job produced.
public struct RenderedAudio: Sendable {
    public var format: AudioFormat
    public var contentType: String
    public var sentences: Int
    public var bytes: Int
    /// The captions the job asked for, with their format.
    public var captions: (format: Captions.Format, text: String)?
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
    /// Whether a job's text is normalized when its spec does not say (`--no-normalize`).
    let normalize: Bool

    public init(library: VoiceLibrary, defaults: SynthesisOptions, maxAudio: Duration = .seconds(2 * 3600), normalize: Bool = true) {
        self.normalize = normalize
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
        let prepared = try await library.prepare(
            SpeechInput(spec.text, markup: spec.textType ?? .text, normalize: spec.normalize ?? normalize), voiceID: spec.voice, options: requested, defaults: defaults)
        guard let format = AudioFormat(name: spec.format) else { throw AudioOutputError.unknownFormat(spec.format) }
        let output = try AudioOutput(format: format, sampleRate: spec.sampleRate, bitrate: spec.bitrate, voiceRate: prepared.voice.sampleRate)
        _ = try Self.captions(spec)
        return (prepared, output)
    }

    /// The captions a spec asks for and their cue length; 400-class errors for a bad choice.
    static func captions(_ spec: JobSpec) throws(SpeechError) -> (format: Captions.Format, length: Int)? {
        guard let name = spec.captions else { return nil }
        guard let format = Captions.Format(rawValue: name.lowercased()) else {
            throw .invalidOption(name: "captions", message: "captions must be vtt or srt, got '\(name)'")
        }
        let length = spec.captionLength ?? Captions.defaultMaxCharacters
        guard Captions.maxCharactersRange.contains(length) else {
            throw .invalidOption(
                name: "caption_length",
                message: "caption_length must be between 0 (one cue per sentence) and \(Captions.maxCharactersRange.upperBound) characters, got \(length)")
        }
        return (format, length)
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
        // Every format is encoded straight into the file (headers with exact sizes are rewritten
        // at the end), so a long text never sits in memory. The encoder runs on the scheduler's
        // encoding threads.
        let writer = FileWriterHandle(try AudioFileWriter(output: output, inputRate: prepared.voice.sampleRate, path: file.path))
        var done = 0
        var seconds = 0.0
        let captions = try Self.captions(spec)
        var timeline = SpeechMarkTimeline(text: spec.text, kinds: [.word, .sentence], outputRate: output.sampleRate)
        var marks: [TimedMark] = []
        for try await chunk in prepared.start(on: admission) {
            if captions != nil { marks += timeline.add(chunk) }
            seconds += chunk.duration
            guard seconds <= maxSeconds else { throw AudioOutputError.audioTooLong(limitSeconds: Int(maxSeconds)) }
            try await admission.encode { try writer.file.write(chunk.samples) }
            done = chunk.sentenceIndex + 1
            // The total is the engine's own count of the sentences it makes of this text.
            try await progress(done, max(chunk.sentenceCount ?? done, done))
        }
        let bytes = try await admission.encode { try writer.file.finish() }
        return RenderedAudio(
            format: output.format, contentType: output.format.contentType, sentences: done, bytes: bytes,
            captions: captions.map { ($0.format, Captions(marks: marks, text: spec.text, maxCharacters: $0.length).render($0.format)) })
    }
}

/// A job's file writer handed to the encoding threads, one call at a time.
/// `@unchecked Sendable`: `render` awaits each call before making the next, so two threads never
/// use the writer at once.
struct FileWriterHandle: @unchecked Sendable {
    let file: AudioFileWriter
    init(_ file: AudioFileWriter) { self.file = file }
}
