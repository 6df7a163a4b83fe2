import Foundation
import SpeechCore

/// A Piper voice found on disk: a model and its config.
public struct VoiceFiles: Sendable, Equatable {
    /// The file stem (`en_US-joe-medium`), which is the voice's id.
    public var name: String
    public var modelPath: String
    public var configPath: String
    /// Which data directory holds it (0 for the first `--data-dir`); nil for a voice named by path.
    public var directoryIndex: Int?

    public init(name: String, modelPath: String, configPath: String, directoryIndex: Int? = nil) {
        self.name = name
        self.modelPath = modelPath
        self.configPath = configPath
        self.directoryIndex = directoryIndex
    }
}

/// The data directories Piper voices are looked up in, in order (earlier directories win).
public struct VoiceDirectories: Sendable {
    public var directories: [String]

    public init(_ directories: [String]) {
        self.directories = directories
    }

    /// Every voice in the directories (and one level of subdirectories, where catalogs put them):
    /// each `NAME.onnx` that has `NAME.onnx.json` beside it.
    public func scan() -> [VoiceFiles] {
        var found: [String: VoiceFiles] = [:]
        var order: [String] = []
        let fileManager = FileManager.default
        for (index, directory) in directories.enumerated() {
            for folder in [directory] + subdirectories(of: directory) {
                guard let names = try? fileManager.contentsOfDirectory(atPath: folder) else { continue }
                for file in names.sorted() where file.hasSuffix(".onnx") {
                    let name = String(file.dropLast(".onnx".count))
                    let model = folder + "/" + file
                    guard found[name] == nil, fileManager.fileExists(atPath: model + ".json") else { continue }
                    found[name] = VoiceFiles(name: name, modelPath: model, configPath: model + ".json", directoryIndex: index)
                    order.append(name)
                }
            }
        }
        return order.compactMap { found[$0] }
    }

    private func subdirectories(of directory: String) -> [String] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory) else { return [] }
        return names.sorted().compactMap { name in
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            return fileManager.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue && !name.hasPrefix(".")
                ? path : nil
        }
    }

    /// Finds a voice by name (a file stem, with or without `.onnx`) in the directories, or, when
    /// `allowPaths` is set, by a path to its `.onnx` file. A name is never turned into a path:
    /// names with `/` or `..` only match as paths, and only when paths are allowed.
    public func locate(_ nameOrPath: String, allowPaths: Bool) -> VoiceFiles? {
        let looksLikePath = nameOrPath.contains("/") || nameOrPath.hasPrefix(".")
        if looksLikePath {
            guard allowPaths else { return nil }
            let model = nameOrPath.hasSuffix(".onnx.json") ? String(nameOrPath.dropLast(5)) : nameOrPath
            let name = URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
            return VoiceFiles(name: name, modelPath: model, configPath: model + ".json")
        }
        let name = nameOrPath.hasSuffix(".onnx") ? String(nameOrPath.dropLast(5)) : nameOrPath
        return scan().first { $0.name == name }
    }
}
