/// Replaces each of HiFi-GAN's multi-receptive-field levels (the residual blocks that read one
/// upsampling's output, their sum and its scale, and the `LeakyRelu` after it when that is the
/// scale's only reader) with Lark's operator `ai.lark.ResidualStack` (C target `CLarkKernels`,
/// `residual_stack.c`).
///
/// Why: ONNX Runtime runs each of a level's 6–18 convolutions as its own node over the whole
/// sequence, with `LeakyRelu`, residual `Add`s and layout reorders between them, so every
/// intermediate (megabytes per sentence at the high rates) goes to memory and back once per node.
/// The operator runs every block per time tile in cache.
///
/// What is matched, by structure (names are not read): a `Div` by (or `Mul` with) a positive
/// scalar constant of a tree of `Add`s whose leaves are blocks; a block is a chain of steps from a
/// value X shared by all of the level's blocks, each step `Add(v, Conv(LeakyRelu(v)))` (ResBlock2)
/// or `Add(v, Conv(LeakyRelu(Conv(LeakyRelu(v)))))` (ResBlock1), every `Conv` 1-D, C → C
/// channels, group 1, stride 1, odd kernel, same-length padding, a float weight and bias held as
/// initializers, and every `LeakyRelu` of one slope. Every value the level computes, but its
/// result, must be read inside the level. A one-channel convolution that is the only reader of
/// the level's result (HiFi-GAN's `conv_post` after the last level: same-length padding,
/// dilation 1, a weight and, if any, a bias held as initializers) goes into the node too: at the full sample
/// rate that result is tens of MB per sentence, written out only for that convolution to read
/// back, and fused it never leaves the tile's scratch. Which levels are replaced is the caller's choice
/// (`PiperModelLoader` times them: `ResidualStackChoice`). Runs on the model as exported, before
/// `DirectConvolutionRewrite` and `ConvolutionRewrite`.
public enum ResidualStackRewrite {
    public static let domain = DirectConvolutionRewrite.domain
    public static let opType = "ResidualStack"

    public typealias Result = FusionResult

    /// The levels of `model`, in graph order.
    public static func levels(in model: [UInt8]) throws(MalformedProtobuf) -> [ResidualStackShape] {
        guard let (_, _, graph) = try GraphSummary.read(model) else { return [] }
        return try plans(graph, model).map(\.shape)
    }

    /// `model` with the levels at the positions in `chosen` (indices into `levels(in:)`) replaced;
    /// nil chooses all. `bf16`: their convolutions multiply in bfloat16. `winograd`: for a level's
    /// index, the Winograd size of each of its convolutions (nil: direct).
    public static func apply(
        to model: [UInt8], chosen: Set<Int>? = nil, bf16: Bool = false, winograd: [Int: [WinogradSize?]] = [:]
    ) throws(MalformedProtobuf) -> Result {
        guard let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return Result(model: model, replaced: 0, removedNodes: 0) }
        let plans = try plans(graph, model).enumerated().filter { chosen?.contains($0.offset) ?? true }
        guard !plans.isEmpty else { return Result(model: model, replaced: 0, removedNodes: 0) }
        var replacements: [Int: NodeReplacement] = [:]
        for (index, plan) in plans {
            replacements[plan.last] = NodeReplacement(inputs: plan.inputs) { graphWriter throws(MalformedProtobuf) in
                try plan.shape.writeNode(into: &graphWriter, inputs: plan.inputs, output: plan.output, bf16: bf16, winograd: winograd[index])
            }
        }
        let (rewritten, removed) = try NodeReplacement.apply(
            replacements, to: model, modelFields: modelFields, graphField: graphField, graph: graph, domain: domain)
        return Result(model: rewritten, replaced: plans.count, removedNodes: removed)
    }

    /// Level `index` of `model` as two models of input `X [batch, C, length]` and output `Y`: the
    /// level's own nodes copied from `model`, and the one `ResidualStack` node (with `tile`,
    /// `kernelPath`, `bf16` and `winograd` as given).
    public static func levelModels(
        in model: [UInt8], index: Int, length: Int, batch: Int = 1, tile: Int? = nil, kernelPath: Int? = nil, bf16: Bool = false,
        winograd: [WinogradSize?]? = nil
    ) throws(MalformedProtobuf) -> (original: [UInt8], fused: [UInt8])? {
        guard let (modelFields, _, graph) = try GraphSummary.read(model) else { return nil }
        let plans = try plans(graph, model)
        guard plans.indices.contains(index) else { return nil }
        let plan = plans[index]
        let dims = [Int64(batch), Int64(plan.shape.channels), Int64(length)]
        let x = SubgraphModel.Value(name: plan.inputs[0], renamed: "X", dims: dims)
        let y = SubgraphModel.Value(name: plan.output, renamed: "Y", dims: [Int64(batch), Int64(plan.shape.outputChannels), Int64(length)])
        let original = try SubgraphModel.copying(plan.nodes.sorted(), of: graph, in: model, modelFields: modelFields, inputs: [x], output: y)
        let fused = try SubgraphModel.wrapping(modelFields, from: model, inputs: [x], output: y) { graphWriter throws(MalformedProtobuf) in
            for (index, field) in graph.fields.enumerated() {
                if let tensor = graph.tensors[index], plan.inputs.dropFirst().contains(tensor.name) { graphWriter.copy(field, from: model) }
            }
            try plan.shape.writeNode(
                into: &graphWriter, inputs: ["X"] + plan.inputs.dropFirst(), output: "Y", bf16: bf16, tile: tile, kernelPath: kernelPath,
                winograd: winograd)
        }
        return (original, fused)
    }

    struct Plan {
        let shape: ResidualStackShape
        /// X, then each convolution's weight and bias.
        let inputs: [String]
        let output: String
        /// The field index of the level's last node, and of all of its nodes.
        let last: Int
        let nodes: Set<Int>
    }

    static func plans(_ graph: GraphSummary, _ model: [UInt8]) throws(MalformedProtobuf) -> [Plan] {
        let byField = graph.nodesByField
        var producers: [String: Int] = [:]
        var readers: [String: [Int]] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append(index) }
        }
        let constants = try FourDimensionalChains.scalarConstants(graph, in: model)
        func producer(_ value: String, _ opType: String) -> (Int, GraphSummary.Node)? {
            guard let index = producers[value], let node = byField[index], node.opType == opType,
                  node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count == 1
            else { return nil }
            return (index, node)
        }
        /// A same-length C → C convolution with weight and bias held as float initializers.
        func convolution(_ value: String) throws(MalformedProtobuf) -> (index: Int, node: GraphSummary.Node, conv: ResidualStackShape.Convolution)? {
            guard let (index, node) = producer(value, "Conv"), node.inputs.count == 3, let found = try sameLength(node),
                  found.outputs == found.conv.channels
            else { return nil }
            return (index, node, found.conv)
        }
        /// A same-length 1-D convolution of `node`, group 1, stride 1, odd kernel, weight and bias
        /// (if any) held as float initializers: its shape (`channels`: its input's) and output channels.
        func sameLength(_ node: GraphSummary.Node) throws(MalformedProtobuf) -> (conv: ResidualStackShape.Convolution, outputs: Int)? {
            guard node.inputs.count == 2 || node.inputs.count == 3, !node.inputs[0].isEmpty,
                  let weight = graph.tensorsByName[node.inputs[1]], weight.dims.count == 3, weight.dataType == 1, !weight.isExternal
            else { return nil }
            if node.inputs.count == 3 {
                guard let bias = graph.tensorsByName[node.inputs[2]], bias.dims == [weight.dims[0]], bias.dataType == 1, !bias.isExternal
                else { return nil }
            }
            let kernel = Int(weight.dims[2])
            var (dilation, pads) = (1, [Int64(0), 0])
            for (_, attribute) in try NodeAttribute.all(of: node, in: model) {
                switch attribute.name {
                case "kernel_shape": guard attribute.ints == [Int64(kernel)] else { return nil }
                case "strides": guard attribute.ints == [1] else { return nil }
                case "dilations":
                    guard attribute.ints.count == 1, attribute.ints[0] >= 1 else { return nil }
                    dilation = Int(attribute.ints[0])
                case "pads": pads = attribute.ints
                case "group": guard attribute.integer == 1 else { return nil }
                case "auto_pad": guard attribute.text == "NOTSET" else { return nil }
                default: return nil
                }
            }
            let reach = Int64((kernel - 1) / 2 * dilation)
            guard kernel % 2 == 1, pads == [reach, reach] else { return nil }
            return (.init(kernel: kernel, dilation: dilation, channels: Int(weight.dims[1])), Int(weight.dims[0]))
        }
        func leakyRelu(_ value: String) throws(MalformedProtobuf) -> (index: Int, input: String, alpha: Float)? {
            guard let (index, node) = producer(value, "LeakyRelu"), node.inputs.count == 1, !node.inputs[0].isEmpty else { return nil }
            return (index, node.inputs[0], try DirectConvPlan.alpha(of: node, model))
        }
        struct Step {
            var convolutions: [(node: GraphSummary.Node, conv: ResidualStackShape.Convolution)]
            var nodes: [Int]
            var alphas: [Float]
            var input: String
        }
        /// The step whose result is `value`: `Add(v, Conv(LeakyRelu(v)))` or `Add(v, Conv(LeakyRelu(Conv(LeakyRelu(v)))))`.
        func step(_ value: String) throws(MalformedProtobuf) -> Step? {
            guard let (addIndex, add) = producer(value, "Add"), add.inputs.count == 2 else { return nil }
            for (convolved, residual) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
                guard let outer = try convolution(convolved), let outerActivation = try leakyRelu(outer.node.inputs[0]) else { continue }
                if outerActivation.input == residual {
                    return Step(convolutions: [(outer.node, outer.conv)], nodes: [addIndex, outer.index, outerActivation.index],
                                alphas: [outerActivation.alpha], input: residual)
                }
                if let inner = try convolution(outerActivation.input), let innerActivation = try leakyRelu(inner.node.inputs[0]),
                   innerActivation.input == residual {
                    return Step(convolutions: [(inner.node, inner.conv), (outer.node, outer.conv)],
                                nodes: [addIndex, outer.index, outerActivation.index, inner.index, innerActivation.index],
                                alphas: [innerActivation.alpha, outerActivation.alpha], input: residual)
                }
            }
            return nil
        }

        var plans: [Plan] = []
        var claimed: Set<Int> = []
        for (scaleIndex, scaleNode) in graph.nodes where ["Div", "Mul"].contains(scaleNode.opType) && !claimed.contains(scaleIndex) {
            guard let (sum, scale) = ScaleFolding.scale(scaleNode, constants: constants) else { continue }
            // The sum's leaves: Adds read only by the tree are expanded; the rest are blocks.
            var leaves: [String] = []
            var nodes: Set<Int> = [scaleIndex]
            var pending = [sum]
            while let value = pending.popLast(), leaves.count <= 8 {
                if try step(value) == nil, let (index, add) = producer(value, "Add"), add.inputs.count == 2, graph.uses[value] == 1 {
                    nodes.insert(index)
                    pending += add.inputs.reversed()
                } else {
                    leaves.append(value)
                }
            }
            guard leaves.count >= 2, leaves.count <= 8 else { continue }
            var blocks: [[Step]] = []
            var input: String?
            for leaf in leaves {
                var steps: [Step] = []
                var value = leaf
                while steps.count < 8, let found = try step(value) {
                    steps.insert(found, at: 0)
                    value = found.input
                }
                guard !steps.isEmpty, input == nil || input == value else { input = nil; break }
                input = value
                blocks.append(steps)
            }
            guard let input, blocks.count == leaves.count else { continue }
            let all = blocks.flatMap { $0 }
            let convolutions = all.flatMap(\.convolutions)
            let alphas = Set(all.flatMap(\.alphas))
            guard let channels = convolutions.first?.conv.channels, convolutions.allSatisfy({ $0.conv.channels == channels }),
                  alphas.count == 1, convolutions.count <= 24, all.count <= 24
            else { continue }
            for step in all { nodes.formUnion(step.nodes) }
            var output = scaleNode.outputs[0]
            var last = scaleIndex
            /// The one node of `opType` (ONNX's own) that reads the result, the result's only reader.
            func onlyReader(_ opType: String) -> (index: Int, node: GraphSummary.Node)? {
                guard graph.uses[output] == 1, !graph.outputs.contains(output), let reader = readers[output]?.first,
                      let node = byField[reader], node.opType == opType, node.domain.isEmpty || node.domain == "ai.onnx",
                      node.inputs.first == output, node.outputs.count == 1
                else { return nil }
                return (reader, node)
            }
            var postAlpha: Float?
            if let (reader, node) = onlyReader("LeakyRelu"), node.inputs.count == 1 {
                postAlpha = try DirectConvPlan.alpha(of: node, model)
                (output, last) = (node.outputs[0], reader)
                nodes.insert(reader)
            }
            // A one-channel convolution of the result (conv_post), when it is the result's only reader.
            var post: (kernel: Int, weights: [String])?
            if let (reader, node) = onlyReader("Conv"), let found = try sameLength(node),
               found.outputs == 1, found.conv.channels == channels, found.conv.dilation == 1 {
                post = (found.conv.kernel, Array(node.inputs.dropFirst()))
                (output, last) = (node.outputs[0], reader)
                nodes.insert(reader)
            }
            // Every value the level computes but its result is read inside it, and by nothing else.
            let closed = nodes.allSatisfy { index in
                byField[index]!.outputs.allSatisfy { value in
                    value == output || (!graph.outputs.contains(value) && (readers[value] ?? []).allSatisfy(nodes.contains))
                }
            }
            guard closed, nodes.isDisjoint(with: claimed) else { continue }
            claimed.formUnion(nodes)
            let shape = ResidualStackShape(
                channels: channels, blocks: blocks.map { $0.map { $0.convolutions.map(\.conv) } }, alpha: alphas.first!, scale: scale,
                postAlpha: postAlpha, postKernel: post?.kernel)
            let weights = convolutions.flatMap { [$0.node.inputs[1], $0.node.inputs[2]] } + (post?.weights ?? [])
            plans.append(Plan(shape: shape, inputs: [input] + weights, output: output, last: last, nodes: nodes))
        }
        return plans.sorted { $0.last < $1.last }
    }
}

/// What one `ResidualStack` computes, apart from its weights and its input's length.
public struct ResidualStackShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public struct Convolution: Hashable, Codable, Sendable {
        public var kernel: Int
        public var dilation: Int
        public var channels: Int
    }

    public var channels: Int
    /// For each block, its steps; for each step, its one or two convolutions.
    public var blocks: [[[Convolution]]]
    public var alpha: Float
    public var scale: Float
    public var postAlpha: Float?
    /// The taps of a one-channel convolution of the level's result that the node computes too
    /// (its output is then that one channel); nil: none.
    public var postKernel: Int?

    public init(channels: Int, blocks: [[[Convolution]]], alpha: Float, scale: Float, postAlpha: Float?, postKernel: Int? = nil) {
        (self.channels, self.blocks, self.alpha, self.scale, self.postAlpha, self.postKernel) = (channels, blocks, alpha, scale, postAlpha, postKernel)
    }

    /// The node's output channels: the level's, or one after a post convolution.
    public var outputChannels: Int { postKernel == nil ? channels : 1 }

    /// Multiply-adds per sample (without the tiles' halos).
    public var multiplyAddsPerSample: Int {
        blocks.flatMap { $0.flatMap { $0 } }.reduce(0) { $0 + channels * channels * $1.kernel } + channels * (postKernel ?? 0)
    }

    public var description: String {
        let blockText = blocks.map { $0.map { $0.map { "k\($0.kernel)d\($0.dilation)" }.joined(separator: "+") }.joined(separator: ",") }
        var text = "\(channels)ch [\(blockText.joined(separator: " | "))] α \(alpha) × \(scale)"
        if let postAlpha { text += " post \(postAlpha)" }
        if let postKernel { text += " → 1ch k\(postKernel)" }
        return text
    }

    /// The sets of Winograd sizes (one per convolution, nil: direct) the cache build times for
    /// this level in FP32 (`ResidualStackChoice`), by bench/winograd's figures: F(4, 7) for the
    /// 7-tap kernels alone (2.5 products per output instead of 7; at 32 channels the transforms
    /// cost about what the other sizes save), F(4, K) for the 5- and 7-tap ones, and that with
    /// F(3, 3) or F(4, 3) for the 3-tap ones (F(4, 3): 1.5 products per output against F(3, 3)'s
    /// 1.67, and at dilations 1 and 2 AVX2 gathers its rows by transposes; on the Zen 3 it timed
    /// 3–6% faster than F(3, 3) at every level and took the 32-channel level's 3-tap convolutions
    /// from the direct kernel).
    public var winogradCandidates: [[WinogradSize?]] {
        let convolutions = blocks.flatMap { $0.flatMap { $0 } }
        let longest = convolutions.map { $0.kernel == 7 ? WinogradSize(outputs: 4, taps: 7) : nil }
        let wide = convolutions.map { $0.kernel == 5 || $0.kernel == 7 ? WinogradSize(outputs: 4, taps: $0.kernel) : nil }
        let all = zip(convolutions, wide).map { $0.kernel == 3 ? WinogradSize(outputs: 3, taps: 3) : $1 }
        let allFour = zip(convolutions, wide).map { $0.kernel == 3 ? WinogradSize(outputs: 4, taps: 3) : $1 }
        return [longest, wide, all, allFour].filter { $0.contains { $0 != nil } }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    func writeNode(
        into graph: inout ProtoWriter, inputs: [String], output: String, bf16: Bool, tile: Int? = nil, kernelPath: Int? = nil,
        winograd: [WinogradSize?]? = nil
    ) throws(MalformedProtobuf) {
        try graph.customNode(ResidualStackRewrite.opType, domain: ResidualStackRewrite.domain, inputs: inputs, output: output) {
            node throws(MalformedProtobuf) in
            let convolutions = blocks.flatMap { $0.flatMap { $0 } }
            try node.intsAttribute("block_steps", blocks.map { Int64($0.count) })
            try node.intsAttribute("step_convs", blocks.flatMap { $0.map { Int64($0.count) } })
            try node.intsAttribute("kernels", convolutions.map { Int64($0.kernel) })
            try node.intsAttribute("dilations", convolutions.map { Int64($0.dilation) })
            node.floatAttribute("alpha", alpha)
            node.floatAttribute("scale", scale)
            if let postAlpha { node.floatAttribute("post_alpha", postAlpha) }
            if let postKernel { node.intAttribute("post_kernel", Int64(postKernel)) }
            if bf16 { node.intAttribute("bf16", 1) }
            if let tile { node.intAttribute("tile", Int64(tile)) }
            if let kernelPath { node.intAttribute("lark_kernel_path", Int64(kernelPath)) }
            if let winograd, winograd.contains(where: { $0 != nil }) {
                try node.intsAttribute("winograd_outputs", winograd.map { Int64($0?.outputs ?? 0) })
                try node.intsAttribute("winograd_taps", winograd.map { Int64($0?.taps ?? 0) })
            }
        }
    }
}

/// A Winograd (Toom-Cook) size F(outputs, taps) for one of `ResidualStack`'s convolutions
/// (CLarkKernels `winograd.c`): `outputs` consecutive outputs of a dilated phase from kernel
/// pieces of `taps` taps with outputs + taps − 1 products instead of outputs · taps.
public struct WinogradSize: Hashable, Codable, Sendable, CustomStringConvertible {
    public var outputs: Int
    public var taps: Int

    public init(outputs: Int, taps: Int) { (self.outputs, self.taps) = (outputs, taps) }

    public var description: String { "F(\(outputs),\(taps))" }
}
