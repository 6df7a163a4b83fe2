import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// `TimeChunks` cuts the decoder's narrow end into pieces of time only where ONNX Runtime
/// convolutions of one work item are in it. (Where they are, the pieces compute the same:
/// `OnnxGraphTests.narrowEndCutIntoPiecesComputesTheSame`, `piperVoiceGivesTheSameAudio`.)
@Suite struct TimeChunksTests {
    /// With joe's levels fused (`ResidualStack`, `conv_post` inside the last) and its remaining
    /// small convolutions on `DirectConv` (both share time among the threads themselves), the narrow end
    /// holds no ONNX Runtime convolution of one work item (ups.2's sub-pixel convolution has 128
    /// output channels), so it is not cut: no piece nodes, and the audio stays within 1e-3 of the
    /// original graph's.
    @Test func fusedLevelsAreNotCutIntoPieces() async throws {
        let (pieces, pieceNodes, largest) = try await onThread { () throws -> (Int, Int, Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let fused = try ResidualStackRewrite.apply(to: bytes)
            let direct = try DirectConvolutionRewrite.apply(to: fused.model, chosen: Set(DirectConvolutionRewrite.candidates(in: fused.model)))
            let rewritten = try ConvolutionRewrite.apply(to: direct.model)
            let pieceNodes = try GraphSummary.read(rewritten.model)!.graph.nodes.filter { $0.1.outputs.contains { $0.contains("lark_pieces") } }.count
            let largest = JoeProbeAudio.largestDifference(try JoeProbeAudio.original(), try JoeProbeAudio.audio(of: rewritten.model))
            return (rewritten.timePieces, pieceNodes, largest)
        }
        #expect(pieces == 1 && pieceNodes == 0, "\(pieces) pieces, \(pieceNodes) piece nodes")
        #expect(largest < 1e-3, "largest difference \(largest)")
    }
}
