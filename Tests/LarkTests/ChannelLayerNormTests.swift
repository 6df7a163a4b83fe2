import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// Lark's `ai.lark.ChannelLayerNorm` (CLarkKernels, `channel_layer_norm.c`) against a voice's own
/// layer-normalization nodes run by ONNX Runtime. (The whole voice's audio with the rewrite:
/// `SplineFlowTests.joeVoiceGivesTheSameAudio`.)
@Suite struct ChannelLayerNormTests {
    @Test func normalizationMatchesOnnxRuntime() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 29)
        for length in [1, 37] {
            let models = try ChannelLayerNormRewrite.normalizationModels(in: bytes, length: length, count: 2)
            #expect(models.count == 2)
            for (index, pair) in models.enumerated() {
                // joe-medium's normalizations are over 192 channels; an offset and a spread far from 0 and 1.
                let x = (0..<192 * length).map { _ in random.uniform() * 30 + 7 }
                let inputs: [InputTensor] = [.float32(name: "X", shape: [1, 192, Int64(length)], values: x)]
                let expected = try InferenceSession(model: pair.original, configuration: .init(), runtime: runtime).run(inputs)
                let actual = try InferenceSession(model: pair.fused, configuration: .init(), runtime: runtime).run(inputs)
                #expect(expected.count == x.count && actual.count == x.count)
                let difference = DirectConvolutionTests.relativeDifference(expected, actual)
                #expect(difference <= 1e-4, "normalization \(index), length \(length): relative difference \(difference)")
            }
        }
    }

    /// A graph without the pattern comes back byte for byte.
    @Test func otherModelsAreLeftAlone() throws {
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1)
        let plain = try DirectConvolutionRewrite.singleConvolution(shape, length: 16, weights: [Float](repeating: 0.5, count: 48), bias: nil).plain
        let result = try ChannelLayerNormRewrite.apply(to: plain)
        #expect(result.replaced == 0 && result.model == plain)
    }
}
