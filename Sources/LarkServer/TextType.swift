import Foundation
import SpeechCore

/// How a request says its text is written: `text_type` on Lark's JSON routes and jobs; on
/// Piper's routes and Polly's `/read`, a text that starts with `<speak`, a true `ssml` flag, or
/// (on `POST /`) the SSML media type.
enum TextType {
    /// `text_type`: `text` (the default) or `ssml`.
    static func markup(textType: String?) throws(SpeechError) -> SpeechInput.Markup {
        guard let textType else { return .text }
        guard let markup = SpeechInput.Markup(rawValue: textType.lowercased()) else {
            throw .invalidOption(name: "text_type", message: "text_type must be text or ssml, got '\(textType)'")
        }
        return markup
    }

    /// Piper's routes: SSML when flagged (`ssml=1`, `application/ssml+xml`) or when the text
    /// starts with `<speak` after any white space.
    static func detected(in text: String, flagged: Bool) -> SpeechInput.Markup {
        flagged || text.drop(while: { $0.isWhitespace }).hasPrefix("<speak") ? .ssml : .text
    }

    /// A query's or form's `ssml` flag: `1`, `true` or `yes`.
    static func flag(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "true", "yes"].contains(value.lowercased())
    }

    /// Whether a Content-Type names SSML (`application/ssml+xml`, any case, any parameters).
    static func isSSML(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == "application/ssml+xml"
    }
}
