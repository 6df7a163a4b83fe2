import Foundation
import Testing

/// schemathesis (PyPI, in `.deps/clients-venv`) against a real `lark serve`: it reads the live
/// `GET /openapi.json`, generates a bounded number of requests per operation (the document's
/// examples, its edge cases, then random valid and invalid ones) and checks every answer: no 5xx,
/// a status, content type, headers and body the document lists. The server speaks with the
/// espeak-ng voice and takes short texts, so each generated synthesis is cheap.
@Suite struct SchemathesisTests {
    static let schemathesis = Checkout.deps + "/clients-venv/bin/st"

    @Test(.timeLimit(.minutes(5))) func liveServerMatchesItsOpenAPIDocument() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.schemathesis), "no \(Self.schemathesis): run `make setup-test`")
        let jobs = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: jobs) }
        let server = try ServerLifecycleTests.ServerProcess(
            ["-m", "espeak-ng:en", "--data-dir", ServerLifecycleTests.voices, "--jobs-dir", jobs, "--max-text-chars", "200",
             "--member", "1=espeak-ng:en"] + ServerLifecycleTests.common,
            port: ServerLifecycleTests.port(190))
        let report = NSTemporaryDirectory() + "lark-schemathesis-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: report) }
        let arguments = [
            "run", server.base + "/openapi.json",
            "--checks", Self.checks.joined(separator: ","),
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "5", "--workers", "1", "--seed", "20", "--no-shrink",
            "--request-timeout", "60", "--report-dir", report,
        ]
        // On a thread of its own: it runs for a minute or two, and the cooperative pool has two.
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            Thread { continuation.resume(with: Result { try runProcess(Self.schemathesis, arguments, environment: ["NO_COLOR": "1"]) }) }
                .start()
        }
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        #expect(result.status == 0, "schemathesis found answers that break docs/openapi.json:\n\(output)")
        // It really ran: every operation (but `/openapi.json` itself, which schemathesis leaves
        // out as the schema's own address), hundreds of cases.
        #expect(output.contains("Open API 3.1") && output.contains("29 selected / 29 total"), "\(output)")
        // "  1680 generated, 1680 passed"
        let generated = output.split(separator: "\n").first {
            $0.split(separator: " ").first.map { Int($0) != nil } == true && $0.contains(" generated, ")
        }
        #expect(generated.map { Int($0.split(separator: " ").first ?? "") ?? 0 > 300 } == true, "\(output)")
        if result.status == 0, let generated { print("[schemathesis] \(generated.trimmingCharacters(in: .whitespaces))") }
        #expect(server.process.isRunning)
    }

    /// Every check about the answers. Left out: `positive_data_acceptance` (a valid request
    /// can still name a voice this server does not have), and the ones about authentication
    /// and resources made by earlier calls (the server here has no keys; AccessControlTests and
    /// JobAPITests cover those).
    static let checks = [
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
        "response_schema_conformance", "negative_data_rejection", "missing_required_header", "unsupported_method",
    ]
}
