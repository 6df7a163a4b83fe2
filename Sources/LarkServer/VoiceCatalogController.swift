import Foundation
import Hummingbird
import Logging
import SpeechCore
import SpeechService
import VoiceCatalog

/// The voice routes of Lark's own API: installed voices, the catalog's voices
/// (`GET /api/v1/voices?available=1`) and installing one
/// (`POST /api/v1/voices/{name}/download`, only with `--allow-downloads`, since it writes to
/// the server's disk and fetches from the network on a client's word).
struct VoiceCatalogController: Sendable {
    let library: VoiceLibrary
    let installer: VoiceInstaller?
    let allowDownloads: Bool

    /// Every route of this controller: registered as listed, and the source of the 405 table.
    var routes: [Route] {
        [
            Route(.get, "/api/v1/voices") { request, _ in try await voices(request) },
            Route(.post, "/api/v1/voices/{name}/download", access: .scope(.admin)) { _, context in
                try await download(context.parameters.get("name") ?? "", logger: context.logger)
            },
        ]
    }

    private func voices(_ request: Request) async throws -> Response {
        let query = FormQuery(request.uri.query)
        guard let flag = query.get("available"), ["1", "true", "yes"].contains(flag.lowercased()) else {
            return try jsonResponse(try await library.voices(), status: .ok)
        }
        guard let installer else {
            throw APIError(.notFound, code: "no_catalog", message: "this server has no voice catalog configured")
        }
        let available = try await installer.available(language: query.get("language"))
        return try jsonResponse(available, status: .ok)
    }

    /// 201 and the voice when it was downloaded, 200 when it was already installed.
    private func download(_ name: String, logger: Logger) async throws -> Response {
        guard allowDownloads, let installer else { throw APIError.downloadsDisabled }
        let started = ContinuousClock.now
        let result = try await installer.install(name)
        if result.downloaded {
            logger.info("downloaded voice \(result.voice.key) (\(result.voice.downloadSize) bytes) in \(started.duration(to: .now))")
        }
        if let catalog = installer.cachedCatalog() { await library.setAliases(catalog.aliases) }
        guard let info = try await library.voices().first(where: { $0.id == result.voice.key }) else {
            throw SpeechError.voiceFileMissing(path: result.files.configPath)
        }
        return try jsonResponse(info, status: result.downloaded ? .created : .ok)
    }
}
