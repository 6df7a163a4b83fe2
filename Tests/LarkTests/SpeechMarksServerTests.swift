import Foundation
import Testing

/// Marks and captions over real HTTP from a `lark serve` process: the NDJSON stream read by a
/// Python client that decodes each line's audio as it arrives, the whole-request JSON, and
/// captions parsed by webvtt-py and read by ffmpeg.
@Suite(.serialized) struct SpeechMarksServerTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess
    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(140 + offset) }
    static let clientPython = Checkout.deps + "/clients-venv/bin/python"
    static let text = "Grüße aus Köln, said the café’s owner. It cost $42.50 in 1984! Then we left."

    static func server(_ offset: Int) throws -> ServerProcess {
        try ServerProcess(["--data-dir", ServerLifecycleTests.voices] + ServerLifecycleTests.common, port: port(offset))
    }

    static func post(_ server: ServerProcess, _ path: String, json: [String: Any]) throws -> ServerTests.CurlResult {
        try JobAPITests.post(server, path, json: json)
    }

    @Test func ndjsonStreamIsReadLineByLineByAClient() throws {
        let server = try Self.server(0)
        let result = try runProcess(Self.clientPython, [
            Checkout.root + "/Tests/marks/ndjson_client.py", server.base + "/api/v1/speech", Self.text,
        ])
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr)")
        #expect(result.status == 0, "\(summary["failures"] ?? result.stderr)")
        let lines = try #require(summary["lines"] as? [[String: Any]])
        // One line per sentence, each with its sentence mark and words.
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.allSatisfy { $0["sentences"] as? Int == 1 })
        let words: [[String]] = lines.map { $0["words"] as? [String] ?? [] }
        let expected: [[String]] = [["Grüße", "aus", "Köln", "said", "the", "café’s", "owner"], ["It", "cost", "$42.50", "in", "1984"], ["Then", "we", "left"]]
        #expect(words == expected)
    }

    @Test func wholeRequestJSONHasTheAudioAndEveryMark() throws {
        let server = try Self.server(1)
        let response = try Self.post(server, "/api/v1/speech", json: [
            "text": Self.text, "format": "wav", "marks": ["word", "sentence", "viseme"], "sample_rate": 16000,
        ])
        #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
        let json = try #require(response.json)
        let audio = try #require(Data(base64Encoded: json["audio"] as? String ?? ""))
        let path = NSTemporaryDirectory() + "lark-marks-\(UUID().uuidString).wav"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try audio.write(to: URL(fileURLWithPath: path))
        let probe = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=sample_rate", "-of", "json", path])
        let probed = try #require(try JSONSerialization.jsonObject(with: probe.stdout) as? [String: Any])
        let duration = Double((probed["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
        let marks = try #require(json["marks"] as? [[String: Any]])
        let sentences = marks.filter { $0["type"] as? String == "sentence" }
        #expect(sentences.count == 3)
        // The last sentence ends where the audio ends (its last sample, resampled to 16 kHz).
        let lastEnd = Double(sentences.last?["end_time"] as? Int ?? 0) / 1000
        #expect(abs(lastEnd - duration) < 0.005, "marks end at \(lastEnd) s, audio \(duration) s")
        let bytes = Array(Self.text.utf8)
        for mark in marks where mark["type"] as? String != "viseme" {
            let start = mark["start"] as? Int ?? -1, end = mark["end"] as? Int ?? -1
            #expect(String(decoding: bytes[start..<end], as: UTF8.self) == mark["value"] as? String)
        }
        #expect(marks.contains { $0["type"] as? String == "viseme" && $0["value"] as? String == "f" })
    }

    @Test func captionsOnEveryRouteParseInWebVTTAndFFmpeg() throws {
        let server = try Self.server(2)
        let encoded = Self.text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let get = try server.curl("/?text=\(encoded)&format=vtt&caption_length=20")
        let read = try server.curl("/read?text=\(encoded)&outputFormat=srt")
        let native = try Self.post(server, "/api/v1/speech", json: ["text": Self.text, "format": "vtt", "caption_length": 0])
        let piper = try Self.post(server, "/synthesize", json: ["text": Self.text, "format": "srt"])
        for (response, type) in [(get, "text/vtt"), (read, "application/x-subrip"), (native, "text/vtt"), (piper, "application/x-subrip")] {
            #expect(response.status == 200 && response.contentType.hasPrefix(type), "\(response.status) \(response.contentType)")
        }
        func cues(_ body: Data, srt: Bool) throws -> [[String: Any]] {
            let path = NSTemporaryDirectory() + "lark-captions-\(UUID().uuidString)." + (srt ? "srt" : "vtt")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try body.write(to: URL(fileURLWithPath: path))
            let parsed = try runProcess(Self.clientPython, [Checkout.root + "/Tests/marks/check_captions.py", path] + (srt ? ["--srt"] : []))
            #expect(parsed.status == 0, "webvtt-py: \(parsed.stderr)")
            let cues = try JSONSerialization.jsonObject(with: parsed.stdout) as? [[String: Any]] ?? []
            // ffmpeg reads the same file as a subtitle stream (and writes it out as the other format).
            let ffmpeg = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", srt ? "webvtt" : "srt", "-"])
            let converted = String(decoding: ffmpeg.stdout, as: UTF8.self)
            #expect(ffmpeg.status == 0 && cues.allSatisfy { converted.contains($0["text"] as? String ?? "?") }, "ffmpeg: \(ffmpeg.stderr)")
            return cues
        }
        let short = try cues(get.body, srt: false)
        #expect(short.count > 3 && short.allSatisfy { ($0["text"] as? String ?? "").count <= 20 }, "\(short)")
        let perSentence = try cues(native.body, srt: false)
        #expect(perSentence.map { $0["text"] as? String ?? "" } == [
            "Grüße aus Köln, said the café’s owner.", "It cost $42.50 in 1984!", "Then we left."])
        let subrip = try cues(read.body, srt: true)
        #expect(subrip.count >= 3 && (subrip.first?["text"] as? String ?? "").hasPrefix("Grüße"))
        // Cues follow one another in time.
        for (before, after) in zip(subrip, subrip.dropFirst()) {
            #expect((before["end"] as? Double ?? 0) <= (after["start"] as? Double ?? 0))
        }
    }

    @Test func jobStoresItsCaptionsNextToTheAudio() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerProcess(JobAPITests.arguments(jobsDir: dir), port: Self.port(4))
        let refused = try Self.post(server, "/api/v1/jobs", json: ["text": Self.text, "captions": "ass"])
        #expect(refused.status == 400 && (refused.json?["error"] as? [String: Any])?["code"] as? String == "invalid_option")
        let submitted = try Self.post(server, "/api/v1/jobs", json: ["text": Self.text, "format": "mp3", "captions": "vtt", "caption_length": 30])
        let id = try #require(submitted.json?["id"] as? String, "\(String(decoding: submitted.body, as: UTF8.self))")
        let done = try JobAPITests.waitForEnd(server, id: id)
        #expect(done["status"] as? String == "succeeded", "\(done)")
        let audioURL = try #require(done["audio_url"] as? String)
        let captionsURL = try #require(done["captions_url"] as? String, "\(done)")
        #expect(captionsURL.hasSuffix("/\(id).vtt") && audioURL.hasSuffix("/\(id).mp3"))
        let captions = try ServerTests.curl([captionsURL])
        #expect(captions.status == 200)
        let path = NSTemporaryDirectory() + "lark-job-captions-\(UUID().uuidString).vtt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try captions.body.write(to: URL(fileURLWithPath: path))
        let parsed = try runProcess(Self.clientPython, [Checkout.root + "/Tests/marks/check_captions.py", path])
        #expect(parsed.status == 0, "webvtt-py: \(parsed.stderr)")
        let cues = try JSONSerialization.jsonObject(with: parsed.stdout) as? [[String: Any]] ?? []
        #expect(cues.count >= 3 && cues.allSatisfy { ($0["text"] as? String ?? "").count <= 30 }, "\(cues)")
        // The cues end with the audio, which ffprobe measures in the stored MP3.
        let audio = try ServerTests.curl([audioURL])
        let mp3 = NSTemporaryDirectory() + "lark-job-audio-\(UUID().uuidString).mp3"
        defer { try? FileManager.default.removeItem(atPath: mp3) }
        try audio.body.write(to: URL(fileURLWithPath: mp3))
        let probe = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", mp3])
        let duration = Double(String(decoding: probe.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let lastEnd = cues.last?["end"] as? Double ?? 0
        #expect(lastEnd > duration - 1.5 && lastEnd <= duration + 0.1, "last cue ends at \(lastEnd) s, audio lasts \(duration) s")
    }

    @Test func badMarkRequestsGetAStableCode() throws {
        let server = try Self.server(3)
        let unknown = try Self.post(server, "/api/v1/speech", json: ["text": "Hi.", "marks": ["words"]])
        #expect(unknown.status == 400)
        let error = unknown.json?["error"] as? [String: Any]
        #expect(error?["code"] as? String == "invalid_option" && (error?["message"] as? String ?? "").contains("word, sentence"))
        let empty = try Self.post(server, "/api/v1/speech", json: ["text": "Hi.", "marks": [String]()])
        #expect(empty.status == 400)
        let length = try server.curl("/?text=Hi&format=vtt&caption_length=-1")
        #expect(length.status == 400 && (String(decoding: length.body, as: UTF8.self)).contains("caption_length"))
        #expect(try server.curl("/healthz").status == 200)
    }
}
