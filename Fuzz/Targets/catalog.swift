import Foundation

/// Piper's `voices.json` (`Catalog`, compiled in from VoiceCatalog): any bytes are a catalog or
/// an `invalid_catalog` error, and looking voices up and listing them never traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCatalog(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: count))
    guard let catalog = try? Catalog(data: bytes) else { return 0 }
    for key in catalog.voices.keys.prefix(20) {
        require(catalog.voice(named: key) != nil, "key '\(key)' not found")
        _ = try? catalog.voices[key]?.voiceFiles()
    }
    _ = catalog.list(language: "en")
    _ = catalog.list()
    return 0
}
