/// Replaces each reverse spline flow of a VITS stochastic duration predictor with Lark's own
/// operator `ai.lark.SplineFlowInverse` (C target `CLarkKernels`, `spline_flow.c`).
///
/// Why: a `ConvFlow` run in reverse ends in an inverse rational-quadratic spline, which the ONNX
/// export spells out as some 330 nodes per flow (softmax, cumulative sums, masks, `NonZero`,
/// gathers and scatters) over a few hundred numbers: three flows are a thousand kernel calls per
/// sentence with almost no arithmetic, a sixth of a short sentence's time. The operator does the
/// same arithmetic in one loop. The flow's convolutions and the random draw before the flows are
/// left as they are.
///
/// What is replaced: the nodes between a `Split` of the flow's input `X` (two equal halves on
/// axis 1), the flow's projection `H` (a `Conv`'s output) and the mask, up to the final
/// `Mul(Concat(first half, spline), mask)`; only when no value inside is read from outside, and
/// the nodes are a spline's (two `Softmax`, two `CumSum`, one `Softplus`, one `Sqrt`, the tail
/// tests `X₂ ≥ −b` and `X₂ ≤ b`, the logits divided by one constant). The `Split` stays (its first
/// half feeds the flow's convolutions).
public enum SplineFlowRewrite {
    public static let domain = DirectConvolutionRewrite.domain
    public static let opType = "SplineFlowInverse"

    /// `replaced`: how many spline flows became one node.
    public typealias Result = FusionResult

    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replaced: 0, removedNodes: 0) }
        let flows = try SplineFlowPlan.all(in: graph, model: model)
        guard !flows.isEmpty else { return Result(model: model, replaced: 0, removedNodes: 0) }

        var dropped: Set<Int> = []  // field indices
        var writtenAt: [Int: SplineFlowPlan] = [:]
        var removedUses: [String: Int] = [:]
        let byField = graph.nodesByField
        for flow in flows {
            dropped.formUnion(flow.nodes)
            writtenAt[flow.finalNode] = flow
            for index in flow.nodes {
                for input in byField[index]!.inputs where !input.isEmpty { removedUses[input, default: 0] += 1 }
            }
        }
        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count)
        for (index, field) in graph.fields.enumerated() {
            if let flow = writtenAt[index] {
                try flow.write(into: &graphWriter)
            } else if dropped.contains(index) {
                continue
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index],
                      let removed = removedUses[tensor.name], removed == graph.uses[tensor.name], !graph.declared.contains(tensor.name) {
                continue  // a constant only the replaced nodes read
            } else {
                graphWriter.copy(field, from: model)
            }
        }
        let output = try GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes, importing: domain)
        return Result(model: output, replaced: flows.count, removedNodes: dropped.count)
    }

    /// Whether the model's `opset_import` already names `domain`.
    static func imports(_ domain: String, _ modelFields: [ProtoField], _ model: [UInt8]) throws(MalformedProtobuf) -> Bool {
        for field in modelFields where field.number == Field.modelOpsetImport && field.wireType == .lengthDelimited {
            var reader = ProtoReader(model, range: field.payload)
            while let entry = try reader.next() {
                if entry.number == 1, entry.wireType == .lengthDelimited, entry.string(in: model) == domain { return true }
            }
        }
        return false
    }

    // MARK: - One flow's nodes as a model of their own, for tests

    /// For each flow this rewrite would replace, two models of inputs `X [1, C, length]`,
    /// `H [1, P, length]`, `mask [1, 1, length]` and output `Y`: the flow's own nodes copied from
    /// `model` (with the constants they read), and the single `SplineFlowInverse` node.
    public static func flowModels(in model: [UInt8], length: Int) throws(MalformedProtobuf) -> [(original: [UInt8], fused: [UInt8])] {
        guard let (modelFields, _, graph) = try GraphSummary.read(model) else { return [] }
        return try SplineFlowPlan.all(in: graph, model: model).map { flow throws(MalformedProtobuf) in
            let (c, p, t) = (Int64(2 * flow.half), Int64(flow.half * (3 * flow.bins - 1)), Int64(length))
            let inputs = [
                SubgraphModel.Value(name: flow.input, renamed: "X", dims: [1, c, t]),
                SubgraphModel.Value(name: flow.projection, renamed: "H", dims: [1, p, t]),
                SubgraphModel.Value(name: flow.mask, renamed: "mask", dims: [1, 1, t]),
            ]
            let output = SubgraphModel.Value(name: flow.output, renamed: "Y", dims: [1, c, t])
            let original = try SubgraphModel.copying(
                [flow.split] + flow.nodes.sorted(), of: graph, in: model, modelFields: modelFields, inputs: inputs, output: output)
            let fused = try SubgraphModel.wrapping(modelFields, from: model, inputs: inputs, output: output) { graphWriter throws(MalformedProtobuf) in
                try SplineFlowPlan(flow, inputs: ("X", "H", "mask"), output: "Y").write(into: &graphWriter)
            }
            return (original, fused)
        }
    }
}

/// One reverse spline flow found in a graph, with what its operator needs.
struct SplineFlowPlan {
    /// Field indices of the nodes replaced (the `Split` is not among them).
    let nodes: Set<Int>
    /// The field index of the last of them (the `Mul` by the mask), where the new node goes.
    let finalNode: Int
    let split: Int
    private(set) var input: String, projection: String, mask: String, output: String
    let half: Int, bins: Int
    let tailBound: Float, logitDivisor: Float

    init(_ plan: SplineFlowPlan, inputs: (String, String, String), output: String) {
        self = plan
        (input, projection, mask) = inputs
        self.output = output
    }

    private init(
        nodes: Set<Int>, finalNode: Int, split: Int, input: String, projection: String, mask: String, output: String, half: Int,
        bins: Int, tailBound: Float, logitDivisor: Float
    ) {
        (self.nodes, self.finalNode, self.split, self.input, self.projection, self.mask, self.output) =
            (nodes, finalNode, split, input, projection, mask, output)
        (self.half, self.bins, self.tailBound, self.logitDivisor) = (half, bins, tailBound, logitDivisor)
    }

    func write(into graph: inout ProtoWriter) throws(MalformedProtobuf) {
        try graph.customNode(SplineFlowRewrite.opType, domain: SplineFlowRewrite.domain, inputs: [input, projection, mask], output: output) {
            node in
            node.intAttribute("bins", Int64(bins))
            node.floatAttribute("tail_bound", tailBound)
            node.floatAttribute("logit_divisor", logitDivisor)
        }
    }

    /// The largest flow this looks for (an exported one is about 330 nodes).
    private static let maximumNodes = 2000

    static func all(in graph: GraphSummary, model: [UInt8]) throws(MalformedProtobuf) -> [SplineFlowPlan] {
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]  // value → field index of its node
        var readers: [String: [Int]] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
            for input in Set(node.inputs) where !input.isEmpty { readers[input, default: []].append(index) }
        }
        let scalars = try FourDimensionalChains.scalarConstants(graph, in: model)
        var plans: [SplineFlowPlan] = []
        var claimed: Set<Int> = []
        for (index, node) in graph.nodes where node.opType == "Mul" && isOnnx(node) && node.inputs.count == 2 && node.outputs.count == 1 {
            if let plan = try plan(
                final: index, node, graph: graph, byField: byField, model: model, producers: producers, readers: readers, scalars: scalars),
               plan.nodes.isDisjoint(with: claimed) {
                claimed.formUnion(plan.nodes)
                plans.append(plan)
            }
        }
        return plans
    }

    private static func isOnnx(_ node: GraphSummary.Node) -> Bool { node.domain.isEmpty || node.domain == "ai.onnx" }

    private static func integerAttribute(_ name: String, of node: GraphSummary.Node, _ model: [UInt8]) throws(MalformedProtobuf) -> Int64? {
        try NodeAttribute.all(of: node, in: model).first { $0.attribute.name == name }?.attribute.integer
    }

    /// The flow ending in `final` (`Mul(Concat(split half 1, spline), mask)`), or nil.
    private static func plan(
        final: Int, _ mul: GraphSummary.Node, graph: GraphSummary, byField: [Int: GraphSummary.Node], model: [UInt8], producers: [String: Int], readers: [String: [Int]],
        scalars: [String: Float]
    ) throws(MalformedProtobuf) -> SplineFlowPlan? {
        // Which input is the Concat: the other is the mask.
        for (concatValue, mask) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
            guard let concatIndex = producers[concatValue], let concat = byField[concatIndex], concat.opType == "Concat", isOnnx(concat),
                  concat.inputs.count == 2, try integerAttribute("axis", of: concat, model) == 1,
                  let splitIndex = producers[concat.inputs[0]], let split = byField[splitIndex], split.opType == "Split", isOnnx(split),
                  split.outputs.count == 2, split.outputs[0] == concat.inputs[0], try integerAttribute("axis", of: split, model) == 1,
                  let half = try equalHalves(split, graph: graph, model: model)
            else { continue }
            return try closure(
                final: final, output: mul.outputs[0], mask: mask, splitIndex: splitIndex, split: split, half: half, graph: graph, byField: byField, model: model,
                producers: producers, readers: readers, scalars: scalars)
        }
        return nil
    }

    /// The size of each half when `split` cuts its input into two equal parts given as a constant.
    private static func equalHalves(_ split: GraphSummary.Node, graph: GraphSummary, model: [UInt8]) throws(MalformedProtobuf) -> Int? {
        var sizes: [Int64] = []
        if split.inputs.count >= 2, let tensor = graph.tensorsByName[split.inputs[1]], tensor.dataType == 7, let raw = tensor.rawData {
            sizes = stride(from: raw.lowerBound, to: raw.upperBound, by: 8).map { start in
                (0..<8).reduce(Int64(0)) { $0 | Int64(model[start + $1]) << (8 * $1) }
            }
        } else if let attribute = try NodeAttribute.all(of: split, in: model).first(where: { $0.attribute.name == "split" }) {
            sizes = attribute.attribute.ints
        }
        guard sizes.count == 2, sizes[0] == sizes[1], sizes[0] > 0, sizes[0] < 64 else { return nil }
        return Int(sizes[0])
    }

    private static func closure(
        final: Int, output: String, mask: String, splitIndex: Int, split: GraphSummary.Node, half: Int, graph: GraphSummary,
        byField: [Int: GraphSummary.Node], model: [UInt8],
        producers: [String: Int], readers: [String: [Int]], scalars: [String: Float]
    ) throws(MalformedProtobuf) -> SplineFlowPlan? {
        // Walk back from the final Mul to the Split's halves, the mask, constants and one Conv.
        var nodes: Set<Int> = [final]
        var pending = [final]
        var projection: String?
        while let index = pending.popLast() {
            for input in byField[index]!.inputs where !input.isEmpty && input != mask {
                if graph.tensorsByName[input] != nil { continue }
                guard let producer = producers[input] else { return nil }  // a graph input: not a flow
                if producer == splitIndex || nodes.contains(producer) { continue }
                let node = byField[producer]!
                if node.opType == "Conv" {
                    guard projection == nil || projection == input else { return nil }
                    projection = input
                    continue
                }
                if node.opType == "Constant" { return nil }  // keeps the removal simple: exported flows have none
                nodes.insert(producer)
                pending.append(producer)
                if nodes.count > maximumNodes { return nil }
            }
        }
        guard let projection, let projectionIndex = producers[projection], let conv = byField[projectionIndex],
              conv.inputs.count >= 2, let weight = graph.tensorsByName[conv.inputs[1]], let channels = weight.dims.first,
              channels % Int64(half) == 0, (channels / Int64(half) + 1) % 3 == 0
        else { return nil }
        let bins = Int((channels / Int64(half) + 1) / 3)
        guard bins >= 2, bins <= 64 else { return nil }

        // Nothing inside is read from outside, and the nodes are a spline's.
        var counts: [String: Int] = [:]
        var divisors: Set<Float> = []
        var bounds: [String: Float] = [:]
        for index in nodes {
            let node = byField[index]!
            guard isOnnx(node) else { return nil }
            counts[node.opType, default: 0] += 1
            for value in node.outputs where index != final {
                if graph.outputs.contains(value) { return nil }
                if let outside = readers[value], !outside.allSatisfy(nodes.contains) { return nil }
            }
            if node.opType == "Div", node.inputs.count == 2, let divisor = scalars[node.inputs[1]] { divisors.insert(divisor) }
            if ["GreaterOrEqual", "LessOrEqual"].contains(node.opType), node.inputs.count == 2, node.inputs[0] == split.outputs[1],
               let bound = scalars[node.inputs[1]] {
                bounds[node.opType] = bound
            }
        }
        guard counts["Softmax"] == 2, counts["CumSum"] == 2, counts["Softplus"] == 1, counts["Sqrt"] == 1,
              divisors.count == 1, let divisor = divisors.first, divisor.isFinite, divisor != 0,
              let upper = bounds["LessOrEqual"], let lower = bounds["GreaterOrEqual"], upper > 0, lower == -upper
        else { return nil }
        return SplineFlowPlan(
            nodes: nodes, finalNode: final, split: splitIndex, input: split.inputs[0], projection: projection, mask: mask, output: output,
            half: half, bins: bins, tailBound: upper, logitDivisor: divisor)
    }
}

extension GraphSummary {
    /// The nodes by their field index.
    var nodesByField: [Int: Node] { Dictionary(nodes.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first }) }
}
