import Foundation

/// JSON request bodies as the routes decode them: Foundation's `JSONDecoder` with the server's
/// hand-written field decoders (`RequestSwitch` for `normalize`, `LenientString` for the seed's
/// ids, compiled in from LarkServer) in a body of the routes' field types. Decoding either
/// succeeds or throws; a switch's value is true, false or an `invalid_option` error.
struct Body: Decodable {
    var text: String
    var voice: String?
    var speaker: LenientString?
    var length_scale: Float?
    var sentence_silence: Double?
    var sample_rate: Int?
    var stream: Bool?
    var normalize: RequestSwitch?
    var uuid: LenientString?
    var created_at: LenientString?
    var SpeechMarkTypes: [String]?
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: count))
    guard let body = try? JSONDecoder().decode(Body.self, from: bytes) else { return 0 }
    _ = try? body.normalize?.value(name: RequestSwitch.normalize)
    _ = body.text.unicodeScalars.count
    return 0
}
