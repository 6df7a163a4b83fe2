import Foundation
import OnnxGraph
import OnnxRuntime

/// "This is a test." spoken by the joe voice at zero noise: what the graph-rewrite tests run
/// through the original model and through a rewritten one to compare their audio.
enum JoeProbeAudio {
    /// Piper's ids for the sentence, framed by ^ and $; noise off, length scale 1.
    static let inputs: [InputTensor] = {
        let ids: [Int64] = [1, 0, 41, 0, 74, 0, 31, 0, 3, 0, 74, 0, 38, 0, 3, 0, 14, 0, 3, 0, 32, 0, 120, 0, 61, 0, 31, 0, 32, 0, 10, 0, 2]
        return [
            .int64(name: "input", shape: [1, Int64(ids.count)], values: ids),
            .int64(name: "input_lengths", shape: [1], values: [Int64(ids.count)]),
            .float32(name: "scales", shape: [3], values: [0, 1, 0]),
        ]
    }()

    /// The original model's audio.
    static func original() throws -> [Float] {
        let runtime = try OnnxRuntime.shared.get()
        return try InferenceSession(modelPath: Checkout.joeModel, configuration: .init(), runtime: runtime).run(inputs)
    }

    /// `model`'s audio as a voice loads it: optimized by ONNX Runtime, the blocked layout's
    /// stand-in convolutions made elementwise again (`BlockedLayoutCleanup`, how many it replaced),
    /// run with basic optimization.
    static func loaded(_ model: [UInt8]) throws -> (audio: [Float], cleanedNodes: Int) {
        let runtime = try OnnxRuntime.shared.get()
        let (_, optimizedModel) = try InferenceSession.optimizedModel(model, configuration: .init(), runtime: runtime)
        let cleaned = try BlockedLayoutCleanup.apply(to: optimizedModel)
        let session = try InferenceSession(model: cleaned.model, configuration: .init(optimization: .basic), runtime: runtime)
        return (try session.run(inputs), cleaned.replacedNodes)
    }

    /// `model`'s audio as a voice loads it (`loaded`), or, with `optimized` false, `model` run as it is.
    static func audio(of model: [UInt8], optimized: Bool = true) throws -> [Float] {
        guard optimized else {
            return try InferenceSession(model: model, configuration: .init(), runtime: try OnnxRuntime.shared.get()).run(inputs)
        }
        return try loaded(model).audio
    }

    /// The largest sample difference between two runs' audio (infinity when their lengths differ).
    static func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }
}
