/// Positions in an SSML document: XMLParser reports lines and columns (from 1, columns counted
/// in characters); the rest of Lark counts UTF-8 bytes. This converts between them and finds a
/// tag's first and last character around the position XMLParser reports for it.
struct SSMLSource {
    let text: String
    /// The document's Unicode scalars, and the UTF-8 offset of each (plus the end).
    private let scalars: [Unicode.Scalar]
    private let byteOffsets: [Int]
    /// The scalar index where each line starts.
    private let lineStarts: [Int]

    init(_ text: String) {
        self.text = text
        scalars = Array(text.unicodeScalars)
        var offsets: [Int] = []
        offsets.reserveCapacity(scalars.count + 1)
        var lines = [0]
        var byte = 0
        for (index, scalar) in scalars.enumerated() {
            offsets.append(byte)
            byte += UTF8.width(scalar)
            if scalar == "\n" { lines.append(index + 1) }
        }
        offsets.append(byte)
        byteOffsets = offsets
        lineStarts = lines
    }

    var scalarCount: Int { scalars.count }

    /// The scalar index of a 1-based line and column, kept inside the document.
    func index(line: Int, column: Int) -> Int {
        let start = lineStarts[min(max(line, 1), lineStarts.count) - 1]
        return min(max(start + column - 1, 0), scalars.count)
    }

    func byteOffset(ofIndex index: Int) -> Int {
        byteOffsets[min(max(index, 0), scalars.count)]
    }

    /// The 1-based line and column of a scalar index.
    func lineAndColumn(ofIndex index: Int) -> (line: Int, column: Int) {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= index { low = middle } else { high = middle - 1 }
        }
        return (low + 1, index - lineStarts[low] + 1)
    }

    /// The scalar range of a start tag (`<name …>` or `<name …/>`), given the index XMLParser
    /// reports when it has read the attributes: its closing `>` or `/`. A document XMLParser
    /// accepted has no `<` inside attribute values, so the tag starts at the last `<` before.
    func startTag(reportedAt index: Int) -> Range<Int> {
        var end = index
        if end < scalars.count, scalars[end] == "/" { end += 1 }
        if end >= scalars.count || scalars[end] != ">" { end = closingBracket(from: min(index, scalars.count)) }
        return lastOpeningBracket(before: min(end, scalars.count)) ..< min(end + 1, scalars.count)
    }

    /// The scalar range of an end tag (`</name>`), or of the `/>` of an empty element, given the
    /// index XMLParser reports after it.
    func endTag(reportedAt index: Int) -> Range<Int> {
        let end = min(index, scalars.count)
        if end >= 2, scalars[end - 1] == ">", scalars[end - 2] == "/" { return end - 2 ..< end }
        return lastOpeningBracket(before: max(end - 1, 0)) ..< end
    }

    private func lastOpeningBracket(before index: Int) -> Int {
        var position = min(index, scalars.count - 1)
        while position > 0, scalars[position] != "<" { position -= 1 }
        return max(position, 0)
    }

    /// The next `>` outside quoted attribute values, from `index`.
    private func closingBracket(from index: Int) -> Int {
        var quote: Unicode.Scalar?
        var position = index
        while position < scalars.count {
            let scalar = scalars[position]
            if let open = quote {
                if scalar == open { quote = nil }
            } else if scalar == "\"" || scalar == "'" {
                quote = scalar
            } else if scalar == ">" {
                return position
            }
            position += 1
        }
        return scalars.count - 1
    }

    /// The document's text between two scalar indexes.
    func slice(_ range: Range<Int>) -> String {
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[max(range.lowerBound, 0) ..< min(range.upperBound, scalars.count)])
        return String(result)
    }

    /// Where the prolog (what comes before the root element) declares a document type, if it
    /// does: SSML needs none, and a DTD is how entity expansion attacks get in.
    func doctypeInProlog() -> Int? {
        var position = 0
        func starts(with prefix: String) -> Bool {
            let wanted = Array(prefix.unicodeScalars)
            guard position + wanted.count <= scalars.count else { return false }
            return Array(scalars[position ..< position + wanted.count]) == wanted
        }
        func skip(past terminator: String) {
            let wanted = Array(terminator.unicodeScalars)
            while position < scalars.count {
                if starts(with: terminator) {
                    position += wanted.count
                    return
                }
                position += 1
            }
        }
        while position < scalars.count {
            let scalar = scalars[position]
            if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{FEFF}" {
                position += 1
            } else if starts(with: "<?") {
                skip(past: "?>")
            } else if starts(with: "<!--") {
                skip(past: "-->")
            } else if starts(with: "<!") {
                return position
            } else {
                return nil
            }
        }
        return nil
    }
}
