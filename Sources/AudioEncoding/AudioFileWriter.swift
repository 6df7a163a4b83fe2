import CLarkFFmpeg
#if canImport(Glibc)
import Glibc
#endif

/// A file could not be written (no such directory, no permission, a full disk): a fault of the
/// machine, not of the audio settings, so the same work may succeed when tried again.
public struct AudioFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    /// The file system was full (or the user's quota spent): freeing space lets the same work succeed.
    public var outOfSpace: Bool

    public init(path: String, reason: String, outOfSpace: Bool = false) {
        self.path = path
        self.reason = reason
        self.outOfSpace = outOfSpace
    }

    public var description: String { "cannot write \(path): \(reason)" }
}

/// Writes one audio file at `path` as the samples come, sentence by sentence: the encoder
/// writes straight into the file, so no part of it waits in memory, however long the audio.
/// The file is seekable, so containers that know their sizes only at the end get them exactly:
/// WAV's lengths, FLAC's STREAMINFO (sample count, MD5), MP3's Xing/LAME frame (frame count,
/// seek table, encoder delay and padding).
///
/// The file is complete only once `finish()` returns; until then, and after an error, it holds
/// part of the audio. Write it where readers do not look, and move it into place afterwards.
/// One writer serves one file, from one task at a time.
public final class AudioFileWriter {
    public let output: AudioOutput
    private let file: any AudioFileOutput
    private let encoder: any AudioEncoder
    private var finished = false

    /// Creates (or truncates) the file at `path` for `output`, fed samples at `inputRate`.
    /// Throws `AudioOutputError` for settings the codec refuses, `AudioFileError` when the file
    /// cannot be created.
    public init(output: AudioOutput, inputRate: Int, path: String) throws {
        self.output = output
        switch output.format {
        case .wav, .pcm:
            // The samples follow a header of unknown length, which `finish()` rewrites; written
            // with the system's calls, so that WAV never loads FFmpeg (`lark_ffmpeg.h`).
            file = try PlainFileOutput(path: path)
            encoder = try PCMEncoder(output: output, inputRate: inputRate, streaming: true)
        default:
            let file = try FileOutput(path: path)
            self.file = file
            encoder = try FFmpegEncoder(output: output, inputRate: inputRate, file: file)
        }
    }

    /// Encodes one sentence's 16-bit mono samples into the file. Throws `AudioFileError` when
    /// the file cannot be written, `AudioOutputError` when encoding fails.
    public func write(_ samples: [Int16]) throws {
        try checked { try file.write(encoder.encode(samples)) }
    }

    /// Flushes the codec, writes the container's trailer and its exact header, and closes the
    /// file. Returns the file's size in bytes.
    public func finish() throws -> Int {
        guard !finished else { return try file.size() }
        finished = true
        try checked {
            try file.write(encoder.finish())
            if output.format == .wav {
                let size = try file.size()
                try file.seek(to: 0)
                try file.write(WAV.header(sampleRate: output.sampleRate, sampleCount: (size - 44) / 2))
            }
        }
        return try file.close()
    }

    /// Runs `body`, reporting a failed write as the file's error rather than as the encoder's
    /// (libavformat turns a write error into a failure of the packet it was writing).
    private func checked(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as AudioOutputError {
            try file.check()
            throw error
        }
    }
}

/// A file being written, seekable: what `AudioFileWriter` writes through.
protocol AudioFileOutput: AnyObject {
    func write(_ bytes: [UInt8]) throws(AudioFileError)
    func seek(to offset: Int64) throws(AudioFileError)
    /// Throws the error a write met, if any.
    func check() throws(AudioFileError)
    /// Everything written so far, in bytes.
    func size() throws(AudioFileError) -> Int
    /// Flushes and closes the file; returns its size.
    func close() throws(AudioFileError) -> Int
}

/// A file written with the system's calls (`open`, `write`, `lseek`): WAV and raw PCM, which need
/// nothing of FFmpeg. The one owner of its descriptor, which `close()` or `deinit` closes.
final class PlainFileOutput: AudioFileOutput {
    let path: String
    private var descriptor: Int32
    private var written = 0, position = 0
    private var closedSize: Int?

    init(path: String) throws(AudioFileError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw Self.failure(path, errno) }
    }

    deinit {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
    }

    func write(_ bytes: [UInt8]) throws(AudioFileError) {
        guard !bytes.isEmpty, descriptor >= 0 else { return }
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure(path, errno)
            }
            done += count
        }
        position += done
        written = max(written, position)
    }

    func seek(to offset: Int64) throws(AudioFileError) {
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else { throw Self.failure(path, errno) }
        position = Int(offset)
    }

    /// Every write is checked as it is made.
    func check() throws(AudioFileError) {}

    func size() throws(AudioFileError) -> Int { closedSize ?? written }

    func close() throws(AudioFileError) -> Int {
        if let closedSize { return closedSize }
        let size = written
        let status = Glibc.close(descriptor)
        descriptor = -1
        // (close reports a delayed write error, e.g. a quota reached on a network file system)
        guard status == 0 else { throw Self.failure(path, errno) }
        closedSize = size
        return size
    }

    private static func failure(_ path: String, _ code: Int32) -> AudioFileError {
        AudioFileError(path: path, reason: String(cString: strerror(code)), outOfSpace: code == ENOSPC || code == EDQUOT)
    }
}

/// A file opened for writing through libavformat's own file I/O (buffered and seekable): the one
/// owner of its `AVIOContext`, which `close()` or `deinit` closes.
final class FileOutput: AudioFileOutput {
    let path: String
    private(set) var context: UnsafeMutablePointer<AVIOContext>?
    /// The size when closed.
    private var closedSize: Int?

    init(path: String) throws(AudioFileError) {
        self.path = path
        guard FFmpegLibraries.available else { throw AudioFileError(path: path, reason: FFmpegLibraries.problem) }
        // The `file:` prefix keeps any part of the path from being read as another protocol.
        let status = ffmpeg.avio_open(&context, "file:" + path, AVIO_FLAG_WRITE)
        guard status >= 0, context != nil else {
            throw AudioFileError(path: path, reason: FFmpegStatus.describe(status), outOfSpace: status == -ENOSPC || status == -EDQUOT)
        }
    }

    deinit {
        if context != nil { _ = ffmpeg.avio_closep(&context) }
    }

    func write(_ bytes: [UInt8]) throws(AudioFileError) {
        guard !bytes.isEmpty, let context else { return }
        bytes.withUnsafeBufferPointer { ffmpeg.avio_write(context, $0.baseAddress, Int32($0.count)) }
        try check()
    }

    func seek(to offset: Int64) throws(AudioFileError) {
        let position = ffmpeg.avio_seek(context, offset, SEEK_SET)
        guard position >= 0 else { throw failure(Int32(truncatingIfNeeded: position)) }
    }

    /// Throws the error a write met, if any (libavformat keeps it in the context).
    func check() throws(AudioFileError) {
        if let context, context.pointee.error < 0 { throw failure(context.pointee.error) }
    }

    /// Everything written so far, in bytes (buffered bytes flushed first).
    func size() throws(AudioFileError) -> Int {
        if let closedSize { return closedSize }
        ffmpeg.avio_flush(context)
        try check()
        let size = ffmpeg.avio_size(context)
        guard size >= 0 else { throw failure(Int32(truncatingIfNeeded: size)) }
        return Int(size)
    }

    /// Flushes and closes the file; returns its size.
    func close() throws(AudioFileError) -> Int {
        let size = try size()
        guard context != nil else { return size }
        let status = ffmpeg.avio_closep(&context)
        guard status >= 0 else { throw failure(status) }
        closedSize = size
        return size
    }

    private func failure(_ status: Int32) -> AudioFileError {
        // FFmpeg's errors are negated errno values (`AVERROR(e)`).
        AudioFileError(path: path, reason: FFmpegStatus.describe(status), outOfSpace: status == -ENOSPC || status == -EDQUOT)
    }
}

/// FFmpeg's status codes in words.
enum FFmpegStatus {
    static func describe(_ status: Int32) -> String {
        var text = [CChar](repeating: 0, count: 128)
        _ = ffmpeg.av_strerror(status, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// FFmpeg's functions, from its libraries loaded at the first call (`lark_ffmpeg.h`). Every entry
/// point into FFmpeg (an encoder, a resampler, a file through libavformat) checks
/// `FFmpegLibraries.available` first, so `ffmpeg` itself is only read once they are loaded. A
/// global constant, set on its first read: a call reads one field of it, where a computed
/// property would load the table and copy all of it for every call.
let ffmpeg: LarkFFmpeg = lark_ffmpeg()!.pointee

enum FFmpegLibraries {
    /// Loads the libraries (the first time); false when they cannot be loaded.
    static var available: Bool { lark_ffmpeg() != nil }
    /// Why they could not be loaded.
    static var problem: String { String(cString: lark_ffmpeg_error()) }
}
