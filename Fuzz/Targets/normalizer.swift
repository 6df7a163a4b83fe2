import TextNormalization

/// The English normalizer: any text, and every span maps inside both texts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNormalizer(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = fuzzText(data, count)
    let normalized = EnglishNormalizer().normalize(text)
    let originalBytes = text.utf8.count, normalizedBytes = normalized.text.utf8.count
    for span in normalized.spans {
        require(span.original.lowerBound >= 0 && span.original.upperBound <= originalBytes, "span outside the original: \(span)")
        require(span.normalized.lowerBound >= 0 && span.normalized.upperBound <= normalizedBytes, "span outside the result: \(span)")
    }
    let whole = normalized.originalRange(of: 0..<normalizedBytes)
    require(whole.lowerBound >= 0 && whole.upperBound <= originalBytes, "originalRange outside the original: \(whole)")
    return 0
}
