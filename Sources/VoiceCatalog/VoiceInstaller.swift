import Foundation

/// What `install` did.
public struct InstalledVoice: Sendable {
    /// The catalog entry the name resolved to (through an alias, perhaps).
    public var voice: CatalogVoice
    /// Where the voice's files are now.
    public var files: VoiceFiles
    /// False when a data directory already had the voice.
    public var downloaded: Bool
}

/// A catalog voice and whether a data directory has it. Encodes flat, as the CLI's `--json`
/// and `GET /api/v1/voices?available=1` show it.
public struct AvailableVoice: Sendable, Encodable {
    public var voice: CatalogVoice
    public var installed: Bool

    enum CodingKeys: String, CodingKey {
        case key, name, language, country, quality, aliases, installed
        case languageName = "language_name"
        case numSpeakers = "num_speakers"
        case sizeBytes = "size_bytes"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(voice.key, forKey: .key)
        try container.encode(voice.name, forKey: .name)
        try container.encode(voice.language.code, forKey: .language)
        try container.encodeIfPresent(voice.language.nameEnglish, forKey: .languageName)
        try container.encodeIfPresent(voice.language.countryEnglish, forKey: .country)
        try container.encode(voice.quality, forKey: .quality)
        try container.encode(voice.numSpeakers, forKey: .numSpeakers)
        try container.encode(voice.aliases, forKey: .aliases)
        try container.encode(voice.downloadSize, forKey: .sizeBytes)
        try container.encode(installed, forKey: .installed)
    }
}

/// Installs voices from the catalog into the download directory, and removes them again.
///
/// The catalog is read from its cached copy; it is fetched only by `update()`, or when there is
/// no cached copy yet and a caller needs it. A voice's files are streamed to hidden part files
/// (`.NAME.onnx.part`) beside their final place, checked against the catalog's size and MD5,
/// then renamed: the model first and the config last, because `VoiceDirectories.scan()` sees a
/// voice only when both exist, so a failure at any point leaves nothing loadable.
public final class VoiceInstaller: Sendable {
    public let settings: CatalogSettings
    /// Every data directory (the download directory among them): a voice in any is installed.
    public let directories: VoiceDirectories
    private let http: CatalogHTTPClient

    public init(settings: CatalogSettings, dataDirectories: [String], http: CatalogHTTPClient) {
        self.settings = settings
        var all = dataDirectories
        if !all.contains(settings.downloadDirectory) { all.append(settings.downloadDirectory) }
        directories = VoiceDirectories(all)
        self.http = http
    }

    // MARK: - Catalog

    /// The cached catalog, if there is a readable one.
    public func cachedCatalog() -> Catalog? {
        guard let data = FileManager.default.contents(atPath: settings.cachedCatalogPath) else { return nil }
        return try? Catalog(data: data)
    }

    /// The cached catalog, or (the first time only) the one fetched from `catalogURL`.
    public func catalog() async throws(CatalogError) -> Catalog {
        if let cached = cachedCatalog() { return cached }
        return try await update()
    }

    /// Fetches the catalog and replaces the cached copy (atomically: a reader sees the old or
    /// the new file, never half of one).
    @discardableResult
    public func update() async throws(CatalogError) -> Catalog {
        let data = try await http.fetchDocument(settings.catalogURL)
        let catalog = try Catalog(data: data)
        try prepareDownloadDirectory()
        do {
            try data.write(to: URL(fileURLWithPath: settings.cachedCatalogPath), options: .atomic)
        } catch {
            throw CatalogError.notWritable(path: settings.cachedCatalogPath, reason: error.localizedDescription)
        }
        return catalog
    }

    /// The catalog's voices (optionally of one language) and whether each is installed.
    public func available(language: String? = nil) async throws(CatalogError) -> [AvailableVoice] {
        let installed = Set(directories.scan().map(\.name))
        return try await catalog().list(language: language).map { AvailableVoice(voice: $0, installed: installed.contains($0.key)) }
    }

    /// The catalog voice a name or alias stands for.
    public func resolve(_ name: String) async throws(CatalogError) -> CatalogVoice {
        try Self.checkName(name)
        guard let voice = try await catalog().voice(named: name) else { throw CatalogError.unknownVoice(name) }
        try Self.checkKey(voice.key)
        return voice
    }

    // MARK: - Install and remove

    /// Makes the voice `name` (a key or an alias) present: nothing to do when a data directory
    /// has it, else its model and config are downloaded into the download directory.
    public func install(_ name: String, progress: DownloadProgressHandler? = nil) async throws(CatalogError) -> InstalledVoice {
        let voice = try await resolve(name)
        if let files = directories.locate(voice.key, allowPaths: false) {
            return InstalledVoice(voice: voice, files: files, downloaded: false)
        }
        let files = try voice.voiceFiles()
        try prepareDownloadDirectory()
        let directory = settings.downloadDirectory
        let lock = try await DownloadLock.acquire(directory + "/." + voice.key + ".lock")
        defer { lock.release() }
        // Another task or process may have finished it while we waited for the lock.
        if let found = directories.locate(voice.key, allowPaths: false) {
            return InstalledVoice(voice: voice, files: found, downloaded: false)
        }
        for file in files {
            try await http.download(
                settings.url(of: file.path), to: Self.partPath(directory, file.localName), expected: file.info,
                label: file.localName, progress: progress)
        }
        for file in files {
            let final = directory + "/" + file.localName
            guard rename(Self.partPath(directory, file.localName), final) == 0 else {
                throw CatalogError.notWritable(path: final, reason: String(cString: strerror(errno)))
            }
        }
        let installed = VoiceFiles(name: voice.key, modelPath: directory + "/" + voice.key + ".onnx",
                                   configPath: directory + "/" + voice.key + ".onnx.json")
        return InstalledVoice(voice: voice, files: installed, downloaded: true)
    }

    /// Deletes a downloaded voice (by key, or by an alias in the cached catalog) and any part
    /// files it left. Only files directly in the download directory are ever touched.
    @discardableResult
    public func remove(_ name: String) throws(CatalogError) -> VoiceFiles {
        try Self.checkName(name)
        let directory = settings.downloadDirectory
        let stem = name.hasSuffix(".onnx") ? String(name.dropLast(5)) : name
        var key = stem
        if !FileManager.default.fileExists(atPath: directory + "/" + stem + ".onnx"),
           let voice = cachedCatalog()?.voice(named: stem) {
            key = voice.key
            try Self.checkKey(key)
        }
        let model = directory + "/" + key + ".onnx"
        let config = model + ".json"
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: model) || fileManager.fileExists(atPath: config) else {
            throw CatalogError.notInDownloadDirectory(name: name, directory: directory)
        }
        // The config first: without it the voice is no longer seen, even if the model stays.
        for path in [config, model, Self.partPath(directory, key + ".onnx.json"), Self.partPath(directory, key + ".onnx")]
        where fileManager.fileExists(atPath: path) {
            do {
                try fileManager.removeItem(atPath: path)
            } catch {
                throw CatalogError.notWritable(path: path, reason: error.localizedDescription)
            }
        }
        return VoiceFiles(name: key, modelPath: model, configPath: config)
    }

    // MARK: - Helpers

    private static func partPath(_ directory: String, _ localName: String) -> String {
        directory + "/." + localName + ".part"
    }

    /// Creates the download directory, and proves it writable by creating a file in it (a
    /// permission check would say yes to root even on a read-only mount).
    private func prepareDownloadDirectory() throws(CatalogError) {
        let directory = settings.downloadDirectory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CatalogError.notWritable(path: directory, reason: Self.reason(error))
        }
        let probe = directory + "/.lark-write-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CatalogError.notWritable(path: directory, reason: String(cString: strerror(errno)))
        }
        close(descriptor)
        unlink(probe)
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return nsError.localizedDescription
    }

    /// Names come from users and requests: they select voices and never become paths.
    static func checkName(_ name: String) throws(CatalogError) {
        guard !name.isEmpty, !name.contains("/"), !name.contains("\\"), !name.hasPrefix("."), !name.contains("\0") else {
            throw CatalogError.invalidName(name)
        }
    }

    /// Keys come from the (remote) catalog and do become file names: the same rule applies.
    static func checkKey(_ key: String) throws(CatalogError) {
        do {
            try checkName(key)
        } catch {
            throw CatalogError.invalidCatalog("voice key '\(key)' is not a plain file name")
        }
    }
}
