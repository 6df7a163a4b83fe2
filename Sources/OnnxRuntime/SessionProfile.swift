import COnnxRuntime
import Foundation

extension InferenceSession {
    /// Turns on ONNX Runtime's profiler for a session about to be created: every run, and every
    /// node in it with its input and output shapes, goes into a JSON trace. Weight prepacking is
    /// switched off with it: a prepacked weight (ConvTranspose's, a constant MatMul operand) is
    /// missing from the trace's shapes, and its node's arithmetic could not be counted. A profiled
    /// session is for measuring, never for serving: the profiler and the unpacked weights cost time.
    static func enableProfiling(_ options: OpaquePointer, prefix: String, runtime: OnnxRuntime) throws(OnnxRuntimeError) {
        let api = runtime.api.pointee
        try runtime.check(api.EnableProfiling(options, prefix))
        try runtime.check(api.AddSessionConfigEntry(options, "session.disable_prepacking", "1"))
    }

    /// Stops the profiler of a session made with `SessionConfiguration.profilePrefix` and writes
    /// its trace: the file's path (read it with `SessionProfile`). Later runs are not profiled.
    public func endProfiling() throws(OnnxRuntimeError) -> String {
        let api = runtime.api.pointee
        var allocator: OpaquePointer?
        try runtime.check(api.GetAllocatorWithDefaultOptions(&allocator))
        var path: UnsafeMutablePointer<CChar>?
        try runtime.check(api.SessionEndProfiling(session, allocator, &path))
        guard let path else { throw OnnxRuntimeError(code: -1, message: "ONNX Runtime wrote no profile (profiling was not on)") }
        defer { _ = api.AllocatorFree(allocator, path) }
        return String(cString: path)
    }
}

/// An ONNX Runtime profile (the JSON trace `InferenceSession.endProfiling` writes), as model runs
/// of node runs.
public struct SessionProfile: Sendable {
    /// One node's execution in one run.
    public struct NodeRun: Sendable, Equatable {
        /// The node's name in the graph ONNX Runtime ran (after its own optimizations).
        public var name: String
        /// The operator, such as `Conv` (without its domain).
        public var opType: String
        public var inputShapes: [[Int]]
        public var outputShapes: [[Int]]
        public var microseconds: Int
    }

    /// One `Run` call: its wall time and its nodes, in the order they ran.
    public struct ModelRun: Sendable {
        public var microseconds: Int
        public var nodes: [NodeRun]
    }

    /// Every model run the session made while profiling, in order (the load-time probe and any
    /// warm-up included: take the last ones for a measured piece of work).
    public var runs: [ModelRun]

    public struct Unreadable: Error, CustomStringConvertible {
        public var description: String
    }

    public init(contentsOf path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Unreadable(description: "cannot read the profile \(path): \((error as NSError).localizedDescription)")
        }
        try self.init(json: data)
    }

    /// The trace is a JSON array of Chrome trace events: `Session` events (`model_run` spans one
    /// run) and `Node` events (`<node>_kernel_time` is a node's execution; `args` holds
    /// `op_name` and `input_type_shape`/`output_type_shape`, lists of `{element type: dims}`).
    public init(json: Data) throws {
        guard let events = try? JSONSerialization.jsonObject(with: json) as? [[String: Any]] else {
            throw Unreadable(description: "the profile is not a JSON array of trace events")
        }
        var spans: [(start: Int, end: Int)] = []
        var nodes: [(start: Int, node: NodeRun)] = []
        for event in events {
            guard let category = event["cat"] as? String, let name = event["name"] as? String,
                  let start = event["ts"] as? Int, let duration = event["dur"] as? Int
            else { continue }
            if category == "Session", name == "model_run" {
                spans.append((start, start + duration))
            } else if category == "Node", name.hasSuffix("_kernel_time"), let args = event["args"] as? [String: Any] {
                nodes.append((start, NodeRun(
                    name: String(name.dropLast("_kernel_time".count)), opType: args["op_name"] as? String ?? "",
                    inputShapes: Self.shapes(args["input_type_shape"]), outputShapes: Self.shapes(args["output_type_shape"]),
                    microseconds: duration)))
            }
        }
        spans.sort { $0.start < $1.start }
        nodes.sort { $0.start < $1.start }
        var runs = spans.map { ModelRun(microseconds: $0.end - $0.start, nodes: []) }
        var index = 0
        for (start, node) in nodes {
            while index < spans.count, spans[index].end < start { index += 1 }
            guard index < spans.count, spans[index].start <= start else { continue }
            runs[index].nodes.append(node)
        }
        self.runs = runs
    }

    /// `[{"float": [1, 192, 63]}, ...]` → `[[1, 192, 63], ...]`.
    private static func shapes(_ value: Any?) -> [[Int]] {
        guard let list = value as? [[String: Any]] else { return [] }
        return list.map { entry in (entry.values.first as? [Int]) ?? [] }
    }
}
