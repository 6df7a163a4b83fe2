import Crypto
import Foundation

/// What a key may do. Every route names the one scope it needs (`/healthz` and the web page
/// need none).
public enum Scope: String, Sendable, Codable, CaseIterable, Comparable {
    /// Synthesis on every door, and voice listing.
    case speak
    /// Submitting jobs and reading the key's own jobs.
    case jobs
    /// Voice downloads, `/metrics`, and every key's jobs.
    case admin

    public static func < (lhs: Scope, rhs: Scope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses `speak,jobs,admin`, refusing unknown names.
    public static func list(_ text: String) throws(KeyFileError) -> [Scope] {
        var scopes: [Scope] = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
            guard let scope = Scope(rawValue: name) else {
                throw .invalid("unknown scope '\(name)' (the scopes are \(Scope.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if !scopes.contains(scope) { scopes.append(scope) }
        }
        guard !scopes.isEmpty else { throw .invalid("give at least one scope") }
        return scopes.sorted()
    }
}

/// A key as the keys file holds it: never the key itself.
///
/// The key is 32 random bytes; the file keeps its SHA-256 (a Bearer or `X-Api-Key` header is
/// checked against that) and, for the Polly door's SigV4 signatures, a signing secret derived
/// from the key with HMAC. A SigV4 check needs the signer's secret itself (AWS holds yours the
/// same way), so that secret is stored; it cannot be turned back into the key.
public struct StoredKey: Sendable, Codable, Equatable {
    /// The key's name: a label for people, and the SigV4 access key id.
    public var name: String
    public var scopes: [Scope]
    /// Hex SHA-256 of the key's UTF-8 text.
    public var sha256: String
    /// The SigV4 secret access key that goes with `name` (see `APIKey.signingSecret`).
    public var signingSecret: String
    /// Seconds since 1970.
    public var created: Int64

    public init(name: String, scopes: [Scope], sha256: String, signingSecret: String, created: Int64) {
        self.name = name
        self.scopes = scopes
        self.sha256 = sha256
        self.signingSecret = signingSecret
        self.created = created
    }

    public func allows(_ scope: Scope) -> Bool { scopes.contains(scope) }
}

/// Making keys and checking them.
public enum APIKey {
    /// Every key starts so, which makes a leaked one easy to recognise (and to search for).
    public static let prefix = "lark_"

    /// A new key: the prefix and 32 bytes from the system's secure generator, base64url.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return prefix + base64URL(bytes)
    }

    /// Hex SHA-256 of a key, as the keys file stores it.
    public static func digest(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The SigV4 secret access key of a key: HMAC-SHA256 of a fixed label under the key.
    public static func signingSecret(_ key: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("lark sigv4 secret".utf8), using: SymmetricKey(data: Data(key.utf8)))
        return base64URL(Array(mac))
    }

    /// A record for a new key named `name`.
    public static func record(name: String, key: String, scopes: [Scope], now: Date = Date()) -> StoredKey {
        StoredKey(
            name: name, scopes: scopes, sha256: digest(key), signingSecret: signingSecret(key),
            created: Int64(now.timeIntervalSince1970))
    }

    /// Names are SigV4 access key ids and appear in logs: letters, digits, `-`, `_`, `.`, 1–64.
    public static func validate(name: String) throws(KeyFileError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard (1...64).contains(name.count), name.allSatisfy({ allowed.contains($0) }) else {
            throw .invalid("a key name is 1 to 64 letters, digits, '-', '_' or '.', got '\(name)'")
        }
    }

    /// Equality in a time that does not depend on where two equal-length strings differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
