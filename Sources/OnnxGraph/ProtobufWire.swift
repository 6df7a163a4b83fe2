/// Protocol Buffers' wire format, just enough to edit an ONNX model in place.
///
/// Written by hand rather than with swift-protobuf: that would need ONNX's schema compiled by
/// `protoc` (not on these machines) into thousands of lines of generated types, and it would
/// decode and re-encode every one of a voice's 60 MB of weights. Editing at the wire level reads
/// only the few messages that change (nodes, a few tensors' headers) and copies every other
/// field byte for byte, including fields this code has never heard of.
///
/// Wire format facts (protobuf's "Encoding" documentation): a field is a varint tag
/// `number << 3 | wireType` followed by a varint (type 0), 8 bytes (1), a varint length and that
/// many bytes (2: strings, bytes, nested messages, packed repeated numbers) or 4 bytes (5).
/// Types 3 and 4 (groups) are not used by ONNX and are rejected.

/// A model's bytes could not be read as protobuf.
public struct MalformedProtobuf: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "malformed protobuf at byte \(offset): \(reason)" }
}

/// One field of a message, as positions in the buffer it was read from.
struct ProtoField {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    let number: Int
    let wireType: WireType
    /// The whole field, tag included: copy it to keep the field unchanged.
    let whole: Range<Int>
    /// What follows the tag (for `lengthDelimited`, what follows the length).
    let payload: Range<Int>
    /// The value of a `varint` field (0 for the others).
    let varint: UInt64
}

/// Reads the fields of one message, in order.
struct ProtoReader {
    private let bytes: [UInt8]
    private var position: Int
    private let end: Int

    /// The message in `range` of `bytes` (the whole buffer when nil).
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws(MalformedProtobuf) -> ProtoField? {
        guard position < end else { return nil }
        let start = position
        let tag = try readVarint()
        let number = Int(tag >> 3)
        guard number > 0, let wireType = ProtoField.WireType(rawValue: UInt8(tag & 7)) else {
            throw MalformedProtobuf(offset: start, reason: "unsupported tag \(tag)")
        }
        var value: UInt64 = 0
        let payloadStart: Int
        switch wireType {
        case .varint:
            payloadStart = position
            value = try readVarint()
        case .fixed64:
            payloadStart = position
            try skip(8)
        case .fixed32:
            payloadStart = position
            try skip(4)
        case .lengthDelimited:
            let length = try readVarint()
            guard length <= UInt64(end - position) else {
                throw MalformedProtobuf(offset: start, reason: "field \(number) runs past the end of its message")
            }
            payloadStart = position
            position += Int(length)
        }
        return ProtoField(number: number, wireType: wireType, whole: start..<position, payload: payloadStart..<position, varint: value)
    }

    /// Every field of the message.
    mutating func all() throws(MalformedProtobuf) -> [ProtoField] {
        var fields: [ProtoField] = []
        while let field = try next() { fields.append(field) }
        return fields
    }

    private mutating func readVarint() throws(MalformedProtobuf) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < end, shift < 64 {
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw MalformedProtobuf(offset: position, reason: "truncated or overlong varint")
    }

    private mutating func skip(_ count: Int) throws(MalformedProtobuf) {
        guard end - position >= count else {
            throw MalformedProtobuf(offset: position, reason: "truncated fixed-width field")
        }
        position += count
    }
}

/// Little-endian 32-bit floats stored in `range` of `bytes` (ONNX's `raw_data`, packed `float`s).
func littleEndianFloats(_ bytes: [UInt8], _ range: Range<Int>) -> [Float] {
    stride(from: range.lowerBound, to: range.upperBound - 3, by: 4).map { (at: Int) -> Float in
        let low = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8
        let high = UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        return Float(bitPattern: low | high)
    }
}

/// A 32-bit float as its four little-endian bytes.
func littleEndianBytes(_ value: Float) -> [UInt8] {
    let bits = value.bitPattern
    return [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
}

extension ProtoField {
    /// The values of a repeated float field: one fixed32, or a packed run of them.
    func floats(in bytes: [UInt8]) -> [Float] {
        switch wireType {
        case .fixed32, .lengthDelimited: return littleEndianFloats(bytes, payload)
        case .varint, .fixed64: return []
        }
    }

    /// The payload of a string field as text (ONNX strings are UTF-8).
    func string(in bytes: [UInt8]) -> String {
        String(decoding: bytes[payload], as: UTF8.self)
    }

    /// The values of a repeated integer field: one varint, or a packed run of them.
    func integers(in bytes: [UInt8]) throws(MalformedProtobuf) -> [Int64] {
        switch wireType {
        case .varint:
            return [Int64(bitPattern: varint)]
        case .lengthDelimited:
            var values: [Int64] = []
            var index = payload.lowerBound
            while index < payload.upperBound {
                var result: UInt64 = 0
                var shift: UInt64 = 0
                while true {
                    guard index < payload.upperBound, shift < 64 else {
                        throw MalformedProtobuf(offset: index, reason: "truncated packed varint in field \(number)")
                    }
                    let byte = bytes[index]
                    index += 1
                    result |= UInt64(byte & 0x7F) << shift
                    if byte & 0x80 == 0 { break }
                    shift += 7
                }
                values.append(Int64(bitPattern: result))
            }
            return values
        case .fixed32, .fixed64:
            throw MalformedProtobuf(offset: whole.lowerBound, reason: "field \(number) is not an integer")
        }
    }
}

/// Appends fields to a message being built.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// Copies a field read from `source` unchanged.
    mutating func copy(_ field: ProtoField, from source: [UInt8]) {
        bytes.append(contentsOf: source[field.whole])
    }

    mutating func varintField(_ number: Int, _ value: Int64) {
        tag(number, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// A repeated integer field, one varint per value (the unpacked form ONNX's writers use).
    mutating func integersField(_ number: Int, _ values: [Int64]) {
        for value in values { varintField(number, value) }
    }

    mutating func floatField(_ number: Int, _ value: Float) {
        tag(number, .fixed32)
        bytes += littleEndianBytes(value)
    }

    mutating func stringField(_ number: Int, _ value: String) {
        bytesField(number, Array(value.utf8))
    }

    mutating func bytesField(_ number: Int, _ value: [UInt8]) {
        tag(number, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A nested message, built by `build`.
    mutating func messageField<Failure: Error>(_ number: Int, _ build: (inout ProtoWriter) throws(Failure) -> Void) throws(Failure) {
        var nested = ProtoWriter()
        try build(&nested)
        bytesField(number, nested.bytes)
    }

    private mutating func tag(_ number: Int, _ wireType: ProtoField.WireType) {
        varint(UInt64(number) << 3 | UInt64(wireType.rawValue))
    }

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}
