import Foundation

/// Attribute values of SSML elements, read into numbers; each reader answers nil with a
/// sentence saying what was expected when the value is not one it knows.
enum SSMLValues {
    /// The longest `<break>`.
    static let maxBreakSeconds: Double = 10

    /// `<break strength>`: the pause each strength makes.
    static let breakStrengths: [String: Double] = [
        "none": 0, "x-weak": 0.1, "weak": 0.25, "medium": 0.5, "strong": 0.75, "x-strong": 1.0,
    ]

    /// `<break time>`: `500ms`, `1.5s` (at most `maxBreakSeconds`).
    static func breakTime(_ raw: String) -> Result<Double, Problem> {
        let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let (number, scale): (Substring, Double) =
            value.hasSuffix("ms") ? (value.dropLast(2), 0.001) : value.hasSuffix("s") ? (value.dropLast(), 1) : ("", 0)
        guard scale > 0, let amount = decimal(number), amount >= 0 else {
            return .failure(Problem("break time must be a duration such as 500ms or 1.5s, got \(quoted(raw))"))
        }
        let seconds = amount * scale
        guard seconds <= maxBreakSeconds else {
            return .failure(Problem("break time must be at most \(Int(maxBreakSeconds))s, got \(quoted(raw))"))
        }
        return .success(seconds)
    }

    /// `<prosody rate>` as a speed factor: a named rate, a percentage of normal speed (`80%`,
    /// 20–200), a relative change (`+10%`, `-25%`) or a multiplier (`1.5`).
    static func rate(_ raw: String) -> Result<Double, Problem> {
        let named: [String: Double] = ["x-slow": 0.5, "slow": 0.75, "medium": 1, "default": 1, "fast": 1.25, "x-fast": 1.75]
        let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let expected = Problem(
            "prosody rate must be x-slow, slow, medium, fast, x-fast, a percentage of normal speed from 20% to 200% "
                + "(or a change such as +10%), or a multiplier from 0.2 to 2, got \(quoted(raw))")
        if let speed = named[value] { return .success(speed) }
        let speed: Double
        if value.hasSuffix("%"), let percent = decimal(value.dropLast()) {
            let relative = value.hasPrefix("+") || value.hasPrefix("-")
            speed = relative ? 1 + percent / 100 : percent / 100
        } else if let multiplier = decimal(Substring(value)) {
            speed = multiplier
        } else {
            return .failure(expected)
        }
        guard (0.2...2).contains(speed) else { return .failure(expected) }
        return .success(speed)
    }

    /// `<prosody volume>` as a gain in dB: a named level or a change in decibels (`-6dB`, at most ±40).
    static func volume(_ raw: String) -> Result<Double, Problem> {
        let named: [String: Double] = [
            "silent": -.infinity, "x-soft": -12, "soft": -6, "medium": 0, "default": 0, "loud": 6, "x-loud": 12,
        ]
        let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
        if let gain = named[value] { return .success(gain) }
        if value.hasSuffix("db"), let gain = decimal(value.dropLast(2)), abs(gain) <= 40 {
            return .success(gain)
        }
        return .failure(
            Problem("prosody volume must be silent, x-soft, soft, medium, loud, x-loud or a change from -40dB to +40dB such as -6dB, got \(quoted(raw))"))
    }

    /// `<prosody pitch>` as espeak-ng's pitch (0–100, 50 normal) from `base`: a named level or a
    /// relative change in percent (`+20%`).
    static func pitch(_ raw: String, base: Int) -> Result<Int, Problem> {
        let named: [String: Int] = ["x-low": 10, "low": 30, "medium": 50, "default": 50, "high": 70, "x-high": 90]
        let value = raw.trimmingCharacters(in: .whitespaces).lowercased()
        if let pitch = named[value] { return .success(pitch) }
        if value.hasSuffix("%"), value.hasPrefix("+") || value.hasPrefix("-"), let percent = decimal(value.dropLast()),
            abs(percent) <= 100
        {
            return .success(min(100, max(0, Int((Double(base) * (1 + percent / 100)).rounded()))))
        }
        return .failure(Problem("prosody pitch must be x-low, low, medium, high, x-high or a change such as +20% or -10%, got \(quoted(raw))"))
    }

    /// A value as an error message shows it: quoted, and cut short when it is long.
    static func quoted(_ raw: String) -> String {
        raw.count > 40 ? "'\(raw.prefix(40))…' (\(raw.count) characters)" : "'\(raw)'"
    }

    /// A plain decimal (`1.5`, `+10`, `-25`): no exponents, infinities or hexadecimal.
    private static func decimal(_ text: Substring) -> Double? {
        let digits = text.drop { $0 == "+" || $0 == "-" }
        guard !digits.isEmpty, text.count - digits.count <= 1, digits.count <= 12,
            digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), digits.filter({ $0 == "." }).count <= 1,
            let value = Double(text)
        else { return nil }
        return value
    }

    /// What was wrong with a value, in words.
    struct Problem: Error, Equatable {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
