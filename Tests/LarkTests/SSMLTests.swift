import Foundation
import SpeechCore
import Testing
import TextNormalization

/// SSML end to end: a real `lark serve` over loopback, the audio decoded by ffmpeg. Each element
/// changes the audio as it says; every bad document is a 400 `invalid_ssml` naming its place.
/// Short texts. Exact comparisons use joe at zero noise (deterministic); espeak-ng's output
/// depends on what the process synthesized before, so it is compared within a tolerance.
@Suite(.serialized) struct SSMLTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess
    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(130 + offset) }
    static let joe = "en_US-joe-medium"
    /// joe's model with a config that says 16,000 Hz: a voice at another rate than joe's 22,050.
    static let joe16k = "en_US-joe16k-medium"
    static let english = "espeak-ng:en-us"

    /// A data directory with joe and joe16k (the model linked, not symlinked: a voice is one
    /// model per resolved file), and the jobs directory.
    static let directories: (voices: String, jobs: String) = {
        let root = NSTemporaryDirectory() + "lark-ssml-test-\(getpid())"
        let voices = root + "/voices", jobs = root + "/jobs"
        let files = FileManager.default
        try? files.createDirectory(atPath: voices, withIntermediateDirectories: true)
        try? files.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        let model = ServerLifecycleTests.voices + "/\(joe).onnx"
        try? files.createSymbolicLink(atPath: voices + "/\(joe).onnx", withDestinationPath: model)
        try? files.createSymbolicLink(atPath: voices + "/\(joe).onnx.json", withDestinationPath: model + ".json")
        if (try? files.linkItem(atPath: model, toPath: voices + "/\(joe16k).onnx")) == nil {
            try? files.copyItem(atPath: model, toPath: voices + "/\(joe16k).onnx")
        }
        if let data = files.contents(atPath: model + ".json"),
            var config = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            var audio = config["audio"] as? [String: Any]
        {
            audio["sample_rate"] = 16_000
            config["audio"] = audio
            try? JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: voices + "/\(joe16k).onnx.json"))
        }
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "lark-ssml-test-\(getpid())") }
        return (voices, jobs)
    }()

    /// One server for the suite, stopped when the test process exits (a static is never released).
    static let server: ServerProcess? = {
        let server = try? ServerProcess(
            ["--data-dir", directories.voices, "--jobs-dir", directories.jobs, "--max-text-chars", "300000", "--workers", "1"]
                + ServerLifecycleTests.common,
            port: port(0))
        atexit { SSMLTests.server?.process.terminate() }
        return server
    }()

    static func running() throws -> ServerProcess {
        try #require(server, "lark serve did not start")
    }

    /// `POST /api/v1/speech` with `fields` (as JSON).
    static func speech(_ fields: [String: Any]) throws -> ServerTests.CurlResult {
        let body = try JSONSerialization.data(withJSONObject: fields)
        return try running().curl("/api/v1/speech", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"], input: body)
    }

    /// An SSML document's samples (WAV from `/api/v1/speech`, deterministic settings).
    static func ssml(_ document: String, voice: String = english, normalize: Bool = true) throws -> [Int16] {
        let result = try speech([
            "text": document, "text_type": "ssml", "voice": voice, "noise_scale": 0, "noise_w": 0, "normalize": normalize,
        ])
        #expect(result.status == 200, "\(String(decoding: result.body, as: UTF8.self))")
        return try decode(result.body)
    }

    static func plain(_ text: String, voice: String = english, normalize: Bool = true) throws -> [Int16] {
        let result = try speech(["text": text, "voice": voice, "noise_scale": 0, "noise_w": 0, "normalize": normalize])
        #expect(result.status == 200, "\(String(decoding: result.body, as: UTF8.self))")
        return try decode(result.body)
    }

    /// Decodes audio with ffmpeg into 16-bit mono samples at the rate the file says.
    static func decode(_ audio: Data, rawRate: Int? = nil) throws -> [Int16] {
        let input = rawRate.map { ["-f", "s16le", "-ar", String($0), "-ac", "1"] } ?? []
        let result = try runProcess("/usr/bin/ffmpeg", ["-v", "error"] + input + ["-i", "-", "-f", "s16le", "-ac", "1", "-"], input: audio)
        guard result.status == 0 else { throw ProbeError(message: "ffmpeg: \(result.stderr)") }
        return result.stdout.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
    }

    /// The sample rate a WAV's header declares.
    static func wavRate(_ wav: Data) -> Int {
        Int(wav[24]) | Int(wav[25]) << 8 | Int(wav[26]) << 16 | Int(wav[27]) << 24
    }

    /// The quiet samples (below -54 dBFS) on both sides of `index`: those just before it and
    /// those from it on.
    static func silence(across index: Int, in samples: [Int16]) -> Int {
        var lower = index, upper = index
        while lower > 0, abs(Int(samples[lower - 1])) < 64 { lower -= 1 }
        while upper < samples.count, abs(Int(samples[upper])) < 64 { upper += 1 }
        return upper - lower
    }

    static func rms(_ samples: [Int16]) -> Double {
        (samples.reduce(0) { $0 + Double($1) * Double($1) } / Double(max(samples.count, 1))).squareRoot()
    }

    @Test func breaksAddSilenceOfTheirLength() throws {
        let without = try Self.ssml("<speak><s>One.</s><s>Two.</s></speak>", voice: Self.joe)
        // Where "One." ends and "Two." (or the break) begins.
        let junction = try Self.plain("One.", voice: Self.joe).count
        for (element, seconds) in [(#"<break time="700ms"/>"#, 0.7), (#"<break time="1.5s"/>"#, 1.5), (#"<break strength="x-strong"/>"#, 1.0)] {
            let with = try Self.ssml("<speak><s>One.</s>\(element)<s>Two.</s></speak>", voice: Self.joe)
            let added = Double(Self.silence(across: junction, in: with) - Self.silence(across: junction, in: without)) / 22_050
            #expect(abs(added - seconds) <= 0.020, "\(element) added \(added) s of silence")
            #expect(with.count - without.count == Int((seconds * 22_050).rounded()))
        }
    }

    @Test func rateChangesTheDurationByRoughlyItsFactor() throws {
        let normal = try Self.plain("Slow down a little.", voice: Self.joe)
        let slow = try Self.ssml(#"<speak><prosody rate="x-slow">Slow down a little.</prosody></speak>"#, voice: Self.joe)
        let ratio = Double(slow.count) / Double(normal.count)
        #expect(ratio > 1.6 && ratio < 2.4, "x-slow (half speed) made \(ratio) times the audio")
        let plainEspeak = try Self.plain("Speak a little faster now.")
        let fast = try Self.ssml(#"<speak><prosody rate="150%">Speak a little faster now.</prosody></speak>"#)
        let fastRatio = Double(fast.count) / Double(plainEspeak.count)
        #expect(fastRatio > 0.5 && fastRatio < 0.85, "150% speed made \(fastRatio) times the audio")
    }

    @Test func volumeChangesTheLoudnessByItsDecibels() throws {
        let normal = try Self.plain("Quiet please.", voice: Self.joe)
        let softer = try Self.ssml(#"<speak><prosody volume="-6dB">Quiet please.</prosody></speak>"#, voice: Self.joe)
        #expect(softer.count == normal.count)
        let change = 20 * log10(Self.rms(softer) / Self.rms(normal))
        #expect(abs(change + 6) < 0.2, "-6dB changed the level by \(change) dB")
        let silent = try Self.ssml(#"<speak><prosody volume="silent">Quiet please.</prosody></speak>"#, voice: Self.joe)
        #expect(silent.count == normal.count && silent.allSatisfy { $0 == 0 })
        // Pitch is espeak-ng's: a Piper voice speaks as it would without it.
        let pitched = try Self.ssml(#"<speak><prosody pitch="x-high">Quiet please.</prosody></speak>"#, voice: Self.joe)
        #expect(pitched == normal)
    }

    @Test func subAndPhonemeChangeWhatIsSpoken() throws {
        let sub = try Self.ssml(#"<speak>Visit the <sub alias="World Wide Web">WWW</sub> today.</speak>"#, voice: Self.joe)
        #expect(try sub == Self.plain("Visit the World Wide Web today.", voice: Self.joe))
        #expect(try sub != Self.plain("Visit the WWW today.", voice: Self.joe))
        let ipa = try Self.ssml(#"<speak><phoneme alphabet="ipa" ph="təmˈɑːtoʊ">tomato</phoneme></speak>"#, voice: Self.joe)
        #expect(try ipa == Self.plain("[[ təmˈɑːtoʊ ]]", voice: Self.joe))
        #expect(try ipa != Self.plain("tomato", voice: Self.joe))
        let sampa = try Self.ssml(#"<speak><phoneme alphabet="x-sampa" ph="t@m&quot;A:toU">tomato</phoneme></speak>"#, voice: Self.joe)
        #expect(sampa == ipa)
    }

    @Test func sayAsReadsThroughTheNormalizerAndTextIsNormalizedAsPlainText() throws {
        let english = EnglishNormalizer()
        let spelledWords = try #require(english.sayAs("SSML", interpretAs: "characters", format: nil, detail: nil))
        let spelled = try Self.ssml(#"<speak><say-as interpret-as="characters">SSML</say-as></speak>"#, voice: Self.joe, normalize: false)
        #expect(try spelled == Self.plain(spelledWords, voice: Self.joe, normalize: false))
        #expect(try spelled != Self.plain("SSML", voice: Self.joe, normalize: false))
        // A date read day-first as `format` says, which the text alone would read month-first.
        let dateWords = try #require(english.sayAs("3/4/2025", interpretAs: "date", format: "dmy", detail: nil))
        let date = try Self.ssml(#"<speak><say-as interpret-as="date" format="dmy">3/4/2025</say-as></speak>"#, voice: Self.joe, normalize: false)
        #expect(try date == Self.plain(dateWords, voice: Self.joe, normalize: false))
        #expect(try date != Self.plain("3/4/2025", voice: Self.joe))
        // The document's text is normalized as plain text is, and the switch turns it off.
        let normalized = try Self.ssml("<speak>It costs $5.</speak>", voice: Self.joe)
        #expect(try normalized == Self.plain("It costs $5.", voice: Self.joe))
        #expect(try normalized != Self.ssml("<speak>It costs $5.</speak>", voice: Self.joe, normalize: false))
        // An expletive is a 1 kHz tone of its own, not the word.
        let bleep = try Self.ssml(#"<speak><say-as interpret-as="expletive">darn</say-as></speak>"#)
        let crossings = zip(bleep, bleep.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        let seconds = Double(bleep.count) / 22_050
        #expect(abs(seconds - 0.32) < 0.001 && abs(Double(crossings) / seconds - 2_000) < 50, "\(seconds) s, \(crossings) crossings")
    }

    @Test func voiceAndLangSwitchVoiceForASpanAtTheRequestsRate() throws {
        let server = try Self.running()
        let document = #"<speak>Hello <voice name="espeak-ng:de">Guten Tag</voice> again.</speak>"#
        let result = try Self.speech(["text": document, "text_type": "ssml", "voice": Self.joe, "noise_scale": 0, "noise_w": 0])
        #expect(result.status == 200 && Self.wavRate(result.body) == 22_050)
        let mixed = try Self.decode(result.body)
        // joe's parts exactly, espeak-ng's German between them.
        let hello = try Self.plain("Hello ", voice: Self.joe), again = try Self.plain(" again.", voice: Self.joe)
        let german = try Self.plain("Guten Tag", voice: "espeak-ng:de")
        func isSwitched(_ samples: [Int16]) -> Bool {
            Array(samples.prefix(hello.count)) == hello && Array(samples.suffix(again.count)) == again
                && abs(samples.count - hello.count - again.count - german.count) < 441
        }
        #expect(isSwitched(mixed), "\(mixed.count) samples: \(hello.count) + \(german.count) + \(again.count)")
        let byLanguage = try Self.ssml(#"<speak>Hello <lang xml:lang="de-DE">Guten Tag</lang> again.</speak>"#, voice: Self.joe)
        #expect(isSwitched(byLanguage))
        // A voice at 16,000 Hz inside a 22,050 Hz request is resampled: same duration, joe's rate.
        let low = try server.curl(
            "/api/v1/speech", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"],
            input: try JSONSerialization.data(withJSONObject: ["text": "Hello there.", "voice": Self.joe16k, "noise_scale": 0, "noise_w": 0]))
        #expect(Self.wavRate(low.body) == 16_000)
        let lowSamples = try Self.decode(low.body)
        let switched = try Self.ssml(#"<speak><voice name="en_US-joe16k-medium">Hello there.</voice></speak>"#, voice: Self.joe)
        let expected = Double(lowSamples.count) * 22_050 / 16_000
        #expect(abs(Double(switched.count) - expected) < 0.002 * 22_050, "\(switched.count) samples, expected \(expected)")
        // No voice for a language: the document's place is named.
        let none = try Self.speech(["text": "<speak>\n<lang xml:lang=\"tlh\">Qapla</lang></speak>", "text_type": "ssml"])
        #expect(none.status == 400 && none.errorCode == "invalid_ssml")
    }

    @Test func everyRouteTakesSSML() throws {
        let server = try Self.running()
        let document = #"<speak>One <break time="400ms"/> two.</speak>"#
        let expected = try Self.ssml(document, voice: Self.joe)
        let query = document.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let settings = "voice=\(Self.joe)&noise_scale=0&noise_w=0"
        let get = try server.curl("/?\(settings)&text=\(query)")
        #expect(get.status == 200)
        #expect(try Self.decode(get.body) == expected)
        let posted = try server.curl("/?\(settings)", ["-X", "POST", "--data-binary", "@-"], input: Data(("\n  " + document).utf8))
        #expect(posted.status == 200)
        #expect(try Self.decode(posted.body) == expected)
        let typed = try server.curl(
            "/?voice=\(Self.english)", ["-X", "POST", "-H", "Content-Type: application/ssml+xml", "--data-binary", "@-"],
            input: Data("<p>not rooted</p>".utf8))
        #expect(typed.status == 400 && typed.errorCode == "invalid_ssml")
        let flagged = try server.curl("/?voice=\(Self.english)&ssml=1&text=%3Cp%3Ex%3C%2Fp%3E")
        #expect(flagged.status == 400 && flagged.errorCode == "invalid_ssml")
        let read = try server.curl("/read?\(settings)&text=\(query)")
        #expect(read.status == 200)
        #expect(try Self.decode(read.body, rawRate: 22_050) == expected)
        let synthesize = try server.curl(
            "/synthesize", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"],
            input: try JSONSerialization.data(withJSONObject: ["text": document, "voice": Self.joe, "noise_scale": 0, "noise_w_scale": 0]))
        #expect(synthesize.status == 200)
        #expect(try Self.decode(synthesize.body) == expected)
        // Streamed, the same audio.
        let streamed = try Self.speech([
            "text": document, "text_type": "ssml", "voice": Self.joe, "noise_scale": 0, "noise_w": 0, "stream": true, "format": "pcm",
        ])
        #expect(streamed.status == 200)
        #expect(try Self.decode(streamed.body, rawRate: 22_050) == expected)
        // Plain text that only mentions SSML is plain text on Lark's own route.
        let asText = try Self.speech(["text": "<speak>", "voice": Self.english])
        #expect(asText.status == 200)
        let badType = try Self.speech(["text": "x", "text_type": "html"])
        #expect(badType.status == 400 && badType.errorCode == "invalid_option")
    }

    @Test func jobsTakeSSML() throws {
        let server = try Self.running()
        let document = #"<speak>One <break time="400ms"/> two.</speak>"#
        let submitted = try JobAPITests.post(
            server, "/api/v1/jobs", json: ["text": document, "text_type": "ssml", "voice": Self.joe, "noise_scale": 0, "noise_w": 0])
        #expect(submitted.status == 202)
        let id = try #require(submitted.json?["id"] as? String)
        let done = try JobAPITests.waitForEnd(server, id: id)
        #expect(done["status"] as? String == "succeeded", "\(done)")
        let audio = try server.curl("/api/v1/jobs/\(id)/audio")
        let live = try Self.ssml(document, voice: Self.joe)
        #expect(try Self.decode(audio.body) == live)
        let bad = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "<speak><foo/></speak>", "text_type": "ssml", "voice": Self.english])
        #expect(bad.status == 400 && bad.errorCode == "invalid_ssml")
    }

    @Test(arguments: SSMLParserTests.refusals) func badSSMLIsA400NamingItsPlace(_ refusal: (String, Int, Int, String)) throws {
        let (document, line, column, words) = refusal
        let result = try Self.speech(["text": document, "text_type": "ssml", "voice": Self.english])
        let message = (result.json?["error"] as? [String: Any])?["message"] as? String ?? ""
        if document.isEmpty {
            #expect(result.status == 400 && result.errorCode == "empty_text")
            return
        }
        #expect(result.status == 400 && result.errorCode == "invalid_ssml", "\(document): \(result.status) \(message)")
        #expect(message.contains("line \(line), column \(column > 0 ? String(column) : "")") && message.contains(words), "\(message)")
    }

    @Test func pathologicalDocumentsAreRefusedQuicklyAndTheServerKeepsServing() throws {
        let server = try Self.running()
        let documents = [
            "<speak>" + String(repeating: "<p>", count: 20_000) + "x" + String(repeating: "</p>", count: 20_000) + "</speak>",
            "<speak>" + String(repeating: "<w>a</w>", count: 5_000) + "</speak>",
            #"<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><speak>&c;&c;&c;</speak>"#,
            "<speak><break time=\"" + String(repeating: "1", count: 250_000) + "ms\"/></speak>",
            "<speak><sub alias=\"" + String(repeating: "<", count: 1_000) + "\">x</sub></speak>",
        ]
        for document in documents {
            let result = try Self.speech(["text": document, "text_type": "ssml", "voice": Self.english])
            #expect(result.status == 400 && result.errorCode == "invalid_ssml", "\(result.status) \(String(decoding: result.body.prefix(300), as: UTF8.self))")
            #expect(result.body.count < 2_000)
            #expect(result.total < 10, "took \(result.total) s")
        }
        let health = try server.curl("/healthz")
        #expect(health.status == 200)
    }

    @Test func marksArePlacedInTheDocument() async throws {
        let document = #"<speak>Hello <mark name="middle"/>there. <break time="200ms"/><mark name="end"/></speak>"#
        let prepared = try await Checkout.library.prepare(
            SpeechInput(document, markup: .ssml), voiceID: Self.english, options: SynthesisOptions(), defaults: SynthesisOptions())
        var marks: [(SpeechMark, Int)] = []
        var position = 0
        for try await chunk in prepared.start(on: Checkout.admission()) {
            marks += chunk.marks.filter { $0.kind == .ssml }.map { ($0, position + $0.startSample) }
            position += chunk.samples.count
        }
        #expect(marks.map(\.0.value) == ["middle", "end"])
        let middle = try #require(document.range(of: "<mark name=\"middle\""))
        let offset = document.utf8.distance(from: document.startIndex, to: middle.lowerBound)
        #expect(marks.first?.0.textRange == offset ..< offset)
        // "middle" is where "there." starts: after "Hello"'s audio; "end" after everything.
        let hello = try await Checkout.library.voice(Self.english).synthesizeAll("Hello ", options: SynthesisOptions(), admission: Checkout.admission())
        // espeak-ng's audio of a text varies with what the process spoke before: by a few samples
        // alone, by up to a tenth of a short word's length after the whole suite's texts (868 of
        // 10,705 samples seen). Wrong placement would be off by the whole word.
        #expect(abs((marks.first?.1 ?? 0) - hello.count) < hello.count / 8, "\(String(describing: marks.first?.1)) against \(hello.count)")
        #expect(marks.last?.1 == position)
    }

    @Test func larkSayWritesTheServersAudio() throws {
        let document = #"<speak>Say <prosody rate="slow">this</prosody> <break time="300ms"/> please.</speak>"#
        let file = NSTemporaryDirectory() + "lark-ssml-say-\(UUID().uuidString).wav"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let said = try runProcess(
            Checkout.larkBinary,
            [
                "say", "--ssml", document, "--voice", Self.joe, "--noise-scale", "0", "--noise-w", "0", "--data-dir", Self.directories.voices,
                "--espeak-data", Checkout.deps, "-o", file,
            ])
        #expect(said.status == 0, "\(said.stderr)")
        let served = try Self.speech(["text": document, "text_type": "ssml", "voice": Self.joe, "noise_scale": 0, "noise_w": 0])
        let written = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(written == served.body)
        let refused = try runProcess(
            Checkout.larkBinary, ["say", "--ssml", "<speak><foo/></speak>", "--voice", Self.english, "--espeak-data", Checkout.deps, "-o", file])
        #expect(refused.status != 0 && refused.stderr.contains("line 1, column 8"), "\(refused.stderr)")
    }
}
