import SpeechCore
import TextNormalization

/// A voice's synthesis of normalized text, presented as the caller's: the voice speaks the
/// normalized words, and every mark it puts on a chunk is mapped back to the caller's text
/// (its UTF-8 range, and for words and sentences the text as the caller wrote it).
enum NormalizedSynthesis {
    static func prepare(
        _ text: String, normalizer: any LanguageNormalizer, voice: any SpeechVoice, options: SynthesisOptions
    ) throws -> PreparedSynthesis {
        let normalized = normalizer.normalize(text)
        guard normalized.text != text else { return try voice.prepare(text, options: options) }
        return try voice.prepare(normalized.text, options: options).mappingChunks(text: text) { chunk in
            remap(chunk, through: normalized)
        }
    }

    /// `chunk` with its marks' ranges (in the normalized text) moved into the original text.
    static func remap(_ chunk: AudioChunk, through normalized: NormalizedText) -> AudioChunk {
        guard !chunk.marks.isEmpty else { return chunk }
        var chunk = chunk
        let original = Array(normalized.original.utf8)
        chunk.marks = chunk.marks.map { mark in
            var mark = mark
            mark.textRange = normalized.originalRange(of: mark.textRange)
            if mark.kind == .word || mark.kind == .sentence, !mark.textRange.isEmpty, mark.textRange.upperBound <= original.count {
                mark.value = String(decoding: original[mark.textRange], as: UTF8.self)
            }
            return mark
        }.mergingWordsOfOneSpan()
        return chunk
    }
}
