import Foundation
import Logging
import Testing

@testable import AudioStorage

@Suite struct AudioStorageLocalTests {
    static let invalidKeys = [
        "", "/etc/passwd", "../x", "a/../b", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/", "a\\b", "..\\x",
        "a\u{0}b", "a\nb", String(repeating: "k", count: 1025),
    ]
    static let validKeys = [
        "jobs/ID.mp3", "wav_files/member/uuid_2024-01-01_voice.wav", "a", "..a", "a..", ".hidden/x", "a b/c+d$.wav",
        "été/ключ.ogg",
    ]

    @Test(arguments: invalidKeys) func invalidKeysAreRefused(key: String) async throws {
        #expect(ObjectKey.problem(with: key) != nil)
        let store = LocalDirectoryStore(root: URL(fileURLWithPath: "/tmp/lark-never-created"))
        await #expect(throws: StorageError.invalidKey(key)) { try await store.exists(key: key) }
        await #expect(throws: StorageError.invalidKey(key)) { try await store.delete(key: key) }
        await #expect(throws: StorageError.invalidKey(key)) {
            try await store.put(key: key, file: URL(fileURLWithPath: "/dev/null"), contentType: "audio/wav")
        }
        await #expect(throws: StorageError.invalidKey(key)) { try await store.location(of: key, expiresIn: .seconds(60)) }
        #expect(store.file(forKey: key) == nil)
        #expect("\(StorageError.invalidKey(key))".hasPrefix("invalid object key"))
    }

    @Test(arguments: validKeys) func validKeysAreAccepted(key: String) {
        #expect(ObjectKey.problem(with: key) == nil)
    }

    @Test func putExistsLocateDelete() async throws {
        let root = try TemporaryDirectory()
        let store = LocalDirectoryStore(root: root.url.appending(path: "store"))
        let source = root.url.appending(path: "source.wav")
        let bytes = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: source)
        let key = "wav_files/member/uuid_2024-01-01_voice.wav"

        #expect(try await store.exists(key: key) == false)
        #expect(store.file(forKey: key) == nil)
        try await store.put(key: key, file: source, contentType: "audio/wav")
        #expect(try await store.exists(key: key))
        let path = root.url.appending(path: "store/wav_files/member/uuid_2024-01-01_voice.wav").standardizedFileURL.path
        #expect(try await store.location(of: key, expiresIn: .seconds(60)) == .localFile(path: path))
        #expect(store.file(forKey: key)?.path == path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        // Nothing but the object is left in its directory (the temporary file was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url.path + "/store/wav_files/member") == ["uuid_2024-01-01_voice.wav"])

        // A second put replaces the object whole.
        try Data("short".utf8).write(to: source)
        try await store.put(key: key, file: source, contentType: "audio/wav")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("short".utf8))

        try await store.delete(key: key)
        #expect(try await store.exists(key: key) == false)
        try await store.delete(key: key)  // absent: no error
        try await store.shutdown()
    }

    @Test func failedPutLeavesNothing() async throws {
        let root = try TemporaryDirectory()
        let store = LocalDirectoryStore(root: root.url)
        let missing = root.url.appending(path: "missing.wav")
        do {
            try await store.put(key: "jobs/x.wav", file: missing, contentType: "audio/wav")
            Issue.record("put of a missing file succeeded")
        } catch let error as StorageError {
            guard case .fileSystem(let path, _) = error else { throw error }
            #expect(path == missing.path)
            #expect("\(error)".contains("No such file"))
        }
        #expect(try await store.exists(key: "jobs/x.wav") == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url.path + "/jobs") == [])
    }

    @Test func filesOutsideTheRootAreNotServed() async throws {
        let root = try TemporaryDirectory()
        let store = LocalDirectoryStore(root: root.url.appending(path: "store"))
        try FileManager.default.createDirectory(at: store.root.appending(path: "jobs"), withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: root.url.appending(path: "outside.txt"))
        try FileManager.default.createSymbolicLink(
            atPath: store.root.path + "/jobs/link.txt", withDestinationPath: root.url.path + "/outside.txt")
        try FileManager.default.createSymbolicLink(atPath: store.root.path + "/up", withDestinationPath: root.url.path)
        #expect(store.file(forKey: "jobs/link.txt") == nil)
        #expect(store.file(forKey: "up/outside.txt") == nil)
        #expect(store.file(forKey: "jobs") == nil)  // a directory is not an object
        #expect(store.file(forKey: "../outside.txt") == nil)
    }
}

@Suite struct AudioStorageConfigurationTests {
    static let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "SECRET", sessionToken: "")

    static func directory(_ spec: String) throws -> String? {
        let configuration = try StorageConfiguration.parse(
            spec, s3Endpoint: nil, s3Region: "eu-west-1", addressing: nil, credentials: nil)
        guard case .localDirectory(let url) = configuration.backend else { return nil }
        return url.path
    }

    @Test func localDirectories() throws {
        #expect(try Self.directory("/var/lib/lark/") == "/var/lib/lark")
        #expect(try Self.directory("file:///var/lib/lark") == "/var/lib/lark")
        #expect(try Self.directory("file://localhost/var/lib/x/../lark") == "/var/lib/lark")
        #expect(try Self.directory("out/audio") == FileManager.default.currentDirectoryPath + "/out/audio")
    }

    @Test func awsDefaults() throws {
        let configuration = try StorageConfiguration.parse(
            "s3://lark-audio/jobs/v1/", s3Endpoint: nil, s3Region: nil, addressing: nil, credentials: Self.credentials)
        guard case .s3(let s3) = configuration.backend else { Issue.record("not s3"); return }
        #expect(s3.bucket == "lark-audio")
        #expect(s3.prefix == "jobs/v1")
        #expect(s3.endpoint.absoluteString == "https://s3.us-east-1.amazonaws.com")
        #expect(s3.region == "us-east-1")
        #expect(s3.addressing == .virtualHost)
        #expect(s3.credentials.sessionToken == nil)  // empty means none

        let regional = try StorageConfiguration.parse(
            "s3://my.dotted.bucket", s3Endpoint: nil, s3Region: "eu-west-3", addressing: nil, credentials: Self.credentials)
        guard case .s3(let dotted) = regional.backend else { Issue.record("not s3"); return }
        #expect(dotted.endpoint.absoluteString == "https://s3.eu-west-3.amazonaws.com")
        #expect(dotted.prefix == "")
        #expect(dotted.addressing == .path)  // dots do not fit the TLS certificate's wildcard
    }

    @Test func customEndpointsAndGoogle() throws {
        let minio = try StorageConfiguration.parse(
            "s3://audio", s3Endpoint: "http://127.0.0.1:9000/", s3Region: nil, addressing: nil, credentials: Self.credentials)
        guard case .s3(let s3) = minio.backend else { Issue.record("not s3"); return }
        #expect(s3.endpoint.absoluteString == "http://127.0.0.1:9000")
        #expect(s3.addressing == .path)
        #expect(s3.region == "us-east-1")

        let google = try StorageConfiguration.parse(
            "s3://audio/lark", s3Endpoint: "https://storage.googleapis.com", s3Region: nil, addressing: .virtualHost,
            credentials: Self.credentials)
        guard case .s3(let gcs) = google.backend else { Issue.record("not s3"); return }
        #expect(gcs.region == "auto")
        #expect(gcs.addressing == .virtualHost)
    }

    @Test(arguments: [
        ("", nil, false, "empty"),
        ("gs://bucket", nil, true, "unknown storage scheme"),
        ("s3://", nil, true, "is missing"),
        ("s3://Bad_Bucket", nil, true, "lowercase"),
        ("s3://bucket/../x", nil, true, ".. component"),
        ("s3://bucket", "localhost:9000", true, "not http(s)://host"),
        ("s3://bucket", "http://host:9000/path", true, "without a path"),
        ("s3://bucket", nil, false, "needs credentials"),
        ("/dir", "http://127.0.0.1:9000", true, "apply only to s3://"),
        ("file://host/dir", nil, true, "file:///absolute/path"),
    ] as [(String, String?, Bool, String)])
    func refusedSpecs(spec: String, endpoint: String?, withCredentials: Bool, message: String) {
        let error = #expect(throws: StorageError.self) {
            try StorageConfiguration.parse(
                spec, s3Endpoint: endpoint, s3Region: nil, addressing: nil,
                credentials: withCredentials ? Self.credentials : nil)
        }
        guard let error else { return }
        guard case .invalidConfiguration = error else {
            Issue.record("\(error)")
            return
        }
        #expect("\(error)".contains(message), "\(error)")
    }

    @Test func printingNeverShowsTheSecret() throws {
        let configuration = try StorageConfiguration.parse(
            "s3://bucket", s3Endpoint: nil, s3Region: nil, addressing: nil,
            credentials: S3Credentials(accessKeyID: "AKID", secretAccessKey: "TOPSECRET", sessionToken: "TOKEN"))
        for text in ["\(configuration)", String(reflecting: configuration)] {
            #expect(text.contains("AKID"))
            #expect(!text.contains("TOPSECRET") && !text.contains("TOKEN"), "\(text)")
        }
    }

    @Test func virtualHostNeedsAHostName() {
        let error = #expect(throws: StorageError.self) {
            try StorageConfiguration.parse(
                "s3://bucket", s3Endpoint: "http://127.0.0.1:9000", s3Region: nil, addressing: .virtualHost,
                credentials: Self.credentials)
        }
        #expect(error.map { "\($0)".contains("virtual-host addressing needs a host name") } == true)
    }

    @Test func makesTheStoreTheConfigurationNames() async throws {
        let local = try makeObjectStore(
            StorageConfiguration.parse("/tmp/lark-x", s3Endpoint: nil, s3Region: nil, addressing: nil, credentials: nil),
            logger: Logger(label: "test"))
        #expect(local is LocalDirectoryStore)
        let s3 = try makeObjectStore(
            StorageConfiguration.parse(
                "s3://bucket", s3Endpoint: "http://127.0.0.1:1", s3Region: nil, addressing: nil, credentials: Self.credentials),
            logger: Logger(label: "test"))
        #expect(s3 is S3ObjectStore)
        try await s3.shutdown()
    }
}

/// A directory under the system's temporary directory, removed when the value goes away.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appending(path: "lark-storage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The behaviour every `ObjectStore` shares (house rule 5), run against the local store here and
/// against the S3 store in `AudioStorageS3Tests`. `read` fetches what a location points to.
enum ObjectStoreConformance {
    static func check(
        _ store: any ObjectStore, directory: TemporaryDirectory, read: (ObjectLocation) async throws -> Data
    ) async throws {
        let key = "jobs/conformance-\(UUID().uuidString).mp3"
        let first = directory.url.appending(path: "first.mp3")
        let second = directory.url.appending(path: "second.mp3")
        try Data(repeating: 1, count: 300_000).write(to: first)
        try Data("replaced".utf8).write(to: second)

        #expect(try await store.exists(key: key) == false)
        try await store.delete(key: key)  // absent: no error
        try await store.put(key: key, file: first, contentType: "audio/mpeg")
        #expect(try await store.exists(key: key))
        #expect(try await read(store.location(of: key, expiresIn: .seconds(120))) == Data(repeating: 1, count: 300_000))
        try await store.put(key: key, file: second, contentType: "audio/mpeg")
        #expect(try await read(store.location(of: key, expiresIn: .seconds(120))) == Data("replaced".utf8))
        try await store.delete(key: key)
        #expect(try await store.exists(key: key) == false)

        for bad in ["", "/abs", "a/../b", "a\\b", "a//b"] {
            await #expect(throws: StorageError.invalidKey(bad)) { try await store.exists(key: bad) }
            await #expect(throws: StorageError.invalidKey(bad)) { try await store.delete(key: bad) }
            await #expect(throws: StorageError.invalidKey(bad)) { try await store.put(key: bad, file: first, contentType: "audio/mpeg") }
            await #expect(throws: StorageError.invalidKey(bad)) { try await store.location(of: bad, expiresIn: .seconds(60)) }
        }
        // A missing source file: nothing is stored.
        await #expect(throws: StorageError.self) {
            try await store.put(key: key, file: directory.url.appending(path: "missing.mp3"), contentType: "audio/mpeg")
        }
        #expect(try await store.exists(key: key) == false)
    }
}

extension AudioStorageLocalTests {
    @Test func conformance() async throws {
        let directory = try TemporaryDirectory()
        let store = LocalDirectoryStore(root: directory.url.appending(path: "store"))
        try await ObjectStoreConformance.check(store, directory: directory) { location in
            guard case .localFile(let path) = location else { throw StorageError.invalidConfiguration("not a file") }
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }
}
