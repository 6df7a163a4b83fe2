/// Folds a scale by a positive constant that comes before a `LeakyRelu` (or `Relu`) into the
/// weights of the convolutions that read the activation: `Conv(LeakyRelu(x / c), W)` becomes
/// `Conv(LeakyRelu(x), W / c)`.
///
/// Why: HiFi-GAN's decoder averages its residual blocks (`xs / 3`) and then applies a `LeakyRelu`
/// before each upsampling and before `conv_post`. The division is one more pass over the largest
/// values of the model for no arithmetic of its own (a memory-bound kernel per stage and sentence).
/// Both activations are positively homogeneous (`f(x · s) = f(x) · s` for `s > 0`) and a
/// convolution is linear in its weight, so the scale moves into the weights, once, at load; the
/// bias is unchanged. The outputs are the same to float rounding.
///
/// Only: a `Div` by, or `Mul` with, a finite positive float scalar constant, read by one
/// activation node alone, whose output only convolutions (`Conv`, `ConvTranspose`) read, as their
/// data input, each with a float weight stored as raw data that no other node reads.
enum ScaleFolding {
    struct Result {
        let model: [UInt8]
        /// How many scales were folded away.
        let folded: Int
    }

    static func apply(to model: [UInt8]) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, folded: 0) }
        let constants = try FourDimensionalChains.scalarConstants(graph, in: model)
        var readers: [String: [Int]] = [:]  // value → positions in graph.nodes
        for (position, (_, node)) in graph.nodes.enumerated() {
            for input in Set(node.inputs) where !input.isEmpty { readers[input, default: []].append(position) }
        }

        var dropped: Set<Int> = []  // field indices of the scale nodes
        var activationInputs: [Int: String] = [:]  // activation's field index → the scale's input
        var weightFactors: [String: Float] = [:]
        for (_, (fieldIndex, node)) in graph.nodes.enumerated() {
            guard let (input, factor) = scale(node, constants: constants), let output = node.outputs.first,
                  !graph.outputs.contains(output), let activationReaders = readers[output], activationReaders.count == 1,
                  graph.uses[output] == 1
            else { continue }
            let (activationField, activation) = graph.nodes[activationReaders[0]]
            guard ["LeakyRelu", "Relu"].contains(activation.opType), activation.domain.isEmpty || activation.domain == "ai.onnx",
                  activation.inputs == [output], activation.outputs.count == 1, !graph.outputs.contains(activation.outputs[0]),
                  let convolutions = readers[activation.outputs[0]], !convolutions.isEmpty
            else { continue }
            var weights: [String] = []
            for position in convolutions {
                let convolution = graph.nodes[position].1
                guard ["Conv", "ConvTranspose"].contains(convolution.opType), convolution.domain.isEmpty || convolution.domain == "ai.onnx",
                      convolution.inputs.count >= 2, convolution.inputs[0] == activation.outputs[0],
                      !convolution.inputs.dropFirst().contains(activation.outputs[0]),
                      let weight = graph.tensorsByName[convolution.inputs[1]], weight.dataType == 1, !weight.isExternal,
                      let raw = weight.rawData, raw.count == 4 * Int(weight.dims.reduce(1, *)),
                      graph.uses[weight.name] == 1, !graph.declared.contains(weight.name), weightFactors[weight.name] == nil
                else { weights = []; break }
                weights.append(weight.name)
            }
            guard !weights.isEmpty else { continue }
            dropped.insert(fieldIndex)
            activationInputs[activationField] = input
            for weight in weights { weightFactors[weight] = factor }
        }
        guard !dropped.isEmpty else { return Result(model: model, folded: 0) }

        var writer = ProtoWriter(reservingCapacity: graphField.payload.count)
        for (index, field) in graph.fields.enumerated() {
            if dropped.contains(index) { continue }
            if let input = activationInputs[index], let node = graph.nodes.first(where: { $0.0 == index })?.1 {
                writer.messageField(Field.graphNode) { (activation: inout ProtoWriter) in
                    for entry in node.fields {
                        if entry.number == Field.nodeInput { activation.stringField(Field.nodeInput, input) } else { activation.copy(entry, from: model) }
                    }
                }
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index], let factor = weightFactors[tensor.name] {
                let scaled = littleEndianFloats(model, tensor.rawData!).map { $0 * factor }
                try writer.floatTensor(tensor.name, dims: tensor.dims, values: scaled)
            } else {
                writer.copy(field, from: model)
            }
        }
        return Result(model: GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes), folded: dropped.count)
    }

    /// The scaled value and the factor, when `node` multiplies or divides it by a positive constant.
    static func scale(_ node: GraphSummary.Node, constants: [String: Float]) -> (String, Float)? {
        guard node.domain.isEmpty || node.domain == "ai.onnx", node.inputs.count == 2, node.outputs.count == 1 else { return nil }
        let factor: (String, Float)?
        switch node.opType {
        case "Div": factor = constants[node.inputs[1]].map { (node.inputs[0], 1 / $0) }
        case "Mul": factor = constants[node.inputs[1]].map { (node.inputs[0], $0) } ?? constants[node.inputs[0]].map { (node.inputs[1], $0) }
        default: factor = nil
        }
        guard let factor, factor.1.isFinite, factor.1 > 0, !factor.0.isEmpty else { return nil }
        return factor
    }
}
