import Foundation
import VoiceCatalog

/// Shows download progress on standard error: a bar redrawn in place on a terminal, plain
/// lines (start, every 10%, done) otherwise, so logs stay readable.
/// `@unchecked Sendable`: the handler is called from the HTTP client's tasks; every mutable
/// field is read and written under `lock`.
final class ProgressPrinter: @unchecked Sendable {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var lastDraw: ContinuousClock.Instant?
    private var lastTenth: [String: Int] = [:]

    var handler: DownloadProgressHandler {
        { [self] progress in lock.withLock { report(progress) } }
    }

    private func report(_ progress: DownloadProgress) {
        let percent = progress.total > 0 ? Int(progress.received * 100 / progress.total) : 100
        let sizes = "\(Self.size(progress.received)) of \(Self.size(progress.total))"
        if isTerminal {
            let now = ContinuousClock.now
            if !progress.finished, let lastDraw, lastDraw.duration(to: now) < .milliseconds(100) { return }
            lastDraw = now
            let width = 30
            let filled = min(width, percent * width / 100)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            write("\r\u{1B}[K\(progress.file) [\(bar)] \(percent)% \(sizes)" + (progress.finished ? " verified\n" : ""))
            return
        }
        let tenth = percent / 10
        if lastTenth[progress.file] == nil {
            let resumed = progress.resumedFrom > 0 ? ", resuming at \(Self.size(progress.resumedFrom))" : ""
            write("downloading \(progress.file) (\(Self.size(progress.total))\(resumed))\n")
            lastTenth[progress.file] = tenth
        } else if let last = lastTenth[progress.file], tenth > last, !progress.finished, progress.total >= 1_000_000 {
            write("\(progress.file): \(percent)% (\(sizes))\n")
            lastTenth[progress.file] = tenth
        }
        if progress.finished { write("\(progress.file): done, size and MD5 verified\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// `63.2 MB`, `4.8 kB`.
    static func size(_ bytes: Int64) -> String {
        bytes >= 1_000_000 ? String(format: "%.1f MB", Double(bytes) / 1_000_000) : String(format: "%.1f kB", Double(bytes) / 1_000)
    }
}
