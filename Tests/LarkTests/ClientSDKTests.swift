import Foundation
import Testing

/// The official client packages, unmodified, against a real `lark serve` on loopback: OpenAI's
/// `openai` (Tests/clients/test_openai.py) and AWS's `boto3` as Polly, with synthesis tasks
/// writing to a moto_server bucket (Tests/clients/test_polly.py). Each script starts its own
/// servers and prints every failed check.
@Suite struct ClientSDKTests {
    static let python = Checkout.deps + "/clients-venv/bin/python"
    static let scripts = Checkout.root + "/Tests/clients/"

    /// Runs a script on a thread of its own (it takes seconds; the cooperative pool has two).
    static func run(_ script: String, _ arguments: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run `make setup-test`")
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            Thread { continuation.resume(with: Result { try runProcess(python, [scripts + script] + arguments) }) }.start()
        }
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        #expect(result.status == 0, "Tests/clients/\(script) failed:\n\(output)")
        // What it measured, in the test log.
        if result.status == 0 { print(output.split(separator: "\n").filter { $0.hasPrefix("[") }.joined(separator: "\n")) }
    }

    static var serverArguments: [String] {
        ["--lark", Checkout.larkBinary, "--data-dir", ServerLifecycleTests.voices, "--espeak-data", Checkout.deps]
    }

    @Test(.timeLimit(.minutes(3))) func openAIPackage() async throws {
        try await Self.run("test_openai.py", Self.serverArguments + ["--port", String(ServerLifecycleTests.port(150))])
    }

    @Test(.timeLimit(.minutes(4))) func boto3AsPolly() async throws {
        try await Self.run(
            "test_polly.py",
            Self.serverArguments + [
                "--port", String(ServerLifecycleTests.port(151)), "--local-port", String(ServerLifecycleTests.port(152)),
                "--moto", Checkout.deps + "/piper-venv/bin/moto_server", "--moto-port", String(ServerLifecycleTests.port(153)),
            ])
    }
}
