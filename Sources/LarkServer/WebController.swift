import Hummingbird

/// The web page: `/index.html` (and `GET /` from a browser, see `SpeechController`) and its
/// scripts and style under `/static/`. Only files the binary carries are served; no path from a
/// request ever reaches the file system.
struct WebController: Sendable {
    /// Same origin only: the page loads nothing from elsewhere, and this keeps it that way.
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// Every route of this controller: registered as listed, and the source of the 405 table.
    var routes: [Route] {
        [
            Route(.get, "/index.html", access: .open) { _, _ in Self.page() },
            Route(.get, "/static/:name", access: .open) { _, context in
                guard let name = context.parameters.get("name"), let asset = WebAssets.files[name] else {
                    throw HTTPError(.notFound, message: "no such file under /static/")
                }
                return Self.response(asset)
            },
        ]
    }

    static func page() -> Response {
        var response = response(WebAssets.page)
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        return response
    }

    private static func response(_ asset: WebAssets.Asset) -> Response {
        // `no-cache`: revalidate every time, so a new server version is never mixed with old scripts.
        Response(
            status: .ok,
            headers: [.contentType: asset.contentType, .cacheControl: "no-cache", .xContentTypeOptions: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}

