/// Stores each `ai.lark.DirectConv`'s weights in the form its kernel reads them (Winograd-
/// transformed, packed) in place of W, with attributes `prepared_weights` (the form) and
/// `weight_shape` ([M, C, K]), so that the kernel reads the graph's tensor in place (held as
/// [R, C·K], zero-padded to whole rows, so that its shape still tells a profile the convolution's
/// multiply-adds, `NodeArithmetic`); and each
/// `ai.lark.ResidualStack`'s convolutions' weights the same way (`prepared_weights`: one form per
/// convolution, 0 for a W left as it is).
///
/// Why: a kernel that reads a prepared form made it from W on its first run and kept it beside W,
/// which ONNX Runtime holds for the session's life anyway: two copies of those weights, and the
/// Winograd form is 8/5 of W for the flow's F(4, 5) convolutions (joe: 38 MiB prepared beside
/// 25 MiB of W, bench/results/startup-server-soak.md). With the form in the graph there is one.
///
/// The form depends on the CPU (the packed layout, the SIMD path), so only for a graph kept per
/// CPU: the optimized-voice cache's entries, keyed by CPU features. The caller (`prepare`, on
/// `CLarkKernels`) makes the form as the kernel would, or declines (nil) where the kernel reads
/// plain W; a kernel given a form it does not read refuses to load, and the load-time probe
/// checks the audio as for every rewrite.
public enum PreparedWeightsRewrite {
    /// One convolution's weights and the node's attributes that decide their form.
    public struct Request: Sendable {
        /// W [M, C, K] (a 4-D W [M, C, 1, K] as [M, C, K]).
        public let weights: [Float]
        public let outputChannels: Int64, inputChannels: Int64, kernel: Int64
        /// The node's `lark_kernel_path`, `bf16`, `winograd_outputs` and `winograd_taps` (0 when absent).
        public let path: Int64, bf16: Int64, winogradOutputs: Int64, winogradTaps: Int64
    }

    /// W in a prepared form: the form's number (the kernel's `LarkPreparedWeights`) and its bytes,
    /// whole rows of C·K floats.
    public struct Prepared: Sendable {
        public let form: Int64
        public let bytes: [UInt8]

        public init(form: Int64, bytes: [UInt8]) {
            self.form = form
            self.bytes = bytes
        }
    }

    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many nodes now hold prepared weights.
        public let replaced: Int
        /// Their bytes as W, and as the prepared forms that replaced it.
        public let plainBytes: Int
        public let preparedBytes: Int
    }

    public static let formAttribute = "prepared_weights"
    public static let shapeAttribute = "weight_shape"

    public static func apply(to model: [UInt8], prepare: (Request) -> Prepared?) throws(MalformedProtobuf) -> Result {
        let unchanged = Result(model: model, replaced: 0, plainBytes: 0, preparedBytes: 0)
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return unchanged }
        let tensorFields = Dictionary(graph.tensors.map { ($0.value.name, $0.key) }) { first, _ in first }
        // Per node: the attributes to add (DirectConv: its form and W's shape; ResidualStack: a form per convolution).
        var nodes: [Int: (node: GraphSummary.Node, form: [Int64], shape: [Int64]?)] = [:]
        var tensors: [Int: (name: String, bytes: [UInt8], row: Int64)] = [:]
        var plainBytes = 0
        for (index, node) in graph.nodes where node.domain == DirectConvolutionRewrite.domain {
            let stack = node.opType == ResidualStackRewrite.opType
            guard stack || node.opType == DirectConvolutionRewrite.opType else { continue }
            var attributes: [String: NodeAttribute] = [:]
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) { attributes[attribute.name] = attribute }
            guard attributes[formAttribute] == nil else { continue }
            let integer = { (name: String) in attributes[name]?.integer ?? 0 }
            // (W's input index, its Winograd size) per convolution.
            let convolutions: [(input: Int, outputs: Int64, taps: Int64)]
            if stack {
                let count = attributes["kernels"]?.ints.count ?? 0
                let outputs = attributes["winograd_outputs"]?.ints ?? [], taps = attributes["winograd_taps"]?.ints ?? []
                guard count > 0, outputs.isEmpty || (outputs.count == count && taps.count == count) else { continue }
                convolutions = (0..<count).map { (1 + 2 * $0, outputs.isEmpty ? 0 : outputs[$0], taps.isEmpty ? 0 : taps[$0]) }
            } else {
                convolutions = [(1, integer("winograd_outputs"), integer("winograd_taps"))]
            }
            var forms: [Int64] = []
            var shape: [Int64]?
            for convolution in convolutions {
                forms.append(0)
                guard convolution.input < node.inputs.count, let tensorField = tensorFields[node.inputs[convolution.input]],
                      let tensor = graph.tensors[tensorField], tensors[tensorField] == nil, let raw = tensor.rawData, !tensor.isExternal,
                      tensor.dataType == 1, graph.uses[tensor.name] == 1, !graph.declared.contains(tensor.name), !graph.outputs.contains(tensor.name)
                else { continue }
                let dims = tensor.dims
                guard dims.count == 3 || (dims.count == 4 && dims[2] == 1), raw.count == Int(dims.reduce(1, *)) * 4 else { continue }
                let request = Request(
                    weights: littleEndianFloats(model, raw), outputChannels: dims[0], inputChannels: dims[1], kernel: dims[dims.count - 1],
                    path: integer("lark_kernel_path"), bf16: integer("bf16"), winogradOutputs: convolution.outputs, winogradTaps: convolution.taps)
                // Held as [R, C·K]: the shape still says the multiply-adds per output sample (NodeArithmetic).
                let row = request.inputChannels * request.kernel
                guard let prepared = prepare(request), prepared.form != 0, !prepared.bytes.isEmpty, prepared.bytes.count % Int(4 * row) == 0 else { continue }
                forms[forms.count - 1] = prepared.form
                shape = [request.outputChannels, request.inputChannels, request.kernel]
                tensors[tensorField] = (tensor.name, prepared.bytes, row)
                plainBytes += raw.count
            }
            if forms.contains(where: { $0 != 0 }) { nodes[index] = (node, forms, stack ? nil : shape) }
        }
        guard !nodes.isEmpty else { return unchanged }

        var writer = ProtoWriter(reservingCapacity: graphField.payload.count + graphField.payload.count / 4)
        for (index, field) in graph.fields.enumerated() {
            if let (node, forms, shape) = nodes[index] {
                try writer.messageField(Field.graphNode) { (copy: inout ProtoWriter) throws(MalformedProtobuf) in
                    for entry in node.fields { copy.copy(entry, from: model) }
                    if let shape {
                        copy.intAttribute(formAttribute, forms[0])
                        try copy.intsAttribute(shapeAttribute, shape)
                    } else {
                        try copy.intsAttribute(formAttribute, forms)
                    }
                }
            } else if let (name, bytes, row) = tensors[index] {
                writer.messageField(Field.graphInitializer) { tensor in
                    tensor.integersField(Field.tensorDims, [Int64(bytes.count / 4) / row, row])
                    tensor.varintField(Field.tensorDataType, 1)  // FLOAT (bf16 forms: pairs of bf16 in 32 bits)
                    tensor.stringField(Field.tensorName, name)
                    tensor.bytesField(Field.tensorRawData, bytes)
                }
            } else {
                writer.copy(field, from: model)
            }
        }
        return Result(
            model: GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes), replaced: nodes.count, plainBytes: plainBytes,
            preparedBytes: tensors.values.reduce(0) { $0 + $1.bytes.count })
    }
}
