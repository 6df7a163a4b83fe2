/// How far one file's download has come, for a progress bar or a log line.
public struct DownloadProgress: Sendable, Equatable {
    /// The local file name being written (`en_US-joe-medium.onnx`).
    public var file: String
    /// Bytes on disk so far, including what an earlier, interrupted transfer left.
    public var received: Int64
    /// The file's size according to the catalog.
    public var total: Int64
    /// Bytes kept from an interrupted transfer (0 for a fresh one).
    public var resumedFrom: Int64
    /// True once, when the file is complete and verified.
    public var finished: Bool

    public init(file: String, received: Int64, total: Int64, resumedFrom: Int64 = 0, finished: Bool = false) {
        self.file = file
        self.received = received
        self.total = total
        self.resumedFrom = resumedFrom
        self.finished = finished
    }
}

/// Called as bytes arrive (often: throttle before drawing). Must not block.
public typealias DownloadProgressHandler = @Sendable (DownloadProgress) -> Void
