/// Replaces the two relative-position terms of VITS's windowed self-attention (the text
/// encoder's) with Lark's own operators `ai.lark.RelativeKeyLogits` and
/// `ai.lark.RelativeValueWeights` (C target `CLarkKernels`, `relative_attention.c`).
///
/// Why: VITS adds to each attention layer's scores the queries' products with a table of 2w + 1
/// relative-position embeddings, and to its output the weights' products with another; it does
/// so with a small matrix product framed by padding, reshaping and slicing that turn relative
/// positions into absolute ones and back. Exported to ONNX that is some 70 nodes per layer, about
/// 400 kernel calls per sentence for the text encoder's six layers, with shape arithmetic on the
/// sentence's length in between. The operators compute the band of the same products directly.
///
/// What is replaced, found by the nodes' types along the data path:
/// - `Slice(Reshape(Pad(Reshape(Pad(MatMul(Q, Transpose(Unsqueeze(Slice(Pad(E)))))))))` →
///   `RelativeKeyLogits(Q, E)`;
/// - `MatMul(Slice(Reshape(Pad(Reshape(Pad(P))))), Unsqueeze(Slice(Pad(E))))` →
///   `RelativeValueWeights(P, E)`;
/// each E a float initializer `[1 or H, 2w + 1, D]`. The nodes that then compute nothing anyone
/// reads (the padding and reshaping, and the shape arithmetic only they used) are removed
/// (`NodeReplacement`).
public enum RelativeAttentionRewrite {
    public static let domain = DirectConvolutionRewrite.domain

    /// `replaced`: how many relative-attention terms became one node.
    public typealias Result = FusionResult

    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replaced: 0, removedNodes: 0) }
        let plans = RelativeTermPlan.all(in: graph)
        guard !plans.isEmpty else { return Result(model: model, replaced: 0, removedNodes: 0) }
        var replacements: [Int: NodeReplacement] = [:]
        for plan in plans {
            replacements[plan.finalNode] = NodeReplacement(inputs: plan.inputs) { graphWriter throws(MalformedProtobuf) in
                try plan.write(into: &graphWriter)
            }
        }
        let (rewritten, removed) = try NodeReplacement.apply(
            replacements, to: model, modelFields: modelFields, graphField: graphField, graph: graph, domain: domain)
        return Result(model: rewritten, replaced: plans.count, removedNodes: removed)
    }

    /// The first `count` terms of each kind, each as two models: the nodes that compute it in
    /// `model` (back to its inputs, constants, and the `Conv` outputs whose shape the exported
    /// graph reads), and the one node. Inputs: `X` (`Q [1, H, length, D]` or
    /// `P [1, H, length, length]`), and for the original also each such `Conv` output as
    /// `C0, C1, …` (`[1, channels, length]`); output `Y`.
    public static func termModels(in model: [UInt8], length: Int, count: Int) throws(MalformedProtobuf) -> [(original: [UInt8], fused: [UInt8])] {
        guard let (modelFields, _, graph) = try GraphSummary.read(model) else { return [] }
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        let plans = RelativeTermPlan.all(in: graph)
        let chosen = plans.filter { !$0.values }.prefix(count) + plans.filter(\.values).prefix(count)
        var models: [(original: [UInt8], fused: [UInt8])] = []
        for plan in chosen {
            let (heads, depth) = plan.headsAndDepth
            let t = Int64(length)
            let x = SubgraphModel.Value(name: plan.inputs[0], renamed: "X", dims: plan.values ? [1, heads, t, t] : [1, heads, t, depth])
            let y = SubgraphModel.Value(name: plan.output, renamed: "Y", dims: plan.values ? [1, heads, t, depth] : [1, heads, t, t])
            // The nodes behind the output, back to X, constants and Conv outputs.
            var nodes: Set<Int> = [plan.finalNode]
            var pending = [plan.finalNode]
            var convolutions: [String] = []
            while let index = pending.popLast() {
                for input in byField[index]!.inputs where !input.isEmpty && input != plan.inputs[0] && graph.tensorsByName[input] == nil {
                    guard let producer = producers[input], let node = byField[producer] else { return [] }
                    if node.opType == "Conv" {
                        if !convolutions.contains(input) { convolutions.append(input) }
                    } else if nodes.insert(producer).inserted {
                        pending.append(producer)
                    }
                }
            }
            var inputs = [x]
            for (number, value) in convolutions.enumerated() {
                let conv = byField[producers[value]!]!
                guard conv.inputs.count >= 2, let channels = graph.tensorsByName[conv.inputs[1]]?.dims.first else { return [] }
                inputs.append(SubgraphModel.Value(name: value, renamed: "C\(number)", dims: [1, channels, t]))
            }
            let original = try SubgraphModel.copying(nodes.sorted(), of: graph, in: model, modelFields: modelFields, inputs: inputs, output: y)
            let fused = try SubgraphModel.wrapping(modelFields, from: model, inputs: [x], output: y) { graphWriter throws(MalformedProtobuf) in
                for (index, field) in graph.fields.enumerated() {
                    if let tensor = graph.tensors[index], tensor.name == plan.inputs[1] { graphWriter.copy(field, from: model) }
                }
                try plan.renamed(input: "X", output: "Y").write(into: &graphWriter)
            }
            models.append((original, fused))
        }
        return models
    }
}

/// One relative-position term found in a graph.
struct RelativeTermPlan {
    /// RelativeValueWeights (else RelativeKeyLogits).
    let values: Bool
    /// The field index of the node whose output the new node makes.
    let finalNode: Int
    /// `[Q or P, E]`.
    private(set) var inputs: [String]
    private(set) var output: String
    /// E's dims.
    let table: [Int64]

    var opType: String { values ? "RelativeValueWeights" : "RelativeKeyLogits" }
    /// The heads (2 when E is shared by them: VITS's default; only tests ask) and the depth.
    var headsAndDepth: (Int64, Int64) { (table[0] == 1 ? 2 : table[0], table[2]) }

    func renamed(input: String, output: String) -> RelativeTermPlan {
        var plan = self
        plan.inputs[0] = input
        plan.output = output
        return plan
    }

    func write(into graph: inout ProtoWriter) throws(MalformedProtobuf) {
        try graph.customNode(opType, domain: RelativeAttentionRewrite.domain, inputs: inputs, output: output) { _ in }
    }

    static func all(in graph: GraphSummary) -> [RelativeTermPlan] {
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        /// The node of `opType` that makes `value` (from ONNX's own domain).
        func node(_ value: String?, _ opType: String) -> GraphSummary.Node? {
            guard let value, let index = producers[value], let node = byField[index], node.opType == opType,
                  node.domain.isEmpty || node.domain == "ai.onnx", !node.inputs.isEmpty
            else { return nil }
            return node
        }
        /// A float table `[1 or H, 2w + 1, D]` held as an initializer.
        func table(_ name: String?) -> [Int64]? {
            guard let name, let tensor = graph.tensorsByName[name], tensor.dataType == 1, !tensor.isExternal, tensor.dims.count == 3,
                  tensor.dims[1] % 2 == 1, tensor.dims[2] > 0, !graph.declared.contains(name)
            else { return nil }
            return tensor.dims
        }
        /// The value that `Pad → Reshape → Pad → Reshape` (then `Slice` for `sliced`) starts from.
        func reshaped(_ value: String?) -> String? {
            node(node(node(node(value, "Reshape")?.inputs[0], "Pad")?.inputs[0], "Reshape")?.inputs[0], "Pad")?.inputs[0]
        }
        /// The table behind `Slice(Pad(E))`.
        func sliced(_ value: String?) -> String? { node(node(value, "Slice")?.inputs[0], "Pad")?.inputs[0] }

        var plans: [RelativeTermPlan] = []
        for (index, candidate) in graph.nodes where candidate.outputs.count == 1 && (candidate.domain.isEmpty || candidate.domain == "ai.onnx") {
            if candidate.opType == "Slice", let product = node(reshaped(candidate.inputs[0]), "MatMul"), product.inputs.count == 2,
               let embedded = sliced(node(node(product.inputs[1], "Transpose")?.inputs[0], "Unsqueeze")?.inputs[0]), let dims = table(embedded) {
                plans.append(RelativeTermPlan(values: false, finalNode: index, inputs: [product.inputs[0], embedded], output: candidate.outputs[0], table: dims))
            } else if candidate.opType == "MatMul", candidate.inputs.count == 2,
                      let weights = reshaped(node(candidate.inputs[0], "Slice")?.inputs[0]),
                      let embedded = sliced(node(candidate.inputs[1], "Unsqueeze")?.inputs[0]), let dims = table(embedded) {
                plans.append(RelativeTermPlan(values: true, finalNode: index, inputs: [weights, embedded], output: candidate.outputs[0], table: dims))
            }
        }
        return plans
    }
}
