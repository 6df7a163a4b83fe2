import Foundation
import NIOCore
import SpeechCore
import Testing
@testable import WyomingServer

/// The Wyoming server of a real `lark serve --wyoming-port`, driven by the `wyoming` package's
/// own client (Tests/clients/wyoming_test.py, one scenario per test). Serialized: the
/// disconnect scenario reads the server's sentence counter, which the others would move.
@Suite(.serialized) struct WyomingTests {
    static let python = Checkout.deps + "/clients-venv/bin/python"
    static let script = Checkout.root + "/Tests/clients/wyoming_test.py"
    static let maxTextChars = 3000
    static let wyomingPort = ServerLifecycleTests.port(171)

    /// One server for the suite, stopped when the test process exits.
    static let server: Result<ServerLifecycleTests.ServerProcess, any Error> = {
        let result = Result {
            try ServerLifecycleTests.ServerProcess(
                ["--data-dir", ServerLifecycleTests.voices, "--workers", "2", "--disable-jobs",
                 "--max-text-chars", String(maxTextChars), "--wyoming-port", String(wyomingPort)] + ServerLifecycleTests.common,
                port: ServerLifecycleTests.port(170))
        }
        atexit { (try? WyomingTests.server.get())?.process.terminate() }
        return result
    }()

    func run(_ scenario: String, server: ServerLifecycleTests.ServerProcess? = nil, wyomingPort: Int = WyomingTests.wyomingPort) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python): run `make setup`")
        let server = try server ?? Self.server.get()
        let arguments = [
            Self.script, "--port", String(wyomingPort), "--http-port", String(server.port),
            "--max-text-chars", String(Self.maxTextChars), scenario,
        ]
        // On a thread of its own: the script takes seconds, and the cooperative pool is small.
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            Thread { continuation.resume(with: Result { try runProcess(Self.python, arguments) }) }.start()
        }
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        #expect(result.status == 0, "Tests/clients/wyoming_test.py \(scenario) failed:\n\(output)\nserver log:\n\(server.log_.suffix(3000))")
        if result.status == 0 { print(output.split(separator: "\n").filter { $0.hasPrefix("[wyoming]") }.joined(separator: "\n")) }
    }

    // Five minutes: on a slower CPU the rest of the suite's blocking tests have held both
    // cooperative threads for over two minutes (JobStoreTests says more).
    @Test(.timeLimit(.minutes(5))) func describeListsEveryVoice() async throws { try await run("describe") }
    @Test(.timeLimit(.minutes(5))) func synthesizesWithPiperAndEspeakVoices() async throws { try await run("synthesize") }
    @Test(.timeLimit(.minutes(5))) func streamsSentencesBeforeTheTextEnds() async throws { try await run("streaming") }
    @Test(.timeLimit(.minutes(2))) func servesClientsAtOnce() async throws { try await run("concurrent") }
    @Test(.timeLimit(.minutes(2))) func badInputGetsErrorsAndTheConnectionGoesOn() async throws { try await run("bad_input") }
    @Test(.timeLimit(.minutes(2))) func aClientThatLeavesStopsItsSynthesis() async throws { try await run("disconnect") }

    /// `lark wyoming`: the Wyoming server alone, on its own `--port`, with no HTTP server.
    @Test(.timeLimit(.minutes(2))) func wyomingCommandServesAlone() async throws {
        let port = ServerLifecycleTests.port(174)
        let alone = try ServerLifecycleTests.ServerProcess(
            ["--port", String(port), "--data-dir", ServerLifecycleTests.voices] + ServerLifecycleTests.common,
            port: port, waitUntilHealthy: false, command: "wyoming")
        try await run("describe", server: alone, wyomingPort: port)
        #expect(alone.process.isRunning)
        #expect(!alone.log_.contains("HummingbirdCore"), "lark wyoming started an HTTP server:\n\(alone.log_)")
    }
}

/// The frame codec alone: frames split anywhere, merged data, limits, recovery after bad frames.
@Suite struct WyomingCodecTests {
    static let limits = WyomingFrameLimits(headerBytes: 200, dataBytes: 100, payloadBytes: 64)

    static func frame(_ event: WyomingEvent) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try WyomingFrameEncoder.write(event, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// Feeds `bytes` in pieces of `step` bytes; answers every frame decoded.
    static func decode(_ bytes: [UInt8], step: Int, limits: WyomingFrameLimits = limits) -> [WyomingFrame] {
        var decoder = WyomingFrameDecoder(limits: limits)
        var buffer = ByteBuffer()
        var frames: [WyomingFrame] = []
        var offset = 0
        while offset < bytes.count {
            buffer.writeBytes(bytes[offset..<min(bytes.count, offset + step)])
            offset += step
            while let frame = decoder.next(&buffer) { frames.append(frame) }
            buffer.discardReadBytes()
        }
        return frames
    }

    @Test func eventsSurviveAnySplit() throws {
        let chunk = WyomingEvent(
            "audio-chunk", data: ["rate": .int(22050), "width": .int(2), "channels": .int(1), "timestamp": .int(46)],
            payload: ByteBuffer(bytes: [1, 2, 3, 4, 0x0A, 0x0A]))
        let text = WyomingEvent("synthesize", data: ["text": .string("Grüße\n{\"x\"}"), "voice": .object(["name": .string("joe")])])
        let bare = WyomingEvent("describe")
        let bytes = try Self.frame(chunk) + Self.frame(text) + Self.frame(bare)
        for step in [1, 2, 3, 7, 64, bytes.count] {
            #expect(Self.decode(bytes, step: step) == [.event(chunk), .event(text), .event(bare)], "split every \(step) bytes")
        }
    }

    @Test func headerLinesAreWhatPythonWrites() throws {
        let bytes = try Self.frame(WyomingEvent("audio-start", data: ["rate": .int(22050)]))
        let line = String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(header["type"] as? String == "audio-start")
        #expect(header["version"] as? String == WyomingEvent.protocolVersion)
        #expect(header["payload_length"] == nil)
        let dataLength = try #require(header["data_length"] as? Int)
        #expect(String(decoding: bytes.suffix(dataLength), as: UTF8.self) == #"{"rate":22050}"#)
    }

    @Test func dataPartIsMergedOverTheHeadersData() {
        let bytes = Array(#"{"type":"synthesize","data":{"text":"old","keep":1},"data_length":14}"#.utf8) + [0x0A]
            + Array(#"{"text":"new"}"#.utf8)
        #expect(Self.decode(bytes, step: 5) == [.event(WyomingEvent("synthesize", data: ["text": .string("new"), "keep": .int(1)]))])
    }

    @Test func oversizedAndMalformedFramesAreSkippedAndReadingGoesOn() throws {
        let ping = try Self.frame(WyomingEvent("ping"))
        var bytes: [UInt8] = []
        bytes += Array("not json\n".utf8) + ping
        bytes += Array(#"{"type":"x","data_length":101}"#.utf8) + [0x0A] + Array(repeating: 0x7B, count: 101) + ping
        bytes += Array(#"{"type":"x","payload_length":65}"#.utf8) + [0x0A] + Array(repeating: 0x0A, count: 65) + ping
        bytes += Array(#"{"type":"x","data_length":3}"#.utf8) + [0x0A] + Array("[1]".utf8) + ping
        bytes += Array(repeating: 0x61, count: 500) + [0x0A] + ping
        bytes += Array(#"{"type":"x","data_length":-1}"#.utf8) + [0x0A] + ping
        bytes += Array("\n\r\n".utf8) + ping
        for step in [1, 13, bytes.count] {
            let frames = Self.decode(bytes, step: step)
            #expect(frames == [
                .invalid(.malformedHeader("not valid JSON")), .event(WyomingEvent("ping")),
                .invalid(.dataTooLarge(length: 101, limit: 100)), .event(WyomingEvent("ping")),
                .invalid(.payloadTooLarge(length: 65, limit: 64)), .event(WyomingEvent("ping")),
                .invalid(.malformedData(type: "x")), .event(WyomingEvent("ping")),
                .invalid(.headerTooLong(limit: 200)), .event(WyomingEvent("ping")),
                .invalid(.malformedHeader("lengths must not be negative and the type not empty")), .event(WyomingEvent("ping")),
                .event(WyomingEvent("ping")),
            ], "split every \(step) bytes")
        }
    }

    @Test func limitsMakeRoomForTheLongestText() {
        let limits = WyomingFrameLimits.forText(maxTextCharacters: 10_000)
        #expect(limits.dataBytes >= 120_000 && limits.headerBytes == limits.dataBytes)
    }

    @Test func streamedTextIsCutAtCompleteSentences() {
        var stream = StreamedSentences()
        var spoken: [String] = []
        for piece in ["Hello", " there", ".", " How", " are", " you", "? ", "I'm", " fine", ".\"", " Bye"] {
            spoken += stream.add(piece)
        }
        #expect(spoken == ["Hello there.", "How are you?", "I'm fine.\""])
        #expect(stream.finish() == "Bye")
        #expect(stream.finish() == nil)
        // A word cut in two stays one word.
        var words = StreamedSentences()
        #expect(words.add("One. Two thou") == ["One."])
        #expect(words.add("sand.") == [])
        #expect(words.finish() == "Two thousand.")
    }

    @Test func aLanguageAlonePicksAVoiceForIt() {
        let joe = VoiceInfo(id: "en_US-joe-medium", engine: .piper, name: "joe", languageCode: "en_US", sampleRate: 22050)
        let alba = VoiceInfo(id: "en_GB-alba-medium", engine: .piper, name: "alba", languageCode: "en_GB", sampleRate: 22050)
        let german = VoiceInfo(id: "espeak-ng:de", engine: .espeakNG, name: "German", languageCode: "de", sampleRate: 22050)
        let voices = [alba, joe, german]
        #expect(VoiceRequest.voice(forLanguage: "en_GB", defaultVoice: joe, voices: voices) == "en_GB-alba-medium")
        #expect(VoiceRequest.voice(forLanguage: "en-us", defaultVoice: joe, voices: voices) == "en_US-joe-medium")
        #expect(VoiceRequest.voice(forLanguage: "en", defaultVoice: joe, voices: voices) == "en_US-joe-medium")
        #expect(VoiceRequest.voice(forLanguage: "de_DE", defaultVoice: joe, voices: voices) == "espeak-ng:de")
        #expect(VoiceRequest.voice(forLanguage: "fi", defaultVoice: joe, voices: voices) == nil)
        #expect(VoiceRequest(.object(["name": .string("joe"), "speaker": .int(3)])) == VoiceRequest(name: "joe", speaker: "3"))
    }
}

/// `--wyoming-zeroconf` through a real Avahi: a private D-Bus bus and an avahi-daemon that uses
/// the loopback interface only (nothing leaves the machine), `avahi-browse` as Home Assistant's
/// discovery would see it.
@Suite struct WyomingZeroconfTests {
    static let tools = ["/usr/bin/dbus-daemon", "/usr/sbin/avahi-daemon", "/usr/bin/avahi-publish", "/usr/bin/avahi-browse"]

    /// Runs a program that daemonizes (`posix_spawn`, then waits for the parent's exit), with
    /// no standard streams. Not with Foundation's `Process`: it watches a child's exit through a
    /// descriptor the child inherits, which a daemon keeps (or closes early), so that
    /// `waitUntilExit` hangs (or its reaper blocks every other child's).
    static func daemonize(_ path: String, _ arguments: [String], environment: [String: String]) throws {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        guard posix_spawn(&pid, path, &actions, nil, argv, env) == 0 else { throw ProbeError(message: "\(path) did not start") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0 else { throw ProbeError(message: "\(path) failed to start (wait status \(status))") }
    }

    /// A private system bus and an avahi-daemon on it, stopped by `deinit`.
    final class Avahi: @unchecked Sendable {
        let directory = NSTemporaryDirectory() + "lark-avahi-\(UUID().uuidString)"
        var environment: [String: String] { ["DBUS_SYSTEM_BUS_ADDRESS": "unix:path=\(directory)/bus"] }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>system</type>
              <listen>unix:path=\(directory)/bus</listen>
              <pidfile>\(directory)/bus.pid</pidfile>
              <auth>EXTERNAL</auth>
              <policy context="default">
                <allow user="*"/>
                <allow own="*"/>
                <allow send_destination="*" eavesdrop="true"/>
                <allow eavesdrop="true"/>
              </policy>
            </busconfig>
            """.write(toFile: directory + "/bus.conf", atomically: true, encoding: .utf8)
            try """
            [server]
            allow-interfaces=lo
            use-ipv4=yes
            use-ipv6=no
            enable-dbus=yes
            [publish]
            publish-workstation=no
            publish-hinfo=no
            """.write(toFile: directory + "/avahi.conf", atomically: true, encoding: .utf8)
            try WyomingZeroconfTests.daemonize(
                "/usr/bin/dbus-daemon", ["--config-file=\(directory)/bus.conf", "--fork"], environment: [:])
            try WyomingZeroconfTests.daemonize(
                "/usr/sbin/avahi-daemon",
                ["-D", "--no-drop-root", "--no-chroot", "--no-rlimits", "--no-proc-title", "-f", directory + "/avahi.conf"],
                environment: environment)
        }

        /// `name`'s `_wyoming._tcp` port as avahi-browse resolves it, or nil.
        func browse(_ name: String) throws -> Int? {
            let result = try runProcess("/usr/bin/avahi-browse", ["-rpt", "_wyoming._tcp"], environment: environment)
            for line in String(decoding: result.stdout, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: ";", omittingEmptySubsequences: false)
                if fields.count >= 9, fields[0] == "=", fields[3] == name { return Int(fields[8]) }
            }
            return nil
        }

        deinit {
            // SIGKILL: daemons started from here may have inherited an ignored SIGTERM.
            for pidFile in ["/run/avahi-daemon/pid", directory + "/bus.pid"] {
                if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                   let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGKILL)
                }
            }
            try? FileManager.default.removeItem(atPath: "/run/avahi-daemon/pid")
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test(.timeLimit(.minutes(2))) func advertisesWyomingWhileTheServerRuns() throws {
        let missing = Self.tools.filter { !FileManager.default.isExecutableFile(atPath: $0) }
        try #require(missing.isEmpty, "missing \(missing): run `make setup`")
        let avahi = try Avahi()
        let name = "lark-test-\(getpid())"
        let wyomingPort = ServerLifecycleTests.port(173)
        let server = try ServerLifecycleTests.ServerProcess(
            ["--data-dir", ServerLifecycleTests.voices, "--disable-jobs", "--wyoming-port", String(wyomingPort),
             "--wyoming-zeroconf", name] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(172), environment: avahi.environment)
        var advertised: Int?
        for _ in 0..<40 where advertised == nil {
            advertised = try avahi.browse(name)
            if advertised == nil { usleep(250_000) }
        }
        #expect(advertised == wyomingPort, "not advertised; server log:\n\(server.log_.suffix(2000))")
        server.process.terminate()
        #expect(server.waitForExit(seconds: 20) == 0)
        // The advertisement goes with the server.
        var gone = false
        for _ in 0..<40 where !gone {
            gone = try avahi.browse(name) == nil
            if !gone { usleep(250_000) }
        }
        #expect(gone, "still advertised after the server stopped")
    }
}
