import Foundation
import Hummingbird

/// Every JSON body the server writes goes through here: one encoder configuration (keys sorted,
/// slashes not escaped), Codable values only.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    var fields = headers
    if fields[.contentType] == nil { fields[.contentType] = "application/json" }
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try jsonEncoder.encode(value))))
}

private let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

/// `{"status": …}` of the health routes (`voice` only on `/readyz`).
struct HealthDocument: Encodable {
    var status: String
    var voice: String?
}
