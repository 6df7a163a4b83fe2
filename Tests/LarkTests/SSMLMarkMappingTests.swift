import SSML
import Testing

@testable import SpeechService

/// How a mark an engine puts on a run's text (a word, a sentence) is moved into the SSML
/// document: byte for byte where the run's text is the document's own, else onto the whole
/// element or text node it came from.
struct SSMLMarkMappingTests {
    static let document = #"<speak>Hello <sub alias="World Wide Web">WWW</sub> &amp; more</speak>"#

    /// The run the synthesis makes of `document`: its pieces' texts one after another.
    static func segments() throws -> (text: String, segments: [SSMLSegment]) {
        var text = ""
        var segments: [SSMLSegment] = []
        for case .speech(let speech) in try SSMLParser.parse(document).items {
            let spoken: String
            switch speech.content {
            case .text(let written): spoken = written
            case .substitute(let alias): spoken = alias
            default: spoken = ""
            }
            let start = text.utf8.count
            text += spoken
            segments.append(SSMLSegment(text: start ..< text.utf8.count, source: speech.source, literal: speech.literal))
        }
        return (text, segments)
    }

    static func range(of part: String, in text: String) throws -> Range<Int> {
        let found = try #require(text.range(of: part))
        let lower = text.utf8.distance(from: text.startIndex, to: found.lowerBound)
        return lower ..< lower + part.utf8.count
    }

    @Test func wordsMapByteForByteOrOntoTheirElement() throws {
        let (text, segments) = try Self.segments()
        #expect(text == "Hello World Wide Web & more")
        let document = Self.document
        let hello = try Self.range(of: "Hello", in: document)
        let sub = try Self.range(of: #"<sub alias="World Wide Web">WWW</sub>"#, in: document)
        let lastNode = try Self.range(of: " &amp; more", in: document)
        // A word of literal text: its own bytes in the document.
        let helloWord = try Self.range(of: "Hello", in: text)
        #expect(segments.documentRange(of: helloWord) == hello)
        // A word of an alias: the whole <sub> element.
        let wide = try Self.range(of: "Wide", in: text)
        #expect(segments.documentRange(of: wide) == sub)
        // A word of text with an entity in it: the whole text node.
        let more = try Self.range(of: "more", in: text)
        #expect(segments.documentRange(of: more) == lastNode)
        // A sentence over all of it: from the first byte of "Hello" to the end of the last node.
        #expect(segments.documentRange(of: 0 ..< text.utf8.count) == hello.lowerBound ..< lastNode.upperBound)
        // A position (a viseme's, an SSML mark's) stays a position where it falls.
        let position = try Self.range(of: "llo", in: text).lowerBound
        let inDocument = try Self.range(of: "llo", in: document).lowerBound
        #expect(segments.documentRange(of: position ..< position) == inDocument ..< inDocument)
    }
}
