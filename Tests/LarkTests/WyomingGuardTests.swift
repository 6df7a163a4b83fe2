import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing
@testable import WyomingServer

/// The Wyoming server's guards, against a real `lark serve --wyoming-port` over raw TCP: a
/// client that never reads is closed after the write timeout, a full scheduler answers `busy`
/// and the connection goes on, `--no-normalize` reaches Wyoming, and a listener other machines
/// can reach needs `--wyoming-allow-remote`. espeak-ng voices: the engine does not matter here.
@Suite(.serialized) struct WyomingGuardTests {
    typealias Server = ServerLifecycleTests.ServerProcess

    static let httpPort = ServerLifecycleTests.port(200)
    static let wyomingPort = ServerLifecycleTests.port(201)
    static let writeTimeout = 6.0
    static let voice = ["-m", "espeak-ng:en", "--data-dir", ServerLifecycleTests.voices] + ServerLifecycleTests.common

    /// One worker and no queue: one live request holds the server's only ticket.
    static let server: Result<Server, any Error> = {
        let result = Result {
            try Server(
                voice + ["--workers", "1", "--max-queue", "0", "--write-timeout", String(Int(writeTimeout)), "--disable-jobs",
                         "--wyoming-port", String(wyomingPort)],
                port: httpPort)
        }
        atexit { (try? WyomingGuardTests.server.get())?.process.terminate() }
        return result
    }()

    /// A Wyoming connection over a plain socket: frames written with the server's own encoder,
    /// events read back as the protocol lays them out (header line, data, payload).
    final class Connection {
        struct Event {
            let type: String
            let data: [String: Any]
            let payloadBytes: Int
        }

        let socket: Int32
        private var received = Data()

        /// Connects, retrying for a while (a server may still be starting).
        init(port: Int, receiveBuffer: Int32? = nil) throws {
            let deadline = Date().addingTimeInterval(30)
            while true {
                do {
                    socket = try connectLoopback(port: port, receiveBuffer: receiveBuffer)
                    break
                } catch where Date() < deadline {
                    usleep(200_000)
                }
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(socket) }

        func send(_ event: WyomingEvent) throws {
            var buffer = ByteBuffer()
            try WyomingFrameEncoder.write(event, to: &buffer)
            let bytes = Array(buffer.readableBytesView)
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { return }
                offset += sent
            }
        }

        /// The next event; nil when the server closed the connection or `seconds` passed.
        func next(seconds: Double = 60) -> Event? {
            let deadline = Date().addingTimeInterval(seconds)
            var bytes = [UInt8](repeating: 0, count: 65536)
            while true {
                if let event = take() { return event }
                guard Date() < deadline else { return nil }
                let count = recv(socket, &bytes, bytes.count, 0)
                if count == 0 { return nil }
                if count < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                    return nil
                }
                received.append(contentsOf: bytes[0..<count])
            }
        }

        /// One whole event from what was received, if there is one.
        private func take() -> Event? {
            guard let newline = received.firstIndex(of: 0x0A),
                  var header = try? JSONSerialization.jsonObject(with: received[received.startIndex..<newline]) as? [String: Any]
            else { return nil }
            let dataLength = header["data_length"] as? Int ?? 0, payloadLength = header["payload_length"] as? Int ?? 0
            let start = received.index(after: newline)
            guard received.endIndex - start >= dataLength + payloadLength else { return nil }
            var data = header["data"] as? [String: Any] ?? [:]
            if dataLength > 0, let extra = try? JSONSerialization.jsonObject(with: received[start..<(start + dataLength)]) as? [String: Any] {
                data.merge(extra) { $1 }
            }
            header["data"] = data
            received = Data(received[(start + dataLength + payloadLength)...])
            return Event(type: header["type"] as? String ?? "", data: data, payloadBytes: payloadLength)
        }
    }

    /// Synthesizes `text` on `connection`: the samples of its audio, or the error's code
    /// ("closed" when the connection ended first).
    static func say(_ text: String, on connection: Connection) throws -> (samples: Int, error: String?) {
        try connection.send(WyomingEvent("synthesize", data: ["text": .string(text)]))
        var samples = 0
        while let event = connection.next() {
            switch event.type {
            case "error": return (samples, event.data["code"] as? String ?? "no code")
            case "audio-chunk": samples += event.payloadBytes / 2
            case "audio-stop": return (samples, nil)
            default: continue
            }
        }
        return (samples, "closed")
    }

    /// Says "Hi." on `connection` until the answer is `wanted` ("busy", or nil for audio), for
    /// at most `seconds`; answers whether it came and when.
    static func poll(_ connection: Connection, until wanted: String?, seconds: Double) throws -> Date? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let answer = try say("Hi.", on: connection)
            if answer.error == wanted, wanted != nil || answer.samples > 0 { return Date() }
            #expect(answer.error == nil || answer.error == "busy", "unexpected answer: \(answer)")
            usleep(100_000)
        }
        return nil
    }

    /// A client that asks for a long text and never reads holds the only ticket (others are told
    /// `busy`) until the write timeout closes its connection; then the server serves again.
    @Test(.timeLimit(.minutes(2))) func aWyomingClientThatNeverReadsIsClosedAfterTheWriteTimeout() throws {
        let server = try Self.server.get()
        let stalled = try Connection(port: Self.wyomingPort, receiveBuffer: 4096)
        let started = Date()
        try stalled.send(WyomingEvent("synthesize", data: ["text": .string(try ServerTests.longText(characters: 2500))]))
        // Its audio has started (only that is read): it holds the ticket from here.
        #expect(stalled.next()?.type == "audio-start")
        let other = try Connection(port: Self.wyomingPort)
        let busy = try Self.poll(other, until: "busy", seconds: 20)
        #expect(busy != nil, "the stalled client's synthesis never held the ticket:\n\(server.log_.suffix(2000))")
        // Freed only by the write timeout: without it the stalled client would hold it forever.
        let freed = try #require(try Self.poll(other, until: nil, seconds: 60), "the stalled client still holds the ticket")
        let waited = freed.timeIntervalSince(started)
        #expect(waited >= Self.writeTimeout, "freed after \(waited) s, before the write timeout")
        // The server closed the stalled connection: what the kernel held arrives, then the end.
        var ended = false
        let deadline = Date().addingTimeInterval(20)
        while !ended && Date() < deadline {
            var bytes = [UInt8](repeating: 0, count: 65536)
            let count = recv(stalled.socket, &bytes, bytes.count, 0)
            ended = count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        }
        #expect(ended, "the stalled connection is still open")
        #expect(server.process.isRunning)
    }

    /// While an HTTP stream holds the only ticket, a Wyoming `synthesize` gets an `error` event
    /// with code `busy`; the same connection then answers `describe`, and speaks once the ticket
    /// is free again.
    @Test(.timeLimit(.minutes(2))) func aFullSchedulerAnswersBusyAndTheConnectionGoesOn() throws {
        let server = try Self.server.get()
        let text = HostileClientTests.encoded(try ServerTests.longText(characters: 2500))
        let stream = try HostileClientTests.RawClient(port: Self.httpPort, receiveBuffer: 4096)
        // A stream (`/read`) holds its ticket until its last sentence is sent; this one stalls.
        stream.send(Data("GET /read?outputFormat=wav&sample_rate=48000&text=\(text) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // Its answer has started (only the status line is read): it holds the ticket from here.
        var status = [UInt8](repeating: 0, count: 12)
        _ = recv(stream.socket, &status, status.count, Int32(MSG_WAITALL))
        #expect(String(decoding: status, as: UTF8.self) == "HTTP/1.1 200")
        let connection = try Connection(port: Self.wyomingPort)
        #expect(try Self.poll(connection, until: "busy", seconds: 20) != nil, "never told busy while the HTTP stream held the ticket:\n\(server.log_.suffix(2000))")
        try connection.send(WyomingEvent("describe"))
        #expect(connection.next()?.type == "info", "the connection does not answer after busy")
        Glibc.shutdown(stream.socket, Int32(SHUT_RDWR))
        #expect(try Self.poll(connection, until: nil, seconds: 60) != nil, "no audio on the same connection once the ticket is free")
    }

    /// The server-wide `--no-normalize` reaches Wyoming requests, which cannot ask for it:
    /// "$42.50" is spoken as written, so its audio differs from the normalized one's. That
    /// server listens on every address, which `--wyoming-allow-remote` allows.
    @Test(.timeLimit(.minutes(2))) func noNormalizeAndAllowRemoteReachTheWyomingServer() throws {
        _ = try Self.server.get()
        let port = ServerLifecycleTests.port(202)
        let remote = try Server(
            Self.voice + ["--host", "0.0.0.0", "--port", String(port), "--wyoming-allow-remote", "--no-normalize"],
            port: port, waitUntilHealthy: false, command: "wyoming")
        let asWritten = try Self.say("It costs $42.50.", on: try Connection(port: port))
        let normalized = try Self.say("It costs $42.50.", on: try Connection(port: Self.wyomingPort))
        #expect(asWritten.error == nil && normalized.error == nil, "\(asWritten) \(normalized)\n\(remote.log_)")
        #expect(asWritten.samples > 0 && asWritten.samples != normalized.samples,
                "as written: \(asWritten.samples) samples, normalized: \(normalized.samples)")
        #expect(remote.process.isRunning)
    }

    /// Without `--wyoming-allow-remote`, a Wyoming listener on 0.0.0.0 (given, or inherited from
    /// `serve --host`) stops the start with one line that says what to do.
    @Test(.timeLimit(.minutes(2))) func aRemoteWyomingAddressIsRefusedWithoutTheFlag() throws {
        let port = ServerLifecycleTests.port(203)
        let starts: [(arguments: [String], command: String)] = [
            (["--host", "0.0.0.0", "--port", String(port)], "wyoming"),
            (["--host", "0.0.0.0", "--wyoming-port", String(ServerLifecycleTests.port(204)), "--disable-jobs"], "serve"),
        ]
        for start in starts {
            let refused = try Server(Self.voice + start.arguments, port: port, waitUntilHealthy: false, command: start.command)
            let deadline = Date().addingTimeInterval(30)
            while refused.process.isRunning && Date() < deadline { usleep(100_000) }
            #expect(!refused.process.isRunning, "lark \(start.command) started on 0.0.0.0 without --wyoming-allow-remote")
            guard !refused.process.isRunning else { continue }
            #expect(refused.process.terminationStatus != 0)
            #expect(refused.log_.contains("--wyoming-allow-remote"), "\(refused.log_.suffix(1000))")
        }
    }
}
