import CLarkKernels

/// The arithmetic a Piper voice's convolutions run in.
/// - `fp32`: the model's own precision (the default; the rewritten graph stays within 1e-3 of
///   the original at zero noise).
/// - `bf16`: the convolutions Lark's DirectConv kernel runs faster than ONNX Runtime multiply in
///   bfloat16 with FP32 sums (AVX512-BF16 `vdpbf16ps`, twice the multiply-adds per instruction);
///   everything else stays FP32. Only on CPUs with AVX512-BF16: elsewhere the option is refused
///   (`unsupportedReason`), never silently changed.
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16

    /// Whether this CPU can run DirectConv's bf16 path.
    public static var bf16Supported: Bool { lark_bf16_supported() != 0 }

    /// Why this precision cannot run here, or nil when it can.
    public var unsupportedReason: String? {
        switch self {
        case .fp32: return nil
        case .bf16:
            return Self.bf16Supported
                ? nil : "precision bf16 needs a CPU with AVX512-BF16 (avx512_bf16), which this one lacks; use fp32"
        }
    }
}
