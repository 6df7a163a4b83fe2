/// RIFF/WAVE for 16-bit mono PCM, written directly (the format is a 44-byte header).
public enum WAV {
    /// A header for `sampleCount` samples, or, with `nil`, for a stream of unknown length
    /// (sizes set to the maximum, which players read as "until the end of the data").
    public static func header(sampleRate: Int, sampleCount: Int?) -> [UInt8] {
        let dataSize: UInt32 = sampleCount.map { UInt32(clamping: $0 * 2) } ?? UInt32.max
        let riffSize: UInt32 = sampleCount == nil ? UInt32.max : dataSize &+ 36
        var bytes: [UInt8] = []
        bytes.reserveCapacity(44)
        func append(_ text: String) { bytes += Array(text.utf8) }
        func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append("RIFF"); append32(riffSize); append("WAVE")
        append("fmt "); append32(16)
        append16(1)  // PCM
        append16(1)  // mono
        append32(UInt32(sampleRate))
        append32(UInt32(sampleRate * 2))  // bytes per second
        append16(2)  // block align
        append16(16)  // bits per sample
        append("data"); append32(dataSize)
        return bytes
    }

    /// Samples as little-endian bytes.
    public static func pcmBytes(_ samples: [Int16]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: samples.count * 2)
        bytes.withUnsafeMutableBytes { raw in
            for (index, sample) in samples.enumerated() {
                raw.storeBytes(of: sample.littleEndian, toByteOffset: index * 2, as: Int16.self)
            }
        }
        return bytes
    }

    /// A whole WAV file with exact sizes.
    public static func file(samples: [Int16], sampleRate: Int) -> [UInt8] {
        header(sampleRate: sampleRate, sampleCount: samples.count) + pcmBytes(samples)
    }
}
