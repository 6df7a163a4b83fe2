import Foundation
import NIOPosix

/// An IPv4 or IPv6 address as its bytes (4 or 16), with the ranges a callback may not reach.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses a numeric address (`10.0.0.1`, `::1`, `[::1]`, `::ffff:127.0.0.1`); nil for a name.
    public init?(_ text: String) {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address an IPv6 address carries, where it carries one: IPv4-mapped
    /// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still routed by some
    /// stacks) and NAT64 (`64:ff9b::a.b.c.d`). Each reaches the IPv4 address, so each is
    /// judged as that address.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let prefix = Array(bytes[0..<12])
        let mapped = Array(repeating: UInt8(0), count: 10) + [0xFF, 0xFF]
        let compatible = Array(repeating: UInt8(0), count: 12)
        let nat64: [UInt8] = [0x00, 0x64, 0xFF, 0x9B] + Array(repeating: 0, count: 8)
        guard prefix == mapped || prefix == nat64 || (prefix == compatible && bytes[12..<16].contains { $0 != 0 }) else { return nil }
        // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4 ones.
        if prefix == compatible, bytes[12..<15].allSatisfy({ $0 == 0 }) { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// The address to judge: an IPv6 form of an IPv4 address is that IPv4 address.
    public var normalized: IPAddress { embeddedIPv4 ?? self }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { $0.copyBytes(from: bytes) }
        guard inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why a callback may not go to this address (`loopback`, `private`, …), or nil when it may.
    public var refusedRange: String? {
        let address = normalized
        for (block, name) in Self.refusedBlocks where block.contains(address) { return name }
        return nil
    }

    private static let refusedBlocks: [(CIDRBlock, String)] = [
        ("0.0.0.0/8", "unspecified"), ("127.0.0.0/8", "loopback"), ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"), ("100.64.0.0/10", "private (shared address space)"), ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fe80::/10", "link-local"), ("fec0::/10", "private (site-local)"),
        ("fc00::/7", "private (unique local)"), ("ff00::/8", "multicast"),
    ].map { (CIDRBlock($0.0)!, $0.1) }
}

/// An address block (`10.0.0.0/8`, `fc00::/7`; a lone address is a block of one).
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let address = IPAddress(parts[0]) else { return nil }
        let width = address.bytes.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : width
        guard let length, (0...width).contains(length) else { return nil }
        self.address = address
        prefixLength = length
    }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for (mine, theirs) in zip(address.bytes, other.bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if mine & mask != theirs & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Why a callback URL is refused.
public enum CallbackRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not an absolute `http://` or `https://` URL with a host.
    case invalidURL(String)
    /// The host is, or resolves to, an address in a range callbacks may not reach.
    case notAllowed(host: String, address: String, range: String)
    /// The host has no address.
    case unresolvable(host: String)

    public var code: String {
        switch self {
        case .invalidURL: "invalid_callback_url"
        case .notAllowed, .unresolvable: "callback_url_not_allowed"
        }
    }

    public var message: String {
        switch self {
        case .invalidURL(let url):
            return "callback_url must be an absolute http:// or https:// URL, got '\(url)'"
        case .notAllowed(let host, let address, let range):
            let resolved = host == address ? "" : " resolves to \(address), which"
            return "callback_url's host \(host)\(resolved) is a \(range) address, where this server sends no callbacks "
                + "(its operator can allow it with --callback-allow)"
        case .unresolvable(let host):
            return "callback_url's host \(host) has no address"
        }
    }

    public var description: String { message }
}

/// A callback URL that passed the policy, with the addresses it was checked at.
public struct CheckedCallback: Sendable {
    public var url: String
    /// The host as the URL names it (a name, or a numeric address).
    public var host: String
    /// Every address the host resolved to; all of them passed.
    public var addresses: [IPAddress]
    /// Whether the host is a name (resolved through DNS), not a numeric address.
    public var isName: Bool
}

/// Where callbacks may go. `callback_url` must be http(s); its host is resolved and every
/// address it has is checked: loopback, link-local (the cloud metadata address 169.254.169.254
/// among them), private, shared, multicast, reserved and unspecified addresses, and IPv6 forms of
/// them, are refused, so that a client cannot make the server POST into its own network
/// (SSRF), unless the operator allows the host or a block (`--callback-allow`). The check runs
/// when a job is submitted and again before each callback is sent; the sender then connects to
/// the address it checked, not to a second DNS answer.
public struct CallbackPolicy: Sendable {
    /// Host names allowed whatever they resolve to (lowercased).
    public let allowedHosts: Set<String>
    /// Address blocks allowed even where they fall in a refused range.
    public let allowedBlocks: [CIDRBlock]
    /// Host name → addresses; getaddrinfo on a thread pool by default (never on an event loop).
    private let resolve: @Sendable (String) async -> [IPAddress]

    /// `allow`: host names, addresses and CIDR blocks (`--callback-allow`), e.g. `127.0.0.1`,
    /// `10.0.0.0/8`, `hooks.internal`.
    public init(allow: [String] = [], resolve: (@Sendable (String) async -> [IPAddress])? = nil) throws(CallbackPolicyError) {
        var hosts = Set<String>()
        var blocks: [CIDRBlock] = []
        for raw in allow {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else { continue }
            if let block = CIDRBlock(entry) {
                blocks.append(block)
            } else if entry.contains("/") || entry.contains(":") || entry.contains(" ") {
                throw CallbackPolicyError(entry: entry)
            } else {
                hosts.insert(entry.lowercased())
            }
        }
        allowedHosts = hosts
        allowedBlocks = blocks
        self.resolve = resolve ?? Self.systemResolve
    }

    /// Checks `url` as above; answers the addresses to connect to.
    public func check(_ url: String) async throws(CallbackRefusal) -> CheckedCallback {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              var host = parsed.host, !host.isEmpty
        else { throw .invalidURL(url) }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let literal = IPAddress(host)
        let addresses: [IPAddress]
        if let literal { addresses = [literal] } else { addresses = await resolve(host) }
        guard !addresses.isEmpty else { throw .unresolvable(host: host) }
        if literal == nil, allowedHosts.contains(host.lowercased()) {
            return CheckedCallback(url: url, host: host, addresses: addresses, isName: true)
        }
        for address in addresses {
            guard let range = address.refusedRange else { continue }
            let normalized = address.normalized
            guard !allowedBlocks.contains(where: { $0.contains(normalized) || $0.contains(address) }) else { continue }
            throw .notAllowed(host: host, address: address.description, range: range)
        }
        return CheckedCallback(url: url, host: host, addresses: addresses, isName: literal == nil)
    }

    /// getaddrinfo on NIO's shared thread pool: it blocks, so never on an event loop or on
    /// Swift's cooperative threads.
    @Sendable static func systemResolve(_ host: String) async -> [IPAddress] {
        (try? await NIOThreadPool.singleton.runIfActive { lookUp(host) }) ?? []
    }

    private static func lookUp(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var found: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor?.pointee {
            cursor = entry.ai_next
            guard let address = entry.ai_addr else { continue }
            var bytes: [UInt8]?
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var raw = pointer.pointee.sin_addr
                    return withUnsafeBytes(of: &raw) { Array($0) }
                }
            case AF_INET6:
                bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var raw = pointer.pointee.sin6_addr
                    return withUnsafeBytes(of: &raw) { Array($0) }
                }
            default:
                bytes = nil
            }
            if let bytes, let parsed = IPAddress(bytes: bytes), !found.contains(parsed) { found.append(parsed) }
        }
        return found
    }
}

/// A `--callback-allow` entry that is neither a host name, an address nor a CIDR block.
public struct CallbackPolicyError: Error, Sendable, CustomStringConvertible {
    public var entry: String
    public var description: String {
        "--callback-allow takes a host name, an address or a CIDR block (10.0.0.0/8, fc00::/7), got '\(entry)'"
    }
}
