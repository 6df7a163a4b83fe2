/// The floating-point operations one node run does, from the shapes ONNX Runtime's profile
/// records (`SessionProfile`): a multiply-add counts 2. Only the operators that carry a model's
/// arithmetic are counted (convolutions and matrix products); element-wise work, which is
/// bound by memory rather than arithmetic, counts 0.
public enum NodeArithmetic {
    /// Operators computed like ONNX `Conv`: `Y = W ⊛ X`, weights `[Cout, Cin / group, k...]`.
    /// `FusedConv` is ONNX Runtime's Conv with an activation and a sum input; `DirectConv` is
    /// Lark's own kernel (domain `ai.lark`), a Conv with LeakyRelu before and after.
    public static let convolutions: Set<String> = ["Conv", "FusedConv", "DirectConv", "NhwcConv"]
    public static let matrixProducts: Set<String> = ["MatMul", "FusedMatMul", "Gemm", "FusedGemm"]

    /// FLOPs of one run of an `opType` node with these input and output shapes; nil for a
    /// counted operator whose shapes are missing, 0 for an operator not counted.
    public static func flops(opType: String, inputs: [[Int]], outputs: [[Int]]) -> Int? {
        if convolutions.contains(opType) {
            // Each output element is a dot product over Cin / group channels times the kernel:
            // exactly the weight's shape after its first dimension (dilation spreads the taps,
            // it does not add any).
            guard inputs.count >= 2, inputs[1].count >= 2, let output = outputs.first, !output.isEmpty else { return nil }
            return 2 * product(output) * product(inputs[1].dropFirst())
        }
        if opType == "ResidualStack" {
            // Lark's fused HiFi-GAN level (domain `ai.lark`): inputs X, then W [C, C, k] and B per
            // convolution, whose outputs have X's shape; with a post convolution a last PW
            // [1, C, k] and PB, and Y is its one channel. (W may be held prepared as [R, C·k]: only
            // the dimensions after the first are read.)
            guard inputs.count >= 3, let x = inputs.first, x.count >= 2, let output = outputs.first, output.count >= 2 else { return nil }
            let positions = product(output) / max(1, output[1])
            let weights = Array(stride(from: 1, to: inputs.count, by: 2))  // (PB may be absent)
            let post = output[1] != x[1]
            return weights.enumerated().reduce(0) { total, entry in
                let channels = post && entry.offset == weights.count - 1 ? output[1] : x[1]
                return total + 2 * positions * channels * product(inputs[entry.element].dropFirst())
            }
        }
        if opType == "ConvTranspose" {
            // Each input element is scattered to Cout / group channels times the kernel: the
            // weight `[Cin, Cout / group, k...]` after its first dimension.
            guard inputs.count >= 2, inputs[1].count >= 2, !inputs[0].isEmpty else { return nil }
            return 2 * product(inputs[0]) * product(inputs[1].dropFirst())
        }
        if matrixProducts.contains(opType) {
            // Output [..., M, N]; the inner size K is the operand A's other dimension (A may be
            // transposed: [..., M, K] or [..., K, M]).
            guard inputs.count >= 2, let a = inputs.first, !a.isEmpty, let output = outputs.first else { return nil }
            let k: Int
            if a.count == 1 {
                k = a[0]
            } else {
                let m = output.count >= 2 ? output[output.count - 2] : 1
                k = a[a.count - 2] == m ? a[a.count - 1] : a[a.count - 2]
            }
            return 2 * product(output) * k
        }
        return 0
    }

    private static func product<C: Collection>(_ dimensions: C) -> Int where C.Element == Int {
        dimensions.reduce(1, *)
    }
}
