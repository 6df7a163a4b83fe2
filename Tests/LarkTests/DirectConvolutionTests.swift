import CLarkKernels
import Foundation
@testable import OnnxGraph
import OnnxRuntime
@testable import PiperEngine
import Testing

/// Lark's direct-convolution kernel (`ai.lark.DirectConv`, CLarkKernels) against ONNX Runtime's
/// own `Conv`, `LeakyRelu` and `Add`, run through real sessions, and the rewrite that puts it in a
/// voice.
@Suite struct DirectConvolutionTests {
    /// Every SIMD path this machine has, each forced, plus the scalar one.
    static let paths: [LarkKernelPath] = [LARK_PATH_SCALAR, LARK_PATH_AVX2, LARK_PATH_AVX512, LARK_PATH_NEON]
        .filter { lark_kernel_path_available($0) != 0 }

    /// The FP32 test's lengths and output channel counts also straddle the AVX-512 path's
    /// 48-sample blocks, 384-sample tiles and 8-channel blocks (whole blocks plus a remainder of
    /// 1–7); the bf16 test keeps the cases its bound was checked on.
    static let fp32Lengths = [1, 17, 48, 64, 129, 300, 385, 513]
    static let fp32OutputChannels = [1, 3, 4, 8, 9, 12, 20, 32, 45]

    /// Random shapes: channel counts around and off the kernels' channel blocks, kernels 1–11,
    /// dilations 1–5, symmetric, asymmetric and no padding, lengths that are and are not whole
    /// vectors and tiles, each fusion on and off.
    static func randomCases(
        count: Int, seed: UInt64, lengths: [Int] = [1, 17, 64, 129, 300, 513], outputChannels: [Int] = [1, 3, 4, 8, 9, 32]
    ) -> [(shape: DirectConvolutionShape, length: Int)] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { index in
            let kernel = [1, 3, 5, 7, 11][random.below(5)]
            let dilation = 1 + random.below(5)
            let reach = dilation * (kernel - 1)
            let padBegin = [0, reach / 2, reach, random.below(reach + 1)][random.below(4)]
            let padEnd = [0, reach - padBegin, random.below(reach + 1)][random.below(3)]
            let length = max(reach - padBegin - padEnd + 1, lengths[random.below(lengths.count)] + random.below(3))
            let shape = DirectConvolutionShape(
                inputChannels: index == 0 ? 32 : 1 + random.below(40), outputChannels: index == 0 ? 32 : outputChannels[random.below(outputChannels.count)],
                kernel: kernel, dilation: dilation, padBegin: padBegin, padEnd: padEnd,
                preAlpha: random.below(2) == 0 ? nil : 0.1, postAlpha: random.below(2) == 0 ? nil : 0.2,
                bias: random.below(3) != 0, residual: random.below(2) == 0)
            return (shape, length)
        }
    }

    @Test(arguments: paths.map { Int($0.rawValue) })
    func kernelMatchesOnnxRuntime(path: Int) throws {
        for (shape, length) in Self.randomCases(count: 24, seed: 7, lengths: Self.fp32Lengths, outputChannels: Self.fp32OutputChannels) {
            let difference = try Self.compare(shape, length: length, path: path, threads: 1)
            #expect(difference <= 1e-4, "\(shape), length \(length), path \(path): relative difference \(difference)")
        }
    }

    /// Random sub-pixel shapes (a `ConvTranspose` restated, `DirectConvolutionShape.subpixel`)
    /// against ONNX Runtime's own `ConvTranspose`: strides 2–8 (AVX2's vectorized epilogue takes
    /// multiples of 4, the others its element path), 1–3 taps a phase, crops at either end up to
    /// nearly the kernel, phase channels around the packed blocks of 8 and their halves, lengths
    /// from 1 sample to several time tiles, on every path, one and two threads.
    @Test(arguments: paths.map { Int($0.rawValue) })
    func subpixelKernelMatchesConvTranspose(path: Int) throws {
        var random = TestRandom(seed: 29)
        for index in 0..<24 {
            let stride = index == 0 ? 4 : [2, 3, 4, 8][random.below(4)]
            let taps = index == 0 ? 2 : 1 + random.below(3)
            let kernel = stride * taps
            let padBegin = random.below(kernel), padEnd = random.below(kernel - padBegin)
            let channels = index == 0 ? 32 : [1, 2, 3, 4, 5, 8][random.below(6)]
            let inputChannels = index == 0 ? 64 : 1 + random.below(40)
            // The phases' output must outlast the crop: ((length + taps − 1) · stride > pads.
            let length = max(1, [1, 17, 48, 300, 385, 1_000][random.below(6)] + random.below(3))
            guard (length + taps - 1) * stride > padBegin + padEnd else { continue }
            let shape = DirectConvolutionShape(
                inputChannels: inputChannels, outputChannels: stride * channels, kernel: taps, padBegin: taps - 1, padEnd: taps - 1,
                preAlpha: random.below(2) == 0 ? nil : 0.1, bias: random.below(3) != 0,
                subpixel: SubpixelOutput(stride: stride, padBegin: padBegin, padEnd: padEnd))
            for threads in [1, 2] {
                let difference = try Self.compare(shape, length: length, path: path, threads: threads)
                #expect(difference <= 1e-4, "\(shape), length \(length), path \(path), \(threads) threads: relative difference \(difference)")
            }
        }
    }

    /// Several time tiles split over two of ONNX Runtime's threads give the same result.
    @Test func kernelSplitsOverThreads() throws {
        let shape = DirectConvolutionShape(
            inputChannels: 32, outputChannels: 32, kernel: 11, dilation: 5, padBegin: 25, padEnd: 25, preAlpha: 0.1,
            postAlpha: nil, bias: true, residual: true)
        let difference = try Self.compare(shape, length: 3_001, path: 0, threads: 2)
        #expect(difference <= 1e-4, "relative difference \(difference)")
    }

    /// A residual block as HiFi-GAN has it (LeakyRelu → Conv → LeakyRelu → Conv → Add) becomes two
    /// DirectConv nodes carrying all three element-wise nodes, with the same output.
    @Test func residualBlockIsFused() throws {
        let model = try Self.residualBlock(channels: 8, length: 50)
        let candidates = try DirectConvolutionRewrite.candidates(in: model)
        #expect(candidates.count == 2)
        let rewritten = try DirectConvolutionRewrite.apply(to: model, chosen: Set(candidates))
        #expect(rewritten.replaced == 2)
        #expect(rewritten.fusedNodes == 3)
        let none = try DirectConvolutionRewrite.apply(to: model, chosen: [])
        #expect(none.replaced == 0 && none.model == model)

        let runtime = try OnnxRuntime.shared.get()
        var random = TestRandom(seed: 3)
        let x = (0..<8 * 50).map { _ in random.uniform() }
        let input: [InputTensor] = [.float32(name: "X", shape: [1, 8, 50], values: x)]
        let expected = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(input)
        // As a voice loads it: then restated by ConvolutionRewrite, which leaves DirectConv alone.
        let restated = try ConvolutionRewrite.apply(to: rewritten.model).model
        let actual = try InferenceSession(model: restated, configuration: .init(), runtime: runtime).run(input)
        #expect(Self.relativeDifference(expected, actual) <= 1e-4)
    }

    /// Bad input reaches the kernel as ONNX Runtime's error, not a crash.
    @Test func mismatchedResidualIsAnError() throws {
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1, residual: true)
        let models = try DirectConvolutionRewrite.singleConvolution(
            shape, length: 10, weights: [Float](repeating: 0.5, count: 48), bias: [0, 0, 0, 0])
        let session = try InferenceSession(model: models.direct, configuration: .init(), runtime: try OnnxRuntime.shared.get())
        #expect(throws: OnnxRuntimeError.self) {
            try session.run([
                .float32(name: "X", shape: [1, 4, 10], values: [Float](repeating: 1, count: 40)),
                .float32(name: "Z", shape: [1, 4, 9], values: [Float](repeating: 1, count: 36)),
            ])
        }
    }

    /// The joe voice with every candidate convolution on the kernel (whatever the timing would
    /// choose) speaks within 1e-3 of the original graph at zero noise, also as the loader builds
    /// it (optimized by ONNX Runtime, then cleaned).
    @Test func joeVoiceGivesTheSameAudio() async throws {
        // The work on a thread of its own, the expectations here (an #expect on that thread would
        // be recorded against no test).
        let (replaced, samples, largest) = try await onThread { () throws -> (Int, Int, Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let candidates = try DirectConvolutionRewrite.candidates(in: bytes)
            let direct = try DirectConvolutionRewrite.apply(to: bytes, chosen: Set(candidates))
            let rewritten = try ConvolutionRewrite.apply(to: direct.model)
            let a = try JoeProbeAudio.original()
            let b = try JoeProbeAudio.audio(of: rewritten.model)
            return (direct.replaced, a.count, JoeProbeAudio.largestDifference(a, b))
        }
        // joe-medium: 6 residual convolutions at each of 64 and 32 channels (resblock type 2),
        // conv_post, and its 3 upsamplings as sub-pixel DirectConv.
        #expect(replaced == 16, "\(replaced) replaced")
        #expect(samples > 10_000)
        #expect(largest < 1e-3, "largest difference \(largest)")
    }

    /// The load-time choice times a shape both ways and checks the kernel's output.
    @Test func choiceMeasuresAndChecks() throws {
        // A residual convolution, conv_post and the last upsampling, as the joe voice has them.
        let shapes = [
            DirectConvolutionShape(
                inputChannels: 32, outputChannels: 32, kernel: 7, dilation: 3, padBegin: 9, padEnd: 9, preAlpha: 0.1, residual: true),
            DirectConvolutionShape(inputChannels: 32, outputChannels: 1, kernel: 7, padBegin: 3, padEnd: 3, preAlpha: 0.01, bias: false),
            DirectConvolutionShape(
                inputChannels: 64, outputChannels: 128, kernel: 2, padBegin: 1, padEnd: 1, subpixel: SubpixelOutput(stride: 4, padBegin: 2, padEnd: 2)),
        ]
        let decisions = DirectConvolutionChoice.decide(shapes, runtime: try OnnxRuntime.shared.get())
        #expect(decisions.count == 3)
        for decision in decisions {
            #expect(decision.problem == nil, "\(decision.shape): \(decision.problem ?? "")")
            #expect(decision.relativeDifference <= 1e-4)
            #expect(decision.directSeconds > 0 && decision.directSeconds.isFinite)
            #expect(decision.onnxRuntimeSeconds > 0 && decision.onnxRuntimeSeconds.isFinite)
            #expect(decision.used == DirectConvolutionChoice.routes(
                directSeconds: decision.directSeconds, onnxRuntimeSeconds: decision.onnxRuntimeSeconds, bf16: false,
                subpixel: decision.shape.subpixel != nil))
            // Every round, unless the first already showed the kernel no faster (the screen).
            let rounds = try #require(decision.rounds)
            #expect((1...DirectConvolutionChoice.rounds).contains(rounds))
            if rounds < DirectConvolutionChoice.rounds {
                #expect(decision.directSeconds > DirectConvolutionChoice.screen * decision.onnxRuntimeSeconds && !decision.used)
            }
        }
    }

    /// FP32 goes to the kernel only where it is twice as fast as ONNX Runtime: a residual shape
    /// timed 1.27x faster alone made the whole voice slower (bench/results/overhead.md), while
    /// `conv_post` times ~5x. bf16's routed shapes (1.3-1.8x) keep their margin, Winograd's (the
    /// flow's, timed cold) theirs.
    @Test func routingWantsAClearWin() {
        #expect(!DirectConvolutionChoice.routes(directSeconds: 1 / 1.3, onnxRuntimeSeconds: 1, bf16: false))
        #expect(!DirectConvolutionChoice.routes(directSeconds: 1 / 1.9, onnxRuntimeSeconds: 1, bf16: false))
        #expect(DirectConvolutionChoice.routes(directSeconds: 1 / 5.0, onnxRuntimeSeconds: 1, bf16: false))
        #expect(DirectConvolutionChoice.routes(directSeconds: 1 / 1.3, onnxRuntimeSeconds: 1, bf16: true))
        #expect(!DirectConvolutionChoice.routes(directSeconds: 1 / 1.1, onnxRuntimeSeconds: 1, bf16: true))
        // Winograd shapes, timed cold: 1.55-1.66x made the voice faster, 0.6x did not.
        #expect(DirectConvolutionChoice.routes(directSeconds: 1 / 1.55, onnxRuntimeSeconds: 1, bf16: false, winograd: true))
        #expect(!DirectConvolutionChoice.routes(directSeconds: 1 / 1.25, onnxRuntimeSeconds: 1, bf16: false, winograd: true))
        // Sub-pixel upsamplings, timed against their whole ONNX Runtime form: 1.17-1.5x made the
        // voice faster; one no faster stays.
        #expect(DirectConvolutionChoice.routes(directSeconds: 1 / 1.17, onnxRuntimeSeconds: 1, bf16: false, subpixel: true))
        #expect(!DirectConvolutionChoice.routes(directSeconds: 1 / 1.05, onnxRuntimeSeconds: 1, bf16: false, subpixel: true))
    }

    // MARK: - bf16 (`--precision bf16`)

    /// The bf16 path against ONNX Runtime's FP32 Conv on random shapes, within what bf16's
    /// rounding allows: weights and activations keep 8 significant bits (relative error ≤ 2⁻⁹
    /// each), so each product is off by at most ~2⁻⁸ of its size and a sum of K products by at
    /// most 2⁻⁸ · Σ|w·x| (the FP32 sums add ~K·2⁻²⁴, negligible here). The bound is computed per
    /// output from a second Conv of |W| over |activated X|.
    @Test(.enabled(if: ComputePrecision.bf16Supported, "this CPU lacks AVX512-BF16: the bf16 path cannot run"))
    func bf16KernelIsWithinItsRoundingBound() throws {
        for (shape, length) in Self.randomCases(count: 24, seed: 19) {
            let excess = try Self.compareBF16(shape, length: length, threads: 1)
            #expect(excess <= 1, "\(shape), length \(length): error \(excess)× the bf16 bound")
        }
        // Large decoder-like shapes (many input channels: long sums) and two threads.
        let large = DirectConvolutionShape(
            inputChannels: 128, outputChannels: 128, kernel: 11, dilation: 5, padBegin: 25, padEnd: 25, preAlpha: 0.1, residual: true)
        #expect(try Self.compareBF16(large, length: 700, threads: 2) <= 1)
        // The bound is not vacuous: bf16 does differ from FP32, by a visible fraction of it.
        let plain = DirectConvolutionShape(inputChannels: 64, outputChannels: 8, kernel: 7, padBegin: 3, padEnd: 3)
        let used = try Self.compareBF16(plain, length: 300, threads: 1)
        #expect(used > 0.01 && used <= 1, "error \(used)× the bound")
    }

    /// A bf16 node on a CPU without AVX512-BF16 is refused when the session loads, naming why.
    @Test(.enabled(if: !ComputePrecision.bf16Supported, "this CPU has AVX512-BF16 (the kernel test covers it)"))
    func bf16IsRefusedWithoutTheFeature() throws {
        let shape = DirectConvolutionShape(inputChannels: 4, outputChannels: 4, kernel: 3, padBegin: 1, padEnd: 1)
        let models = try DirectConvolutionRewrite.singleConvolution(
            shape, length: 10, weights: [Float](repeating: 0.5, count: 48), bias: [0, 0, 0, 0], bf16: true)
        #expect(throws: OnnxRuntimeError.self) {
            _ = try InferenceSession(model: models.direct, configuration: .init(), runtime: try OnnxRuntime.shared.get())
        }
        #expect(ComputePrecision.bf16.unsupportedReason?.contains("AVX512-BF16") == true)
    }

    /// The load-time choice in bf16 takes the decoder's larger convolutions as candidates, times
    /// the bf16 kernel and checks it to `bf16Tolerance`.
    @Test(.enabled(if: ComputePrecision.bf16Supported, "this CPU lacks AVX512-BF16"))
    func bf16ChoiceMeasuresAndChecks() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let fp32 = try DirectConvolutionRewrite.candidates(in: bytes)
        let bf16 = try DirectConvolutionRewrite.candidates(in: bytes, bf16: true)
        #expect(bf16.count > fp32.count && bf16.contains { $0.inputChannels == 128 && $0.outputChannels == 128 })
        let shape = DirectConvolutionShape(
            inputChannels: 128, outputChannels: 128, kernel: 3, dilation: 2, padBegin: 2, padEnd: 2, preAlpha: 0.1, postAlpha: 0.1)
        let decisions = DirectConvolutionChoice.decide([shape], runtime: try OnnxRuntime.shared.get(), bf16: true)
        let decision = try #require(decisions.first)
        #expect(decision.problem == nil && decision.bf16 == true)
        #expect(decision.relativeDifference > 0 && decision.relativeDifference <= DirectConvolutionChoice.bf16Tolerance)
        #expect(decision.directSeconds > 0 && decision.directSeconds.isFinite)
    }

    /// The joe voice with every bf16 candidate on the bf16 kernel (the decoder's and the flow's
    /// convolutions, whatever the timing would choose) at zero noise: the same number of samples
    /// as the original graph (durations stay FP32), and close to it. The bound is from measurement
    /// (bench/precision-quality, bench/results/precision-bf16.md): at zero noise bf16's samples
    /// differ from FP32's by 2.5–18% of the signal's RMS over the 18 sentences of
    /// bench/text-300.txt (mean 5%), where two FP32 runs at the voice's default noise differ by
    /// 120–140%. 25% leaves room for other texts; a broken kernel gives noise of the signal's size.
    @Test(.enabled(if: ComputePrecision.bf16Supported, "this CPU lacks AVX512-BF16"))
    func joeVoiceInBF16StaysClose() async throws {
        let (replaced, a, b) = try await onThread { () throws -> (Int, [Float], [Float]) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let candidates = try DirectConvolutionRewrite.candidates(in: bytes, bf16: true)
            let direct = try DirectConvolutionRewrite.apply(to: bytes, chosen: Set(candidates), bf16: true)
            let rewritten = try ConvolutionRewrite.apply(to: direct.model)
            return (direct.replaced, try JoeProbeAudio.original(), try JoeProbeAudio.audio(of: rewritten.model, optimized: false))
        }
        #expect(replaced > 13, "\(replaced) replaced")
        #expect(a.count == b.count && a.count > 10_000)
        guard a.count == b.count else { return }
        let rms = (a.reduce(0) { $0 + $1 * $1 } / Float(a.count)).squareRoot()
        let difference = (zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Float(a.count)).squareRoot()
        #expect(difference > 0, "bf16 gave FP32's exact samples: the bf16 path did not run")
        #expect(difference <= 0.25 * rms, "RMS difference \(difference / rms) of the signal's RMS")
    }

    // MARK: - Helpers

    /// Runs one shape's plain FP32 model and its bf16 DirectConv on random input: the largest
    /// error as a multiple of its bound (2⁻⁸ · Σ|w·x| per output, plus 1e-6).
    static func compareBF16(_ shape: DirectConvolutionShape, length: Int, threads: Int) throws -> Float {
        var random = TestRandom(seed: UInt64(shape.multiplyAddsPerSample * 17 + length))
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() }
        let bias = shape.bias ? (0..<shape.outputChannels).map { _ in random.uniform() } : nil
        let models = try DirectConvolutionRewrite.singleConvolution(shape, length: length, weights: weights, bias: bias, bf16: true)
        let outputLength = length + shape.padBegin + shape.padEnd - shape.dilation * (shape.kernel - 1)
        let x = (0..<shape.inputChannels * length).map { _ in random.uniform() }
        var inputs: [InputTensor] = [.float32(name: "X", shape: [1, Int64(shape.inputChannels), Int64(length)], values: x)]
        if shape.residual {
            inputs.append(.float32(
                name: "Z", shape: [1, Int64(shape.outputChannels), Int64(outputLength)],
                values: (0..<shape.outputChannels * outputLength).map { _ in random.uniform() }))
        }
        // Σ|w·x| per output: the same convolution, no fusions, of |W| over |activated X|.
        var magnitude = shape
        (magnitude.preAlpha, magnitude.postAlpha, magnitude.bias, magnitude.residual) = (nil, nil, false, false)
        let activated = x.map { value in abs(shape.preAlpha.map { alpha in value < 0 ? value * alpha : value } ?? value) }
        let sizes = try DirectConvolutionRewrite.singleConvolution(magnitude, length: length, weights: weights.map(abs), bias: nil)

        let runtime = try OnnxRuntime.shared.get()
        let configuration = SessionConfiguration(intraOpThreads: threads)
        let expected = try InferenceSession(model: models.plain, configuration: configuration, runtime: runtime).run(inputs)
        let actual = try InferenceSession(model: models.direct, configuration: configuration, runtime: runtime).run(inputs)
        let bound = try InferenceSession(model: sizes.plain, configuration: configuration, runtime: runtime)
            .run([.float32(name: "X", shape: [1, Int64(shape.inputChannels), Int64(length)], values: activated)])
        guard expected.count == shape.outputChannels * outputLength, actual.count == expected.count, bound.count == expected.count
        else { return .infinity }
        var worst: Float = 0
        for i in expected.indices {
            worst = max(worst, abs(expected[i] - actual[i]) / (bound[i] / 256 + 1e-6))
        }
        return worst
    }

    /// Runs one shape's plain and DirectConv models on random input; the largest difference
    /// relative to the largest output.
    static func compare(_ shape: DirectConvolutionShape, length: Int, path: Int, threads: Int, winograd: WinogradSize? = nil) throws -> Float {
        var random = TestRandom(seed: UInt64(shape.multiplyAddsPerSample * 31 + length))
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() }
        let bias = shape.bias ? (0..<shape.resultChannels).map { _ in random.uniform() } : nil
        let models = try DirectConvolutionRewrite.singleConvolution(
            shape, length: length, weights: weights, bias: bias, kernelPath: path == 0 ? nil : path, winograd: winograd)
        let outputLength = shape.resultLength(input: length)
        var inputs: [InputTensor] = [
            .float32(name: "X", shape: [1, Int64(shape.inputChannels), Int64(length)], values: (0..<shape.inputChannels * length).map { _ in random.uniform() })
        ]
        if shape.residual {
            inputs.append(.float32(
                name: "Z", shape: [1, Int64(shape.outputChannels), Int64(outputLength)],
                values: (0..<shape.outputChannels * outputLength).map { _ in random.uniform() }))
        }
        let runtime = try OnnxRuntime.shared.get()
        let configuration = SessionConfiguration(intraOpThreads: threads)
        let expected = try InferenceSession(model: models.plain, configuration: configuration, runtime: runtime).run(inputs)
        let actual = try InferenceSession(model: models.direct, configuration: configuration, runtime: runtime).run(inputs)
        guard expected.count == shape.resultChannels * outputLength, actual.count == expected.count else { return .infinity }
        return relativeDifference(expected, actual)
    }

    static func relativeDifference(_ expected: [Float], _ actual: [Float]) -> Float {
        guard expected.count == actual.count, !expected.isEmpty else { return .infinity }
        let largest = expected.map(abs).max() ?? 0
        return (zip(expected, actual).map { abs($0 - $1) }.max() ?? 0) / max(largest, 1e-6)
    }

    /// `Y = X + Conv2(LeakyRelu(Conv1(LeakyRelu(X))))` over `X: [1, C, length]`, kernel 3 at dilation 3 then 1.
    static func residualBlock(channels: Int64, length: Int64) throws -> [UInt8] {
        var random = TestRandom(seed: 11)
        var graph = ProtoWriter()
        try graph.node("LeakyRelu", inputs: ["X"], output: "a") { $0.floatAttribute("alpha", 0.1) }
        try graph.node("Conv", inputs: ["a", "W1", "B1"], output: "b") { (conv: inout ProtoWriter) throws(MalformedProtobuf) in
            try conv.intsAttribute("kernel_shape", [3])
            try conv.intsAttribute("dilations", [3])
            try conv.intsAttribute("pads", [3, 3])
        }
        try graph.node("LeakyRelu", inputs: ["b"], output: "c") { $0.floatAttribute("alpha", 0.1) }
        try graph.node("Conv", inputs: ["c", "W2", "B2"], output: "d") { (conv: inout ProtoWriter) throws(MalformedProtobuf) in
            try conv.intsAttribute("kernel_shape", [3])
            try conv.intsAttribute("pads", [1, 1])
        }
        try graph.node("Add", inputs: ["d", "X"], output: "Y")
        graph.stringField(2, "residual_block")
        for name in ["W1", "W2"] {
            try graph.floatTensor(name, dims: [channels, channels, 3], values: (0..<Int(channels * channels * 3)).map { _ in random.uniform() / 4 })
        }
        for name in ["B1", "B2"] {
            try graph.floatTensor(name, dims: [channels], values: (0..<Int(channels)).map { _ in random.uniform() })
        }
        graph.tensorValueInfo(Field.graphInput, name: "X", dims: [1, channels, length])
        graph.tensorValueInfo(Field.graphOutput, name: "Y", dims: [1, channels, length])
        var model = ProtoWriter()
        model.varintField(1, 8)
        model.opsetImport(domain: "", version: 13)
        model.bytesField(Field.modelGraph, graph.bytes)
        return model.bytes
    }
}

/// A small deterministic generator (SplitMix64) for the tests' weights, inputs and files, the same
/// on every run.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
