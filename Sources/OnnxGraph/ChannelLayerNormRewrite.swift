/// Replaces VITS's layer normalization over channels with Lark's own operator
/// `ai.lark.ChannelLayerNorm` (C target `CLarkKernels`, `channel_layer_norm.c`).
///
/// Why: VITS normalizes `[N, C, T]` over C by transposing to `[N, T, C]`, normalizing the last
/// axis and transposing back; exported to ONNX that is eleven nodes, which ONNX Runtime does not
/// fuse: the text encoder has 12 of them and the duration predictor 24, some 400 kernel calls per
/// sentence for little arithmetic. The operator reads the values once, in their own layout.
///
/// The pattern, each intermediate value read only inside it:
/// `t = Transpose(x, [0, 2, 1])`, `d = t − ReduceMean(t, [-1])`,
/// `Transpose((d / Sqrt(ReduceMean(d ^ 2, [-1]) + ε)) · γ + β, [0, 2, 1])`, with γ and β float
/// initializers of one dimension and ε, the exponent 2 constants.
public enum ChannelLayerNormRewrite {
    public static let domain = DirectConvolutionRewrite.domain
    public static let opType = "ChannelLayerNorm"

    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many normalizations became one node.
        public let replaced: Int
    }

    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replaced: 0) }
        let plans = try ChannelLayerNormPlan.all(in: graph, model: model)
        guard !plans.isEmpty else { return Result(model: model, replaced: 0) }
        var dropped: Set<Int> = []
        var writtenAt: [Int: ChannelLayerNormPlan] = [:]
        for plan in plans {
            dropped.formUnion(plan.nodes)
            writtenAt[plan.finalNode] = plan
        }
        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count)
        for (index, field) in graph.fields.enumerated() {
            if let plan = writtenAt[index] {
                try plan.write(into: &graphWriter)
            } else if !dropped.contains(index) {
                graphWriter.copy(field, from: model)
            }
        }
        let output = try GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes, importing: domain)
        return Result(model: output, replaced: plans.count)
    }

    /// The first `count` normalizations this rewrite would replace, each as two models of input
    /// `X [1, C, length]` and output `Y`: its own nodes copied from `model`, and the one node.
    public static func normalizationModels(in model: [UInt8], length: Int, count: Int) throws(MalformedProtobuf) -> [(original: [UInt8], fused: [UInt8])] {
        guard let (modelFields, _, graph) = try GraphSummary.read(model) else { return [] }
        return try ChannelLayerNormPlan.all(in: graph, model: model).prefix(count).map { plan throws(MalformedProtobuf) in
            let input = SubgraphModel.Value(name: plan.input, renamed: "X", dims: [1, plan.channels, Int64(length)])
            let output = SubgraphModel.Value(name: plan.output, renamed: "Y", dims: [1, plan.channels, Int64(length)])
            let original = try SubgraphModel.copying(plan.nodes.sorted(), of: graph, in: model, modelFields: modelFields, inputs: [input], output: output)
            let fused = try SubgraphModel.wrapping(modelFields, from: model, inputs: [input], output: output) { graphWriter throws(MalformedProtobuf) in
                for (index, field) in graph.fields.enumerated() {
                    if let tensor = graph.tensors[index], [plan.gamma, plan.beta].contains(tensor.name) { graphWriter.copy(field, from: model) }
                }
                try plan.renamed(input: "X", output: "Y").write(into: &graphWriter)
            }
            return (original, fused)
        }
    }
}

/// One layer normalization over channels found in a graph.
struct ChannelLayerNormPlan {
    /// Field indices of the eleven nodes.
    let nodes: Set<Int>
    /// The field index of the last (the transpose back), where the new node goes.
    let finalNode: Int
    private(set) var input: String, output: String
    let gamma: String, beta: String
    let channels: Int64
    let epsilon: Float

    func renamed(input: String, output: String) -> ChannelLayerNormPlan {
        var plan = self
        (plan.input, plan.output) = (input, output)
        return plan
    }

    func write(into graph: inout ProtoWriter) throws(MalformedProtobuf) {
        try graph.customNode(
            ChannelLayerNormRewrite.opType, domain: ChannelLayerNormRewrite.domain, inputs: [input, gamma, beta], output: output
        ) { node in node.floatAttribute("epsilon", epsilon) }
    }

    static func all(in graph: GraphSummary, model: [UInt8]) throws(MalformedProtobuf) -> [ChannelLayerNormPlan] {
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        let byField = graph.nodesByField
        let scalars = try FourDimensionalChains.scalarConstants(graph, in: model)
        var plans: [ChannelLayerNormPlan] = []
        for (index, node) in graph.nodes where node.opType == "Transpose" {
            if let plan = try Matcher(graph: graph, byField: byField, producers: producers, scalars: scalars, model: model).plan(ending: index, node) {
                plans.append(plan)
            }
        }
        return plans
    }

    private struct Matcher {
        let graph: GraphSummary
        let byField: [Int: GraphSummary.Node]
        let producers: [String: Int]
        let scalars: [String: Float]
        let model: [UInt8]

        /// The node of `opType` that makes `value`, read `uses` times and not a graph output.
        func producer(of value: String, _ opType: String, uses: Int = 1) -> (Int, GraphSummary.Node)? {
            guard graph.uses[value] == uses, !graph.outputs.contains(value), let index = producers[value], let node = byField[index],
                  node.opType == opType, node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1
            else { return nil }
            return (index, node)
        }

        func attribute(_ name: String, of node: GraphSummary.Node) throws(MalformedProtobuf) -> NodeAttribute? {
            try NodeAttribute.all(of: node, in: model).first { $0.attribute.name == name }?.attribute
        }

        func swapsLastTwoAxes(_ node: GraphSummary.Node) throws(MalformedProtobuf) -> Bool {
            guard node.inputs.count == 1 else { return false }
            return try attribute("perm", of: node)?.ints == [0, 2, 1]
        }

        /// A mean over the last axis of 3-D values, keeping it.
        func meansLastAxis(_ node: GraphSummary.Node) throws(MalformedProtobuf) -> Bool {
            guard node.inputs.count == 1, let axes = try attribute("axes", of: node) else { return false }
            guard axes.ints == [-1] || axes.ints == [2] else { return false }
            return try attribute("keepdims", of: node)?.integer ?? 1 == 1
        }

        /// A float vector initializer of `channels` values (any when nil).
        func vector(_ name: String, channels: Int64?) -> Int64? {
            guard let tensor = graph.tensorsByName[name], tensor.dataType == 1, !tensor.isExternal, tensor.dims.count == 1,
                  channels == nil || tensor.dims[0] == channels
            else { return nil }
            return tensor.dims[0]
        }

        /// `a` and `b` of a binary node, ordered so that `first` satisfies `test` when possible.
        func operands(_ node: GraphSummary.Node, _ test: (String) -> Bool) -> (String, String)? {
            guard node.inputs.count == 2 else { return nil }
            if test(node.inputs[1]) { return (node.inputs[0], node.inputs[1]) }
            if test(node.inputs[0]) { return (node.inputs[1], node.inputs[0]) }
            return nil
        }

        func plan(ending index: Int, _ last: GraphSummary.Node) throws(MalformedProtobuf) -> ChannelLayerNormPlan? {
            guard last.domain.isEmpty || last.domain == "ai.onnx", last.outputs.count == 1, try swapsLastTwoAxes(last),
                  let (addIndex, add) = producer(of: last.inputs[0], "Add"),
                  let (scaled, beta) = operands(add, { vector($0, channels: nil) != nil }), let channels = vector(beta, channels: nil),
                  let (mulIndex, mul) = producer(of: scaled, "Mul"),
                  let (normalized, gamma) = operands(mul, { vector($0, channels: channels) != nil }),
                  let (divIndex, div) = producer(of: normalized, "Div"), div.inputs.count == 2,
                  let (sqrtIndex, sqrt) = producer(of: div.inputs[1], "Sqrt"),
                  let (epsilonIndex, epsilonAdd) = producer(of: sqrt.inputs[0], "Add"),
                  let (varianceValue, epsilonValue) = operands(epsilonAdd, { scalars[$0] != nil }), let epsilon = scalars[epsilonValue],
                  epsilon >= 0, let (varianceIndex, variance) = producer(of: varianceValue, "ReduceMean"), try meansLastAxis(variance),
                  let (powIndex, pow) = producer(of: variance.inputs[0], "Pow"), pow.inputs.count == 2, scalars[pow.inputs[1]] == 2,
                  pow.inputs[0] == div.inputs[0],
                  let (subIndex, sub) = producer(of: div.inputs[0], "Sub", uses: 2), sub.inputs.count == 2,
                  let (meanIndex, mean) = producer(of: sub.inputs[1], "ReduceMean"), try meansLastAxis(mean),
                  mean.inputs[0] == sub.inputs[0],
                  let (firstIndex, first) = producer(of: sub.inputs[0], "Transpose", uses: 2), try swapsLastTwoAxes(first)
            else { return nil }
            return ChannelLayerNormPlan(
                nodes: [index, addIndex, mulIndex, divIndex, sqrtIndex, epsilonIndex, varianceIndex, powIndex, subIndex, meanIndex, firstIndex],
                finalNode: index, input: first.inputs[0], output: last.outputs[0], gamma: gamma, beta: beta, channels: channels,
                epsilon: epsilon)
        }
    }
}
