/// Some of a model's nodes as a model of their own, and the node that replaces them as another:
/// what the tests of a fusing rewrite run side by side in ONNX Runtime.
enum SubgraphModel {
    struct Value {
        /// The value's name in the model, and in the small model.
        let name: String, renamed: String
        let dims: [Int64]
    }

    /// A model of `nodes` (field indices of `graph`, written in that order) with the constants they
    /// read, `inputs` as its inputs and `output` as its output, each renamed.
    static func copying(
        _ nodes: [Int], of graph: GraphSummary, in model: [UInt8], modelFields: [ProtoField], inputs: [Value], output: Value
    ) throws(MalformedProtobuf) -> [UInt8] {
        let renamed = Dictionary((inputs + [output]).map { ($0.name, $0.renamed) }, uniquingKeysWith: { first, _ in first })
        let byField = graph.nodesByField
        return try wrapping(modelFields, from: model, inputs: inputs, output: output) { graphWriter throws(MalformedProtobuf) in
            var constants: Set<String> = []
            for index in nodes {
                guard let node = byField[index] else { continue }
                for input in node.inputs where graph.tensorsByName[input] != nil { constants.insert(input) }
                graphWriter.messageField(Field.graphNode) { writer in
                    for entry in node.fields {
                        if entry.number == Field.nodeInput || entry.number == Field.nodeOutput {
                            let name = entry.string(in: model)
                            writer.stringField(entry.number, renamed[name] ?? name)
                        } else {
                            writer.copy(entry, from: model)
                        }
                    }
                }
            }
            for (index, field) in graph.fields.enumerated() {
                if let tensor = graph.tensors[index], constants.contains(tensor.name) { graphWriter.copy(field, from: model) }
            }
        }
    }

    /// A model of the nodes `body` writes (besides the constants it may write), with `inputs` and
    /// `output` under their new names, importing `modelFields`' operator sets and Lark's domain.
    static func wrapping(
        _ modelFields: [ProtoField], from model: [UInt8], inputs: [Value], output: Value,
        _ body: (inout ProtoWriter) throws(MalformedProtobuf) -> Void
    ) throws(MalformedProtobuf) -> [UInt8] {
        var graphWriter = ProtoWriter()
        try body(&graphWriter)
        graphWriter.stringField(2, "subgraph")
        for input in inputs { graphWriter.tensorValueInfo(Field.graphInput, name: input.renamed, dims: input.dims) }
        graphWriter.tensorValueInfo(Field.graphOutput, name: output.renamed, dims: output.dims)
        var writer = ProtoWriter()
        writer.varintField(1, 8)  // ir_version
        for field in modelFields where field.number == Field.modelOpsetImport { writer.copy(field, from: model) }
        if try !SplineFlowRewrite.imports(DirectConvolutionRewrite.domain, modelFields, model) {
            writer.opsetImport(domain: DirectConvolutionRewrite.domain, version: 1)
        }
        writer.bytesField(Field.modelGraph, graphWriter.bytes)
        return writer.bytes
    }
}
