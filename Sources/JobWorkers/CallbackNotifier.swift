import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SpeechJobs

/// POSTs a finished job's JSON to its `callback_url`, retrying (1 s, 2 s, 4 s…) until the
/// receiver answers 2xx or the attempts are spent; each attempt is checked by the
/// `CallbackPolicy` first, and how it went is recorded on the job (`Job.callback`). A service:
/// `enqueue` hands it a callback and returns at once; `run` sends each in a task of its own
/// until graceful shutdown, then sends what was already handed over, one attempt each (no
/// retries).
/// Delivery is best effort: a callback not delivered by then is not sent again (the job itself
/// is safe in the store).
public final class CallbackNotifier: Service {
    private struct Delivery: Sendable {
        var body: Data
        var url: String
        var jobID: String
    }

    private let policy: CallbackPolicy
    /// Where each callback's status, attempts and last error are recorded (nil: nowhere).
    private let store: (any JobStore)?
    private let attempts: Int
    private let logger: Logger
    private let deliveries: AsyncStream<Delivery>
    private let pending: AsyncStream<Delivery>.Continuation

    public init(policy: CallbackPolicy, store: (any JobStore)?, attempts: Int = 4, logger: Logger) {
        self.policy = policy
        self.store = store
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
    }

    /// Sends `body` to `url`; returns whether a 2xx answer came back. Before each attempt the URL
    /// is checked against the policy again (its host may resolve elsewhere by now), and the
    /// request goes to the address that was checked. A refused URL is not retried.
    @discardableResult
    func send(_ body: Data, to url: String, jobID: String) async -> Bool {
        for attempt in 1...attempts {
            let checked: CheckedCallback
            do throws(CallbackRefusal) {
                checked = try await policy.check(url)
            } catch {
                logger.warning("callback refused by the callback policy", metadata: ["job": "\(jobID)", "reason": "\(error)"])
                await record(jobID, .failed, attempts: attempt, error: "\(error.code): \(error.message)")
                return false
            }
            var error: String
            do {
                let status = try await post(body, to: checked)
                if (200..<300).contains(status) {
                    logger.info("callback delivered", metadata: ["job": "\(jobID)", "status": "\(status)"])
                    await record(jobID, .delivered, attempts: attempt, error: nil)
                    return true
                }
                error = "the receiver answered \(status)"
                logger.warning("callback refused", metadata: ["job": "\(jobID)", "status": "\(status)", "attempt": "\(attempt)"])
            } catch let failure {
                error = "\(failure)"
                logger.warning("callback failed", metadata: ["job": "\(jobID)", "error": "\(failure)", "attempt": "\(attempt)"])
            }
            let last = attempt == attempts || Task.isShuttingDownGracefully
            await record(jobID, last ? .failed : .pending, attempts: attempt, error: error)
            if last { break }
            // The wait ends early at graceful shutdown, and then there is no further attempt.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1 << (attempt - 1))) }
            if Task.isShuttingDownGracefully {
                await record(jobID, .failed, attempts: attempt, error: error)
                break
            }
        }
        return false
    }

    /// One POST, connected to an address the policy checked (a name is not resolved again, so a
    /// second DNS answer cannot send it elsewhere); TLS still verifies the URL's host name. A
    /// name's addresses are tried in the resolver's order while connecting fails (an IPv6
    /// address on a machine without IPv6, say). No redirects are followed. Answers the status.
    private func post(_ body: Data, to checked: CheckedCallback) async throws -> UInt {
        guard checked.isName else { return try await post(body, url: checked.url, host: checked.host, address: nil) }
        var lastError: (any Error)?
        for address in checked.addresses {
            do {
                return try await post(body, url: checked.url, host: checked.host, address: address)
            } catch where Self.isConnectFailure(error) {
                lastError = error
            }
        }
        throw lastError ?? CallbackRefusal.unresolvable(host: checked.host)
    }

    private func post(_ body: Data, url: String, host: String, address: IPAddress?) async throws -> UInt {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        configuration.redirectConfiguration = .disallow
        if let address {
            configuration.dnsOverride[host] = address.description
            configuration.dnsOverride[host.lowercased()] = address.description
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<UInt, any Error>
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "lark-jobs")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(15))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            result = .success(response.status.code)
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }

    /// Whether `error` came before any byte was sent: the next address may be tried.
    static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode) }
        return false
    }

    private func record(_ jobID: String, _ status: CallbackStatus, attempts: Int, error: String?) async {
        guard let store else { return }
        do {
            try await store.recordCallback(
                id: jobID, state: CallbackState(status: status, attempts: attempts, lastError: error), now: Timestamp.now)
        } catch {
            logger.warning("could not record the callback's state", metadata: ["job": "\(jobID)", "error": "\(error)"])
        }
    }
}
