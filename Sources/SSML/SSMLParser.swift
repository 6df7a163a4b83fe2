import Foundation
import SpeechCore

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads an SSML document into an `SSMLDocument` with Foundation's `XMLParser`, checking every
/// element and attribute; anything it cannot speak is `SpeechError.invalidSSML` with the line and
/// column and what was expected.
///
/// Limits (so that no document makes the server work without bound): elements nested at most
/// `maxDepth` deep, at most `maxElements` elements, each `<break>` at most 10 s and all of them
/// together at most `maxTotalBreakSeconds`. A document type declaration (`<!DOCTYPE`) is refused
/// outright: SSML needs none, and entity definitions are what expansion attacks ("billion
/// laughs") and external entities are made of.
public enum SSMLParser {
    public static let maxDepth = 32
    public static let maxElements = 2_000
    public static let maxTotalBreakSeconds: Double = 120
    public static let maxBreakSeconds = SSMLValues.maxBreakSeconds

    /// The SSML elements Lark knows (others are refused unless namespaced: `amazon:effect`).
    public static let elements = [
        "speak", "p", "s", "break", "prosody", "say-as", "sub", "phoneme", "lang", "voice", "mark", "emphasis", "w",
        "token", "meta", "metadata",
    ]

    /// The 1-based line and column (in characters) of a UTF-8 offset of `text`, for errors found
    /// after parsing (a language no voice speaks).
    public static func lineAndColumn(ofByte offset: Int, in text: String) -> (line: Int, column: Int) {
        let prefix = String(decoding: text.utf8.prefix(max(0, offset)), as: UTF8.self)
        let lines = prefix.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.count, (lines.last?.unicodeScalars.count ?? 0) + 1)
    }

    public static func parse(_ text: String) throws(SpeechError) -> SSMLDocument {
        let source = SSMLSource(text)
        if let doctype = source.doctypeInProlog() {
            let position = source.lineAndColumn(ofIndex: doctype)
            throw .invalidSSML(
                message: "document type declarations (<!DOCTYPE …>) are not accepted: SSML needs none; expected <speak>",
                line: position.line, column: position.column)
        }
        let builder = SSMLBuilder(source: source)
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = builder
        parser.shouldProcessNamespaces = false
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        let parsed = parser.parse()
        if let failure = builder.failure { throw failure }
        // XMLParser can report an error (a document cut short) and still answer true.
        if !parsed || builder.xmlError != nil {
            let (line, column) = builder.xmlErrorPosition ?? (parser.lineNumber, parser.columnNumber)
            throw .invalidSSML(
                message: builder.describe(xmlError: parser.parserError ?? builder.xmlError), line: max(line, 1),
                column: max(column, 1))
        }
        if let open = builder.unclosedElement {
            let end = source.lineAndColumn(ofIndex: source.scalarCount)
            throw .invalidSSML(message: "the document ends too early: expected </\(open)>", line: end.line, column: end.column)
        }
        guard builder.sawRoot else {
            throw .invalidSSML(message: "the document is empty: expected <speak>…</speak>", line: 1, column: 1)
        }
        return SSMLDocument(items: builder.items)
    }
}

/// XMLParser's delegate: keeps the open elements' settings on a stack and appends items as the
/// document is read. Used on one thread, within one `SSMLParser.parse` call.
private final class SSMLBuilder: NSObject, XMLParserDelegate {
    let source: SSMLSource
    private(set) var items: [SSMLItem] = []
    private(set) var failure: SpeechError?
    private(set) var xmlError: (any Error)?
    private(set) var xmlErrorPosition: (Int, Int)?
    private(set) var sawRoot = false
    /// The innermost open element when XMLParser found its first error (what it expected to close).
    private var openAtError: String?

    /// What an open element does with the text inside it.
    private enum Role {
        /// Its text is spoken as written.
        case speak
        /// Its text is gathered and spoken as the element says (`sub`, `phoneme`, `say-as`).
        case gather(Gathered)
        /// Its text is not spoken (`meta`, `metadata`).
        case silent
    }

    private enum Gathered {
        case substitute(alias: String)
        case phonemes(ipa: String)
        case sayAs(SayAsKind, format: String?, detail: String?)
    }

    private struct Frame {
        var name: String
        var settings: SSMLSettings
        var role: Role
        /// The scalar index where the start tag begins.
        var start: Int
        var gatheredText = ""
    }

    private var stack: [Frame] = []
    private var elementCount = 0
    private var breakSeconds: Double = 0
    /// Where the last tag ended (scalar index), and the characters read since.
    private var textStart = 0
    private var pendingText = ""

    init(source: SSMLSource) {
        self.source = source
    }

    // MARK: - XMLParserDelegate

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        guard failure == nil, xmlError == nil else { return }
        let tag = source.startTag(reportedAt: source.index(line: parser.lineNumber, column: parser.columnNumber))
        flushText(until: tag.lowerBound)
        textStart = tag.upperBound
        do throws(SpeechError) {
            try open(elementName, attributes: attributes, tag: tag)
        } catch {
            fail(error, parser)
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard failure == nil, xmlError == nil, !stack.isEmpty else { return }
        let tag = source.endTag(reportedAt: source.index(line: parser.lineNumber, column: parser.columnNumber))
        flushText(until: tag.lowerBound)
        textStart = tag.upperBound
        let frame = stack.removeLast()
        let settings = frame.settings
        switch frame.role {
        case .gather(let gathered):
            let range = source.byteOffset(ofIndex: frame.start) ..< source.byteOffset(ofIndex: tag.upperBound)
            let content: SSMLSpeech.Content
            switch gathered {
            case .substitute(let alias): content = .substitute(alias: alias)
            case .phonemes(let ipa): content = .phonemes(ipa: ipa, text: frame.gatheredText)
            case .sayAs(let kind, let format, let detail):
                content = .sayAs(text: frame.gatheredText, interpretAs: kind, format: format, detail: detail)
            }
            items.append(.speech(SSMLSpeech(content: content, source: range, literal: false, settings: settings)))
        case .speak, .silent:
            break
        }
        if frame.name == "s" || frame.name == "p" { items.append(.sentenceBoundary) }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        pendingText += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        pendingText += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        // Only the first error says where the document went wrong; later ones follow from it.
        // Namespace warnings (libxml2's 200s: a prefix such as `amazon:` never declared) are not
        // errors here: vendor elements are accepted with or without their declaration.
        guard xmlError == nil, !(200..<300).contains((parseError as NSError).code) else { return }
        xmlError = parseError
        xmlErrorPosition = (parser.lineNumber, parser.columnNumber)
        openAtError = stack.last?.name
    }

    // MARK: - Elements

    private func open(_ name: String, attributes: [String: String], tag: Range<Int>) throws(SpeechError) {
        let shown = name.count > 40 ? name.prefix(40) + "…" : name
        elementCount += 1
        guard elementCount <= SSMLParser.maxElements else {
            throw invalid("the document has more than \(SSMLParser.maxElements) elements, the most one request may have", at: tag)
        }
        guard stack.count < SSMLParser.maxDepth else {
            throw invalid("elements are nested more than \(SSMLParser.maxDepth) deep, the most a document may nest", at: tag)
        }
        guard sawRoot else {
            guard name == "speak" else { throw invalid("the document must be rooted in <speak>, found <\(shown)>", at: tag) }
            sawRoot = true
            stack.append(Frame(name: name, settings: SSMLSettings(), role: .speak, start: tag.lowerBound))
            return
        }
        let parent = stack.last ?? Frame(name: "speak", settings: SSMLSettings(), role: .speak, start: 0)
        if case .gather = parent.role {
            throw invalid("<\(parent.name)> holds only text, found <\(shown)> inside it", at: tag)
        }
        var settings = parent.settings
        var role = parent.role
        func value(_ attribute: String, _ read: (String) -> Result<Double, SSMLValues.Problem>) throws(SpeechError) -> Double? {
            guard let raw = attributes[attribute] else { return nil }
            switch read(raw) {
            case .success(let number): return number
            case .failure(let problem): throw invalid(problem.message, at: tag)
            }
        }
        func required(_ attribute: String) throws(SpeechError) -> String {
            guard let raw = attributes[attribute], !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw invalid("<\(name)> needs the attribute \(attribute)=\"…\"", at: tag)
            }
            return raw
        }
        func language(_ attribute: String) throws(SpeechError) -> String? {
            guard let raw = attributes[attribute] else { return nil }
            let code = raw.trimmingCharacters(in: .whitespaces)
            guard !code.isEmpty, code.count <= 35, code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { throw invalid("\(attribute) must be a language code such as en-US or de, got \(SSMLValues.quoted(raw))", at: tag) }
            return code
        }

        switch name {
        case "speak":
            throw invalid("<speak> is the document's root and cannot be nested", at: tag)
        case "p", "s":
            items.append(.sentenceBoundary)
            if let code = try language("xml:lang") { settings.language = code }
        case "break":
            var seconds = 0.5
            if let strength = attributes["strength"] {
                guard let pause = SSMLValues.breakStrengths[strength.trimmingCharacters(in: .whitespaces).lowercased()] else {
                    throw invalid("break strength must be none, x-weak, weak, medium, strong or x-strong, got \(SSMLValues.quoted(strength))", at: tag)
                }
                seconds = pause
            }
            if let time = try value("time", SSMLValues.breakTime) { seconds = time }
            breakSeconds += seconds
            guard breakSeconds <= SSMLParser.maxTotalBreakSeconds else {
                throw invalid(
                    "the breaks add up to more than \(Int(SSMLParser.maxTotalBreakSeconds)) seconds, the most one document may have",
                    at: tag)
            }
            items.append(.pause(seconds: seconds, source: source.byteOffset(ofIndex: tag.lowerBound)))
        case "prosody":
            if let speed = try value("rate", SSMLValues.rate) { settings.speed *= speed }
            if let gain = try value("volume", SSMLValues.volume) { settings.volumeDecibels += gain }
            if let raw = attributes["pitch"] {
                switch SSMLValues.pitch(raw, base: settings.pitch ?? 50) {
                case .success(let pitch): settings.pitch = pitch
                case .failure(let problem): throw invalid(problem.message, at: tag)
                }
            }
        case "say-as":
            let raw = try required("interpret-as")
            guard let kind = SayAsKind.names[raw.trimmingCharacters(in: .whitespaces).lowercased()] else {
                throw invalid(
                    "say-as interpret-as must be one of \(SayAsKind.names.keys.sorted().joined(separator: ", ")), got \(SSMLValues.quoted(raw))", at: tag)
            }
            role = .gather(.sayAs(kind, format: attributes["format"], detail: attributes["detail"]))
        case "sub":
            role = .gather(.substitute(alias: try required("alias")))
        case "phoneme":
            let ph = try required("ph")
            switch (attributes["alphabet"] ?? "ipa").trimmingCharacters(in: .whitespaces).lowercased() {
            case "ipa":
                role = .gather(.phonemes(ipa: ph))
            case "x-sampa", "xsampa", "x_sampa":
                switch XSampa.ipa(ph) {
                case .success(let ipa): role = .gather(.phonemes(ipa: ipa))
                case .failure(let problem): throw invalid(problem.message, at: tag)
                }
            default:
                throw invalid("phoneme alphabet must be ipa or x-sampa, got \(SSMLValues.quoted(attributes["alphabet"] ?? ""))", at: tag)
            }
            guard !ph.contains("[[") && !ph.contains("]]") else {
                throw invalid("phoneme ph cannot contain [[ or ]]", at: tag)
            }
        case "lang":
            guard let code = try language("xml:lang") else { throw invalid("<lang> needs the attribute xml:lang=\"…\"", at: tag) }
            settings.language = code
            settings.voiceName = nil
        case "voice":
            if let voiceName = attributes["name"]?.trimmingCharacters(in: .whitespaces), !voiceName.isEmpty {
                settings.voiceName = voiceName
                settings.language = nil
            }
            var code = try language("languages")
            if code == nil { code = try language("xml:lang") }
            if code == nil { code = try language("language") }
            if let code {
                settings.language = code
                if attributes["name"] == nil { settings.voiceName = nil }
            }
        case "mark":
            let markName = try required("name")
            items.append(.mark(name: markName, source: source.byteOffset(ofIndex: tag.lowerBound)))
        case "emphasis", "w", "token":
            break
        case "meta", "metadata":
            role = .silent
        case "audio":
            throw invalid("<audio> is not supported: Lark speaks text and does not play recorded audio", at: tag)
        default:
            // Vendor extensions (`amazon:effect`, `google:…`) are accepted; their text is spoken.
            guard name.contains(":") else {
                throw invalid("unknown element <\(shown)>; expected one of: \(SSMLParser.elements.map { "<\($0)>" }.joined(separator: ", ")), or a namespaced one (amazon:…)", at: tag)
            }
        }
        stack.append(Frame(name: name, settings: settings, role: role, start: tag.lowerBound))
    }

    /// The characters read since the last tag, which ends at `end`: spoken, gathered or dropped
    /// as the innermost open element says.
    private func flushText(until end: Int) {
        defer { pendingText = "" }
        guard !pendingText.isEmpty, let frame = stack.last else { return }
        switch frame.role {
        case .silent:
            return
        case .gather:
            stack[stack.count - 1].gatheredText += pendingText
        case .speak:
            let range = textStart ..< max(end, textStart)
            let literal = source.slice(range) == pendingText
            let bytes = source.byteOffset(ofIndex: range.lowerBound) ..< source.byteOffset(ofIndex: range.upperBound)
            items.append(.speech(SSMLSpeech(content: .text(pendingText), source: bytes, literal: literal, settings: frame.settings)))
        }
    }

    private func invalid(_ message: String, at tag: Range<Int>) -> SpeechError {
        let position = source.lineAndColumn(ofIndex: tag.lowerBound)
        return .invalidSSML(message: message, line: position.line, column: position.column)
    }

    private func fail(_ error: SpeechError, _ parser: XMLParser) {
        failure = error
        parser.abortParsing()
    }

    /// XMLParser's error in words, saying what was expected where the open elements tell.
    /// The codes are libxml2's `xmlParserErrors` (which Apple's `XMLParser.ErrorCode` also uses).
    func describe(xmlError: (any Error)?) -> String {
        let code = (xmlError as NSError?)?.code
        let open = openAtError
        switch code {
        case 76?:
            return "an end tag does not match the open element" + (open.map { ": expected </\($0)>" } ?? "")
        case 77?, 85?:
            return "the document ends too early" + (open.map { ": expected </\($0)>" } ?? ": expected </speak>")
        case 3?, 4?:
            return "the document is empty or does not start with an element: expected <speak>…</speak>"
        case 5?:
            // libxml2's "extra content" also stands for a document cut short inside its root.
            if let open { return "the document ends too early: expected </\(open)>" }
            return "there is content after </speak>: expected the end of the document"
        case 26?, 27?, 89?:
            return "unknown entity: only &amp; &lt; &gt; &quot; &apos; and character references such as &#233; are allowed (write & as &amp;)"
        case 68?, 23?:
            return "a & does not start an entity: write & as &amp;"
        case 38?:
            return "an attribute value contains <: write it as &lt;"
        case 39?, 40?, 41?, 43?, 44?:
            return "an attribute is not written as name=\"value\""
        case 42?:
            return "an attribute is given twice in one tag"
        case 73?:
            return "a tag is not closed: expected >"
        case 9?:
            return "the document has a character XML does not allow"
        default:
            return "the document is not well-formed XML" + (code.map { " (XML error \($0))" } ?? "")
        }
    }

    /// The innermost element still open when the document ended (XMLParser does not always
    /// report a document cut short).
    var unclosedElement: String? { failure == nil && xmlError == nil ? stack.last?.name : nil }

}
