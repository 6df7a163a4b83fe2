/// A model with some initializers' bytes left out: each named one keeps its name, type and shape,
/// and says its data is external (`data_location` EXTERNAL, in `location`), for a session that is
/// given those tensors in memory (`SharedWeights`, ONNX Runtime's `AddInitializer`).
///
/// Why: ONNX Runtime parses a model's every `raw_data` into memory of its own while it creates a
/// session, even for the initializers it is then given, and a voice's sessions are created at
/// the same time: at a server's load that was the weights three times over (the shared copy and
/// one parse per session; joe: ~60 MiB each), the process's peak. A stub's data is never read
/// when the tensor is given; ONNX Runtime only checks that `location` names an existing file
/// (relative to the session's external-data folder), so the caller names one that exists.
public enum InitializerStubs {
    static let tensorExternalData = 13, tensorDataLocation = 14
    static let entryKey = 1, entryValue = 2

    /// `model` with the initializers named in `names` (those with `raw_data`) as stubs.
    public static func apply(to model: [UInt8], names: Set<String>, location: String) throws(MalformedProtobuf) -> [UInt8] {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return model }
        var writer = ProtoWriter(reservingCapacity: graphField.payload.count / 16)
        for (index, field) in graph.fields.enumerated() {
            guard field.number == Field.graphInitializer, let tensor = graph.tensors[index], let raw = tensor.rawData, !tensor.isExternal,
                  names.contains(tensor.name)
            else {
                writer.copy(field, from: model)
                continue
            }
            var reader = ProtoReader(model, range: field.payload)
            let entries = try reader.all()
            writer.messageField(Field.graphInitializer) { stub in
                for entry in entries where entry.number != Field.tensorRawData { stub.copy(entry, from: model) }
                for (key, value) in [("location", location), ("length", String(raw.count))] {
                    stub.messageField(tensorExternalData) { pair in
                        pair.stringField(entryKey, key)
                        pair.stringField(entryValue, value)
                    }
                }
                stub.varintField(tensorDataLocation, 1)  // EXTERNAL
            }
        }
        return GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes)
    }
}
