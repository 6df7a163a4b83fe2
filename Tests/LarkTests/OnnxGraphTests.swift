import Foundation
@testable import OnnxGraph
import OnnxRuntime
import Testing

/// The protobuf wire editor and the 1-D → 2-D convolution rewrite (`OnnxGraph`), checked against
/// ONNX Runtime itself: a rewritten model must load and compute what the original computes.
@Suite struct OnnxGraphTests {
    @Test func wireFieldsRoundTrip() throws {
        var writer = ProtoWriter()
        writer.varintField(1, 300)
        writer.varintField(2, -1)  // int64 -1: ten bytes on the wire
        writer.stringField(3, "héllo")
        try writer.messageField(4) { nested in nested.integersField(1, [1, 1 << 40]) }
        var reader = ProtoReader(writer.bytes)
        let fields = try reader.all()
        #expect(fields.map(\.number) == [1, 2, 3, 4])
        #expect(fields[0].varint == 300)
        #expect(Int64(bitPattern: fields[1].varint) == -1)
        #expect(fields[2].string(in: writer.bytes) == "héllo")
        var nested = ProtoReader(writer.bytes, range: fields[3].payload)
        #expect(try nested.all().flatMap { try $0.integers(in: writer.bytes) } == [1, 1 << 40])

        // A packed run of varints (how some writers store repeated numbers) reads the same.
        var packed = ProtoWriter()
        packed.bytesField(1, [0x01, 0xAC, 0x02, 0x03])
        var packedReader = ProtoReader(packed.bytes)
        #expect(try packedReader.all()[0].integers(in: packed.bytes) == [1, 300, 3])
    }

    @Test func malformedBytesAreRejectedNotMisread() {
        // A length that runs past the end, a truncated varint, and a group (wire type 3).
        for bytes: [UInt8] in [[0x3A, 0x05, 0x01], [0x08, 0x80], [0x0B, 0x00]] {
            #expect(throws: MalformedProtobuf.self) { try ConvolutionRewrite.apply(to: bytes) }
        }
        #expect(throws: MalformedProtobuf.self) { try ConvolutionRewrite.apply(to: Array("not a model at all".utf8)) }
    }

    @Test(arguments: [13, 11])
    func rewrittenConvolutionComputesTheSame(opset: Int) throws {
        let model = try TinyModel.conv1D(opset: opset)
        let rewritten = try ConvolutionRewrite.apply(to: model)
        #expect(rewritten.convertedConvolutions == 1)
        let original = try TinyModel.run(model)
        let restated = try TinyModel.run(rewritten.model)
        #expect(original.count == 2 * 5)
        #expect(restated.count == original.count)
        // The same sums, added in another order by the 2-D kernel.
        #expect(zip(restated, original).allSatisfy { abs($0 - $1) < 1e-5 }, "\(restated) against \(original)")
    }

    /// A `ConvTranspose` (stride 2, kernel 4, padding 1, as in HiFi-GAN's last upsampling layers)
    /// restated as a convolution and an interleave computes the same, and one the restatement does
    /// not cover (a kernel that is not a whole number of strides) is left as it was.
    @Test func upsamplingConvolutionComputesTheSame() throws {
        let model = try TinyModel.convTranspose1D(kernel: 4, stride: 2, pads: [1, 1])
        let rewritten = try ConvolutionRewrite.apply(to: model)
        #expect(rewritten.convertedConvolutions == 1)
        let original = try TinyModel.run(model, inputShape: [1, 2, 5])
        let restated = try TinyModel.run(rewritten.model, inputShape: [1, 2, 5])
        #expect(original.count == 3 * 10)
        #expect(restated.count == original.count)
        #expect(zip(restated, original).allSatisfy { abs($0 - $1) < 1e-5 }, "\(restated) against \(original)")

        let uneven = try TinyModel.convTranspose1D(kernel: 5, stride: 2, pads: [1, 1])
        #expect(try ConvolutionRewrite.apply(to: uneven).convertedConvolutions == 0)
    }

    /// A narrow upsampling followed by a dilated residual convolution (HiFi-GAN's last stage in
    /// small) runs as two pieces of time in the batch axis, and computes the same as the original
    /// at every length: shorter than the pieces' overlap, about it, and much longer.
    @Test func narrowEndCutIntoPiecesComputesTheSame() throws {
        let model = try TinyModel.narrowDecoderEnd()
        let rewritten = try ConvolutionRewrite.apply(to: model)
        #expect(rewritten.convertedConvolutions == 2)
        #expect(rewritten.timePieces == 2)
        for length: Int64 in [1, 2, 7, 12, 13, 40, 301] {
            // Bounded input, so that float rounding stays far below the tolerance at any length.
            let x = (0..<Int(4 * length)).map { Float(sin(Double($0) * 0.37)) }
            let original = try TinyModel.run(model, input: x, shape: [1, 4, length])
            let restated = try TinyModel.run(rewritten.model, input: x, shape: [1, 4, length])
            #expect(original.count == Int(8 * 2 * length))
            #expect(restated.count == original.count, "length \(length)")
            let largest = zip(restated, original).map { abs($0 - $1) }.max() ?? 0
            #expect(largest < 1e-5, "length \(length): largest difference \(largest)")
        }

        // A region with two ways out (here the convolution's result is an output of the graph
        // too) is left whole.
        let twoOutputs = try TinyModel.narrowDecoderEnd(convolutionAsOutput: true)
        #expect(try ConvolutionRewrite.apply(to: twoOutputs).timePieces == 1)
    }

    /// `Conv(LeakyRelu(X / 4))` becomes `Conv(LeakyRelu(X))` with the weight divided by 4, and
    /// computes the same; a negative divisor (which `LeakyRelu` does not commute with) stays.
    @Test func scaleBeforeActivationIsFoldedIntoTheWeights() throws {
        let model = try TinyModel.scaledActivation(divisor: 4)
        let folded = try ScaleFolding.apply(to: model)
        #expect(folded.folded == 1)
        let original = try TinyModel.run(model)
        for candidate in [folded.model, try ConvolutionRewrite.apply(to: model).model] {
            let restated = try TinyModel.run(candidate)
            #expect(restated.count == original.count)
            #expect(zip(restated, original).allSatisfy { abs($0 - $1) < 1e-5 }, "\(restated) against \(original)")
        }
        #expect(try ScaleFolding.apply(to: try TinyModel.scaledActivation(divisor: -4)).folded == 0)
    }

    @Test func unusualConvolutionsAreLeftAlone() throws {
        for model in [try TinyModel.conv1D(opset: 13, sharedWeight: true), try TinyModel.conv1D(opset: 13, autoPad: "SAME_UPPER")] {
            let rewritten = try ConvolutionRewrite.apply(to: model)
            #expect(rewritten.convertedConvolutions == 0)
            #expect(rewritten.model == model)
        }
    }

    /// The real voice: most of its convolutions are restated, and with the noise switched off
    /// the rewritten model's audio matches the original's sample for sample, to float rounding.
    @Test func piperVoiceGivesTheSameAudio() async throws {
        // Seconds of model loading and runs: on a thread of its own, off the cooperative pool.
        try await onThread { try Self.compareRewrittenJoe() }
    }

    private static func compareRewrittenJoe() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel)))
        let rewritten = try ConvolutionRewrite.apply(to: bytes)
        #expect(rewritten.convertedConvolutions > 100, "\(rewritten.convertedConvolutions) restated")
        // The decoder's 64- and 32-channel end runs as pieces of time (`TimeChunks`), so the
        // comparisons below check it too: "This is a test." is long enough to be cut.
        #expect(rewritten.timePieces == 2)
        let a = try JoeProbeAudio.original()
        #expect(a.count > 10_000)
        let largest = JoeProbeAudio.largestDifference(a, try JoeProbeAudio.audio(of: rewritten.model, optimized: false))
        #expect(largest < 1e-3, "largest difference \(largest)")

        // As PiperVoice loads it: optimized by ONNX Runtime here, then the blocked layout's
        // stand-in depthwise convolutions made elementwise again.
        let final = try JoeProbeAudio.loaded(rewritten.model)
        #expect(final.cleanedNodes >= 10, "\(final.cleanedNodes) replaced")
        let largestFinal = JoeProbeAudio.largestDifference(a, final.audio)
        #expect(largestFinal < 1e-3, "largest difference \(largestFinal)")
    }

    /// The clean-up touches only ONNX Runtime's blocked-layout depthwise convolutions: an
    /// ordinary model comes back byte for byte.
    @Test func cleanupLeavesOrdinaryModelsAlone() throws {
        let model = try TinyModel.conv1D(opset: 13)
        let result = try BlockedLayoutCleanup.apply(to: model)
        #expect(result.replacedNodes == 0)
        #expect(result.model == model)
    }
}

/// Small ONNX models written with the wire writer, so each case of the rewrite has a model of
/// its own: `Y = Conv(X, W, B)` over `X: [1, 2, 5]`, `W: [2, 2, 3]`, padding 1.
enum TinyModel {
    static func conv1D(opset: Int, sharedWeight: Bool = false, autoPad: String? = nil) throws -> [UInt8] {
        var graph = ProtoWriter()
        try node(&graph, op: "Conv", inputs: ["X", "W", "B"], output: sharedWeight ? "H" : "Y", autoPad: autoPad)
        if sharedWeight { try node(&graph, op: "Conv", inputs: ["H", "W", "B"], output: "Y", autoPad: nil) }
        graph.stringField(2, "tiny")
        let weights: [Float] = (0..<12).map { Float($0 - 5) / 7 }
        try tensor(&graph, name: "W", dims: [2, 2, 3], values: weights)
        try tensor(&graph, name: "B", dims: [2], values: [0.25, -0.5])
        try valueInfo(&graph, field: 11, name: "X")
        try valueInfo(&graph, field: 12, name: "Y")
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        try model.messageField(8) { opsetID in
            opsetID.stringField(1, "")
            opsetID.varintField(2, Int64(opset))
        }
        model.bytesField(7, graph.bytes)
        return model.bytes
    }

    /// `Y = ConvTranspose(X, W, B)` over `X: [1, 2, 5]`, `W: [2, 3, kernel]` (3 output channels).
    static func convTranspose1D(kernel: Int64, stride: Int64, pads: [Int64]) throws -> [UInt8] {
        var graph = ProtoWriter()
        try graph.messageField(1) { node in
            for input in ["X", "W", "B"] { node.stringField(1, input) }
            node.stringField(2, "Y")
            node.stringField(4, "ConvTranspose")
            try ints(&node, "strides", [stride])
            try ints(&node, "pads", pads)
            try ints(&node, "kernel_shape", [kernel])
        }
        graph.stringField(2, "tiny")
        let weights: [Float] = (0..<Int(6 * kernel)).map { Float($0 % 11 - 5) / 7 }
        try tensor(&graph, name: "W", dims: [2, 3, kernel], values: weights)
        try tensor(&graph, name: "B", dims: [3], values: [0.25, -0.5, 0.125])
        try valueInfo(&graph, field: 11, name: "X")
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        try model.messageField(8) { opsetID in
            opsetID.stringField(1, "")
            opsetID.varintField(2, 13)
        }
        try graph.messageField(12) { info in  // a float output, shape left to ONNX Runtime
            info.stringField(1, "Y")
            try info.messageField(2) { type in try type.messageField(1) { $0.varintField(1, 1) } }
        }
        model.bytesField(7, graph.bytes)
        return model.bytes
    }

    /// `Y = Tanh(H + Conv(LeakyRelu(H)))` with `H = ConvTranspose(X)`: `X: [1, 4, T]`, an
    /// upsampling by 2 (kernel 4, padding 1) to 8 channels, then a convolution of kernel 3 and
    /// dilation 3. With `convolutionAsOutput`, that convolution's result `C` is an output too.
    static func narrowDecoderEnd(convolutionAsOutput: Bool = false) throws -> [UInt8] {
        var graph = ProtoWriter()
        try graph.messageField(1) { node in
            for input in ["X", "UW", "UB"] { node.stringField(1, input) }
            node.stringField(2, "H")
            node.stringField(4, "ConvTranspose")
            try ints(&node, "strides", [2])
            try ints(&node, "pads", [1, 1])
            try ints(&node, "kernel_shape", [4])
        }
        try graph.messageField(1) { node in
            node.stringField(1, "H")
            node.stringField(2, "A")
            node.stringField(4, "LeakyRelu")
        }
        try graph.messageField(1) { node in
            for input in ["A", "CW", "CB"] { node.stringField(1, input) }
            node.stringField(2, "C")
            node.stringField(4, "Conv")
            try ints(&node, "pads", [3, 3])
            try ints(&node, "dilations", [3])
            try ints(&node, "kernel_shape", [3])
        }
        try graph.messageField(1) { node in
            for input in ["C", "H"] { node.stringField(1, input) }
            node.stringField(2, "R")
            node.stringField(4, "Add")
        }
        try graph.messageField(1) { node in
            node.stringField(1, "R")
            node.stringField(2, "Y")
            node.stringField(4, "Tanh")
        }
        graph.stringField(2, "narrow end")
        try tensor(&graph, name: "UW", dims: [4, 8, 4], values: (0..<128).map { Float($0 % 13 - 6) / 9 })
        try tensor(&graph, name: "UB", dims: [8], values: (0..<8).map { Float($0) / 8 - 0.5 })
        try tensor(&graph, name: "CW", dims: [8, 8, 3], values: (0..<192).map { Float($0 % 7 - 3) / 11 })
        try tensor(&graph, name: "CB", dims: [8], values: (0..<8).map { 0.25 - Float($0) / 16 })
        for (field, name) in [(11, "X"), (12, "Y")] + (convolutionAsOutput ? [(12, "C")] : []) {
            try graph.messageField(field) { info in  // float, shape left open
                info.stringField(1, name)
                try info.messageField(2) { type in try type.messageField(1) { $0.varintField(1, 1) } }
            }
        }
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        try model.messageField(8) { opsetID in
            opsetID.stringField(1, "")
            opsetID.varintField(2, 13)
        }
        model.bytesField(7, graph.bytes)
        return model.bytes
    }

    /// `Y = Conv(LeakyRelu(X / divisor), W, B)` over `X: [1, 2, 5]`, `W: [2, 2, 3]`, padding 1.
    static func scaledActivation(divisor: Float) throws -> [UInt8] {
        var graph = ProtoWriter()
        try graph.messageField(1) { node in
            for input in ["X", "D"] { node.stringField(1, input) }
            node.stringField(2, "S")
            node.stringField(4, "Div")
        }
        try graph.messageField(1) { node in
            node.stringField(1, "S")
            node.stringField(2, "A")
            node.stringField(4, "LeakyRelu")
        }
        try node(&graph, op: "Conv", inputs: ["A", "W", "B"], output: "Y", autoPad: nil)
        graph.stringField(2, "scaled")
        try tensor(&graph, name: "D", dims: [], values: [divisor])
        try tensor(&graph, name: "W", dims: [2, 2, 3], values: (0..<12).map { Float($0 - 5) / 7 })
        try tensor(&graph, name: "B", dims: [2], values: [0.25, -0.5])
        try valueInfo(&graph, field: 11, name: "X")
        try valueInfo(&graph, field: 12, name: "Y")
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        try model.messageField(8) { opsetID in
            opsetID.stringField(1, "")
            opsetID.varintField(2, 13)
        }
        model.bytesField(7, graph.bytes)
        return model.bytes
    }

    static func run(_ model: [UInt8], inputShape: [Int64] = [1, 2, 5]) throws -> [Float] {
        try run(model, input: (0..<Int(inputShape.reduce(1, *))).map { Float($0) / 3 - 1 }, shape: inputShape)
    }

    static func run(_ model: [UInt8], input x: [Float], shape: [Int64]) throws -> [Float] {
        let session = try InferenceSession(model: model, configuration: .init(), runtime: try OnnxRuntime.shared.get())
        return try session.run([.float32(name: "X", shape: shape, values: x)])
    }

    private static func node(_ graph: inout ProtoWriter, op: String, inputs: [String], output: String, autoPad: String?) throws {
        try graph.messageField(1) { node in
            for input in inputs { node.stringField(1, input) }
            node.stringField(2, output)
            node.stringField(4, op)
            if let autoPad {
                try node.messageField(5) { attribute in
                    attribute.stringField(1, "auto_pad")
                    attribute.bytesField(4, Array(autoPad.utf8))
                    attribute.varintField(20, 3)  // STRING
                }
            } else {
                try ints(&node, "pads", [1, 1])
            }
            try ints(&node, "kernel_shape", [3])
        }
    }

    private static func ints(_ node: inout ProtoWriter, _ name: String, _ values: [Int64]) throws {
        try node.messageField(5) { attribute in
            attribute.stringField(1, name)
            attribute.integersField(8, values)
            attribute.varintField(20, 7)  // INTS
        }
    }

    private static func tensor(_ graph: inout ProtoWriter, name: String, dims: [Int64], values: [Float]) throws {
        try graph.messageField(5) { tensor in
            tensor.integersField(1, dims)
            tensor.varintField(2, 1)  // FLOAT
            tensor.stringField(8, name)
            tensor.bytesField(9, values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) })
        }
    }

    /// A float tensor of shape [1, 2, 5].
    private static func valueInfo(_ graph: inout ProtoWriter, field: Int, name: String) throws {
        try graph.messageField(field) { info in
            info.stringField(1, name)
            try info.messageField(2) { type in
                try type.messageField(1) { tensorType in
                    tensorType.varintField(1, 1)  // FLOAT
                    try tensorType.messageField(2) { shape in
                        for size: Int64 in [1, 2, 5] {
                            try shape.messageField(1) { dim in dim.varintField(1, size) }
                        }
                    }
                }
            }
        }
    }
}
