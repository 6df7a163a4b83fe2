import Foundation
@testable import LarkServer
import Logging
import Testing

/// Every registered route (the one table, `serverRoutes`) × every method, sent by curl to a real
/// `lark serve` over loopback, with bad input: bad query values, bad JSON, the wrong content type,
/// a huge body. Every answer that is not 2xx must be the JSON error body with a 4xx status (never
/// 5xx), and no answer may show the server's paths.
@Suite(.serialized) struct RouteWalkTests {
    static let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]

    static let queries = [
        "",
        "?text=Hi.&voice=..%2F..%2Fetc%2Fpasswd&voiceId=%2Fetc%2Fpasswd",
        "?text=Hi.&length_scale=abc&noise_w=NaN&limit=abc&status=bogus&cursor=zz&available=maybe",
        "?text=Hi.&format=zzz&outputFormat=zzz&sample_rate=1&bitrate=-5&sentence_silence=99&speaker=-1",
        "?text=" + String(repeating: "a", count: 12_000),
        "?text=%ZZ%00&voice=%00",
    ]

    /// Bodies with their Content-Type (nil: none).
    static let bodies: [(name: String, contentType: String?, bytes: Data)] = [
        ("bad JSON", "application/json", Data("{not json".utf8)),
        ("JSON of the wrong shape", "application/json", Data(#"{"text": 5, "uuid": [], "voice": {}}"#.utf8)),
        ("JSON as text/plain", "text/plain", Data(#"{"text": "Hi.", "voice": "/etc/passwd", "callback_url": "http://127.0.0.1/"}"#.utf8)),
        ("JSON with no content type", nil, Data(#"{"text": "Hi."}"#.utf8)),
        ("bad values", "application/json",
         Data(#"{"text": "Hi.", "voice": "../../etc/passwd", "format": "zzz", "callback_url": "http://169.254.169.254/", "uuid": "../x", "member_id": "1", "created_at": "1"}"#.utf8)),
        ("a huge body", "application/json", Data(repeating: UInt8(ascii: "a"), count: 3 * 1024 * 1024)),
    ]

    /// A path as a request names it: parameters filled with names that lead nowhere (or to a
    /// hidden file, for `/files/`).
    static func concrete(_ pattern: String) -> String {
        pattern.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment == "**" ? ".hidden/.x.wav.1234.partial" : segment.hasPrefix(":") || segment.hasPrefix("{") ? "..%2Fnope" : String(segment)
        }.joined(separator: "/")
    }

    /// The server's routes as `lark serve` registers them (with the job routes).
    static func declaredRoutes() async throws -> [Route] {
        let logger = Logger(label: "lark.test")
        let parts = try await LarkServicesTests.openParts(logger: logger)
        defer { try? FileManager.default.removeItem(at: parts.directory) }
        let metrics = ServerMetrics()
        let routes = serverRoutes(
            configuration: ServerConfiguration(defaultVoice: "espeak-ng:en-us"), library: parts.library, metrics: metrics,
            scheduler: metrics.makeScheduler(workers: 1, maxQueue: 1), jobs: parts.jobs, installer: nil)
        let group = parts.services.serviceGroup(startupFailure: LarkServicesTests.StartupFailed(), signals: [], logger: logger)
        try? await group.run()
        return routes
    }

    static func routePaths() async throws -> [String] {
        Array(Set(try await declaredRoutes().map { concrete($0.path) })).sorted()
    }

    /// Lark's `{"error": {"code", "message"}}`; on the OpenAI and Polly routes, their own shapes
    /// too (the router's own answers there, such as 405, stay Lark's).
    static func isErrorBody(_ answer: ServerTests.CurlResult, path: String) -> Bool {
        let json = answer.json
        let error = json?["error"] as? [String: Any]
        if json?.count == 1, error?["code"] is String, error?["message"] is String, error?.count == 2 { return true }
        if path.hasPrefix("/v1/audio/") || path.hasPrefix("/v1/models") {
            // OpenAI's: message, type, param and code (the last two may be null).
            return json?.count == 1 && error?["message"] is String && error?["type"] is String && error?.count == 4
        }
        if path.hasPrefix("/v1/speech") || path.hasPrefix("/v1/voices") || path.hasPrefix("/v1/synthesisTasks") {
            // Polly's: the exception's name in a header, the message in the body.
            return answer.headers["x-amzn-errortype"]?.hasSuffix("Exception") == true && json?["message"] is String
        }
        return false
    }

    @Test func everyRouteAndMethodAnswersBadInputWithAJSONClientError() async throws {
        let paths = try await Self.routePaths()
        #expect(paths.count >= 15)
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerLifecycleTests.ServerProcess(
            ["-m", "espeak-ng:en-us", "--data-dir", ServerLifecycleTests.voices, "--jobs-dir", dir, "--job-workers", "0"]
                + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(89))
        // Paths no answer may contain: the checkout (voices, espeak-ng's data) and the jobs' directory.
        let secrets = [Checkout.root, dir]
        let failures = try await onThread { () -> [String] in
            var failures: [String] = []
            func check(_ method: String, _ uri: String, _ what: String, contentType: String? = nil, body: Data? = nil) throws {
                let label = "\(method) \(uri.prefix(80)) (\(what))"
                var arguments = ["-m", "30"]
                // curl's HEAD must be --head, or it waits for a body that never comes.
                arguments += method == "HEAD" ? ["--head"] : ["-X", method]
                if body != nil {
                    // `Content-Type:` with nothing after it makes curl send none.
                    arguments += ["-H", "Content-Type: \(contentType ?? "")", "--data-binary", "@-"]
                }
                let answer = try server.curl(uri, arguments, input: body ?? Data())
                let text = String(decoding: answer.body, as: UTF8.self)
                if let secret = secrets.first(where: { text.contains($0) }) { failures.append("\(label): the answer shows \(secret)") }
                switch answer.status {
                case 200..<400:
                    return
                case 400..<500:
                    guard method != "HEAD" else { return }
                    if !Self.isErrorBody(answer, path: uri) {
                        failures.append("\(label): \(answer.status) is not the JSON error body: \(text.prefix(200))")
                    }
                case 0:
                    failures.append("\(label): no answer")
                default:
                    failures.append("\(label): \(answer.status) \(text.prefix(200))")
                }
            }
            for path in paths {
                for method in Self.methods {
                    for query in Self.queries {
                        try check(method, path + query, "query \(query.prefix(40))")
                    }
                    // A HEAD carries no body; every other method gets every bad body, GET / included
                    // (a body on a route that takes none is read and dropped, or 413 past 1 MiB).
                    guard method != "HEAD" else { continue }
                    for body in Self.bodies {
                        try check(method, path + "?text=Hi.", body.name, contentType: body.contentType, body: body.bytes)
                    }
                }
            }
            return failures
        }
        #expect(failures.isEmpty, "\(failures.count) bad answers:\n\(failures.prefix(40).joined(separator: "\n"))")
    }
}
