import AccessControl
import Foundation
import Testing

/// Keys, scopes, job ownership, rate limits and CORS: the pieces, then a real `lark serve` with
/// a keys file made by `lark keys`. Ports: offsets 180-189.
@Suite(.serialized) struct AccessControlTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "lark-access-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `lark keys …` with the keys file in `directory`; the key `add` prints, or the output.
    static func keys(_ arguments: [String], directory: String) throws -> ProcessResult {
        try runProcess(Checkout.larkBinary, ["keys"] + arguments + ["--keys-file", directory + "/keys.json"])
    }

    static func addKey(_ name: String, scopes: String, directory: String) throws -> String {
        let result = try keys(["add", name, "--scopes", scopes], directory: directory)
        #expect(result.status == 0, "\(result.stderr)")
        return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Pieces

    @Test func scopesParseAndRefuseUnknownNames() throws {
        #expect(try Scope.list("jobs, speak,speak") == [.speak, .jobs])
        #expect(throws: KeyFileError.self) { try Scope.list("speak,root") }
        #expect(throws: KeyFileError.self) { try Scope.list(" , ") }
    }

    @Test func theFileHoldsHashesOnlyReadableByItsOwner() throws {
        let directory = try Self.temporaryDirectory()
        let file = KeyFile(path: directory + "/keys.json")
        let key = try file.add(name: "alice", scopes: [.speak])
        #expect(key.hasPrefix(APIKey.prefix) && key.count > 40)
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        #expect(!text.contains(key))
        #expect(text.contains(APIKey.digest(key)))
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(throws: KeyFileError.self) { _ = try file.add(name: "alice", scopes: [.jobs]) }
        #expect(throws: KeyFileError.self) { _ = try file.add(name: "bad name", scopes: [.jobs]) }
        #expect(try file.revoke(name: "alice"))
        #expect(try !file.revoke(name: "alice"))
    }

    @Test func theRingIdentifiesKeysAndSeesTheFileChange() throws {
        let directory = try Self.temporaryDirectory()
        let file = KeyFile(path: directory + "/keys.json")
        let ring = try KeyRing(file: file, recheck: .zero)
        #expect(!ring.enforcing)
        let key = try file.add(name: "bob", scopes: [.speak, .jobs])
        #expect(ring.enforcing)
        #expect(ring.identify(key: key) == Identity(name: "bob", scopes: [.speak, .jobs]))
        #expect(ring.identify(key: key + "x") == nil)
        #expect(ring.identify(key: "") == nil)
        _ = try file.revoke(name: "bob")
        #expect(ring.identify(key: key) == nil)
        #expect(ring.enforcing, "an empty keys file still locks the server")
    }

    @Test func bucketsRefuseOverTheRateAndRefill() throws {
        let limiter = RateLimiter(limits: .init(requestsPerMinute: 2, charactersPerMinute: 100))
        let start = ContinuousClock.now
        try limiter.admitRequest("a", now: start)
        try limiter.admitRequest("a", now: start)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admitRequest("a", now: start) }
        try limiter.admitRequest("b", now: start)  // another client has its own bucket
        do {
            try limiter.admitRequest("a", now: start + .seconds(1))
            Issue.record("refused expected")
        } catch {
            #expect(error.retryAfterSeconds == 29)
        }
        try limiter.admitRequest("a", now: start + .seconds(31))
        try limiter.admitCharacters("c", count: 80, now: start)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admitCharacters("c", count: 30, now: start) }
        // Longer than a minute's allowance: goes through on a full bucket, then waits it out.
        try limiter.admitCharacters("d", count: 250, now: start)
        #expect(throws: RateLimiter.Refusal.self) { try limiter.admitCharacters("d", count: 1, now: start + .seconds(60)) }
    }

    // MARK: - A server with keys

    @Test func keysScopesAndOwnershipOverHTTP() throws {
        let directory = try Self.temporaryDirectory()
        let alice = try Self.addKey("alice", scopes: "speak,jobs", directory: directory)
        let bob = try Self.addKey("bob", scopes: "jobs", directory: directory)
        let admin = try Self.addKey("root", scopes: "admin", directory: directory)
        let list = String(decoding: try Self.keys(["list"], directory: directory).stdout, as: UTF8.self)
        #expect(list.contains("alice\tspeak,jobs") && list.contains("root\tadmin") && !list.contains(alice))

        let server = try ServerProcess(
            ["-m", "espeak-ng:en", "--jobs-dir", directory, "--keys-file", directory + "/keys.json"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(180))
        func bearer(_ key: String) -> [String] { ["-H", "Authorization: Bearer \(key)"] }

        // Open: health and the page. Closed: everything else, with one answer for no key and a wrong key.
        #expect(try server.curl("/healthz").status == 200)
        #expect(try server.curl("/", ["-H", "Accept: text/html"]).status == 200)
        let missing = try server.curl("/?text=Hi.")
        let wrong = try server.curl("/?text=Hi.", bearer(alice + "x"))
        #expect(missing.status == 401 && wrong.status == 401)
        #expect(missing.body == wrong.body)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("\"invalid_api_key\""))
        #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)

        #expect(try server.curl("/?text=Hi.", bearer(alice)).status == 200)
        #expect(try server.curl("/?text=Hi.", ["-H", "X-Api-Key: \(alice)"]).status == 200)
        #expect(try server.curl("/?text=Hi.", bearer(bob)).status == 403)
        #expect(try server.curl("/metrics", bearer(alice)).status == 403)
        #expect(try server.curl("/metrics", bearer(admin)).status == 200)

        // Jobs belong to the key that made them.
        let submitted = try server.curl(
            "/api/v1/jobs", bearer(alice) + ["-H", "Content-Type: application/json", "--data-binary", #"{"text": "Hello there."}"#])
        #expect(submitted.status == 202)
        let id = try #require(
            (try JSONSerialization.jsonObject(with: submitted.body) as? [String: Any])?["id"] as? String)
        #expect(try server.curl("/api/v1/jobs/\(id)", bearer(alice)).status == 200)
        #expect(try server.curl("/api/v1/jobs/\(id)", bearer(bob)).status == 404)
        #expect(try server.curl("/api/v1/jobs/\(id)/audio", bearer(bob)).status == 404)
        #expect(try server.curl("/api/v1/jobs/\(id)", bearer(bob) + ["-X", "DELETE"]).status == 404)
        #expect(try server.curl("/api/v1/jobs/\(id)", bearer(admin)).status == 200)
        func listed(_ key: String) throws -> [String] {
            let page = try server.curl("/api/v1/jobs", bearer(key))
            let jobs = (try JSONSerialization.jsonObject(with: page.body) as? [String: Any])?["jobs"] as? [[String: Any]] ?? []
            return jobs.compactMap { $0["id"] as? String }
        }
        #expect(try listed(alice) == [id])
        #expect(try listed(bob) == [])
        #expect(try listed(admin) == [id])
        // The same idempotency key from another key makes another job.
        let again = try server.curl(
            "/api/v1/jobs", bearer(bob) + ["-H", "Content-Type: application/json", "-H", "Idempotency-Key: k1", "--data-binary", #"{"text": "Hi."}"#])
        let first = try server.curl(
            "/api/v1/jobs", bearer(alice) + ["-H", "Content-Type: application/json", "-H", "Idempotency-Key: k1", "--data-binary", #"{"text": "Hi."}"#])
        #expect(again.status == 202 && first.status == 202)

        // Revoked: refused within the re-read interval, without a restart.
        #expect(try Self.keys(["revoke", "alice"], directory: directory).status == 0)
        var status = 0
        for _ in 0..<50 {
            status = try server.curl("/?text=Hi.", bearer(alice)).status
            if status == 401 { break }
            usleep(100_000)
        }
        #expect(status == 401)
    }

    @Test func rateLimitsAnswer429WithRetryAfter() throws {
        let directory = try Self.temporaryDirectory()
        let server = try ServerProcess(
            ["-m", "espeak-ng:en", "--jobs-dir", directory, "--rate-limit", "3", "--character-limit", "40"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(181))
        // Without keys the limits count per client address.
        var statuses: [Int] = []
        for _ in 0..<3 { statuses.append(try server.curl("/voices").status) }
        let refused = try server.curl("/voices")
        #expect(statuses == [200, 200, 200])
        #expect(refused.status == 429)
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("\"rate_limited\""))
        #expect(try server.curl("/healthz").status == 200, "health checks are never limited")
    }

    @Test func charactersPerMinuteAreCountedOnSpeech() throws {
        let directory = try Self.temporaryDirectory()
        let server = try ServerProcess(
            ["-m", "espeak-ng:en", "--jobs-dir", directory, "--character-limit", "30"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(182))
        #expect(try server.curl("/?text=Twenty%20five%20characters%20ok").status == 200)
        let refused = try server.curl("/?text=Twenty%20five%20characters%20ok")
        #expect(refused.status == 429)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("characters per minute"))
    }

    @Test func corsAnswersTheNamedOriginsOnly() throws {
        let directory = try Self.temporaryDirectory()
        let server = try ServerProcess(
            ["-m", "espeak-ng:en", "--jobs-dir", directory, "--cors-origin", "https://app.example.com"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(183))
        let preflight = ["-X", "OPTIONS", "-H", "Access-Control-Request-Method: POST",
                         "-H", "Access-Control-Request-Headers: authorization, content-type, x-stainless-os"]
        let allowed = try server.curl("/v1/audio/speech", preflight + ["-H", "Origin: https://app.example.com"])
        #expect(allowed.status == 204)
        #expect(allowed.headers["access-control-allow-origin"] == "https://app.example.com")
        #expect(allowed.headers["access-control-allow-headers"]?.contains("x-stainless-os") == true)
        let denied = try server.curl("/v1/audio/speech", preflight + ["-H", "Origin: https://evil.example"])
        #expect(denied.status == 403)
        #expect(denied.headers["access-control-allow-origin"] == nil)
        let simple = try server.curl("/voices", ["-H", "Origin: https://app.example.com"])
        #expect(simple.status == 200 && simple.headers["access-control-allow-origin"] == "https://app.example.com")
        #expect(try server.curl("/voices", ["-H", "Origin: https://evil.example"]).headers["access-control-allow-origin"] == nil)
        // Without --cors-origin there are no CORS headers at all (the other tests' servers).
    }

    @Test func listeningBeyondLoopbackWithoutKeysWarns() throws {
        let directory = try Self.temporaryDirectory()
        let server = try ServerProcess(
            ["-m", "espeak-ng:en", "--jobs-dir", directory, "--host", "0.0.0.0"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(184))
        #expect(server.log_.contains("with no API keys"))
    }
}
