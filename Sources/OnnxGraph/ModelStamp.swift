/// A note of Lark's written as the first field of an ONNX model file: one `metadata_props` entry
/// (`ModelProto` field 14, a `StringStringEntryProto` of key and value).
///
/// Protobuf lets a message's fields come in any order, so a model with the stamp in front is
/// still a model ONNX Runtime loads straight from its path; and the stamp can be read back from
/// the file's first bytes, without reading the weights behind it. The optimized-voice cache
/// keeps each entry's key and checksum there (see `OptimizedVoiceCache` in PiperEngine).
public enum ModelStamp {
    static let metadataField = 14
    static let entryKey = 1, entryValue = 2

    /// The stamp's bytes: write them, then the model's own bytes, to make the stamped file.
    public static func encode(key: String, value: [UInt8]) -> [UInt8] {
        var writer = ProtoWriter(reservingCapacity: value.count + key.utf8.count + 16)
        writer.messageField(metadataField) { (entry: inout ProtoWriter) in
            entry.stringField(entryKey, key)
            entry.bytesField(entryValue, value)
        }
        return writer.bytes
    }

    /// How many bytes a stamp's first field takes before its contents: enough to learn its length.
    public static let prefixLength = 11

    /// The total length of the stamp that starts `prefix` (the file's first bytes, at least
    /// `prefixLength` of them or the whole file), or nil when the file does not start with one.
    public static func length(fromPrefix prefix: [UInt8]) -> Int? {
        var reader = ProtoReader(prefix)
        guard let field = try? reader.next(), field.number == metadataField, field.wireType == .lengthDelimited else {
            // A stamp longer than the prefix reads as truncated: learn its length from the tag alone.
            return lengthFromTag(prefix)
        }
        return field.whole.upperBound
    }

    private static func lengthFromTag(_ prefix: [UInt8]) -> Int? {
        guard prefix.first == UInt8(metadataField << 3 | 2) else { return nil }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for (index, byte) in prefix.dropFirst().enumerated() where index < 9 {
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                guard value < UInt64(Int.max / 2) else { return nil }
                return 1 + index + 1 + Int(value)
            }
            shift += 7
        }
        return nil
    }

    /// The key and value of the stamp that `bytes` (exactly the stamp, as long as `length` said)
    /// holds, or nil when they are not a stamp.
    public static func decode(_ bytes: [UInt8]) -> (key: String, value: [UInt8])? {
        var reader = ProtoReader(bytes)
        guard let field = try? reader.next(), field.number == metadataField, field.wireType == .lengthDelimited,
              field.whole.upperBound == bytes.count
        else { return nil }
        var entry = ProtoReader(bytes, range: field.payload)
        var key: String?
        var value: [UInt8]?
        while let part = try? entry.next() {
            guard part.wireType == .lengthDelimited else { return nil }
            if part.number == entryKey { key = part.string(in: bytes) }
            if part.number == entryValue { value = Array(bytes[part.payload]) }
        }
        guard let key, let value else { return nil }
        return (key, value)
    }
}
