import CFFmpeg

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
    private let file: FileOutput
    private let encoder: any AudioEncoder
    private var finished = false

    /// Creates (or truncates) the file at `path` for `output`, fed samples at `inputRate`.
    /// Throws `AudioOutputError` for settings the codec refuses, `AudioFileError` when the file
    /// cannot be created.
    public init(output: AudioOutput, inputRate: Int, path: String) throws {
        self.output = output
        file = try FileOutput(path: path)
        switch output.format {
        case .wav, .pcm:
            // The samples follow a header of unknown length, which `finish()` rewrites.
            encoder = try PCMEncoder(output: output, inputRate: inputRate, streaming: true)
        default:
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

/// A file opened for writing through libavformat's own file I/O (buffered and seekable): the one
/// owner of its `AVIOContext`, which `close()` or `deinit` closes.
final class FileOutput {
    let path: String
    private(set) var context: UnsafeMutablePointer<AVIOContext>?
    /// The size when closed.
    private var closedSize: Int?

    init(path: String) throws(AudioFileError) {
        self.path = path
        // The `file:` prefix keeps any part of the path from being read as another protocol.
        let status = avio_open(&context, "file:" + path, AVIO_FLAG_WRITE)
        guard status >= 0, context != nil else {
            throw AudioFileError(path: path, reason: FFmpegStatus.describe(status), outOfSpace: status == -ENOSPC || status == -EDQUOT)
        }
    }

    deinit {
        avio_closep(&context)
    }

    func write(_ bytes: [UInt8]) throws(AudioFileError) {
        guard !bytes.isEmpty, let context else { return }
        bytes.withUnsafeBufferPointer { avio_write(context, $0.baseAddress, Int32($0.count)) }
        try check()
    }

    func seek(to offset: Int64) throws(AudioFileError) {
        let position = avio_seek(context, offset, SEEK_SET)
        guard position >= 0 else { throw failure(Int32(truncatingIfNeeded: position)) }
    }

    /// Throws the error a write met, if any (libavformat keeps it in the context).
    func check() throws(AudioFileError) {
        if let context, context.pointee.error < 0 { throw failure(context.pointee.error) }
    }

    /// Everything written so far, in bytes (buffered bytes flushed first).
    func size() throws(AudioFileError) -> Int {
        if let closedSize { return closedSize }
        avio_flush(context)
        try check()
        let size = avio_size(context)
        guard size >= 0 else { throw failure(Int32(truncatingIfNeeded: size)) }
        return Int(size)
    }

    /// Flushes and closes the file; returns its size.
    func close() throws(AudioFileError) -> Int {
        let size = try size()
        guard context != nil else { return size }
        let status = avio_closep(&context)
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
        av_strerror(status, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
