import ArgumentParser
import Foundation
import OnnxRuntime
import PiperEngine
import SpeechCore
import SpeechService

/// `lark bench --flops` and `--profile`: one synthesis of the text with ONNX Runtime's profiler
/// on, read back node by node. The arithmetic is counted from each node's shapes
/// (`NodeArithmetic`); the time is the profiler's, of a session with weight prepacking off (see
/// `InferenceSession.enableProfiling`), so figures of time are a little above a normal run's.
extension Bench {
    /// What `--json` prints (its keys are the scripts').
    struct ProfileReport: Encodable {
        struct Group: Encodable {
            var name: String
            var nodes: Int
            var gflop_per_audio_s: Double
            /// Of all counted FLOPs.
            var flop_share: Double
            var ms: Double
            /// Of the time of every node.
            var time_share: Double
            var gflop_per_s: Double?
        }

        struct Node: Encodable {
            var name: String
            var op: String
            var part: String
            var runs: Int
            var ms: Double
            var time_share: Double
            var gflop: Double
            var gflop_per_s: Double?
        }

        var voice: String
        var threads: Int
        var rewrite_convolutions: Bool
        var audio_s: Double
        var model_runs: Int
        /// Wall time of the model runs, as the profiler saw them.
        var runs_s: Double
        var gflop: Double
        var gflop_per_audio_s: Double
        var by_op: [Group]
        var by_part: [Group]
        var top_nodes: [Node]?
        /// Convolutions and matrix products whose shapes the profile did not hold (not counted).
        var uncounted_nodes: [String]
    }

    func profileText(_ text: String) async throws {
        let directory = NSTemporaryDirectory() + "lark-profile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = engine.engineConfiguration(allowVoicePaths: true)
        configuration.profilePrefix = directory + "/session"
        let options = SynthesisOptions(noiseScale: noiseScale, noiseW: noiseW)
        let (runs, audioSeconds) = try await withVoiceLibrary(configuration) { library in
            guard let piper = try await library.voice(voice) as? PiperVoice else {
                throw fail("--flops and --profile measure Piper voices; \(voice) is not one")
            }
            var chunks = 0
            var samples = 0
            try await withOneSynthesis { ticket in
                // A first run grows ONNX Runtime's arena: the measured runs come after it.
                _ = try await piper.synthesizeAll("Warming up.", options: options, admission: ticket)
                for try await chunk in piper.synthesize(text, options: options, admission: ticket) {
                    chunks += 1
                    samples += chunk.samples.count
                }
            }
            // Each chunk is one model run; the text's runs are the session's last ones.
            let profiles = try piper.endProfiling().map { try SessionProfile(contentsOf: $0) }
            guard let profile = profiles.max(by: { $0.runs.count < $1.runs.count }), profile.runs.count >= chunks, chunks > 0 else {
                throw fail("the profile holds fewer model runs than the text's \(chunks)")
            }
            return (Array(profile.runs.suffix(chunks)), Double(samples) / Double(piper.info.sampleRate))
        }
        let report = Self.summarize(
            runs, audioSeconds: audioSeconds, voice: voice, threads: configuration.threadsPerSession,
            rewrite: configuration.rewriteConvolutions, top: profile ? top : nil)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
        } else {
            print(Self.table(report, flops: flops))
        }
    }

    /// The part of a Piper (VITS) model a node belongs to, from the module path its name starts
    /// with (`/enc_p/...`, `/dp/...`, `/flow/...`, `/dec/...` in Piper's exported graphs).
    static func part(ofNode name: String) -> String {
        let first = name.split(separator: "/").first.map(String.init) ?? ""
        switch first {
        case "enc_p": return "text encoder"
        case "dp", "sdp": return "duration predictor"
        case "flow": return "flow"
        case "dec": return "decoder"
        default: return "other"
        }
    }

    static func summarize(
        _ runs: [SessionProfile.ModelRun], audioSeconds: Double, voice: String, threads: Int, rewrite: Bool, top: Int?
    ) -> ProfileReport {
        var byOp: [String: Totals] = [:], byPart: [String: Totals] = [:], byNode: [String: Totals] = [:]
        var uncounted = Set<String>()
        var totalMicroseconds = 0
        for node in runs.flatMap(\.nodes) {
            let counted = NodeArithmetic.flops(opType: node.opType, inputs: node.inputShapes, outputs: node.outputShapes)
            if counted == nil { uncounted.insert(node.name) }
            let flops = counted ?? 0
            let part = part(ofNode: node.name)
            totalMicroseconds += node.microseconds
            byOp[node.opType, default: Totals()].add(flops, node.microseconds)
            byPart[part, default: Totals()].add(flops, node.microseconds)
            byNode[node.name, default: Totals(op: node.opType, part: part)].add(flops, node.microseconds)
        }
        let totalFlops = byOp.values.reduce(0) { $0 + $1.flops }
        func rate(_ flops: Int, _ microseconds: Int) -> Double? {
            microseconds > 0 && flops > 0 ? Double(flops) / Double(microseconds) / 1e3 : nil
        }
        func groups(_ table: [String: Totals], all: Bool) -> [ProfileReport.Group] {
            table.filter { all || $0.value.flops > 0 }.map { name, totals in
                ProfileReport.Group(
                    name: name, nodes: totals.nodes, gflop_per_audio_s: Double(totals.flops) / 1e9 / audioSeconds,
                    flop_share: totalFlops > 0 ? Double(totals.flops) / Double(totalFlops) : 0,
                    ms: Double(totals.microseconds) / 1e3,
                    time_share: totalMicroseconds > 0 ? Double(totals.microseconds) / Double(totalMicroseconds) : 0,
                    gflop_per_s: rate(totals.flops, totals.microseconds))
            }.sorted { ($0.flop_share, $0.time_share) > ($1.flop_share, $1.time_share) }
        }
        let nodes = top.map { count in
            byNode.sorted { $0.value.microseconds > $1.value.microseconds }.prefix(count).map { name, totals in
                ProfileReport.Node(
                    name: name, op: totals.op, part: totals.part, runs: totals.nodes, ms: Double(totals.microseconds) / 1e3,
                    time_share: totalMicroseconds > 0 ? Double(totals.microseconds) / Double(totalMicroseconds) : 0,
                    gflop: Double(totals.flops) / 1e9, gflop_per_s: rate(totals.flops, totals.microseconds))
            }
        }
        return ProfileReport(
            voice: voice, threads: threads, rewrite_convolutions: rewrite, audio_s: audioSeconds, model_runs: runs.count,
            runs_s: Double(runs.reduce(0) { $0 + $1.microseconds }) / 1e6, gflop: Double(totalFlops) / 1e9,
            gflop_per_audio_s: Double(totalFlops) / 1e9 / audioSeconds,
            by_op: groups(byOp, all: false), by_part: groups(byPart, all: true), top_nodes: nodes,
            uncounted_nodes: uncounted.sorted())
    }

    /// The report as tables for a person.
    static func table(_ report: ProfileReport, flops: Bool) -> String {
        func percent(_ share: Double) -> String { String(format: "%5.1f%%", share * 100) }
        func rate(_ value: Double?) -> String { value.map { String(format: "%7.1f", $0) } ?? "      -" }
        var lines = [
            "\(report.voice): " + String(format: "%.1f s of audio in %d model runs (%.2f s)", report.audio_s, report.model_runs, report.runs_s)
                + ", \(report.threads) thread\(report.threads == 1 ? "" : "s"), convolution rewrite \(report.rewrite_convolutions ? "on" : "off")"
        ]
        if flops {
            lines.append(String(format: "%.2f GFLOP per second of audio (a multiply-add counts 2)", report.gflop_per_audio_s))
            for (title, groups) in [("operator", report.by_op), ("part", report.by_part)] {
                lines.append("")
                lines.append("\(title.padding(toLength: 20, withPad: " ", startingAt: 0)) GFLOP/audio-s   FLOPs    time  GFLOP/s  nodes")
                for group in groups {
                    lines.append(
                        group.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                            + String(format: " %13.3f  ", group.gflop_per_audio_s) + percent(group.flop_share) + "  "
                            + percent(group.time_share) + "  " + rate(group.gflop_per_s) + String(format: "  %5d", group.nodes))
                }
            }
        }
        if let nodes = report.top_nodes {
            lines.append("")
            lines.append("slowest nodes                                              op               time       ms  GFLOP/s")
            for node in nodes {
                let name = node.name.count > 58 ? "…" + node.name.suffix(57) : node.name
                lines.append(
                    name.padding(toLength: 58, withPad: " ", startingAt: 0) + " "
                        + node.op.padding(toLength: 15, withPad: " ", startingAt: 0) + "  " + percent(node.time_share)
                        + String(format: " %8.1f", node.ms) + "  " + rate(node.gflop_per_s))
            }
        }
        if !report.uncounted_nodes.isEmpty {
            lines.append("")
            lines.append("not counted (shapes missing from the profile): \(report.uncounted_nodes.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}

/// Node runs added up: how many, their FLOPs and their time.
private struct Totals {
    var nodes = 0, flops = 0, microseconds = 0
    var op = "", part = ""

    mutating func add(_ flops: Int, _ microseconds: Int) {
        nodes += 1
        self.flops += flops
        self.microseconds += microseconds
    }
}
