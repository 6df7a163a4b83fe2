import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Careless and hostile clients against a real `lark serve` over loopback: readers that stall,
/// a body where none belongs, clients that leave in the middle of a synthesis.
@Suite(.serialized) struct HostileClientTests {
    typealias Server = ServerLifecycleTests.ServerProcess

    static let common = ["--data-dir", ServerLifecycleTests.voices] + ServerLifecycleTests.common

    /// A raw TCP connection to the server, with a small receive buffer when asked (a client
    /// that reads slowly fills it at once).
    final class RawClient {
        let socket: Int32

        init(port: Int, receiveBuffer: Int32? = nil) throws {
            socket = try connectLoopback(port: port, receiveBuffer: receiveBuffer)
        }

        func send(_ data: Data) {
            data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let sent = Glibc.send(socket, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                    guard sent > 0 else { return }
                    offset += sent
                }
            }
        }

        /// Everything until the server closes the connection, or until `seconds` pass.
        func readAll(seconds: Double) -> (data: Data, closedByServer: Bool) {
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let deadline = Date().addingTimeInterval(seconds)
            var data = Data()
            var bytes = [UInt8](repeating: 0, count: 65536)
            while Date() < deadline {
                let count = recv(socket, &bytes, bytes.count, 0)
                if count == 0 { return (data, true) }
                if count < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                    return (data, true)  // reset by the server
                }
                data.append(contentsOf: bytes[0..<count])
            }
            return (data, false)
        }

        deinit { close(socket) }
    }

    /// Seconds of CPU the process has used (user and system).
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (Double(fields[11])! + Double(fields[12])!) / ticks
    }

    /// Sockets of the server's port in CLOSE-WAIT (the client closed, the server did not).
    static func closeWaitCount(port: Int) throws -> Int {
        let result = try runProcess("/usr/bin/ss", ["-tanH", "state", "close-wait", "sport", "= :\(port)"])
        return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").count
    }

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
    }

    /// Two readers that stop reading a long stream hold no synthesis place: a third client is
    /// served at once; the server stops synthesizing for them, and after the write timeout it
    /// closes their connections.
    @Test func stalledReadersStarveNobodyAndAreDisconnected() throws {
        let port = ServerLifecycleTests.port(110)
        // A write timeout long enough to show that the synthesis stops by itself first (24 s: on a
        // slower CPU, with the rest of the suite running, the sentences the kernel's buffers took
        // kept the server busy past the 8 s this test once allowed).
        let server = try Server(Self.common + ["--workers", "2", "--write-timeout", "24", "--disable-jobs"], port: port)
        let text = try ServerTests.longText(characters: 2500)
        let request = "GET /read?outputFormat=wav&sample_rate=48000&text=\(Self.encoded(text)) HTTP/1.1\r\nHost: x\r\n\r\n"
        // Warm up: two long sentences at once grow the model's memory to its working size.
        let warm = try ServerTests.longText(characters: 600).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let warming = (0..<2).map { _ in Thread { _ = try? server.curl("/?text=\(warm)") } }
        warming.forEach { $0.start() }
        while warming.contains(where: { !$0.isFinished }) { usleep(50_000) }
        let idle = try residentKiB(of: server.pid)

        let started = Date()
        let stalled = try (0..<2).map { _ in try RawClient(port: port, receiveBuffer: 4096) }
        for client in stalled { client.send(Data(request.utf8)) }
        usleep(1_500_000)

        let start = Date()
        let other = try server.curl("/?text=Hi.", ["--max-time", "20"])
        let waited = Date().timeIntervalSince(start)
        #expect(other.status == 200, "a third client is served while two readers stall")
        #expect(waited < 8, "answered in \(waited) s")

        // Stalled streams make one sentence ahead and stop (the text has about 30 sentences):
        // the server idles while both connections are still open, and holds no more.
        // Watched until a few seconds before the write timeout, so that an idle server is one that
        // stopped by itself, not one that closed the connections.
        var cpuSpent = Double.infinity
        for _ in 0..<20 where cpuSpent >= 0.1 && Date().timeIntervalSince(started) < 19 {
            let cpuBefore = try Self.cpuSeconds(of: server.pid)
            usleep(1_000_000)
            cpuSpent = try Self.cpuSeconds(of: server.pid) - cpuBefore
        }
        #expect(cpuSpent < 0.1, "\(cpuSpent) CPU-seconds a second while both readers stall")
        // The server's last write to the stalled readers came before it went idle.
        let idleAt = Date()
        let stalledAt = try residentKiB(of: server.pid)
        usleep(2_000_000)
        let now = try residentKiB(of: server.pid)
        #expect(now - stalledAt < 8 * 1024, "resident memory went on growing while the readers stalled: \(stalledAt / 1024) → \(now / 1024) MiB")
        // Beyond that, only the model's working memory for these longer sentences (before the
        // one-sentence lookahead, a few stalled readers took 707 MB in 10 s).
        #expect(now - idle < 400 * 1024, "resident memory grew \((now - idle) / 1024) MiB with two stalled readers")

        // After the write timeout (24 s from when the connections stalled, which is before the
        // server went idle; on a slow CPU the kernel's buffers take sentences made until late) the
        // server has closed both: what the kernel still held arrives, then the end.
        let closedBy = max(started.addingTimeInterval(30), idleAt.addingTimeInterval(24 + 4))
        if closedBy > Date() { usleep(UInt32(closedBy.timeIntervalSinceNow * 1_000_000)) }
        for client in stalled {
            let (data, closed) = client.readAll(seconds: 10)
            #expect(closed, "a reader that took nothing for the write timeout is disconnected (\(data.count) bytes, \(Date().timeIntervalSince(started)) s)")
            #expect(data.count < 4 << 20, "\(data.count) bytes were waiting for the stalled reader")
        }
        let metrics = PrometheusText(try server.curl("/metrics").body)
        #expect(metrics["lark_synthesis_in_flight"] == 0)
    }

    /// A GET with a body is answered (after the body is dropped) and its connection not left in
    /// CLOSE-WAIT; a body over the limit is 413 with the JSON error body.
    @Test func aBodyOnAGetIsAnsweredAndLeavesNoCloseWait() throws {
        let port = ServerLifecycleTests.port(111)
        let server = try Server(Self.common + ["--disable-jobs"], port: port)
        for _ in 0..<3 {
            let client = try RawClient(port: port)
            let body = Data(repeating: 0x61, count: 40 * 1024)
            client.send(Data("GET /?text=Hi. HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            let (answer, _) = client.readAll(seconds: 15)
            #expect(String(decoding: answer.prefix(12), as: UTF8.self) == "HTTP/1.1 200", "\(String(decoding: answer.prefix(200), as: UTF8.self))")
        }
        let huge = try server.curl("/voices", ["-X", "GET", "--data-binary", "@-", "-H", "Content-Type: text/plain"],
                                   input: Data(repeating: 0x61, count: 2 << 20))
        #expect(huge.status == 413 && huge.errorCode == "body_too_large")
        usleep(500_000)
        #expect(try Self.closeWaitCount(port: port) == 0)
        #expect(try server.curl("/healthz").status == 200)
    }

    /// A client that sends a long text with POST / and leaves a second later stops the
    /// synthesis: the server's CPU goes quiet instead of speaking the rest.
    @Test func aPostWhoseClientLeavesStopsItsSynthesis() throws {
        let port = ServerLifecycleTests.port(112)
        let server = try Server(Self.common + ["--workers", "2", "--disable-jobs"], port: port)
        let text = Data(String(repeating: "This sentence is spoken to nobody at all. ", count: 80).utf8)
        let client = try RawClient(port: port)
        client.send(Data("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(text.count)\r\n\r\n".utf8) + text)
        let busy = try Self.cpuSeconds(of: server.pid)
        var started = false
        for _ in 0..<100 where !started {
            usleep(100_000)
            started = try Self.cpuSeconds(of: server.pid) - busy > 0.3
        }
        #expect(started, "the synthesis had started")
        Glibc.shutdown(client.socket, Int32(SHUT_RDWR))
        usleep(1_000_000)
        let cpuBefore = try Self.cpuSeconds(of: server.pid)
        usleep(3_000_000)
        let spent = try Self.cpuSeconds(of: server.pid) - cpuBefore
        #expect(spent < 0.5, "\(spent) CPU-seconds in the 3 s after the client left (80 sentences would take far more)")
        #expect(try Self.closeWaitCount(port: port) == 0)
        #expect(try server.curl("/?text=Still%20here.").status == 200)
    }
}
