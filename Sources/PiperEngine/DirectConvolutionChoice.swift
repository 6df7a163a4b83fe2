import Foundation
import OnnxGraph
import OnnxRuntime
import Synchronization

/// Whether Lark's direct-convolution kernel (`DirectConvolutionRewrite`) runs one convolution
/// shape faster than ONNX Runtime does on this CPU, measured, with the figures.
public struct DirectConvolutionDecision: Codable, Sendable, Equatable {
    public var shape: DirectConvolutionShape
    /// The input's length in the timed runs.
    public var samples: Int
    /// How many copies of the convolution the timed model chains (1 for one that changes channels or length).
    public var repeats: Int
    /// Best CPU seconds per run on one thread.
    public var directSeconds: Double
    /// The same for the nodes the kernel replaces, as ONNX Runtime runs them after `ConvolutionRewrite`.
    public var onnxRuntimeSeconds: Double
    /// Largest difference between the two outputs, relative to the largest output value.
    public var relativeDifference: Float
    /// How many timed rounds decided it: 1 when the first showed the kernel no faster at all (nil in
    /// entries from before the screen).
    public var rounds: Int?
    public var used: Bool
    /// Why the shape could not be timed (then it is not used).
    public var problem: String?
    /// The kernel was timed (and is used) in bfloat16 (`--precision bf16`); nil: FP32.
    public var bf16: Bool?
    /// The kernel was timed (and is used) as Winograd of this size: the FP32 shapes above
    /// `DirectConvolutionRewrite.maximumChannels`; nil: directly.
    public var winograd: WinogradSize?
}

/// Times each candidate shape both ways once, when a voice's cache entry is built (the decisions
/// are recorded in the entry; the CPU's features are in its key). The kernel is used for a shape
/// only where it is faster by a margin and its output matches ONNX Runtime's to 1e-4 (bf16:
/// `bf16Tolerance`).
enum DirectConvolutionChoice {
    static let samples = 8_192
    static let repeats = 8
    static let rounds = 3
    /// FP32: the kernel must take at most this fraction of ONNX Runtime's time, i.e. be twice as
    /// fast. The timing covers the nodes alone, but in a voice a DirectConv between ONNX Runtime's
    /// blocked (NCHWc) convolutions also costs a layout reorder of its input and output, and at the
    /// decoder's full rate it streams its input, residual and output through memory: residual
    /// shapes that timed up to ~1.3x faster alone made the whole voice slower, and at a smaller
    /// margin they went either way from one cache build to the next; `conv_post`, several times
    /// faster, pays (figures: bench/results/direct-conv-fp32.md and overhead.md).
    static let margin = 0.5
    /// bf16: the same, with the shapes routed at this margin measured faster in the whole voice
    /// (bench/results/precision-bf16.md).
    static let bf16Margin = 0.8
    /// FP32 Winograd (convolutions above 64 channels at the frame rate: the flow's WaveNet layers,
    /// the decoder's `conv_pre`): in the whole joe voice the shapes timed at 0.50–0.53 of ONNX
    /// Runtime's time made the flow ~20% faster (469 → 368 ms at 1 thread), with no layout
    /// reorders around them (their neighbours are GatedTanh and element-wise nodes on the plain
    /// layout). Timed cold (`coldSamples`), as a voice runs them: on a Zen 3 (AVX2) the flow's
    /// shape times 0.60–0.65 of ONNX Runtime's time from build to build on a quiet host, and routed
    /// it ran 1.67× faster in the voice (959 → 573 ms per text, the voice's RTF −9%); on a busy
    /// host it timed slower than ONNX Runtime (0.61×) and gained nothing in the voice. 0.75 routes
    /// the first with room for timing noise and not the second (bench/results/engine.md; 0.6,
    /// from AVX-512's warm timings, left the quiet Zen 3's flow on ONNX Runtime).
    static let winogradMargin = 0.75

    /// FP32 sub-pixel (HiFi-GAN's upsamplings as one DirectConv that writes the interleaved
    /// result, `DirectConvolutionRewrite.maximumSubpixelChannels`): timed against the form they
    /// take otherwise (ONNX Runtime's blocked `Conv`, the reorders around it and the
    /// `SubpixelInterleave` pass), so that a shape's timing already carries what routing it saves
    /// around it; a small margin for timing noise.
    static let subpixelMargin = 0.9

    /// Whether a shape timed at these seconds goes to the kernel (its output already checked).
    static func routes(directSeconds: Double, onnxRuntimeSeconds: Double, bf16: Bool, winograd: Bool = false, subpixel: Bool = false) -> Bool {
        directSeconds <= (bf16 ? bf16Margin : winograd ? winogradMargin : subpixel ? subpixelMargin : margin) * onnxRuntimeSeconds
    }

    /// After the first timed round, a shape where the kernel is not faster than ONNX Runtime at
    /// all (above this fraction of its time) is settled without the other rounds: it would have
    /// to be twice as fast (`margin`; bf16: 1.25x). On the joe voice that is most shapes (the
    /// residual convolutions ONNX Runtime runs in its blocked layout), so a first build times them
    /// once instead of `rounds` times.
    static let screen = 1.0
    /// bf16 keeps 8 significant bits, so each product is off by up to 2⁻⁸ of its size and the
    /// sum by up to 2⁻⁸ of Σ|w·x|; on the timing's random data that is about 1e-3 of the largest
    /// output (measured: 0.8–1.5e-3 over the decoder's shapes, bench/direct-conv-bf16.c). Ten
    /// times that still catches a broken kernel, whose errors are of the output's own size.
    static let bf16Tolerance: Float = 1e-2
    /// Multiply-adds in one timed run (bf16 and sub-pixel shapes, which go up to 1024 channels):
    /// the input is shortened for large shapes so that timing them stays well under a second.
    static let timedMultiplyAdds = 1 << 30
    /// The same for a sub-pixel shape, a quarter: joe's three upsamplings then time at 1,024,
    /// 2,048 and 8,192 input samples (their inputs in a voice are a sentence's frames, 8 and 64
    /// times that), and the first build of a voice takes ~0.4 s less.
    static let timedSubpixelMultiplyAdds = 1 << 28

    /// Each shape is timed once per process: voices share their decoders' shapes, and every
    /// build in a process then makes the same graph (timings vary from run to run, so two
    /// processes may decide a close case differently; each cache entry records its own decisions).
    private static let decided = Mutex<[Key: DirectConvolutionDecision]>([:])

    private struct Key: Hashable {
        var shape: DirectConvolutionShape
        var bf16: Bool
    }

    /// The decisions for `shapes`, in order, timed one after the other: timing two shapes at once
    /// on two cores made the small `conv_post` measure 0.64–0.86 of ONNX Runtime's time from run
    /// to run (0.6 alone), across the 0.8 margin.
    static func decide(_ shapes: [DirectConvolutionShape], runtime: OnnxRuntime, bf16: Bool = false) -> [DirectConvolutionDecision] {
        shapes.map { decide($0, runtime: runtime, bf16: bf16) }
    }

    private static func decide(_ shape: DirectConvolutionShape, runtime: OnnxRuntime, bf16: Bool) -> DirectConvolutionDecision {
        let key = Key(shape: shape, bf16: bf16)
        if let known = decided.withLock({ $0[key] }) { return known }
        let decision: DirectConvolutionDecision
        do {
            decision = try timed(shape, runtime: runtime, bf16: bf16)
        } catch {
            decision = DirectConvolutionDecision(
                shape: shape, samples: samples, repeats: 1, directSeconds: .infinity, onnxRuntimeSeconds: .infinity,
                relativeDifference: .infinity, rounds: 0, used: false, problem: "\(error)", bf16: bf16 ? true : nil)
        }
        return decided.withLock { known in
            if let first = known[key] { return first }
            known[key] = decision
            return decision
        }
    }

    private static func timed(_ shape: DirectConvolutionShape, runtime: OnnxRuntime, bf16: Bool) throws -> DirectConvolutionDecision {
        var random = SplitMix(seed: UInt64(shape.inputChannels * 1_000_003 + shape.outputChannels * 10_007 + shape.kernel * 101 + shape.dilation))
        let scale = 1 / Float(shape.inputChannels * shape.kernel).squareRoot()
        let weights = (0..<shape.multiplyAddsPerSample).map { _ in random.uniform() * scale }
        let bias = shape.bias ? (0..<shape.resultChannels).map { _ in random.uniform() * 0.1 } : nil
        let keepsShape = shape.inputChannels == shape.outputChannels && shape.padBegin + shape.padEnd == shape.dilation * (shape.kernel - 1)
            && shape.subpixel == nil
        let copies = keepsShape ? repeats : 1
        let winograd = bf16 || !DirectConvolutionRewrite.needsWinograd(shape) ? nil : DirectConvolutionRewrite.winogradCandidate(shape)
        // FP32 direct shapes (at most 64 channels) keep the length they were always timed at;
        // Winograd's are timed as a voice runs them (`coldSamples`, caches evicted).
        let cold = winograd != nil
        let budget = shape.subpixel != nil ? Self.timedSubpixelMultiplyAdds : Self.timedMultiplyAdds
        let samples = cold ? Self.coldSamples : bf16 || shape.subpixel != nil
            ? max(1_024, min(Self.samples, budget / (shape.multiplyAddsPerSample * copies) / 256 * 256)) : Self.samples
        let models = try DirectConvolutionRewrite.singleConvolution(
            shape, length: samples, weights: weights, bias: bias, bf16: bf16, repeats: repeats, winograd: winograd)
        let plain = (try? ConvolutionRewrite.apply(to: models.plain).model) ?? models.plain
        let oneThread = SessionConfiguration(intraOpThreads: 1, interOpThreads: 1)
        let direct = try InferenceSession(model: models.direct, configuration: oneThread, runtime: runtime)
        let reference = try InferenceSession(model: plain, configuration: oneThread, runtime: runtime)

        var inputs: [InputTensor] = [
            .float32(name: "X", shape: [1, Int64(shape.inputChannels), Int64(samples)], values: (0..<shape.inputChannels * samples).map { _ in random.uniform() })
        ]
        if shape.residual {
            let length = shape.resultLength(input: samples)
            inputs.append(.float32(name: "Z", shape: [1, Int64(shape.outputChannels), Int64(length)], values: (0..<shape.outputChannels * length).map { _ in random.uniform() }))
        }
        // The first run of each (untimed: it pays for the arena's growth) checks the output.
        let expected = try reference.run(inputs)
        let actual = try direct.run(inputs)
        let largest = expected.map(abs).max() ?? 0
        let difference = zip(expected, actual).map { abs($0 - $1) }.max() ?? .infinity
        let relative = expected.count == actual.count ? difference / max(largest, 1e-6) : .infinity
        let tolerance = bf16 ? bf16Tolerance : 1e-4

        var (directBest, referenceBest) = (Double.infinity, Double.infinity)
        var timed = 0
        let eviction = cold ? CacheEviction() : nil
        while timed < rounds {
            eviction?.evict()
            directBest = min(directBest, try seconds { try direct.runDiscardingOutput(inputs) })
            eviction?.evict()
            referenceBest = min(referenceBest, try seconds { try reference.runDiscardingOutput(inputs) })
            timed += 1
            if relative > tolerance || directBest > screen * referenceBest { break }
        }
        return DirectConvolutionDecision(
            shape: shape, samples: samples, repeats: copies, directSeconds: directBest, onnxRuntimeSeconds: referenceBest,
            relativeDifference: relative, rounds: timed,
            used: relative <= tolerance && routes(
                directSeconds: directBest, onnxRuntimeSeconds: referenceBest, bf16: bf16, winograd: winograd != nil, subpixel: shape.subpixel != nil),
            bf16: bf16 ? true : nil, winograd: winograd)
    }

    /// Frames a Winograd shape is timed at: the flow's and `conv_pre`'s convolutions run once per
    /// sentence on its frames (~400 for a sentence of ordinary text).
    static let coldSamples = 512

    /// Pushes the timed sessions' weights out of the CPU's caches before each timed run of a
    /// Winograd shape. In a voice each such convolution (sixteen of the flow's, 1.5–2.4 MB of
    /// transformed weights each) runs after the others' weights went through the caches, so its
    /// weights come from memory. Timed warm, at 2,816 frames, the flow's 192→384 k5 measured
    /// 1.5–1.7× ONNX Runtime's speed on a Zen 3 (512 KB L2) and was routed, and in the voice it
    /// ran no faster (1,241–1,394 ms against 1,245 for the 16 nodes): its transformed weights are
    /// 1.6× W's size and stream once per chunk (bench/results/engine.md).
    final class CacheEviction {
        /// Twice the 32 MB of L3 one core of a Zen 3 reaches (sysconf reports the whole socket's,
        /// 256 MB, in this machine's VM), more than most CPUs' last level.
        private static let bytes = 64 << 20
        private let lines: UnsafeMutablePointer<UInt8>

        init() {
            lines = .allocate(capacity: Self.bytes)
            lines.initialize(repeating: 0, count: Self.bytes)
        }

        /// Writes a byte in every cache line of the buffer.
        func evict() {
            for offset in stride(from: 0, to: Self.bytes, by: 64) { lines[offset] &+= 1 }
        }

        deinit { lines.deallocate() }
    }

    /// The calling thread's CPU time for `body`: a one-thread session runs its nodes on the
    /// caller's thread, and CPU time, unlike wall time, does not count the time other processes
    /// had the core (build machines and servers are rarely idle when a voice is built).
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let start = now()
        try body()
        return now() - start
    }
}

/// A small deterministic generator (SplitMix64), so the timing inputs are the same on every build.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
