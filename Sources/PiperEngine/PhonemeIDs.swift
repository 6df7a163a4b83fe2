/// Phonemes → model input ids, as Piper 1.8 lays them out: `^ _ (p _)* $`, that is BOS, a pad,
/// each phoneme's ids followed by a pad, then EOS. Phonemes the voice does not know are skipped.
public struct PhonemeIDMapper: Sendable {
    public let map: [String: [Int64]]
    private let begin: [Int64]
    private let pad: [Int64]
    private let end: [Int64]

    public init(map: [String: [Int64]]) {
        self.map = map
        begin = map["^"] ?? []
        pad = map["_"] ?? []
        end = map["$"] ?? []
    }

    public func ids(for phonemes: [String]) -> (ids: [Int64], unknown: [String]) {
        let result = idsWithSpans(for: phonemes)
        return (result.ids, result.unknown)
    }

    /// The ids, and for each phoneme where its ids are among them (with the pad after it;
    /// empty for a phoneme the voice does not know).
    public func idsWithSpans(for phonemes: [String]) -> (ids: [Int64], spans: [Range<Int>], unknown: [String]) {
        var ids = begin + pad
        ids.reserveCapacity(phonemes.count * 2 + 3)
        var spans: [Range<Int>] = []
        spans.reserveCapacity(phonemes.count)
        var unknown: [String] = []
        for phoneme in phonemes {
            guard let phonemeIDs = map[phoneme] else {
                unknown.append(phoneme)
                spans.append(ids.count..<ids.count)
                continue
            }
            let start = ids.count
            ids += phonemeIDs
            ids += pad
            spans.append(start..<ids.count)
        }
        ids += end
        return (ids, spans, unknown)
    }
}

/// Float model output → 16-bit PCM exactly as Piper 1.8 does it: scale so the loudest sample is
/// at full range (all-silent audio stays silent), clip to [-1, 1], multiply by 32767 and truncate.
public enum PiperPCM {
    public static func int16Samples(from audio: [Float]) -> [Int16] {
        var peak: Float = 0
        for sample in audio { peak = max(peak, abs(sample)) }
        guard peak >= 1e-8 else { return [Int16](repeating: 0, count: audio.count) }
        return audio.map { sample in
            let normalized = min(max(sample / peak, -1), 1)
            return Int16(normalized * 32767)
        }
    }
}
