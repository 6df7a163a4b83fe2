/// Where a synthesis's blocking work waits its turn and runs: every model run (or espeak-ng
/// sentence) of every request takes one place for as long as it runs, then gives it back.
///
/// Admission is per piece of work, not per request: a request whose client reads slowly holds
/// no place while it waits, so stalled clients cannot starve anyone. The server's
/// `SynthesisScheduler` is the one implementation that decides; each request speaks to it
/// through its own handle, which carries the request's priority (live requests before jobs).
public protocol SynthesisAdmission: Sendable {
    /// Waits for a place, holds it while `body` runs, and gives it back however `body` ends.
    func withPlace<T: Sendable>(_ body: @Sendable (any SynthesisPlace) async throws -> T) async throws -> T

    /// Runs an encoder's blocking work (compressing a sentence, writing it to a file) on the
    /// scheduler's encoding threads; it needs no place.
    func encode<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T

    /// What this work asks the engine to do with a run's working memory once the run is over;
    /// nil: what the engine was configured to do (`--memory`). A long job asks for
    /// `.shrinkAfterRun`: its thousands of runs of different lengths would otherwise grow and
    /// fragment the memory pool that interactive requests keep warm. The engine decides.
    var memory: ModelMemory? { get }
}

/// One admitted piece of synthesis work's place.
public protocol SynthesisPlace: Sendable {
    /// True when nothing else is synthesizing: the work may use every core (a model's wide session).
    var alone: Bool { get }

    /// Runs blocking `work` on a synthesis thread, never on the caller's (an event loop or
    /// Swift's cooperative pool). Cancelling the calling task while `work` runs calls
    /// `interrupt` from another thread, which should make `work` return soon.
    func runBlocking<T: Sendable>(
        interrupt: @escaping @Sendable () -> Void, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T
}

/// A synthesis whose text, voice and options have been checked (once), ready to start.
/// `SpeechVoice.prepare` makes it; `start` runs it under an admission.
public struct PreparedSynthesis: Sendable {
    public let voice: VoiceInfo
    public let text: String
    /// The request's options merged over the server's defaults, validated.
    public let options: SynthesisOptions
    private let body: @Sendable (any SynthesisAdmission) -> any AudioChunkProducer

    /// `body` makes the producer of one run of this synthesis under an admission.
    public init(
        voice: VoiceInfo, text: String, options: SynthesisOptions,
        body: @escaping @Sendable (any SynthesisAdmission) -> any AudioChunkProducer
    ) {
        self.voice = voice
        self.text = text
        self.options = options
        self.body = body
    }

    /// The same synthesis presented as `text`, with every chunk passed through `transform`: how a
    /// layer that rewrote the caller's text (normalization, SSML) maps marks back into it.
    public func mappingChunks(text: String, _ transform: @escaping @Sendable (AudioChunk) -> AudioChunk) -> PreparedSynthesis {
        let body = body
        return PreparedSynthesis(voice: voice, text: text, options: options) { admission in
            MappedChunks(inner: body(admission), transform: transform)
        }
    }

    /// The audio, one chunk per sentence (or per piece of an overlong one), made at most one
    /// chunk ahead of the consumer (see `SpeechStream`).
    public func start(on admission: any SynthesisAdmission) -> SpeechStream {
        let body = body
        return SpeechStream { body(admission) }
    }
}

/// Another producer's chunks, each transformed.
private struct MappedChunks: AudioChunkProducer {
    let inner: any AudioChunkProducer
    let transform: @Sendable (AudioChunk) -> AudioChunk

    func next() async throws -> AudioChunk? {
        try await inner.next().map(transform)
    }
}

/// An engine's synthesis of one text, one chunk at a time. `next` is never called again before
/// the previous call returned; nil means the text is spoken.
public protocol AudioChunkProducer: Sendable {
    func next() async throws -> AudioChunk?
}

/// The chunks of a synthesis, made as fast as the consumer takes them: while the consumer holds
/// chunk N (encoding it, writing it to a slow client), chunk N+1 is made, and then nothing more
/// until the consumer asks. A consumer that stops reading therefore stops the synthesis one chunk
/// later, holding no synthesis place and no audio beyond that chunk. Cancelling the consuming
/// task, or dropping the iterator, cancels the chunk being made.
///
/// The first chunk is the exception: the second is started only when the consumer asks for it,
/// so the first audio is encoded and written before the next model run starts. A run alone takes
/// every core (a voice's wide session), and the threads that send the first audio (the
/// consumer's, the event loop's, the client's) would otherwise wait for them; the second
/// sentence still has the whole first one's playing time to be made.
public struct SpeechStream: AsyncSequence, Sendable {
    public typealias Element = AudioChunk
    private let makeProducer: @Sendable () -> any AudioChunkProducer

    public init(_ makeProducer: @escaping @Sendable () -> any AudioChunkProducer) {
        self.makeProducer = makeProducer
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(producer: makeProducer())
    }

    /// Used by one task at a time (an `AsyncIteratorProtocol`'s contract).
    public final class Iterator: AsyncIteratorProtocol {
        private let producer: any AudioChunkProducer
        /// The next chunk, being made while the consumer holds the current one.
        private var ahead: Task<AudioChunk?, any Error>?
        private var finished = false
        private var delivered = 0

        init(producer: any AudioChunkProducer) {
            self.producer = producer
        }

        public func next() async throws -> AudioChunk? {
            guard !finished else { return nil }
            let producer = producer
            let current = ahead ?? Task { try await producer.next() }
            ahead = nil
            let chunk: AudioChunk?
            do {
                chunk = try await withTaskCancellationHandler {
                    try await current.value
                } onCancel: {
                    current.cancel()
                }
                try Task.checkCancellation()
            } catch {
                finished = true
                current.cancel()
                throw error
            }
            guard let chunk else {
                finished = true
                return nil
            }
            delivered += 1
            if delivered > 1 { ahead = Task { try await producer.next() } }
            return chunk
        }

        deinit {
            ahead?.cancel()
        }
    }
}
