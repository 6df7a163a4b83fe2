import Foundation
import OnnxGraph
import PiperEngine
import SpeechCore
import SpeechService
import Synchronization
import Testing

/// The one admission point: request tickets, places per piece of work (live before jobs), the
/// `alone` rule, cancellation, and synthesis that runs only as fast as its consumer reads.
@Suite struct SynthesisSchedulerTests {
    /// Waits (up to 5 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func liveRequestsAreBoundedAndRefusedAtOnce() {
        let scheduler = SynthesisScheduler(workers: 2, maxQueue: 1)
        let tickets = (0..<3).compactMap { _ in scheduler.admit() }
        #expect(tickets.count == 3)
        #expect(scheduler.admit() == nil, "workers + maxQueue live requests are under way")
        tickets[0].release()
        tickets[0].release()  // twice is once
        #expect(scheduler.load.live == 2)
        #expect(scheduler.admit() != nil)
    }

    @Test func oneRequestRunsAloneAndOverlappingOnesDoNot() async throws {
        let scheduler = SynthesisScheduler(workers: 2, maxQueue: 4)
        let first = try #require(scheduler.admit())
        #expect(try await first.withPlace { $0.alone })
        let second = try #require(scheduler.admit())
        #expect(try await first.withPlace { $0.alone } == false)
        second.release()
        #expect(try await first.withPlace { $0.alone } == false, "still overlapped until no request is left")
        first.release()
        let third = try #require(scheduler.admit())
        #expect(try await third.withPlace { $0.alone })
    }

    /// An idle job worker takes a ticket every poll to look for a job: a poll that finds none
    /// must not make a lone streamed text's remaining sentences run narrow.
    @Test func aJobWorkersTicketCountsFromItsFirstWorkNotFromItsPoll() async throws {
        let scheduler = SynthesisScheduler(workers: 2, maxQueue: 4)
        let live = try #require(scheduler.admit())
        #expect(try await live.withPlace { $0.alone })
        let poll = try #require(await scheduler.admitBackground())
        #expect(try await live.withPlace { $0.alone }, "a ticket that only looks for a job is no second request")
        poll.release()
        #expect(try await live.withPlace { $0.alone })
        let job = try #require(await scheduler.admitBackground(memory: .shrinkAfterRun))
        #expect(job.memory == .shrinkAfterRun && live.memory == nil, "a job asks for its memory policy, a live request keeps the engine's")
        #expect(try await job.withPlace { $0.alone } == false, "a job working beside a live request overlaps it")
        #expect(try await live.withPlace { $0.alone } == false)
        job.release()
        live.release()
        let next = try #require(scheduler.admit())
        #expect(try await next.withPlace { $0.alone }, "both counts went back to zero")
        next.release()
        let lone = try #require(await scheduler.admitBackground())
        #expect(try await lone.withPlace { $0.alone }, "a job alone may use every core")
    }

    @Test func liveWorkGoesBeforeJobsAndWaitersCanBeCancelled() async throws {
        let scheduler = SynthesisScheduler(workers: 1, maxQueue: 4)
        let holder = try #require(scheduler.admit())
        let job = try #require(await scheduler.admitBackground())
        let live = try #require(scheduler.admit())
        let order = OrderBox()
        let release = AsyncStream<Void>.makeStream()
        let holding = Task {
            try await holder.withPlace { _ in for await _ in release.stream { break } }
        }
        try await Self.eventually { scheduler.load.running == 1 }
        let jobWork = Task { try await job.withPlace { _ in order.append("job") } }
        try await Task.sleep(for: .milliseconds(50))
        let liveWork = Task { try await live.withPlace { _ in order.append("live") } }
        let cancelled = Task { try await live.withPlace { _ in order.append("cancelled") } }
        try await Self.eventually { scheduler.load.queued == 2 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(scheduler.load.queued == 1)
        release.continuation.yield()
        try await holding.value
        try await liveWork.value
        try await jobWork.value
        #expect(order.all == ["live", "job"], "the live request's work went first although the job waited longer")
        #expect(scheduler.load.running == 0)
    }

    @Test func aJobWaitsForItsTicketWhileLiveWorkWaits() async throws {
        let scheduler = SynthesisScheduler(workers: 1, maxQueue: 4)
        let live = try #require(scheduler.admit())
        let gate = AsyncStream<Void>.makeStream()
        let holding = Task { try await live.withPlace { _ in for await _ in gate.stream { break } } }
        try await Self.eventually { scheduler.load.running == 1 }
        let job = Task { await scheduler.admitBackground() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(scheduler.load.background == 0, "every place is taken: the job worker waits")
        gate.continuation.yield()
        try await holding.value
        #expect(await job.value != nil)
        let waiting = Task { await scheduler.admitBackground() }
        waiting.cancel()
        _ = await waiting.value
    }

    /// A producer that counts its calls and takes a place for each chunk.
    actor CountingProducer: AudioChunkProducer {
        let admission: any SynthesisAdmission
        private(set) var calls = 0
        init(admission: any SynthesisAdmission) { self.admission = admission }
        func next() async throws -> AudioChunk? {
            calls += 1
            let index = calls
            return try await admission.withPlace { place in
                try await place.runBlocking(interrupt: {}) { AudioChunk(samples: [Int16](repeating: 1, count: 100), sampleRate: 22050, sentenceIndex: index) }
            }
        }
    }

    @Test func aStreamWhoseReaderStopsMakesOneChunkAheadAndHoldsNoPlace() async throws {
        let scheduler = SynthesisScheduler(workers: 1, maxQueue: 4)
        let ticket = try #require(scheduler.admit())
        let producer = CountingProducer(admission: ticket)
        let stream = SpeechStream { producer }
        let iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next()?.sentenceIndex == 1)
        #expect(try await iterator.next()?.sentenceIndex == 2)
        // The reader stalls: the next chunk is made, then nothing more, and no place is held.
        for _ in 0..<500 {
            if await producer.calls == 3, scheduler.load.running == 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await producer.calls == 3, "one chunk ahead, no more")
        #expect(scheduler.load.running == 0, "a stalled stream holds no place")
        #expect(try await iterator.next()?.sentenceIndex == 3)
        for _ in 0..<500 where await producer.calls < 4 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await producer.calls == 4)
    }

    /// The first audio goes out before the next sentence's run takes the cores: while the
    /// consumer holds the first chunk nothing is made; the second starts when it is asked for.
    @Test func nothingIsMadeWhileTheConsumerHoldsTheFirstChunk() async throws {
        let scheduler = SynthesisScheduler(workers: 1, maxQueue: 4)
        let ticket = try #require(scheduler.admit())
        let producer = CountingProducer(admission: ticket)
        let iterator = SpeechStream { producer }.makeAsyncIterator()
        #expect(try await iterator.next()?.sentenceIndex == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await producer.calls == 1, "the second chunk was started while the first was still being sent")
        #expect(try await iterator.next()?.sentenceIndex == 2)
        for _ in 0..<500 where await producer.calls < 3 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await producer.calls == 3, "from the second chunk on, one is made ahead")
    }

    /// Two first requests for one voice (by name, by file name and by path) load it once.
    @Test func concurrentFirstRequestsForOneVoiceLoadItOnce() async throws {
        let directory = NSTemporaryDirectory() + "lark-single-load-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let builds = OrderBox()
        var configuration = Checkout.engineConfiguration()
        configuration.voiceCache = OptimizedVoiceCache(directory: directory) { event in
            if case .building = event { builds.append("build") }
        }
        let library = VoiceLibrary(configuration: configuration)
        async let first = library.voice("en_US-joe-medium")
        async let second = library.voice("en_US-joe-medium.onnx")
        async let third = library.voice(Checkout.joeModel)
        let voices = try await [first, second, third]
        #expect(builds.all.count == 1, "one load, not one per request")
        let piper = voices.compactMap { $0 as? PiperVoice }
        #expect(piper.count == 3 && piper.allSatisfy { $0 === piper[0] }, "one model in memory for every name of the file")
        try await library.shutdown()
    }
}

/// Strings appended from several tasks, in order.
final class OrderBox: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ item: String) { list.withLock { $0.append(item) } }
    var all: [String] { list.withLock { $0 } }
}
