/// Removes a model's shape annotations: every `value_info` entry of the graph, and the shapes
/// (not the element types) of its inputs and outputs. The nodes, weights and names stay as they are.
///
/// Why: with shapes known, ONNX Runtime's allocation planner tries, for each of a voice's ~3,000
/// intermediate values, every buffer freed so far as a place to reuse, comparing symbolic shapes
/// name by name: about a second of single-threaded work per session created (most of a cached
/// voice's load). Without the annotations only the few shapes fixed by weights are known, the
/// planner skips the rest, and ONNX Runtime's arena recycles freed buffers at run time anyway:
/// measured on the joe voice, the same samples, the same run time and the same peak memory
/// (figures in bench/results/startup-server-soak.md).
/// For a graph ONNX Runtime has already optimized (its optimizations may use the shapes).
public enum ShapeAnnotations {
    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many `value_info` entries went, and how many inputs and outputs lost their shape.
        public let removedValueInfos: Int
        public let unshapedInputsAndOutputs: Int
    }

    static let typeField = 2  // ValueInfoProto.type
    static let tensorTypeField = 1  // TypeProto.tensor_type
    static let shapeField = 2  // TypeProto.Tensor.shape

    public static func remove(from model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else {
            return Result(model: model, removedValueInfos: 0, unshapedInputsAndOutputs: 0)
        }
        var writer = ProtoWriter(reservingCapacity: graphField.payload.count)
        var removed = 0
        var unshaped = 0
        for field in graph.fields {
            let annotation = field.wireType == .lengthDelimited ? field.number : 0
            if annotation == Field.graphValueInfo {
                removed += 1
            } else if annotation == Field.graphInput || annotation == Field.graphOutput {
                let (info, changed) = try withoutShape(valueInfo: field, in: model)
                writer.bytesField(field.number, info)
                if changed { unshaped += 1 }
            } else {
                writer.copy(field, from: model)
            }
        }
        guard removed > 0 || unshaped > 0 else { return Result(model: model, removedValueInfos: 0, unshapedInputsAndOutputs: 0) }
        return Result(
            model: GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes), removedValueInfos: removed,
            unshapedInputsAndOutputs: unshaped)
    }

    /// A `ValueInfoProto`'s bytes with the shape of its tensor type left out, and whether it had one.
    private static func withoutShape(valueInfo field: ProtoField, in model: [UInt8]) throws(MalformedProtobuf) -> ([UInt8], Bool) {
        var changed = false
        let info = try rewritten(field.payload, in: model, field: typeField) { type throws(MalformedProtobuf) in
            try rewritten(type, in: model, field: tensorTypeField) { tensor throws(MalformedProtobuf) in
                var reader = ProtoReader(model, range: tensor)
                var writer = ProtoWriter()
                while let entry = try reader.next() {
                    if entry.number == shapeField {
                        changed = true
                    } else {
                        writer.copy(entry, from: model)
                    }
                }
                return writer.bytes
            }
        }
        return (info, changed)
    }

    /// The message in `range` with each length-delimited field `field` replaced by `edit` of its payload.
    private static func rewritten(
        _ range: Range<Int>, in model: [UInt8], field number: Int, _ edit: (Range<Int>) throws(MalformedProtobuf) -> [UInt8]
    ) throws(MalformedProtobuf) -> [UInt8] {
        var reader = ProtoReader(model, range: range)
        var writer = ProtoWriter(reservingCapacity: range.count)
        while let entry = try reader.next() {
            if entry.number == number, entry.wireType == .lengthDelimited {
                writer.bytesField(number, try edit(entry.payload))
            } else {
                writer.copy(entry, from: model)
            }
        }
        return writer.bytes
    }
}
