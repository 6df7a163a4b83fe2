import Crypto
import Foundation
import OnnxGraph
#if canImport(Glibc)
import Glibc
#endif

/// Piper voices as Lark runs them — rewritten (`ConvolutionRewrite`), optimized by ONNX Runtime
/// for this machine and cleaned (`BlockedLayoutCleanup`) — kept on disk, so that building them
/// (several seconds and a few hundred MB) happens once per machine instead of on every load.
///
/// An entry is one ONNX file that ONNX Runtime loads from its path as it is. Its first field is a
/// `ModelStamp` holding the entry's header: the key it was built for, the length and SHA-256 of
/// the model bytes after the stamp, and the audio that the optimized graph made on a probe before
/// the cleanup (the expected output). Loading an entry checks, in order: the key (everything that
/// makes it valid: the model file's SHA-256, ONNX Runtime's version, the CPU features its blocked
/// layout depends on, the rewrite's version, the session options that shaped the graph), the
/// length (a truncated file), the checksum (a corrupt one), and after the session loads, the probe
/// (a graph that loads but computes something else). An entry that fails any of them is deleted
/// and built again, never used.
///
/// Entries are written to a temporary file in the cache directory, synced, then renamed over the
/// final name: a reader sees no entry or a whole one. Processes that need the same missing entry
/// at once build it once (`whileBuilding`): a build takes a core for tens of seconds on a small
/// machine and times kernels to choose them, so parallel builds would slow each other and skew
/// those timings. Where the lock cannot be taken, each builds and the last rename stays.
public struct OptimizedVoiceCache: Sendable {
    public let directory: String
    /// Told what the cache does (a build starting, an entry refused), for progress lines and logs.
    public let onEvent: @Sendable (Event) -> Void

    public enum Event: Sendable {
        /// No valid entry: the voice is being optimized for this machine (several seconds).
        case building(voice: String)
        /// Another process is building the same entry: this one waits for it.
        case waiting(voice: String)
        case built(voice: String, seconds: Double, path: String)
        /// An entry was found but not used (and deleted), with the reason.
        case rejected(voice: String, reason: String)
        /// The built entry could not be written; the voice still loads, uncached.
        case notWritten(voice: String, reason: String)
    }

    public init(directory: String, onEvent: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.directory = directory
        self.onEvent = onEvent
    }

    /// `$XDG_CACHE_HOME/lark`, else `~/.cache/lark`, from the environment given.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/lark" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/lark"
    }

    /// Everything an entry is valid for. Any difference means another entry.
    struct Key: Codable, Equatable, Sendable {
        var modelSHA256: String
        var onnxRuntime: String
        /// The CPU's vector features that ONNX Runtime's blocked layout and kernels depend on.
        var cpu: String
        var rewrite: String
        /// The session options the optimized graph was made with.
        var session: String

        var digest: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let bytes = (try? encoder.encode(self)) ?? Data()
            return SHA256.hash(data: bytes).prefix(8).map { String(format: "%02x", $0) }.joined()
        }
    }

    struct Header: Codable, Sendable {
        static let stampKey = "lark.optimized-voice"
        var key: Key
        var voice: String
        var modelBytes: Int
        var modelSHA256: String
        /// The optimized graph's audio on `ProbeInput` before the cleanup.
        var probe: [Float]
        var restatedConvolutions: Int
        /// Which convolution shapes run on Lark's direct kernel on this CPU, with the timings that decided it.
        var directConvolutions: [DirectConvolutionDecision]?
        /// Which HiFi-GAN levels run as one fused node on this CPU, with the timings that decided it.
        var residualStacks: [ResidualStackDecision]?
        var created: Date
    }

    /// An entry's file and header; `stampLength` is where the model bytes start.
    struct Entry: Sendable {
        var path: String
        var header: Header
        var stampLength: Int
    }

    func key(forModelAt path: String, onnxRuntime: String, session: String) throws -> Key {
        Key(
            modelSHA256: try modelHash(path), onnxRuntime: onnxRuntime, cpu: Self.cpuFeatures,
            rewrite: ConvolutionRewrite.version, session: session)
    }

    /// What identifies one version of a model file without reading it: its device and inode,
    /// size, and modification and change times (the change time cannot be set by hand, and any
    /// write moves it).
    struct Fingerprint: Codable, Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var changed: Int64
        var sha256: String
    }

    /// The model file's SHA-256, remembered in `models.json` by the file's fingerprint so that a
    /// load of an unchanged file does not read its 60 MB again (about a tenth of a cached load).
    /// Whenever it is written, files that no longer exist are forgotten: voices loaded from
    /// temporary paths (downloads, tests) would otherwise stay in it for good.
    func modelHash(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Problem(reason: "cannot read \(path)") }
        func fingerprint(_ sha256: String) -> Fingerprint {
            Fingerprint(
                device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec), sha256: sha256)
        }
        let memoPath = directory + "/models.json"
        var memo = (FileManager.default.contents(atPath: memoPath)).flatMap { try? JSONDecoder().decode([String: Fingerprint].self, from: $0) } ?? [:]
        if let known = memo[path], known == fingerprint(known.sha256) { return known.sha256 }
        let digest = try Self.sha256(ofFileAt: path)
        memo = memo.filter { FileManager.default.fileExists(atPath: $0.key) }
        memo[path] = fingerprint(digest)
        if let data = try? JSONEncoder().encode(memo) {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? Self.writeAtomically([Array(data)], to: memoPath, in: directory)
        }
        return digest
    }

    func path(for key: Key, voice: String) -> String {
        directory + "/" + Self.safeName(voice) + "." + key.digest + ".onnx"
    }

    /// The entry for `key`, checked for length and checksum; nil when there is none. A file that
    /// fails a check is deleted, and `onEvent` is told why.
    func entry(for key: Key, voice: String) -> Entry? {
        guard let entry = header(for: key, voice: voice) else { return nil }
        return verify(entry) ? entry : nil
    }

    /// The entry for `key`, its header and length checked but not yet its checksum (`verify`,
    /// which reads the whole file, can then run beside the session's load).
    func header(for key: Key, voice: String) -> Entry? {
        let path = path(for: key, voice: voice)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        switch Self.readHeader(at: path) {
        case .success(let entry) where entry.header.key == key:
            return entry
        case .success:
            reject(path: path, voice: voice, reason: "it was built for another model, runtime or CPU")
        case .failure(let problem):
            reject(path: path, voice: voice, reason: problem.reason)
        }
        return nil
    }

    /// Whether the entry's model bytes have the checksum its header gives; a damaged entry is
    /// deleted, and `onEvent` is told.
    func verify(_ entry: Entry) -> Bool {
        guard Self.checksumMatches(entry) else {
            reject(path: entry.path, voice: entry.header.voice, reason: "its checksum does not match (a damaged file)")
            return false
        }
        return true
    }

    /// Deletes an entry that failed a check after loading (its probe), telling `onEvent`.
    func reject(path: String, voice: String, reason: String) {
        unlink(path)
        onEvent(.rejected(voice: voice, reason: reason))
    }

    /// Writes an entry for `model` (the cleaned model's bytes) atomically. Failures are reported
    /// through `onEvent` only: the voice works without its entry.
    func store(
        model: [UInt8], key: Key, voice: String, probe: [Float], restatedConvolutions: Int,
        directConvolutions: [DirectConvolutionDecision] = [], residualStacks: [ResidualStackDecision] = [], buildSeconds: Double
    ) {
        let header = Header(
            key: key, voice: voice, modelBytes: model.count, modelSHA256: Self.hex(SHA256.hash(data: model)), probe: probe,
            restatedConvolutions: restatedConvolutions, directConvolutions: directConvolutions, residualStacks: residualStacks,
            created: Date())
        let final = path(for: key, voice: voice)
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            let stamp = ModelStamp.encode(key: Header.stampKey, value: Array(try encoder.encode(header)))
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Self.writeAtomically([stamp, model], to: final, in: directory)
            onEvent(.built(voice: voice, seconds: buildSeconds, path: final))
        } catch {
            onEvent(.notWritten(voice: voice, reason: "\(final): \(error)"))
        }
    }

    /// Runs `body` (a build of the entry for `key`) holding that entry's build lock: an exclusive
    /// `flock` on a hidden file beside the entry, which the kernel releases when the holder exits
    /// or dies. A process that finds it held tells `onEvent` and waits; `body` should then look for
    /// the entry again before building. Where the lock file cannot be opened (a read-only cache
    /// directory), `body` runs unlocked.
    func whileBuilding<T, E: Error>(key: Key, voice: String, _ body: () throws(E) -> T) throws(E) -> T {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let descriptor = open(lockPath(for: key, voice: voice), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return try body() }
        defer { close(descriptor) }  // releases the lock
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            onEvent(.waiting(voice: voice))
            while flock(descriptor, LOCK_EX) != 0, errno == EINTR {}
        }
        return try body()
    }

    func lockPath(for key: Key, voice: String) -> String {
        directory + "/." + Self.safeName(voice) + "." + key.digest + ".lock"
    }

    // MARK: - Listing and clearing

    /// One file in the cache directory, for `lark voices cache`.
    public struct Listing: Sendable, Encodable {
        public var file: String
        public var voice: String?
        public var bytes: Int
        public var created: Date?
        /// Why the entry would not be used here, or nil when it is valid for this machine and runtime.
        public var problem: String?
    }

    /// Every entry in the directory, checked (length and checksum) against this machine's CPU,
    /// this runtime (`onnxRuntime`) and this rewrite version; the model's own hash is not checked.
    public func listing(onnxRuntime: String) -> [Listing] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".onnx") && !$0.hasPrefix(".") }.sorted().map { name in
            let path = directory + "/" + name
            let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            switch Self.checkedEntry(at: path) {
            case .failure(let problem):
                return Listing(file: path, voice: nil, bytes: bytes, created: nil, problem: problem.reason)
            case .success(let entry):
                return Listing(
                    file: path, voice: entry.header.voice, bytes: bytes, created: entry.header.created,
                    problem: Unused(entry.header.key, onnxRuntime: onnxRuntime)?.reason)
            }
        }
    }

    /// Why an intact entry is not used by this build on this machine.
    private enum Unused {
        case otherRuntime(String), otherCPU, otherRewrite

        init?(_ key: Key, onnxRuntime: String) {
            if key.onnxRuntime != onnxRuntime { self = .otherRuntime(key.onnxRuntime) }
            else if key.cpu != OptimizedVoiceCache.cpuFeatures { self = .otherCPU }
            else if key.rewrite != ConvolutionRewrite.version { self = .otherRewrite }
            else { return nil }
        }

        var reason: String {
            switch self {
            case .otherRuntime(let version): "built for ONNX Runtime \(version)"
            case .otherCPU: "built for another CPU"
            case .otherRewrite: "built by another version of Lark's rewrite"
            }
        }
    }

    /// The entry at `path` with its stamp, length and checksum checked.
    private static func checkedEntry(at path: String) -> Result<Entry, Problem> {
        readHeader(at: path).flatMap { entry in
            checksumMatches(entry) ? .success(entry) : .failure(Problem(reason: "its checksum does not match (a damaged file)"))
        }
    }

    /// Deletes the entries this build would never use here: built by another version of Lark's
    /// rewrite or another ONNX Runtime (each upgrade leaves one such file per voice, 60–90 MB),
    /// damaged or unreadable ones, and leftover temporary files. Entries built for another CPU
    /// stay: a cache directory may be shared by machines. Answers how many files and bytes went.
    @discardableResult
    public func prune(onnxRuntime: String) throws -> (files: Int, bytes: Int) {
        guard FileManager.default.fileExists(atPath: directory) else { return (0, 0) }
        var removed = (files: 0, bytes: 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        for name in names where name.hasSuffix(".onnx") || name.hasSuffix(".tmp") {
            let path = directory + "/" + name
            // Kept: an intact entry this build uses, or one for another CPU.
            if name.hasSuffix(".onnx"), case .success(let entry) = Self.checkedEntry(at: path) {
                switch Unused(entry.header.key, onnxRuntime: onnxRuntime) {
                case nil, .otherCPU: continue
                case .otherRuntime, .otherRewrite: break
                }
            }
            try remove(path, counting: &removed)
        }
        // A build lock whose entry is gone, unless a build holds it now.
        for name in names where name.hasPrefix(".") && name.hasSuffix(".lock") {
            let entry = directory + "/" + name.dropFirst().dropLast(".lock".count) + ".onnx"
            guard !FileManager.default.fileExists(atPath: entry), !Self.isHeld(lock: directory + "/" + name) else { continue }
            try remove(directory + "/" + name, counting: &removed)
        }
        return removed
    }

    /// Whether another process holds the build lock at `path` now.
    private static func isHeld(lock path: String) -> Bool {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return flock(descriptor, LOCK_EX | LOCK_NB) != 0
    }

    private func remove(_ path: String, counting removed: inout (files: Int, bytes: Int)) throws {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try FileManager.default.removeItem(atPath: path)
        removed.files += 1
        removed.bytes += bytes
    }

    /// Deletes every entry, leftover temporary file, build lock and remembered model hash; answers how many files went.
    @discardableResult
    public func clear() throws -> Int {
        guard FileManager.default.fileExists(atPath: directory) else { return 0 }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        var removed = 0
        for name in names where name.hasSuffix(".onnx") || name.hasSuffix(".tmp") || name.hasSuffix(".lock") || name == "models.json" {
            try FileManager.default.removeItem(atPath: directory + "/" + name)
            removed += 1
        }
        return removed
    }

    // MARK: - Files

    struct Problem: Error {
        var reason: String
    }

    /// Reads and checks an entry's stamp and length.
    static func readHeader(at path: String) -> Result<Entry, Problem> {
        guard let handle = FileHandle(forReadingAtPath: path) else { return .failure(Problem(reason: "it cannot be read")) }
        defer { try? handle.close() }
        guard let prefix = try? handle.read(upToCount: ModelStamp.prefixLength), let stampLength = ModelStamp.length(fromPrefix: Array(prefix)),
              stampLength < 64 << 20
        else { return .failure(Problem(reason: "it has no header")) }
        guard (try? handle.seek(toOffset: 0)) != nil, let stampBytes = try? handle.read(upToCount: stampLength),
              stampBytes.count == stampLength, let (stampKey, value) = ModelStamp.decode(Array(stampBytes)),
              stampKey == Header.stampKey
        else { return .failure(Problem(reason: "its header is truncated or damaged")) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let header = try? decoder.decode(Header.self, from: Data(value)) else {
            return .failure(Problem(reason: "its header is not one this version reads"))
        }
        guard let size = try? handle.seekToEnd(), Int(size) == stampLength + header.modelBytes else {
            return .failure(Problem(reason: "it is truncated or has extra bytes"))
        }
        return .success(Entry(path: path, header: header, stampLength: stampLength))
    }

    /// Hashes the entry's model bytes, read in pieces, never held whole (the session loads them
    /// from the path), against its header.
    static func checksumMatches(_ entry: Entry) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: entry.path) else { return false }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(entry.stampLength))) != nil, let digest = try? sha256(of: handle) else { return false }
        return digest == entry.header.modelSHA256
    }

    static func sha256(ofFileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Problem(reason: "cannot read \(path)") }
        defer { try? handle.close() }
        return try sha256(of: handle)
    }

    /// Hashes from the handle's position to the end, 4 MiB at a time (resident memory stays flat).
    private static func sha256(of handle: FileHandle) throws -> String {
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Writes `parts` to a unique temporary file beside `path`, syncs it, renames it over `path`
    /// and syncs the directory, so the entry survives a crash whole or not at all.
    private static func writeAtomically(_ parts: [[UInt8]], to path: String, in directory: String) throws {
        let temporary = directory + "/." + (path as NSString).lastPathComponent + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Problem(reason: String(cString: strerror(errno))) }
        var closed = false
        defer {
            if !closed { close(descriptor) }
        }
        do {
            for part in parts {
                try part.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw Problem(reason: String(cString: strerror(errno)))
                        }
                        offset += written
                    }
                }
            }
            guard fsync(descriptor) == 0 else { throw Problem(reason: String(cString: strerror(errno))) }
            closed = true
            guard close(descriptor) == 0 else { throw Problem(reason: String(cString: strerror(errno))) }
            guard rename(temporary, path) == 0 else { throw Problem(reason: String(cString: strerror(errno))) }
        } catch {
            unlink(temporary)
            throw error
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// A voice name as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
    private static func safeName(_ voice: String) -> String {
        String(voice.unicodeScalars.map { scalar -> Character in
            let allowed = (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-_.".unicodeScalars.contains(scalar)))
            return allowed ? Character(scalar) : "_"
        }).prefix(80).description
    }

    /// The x86 and Arm vector features that decide ONNX Runtime's CPU kernels and the blocked
    /// layout's block size, from `/proc/cpuinfo`, with the machine's architecture and the CPU's
    /// vendor, family and model (x86) or implementer and part (Arm): which convolutions run on
    /// Lark's kernels is decided by timing them, and two CPUs with the same features can decide
    /// differently (a Zen 1 splits every 256-bit operation in two, a Zen 3 does not). Two
    /// machines with the same string run the same optimized graph.
    static let cpuFeatures: String = {
        var system = utsname()
        uname(&system)
        let machine = withUnsafeBytes(of: &system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let relevant: Set<String> = [
            "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq",
            "avx512vl", "avx512_vnni", "avx512vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
            "amx_int8", "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm", "fphp", "asimdhp",
        ]
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let lines = cpuinfo.split(separator: "\n")
        let line = lines.first { $0.hasPrefix("flags") || $0.hasPrefix("Features") }
        let features = line.map { $0.split(separator: ":", maxSplits: 1).last ?? "" }?
            .split(separator: " ").map(String.init).filter(relevant.contains).sorted() ?? []
        // The first processor's identity fields, in this order, present or not.
        let identity = ["vendor_id", "cpu family", "model", "CPU implementer", "CPU part"].compactMap { field in
            lines.first { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == field }
                .map { $0.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "" }
        }
        return ([machine, identity.joined(separator: "/")] + features).joined(separator: " ")
    }()
}
