/// The web page's files (`Sources/LarkServer/Web/`), plain HTML, CSS and JavaScript with no build
/// step, compiled into the binary by SwiftPM's `.embedInCode` resource rule.
///
/// Why not a resource bundle with `Bundle.module`: on Linux it looks for `Lark_LarkServer.resources`
/// beside the executable, else at the build directory's absolute path, and traps when neither is
/// there; a `lark` binary copied on its own (a container image, another machine) would crash on its
/// first page view. Embedded, the page goes wherever the binary goes, and serving it reads no file.
enum WebAssets {
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
    }

    static let page = Asset(bytes: PackageResources.index_html, contentType: "text/html; charset=utf-8")

    /// What `/static/{name}` serves.
    static let files: [String: Asset] = [
        "style.css": Asset(bytes: PackageResources.style_css, contentType: "text/css; charset=utf-8"),
        "errors.js": script(PackageResources.errors_js),
        "api.js": script(PackageResources.api_js),
        "voices.js": script(PackageResources.voices_js),
        "player.js": script(PackageResources.player_js),
        "jobs.js": script(PackageResources.jobs_js),
        "app.js": script(PackageResources.app_js),
    ]

    private static func script(_ bytes: [UInt8]) -> Asset {
        // Module scripts are refused unless served with a JavaScript MIME type.
        Asset(bytes: bytes, contentType: "text/javascript; charset=utf-8")
    }
}
