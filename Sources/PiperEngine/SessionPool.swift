import OnnxRuntime

/// Lends a voice's model sessions to sentence runs, at most `concurrency` runs at once; the rest
/// wait in arrival order.
///
/// ONNX Runtime lets one session serve concurrent runs, so a voice holds at most two sessions of
/// the model: a *wide* one whose runs use several threads, given to the sentences of a request
/// that synthesizes alone (lowest latency for a lone request), and a *narrow* one-thread session
/// shared by the runs of requests that synthesize at the same time. Under load one core per run
/// beats several threads per run: on 2 cores, 3-sentence requests at concurrency 16 gave 20.4
/// audio-s/s narrow against 18.6 wide, and a lone request 15.9 wide against 10.6 narrow.
actor SessionPool {
    private let wide: InferenceSession?
    private let narrow: InferenceSession
    let concurrency: Int
    private var running = 0
    private var streams = 0
    /// Set once two requests overlap, cleared only when none is left: under steady load a
    /// request that happens to be alone for a moment (one finished, the next not yet started)
    /// must not take the wide session and crowd the cores.
    private var overlapped = false
    private var waiters: [CheckedContinuation<InferenceSession, Never>] = []

    /// `wide`: the session for a run that starts alone (nil: always `narrow`).
    init(wide: InferenceSession?, narrow: InferenceSession, concurrency: Int) {
        self.wide = wide
        self.narrow = narrow
        self.concurrency = max(1, concurrency)
    }

    /// A request starts synthesizing (its sentences will `acquire` one after another).
    func beginStream() {
        streams += 1
        if streams > 1 { overlapped = true }
    }

    func endStream() {
        streams = max(0, streams - 1)
        if streams == 0 { overlapped = false }
    }

    func acquire() async -> InferenceSession {
        guard running < concurrency else {
            return await withCheckedContinuation { waiters.append($0) }
        }
        running += 1
        // `overlapped` is set whenever two streams run, so it also covers "another stream now".
        return running == 1 && !overlapped ? (wide ?? narrow) : narrow
    }

    /// Ends a run: its turn goes to the longest waiter (which then overlaps the others still
    /// running, so it gets the narrow session), or is freed.
    func release() {
        if waiters.isEmpty {
            running = max(0, running - 1)
        } else {
            waiters.removeFirst().resume(returning: narrow)
        }
    }
}
