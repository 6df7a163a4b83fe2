import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// Lark's `ai.lark.SplineFlowInverse` (CLarkKernels, `spline_flow.c`) against the duration
/// predictor's own spline nodes run by ONNX Runtime, and the rewrite that puts it in a voice.
@Suite struct SplineFlowTests {
    /// Each of the joe voice's three reverse spline flows, its original nodes as a model of their
    /// own, against the one node, on random inputs: values inside and outside the tails, large
    /// logits, masked frames.
    @Test func flowMatchesOnnxRuntime() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let length = 53
        let models = try SplineFlowRewrite.flowModels(in: bytes, length: length)
        #expect(models.count == 3)
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 23)
        for (flow, pair) in models.enumerated() {
            // joe-medium: half 1 channel, 10 bins, so H has 29 channels.
            let x = (0..<2 * length).map { _ in random.uniform() * 7 }
            let h = (0..<29 * length).map { _ in random.uniform() * 40 }
            let mask = (0..<length).map { $0 < length - 5 ? Float(1) : 0 }
            let inputs: [InputTensor] = [
                .float32(name: "X", shape: [1, 2, Int64(length)], values: x),
                .float32(name: "H", shape: [1, 29, Int64(length)], values: h),
                .float32(name: "mask", shape: [1, 1, Int64(length)], values: mask),
            ]
            let expected = try InferenceSession(model: pair.original, configuration: .init(), runtime: runtime).run(inputs)
            let actual = try InferenceSession(model: pair.fused, configuration: .init(), runtime: runtime).run(inputs)
            #expect(expected.count == 2 * length && actual.count == expected.count)
            let difference = DirectConvolutionTests.relativeDifference(expected, actual)
            #expect(difference <= 1e-4, "flow \(flow): relative difference \(difference)")
            // Both tails and the inside were exercised, and the masked frames are zero.
            #expect(x[length..<2 * length].contains { abs($0) > 5 } && x[length..<2 * length].contains { abs($0) < 5 })
            #expect(actual[(length - 5)..<length].allSatisfy { $0 == 0 } && actual[(2 * length - 5)...].allSatisfy { $0 == 0 })
        }
    }

    /// The voice with every rewrite of `PiperModelLoader` before the convolutions' (flows, layer
    /// normalizations, attention terms, gates, scales by one), restated and optimized as the loader
    /// builds it, speaks within 1e-3 of the original graph at zero noise.
    @Test func joeVoiceGivesTheSameAudio() async throws {
        // The work on a thread of its own, the expectations here: an #expect on that thread would
        // be recorded against no test.
        let counts = try await onThread { () throws -> (flows: Int, flowNodes: Int, norms: Int, attention: Int, attentionNodes: Int, gates: Int, scales: Int, samples: Int, largest: Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let flows = try SplineFlowRewrite.apply(to: bytes)
            let norms = try ChannelLayerNormRewrite.apply(to: flows.model)
            let attention = try RelativeAttentionRewrite.apply(to: norms.model)
            let gates = try GatedActivationRewrite.apply(to: attention.model)
            let scales = try UnitScaleRewrite.apply(to: gates.model)
            let rewritten = try ConvolutionRewrite.apply(to: scales.model)
            let a = try JoeProbeAudio.original()
            let b = try JoeProbeAudio.audio(of: rewritten.model)
            return (flows.replaced, flows.removedNodes, norms.replaced, attention.replaced, attention.removedNodes, gates.replaced, scales.removed,
                    a.count, JoeProbeAudio.largestDifference(a, b))
        }
        #expect(counts.flows == 3)
        #expect(counts.flowNodes > 900, "\(counts.flowNodes) nodes removed")
        #expect(counts.norms == 36, "\(counts.norms) normalizations replaced")  // 12 in the text encoder, 24 in the duration predictor
        #expect(counts.attention == 12, "\(counts.attention) attention terms replaced")  // 2 in each of 6 layers
        #expect(counts.attentionNodes > 300, "\(counts.attentionNodes) nodes removed")
        #expect(counts.gates == 16, "\(counts.gates) gates replaced")  // 4 flows of 4 WaveNet layers
        #expect(counts.scales == 4, "\(counts.scales) scales removed")
        #expect(counts.samples > 10_000)
        #expect(counts.largest < 1e-3, "largest difference \(counts.largest)")
    }

    /// A graph without a spline flow comes back byte for byte.
    @Test func otherModelsAreLeftAlone() throws {
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1)
        let plain = try DirectConvolutionRewrite.singleConvolution(shape, length: 16, weights: [Float](repeating: 0.5, count: 48), bias: nil).plain
        let result = try SplineFlowRewrite.apply(to: plain)
        #expect(result.replaced == 0 && result.model == plain)
    }
}
