// Shared by every target: the fuzzer's bytes as text. Invalid UTF-8 is repaired (U+FFFD) the way
// the server's decoders never see it, so each target also gets the repaired form.
func fuzzText(_ data: UnsafePointer<UInt8>, _ count: Int) -> String {
    String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
}

/// A broken invariant: abort, so libFuzzer saves the input as a crash.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError(message()) }
}
