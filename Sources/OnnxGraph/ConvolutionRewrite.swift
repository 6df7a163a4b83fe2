/// Restates a model's 1-D convolutions as 2-D convolutions of height one.
///
/// Why: ONNX Runtime's CPU provider runs 1-D `Conv` by unrolling the input (im2col) into a
/// matrix product, while 2-D `Conv` gets its blocked-layout (NCHWc) kernels, which convolve
/// directly. Piper's VITS models are built from 1-D convolutions (text encoder, flow, and above
/// all the HiFi-GAN decoder's residual blocks), so the same arithmetic in 2-D form runs faster on
/// the CPU, with the same outputs to rounding (figures in `bench/RESULTS.md`).
///
/// What changes, for each `Conv` whose weight is a 3-D initializer used by that node alone:
/// - the weight's dims `[O, I, K]` become `[O, I, 1, K]` (the data is the same bytes, in the same
///   order, so only the tensor's header is rewritten);
/// - `kernel_shape`, `strides`, `dilations` gain a leading 1 and `pads [b, e]` become `[0, b, 0, e]`;
/// - an `Unsqueeze` (axis 2) before it and a `Squeeze` after it give every other node its 3-D
///   value, except where `FourDimensionalChains` keeps a chain of values 4-D from one restated
///   convolution to the next (the `Unsqueeze` or `Squeeze` is then left out).
/// Anything unusual (auto padding, a shared or external weight, an attribute not listed above)
/// leaves that node as it was. A 1-D `ConvTranspose` whose kernel is a whole number of strides is
/// restated as a 2-D `Conv` followed by an interleave (`TransposedConvPlan`): a `ConvTranspose` in
/// 2-D form alone was no faster, the convolution form is. First, `ScaleFolding` moves scales
/// before an activation into the next convolutions' weights; last, `TimeChunks` cuts the narrow
/// end of the decoder into pieces along time, so that its convolutions use every thread.
public enum ConvolutionRewrite {
    /// Names what this module's rewrites write (`ConvolutionRewrite` with its plans, and
    /// `BlockedLayoutCleanup`): change it with any change to their output, so that optimized
    /// voices cached by an earlier version are built again instead of used. (`.2`: the cached
    /// graph also carries `DurationOutput`'s phoneme durations; `.3`: `ScaleFolding`, `TimeChunks`;
    /// `.4`: small convolutions may be `DirectConvolutionRewrite`'s `ai.lark.DirectConv` nodes;
    /// `.5`: the cached graph has no shape annotations, `ShapeAnnotations`; spline flows, layer
    /// normalizations, relative-attention terms and gates are `ai.lark` nodes, scales by one are
    /// gone: the rewrites before this one in `PiperModelLoader`; `.6-subpixel`: the sub-pixel
    /// interleave and crop are one `ai.lark.SubpixelInterleave` node; `.7-stack`: HiFi-GAN's levels
    /// are one `ai.lark.ResidualStack` node each where timing chose it; `.8-overhead`: in FP32 a
    /// convolution goes to DirectConv only where it is twice as fast, `DirectConvolutionChoice`;
    /// `.9-roundtrip`: `BlockedLayoutCleanup` removes blocked-layout round trips before a fused level;
    /// `.10-wino`: a fused level's convolutions may run as Winograd F(m, r), `ResidualStackChoice`;
    /// `.10-lean`: `SubpixelInterleave` reads the blocked layout, without the `ReorderOutput` before it;
    /// `.11-lean`: `TimeChunks` leaves a narrow end alone where Lark's kernels hold all its small convolutions;
    /// `.11-wino2`: FP32 convolutions above 64 channels may be Winograd DirectConv nodes;
    /// `.13`: all of those together; `.15-mem`: DirectConv's and ResidualStack's weights are held in the form
    /// their kernels read, `PreparedWeightsRewrite`; `.16-avx2`: the packed FP32 kernel runs on AVX2 CPUs too,
    /// so the choices there are made again; `.17-avx2-shuffles`: AVX2's Winograd gathers and finish are faster and
    /// Winograd DirectConv shapes are timed with cold caches; `.18-avx2-pair-transposes`: AVX2's Winograd gather and
    /// finish transpose pairs at dilation 2 and copy at dilations that are multiples of 4; `.19-winograd-margin`: Winograd
    /// DirectConv shapes are routed at 0.75 of ONNX Runtime's time, `DirectConvolutionChoice.winogradMargin`;
    /// `.20`–`.22`: Winograd chunks of whole register tiles, AVX2's phase order at dilations 3 and 6, and
    /// F(4, 3) as a fourth timed candidate for the fused levels' 3-tap convolutions; `.23`: the
    /// upsamplings as sub-pixel DirectConv candidates, `DirectConvolutionShape.subpixel`; `.24`: the last
    /// level's one-channel `conv_post` inside its `ResidualStack`, `ResidualStackShape.postKernel`.)
    public static let version = "2026-12-03.24-level-post-conv"

    public struct Result: Sendable {
        /// The rewritten model (the input itself when nothing was converted).
        public let model: [UInt8]
        /// How many convolutions were restated (`Conv` in 2-D form, and `ConvTranspose` as a
        /// `Conv` with an interleave: see `TransposedConvPlan`).
        public let convertedConvolutions: Int
        /// How many pieces of time the narrow end of the graph runs as (`TimeChunks`), 1 when it
        /// was left whole.
        public var timePieces = 1
    }

    public static func apply(to original: [UInt8]) throws(MalformedProtobuf) -> Result {
        let model = try ScaleFolding.apply(to: original).model
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else {
            return Result(model: original, convertedConvolutions: 0)
        }
        let opset = try defaultOpset(modelFields, in: model)

        var plans: [Int: ConvPlan] = [:]  // by index in graph.fields
        var transposedPlans: [Int: TransposedConvPlan] = [:]
        var convertedWeights: Set<String> = []
        var replacedTensors: Set<String> = []  // read only by a restated ConvTranspose, which writes its own
        var names = graph.allNames
        for (fieldIndex, node) in graph.nodes {
            if let plan = try ConvPlan(node: node, graph: graph, in: model, names: &names) {
                plans[fieldIndex] = plan
                convertedWeights.insert(plan.weight)
            } else if let plan = try TransposedConvPlan(node: node, graph: graph, in: model, opset: opset, names: &names) {
                transposedPlans[fieldIndex] = plan
                replacedTensors.insert(plan.weight)
                if let bias = plan.bias { replacedTensors.insert(bias) }
            }
        }
        guard !plans.isEmpty || !transposedPlans.isEmpty else { return Result(model: original, convertedConvolutions: 0) }
        let axes = unique("lark_2d_axes", in: &names)
        let chains = try FourDimensionalChains(
            graph: graph, model: model, convolutions: plans, transposed: transposedPlans, names: &names)
        var constants = BlockedConstants(names: names)
        let squeeze = { (from: String, to: String, writer: inout ProtoWriter) throws(MalformedProtobuf) in
            try writer.squeezeOrUnsqueeze("Squeeze", from: from, to: to, opset: opset, axes: axes)
        }

        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count + plans.count * 256)
        for (index, field) in graph.fields.enumerated() {
            if let plan = plans[index] {
                try plan.write(
                    into: &graphWriter, from: model, opset: opset, axes: axes,
                    input4D: chains.values[plan.input]?.name4D, squeezed: chains.needsThreeD.contains(plan.output))
            } else if let plan = transposedPlans[index] {
                try plan.write(
                    into: &graphWriter, from: model, graphSummary: graph, axes: axes,
                    input4D: chains.values[plan.input]?.name4D, constants: &constants)
                if chains.needsThreeD.contains(plan.output) { try squeeze(plan.output4D, plan.output, &graphWriter) }
            } else if let step = chains.steps[index] {
                try chains.write(step, into: &graphWriter, from: model, constants: &constants, squeeze: squeeze)
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index],
                      convertedWeights.contains(tensor.name) {
                try writeHeightOne(tensor: field, dims: tensor.dims, into: &graphWriter, from: model)
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index],
                      replacedTensors.contains(tensor.name) {
                continue
            } else {
                graphWriter.copy(field, from: model)
            }
        }
        try chains.writeShapes(into: &graphWriter)
        if opset >= 13 {
            // Unsqueeze and Squeeze take their axes as an input from opset 13 on.
            try graphWriter.int64Tensor(axes, values: [2])
        }

        // The sub-pixel interleaves are ai.lark nodes.
        let rewritten = transposedPlans.isEmpty
            ? GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes)
            : try GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes, importing: DirectConvolutionRewrite.domain)
        let upsamplings = transposedPlans.sorted { $0.key < $1.key }.map(\.value)
        let chunked = try TimeChunks.apply(
            to: rewritten, candidates: upsamplings.filter { $0.outputChannels <= TimeChunks.narrowChannels }.map(\.cropped),
            rates: Dictionary(upsamplings.map(\.interleaved), uniquingKeysWith: { first, _ in first }))
        var result = Result(model: chunked ?? rewritten, convertedConvolutions: plans.count + transposedPlans.count)
        if chunked != nil { result.timePieces = TimeChunks.pieces }
        return result
    }

    /// The default (`ai.onnx`) operator set version the model was written for.
    private static func defaultOpset(_ fields: [ProtoField], in model: [UInt8]) throws(MalformedProtobuf) -> Int64 {
        var version: Int64 = 0
        for field in fields where field.number == Field.modelOpsetImport && field.wireType == .lengthDelimited {
            var reader = ProtoReader(model, range: field.payload)
            var domain = ""
            var fieldVersion: Int64 = 0
            while let entry = try reader.next() {
                if entry.number == 1, entry.wireType == .lengthDelimited { domain = entry.string(in: model) }
                if entry.number == 2, entry.wireType == .varint { fieldVersion = Int64(bitPattern: entry.varint) }
            }
            if domain.isEmpty || domain == "ai.onnx" { version = fieldVersion }
        }
        return version
    }

    /// Copies a weight tensor with its dims `[O, I, K]` written as `[O, I, 1, K]`.
    private static func writeHeightOne(
        tensor field: ProtoField, dims: [Int64], into writer: inout ProtoWriter, from model: [UInt8]
    ) throws(MalformedProtobuf) {
        var reader = ProtoReader(model, range: field.payload)
        let fields = try reader.all()
        writer.messageField(Field.graphInitializer) { tensor in
            var wroteDims = false
            for entry in fields {
                guard entry.number == Field.tensorDims else {
                    tensor.copy(entry, from: model)
                    continue
                }
                if !wroteDims {
                    tensor.integersField(Field.tensorDims, [dims[0], dims[1], 1, dims[2]])
                    wroteDims = true
                }
            }
        }
    }

    static func unique(_ base: String, in names: inout Set<String>) -> String {
        var candidate = base
        var counter = 1
        while names.contains(candidate) {
            counter += 1
            candidate = "\(base)_\(counter)"
        }
        names.insert(candidate)
        return candidate
    }
}

/// ONNX's field numbers (onnx.proto) for the messages this file reads or writes.
enum Field {
    static let modelGraph = 7, modelOpsetImport = 8
    static let graphNode = 1, graphInitializer = 5, graphInput = 11, graphOutput = 12, graphValueInfo = 13
    static let nodeInput = 1, nodeOutput = 2, nodeName = 3, nodeOpType = 4, nodeAttribute = 5, nodeDomain = 7
    static let attributeName = 1, attributeFloat = 2, attributeInteger = 3, attributeString = 4, attributeTensor = 5
    static let attributeFloats = 7, attributeInts = 8, attributeType = 20
    static let attributeTypeFloat: Int64 = 1, attributeTypeInt: Int64 = 2, attributeTypeInts: Int64 = 7
    static let tensorDims = 1, tensorDataType = 2, tensorName = 8, tensorRawData = 9
    static let tensorExternalData = 13, tensorDataLocation = 14
    static let valueInfoName = 1
}

/// What the rewrite needs to know about a graph: its fields in order, its nodes and
/// initializers (by position in `fields`), and how often each value is read.
struct GraphSummary {
    struct Node {
        var inputs: [String] = []
        var outputs: [String] = []
        var opType = ""
        var domain = ""
        var fields: [ProtoField] = []
    }

    struct Tensor {
        var name = ""
        var dims: [Int64] = []
        var isExternal = false
        var dataType: Int64 = 0
        /// Where the values are, when the tensor stores them as `raw_data`.
        var rawData: Range<Int>?
    }

    let fields: [ProtoField]
    var nodes: [(Int, Node)] = []
    var tensors: [Int: Tensor] = [:]
    var tensorsByName: [String: Tensor] = [:]
    /// How many node inputs read each value.
    var uses: [String: Int] = [:]
    /// Values the graph declares as inputs, outputs or with a shape annotation: a weight among
    /// them keeps its shape.
    var declared: Set<String> = []
    /// The graph's outputs.
    var outputs: Set<String> = []
    var allNames: Set<String> = []

    /// The model's fields, its one graph field, and that graph read; nil when the model has no
    /// graph or more than one.
    static func read(_ model: [UInt8]) throws(MalformedProtobuf) -> (modelFields: [ProtoField], graphField: ProtoField, graph: GraphSummary)? {
        var modelReader = ProtoReader(model)
        let modelFields = try modelReader.all()
        let graphFields = modelFields.filter { $0.number == Field.modelGraph && $0.wireType == .lengthDelimited }
        guard graphFields.count == 1, let graphField = graphFields.first else { return nil }
        var graphReader = ProtoReader(model, range: graphField.payload)
        return (modelFields, graphField, try GraphSummary(fields: graphReader.all(), in: model))
    }

    /// `model` with its graph replaced by `graph`, importing operator set `domain` (version 1)
    /// unless it already does: how every rewrite that writes `ai.lark` nodes finishes.
    static func model(
        _ model: [UInt8], fields: [ProtoField], withGraph graph: [UInt8], importing domain: String
    ) throws(MalformedProtobuf) -> [UInt8] {
        var output = Self.model(model, fields: fields, withGraph: graph)
        if try !SplineFlowRewrite.imports(domain, fields, model) {
            var domainImport = ProtoWriter()
            domainImport.opsetImport(domain: domain, version: 1)
            output += domainImport.bytes  // a model's fields may come in any order
        }
        return output
    }

    /// `model` with its graph replaced by `graph` (every other field copied as it is).
    static func model(_ model: [UInt8], fields: [ProtoField], withGraph graph: [UInt8]) -> [UInt8] {
        var output = ProtoWriter(reservingCapacity: model.count + graph.count / 8)
        for field in fields {
            if field.number == Field.modelGraph {
                output.bytesField(Field.modelGraph, graph)
            } else {
                output.copy(field, from: model)
            }
        }
        return output.bytes
    }

    init(fields: [ProtoField], in model: [UInt8]) throws(MalformedProtobuf) {
        self.fields = fields
        for (index, field) in fields.enumerated() where field.wireType == .lengthDelimited {
            switch field.number {
            case Field.graphNode:
                let node = try Self.node(field, in: model)
                for input in node.inputs where !input.isEmpty { uses[input, default: 0] += 1 }
                allNames.formUnion(node.inputs)
                allNames.formUnion(node.outputs)
                nodes.append((index, node))
            case Field.graphInitializer:
                let tensor = try Self.tensor(field, in: model)
                tensors[index] = tensor
                tensorsByName[tensor.name] = tensor
                allNames.insert(tensor.name)
            case Field.graphInput, Field.graphOutput, Field.graphValueInfo:
                var reader = ProtoReader(model, range: field.payload)
                while let entry = try reader.next() {
                    guard entry.number == Field.valueInfoName, entry.wireType == .lengthDelimited else { continue }
                    declared.insert(entry.string(in: model))
                    allNames.insert(entry.string(in: model))
                    if field.number == Field.graphOutput { outputs.insert(entry.string(in: model)) }
                }
            default:
                break
            }
        }
    }

    private static func node(_ field: ProtoField, in model: [UInt8]) throws(MalformedProtobuf) -> Node {
        var node = Node()
        var reader = ProtoReader(model, range: field.payload)
        node.fields = try reader.all()
        for entry in node.fields where entry.wireType == .lengthDelimited {
            switch entry.number {
            case Field.nodeInput: node.inputs.append(entry.string(in: model))
            case Field.nodeOutput: node.outputs.append(entry.string(in: model))
            case Field.nodeOpType: node.opType = entry.string(in: model)
            case Field.nodeDomain: node.domain = entry.string(in: model)
            default: break
            }
        }
        return node
    }

    /// The tensors `Constant` nodes hold in their `value` attribute, by the value each names.
    func constantNodeTensors(in model: [UInt8]) throws(MalformedProtobuf) -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (_, node) in nodes where node.opType == "Constant" && node.outputs.count == 1 {
            if let value = try Self.valueAttribute(of: node, in: model), let tensor = value.tensor { tensors[node.outputs[0]] = tensor }
        }
        return tensors
    }

    /// A node's `value` attribute (as `Constant` and `ConstantOfShape` have), with its tensor
    /// when it holds one; nil when the node has no such attribute.
    struct ValueAttribute {
        let tensor: Tensor?
    }

    static func valueAttribute(of node: Node, in model: [UInt8]) throws(MalformedProtobuf) -> ValueAttribute? {
        for entry in node.fields where entry.number == Field.nodeAttribute && entry.wireType == .lengthDelimited {
            var reader = ProtoReader(model, range: entry.payload)
            var name = ""
            var tensorField: ProtoField?
            while let field = try reader.next() {
                if field.number == Field.attributeName, field.wireType == .lengthDelimited { name = field.string(in: model) }
                if field.number == Field.attributeTensor, field.wireType == .lengthDelimited { tensorField = field }
            }
            guard name == "value" else { continue }
            guard let tensorField else { return ValueAttribute(tensor: nil) }
            return ValueAttribute(tensor: try tensor(tensorField, in: model))
        }
        return nil
    }

    static func tensor(_ field: ProtoField, in model: [UInt8]) throws(MalformedProtobuf) -> Tensor {
        var tensor = Tensor()
        var reader = ProtoReader(model, range: field.payload)
        while let entry = try reader.next() {
            switch entry.number {
            case Field.tensorDims: tensor.dims += try entry.integers(in: model)
            case Field.tensorName where entry.wireType == .lengthDelimited: tensor.name = entry.string(in: model)
            case Field.tensorDataType where entry.wireType == .varint: tensor.dataType = Int64(bitPattern: entry.varint)
            case Field.tensorRawData where entry.wireType == .lengthDelimited: tensor.rawData = entry.payload
            case Field.tensorExternalData: tensor.isExternal = true
            case Field.tensorDataLocation: tensor.isExternal = tensor.isExternal || entry.varint != 0
            default: break
            }
        }
        return tensor
    }
}

/// One attribute of a node (onnx.proto `AttributeProto`), with the value kinds the rewrites read.
struct NodeAttribute {
    var name = ""
    var ints: [Int64] = []
    var integer: Int64?
    var text = ""
    var floats: [Float] = []

    init(_ entry: ProtoField, in model: [UInt8]) throws(MalformedProtobuf) {
        var reader = ProtoReader(model, range: entry.payload)
        while let field = try reader.next() {
            switch field.number {
            case Field.attributeName where field.wireType == .lengthDelimited: name = field.string(in: model)
            case Field.attributeInts: ints += try field.integers(in: model)
            case Field.attributeInteger where field.wireType == .varint: integer = Int64(bitPattern: field.varint)
            case Field.attributeString where field.wireType == .lengthDelimited: text = field.string(in: model)
            case Field.attributeFloats: floats += field.floats(in: model)
            default: break
            }
        }
    }

    /// The attributes of `node`, each with where its field starts in the model.
    static func all(of node: GraphSummary.Node, in model: [UInt8]) throws(MalformedProtobuf) -> [(start: Int, attribute: NodeAttribute)] {
        var attributes: [(start: Int, attribute: NodeAttribute)] = []
        for entry in node.fields where entry.number == Field.nodeAttribute && entry.wireType == .lengthDelimited {
            attributes.append((entry.whole.lowerBound, try NodeAttribute(entry, in: model)))
        }
        return attributes
    }
}

/// One convolution to restate, with the attributes it will carry.
struct ConvPlan {
    let node: GraphSummary.Node
    let weight: String
    let input: String
    let outputChannels: Int64
    /// Stride 1 and padding that gives back the input's length.
    let keepsLength: Bool
    /// The attributes that change, by where their field starts in the model: name and 2-D values.
    let replacements: [Int: (name: String, values: [Int64])]
    let input4D: String
    let output4D: String
    let output: String

    /// Nil when the node is not a plain 1-D convolution with its own 3-D weight.
    init?(node: GraphSummary.Node, graph: GraphSummary, in model: [UInt8], names: inout Set<String>) throws(MalformedProtobuf) {
        guard node.opType == "Conv", node.domain.isEmpty || node.domain == "ai.onnx",
              node.inputs.count >= 2, node.outputs.count == 1, !node.inputs[0].isEmpty, !node.outputs[0].isEmpty
        else { return nil }
        let weight = node.inputs[1]
        guard let tensor = graph.tensorsByName[weight], tensor.dims.count == 3, !tensor.isExternal,
              graph.uses[weight] == 1, !graph.declared.contains(weight)
        else { return nil }

        var replacements: [Int: (name: String, values: [Int64])] = [:]
        var (stride, dilation, padding): (Int64, Int64, Int64) = (1, 1, 0)
        for (start, attribute) in try NodeAttribute.all(of: node, in: model) {
            let (name, ints, text) = (attribute.name, attribute.ints, attribute.text)
            switch name {
            case "kernel_shape", "strides", "dilations":
                guard ints.count == 1 else { return nil }
                replacements[start] = (name, [1, ints[0]])
                if name == "strides" { stride = ints[0] }
                if name == "dilations" { dilation = ints[0] }
            case "pads":
                guard ints.count == 2 else { return nil }
                replacements[start] = (name, [0, ints[0], 0, ints[1]])
                padding = ints[0] + ints[1]
            case "group":
                break
            case "auto_pad":
                guard text == "NOTSET" else { return nil }
            default:
                return nil  // an attribute this rewrite does not know how to carry over
            }
        }
        self.node = node
        self.weight = weight
        self.replacements = replacements
        input = node.inputs[0]
        outputChannels = tensor.dims[0]
        keepsLength = stride == 1 && padding == dilation * (tensor.dims[2] - 1)
        output = node.outputs[0]
        input4D = ConvolutionRewrite.unique(output + "/lark_2d_input", in: &names)
        output4D = ConvolutionRewrite.unique(output + "/lark_2d_output", in: &names)
    }

    /// Writes `Unsqueeze → Conv (2-D) → Squeeze` in place of the node; without the `Unsqueeze`
    /// when the input is already 4-D (`input4D`), and without the `Squeeze` unless `squeezed`.
    func write(
        into graph: inout ProtoWriter, from model: [UInt8], opset: Int64, axes: String, input4D existing: String?, squeezed: Bool
    ) throws(MalformedProtobuf) {
        let input4D = existing ?? self.input4D
        if existing == nil {
            try graph.squeezeOrUnsqueeze("Unsqueeze", from: node.inputs[0], to: input4D, opset: opset, axes: axes)
        }
        try graph.messageField(Field.graphNode) { (conv: inout ProtoWriter) throws(MalformedProtobuf) in
            var replacedInput = false
            for field in node.fields {
                switch field.number {
                case Field.nodeInput where !replacedInput:
                    conv.stringField(Field.nodeInput, input4D)
                    replacedInput = true
                case Field.nodeOutput:
                    conv.stringField(Field.nodeOutput, output4D)
                case Field.nodeAttribute where replacements[field.whole.lowerBound] != nil:
                    let replacement = replacements[field.whole.lowerBound]!
                    try conv.intsAttribute(replacement.name, replacement.values)
                default:
                    conv.copy(field, from: model)
                }
            }
        }
        if squeezed { try graph.squeezeOrUnsqueeze("Squeeze", from: output4D, to: output, opset: opset, axes: axes) }
    }
}

extension ProtoWriter {
    /// `Squeeze` or `Unsqueeze` of axis 2 (an input from opset 13 on, an attribute before).
    mutating func squeezeOrUnsqueeze(_ opType: String, from input: String, to output: String, opset: Int64, axes: String) throws(MalformedProtobuf) {
        try node(opType, inputs: opset >= 13 ? [input, axes] : [input], output: output) { node throws(MalformedProtobuf) in
            if opset < 13 { try node.intsAttribute("axes", [2]) }
        }
    }
}
