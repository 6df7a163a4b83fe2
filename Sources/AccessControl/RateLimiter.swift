import Synchronization

/// Requests and characters per minute, per client (a key's name, or an address when keys are
/// off), as token buckets: a client may spend a minute's allowance at once, and regains it
/// steadily. Written here rather than taken from a library: none of the packages Lark depends
/// on has one, and it is thirty lines.
public final class RateLimiter: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Requests per minute; nil for no limit.
        public var requestsPerMinute: Int?
        /// Characters of text to speak per minute; nil for no limit.
        public var charactersPerMinute: Int?

        public init(requestsPerMinute: Int? = nil, charactersPerMinute: Int? = nil) {
            self.requestsPerMinute = requestsPerMinute
            self.charactersPerMinute = charactersPerMinute
        }

        public var unlimited: Bool { requestsPerMinute == nil && charactersPerMinute == nil }
    }

    /// A refusal: how long until the request would fit, and which limit refused it.
    public struct Refusal: Sendable, Equatable, Error {
        public var retryAfterSeconds: Int
        public var limit: String
    }

    public let limits: Limits
    /// Clients seen, bounded: the least recently refilled are dropped past it (a dropped
    /// client starts again with a full bucket, which errs on the client's side).
    private let maxClients: Int
    private let buckets = Mutex([String: Buckets]())

    private struct Buckets {
        var requests: Double
        var characters: Double
        var updated: ContinuousClock.Instant
    }

    public init(limits: Limits, maxClients: Int = 100_000) {
        self.limits = limits
        self.maxClients = maxClients
    }

    /// Takes one request from `client`'s allowance.
    public func admitRequest(_ client: String, now: ContinuousClock.Instant = .now) throws(Refusal) {
        try take(client, requests: 1, characters: 0, now: now)
    }

    /// Takes `count` characters from `client`'s allowance.
    public func admitCharacters(_ client: String, count: Int, now: ContinuousClock.Instant = .now) throws(Refusal) {
        try take(client, requests: 0, characters: Double(count), now: now)
    }

    private func take(_ client: String, requests: Double, characters: Double, now: ContinuousClock.Instant) throws(Refusal) {
        guard !limits.unlimited else { return }
        let requestRate = limits.requestsPerMinute.map(Double.init)
        let characterRate = limits.charactersPerMinute.map(Double.init)
        let refusal: Refusal? = buckets.withLock { table in
            var bucket = table[client] ?? Buckets(
                requests: requestRate ?? 0, characters: characterRate ?? 0, updated: now)
            let elapsed = max(0, Self.seconds(now - bucket.updated))
            if let requestRate { bucket.requests = min(requestRate, bucket.requests + elapsed * requestRate / 60) }
            if let characterRate { bucket.characters = min(characterRate, bucket.characters + elapsed * characterRate / 60) }
            bucket.updated = now
            defer {
                if table.count >= maxClients, table[client] == nil { Self.dropOldest(&table) }
                table[client] = bucket
            }
            if let requestRate, requests > 0, bucket.requests < requests {
                return Refusal(retryAfterSeconds: Self.wait(missing: requests - bucket.requests, perMinute: requestRate), limit: "requests per minute")
            }
            // A text longer than a minute's allowance goes through on a full bucket and leaves
            // it in debt, which the next requests wait out.
            if let characterRate, characters > 0, bucket.characters < min(characters, characterRate) {
                let missing = min(characters, characterRate) - bucket.characters
                return Refusal(retryAfterSeconds: Self.wait(missing: max(missing, 1), perMinute: characterRate), limit: "characters per minute")
            }
            if requestRate != nil { bucket.requests -= requests }
            if characterRate != nil { bucket.characters -= characters }
            return nil
        }
        if let refusal { throw refusal }
    }

    private static func wait(missing: Double, perMinute: Double) -> Int {
        max(1, Int((missing * 60 / perMinute).rounded(.up)))
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private static func dropOldest(_ table: inout [String: Buckets]) {
        if let oldest = table.min(by: { $0.value.updated < $1.value.updated })?.key { table[oldest] = nil }
    }
}
