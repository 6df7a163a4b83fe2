/// The rules every ``ObjectStore`` applies to keys, so that a key means the same object in a local
/// directory and in a bucket, and can never name a file outside the store's root.
///
/// A key is a relative path of `/`-separated components: not empty, not starting with `/`, no
/// empty, `.` or `..` component (so no `//` and no trailing `/`), no backslash, no NUL or other
/// control character, at most 1024 bytes of UTF-8 (S3's limit, prefix included).
public enum ObjectKey {
    /// The longest key S3 accepts, in UTF-8 bytes.
    public static let maximumLength = 1024

    /// Why `key` is refused, or nil when it is a valid key.
    public static func problem(with key: String) -> String? {
        if key.isEmpty { return "it is empty" }
        if key.utf8.count > maximumLength { return "it is longer than \(maximumLength) bytes" }
        if key.hasPrefix("/") { return "it is absolute (starts with /)" }
        if key.contains("\\") { return "it contains a backslash" }
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "it contains NUL or another control character"
        }
        for component in key.split(separator: "/", omittingEmptySubsequences: false) {
            switch component {
            case "": return "it has an empty path component (// or a trailing /)"
            case ".": return "it has a . component"
            case "..": return "it has a .. component"
            default: continue
            }
        }
        return nil
    }

    /// Throws ``StorageError/invalidKey(_:)`` unless `key` is valid.
    public static func validate(_ key: String) throws(StorageError) {
        if problem(with: key) != nil { throw .invalidKey(key) }
    }
}
