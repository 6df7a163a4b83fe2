import AudioStorage
import Foundation
@testable import JobWorkers
import Logging
import SpeechCore
import SpeechJobs
import SpeechService
import Synchronization
import Testing

/// Job files as the worker writes them: encoded straight into a scratch file, and stored under
/// their key only whole. A worker in-process, on SQLite and the local directory store, while a
/// watcher looks at the key's path every millisecond.
@Suite(.serialized) struct JobFileTests {
    /// About 25 sentences of the espeak-ng voice (a minute of audio, rendered in about a second).
    static let text = String(repeating: """
        The keeper climbed the stairs again. He lit the lamp and wrote the weather in his journal. \
        Ships passed in the dark, and the beam swept over them. Was anyone watching from the shore? \
        Nobody answered!
        """ + " ", count: 5)
    static let voice = "espeak-ng:en-us"

    @Test(arguments: ["mp3", "flac"])
    func theStoredFileAppearsOnlyComplete(format: String) async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("lark-job-files-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test.job-files")
        let store = try await JobQueueLocation.sqlite(path: directory.appendingPathComponent("jobs.sqlite").path).open(logger: logger)
        let objects = LocalDirectoryStore(root: directory.appendingPathComponent("audio"))
        let notifier = CallbackNotifier(policy: try CallbackPolicy(), store: store, logger: logger)
        let service = JobWorkerService(
            store: store, objects: objects, renderer: JobRenderer(library: Checkout.library, defaults: .init()),
            scheduler: SynthesisScheduler(workers: 1, maxQueue: 0),
            presenter: JobPresenter(objects: objects, publicURL: "http://127.0.0.1:1", retention: .seconds(3600)),
            notifier: notifier,
            configuration: JobWorkerConfiguration(
                workers: 1, pollInterval: .milliseconds(20), scratchDirectory: directory.appendingPathComponent("scratch")),
            logger: logger)

        let (job, _) = try await store.enqueue(
            JobSpec(text: Self.text, voice: Self.voice, format: format), idempotencyKey: nil, maxAttempts: 1, now: Timestamp.now)
        let key = "jobs/\(job.id).\(format)"
        let path = try objects.fileURL(forKey: key).path

        // The watcher: the bytes at the key's path when they first appear, and every size seen.
        let watcher = KeyWatcher(path: path)
        let watching = Thread { watcher.watch() }
        watching.start()
        let notifying = Task { try await notifier.run() }
        let workers = Task { try await service.run() }
        var finished: Job?
        for _ in 0..<600 {
            if let current = try await store.job(id: job.id), current.status.isFinal {
                finished = current
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        workers.cancel()
        _ = try? await workers.value
        watcher.stop()
        while !watching.isFinished { try await Task.sleep(for: .milliseconds(5)) }
        notifying.cancel()
        _ = try? await notifying.value
        try? await store.close()

        let done = try #require(finished)
        #expect(done.status == .succeeded, "\(done.error ?? "")")
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        let seen = watcher.seen
        let first = try #require(seen.firstBytes, "the watcher never saw the file")
        #expect(first == stored, "the file first appeared with \(first.count) of its \(stored.count) bytes")
        #expect(seen.sizes == [stored.count], "sizes seen at the key: \(seen.sizes)")

        // Whole: it decodes to the full length of the audio the voice makes of the text.
        let voice = try await Checkout.library.voice(Self.voice)
        var samples = 0
        var sentences = 0
        for try await chunk in voice.synthesize(Self.text, options: .init(), admission: Checkout.admission()) {
            samples += chunk.samples.count
            sentences = chunk.sentenceIndex + 1
        }
        let expected = Double(samples) / Double(voice.info.sampleRate)
        let decoded = try AudioFormatTests.decodedSeconds(file: path, rawFormat: nil, rate: voice.info.sampleRate)
        // espeak-ng's audio of a text varies by a few milliseconds a sentence with what the same
        // process spoke before (other suites' texts, rates and pitches), so 25 sentences may differ
        // by a tenth of a second; a file cut short would be seconds short.
        #expect(abs(decoded - expected) <= 0.25, "\(format): decoded \(decoded) s, the voice made \(expected) s")
        let probe = try Probe(file: path)
        #expect(abs(probe.duration - expected) <= 0.25, "\(format): ffprobe says \(probe.duration) s, the voice made \(expected) s")
        #expect(done.sentencesDone == sentences && done.sentencesTotal == sentences)
    }

    /// Encoded straight into the file: halfway through the job, about half of the file is on
    /// disk (libavformat writes in blocks of 256 KiB here, so the text makes files of a few MB).
    @Test(arguments: ["mp3", "flac"])
    func theFileGrowsAsTheJobRenders(format: String) async throws {
        let renderer = JobRenderer(library: Checkout.library, defaults: .init())
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lark-render-\(UUID().uuidString).\(format)")
        defer { try? FileManager.default.removeItem(at: file) }
        let halfway = Mutex<Int?>(nil)
        let rendered = try await renderer.render(JobSpec(text: String(repeating: Self.text, count: 3), voice: Self.voice, format: format), to: file, admission: Checkout.admission()) { done, total in
            if done == total / 2 {
                let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
                halfway.withLock { $0 = size }
            }
        }
        let size = try #require(halfway.withLock { $0 })
        #expect(Double(size) >= Double(rendered.bytes) * 0.3, "\(format): \(size) of \(rendered.bytes) bytes on disk halfway")
        #expect(try Data(contentsOf: file).count == rendered.bytes)
    }

    /// Progress counts the sentences the engine makes: Piper's rules do not end a sentence at an
    /// ellipsis (a plain sentence splitter does, and would promise three here).
    @Test func progressCountsTheEnginesSentences() async throws {
        let renderer = JobRenderer(library: Checkout.library, defaults: .init())
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lark-render-\(UUID().uuidString).flac")
        defer { try? FileManager.default.removeItem(at: file) }
        let text = "Well… maybe later. Yes, now."
        #expect(SentenceSegmenter.sentences(in: text).count == 3)
        let reports = Mutex<[String]>([])
        let rendered = try await renderer.render(JobSpec(text: text, voice: Checkout.joeModel, format: "flac"), to: file, admission: Checkout.admission()) { done, total in
            reports.withLock { $0.append("\(done)/\(total)") }
        }
        #expect(reports.withLock { $0 } == ["1/2", "2/2"])
        #expect(rendered.sentences == 2)
        #expect(try Data(contentsOf: file).count == rendered.bytes)
    }
}

/// Looks at one path every millisecond from a thread of its own: the bytes there the first
/// time a file is found, and each distinct size seen.
final class KeyWatcher: Sendable {
    struct Seen {
        var firstBytes: Data?
        var sizes: [Int] = []
    }
    private let path: String
    private let state = Mutex((seen: Seen(), stopped: false))

    init(path: String) {
        self.path = path
    }

    var seen: Seen { state.withLock { $0.seen } }

    func stop() {
        state.withLock { $0.stopped = true }
    }

    func watch() {
        while !state.withLock({ $0.stopped }) {
            var info = stat()
            if stat(path, &info) == 0 {
                let size = Int(info.st_size)
                let bytes = state.withLock { $0.seen.firstBytes } == nil ? FileManager.default.contents(atPath: path) : nil
                state.withLock { state in
                    if state.seen.firstBytes == nil { state.seen.firstBytes = bytes }
                    if state.seen.sizes.last != size { state.seen.sizes.append(size) }
                }
            }
            usleep(1000)
        }
    }
}
