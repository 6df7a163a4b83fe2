import ArgumentParser
import AudioEncoding
import Foundation
import PiperEngine
import SpeechCore
import SpeechService

/// In-process timing of the engine, for `bench/engine`: the voice is loaded and warmed up first,
/// then each round synthesizes the whole text. Prints one JSON object.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time synthesis of a text (used by bench/engine; prints JSON).")

    @Option(name: [.short, .long], help: "Voice id.")
    var voice = "en_US-joe-medium"

    @Option(help: "File with the text to speak.")
    var textFile: String

    @Option(help: "Timed rounds.")
    var rounds = 3

    @Option(help: "Noise scale (the voice's default when absent).")
    var noiseScale: Float?

    @Option(help: "Noise width (the voice's default when absent).")
    var noiseW: Float?

    @Flag(help: "Also time encoding the last round's audio into every format (streamed, sentence by sentence).")
    var formats = false

    @Flag(help: "Time the voice with word timings and without them, round by round in turn (prints JSON).")
    var compareTimings = false

    @Flag(help: "Count the model's arithmetic on the text from an ONNX Runtime profile: GFLOP per second of audio, by operator and by part of the model.")
    var flops = false

    @Flag(help: "List the model's slowest nodes on the text, from an ONNX Runtime profile: share of time, milliseconds, GFLOP/s.")
    var profile = false

    @Option(help: "How many nodes --profile lists.")
    var top = 20

    @Flag(help: "With --flops or --profile: print JSON instead of tables.")
    var json = false

    @OptionGroup var engine: EngineOptions

    /// What `bench/engine` reads (its keys are the script's).
    private struct Report: Encodable {
        struct Round: Encodable {
            var first_sentence_s: Double
            var total_s: Double
            var audio_s: Double
            var rtf: Double
            /// The process's CPU time (every thread's) for the round.
            var cpu_s: Double
        }

        var implementation = "lark"
        var voice: String
        var load_s: Double
        var rounds: [Round]
        var encode_s: [String: Double]?
    }

    func run() async throws {
        let text: String
        do {
            text = try String(contentsOfFile: textFile, encoding: .utf8)
        } catch {
            throw fail("cannot read \(textFile): \((error as NSError).localizedDescription)")
        }
        if flops || profile {
            guard top > 0 else { throw fail("--top must be at least 1") }
            do {
                try await profileText(text)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw fail(describe(error))
            }
            return
        }
        if compareTimings {
            do {
                let report = try await compareTimings(text)
                FileHandle.standardOutput.write(try JSONEncoder().encode(report) + Data("\n".utf8))
            } catch {
                throw fail(describe(error))
            }
            return
        }
        do {
            let report = try await withVoiceLibrary(engine.engineConfiguration(allowVoicePaths: true)) { library in
                try await measure(text, library: library)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
        } catch {
            throw fail(describe(error))
        }
    }

    private func measure(_ text: String, library: VoiceLibrary) async throws -> Report {
        let options = SynthesisOptions(noiseScale: noiseScale, noiseW: noiseW)
        let loadStart = ContinuousClock.now
        let selected = try await library.voice(voice)
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        var results: [Report.Round] = []
        var lastRound: [[Int16]] = []
        try await withOneSynthesis { ticket in
        _ = try await selected.synthesizeAll("Warming up.", options: options, admission: ticket)
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            let cpuStart = processCPUSeconds()
            var first: Double?
            var samples = 0
            lastRound = []
            for try await chunk in selected.synthesize(text, options: options, admission: ticket) {
                if first == nil { first = (ContinuousClock.now - start).seconds }
                samples += chunk.samples.count
                lastRound.append(chunk.samples)
            }
            let total = (ContinuousClock.now - start).seconds
            let audio = Double(samples) / Double(selected.info.sampleRate)
            results.append(Report.Round(
                first_sentence_s: first ?? total, total_s: total, audio_s: audio, rtf: total / audio,
                cpu_s: processCPUSeconds() - cpuStart))
        }
        }
        return Report(
            voice: voice, load_s: loadSeconds, rounds: results,
            encode_s: formats ? try encodingTimes(lastRound, voiceRate: selected.info.sampleRate) : nil)
    }
}

extension Bench {
    /// What `bench/timings` reads: seconds per round with timings and without, in turn.
    struct TimingsReport: Encodable {
        var voice: String
        var audio_s: Double
        var with_timings_s: [Double]
        var without_timings_s: [Double]
        var marks_per_round: Int
        /// The text's phonemization alone, with the word alignment timings need and without it
        /// (seconds per round): the part of the cost that is not the model's.
        var phonemize_with_words_s: [Double] = []
        var phonemize_without_words_s: [Double] = []
    }

    /// The same voice loaded twice, with its duration output and marks and without; each round
    /// synthesizes the text with both, in alternating order, so the machine's load hits both alike.
    func compareTimings(_ text: String) async throws -> TimingsReport {
        let options = SynthesisOptions(noiseScale: noiseScale, noiseW: noiseW)
        var configuration = engine.engineConfiguration(allowVoicePaths: true)
        return try await withVoiceLibrary(configuration) { timedLibrary in
            configuration.timings = false
            return try await withVoiceLibrary(configuration) { plainLibrary in
                let timed = try await timedLibrary.voice(voice)
                let plain = try await plainLibrary.voice(voice)
                var report = TimingsReport(voice: voice, audio_s: 0, with_timings_s: [], without_timings_s: [], marks_per_round: 0)
                try await withOneSynthesis { ticket in
                    for selected in [timed, plain] { _ = try await selected.synthesizeAll("Warming up.", options: options, admission: ticket) }
                    if let piper = timed as? PiperVoice {
                        for round in 0..<rounds {
                            for withWords in round % 2 == 0 ? [true, false] : [false, true] {
                                let start = ContinuousClock.now
                                _ = try await piper.phonemizer.sentences(of: text, withWords: withWords)
                                let seconds = (ContinuousClock.now - start).seconds
                                if withWords { report.phonemize_with_words_s.append(seconds) } else { report.phonemize_without_words_s.append(seconds) }
                            }
                        }
                    }
                    for round in 0..<rounds {
                        for selected in round % 2 == 0 ? [timed, plain] : [plain, timed] {
                            let start = ContinuousClock.now
                            var samples = 0
                            var marks = 0
                            for try await chunk in selected.synthesize(text, options: options, admission: ticket) {
                                samples += chunk.samples.count
                                marks += chunk.marks.count
                            }
                            let seconds = (ContinuousClock.now - start).seconds
                            report.audio_s = Double(samples) / Double(selected.info.sampleRate)
                            if selected.info.id == timed.info.id, marks > 0 {
                                report.with_timings_s.append(seconds)
                                report.marks_per_round = marks
                            } else {
                                report.without_timings_s.append(seconds)
                            }
                        }
                    }
                }
                return report
            }
        }
    }
}

/// Seconds to encode `sentences` into each format at its default rate, as a stream (the
/// server's `/read` path), best of three.
private func encodingTimes(_ sentences: [[Int16]], voiceRate: Int) throws -> [String: Double] {
    var times: [String: Double] = [:]
    for format in AudioFormat.allCases {
        let output = try AudioOutput(format: format, sampleRate: nil, bitrate: nil, voiceRate: voiceRate)
        var best = Double.infinity
        for _ in 0..<3 {
            let start = ContinuousClock.now
            let encoder = try makeAudioEncoder(output: output, inputRate: voiceRate, streaming: true)
            for sentence in sentences { _ = try encoder.encode(sentence) }
            _ = try encoder.finish()
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        times[format.rawValue] = best
    }
    return times
}

/// User and system CPU seconds of every thread of this process so far.
func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
