import Foundation
import SSML
import SpeechCore
import Testing

/// The SSML reader alone: what each element makes, where each text came from in the document,
/// and every document it refuses, with the line and column it names.
struct SSMLParserTests {
    func speeches(_ document: SSMLDocument) -> [SSMLSpeech] {
        document.items.compactMap { if case .speech(let speech) = $0 { return speech } else { return nil } }
    }

    func bytes(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    @Test func textNodesPointAtTheirBytesInTheDocument() throws {
        let text = "<speak>Héllo <break time=\"300ms\"/>wörld\n  <s xml:lang=\"de\">Grüße &amp; <![CDATA[<x>]]></s></speak>"
        let document = try SSMLParser.parse(text)
        let pieces = speeches(document)
        #expect(pieces.count == 3)
        #expect(pieces[0].content == .text("Héllo ") && bytes(text, pieces[0].source) == "Héllo " && pieces[0].literal)
        #expect(pieces[1].content == .text("wörld\n  ") && bytes(text, pieces[1].source) == "wörld\n  " && pieces[1].literal)
        // Entities and CDATA are decoded; the piece still covers its bytes, but not offset for offset.
        #expect(pieces[2].content == .text("Grüße & <x>") || pieces[2].content == .text("Grüße & "))
        #expect(bytes(text, pieces[2].source).hasPrefix("Grüße &amp; ") && !pieces[2].literal)
        #expect(pieces[2].settings.language == "de")
        let pause = try #require(document.items.first { if case .pause = $0 { return true } else { return false } })
        if case .pause(let seconds, let source) = pause {
            #expect(abs(seconds - 0.3) < 1e-9)
            #expect(bytes(text, source ..< source + 6) == "<break")
        }
    }

    @Test func nestedProsodyCombines() throws {
        let document = try SSMLParser.parse(
            #"<speak><prosody rate="50%" volume="-6dB"><prosody rate="x-fast" volume="+2dB" pitch="high">a</prosody></prosody></speak>"#)
        let settings = try #require(speeches(document).first).settings
        #expect(abs(settings.speed - 0.875) < 1e-9)
        #expect(abs(settings.volumeDecibels + 4) < 1e-9)
        #expect(settings.pitch == 70)
    }

    @Test func rewritingElementsCarryTheirWholeElement() throws {
        let text = #"<speak>The <sub alias="World Wide Web">WWW</sub>, <phoneme alphabet="x-sampa" ph="t@&quot;mA:toU">tomato</phoneme>, <say-as interpret-as="characters">SSML</say-as>.</speak>"#
        let pieces = speeches(try SSMLParser.parse(text))
        #expect(pieces.map(\.content) == [
            .text("The "), .substitute(alias: "World Wide Web"), .text(", "), .phonemes(ipa: "təˈmɑːtoʊ", text: "tomato"), .text(", "),
            .sayAs(text: "SSML", interpretAs: .characters, format: nil, detail: nil), .text("."),
        ])
        #expect(bytes(text, pieces[1].source) == #"<sub alias="World Wide Web">WWW</sub>"#)
        #expect(bytes(text, pieces[5].source) == #"<say-as interpret-as="characters">SSML</say-as>"#)
    }

    @Test func vendorElementsAreSpokenAndMarksKept() throws {
        let text = #"<speak><amazon:effect name="whispered">quiet</amazon:effect><mark name="here"/><emphasis>loud</emphasis><w>word</w><metadata>not spoken</metadata></speak>"#
        let document = try SSMLParser.parse(text)
        #expect(speeches(document).map(\.content) == [.text("quiet"), .text("loud"), .text("word")])
        let markAt = try #require(text.range(of: "<mark"))
        #expect(document.items.contains(.mark(name: "here", source: text.utf8.distance(from: text.startIndex, to: markAt.lowerBound))))
    }

    @Test func xSampaBecomesIPA() throws {
        let pieces = speeches(try SSMLParser.parse(#"<speak><phoneme alphabet="x-sampa" ph="h@&quot;loU DIs Iz r\`eIt_h">x</phoneme></speak>"#))
        #expect(pieces.first?.content == .phonemes(ipa: "həˈloʊ ðɪs ɪz ɻeɪtʰ", text: "x"))
    }

    /// Each refusal: the document, the line and column it names, and words of its message.
    static let refusals: [(String, Int, Int, String)] = [
        ("<speak><s>one</p></speak>", 1, 0, "expected </s>"),
        ("<speak>\n  <foo>x</foo></speak>", 2, 3, "unknown element <foo>"),
        ("<speak>\n<break time=\"abc\"/></speak>", 2, 1, "break time must be a duration"),
        ("<speak><break time=\"11s\"/></speak>", 1, 8, "at most 10s"),
        ("<speak><break strength=\"huge\"/></speak>", 1, 8, "break strength must be"),
        ("<speak>hi <audio src=\"a.mp3\"/></speak>", 1, 11, "<audio> is not supported"),
        ("<p>not rooted</p>", 1, 1, "rooted in <speak>"),
        ("<speak><prosody rate=\"warp\">x</prosody></speak>", 1, 8, "prosody rate must be"),
        ("<speak><prosody volume=\"99dB\">x</prosody></speak>", 1, 8, "prosody volume must be"),
        ("<speak><say-as interpret-as=\"poem\">x</say-as></speak>", 1, 8, "interpret-as must be one of"),
        ("<speak><sub>x</sub></speak>", 1, 8, "needs the attribute alias="),
        ("<speak><phoneme alphabet=\"klingon\" ph=\"x\">x</phoneme></speak>", 1, 8, "alphabet must be ipa or x-sampa"),
        ("<speak><phoneme alphabet=\"x-sampa\" ph=\"#\">x</phoneme></speak>", 1, 8, "not an X-SAMPA symbol"),
        ("<speak><sub alias=\"a\"><s>b</s></sub></speak>", 1, 23, "holds only text"),
        ("<speak><mark/></speak>", 1, 8, "needs the attribute name="),
        ("<speak><speak>x</speak></speak>", 1, 8, "cannot be nested"),
        ("<speak>Tom & Jerry</speak>", 1, 0, "write & as &amp;"),
        ("<speak>&nbsp;</speak>", 1, 0, "unknown entity"),
        ("<speak>unclosed", 1, 0, "ends too early"),
        ("", 1, 1, "empty"),
        ("<?xml version=\"1.0\"?>\n<!DOCTYPE speak [<!ENTITY a \"aaaa\">]><speak>&a;</speak>", 2, 1, "document type declarations"),
    ]

    @Test(arguments: refusals) func refusesWithThePosition(_ refusal: (String, Int, Int, String)) throws {
        let (text, line, column, words) = refusal
        do {
            _ = try SSMLParser.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            guard case .invalidSSML(let message, let atLine, let atColumn) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(error.code == "invalid_ssml")
            #expect(message.contains(words), "\(message)")
            #expect(atLine == line, "\(text): line \(atLine)")
            // Column 0 in the table: XMLParser's own column, checked to be on the line.
            if column > 0 { #expect(atColumn == column, "\(text): column \(atColumn)") } else { #expect(atColumn >= 1) }
        }
    }

    @Test func limitsStopPathologicalDocuments() throws {
        func refusal(_ text: String) -> String? {
            do {
                _ = try SSMLParser.parse(text)
                return nil
            } catch {
                return error.message
            }
        }
        let deep = "<speak>" + String(repeating: "<p>", count: 10_000) + "x" + String(repeating: "</p>", count: 10_000) + "</speak>"
        #expect(refusal(deep)?.contains("nested more than 32 deep") == true)
        let many = "<speak>" + String(repeating: "<w>a</w>", count: 2_001) + "</speak>"
        #expect(refusal(many)?.contains("more than 2000 elements") == true)
        let pauses = "<speak>" + String(repeating: "<break time=\"10s\"/>", count: 13) + "</speak>"
        #expect(refusal(pauses)?.contains("add up to more than 120 seconds") == true)
        let laughs = """
            <?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
            <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><speak>&lol3;</speak>
            """
        #expect(refusal(laughs)?.contains("document type declarations") == true)
        let external = #"<!DOCTYPE speak SYSTEM "file:///etc/passwd"><speak>x</speak>"#
        #expect(refusal(external)?.contains("document type declarations") == true)
        let huge = "<speak><break time=\"" + String(repeating: "9", count: 200_000) + "ms\"/></speak>"
        let message = try #require(refusal(huge))
        #expect(message.count < 300, "the error repeats the value: \(message.count) characters")
        // A huge value of an attribute Lark does not read is only carried.
        #expect(refusal("<speak><emphasis level=\"" + String(repeating: "x", count: 200_000) + "\">hi</emphasis></speak>") == nil)
    }
}
