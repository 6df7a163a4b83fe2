import Foundation
import PiperEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which version of a Piper voice's files is on disk, read without opening them: each file's
/// device, inode, size, and modification and change times. A file replaced (renamed over, or
/// written again in place) has another stamp, so a loaded voice can tell that its files changed
/// under it with two `stat` calls per request.
struct VoiceFileStamp: Equatable, Sendable {
    struct File: Equatable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var changed: Int64
    }

    var model: File
    /// Nil when the config cannot be read (the load then says why).
    var config: File?

    /// The stamp of `source`'s files, or nil when the model file is gone.
    init?(_ source: PiperVoiceSource) {
        guard let model = Self.file(source.modelPath) else { return nil }
        self.model = model
        config = Self.file(source.configPath)
    }

    private static func file(_ path: String) -> File? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return File(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
            changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
    }
}
