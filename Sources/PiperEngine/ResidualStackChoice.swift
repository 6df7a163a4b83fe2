import Foundation
import OnnxGraph
import OnnxRuntime
import Synchronization

/// Whether Lark's fused HiFi-GAN level (`ResidualStackRewrite`) runs one level of a voice faster
/// than ONNX Runtime runs that level's own nodes on this CPU, measured, with the figures.
public struct ResidualStackDecision: Codable, Sendable, Equatable {
    public var shape: ResidualStackShape
    /// The input's length in the timed runs.
    public var samples: Int
    /// Best CPU seconds per run on one thread: the fused node, and the level's nodes as the voice
    /// would run them unfused (after `DirectConvolutionRewrite` with the shapes its timing chooses,
    /// and `ConvolutionRewrite`).
    public var fusedSeconds: Double
    public var onnxRuntimeSeconds: Double
    /// Largest difference between the two outputs, relative to the largest output value.
    public var relativeDifference: Float
    public var used: Bool
    /// The Winograd sizes of the level's convolutions (nil: direct) of the fastest fused candidate,
    /// when that is not the plain fused node; `fusedSeconds` and `relativeDifference` are then
    /// that candidate's, and `directFusedSeconds` the plain fused node's.
    public var winograd: [WinogradSize?]?
    public var directFusedSeconds: Double?
    /// Why the level could not be timed (then it is not used).
    public var problem: String?
}

/// Times each level of a voice both ways, with the voice's own weights, when its cache entry is
/// built. A level is fused only where the fused node is faster and matches ONNX Runtime's output
/// to 1e-4 (bf16: `DirectConvolutionChoice.bf16Tolerance`). In FP32 the fused node is timed also
/// with the level's Winograd candidates (`ResidualStackShape.winogradCandidates`), and the
/// fastest that matches is the one used.
enum ResidualStackChoice {
    static let rounds = 3
    /// Multiply-adds in one timed run: the level's input is as long as that allows, between
    /// `shortest` and `longest` samples (a sentence's 32-channel level is ~100k samples, its
    /// 128-channel one a few thousand).
    static let timedMultiplyAdds = 1 << 30
    static let shortest = 2_048, longest = 16_384

    /// Each level shape is timed once per process, as `DirectConvolutionChoice` does its shapes:
    /// every build in a process then makes the same graph (a close case could otherwise go either
    /// way from one build to the next).
    private static let decided = Mutex<[Key: ResidualStackDecision]>([:])

    private struct Key: Hashable {
        var shape: ResidualStackShape
        var bf16: Bool
    }

    static func decide(in model: [UInt8], runtime: OnnxRuntime, bf16: Bool) -> [ResidualStackDecision] {
        guard let shapes = try? ResidualStackRewrite.levels(in: model) else { return [] }
        return shapes.enumerated().map { index, shape in
            let key = Key(shape: shape, bf16: bf16)
            if let known = decided.withLock({ $0[key] }) { return known }
            let samples = max(shortest, min(longest, timedMultiplyAdds / max(1, shape.multiplyAddsPerSample) / 256 * 256))
            let decision: ResidualStackDecision
            do {
                decision = try timed(model, index: index, shape: shape, samples: samples, runtime: runtime, bf16: bf16)
            } catch {
                decision = ResidualStackDecision(
                    shape: shape, samples: samples, fusedSeconds: .infinity, onnxRuntimeSeconds: .infinity, relativeDifference: .infinity,
                    used: false, problem: "\(error)")
            }
            return decided.withLock { known in
                if let first = known[key] { return first }
                known[key] = decision
                return decision
            }
        }
    }

    private static func timed(
        _ model: [UInt8], index: Int, shape: ResidualStackShape, samples: Int, runtime: OnnxRuntime, bf16: Bool
    ) throws -> ResidualStackDecision {
        guard let models = try ResidualStackRewrite.levelModels(in: model, index: index, length: samples, bf16: bf16) else {
            throw LevelNotFound(index: index)
        }
        // What runs the level unfused: its convolutions on DirectConv where that timing chooses
        // it (in bf16, most of them), the rest restated for ONNX Runtime's blocked kernels.
        var plain = models.original
        let shapes = try DirectConvolutionRewrite.candidates(in: plain, bf16: bf16)
        let used = DirectConvolutionChoice.decide(shapes, runtime: runtime, bf16: bf16).filter(\.used)
        let winograd = Dictionary(used.compactMap { decision in decision.winograd.map { (decision.shape, $0) } }) { first, _ in first }
        if !used.isEmpty { plain = try DirectConvolutionRewrite.apply(to: plain, chosen: Set(used.map(\.shape)), bf16: bf16, winograd: winograd).model }
        plain = (try? ConvolutionRewrite.apply(to: plain).model) ?? plain
        let oneThread = SessionConfiguration(intraOpThreads: 1, interOpThreads: 1)
        let candidates: [[WinogradSize?]?] = [nil] + (bf16 ? [] : shape.winogradCandidates.map { $0 })
        var fused: [InferenceSession] = [try InferenceSession(model: models.fused, configuration: oneThread, runtime: runtime)]
        for winograd in candidates.dropFirst() {
            guard let level = try ResidualStackRewrite.levelModels(in: model, index: index, length: samples, bf16: bf16, winograd: winograd) else {
                throw LevelNotFound(index: index)
            }
            fused.append(try InferenceSession(model: level.fused, configuration: oneThread, runtime: runtime))
        }
        let reference = try InferenceSession(model: plain, configuration: oneThread, runtime: runtime)
        var state = UInt64(shape.channels * 7_919 + samples)
        let x = (0..<shape.channels * samples).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, Int64(shape.channels), Int64(samples)], values: x)]
        // The first run of each (untimed: it pays for the arena's growth) checks the output.
        let expected = try reference.run(inputs)
        let largest = expected.map(abs).max() ?? 0
        let tolerance = bf16 ? DirectConvolutionChoice.bf16Tolerance : 1e-4
        let relative = try fused.map { session -> Float in
            let actual = try session.run(inputs)
            let difference = zip(expected, actual).map { abs($0 - $1) }.max() ?? .infinity
            return expected.count == actual.count ? difference / max(largest, 1e-6) : .infinity
        }
        var best = [Double](repeating: .infinity, count: fused.count)
        var referenceBest = Double.infinity
        for _ in 0..<rounds {
            // Outputs released unread: copying them out would put page faults in the timing.
            for (candidate, session) in fused.enumerated() where relative[candidate] <= tolerance {
                best[candidate] = min(best[candidate], try DirectConvolutionChoice.seconds { try session.runDiscardingOutput(inputs) })
            }
            referenceBest = min(referenceBest, try DirectConvolutionChoice.seconds { try reference.runDiscardingOutput(inputs) })
        }
        let chosen = best.indices.min { best[$0] < best[$1] } ?? 0
        return ResidualStackDecision(
            shape: shape, samples: samples, fusedSeconds: best[chosen], onnxRuntimeSeconds: referenceBest, relativeDifference: relative[chosen],
            used: relative[chosen] <= tolerance && best[chosen] < referenceBest, winograd: candidates[chosen],
            directFusedSeconds: chosen == 0 ? nil : best[0])
    }

    struct LevelNotFound: Error, CustomStringConvertible {
        let index: Int
        var description: String { "level \(index) of the model could not be copied out" }
    }
}
