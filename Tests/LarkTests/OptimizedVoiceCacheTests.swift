import Foundation
import OnnxGraph
import OnnxRuntime
@testable import PiperEngine
import SpeechCore
import Synchronization
import Testing

/// The optimized-voice cache: what an entry is keyed by, that a cached voice speaks exactly as a
/// freshly optimized one, and that a damaged, truncated, stale or wrong entry is never used.
@Suite(.serialized) struct OptimizedVoiceCacheTests {
    /// Every event the cache reports, in order.
    final class Events: Sendable {
        private let list = Mutex<[OptimizedVoiceCache.Event]>([])
        func record(_ event: OptimizedVoiceCache.Event) { list.withLock { $0.append(event) } }
        var all: [OptimizedVoiceCache.Event] { list.withLock { $0 } }
        var builds: Int { all.filter { if case .building = $0 { true } else { false } }.count }
        var rejections: [String] {
            all.compactMap { if case .rejected(_, let reason) = $0 { reason } else { nil } }
        }
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "lark-cache-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func voice(cache: OptimizedVoiceCache?) throws -> PiperVoice {
        try PiperVoice(
            source: PiperVoiceSource(id: "en_US-joe-medium", modelPath: Checkout.joeModel), cache: cache)
    }

    static func samples(_ voice: PiperVoice, _ text: String = "The cache keeps this voice ready.") async throws -> [Int16] {
        var samples: [Int16] = []
        for try await chunk in voice.synthesize(text, options: SynthesisOptions(noiseScale: 0, noiseW: 0), admission: Checkout.admission()) {
            samples += chunk.samples
        }
        return samples
    }

    static var onnxRuntimeVersion: String {
        (try? OnnxRuntime.shared.get().version) ?? "?"
    }

    @Test func theKeyCoversEverythingThatMakesAnEntryValid() throws {
        let cache = OptimizedVoiceCache(directory: "/nonexistent")
        let key = try cache.key(forModelAt: Checkout.joeModel, onnxRuntime: "1.31.1", session: "optimization=all")
        #expect(key.modelSHA256.count == 64)
        #expect(key.cpu.hasPrefix("x86_64") || key.cpu.hasPrefix("aarch64"))
        #expect(key.rewrite == ConvolutionRewrite.version)
        var changed: [OptimizedVoiceCache.Key] = []
        for field in 0..<5 {
            var other = key
            switch field {
            case 0: other.modelSHA256 = String(repeating: "0", count: 64)
            case 1: other.onnxRuntime = "1.32.0"
            case 2: other.cpu += " avx512_fp16"
            case 3: other.rewrite += "-next"
            default: other.session = "optimization=basic"
            }
            changed.append(other)
        }
        let paths = Set(([key] + changed).map { cache.path(for: $0, voice: "en_US-joe-medium") })
        #expect(paths.count == 6, "every field changes the entry's file name")
        #expect(cache.path(for: key, voice: "../evil/name") .hasPrefix("/nonexistent/.._evil_name."))
    }

    /// A model's hash is remembered by its file's fingerprint: an unchanged file is not read
    /// again, and a changed one (even of the same size) is.
    @Test func aModelsHashIsRememberedUntilTheFileChanges() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = OptimizedVoiceCache(directory: directory)
        let model = directory + "/model.onnx"
        try Data(repeating: 1, count: 1000).write(to: URL(fileURLWithPath: model))
        let first = try cache.modelHash(model)
        #expect(FileManager.default.fileExists(atPath: directory + "/models.json"))
        #expect(try cache.modelHash(model) == first)
        try Data(repeating: 2, count: 1000).write(to: URL(fileURLWithPath: model))
        let second = try cache.modelHash(model)
        #expect(second != first, "the same size, other bytes: hashed again")
        #expect(second == (try OptimizedVoiceCache.sha256(ofFileAt: model)))
    }

    /// `lark voices cache --prune`: the entries this build would not use go (another rewrite
    /// version, another ONNX Runtime, a damaged file, a leftover temporary file); the valid entry
    /// and another CPU's (a shared directory) stay.
    @Test func pruneDeletesWhatThisBuildWouldNotUse() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = OptimizedVoiceCache(directory: directory)
        let valid = OptimizedVoiceCache.Key(
            modelSHA256: String(repeating: "a", count: 64), onnxRuntime: "1.31.1", cpu: OptimizedVoiceCache.cpuFeatures,
            rewrite: ConvolutionRewrite.version, session: "optimization=all")
        var oldRewrite = valid, oldRuntime = valid, otherCPU = valid, damaged = valid
        oldRewrite.rewrite = "2026-01-01.1-old"
        oldRuntime.onnxRuntime = "1.20.0"
        otherCPU.cpu = "aarch64 other"
        damaged.modelSHA256 = String(repeating: "b", count: 64)
        for key in [valid, oldRewrite, oldRuntime, otherCPU, damaged] {
            cache.store(model: Array(repeating: 7, count: 1000), key: key, voice: "en_US-test", probe: [0], restatedConvolutions: 0, buildSeconds: 0)
        }
        let damagedFile = try FileHandle(forWritingTo: URL(fileURLWithPath: cache.path(for: damaged, voice: "en_US-test")))
        try damagedFile.seekToEnd()
        try damagedFile.seek(toOffset: try damagedFile.offset() - 1)
        try damagedFile.write(contentsOf: Data([8]))
        try damagedFile.close()
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: directory + "/leftover.onnx.tmp"))
        // Build locks: the valid entry's stays, the stale entry's goes with it, and one held by a
        // build in progress (its entry not written yet) stays while it is held.
        var building = valid
        building.modelSHA256 = String(repeating: "c", count: 64)
        for key in [valid, oldRewrite] { cache.whileBuilding(key: key, voice: "en_US-test") {} }
        let held = open(cache.lockPath(for: building, voice: "en_US-test"), O_RDWR | O_CREAT, 0o644)
        #expect(held >= 0 && flock(held, LOCK_EX) == 0)
        defer { close(held) }

        let removed = try cache.prune(onnxRuntime: "1.31.1")
        #expect(removed.files == 5)
        #expect(removed.bytes > 3 * 1000)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != "models.json" })
        let name = { (path: String) in (path as NSString).lastPathComponent }
        #expect(left == Set([valid, otherCPU].map { name(cache.path(for: $0, voice: "en_US-test")) }
            + [valid, building].map { name(cache.lockPath(for: $0, voice: "en_US-test")) }))
        #expect(try cache.prune(onnxRuntime: "1.31.1").files == 0, "nothing more the second time")
    }

    /// `models.json` forgets files that are gone when it is next written, and keeps those that exist.
    @Test func rememberedHashesOfDeletedFilesAreForgotten() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = OptimizedVoiceCache(directory: directory)
        let paths = (0..<3).map { directory + "/model\($0).onnx" }
        for (index, path) in paths.enumerated() {
            try Data(repeating: UInt8(index), count: 100).write(to: URL(fileURLWithPath: path))
            _ = try cache.modelHash(path)
        }
        func remembered() throws -> Set<String> {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/models.json"))
            return Set(try #require(JSONSerialization.jsonObject(with: data) as? [String: Any]).keys)
        }
        #expect(try remembered() == Set(paths))
        try FileManager.default.removeItem(atPath: paths[0])
        let other = directory + "/other.onnx"
        try Data(repeating: 9, count: 100).write(to: URL(fileURLWithPath: other))
        _ = try cache.modelHash(other)
        #expect(try remembered() == [paths[1], paths[2], other])
    }

    @Test func aStampedModelReadsBackFromItsFirstBytes() throws {
        let value = Array(String(repeating: "x", count: 70_000).utf8)
        let stamp = ModelStamp.encode(key: "k", value: value)
        let file = stamp + [0x3A, 0x02, 0x08, 0x01]  // a following model field
        let length = try #require(ModelStamp.length(fromPrefix: Array(file.prefix(ModelStamp.prefixLength))))
        #expect(length == stamp.count)
        let decoded = try #require(ModelStamp.decode(Array(file.prefix(length))))
        #expect(decoded.key == "k" && decoded.value == value)
        #expect(ModelStamp.length(fromPrefix: [0x08, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == nil, "a model without a stamp")
    }

    /// One build, then: the cached voice speaks the same samples as an uncached one; a second
    /// load builds nothing; and every kind of damage to the entry is caught and rebuilt.
    @Test func aCachedVoiceLoadsOnceAndDamagedEntriesAreRebuilt() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let events = Events()
        let cache = OptimizedVoiceCache(directory: directory, onEvent: events.record)

        let built = try Self.voice(cache: cache)
        #expect(events.builds == 1)
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != "models.json" && !$0.hasSuffix(".lock") }
        #expect(entries.count == 1 && entries[0].hasSuffix(".onnx"), "one entry and no temporary file: \(entries)")
        let entryPath = directory + "/" + entries[0]
        #expect(built.restatedConvolutions > 0)

        let cached = try Self.voice(cache: cache)
        #expect(events.builds == 1, "the second load used the entry")
        #expect(cached.restatedConvolutions == built.restatedConvolutions)
        let uncached = try Self.voice(cache: nil)
        let expected = try await Self.samples(uncached)
        #expect(try await Self.samples(cached) == expected, "the cached graph speaks exactly as a freshly optimized one")
        #expect(cache.listing(onnxRuntime: Self.onnxRuntimeVersion).map(\.problem) == [nil])

        let valid = try Data(contentsOf: URL(fileURLWithPath: entryPath))
        // DirectConv's weights are held in one form only, the one its kernel reads: nothing is left
        // for a kernel to prepare beside them (PreparedWeightsRewrite).
        let leftToPrepare = try PreparedWeightsRewrite.apply(to: [UInt8](valid), prepare: PreparedConvolutionWeights.prepare)
        #expect(leftToPrepare.replaced == 0, "\(leftToPrepare.replaced) convolutions hold W that their kernels prepare again")
        // A voice of several sessions loads the entry with stubs for its large weights (given in
        // memory), and speaks on the probe exactly as the entry loaded whole does.
        let runtime = try OnnxRuntime.shared.get()
        let shared = try #require(PiperModelLoader.sharedModel([UInt8](valid), modelPath: Checkout.joeModel, runtime: runtime))
        #expect(shared.stubbed.count < valid.count / 10, "\(shared.stubbed.count) bytes of \(valid.count) left")
        let basic = SessionConfiguration(optimization: .basic)
        let whole = try PiperModelLoader.probe(InferenceSession(modelPath: entryPath, configuration: basic, runtime: runtime))
        #expect(try PiperModelLoader.probe(shared.session(basic, runtime: runtime)) == whole)
        let key = try cache.key(forModelAt: Checkout.joeModel, onnxRuntime: Self.onnxRuntimeVersion, session: "optimization=all intra=1 inter=1")
        #expect(cache.entry(for: key, voice: "en_US-joe-medium") != nil)

        // A flipped byte in the weights, a truncated file, a header that is not one.
        var flipped = valid
        flipped[valid.count - 1000] ^= 0x40
        let damaged: [(Data, String)] = [
            (flipped, "checksum"), (valid.prefix(valid.count / 2), "truncated"), (Data(repeating: 0x41, count: 4096), "no header"),
        ]
        for (bytes, reason) in damaged {
            try bytes.write(to: URL(fileURLWithPath: entryPath))
            #expect(cache.entry(for: key, voice: "en_US-joe-medium") == nil)
            #expect(events.rejections.last?.contains(reason) == true, "\(reason): \(events.rejections)")
            #expect(!FileManager.default.fileExists(atPath: entryPath), "a rejected entry is deleted")
        }

        // An entry for another runtime (stale) stored under this key's name.
        var stale = key
        stale.onnxRuntime = "0.0.1"
        let header = try #require(OptimizedVoiceCache.readEntryHeader(valid))
        cache.store(model: Array(valid.dropFirst(header.stampLength)), key: stale, voice: "en_US-joe-medium", probe: header.header.probe,
                    restatedConvolutions: 1, buildSeconds: 0)
        try FileManager.default.moveItem(atPath: cache.path(for: stale, voice: "en_US-joe-medium"), toPath: entryPath)
        #expect(cache.entry(for: key, voice: "en_US-joe-medium") == nil)
        #expect(events.rejections.last?.contains("another model, runtime or CPU") == true)

        // An entry whose checksum is right but whose graph computes something else: the probe
        // after loading catches it, and the voice loads rebuilt.
        var model = Array(valid.dropFirst(header.stampLength))
        let middle = model.count / 2
        for index in middle..<(middle + 4096) { model[index] = 0 }
        cache.store(model: model, key: key, voice: "en_US-joe-medium", probe: header.header.probe, restatedConvolutions: 1, buildSeconds: 0)
        let rebuilt = try Self.voice(cache: cache)
        #expect(events.rejections.last?.contains("probe") == true || events.rejections.last?.contains("could not load") == true,
                "\(events.rejections)")
        #expect(events.builds == 2)
        #expect(try await Self.samples(rebuilt) == expected)
        #expect(cache.entry(for: key, voice: "en_US-joe-medium") != nil, "the rebuilt entry is valid")
    }
}

extension OptimizedVoiceCache {
    /// The header of an entry held in memory, and how many bytes its stamp takes (for tests).
    static func readEntryHeader(_ file: Data) -> (header: Header, stampLength: Int)? {
        guard let length = ModelStamp.length(fromPrefix: Array(file.prefix(ModelStamp.prefixLength))),
              let (_, value) = ModelStamp.decode(Array(file.prefix(length)))
        else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let header = try? decoder.decode(Header.self, from: Data(value)) else { return nil }
        return (header, length)
    }
}

/// Two processes that optimize the same voice into one cache directory at the same time leave
/// one valid entry and no temporary file, and the next process loads it without building.
@Suite struct OptimizedVoiceCacheProcessTests {
    @Test func twoProcessesLoadingOneVoiceBuildItOnce() async throws {
        let directory = OptimizedVoiceCacheTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["voices", "optimize", "en_US-joe-medium", "--cache-dir", directory]
        // Each on a thread of its own: tasks could wait for a cooperative thread (two on two
        // cores) that another suite's blocking call holds, and start one after the other.
        let finished = Mutex<[Result<ProcessResult, any Error>]>([])
        let threads = (0..<2).map { _ in
            Thread {
                let result = Result { try runProcess(Checkout.larkBinary, arguments) }
                finished.withLock { $0.append(result) }
            }
        }
        threads.forEach { $0.start() }
        while finished.withLock({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(100)) }
        let results = try finished.withLock { $0 }.map { try $0.get() }
        for result in results {
            #expect(result.status == 0, "\(result.stderr)")
        }
        // One optimized the voice; the other waited for it and loaded its entry (a build takes
        // tens of seconds, so the second starts while the first still holds the lock).
        let said = results.map(\.stderr)
        #expect(said.filter { $0.contains("lark: optimizing voice en_US-joe-medium") }.count == 1, "\(said)")
        #expect(said.filter { $0.contains("waiting for another process") }.count == 1, "\(said)")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let files = names.filter { $0 != "models.json" && !$0.hasSuffix(".lock") }
        #expect(files.count == 1 && files[0].hasSuffix(".onnx"), "\(names)")
        #expect(names.contains("." + files[0].dropLast(".onnx".count) + ".lock"), "the build lock lies beside its entry: \(names)")

        let listed = try runProcess(Checkout.larkBinary, ["voices", "cache", "--json", "--cache-dir", directory])
        let entries = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]])
        #expect(entries.count == 1 && entries[0]["problem"] == nil && entries[0]["voice"] as? String == "en_US-joe-medium")

        // A rebuilt entry would be a new file (written beside it, then renamed over it).
        let entry = directory + "/" + files[0]
        let inode = try FileManager.default.attributesOfItem(atPath: entry)[.systemFileNumber] as? Int
        let again = try runProcess(Checkout.larkBinary, arguments)
        #expect(again.status == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: entry)[.systemFileNumber] as? Int == inode,
                "a valid entry is used, not rebuilt")

        let cleared = try runProcess(Checkout.larkBinary, ["voices", "cache", "--clear", "--cache-dir", directory])
        #expect(cleared.status == 0 && String(decoding: cleared.stdout, as: UTF8.self).contains("removed 3 files"),
                "the entry, its build lock and the remembered model hash")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}
