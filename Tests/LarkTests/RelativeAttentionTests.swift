import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// Lark's `ai.lark.RelativeKeyLogits` and `ai.lark.RelativeValueWeights` (CLarkKernels,
/// `relative_attention.c`) against the text encoder's own nodes for those terms, run by ONNX
/// Runtime. (The whole voice's audio with the rewrite: `SplineFlowTests.joeVoiceGivesTheSameAudio`.)
@Suite struct RelativeAttentionTests {
    /// Lengths below, at and above the window's reach (VITS pads or slices the table by length).
    @Test(arguments: [1, 4, 5, 23])
    func termsMatchOnnxRuntime(length: Int) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        // The first two layers' terms of each kind.
        let models = try RelativeAttentionRewrite.termModels(in: bytes, length: length, count: 2)
        #expect(models.count == 4)
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: UInt64(31 + length))
        for (index, pair) in models.enumerated() {
            let values = index >= 2
            // joe-medium: 2 heads of 96, conv outputs of 192 channels (only their shape is read).
            let x = (0..<2 * length * (values ? length : 96)).map { _ in random.uniform() }
            let t = Int64(length)
            let expected = try InferenceSession(model: pair.original, configuration: .init(), runtime: runtime).run([
                .float32(name: "X", shape: [1, 2, t, values ? t : 96], values: x),
                .float32(name: "C0", shape: [1, 192, t], values: [Float](repeating: 0, count: 192 * length)),
            ])
            let actual = try InferenceSession(model: pair.fused, configuration: .init(), runtime: runtime).run([
                .float32(name: "X", shape: [1, 2, t, values ? t : 96], values: x)
            ])
            #expect(expected.count == 2 * length * (values ? 96 : length) && actual.count == expected.count)
            let difference = DirectConvolutionTests.relativeDifference(expected, actual)
            #expect(difference <= 1e-4, "term \(index), length \(length): relative difference \(difference)")
        }
    }
}
