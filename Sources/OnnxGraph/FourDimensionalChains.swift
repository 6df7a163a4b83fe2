/// Keeps values 4-D between restated convolutions, so that ONNX Runtime can leave them in its
/// blocked (NCHWc) layout from one convolution to the next.
///
/// Why: after `ConvPlan` alone, every restated convolution sits between an `Unsqueeze` and a
/// `Squeeze`, so ONNX Runtime converts each one's input into the blocked layout and its output
/// back, and it cannot fold the HiFi-GAN decoder's residual `Add` into the convolution before it
/// (what each cost: `bench/RESULTS.md`). Here:
/// - a value made by a restated convolution stays 4-D, and the elementwise nodes that read only
///   such values (`Add`, `LeakyRelu`, `Tanh`, a `Div` by a constant) run on the 4-D values too; a
///   `Squeeze` is written only for readers that still want the 3-D value;
/// - `LeakyRelu`, which ONNX Runtime's blocked layout has no kernel for, becomes a 1×1 depthwise
///   convolution with weight 1 followed by `LeakyRelu`, which ONNX Runtime fuses into one blocked
///   convolution; a `Div` by a constant becomes a 1×1 depthwise convolution with weight 1/c;
/// - every 4-D value gets a shape annotation `[n, C, 1, length]` whose `length` is a name shared
///   by the values that have the same length (a convolution that keeps the length passes its
///   input's name on). ONNX Runtime folds an `Add` into a blocked convolution only when it can
///   prove both shapes equal, and it does not follow lengths through dilated convolutions itself.
/// The arithmetic is unchanged but for the order of float additions (outputs equal to 1e-6).
struct FourDimensionalChains {
    struct Value {
        let name4D: String
        let channels: Int64
        /// The symbolic length shared by values of equal length.
        let length: String
    }

    /// An elementwise node restated on 4-D values.
    enum Step {
        case same(GraphSummary.Node)  // Add, LeakyRelu, Tanh: the same node on the 4-D inputs
        case leakyRelu(GraphSummary.Node, channels: Int64)
        case scale(GraphSummary.Node, channels: Int64, factor: Float)
    }

    private(set) var values: [String: Value] = [:]
    /// By field index in the graph.
    private(set) var steps: [Int: Step] = [:]
    /// 3-D values that some node, or the graph's outputs, still read.
    private(set) var needsThreeD: Set<String> = []
    private var lengths = 0
    /// Values made by a restated convolution and read by nothing else than one node.
    private var soleConvolutionOutputs: Set<String> = []

    /// Plans the chains for the restated convolutions `convolutions` and `transposed` (by field
    /// index), visiting the graph's nodes in order.
    init(
        graph: GraphSummary, model: [UInt8], convolutions: [Int: ConvPlan], transposed: [Int: TransposedConvPlan],
        names: inout Set<String>
    ) throws(MalformedProtobuf) {
        let constants = try Self.scalarConstants(graph, in: model)
        var readersOf3D: [String] = []
        for (index, node) in graph.nodes {
            if let plan = convolutions[index] {
                let input = values[node.inputs[0]]
                let length = plan.keepsLength ? (input?.length ?? newLength()) : newLength()
                values[plan.output] = Value(name4D: plan.output4D, channels: plan.outputChannels, length: length)
                if graph.uses[plan.output] == 1 { soleConvolutionOutputs.insert(plan.output) }
                continue
            }
            if let plan = transposed[index] {
                values[plan.output] = Value(name4D: plan.output4D, channels: plan.outputChannels, length: newLength())
                continue
            }
            if let step = step(for: node, constants: constants) {
                let first = values[node.inputs[0]]!
                let output = node.outputs[0]
                values[output] = Value(
                    name4D: ConvolutionRewrite.unique(output + "/lark_4d", in: &names), channels: first.channels, length: first.length)
                steps[index] = step
                continue
            }
            readersOf3D += node.inputs
        }
        // Convolutions whose input is not 4-D read it through their own `Unsqueeze`.
        for (_, plan) in convolutions where values[plan.input] == nil { readersOf3D.append(plan.input) }
        for (_, plan) in transposed where values[plan.input] == nil { readersOf3D.append(plan.input) }
        // Shape annotations of the 3-D values (Piper's exports annotate every value) do not count as
        // readers: ONNX Runtime ignores an annotation of a value that no node makes.
        needsThreeD = Set(readersOf3D).union(graph.outputs).intersection(values.keys)
    }

    /// Whether `channels` fill whole blocks of ONNX Runtime's blocked layout (16 channels with
    /// AVX-512, 8 with AVX2): only then does a depthwise stand-in stay in that layout.
    static func fillsBlocks(_ channels: Int64) -> Bool { channels % 16 == 0 }

    private mutating func newLength() -> String {
        lengths += 1
        return "lark_length_\(lengths)"
    }

    private func step(for node: GraphSummary.Node, constants: [String: Float]) -> Step? {
        guard node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1,
              let first = node.inputs.first, let input = values[first]
        else { return nil }
        switch node.opType {
        case "Add":
            // Equal lengths by construction, so the sum has that length too (no broadcasting).
            guard node.inputs.count == 2, let other = values[node.inputs[1]], other.channels == input.channels,
                  other.length == input.length
            else { return nil }
            return .same(node)
        case "Tanh":
            return node.inputs.count == 1 ? .same(node) : nil
        case "LeakyRelu":
            guard node.inputs.count == 1 else { return nil }
            // Straight after a convolution that nothing else reads, ONNX Runtime fuses it into the
            // convolution. Otherwise the stand-in needs channels in whole blocks.
            if soleConvolutionOutputs.contains(first) || !Self.fillsBlocks(input.channels) { return .same(node) }
            return .leakyRelu(node, channels: input.channels)
        case "Div":
            guard node.inputs.count == 2, let divisor = constants[node.inputs[1]], divisor != 0, divisor.isFinite,
                  Self.fillsBlocks(input.channels)
            else { return nil }
            return .scale(node, channels: input.channels, factor: 1 / divisor)
        default:
            return nil
        }
    }

    /// Float scalars the graph holds as initializers or `Constant` nodes, by value name.
    static func scalarConstants(_ graph: GraphSummary, in model: [UInt8]) throws(MalformedProtobuf) -> [String: Float] {
        var constants: [String: Float] = [:]
        for (name, tensor) in graph.tensorsByName {
            if let value = tensor.scalarFloat(in: model) { constants[name] = value }
        }
        for (name, tensor) in try graph.constantNodeTensors(in: model) {
            if let value = tensor.scalarFloat(in: model) { constants[name] = value }
        }
        return constants
    }

    /// Writes `step` on 4-D values, then a `Squeeze` when the 3-D value is still read.
    func write(_ step: Step, into graph: inout ProtoWriter, from model: [UInt8], constants: inout BlockedConstants, squeeze: (String, String, inout ProtoWriter) throws(MalformedProtobuf) -> Void) throws(MalformedProtobuf) {
        let node: GraphSummary.Node
        switch step {
        case .same(let same), .leakyRelu(let same, _), .scale(let same, _, _): node = same
        }
        let output = node.outputs[0]
        let output4D = values[output]!.name4D
        let inputs4D = node.inputs.map { values[$0]?.name4D ?? $0 }
        switch step {
        case .same:
            try graph.node(node.opType, inputs: inputs4D, output: output4D) { restated in
                for field in node.fields where field.number == Field.nodeAttribute { restated.copy(field, from: model) }
            }
        case .leakyRelu(_, let channels):
            let unit = output4D + "/lark_identity"
            try graph.depthwise(inputs4D[0], weight: try constants.filled(channels, with: 1, into: &graph), output: unit, channels: channels)
            try graph.node("LeakyRelu", inputs: [unit], output: output4D) { restated in
                for field in node.fields where field.number == Field.nodeAttribute { restated.copy(field, from: model) }
            }
        case .scale(_, let channels, let factor):
            try graph.depthwise(inputs4D[0], weight: try constants.filled(channels, with: factor, into: &graph), output: output4D, channels: channels)
        }
        if needsThreeD.contains(output) { try squeeze(output4D, output, &graph) }
    }

    /// Shape annotations for every 4-D value: `[lark_batch, C, 1, length]`.
    func writeShapes(into graph: inout ProtoWriter) throws(MalformedProtobuf) {
        for value in values.values.sorted(by: { $0.name4D < $1.name4D }) {
            try graph.messageField(Field.graphValueInfo) { info throws(MalformedProtobuf) in
                info.stringField(Field.valueInfoName, value.name4D)
                try info.messageField(2) { type throws(MalformedProtobuf) in  // TypeProto.tensor_type
                    try type.messageField(1) { tensor throws(MalformedProtobuf) in
                        tensor.varintField(1, 1)  // elem_type FLOAT
                        try tensor.messageField(2) { shape throws(MalformedProtobuf) in
                            shape.messageField(1) { $0.stringField(2, "lark_batch") }
                            shape.messageField(1) { $0.varintField(1, value.channels) }
                            shape.messageField(1) { $0.varintField(1, 1) }
                            shape.messageField(1) { $0.stringField(2, value.length) }
                        }
                    }
                }
            }
        }
    }
}

/// Depthwise 1×1 weights `[C, 1, 1, 1]` filled with one value, each written once.
struct BlockedConstants {
    private var written: [String: String] = [:]
    private var names: Set<String>

    init(names: Set<String>) { self.names = names }

    mutating func filled(_ channels: Int64, with value: Float, into graph: inout ProtoWriter) throws(MalformedProtobuf) -> String {
        let key = "\(channels)/\(value.bitPattern)"
        if let name = written[key] { return name }
        let name = ConvolutionRewrite.unique("lark_depthwise_\(channels)_\(value)", in: &names)
        try graph.floatTensor(name, dims: [channels, 1, 1, 1], values: [Float](repeating: value, count: Int(channels)))
        written[key] = name
        return name
    }
}

extension ProtoWriter {
    /// A 1×1 depthwise convolution (one weight per channel, no bias).
    mutating func depthwise(_ input: String, weight: String, output: String, channels: Int64) throws(MalformedProtobuf) {
        try node("Conv", inputs: [input, weight], output: output) { conv throws(MalformedProtobuf) in
            try conv.intsAttribute("kernel_shape", [1, 1])
            conv.messageField(Field.nodeAttribute) { attribute in
                attribute.stringField(Field.attributeName, "group")
                attribute.varintField(Field.attributeInteger, channels)
                attribute.varintField(Field.attributeType, Field.attributeTypeInt)
            }
        }
    }
}

extension GraphSummary.Tensor {
    /// The value of a one-element float tensor stored as raw data.
    func scalarFloat(in model: [UInt8]) -> Float? {
        guard dataType == 1, dims.reduce(1, *) == 1, !isExternal, let raw = rawData, raw.count == 4 else { return nil }
        return littleEndianFloats(model, raw).first
    }
}
