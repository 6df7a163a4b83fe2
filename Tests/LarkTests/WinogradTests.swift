import CLarkKernels
import Foundation
@testable import OnnxGraph
import OnnxRuntime
@testable import PiperEngine
import Testing

/// ResidualStack's convolutions as Winograd F(m, r) (CLarkKernels `winograd.c`) against ONNX
/// Runtime running the level's own nodes, to 1e-4 of the largest output.
@Suite struct WinogradTests {
    /// Sizes winograd.c specializes (winograd_tables.h) and some it computes generically; for a
    /// kernel of K taps, r = K (one piece) or r = m (pieces of m taps); at most 12 points.
    static func sizes(kernel: Int) -> [WinogradSize] {
        [WinogradSize(outputs: 2, taps: 2), WinogradSize(outputs: 3, taps: 3), WinogradSize(outputs: 4, taps: 4), WinogradSize(outputs: 5, taps: 5),
         WinogradSize(outputs: 2, taps: kernel), WinogradSize(outputs: 4, taps: kernel), WinogradSize(outputs: 3, taps: kernel)]
            .filter { $0.outputs + $0.taps - 1 <= 12 }
    }

    /// Random levels of both block types with a random size (or none) per convolution: channel
    /// counts on and off the packed kernel's 8-channel blocks, lengths shorter than a chunk, on
    /// and across tile boundaries, batch 1 and 2; every SIMD path this machine has (the AVX-512
    /// one shuffles, the AVX2 one transposes at dilation 1 and gathers elsewhere, the scalar one gathers
    /// with scalar code; the products use each path's kernels).
    @Test(arguments: DirectConvolutionTests.paths.map { Int($0.rawValue) })
    func levelsMatchOnnxRuntime(path: Int) throws {
        var random = TestRandom(seed: 23)
        let lengths = [1, 5, 47, 383, 385, 800, 1_537, 2_900]
        for index in 0..<8 {
            let type1 = index % 2 == 1
            let channels = [8, 12, 16, 20, 32, 5][random.below(6)]
            let length = lengths[index % lengths.count] + random.below(3)
            let batch = 1 + random.below(2)
            let kernels = type1 ? [3, 7, 11] : [3, 5, 7]
            let dilations = type1 ? [[1, 3, 5], [1, 3, 5], [1, 3, 5]] : [[1, 2], [2, 6], [3, 12]]
            let model = try ResidualStackTests.levelGraph(
                channels: channels, length: length, batch: batch, kernels: kernels, dilations: dilations, type1: type1, post: 0.1,
                seed: UInt64(100 + index))
            let shape = try #require(try ResidualStackRewrite.levels(in: model).first)
            let winograd: [WinogradSize?] = shape.blocks.flatMap { $0.flatMap { $0 } }.map { conv in
                let options = Self.sizes(kernel: conv.kernel)
                let pick = random.below(options.count + 1)
                return pick < options.count ? options[pick] : nil
            }
            let tile = [nil, 384, 768][index % 3]
            let difference = try ResidualStackTests.compare(
                model, channels: channels, length: length, batch: batch, tile: tile, path: path, seed: UInt64(index), winograd: winograd)
            #expect(difference <= 1e-4, "case \(index): \(channels) ch, length \(length), batch \(batch), type1 \(type1), \(winograd): \(difference)")
        }
    }

    /// joe's three levels with the candidate sets the cache build times, two threads.
    @Test func joeLevelsMatchOnnxRuntime() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let shapes = try ResidualStackRewrite.levels(in: bytes)
        for (index, shape) in shapes.enumerated() {
            #expect(!shape.winogradCandidates.isEmpty)
            for winograd in shape.winogradCandidates {
                let difference = try ResidualStackTests.compareLevel(
                    bytes, index: index, channels: shape.channels, length: 900 + 41 * index, winograd: winograd)
                #expect(difference <= 1e-4, "level \(index) (\(shape)) \(winograd): \(difference)")
            }
        }
    }

    // MARK: - DirectConv as Winograd (the flow's and text encoder's convolutions)

    /// Random FP32 shapes above DirectConv's direct limit (192/384/768 channels as the flow and text
    /// encoder have them, and others off the packed kernel's 8-channel blocks), kernels 3 and 5
    /// (and 7), with and without bias, residual and activations, "same" and other padding, lengths
    /// shorter than a tile, on and across tile boundaries; one and two threads; every SIMD path.
    @Test(arguments: DirectConvolutionTests.paths.map { Int($0.rawValue) })
    func directConvMatchesOnnxRuntime(path: Int) throws {
        var random = TestRandom(seed: 41)
        let channels = [(192, 384), (192, 768), (768, 192), (70, 100), (130, 67)]
        let lengths = [1, 6, 100, 191, 193, 385, 700]
        for index in 0..<7 {
            let (cin, cout) = channels[index % channels.count]
            let kernel = [3, 5, 3, 5, 7][random.below(5)]
            let reach = kernel - 1
            let padBegin = index % 3 == 2 ? random.below(reach + 1) : reach / 2
            let padEnd = index % 3 == 2 ? random.below(reach + 1) : reach - reach / 2
            let length = max(reach - padBegin - padEnd + 1, lengths[index % lengths.count] + random.below(3))
            let shape = DirectConvolutionShape(
                inputChannels: cin, outputChannels: cout, kernel: kernel, padBegin: padBegin, padEnd: padEnd,
                preAlpha: random.below(2) == 0 ? nil : 0.1, postAlpha: random.below(3) == 0 ? 0.2 : nil,
                bias: index != 1, residual: index % 2 == 1)
            let size = [WinogradSize(outputs: 4, taps: kernel), WinogradSize(outputs: 2, taps: kernel), WinogradSize(outputs: 3, taps: 3)][index % 3]
            let threads = 1 + index % 2
            let difference = try DirectConvolutionTests.compare(shape, length: length, path: path, threads: threads, winograd: size)
            #expect(difference <= 1e-4, "case \(index): \(shape), length \(length), \(size), \(threads) threads: \(difference)")
        }
    }

    /// The rewrite takes an FP32 convolution above 64 channels only with a Winograd size, and
    /// writes the size on the node; the load-time choice times it as Winograd and checks it.
    @Test func directConvRewriteAndChoice() throws {
        let shape = DirectConvolutionShape(inputChannels: 192, outputChannels: 384, kernel: 5, padBegin: 2, padEnd: 2, bias: false)
        var random = TestRandom(seed: 5)
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() * 0.03 }
        let model = try DirectConvolutionRewrite.singleConvolution(shape, length: 300, weights: weights, bias: nil).plain
        let candidates = try DirectConvolutionRewrite.candidates(in: model)
        #expect(candidates == [shape])
        #expect(DirectConvolutionRewrite.winogradCandidate(shape) == WinogradSize(outputs: 4, taps: 5))
        #expect(try DirectConvolutionRewrite.apply(to: model, chosen: [shape]).replaced == 0)
        let size = WinogradSize(outputs: 4, taps: 5)
        let rewritten = try DirectConvolutionRewrite.apply(to: model, chosen: [shape], winograd: [shape: size])
        #expect(rewritten.replaced == 1)
        let text = String(decoding: rewritten.model, as: UTF8.self)
        #expect(text.contains("DirectConv") && text.contains("winograd_outputs") && text.contains("winograd_taps"))
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, 192, 300], values: (0..<192 * 300).map { _ in random.uniform() })]
        let runtime = try OnnxRuntime.shared.get()
        let expected = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(inputs)
        let restated = try ConvolutionRewrite.apply(to: rewritten.model).model
        let actual = try InferenceSession(model: restated, configuration: .init(), runtime: runtime).run(inputs)
        #expect(DirectConvolutionTests.relativeDifference(expected, actual) <= 1e-4)

        let decision = try #require(DirectConvolutionChoice.decide([shape], runtime: runtime).first)
        #expect(decision.problem == nil, "\(decision.problem ?? "")")
        #expect(decision.winograd == size)
        #expect(decision.relativeDifference <= 1e-4)
        #expect(decision.used == DirectConvolutionChoice.routes(
            directSeconds: decision.directSeconds, onnxRuntimeSeconds: decision.onnxRuntimeSeconds, bf16: false, winograd: true))
    }

    /// The joe voice with every Winograd candidate (the flow's and text encoder's convolutions) on
    /// DirectConv speaks within 1e-3 of the original graph at zero noise, as the load-time probe
    /// requires.
    @Test func joeVoiceWithWinogradDirectConvs() async throws {
        // The work on a thread of its own, the expectations here (an #expect on that thread would
        // be recorded against no test).
        let (sized, replaced, largest) = try await onThread { () throws -> (Int, Int, Float) in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
            let large = try DirectConvolutionRewrite.candidates(in: bytes).filter(DirectConvolutionRewrite.needsWinograd)
            let sizes = Dictionary(uniqueKeysWithValues: large.compactMap { shape in DirectConvolutionRewrite.winogradCandidate(shape).map { (shape, $0) } })
            let direct = try DirectConvolutionRewrite.apply(to: bytes, chosen: Set(sizes.keys), winograd: sizes)
            let rewritten = try ConvolutionRewrite.apply(to: direct.model)
            let a = try JoeProbeAudio.original()
            return (sizes.count, direct.replaced, JoeProbeAudio.largestDifference(a, try JoeProbeAudio.audio(of: rewritten.model)))
        }
        #expect(sized > 0)
        #expect(replaced >= 6, "\(replaced) replaced")
        #expect(largest < 1e-3, "largest difference \(largest)")
    }

    /// The rewrite records the sizes on the node, and a size the kernel lacks is refused with a
    /// message that names the attribute.
    @Test func attributesAreWrittenAndChecked() throws {
        let model = try ResidualStackTests.levelGraph(
            channels: 8, length: 100, batch: 1, kernels: [3, 5, 7], dilations: [[1, 2], [2, 6], [3, 12]], type1: false, post: nil, seed: 7)
        let sizes: [WinogradSize?] = [nil, WinogradSize(outputs: 3, taps: 3), nil, WinogradSize(outputs: 4, taps: 5), nil, WinogradSize(outputs: 4, taps: 4)]
        let rewritten = try ResidualStackRewrite.apply(to: model, winograd: [0: sizes])
        #expect(rewritten.replaced == 1)
        let text = String(decoding: rewritten.model, as: UTF8.self)
        #expect(text.contains("winograd_outputs") && text.contains("winograd_taps"))
        let runtime = try OnnxRuntime.shared.get()
        let bad: [WinogradSize?] = [WinogradSize(outputs: 9, taps: 3), nil, nil, nil, nil, nil]
        let models = try #require(try ResidualStackRewrite.levelModels(in: model, index: 0, length: 100, winograd: bad))
        let inputs: [InputTensor] = [.float32(name: "X", shape: [1, 8, 100], values: [Float](repeating: 0.5, count: 800))]
        #expect { _ = try InferenceSession(model: models.fused, configuration: .init(), runtime: runtime).run(inputs) } throws: { error in
            "\(error)".contains("Winograd size")
        }
    }

    /// Prepared weights are one copy per process: a second kernel (another session's) preparing the
    /// same W the same way gets the first copy without preparing again; another preparation of it
    /// gets its own; the copy lives until its last user gives it back.
    @Test func preparedWeightsAreSharedInTheProcess() {
        final class Counter { var calls = 0 }
        let counter = Counter()
        let prepare: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { context in
            Unmanaged<Counter>.fromOpaque(context!).takeUnretainedValue().calls += 1
            return malloc(64)
        }
        let weights = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { weights.deallocate() }
        let context = Unmanaged.passUnretained(counter).toOpaque()
        let packed: [Int64] = [1, 2, 3], transformed: [Int64] = [1, 2, 4]
        let key = packed.withUnsafeBufferPointer { lark_prepared_key($0.baseAddress, 3) }
        let otherKey = transformed.withUnsafeBufferPointer { lark_prepared_key($0.baseAddress, 3) }
        #expect(key != otherKey)
        let first = lark_acquire_prepared(weights, key, prepare, context)
        let second = lark_acquire_prepared(weights, key, prepare, context)
        let other = lark_acquire_prepared(weights, otherKey, prepare, context)
        #expect(first != nil && first == second && other != first)
        #expect(counter.calls == 2, "\(counter.calls) preparations")
        lark_release_prepared(first)
        #expect(lark_acquire_prepared(weights, key, prepare, context) == second, "released by one of two users: still shared")
        lark_release_prepared(second)
        lark_release_prepared(second)
        lark_release_prepared(other)
        let again = lark_acquire_prepared(weights, key, prepare, context)
        #expect(counter.calls == 3, "after its last user, a copy is prepared again")
        lark_release_prepared(again)
    }
}
