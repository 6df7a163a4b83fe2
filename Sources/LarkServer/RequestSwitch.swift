import SpeechCore

/// An on/off request option (`normalize`): `0`, `1`, `true` or `false` in a query string;
/// `true`/`false` in JSON (also `0`, `1` and those words as strings, as forms send them).
/// Anything else is 400 `invalid_option`, checked when the request is read.
struct RequestSwitch: Decodable, Sendable {
    static let normalize = "normalize"

    /// The value as sent (nil for a JSON boolean).
    private var raw: String?
    private var flag: Bool?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self.flag = flag
        } else if let number = try? container.decode(Int.self) {
            raw = String(number)
        } else if let text = try? container.decode(String.self) {
            raw = text
        } else {
            raw = "a value that is not true or false"
        }
    }

    /// The switch's value; throws `invalid_option` naming `name` for a value that is neither.
    func value(name: String) throws(SpeechError) -> Bool {
        if let flag { return flag }
        return try Self.parse(raw ?? "", name: name)
    }

    static func parse(_ text: String, name: String) throws(SpeechError) -> Bool {
        switch text.lowercased() {
        case "1", "true": return true
        case "0", "false": return false
        default: throw .invalidOption(name: name, message: "\(name) must be true, false, 1 or 0, got '\(text.prefix(40))'")
        }
    }
}
