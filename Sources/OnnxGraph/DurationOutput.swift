/// Makes a VITS model report how long it holds each phoneme id: the duration predictor's frame
/// counts, rounded up by the graph's one `Ceil`, become an extra graph output.
///
/// Why: a VITS graph computes these durations anyway (they decide how many frames the decoder
/// makes), so exposing them costs nothing and gives exact timings for every phoneme id:
/// frames × the decoder's hop length (256 samples for Piper's voices) is each id's sample span.
/// What changes: one `Identity` node copies the `Ceil`'s output to `outputName`, declared as a
/// graph output after the model's own. Nothing else: the audio is computed as before.
public enum DurationOutput {
    /// The name of the added output: float frames per phoneme id, shape [1, 1, ids].
    public static let outputName = "lark_phoneme_frames"

    /// `model` with the output added, or nil when the model has no single `Ceil` (not a VITS
    /// graph as Piper exports it) or already has the output.
    public static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> [UInt8]? {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return nil }
        let ceilings = graph.nodes.filter { $0.1.opType == "Ceil" && $0.1.domain.isEmpty }
        guard ceilings.count == 1, let durations = ceilings[0].1.outputs.first,
              !graph.allNames.contains(outputName)
        else { return nil }

        var writer = ProtoWriter(reservingCapacity: graphField.payload.count + 128)
        var wroteOutput = false
        for field in graph.fields {
            writer.copy(field, from: model)
            // After the model's own outputs, so theirs keep their positions.
            if field.number == Field.graphOutput, !wroteOutput, isLastOutput(field, in: graph) {
                try declareOutput(into: &writer)
                wroteOutput = true
            }
        }
        try writer.node("Identity", inputs: [durations], output: outputName)
        if !wroteOutput { try declareOutput(into: &writer) }
        return GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes)
    }

    private static func isLastOutput(_ field: ProtoField, in graph: GraphSummary) -> Bool {
        graph.fields.last(where: { $0.number == Field.graphOutput })?.whole == field.whole
    }

    /// A `ValueInfoProto` for the output: a float tensor of unstated shape.
    private static func declareOutput(into writer: inout ProtoWriter) throws(MalformedProtobuf) {
        writer.messageField(Field.graphOutput) { (info: inout ProtoWriter) in
            info.stringField(Field.valueInfoName, outputName)
            info.messageField(2) { (type: inout ProtoWriter) in  // ValueInfoProto.type
                type.messageField(1) { (tensor: inout ProtoWriter) in  // TypeProto.tensor_type
                    tensor.varintField(1, 1)  // elem_type FLOAT
                }
            }
        }
    }
}
