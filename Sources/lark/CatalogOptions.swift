import ArgumentParser
import Foundation
import VoiceCatalog

/// Where voices are downloaded from and to; shared by `serve` and `voices`. Each option also
/// reads a `LARK_*` variable.
struct CatalogOptions: ParsableArguments {
    @Option(name: [.customLong("download-dir"), .customLong("download_dir")],
            help: "Where downloaded voices and the cached catalog (voices.json) go; also searched for voices (default: the first data directory). Env: LARK_DOWNLOAD_DIR.")
    var downloadDir: String?

    @Option(name: [.customLong("catalog-url"), .customLong("catalog_url")],
            help: "The voice catalog, in Piper's voices.json format (default: Piper's published one). Env: LARK_CATALOG_URL.")
    var catalogURL: String?

    @Option(name: [.customLong("voices-base-url"), .customLong("voices_base_url")],
            help: "Voice files are fetched from this URL + their path in the catalog (default: the catalog URL's directory, as in Piper's repository). Env: LARK_VOICES_BASE_URL.")
    var voicesBaseURL: String?

    /// Arguments first, then `LARK_*` variables, then defaults. `dataDirectories`: the engine's,
    /// whose first is the default download directory (as in Piper).
    func settings(dataDirectories: [String]) -> CatalogSettings {
        let environment = ProcessInfo.processInfo.environment
        let directory = downloadDir ?? environment["LARK_DOWNLOAD_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? dataDirectories.first ?? FileManager.default.currentDirectoryPath
        let catalog = catalogURL ?? environment["LARK_CATALOG_URL"] ?? CatalogSettings.defaultCatalogURL
        return CatalogSettings(
            downloadDirectory: directory, catalogURL: catalog,
            voicesBaseURL: voicesBaseURL ?? environment["LARK_VOICES_BASE_URL"] ?? CatalogSettings.baseURL(besideCatalog: catalog))
    }
}

extension CatalogOptions {
    /// The data directories plus the download directory (searched last), as every command sees them.
    func searchDirectories(_ dataDirectories: [String]) -> [String] {
        let download = settings(dataDirectories: dataDirectories).downloadDirectory
        return dataDirectories.contains(download) ? dataDirectories : dataDirectories + [download]
    }
}

/// Runs `body` with an installer whose HTTP client is shut down afterwards, however it ends.
func withVoiceInstaller<T>(
    _ settings: CatalogSettings, dataDirectories: [String], _ body: (VoiceInstaller) async throws -> T
) async throws -> T {
    let http = CatalogHTTPClient()
    let installer = VoiceInstaller(settings: settings, dataDirectories: dataDirectories, http: http)
    do {
        let result = try await body(installer)
        try? await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}
