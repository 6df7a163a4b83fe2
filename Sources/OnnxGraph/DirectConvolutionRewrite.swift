/// Replaces small 1-D convolutions with Lark's own direct-convolution kernel, the custom operator
/// `ai.lark.DirectConv` (C target `CLarkKernels`, registered on every session by `OnnxRuntime`),
/// together with the element-wise nodes around them that its attributes can carry:
/// - a `LeakyRelu` whose only reader is the convolution → `pre_alpha` (applied as X is read);
/// - an `Add` of the convolution's result and another value of the same shape → input `Z`;
/// - a `LeakyRelu` whose only input is that result → `post_alpha` (after the bias and `Z`).
/// ONNX Runtime's contrib `FusedConv` (`com.microsoft`, a `LeakyRelu` activation, optional `Z`)
/// is claimed the same way.
///
/// Why: ONNX Runtime runs a 1-D `Conv` (and the 2-D form `ConvolutionRewrite` gives it) by
/// unrolling the input and multiplying matrices. For HiFi-GAN's 32-channel residual
/// convolutions at the full sample rate that unrolled input is tens of MB per sentence, and the
/// element-wise nodes around them are thousands of small memory-bound kernel calls. The direct
/// kernel reads each input tile once from cache and does the element-wise work in passing.
///
/// Which convolutions: only those whose shape (`DirectConvolutionShape`) the caller chooses, since
/// whether the kernel wins depends on the CPU (`PiperModelLoader` times each shape against ONNX
/// Runtime's own path once, when it builds a voice's cache entry). Candidates are 1-D, group 1,
/// stride 1, float weights held as initializers, and at most `maximumChannels` channels in and out;
/// and the upsamplings' `ConvTranspose`s, restated as a convolution whose node writes the
/// interleaved phases itself (`SubpixelOutput`, `maximumSubpixelChannels`).
/// This rewrite runs on the model as exported, before `ConvolutionRewrite`, which leaves the
/// custom nodes alone.
public enum DirectConvolutionRewrite {
    public static let domain = "ai.lark"
    public static let opType = "DirectConv"
    /// Larger convolutions are ONNX Runtime's blocked kernels' ground (81–83% of peak) in FP32...
    public static let maximumChannels = 64
    /// ...unless the node runs them as Winograd F(m, r) (`winograd_outputs`/`winograd_taps`, FP32),
    /// with 2–2.5x fewer multiply-adds: FP32 convolutions up to this many channels with a kernel of
    /// `winogradKernels` taps and dilation 1 (the flow's WaveNet layers, the text encoder's
    /// feed-forward convolutions) are candidates for that alone (`DirectConvolutionChoice`).
    public static let maximumWinogradChannels = 1024
    public static let winogradKernels = 3...7
    /// ...except in the parts that run at the phoneme rate, by node name as Piper's exports have
    /// them: the text encoder and the duration predictor. Their sequences are a sentence's
    /// phonemes (tens to a few hundred), where Winograd's transforms and partial chunks cost what
    /// its products save: in the whole joe voice the text encoder's 192↔768 k3 convolutions took
    /// 228 ms as Winograd DirectConv against 202 ms on ONNX Runtime, though the choice timed them
    /// 1.3–1.6x faster at 2,304 samples (bench/results/winograd.md, "DirectConv Winograd").
    public static let winogradExcludedPrefixes = ["/enc_p/", "/dp/"]
    /// A `ConvTranspose` whose kernel is a whole number of strides (HiFi-GAN's upsamplings) may
    /// become a sub-pixel DirectConv (FP32), up to this many input channels and phases × output
    /// channels: the restated convolution then writes its interleaved result itself, in place of
    /// ONNX Runtime's blocked `Conv`, a `SubpixelInterleave` pass over its output and the layout
    /// reorders around them (`TransposedConvPlan`). Timing decides, against that form.
    public static let maximumSubpixelChannels = 1024
    /// In bf16 the kernel does twice the multiply-adds per instruction, so it may beat those
    /// kernels at any size: every convolution up to this is a candidate, and timing decides.
    public static let maximumChannelsBF16 = 1024
    /// bf16 goes only into the parts of a VITS graph after the phoneme durations are set, by
    /// node name as Piper's exports have them: the decoder and the flow. In the text encoder or
    /// the duration predictor its rounding moves a phoneme's length by a frame now and then
    /// (measured: two frames in one sentence), which shifts all the audio after it; they are
    /// 12% of the arithmetic. A graph named otherwise gets no bf16 nodes.
    public static let bf16NamePrefixes = ["/dec/", "/flow/"]

    public struct Result: Sendable {
        public let model: [UInt8]
        /// How many convolutions became `DirectConv` nodes.
        public let replaced: Int
        /// How many element-wise nodes went into them.
        public let fusedNodes: Int
    }

    /// The distinct shapes of the convolutions this rewrite could replace, in graph order (`bf16`:
    /// for the bf16 kernel, which takes larger ones).
    public static func candidates(in model: [UInt8], bf16: Bool = false) throws(MalformedProtobuf) -> [DirectConvolutionShape] {
        // (FP32 shapes above `maximumChannels` are Winograd candidates: `winogradCandidate`.)
        guard let (_, _, graph) = try GraphSummary.read(model) else { return [] }
        var seen: Set<DirectConvolutionShape> = []
        var shapes: [DirectConvolutionShape] = []
        for plan in try plans(graph, model, bf16: bf16) where seen.insert(plan.shape).inserted { shapes.append(plan.shape) }
        return shapes
    }

    /// Whether an FP32 shape above `maximumChannels` may go to DirectConv, as Winograd only
    /// (a sub-pixel one goes directly, at any size up to `maximumSubpixelChannels`).
    public static func needsWinograd(_ shape: DirectConvolutionShape) -> Bool {
        shape.subpixel == nil && max(shape.inputChannels, shape.outputChannels) > maximumChannels
    }

    /// The Winograd size timed for `shape` in FP32 (nil: none): F(4, K), the one bench/winograd
    /// (BIG=1) measured fastest or within a few percent of it at the flow's and text encoder's
    /// shapes (192→384 k5: 1.6–2.0x the packed direct kernel; 192↔768 k3: 1.2–1.7x).
    public static func winogradCandidate(_ shape: DirectConvolutionShape) -> WinogradSize? {
        guard shape.dilation == 1, winogradKernels.contains(shape.kernel) else { return nil }
        return WinogradSize(outputs: 4, taps: shape.kernel)
    }

    /// `model` with every candidate whose shape is in `chosen` replaced; `bf16`: the nodes
    /// multiply in bfloat16 (their `bf16` attribute); `winograd`: the shapes whose nodes run as
    /// Winograd F(m, r) (FP32; every chosen shape above `maximumChannels` must have one).
    public static func apply(
        to model: [UInt8], chosen: Set<DirectConvolutionShape>, bf16: Bool = false,
        winograd: [DirectConvolutionShape: WinogradSize] = [:]
    ) throws(MalformedProtobuf) -> Result {
        guard !chosen.isEmpty, let (modelFields, graphField, graph) = try GraphSummary.read(model) else {
            return Result(model: model, replaced: 0, fusedNodes: 0)
        }
        let plans = try plans(graph, model, bf16: bf16).filter {
            chosen.contains($0.shape) && (bf16 || !needsWinograd($0.shape) || winograd[$0.shape] != nil)
        }
        guard !plans.isEmpty else { return Result(model: model, replaced: 0, fusedNodes: 0) }
        // Each plan's node is written where the last node it absorbs was: by then every input
        // (X, and Z made before the Add) exists.
        var writtenAt: [Int: DirectConvPlan] = [:]
        var dropped: Set<Int> = []
        for plan in plans {
            writtenAt[plan.absorbed.max()!] = plan
            dropped.formUnion(plan.absorbed)
        }
        // A sub-pixel plan's ConvTranspose weights give way to the restated ones it writes.
        let replacedTensors = Set(plans.compactMap(\.subpixel).flatMap { [$0.weight] + ($0.bias.map { [$0] } ?? []) })
        var names = graph.allNames
        var graphWriter = ProtoWriter(reservingCapacity: graphField.payload.count + plans.count * 256)
        for (index, field) in graph.fields.enumerated() {
            if let plan = writtenAt[index] {
                try plan.write(
                    into: &graphWriter, from: model, source: graph, bf16: bf16, winograd: bf16 ? nil : winograd[plan.shape], names: &names)
            } else if field.number == Field.graphInitializer, let tensor = graph.tensors[index], replacedTensors.contains(tensor.name) {
                continue
            } else if !dropped.contains(index) {
                graphWriter.copy(field, from: model)
            }
        }
        let output = try GraphSummary.model(model, fields: modelFields, withGraph: graphWriter.bytes, importing: domain)
        return Result(
            model: output, replaced: plans.count, fusedNodes: plans.reduce(0) { $0 + $1.absorbed.count - 1 })
    }

    private static func plans(_ graph: GraphSummary, _ model: [UInt8], bf16: Bool) throws(MalformedProtobuf) -> [DirectConvPlan] {
        var producers: [String: (index: Int, node: GraphSummary.Node)] = [:]
        var readers: [String: [(index: Int, node: GraphSummary.Node)]] = [:]
        for (index, node) in graph.nodes {
            for output in node.outputs { producers[output] = (index, node) }
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append((index, node)) }
        }
        var plans: [DirectConvPlan] = []
        var claimed: Set<Int> = []
        for (index, node) in graph.nodes where !claimed.contains(index) {
            if bf16, !bf16NamePrefixes.contains(where: name(of: node, model).hasPrefix) { continue }
            var found = try DirectConvPlan(
                index: index, node: node, graph: graph, model: model, producers: producers, readers: readers, claimed: claimed,
                maximumChannels: bf16 ? maximumChannelsBF16 : maximumWinogradChannels)
            if found == nil, !bf16 {
                found = try DirectConvPlan(
                    subpixelAt: index, node: node, graph: graph, model: model, producers: producers, claimed: claimed,
                    maximumChannels: maximumSubpixelChannels)
            }
            guard let plan = found else { continue }
            // FP32 above `maximumChannels`: only shapes Winograd can take.
            guard bf16 || !needsWinograd(plan.shape)
                || (winogradCandidate(plan.shape) != nil && !winogradExcludedPrefixes.contains(where: name(of: node, model).hasPrefix))
            else { continue }
            claimed.formUnion(plan.absorbed)
            plans.append(plan)
        }
        return plans
    }

    private static func name(of node: GraphSummary.Node, _ model: [UInt8]) -> String {
        node.fields.first { $0.number == Field.nodeName && $0.wireType == .lengthDelimited }?.string(in: model) ?? ""
    }

    // MARK: - Single-convolution models, for timing and tests

    /// Two models of one input `X [1, C, length]` (and `Z [1, M, length']` with a residual) and
    /// one output `Y`: the plain nodes (`LeakyRelu`, `Conv`, `Add`, `LeakyRelu`, as a voice has
    /// them) and the single `DirectConv` node. `kernelPath` forces one of the kernel's SIMD paths
    /// (`LarkKernelPath`'s values); nil lets it choose. `bf16`: the DirectConv nodes multiply in
    /// bfloat16. `repeats` > 1 chains that many copies, each
    /// with weights of its own (as a voice's residual blocks are), each reading the previous one's
    /// output and the same `Z`: only for shapes that keep channels and length; it makes the
    /// convolutions' own time outweigh moving the inputs and outputs when timing them.
    public static func singleConvolution(
        _ shape: DirectConvolutionShape, length: Int, weights: [Float], bias: [Float]?, kernelPath: Int? = nil, bf16: Bool = false,
        repeats: Int = 1, winograd: WinogradSize? = nil
    ) throws(MalformedProtobuf) -> (plain: [UInt8], direct: [UInt8]) {
        if let subpixel = shape.subpixel {
            return try subpixelConvolution(shape, subpixel, length: length, weights: weights, bias: bias, kernelPath: kernelPath)
        }
        let outputLength = Int64(shape.resultLength(input: length))
        let (c, m) = (Int64(shape.inputChannels), Int64(shape.outputChannels))
        let repeats = (c == m && outputLength == Int64(length)) ? max(1, repeats) : 1
        func model(_ nodes: (inout ProtoWriter) throws(MalformedProtobuf) -> Void) throws(MalformedProtobuf) -> [UInt8] {
            try singleModel(input: [1, c, Int64(length)], residual: shape.residual ? [1, m, outputLength] : nil, output: [1, m, outputLength]) {
                graph throws(MalformedProtobuf) in
                try nodes(&graph)
                for copy in 0..<repeats {
                    try graph.floatTensor("W\(copy)", dims: [m, c, Int64(shape.kernel)], values: weights)
                    if let bias { try graph.floatTensor("B\(copy)", dims: [m], values: bias) }
                }
            }
        }
        // Node names differ from value names, as in exported models: ConvolutionRewrite names the
        // nodes it adds after their outputs.
        let plain = try model { graph throws(MalformedProtobuf) in
            var value = "X"
            for copy in 0..<repeats {
                let last = copy == repeats - 1
                let output = last ? "Y" : "Y\(copy)"
                if let alpha = shape.preAlpha {
                    try graph.customNode("LeakyRelu", domain: "", inputs: [value], output: "activated\(copy)", name: "pre\(copy)") {
                        $0.floatAttribute("alpha", alpha)
                    }
                    value = "activated\(copy)"
                }
                let inputs = bias == nil ? [value, "W\(copy)"] : [value, "W\(copy)", "B\(copy)"]
                try graph.customNode("Conv", domain: "", inputs: inputs, output: "convolved\(copy)", name: "conv\(copy)") {
                    conv throws(MalformedProtobuf) in try shape.writeConvAttributes(into: &conv)
                }
                value = "convolved\(copy)"
                if shape.residual {
                    try graph.customNode("Add", domain: "", inputs: [value, "Z"], output: "summed\(copy)", name: "residual\(copy)") { _ in }
                    value = "summed\(copy)"
                }
                if let alpha = shape.postAlpha {
                    try graph.customNode("LeakyRelu", domain: "", inputs: [value], output: output, name: "post\(copy)") {
                        $0.floatAttribute("alpha", alpha)
                    }
                } else {
                    try graph.customNode("Identity", domain: "", inputs: [value], output: output, name: "result\(copy)") { _ in }
                }
                value = output
            }
        }
        let direct = try model { graph throws(MalformedProtobuf) in
            var value = "X"
            for copy in 0..<repeats {
                let output = copy == repeats - 1 ? "Y" : "Y\(copy)"
                var inputs = bias == nil ? [value, "W\(copy)"] : [value, "W\(copy)", "B\(copy)"]
                if shape.residual { inputs = [value, "W\(copy)", bias == nil ? "" : "B\(copy)", "Z"] }
                try graph.customNode(opType, domain: domain, inputs: inputs, output: output) { node throws(MalformedProtobuf) in
                    try shape.writeDirectAttributes(into: &node)
                    if let kernelPath { node.intAttribute("lark_kernel_path", Int64(kernelPath)) }
                    if bf16 { node.intAttribute("bf16", 1) }
                    if let winograd { node.writeWinograd(winograd) }
                }
                value = output
            }
        }
        return (plain, direct)
    }

    /// A model of input `X` (and `Z`) and output `Y` with these dims, its nodes and initializers
    /// written by `body`.
    private static func singleModel(
        input: [Int64], residual: [Int64]?, output: [Int64], _ body: (inout ProtoWriter) throws(MalformedProtobuf) -> Void
    ) throws(MalformedProtobuf) -> [UInt8] {
        var graph = ProtoWriter()
        try body(&graph)
        graph.stringField(2, "single_convolution")
        graph.tensorValueInfo(Field.graphInput, name: "X", dims: input)
        if let residual { graph.tensorValueInfo(Field.graphInput, name: "Z", dims: residual) }
        graph.tensorValueInfo(Field.graphOutput, name: "Y", dims: output)
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        model.opsetImport(domain: "", version: 13)
        model.opsetImport(domain: domain, version: 1)
        model.bytesField(Field.modelGraph, graph.bytes)
        return model.bytes
    }

    /// `singleConvolution` of a sub-pixel shape: the plain model is the `ConvTranspose` (`weights`
    /// `[C_in, C_out, taps · stride]`, `bias` `[C_out]`, after a `LeakyRelu` with a `preAlpha`), the
    /// direct one its sub-pixel DirectConv with the weights restated.
    private static func subpixelConvolution(
        _ shape: DirectConvolutionShape, _ subpixel: SubpixelOutput, length: Int, weights: [Float], bias: [Float]?, kernelPath: Int?
    ) throws(MalformedProtobuf) -> (plain: [UInt8], direct: [UInt8]) {
        let (c, m) = (Int64(shape.inputChannels), Int64(shape.resultChannels))
        let (input, output) = ([1, c, Int64(length)], [1, m, Int64(shape.resultLength(input: length))])
        let phases = SubpixelConvolution.Phases(
            inputChannels: shape.inputChannels, outputChannels: shape.resultChannels, stride: subpixel.stride, taps: shape.kernel)
        let plain = try singleModel(input: input, residual: nil, output: output) { graph throws(MalformedProtobuf) in
            var value = "X"
            if let alpha = shape.preAlpha {
                try graph.customNode("LeakyRelu", domain: "", inputs: [value], output: "activated", name: "pre") { $0.floatAttribute("alpha", alpha) }
                value = "activated"
            }
            try graph.customNode("ConvTranspose", domain: "", inputs: bias == nil ? [value, "W"] : [value, "W", "B"], output: "Y", name: "upsampling") {
                node throws(MalformedProtobuf) in
                try node.intsAttribute("kernel_shape", [Int64(shape.kernel * subpixel.stride)])
                try node.intsAttribute("strides", [Int64(subpixel.stride)])
                try node.intsAttribute("pads", [Int64(subpixel.padBegin), Int64(subpixel.padEnd)])
            }
            try graph.floatTensor("W", dims: [c, m, Int64(shape.kernel * subpixel.stride)], values: weights)
            if let bias { try graph.floatTensor("B", dims: [m], values: bias) }
        }
        let direct = try singleModel(input: input, residual: nil, output: output) { graph throws(MalformedProtobuf) in
            try graph.customNode(opType, domain: domain, inputs: bias == nil ? ["X", "W"] : ["X", "W", "B"], output: "Y") { node throws(MalformedProtobuf) in
                try shape.writeDirectAttributes(into: &node)
                if let kernelPath { node.intAttribute("lark_kernel_path", Int64(kernelPath)) }
            }
            try graph.floatTensor(
                "W", dims: [Int64(shape.outputChannels), c, Int64(shape.kernel)], values: phases.restated(weights, phaseMajor: false))
            if let bias { try graph.floatTensor("B", dims: [Int64(shape.outputChannels)], values: phases.repeated(bias, phaseMajor: false)) }
        }
        return (plain, direct)
    }
}

/// What one `DirectConv` computes, apart from its weights and its input's length.
public struct DirectConvolutionShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernel: Int
    public var dilation: Int
    public var padBegin: Int
    public var padEnd: Int
    public var preAlpha: Float?
    public var postAlpha: Float?
    public var bias: Bool
    public var residual: Bool
    /// A `ConvTranspose` restated (`SubpixelConvolution`): the convolution above computes
    /// `stride` phases of each of Y's channels (channel-major: `o · stride + r`), and the node
    /// writes them interleaved and cropped, as the `ConvTranspose` does; nil: a plain convolution.
    public var subpixel: SubpixelOutput?

    public init(
        inputChannels: Int, outputChannels: Int, kernel: Int, dilation: Int = 1, padBegin: Int, padEnd: Int,
        preAlpha: Float? = nil, postAlpha: Float? = nil, bias: Bool = true, residual: Bool = false, subpixel: SubpixelOutput? = nil
    ) {
        (self.inputChannels, self.outputChannels, self.kernel, self.dilation) = (inputChannels, outputChannels, kernel, dilation)
        (self.padBegin, self.padEnd, self.preAlpha, self.postAlpha) = (padBegin, padEnd, preAlpha, postAlpha)
        (self.bias, self.residual, self.subpixel) = (bias, residual, subpixel)
    }

    /// Multiply-adds per output sample of the convolution (before a sub-pixel output's interleave).
    public var multiplyAddsPerSample: Int { inputChannels * outputChannels * kernel }

    /// Y's channels: the convolution's, or a sub-pixel output's (a `stride`-th of them).
    public var resultChannels: Int { subpixel.map { outputChannels / $0.stride } ?? outputChannels }

    /// Y's length for an input of `length` samples.
    public func resultLength(input length: Int) -> Int {
        let convolved = length + padBegin + padEnd - dilation * (kernel - 1)
        guard let subpixel else { return convolved }
        return convolved * subpixel.stride - subpixel.padBegin - subpixel.padEnd
    }

    public var description: String {
        var text = "\(inputChannels)→\(outputChannels) k\(kernel) d\(dilation) pads \(padBegin),\(padEnd)"
        if let preAlpha { text += " pre \(preAlpha)" }
        if bias { text += " +B" }
        if residual { text += " +Z" }
        if let postAlpha { text += " post \(postAlpha)" }
        if let subpixel { text += " sub-pixel ×\(subpixel.stride) crop \(subpixel.padBegin),\(subpixel.padEnd)" }
        return text
    }

    func writeConvAttributes(into node: inout ProtoWriter) throws(MalformedProtobuf) {
        try node.intsAttribute("kernel_shape", [Int64(kernel)])
        try node.intsAttribute("dilations", [Int64(dilation)])
        try node.intsAttribute("pads", [Int64(padBegin), Int64(padEnd)])
        try node.intsAttribute("strides", [1])
    }

    func writeDirectAttributes(into node: inout ProtoWriter) throws(MalformedProtobuf) {
        try writeConvAttributes(into: &node)
        if let preAlpha { node.floatAttribute("pre_alpha", preAlpha) }
        if let postAlpha { node.floatAttribute("post_alpha", postAlpha) }
        if let subpixel {
            node.intAttribute("subpixel_stride", Int64(subpixel.stride))
            try node.intsAttribute("subpixel_pads", [Int64(subpixel.padBegin), Int64(subpixel.padEnd)])
        }
    }
}

/// How a sub-pixel `DirectConv` (`DirectConvolutionShape.subpixel`) lays out its result: the
/// `ConvTranspose`'s stride and its pads (cropped from the interleaved phases).
public struct SubpixelOutput: Hashable, Codable, Sendable {
    public var stride: Int
    public var padBegin: Int
    public var padEnd: Int

    public init(stride: Int, padBegin: Int, padEnd: Int) {
        (self.stride, self.padBegin, self.padEnd) = (stride, padBegin, padEnd)
    }
}

/// One convolution to replace, with the nodes it absorbs (by field index, its own included).
struct DirectConvPlan {
    let shape: DirectConvolutionShape
    let input: String
    let weight: String
    let bias: String?
    let residual: String?
    let output: String
    let absorbed: [Int]
    /// The `ConvTranspose` a sub-pixel DirectConv replaces: its weights are written restated
    /// (channel-major), under names of their own, and its own are dropped.
    let subpixel: SubpixelConvolution?

    /// A sub-pixel DirectConv in place of a `ConvTranspose` node (`SubpixelConvolution`), with
    /// the `LeakyRelu` before it when only it reads that; nil when the node is no such
    /// `ConvTranspose` or is larger than `maximumChannels` (input channels, or phases × output
    /// channels).
    init?(
        subpixelAt index: Int, node: GraphSummary.Node, graph: GraphSummary, model: [UInt8],
        producers: [String: (index: Int, node: GraphSummary.Node)], claimed: Set<Int>, maximumChannels: Int
    ) throws(MalformedProtobuf) {
        guard let source = try SubpixelConvolution(node: node, graph: graph, in: model),
              source.inputChannels <= maximumChannels, source.stride * source.outputChannels <= maximumChannels
        else { return nil }
        var (input, absorbed, preAlpha) = (source.input, [index], Float?.none)
        if let pre = try Self.preActivation(of: input, graph, model, producers, claimed) {
            (input, preAlpha) = (pre.input, pre.alpha)
            absorbed.append(pre.index)
        }
        shape = DirectConvolutionShape(
            inputChannels: source.inputChannels, outputChannels: source.stride * source.outputChannels, kernel: source.taps,
            padBegin: source.taps - 1, padEnd: source.taps - 1, preAlpha: preAlpha, bias: source.bias != nil,
            subpixel: SubpixelOutput(stride: source.stride, padBegin: source.padBegin, padEnd: source.padEnd))
        (self.input, weight, bias, residual, output, self.absorbed, subpixel) = (input, source.weight, source.bias, nil, source.output, absorbed, source)
    }

    init?(
        index: Int, node: GraphSummary.Node, graph: GraphSummary, model: [UInt8],
        producers: [String: (index: Int, node: GraphSummary.Node)],
        readers: [String: [(index: Int, node: GraphSummary.Node)]], claimed: Set<Int>, maximumChannels: Int
    ) throws(MalformedProtobuf) {
        let isConv = node.opType == "Conv" && (node.domain.isEmpty || node.domain == "ai.onnx")
        let isFused = node.opType == "FusedConv" && node.domain == "com.microsoft"
        guard isConv || isFused, node.inputs.count >= 2, node.inputs.count <= (isFused ? 4 : 3), node.outputs.count == 1,
              !node.inputs[0].isEmpty, let tensor = graph.tensorsByName[node.inputs[1]], tensor.dims.count == 3,
              tensor.dataType == 1, !tensor.isExternal
        else { return nil }
        let (outputChannels, inputChannels, kernel) = (Int(tensor.dims[0]), Int(tensor.dims[1]), Int(tensor.dims[2]))
        guard inputChannels <= maximumChannels, outputChannels <= maximumChannels else { return nil }
        var bias: String?
        if node.inputs.count >= 3, !node.inputs[2].isEmpty {
            guard let tensor = graph.tensorsByName[node.inputs[2]], tensor.dims == [Int64(outputChannels)] else { return nil }
            bias = node.inputs[2]
        }
        var residual = node.inputs.count == 4 && !node.inputs[3].isEmpty ? node.inputs[3] : nil

        var (dilation, pads) = (1, [0, 0])
        var postAlpha: Float?
        for entry in node.fields where entry.number == Field.nodeAttribute && entry.wireType == .lengthDelimited {
            let attribute = try NodeAttribute(entry, in: model)
            switch attribute.name {
            case "kernel_shape": guard attribute.ints == [Int64(kernel)] else { return nil }
            case "strides": guard attribute.ints == [1] else { return nil }
            case "dilations":
                guard attribute.ints.count == 1, attribute.ints[0] >= 1 else { return nil }
                dilation = Int(attribute.ints[0])
            case "pads":
                guard attribute.ints.count == 2, attribute.ints.allSatisfy({ $0 >= 0 }) else { return nil }
                pads = attribute.ints.map(Int.init)
            case "group": guard attribute.integer == 1 else { return nil }
            case "auto_pad": guard attribute.text == "NOTSET" else { return nil }
            case "activation" where isFused:
                guard attribute.text == "LeakyRelu" else { return nil }
            case "activation_params" where isFused:
                guard attribute.floats.count == 1 else { return nil }
                postAlpha = attribute.floats[0]
            default: return nil
            }
        }
        if isFused, postAlpha == nil, try Self.hasActivation(node, model) { return nil }

        var absorbed = [index]
        var input = node.inputs[0]
        var preAlpha: Float?
        if let pre = try Self.preActivation(of: input, graph, model, producers, claimed) {
            (input, preAlpha) = (pre.input, pre.alpha)
            absorbed.append(pre.index)
        }
        var output = node.outputs[0]
        // The residual Add, when this result is its only reader's only convolution input.
        if residual == nil, let (addIndex, add) = Self.soleReader(of: output, graph, readers), !claimed.contains(addIndex),
           add.opType == "Add",
           add.domain.isEmpty, add.inputs.count == 2, add.outputs.count == 1, add.inputs[0] != add.inputs[1] {
            let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
            // A constant would be broadcast by Add; Z must be a computed value of the output's shape.
            if !other.isEmpty, graph.tensorsByName[other] == nil, producers[other] != nil || graph.declared.contains(other) {
                residual = other
                output = add.outputs[0]
                absorbed.append(addIndex)
            }
        }
        if postAlpha == nil, let (leakyIndex, leaky) = Self.soleReader(of: output, graph, readers), !claimed.contains(leakyIndex),
           Self.isLeakyRelu(leaky) {
            postAlpha = try Self.alpha(of: leaky, model)
            output = leaky.outputs[0]
            absorbed.append(leakyIndex)
        }
        self.shape = DirectConvolutionShape(
            inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernel, dilation: dilation,
            padBegin: pads[0], padEnd: pads[1], preAlpha: preAlpha, postAlpha: postAlpha, bias: bias != nil,
            residual: residual != nil)
        (self.input, self.weight, self.bias, self.residual, self.output, self.absorbed, subpixel) =
            (input, node.inputs[1], bias, residual, output, absorbed, nil)
    }

    /// A LeakyRelu read by the convolution alone, that makes `input`: its own input, its slope
    /// and its field index.
    private static func preActivation(
        of input: String, _ graph: GraphSummary, _ model: [UInt8], _ producers: [String: (index: Int, node: GraphSummary.Node)],
        _ claimed: Set<Int>
    ) throws(MalformedProtobuf) -> (input: String, alpha: Float, index: Int)? {
        guard let (index, producer) = producers[input], !claimed.contains(index), isLeakyRelu(producer), graph.uses[input] == 1,
              !graph.outputs.contains(input), !producer.inputs[0].isEmpty
        else { return nil }
        return (producer.inputs[0], try alpha(of: producer, model), index)
    }

    /// Writes the node (and a sub-pixel one's restated weights, named uniquely among `names`,
    /// from `model`'s `source` graph).
    func write(
        into graph: inout ProtoWriter, from model: [UInt8], source: GraphSummary, bf16: Bool, winograd: WinogradSize?, names: inout Set<String>
    ) throws(MalformedProtobuf) {
        var (weight, bias) = (self.weight, self.bias)
        if let subpixel {
            weight = ConvolutionRewrite.unique(output + "/lark_direct_weight", in: &names)
            try graph.floatTensor(
                weight, dims: [Int64(shape.outputChannels), Int64(shape.inputChannels), Int64(shape.kernel)],
                values: subpixel.restatedWeights(model, source, phaseMajor: false))
            if bias != nil {
                let name = ConvolutionRewrite.unique(output + "/lark_direct_bias", in: &names)
                try graph.floatTensor(name, dims: [Int64(shape.outputChannels)], values: subpixel.repeatedBias(model, source, phaseMajor: false))
                bias = name
            }
        }
        var inputs = [input, weight]
        if bias != nil || residual != nil { inputs.append(bias ?? "") }
        if let residual { inputs.append(residual) }
        try graph.customNode(DirectConvolutionRewrite.opType, domain: DirectConvolutionRewrite.domain, inputs: inputs, output: output) {
            node throws(MalformedProtobuf) in
            try shape.writeDirectAttributes(into: &node)
            if bf16 { node.intAttribute("bf16", 1) }
            if let winograd { node.writeWinograd(winograd) }
        }
    }

    private static func isLeakyRelu(_ node: GraphSummary.Node) -> Bool {
        node.opType == "LeakyRelu" && (node.domain.isEmpty || node.domain == "ai.onnx") && node.inputs.count == 1
            && node.outputs.count == 1
    }

    /// The one node reading `value`, when it is read once and is not a graph output.
    private static func soleReader(
        of value: String, _ graph: GraphSummary, _ readers: [String: [(index: Int, node: GraphSummary.Node)]]
    ) -> (index: Int, node: GraphSummary.Node)? {
        guard graph.uses[value] == 1, !graph.outputs.contains(value), let reader = readers[value]?.first else { return nil }
        return reader
    }

    /// A LeakyRelu's `alpha` (ONNX's default 0.01 when absent).
    static func alpha(of node: GraphSummary.Node, _ model: [UInt8]) throws(MalformedProtobuf) -> Float {
        for entry in node.fields where entry.number == Field.nodeAttribute && entry.wireType == .lengthDelimited {
            var reader = ProtoReader(model, range: entry.payload)
            var (name, value): (String, Float?) = ("", nil)
            while let field = try reader.next() {
                if field.number == Field.attributeName, field.wireType == .lengthDelimited { name = field.string(in: model) }
                if field.number == Field.attributeFloat, field.wireType == .fixed32 { value = field.floats(in: model).first }
            }
            if name == "alpha", let value { return value }
        }
        return 0.01
    }

    private static func hasActivation(_ node: GraphSummary.Node, _ model: [UInt8]) throws(MalformedProtobuf) -> Bool {
        for entry in node.fields where entry.number == Field.nodeAttribute && entry.wireType == .lengthDelimited {
            if try NodeAttribute(entry, in: model).name == "activation" { return true }
        }
        return false
    }
}

extension ProtoWriter {
    /// A node in `domain` (empty: ONNX's own), named `name`, else after its output.
    mutating func customNode(
        _ opType: String, domain: String, inputs: [String], output: String, name: String? = nil,
        attributes: (inout ProtoWriter) throws(MalformedProtobuf) -> Void
    ) throws(MalformedProtobuf) {
        try messageField(Field.graphNode) { (node: inout ProtoWriter) throws(MalformedProtobuf) in
            for input in inputs { node.stringField(Field.nodeInput, input) }
            node.stringField(Field.nodeOutput, output)
            node.stringField(Field.nodeName, name ?? output)
            node.stringField(Field.nodeOpType, opType)
            if !domain.isEmpty { node.stringField(Field.nodeDomain, domain) }
            try attributes(&node)
        }
    }

    mutating func floatAttribute(_ name: String, _ value: Float) {
        messageField(Field.nodeAttribute) { attribute in
            attribute.stringField(Field.attributeName, name)
            attribute.floatField(Field.attributeFloat, value)
            attribute.varintField(Field.attributeType, Field.attributeTypeFloat)
        }
    }

    /// DirectConv's Winograd size (`winograd_outputs`, `winograd_taps`).
    mutating func writeWinograd(_ size: WinogradSize) {
        intAttribute("winograd_outputs", Int64(size.outputs))
        intAttribute("winograd_taps", Int64(size.taps))
    }

    mutating func intAttribute(_ name: String, _ value: Int64) {
        messageField(Field.nodeAttribute) { attribute in
            attribute.stringField(Field.attributeName, name)
            attribute.varintField(Field.attributeInteger, value)
            attribute.varintField(Field.attributeType, Field.attributeTypeInt)
        }
    }

    /// A model's `opset_import` entry.
    mutating func opsetImport(domain: String, version: Int64) {
        messageField(Field.modelOpsetImport) { entry in
            entry.stringField(1, domain)
            entry.varintField(2, version)
        }
    }

    /// A graph input or output: a float tensor of fixed dims.
    mutating func tensorValueInfo(_ field: Int, name: String, dims: [Int64]) {
        messageField(field) { info in
            info.stringField(Field.valueInfoName, name)
            info.messageField(2) { type in  // TypeProto
                type.messageField(1) { tensor in  // tensor_type
                    tensor.varintField(1, 1)  // elem_type FLOAT
                    tensor.messageField(2) { shape in
                        for size in dims { shape.messageField(1) { $0.varintField(1, size) } }
                    }
                }
            }
        }
    }
}
