import CLarkFFmpeg

/// The compressed formats (and G.711), through Debian's FFmpeg libraries: libswresample converts
/// to the codec's rate and sample format, an `AVAudioFifo` cuts codec-sized frames, libavcodec
/// encodes and libavformat writes the container either into memory (`ByteSink`), from which
/// each call takes what is ready, or into a file (`FileOutput`), where the calls return nothing.
final class FFmpegEncoder: AudioEncoder {
    /// Where libavformat writes.
    enum Destination {
        /// Memory: handed out after every call (streaming) or in one piece at the end.
        case memory(ByteSink)
        /// A seekable file, which the caller closes after `finish()`.
        case file(FileOutput)
    }

    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    /// The custom in-memory output this encoder owns (nil when it writes into a file).
    private var io: UnsafeMutablePointer<AVIOContext>?
    private var fifo: OpaquePointer?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private let resampler: Resampler
    private let sink: ByteSink?
    /// Kept alive while libavformat writes into its context.
    private let file: FileOutput?
    private let frameSize: Int
    private let sendsShortLastFrame: Bool
    private var nextPTS: Int64 = 0
    private var finished = false
    private let streaming: Bool

    /// libavcodec encoder and libavformat muxer names for each format.
    private static func names(_ format: AudioFormat) -> (codec: String, muxer: String) {
        switch format {
        case .mp3: return ("libmp3lame", "mp3")
        case .oggVorbis: return ("libvorbis", "ogg")
        case .oggOpus: return ("libopus", "ogg")
        case .flac: return ("flac", "flac")
        case .aac: return ("aac", "adts")
        case .mulaw: return ("pcm_mulaw", "wav")
        case .mulawRaw: return ("pcm_mulaw", "mulaw")
        case .alaw: return ("pcm_alaw", "wav")
        case .alawRaw: return ("pcm_alaw", "alaw")
        case .wav, .pcm: return ("pcm_s16le", "wav")
        }
    }

    /// FFmpeg's own log would print encoder statistics on the server's stderr.
    private static let quietLogs: Void = ffmpeg.av_log_set_level(AV_LOG_ERROR)

    /// Bytes in memory: streamed (nothing rewritten) or a whole file with exact sizes.
    convenience init(output: AudioOutput, inputRate: Int, streaming: Bool) throws(AudioOutputError) {
        try self.init(output: output, inputRate: inputRate, destination: .memory(ByteSink(seekable: !streaming)))
    }

    /// Bytes written into `file` (seekable, so headers get exact sizes).
    convenience init(output: AudioOutput, inputRate: Int, file: FileOutput) throws(AudioOutputError) {
        try self.init(output: output, inputRate: inputRate, destination: .file(file))
    }

    private init(output: AudioOutput, inputRate: Int, destination: Destination) throws(AudioOutputError) {
        guard FFmpegLibraries.available else { throw .encoderFailed(FFmpegLibraries.problem) }
        _ = Self.quietLogs
        let (codecName, muxerName) = Self.names(output.format)
        switch destination {
        case .memory(let sink):
            self.sink = sink
            file = nil
            streaming = !sink.seekable
        case .file(let file):
            sink = nil
            self.file = file
            streaming = false
        }
        guard let encoder = ffmpeg.avcodec_find_encoder_by_name(codecName) else {
            throw .encoderFailed("this FFmpeg has no \(codecName) encoder")
        }
        guard ffmpeg.avformat_alloc_output_context2(&format, ffmpeg.av_guess_format(muxerName, nil, nil), nil, nil) >= 0, let format else {
            throw .encoderFailed("this FFmpeg has no \(muxerName) muxer")
        }
        if let file {
            format.pointee.pb = file.context
        } else if let sink {
            // Custom output: FFmpeg writes into `sink` through these callbacks.
            let bufferSize = 4096
            guard let buffer = ffmpeg.av_malloc(bufferSize) else { throw .encoderFailed("out of memory") }
            io = ffmpeg.avio_alloc_context(
                buffer.assumingMemoryBound(to: UInt8.self), Int32(bufferSize), 1, Unmanaged.passUnretained(sink).toOpaque(),
                nil, { opaque, data, size in
                    guard let opaque, let data else { return -1 }
                    Unmanaged<ByteSink>.fromOpaque(opaque).takeUnretainedValue().write(UnsafeBufferPointer(start: data, count: Int(size)))
                    return size
                }, streaming ? nil : { opaque, offset, whence in
                    guard let opaque else { return -1 }
                    return Unmanaged<ByteSink>.fromOpaque(opaque).takeUnretainedValue().seek(offset, whence: whence)
                })
            guard let io else { ffmpeg.av_free(buffer); throw .encoderFailed("out of memory") }
            format.pointee.pb = io
            format.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        }

        codec = ffmpeg.avcodec_alloc_context3(encoder)
        guard let codec else { throw .encoderFailed("out of memory") }
        // The encoder's first (preferred) sample format.
        let sampleFormat = encoder.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_S16
        codec.pointee.sample_fmt = sampleFormat
        codec.pointee.sample_rate = Int32(output.sampleRate)
        ffmpeg.av_channel_layout_default(&codec.pointee.ch_layout, 1)
        codec.pointee.time_base = AVRational(num: 1, den: Int32(output.sampleRate))
        if let bitrate = output.bitrate {
            codec.pointee.bit_rate = Int64(bitrate)
        } else if output.format == .oggVorbis {
            // Vorbis's bitrate limits depend on the rate; its quality scale works at every rate.
            codec.pointee.flags |= AV_CODEC_FLAG_QSCALE
            codec.pointee.global_quality = 4 * FF_QP2LAMBDA
        }
        if format.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            codec.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        // Encoding must stay a small share of synthesis (target 5%): the cheaper modes of the two
        // costliest encoders (measured with bench/formats: their defaults cost 18% each).
        var codecOptions: OpaquePointer?
        defer { ffmpeg.av_dict_free(&codecOptions) }
        switch output.format {
        case .aac: _ = ffmpeg.av_dict_set(&codecOptions, "aac_coder", "fast", 0)
        case .oggOpus: codec.pointee.compression_level = 3  // libopus complexity 10 → 3: 18% → 3.3%
        default: break
        }
        let opened = ffmpeg.avcodec_open2(codec, encoder, &codecOptions)
        guard opened >= 0 else {
            throw .unsupportedSettings(
                "\(codecName) cannot encode mono at \(output.sampleRate) Hz" + (output.bitrate.map { " and \($0) b/s" } ?? "")
                    + " (\(Self.describe(opened)))")
        }

        guard let stream = ffmpeg.avformat_new_stream(format, nil) else { throw .encoderFailed("out of memory") }
        try Self.check(ffmpeg.avcodec_parameters_from_context(stream.pointee.codecpar, codec), "configuring the stream")
        stream.pointee.time_base = codec.pointee.time_base
        try Self.check(ffmpeg.avformat_write_header(format, nil), "writing the \(muxerName) header")

        resampler = try Resampler(inputRate: inputRate, outputRate: output.sampleRate, format: sampleFormat)
        frameSize = codec.pointee.frame_size > 0 ? Int(codec.pointee.frame_size) : 1024
        let capabilities = Int32(encoder.pointee.capabilities)
        sendsShortLastFrame = capabilities & (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0
            || codec.pointee.frame_size == 0
        fifo = ffmpeg.av_audio_fifo_alloc(sampleFormat, 1, Int32(frameSize * 4))
        frame = ffmpeg.av_frame_alloc()
        packet = ffmpeg.av_packet_alloc()
        guard fifo != nil, frame != nil, packet != nil else { throw .encoderFailed("out of memory") }
    }

    deinit {
        ffmpeg.av_packet_free(&packet)
        ffmpeg.av_frame_free(&frame)
        ffmpeg.av_audio_fifo_free(fifo)
        ffmpeg.avcodec_free_context(&codec)
        // The file's context belongs to its `FileOutput`: libavformat must not keep it.
        format?.pointee.pb = nil
        if let io {
            ffmpeg.av_freep(&io.pointee.buffer)
            var context: UnsafeMutablePointer<AVIOContext>? = io
            ffmpeg.avio_context_free(&context)
        }
        ffmpeg.avformat_free_context(format)
    }

    func encode(_ samples: [Int16]) throws(AudioOutputError) -> [UInt8] {
        try resampler.convert(samples) { planes, count throws(AudioOutputError) in try queue(planes, count) }
        while ffmpeg.av_audio_fifo_size(fifo) >= Int32(frameSize) {
            try sendFrame(samples: frameSize)
        }
        if streaming, let format, format.pointee.oformat.pointee.flags & AVFMT_ALLOW_FLUSH != 0 {
            // Muxers that gather packets (Ogg pages) hand out what they hold: each sentence
            // reaches the client as soon as it is encoded.
            _ = ffmpeg.av_write_frame(format, nil)
        }
        guard let sink else { return [] }
        ffmpeg.avio_flush(io)
        return sink.takeReady()
    }

    func finish() throws(AudioOutputError) -> [UInt8] {
        guard !finished else { return [] }
        finished = true
        try resampler.convert(nil) { planes, count throws(AudioOutputError) in try queue(planes, count) }
        while ffmpeg.av_audio_fifo_size(fifo) >= Int32(frameSize) {
            try sendFrame(samples: frameSize)
        }
        let remaining = Int(ffmpeg.av_audio_fifo_size(fifo))
        if remaining > 0 {
            // Codecs with fixed frames get the last one padded with silence.
            try sendFrame(samples: remaining, padTo: sendsShortLastFrame ? remaining : frameSize)
        }
        try drain(sending: nil)
        try Self.check(ffmpeg.av_write_trailer(format), "writing the trailer")
        guard let sink else { return [] }
        ffmpeg.avio_flush(io)
        return sink.takeAll()
    }

    private func queue(_ planes: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, _ count: Int) throws(AudioOutputError) {
        guard count > 0 else { return }
        let written = planes.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 1) {
            ffmpeg.av_audio_fifo_write(fifo, $0, Int32(count))
        }
        guard written == Int32(count) else { throw .encoderFailed("could not buffer audio") }
    }

    private func sendFrame(samples: Int, padTo size: Int? = nil) throws(AudioOutputError) {
        guard let frame, let codec else { return }
        let frameSamples = size ?? samples
        ffmpeg.av_frame_unref(frame)
        frame.pointee.nb_samples = Int32(frameSamples)
        frame.pointee.format = codec.pointee.sample_fmt.rawValue
        frame.pointee.sample_rate = codec.pointee.sample_rate
        try Self.check(ffmpeg.av_channel_layout_copy(&frame.pointee.ch_layout, &codec.pointee.ch_layout), "preparing a frame")
        try Self.check(ffmpeg.av_frame_get_buffer(frame, 0), "allocating a frame")
        let read = withUnsafeMutablePointer(to: &frame.pointee.data) { data in
            data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) { planes in
                if frameSamples > samples {
                    _ = ffmpeg.av_samples_set_silence(
                        UnsafeMutableRawPointer(planes).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                        0, Int32(frameSamples), 1, codec.pointee.sample_fmt)
                }
                return ffmpeg.av_audio_fifo_read(fifo, planes, Int32(samples))
            }
        }
        guard read == Int32(samples) else { throw .encoderFailed("could not read buffered audio") }
        frame.pointee.pts = nextPTS
        nextPTS += Int64(frameSamples)
        try drain(sending: frame)
    }

    /// Sends a frame (nil: end of stream) and writes every packet the encoder has ready.
    private func drain(sending frame: UnsafeMutablePointer<AVFrame>?) throws(AudioOutputError) {
        guard let codec, let packet, let format else { return }
        try Self.check(ffmpeg.avcodec_send_frame(codec, frame), "encoding")
        while true {
            let status = ffmpeg.avcodec_receive_packet(codec, packet)
            if status == lark_averror_eagain() || status == lark_averror_eof() { return }
            try Self.check(status, "encoding")
            let stream = format.pointee.streams[0]!
            ffmpeg.av_packet_rescale_ts(packet, codec.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = 0
            let written = ffmpeg.av_write_frame(format, packet)
            ffmpeg.av_packet_unref(packet)
            try Self.check(written, "writing a packet")
        }
    }

    private static func check(_ status: Int32, _ action: String) throws(AudioOutputError) {
        guard status < 0 else { return }
        throw .encoderFailed("\(action): \(describe(status))")
    }

    private static func describe(_ status: Int32) -> String {
        FFmpegStatus.describe(status)
    }
}

/// Where libavformat's output lands. Streaming: an append-only queue drained after every call.
/// Whole file: a seekable buffer, so muxers can go back and write exact sizes.
final class ByteSink {
    private var bytes: [UInt8] = []
    private var position = 0
    /// Stream offset of `bytes[0]` (bytes before it were already handed out).
    private var base = 0
    let seekable: Bool

    init(seekable: Bool) {
        self.seekable = seekable
    }

    func write(_ data: UnsafeBufferPointer<UInt8>) {
        let start = position - base
        let overlap = max(0, min(data.count, bytes.count - start))
        if overlap > 0 {
            bytes.replaceSubrange(start..<(start + overlap), with: data[0..<overlap])
        }
        bytes.append(contentsOf: data[overlap...])
        position += data.count
    }

    func seek(_ offset: Int64, whence: Int32) -> Int64 {
        if whence & lark_avseek_size() != 0 { return Int64(base + bytes.count) }
        let target: Int
        switch whence & 0xFF {
        case SEEK_SET: target = Int(offset)
        case SEEK_CUR: target = position + Int(offset)
        case SEEK_END: target = base + bytes.count + Int(offset)
        default: return -1
        }
        guard target >= base, target <= base + bytes.count else { return -1 }
        position = target
        return Int64(target)
    }

    /// Streaming: what has been written since the last call. Whole file: nothing until the end.
    func takeReady() -> [UInt8] {
        seekable ? [] : takeAll()
    }

    func takeAll() -> [UInt8] {
        defer {
            base += bytes.count
            bytes.removeAll(keepingCapacity: true)
        }
        return bytes
    }
}
