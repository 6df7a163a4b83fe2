/// Where the catalog comes from and where downloaded voices go, parsed at the edge by `lark`.
public struct CatalogSettings: Sendable, Equatable {
    /// Piper's published catalog.
    public static let defaultCatalogURL = "https://huggingface.co/rhasspy/piper-voices/resolve/main/voices.json"
    /// Voice files are at this base + the file's path in the catalog.
    public static let defaultVoicesBaseURL = "https://huggingface.co/rhasspy/piper-voices/resolve/main/"

    public var catalogURL: String
    public var voicesBaseURL: String
    /// Downloaded voices and the cached catalog (`voices.json`) live here.
    public var downloadDirectory: String

    public init(downloadDirectory: String, catalogURL: String = Self.defaultCatalogURL,
                voicesBaseURL: String = Self.defaultVoicesBaseURL) {
        self.downloadDirectory = downloadDirectory
        self.catalogURL = catalogURL
        self.voicesBaseURL = voicesBaseURL
    }

    /// The directory of a catalog URL, where Piper's repository keeps the voice files
    /// (`…/main/voices.json` → `…/main/`): the base URL when only a catalog URL is given.
    public static func baseURL(besideCatalog catalogURL: String) -> String {
        guard let slash = catalogURL.lastIndex(of: "/") else { return defaultVoicesBaseURL }
        return String(catalogURL[...slash])
    }

    /// The cached copy of the catalog.
    public var cachedCatalogPath: String { downloadDirectory + "/voices.json" }

    /// The URL of a file listed in the catalog (`en/en_US/joe/medium/en_US-joe-medium.onnx`).
    func url(of catalogPath: String) -> String {
        let base = voicesBaseURL.hasSuffix("/") ? voicesBaseURL : voicesBaseURL + "/"
        let escaped = catalogPath.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0)
        }
        return base + escaped.joined(separator: "/")
    }
}
