import SpeechCore

/// The sentence splitter: no sentence is blank, and the sentences are pieces of the text, in
/// order and without overlap (nothing invented, repeated or reordered), together holding every
/// letter, digit and mark that is not part of white space.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSentences(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = fuzzText(data, count)
    let sentences = SentenceSegmenter.sentences(in: text)
    let scalars = Array(text.unicodeScalars)
    var start = 0
    for sentence in sentences {
        require(!sentence.allSatisfy(\.isWhitespace), "a blank sentence")
        let piece = Array(sentence.unicodeScalars)
        guard let found = find(piece, in: scalars, from: start) else {
            fatalError("sentence \(sentence.debugDescription) is not in the text after scalar \(start)")
        }
        start = found + piece.count
    }
    // What trimming may drop: white space, with marks clustered onto it (" \u{301}").
    let kept = sentences.map { $0.unicodeScalars.filter { !$0.properties.isWhitespace }.count }.reduce(0, +)
    let given = text.filter { !$0.isWhitespace }.unicodeScalars.filter { !$0.properties.isWhitespace }.count
    require(kept >= given, "sentences keep \(kept) of \(given) non-space scalars")
    return 0
}

private func find(_ piece: [Unicode.Scalar], in text: [Unicode.Scalar], from start: Int) -> Int? {
    guard piece.count <= text.count - start else { return nil }
    var index = start
    while index + piece.count <= text.count {
        if text[index..<(index + piece.count)].elementsEqual(piece) { return index }
        index += 1
    }
    return nil
}
