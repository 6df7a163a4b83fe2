/// Edits a model that ONNX Runtime has already optimized for this machine (its blocked NCHWc
/// layout in place, see `InferenceSession.optimizedModel`): the 1×1 depthwise convolutions that
/// `FourDimensionalChains` added only so that values stay in that layout become the elementwise
/// nodes they stand for, which ONNX Runtime cannot write itself.
///
/// Why: ONNX Runtime has no blocked-layout `LeakyRelu`, so `FourDimensionalChains` writes each
/// one as a depthwise convolution of weight 1 with the `LeakyRelu` fused in. That keeps the
/// decoder in the blocked layout, but the depthwise kernel takes several times as long as a
/// plain `LeakyRelu`. Once the layout is settled, an elementwise node reads blocked data as well as
/// any other (the channel padding is zeros, and `LeakyRelu`, `Identity` and a scale keep zeros):
/// - weight 1 with a fused `LeakyRelu` → `LeakyRelu` with the same slope;
/// - weight 1 alone → `Identity`;
/// - weight c alone → `Mul` by the scalar c.
/// And a value converted into the blocked layout only to go through such an `Identity` and straight
/// back (`ReorderInput` → stand-in → `ReorderOutput`, each read once: what the sub-pixel upsampling's
/// stand-in leaves when its reader is Lark's `ResidualStack`, which reads the plain layout) becomes
/// one `Identity` of the plain value: two whole-tensor copies less.
/// And a `ReorderOutput` whose only reader is Lark's `SubpixelInterleave` (the sub-pixel
/// upsampling's phases, computed by a blocked convolution) goes: the interleave reads the blocked
/// layout itself (its `block` and `channels` attributes), one whole-tensor copy less per level.
/// That needs the layout's channel block on this CPU (`nchwcBlock`, 0 to leave these alone).
/// The model runs faster with the same outputs (figures in `bench/RESULTS.md`). It costs a second
/// session load per voice, since ONNX Runtime only writes its optimized graph out while loading one.
/// Only `com.microsoft.nchwc` `Conv` nodes with exactly a 1×1 kernel, no stride, dilation,
/// padding, bias or summed input, groups of one channel and one value in every weight change.
public enum BlockedLayoutCleanup {
    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many nodes it replaced or removed (stand-in convolutions, reorder round trips).
        public let replacedNodes: Int
    }

    /// `nchwcBlock`: the channel block of ONNX Runtime's blocked layout here (16 with AVX-512, 8
    /// with AVX2; `lark_nchwc_block_size`), or 0 to keep the reorders before `SubpixelInterleave`.
    public static func apply(to model: [UInt8], nchwcBlock: Int = 0) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replacedNodes: 0) }

        var replacements: [Int: Replacement] = [:]
        for (index, node) in graph.nodes {
            if let replacement = try Replacement(node: node, graph: graph, in: model) { replacements[index] = replacement }
        }
        try removeRoundTrips(graph, in: model, replacements: &replacements)
        if nchwcBlock > 0 { try interleaveBlocked(graph, in: model, block: Int64(nchwcBlock), replacements: &replacements) }
        guard !replacements.isEmpty else { return Result(model: model, replacedNodes: 0) }

        var names = graph.allNames
        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count + replacements.count * 128)
        for (index, field) in graph.fields.enumerated() {
            guard let replacement = replacements[index] else {
                graphWriter.copy(field, from: model)
                continue
            }
            try replacement.write(into: &graphWriter, names: &names)
        }
        return Result(model: GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes), replacedNodes: replacements.count)
    }

    /// Each `ReorderOutput` of a stand-in turned `Identity` of a `ReorderInput`, every value between
    /// them read once and neither reorder keeping channels last: the three nodes become one
    /// `Identity` of the `ReorderInput`'s input, written where the `ReorderOutput` was (by then
    /// that input exists).
    private static func removeRoundTrips(
        _ graph: GraphSummary, in model: [UInt8], replacements: inout [Int: Replacement]
    ) throws(MalformedProtobuf) {
        var producers: [String: (index: Int, node: GraphSummary.Node)] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = (index, node) }
        }
        func isReorder(_ node: GraphSummary.Node, _ opType: String) throws(MalformedProtobuf) -> Bool {
            guard node.opType == opType, node.domain == "com.microsoft.nchwc", node.inputs.count == 1, node.outputs.count == 1 else { return false }
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) where attribute.name == "channels_last" {
                guard (attribute.integer ?? 0) == 0 else { return false }
            }
            return true
        }
        func readOnce(_ value: String) -> Bool { graph.uses[value] == 1 && !graph.outputs.contains(value) }
        for (index, node) in graph.nodes where try isReorder(node, "ReorderOutput") {
            guard let standIn = producers[node.inputs[0]], readOnce(node.inputs[0]),
                  case .identity(let blocked, _)? = replacements[standIn.index],
                  let reorder = producers[blocked], readOnce(blocked), try isReorder(reorder.node, "ReorderInput")
            else { continue }
            replacements[reorder.index] = .removed
            replacements[standIn.index] = .removed
            replacements[index] = .identity(input: reorder.node.inputs[0], output: node.outputs[0])
        }
    }

    /// Each `ReorderOutput` to the plain layout whose output only a plain-layout `SubpixelInterleave`
    /// reads: the reorder goes, and the interleave reads its blocked input with `block` and the
    /// reorder's `channels`.
    private static func interleaveBlocked(
        _ graph: GraphSummary, in model: [UInt8], block: Int64, replacements: inout [Int: Replacement]
    ) throws(MalformedProtobuf) {
        var reorders: [String: (index: Int, input: String, channels: Int64)] = [:]
        for (index, node) in graph.nodes
        where node.opType == "ReorderOutput" && node.domain == "com.microsoft.nchwc" && node.inputs.count == 1 && node.outputs.count == 1
            && replacements[index] == nil && graph.uses[node.outputs[0]] == 1 && !graph.outputs.contains(node.outputs[0]) {
            var channels: Int64?
            var plain = true
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) {
                switch attribute.name {
                case "channels": channels = attribute.integer
                case "channels_last": plain = (attribute.integer ?? 0) == 0
                default: plain = false
                }
            }
            if plain, let channels, channels > 0 { reorders[node.outputs[0]] = (index, node.inputs[0], channels) }
        }
        for (index, node) in graph.nodes
        where node.opType == SubpixelInterleave.opType && node.domain == DirectConvolutionRewrite.domain && node.inputs.count == 1
            && node.outputs.count == 1 && replacements[index] == nil {
            guard let reorder = reorders[node.inputs[0]] else { continue }
            var stride: Int64?
            var pads: [Int64] = [0, 0]
            var known = true
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) {
                switch attribute.name {
                case "stride": stride = attribute.integer
                case "pads": pads = attribute.ints
                default: known = false
                }
            }
            guard known, let stride, stride > 0, pads.count == 2, reorder.channels % stride == 0 else { continue }
            replacements[reorder.index] = .removed
            replacements[index] = .blockedInterleave(
                input: reorder.input, output: node.outputs[0], stride: stride, pads: pads, block: block, channels: reorder.channels)
        }
    }

    private enum Replacement {
        case leakyRelu(input: String, output: String, slope: Float)
        case identity(input: String, output: String)
        case scale(input: String, output: String, factor: Float)
        /// `SubpixelInterleave` reading the blocked layout.
        case blockedInterleave(input: String, output: String, stride: Int64, pads: [Int64], block: Int64, channels: Int64)
        /// Nothing: the node's work is done by another replacement.
        case removed

        init?(node: GraphSummary.Node, graph: GraphSummary, in model: [UInt8]) throws(MalformedProtobuf) {
            guard node.opType == "Conv", node.domain == "com.microsoft.nchwc", node.inputs.count == 2, node.outputs.count == 1,
                  let weight = graph.tensorsByName[node.inputs[1]], weight.dataType == 1, !weight.isExternal,
                  let raw = weight.rawData
            else { return nil }
            var group: Int64 = 1
            var activation = ""
            var parameters: [Float] = []
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) {
                let (name, ints, integer, text) = (attribute.name, attribute.ints, attribute.integer, attribute.text)
                switch name {
                case "kernel_shape": guard ints == [1, 1] else { return nil }
                case "strides", "dilations": guard ints.allSatisfy({ $0 == 1 }) else { return nil }
                case "pads": guard ints.allSatisfy({ $0 == 0 }) else { return nil }
                case "auto_pad": guard text == "NOTSET" else { return nil }
                case "group": group = integer ?? 1
                case "activation": activation = text
                case "activation_params": parameters = attribute.floats
                default: return nil
                }
            }
            let values = littleEndianFloats(model, raw)
            guard group > 1, weight.dims == [group, 1, 1, 1], values.count == Int(group), let value = values.first,
                  values.allSatisfy({ $0 == value })
            else { return nil }
            let (input, output) = (node.inputs[0], node.outputs[0])
            switch activation {
            case "LeakyRelu" where value == 1:
                self = .leakyRelu(input: input, output: output, slope: parameters.first ?? 0.01)
            case "" where value == 1:
                self = .identity(input: input, output: output)
            case "":
                self = .scale(input: input, output: output, factor: value)
            default:
                return nil
            }
        }

        func write(into graph: inout ProtoWriter, names: inout Set<String>) throws(MalformedProtobuf) {
            switch self {
            case .leakyRelu(let input, let output, let slope):
                try graph.node("LeakyRelu", inputs: [input], output: output) { (node: inout ProtoWriter) throws(MalformedProtobuf) in
                    node.messageField(Field.nodeAttribute) { (attribute: inout ProtoWriter) in
                        attribute.stringField(Field.attributeName, "alpha")
                        attribute.floatField(Field.attributeFloat, slope)
                        attribute.varintField(Field.attributeType, Field.attributeTypeFloat)
                    }
                }
            case .identity(let input, let output):
                try graph.node("Identity", inputs: [input], output: output)
            case .scale(let input, let output, let factor):
                let scalar = ConvolutionRewrite.unique(output + "/lark_scale", in: &names)
                try graph.floatTensor(scalar, dims: [], values: [factor])
                try graph.node("Mul", inputs: [input, scalar], output: output)
            case .blockedInterleave(let input, let output, let stride, let pads, let block, let channels):
                try graph.subpixelInterleave(input, output: output, stride: stride, pads: pads, blocked: (block, channels))
            case .removed:
                break
            }
        }
    }
}
