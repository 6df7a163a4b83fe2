import SpeechCore

/// The `info` event's document (`wyoming.info.Info`): one TTS program, Lark, with every
/// installed voice. Voice names are Lark's voice ids, so a client's `synthesize` names them back.
struct WyomingInfo: Encodable {
    struct Attribution: Encodable {
        var name: String
        var url: String
    }

    struct Speaker: Encodable {
        var name: String
    }

    struct Voice: Encodable {
        var name: String
        var description: String?
        var attribution: Attribution
        var installed = true
        var version: String?
        var languages: [String]
        var speakers: [Speaker]?
    }

    struct Program: Encodable {
        var name: String
        var description: String?
        var attribution: Attribution
        var installed = true
        var version: String?
        var voices: [Voice]
        var supports_synthesize_streaming = true
    }

    var asr: [String] = []
    var tts: [Program]
    var handle: [String] = []
    var intent: [String] = []
    var wake: [String] = []
    var mic: [String] = []
    var snd: [String] = []

    static let piper = Attribution(name: "rhasspy", url: "https://github.com/rhasspy/piper")
    static let espeak = Attribution(name: "eSpeak NG", url: "https://github.com/espeak-ng/espeak-ng")

    init(programName: String, version: String, voices: [VoiceInfo]) {
        tts = [
            Program(
                name: programName, description: "Lark: Piper and espeak-ng voices, streamed sentence by sentence",
                attribution: Attribution(name: "Lark", url: ""), version: version, voices: voices.map(Self.voice))
        ]
    }

    static func voice(_ info: VoiceInfo) -> Voice {
        var words = [info.languageName ?? info.languageCode]
        if let quality = info.quality { words.append(quality) }
        if info.engine == .espeakNG { words.append("espeak-ng") }
        return Voice(
            name: info.id, description: "\(info.name) (\(words.joined(separator: ", ")))",
            attribution: info.engine == .piper ? piper : espeak, version: nil, languages: [info.languageCode],
            speakers: info.speakers.isEmpty ? nil : info.speakers.map(Speaker.init))
    }
}
