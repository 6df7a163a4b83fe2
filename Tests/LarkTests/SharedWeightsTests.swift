import Foundation
@testable import OnnxGraph
import OnnxRuntime
import PiperEngine
import SpeechCore
import Testing

/// What makes a cached voice load fast and a voice's second session cheap: the cached graph
/// without shape annotations (`ShapeAnnotations`), and one copy of a model's weights for all its
/// sessions (`SharedWeights`), each checked against ONNX Runtime itself.
@Suite struct ShapeAnnotationsTests {
    static let input: [InputTensor] = [.float32(name: "X", shape: [1, 2, 5], values: (0..<10).map { Float($0) / 3 - 1 })]

    @Test func annotationsGoAndTheModelComputesTheSame() throws {
        let model = try Self.withValueInfo(TinyModel.conv1D(opset: 13, sharedWeight: true), name: "H")
        let result = try ShapeAnnotations.remove(from: model)
        #expect(result.removedValueInfos == 1)
        #expect(result.unshapedInputsAndOutputs == 2, "X and Y lose their shapes")

        let (_, _, before) = try #require(try GraphSummary.read(model))
        let (_, _, after) = try #require(try GraphSummary.read(result.model))
        #expect(!after.fields.contains { $0.number == Field.graphValueInfo })
        #expect(after.nodes.map(\.1.opType) == before.nodes.map(\.1.opType))
        #expect(after.tensorsByName.keys.sorted() == before.tensorsByName.keys.sorted())
        #expect(after.outputs == ["Y"] && after.declared == ["X", "Y"], "inputs and outputs stay declared")
        // Each input and output keeps its element type (float) and has no shape left.
        for field in after.fields where field.number == Field.graphInput || field.number == Field.graphOutput {
            let type = try #require(try Self.child(2, of: field.payload, in: result.model))
            let tensor = try #require(try Self.child(1, of: type, in: result.model))
            var reader = ProtoReader(result.model, range: tensor)
            let entries = try reader.all()
            #expect(entries.map(\.number) == [1] && entries[0].varint == 1)
        }

        let runtime = try OnnxRuntime.shared.get()
        let expected = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(Self.input)
        let actual = try InferenceSession(model: result.model, configuration: .init(optimization: .basic), runtime: runtime).run(Self.input)
        #expect(expected.count == 10 && actual == expected)

        let again = try ShapeAnnotations.remove(from: result.model)
        #expect(again.removedValueInfos == 0 && again.unshapedInputsAndOutputs == 0 && again.model == result.model)
    }

    /// `model` with a `value_info` entry for `name`: a float of shape [1, 2, 5].
    static func withValueInfo(_ model: [UInt8], name: String) throws -> [UInt8] {
        let (fields, _, summary) = try #require(try GraphSummary.read(model))
        var graph = ProtoWriter()
        for field in summary.fields { graph.copy(field, from: model) }
        try graph.messageField(Field.graphValueInfo) { info in
            info.stringField(1, name)
            try info.messageField(2) { type in
                try type.messageField(1) { tensor in
                    tensor.varintField(1, 1)
                    try tensor.messageField(2) { shape in
                        for size: Int64 in [1, 2, 5] { try shape.messageField(1) { $0.varintField(1, size) } }
                    }
                }
            }
        }
        return GraphSummary.model(model, fields: fields, withGraph: graph.bytes)
    }

    /// The payload of the first length-delimited field `number` of the message in `range`.
    static func child(_ number: Int, of range: Range<Int>, in bytes: [UInt8]) throws -> Range<Int>? {
        var reader = ProtoReader(bytes, range: range)
        while let field = try reader.next() {
            if field.number == number && field.wireType == .lengthDelimited { return field.payload }
        }
        return nil
    }
}

@Suite struct SharedWeightsTests {
    @Test func aModelsWeightsAreFoundByName() throws {
        let model = try TinyModel.conv1D(opset: 13)
        let initializers = try ModelInitializers.read(model)
        #expect(initializers.map(\.name) == ["W", "B"])
        #expect(initializers.map(\.dims) == [[2, 2, 3], [2]])
        #expect(initializers.map(\.dataType) == [1, 1])
        #expect(initializers.map(\.rawData.count) == [48, 8])
    }

    @Test func sessionsOfOneModelShareItsWeightsAndComputeTheSame() throws {
        let model = try TinyModel.conv1D(opset: 13, sharedWeight: true)
        let runtime = try OnnxRuntime.shared.get()
        let weights = try Self.weights(of: model, runtime: runtime)
        #expect(weights.byteCount >= 56)
        let expected = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(ShapeAnnotationsTests.input)
        for threads in [1, 2] {
            let session = try InferenceSession(model: model, configuration: .init(intraOpThreads: threads), runtime: runtime, weights: weights)
            #expect(session.weights === weights)
            #expect(try session.run(ShapeAnnotationsTests.input) == expected)
        }
    }

    /// The shared tensors are what the session computes with, not a copy of the model's own:
    /// weights that differ from the file's give another output.
    @Test func aSessionComputesWithTheSharedTensors() throws {
        let model = try TinyModel.conv1D(opset: 13)
        let runtime = try OnnxRuntime.shared.get()
        let own = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(ShapeAnnotationsTests.input)
        let zeroBias = SharedWeights.Tensor(name: "B", elementType: 1, shape: [2], bytes: ArraySlice([UInt8](repeating: 0, count: 8)))
        let weights = try SharedWeights(tensors: [zeroBias], runtime: runtime)
        let shared = try InferenceSession(model: model, configuration: .init(), runtime: runtime, weights: weights).run(ShapeAnnotationsTests.input)
        // The model's bias is [0.25, -0.5] over two channels of five samples.
        #expect(own.count == 10 && shared.count == 10)
        #expect(zip(own, shared).enumerated().allSatisfy { index, pair in abs(pair.0 - pair.1 - (index < 5 ? 0.25 : -0.5)) < 1e-5 })
    }

    /// A model whose shared weights are stubs (`InitializerStubs`: no bytes, data said to be in an
    /// existing file that is never read) loads with the shared tensors and computes what the
    /// whole model computes; the stubs are no longer weights with bytes of their own.
    @Test func aModelWithStubsForItsSharedWeightsComputesTheSame() throws {
        let model = try TinyModel.conv1D(opset: 13, sharedWeight: true)
        let runtime = try OnnxRuntime.shared.get()
        let weights = try Self.weights(of: model, runtime: runtime)
        let directory = OptimizedVoiceCacheTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("not weights".utf8).write(to: URL(fileURLWithPath: directory + "/voice.onnx"))
        let stubbed = try InitializerStubs.apply(to: model, names: weights.names, location: "voice.onnx")
        #expect(weights.names == ["W", "B"])
        #expect(try ModelInitializers.read(stubbed).isEmpty, "no initializer keeps its bytes")
        let (_, _, graph) = try #require(try GraphSummary.read(stubbed))
        #expect(graph.tensorsByName.keys.sorted() == ["B", "W"])
        #expect(graph.tensorsByName.values.allSatisfy { $0.isExternal && $0.rawData == nil && !$0.dims.isEmpty }, "name, type and shape, no bytes")
        let expected = try InferenceSession(model: model, configuration: .init(), runtime: runtime).run(ShapeAnnotationsTests.input)
        for threads in [1, 2] {
            let session = try InferenceSession(
                model: stubbed, configuration: .init(intraOpThreads: threads), runtime: runtime, weights: weights, externalDataFolder: directory)
            #expect(try session.run(ShapeAnnotationsTests.input) == expected)
        }
    }

    /// A voice of two sessions (wide and narrow) built into the cache, then loaded from it: both
    /// times its weights are shared, and it speaks what a voice of one session speaks.
    @Test func aVoiceOfTwoSessionsSpeaksAsAVoiceOfOne() async throws {
        let directory = OptimizedVoiceCacheTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = OptimizedVoiceCache(directory: directory)
        let source = PiperVoiceSource(id: "en_US-joe-medium", modelPath: Checkout.joeModel)
        let voices = try await onThread {
            let built = try PiperVoice(source: source, concurrency: 2, configuration: .init(intraOpThreads: 2), cache: cache)
            let cached = try PiperVoice(source: source, concurrency: 2, configuration: .init(intraOpThreads: 2), cache: cache)
            let single = try PiperVoice(source: source, cache: cache)
            return (built, cached, single)
        }
        let expected = try await OptimizedVoiceCacheTests.samples(voices.2)
        let built = try await OptimizedVoiceCacheTests.samples(voices.0)
        let cached = try await OptimizedVoiceCacheTests.samples(voices.1)
        #expect(built == cached, "the same sessions from the build and from the entry")
        #expect(built.count == expected.count && expected.count > 10_000)
        let largest = zip(built, expected).map { abs(Int($0) - Int($1)) }.max() ?? .max
        #expect(largest <= 2, "largest difference \(largest) (two threads against one)")
    }

    static func weights(of model: [UInt8], runtime: OnnxRuntime) throws -> SharedWeights {
        try SharedWeights(
            tensors: ModelInitializers.read(model).map { .init(name: $0.name, elementType: $0.dataType, shape: $0.dims, bytes: model[$0.rawData]) },
            runtime: runtime)
    }
}
