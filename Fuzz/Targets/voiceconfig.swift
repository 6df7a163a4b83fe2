import Foundation

/// A Piper voice's `.onnx.json` (`PiperVoiceConfig`, compiled in from PiperEngine): any JSON is a
/// config or an `invalid_voice_config` error, and a config's numbers are usable.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVoiceConfig(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: count))
    guard let root = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] else { return 0 }
    guard let config = try? PiperVoiceConfig.parse(root, path: "fuzz.onnx.json") else { return 0 }
    require(config.sampleRate > 0, "sample rate \(config.sampleRate)")
    _ = config.speakerNames
    return 0
}
