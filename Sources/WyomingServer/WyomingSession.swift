import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SpeechCore
import SpeechService
import Synchronization

/// One client connection. Two tasks share it: the reader turns incoming frames into work, in
/// order (checking what it can on its own: text length, event shapes, stream state, and
/// cutting streamed text into sentences); the speaker does the work one item at a time and
/// writes every outgoing event, so a connection's answers come in the order it asked.
/// Synthesis goes through the same path as the HTTP routes: `VoiceLibrary.prepare`, a ticket
/// from the shared `SynthesisScheduler`, `PreparedSynthesis.start(on:)`. When the client goes
/// away the reader ends and the speaker is cancelled, and with it the synthesis in progress.
struct WyomingSession: Sendable {
    let library: VoiceLibrary
    let scheduler: SynthesisScheduler
    let configuration: WyomingConfiguration
    let metrics: any WyomingMetrics
    let logger: Logger

    /// What the reader hands the speaker.
    enum Work: Sendable {
        case send(WyomingEvent)
        case describe
        case synthesize(String, SpeechInput.Markup, VoiceRequest, received: ContinuousClock.Instant)
        case streamStart(SpeechInput.Markup, VoiceRequest)
        case streamSentence(String, received: ContinuousClock.Instant)
        case streamStop
    }

    /// Work items queued and not yet done: a client that sends far more than it reads is
    /// refused new requests, then disconnected.
    private final class Backlog: Sendable {
        let count = Atomic<Int>(0)
        /// `synthesize` requests queued or being spoken.
        let requests = Atomic<Int>(0)
    }

    /// Requests (a `synthesize` or a stream) that may wait behind the one being spoken.
    static let maxWaitingRequests = 16
    /// Queued items of any kind (errors included) before the connection is closed.
    static let maxBacklog = 4096

    /// `sent`: returns once what was written so far is on the socket (see `say`).
    func run(
        _ inbound: NIOAsyncChannelInboundStream<WyomingFrame>, _ outbound: NIOAsyncChannelOutboundWriter<WyomingEvent>,
        sent: @escaping @Sendable () async -> Void = {}
    ) async {
        let (work, queue) = AsyncStream<Work>.makeStream()
        let backlog = Backlog()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await read(inbound, into: queue, backlog: backlog)
                    } catch {
                        logger.debug("wyoming connection closed while reading", metadata: ["error": "\(error)"])
                    }
                }
                group.addTask {
                    do {
                        try await speak(work, to: outbound, sent: sent, backlog: backlog)
                    } catch {
                        logger.debug("wyoming connection closed while writing", metadata: ["error": "\(error)"])
                    }
                }
                // Either side ending ends the connection: a client gone cancels its synthesis,
                // a connection that cannot be written to (or is drained at shutdown) stops reading.
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            // Nothing new is taken; what was asked is still answered, then the connection closes.
            queue.finish()
        }
    }

    // MARK: - Reading

    /// A stream of text being received (`synthesize-start` … `synthesize-stop`).
    private struct OpenStream {
        var sentences = StreamedSentences()
        var characters = 0
        /// Set once the stream passed the text limit: its remaining text is dropped.
        var refused = false
    }

    private func read(
        _ inbound: NIOAsyncChannelInboundStream<WyomingFrame>, into queue: AsyncStream<Work>.Continuation, backlog: Backlog
    ) async throws {
        var stream: OpenStream?
        func enqueue(_ item: Work) -> Bool {
            guard backlog.count.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxBacklog else { return false }
            queue.yield(item)
            return true
        }
        func refuse(_ code: String, _ text: String) -> Bool {
            enqueue(.send(WyomingEvents.error(code: code, text: text)))
        }
        defer { queue.finish() }
        for try await frame in inbound {
            let event: WyomingEvent
            switch frame {
            case .invalid(let error):
                guard refuse(error.code, error.message) else { return }
                continue
            case .event(let read):
                event = read
            }
            var accepted = true
            switch event.type {
            case "describe":
                accepted = enqueue(.describe)
            case "ping":
                accepted = enqueue(.send(WyomingEvent("pong", data: event.data["text"].map { ["text": $0] } ?? [:])))
            case "select-program":
                let name = event.data["name"]?.string
                if name != configuration.programName {
                    accepted = refuse(
                        "unknown_program", "this server has one program, '\(configuration.programName)', not '\(name ?? "")'")
                }
            case "synthesize":
                // Home Assistant sends the whole text again inside a stream, for older servers.
                if stream != nil { continue }
                guard let text = event.data["text"]?.string else {
                    accepted = refuse("malformed_event", "a 'synthesize' event needs a 'text' string")
                    break
                }
                guard let markup = markup(event) else {
                    accepted = refuse("invalid_text_format", "text_format must be 'text' or 'ssml'")
                    break
                }
                do {
                    try TextLimit.check(text, limit: configuration.maxTextCharacters)
                } catch {
                    accepted = enqueue(.send(WyomingEvents.error(error)))
                    break
                }
                guard backlog.requests.load(ordering: .relaxed) < Self.maxWaitingRequests else {
                    accepted = refuse("busy", "more than \(Self.maxWaitingRequests) requests are waiting on this connection")
                    break
                }
                backlog.requests.wrappingAdd(1, ordering: .relaxed)
                accepted = enqueue(.synthesize(text, markup, VoiceRequest(event.data["voice"]), received: .now))
            case "synthesize-start":
                guard stream == nil else {
                    accepted = refuse("stream_already_open", "a text stream is already open: send synthesize-stop first")
                    break
                }
                guard let markup = markup(event) else {
                    accepted = refuse("invalid_text_format", "text_format must be 'text' or 'ssml'")
                    break
                }
                stream = OpenStream()
                accepted = enqueue(.streamStart(markup, VoiceRequest(event.data["voice"])))
            case "synthesize-chunk":
                guard var open = stream else {
                    accepted = refuse("no_stream", "synthesize-chunk without synthesize-start")
                    break
                }
                guard let text = event.data["text"]?.string else {
                    accepted = refuse("malformed_event", "a 'synthesize-chunk' event needs a 'text' string")
                    break
                }
                guard !open.refused else { continue }
                open.characters += text.unicodeScalars.count
                if open.characters > configuration.maxTextCharacters {
                    open.refused = true
                    accepted = enqueue(.send(WyomingEvents.error(
                        .textTooLong(length: open.characters, limit: configuration.maxTextCharacters))))
                } else {
                    for sentence in open.sentences.add(text) where accepted {
                        accepted = enqueue(.streamSentence(sentence, received: .now))
                    }
                }
                stream = open
            case "synthesize-stop":
                guard var open = stream else {
                    accepted = refuse("no_stream", "synthesize-stop without synthesize-start")
                    break
                }
                if !open.refused, let rest = open.sentences.finish() {
                    accepted = enqueue(.streamSentence(rest, received: .now))
                }
                stream = nil
                accepted = accepted && enqueue(.streamStop)
            default:
                accepted = refuse(
                    "unknown_event",
                    "'\(event.type)' is not an event this text-to-speech server handles (describe, synthesize, synthesize-start, synthesize-chunk, synthesize-stop, ping)")
            }
            guard accepted else {
                logger.info("wyoming client sent more than it read; disconnecting it")
                return
            }
        }
    }

    /// The event's `text_format`: nil when it names neither plain text nor SSML.
    private func markup(_ event: WyomingEvent) -> SpeechInput.Markup? {
        switch event.data["text_format"] {
        case nil, .null?: return .text
        case .string(let format)?: return SpeechInput.Markup(rawValue: format)
        default: return nil
        }
    }

    // MARK: - Speaking

    private func speak(
        _ work: AsyncStream<Work>, to outbound: NIOAsyncChannelOutboundWriter<WyomingEvent>, sent: @Sendable () async -> Void,
        backlog: Backlog
    ) async throws {
        /// The voice of the open stream, or why it has none (reported once, at its start).
        var streamVoice: Result<(id: String, options: SynthesisOptions), any Error>?
        var streamMarkup = SpeechInput.Markup.text
        for await item in work {
            defer { backlog.count.wrappingSubtract(1, ordering: .relaxed) }
            try Task.checkCancellation()
            switch item {
            case .send(let event):
                try await outbound.write(event)
            case .describe:
                try await outbound.write(try await info())
            case .synthesize(let text, let markup, let request, let received):
                defer { backlog.requests.wrappingSubtract(1, ordering: .relaxed) }
                do {
                    let voice = try await resolve(request)
                    try await say(SpeechInput(text, markup: markup, normalize: configuration.normalize), voice: voice, received: received, to: outbound, sent: sent)
                } catch let error as SessionError {
                    try await outbound.write(error.event)
                }
            case .streamStart(let markup, let request):
                streamMarkup = markup
                do {
                    let voice = try await resolve(request)
                    // Fails now, once, for a voice that does not exist.
                    _ = try await library.voice(voice.id)
                    streamVoice = .success(voice)
                } catch {
                    streamVoice = .failure(error)
                    try await outbound.write(SessionError(error).event)
                }
            case .streamSentence(let text, let received):
                guard case .success(let voice)? = streamVoice else { continue }
                do {
                    try await say(SpeechInput(text, markup: streamMarkup, normalize: configuration.normalize), voice: voice, received: received, to: outbound, sent: sent)
                } catch let error as SessionError {
                    try await outbound.write(error.event)
                }
            case .streamStop:
                streamVoice = nil
                try await outbound.write(WyomingEvents.synthesizeStopped)
            }
        }
    }

    /// A synthesis failure to report to the client (the connection goes on); any other error
    /// thrown from `say` is the connection's own (a failed write) and ends it.
    private struct SessionError: Error {
        let event: WyomingEvent

        init(_ error: any Error) {
            if let speech = error as? SpeechError {
                event = WyomingEvents.error(speech)
            } else if let wyoming = error as? WyomingRequestError {
                event = WyomingEvents.error(code: wyoming.code, text: wyoming.message)
            } else {
                event = WyomingEvents.error(code: "internal_error", text: "synthesis failed on the server; the server's log says why")
            }
        }
    }

    /// Speaks one text as one audio stream: `audio-start`, `audio-chunk`s as each sentence is
    /// made, `audio-stop`. Throws `SessionError` for what the client is told (before or after
    /// `audio-start`), anything else when writing failed. The first audio chunk is written
    /// alone and is on the socket (`sent`) before the rest of its sentence is cut into events
    /// and before the next sentence's model run starts (`SpeechStream`), which would take the
    /// cores the event loop and the client need to pass it on.
    private func say(
        _ input: SpeechInput, voice: (id: String, options: SynthesisOptions), received: ContinuousClock.Instant,
        to outbound: NIOAsyncChannelOutboundWriter<WyomingEvent>, sent: @Sendable () async -> Void
    ) async throws {
        let prepared: PreparedSynthesis
        do {
            try TextLimit.check(input.text, limit: configuration.maxTextCharacters)
            prepared = try await library.prepare(
                input, voiceID: voice.id, options: voice.options, defaults: configuration.defaultOptions)
        } catch {
            log(error)
            throw SessionError(error)
        }
        guard let ticket = scheduler.admit() else {
            metrics.rejected()
            throw SessionError(WyomingRequestError.busy)
        }
        defer { ticket.release() }
        let rate = prepared.voice.sampleRate
        let maxSamples = Double(configuration.maxRequestAudio.components.seconds) * Double(rate)
        var samplesSent = 0
        var started = false
        let sentences = prepared.start(on: ticket).makeAsyncIterator()
        while true {
            let chunk: AudioChunk?
            do {
                chunk = try await sentences.next()
            } catch let error where !(error is CancellationError) {
                log(error)
                if started { try await outbound.write(WyomingEvents.audioStop(timestamp: milliseconds(samplesSent, rate))) }
                throw SessionError(error)
            }
            try Task.checkCancellation()
            guard let chunk else { break }
            metrics.produced(chunk, voice: prepared.voice.id)
            var samples = chunk.samples[...]
            if !started {
                started = true
                metrics.timeToFirstAudio(ContinuousClock.now - received)
                let first = samples.prefix(configuration.samplesPerChunk)
                try await outbound.write(contentsOf: [WyomingEvents.audioStart(rate: rate)] + audioChunks(first, rate: rate, from: samplesSent))
                await sent()
                samplesSent += first.count
                samples = samples.dropFirst(first.count)
            }
            let events = audioChunks(samples, rate: rate, from: samplesSent)
            samplesSent += samples.count
            try await outbound.write(contentsOf: events)
            if Double(samplesSent) > maxSamples {
                try await outbound.write(WyomingEvents.audioStop(timestamp: milliseconds(samplesSent, rate)))
                throw SessionError(WyomingRequestError.audioTooLong(seconds: Int(configuration.maxRequestAudio.components.seconds)))
            }
        }
        if !started { try await outbound.write(WyomingEvents.audioStart(rate: rate)) }
        try await outbound.write(WyomingEvents.audioStop(timestamp: milliseconds(samplesSent, rate)))
    }

    /// 16-bit little-endian PCM cut into events of at most `samplesPerChunk` samples, each
    /// stamped with its start in milliseconds from the audio's start.
    private func audioChunks(_ samples: ArraySlice<Int16>, rate: Int, from offset: Int) -> [WyomingEvent] {
        var events: [WyomingEvent] = []
        var start = samples.startIndex
        while start < samples.endIndex {
            let end = min(samples.endIndex, start + configuration.samplesPerChunk)
            var buffer = ByteBufferAllocator().buffer(capacity: (end - start) * 2)
            for sample in samples[start..<end] { buffer.writeInteger(sample, endianness: .little) }
            let position = offset + start - samples.startIndex
            events.append(WyomingEvents.audioChunk(rate: rate, timestamp: milliseconds(position, rate), audio: buffer))
            start = end
        }
        return events
    }

    private func milliseconds(_ samples: Int, _ rate: Int) -> Int {
        samples * 1000 / max(1, rate)
    }

    private func log(_ error: any Error) {
        if let speech = error as? SpeechError, !speech.namesLocalFiles { return }
        logger.error("wyoming synthesis failed: \(error)")
    }

    // MARK: - Voices

    /// The voice id and options a request's `voice` asks for.
    private func resolve(_ request: VoiceRequest) async throws(SessionError) -> (id: String, options: SynthesisOptions) {
        let options = SynthesisOptions(speaker: request.speaker.map(SpeakerSelector.init))
        if let name = request.name { return (name, options) }
        guard let language = request.language else { return (configuration.defaultVoice, options) }
        do {
            let voices = try await library.voices()
            let defaultVoice = try? await library.voice(configuration.defaultVoice).info
            guard let id = VoiceRequest.voice(forLanguage: language, defaultVoice: defaultVoice, voices: voices) else {
                throw WyomingRequestError.unknownLanguage(language)
            }
            return (id, options)
        } catch {
            throw SessionError(error)
        }
    }

    private func info() async throws -> WyomingEvent {
        let document = WyomingInfo(
            programName: configuration.programName, version: configuration.version, voices: try await library.voices())
        let data = try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(document))
        return WyomingEvent("info", data: data)
    }
}

/// Requests the Wyoming server refuses on its own (beyond `SpeechError`'s).
enum WyomingRequestError: Error, Sendable {
    case busy
    case unknownLanguage(String)
    case audioTooLong(seconds: Int)

    var code: String {
        switch self {
        case .busy: return "busy"
        case .unknownLanguage: return "unknown_language"
        case .audioTooLong: return "audio_too_long"
        }
    }

    var message: String {
        switch self {
        case .busy: return "the server is synthesizing as much as it can; try again in a moment"
        case .unknownLanguage(let language): return "no installed voice speaks '\(language)'"
        case .audioTooLong(let seconds): return "the audio passed the server's limit of \(seconds) seconds per request and was cut there"
        }
    }
}
