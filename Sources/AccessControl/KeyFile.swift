import Foundation

public enum KeyFileError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let message): return message
        case .unreadable(let path, let reason): return "cannot read the keys file \(path): \(reason)"
        case .unwritable(let path, let reason): return "cannot write the keys file \(path): \(reason)"
        }
    }
}

/// The keys file: a JSON document `{"keys": [StoredKey…]}`, readable by its owner only.
///
/// Written whole to a temporary file in the same directory and renamed over the old one, so a
/// server reading it meanwhile sees the old keys or the new ones, never half a file.
public struct KeyFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    struct Document: Codable {
        var keys: [StoredKey]
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// The keys, in the order they were added; none when the file does not exist.
    public func load() throws(KeyFileError) -> [StoredKey] {
        guard exists else { return [] }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        do {
            return try JSONDecoder().decode(Document.self, from: data).keys
        } catch {
            throw .unreadable(path: path, reason: "it is not a Lark keys file (\(error))")
        }
    }

    public func save(_ keys: [StoredKey]) throws(KeyFileError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let data = try encoder.encode(Document(keys: keys))
            let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
            guard FileManager.default.createFile(
                atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600])
            else {
                throw KeyFileError.unwritable(path: path, reason: "cannot create \(temporary.path)")
            }
            guard rename(temporary.path, path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw KeyFileError.unwritable(path: path, reason: reason)
            }
        } catch let error as KeyFileError {
            throw error
        } catch {
            throw .unwritable(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    /// Adds a key named `name` and answers the key itself, which is shown once and kept nowhere.
    public func add(name: String, scopes: [Scope]) throws(KeyFileError) -> String {
        try APIKey.validate(name: name)
        var keys = try load()
        guard !keys.contains(where: { $0.name == name }) else {
            throw .invalid("a key named '\(name)' exists already (revoke it first, or choose another name)")
        }
        let key = APIKey.generate()
        keys.append(APIKey.record(name: name, key: key, scopes: scopes))
        try save(keys)
        return key
    }

    /// Removes the key named `name`; false when there was none.
    public func revoke(name: String) throws(KeyFileError) -> Bool {
        var keys = try load()
        guard let index = keys.firstIndex(where: { $0.name == name }) else { return false }
        keys.remove(at: index)
        try save(keys)
        return true
    }
}
