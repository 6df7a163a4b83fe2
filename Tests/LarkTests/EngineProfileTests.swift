import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// The engine's measurement (issue #23): FLOPs counted from ONNX Runtime's own profile of a run,
/// on a tiny graph whose arithmetic is known from its definition, and `lark bench --flops
/// --profile` on the bundled voice.
@Suite struct EngineProfileTests {
    /// X [1, 4, 20] → Conv (2 groups, dilation 2) → LeakyRelu → ConvTranspose (stride 2) →
    /// MatMul by a constant → Flatten → Gemm (transposed B). What each node must cost, from the
    /// ONNX definitions (a multiply-add = 2):
    /// - Conv: 6 × 20 outputs, each over 4 / 2 channels × 3 taps: 2 · 120 · 6 = 1,440
    /// - ConvTranspose: 6 × 20 inputs, each to 3 channels × 4 taps: 2 · 120 · 12 = 2,880
    /// - MatMul: [3, 40] × [40, 8]: 2 · 24 · 40 = 1,920
    /// - Gemm: [1, 24] × [24, 5]: 2 · 5 · 24 = 240
    static let expected: [String: Int] = ["convolution": 1_440, "ConvTranspose": 2_880, "MatMul": 1_920, "Gemm": 240]

    @Test func flopsCountedFromARealProfileMatchTheGraphsDefinition() throws {
        let directory = NSTemporaryDirectory() + "lark-profile-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = try InferenceSession(
            model: try Self.model(), configuration: SessionConfiguration(profilePrefix: directory + "/tiny"),
            runtime: try OnnxRuntime.shared.get())
        let x: [Float] = (0..<80).map { Float($0 % 7) / 7 - 0.5 }
        for _ in 0..<2 {
            let y = try session.run([.float32(name: "X", shape: [1, 4, 20], values: x)])
            #expect(y.count == 5)
        }
        let path = try session.endProfiling()
        #expect(path.hasPrefix(directory + "/tiny"))
        let profile = try SessionProfile(contentsOf: path)
        #expect(profile.runs.count == 2)
        for run in profile.runs {
            var byFamily: [String: Int] = [:]
            for node in run.nodes {
                let flops = try #require(
                    NodeArithmetic.flops(opType: node.opType, inputs: node.inputShapes, outputs: node.outputShapes),
                    "\(node.opType) \(node.name): \(node.inputShapes)")
                guard flops > 0 else { continue }
                // ONNX Runtime may fuse the LeakyRelu into the Conv (FusedConv): counted alike.
                let family = NodeArithmetic.convolutions.contains(node.opType) ? "convolution" : node.opType
                byFamily[family, default: 0] += flops
            }
            #expect(byFamily == Self.expected, "\(run.nodes.map { ($0.opType, $0.inputShapes, $0.outputShapes) })")
            #expect(run.nodes.allSatisfy { $0.microseconds >= 0 })
        }
    }

    /// A FLOP count is only as good as the shapes: a convolution without its weight's shape is
    /// reported as not counted, never as free.
    @Test func aConvolutionWithoutItsWeightShapeIsNotCounted() {
        #expect(NodeArithmetic.flops(opType: "ConvTranspose", inputs: [[1, 64, 100], [32]], outputs: [[1, 32, 400]]) == nil)
        #expect(NodeArithmetic.flops(opType: "DirectConv", inputs: [[1, 32, 1, 100]], outputs: [[1, 32, 1, 100]]) == nil)
        #expect(NodeArithmetic.flops(opType: "Add", inputs: [[1, 32, 100], [1, 32, 100]], outputs: [[1, 32, 100]]) == 0)
    }

    /// A fused level (`ResidualStack`) counts each convolution over X's channels, and a post
    /// convolution (weight [1, C, K], bias or none) over its one output channel; weights held
    /// prepared ([R, C·K]) count alike.
    @Test func aFusedLevelCountsEachConvolution() {
        let level = 2 * 100 * 32 * (32 * 3) + 2 * 100 * 32 * (32 * 5)
        #expect(NodeArithmetic.flops(opType: "ResidualStack", inputs: [[1, 32, 100], [32, 32, 3], [32], [32, 32, 5], [32]], outputs: [[1, 32, 100]]) == level)
        #expect(NodeArithmetic.flops(opType: "ResidualStack", inputs: [[1, 32, 100], [192, 96], [32], [32, 32, 5], [32]], outputs: [[1, 32, 100]]) == level)
        let post = 2 * 100 * 1 * (32 * 7)
        #expect(NodeArithmetic.flops(
            opType: "ResidualStack", inputs: [[1, 32, 100], [32, 32, 3], [32], [32, 32, 5], [32], [1, 32, 7]], outputs: [[1, 1, 100]]) == level + post)
        #expect(NodeArithmetic.flops(
            opType: "ResidualStack", inputs: [[1, 32, 100], [32, 32, 3], [32], [32, 32, 5], [32], [1, 32, 7], [1]], outputs: [[1, 1, 100]]) == level + post)
    }

    /// The bundled voice on two sentences: the model's arithmetic per second of audio in the range
    /// measured by hand before (5.83 GFLOP for joe-medium, FACTS.md), mostly in the decoder, every
    /// convolution counted, and the slowest nodes listed slowest first.
    @Test func benchCountsTheBundledVoicesArithmetic() throws {
        let text = NSTemporaryDirectory() + "lark-profile-text-\(getpid()).txt"
        try "The quick brown fox jumps over the lazy dog. Measuring the engine the same way every time.".write(
            toFile: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: text) }
        let result = try runProcess(
            Checkout.larkBinary, ["bench", "--flops", "--profile", "--json", "--top", "5", "--voice", "en_US-joe-medium", "--text-file", text])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let perSecond = try #require(report["gflop_per_audio_s"] as? Double)
        #expect(perSecond > 5.0 && perSecond < 7.0, "\(perSecond) GFLOP per audio-second")
        #expect((report["uncounted_nodes"] as? [String]) == [])
        #expect((report["model_runs"] as? Int) == 2)
        let parts = try #require(report["by_part"] as? [[String: Any]])
        let decoder = try #require(parts.first { $0["name"] as? String == "decoder" })
        #expect((decoder["flop_share"] as? Double ?? 0) > 0.5, "\(parts)")
        let nodes = try #require(report["top_nodes"] as? [[String: Any]])
        #expect(nodes.count == 5)
        let times = nodes.compactMap { $0["ms"] as? Double }
        #expect(times == times.sorted(by: >))
        #expect(nodes.contains { ($0["gflop_per_s"] as? Double ?? 0) > 0 })
    }

    @Test func benchProfileRefusesWhatItCannotMeasure() throws {
        let text = NSTemporaryDirectory() + "lark-profile-espeak-\(getpid()).txt"
        try "Hello.".write(toFile: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: text) }
        let espeak = try runProcess(Checkout.larkBinary, ["bench", "--flops", "--voice", "espeak-ng:en-us", "--text-file", text])
        #expect(espeak.status != 0)
        #expect(espeak.stderr.contains("Piper voices"), "\(espeak.stderr)")
        let top = try runProcess(Checkout.larkBinary, ["bench", "--profile", "--top", "0", "--text-file", text])
        #expect(top.status != 0)
        #expect(top.stderr.contains("--top"), "\(top.stderr)")
    }

    /// The graph above, written with the repository's protobuf writer.
    static func model() throws -> [UInt8] {
        var graph = ProtoWriter()
        try node(&graph, "Conv", ["X", "W1", "B1"], "H1") { node in
            try ints(&node, "kernel_shape", [3])
            try ints(&node, "dilations", [2])
            try ints(&node, "pads", [2, 2])
            try int(&node, "group", 2)
        }
        try node(&graph, "LeakyRelu", ["H1"], "H2") { node in
            node.messageField(5) { attribute in
                attribute.stringField(1, "alpha")
                attribute.floatField(2, 0.1)
                attribute.varintField(20, 1)  // FLOAT
            }
        }
        try node(&graph, "ConvTranspose", ["H2", "W2", "B2"], "H3") { node in
            try ints(&node, "kernel_shape", [4])
            try ints(&node, "strides", [2])
            try ints(&node, "pads", [1, 1])
        }
        try node(&graph, "MatMul", ["H3", "M"], "H4") { _ in }
        try node(&graph, "Flatten", ["H4"], "H5") { node in try int(&node, "axis", 1) }
        try node(&graph, "Gemm", ["H5", "G"], "Y") { node in try int(&node, "transB", 1) }
        graph.stringField(2, "profiled")
        try tensor(&graph, "W1", [6, 2, 3])
        try tensor(&graph, "B1", [6])
        try tensor(&graph, "W2", [6, 3, 4])
        try tensor(&graph, "B2", [3])
        try tensor(&graph, "M", [40, 8])
        try tensor(&graph, "G", [5, 24])
        valueInfo(&graph, field: 11, "X", [1, 4, 20])
        valueInfo(&graph, field: 12, "Y", [1, 5])
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        model.messageField(8) { opset in
            opset.stringField(1, "")
            opset.varintField(2, 13)
        }
        model.bytesField(7, graph.bytes)
        return model.bytes
    }

    private static func node(
        _ graph: inout ProtoWriter, _ op: String, _ inputs: [String], _ output: String,
        attributes: (inout ProtoWriter) throws -> Void
    ) throws {
        try graph.messageField(1) { node in
            for input in inputs { node.stringField(1, input) }
            node.stringField(2, output)
            node.stringField(3, output + "_node")
            node.stringField(4, op)
            try attributes(&node)
        }
    }

    private static func ints(_ node: inout ProtoWriter, _ name: String, _ values: [Int64]) throws {
        node.messageField(5) { attribute in
            attribute.stringField(1, name)
            attribute.integersField(8, values)
            attribute.varintField(20, 7)  // INTS
        }
    }

    private static func int(_ node: inout ProtoWriter, _ name: String, _ value: Int64) throws {
        node.messageField(5) { attribute in
            attribute.stringField(1, name)
            attribute.varintField(3, value)
            attribute.varintField(20, 2)  // INT
        }
    }

    /// A float initializer with small, varied values.
    private static func tensor(_ graph: inout ProtoWriter, _ name: String, _ dims: [Int64]) throws {
        let count = Int(dims.reduce(1, *))
        let values: [Float] = (0..<count).map { Float($0 % 13 - 6) / 13 }
        graph.messageField(5) { tensor in
            tensor.integersField(1, dims)
            tensor.varintField(2, 1)  // FLOAT
            tensor.stringField(8, name)
            tensor.bytesField(9, values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) })
        }
    }

    private static func valueInfo(_ graph: inout ProtoWriter, field: Int, _ name: String, _ dims: [Int64]) {
        graph.messageField(field) { info in
            info.stringField(1, name)
            info.messageField(2) { type in
                type.messageField(1) { tensorType in
                    tensorType.varintField(1, 1)  // FLOAT
                    tensorType.messageField(2) { shape in
                        for size in dims { shape.messageField(1) { dim in dim.varintField(1, size) } }
                    }
                }
            }
        }
    }
}
