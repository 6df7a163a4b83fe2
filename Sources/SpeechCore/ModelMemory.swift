/// What a model engine does with the working memory of a run once it is over: the engine-neutral
/// setting (`--memory`), which each engine maps to its own (Piper voices: ONNX Runtime's arena).
public enum ModelMemory: String, Sendable, Equatable, CaseIterable {
    /// Keep what the memory pool has grown to: fastest, but memory stays at its worst case.
    case keep = "arena"
    /// Give the pool's free memory back after every run.
    case shrinkAfterRun = "shrink"
    /// No pool: every buffer is allocated and freed on its own.
    case noPool = "none"
}
