import CLarkKernels
import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// Lark's `ai.lark.SubpixelInterleave` (CLarkKernels, `subpixel_interleave.c`) against the ONNX
/// nodes it stands for in `TransposedConvPlan` (Reshape, Transpose, Reshape, Slice) run by ONNX
/// Runtime: a pure copy, so the outputs must be equal bit for bit. (The whole voice with the
/// rewrite: `OnnxGraphTests.piperVoiceGivesTheSameAudio`.)
@Suite struct SubpixelInterleaveTests {
    /// Random shapes, strides (HiFi-GAN's 8 and 2, and others) and crops, at one and two threads;
    /// the last shapes are large enough that the operator shares its rows among threads.
    @Test func interleaveMatchesOnnxRuntimesNodes() throws {
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 23)
        var shapes: [Shape] = (0..<10).map { _ in
            let stride = [2, 3, 4, 8][random.below(4)]
            let length = 2 + random.below(40)
            return Shape(
                batch: 1 + random.below(2), channels: 1 + random.below(9), stride: stride, length: length,
                padBegin: random.below(stride + 1), padEnd: random.below(stride + 1))
        }
        shapes.append(Shape(batch: 2, channels: 32, stride: 2, length: 3_001, padBegin: 1, padEnd: 1))
        shapes.append(Shape(batch: 1, channels: 64, stride: 8, length: 517, padBegin: 4, padEnd: 4))
        for shape in shapes {
            let x = (0..<shape.inputCount).map { _ in random.uniform() }
            let inputs: [InputTensor] = [.float32(name: "X", shape: shape.inputDims, values: x)]
            let (nodes, fused) = try shape.models()
            for threads in [1, 2] {
                let configuration = SessionConfiguration(intraOpThreads: threads)
                let expected = try InferenceSession(model: nodes, configuration: configuration, runtime: runtime).run(inputs)
                let actual = try InferenceSession(model: fused, configuration: configuration, runtime: runtime).run(inputs)
                #expect(expected.count == shape.outputCount, "\(shape)")
                #expect(actual == expected, "\(shape), \(threads) threads")
            }
        }
    }

    /// The operator reading ONNX Runtime's blocked layout (`block`, `channels`: what
    /// `BlockedLayoutCleanup` sets when it drops the `ReorderOutput` before it) gives the same values
    /// as reading the plain layout, bit for bit: blocks of 16 and 8, channels that fill the last
    /// block and ones that leave padding, lengths that cross the operator's time tiles, at one and
    /// two threads.
    @Test func blockedInputMatchesPlainInput() throws {
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 29)
        let shapes = [
            Shape(batch: 1, channels: 64, stride: 2, length: 3_001, padBegin: 1, padEnd: 1),
            Shape(batch: 2, channels: 32, stride: 2, length: 1_500, padBegin: 1, padEnd: 1),
            Shape(batch: 1, channels: 16, stride: 8, length: 517, padBegin: 4, padEnd: 4),
            Shape(batch: 2, channels: 64, stride: 4, length: 1_001, padBegin: 2, padEnd: 2),
            Shape(batch: 1, channels: 48, stride: 4, length: 300, padBegin: 3, padEnd: 1),
            Shape(batch: 1, channels: 32, stride: 8, length: 2, padBegin: 7, padEnd: 5),
            Shape(batch: 2, channels: 3, stride: 3, length: 37, padBegin: 2, padEnd: 0),
            Shape(batch: 1, channels: 5, stride: 2, length: 70, padBegin: 0, padEnd: 1),
        ]
        for shape in shapes {
            let x = (0..<shape.inputCount).map { _ in random.uniform() }
            let plain = try shape.models().fused
            for block in [16, 8] {
                let blocked = try shape.blockedModel(block: block)
                for threads in [1, 2] {
                    let configuration = SessionConfiguration(intraOpThreads: threads)
                    let expected = try InferenceSession(model: plain, configuration: configuration, runtime: runtime)
                        .run([.float32(name: "X", shape: shape.inputDims, values: x)])
                    let actual = try InferenceSession(model: blocked, configuration: configuration, runtime: runtime)
                        .run([.float32(name: "X", shape: shape.blockedDims(block: block), values: shape.blocked(x, block: block))])
                    #expect(actual == expected, "\(shape), block \(block), \(threads) threads")
                }
            }
        }
    }

    /// In the joe voice as it loads, each of its 3 upsamplings' interleaves read a `ReorderOutput`
    /// of the blocked convolution before it; the clean-up, told this CPU's block, drops those 3
    /// reorders (the interleave reads the blocked layout), and the audio stays within 1e-3 of the
    /// original graph's.
    @Test func joeInterleavesReadTheBlockedLayout() async throws {
        let block = Int(lark_nchwc_block_size())
        guard block > 0 else { return }  // No blocked layout on this CPU: nothing to drop.
        let (before, after, fewer, largest) = try await onThread { () throws -> (Int, Int, [String: Int], Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let rewritten = try ConvolutionRewrite.apply(to: try ResidualStackRewrite.apply(to: bytes).model)
            let runtime = try OnnxRuntime.shared.get()
            let (_, optimized) = try InferenceSession.optimizedModel(rewritten.model, configuration: .init(), runtime: runtime)
            let cleaned = try BlockedLayoutCleanup.apply(to: optimized, nchwcBlock: block)
            let unfused = try BlockedLayoutCleanup.apply(to: optimized)
            func interleavesAfterAReorder(in model: [UInt8]) throws -> Int {
                let graph = try GraphSummary.read(model)!.graph
                let reorders = Set(graph.nodes.filter { $0.1.opType == "ReorderOutput" }.flatMap { $0.1.outputs })
                return graph.nodes.filter { $0.1.opType == SubpixelInterleave.opType && reorders.contains($0.1.inputs[0]) }.count
            }
            func count(_ opType: String, in model: [UInt8]) throws -> Int {
                try GraphSummary.read(model)!.graph.nodes.filter { $0.1.opType == opType }.count
            }
            let session = try InferenceSession(model: cleaned.model, configuration: .init(optimization: .basic), runtime: runtime)
            return (
                try interleavesAfterAReorder(in: optimized), try interleavesAfterAReorder(in: cleaned.model),
                [
                    "ReorderOutput": try count("ReorderOutput", in: unfused.model) - count("ReorderOutput", in: cleaned.model),
                    "nodes": try GraphSummary.read(unfused.model)!.graph.nodes.count - GraphSummary.read(cleaned.model)!.graph.nodes.count,
                ],
                JoeProbeAudio.largestDifference(try JoeProbeAudio.original(), try session.run(JoeProbeAudio.inputs))
            )
        }
        #expect(before == 3 && after == 0, "interleaves reading a ReorderOutput: \(before) before the clean-up, \(after) after")
        #expect(fewer == ["ReorderOutput": 3, "nodes": 3], "fewer than the clean-up without the block: \(fewer)")
        #expect(largest < 1e-3, "largest difference \(largest)")
    }

    /// A crop longer than the interleaved input is refused with the operator's name, not misread.
    @Test func cropLongerThanTheInputIsAnError() throws {
        let runtime = try OnnxRuntime.shared.get()
        let shape = Shape(batch: 1, channels: 2, stride: 2, length: 2, padBegin: 3, padEnd: 2)
        let session = try InferenceSession(model: try shape.models().fused, configuration: .init(), runtime: runtime)
        #expect {
            _ = try session.run([.float32(name: "X", shape: shape.inputDims, values: [Float](repeating: 1, count: shape.inputCount))])
        } throws: { error in
            "\(error)".contains("ai.lark.SubpixelInterleave")
        }
    }

    struct Shape: CustomStringConvertible {
        let batch, channels, stride, length, padBegin, padEnd: Int

        var inputDims: [Int64] { [Int64(batch), Int64(stride * channels), 1, Int64(length)] }
        var inputCount: Int { batch * stride * channels * length }
        var outputLength: Int { length * stride - padBegin - padEnd }
        var outputCount: Int { batch * channels * outputLength }
        var description: String { "N \(batch), C \(channels), s \(stride), T \(length), pads [\(padBegin), \(padEnd)]" }

        /// `X [N, s·C, 1, T]` → `Y [N, C, 1, T·s − b − e]`: as ONNX nodes, and as the one ai.lark node.
        func models() throws -> (nodes: [UInt8], fused: [UInt8]) {
            let (s, c) = (Int64(stride), Int64(channels))
            let nodes = try model { graph throws(MalformedProtobuf) in
                try graph.int64Tensor("phase_shape", values: [0, s, c, -1])
                try graph.int64Tensor("joined_shape", values: [0, c, 1, -1])
                try graph.int64Tensor("starts", values: [Int64(padBegin)])
                try graph.int64Tensor("ends", values: [padEnd == 0 ? Int64.max : -Int64(padEnd)])
                try graph.int64Tensor("time_axis", values: [3])
                try graph.node("Reshape", inputs: ["X", "phase_shape"], output: "split")
                try graph.node("Transpose", inputs: ["split"], output: "interleaved") { transpose throws(MalformedProtobuf) in
                    try transpose.intsAttribute("perm", [0, 2, 3, 1])
                }
                try graph.node("Reshape", inputs: ["interleaved", "joined_shape"], output: "joined")
                try graph.node("Slice", inputs: ["joined", "starts", "ends", "time_axis"], output: "Y")
            }
            let fused = try model { graph throws(MalformedProtobuf) in
                try graph.subpixelInterleave("X", output: "Y", stride: s, pads: [Int64(padBegin), Int64(padEnd)])
            }
            return (nodes, fused)
        }

        /// X in ONNX Runtime's blocked layout: channels padded with zeros to a whole block,
        /// stored `[N, blocks, 1, T, block]`.
        func blockedDims(block: Int) -> [Int64] {
            [Int64(batch), Int64((stride * channels + block - 1) / block * block), 1, Int64(length)]
        }

        func blocked(_ x: [Float], block: Int) -> [Float] {
            let (sc, blocks) = (stride * channels, (stride * channels + block - 1) / block)
            var out = [Float](repeating: 0, count: batch * blocks * block * length)
            for n in 0..<batch {
                for c in 0..<sc {
                    for t in 0..<length {
                        out[((n * blocks + c / block) * length + t) * block + c % block] = x[(n * sc + c) * length + t]
                    }
                }
            }
            return out
        }

        /// The one ai.lark node reading X in the blocked layout.
        func blockedModel(block: Int) throws -> [UInt8] {
            try OneGraphModel.make(
                inputs: [("X", blockedDims(block: block))], output: ("Y", [Int64(batch), Int64(channels), 1, Int64(max(outputLength, 0))])
            ) { graph throws(MalformedProtobuf) in
                try graph.subpixelInterleave(
                    "X", output: "Y", stride: Int64(stride), pads: [Int64(padBegin), Int64(padEnd)],
                    blocked: (Int64(block), Int64(stride * channels)))
            }
        }

        private func model(_ body: (inout ProtoWriter) throws(MalformedProtobuf) -> Void) throws -> [UInt8] {
            try OneGraphModel.make(
                inputs: [("X", inputDims)], output: ("Y", [Int64(batch), Int64(channels), 1, Int64(max(outputLength, 0))]), body)
        }
    }
}
