import Foundation
import PiperEngine
import SpeechCore
import SpeechService

/// Where this copy of Lark keeps what `make setup` installed (`.deps/`): the checkout the binary
/// was built in, found by walking up from the executable, or the current directory.
enum Installation {
    static let depsDirectory: String? = {
        var candidates: [URL] = []
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(directory.appendingPathComponent(".deps"))
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".deps"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }?.path
    }()
}

/// A yes/no `LARK_*` variable: 1/true/yes/on or 0/false/no/off; nil when unset or anything else.
func environmentFlag(_ value: String?) -> Bool? {
    switch value?.lowercased() {
    case "1", "true", "yes", "on": return true
    case "0", "false", "no", "off": return false
    default: return nil
    }
}

extension EngineOptions {
    /// Arguments first, then `LARK_*` variables, then defaults.
    /// `defaultThreads`: ONNX Runtime threads for a lone sentence when neither `--threads` nor
    /// `LARK_THREADS` says.
    func engineConfiguration(workers: Int = 1, defaultThreads: Int = 1, allowVoicePaths: Bool) -> EngineConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var directories = dataDirectories
        if directories.isEmpty, let fromEnvironment = environment["LARK_DATA_DIR"], !fromEnvironment.isEmpty {
            directories = fromEnvironment.split(separator: ":").map(String.init)
        }
        if directories.isEmpty {
            if let deps = Installation.depsDirectory { directories.append(deps + "/voices") }
            directories.append(FileManager.default.currentDirectoryPath)
        }
        var espeakPath = espeakData ?? environment["LARK_ESPEAK_DATA"]
        if espeakPath == nil, let deps = Installation.depsDirectory,
           FileManager.default.fileExists(atPath: deps + "/espeak-ng-data/phontab") {
            espeakPath = deps
        }
        let threads = threads ?? environment["LARK_THREADS"].flatMap(Int.init) ?? defaultThreads
        let cuda = cuda || environmentFlag(environment["LARK_CUDA"]) == true
        let memory = memory ?? environment["LARK_MEMORY"].flatMap(ModelMemory.init) ?? .keep
        let rewrite = rewriteConvolutions ?? environmentFlag(environment["LARK_REWRITE_CONVOLUTIONS"]) ?? true
        let cached = !noVoiceCache && environmentFlag(environment["LARK_VOICE_CACHE"]) != false
        var configuration = EngineConfiguration(
            dataDirectories: directories, espeakDataPath: espeakPath, threadsPerSession: max(0, threads),
            workers: workers, useCUDA: cuda, allowVoicePaths: allowVoicePaths, memory: memory,
            rewriteConvolutions: rewrite, voiceCache: cached ? voiceCache : nil)
        // validate() has refused a precision that cannot run here before any command starts.
        configuration.precision = (try? resolvedPrecision()) ?? .fp32
        configuration.spinWait = spinWait ?? environmentFlag(environment["LARK_SPIN_WAIT"]) ?? true
        return configuration
    }

    /// The optimized-voice cache: `--cache-dir`, then `LARK_CACHE_DIR`, then the XDG default.
    /// A build (a first load takes seconds) or a wait for another process's build is told on
    /// standard error when that is a terminal (always with `progress`); an entry refused or not
    /// written is always told.
    var voiceCache: OptimizedVoiceCache { voiceCache(progress: isatty(STDERR_FILENO) == 1) }

    func voiceCache(progress: Bool) -> OptimizedVoiceCache {
        let environment = ProcessInfo.processInfo.environment
        let directory = cacheDirectory ?? environment["LARK_CACHE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? OptimizedVoiceCache.defaultDirectory(environment: environment)
        return OptimizedVoiceCache(directory: directory) { event in
            let line: String
            switch event {
            case .building(let voice):
                guard progress else { return }
                line = "optimizing voice \(voice) for this machine (once; kept in \(directory))…"
            case .waiting(let voice):
                guard progress else { return }
                line = "waiting for another process that is optimizing voice \(voice) for this machine…"
            case .built(let voice, let seconds, _):
                guard progress else { return }
                line = "optimized voice \(voice) in \(String(format: "%.1f", seconds)) s"
            case .rejected(let voice, let reason):
                line = "warning: the cached optimized voice \(voice) was not used and is rebuilt: \(reason)"
            case .notWritten(let voice, let reason):
                line = "warning: the optimized voice \(voice) could not be cached: \(reason)"
            }
            FileHandle.standardError.write(Data(("lark: " + line + "\n").utf8))
        }
    }
}

/// Runs `body` with the synthesis admission of a command that is the scheduler's only user (say,
/// bench): one request, one place, the scheduler's threads stopped afterwards.
func withOneSynthesis<T>(_ body: (SynthesisTicket) async throws -> T) async throws -> T {
    let scheduler = SynthesisScheduler(workers: 1, maxQueue: 0)
    guard let ticket = scheduler.admit() else { preconditionFailure("a new scheduler admits its first request") }
    let result: Result<T, any Error>
    do {
        result = .success(try await body(ticket))
    } catch {
        result = .failure(error)
    }
    ticket.release()
    try? await scheduler.shutdown()
    return try result.get()
}
