import Foundation
@testable import OnnxGraph
@testable import OnnxRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What `InferenceSession.run` costs besides the model: its inputs are read where they are, not
/// copied, and a session's pool threads may sleep between the parallel parts of a run.
@Suite struct InferenceSessionTests {
    /// A 48 MB input, larger than the most glibc serves from its heap (32 MB), so that a copy of it
    /// would be fresh pages, faulted in on every run: 12,288 of them. Read in place, the runs after
    /// the first (which grows the arena) fault in almost nothing.
    #if os(Linux)
    @Test func runsReadTheirInputsWithoutCopyingThem() throws {
        let count = 12 * 1_024 * 1_024
        let model = try OneGraphModel.make(inputs: [("X", [1, Int64(count)])], output: ("Y", [1, 1])) { graph throws(MalformedProtobuf) in
            try graph.node("ReduceMax", inputs: ["X"], output: "Y")
        }
        let session = try InferenceSession(model: model, configuration: .init(intraOpThreads: 1), runtime: OnnxRuntime.shared.get())
        var values = [Float](repeating: 0, count: count)
        values[count / 2] = 3
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, Int64(count)], values: values)]
        #expect(try session.run(inputs) == [3])

        // A one-thread session runs on the calling thread, so this thread's faults are the run's.
        func faults() -> Int {
            var usage = rusage()
            getrusage(1, &usage)  // RUSAGE_THREAD (glibc declares it only for _GNU_SOURCE)
            return usage.ru_minflt
        }
        let before = faults()
        for _ in 0..<3 { try session.runDiscardingOutput(inputs) }
        let faulted = faults() - before
        #expect(faulted < 1_000, "3 runs faulted in \(faulted) pages (a copy of the input is 12,288 a run)")
        #expect(try session.run(inputs) == [3])
    }
    #endif

    @Test func poolThreadsSleepWhenAskedNotToSpin() {
        func spinning(_ configuration: SessionConfiguration) -> String? {
            configuration.sessionEntries.first { $0.key == "session.intra_op.allow_spinning" }?.value
        }
        #expect(spinning(SessionConfiguration(intraOpThreads: 2, spinning: false)) == "0")
        #expect(spinning(SessionConfiguration(intraOpThreads: 0, spinning: false)) == "0")
        // ONNX Runtime's default (spinning) is left as it is.
        #expect(spinning(SessionConfiguration(intraOpThreads: 2)) == nil)
        // One thread: no pool, nothing to say.
        #expect(spinning(SessionConfiguration(intraOpThreads: 1, spinning: false)) == nil)
        // The process's shared arena, unless there is none.
        #expect(SessionConfiguration().sessionEntries.contains { $0.key == "session.use_env_allocators" && $0.value == "1" })
        #expect(!SessionConfiguration(memory: .noArena).sessionEntries.contains { $0.key == "session.use_env_allocators" })
    }

    /// A two-thread session without spinning still computes what a one-thread one does.
    @Test func twoSleepingThreadsGiveWhatOneGives() throws {
        let count = 1 << 20
        let model = try OneGraphModel.make(inputs: [("X", [1, Int64(count)])], output: ("Y", [1, Int64(count)])) { graph throws(MalformedProtobuf) in
            try graph.node("Tanh", inputs: ["X"], output: "Y")
        }
        let runtime = try OnnxRuntime.shared.get()
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, Int64(count)], values: (0..<count).map { Float($0 % 977) / 100 - 5 })]
        let one = try InferenceSession(model: model, configuration: .init(intraOpThreads: 1), runtime: runtime).run(inputs)
        let two = try InferenceSession(model: model, configuration: .init(intraOpThreads: 2, spinning: false), runtime: runtime).run(inputs)
        #expect(one.count == count)
        #expect(one == two)
    }
}
