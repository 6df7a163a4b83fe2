import Foundation
import AudioStorage
import PiperEngine
import SpeechService

/// Paths of the checkout and of what `make setup` installed, for tests.
enum Checkout {
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let deps = root + "/.deps"
    static let joeModel = deps + "/voices/en_US-joe-medium.onnx"
    static let referencePython = deps + "/piper-venv/bin/python"
    static let resources = root + "/Tests/LarkTests/Resources"
    /// The `lark` binary under test (`make test` passes it; a plain `swift test` finds the debug build).
    static let larkBinary = ProcessInfo.processInfo.environment["LARK_BIN"] ?? root + "/.build/debug/lark"

    static func engineConfiguration(workers: Int = 1, dataDirectories: [String]? = nil) -> EngineConfiguration {
        EngineConfiguration(
            dataDirectories: dataDirectories ?? [deps + "/voices"], espeakDataPath: deps, threadsPerSession: 1,
            workers: workers, allowVoicePaths: true, voiceCache: OptimizedVoiceCache(directory: voiceCacheDirectory))
    }

    /// The optimized-voice cache of the tests' own libraries (the `lark` processes they start
    /// use the default one, as a user's would).
    static let voiceCacheDirectory = root + "/.build/test-voice-cache"

    /// One library for the whole test process: voices load once.
    static let library = VoiceLibrary(configuration: engineConfiguration())

    /// The tests' synthesis scheduler (two places, as on this machine's two cores).
    static let scheduler = SynthesisScheduler(workers: 2, maxQueue: 64)

    /// A live request's admission at the tests' scheduler.
    static func admission() -> SynthesisTicket {
        guard let ticket = scheduler.admit() else { preconditionFailure("the tests' scheduler is full") }
        return ticket
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
}

/// Runs a program to completion, feeding `input` on standard input.
func runProcess(_ executable: String, _ arguments: [String], input: Data = Data(), environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let stdinPipe = Pipe(), stdoutPipe = Pipe(), stderrPipe = Pipe()
    process.standardInput = stdinPipe
    process.standardOutput = stdoutPipe
    process.standardError = stderrPipe
    try process.run()
    // Read both pipes concurrently so neither fills up and blocks the child.
    nonisolated(unsafe) var errorData = Data()
    let errorReader = Thread { errorData = stderrPipe.fileHandleForReading.readDataToEndOfFile() }
    errorReader.start()
    stdinPipe.fileHandleForWriting.write(input)
    try stdinPipe.fileHandleForWriting.close()
    let output = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errorReader.isFinished { usleep(1000) }
    return ProcessResult(status: process.terminationStatus, stdout: output, stderr: String(decoding: errorData, as: UTF8.self))
}

/// Facts ffprobe reads from an audio file.
struct Probe {
    var codec: String
    var sampleRate: Int
    var channels: Int
    var duration: Double

    init(file: String) throws {
        let result = try runProcess("/usr/bin/ffprobe", [
            "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels:format=duration",
            "-of", "json", file,
        ])
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any],
              let stream = (json["streams"] as? [[String: Any]])?.first,
              let format = json["format"] as? [String: Any]
        else { throw ProbeError(message: result.stderr) }
        codec = stream["codec_name"] as? String ?? ""
        sampleRate = Int(stream["sample_rate"] as? String ?? "") ?? 0
        channels = stream["channels"] as? Int ?? 0
        duration = Double(format["duration"] as? String ?? "") ?? 0
    }
}

struct ProbeError: Error { var message: String }

/// Runs `body`, then shuts `store` down however `body` ended (awaited, unlike a `Task` in a `defer`).
func withShutdown<T>(of store: any ObjectStore, _ body: () async throws -> T) async throws -> T {
    let result: Result<T, any Error>
    do {
        result = .success(try await body())
    } catch {
        result = .failure(error)
    }
    try? await store.shutdown()
    return try result.get()
}
