/// A text after normalization, with the way back: for every span that was rewritten, the UTF-8
/// byte range it occupies in `text` and the range of the input it came from. Everything between
/// two rewritten spans was copied unchanged, so its offsets differ from the input's by a constant.
public struct NormalizedText: Sendable, Equatable {
    /// One rewritten span: `normalized` bytes of `text` that read `original` bytes of the input.
    public struct Span: Sendable, Equatable {
        public var normalized: Range<Int>
        public var original: Range<Int>
    }

    /// The caller's text.
    public let original: String
    /// What the voice is given.
    public let text: String
    /// Rewritten spans in order; they never overlap.
    public let spans: [Span]

    public init(original: String, text: String, spans: [Span]) {
        self.original = original
        self.text = text
        self.spans = spans
    }

    /// A text nothing was rewritten in.
    public init(unchanged text: String) {
        self.init(original: text, text: text, spans: [])
    }

    /// The UTF-8 range of the input that `range` (UTF-8 bytes of `text`) was made from. Any part
    /// of a rewritten span stands for the whole of its original: each word of "forty-two dollars
    /// and fifty cents" maps to all of "$42.50".
    public func originalRange(of range: Range<Int>) -> Range<Int> {
        let lower = originalOffset(range.lowerBound, asEnd: false)
        guard !range.isEmpty else { return lower..<lower }
        let upper = originalOffset(range.upperBound, asEnd: true)
        return lower..<max(lower, upper)
    }

    /// Maps one offset of `text`. A start inside a span goes to the span's start; an end inside
    /// it (or at its end) to the span's end.
    private func originalOffset(_ offset: Int, asEnd: Bool) -> Int {
        // The last span that starts before the offset (or at it, for a start).
        var low = 0
        var high = spans.count
        while low < high {
            let middle = (low + high) / 2
            let start = spans[middle].normalized.lowerBound
            if asEnd ? start < offset : start <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return min(offset, original.utf8.count) }
        let span = spans[low - 1]
        if asEnd ? offset <= span.normalized.upperBound : offset < span.normalized.upperBound {
            return asEnd ? span.original.upperBound : span.original.lowerBound
        }
        return min(offset - span.normalized.upperBound + span.original.upperBound, original.utf8.count)
    }
}

/// Builds a `NormalizedText`: copied input and rewritten spans, appended in input order.
struct NormalizedTextBuilder {
    let original: String
    private(set) var text = ""
    private var bytes = 0
    private var spans: [NormalizedText.Span] = []
    /// Whether the last thing appended was a rewrite (a copy after it may need a space).
    private var afterRewrite = false

    init(original: String) {
        self.original = original
    }

    /// Copies input text unchanged.
    mutating func copy(_ piece: Substring) {
        guard !piece.isEmpty else { return }
        if afterRewrite, Self.joins(text.unicodeScalars.last, piece.unicodeScalars.first) {
            // "A4" → "A four": a rewrite never glues itself to the letters around it. The space
            // belongs to the span before it (it maps into the rewritten original).
            append(" ")
            if var last = spans.popLast() {
                last.normalized = last.normalized.lowerBound..<bytes
                spans.append(last)
            }
        }
        append(piece)
        afterRewrite = false
    }

    /// Appends `words` in place of the input's bytes `originalRange`.
    mutating func rewrite(_ words: String, original originalRange: Range<Int>) {
        guard !words.isEmpty else {
            // A span read as nothing still maps (an empty range at its place).
            spans.append(.init(normalized: bytes..<bytes, original: originalRange))
            return
        }
        var start = bytes
        if Self.joins(text.unicodeScalars.last, words.unicodeScalars.first) {
            append(" ")
            start = bytes
        }
        append(Substring(words))
        spans.append(.init(normalized: start..<bytes, original: originalRange))
        afterRewrite = true
    }

    func build() -> NormalizedText {
        NormalizedText(original: original, text: text, spans: spans)
    }

    private mutating func append(_ piece: Substring) {
        text += piece
        bytes += piece.utf8.count
    }

    private static func joins(_ left: Unicode.Scalar?, _ right: Unicode.Scalar?) -> Bool {
        guard let left, let right else { return false }
        return isWordScalar(left) && isWordScalar(right)
    }

    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
    }
}
