import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// POSTs a finished job's JSON to its `callback_url`, retrying (1 s, 2 s, 4 s…) until the
/// receiver answers 2xx or the attempts are spent. A service: `enqueue` hands it a callback and
/// returns at once; `run` sends each in a task of its own until graceful shutdown, then sends
/// what was already handed over, one attempt each (no retries), and closes its HTTP client.
/// Delivery is best effort: a callback not delivered by then is not sent again (the job itself
/// is safe in the store).
public final class CallbackNotifier: Service {
    private struct Delivery: Sendable {
        var body: Data
        var url: String
        var jobID: String
    }

    private let client: HTTPClient
    private let attempts: Int
    private let logger: Logger
    private let deliveries: AsyncStream<Delivery>
    private let pending: AsyncStream<Delivery>.Continuation

    public init(attempts: Int = 4, logger: Logger) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.attempts = max(1, attempts)
        self.logger = logger
        (deliveries, pending) = AsyncStream.makeStream(of: Delivery.self)
    }

    /// Queues `body` for `url`; it is sent while the service runs.
    public func enqueue(_ body: Data, to url: String, jobID: String) {
        if case .terminated = pending.yield(Delivery(body: body, url: url, jobID: jobID)) {
            logger.warning("callback not sent: shutting down", metadata: ["job": "\(jobID)"])
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await delivery in deliveries {
                    group.addTask { await self.send(delivery.body, to: delivery.url, jobID: delivery.jobID) }
                }
            }
        } onGracefulShutdown: {
            // No new callbacks; those already queued are still sent.
            self.pending.finish()
        }
        try await client.shutdown()
    }

    /// Whether `text` is a URL a callback can go to: absolute http(s) with a host.
    public static func isValid(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty
        else { return false }
        return true
    }

    /// Sends `body` to `url`; returns whether a 2xx answer came back.
    @discardableResult
    func send(_ body: Data, to url: String, jobID: String) async -> Bool {
        for attempt in 1...attempts {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "lark-jobs")
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await client.execute(request, timeout: .seconds(15))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) {
                    logger.info("callback delivered", metadata: ["job": "\(jobID)", "status": "\(response.status.code)"])
                    return true
                }
                logger.warning("callback refused", metadata: ["job": "\(jobID)", "status": "\(response.status.code)", "attempt": "\(attempt)"])
            } catch {
                logger.warning("callback failed", metadata: ["job": "\(jobID)", "error": "\(error)", "attempt": "\(attempt)"])
            }
            guard attempt < attempts, !Task.isShuttingDownGracefully else { break }
            // The wait ends early at graceful shutdown, and then there is no further attempt.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1 << (attempt - 1))) }
            if Task.isShuttingDownGracefully { break }
        }
        return false
    }
}
