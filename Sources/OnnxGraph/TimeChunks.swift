/// Runs the narrow, long end of a model (HiFi-GAN's last upsampling stages) as overlapping pieces
/// of its time axis stacked in the batch axis, so that ONNX Runtime's threads share that work.
///
/// Why: ONNX Runtime's blocked-layout (NCHWc) convolution hands its threads work by batch item,
/// group, set of 64 output channels and output row. A restated 1-D convolution has one row, so one
/// with 64 output channels or fewer runs on one thread whatever the session's thread count. In
/// Piper's decoder those are the 64- and 32-channel stages at the two highest rates: about half the
/// model's arithmetic, which is why the rewritten graph gained little from a second thread. Cut
/// into `pieces` along time and stacked in the batch axis, each of those convolutions has `pieces`
/// work items.
///
/// Only where such a convolution is in the region: Lark's fused levels (`ResidualStack`) and
/// `DirectConv` share time among the threads themselves, and pieces would only add their copies,
/// halos and ~37 small nodes per run.
///
/// Exactness: every node of the region (see `Region`) treats batch items apart, and along time it
/// is a convolution (which reads at most `dilation · (kernel − 1)` neighbours on a side, at its own
/// rate), an elementwise node, a crop, or the sub-pixel interleave of `TransposedConvPlan` (which
/// multiplies the rate). Each piece carries `halo` input samples beyond each cut, the sum of those
/// reaches in input samples, so its kept part is computed from the same values as the whole
/// sequence's; the sequence's true ends are ends of the first and last pieces, padded as before.
/// The kept parts, joined, are the region's output (the load-time probe checks it to 1e-3). Costs:
/// the halos (about 1% of a sentence's samples) and one copy of the region's input and output.
enum TimeChunks {
    /// How many pieces: the threads of a server's wide session (2 on the machines measured).
    static let pieces = 2
    /// The most output channels a blocked convolution of one row runs on one thread (4 blocks of
    /// 16 with AVX-512): regions start at a sub-pixel upsampling this narrow.
    static let narrowChannels: Int64 = 64

    /// `model` with the region that starts at the first of `candidates` that has one (in the
    /// graph's order) cut into pieces, or nil when none has. `rates`: values at a multiple of
    /// their input's rate (the sub-pixel interleaves), by name.
    static func apply(to model: [UInt8], candidates: [String], rates: [String: Int]) throws(MalformedProtobuf) -> [UInt8]? {
        guard !candidates.isEmpty, let (modelFields, graphField, graph) = try GraphSummary.read(model) else { return nil }
        let constants = try Constants(graph, in: model)
        for candidate in candidates {
            guard let region = try Region(from: candidate, graph: graph, model: model, constants: constants, rates: rates) else { continue }
            var writer = ProtoWriter(reservingCapacity: graphField.payload.count + 8192)
            try region.write(graph, from: model, into: &writer, names: graph.allNames)
            return GraphSummary.model(model, fields: modelFields, withGraph: writer.bytes)
        }
        return nil
    }

    /// Integer and float constants the graph holds as initializers or `Constant` nodes.
    struct Constants {
        private(set) var tensors: [String: GraphSummary.Tensor] = [:]
        private var model: [UInt8]

        init(_ graph: GraphSummary, in model: [UInt8]) throws(MalformedProtobuf) {
            self.model = model
            tensors = graph.tensorsByName
            tensors.merge(try graph.constantNodeTensors(in: model)) { $1 }
        }

        func contains(_ name: String) -> Bool { tensors[name] != nil }

        /// The values of a 64-bit integer constant stored as raw data.
        func integers(_ name: String) -> [Int64]? {
            guard let tensor = tensors[name], tensor.dataType == 7, !tensor.isExternal, let raw = tensor.rawData else { return nil }
            return stride(from: raw.lowerBound, to: raw.upperBound - 7, by: 8).map { at in
                (0..<8).reduce(Int64(0)) { value, byte in value | Int64(model[at + byte]) << (8 * Int64(byte)) }
            }
        }
    }

    /// The nodes downstream of `start` that treat batch items apart, up to the one value the rest
    /// of the graph reads (`end`).
    struct Region {
        let start: String
        let end: String
        /// Positions in `GraphSummary.nodes`.
        let members: [Int]
        let values: Set<String>
        /// Input samples each piece carries beyond a cut.
        let halo: Int64
        /// `end`'s rate as a multiple of `start`'s.
        let rate: Int64

        init?(from start: String, graph: GraphSummary, model: [UInt8], constants: Constants, rates: [String: Int]) throws(MalformedProtobuf) {
            guard !graph.outputs.contains(start) else { return nil }
            var values: Set<String> = [start]
            var rateOf: [String: Int] = [start: 1]
            var members: [Int] = []
            var readOutside: Set<String> = []
            var reach = 0
            // ONNX Runtime convolutions of one work item (Lark's own share time among the threads).
            var narrowConvolutions = 0
            for (position, (_, node)) in graph.nodes.enumerated() {
                let inside = node.inputs.filter { values.contains($0) }
                guard !inside.isEmpty else { continue }
                let othersConstant = node.inputs.allSatisfy { $0.isEmpty || values.contains($0) || constants.contains($0) }
                guard othersConstant, node.outputs.count == 1, !node.outputs[0].isEmpty,
                      node.domain.isEmpty || node.domain == "ai.onnx"
                          || (node.domain == "ai.lark"
                              && [DirectConvolutionRewrite.opType, SubpixelInterleave.opType, ResidualStackRewrite.opType].contains(node.opType)),
                      let nodeReach = try Self.reach(of: node, inside: values, model: model, constants: constants)
                else {
                    readOutside.formUnion(inside)
                    continue
                }
                let rate = inside.compactMap { rateOf[$0] }.max() ?? 1
                reach += (nodeReach + rate - 1) / rate
                rateOf[node.outputs[0]] = rate * (rates[node.outputs[0]] ?? 1)
                values.insert(node.outputs[0])
                members.append(position)
                // (Not the 1×1 depthwise stand-ins of `FourDimensionalChains`, which become elementwise
                // nodes once the layout is settled, `BlockedLayoutCleanup`.)
                if node.opType == "Conv", let weight = constants.tensors[node.inputs[1]], let outputs = weight.dims.first,
                   outputs <= TimeChunks.narrowChannels, weight.dims.dropFirst().reduce(1, *) > 1 {
                    narrowConvolutions += 1
                }
            }
            var ends = readOutside.union(graph.outputs.intersection(values))
            ends.remove(start)
            guard ends.count == 1, let end = ends.first, narrowConvolutions > 0, let rate = rateOf[end] else { return nil }
            self.start = start
            self.end = end
            self.members = members
            self.values = values
            halo = Int64(reach)
            self.rate = Int64(rate)
        }

        /// How many neighbours on a side the node reads along time, or nil when it is not one the
        /// region can hold: only nodes that treat batch items apart and keep time the last axis.
        private static func reach(
            of node: GraphSummary.Node, inside values: Set<String>, model: [UInt8], constants: Constants
        ) throws(MalformedProtobuf) -> Int? {
            let attributes = try NodeAttribute.all(of: node, in: model).map(\.attribute)
            func ints(_ name: String) -> [Int64]? { attributes.first { $0.name == name }?.ints }
            func axesAfterBatch(_ axes: [Int64]?) -> Bool { axes.map { !$0.isEmpty && $0.allSatisfy { $0 >= 1 } } ?? false }
            switch node.opType {
            case "Conv", "DirectConv":
                // `DirectConv` (Lark's kernel, `ai.lark`) takes Conv's attributes and keeps batch
                // items apart; its fused LeakyRelus and residual input read nothing along time.
                guard (ints("strides") ?? []).allSatisfy({ $0 == 1 }), node.inputs.count >= 2,
                      let weight = constants.tensors[node.inputs[1]], let kernel = ints("kernel_shape")?.last ?? weight.dims.last
                else { return nil }
                let dilation = ints("dilations")?.last ?? 1
                return Int(dilation * (kernel - 1))
            case ResidualStackRewrite.opType:
                // Lark's fused level keeps batch items apart; its blocks read at most the sum of
                // their convolutions' spans along time (counted over all blocks: an upper bound).
                // (A post convolution, `post_kernel`, adds its own span.)
                guard let kernels = ints("kernels"), let dilations = ints("dilations"), kernels.count == dilations.count else { return nil }
                let post = attributes.first { $0.name == "post_kernel" }?.integer ?? 0
                return Int(zip(kernels, dilations).reduce(0) { $0 + ($1.0 - 1) * $1.1 } + max(0, post - 1))
            case "LeakyRelu", "Tanh", "Relu", "Sigmoid", "Identity":
                return 0
            case SubpixelInterleave.opType:
                // Lark's interleave (`TransposedConvPlan`) keeps batch items apart and reads no
                // neighbours; its crop takes the same count off every piece, like the `Slice` it stands for.
                return 0
            case "Add", "Sub", "Mul", "Div":
                // A constant broadcasts over the batch only when it has no batch axis of its own.
                for input in node.inputs where !values.contains(input) {
                    guard let dims = constants.tensors[input]?.dims, dims.count < 4 || dims[0] == 1 else { return nil }
                }
                return 0
            case "Reshape":
                guard node.inputs.count == 2, constants.integers(node.inputs[1])?.first == 0,
                      !attributes.contains(where: { $0.name == "allowzero" && $0.integer != 0 })
                else { return nil }
                return 0
            case "Transpose":
                return ints("perm")?.first == 0 ? 0 : nil
            case "Slice":
                guard node.inputs.count >= 4, axesAfterBatch(constants.integers(node.inputs[3])),
                      node.inputs.count == 4 || constants.integers(node.inputs[4])?.allSatisfy({ $0 == 1 }) == true
                else { return nil }
                return 0
            case "Squeeze", "Unsqueeze":
                let axes = node.inputs.count == 2 ? constants.integers(node.inputs[1]) : ints("axes")
                return axesAfterBatch(axes) ? 0 : nil
            default:
                return nil
            }
        }

        /// The graph with the region's nodes reading the pieces and the pieces' kept parts joined
        /// under `end`'s name; the region's shape annotations name the pieces' batch and lengths.
        func write(_ graph: GraphSummary, from model: [UInt8], into writer: inout ProtoWriter, names: Set<String>) throws(MalformedProtobuf) {
            let memberFields = Set(members.map { graph.nodes[$0].0 })
            let firstField = graph.nodes[members.first!].0
            let endField = members.map { graph.nodes[$0] }.first { $0.1.outputs[0] == end }!.0
            var plan = PiecesPlan(pieces: Int64(TimeChunks.pieces), halo: halo, rate: rate, prefix: start + "/lark_pieces_", names: names)
            let (startPieces, endPieces) = (plan.name("input"), plan.name("output"))

            for (index, field) in graph.fields.enumerated() {
                if index == firstField { try plan.writeSplit(start, into: startPieces, writer: &writer) }
                if memberFields.contains(index), let node = graph.nodes.first(where: { $0.0 == index })?.1 {
                    writer.messageField(Field.graphNode) { (restated: inout ProtoWriter) in
                        for entry in node.fields {
                            if entry.number == Field.nodeInput, entry.string(in: model) == start {
                                restated.stringField(Field.nodeInput, startPieces)
                            } else if entry.number == Field.nodeOutput || entry.number == Field.nodeName, entry.string(in: model) == end {
                                // The join takes `end`'s name, and node names must be unique too.
                                restated.stringField(entry.number, endPieces)
                            } else {
                                restated.copy(entry, from: model)
                            }
                        }
                    }
                } else if field.number == Field.graphValueInfo, field.wireType == .lengthDelimited {
                    try Self.annotation(field, in: model, inside: values.subtracting([start, end]), into: &writer)
                } else {
                    writer.copy(field, from: model)
                }
                if index == endField { try plan.writeJoin(endPieces, into: end, writer: &writer) }
            }
            try plan.writeConstants(into: &writer)
        }

        /// Copies a shape annotation, or restates one of a value inside the region: its batch axis
        /// becomes the pieces' count and its last axis a length of its own, so that ONNX Runtime
        /// neither takes these values for the whole sequence's nor loses which ones are equal.
        private static func annotation(_ field: ProtoField, in model: [UInt8], inside: Set<String>, into writer: inout ProtoWriter) throws(MalformedProtobuf) {
            var reader = ProtoReader(model, range: field.payload)
            let entries = try reader.all()
            guard let nameEntry = entries.first(where: { $0.number == Field.valueInfoName && $0.wireType == .lengthDelimited }),
                  inside.contains(nameEntry.string(in: model))
            else { return writer.copy(field, from: model) }
            let name = nameEntry.string(in: model)
            guard let (elementType, dims) = try tensorShape(entries, in: model), dims.count >= 2 else { return }  // dropped
            try writer.messageField(Field.graphValueInfo) { (info: inout ProtoWriter) throws(MalformedProtobuf) in
                info.stringField(Field.valueInfoName, name)
                try info.messageField(2) { (type: inout ProtoWriter) throws(MalformedProtobuf) in
                    try type.messageField(1) { (tensor: inout ProtoWriter) throws(MalformedProtobuf) in
                        tensor.varintField(1, elementType)
                        tensor.messageField(2) { (shape: inout ProtoWriter) in
                            for (axis, dim) in dims.enumerated() {
                                shape.messageField(1) { (entry: inout ProtoWriter) in
                                    if axis == 0 {
                                        entry.stringField(2, "lark_pieces")
                                    } else if axis == dims.count - 1 {
                                        entry.stringField(2, (dim.symbol ?? "\(name)/length") + "/lark_pieces")
                                    } else if let symbol = dim.symbol {
                                        entry.stringField(2, symbol)
                                    } else {
                                        entry.varintField(1, dim.size)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        /// A `ValueInfoProto`'s element type and dims (each a size or a symbol), or nil when it
        /// is not a tensor with a shape.
        private static func tensorShape(_ entries: [ProtoField], in model: [UInt8]) throws(MalformedProtobuf) -> (Int64, [(size: Int64, symbol: String?)])? {
            guard let type = entries.first(where: { $0.number == 2 && $0.wireType == .lengthDelimited }) else { return nil }
            var typeReader = ProtoReader(model, range: type.payload)
            guard let tensor = try typeReader.all().first(where: { $0.number == 1 && $0.wireType == .lengthDelimited }) else { return nil }
            var tensorReader = ProtoReader(model, range: tensor.payload)
            var elementType: Int64 = 0
            var dims: [(size: Int64, symbol: String?)]?
            while let entry = try tensorReader.next() {
                if entry.number == 1, entry.wireType == .varint { elementType = Int64(bitPattern: entry.varint) }
                guard entry.number == 2, entry.wireType == .lengthDelimited else { continue }
                var shapeReader = ProtoReader(model, range: entry.payload)
                var found: [(size: Int64, symbol: String?)] = []
                while let dim = try shapeReader.next() {
                    guard dim.number == 1, dim.wireType == .lengthDelimited else { continue }
                    var dimReader = ProtoReader(model, range: dim.payload)
                    var value: (size: Int64, symbol: String?) = (0, nil)
                    while let part = try dimReader.next() {
                        if part.number == 1, part.wireType == .varint { value.size = Int64(bitPattern: part.varint) }
                        if part.number == 2, part.wireType == .lengthDelimited { value.symbol = part.string(in: model) }
                    }
                    found.append(value)
                }
                dims = found
            }
            return dims.map { (elementType, $0) }
        }
    }

    /// The nodes that cut the region's input into pieces and join the kept parts of its output.
    /// With `T` the input's length, `step = ⌈T / pieces⌉` and `L = min(T, step + 2·halo)`, piece `i`
    /// is the input's samples `[s_i, s_i + L)` where `s_i = min(max(i·step − halo, 0), T − L)`, and
    /// its kept part is its output for input samples `[i·step, min((i + 1)·step, T))`.
    struct PiecesPlan {
        let pieces: Int64
        let halo: Int64
        let rate: Int64
        private let prefix: String
        private var names: Set<String>
        private var constants: [String: [Int64]] = [:]
        private var constantNames: [String: String] = [:]
        private var length = "", pieceStarts: [String] = [], bounds: [String] = [], batch = ""

        init(pieces: Int64, halo: Int64, rate: Int64, prefix: String, names: Set<String>) {
            (self.pieces, self.halo, self.rate, self.prefix, self.names) = (pieces, halo, rate, prefix, names)
        }

        mutating func name(_ part: String) -> String { ConvolutionRewrite.unique(prefix + part, in: &names) }

        private mutating func constant(_ values: [Int64]) -> String {
            let key = values.map(String.init).joined(separator: "_")
            if let name = constantNames[key] { return name }
            let made = name("constant_" + key)
            constants[made] = values
            constantNames[key] = made
            return made
        }

        private mutating func binary(_ op: String, _ a: String, _ b: String, _ part: String, _ writer: inout ProtoWriter) throws(MalformedProtobuf) -> String {
            let output = name(part)
            try writer.node(op, inputs: [a, b], output: output)
            return output
        }

        mutating func writeSplit(_ input: String, into output: String, writer: inout ProtoWriter) throws(MalformedProtobuf) {
            let shape = name("shape")
            try writer.node("Shape", inputs: [input], output: shape)
            length = try binary("Gather", shape, constant([-1]), "length", &writer)
            batch = try binary("Gather", shape, constant([0]), "batch", &writer)
            let step = try binary("Div", try binary("Add", length, constant([pieces - 1]), "rounded", &writer), constant([pieces]), "step", &writer)
            let pieceLength = try binary("Min", length, try binary("Add", step, constant([2 * halo]), "wanted", &writer), "piece_length", &writer)
            let lastStart = try binary("Sub", length, pieceLength, "last_start", &writer)
            var pieceNames: [String] = []
            for i in 0..<pieces {
                bounds.append(try binary("Min", try binary("Mul", step, constant([i]), "cut_\(i)", &writer), length, "bound_\(i)", &writer))
                let early = try binary("Sub", bounds[Int(i)], constant([halo]), "early_\(i)", &writer)
                let pieceStart = try binary("Min", try binary("Max", early, constant([0]), "floor_\(i)", &writer), lastStart, "start_\(i)", &writer)
                pieceStarts.append(pieceStart)
                let pieceEnd = try binary("Add", pieceStart, pieceLength, "end_\(i)", &writer)
                let piece = name("piece_\(i)")
                try writer.node("Slice", inputs: [input, pieceStart, pieceEnd, constant([-1])], output: piece)
                pieceNames.append(piece)
            }
            try writer.node("Concat", inputs: pieceNames, output: output) { (concat: inout ProtoWriter) in concat.axisAttribute(0) }
        }

        mutating func writeJoin(_ input: String, into output: String, writer: inout ProtoWriter) throws(MalformedProtobuf) {
            var kept: [String] = []
            for i in 0..<pieces {
                let keepFrom = try binary("Mul", try binary("Sub", bounds[Int(i)], pieceStarts[Int(i)], "skip_\(i)", &writer), constant([rate]), "keep_from_\(i)", &writer)
                let keepTo: String
                if i == pieces - 1 {
                    keepTo = constant([Int64.max])
                } else {
                    let kept = try binary("Sub", bounds[Int(i) + 1], pieceStarts[Int(i)], "keep_length_\(i)", &writer)
                    keepTo = try binary("Mul", kept, constant([rate]), "keep_to_\(i)", &writer)
                }
                let batchFrom = try binary("Mul", batch, constant([i]), "batch_from_\(i)", &writer)
                let batchTo = try binary("Mul", batch, constant([i + 1]), "batch_to_\(i)", &writer)
                let starts = name("starts_\(i)"), ends = name("ends_\(i)")
                try writer.node("Concat", inputs: [batchFrom, keepFrom], output: starts) { (concat: inout ProtoWriter) in concat.axisAttribute(0) }
                try writer.node("Concat", inputs: [batchTo, keepTo], output: ends) { (concat: inout ProtoWriter) in concat.axisAttribute(0) }
                let part = name("kept_\(i)")
                try writer.node("Slice", inputs: [input, starts, ends, constant([0, -1])], output: part)
                kept.append(part)
            }
            try writer.node("Concat", inputs: kept, output: output) { (concat: inout ProtoWriter) in concat.axisAttribute(-1) }
        }

        func writeConstants(into writer: inout ProtoWriter) throws(MalformedProtobuf) {
            for (name, values) in constants.sorted(by: { $0.key < $1.key }) { try writer.int64Tensor(name, values: values) }
        }
    }
}

extension ProtoWriter {
    /// `axis`, the integer attribute of `Concat`.
    fileprivate mutating func axisAttribute(_ axis: Int64) {
        messageField(Field.nodeAttribute) { attribute in
            attribute.stringField(Field.attributeName, "axis")
            attribute.varintField(Field.attributeInteger, axis)
            attribute.varintField(Field.attributeType, Field.attributeTypeInt)
        }
    }
}
