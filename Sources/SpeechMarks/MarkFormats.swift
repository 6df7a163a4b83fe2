import SpeechCore

/// The written forms of timed marks: Amazon Polly's speech marks, and Lark's own JSON shape.
public enum MarkFormats {
    /// One mark as a line of Amazon Polly's speech marks (`OutputFormat=json`): `{"time",
    /// "type", "start", "end", "value"}`, with no `start`/`end` for visemes, as Polly writes them.
    public static func pollyLine(_ mark: TimedMark) -> String {
        var line = "{\"time\":\(mark.time),\"type\":\"\(mark.kind.rawValue)\""
        if mark.kind != .viseme { line += ",\"start\":\(mark.bytes.lowerBound),\"end\":\(mark.bytes.upperBound)" }
        return line + ",\"value\":\(jsonString(mark.value))}"
    }

    /// Polly speech marks for all of `marks`: JSON lines, each ending in a line break.
    public static func pollySpeechMarks(_ marks: [TimedMark]) -> String {
        marks.map { pollyLine($0) + "\n" }.joined()
    }

    /// One mark as Lark's JSON object: Polly's keys plus `end_time` (`start`/`end` are UTF-8 byte
    /// offsets into the caller's text, `start_char`/`end_char` the same in code points).
    public static func larkJSON(_ mark: TimedMark) -> String {
        "{\"type\":\"\(mark.kind.rawValue)\",\"time\":\(mark.time),\"end_time\":\(mark.endTime)"
            + ",\"start\":\(mark.bytes.lowerBound),\"end\":\(mark.bytes.upperBound)"
            + ",\"start_char\":\(mark.characters.lowerBound),\"end_char\":\(mark.characters.upperBound)"
            + ",\"value\":\(jsonString(mark.value))}"
    }

    /// `marks` as a JSON array of `larkJSON` objects.
    public static func larkJSONArray(_ marks: [TimedMark]) -> String {
        "[" + marks.map(larkJSON).joined(separator: ",") + "]"
    }

    /// A JSON string literal (RFC 8259 escapes).
    public static func jsonString(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
