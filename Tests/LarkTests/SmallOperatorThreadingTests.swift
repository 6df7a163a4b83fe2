import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// The `ai.lark` small operators share their work among ONNX Runtime's threads when it is large
/// enough (CLarkKernels: `gated_tanh.c`, `channel_layer_norm.c`, `relative_attention.c`): at two
/// threads each must give exactly what it gives at one, where it runs as one piece. (Each
/// against the ONNX nodes it replaces: `GatedActivationTests`, `ChannelLayerNormTests`,
/// `RelativeAttentionTests`.)
@Suite struct SmallOperatorThreadingTests {
    /// Sizes of a long sentence (hundreds of frames), so that each operator cuts its work into
    /// many tasks; and odd lengths, so that the last task is a ragged one.
    @Test(arguments: Case.all)
    func twoThreadsGiveWhatOneGives(_ test: Case) throws {
        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 11)
        let inputs: [InputTensor] = test.inputs.map { input in
            let count = Int(input.dims.reduce(1, *))
            return .float32(name: input.name, shape: input.dims, values: (0..<count).map { _ in random.uniform() * 4 })
        }
        let model = try test.model()
        let one = try InferenceSession(model: model, configuration: .init(intraOpThreads: 1), runtime: runtime).run(inputs)
        let two = try InferenceSession(model: model, configuration: .init(intraOpThreads: 2), runtime: runtime).run(inputs)
        #expect(one.count == Int(test.outputDims.reduce(1, *)))
        #expect(one.allSatisfy { $0.isFinite })
        #expect(two == one, "\(test.opType)")
        // And both are right everywhere, the ragged last task included.
        let values = inputs.map { input -> [Float] in if case .float32(_, _, let data) = input { data } else { [] } }
        let reference = test.reference(values)
        let largest = zip(one, reference).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? .infinity
        #expect(largest < 1e-4, "\(test.opType): largest difference \(largest)")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let opType: String
        let inputs: [(name: String, dims: [Int64])]
        let outputDims: [Int64]
        var testDescription: String { opType }

        static let all = [
            Case(opType: "GatedTanh", inputs: [("X", [2, 384, 1_001])], outputDims: [2, 192, 1_001]),
            Case(opType: "ChannelLayerNorm", inputs: [("X", [1, 192, 2_003]), ("gamma", [192]), ("beta", [192])], outputDims: [1, 192, 2_003]),
            Case(opType: "RelativeKeyLogits", inputs: [("Q", [1, 2, 601, 96]), ("E", [1, 9, 96])], outputDims: [1, 2, 601, 601]),
            Case(opType: "RelativeValueWeights", inputs: [("P", [1, 2, 601, 601]), ("E", [2, 9, 96])], outputDims: [1, 2, 601, 96]),
        ]

        /// What the operator computes, in double precision, by its definition.
        func reference(_ values: [[Float]]) -> [Double] {
            let x = values[0].map(Double.init)
            let dims = inputs[0].dims.map(Int.init)
            switch opType {
            case "GatedTanh":
                let (batch, half, length) = (dims[0], dims[1] / 2, dims[2])
                return (0..<batch * half * length).map { index in
                    let (n, rest) = index.quotientAndRemainder(dividingBy: half * length)
                    let a = x[n * 2 * half * length + rest], b = x[n * 2 * half * length + half * length + rest]
                    return tanh(a) / (1 + exp(-b))
                }
            case "ChannelLayerNorm":
                let (channels, length) = (dims[1], dims[2])
                var y = [Double](repeating: 0, count: channels * length)
                for t in 0..<length {
                    let column = (0..<channels).map { x[$0 * length + t] }
                    let mean = column.reduce(0, +) / Double(channels)
                    let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(channels)
                    for c in 0..<channels {
                        y[c * length + t] = (column[c] - mean) / (variance + 1e-5).squareRoot() * Double(values[1][c]) + Double(values[2][c])
                    }
                }
                return y
            default:  // RelativeKeyLogits, RelativeValueWeights
                let e = values[1].map(Double.init)
                let (heads, length) = (dims[1], dims[2])
                let (tables, rows, depth) = (Int(inputs[1].dims[0]), Int(inputs[1].dims[1]), Int(inputs[1].dims[2]))
                let window = (rows - 1) / 2
                let width = opType == "RelativeKeyLogits" ? length : depth
                var y = [Double](repeating: 0, count: dims[0] * heads * length * width)
                for item in 0..<dims[0] * heads {
                    let table = (tables == 1 ? 0 : item % heads) * rows * depth
                    for i in 0..<length {
                        for j in max(0, i - window)...min(length - 1, i + window) {
                            let entry = table + (j - i + window) * depth
                            if opType == "RelativeKeyLogits" {
                                let query = (item * length + i) * depth
                                y[(item * length + i) * width + j] = (0..<depth).reduce(0) { $0 + x[query + $1] * e[entry + $1] }
                            } else {
                                let weight = x[(item * length + i) * length + j]
                                for c in 0..<depth { y[(item * length + i) * width + c] += weight * e[entry + c] }
                            }
                        }
                    }
                }
                return y
            }
        }

        /// The operator alone, its inputs the model's.
        func model() throws -> [UInt8] {
            try OneGraphModel.make(inputs: inputs.map { ($0.name, $0.dims) }, output: ("Y", outputDims)) { graph throws(MalformedProtobuf) in
                try graph.customNode(opType, domain: DirectConvolutionRewrite.domain, inputs: inputs.map(\.name), output: "Y") { _ in }
            }
        }
    }
}
