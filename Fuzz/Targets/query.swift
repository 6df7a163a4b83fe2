/// Query strings as the speech routes read them (`FormQuery`, compiled in from LarkServer):
/// decoding never traps, and every name given is found again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuery(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let raw = fuzzText(data, count)
    let query = FormQuery(raw)
    for name in ["text", "voice", "format", "sample_rate", "normalize", "ssml"] {
        if let value = query.get(name), name == "normalize" { _ = try? RequestSwitch.parse(value, name: name) }
    }
    // A pair's name, decoded, must be found: the first `name=` of the string.
    if let first = raw.split(separator: "&").first, let name = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first {
        let decoded = name.replacingOccurrences(of: "+", with: " ")
        let key = decoded.removingPercentEncoding ?? decoded
        require(query.get(key) != nil, "the first name '\(key)' is not found")
    }
    return 0
}
