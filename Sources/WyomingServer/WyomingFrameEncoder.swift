import Foundation
import NIOCore

/// Writes Wyoming events as the Python package does: the header line carries `type`,
/// `version` and the lengths; `data` (when not empty) follows as its own JSON, then the payload.
public struct WyomingFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = WyomingEvent

    private struct Header: Encodable {
        var type: String
        var version: String
        var data_length: Int?
        var payload_length: Int?
    }

    public init() {}

    public func encode(data event: WyomingEvent, out: inout ByteBuffer) throws {
        try Self.write(event, to: &out)
    }

    /// Appends `event`'s frame to `out` (the channel-free core, for tests and clients).
    public static func write(_ event: WyomingEvent, to out: inout ByteBuffer) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = event.data.isEmpty ? nil : try encoder.encode(event.data)
        let payloadLength = event.payload?.readableBytes ?? 0
        let header = Header(
            type: event.type, version: WyomingEvent.protocolVersion, data_length: data?.count,
            payload_length: payloadLength > 0 ? payloadLength : nil)
        out.writeBytes(try encoder.encode(header))
        out.writeInteger(UInt8(ascii: "\n"))
        if let data { out.writeBytes(data) }
        if var payload = event.payload, payloadLength > 0 { out.writeBuffer(&payload) }
    }
}
