import SSML

/// The SSML parser: any document parses or throws, and every run's source range is in the text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSML(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = fuzzText(data, count)
    guard let document = try? SSMLParser.parse(text) else { return 0 }
    let bytes = text.utf8.count
    for item in document.items {
        if case .speech(let speech) = item {
            require(speech.source.lowerBound >= 0 && speech.source.upperBound <= bytes, "source outside the text: \(speech.source)")
        }
    }
    require(document.breakSeconds <= SSMLParser.maxTotalBreakSeconds + 0.001, "breaks over the limit: \(document.breakSeconds)")
    return 0
}
