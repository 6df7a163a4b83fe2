/// English text normalization: numbers, money, dates, times, measures, abbreviations, Roman
/// numerals, symbols and addresses rewritten into the words an English reader says, before
/// espeak-ng turns the text into phonemes. Each rewritten span is read once and never
/// revisited; sentence-ending periods stay where they were; `[[ … ]]` blocks are copied as is.
/// Normalizing the result again changes nothing.
public struct EnglishNormalizer: LanguageNormalizer {
    /// How an all-numbers date such as `3/4/2025` is read.
    public enum DateOrder: Sendable {
        /// en-US: month/day/year ("March fourth").
        case monthFirst
        /// en-GB and most other Englishes: day/month/year ("the third of April").
        case dayFirst
    }

    public let dateOrder: DateOrder

    public init(dateOrder: DateOrder = .monthFirst) {
        self.dateOrder = dateOrder
    }

    public func normalize(_ text: String) -> NormalizedText {
        var builder = NormalizedTextBuilder(original: text)
        var offset = 0
        for (part, isRaw) in RawPhonemeSpans.split(text) {
            defer { offset += part.utf8.count }
            if isRaw {
                builder.copy(part)
                continue
            }
            let reader = EnglishReader(tokens: Tokenizer.tokens(of: part, baseOffset: offset), dateOrder: dateOrder)
            var index = 0
            while index < reader.tokens.count {
                if let reading = reader.read(at: index), reading.end > index {
                    let original = reader.tokens[index].bytes.lowerBound..<reader.tokens[reading.end - 1].bytes.upperBound
                    builder.rewrite(reading.words, original: original)
                    index = reading.end
                } else {
                    builder.copy(reader.tokens[index].text)
                    index += 1
                }
            }
        }
        return builder.build()
    }
}
