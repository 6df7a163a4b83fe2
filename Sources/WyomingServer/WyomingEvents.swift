import NIOCore
import SpeechCore

/// The events the server writes, as the `wyoming` package spells them.
enum WyomingEvents {
    static func error(code: String, text: String) -> WyomingEvent {
        WyomingEvent("error", data: ["text": .string(text), "code": .string(code)])
    }

    static func error(_ error: SpeechError) -> WyomingEvent {
        Self.error(code: error.code, text: error.clientMessage)
    }

    static func audioStart(rate: Int) -> WyomingEvent {
        WyomingEvent("audio-start", data: ["rate": .int(rate), "width": .int(2), "channels": .int(1), "timestamp": .int(0)])
    }

    static func audioChunk(rate: Int, timestamp: Int, audio: ByteBuffer) -> WyomingEvent {
        WyomingEvent(
            "audio-chunk", data: ["rate": .int(rate), "width": .int(2), "channels": .int(1), "timestamp": .int(timestamp)],
            payload: audio)
    }

    static func audioStop(timestamp: Int) -> WyomingEvent {
        WyomingEvent("audio-stop", data: ["timestamp": .int(timestamp)])
    }

    static let synthesizeStopped = WyomingEvent("synthesize-stopped")
}
