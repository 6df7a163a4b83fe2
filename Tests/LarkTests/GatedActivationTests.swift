import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// Lark's `ai.lark.GatedTanh` (CLarkKernels, `gated_tanh.c`) against a voice's own gate nodes
/// run by ONNX Runtime, and `UnitScaleRewrite`. (The whole voice's audio with both rewrites:
/// `SplineFlowTests.joeVoiceGivesTheSameAudio`.)
@Suite struct GatedActivationTests {
    @Test func gateMatchesOnnxRuntime() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let length = 29
        let models = try GatedActivationRewrite.gateModels(in: bytes, length: length, count: 2)
        #expect(models.count == 2)
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 37)
        for (index, pair) in models.enumerated() {
            // joe-medium's flows: 384 channels in, 192 out; values well into both functions' tails.
            let x = (0..<384 * length).map { _ in random.uniform() * 12 }
            let inputs: [InputTensor] = [.float32(name: "X", shape: [1, 384, Int64(length)], values: x)]
            let expected = try InferenceSession(model: pair.original, configuration: .init(), runtime: runtime).run(inputs)
            let actual = try InferenceSession(model: pair.fused, configuration: .init(), runtime: runtime).run(inputs)
            #expect(expected.count == 192 * length && actual.count == expected.count)
            let difference = DirectConvolutionTests.relativeDifference(expected, actual)
            #expect(difference <= 1e-4, "gate \(index): relative difference \(difference)")
        }
    }

    /// The voice's 16 gates and its 4 scales by one are found; a graph without them is left alone.
    @Test func rewritesFindTheVoicesNodesOnly() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let gates = try GatedActivationRewrite.apply(to: bytes)
        #expect(gates.replaced == 16 && gates.removedNodes == 16 * 8, "\(gates.replaced) gates, \(gates.removedNodes) nodes")
        let scales = try UnitScaleRewrite.apply(to: bytes)
        #expect(scales.removed == 4 && scales.removedNodes == 4 * 4, "\(scales.removed) scales, \(scales.removedNodes) nodes")
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1)
        let plain = try DirectConvolutionRewrite.singleConvolution(shape, length: 16, weights: [Float](repeating: 0.5, count: 48), bias: nil).plain
        #expect(try GatedActivationRewrite.apply(to: plain).model == plain)
        #expect(try UnitScaleRewrite.apply(to: plain).model == plain)
    }
}
