/// The job state machine, free of I/O: which moves are allowed, and what a failed attempt leads
/// to. The stores enforce the same moves in their `WHERE` clauses; these functions are what the
/// tests pin down and what the worker consults.
///
/// ```
/// queued ──claim──► running ──succeed──► succeeded
///   │  ▲              │ │ └──fail (attempts left)──► queued (available after a back-off)
///   │  └──────────────┘ └────fail (no attempts left)──► failed
///   └──cancel──► cancelled ◄──cancel (seen by the worker at its next heartbeat)── running
/// ```
/// A running job whose lease expired (its worker died) is claimed again as if it were queued,
/// or fails once its attempts are spent.
public enum JobLifecycle {
    public enum Event: Sendable, Equatable {
        case claim
        case succeed
        case fail(retry: Bool)
        case cancel
        case leaseExpired(attemptsLeft: Bool)
    }

    /// The state after `event`, or nil when the event is not allowed in `status`.
    public static func next(_ status: JobStatus, on event: Event) -> JobStatus? {
        switch (status, event) {
        case (.queued, .claim): .running
        case (.queued, .cancel): .cancelled
        case (.running, .succeed): .succeeded
        case (.running, .fail(let retry)): retry ? .queued : .failed
        case (.running, .cancel): .cancelled
        case (.running, .leaseExpired(let attemptsLeft)): attemptsLeft ? .running : .failed
        default: nil
        }
    }
}

/// Bounded retries with exponential back-off: attempt n (1-based) that fails is retried after
/// `base × 2^(n-1)`, at most `maximum`, until `maxAttempts` attempts have been made.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var base: Duration
    public var maximum: Duration

    public init(maxAttempts: Int = 3, base: Duration = .seconds(2), maximum: Duration = .seconds(300)) {
        self.maxAttempts = max(1, maxAttempts)
        self.base = base
        self.maximum = maximum
    }

    /// The wait before the next attempt after `attempts` attempts failed, or nil when none is left.
    public func delay(afterAttempts attempts: Int, maxAttempts: Int? = nil) -> Duration? {
        guard attempts < (maxAttempts ?? self.maxAttempts) else { return nil }
        let exponent = max(0, min(attempts - 1, 30))
        let scaled = base * (1 << exponent)
        return scaled > maximum ? maximum : scaled
    }
}
