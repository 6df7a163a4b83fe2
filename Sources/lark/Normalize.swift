import ArgumentParser
import Foundation
import TextNormalization

/// Shows what an English voice is given after text normalization, line by line: for checking
/// how a text will be read (and for benches that compare readings).
struct Normalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print text as normalization rewrites it for a voice's language (each line of standard input by default).")

    @Argument(help: "Text (default: each line of standard input).")
    var text: String?

    @Option(help: "The voice's language, as Piper writes it: en_US (month-first dates), en_GB (day-first), …")
    var language = "en_US"

    func run() throws {
        guard let normalizer = TextNormalizer.for(languageCode: language) else {
            throw fail("no normalizer for \(language): its text is spoken as written")
        }
        if let text {
            print(normalizer.normalize(text).text)
            return
        }
        while let line = readLine() {
            print(normalizer.normalize(line).text)
        }
    }
}
