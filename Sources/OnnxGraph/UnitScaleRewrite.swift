/// Removes the scale by one that VITS's mean-only coupling flows apply in reverse:
/// `(x − m) · exp(−logs)` with `logs = zeros_like(m)`, exported as
/// `Mul(X, Exp(Neg(ConstantOfShape(Shape(m)))))`: five nodes per flow that make a tensor of ones
/// and multiply by it. The `Mul` becomes an `Identity` (which ONNX Runtime removes) and the rest
/// goes (`NodeReplacement`).
///
/// Only when the zeros have the shape of an input `m` of the element-wise node (`Add`, `Sub`,
/// `Mul`, `Div`) that makes X, so that X already has the product's shape.
public enum UnitScaleRewrite {
    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many scales were removed.
        public let removed: Int
        public let removedNodes: Int
    }

    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, removed: 0, removedNodes: 0) }
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        func node(_ value: String, _ opType: String) -> GraphSummary.Node? {
            guard let index = producers[value], let node = byField[index], node.opType == opType,
                  node.domain.isEmpty || node.domain == "ai.onnx", node.inputs.count >= 1, node.outputs.count == 1
            else { return nil }
            return node
        }
        var replacements: [Int: NodeReplacement] = [:]
        for (index, mul) in graph.nodes where mul.opType == "Mul" && (mul.domain.isEmpty || mul.domain == "ai.onnx") && mul.inputs.count == 2 {
            for (x, ones) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
                guard let exp = node(ones, "Exp"), let neg = node(exp.inputs[0], "Neg"), let zeros = node(neg.inputs[0], "ConstantOfShape"),
                      try GatedActivationRewrite.isZero(zeros, model), let shape = node(zeros.inputs[0], "Shape"), shape.inputs.count == 1,
                      try NodeAttribute.all(of: shape, in: model).isEmpty,
                      let producer = producers[x].flatMap({ byField[$0] }), ["Add", "Sub", "Mul", "Div"].contains(producer.opType),
                      producer.domain.isEmpty || producer.domain == "ai.onnx", producer.inputs.contains(shape.inputs[0])
                else { continue }
                let output = mul.outputs[0]
                replacements[index] = NodeReplacement(inputs: [x]) { graphWriter throws(MalformedProtobuf) in
                    try graphWriter.customNode("Identity", domain: "", inputs: [x], output: output) { _ in }
                }
                break
            }
        }
        guard !replacements.isEmpty else { return Result(model: model, removed: 0, removedNodes: 0) }
        let (rewritten, removedNodes) = try NodeReplacement.apply(
            replacements, to: model, modelFields: modelFields, graphField: graphField, graph: graph, domain: "")
        return Result(model: rewritten, removed: replacements.count, removedNodes: removedNodes - replacements.count)
    }
}
