import NIOPosix
import SpeechCore
import Synchronization

/// The one admission point for synthesis, shared by live requests, background jobs and the
/// command line. It decides two things:
///
/// - **Which requests may start.** A live request gets a `SynthesisTicket` at once, or nil when
///   `workers + maxQueue` live requests are already under way (the route answers 503 with
///   Retry-After instead of queueing without bound). A job worker's ticket waits until no live
///   work is waiting, so a burst of requests is not slowed by jobs starting under it.
/// - **Which piece of work runs.** Every model run (or espeak-ng sentence) of every ticket takes
///   one of `workers` places for as long as it runs (`SynthesisAdmission`). Live work waits in
///   arrival order ahead of every job's work. A request whose client is slow holds no place
///   between its sentences (`SpeechStream` makes at most one sentence ahead), so clients that
///   stop reading cannot starve the others.
///
/// Blocking work runs on pools of its own: model runs on `workers` inference threads, encoders
/// on `workers` encoding threads; neither runs on an event loop or Swift's cooperative pool.
/// A run is `alone` (may use every core: a voice's wide session) only while one request is
/// synthesizing; once two overlap, every run is narrow until none is left, so a request that is
/// alone for a moment under steady load does not crowd the cores. A job worker's ticket counts
/// from its first piece of work, not from its admission: an idle worker takes a ticket every
/// poll to look for a job, and a poll that found nothing must not make a live request's
/// remaining sentences run narrow.
public final class SynthesisScheduler: Sendable {
    public let workers: Int
    public let maxQueue: Int
    private let inference: NIOThreadPool
    private let encoding: NIOThreadPool
    private let state = Mutex(State())
    private let onChange: @Sendable (_ running: Int, _ queued: Int) -> Void

    private struct State {
        var running = 0
        var liveRequests = 0
        /// Job tickets out.
        var backgroundRequests = 0
        /// Job tickets that have asked for a place (synthesizing, not just looking for a job).
        var backgroundWorking = 0
        var overlapped = false
        var nextID = 0
        var liveWaiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        var backgroundWaiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        /// Job workers waiting for a ticket.
        var ticketWaiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []

        /// Requests synthesizing: live ones from admission, jobs from their first piece of work.
        var requests: Int { liveRequests + backgroundWorking }
        var alone: Bool { requests <= 1 && !overlapped }

        mutating func identifier() -> Int {
            nextID += 1
            return nextID
        }
    }

    /// `onChange` sees every change of places held and live work waiting (for metrics).
    public init(workers: Int, maxQueue: Int, onChange: @escaping @Sendable (_ running: Int, _ queued: Int) -> Void = { _, _ in }) {
        self.workers = max(1, workers)
        self.maxQueue = max(0, maxQueue)
        self.onChange = onChange
        inference = NIOThreadPool(numberOfThreads: self.workers)
        encoding = NIOThreadPool(numberOfThreads: self.workers)
        inference.start()
        encoding.start()
    }

    /// Stops the threads once the work in progress ends.
    public func shutdown() async throws {
        try await inference.shutdownGracefully()
        try await encoding.shutdownGracefully()
    }

    /// Places held now, live requests under way, live work waiting for a place, job tickets out.
    public var load: (running: Int, live: Int, queued: Int, background: Int) {
        state.withLock { ($0.running, $0.liveRequests, $0.liveWaiters.count, $0.backgroundRequests) }
    }

    // MARK: - Tickets

    /// For a live request: its ticket, or nil at once when `workers + maxQueue` live requests
    /// are under way.
    public func admit() -> SynthesisTicket? {
        let admitted = state.withLock { state -> Bool in
            guard state.liveRequests < workers + maxQueue else { return false }
            state.liveRequests += 1
            if state.requests > 1 { state.overlapped = true }
            return true
        }
        return admitted ? SynthesisTicket(scheduler: self, live: true, memory: nil) : nil
    }

    /// For a job worker: a ticket once no live work waits for a place and a place is free; nil
    /// only when the calling task is cancelled while it waits. `memory`: what the job's runs ask
    /// the engine to do with their working memory (`SynthesisAdmission.memory`).
    public func admitBackground(memory: ModelMemory? = nil) async -> SynthesisTicket? {
        let id = state.withLock { $0.identifier() }
        let admitted: Bool = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.liveWaiters.isEmpty, state.running < workers, state.ticketWaiters.isEmpty {
                        state.backgroundRequests += 1
                        return true
                    }
                    state.ticketWaiters.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let index = state.ticketWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.ticketWaiters.remove(at: index).continuation
            }
            waiting?.resume(returning: false)
        }
        return admitted ? SynthesisTicket(scheduler: self, live: false, memory: memory) : nil
    }

    fileprivate func endRequest(live: Bool, working: Bool) {
        let woken = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            if live { state.liveRequests -= 1 } else { state.backgroundRequests -= 1 }
            if !live, working { state.backgroundWorking -= 1 }
            if state.requests == 0 { state.overlapped = false }
            return takeTicketWaiters(&state)
        }
        woken.forEach { $0.resume(returning: true) }
        publish()
    }

    /// Job workers that may now have their ticket (called with the lock held).
    private func takeTicketWaiters(_ state: inout State) -> [CheckedContinuation<Bool, Never>] {
        var woken: [CheckedContinuation<Bool, Never>] = []
        while !state.ticketWaiters.isEmpty, state.liveWaiters.isEmpty, state.running + woken.count < workers {
            state.backgroundRequests += 1
            woken.append(state.ticketWaiters.removeFirst().continuation)
        }
        return woken
    }

    // MARK: - Places

    /// Waits for a place (live work ahead of background work); throws `CancellationError` when
    /// the task is cancelled while it waits. Answers whether the work runs alone. `startsJob`:
    /// a job ticket's first piece of work, from which the job counts as synthesizing.
    fileprivate func acquirePlace(live: Bool, startsJob: Bool = false) async throws -> Bool {
        let id = state.withLock { state in
            if startsJob {
                state.backgroundWorking += 1
                if state.requests > 1 { state.overlapped = true }
            }
            return state.identifier()
        }
        let granted: Bool = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    let ahead = live ? state.liveWaiters.count : state.liveWaiters.count + state.backgroundWaiters.count
                    if state.running < workers, ahead == 0 {
                        state.running += 1
                        return true
                    }
                    if live { state.liveWaiters.append((id, continuation)) } else { state.backgroundWaiters.append((id, continuation)) }
                    return nil
                }
                publish()
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                if let index = state.liveWaiters.firstIndex(where: { $0.id == id }) {
                    return state.liveWaiters.remove(at: index).continuation
                }
                if let index = state.backgroundWaiters.firstIndex(where: { $0.id == id }) {
                    return state.backgroundWaiters.remove(at: index).continuation
                }
                return nil
            }
            waiting?.resume(returning: false)
        }
        guard granted else {
            publish()
            throw CancellationError()
        }
        return state.withLock { $0.alone }
    }

    /// Gives a place to the longest-waiting live work, else background work, else frees it.
    fileprivate func releasePlace() {
        let (next, woken) = state.withLock { state -> (CheckedContinuation<Bool, Never>?, [CheckedContinuation<Bool, Never>]) in
            if !state.liveWaiters.isEmpty { return (state.liveWaiters.removeFirst().continuation, []) }
            if !state.backgroundWaiters.isEmpty { return (state.backgroundWaiters.removeFirst().continuation, []) }
            state.running -= 1
            return (nil, takeTicketWaiters(&state))
        }
        next?.resume(returning: true)
        woken.forEach { $0.resume(returning: true) }
        publish()
    }

    // MARK: - Threads

    fileprivate func runInference<T: Sendable>(
        interrupt: @escaping @Sendable () -> Void, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withTaskCancellationHandler {
            try await inference.runIfActive(work)
        } onCancel: {
            interrupt()
        }
    }

    /// Runs an encoder's work (compressing a sentence, finishing a container) on the encoding threads.
    public func encode<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await encoding.runIfActive(work)
    }

    private func publish() {
        let (running, queued) = state.withLock { ($0.running, $0.liveWaiters.count) }
        onChange(running, queued)
    }
}

/// One admitted request's handle at the scheduler: its runs take places with its priority. The
/// request counts as under way until `release()` or, at the latest, until the ticket is dropped,
/// so a response that is never written cannot leak it.
public final class SynthesisTicket: SynthesisAdmission {
    private let scheduler: SynthesisScheduler
    private let live: Bool
    public let memory: ModelMemory?
    private let released = Atomic<Bool>(false)
    /// A job ticket that has asked for a place (see `SynthesisScheduler`'s `alone` rule).
    private let working = Atomic<Bool>(false)

    fileprivate init(scheduler: SynthesisScheduler, live: Bool, memory: ModelMemory?) {
        self.scheduler = scheduler
        self.live = live
        self.memory = memory
    }

    public func withPlace<T: Sendable>(_ body: @Sendable (any SynthesisPlace) async throws -> T) async throws -> T {
        let startsJob = !live && !released.load(ordering: .acquiring) && !working.exchange(true, ordering: .acquiringAndReleasing)
        let alone = try await scheduler.acquirePlace(live: live, startsJob: startsJob)
        defer { scheduler.releasePlace() }
        return try await body(Place(scheduler: scheduler, alone: alone))
    }

    public func encode<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await scheduler.encode(work)
    }

    /// Ends the request's turn at the scheduler; any number of calls release it once.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        scheduler.endRequest(live: live, working: working.load(ordering: .acquiring))
    }

    deinit {
        release()
    }

    private struct Place: SynthesisPlace {
        let scheduler: SynthesisScheduler
        let alone: Bool

        func runBlocking<T: Sendable>(
            interrupt: @escaping @Sendable () -> Void, _ work: @escaping @Sendable () throws -> T
        ) async throws -> T {
            try await scheduler.runInference(interrupt: interrupt, work)
        }
    }
}
