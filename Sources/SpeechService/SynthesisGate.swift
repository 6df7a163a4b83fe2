import Synchronization

/// Admission control for synthesis, shared by live requests and background jobs: at most
/// `workers` syntheses run at once. Live requests wait in arrival order, at most `maxQueue` of
/// them; past that a request is refused at once (the route answers 503 with Retry-After) instead
/// of queueing without bound. Job workers wait behind every live request, without a bound (the
/// job queue is their queue), so a long job never makes a listener wait for a worker.
///
/// A synthesis holds its place through a `SynthesisTicket`, released when the synthesis ends or,
/// at the latest, when the ticket is dropped, so a response that is never written cannot leak one.
public final class SynthesisGate: Sendable {
    public let workers: Int
    public let maxQueue: Int
    private let state = Mutex(State())
    private let onChange: @Sendable (_ running: Int, _ queued: Int) -> Void

    private struct State {
        var running = 0
        var live: [CheckedContinuation<Bool, Never>] = []
        var background: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextBackgroundID = 0
    }

    /// `onChange` sees every change of syntheses running and live requests waiting (for metrics).
    public init(workers: Int, maxQueue: Int, onChange: @escaping @Sendable (_ running: Int, _ queued: Int) -> Void = { _, _ in }) {
        self.workers = max(1, workers)
        self.maxQueue = max(0, maxQueue)
        self.onChange = onChange
    }

    /// Syntheses running now, live requests waiting, and job workers waiting.
    public var load: (running: Int, queued: Int, background: Int) {
        state.withLock { ($0.running, $0.live.count, $0.background.count) }
    }

    /// For a live request: a ticket once a worker is free, or nil at once when every worker and
    /// queue place is taken.
    public func admit() async -> SynthesisTicket? {
        let admitted: Bool = await withCheckedContinuation { continuation in
            let outcome: Bool? = state.withLock { state in
                if state.running < workers, state.live.isEmpty {
                    state.running += 1
                    return true
                }
                guard state.live.count < maxQueue else { return false }
                state.live.append(continuation)
                return nil
            }
            publish()
            if let outcome { continuation.resume(returning: outcome) }
        }
        return admitted ? SynthesisTicket(gate: self) : nil
    }

    /// For a job worker: a ticket once no live request waits and a worker is free; nil only
    /// when the calling task is cancelled while it waits.
    public func admitBackground() async -> SynthesisTicket? {
        let id = state.withLock { state in
            state.nextBackgroundID += 1
            return state.nextBackgroundID
        }
        let admitted: Bool = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let runNow: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.running < workers, state.live.isEmpty, state.background.isEmpty {
                        state.running += 1
                        return true
                    }
                    state.background.append((id, continuation))
                    return nil
                }
                publish()
                if let runNow { continuation.resume(returning: runNow) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let index = state.background.firstIndex(where: { $0.id == id }) else { return nil }
                return state.background.remove(at: index).continuation
            }
            waiting?.resume(returning: false)
        }
        return admitted ? SynthesisTicket(gate: self) : nil
    }

    /// Hands the finished synthesis's worker to the longest-waiting live request, else to the
    /// longest-waiting job worker, or frees it.
    fileprivate func release() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if !state.live.isEmpty { return state.live.removeFirst() }
            if !state.background.isEmpty { return state.background.removeFirst().continuation }
            state.running = max(0, state.running - 1)
            return nil
        }
        next?.resume(returning: true)
        publish()
    }

    private func publish() {
        let (running, queued, _) = load
        onChange(running, queued)
    }
}

/// One admitted synthesis's place at the gate. `release()` may be called any number of times;
/// the place is given back once.
public final class SynthesisTicket: Sendable {
    private let gate: SynthesisGate
    private let released = Atomic<Bool>(false)

    fileprivate init(gate: SynthesisGate) {
        self.gate = gate
    }

    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        gate.release()
    }

    deinit {
        release()
    }
}
