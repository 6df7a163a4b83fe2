import Crypto
import Foundation

/// AWS Signature Version 4 for S3, written from AWS's documentation ("Authenticating Requests
/// (AWS Signature Version 4)" in the Amazon S3 API Reference): header-based authentication and
/// presigned URLs (query-string authentication). Pure: no I/O, the time is an argument.
public struct SignatureV4: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a request whose body is not signed (used by presigned URLs).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public var credentials: S3Credentials
    public var region: String
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign. `path` is the canonical URI: already URI-encoded the S3 way (each
    /// segment encoded once, `/` kept; see ``SignatureV4/uriEncode(_:encodeSlash:)``), which is
    /// also the path sent on the wire. `host` is the Host header (with `:port` when not the default).
    public struct Request: Sendable {
        public var method: String
        public var host: String
        public var path: String
        /// Raw (not yet encoded) query parameters.
        public var query: [(name: String, value: String)]
        /// Headers to sign besides host, x-amz-date, x-amz-content-sha256 and
        /// x-amz-security-token, which the signer adds.
        public var headers: [(name: String, value: String)]

        public init(
            method: String, host: String, path: String, query: [(name: String, value: String)] = [],
            headers: [(name: String, value: String)] = []
        ) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// The intermediate strings, for tests and debugging.
    public struct Signed: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        public var signedHeaders: String
    }

    // MARK: Header-based authentication

    /// Signs `request` for sending with an `Authorization` header. Returns the headers to add to
    /// the request (`x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` when there is a
    /// session token, and `Authorization`); the caller also sends `Host` and its own headers.
    public func authorizationHeaders(
        for request: Request, payloadHash: String, date: Date
    ) -> [(name: String, value: String)] {
        let (headers, signed) = sign(request, payloadHash: payloadHash, date: date)
        return headers + [("Authorization", authorization(signed, date: date))]
    }

    /// The full signing of a header-authenticated request (the `Authorization` value is
    /// ``authorization(_:date:)`` of it).
    public func sign(
        _ request: Request, payloadHash: String, date: Date
    ) -> (addedHeaders: [(name: String, value: String)], signed: Signed) {
        let stamp = Self.timestamp(date)
        var added: [(name: String, value: String)] = [
            ("x-amz-content-sha256", payloadHash),
            ("x-amz-date", stamp.dateTime),
        ]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        let headers = [("host", request.host)] + request.headers + added
        let signed = signature(
            method: request.method, path: request.path, query: request.query, headers: headers,
            payloadHash: payloadHash, stamp: stamp)
        return (added, signed)
    }

    /// `AWS4-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`
    public func authorization(_ signed: Signed, date: Date) -> String {
        let stamp = Self.timestamp(date)
        return "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(stamp.date)),"
            + "SignedHeaders=\(signed.signedHeaders),Signature=\(signed.signature)"
    }

    // MARK: Checking a received request

    /// The signature a request signed with these credentials carries, computed from what was
    /// received: `path` is the canonical URI as the client signed it, `headers` the signed
    /// headers' received values, `dateTime` its `X-Amz-Date` (`yyyyMMdd'T'HHmmss'Z'`).
    public func expectedSignature(
        method: String, path: String, query: [(name: String, value: String)], headers: [(name: String, value: String)],
        payloadHash: String, dateTime: String
    ) -> String {
        signature(
            method: method, path: path, query: query, headers: headers, payloadHash: payloadHash,
            stamp: (String(dateTime.prefix(8)), dateTime)
        ).signature
    }

    // MARK: Query-string authentication (presigned URLs)

    /// The query string of a presigned URL (without `?`): the `X-Amz-*` parameters, sorted, and
    /// `X-Amz-Signature` last. Only `host` is signed; the payload is `UNSIGNED-PAYLOAD`.
    /// `expires` is in seconds (S3 accepts 1 to 604800).
    public func presignedQuery(for request: Request, expires: Int, date: Date) -> String {
        presign(request, expires: expires, date: date).query
    }

    public func presign(_ request: Request, expires: Int, date: Date) -> (query: String, signed: Signed) {
        let stamp = Self.timestamp(date)
        var query = request.query
        query.append(("X-Amz-Algorithm", Self.algorithm))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(stamp.date))"))
        query.append(("X-Amz-Date", stamp.dateTime))
        query.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        query.append(("X-Amz-SignedHeaders", "host"))
        let signed = signature(
            method: request.method, path: request.path, query: query, headers: [("host", request.host)],
            payloadHash: Self.unsignedPayload, stamp: stamp)
        let text = Self.canonicalQuery(query) + "&X-Amz-Signature=" + signed.signature
        return (text, signed)
    }

    // MARK: The algorithm

    private func signature(
        method: String, path: String, query: [(name: String, value: String)],
        headers: [(name: String, value: String)], payloadHash: String, stamp: (date: String, dateTime: String)
    ) -> Signed {
        // Canonical headers: lowercase names, trimmed values with inner runs of spaces collapsed,
        // sorted by name; a name given twice has its values joined with commas.
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(Self.trimHeaderValue(value))
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            method.uppercased(), path.isEmpty ? "/" : path, Self.canonicalQuery(query), canonicalHeaders,
            signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let stringToSign = [
            Self.algorithm, stamp.dateTime, scope(stamp.date),
            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let key = signingKey(date: stamp.date)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        return Signed(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
            signedHeaders: signedHeaders)
    }

    private func scope(_ date: String) -> String {
        "\(date)/\(region)/\(service)/aws4_request"
    }

    /// HMAC chain: "AWS4" + secret → date → region → service → "aws4_request".
    func signingKey(date: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [date, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    // MARK: Encoding helpers

    /// S3's URI encoding: every byte of the UTF-8 form except the unreserved characters
    /// `A–Z a–z 0–9 - _ . ~` becomes `%XX` (uppercase hex); `/` is kept unless `encodeSlash`.
    public static func uriEncode(_ text: String, encodeSlash: Bool = true) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        let hexDigits = Array("0123456789ABCDEF")
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where !encodeSlash:
                out.append("/")
            default:
                out.append("%")
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    /// Parameters encoded (names and values), sorted by encoded name then value, joined with `&`.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (uriEncode($0.name), uriEncode($0.value)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    static func trimHeaderValue(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// `yyyyMMdd` and `yyyyMMdd'T'HHmmss'Z'` in UTC.
    static func timestamp(_ date: Date) -> (date: String, dateTime: String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        return (day, "\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z")
    }

    /// SHA-256 of `data`, lowercase hex (a payload hash).
    public static func sha256Hex(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return out
    }
}
