/// Where a model's weights are in its bytes: each initializer stored in the model itself
/// (`raw_data`), with its name, element type and dimensions. Initializers stored another way
/// (typed value lists, external files) are not listed.
///
/// For holding a model's weights once for several sessions of it (`SharedWeights` in OnnxRuntime).
public enum ModelInitializers {
    public struct Initializer: Sendable, Equatable {
        public let name: String
        /// ONNX's `TensorProto.DataType` (1 float, 6 int32, 7 int64, …).
        public let dataType: Int
        public let dims: [Int64]
        /// The tensor's bytes in the model.
        public let rawData: Range<Int>
    }

    /// The model's graph's initializers with `raw_data`, in order; none when the model has no single graph.
    public static func read(_ model: [UInt8]) throws(MalformedProtobuf) -> [Initializer] {
        guard let (_, _, graph) = try GraphSummary.read(model) else { return [] }
        return graph.tensors.sorted { $0.key < $1.key }.compactMap { _, tensor in
            guard !tensor.isExternal, let raw = tensor.rawData else { return nil }
            return Initializer(name: tensor.name, dataType: Int(tensor.dataType), dims: tensor.dims, rawData: raw)
        }
    }
}
