import AccessControl
import AudioStorage
import Foundation
import HTTPTypes
import Hummingbird

/// Checks an AWS Signature Version 4 `Authorization` header (what boto3 and every AWS SDK send
/// on the Polly door) against the keys file: the access key id is a key's name, the secret its
/// SigV4 secret (`lark keys add` prints both). The signature is recomputed with the signer the
/// S3 client uses, over what was received; the body is read (it is signed) and kept for the
/// route. `X-Amz-Date` must be within `allowedSkew` of the server's clock.
struct SigV4Verifier: Sendable {
    static let scheme = "AWS4-HMAC-SHA256"
    let keys: KeyRing
    let allowedSkew: TimeInterval = 15 * 60
    let maxBodyBytes: Int

    enum Failure: Error, Equatable {
        /// The header is not a SigV4 one Lark can read, names no key the file holds, or is not
        /// that key's signature of this request (one answer for all three).
        case unknownKey
        /// The signature cannot be checked as sent: no date, or one too far from the server's.
        case badSignature(String)
    }

    struct Parsed: Equatable {
        var accessKeyID: String
        var date: String
        var region: String
        var service: String
        var signedHeaders: [String]
        var signature: String
    }

    /// `AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`
    static func parse(_ authorization: String) -> Parsed? {
        guard authorization.hasPrefix(scheme + " ") else { return nil }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst(scheme.count + 1).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let credential = fields["Credential"]?.split(separator: "/").map(String.init), credential.count == 5,
              credential[4] == "aws4_request", let signedHeaders = fields["SignedHeaders"], let signature = fields["Signature"]
        else { return nil }
        return Parsed(
            accessKeyID: credential[0], date: credential[1], region: credential[2], service: credential[3],
            signedHeaders: signedHeaders.split(separator: ";").map(String.init), signature: signature)
    }

    /// The identity of a validly signed request, and the request with its body read.
    func verify(_ request: Request, now: Date = Date()) async throws -> (Identity, Request) {
        guard let header = request.headers[.authorization], let parsed = Self.parse(header),
              let stored = keys.key(named: parsed.accessKeyID)
        else { throw Failure.unknownKey }
        guard let dateTime = request.headers[HTTPField.Name("X-Amz-Date")!], dateTime.hasPrefix(parsed.date),
              let signedAt = Self.date(dateTime)
        else { throw Failure.badSignature("the request has no X-Amz-Date matching its credential scope") }
        guard abs(signedAt.timeIntervalSince(now)) <= allowedSkew else {
            throw Failure.badSignature("Signature expired: the request was signed at \(dateTime), more than 15 minutes from the server's time")
        }
        var request = request
        let payloadHash: String
        if let declared = request.headers[HTTPField.Name("X-Amz-Content-Sha256")!], declared != SignatureV4.unsignedPayload {
            payloadHash = declared
            _ = try await request.collectBody(upTo: maxBodyBytes)
        } else {
            let body = try await request.collectBody(upTo: maxBodyBytes)
            payloadHash = SignatureV4.sha256Hex(Data(body.readableBytesView))
        }
        var headers: [(name: String, value: String)] = []
        for name in parsed.signedHeaders {
            guard let field = HTTPField.Name(name) else { throw Failure.badSignature("unreadable signed header name '\(name)'") }
            let values = request.headers[values: field]
            // HTTP/1.1 carries Host as the authority.
            let value = name == "host" ? (request.head.authority ?? values.first ?? "") : values.joined(separator: ",")
            headers.append((name, value))
        }
        let signer = SignatureV4(
            credentials: S3Credentials(accessKeyID: stored.name, secretAccessKey: stored.signingSecret),
            region: parsed.region, service: parsed.service)
        let expected = signer.expectedSignature(
            method: request.method.rawValue, path: Self.canonicalPath(request.uri.path), query: Self.query(request.uri.query),
            headers: headers, payloadHash: payloadHash, dateTime: dateTime)
        // A wrong signature answers as an unknown key does: nothing says which names exist.
        guard APIKey.constantTimeEqual(expected, parsed.signature) else { throw Failure.unknownKey }
        return (Identity(name: stored.name, scopes: stored.scopes), request)
    }

    /// Services other than S3 sign the path encoded once more than it travels (botocore and
    /// the AWS SDKs do so): each segment decoded, then encoded twice.
    static func canonicalPath(_ path: String) -> String {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            let decoded = String(segment).removingPercentEncoding ?? String(segment)
            return SignatureV4.uriEncode(SignatureV4.uriEncode(decoded))
        }
        let joined = segments.joined(separator: "/")
        return joined.isEmpty ? "/" : joined
    }

    static func query(_ raw: String?) -> [(name: String, value: String)] {
        guard let raw, !raw.isEmpty else { return [] }
        return raw.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    static func date(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: text)
    }
}
