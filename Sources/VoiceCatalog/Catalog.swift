import Foundation

/// One voice in Piper's `voices.json`: what it is, where its files are and what they must hash to.
/// Field names follow Piper's file, so a catalog Piper publishes decodes as it is.
public struct CatalogVoice: Codable, Sendable, Equatable {
    public struct Language: Codable, Sendable, Equatable {
        public var code: String
        public var family: String?
        public var region: String?
        public var nameNative: String?
        public var nameEnglish: String?
        public var countryEnglish: String?

        enum CodingKeys: String, CodingKey {
            case code, family, region
            case nameNative = "name_native"
            case nameEnglish = "name_english"
            case countryEnglish = "country_english"
        }

        public init(code: String, family: String? = nil, region: String? = nil, nameNative: String? = nil,
                    nameEnglish: String? = nil, countryEnglish: String? = nil) {
            self.code = code
            self.family = family
            self.region = region
            self.nameNative = nameNative
            self.nameEnglish = nameEnglish
            self.countryEnglish = countryEnglish
        }
    }

    /// What the catalog promises about one file: the download is checked against both.
    public struct FileInfo: Codable, Sendable, Equatable {
        public var sizeBytes: Int64
        public var md5Digest: String

        enum CodingKeys: String, CodingKey {
            case sizeBytes = "size_bytes"
            case md5Digest = "md5_digest"
        }

        public init(sizeBytes: Int64, md5Digest: String) {
            self.sizeBytes = sizeBytes
            self.md5Digest = md5Digest
        }
    }

    public var key: String
    public var name: String
    public var language: Language
    public var quality: String
    public var numSpeakers: Int
    public var speakerIDMap: [String: Int]
    /// Paths relative to the voices base URL (`en/en_US/joe/medium/en_US-joe-medium.onnx`).
    public var files: [String: FileInfo]
    /// Former names of this voice; they still select it.
    public var aliases: [String]

    enum CodingKeys: String, CodingKey {
        case key, name, language, quality, files, aliases
        case numSpeakers = "num_speakers"
        case speakerIDMap = "speaker_id_map"
    }

    public init(key: String, name: String, language: Language, quality: String, numSpeakers: Int = 1,
                speakerIDMap: [String: Int] = [:], files: [String: FileInfo], aliases: [String] = []) {
        self.key = key
        self.name = name
        self.language = language
        self.quality = quality
        self.numSpeakers = numSpeakers
        self.speakerIDMap = speakerIDMap
        self.files = files
        self.aliases = aliases
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(String.self, forKey: .key)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? key
        language = try container.decode(Language.self, forKey: .language)
        quality = try container.decodeIfPresent(String.self, forKey: .quality) ?? ""
        numSpeakers = try container.decodeIfPresent(Int.self, forKey: .numSpeakers) ?? 1
        speakerIDMap = try container.decodeIfPresent([String: Int].self, forKey: .speakerIDMap) ?? [:]
        files = try container.decode([String: FileInfo].self, forKey: .files)
        aliases = try container.decodeIfPresent([String].self, forKey: .aliases) ?? []
    }

    /// The catalog path of the file whose name ends with `suffix` (`.onnx`, `.onnx.json`).
    func filePath(endingWith suffix: String) -> String? {
        files.keys.sorted().first { $0.hasSuffix("/" + key + suffix) || $0 == key + suffix }
    }

    /// The two files a Piper voice needs, as (catalog path, promise, local file name), model first.
    func voiceFiles() throws(CatalogError) -> [(path: String, info: FileInfo, localName: String)] {
        try [".onnx", ".onnx.json"].map { suffix throws(CatalogError) in
            guard let path = filePath(endingWith: suffix), let info = files[path] else {
                throw CatalogError.invalidCatalog("voice '\(key)' lists no \(key + suffix) file")
            }
            return (path, info, key + suffix)
        }
    }

    /// Bytes to download for the voice's model and config.
    public var downloadSize: Int64 {
        ((try? voiceFiles()) ?? []).reduce(0) { $0 + $1.info.sizeBytes }
    }
}

/// Piper's `voices.json`: voices by key, plus the aliases they are also known by.
public struct Catalog: Sendable, Equatable {
    public var voices: [String: CatalogVoice]

    public init(voices: [String: CatalogVoice]) {
        self.voices = voices
    }

    /// Parses a `voices.json` document (a top-level object keyed by voice key).
    public init(data: Data) throws(CatalogError) {
        do {
            voices = try JSONDecoder().decode([String: CatalogVoice].self, from: data)
        } catch {
            throw CatalogError.invalidCatalog("not a Piper voices.json: \(Self.describe(error))")
        }
    }

    /// The voice with this key, or whose `aliases` name it; keys win over aliases.
    /// A name given with the model's `.onnx` is the voice without it, unless a key is spelled
    /// that way (a key ending in `.onnx` must stay reachable: found by fuzz-catalog).
    public func voice(named name: String) -> CatalogVoice? {
        if let voice = voices[name] { return voice }
        let name = name.hasSuffix(".onnx") ? String(name.dropLast(5)) : name
        if let voice = voices[name] { return voice }
        return voices.values.sorted { $0.key < $1.key }.first { $0.aliases.contains(name) }
    }

    /// Every alias and the key it stands for.
    public var aliases: [String: String] {
        var map: [String: String] = [:]
        for voice in voices.values.sorted(by: { $0.key < $1.key }) {
            for alias in voice.aliases where voices[alias] == nil && map[alias] == nil { map[alias] = voice.key }
        }
        return map
    }

    /// Voices sorted by key, optionally only those whose language code starts with `language`
    /// (`en`, `en_US`; `-` and `_` are the same).
    public func list(language: String? = nil) -> [CatalogVoice] {
        let sorted = voices.values.sorted { $0.key < $1.key }
        guard let language else { return sorted }
        let wanted = Self.normalized(language)
        return sorted.filter { Self.normalized($0.language.code).hasPrefix(wanted) }
    }

    static func normalized(_ code: String) -> String {
        code.lowercased().replacingOccurrences(of: "-", with: "_")
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing '\(key.stringValue)' at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.debugDescription) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let context):
            return context.debugDescription
        default:
            return String(describing: error)
        }
    }
}
