/// Admission control for synthesis requests: at most `workers` run and `maxQueue` wait; past that,
/// a request is refused at once (the route answers 503 with Retry-After) instead of queueing forever.
actor SynthesisGate {
    let capacity: Int
    private(set) var admitted = 0

    init(workers: Int, maxQueue: Int) {
        capacity = max(1, workers) + max(0, maxQueue)
    }

    /// Takes a place if one is free.
    func enter() -> Bool {
        guard admitted < capacity else { return false }
        admitted += 1
        return true
    }

    func leave() {
        admitted = max(0, admitted - 1)
    }
}
