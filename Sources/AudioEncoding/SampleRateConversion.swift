import CLarkFFmpeg

/// Whole pieces of 16-bit mono audio from one rate to another, through libswresample (for
/// audio that joins a stream at another rate: an SSML `<voice>` whose voice speaks at another rate).
public enum SampleRateConversion {
    /// `samples` at `outputRate`, the filter flushed (so the piece keeps its length, in time).
    public static func convert(_ samples: [Int16], from inputRate: Int, to outputRate: Int) throws(AudioOutputError) -> [Int16] {
        guard inputRate != outputRate, !samples.isEmpty else { return samples }
        let resampler = try Resampler(inputRate: inputRate, outputRate: outputRate, format: AV_SAMPLE_FMT_S16)
        return try resampler.s16(samples) + resampler.s16(nil)
    }
}
