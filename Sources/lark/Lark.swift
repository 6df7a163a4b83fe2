import AudioEncoding
import ArgumentParser
import Foundation
#if canImport(Glibc)
import CMalloc
#endif
import PiperEngine
import SpeechService
import SpeechCore
import VoiceCatalog

@main
struct Lark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lark",
        abstract: "A self-hosted text-to-speech server: Piper voices and espeak-ng voices.",
        subcommands: [Say.self, Serve.self, Wyoming.self, Worker.self, Voices.self, Keys.self, Phonemes.self, Normalize.self, Bench.self],
        defaultSubcommand: Say.self
    )

    static func main() async {
        limitHeapGrowth()
        do {
            var command = try parseAsRoot(WyomingOptions.expandingZeroconfName(Array(CommandLine.arguments.dropFirst())))
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// Fixes glibc's mmap threshold at its initial 128 KiB. Left alone, glibc raises it to the
    /// size of each large block freed, so the buffers ONNX Runtime allocates and frees while
    /// loading a model come from the heap afterwards and stay resident: a cached voice then
    /// peaked about 30 MB higher (measured with `/usr/bin/time -f %M lark say Hi.`).
    private static func limitHeapGrowth() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        #endif
    }
}

/// Options every command that touches voices shares. Each also reads a `LARK_*` variable.
struct EngineOptions: ParsableArguments {
    @Option(name: [.customLong("data-dir"), .customLong("data_dir")],
            help: "Directory with Piper voices (repeatable; default: .deps/voices, then the current directory). Env: LARK_DATA_DIR (colon-separated).")
    var dataDirectories: [String] = []

    @Option(name: .customLong("espeak-data"),
            help: "Directory holding espeak-ng-data (default: Piper's copy in .deps). Env: LARK_ESPEAK_DATA.")
    var espeakData: String?

    @Option(help: "ONNX Runtime threads for a sentence that runs alone (default: every core; worker, phonemes and bench: 1). Env: LARK_THREADS.")
    var threads: Int?

    @Flag(help: "Run Piper models on CUDA (needs a GPU build of ONNX Runtime). Env: LARK_CUDA=1.")
    var cuda = false

    @Flag(inversion: .prefixedNo,
          help: "ONNX Runtime's threads busy-wait between the parallel parts of a run instead of sleeping (default: on; faster on an idle machine). --no-spin-wait: for a machine shared with other work, where the waiting threads' cores are needed. Env: LARK_SPIN_WAIT=0 turns it off.")
    var spinWait: Bool?

    @Option(help: "Model memory after each run: arena (keep, fastest), shrink (give free memory back), none (no arena). Env: LARK_MEMORY.")
    var memory: ModelMemory?

    @Flag(inversion: .prefixedNo,
          help: "Run Piper models' 1-D convolutions as 2-D ones: same audio, faster on the CPU (default: on). Env: LARK_REWRITE_CONVOLUTIONS=0 turns it off.")
    var rewriteConvolutions: Bool?

    @Option(name: .customLong("cache-dir"),
            help: "Where Piper voices optimized for this machine are kept (default: $XDG_CACHE_HOME/lark, else ~/.cache/lark). Env: LARK_CACHE_DIR.")
    var cacheDirectory: String?

    @Flag(name: .customLong("no-voice-cache"),
          help: "Optimize Piper voices on every load instead of keeping them in the cache directory. Env: LARK_VOICE_CACHE=0.")
    var noVoiceCache = false

    @Option(help: "Arithmetic of Piper voices' convolutions: fp32 (default) or bf16 (bfloat16 products where Lark's kernel is faster; needs a CPU with AVX512-BF16 and the convolution rewrite). Env: LARK_PRECISION.")
    var precision: String?

    /// `--precision`, else `LARK_PRECISION`, else fp32; refused (not silently changed) where it cannot run.
    func resolvedPrecision() throws -> ComputePrecision {
        let environment = ProcessInfo.processInfo.environment
        let text = precision ?? environment["LARK_PRECISION"].flatMap { $0.isEmpty ? nil : $0 } ?? "fp32"
        let source = precision == nil ? "LARK_PRECISION" : "--precision"
        guard let value = ComputePrecision(rawValue: text.lowercased()) else {
            throw PrecisionRefused(message: "\(source) must be fp32 or bf16, not '\(text)'")
        }
        if let reason = value.unsupportedReason { throw PrecisionRefused(message: "\(source) \(value.rawValue): \(reason)") }
        if value == .bf16 {
            let rewrite = rewriteConvolutions ?? environmentFlag(environment["LARK_REWRITE_CONVOLUTIONS"]) ?? true
            let cuda = cuda || environmentFlag(environment["LARK_CUDA"]) == true
            if !rewrite || cuda {
                throw PrecisionRefused(
                    message: "\(source) bf16 runs on the convolution rewrite, on the CPU: it cannot be combined with --no-rewrite-convolutions or --cuda")
            }
        }
        return value
    }

    /// Checked before any command runs, as one line (`fail`) like every other bad input.
    func validate() throws {
        do {
            _ = try resolvedPrecision()
        } catch let refused as PrecisionRefused {
            throw fail(refused.message)
        }
    }
}

struct PrecisionRefused: Error {
    let message: String
}

/// Writes a one-line error and exits non-zero: the CLI's only way out on bad input.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// A command's default synthesis settings, checked before anything starts: a bad default stops
/// `serve` or `worker` with one line instead of failing every request or job.
func checkedDefaults(_ options: SynthesisOptions) throws -> SynthesisOptions {
    do {
        try options.validate()
    } catch {
        throw fail(error.message)
    }
    return options
}

/// The one-line message for any error Lark reports.
func describe(_ error: any Error) -> String {
    if let speech = error as? SpeechError { return speech.message }
    if let audio = error as? AudioOutputError { return audio.message }
    if let catalog = error as? CatalogError { return catalog.message }
    return String(describing: error)
}

extension ModelMemory: ExpressibleByArgument {}

/// Runs a one-shot command with a voice library and shuts the library down afterwards, however
/// `body` ends: the one place where the CLI commands other than `serve` and `worker` close it.
func withVoiceLibrary<T>(
    _ configuration: EngineConfiguration, _ body: (VoiceLibrary) async throws -> T
) async throws -> T {
    let library = VoiceLibrary(configuration: configuration)
    let result: Result<T, any Error>
    do {
        result = .success(try await body(library))
    } catch {
        result = .failure(error)
    }
    try? await library.shutdown()
    return try result.get()
}
