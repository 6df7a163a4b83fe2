/// An SSML document as Lark speaks it: what to say, in order, with the settings in effect at
/// each place. `SSMLParser` makes it; the synthesis layer turns it into audio.
public struct SSMLDocument: Sendable, Equatable {
    public var items: [SSMLItem]

    public init(items: [SSMLItem]) {
        self.items = items
    }

    /// The seconds of silence all `<break>`s ask for.
    public var breakSeconds: Double {
        items.reduce(0) { total, item in
            if case .pause(let seconds, _) = item { return total + seconds }
            return total
        }
    }
}

/// One step of a document.
public enum SSMLItem: Sendable, Equatable {
    /// Something to speak.
    case speech(SSMLSpeech)
    /// `<break>`: this many seconds of silence; `source` is the element's first byte.
    case pause(seconds: Double, source: Int)
    /// `<mark name>`: a named point, at the element's first byte.
    case mark(name: String, source: Int)
    /// The end of an `<s>` or `<p>` (or the start of one): what follows starts a new sentence.
    case sentenceBoundary
}

/// A piece of text to speak with one set of settings.
public struct SSMLSpeech: Sendable, Equatable {
    /// What the piece is.
    public enum Content: Sendable, Equatable {
        /// Text as written in the document (entities and CDATA decoded).
        case text(String)
        /// `<sub alias>`: the alias is spoken instead of the element's text.
        case substitute(alias: String)
        /// `<phoneme>`: IPA to speak (X-SAMPA already converted), and the element's text, which
        /// voices that cannot take phonemes speak instead.
        case phonemes(ipa: String, text: String)
        /// `<say-as>`: the element's text, read as `interpretAs` says.
        case sayAs(text: String, interpretAs: SayAsKind, format: String?, detail: String?)
    }

    public var content: Content
    /// The UTF-8 byte range in the document that this piece speaks: a text node's characters, or
    /// a whole element (`<sub>…</sub>`) whose text is replaced.
    public var source: Range<Int>
    /// Whether `content`'s text is the source's bytes unchanged (no entity, CDATA or comment in
    /// it), so that an offset into one is the same offset into the other.
    public var literal: Bool
    public var settings: SSMLSettings

    public init(content: Content, source: Range<Int>, literal: Bool, settings: SSMLSettings) {
        self.content = content
        self.source = source
        self.literal = literal
        self.settings = settings
    }
}

/// `<say-as interpret-as>` values, each with the names SSML dialects use for it.
public enum SayAsKind: String, Sendable, Equatable, CaseIterable {
    case characters, cardinal, ordinal, digits, fraction, date, time, telephone, currency, unit, expletive

    /// Every accepted `interpret-as` value and what it means.
    public static let names: [String: SayAsKind] = [
        "characters": .characters, "spell-out": .characters, "verbatim": .characters,
        "cardinal": .cardinal, "number": .cardinal, "ordinal": .ordinal, "digits": .digits,
        "fraction": .fraction, "date": .date, "time": .time, "telephone": .telephone,
        "currency": .currency, "unit": .unit, "expletive": .expletive, "bleep": .expletive,
    ]
}

/// The settings in effect for a piece: nested elements combine with their parents'.
public struct SSMLSettings: Sendable, Hashable {
    /// `<voice name>`: a voice id (`en_US-joe-medium`, `espeak-ng:de`); nil: by language, or the request's voice.
    public var voiceName: String?
    /// `xml:lang` (on `<lang>`, `<voice>`, `<p>`, `<s>`) or `<voice languages>`: the language
    /// the piece is in, as written (`de-DE`); nil: the request's voice's.
    public var language: String?
    /// Speaking speed against the voice's normal (2 is twice as fast): the voice's length scale
    /// is divided by it. Nested `<prosody rate>`s multiply.
    public var speed: Double = 1
    /// Gain in decibels (nested ones add); -infinity is `silent`.
    public var volumeDecibels: Double = 0
    /// espeak-ng's pitch (0–100, 50 normal); nil: the request's. Piper voices ignore it.
    public var pitch: Int?

    public init() {}
}
