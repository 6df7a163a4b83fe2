import Foundation
import Testing

/// The web page's routes on a `lark serve` of their own: the page, its assets and their types,
/// nothing loaded from another origin, and `GET /` still answering audio when given text.
@Suite struct WebPageRouteTests {
    /// One server for the suite, stopped when the test process exits.
    static let server: Result<ServerLifecycleTests.ServerProcess, any Error> = {
        let result = Result {
            try ServerLifecycleTests.ServerProcess(
                ["--data-dir", ServerLifecycleTests.voices, "--workers", "1"] + ServerLifecycleTests.common,
                port: ServerLifecycleTests.port(41))
        }
        atexit { (try? WebPageRouteTests.server.get())?.process.terminate() }
        return result
    }()

    func get(_ path: String, _ extra: [String] = []) throws -> ServerTests.CurlResult {
        try Self.server.get().curl(path, extra)
    }

    /// Every `src` and `href` value in a page.
    static func links(in html: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"\b(?:src|href)\s*=\s*["']([^"']*)["']"#)
        return pattern.matches(in: html, range: NSRange(html.startIndex..., in: html)).compactMap {
            Range($0.range(at: 1), in: html).map { String(html[$0]) }
        }
    }

    @Test func indexHTMLIsThePageWithNothingFromElsewhere() throws {
        let page = try get("/index.html")
        #expect(page.status == 200)
        #expect(page.contentType == "text/html; charset=utf-8")
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        let html = String(decoding: page.body, as: UTF8.self)
        for control in [#"<textarea id="text""#, #"<select id="voice""#, #"<input id="voice-filter""#, #"<select id="speaker""#,
                        #"id="length-scale""#, #"id="noise-scale""#, #"id="noise-w""#, #"<select id="format""#,
                        #"id="speak""#, #"id="stop""#, #"id="download""#, #"id="make-file""#, #"id="reading""#] {
            #expect(html.contains(control), "the page lacks \(control)")
        }
        let links = Self.links(in: html)
        #expect(links.contains("/static/app.js") && links.contains("/static/style.css"))
        let external = links.filter { $0.hasPrefix("http://") || $0.hasPrefix("https://") || $0.hasPrefix("//") }
        #expect(external.isEmpty, "external links: \(external)")
        #expect(!html.contains("http://") && !html.contains("https://"))
        // Every control has a label that names it.
        let ids = try NSRegularExpression(pattern: #"<(?:textarea|select|input)[^>]*\bid="([^"]+)""#)
            .matches(in: html, range: NSRange(html.startIndex..., in: html))
            .compactMap { Range($0.range(at: 1), in: html).map { String(html[$0]) } }
        #expect(ids.count >= 8)
        for id in ids { #expect(html.contains(#"<label for="\#(id)">"#), "no <label> for #\(id)") }
    }

    @Test func assetsHaveTheirContentTypes() throws {
        let expected = [
            "/static/app.js": "text/javascript; charset=utf-8", "/static/api.js": "text/javascript; charset=utf-8",
            "/static/errors.js": "text/javascript; charset=utf-8", "/static/voices.js": "text/javascript; charset=utf-8",
            "/static/player.js": "text/javascript; charset=utf-8", "/static/jobs.js": "text/javascript; charset=utf-8",
            "/static/style.css": "text/css; charset=utf-8",
        ]
        for (path, type) in expected {
            let asset = try get(path)
            #expect(asset.status == 200, "\(path)")
            #expect(asset.contentType == type, "\(path): \(asset.contentType)")
            #expect(asset.headers["x-content-type-options"] == "nosniff")
            let text = String(decoding: asset.body, as: UTF8.self)
            #expect(!text.isEmpty && !text.contains("http://") && !text.contains("https://"), "\(path) names another origin")
        }
        // Every script and style the page and the modules name is served.
        let html = String(decoding: try get("/index.html").body, as: UTF8.self)
        for link in Self.links(in: html) where link.hasPrefix("/static/") {
            #expect(expected[link] != nil, "the page names \(link), which the test does not know")
        }
        let missing = try get("/static/nothing.js")
        #expect(missing.status == 404 && missing.errorCode == "not_found")
        let traversal = try get("/static/..%2FPackage.swift")
        #expect(traversal.status == 404)
        let wrongMethod = try get("/index.html", ["-X", "POST"])
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "GET")
    }

    @Test func rootAnswersBrowsersThePageAndTextAudio() throws {
        let page = try get("/", ["-H", "Accept: text/html,application/xhtml+xml,*/*;q=0.8"])
        #expect(page.status == 200 && page.contentType == "text/html; charset=utf-8")
        #expect(page.body == (try get("/index.html")).body)
        let audio = try get("/?text=Hi", ["-H", "Accept: text/html,application/xhtml+xml,*/*;q=0.8"])
        #expect(audio.status == 200 && audio.contentType == "audio/wav")
        #expect(audio.body.prefix(4) == Data("RIFF".utf8))
        let bare = try get("/")
        #expect(bare.status == 400 && bare.errorCode == "empty_text")
    }

    @Test func voicesCarryTheirOwnSettings() throws {
        let list = try #require(try JSONSerialization.jsonObject(with: try get("/voices").body) as? [[String: Any]])
        let joe = try #require(list.first { $0["Id"] as? String == "en_US-joe-medium" })
        // From the voice config's `inference` block, as written there.
        #expect(joe["LengthScale"] as? Double == 1)
        #expect(joe["NoiseScale"] as? Double == 0.667)
        #expect(joe["NoiseW"] as? Double == 0.8)
        let espeak = try #require(list.first { $0["Id"] as? String == "espeak-ng:de" })
        #expect(espeak["NoiseScale"] == nil)
    }
}

/// The page in real headless Chromium (Tests/web/test_page.py): it speaks while the server is
/// still synthesizing, with no console error.
@Suite struct WebPageBrowserTests {
    static let python = Checkout.deps + "/browser-venv/bin/python"
    static let script = Checkout.root + "/Tests/web/test_page.py"

    @Test(.timeLimit(.minutes(3))) func speaksWhileTheStreamIsStillComing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python): run `make setup`")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "no chromedriver: run `make setup`")
        // Every run saves its screenshots under out/web (docs/ has the committed ones).
        let arguments = [
            Self.script, "--lark", Checkout.larkBinary, "--port", String(ServerLifecycleTests.port(40)),
            "--screenshots", Checkout.root + "/out/web",
        ]
        // On a thread of its own: the script takes seconds, and the cooperative pool has two.
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            Thread { continuation.resume(with: Result { try runProcess(Self.python, arguments) }) }.start()
        }
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        #expect(result.status == 0, "Tests/web/test_page.py failed:\n\(output)")
        // What it measured (time to first audio, the stream's length), in the test log.
        if result.status == 0 { print(output.split(separator: "\n").filter { $0.hasPrefix("[web]") }.joined(separator: "\n")) }
    }
}
