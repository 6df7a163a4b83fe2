import Foundation

/// A query string read the way HTML forms, Flask and Python's `urlencode` write it: `+` is a
/// space, then `%XX` escapes are decoded. Hummingbird's `queryParameters` decodes `%XX` only, so
/// `text=Hello+there.` would reach the engine as `Hello+there.` (spoken "plus", and the
/// sentences run together). Hand-written because it is a few lines over Foundation's decoder.
struct FormQuery: Sendable {
    private var values: [(name: String, value: String)] = []

    /// `query`: the raw query string (after `?`, still escaped).
    init(_ query: String?) {
        guard let query else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values.append((name, value))
        }
    }

    /// The first value given for `name`.
    func get(_ name: String) -> String? {
        values.first { $0.name == name }?.value
    }

    private static func decode(_ component: Substring) -> String {
        let spaced = component.replacingOccurrences(of: "+", with: " ")
        // A malformed escape (`%zz`) is kept as written rather than rejected.
        return spaced.removingPercentEncoding ?? spaced
    }
}
