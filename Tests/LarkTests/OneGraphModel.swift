@testable import OnnxGraph

/// A model around one graph that `body` writes: the given inputs and output (float tensors),
/// ONNX operator set 13 and Lark's `ai.lark` domain. For tests that run a few nodes alone.
enum OneGraphModel {
    static func make(
        inputs: [(name: String, dims: [Int64])], output: (name: String, dims: [Int64]),
        _ body: (inout ProtoWriter) throws(MalformedProtobuf) -> Void
    ) throws -> [UInt8] {
        var graph = ProtoWriter()
        try body(&graph)
        graph.stringField(2, "test_graph")
        for input in inputs { graph.tensorValueInfo(Field.graphInput, name: input.name, dims: input.dims) }
        graph.tensorValueInfo(Field.graphOutput, name: output.name, dims: output.dims)
        var model = ProtoWriter()
        model.varintField(1, 8)  // ir_version
        model.opsetImport(domain: "", version: 13)
        model.opsetImport(domain: DirectConvolutionRewrite.domain, version: 1)
        model.bytesField(Field.modelGraph, graph.bytes)
        return model.bytes
    }
}
