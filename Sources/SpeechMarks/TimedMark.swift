import SpeechCore

/// A mark placed in a whole request's audio: times in milliseconds from the audio's first
/// sample, text positions in the caller's text.
public struct TimedMark: Sendable, Equatable {
    public var kind: SpeechMark.Kind
    /// Milliseconds from the start of the audio to where the mark starts, and to where it ends.
    public var time: Int
    public var endTime: Int
    /// UTF-8 byte offsets into the caller's text (as Amazon Polly counts them).
    public var bytes: Range<Int>
    /// The same range in Unicode code points.
    public var characters: Range<Int>
    public var value: String

    public init(kind: SpeechMark.Kind, time: Int, endTime: Int, bytes: Range<Int>, characters: Range<Int>, value: String) {
        self.kind = kind
        self.time = time
        self.endTime = endTime
        self.bytes = bytes
        self.characters = characters
        self.value = value
    }
}

/// Turns a request's chunks, in order, into `TimedMark`s over the whole audio.
///
/// Each chunk's marks count samples from that chunk's first sample (sentence silence included),
/// so a mark's time is the audio of every chunk before it plus its own offset. `outputRate`:
/// the rate the audio is delivered at, when it is resampled; each chunk then lasts as many
/// samples at that rate as the resampler makes of it (rounded), which the times follow.
public struct SpeechMarkTimeline: Sendable {
    public let kinds: Set<SpeechMark.Kind>
    private let outputRate: Int?
    private let text: [UInt8]
    /// The code point index of every UTF-8 byte offset of the text (and of its end).
    private let codePoints: [Int]
    /// Seconds of audio before the next chunk.
    private var secondsBefore: Double = 0

    /// `text`: the caller's text, which the chunks' `textRange`s index (in UTF-8 bytes).
    public init(text: String, kinds: Set<SpeechMark.Kind> = Set(SpeechMark.Kind.allCases), outputRate: Int? = nil) {
        self.kinds = kinds
        self.outputRate = outputRate
        self.text = Array(text.utf8)
        var codePoints = [Int](repeating: 0, count: self.text.count + 1)
        var count = 0
        for (offset, byte) in self.text.enumerated() {
            codePoints[offset] = count
            // A code point starts at every byte that is not a continuation byte (10xxxxxx).
            if byte & 0xC0 != 0x80 { count += 1 }
        }
        codePoints[self.text.count] = count
        self.codePoints = codePoints
    }

    /// How long the audio of the chunks added so far lasts, in milliseconds.
    public var elapsedMilliseconds: Int { Int((secondsBefore * 1000).rounded()) }

    /// `chunk`'s marks of the chosen kinds, timed from the start of the whole audio.
    public mutating func add(_ chunk: AudioChunk) -> [TimedMark] {
        let start = secondsBefore
        let rate = Double(chunk.sampleRate)
        let marks = chunk.marks.filter { kinds.contains($0.kind) }.map { mark in
            TimedMark(
                kind: mark.kind,
                time: Self.milliseconds(start + Double(mark.startSample) / rate),
                endTime: Self.milliseconds(start + Double(mark.endSample) / rate),
                bytes: clamped(mark.textRange), characters: characterRange(mark.textRange), value: mark.value)
        }
        if let outputRate, outputRate != chunk.sampleRate {
            let delivered = (Double(chunk.samples.count) * Double(outputRate) / rate).rounded()
            secondsBefore += delivered / Double(outputRate)
        } else {
            secondsBefore += Double(chunk.samples.count) / rate
        }
        return marks
    }

    private static func milliseconds(_ seconds: Double) -> Int { Int((seconds * 1000).rounded()) }

    private func clamped(_ range: Range<Int>) -> Range<Int> {
        let lower = min(max(0, range.lowerBound), text.count)
        return lower..<min(max(lower, range.upperBound), text.count)
    }

    private func characterRange(_ range: Range<Int>) -> Range<Int> {
        let bytes = clamped(range)
        return codePoints[bytes.lowerBound]..<codePoints[bytes.upperBound]
    }
}
