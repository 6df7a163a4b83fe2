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

        private func model(_ body: (inout ProtoWriter) throws(MalformedProtobuf) -> Void) throws -> [UInt8] {
            try OneGraphModel.make(
                inputs: [("X", inputDims)], output: ("Y", [Int64(batch), Int64(channels), 1, Int64(max(outputLength, 0))]), body)
        }
    }
}
