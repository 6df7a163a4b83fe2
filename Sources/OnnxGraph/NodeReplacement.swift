/// Writes a graph with some nodes replaced by new ones that make the same outputs from other
/// inputs, and without the nodes that then compute nothing anyone reads (back through their
/// inputs), nor the constants only those read. The fusing rewrites that match a result by its
/// data path (`RelativeAttentionRewrite`, `GatedActivationRewrite`) use it: what led to the
/// result, shape arithmetic included, goes with it unless something else still reads it.
/// What a fusing rewrite did: the model, how many results became one node each, and how many
/// nodes are gone in all (the replaced ones and those left unread).
public struct FusionResult: Sendable {
    public let model: [UInt8]
    public let replaced: Int
    public let removedNodes: Int
}

struct NodeReplacement {
    /// The new node's inputs, and how to write it.
    let inputs: [String]
    let write: (inout ProtoWriter) throws(MalformedProtobuf) -> Void

    /// The model with each node at a key of `replacements` (a field index) replaced; the number
    /// of nodes gone (replaced or unread).
    static func apply(
        _ replacements: [Int: NodeReplacement], to model: [UInt8], modelFields: [ProtoField], graphField: ProtoField, graph: GraphSummary,
        domain: String
    ) throws(MalformedProtobuf) -> (model: [UInt8], removedNodes: Int) {
        let byField = graph.nodesByField
        var uses = graph.uses
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
        }
        var removed: Set<Int> = []
        var pending: [String] = []
        for (index, replacement) in replacements {
            for input in byField[index]!.inputs where !input.isEmpty {
                uses[input, default: 0] -= 1
                pending.append(input)
            }
            for input in replacement.inputs { uses[input, default: 0] += 1 }
        }
        while let value = pending.popLast() {
            guard uses[value, default: 0] == 0, !graph.outputs.contains(value), let index = producers[value], !removed.contains(index),
                  replacements[index] == nil, let node = byField[index],
                  node.outputs.allSatisfy({ $0.isEmpty || (uses[$0, default: 0] == 0 && !graph.outputs.contains($0)) })
            else { continue }
            removed.insert(index)
            for input in node.inputs where !input.isEmpty {
                uses[input, default: 0] -= 1
                pending.append(input)
            }
        }

        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count)
        for (index, field) in graph.fields.enumerated() {
            if let replacement = replacements[index] {
                try replacement.write(&graphWriter)
            } else if removed.contains(index) {
                continue
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index], uses[tensor.name, default: 0] <= 0,
                      graph.uses[tensor.name, default: 0] > 0, !graph.declared.contains(tensor.name) {
                continue  // a constant only the removed nodes read
            } else {
                graphWriter.copy(field, from: model)
            }
        }
        let output = try GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes, importing: domain)
        return (output, removed.count + replacements.count)
    }
}
