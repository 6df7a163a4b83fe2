import Synchronization

/// Admission control for synthesis requests: at most `workers` requests synthesize at once and
/// `maxQueue` more wait, in arrival order, for one of them to finish; past that a request is
/// refused at once (the route answers 503 with Retry-After) instead of queueing without bound.
///
/// A request holds its place through a `SynthesisTicket`, released when its synthesis ends or,
/// at the latest, when the ticket is dropped, so a response that is never written cannot leak one.
final class SynthesisGate: Sendable {
    let workers: Int
    let maxQueue: Int
    private let state = Mutex(State())
    private let metrics: ServerMetrics

    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    init(workers: Int, maxQueue: Int, metrics: ServerMetrics) {
        self.workers = max(1, workers)
        self.maxQueue = max(0, maxQueue)
        self.metrics = metrics
    }

    /// Requests synthesizing now, and requests waiting for a turn.
    var load: (running: Int, queued: Int) {
        state.withLock { ($0.running, $0.waiters.count) }
    }

    /// A ticket once a worker is free, or nil at once when every worker and queue place is taken.
    func admit() async -> SynthesisTicket? {
        let admitted: Bool = await withCheckedContinuation { continuation in
            let outcome: Bool? = state.withLock { state in
                if state.running < workers, state.waiters.isEmpty {
                    state.running += 1
                    return true
                }
                guard state.waiters.count < maxQueue else { return false }
                state.waiters.append(continuation)
                return nil
            }
            publish()
            if let outcome { continuation.resume(returning: outcome) }
        }
        return admitted ? SynthesisTicket(gate: self) : nil
    }

    /// Hands the finished request's worker to the longest waiter, or frees it.
    fileprivate func release() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.running = max(0, state.running - 1)
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume(returning: true)
        publish()
    }

    private func publish() {
        let (running, queued) = load
        metrics.synthesisInFlight.set(Int64(running))
        metrics.synthesisQueueDepth.set(Int64(queued))
    }
}

/// One admitted request's place at the gate. `release()` may be called any number of times;
/// the place is given back once.
final class SynthesisTicket: Sendable {
    private let gate: SynthesisGate
    private let released = Atomic<Bool>(false)

    fileprivate init(gate: SynthesisGate) {
        self.gate = gate
    }

    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        gate.release()
    }

    deinit {
        release()
    }
}
