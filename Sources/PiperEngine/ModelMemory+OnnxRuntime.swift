import OnnxRuntime
import SpeechCore

extension SessionConfiguration.MemoryPolicy {
    /// The engine-neutral setting as ONNX Runtime's memory arena policy.
    public init(_ memory: ModelMemory) {
        switch memory {
        case .keep: self = .arena
        case .shrinkAfterRun: self = .shrinkAfterRun
        case .noPool: self = .noArena
        }
    }
}
