import COnnxRuntime
import Foundation

/// A model's weights held once for every session of that model (a voice's wide and narrow
/// sessions), instead of once per session.
///
/// ONNX Runtime copies a model's initializers into each session it creates, and prepacks some of
/// them (`ConvTranspose` and `MatMul` weights) per session too. Sessions created with the same
/// `SharedWeights` use its tensors in place (`AddInitializer`) and put their prepacked forms in its
/// one container (`CreateSession…WithPrepackedWeightsContainer`), so a second session of a voice
/// costs its graph and kernels, not another copy of the weights.
///
/// The only owner of the tensors' memory, their `OrtValue`s and the container; every session that
/// uses them keeps a reference, so they outlive those sessions. `@unchecked Sendable`: immutable
/// after `init`, and ONNX Runtime only reads the tensors.
public final class SharedWeights: @unchecked Sendable {
    /// One initializer: its name, ONNX element type (`TensorProto.DataType`), dimensions and bytes
    /// (little-endian, as ONNX's `raw_data` stores them).
    public struct Tensor {
        public var name: String
        public var elementType: Int
        public var shape: [Int64]
        public var bytes: ArraySlice<UInt8>

        public init(name: String, elementType: Int, shape: [Int64], bytes: ArraySlice<UInt8>) {
            self.name = name
            self.elementType = elementType
            self.shape = shape
            self.bytes = bytes
        }
    }

    let runtime: OnnxRuntime
    let container: OpaquePointer
    let values: [(name: String, value: OpaquePointer)]
    private let storage: UnsafeMutableRawPointer?
    /// Bytes of weights held.
    public let byteCount: Int
    /// The initializers held, by name.
    public var names: Set<String> { Set(values.map(\.name)) }

    /// Copies `tensors` into one block of memory of its own (each tensor aligned to 64 bytes, as
    /// ONNX Runtime's kernels prefer). Tensors of no bytes are left to the model.
    public init(tensors: [Tensor], runtime: OnnxRuntime) throws(OnnxRuntimeError) {
        self.runtime = runtime
        let api = runtime.api.pointee
        let kept = tensors.filter { !$0.bytes.isEmpty }
        let alignment = 64
        var offsets: [Int] = []
        var total = 0
        for tensor in kept {
            offsets.append(total)
            total += (tensor.bytes.count + alignment - 1) / alignment * alignment
        }
        var block: UnsafeMutableRawPointer?
        if total > 0, posix_memalign(&block, alignment, total) != 0 {
            throw OnnxRuntimeError(code: -1, message: "could not allocate \(total) bytes for a model's shared weights")
        }
        storage = block
        byteCount = total
        var created: [(name: String, value: OpaquePointer)] = []
        var container: OpaquePointer?
        do {
            try runtime.check(api.CreatePrepackedWeightsContainer(&container))
            for (offset, tensor) in zip(offsets, kept) {
                let destination = block! + offset
                tensor.bytes.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                var value: OpaquePointer?
                let status = tensor.shape.withUnsafeBufferPointer { shape in
                    api.CreateTensorWithDataAsOrtValue(
                        runtime.cpuMemory, destination, tensor.bytes.count, shape.baseAddress, shape.count,
                        LarkOrtElementType(rawValue: UInt32(tensor.elementType)), &value)
                }
                try runtime.check(status)
                created.append((tensor.name, value!))
            }
        } catch {
            created.forEach { api.ReleaseValue($0.value) }
            if let container { api.ReleasePrepackedWeightsContainer(container) }
            free(block)
            throw error
        }
        self.container = container!
        values = created
    }

    /// Makes sessions created with `options` use these tensors for the initializers of the same names.
    func add(to options: OpaquePointer?) throws(OnnxRuntimeError) {
        for (name, value) in values {
            try runtime.check(runtime.api.pointee.AddInitializer(options, name, value))
        }
    }

    deinit {
        let api = runtime.api.pointee
        values.forEach { api.ReleaseValue($0.value) }
        api.ReleasePrepackedWeightsContainer(container)
        free(storage)
    }
}
