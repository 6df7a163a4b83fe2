import Logging
import NetworkGuards
import NIOCore
import NIOPosix
import ServiceLifecycle
import SpeechService

/// The Wyoming protocol's TCP server (Home Assistant's voice services), a `Service` of the
/// process's one service group. Each connection is a `WyomingSession`; every synthesis goes to
/// the same voice library and scheduler as the HTTP server's. On graceful shutdown it stops
/// accepting connections, lets each connection finish what it was asked, then returns.
public struct WyomingServer: Service {
    public let configuration: WyomingConfiguration
    private let library: VoiceLibrary
    private let scheduler: SynthesisScheduler
    private let metrics: any WyomingMetrics
    private let logger: Logger
    private let group: any EventLoopGroup

    public init(
        configuration: WyomingConfiguration, library: VoiceLibrary, scheduler: SynthesisScheduler,
        metrics: any WyomingMetrics = NoWyomingMetrics(), logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.library = library
        self.scheduler = scheduler
        self.metrics = metrics
        self.logger = logger
        self.group = group
    }

    public func run() async throws {
        let limits = configuration.frameLimits
        let timeout = configuration.writeTimeout.components
        let writeTimeout = TimeAmount.nanoseconds(timeout.seconds * 1_000_000_000 + timeout.attoseconds / 1_000_000_000)
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A client that asks for audio and never reads it must not hold its ticket.
                    try channel.pipeline.syncOperations.addHandler(WriteTimeoutHandler(timeout: writeTimeout))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WyomingFrameDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WyomingFrameEncoder()))
                    return try NIOAsyncChannel<WyomingFrame, WyomingEvent>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("wyoming server listening", metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
        let session = WyomingSession(
            library: library, scheduler: scheduler, configuration: configuration, metrics: metrics, logger: logger)
        try await withGracefulShutdownHandler {
            try await listener.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            group.addTask {
                                do {
                                    try await connection.executeThenClose { inbound, outbound in
                                        // Writes reach the event loop in order: once a task queued
                                        // after them has run there, they are on the socket.
                                        let loop = connection.channel.eventLoop
                                        await session.run(inbound, outbound) { try? await loop.submit {}.get() }
                                    }
                                } catch {
                                    logger.debug("wyoming connection ended", metadata: ["error": "\(error)"])
                                }
                            }
                        }
                    } catch {
                        logger.error("wyoming server stopped accepting connections: \(error)")
                    }
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
        }
    }
}
