import CLarkKernels
import Foundation
import OnnxGraph
import OnnxRuntime
@testable import PiperEngine
import Testing

/// `PreparedWeightsRewrite`: a DirectConv's weights held in the graph in the form its kernel reads
/// (Winograd-transformed, packed), one copy instead of W plus the kernel's own prepared copy.
@Suite struct PreparedWeightsTests {
    /// The graph's initializers' bytes, by name.
    static func initializerBytes(_ model: [UInt8]) throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try ModelInitializers.read(model).map { ($0.name, $0.rawData.count) })
    }

    /// One DirectConv of `shape` (with a Winograd size or none) on random weights and input: the
    /// graph with W, the same graph with W prepared, and the inputs.
    static func models(_ shape: DirectConvolutionShape, length: Int, path: Int? = nil, winograd: WinogradSize?) throws
        -> (direct: [UInt8], prepared: PreparedWeightsRewrite.Result, inputs: [InputTensor])
    {
        var random = TestRandom(seed: UInt64(shape.outputChannels * 7 + length))
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() * 0.05 }
        let bias = (0..<shape.outputChannels).map { _ in random.uniform() }
        let direct = try DirectConvolutionRewrite.singleConvolution(shape, length: length, weights: weights, bias: bias, kernelPath: path, winograd: winograd)
            .direct
        let prepared = try PreparedWeightsRewrite.apply(to: direct, prepare: PreparedConvolutionWeights.prepare)
        let inputs: [InputTensor] = [
            .float32(name: "X", shape: [1, Int64(shape.inputChannels), Int64(length)], values: (0..<shape.inputChannels * length).map { _ in random.uniform() })
        ]
        return (direct, prepared, inputs)
    }

    /// The flow's shape as Winograd F(4, 5): the graph then holds the transformed weights in W's
    /// place (no tensor of W's size left), and its output is the kernel's own, sample for sample,
    /// on one and two threads.
    @Test func aWinogradConvolutionReadsItsGraphsWeightsInPlace() throws {
        let shape = DirectConvolutionShape(inputChannels: 192, outputChannels: 384, kernel: 5, padBegin: 2, padEnd: 2, preAlpha: nil, postAlpha: nil, bias: true)
        let (direct, prepared, inputs) = try Self.models(shape, length: 700, winograd: WinogradSize(outputs: 4, taps: 5))
        #expect(prepared.replaced == 1)
        let plainBytes = shape.multiplyAddsPerSample * 4
        #expect(prepared.plainBytes == plainBytes)
        #expect(prepared.preparedBytes >= plainBytes * 8 / 5, "F(4, 5) has 8 points for 5 taps: \(prepared.preparedBytes) bytes")
        let before = try Self.initializerBytes(direct), after = try Self.initializerBytes(prepared.model)
        #expect(before["W0"] == plainBytes && after["W0"] == prepared.preparedBytes)
        #expect(!after.values.contains(plainBytes), "W is held in one form only")
        #expect(after.values.reduce(0, +) == before.values.reduce(0, +) - plainBytes + prepared.preparedBytes)
        // Held as [R, C·K], so a profile still counts the convolution's multiply-adds from W's shape.
        let dims = try #require(try ModelInitializers.read(prepared.model).first { $0.name == "W0" }?.dims)
        #expect(dims.count == 2 && dims[1] == 192 * 5 && Int(dims[0] * dims[1]) * 4 == prepared.preparedBytes, "\(dims)")
        #expect(NodeArithmetic.flops(opType: "DirectConv", inputs: [[1, 192, 700], dims.map(Int.init)], outputs: [[1, 384, 700]])
                == 2 * 384 * 700 * 192 * 5)
        let runtime = try OnnxRuntime.shared.get()
        for threads in [1, 2] {
            let configuration = SessionConfiguration(intraOpThreads: threads)
            let expected = try InferenceSession(model: direct, configuration: configuration, runtime: runtime).run(inputs)
            let actual = try InferenceSession(model: prepared.model, configuration: configuration, runtime: runtime).run(inputs)
            #expect(!expected.isEmpty && actual == expected, "\(threads) threads")
        }
        // Nothing left to prepare in a prepared graph.
        #expect(try PreparedWeightsRewrite.apply(to: prepared.model, prepare: PreparedConvolutionWeights.prepare).replaced == 0)
    }

    /// The packed FP32 paths (AVX-512, AVX2) read a prepared W for whole 8-channel blocks; with channels
    /// past the last block it needs W itself, so W stays; the generic paths read W as it is.
    @Test(arguments: DirectConvolutionTests.paths.map { Int($0.rawValue) })
    func packedWeightsOnlyWhereTheyAreAllTheKernelReads(path: Int) throws {
        let packed = [LARK_PATH_AVX512, LARK_PATH_AVX2].map { Int($0.rawValue) }.contains(path)  // the packed FP32 kernels go with these
        let runtime = try OnnxRuntime.shared.get()
        for outputChannels in [32, 29] {
            let shape = DirectConvolutionShape(inputChannels: 32, outputChannels: outputChannels, kernel: 3, padBegin: 1, padEnd: 1, preAlpha: 0.1, postAlpha: nil, bias: true)
            let (direct, prepared, inputs) = try Self.models(shape, length: 500, path: path, winograd: nil)
            #expect(prepared.replaced == (packed && outputChannels % 8 == 0 ? 1 : 0), "path \(path), \(outputChannels) channels")
            let expected = try InferenceSession(model: direct, configuration: .init(), runtime: runtime).run(inputs)
            let actual = try InferenceSession(model: prepared.model, configuration: .init(), runtime: runtime).run(inputs)
            #expect(!expected.isEmpty && actual == expected, "path \(path), \(outputChannels) channels")
        }
    }

    /// A fused HiFi-GAN level (ResidualStack) with some convolutions on Winograd: each convolution
    /// whose kernel reads a prepared form holds it in W's place, and the level computes exactly
    /// what it computes with W, on every SIMD path.
    @Test(arguments: DirectConvolutionTests.paths.map { Int($0.rawValue) })
    func aFusedLevelReadsItsGraphsWeightsInPlace(path: Int) throws {
        let channels = 32, length = 900
        let model = try ResidualStackTests.levelGraph(
            channels: channels, length: length, batch: 1, kernels: [3, 5, 7], dilations: [[1, 2], [2, 6], [3, 12]], type1: false, post: 0.1, seed: 9)
        let sizes: [WinogradSize?] = [nil, WinogradSize(outputs: 3, taps: 3), nil, WinogradSize(outputs: 4, taps: 5), nil, nil]
        let fused = try #require(try ResidualStackRewrite.levelModels(in: model, index: 0, length: length, kernelPath: path, winograd: sizes)).fused
        let prepared = try PreparedWeightsRewrite.apply(to: fused, prepare: PreparedConvolutionWeights.prepare)
        let packed = [LARK_PATH_AVX512, LARK_PATH_AVX2].map { Int($0.rawValue) }.contains(path)
        #expect(prepared.replaced == 1, "one node")
        // Every convolution on the packed path; the two Winograd ones elsewhere.
        let plainBytes = 32 * 32 * 4 * (packed ? 3 + 3 + 5 + 5 + 7 + 7 : 3 + 5)  // kernels 3, 3, 5, 5, 7, 7
        #expect(prepared.plainBytes == plainBytes, "path \(path): \(prepared.plainBytes) bytes of W replaced")
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, Int64(channels), Int64(length)], values: (0..<channels * length).map { Float($0 % 97) / 50 - 1 })]
        let runtime = try OnnxRuntime.shared.get()
        let configuration = SessionConfiguration(intraOpThreads: 2)
        let expected = try InferenceSession(model: fused, configuration: configuration, runtime: runtime).run(inputs)
        let actual = try InferenceSession(model: prepared.model, configuration: configuration, runtime: runtime).run(inputs)
        #expect(!expected.isEmpty && actual == expected, "path \(path)")
    }

    /// A graph whose prepared form is not the one this CPU's kernel reads (made for another CPU)
    /// is refused with a message that names the attribute, never run on misread weights.
    @Test func aFormTheKernelDoesNotReadIsRefused() throws {
        let shape = DirectConvolutionShape(inputChannels: 96, outputChannels: 128, kernel: 5, padBegin: 2, padEnd: 2, preAlpha: nil, postAlpha: nil, bias: true)
        var random = TestRandom(seed: 3)
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() }
        let direct = try DirectConvolutionRewrite.singleConvolution(shape, length: 200, weights: weights, bias: [Float](repeating: 0, count: 128),
                                                                    winograd: WinogradSize(outputs: 4, taps: 5)).direct
        let mislabeled = try PreparedWeightsRewrite.apply(to: direct) { request in
            PreparedConvolutionWeights.prepare(request).map { .init(form: $0.form == 4 ? 3 : 4, bytes: $0.bytes) }
        }
        #expect(mislabeled.replaced == 1)
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, 96, 200], values: [Float](repeating: 0.5, count: 96 * 200))]
        let runtime = try OnnxRuntime.shared.get()
        #expect { _ = try InferenceSession(model: mislabeled.model, configuration: .init(), runtime: runtime).run(inputs) } throws: { error in
            "\(error)".contains("prepared_weights")
        }
    }
}
