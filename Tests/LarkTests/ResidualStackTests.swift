import CLarkKernels
import Foundation
@testable import OnnxGraph
import OnnxRuntime
@testable import PiperEngine
import Testing

/// Lark's fused HiFi-GAN level (`ai.lark.ResidualStack`, CLarkKernels `residual_stack.c`) against
/// ONNX Runtime running the same level's own nodes, and the rewrite that puts it in a voice.
@Suite struct ResidualStackTests {
    /// A level as a graph of plain nodes, as Piper's exports have it: X, blocks of steps
    /// (`kernels[b]`, `dilations[b]`), for ResBlock1 (`type1`) each step two convolutions (the
    /// second at dilation 1), the blocks' Adds, a Div by the block count, optionally a LeakyRelu and
    /// optionally a one-channel convolution of `postConv.kernel` taps (HiFi-GAN's `conv_post`; VITS's has no bias).
    static func levelGraph(
        channels: Int, length: Int, batch: Int, kernels: [Int], dilations: [[Int]], type1: Bool, post: Float?, seed: UInt64,
        postConv: (kernel: Int, bias: Bool)? = nil
    ) throws -> [UInt8] {
        var random = TestRandom(seed: seed)
        let c = Int64(channels)
        let dims: [Int64] = [Int64(batch), c, Int64(length)]
        let output: [Int64] = [Int64(batch), postConv == nil ? c : 1, Int64(length)]
        return try OneGraphModel.make(inputs: [("X", dims)], output: ("Y", output)) { graph throws(MalformedProtobuf) in
            var convolution = 0
            func conv(_ input: String, kernel: Int, dilation: Int, output: String) throws(MalformedProtobuf) {
                let name = "c\(convolution)"
                convolution += 1
                // Weights scaled so that a chain of residual steps keeps the values near 1.
                let scale = 1 / Float(channels * kernel).squareRoot()
                try graph.floatTensor("\(name).w", dims: [c, c, Int64(kernel)], values: (0..<channels * channels * kernel).map { _ in random.uniform() * scale })
                try graph.floatTensor("\(name).b", dims: [c], values: (0..<channels).map { _ in random.uniform() * 0.1 })
                try graph.customNode("Conv", domain: "", inputs: [input, "\(name).w", "\(name).b"], output: output, name: name) { node throws(MalformedProtobuf) in
                    let reach = Int64((kernel - 1) / 2 * dilation)
                    try node.intsAttribute("kernel_shape", [Int64(kernel)])
                    try node.intsAttribute("dilations", [Int64(dilation)])
                    try node.intsAttribute("pads", [reach, reach])
                    try node.intsAttribute("strides", [1])
                }
            }
            func leaky(_ input: String, _ output: String, _ alpha: Float = 0.1) throws(MalformedProtobuf) {
                try graph.customNode("LeakyRelu", domain: "", inputs: [input], output: output) { $0.floatAttribute("alpha", alpha) }
            }
            try leaky("X", "x.act")  // read by every block's first step, as the export shares it
            var sum: String?
            for (b, kernel) in kernels.enumerated() {
                var value = "X"
                for (s, dilation) in dilations[b].enumerated() {
                    let prefix = "b\(b)s\(s)"
                    let activated = s == 0 ? "x.act" : "\(prefix).act"
                    if s > 0 { try leaky(value, activated) }
                    if type1 {
                        try conv(activated, kernel: kernel, dilation: dilation, output: "\(prefix).h")
                        try leaky("\(prefix).h", "\(prefix).hact")
                        try conv("\(prefix).hact", kernel: kernel, dilation: 1, output: "\(prefix).conv")
                    } else {
                        try conv(activated, kernel: kernel, dilation: dilation, output: "\(prefix).conv")
                    }
                    try graph.customNode("Add", domain: "", inputs: ["\(prefix).conv", value], output: "\(prefix).out") { _ in }
                    value = "\(prefix).out"
                }
                if let previous = sum {
                    try graph.customNode("Add", domain: "", inputs: [previous, value], output: "sum\(b)") { _ in }
                    sum = "sum\(b)"
                } else {
                    sum = value
                }
            }
            try graph.floatTensor("count", dims: [], values: [Float(kernels.count)])
            let result = postConv == nil ? "Y" : "level"
            try graph.customNode("Div", domain: "", inputs: [sum!, "count"], output: post == nil ? result : "mean") { _ in }
            if let post { try leaky("mean", result, post) }
            if let postConv {
                let k = postConv.kernel
                try graph.floatTensor("post.w", dims: [1, c, Int64(k)], values: (0..<channels * k).map { _ in random.uniform() / Float(channels * k).squareRoot() })
                if postConv.bias { try graph.floatTensor("post.b", dims: [1], values: [random.uniform() * 0.1]) }
                try graph.customNode("Conv", domain: "", inputs: ["level", "post.w"] + (postConv.bias ? ["post.b"] : []), output: "Y", name: "post") {
                    node throws(MalformedProtobuf) in
                    try node.intsAttribute("kernel_shape", [Int64(k)])
                    try node.intsAttribute("pads", [Int64(k / 2), Int64(k / 2)])
                }
            }
        }
    }

    /// Runs level 0 of `model` both ways on random X; the largest difference relative to the largest output.
    static func compare(
        _ model: [UInt8], channels: Int, length: Int, batch: Int, tile: Int?, path: Int?, bf16: Bool = false, threads: Int = 1, seed: UInt64,
        winograd: [WinogradSize?]? = nil
    ) throws -> Float {
        let models = try #require(try ResidualStackRewrite.levelModels(
            in: model, index: 0, length: length, batch: batch, tile: tile, kernelPath: path, bf16: bf16, winograd: winograd))
        var random = TestRandom(seed: seed)
        let x = (0..<batch * channels * length).map { _ in random.uniform() }
        let inputs: [InputTensor] = [.float32(name: "X", shape: [Int64(batch), Int64(channels), Int64(length)], values: x)]
        let runtime = try OnnxRuntime.shared.get()
        let configuration = SessionConfiguration(intraOpThreads: threads)
        let expected = try InferenceSession(model: models.original, configuration: configuration, runtime: runtime).run(inputs)
        let actual = try InferenceSession(model: models.fused, configuration: configuration, runtime: runtime).run(inputs)
        let shape = try #require(try ResidualStackRewrite.levels(in: model).first)
        #expect(expected.count == batch * shape.outputChannels * length && actual.count == expected.count)
        return DirectConvolutionTests.relativeDifference(expected, actual)
    }

    /// Random levels of both block types: channel counts on and off the kernel's 8-channel blocks,
    /// lengths shorter than the halo, on and across tile boundaries (tiles of 384 and 768 forced),
    /// batch 1 and 2, with and without the LeakyRelu after, with and without a one-channel
    /// convolution after (whose taps then reach across tiles); every SIMD path this machine has.
    @Test(arguments: DirectConvolutionTests.paths.map { Int($0.rawValue) })
    func operatorMatchesOnnxRuntime(path: Int) throws {
        var random = TestRandom(seed: 91)
        let lengths = [1, 7, 40, 383, 385, 800, 1_537]
        for index in 0..<10 {
            let type1 = index % 2 == 1
            let channels = [8, 12, 16, 20, 32, 5][random.below(6)]
            let length = lengths[index % lengths.count] + random.below(3)
            let batch = 1 + random.below(2)
            let kernels = type1 ? [3, 7, 11] : [3, 5, 7]
            let dilations = type1 ? [[1, 3, 5], [1, 3, 5], [1, 3, 5]] : [[1, 2], [2, 6], [3, 12]]
            let post: Float? = [nil, 0.1, 0.01][random.below(3)]
            let postConv: (kernel: Int, bias: Bool)? = [nil, (7, false), (3, true)][random.below(3)]
            let model = try Self.levelGraph(
                channels: channels, length: length, batch: batch, kernels: kernels, dilations: dilations, type1: type1, post: post,
                seed: UInt64(index), postConv: postConv)
            let shapes = try ResidualStackRewrite.levels(in: model)
            #expect(shapes.count == 1 && shapes.first?.postAlpha == post && shapes.first?.blocks.first?.first?.count == (type1 ? 2 : 1))
            #expect(shapes.first?.postKernel == postConv?.kernel)
            let tile = [nil, 384, 768][index % 3]
            let difference = try Self.compare(model, channels: channels, length: length, batch: batch, tile: tile, path: path, seed: UInt64(index))
            #expect(difference <= 1e-4, "case \(index): \(channels) ch, length \(length), batch \(batch), type1 \(type1), tile \(tile ?? 0), post conv \(postConv?.kernel ?? 0): \(difference)")
        }
    }

    /// joe's three levels (128, 64 and 32 channels) as the voice has them, tiles split over two threads.
    @Test func joeLevelsMatchOnnxRuntime() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let shapes = try ResidualStackRewrite.levels(in: bytes)
        #expect(shapes.map(\.channels) == [128, 64, 32])
        #expect(shapes.map(\.postAlpha) == [0.1, 0.1, 0.01])
        #expect(shapes.map(\.postKernel) == [nil, nil, 7])  // conv_post goes into the last level
        #expect(shapes.allSatisfy { $0.blocks.count == 3 && $0.blocks.allSatisfy { $0.count == 2 } && abs($0.scale - 1.0 / 3) < 1e-6 })
        for (index, shape) in shapes.enumerated() {
            let difference = try Self.compareLevel(bytes, index: index, channels: shape.channels, length: 1_000 + 37 * index)
            #expect(difference <= 1e-4, "level \(index) (\(shape)): \(difference)")
        }
    }

    static func compareLevel(_ model: [UInt8], index: Int, channels: Int, length: Int, winograd: [WinogradSize?]? = nil) throws -> Float {
        let models = try #require(try ResidualStackRewrite.levelModels(in: model, index: index, length: length, winograd: winograd))
        var random = TestRandom(seed: UInt64(length))
        let inputs: [InputTensor] = [.float32(
            name: "X", shape: [1, Int64(channels), Int64(length)], values: (0..<channels * length).map { _ in random.uniform() })]
        let runtime = try OnnxRuntime.shared.get()
        let configuration = SessionConfiguration(intraOpThreads: 2)
        let expected = try InferenceSession(model: models.original, configuration: configuration, runtime: runtime).run(inputs)
        let actual = try InferenceSession(model: models.fused, configuration: configuration, runtime: runtime).run(inputs)
        return DirectConvolutionTests.relativeDifference(expected, actual)
    }

    /// bf16: the level's convolutions multiplied in bfloat16 stay within 2% of FP32 relative to
    /// the largest output (bf16 keeps 8 bits of mantissa: ~0.4% per product, compounded over two
    /// steps), and do differ from it.
    @Test(.enabled(if: ComputePrecision.bf16Supported, "this CPU lacks AVX512-BF16"))
    func bf16IsWithinItsBound() throws {
        for (index, type1) in [false, true].enumerated() {
            let model = try Self.levelGraph(
                channels: 16, length: 500, batch: 1, kernels: [3, 7, 11], dilations: [[1, 3, 5], [1, 3, 5], [1, 3, 5]], type1: type1,
                post: 0.1, seed: 5 + UInt64(index))
            let difference = try Self.compare(model, channels: 16, length: 500, batch: 1, tile: 384, path: nil, bf16: true, seed: 3)
            #expect(difference <= 2e-2 && difference > 1e-6, "type1 \(type1): \(difference)")
        }
    }

    /// joe through the rewrite (all three levels fused, then the other rewrites) speaks within 1e-3
    /// of the original graph at zero noise, as the loader builds it.
    @Test func joeVoiceGivesTheSameAudio() async throws {
        // The work on a thread of its own, the expectations here: an #expect on that thread would
        // be recorded against no test.
        let (replaced, removed, levelsLeft, largest) = try await onThread { () throws -> (Int, Int, Int, Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let fused = try ResidualStackRewrite.apply(to: bytes)
            let rewritten = try ConvolutionRewrite.apply(to: fused.model)
            let audio = try JoeProbeAudio.audio(of: rewritten.model)
            let largest = JoeProbeAudio.largestDifference(try JoeProbeAudio.original(), audio)
            return (fused.replaced, fused.removedNodes, try ResidualStackRewrite.levels(in: fused.model).count, largest)
        }
        // Per level: 3 blocks × 2 steps × (LeakyRelu, Conv, Add) less the 2 shared LeakyRelus,
        // 2 Adds, the Div and the LeakyRelu after; and conv_post.
        #expect(replaced == 3 && removed == 3 * 20 + 1, "\(replaced) levels, \(removed) nodes")
        #expect(levelsLeft == 0)
        #expect(largest < 1e-3, "largest difference \(largest)")
    }

    /// Each fused level reads its upsampling's output in the plain layout, so the clean-up leaves
    /// no blocked round trip (`ReorderInput` → stand-in → `ReorderOutput`) before it: one
    /// `Identity` per level instead of three nodes, and the audio is the same.
    @Test func noBlockedRoundTripBeforeAFusedLevel() async throws {
        // Measured on a thread of its own (a session's work would block the test's executor);
        // the expectations are checked here, in the test's context.
        let (removed, largest) = try await onThread { () throws -> ([String: Int], Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let rewritten = try ConvolutionRewrite.apply(to: try ResidualStackRewrite.apply(to: bytes).model)
            let runtime = try OnnxRuntime.shared.get()
            let (_, optimized) = try InferenceSession.optimizedModel(rewritten.model, configuration: .init(), runtime: runtime)
            let cleaned = try BlockedLayoutCleanup.apply(to: optimized)
            func count(_ opType: String, in model: [UInt8]) throws -> Int {
                try GraphSummary.read(model)!.graph.nodes.filter { $0.1.opType == opType }.count
            }
            var removed: [String: Int] = [:]
            for reorder in ["ReorderInput", "ReorderOutput"] {
                removed[reorder] = try count(reorder, in: optimized) - count(reorder, in: cleaned.model)
            }
            let session = try InferenceSession(model: cleaned.model, configuration: .init(optimization: .basic), runtime: runtime)
            return (removed, JoeProbeAudio.largestDifference(try JoeProbeAudio.original(), try session.run(JoeProbeAudio.inputs)))
        }
        #expect(removed == ["ReorderInput": 3, "ReorderOutput": 3], "reorders removed by the clean-up: \(removed)")
        #expect(largest < 1e-3, "largest difference \(largest)")
    }

    /// A graph without such a level is left alone.
    @Test func otherGraphsAreLeftAlone() throws {
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1, preAlpha: 0.1, residual: true)
        let plain = try DirectConvolutionRewrite.singleConvolution(shape, length: 16, weights: [Float](repeating: 0.5, count: 48), bias: [0, 0, 0, 0]).plain
        #expect(try ResidualStackRewrite.levels(in: plain).isEmpty)
        #expect(try ResidualStackRewrite.apply(to: plain).model == plain)
    }
}
