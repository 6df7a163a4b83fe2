import CLarkFFmpeg

/// Turns 16-bit mono PCM, sentence by sentence, into a format's bytes as soon as the codec
/// gives them; `finish()` flushes the codec and writes the container's trailer.
/// One encoder serves one response, from one task at a time.
public protocol AudioEncoder: AnyObject {
    func encode(_ samples: [Int16]) throws(AudioOutputError) -> [UInt8]
    func finish() throws(AudioOutputError) -> [UInt8]
}

/// An encoder for `output`, fed samples at `inputRate`. `streaming`: the bytes go out as they
/// come, so nothing can be rewritten (WAV gets the unknown-length header); otherwise the result
/// is one file with exact sizes in its headers, held in memory until `finish()` (for a file on
/// disk, `AudioFileWriter` writes as it encodes).
public func makeAudioEncoder(output: AudioOutput, inputRate: Int, streaming: Bool) throws(AudioOutputError) -> any AudioEncoder {
    switch output.format {
    case .wav, .pcm:
        return try PCMEncoder(output: output, inputRate: inputRate, streaming: streaming)
    default:
        return try FFmpegEncoder(output: output, inputRate: inputRate, streaming: streaming)
    }
}

/// WAV and raw PCM are written directly (they are a header and the samples); only a rate change
/// goes through libswresample.
final class PCMEncoder: AudioEncoder {
    private let output: AudioOutput
    private let streaming: Bool
    private let resampler: Resampler?
    private var headerWritten = false
    private var kept: [Int16] = []

    init(output: AudioOutput, inputRate: Int, streaming: Bool) throws(AudioOutputError) {
        self.output = output
        self.streaming = streaming
        resampler = output.sampleRate == inputRate
            ? nil : try Resampler(inputRate: inputRate, outputRate: output.sampleRate, format: AV_SAMPLE_FMT_S16)
    }

    func encode(_ samples: [Int16]) throws(AudioOutputError) -> [UInt8] {
        let converted = try resampler.map { resampler throws(AudioOutputError) in try resampler.s16(samples) } ?? samples
        guard streaming || output.format == .pcm else {
            kept += converted
            return []
        }
        return streamHeader() + WAV.pcmBytes(converted)
    }

    func finish() throws(AudioOutputError) -> [UInt8] {
        let tail = try resampler.map { resampler throws(AudioOutputError) in try resampler.s16(nil) } ?? []
        if output.format == .wav, !streaming {
            return WAV.file(samples: kept + tail, sampleRate: output.sampleRate)
        }
        return streamHeader() + WAV.pcmBytes(tail)
    }

    /// A streamed WAV's unknown-length header, before its first bytes; nothing otherwise.
    private func streamHeader() -> [UInt8] {
        guard output.format == .wav, !headerWritten else { return [] }
        headerWritten = true
        return WAV.header(sampleRate: output.sampleRate, sampleCount: nil)
    }
}

/// libswresample from 16-bit mono at one rate to another rate (and sample format).
final class Resampler {
    private var context: OpaquePointer?
    let format: AVSampleFormat

    init(inputRate: Int, outputRate: Int, format: AVSampleFormat) throws(AudioOutputError) {
        guard FFmpegLibraries.available else { throw .encoderFailed(FFmpegLibraries.problem) }
        self.format = format
        var outputLayout = AVChannelLayout()
        var inputLayout = AVChannelLayout()
        ffmpeg.av_channel_layout_default(&outputLayout, 1)
        ffmpeg.av_channel_layout_default(&inputLayout, 1)
        let status = ffmpeg.swr_alloc_set_opts2(
            &context, &outputLayout, format, Int32(outputRate), &inputLayout, AV_SAMPLE_FMT_S16, Int32(inputRate), 0, nil)
        guard status >= 0, let context, ffmpeg.swr_init(context) >= 0 else {
            throw .encoderFailed("could not resample \(inputRate) Hz to \(outputRate) Hz")
        }
    }

    deinit { ffmpeg.swr_free(&context) }

    /// Converts `samples` (nil: flush what the filter still holds) into planar buffers of
    /// `format`, handing them to `body` with their sample count.
    func convert<T>(_ samples: [Int16]?, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, Int) throws(AudioOutputError) -> T) throws(AudioOutputError) -> T {
        let count = samples?.count ?? 0
        let capacity = Int(ffmpeg.swr_get_out_samples(context, Int32(count))) + 32
        var planes: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?
        guard ffmpeg.av_samples_alloc_array_and_samples(&planes, nil, 1, Int32(capacity), format, 0) >= 0, let planes else {
            throw .encoderFailed("out of memory while resampling")
        }
        defer {
            ffmpeg.av_freep(UnsafeMutableRawPointer(planes))
            var array: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>? = planes
            ffmpeg.av_freep(&array)
        }
        let converted: Int32
        if let samples {
            converted = samples.withUnsafeBytes { raw in
                var input: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
                return ffmpeg.swr_convert(context, planes, Int32(capacity), &input, Int32(count))
            }
        } else {
            converted = ffmpeg.swr_convert(context, planes, Int32(capacity), nil, 0)
        }
        guard converted >= 0 else { throw .encoderFailed("resampling failed (\(converted))") }
        return try body(planes, Int(converted))
    }

    /// For 16-bit output: the converted samples as an array.
    func s16(_ samples: [Int16]?) throws(AudioOutputError) -> [Int16] {
        try convert(samples) { planes, count throws(AudioOutputError) in
            guard let plane = planes[0] else { return [] }
            return plane.withMemoryRebound(to: Int16.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
        }
    }
}
