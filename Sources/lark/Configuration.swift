import Foundation
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
        return EngineConfiguration(
            dataDirectories: directories, espeakDataPath: espeakPath, threadsPerSession: max(0, threads),
            workers: workers, useCUDA: cuda, allowVoicePaths: allowVoicePaths, memory: memory,
            rewriteConvolutions: rewrite)
    }
}
