/// Replaces WaveNet's gated activation in VITS's flows with Lark's own operator `ai.lark.GatedTanh`
/// (C target `CLarkKernels`, `gated_tanh.c`).
///
/// Why: each of the flows' WaveNet layers computes `tanh(a) · sigmoid(b)` over the two halves of a
/// convolution's channels, after adding a zero tensor made for the missing speaker conditioning
/// (`Shape`, `ConstantOfShape`, `Add`); exported to ONNX that is eight nodes per layer and sixteen
/// layers in a voice: some 130 kernel calls per sentence for one pass of arithmetic.
///
/// What is replaced: `Mul(Tanh(Slice(A, 0 … C, axis 1)), Sigmoid(Slice(A, C … end, axis 1)))` where
/// A has 2C channels (a `Conv`'s output, or such an output plus zeros of its own shape, which are
/// skipped) → `GatedTanh(A)`. The slices, activations and the zero tensor are removed with it.
public enum GatedActivationRewrite {
    public static let domain = DirectConvolutionRewrite.domain
    public static let opType = "GatedTanh"

    /// `replaced`: how many gates became one node.
    public typealias Result = FusionResult

    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replaced: 0, removedNodes: 0) }
        let gates = try gates(in: graph, model: model)
        guard !gates.isEmpty else { return Result(model: model, replaced: 0, removedNodes: 0) }
        var replacements: [Int: NodeReplacement] = [:]
        for gate in gates {
            replacements[gate.node] = NodeReplacement(inputs: [gate.input]) { graphWriter throws(MalformedProtobuf) in
                try graphWriter.customNode(opType, domain: domain, inputs: [gate.input], output: gate.output) { _ in }
            }
        }
        let (rewritten, removed) = try NodeReplacement.apply(
            replacements, to: model, modelFields: modelFields, graphField: graphField, graph: graph, domain: domain)
        return Result(model: rewritten, replaced: gates.count, removedNodes: removed)
    }

    /// The first `count` gates, each as two models of input `X [1, 2C, length]` (the convolution's
    /// output) and output `Y [1, C, length]`: the nodes from X to Y copied from `model`, and the one node.
    public static func gateModels(in model: [UInt8], length: Int, count: Int) throws(MalformedProtobuf) -> [(original: [UInt8], fused: [UInt8])] {
        guard let (modelFields, _, graph) = try GraphSummary.read(model) else { return [] }
        var models: [(original: [UInt8], fused: [UInt8])] = []
        for gate in try gates(in: graph, model: model).prefix(count) {
            let x = SubgraphModel.Value(name: gate.input, renamed: "X", dims: [1, 2 * gate.channels, Int64(length)])
            let y = SubgraphModel.Value(name: gate.output, renamed: "Y", dims: [1, gate.channels, Int64(length)])
            let original = try SubgraphModel.copying(gate.nodes.sorted(), of: graph, in: model, modelFields: modelFields, inputs: [x], output: y)
            let fused = try SubgraphModel.wrapping(modelFields, from: model, inputs: [x], output: y) { graphWriter throws(MalformedProtobuf) in
                try graphWriter.customNode(opType, domain: domain, inputs: ["X"], output: "Y") { _ in }
            }
            models.append((original, fused))
        }
        return models
    }

    struct Gate {
        /// The field index of the `Mul`, and of every node from the input to it.
        let node: Int
        let nodes: Set<Int>
        let input: String, output: String
        let channels: Int64
    }

    static func gates(in graph: GraphSummary, model: [UInt8]) throws(MalformedProtobuf) -> [Gate] {
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        func node(_ value: String, _ opType: String, readOnce: Bool = true) -> (Int, GraphSummary.Node)? {
            guard let index = producers[value], let node = byField[index], node.opType == opType,
                  node.domain.isEmpty || node.domain == "ai.onnx", !node.inputs.isEmpty, node.outputs.count == 1,
                  !readOnce || (graph.uses[value] == 1 && !graph.outputs.contains(value))
            else { return nil }
            return (index, node)
        }
        func integers(_ name: String) -> [Int64]? {
            guard let tensor = graph.tensorsByName[name], tensor.dataType == 7, let raw = tensor.rawData else { return nil }
            return stride(from: raw.lowerBound, to: raw.upperBound, by: 8).map { start in
                (0..<8).reduce(Int64(0)) { $0 | Int64(model[start + $1]) << (8 * $1) }
            }
        }
        /// A `Slice` of channels `start ..< end` (axis 1, step 1) of its data input.
        func channelSlice(_ node: GraphSummary.Node) -> (start: Int64, end: Int64)? {
            guard node.inputs.count >= 4, let starts = integers(node.inputs[1]), let ends = integers(node.inputs[2]),
                  let axes = integers(node.inputs[3]), starts.count == 1, ends.count == 1, axes == [1],
                  node.inputs.count == 4 || integers(node.inputs[4]) == [1]
            else { return nil }
            return (starts[0], ends[0])
        }
        /// The channels of a `Conv`'s output, from its weight.
        func convolutionChannels(_ value: String) -> Int64? {
            guard let (_, conv) = node(value, "Conv", readOnce: false), conv.inputs.count >= 2,
                  let weight = graph.tensorsByName[conv.inputs[1]], let channels = weight.dims.first
            else { return nil }
            return channels
        }

        var gates: [Gate] = []
        for (index, mul) in graph.nodes where mul.opType == "Mul" && (mul.domain.isEmpty || mul.domain == "ai.onnx") && mul.inputs.count == 2 {
            let pairs = [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])]
            guard let (tanhIndex, tanh, sigmoidIndex, sigmoid) = pairs.lazy.compactMap({ pair -> (Int, GraphSummary.Node, Int, GraphSummary.Node)? in
                guard let (a, b) = Optional(pair), let (i, t) = node(a, "Tanh"), let (j, s) = node(b, "Sigmoid") else { return nil }
                return (i, t, j, s)
            }).first,
                  let (firstIndex, first) = node(tanh.inputs[0], "Slice"), let (secondIndex, second) = node(sigmoid.inputs[0], "Slice"),
                  first.inputs[0] == second.inputs[0], let lower = channelSlice(first), let upper = channelSlice(second),
                  lower.start == 0, lower.end > 0, upper.start == lower.end
            else { continue }
            var input = first.inputs[0]
            var nodes: Set<Int> = [index, tanhIndex, sigmoidIndex, firstIndex, secondIndex]
            // A convolution's output plus zeros of its own shape: the zeros are skipped.
            if let (addIndex, add) = node(input, "Add", readOnce: false), graph.uses[input] == 2, add.inputs.count == 2,
               let (zerosIndex, zeros) = node(add.inputs[1], "ConstantOfShape"), try isZero(zeros, model),
               let (shapeIndex, shape) = node(zeros.inputs[0], "Shape"), shape.inputs.count == 1, shape.inputs[0] == add.inputs[0],
               try NodeAttribute.all(of: shape, in: model).isEmpty {
                input = add.inputs[0]
                nodes.formUnion([addIndex, zerosIndex, shapeIndex])
            }
            guard let channels = convolutionChannels(input), channels == 2 * lower.end, upper.end >= channels else { continue }
            gates.append(Gate(node: index, nodes: nodes, input: input, output: mul.outputs[0], channels: lower.end))
        }
        return gates
    }

    /// Whether a `ConstantOfShape` fills with float zeros (its default when it has no value).
    static func isZero(_ node: GraphSummary.Node, _ model: [UInt8]) throws(MalformedProtobuf) -> Bool {
        guard let value = try GraphSummary.valueAttribute(of: node, in: model) else { return true }
        guard let tensor = value.tensor, tensor.dataType == 1, let raw = tensor.rawData else { return false }
        return littleEndianFloats(model, raw).allSatisfy { $0 == 0 }
    }
}
