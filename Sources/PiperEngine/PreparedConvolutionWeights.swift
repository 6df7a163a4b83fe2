import CLarkKernels
import Foundation
import OnnxGraph

/// DirectConv's weights in the form its kernel reads them on this CPU, made by the kernel's own
/// code (`lark_direct_conv_prepared_weights`), for `PreparedWeightsRewrite` to store in a cache
/// entry in place of W.
enum PreparedConvolutionWeights {
    static func prepare(_ request: PreparedWeightsRewrite.Request) -> PreparedWeightsRewrite.Prepared? {
        guard Int64(request.weights.count) == request.outputChannels * request.inputChannels * request.kernel else { return nil }
        var form: Int64 = 0
        var floats: Int64 = 0
        let prepared = request.weights.withUnsafeBufferPointer { w in
            lark_direct_conv_prepared_weights(
                w.baseAddress, request.outputChannels, request.inputChannels, request.kernel, request.path, request.bf16,
                request.winogradOutputs, request.winogradTaps, &form, &floats)
        }
        guard let prepared else { return nil }
        defer { free(prepared) }
        return PreparedWeightsRewrite.Prepared(form: form, bytes: [UInt8](UnsafeRawBufferPointer(start: prepared, count: Int(floats) * 4)))
    }
}
