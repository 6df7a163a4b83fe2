import Foundation
import Phonemizer
import SpeechCore

/// A Piper voice's `.onnx.json`: everything fixed per voice (per-request settings live in
/// `SynthesisOptions`). Field names follow Piper's config files.
public struct PiperVoiceConfig: Sendable, Equatable {
    public var sampleRate: Int
    public var quality: String?
    public var espeakVoice: String
    public var phonemeType: PhonemeType
    public var phonemeIDMap: [String: [Int64]]
    public var numSpeakers: Int
    public var speakerIDMap: [String: Int]
    public var defaults: SynthesisDefaults
    public var vowelClusters: [[String]]
    public var languageCode: String?
    public var languageName: String?
    public var dataset: String?

    /// Speaker names ordered by id (empty for single-speaker voices).
    public var speakerNames: [String] {
        speakerIDMap.sorted { $0.value < $1.value }.map(\.key)
    }

    /// Reads and checks a config file; every problem names the file and the field.
    public static func load(path: String) throws(SpeechError) -> PiperVoiceConfig {
        guard FileManager.default.fileExists(atPath: path) else { throw .voiceFileMissing(path: path) }
        let object: Any
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw .invalidVoiceConfig(path: path, reason: "not valid JSON (\(Self.describe(error)))")
        }
        guard let root = object as? [String: Any] else {
            throw .invalidVoiceConfig(path: path, reason: "the top level is not a JSON object")
        }
        return try parse(root, path: path)
    }

    static func parse(_ root: [String: Any], path: String) throws(SpeechError) -> PiperVoiceConfig {
        func fail(_ reason: String) -> SpeechError { .invalidVoiceConfig(path: path, reason: reason) }

        let audio = root["audio"] as? [String: Any]
        guard let sampleRate = (audio?["sample_rate"] as? NSNumber)?.intValue, sampleRate > 0 else {
            throw fail("missing or invalid audio.sample_rate")
        }
        guard let rawMap = root["phoneme_id_map"] as? [String: Any], !rawMap.isEmpty else {
            throw fail("missing phoneme_id_map (the phoneme → id table every Piper voice needs)")
        }
        var idMap: [String: [Int64]] = [:]
        for (phoneme, value) in rawMap {
            guard let ids = value as? [NSNumber], !ids.isEmpty else {
                throw fail("phoneme_id_map entry '\(phoneme)' is not a list of ids")
            }
            idMap[phoneme] = ids.map(\.int64Value)
        }
        for required in ["^", "_", "$"] where idMap[required] == nil {
            throw fail("phoneme_id_map has no '\(required)' (begin, pad and end markers are required)")
        }
        let typeName = root["phoneme_type"] as? String ?? "espeak"
        guard let phonemeType = PhonemeType(rawValue: typeName) else {
            throw fail("phoneme_type '\(typeName)' is not supported (supported: espeak, text)")
        }
        let espeak = root["espeak"] as? [String: Any]
        let espeakVoice = espeak?["voice"] as? String ?? ""
        if phonemeType == .espeak, espeakVoice.isEmpty {
            throw fail("missing espeak.voice (the espeak-ng language, such as en-us)")
        }
        let numSpeakers = (root["num_speakers"] as? NSNumber)?.intValue ?? 1
        guard numSpeakers >= 1 else { throw fail("num_speakers must be at least 1") }
        var speakerIDMap: [String: Int] = [:]
        for (name, value) in root["speaker_id_map"] as? [String: Any] ?? [:] {
            guard let id = (value as? NSNumber)?.intValue else { throw fail("speaker_id_map entry '\(name)' is not a number") }
            speakerIDMap[name] = id
        }
        let inference = root["inference"] as? [String: Any] ?? [:]
        func float(_ key: String, _ fallback: Float) -> Float {
            (inference[key] as? NSNumber)?.floatValue ?? fallback
        }
        let defaults = SynthesisDefaults(
            lengthScale: float("length_scale", 1), noiseScale: float("noise_scale", 0.667), noiseW: float("noise_w", 0.8),
            speakerID: (root["default_speaker_id"] as? NSNumber)?.intValue ?? 0)
        let clusters = (root["vowel_clusters"] as? [[String]]) ?? []
        let language = root["language"] as? [String: Any]
        var languageName = language?["name_english"] as? String
        if let name = languageName, let country = language?["country_english"] as? String {
            languageName = "\(name) (\(country))"
        }
        return PiperVoiceConfig(
            sampleRate: sampleRate, quality: audio?["quality"] as? String, espeakVoice: espeakVoice,
            phonemeType: phonemeType, phonemeIDMap: idMap, numSpeakers: numSpeakers, speakerIDMap: speakerIDMap,
            defaults: defaults, vowelClusters: clusters, languageCode: language?["code"] as? String,
            languageName: languageName, dataset: root["dataset"] as? String)
    }

    private static func describe(_ error: Error) -> String {
        (error as NSError).localizedDescription
    }
}
