import NIOCore

/// One Wyoming event: a `type`, a JSON object of `data` and an optional binary `payload`
/// (audio). On the wire it is a JSON header line, then `data_length` bytes of JSON merged into
/// the header's `data`, then `payload_length` bytes of payload.
public struct WyomingEvent: Sendable, Equatable {
    public var type: String
    public var data: [String: JSONValue]
    public var payload: ByteBuffer?

    public init(_ type: String, data: [String: JSONValue] = [:], payload: ByteBuffer? = nil) {
        self.type = type
        self.data = data
        self.payload = payload
    }

    /// The version written in every header: the `wyoming` package release whose events this
    /// server speaks (its Python reader ignores the field).
    public static let protocolVersion = "1.10.2"
}

/// How large the parts of one incoming event may be. A text-to-speech server reads short
/// events only: the longest is a `synthesize` of the longest text allowed.
public struct WyomingFrameLimits: Sendable, Equatable {
    public var headerBytes: Int
    public var dataBytes: Int
    public var payloadBytes: Int

    public init(headerBytes: Int, dataBytes: Int, payloadBytes: Int) {
        self.headerBytes = headerBytes
        self.dataBytes = dataBytes
        self.payloadBytes = payloadBytes
    }

    /// Room for a text of `maxTextCharacters` code points however it is escaped in JSON (12
    /// bytes for an escaped character outside the BMP: two `\uXXXX`), in the header line (old
    /// clients put `data` there) or in the data part, plus the other fields.
    public static func forText(maxTextCharacters: Int) -> WyomingFrameLimits {
        let text = 12 * max(0, maxTextCharacters) + 16 * 1024
        return WyomingFrameLimits(headerBytes: text, dataBytes: text, payloadBytes: 1 << 20)
    }
}

/// What was wrong with an incoming frame. The decoder reports it and carries on with the next
/// frame wherever the framing tells where that starts.
public enum WyomingFrameError: Error, Sendable, Equatable {
    case headerTooLong(limit: Int)
    case malformedHeader(String)
    case dataTooLarge(length: Int, limit: Int)
    case payloadTooLarge(length: Int, limit: Int)
    case malformedData(type: String)

    public var code: String {
        switch self {
        case .headerTooLong: return "header_too_long"
        case .malformedHeader: return "malformed_header"
        case .dataTooLarge: return "data_too_large"
        case .payloadTooLarge: return "payload_too_large"
        case .malformedData: return "malformed_data"
        }
    }

    public var message: String {
        switch self {
        case .headerTooLong(let limit):
            return "an event's header line is longer than \(limit) bytes; it was skipped up to its end of line"
        case .malformedHeader(let why):
            return "an event's header line is not a JSON object with a 'type': \(why)"
        case .dataTooLarge(let length, let limit):
            return "an event's data is \(length) bytes, more than the limit of \(limit); the event was skipped"
        case .payloadTooLarge(let length, let limit):
            return "an event's payload is \(length) bytes, more than the limit of \(limit); the event was skipped"
        case .malformedData(let type):
            return "the data of a '\(type)' event is not a JSON object"
        }
    }
}

/// What the decoder makes of the bytes: an event, or a frame it could not read.
public enum WyomingFrame: Sendable, Equatable {
    case event(WyomingEvent)
    case invalid(WyomingFrameError)
}
