/// Restates a 1-D `ConvTranspose` whose kernel is a whole number of strides (HiFi-GAN's
/// upsampling layers: kernel 16 at stride 8, kernel 4 at stride 2) as a plain 2-D convolution
/// followed by an interleave, the "sub-pixel" form of a transposed convolution.
///
/// Why: ONNX Runtime runs `ConvTranspose` as a matrix product then a scatter (col2im), on one
/// layout; a `Conv` gets the blocked (NCHWc) kernels. On Piper's decoder this makes the whole
/// model faster, with the same outputs to rounding (figures in `bench/RESULTS.md`).
///
/// The arithmetic. With stride `s`, kernel `K = m·s` and no dilation or groups, output sample
/// `q·s + r` (before the padding is cropped) is `Σ_j x[q − j] · W[:, :, j·s + r]` for `j < m`. So
/// for each phase `r` it is an ordinary convolution of `x` with `m` taps, and one convolution with
/// `s · C_out` output channels computes all phases at once:
/// - weight `W2[r·C_out + o, c, 0, i] = W[c, o, (m − 1 − i)·s + r]`, bias repeated `s` times,
///   padding `m − 1` on both sides, so its output has `T + m − 1` positions;
/// - `ai.lark.SubpixelInterleave` (CLarkKernels, `subpixel_interleave.c`) puts the phases side by
///   side in time and crops `pads` at both ends, as `ConvTranspose` does, in one pass over ONNX
///   Runtime's threads. (As ONNX nodes that is `Reshape [N, s, C_out, T']`, `Transpose [0, 2, 3, 1]`,
///   `Reshape [N, C_out, T'·s]` and `Slice`: two copies, and ONNX Runtime's `Transpose` ran slower
///   with two threads than with one.)
/// The result is left 4-D (`[N, C_out, 1, T·s]`) for `FourDimensionalChains`, and passed through a
/// 1×1 depthwise convolution of weight 1, so that ONNX Runtime holds it in its blocked layout for
/// the residual blocks that read it.
struct TransposedConvPlan {
    let source: SubpixelConvolution
    var node: GraphSummary.Node { source.node }
    var weight: String { source.weight }
    var bias: String? { source.bias }
    var input: String { source.input }
    var output: String { source.output }
    /// The 4-D result, `[N, C_out, 1, T·s]`.
    var output4D: String { names.output }
    /// The cropped result before its blocked-layout stand-in: where `TimeChunks` may cut time.
    var cropped: String { names.cropped }
    /// The interleaved, cropped phases, at `stride` times the input's rate (for `TimeChunks`' reach).
    var interleaved: (value: String, rate: Int) { (names.cropped, source.stride) }
    var outputChannels: Int64 { Int64(source.outputChannels) }
    private let names: Names

    /// The values and initializers the replacement writes, named after the node's output.
    private struct Names {
        let input, weight, bias, phases, cropped, output: String

        init(output: String, taken names: inout Set<String>) {
            func name(_ part: String) -> String { ConvolutionRewrite.unique(output + "/lark_subpixel_" + part, in: &names) }
            (input, weight, bias, phases) = (name("input"), name("weight"), name("bias"), name("phases"))
            (cropped, self.output) = (name("cropped"), name("output"))
        }
    }

    /// Nil unless the node is a `SubpixelConvolution` and the model is at opset 13 or later (the
    /// replacement's `Unsqueeze` takes its axes as an input).
    init?(node: GraphSummary.Node, graph: GraphSummary, in model: [UInt8], opset: Int64, names: inout Set<String>) throws(MalformedProtobuf) {
        guard opset >= 13, let source = try SubpixelConvolution(node: node, graph: graph, in: model) else { return nil }
        self.source = source
        self.names = Names(output: node.outputs[0], taken: &names)
    }

    /// Writes the replacement nodes, and the initializers they read, in place of the node: they
    /// read `input4D` when the input is already 4-D, and leave the result 4-D in `output4D`.
    func write(
        into graph: inout ProtoWriter, from model: [UInt8], graphSummary: GraphSummary, axes: String,
        input4D existing: String?, constants: inout BlockedConstants
    ) throws(MalformedProtobuf) {
        let input4D = existing ?? names.input
        let (stride, taps, channels) = (Int64(source.stride), Int64(source.taps), Int64(source.outputChannels))
        try graph.floatTensor(
            names.weight, dims: [stride * channels, Int64(source.inputChannels), 1, taps],
            values: source.restatedWeights(model, graphSummary, phaseMajor: true))
        try graph.floatTensor(names.bias, dims: [stride * channels], values: source.repeatedBias(model, graphSummary, phaseMajor: true))

        if existing == nil { try graph.node("Unsqueeze", inputs: [node.inputs[0], axes], output: input4D) }
        try graph.node("Conv", inputs: [input4D, names.weight, names.bias], output: names.phases) { conv throws(MalformedProtobuf) in
            try conv.intsAttribute("kernel_shape", [1, taps])
            try conv.intsAttribute("pads", [0, taps - 1, 0, taps - 1])
        }
        try graph.subpixelInterleave(names.phases, output: names.cropped, stride: stride, pads: [Int64(source.padBegin), Int64(source.padEnd)])
        if FourDimensionalChains.fillsBlocks(channels) {
            try graph.depthwise(names.cropped, weight: try constants.filled(channels, with: 1, into: &graph), output: output4D, channels: channels)
        } else {
            try graph.node("Identity", inputs: [names.cropped], output: output4D)
        }
    }
}

/// A 1-D `ConvTranspose` that is a convolution of its input followed by an interleave (see
/// `TransposedConvPlan` for the arithmetic): its parts, and its weights restated. The form
/// `TransposedConvPlan` writes (ONNX Runtime's blocked `Conv`, then `SubpixelInterleave`) and
/// `DirectConvolutionRewrite`'s sub-pixel `DirectConv` (one node that writes the interleaved
/// result) both start here.
struct SubpixelConvolution {
    let node: GraphSummary.Node
    let weight: String
    let bias: String?
    let input: String
    let output: String
    let inputChannels: Int
    let outputChannels: Int
    let stride: Int
    /// Taps of each phase's convolution: the kernel over the stride.
    let taps: Int
    let padBegin: Int
    let padEnd: Int

    /// Nil unless the node is a 1-D `ConvTranspose` that can be restated exactly: float weights of
    /// its own stored as raw data, stride > 1 dividing the kernel, no dilation, groups or output
    /// padding.
    init?(node: GraphSummary.Node, graph: GraphSummary, in model: [UInt8]) throws(MalformedProtobuf) {
        guard node.opType == "ConvTranspose", node.domain.isEmpty || node.domain == "ai.onnx",
              node.inputs.count == 2 || node.inputs.count == 3, node.outputs.count == 1,
              !node.inputs[0].isEmpty, !node.outputs[0].isEmpty
        else { return nil }
        let weight = node.inputs[1]
        guard let tensor = Self.ownFloatTensor(weight, graph: graph), tensor.dims.count == 3 else { return nil }
        let (inputChannels, outputChannels, kernel) = (Int(tensor.dims[0]), Int(tensor.dims[1]), Int(tensor.dims[2]))
        var bias: String?
        if node.inputs.count == 3, !node.inputs[2].isEmpty {
            guard let biasTensor = Self.ownFloatTensor(node.inputs[2], graph: graph),
                  biasTensor.dims == [Int64(outputChannels)]
            else { return nil }
            bias = node.inputs[2]
        }

        var stride = 1
        var pads: [Int64] = [0, 0]
        for (_, attribute) in try NodeAttribute.all(of: node, in: model) {
            let (ints, integer, text) = (attribute.ints, attribute.integer, attribute.text)
            switch attribute.name {
            case "strides":
                guard ints.count == 1 else { return nil }
                stride = Int(ints[0])
            case "pads":
                guard ints.count == 2 else { return nil }
                pads = ints
            case "kernel_shape":
                guard ints == [Int64(kernel)] else { return nil }
            case "dilations":
                guard ints == [1] else { return nil }
            case "output_padding":
                guard ints == [0] else { return nil }
            case "group":
                guard integer == 1 else { return nil }
            case "auto_pad":
                guard text == "NOTSET" else { return nil }
            default:
                return nil
            }
        }
        guard stride > 1, kernel % stride == 0, pads.allSatisfy({ $0 >= 0 }), pads[0] + pads[1] < Int64(kernel) else {
            return nil
        }
        (self.node, self.weight, self.bias, input, output) = (node, weight, bias, node.inputs[0], node.outputs[0])
        (self.inputChannels, self.outputChannels, self.stride, taps) = (inputChannels, outputChannels, stride, kernel / stride)
        (padBegin, padEnd) = (Int(pads[0]), Int(pads[1]))
    }

    /// The restatement's arithmetic.
    var phases: Phases { Phases(inputChannels: inputChannels, outputChannels: outputChannels, stride: stride, taps: taps) }

    /// The weights as the restated convolution's (`Phases.restated`).
    func restatedWeights(_ model: [UInt8], _ graph: GraphSummary, phaseMajor: Bool) -> [Float] {
        phases.restated(littleEndianFloats(model, graph.tensorsByName[weight]!.rawData!), phaseMajor: phaseMajor)
    }

    /// The bias of each of the restated convolution's channels (zeros without one).
    func repeatedBias(_ model: [UInt8], _ graph: GraphSummary, phaseMajor: Bool) -> [Float] {
        phases.repeated(bias.map { littleEndianFloats(model, graph.tensorsByName[$0]!.rawData!) }, phaseMajor: phaseMajor)
    }

    /// A restatement's arithmetic, apart from any graph (DirectConv's timing and tests use it on
    /// weights of their own).
    struct Phases {
        let inputChannels, outputChannels, stride, taps: Int

        /// Output channel `o`'s phase `r` among the restated convolution's `stride · C_out`
        /// channels: phase-major (`r · C_out + o`, the blocked `Conv`'s order, whose interleave
        /// reads whole channels of one phase) or channel-major (`o · stride + r`, DirectConv's,
        /// whose register tiles of four channels are then four phases of one output channel).
        func channel(_ o: Int, phase r: Int, phaseMajor: Bool) -> Int {
            phaseMajor ? r * outputChannels + o : o * stride + r
        }

        /// A `ConvTranspose` weight `[C_in, C_out, taps · stride]` as the restated convolution's,
        /// `[stride · C_out, C_in, taps]`: `W2[channel(o, r)][c][i] = W[c][o][(taps − 1 − i) · stride + r]`.
        func restated(_ source: [Float], phaseMajor: Bool) -> [Float] {
            var restated = [Float](repeating: 0, count: source.count)
            let kernel = taps * stride
            for c in 0..<inputChannels {
                for o in 0..<outputChannels {
                    for r in 0..<stride {
                        let to = channel(o, phase: r, phaseMajor: phaseMajor)
                        for i in 0..<taps {
                            restated[(to * inputChannels + c) * taps + i] = source[(c * outputChannels + o) * kernel + (taps - 1 - i) * stride + r]
                        }
                    }
                }
            }
            return restated
        }

        /// A bias `[C_out]` (nil: zeros) repeated for each phase, in the restated order.
        func repeated(_ values: [Float]?, phaseMajor: Bool) -> [Float] {
            let values = values ?? [Float](repeating: 0, count: outputChannels)
            var repeated = [Float](repeating: 0, count: stride * outputChannels)
            for o in 0..<outputChannels {
                for r in 0..<stride { repeated[channel(o, phase: r, phaseMajor: phaseMajor)] = values[o] }
            }
            return repeated
        }
    }

    /// A float tensor stored as raw data that only one node reads and the graph does not declare.
    private static func ownFloatTensor(_ name: String, graph: GraphSummary) -> GraphSummary.Tensor? {
        guard let tensor = graph.tensorsByName[name], !tensor.isExternal, tensor.dataType == 1,
              let raw = tensor.rawData, graph.uses[name] == 1, !graph.declared.contains(name),
              raw.count == 4 * tensor.dims.reduce(1, *)
        else { return nil }
        return tensor
    }
}

/// Lark's interleave operator (`ai.lark`, `subpixel_interleave.c`).
enum SubpixelInterleave {
    static let opType = "SubpixelInterleave"
}

extension ProtoWriter {
    /// An `ai.lark.SubpixelInterleave` node: `phases` `[N, s·C, 1, T]` (phase `r` of channel `o`
    /// in channel `r·C + o`) interleaved along time and cropped by `pads`, `[N, C, 1, T·s − b − e]`.
    /// `blocked`: `phases` is in ONNX Runtime's blocked layout, of that channel block, with `s·C`
    /// real channels.
    mutating func subpixelInterleave(
        _ phases: String, output: String, stride: Int64, pads: [Int64], blocked: (block: Int64, channels: Int64)? = nil
    ) throws(MalformedProtobuf) {
        try customNode(SubpixelInterleave.opType, domain: DirectConvolutionRewrite.domain, inputs: [phases], output: output) {
            (node: inout ProtoWriter) throws(MalformedProtobuf) in
            node.intAttribute("stride", stride)
            try node.intsAttribute("pads", pads)
            if let blocked {
                node.intAttribute("block", blocked.block)
                node.intAttribute("channels", blocked.channels)
            }
        }
    }

    /// A graph node in the default domain, named after its output.
    mutating func node(
        _ opType: String, inputs: [String], output: String,
        attributes: (inout ProtoWriter) throws(MalformedProtobuf) -> Void = { _ in }
    ) throws(MalformedProtobuf) {
        try messageField(Field.graphNode) { (node: inout ProtoWriter) throws(MalformedProtobuf) in
            for input in inputs { node.stringField(Field.nodeInput, input) }
            node.stringField(Field.nodeOutput, output)
            node.stringField(Field.nodeName, output)
            node.stringField(Field.nodeOpType, opType)
            try attributes(&node)
        }
    }

    mutating func intsAttribute(_ name: String, _ values: [Int64]) throws(MalformedProtobuf) {
        messageField(Field.nodeAttribute) { attribute in
            attribute.stringField(Field.attributeName, name)
            attribute.integersField(Field.attributeInts, values)
            attribute.varintField(Field.attributeType, Field.attributeTypeInts)
        }
    }

    /// A graph initializer of 32-bit floats, stored as raw little-endian data.
    mutating func floatTensor(_ name: String, dims: [Int64], values: [Float]) throws(MalformedProtobuf) {
        var raw = [UInt8]()
        raw.reserveCapacity(values.count * 4)
        for value in values { raw += littleEndianBytes(value) }
        messageField(Field.graphInitializer) { tensor in
            tensor.integersField(Field.tensorDims, dims)
            tensor.varintField(Field.tensorDataType, 1)  // FLOAT
            tensor.stringField(Field.tensorName, name)
            tensor.bytesField(Field.tensorRawData, raw)
        }
    }

    /// A 1-D graph initializer of 64-bit integers, stored as raw little-endian data.
    mutating func int64Tensor(_ name: String, values: [Int64]) throws(MalformedProtobuf) {
        let raw = values.flatMap { value in (0..<8).map { UInt8(UInt64(bitPattern: value) >> (8 * UInt64($0)) & 0xFF) } }
        messageField(Field.graphInitializer) { tensor in
            tensor.integersField(Field.tensorDims, [Int64(values.count)])
            tensor.varintField(Field.tensorDataType, 7)  // INT64
            tensor.stringField(Field.tensorName, name)
            tensor.bytesField(Field.tensorRawData, raw)
        }
    }
}
