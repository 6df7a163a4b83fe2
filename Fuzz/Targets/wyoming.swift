import NIOCore

/// The Wyoming frame decoder (`WyomingFrameDecoder.next`, compiled in from WyomingServer): the
/// input arrives in pieces whose sizes the first byte picks, as a TCP stream would cut it. Every
/// call consumes bytes or waits for more, never traps, and a refused frame is skipped, not kept.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWyoming(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: count)
    let piece = Int(bytes[0] % 64) + 1
    var decoder = WyomingFrameDecoder(limits: WyomingFrameLimits(headerBytes: 256, dataBytes: 512, payloadBytes: 1024))
    var buffer = ByteBufferAllocator().buffer(capacity: count)
    var offset = 1
    while offset < count {
        let end = min(count, offset + piece)
        buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[offset..<end]))
        offset = end
        while true {
            let before = buffer.readerIndex
            guard let frame = decoder.next(&buffer) else { break }
            require(buffer.readerIndex > before || isEvent(frame), "a frame from no bytes")
        }
        // What waits is at most one frame's worth: the limits keep the buffer bounded.
        require(buffer.readableBytes <= 256 + 1 + 512 + 1024 + piece, "\(buffer.readableBytes) bytes kept")
        buffer.discardReadBytes()
    }
    return 0
}

private func isEvent(_ frame: WyomingFrame) -> Bool {
    if case .event = frame { return true }
    return false
}
