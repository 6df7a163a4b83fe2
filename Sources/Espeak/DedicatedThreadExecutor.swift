import Foundation
import Synchronization

/// A serial executor with one thread of its own: the jobs of an actor that uses it run there,
/// one after another, never on Swift's cooperative pool.
///
/// For `EspeakRuntime`: espeak-ng's calls block (a sentence's synthesis takes milliseconds to
/// tens of milliseconds), and blocking work on the cooperative pool would hold up unrelated
/// tasks (request handlers, encoders), of which there are only as many threads as cores.
/// Written by hand because neither Foundation on Linux nor Dispatch offers a `SerialExecutor`
/// bound to one thread.
final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: the queue is only touched under `state`'s lock; the thread is
    // started once in `init` and never replaced.
    private let state = Mutex<[UnownedJob]>([])
    private let wakeUp = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.append(job) }
        wakeUp.signal()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// The thread's loop: it lives as long as the process (the runtime it serves is a process-wide one).
    private func run() {
        while true {
            wakeUp.wait()
            guard let job = state.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}
