import Foundation
import NIOCore

/// Reads Wyoming frames: a JSON header line (`type`, `data`, `data_length`, `payload_length`,
/// `version`), then `data_length` bytes of JSON merged into `data`, then `payload_length` bytes
/// of payload. A frame over a limit or not readable becomes `.invalid` and is skipped without
/// being buffered: an oversized one by its declared lengths, a malformed or overlong header line
/// up to its newline; the next frame is then read as usual.
public struct WyomingFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = WyomingFrame

    private enum State {
        case header
        /// A header was read; its data and payload follow.
        case body(type: String, data: [String: JSONValue], dataLength: Int, payloadLength: Int)
        /// Bytes of a refused frame still to drop.
        case skipping(Int)
        /// An overlong header line: dropped up to its newline.
        case skippingLine
    }

    private struct Header: Decodable {
        var type: String
        var data: [String: JSONValue]?
        var data_length: Int?
        var payload_length: Int?
    }

    private static let newline = UInt8(ascii: "\n")
    private let limits: WyomingFrameLimits
    private var state = State.header

    public init(limits: WyomingFrameLimits) {
        self.limits = limits
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut off by the end of the connection is dropped: nobody is left to answer.
        while let frame = next(&buffer) {
            context.fireChannelRead(wrapInboundOut(frame))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }

    /// The next frame in `buffer`, or nil until more bytes arrive. Consumes what it has read.
    /// (The channel-free core of the decoder, for tests.)
    public mutating func next(_ buffer: inout ByteBuffer) -> WyomingFrame? {
        while true {
            switch state {
            case .skipping(let remaining):
                let dropped = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: dropped)
                guard dropped == remaining else {
                    state = .skipping(remaining - dropped)
                    return nil
                }
                state = .header
            case .skippingLine:
                guard let end = buffer.readableBytesView.firstIndex(of: Self.newline) else {
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                    return nil
                }
                buffer.moveReaderIndex(to: end + 1)
                state = .header
            case .header:
                guard let end = buffer.readableBytesView.firstIndex(of: Self.newline) else {
                    guard buffer.readableBytes > limits.headerBytes else { return nil }
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                    state = .skippingLine
                    return .invalid(.headerTooLong(limit: limits.headerBytes))
                }
                let length = end - buffer.readerIndex
                let line = buffer.readSlice(length: length)!
                buffer.moveReaderIndex(forwardBy: 1)
                if length > limits.headerBytes { return .invalid(.headerTooLong(limit: limits.headerBytes)) }
                // Blank lines between frames carry nothing (a client's stray newline).
                if line.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                if let frame = readHeader(line) { return frame }
            case .body(let type, var data, let dataLength, let payloadLength):
                guard buffer.readableBytes >= dataLength + payloadLength else { return nil }
                state = .header
                let extra = buffer.readSlice(length: dataLength)!
                let payload = payloadLength > 0 ? buffer.readSlice(length: payloadLength) : nil
                if dataLength > 0 {
                    guard let merged = try? JSONDecoder().decode([String: JSONValue].self, from: Data(extra.readableBytesView)) else {
                        return .invalid(.malformedData(type: type))
                    }
                    // The data part's fields win over the header's, as in the Python reader.
                    data.merge(merged) { _, new in new }
                }
                return .event(WyomingEvent(type, data: data, payload: payload))
            }
        }
    }

    /// Reads a header line into the `.body` state; answers a frame when the header is refused
    /// (the state then skips what it announced).
    private mutating func readHeader(_ line: ByteBuffer) -> WyomingFrame? {
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(line.readableBytesView))
        } catch {
            return .invalid(.malformedHeader(Self.describe(error)))
        }
        let dataLength = header.data_length ?? 0
        let payloadLength = header.payload_length ?? 0
        guard dataLength >= 0, payloadLength >= 0, !header.type.isEmpty else {
            return .invalid(.malformedHeader("lengths must not be negative and the type not empty"))
        }
        if dataLength > limits.dataBytes || payloadLength > limits.payloadBytes {
            let (sum, overflow) = dataLength.addingReportingOverflow(payloadLength)
            state = .skipping(overflow ? Int.max : sum)
            return dataLength > limits.dataBytes
                ? .invalid(.dataTooLarge(length: dataLength, limit: limits.dataBytes))
                : .invalid(.payloadTooLarge(length: payloadLength, limit: limits.payloadBytes))
        }
        state = .body(type: header.type, data: header.data ?? [:], dataLength: dataLength, payloadLength: payloadLength)
        return nil
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.keyNotFound(let key, _) = error { return "missing '\(key.stringValue)'" }
        if case DecodingError.typeMismatch(_, let context) = error, let key = context.codingPath.last {
            return "wrong type for '\(key.stringValue)'"
        }
        return "not valid JSON"
    }
}
