import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Advertises the Wyoming server on the local network as `_wyoming._tcp` (what Home Assistant
/// discovers, as wyoming-piper's `--zeroconf` does), through the system's Avahi daemon: an
/// `avahi-publish` child holds the advertisement for as long as the server runs. Without Avahi
/// (no `avahi-publish`, no daemon) the server still runs; the log says why it is not advertised.
public struct ZeroconfAdvertisement: Service {
    public let name: String
    public let port: Int
    private let logger: Logger
    private let executable: String

    public init(name: String, port: Int, logger: Logger, executable: String = "/usr/bin/avahi-publish") {
        self.name = name
        self.port = port
        self.logger = logger
        self.executable = executable
    }

    /// The service type Home Assistant's Wyoming integration browses for.
    public static let serviceType = "_wyoming._tcp"

    public func run() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-s", name, Self.serviceType, String(port)]
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        let (exited, exit) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exit.finish() }
        do {
            try process.run()
        } catch {
            logger.warning("zeroconf: not advertised: \(executable) did not start (\(error)); install avahi-utils and run avahi-daemon")
            try? await gracefulShutdown()
            return
        }
        logger.info("zeroconf: advertising \(Self.serviceType) '\(name)' on port \(port) through Avahi")
        let stopping = Atomic<Bool>(false)
        // SIGKILL: the child inherits the server's ignored SIGTERM and SIGINT (the service group
        // handles those), and Avahi withdraws a client's services when it disconnects anyway.
        let stop = { @Sendable in
            stopping.store(true, ordering: .relaxed)
            kill(process.processIdentifier, SIGKILL)
        }
        // Until the group shuts down (or tears down), or the child ends on its own.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for await _ in exited {}
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        process.waitUntilExit()
        guard !stopping.load(ordering: .relaxed) else { return }
        let why = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        logger.warning("zeroconf: the advertisement ended: \(why.isEmpty ? "avahi-publish exited" : why); is avahi-daemon running?")
        // The servers go on without it.
        try? await gracefulShutdown()
    }
}
