import Foundation
import Testing

/// The `normalize` switch end to end: on every synthesis route of a real `lark serve`, on jobs
/// run by its worker, as the server-wide `--no-normalize`, and on `lark say`. With noise at zero
/// the audio is deterministic, so "normalized" is checked as: the same bytes as the normalized
/// words spoken with the switch off.
@Suite(.serialized) struct NormalizationSwitchTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(120 + offset) }
    static let text = "It costs $42.50 at 10:00."
    static let spoken = "It costs forty-two dollars and fifty cents at ten o'clock."
    static let silent = "noise_scale=0&noise_w=0"

    static func query(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    static func post(_ server: ServerProcess, _ path: String, json: [String: Any]) throws -> ServerTests.CurlResult {
        let body = try JSONSerialization.data(withJSONObject: json)
        return try server.curl(path, ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"], input: body)
    }

    func wav(_ server: ServerProcess, _ text: String, _ extra: String = "") throws -> Data {
        let result = try server.curl("/?text=\(Self.query(text))&\(Self.silent)\(extra)")
        #expect(result.status == 200, "\(String(decoding: result.body.prefix(300), as: UTF8.self))")
        return result.body
    }

    @Test func everyRouteTakesTheSwitch() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerProcess(JobAPITests.arguments(jobsDir: dir), port: Self.port(0))
        let normalized = try wav(server, Self.text)
        let asWritten = try wav(server, Self.text, "&normalize=0")
        #expect(normalized.count > 44 && asWritten.count > 44)
        #expect(normalized != asWritten)
        #expect(try wav(server, Self.text, "&normalize=true") == normalized)
        #expect(try wav(server, Self.text, "&normalize=false") == asWritten)
        // On: the voice spoke the normalized words.
        #expect(try wav(server, Self.spoken, "&normalize=0") == normalized)

        // POST / (query), /synthesize and /api/v1/speech (JSON), /read (query, streamed PCM).
        let posted = try server.curl("/?normalize=0&\(Self.silent)", ["-X", "POST", "--data-binary", "@-"], input: Data(Self.text.utf8))
        #expect(posted.status == 200 && posted.body == asWritten)
        for path in ["/synthesize", "/api/v1/speech"] {
            let off = try Self.post(server, path, json: ["text": Self.text, "normalize": false, "noise_scale": 0, "noise_w": 0])
            #expect(off.status == 200 && off.body == asWritten, "\(path)")
            let on = try Self.post(server, path, json: ["text": Self.text, "normalize": true, "noise_scale": 0, "noise_w": 0])
            #expect(on.status == 200 && on.body == normalized, "\(path)")
        }
        let readOff = try server.curl("/read?text=\(Self.query(Self.text))&normalize=0&\(Self.silent)")
        let readOn = try server.curl("/read?text=\(Self.query(Self.text))&\(Self.silent)")
        #expect(readOff.status == 200 && readOn.status == 200)
        // Raw PCM: the WAV's samples after its 44-byte header.
        #expect(readOff.body == asWritten.dropFirst(44) && readOn.body == normalized.dropFirst(44))

        // Values that are neither on nor off.
        for bad in ["maybe", "2", "yes"] {
            let result = try server.curl("/?text=Hi&normalize=\(bad)")
            #expect(result.status == 400 && result.errorCode == "invalid_option", "\(bad)")
        }
        let readBad = try server.curl("/read?text=Hi&normalize=on")
        #expect(readBad.status == 400 && readBad.errorCode == "invalid_option")
        for bad in ["maybe", 2, [true]] as [Any] {
            let result = try Self.post(server, "/api/v1/speech", json: ["text": "Hi", "normalize": bad])
            #expect(result.status == 400 && result.errorCode == "invalid_option", "\(bad)")
            let job = try Self.post(server, "/api/v1/jobs", json: ["text": "Hi", "normalize": bad])
            #expect(job.status == 400 && job.errorCode == "invalid_option", "\(bad)")
        }
        // The server goes on serving.
        #expect(try server.curl("/healthz").status == 200)

        // Jobs keep the switch with the job, and the worker honours it.
        for (normalize, expected) in [(false, asWritten), (true, normalized)] {
            let submitted = try Self.post(
                server, "/api/v1/jobs", json: ["text": Self.text, "normalize": normalize, "noise_scale": 0, "noise_w": 0, "format": "wav"])
            #expect(submitted.status == 202)
            let id = try #require(submitted.json?["id"] as? String)
            let done = try JobAPITests.waitForEnd(server, id: id)
            #expect(done["status"] as? String == "succeeded")
            let audio = try server.curl("/api/v1/jobs/\(id)/audio")
            #expect(audio.status == 200 && audio.body == expected, "job with normalize \(normalize)")
        }
    }

    @Test func serverWideSwitchIsTheDefaultAndARequestWins() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerProcess(JobAPITests.arguments(jobsDir: dir, ["--no-normalize"]), port: Self.port(1))
        let byDefault = try wav(server, Self.text)
        #expect(byDefault == (try wav(server, Self.text, "&normalize=0")))
        #expect(try wav(server, Self.text, "&normalize=1") == (try wav(server, Self.spoken, "&normalize=0")))
        #expect(byDefault != (try wav(server, Self.spoken)))
        // A job that does not say follows the server.
        let submitted = try Self.post(server, "/api/v1/jobs", json: ["text": Self.text, "noise_scale": 0, "noise_w": 0, "format": "wav"])
        let id = try #require(submitted.json?["id"] as? String)
        #expect(try JobAPITests.waitForEnd(server, id: id)["status"] as? String == "succeeded")
        #expect(try server.curl("/api/v1/jobs/\(id)/audio").body == byDefault)
    }

    @Test func sayTakesNoNormalize() throws {
        func say(_ text: String, _ extra: [String] = []) throws -> Data {
            let result = try runProcess(
                Checkout.larkBinary,
                ["say", text, "--voice", Checkout.joeModel, "--espeak-data", Checkout.deps, "--noise-scale", "0", "--noise-w", "0",
                 "--output", "-"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        let normalized = try say(Self.text)
        let asWritten = try say(Self.text, ["--no-normalize"])
        #expect(!normalized.isEmpty && normalized != asWritten)
        #expect(try say(Self.spoken, ["--no-normalize"]) == normalized)
    }
}
