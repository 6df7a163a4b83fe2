import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Testing

@testable import AudioStorage

/// `S3ObjectStore` against a real S3-compatible server on loopback: moto_server (from the
/// reference environment `make setup` builds), started for this suite and stopped after it, also
/// when a test fails. Two servers: one that accepts any credentials (moto's default) for the
/// object operations, and one with moto's IAM authentication switched on, which recomputes every
/// request's signature with botocore, for the credential tests.
@Suite(.serialized, .motoServers) struct AudioStorageS3Tests {
    var moto: MotoServers { MotoServers.current! }

    func store(
        bucket: String, prefix: String = "", addressing: S3Addressing = .path, server: MotoServer? = nil,
        credentials: S3Credentials = S3Credentials(accessKeyID: "AKIDTEST", secretAccessKey: "anything")
    ) -> S3ObjectStore {
        let server = server ?? moto.open
        let host = addressing == .virtualHost ? "localhost" : "127.0.0.1"
        return S3ObjectStore(
            configuration: S3Configuration(
                bucket: bucket, prefix: prefix, endpoint: URL(string: "http://\(host):\(server.port)")!,
                region: "us-east-1", addressing: addressing, credentials: credentials, requestTimeout: .seconds(60)),
            logger: Logger(label: "test"), httpClient: nil,
            connectAddress: addressing == .virtualHost ? "127.0.0.1:\(server.port)" : nil)
    }

    /// Bytes a worker would have written: more than one upload chunk, every byte value.
    static func audioFile(in directory: TemporaryDirectory, size: Int = 700_001) throws -> (URL, Data) {
        let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        let url = directory.url.appending(path: "audio-\(UUID().uuidString).wav")
        try bytes.write(to: url)
        return (url, bytes)
    }

    /// A plain GET, as a client fetching the URL would send it (no credentials). `connectTo`
    /// stands in for DNS where the URL's host is `bucket.localhost`.
    static func fetch(_ url: URL, connectTo: String? = nil) async throws -> (status: Int, body: Data) {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        let hostHeader = components.port.map { "\(components.host!):\($0)" } ?? components.host!
        if let connectTo {
            let parts = connectTo.split(separator: ":")
            components.host = String(parts[0])
            components.port = Int(parts[1])
        }
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.headers.add(name: "Host", value: hostHeader)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), Data(body.readableBytesView))
    }

    @Test func pathStyleRoundTrip() async throws {
        let directory = try TemporaryDirectory()
        let store = store(bucket: MotoServers.pathBucket, prefix: "lark/v1")
        try await withShutdown(of: store) {
            let (file, bytes) = try Self.audioFile(in: directory)
            let key = "jobs/ID with space+plus$&=é.wav"

            #expect(try await store.exists(key: key) == false)
            try await store.put(key: key, file: file, contentType: "audio/wav")
            #expect(try await store.exists(key: key))
            #expect(try await store.exists(key: "jobs/other.wav") == false)

            // The presigned URL, fetched with a plain GET, gives the same bytes.
            guard case .url(let url) = try await store.location(of: key, expiresIn: .seconds(300)) else {
                Issue.record("S3 must answer a URL")
                return
            }
            #expect(url.absoluteString.hasPrefix("http://127.0.0.1:\(moto.open.port)/\(MotoServers.pathBucket)/lark/v1/jobs/ID%20with%20space%2Bplus%24%26%3D%C3%A9.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&"))
            let fetched = try await Self.fetch(url)
            #expect(fetched.status == 200)
            #expect(fetched.body == bytes)

            // An independent client (boto3) reads the same object under prefix/key, with its type.
            let read = try moto.open.boto3Read(bucket: MotoServers.pathBucket, key: "lark/v1/" + key)
            #expect(read.body == bytes)
            #expect(read.contentType == "audio/wav")

            try await store.delete(key: key)
            #expect(try await store.exists(key: key) == false)
            try await store.delete(key: key)  // absent: no error
            #expect(try await Self.fetch(url).status == 404)
        }
    }

    @Test(arguments: [S3Addressing.path, .virtualHost]) func conformance(addressing: S3Addressing) async throws {
        let directory = try TemporaryDirectory()
        let bucket = addressing == .path ? MotoServers.pathBucket : MotoServers.hostBucket
        let store = store(bucket: bucket, prefix: "conformance", addressing: addressing)
        try await withShutdown(of: store) {
            let connectTo = addressing == .virtualHost ? "127.0.0.1:\(moto.open.port)" : nil
            try await ObjectStoreConformance.check(store, directory: directory) { location in
                guard case .url(let url) = location else { throw StorageError.invalidConfiguration("not a URL") }
                let (status, body) = try await Self.fetch(url, connectTo: connectTo)
                #expect(status == 200)
                return body
            }
        }
    }

    @Test func virtualHostRoundTrip() async throws {
        let directory = try TemporaryDirectory()
        let store = store(bucket: MotoServers.hostBucket, addressing: .virtualHost)
        try await withShutdown(of: store) {
            let (file, bytes) = try Self.audioFile(in: directory, size: 10)
            // Not `wav_files/…`: moto routes an unsigned request (the presigned GET) whose first path
            // segment holds one `_` to a service named after it (`wav`), and fails with a 500.
            let key = "member/uuid_2024-01-01_voice.wav"

            #expect(try await store.exists(key: key) == false)
            try await store.put(key: key, file: file, contentType: "audio/wav")
            #expect(try await store.exists(key: key))
            guard case .url(let url) = try await store.location(of: key, expiresIn: .seconds(60)) else {
                Issue.record("S3 must answer a URL")
                return
            }
            #expect(url.host() == "\(MotoServers.hostBucket).localhost")
            #expect(url.path() == "/" + key)
            let fetched = try await Self.fetch(url, connectTo: "127.0.0.1:\(moto.open.port)")
            #expect(fetched.status == 200)
            #expect(fetched.body == bytes)
            #expect(try moto.open.boto3Read(bucket: MotoServers.hostBucket, key: key).body == bytes)
            try await store.delete(key: key)
            #expect(try await store.exists(key: key) == false)
        }
    }

    @Test func emptyFile() async throws {
        let directory = try TemporaryDirectory()
        let store = store(bucket: MotoServers.pathBucket)
        try await withShutdown(of: store) {
            let (file, _) = try Self.audioFile(in: directory, size: 0)
            try await store.put(key: "empty.pcm", file: file, contentType: "audio/pcm")
            #expect(try moto.open.boto3Read(bucket: MotoServers.pathBucket, key: "empty.pcm").body.isEmpty)
            try await store.delete(key: "empty.pcm")
        }
    }

    /// moto 5.2.1 does not check a presigned URL's expiry (nor its signature) when its
    /// authentication is off: the expired URL is still answered 200. (With authentication on, it
    /// answers every presigned URL 500: it looks for an Authorization header.) So this test pins
    /// what can be pinned: the URL says it expired (X-Amz-Date two hours ago, X-Amz-Expires 60),
    /// and what moto answered is printed; real S3 and Google answer 403 (AccessDenied /
    /// ExpiredToken "Request has expired").
    @Test func expiredPresignedURL() async throws {
        let directory = try TemporaryDirectory()
        let store = store(bucket: MotoServers.pathBucket)
        try await withShutdown(of: store) {
            let (file, _) = try Self.audioFile(in: directory, size: 100)
            try await store.put(key: "expired.wav", file: file, contentType: "audio/wav")
            let signedAt = Date().addingTimeInterval(-7200)
            let url = try store.presignedURL(forKey: "expired.wav", expiresIn: .seconds(60), date: signedAt)
            #expect(url.query()!.contains("X-Amz-Date=\(SignatureV4.timestamp(signedAt).dateTime)&X-Amz-Expires=60&"))
            let status = try await Self.fetch(url).status
            #expect(status == 200 || status == 403, "moto answered \(status)")
            MotoServers.note("expired presigned URL: moto (auth off) answered \(status)")
        }
    }

    @Test func missingBucketIsRejectedWithS3sError() async throws {
        let directory = try TemporaryDirectory()
        let store = store(bucket: "no-such-bucket")
        try await withShutdown(of: store) {
            let (file, _) = try Self.audioFile(in: directory, size: 10)
            await #expect(throws: StorageError.self) { try await store.put(key: "a.wav", file: file, contentType: "audio/wav") }
            do {
                try await store.put(key: "a.wav", file: file, contentType: "audio/wav")
            } catch let error as StorageError {
                guard case .rejected(let status, let code, let message) = error else { throw error }
                #expect(status == 404)
                #expect(code == "NoSuchBucket")
                #expect(message.contains("does not exist"))
                #expect("\(error)".contains("HTTP 404, NoSuchBucket"))
            }
            await #expect(throws: StorageError.self) { try await store.delete(key: "a.wav") }
        }
    }

    @Test func unreachableEndpoint() async throws {
        let directory = try TemporaryDirectory()
        // A port nothing listens on: the one after the open server's, checked closed.
        let port = try MotoServers.closedPort()
        let store = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "lark", endpoint: URL(string: "http://127.0.0.1:\(port)")!, region: "us-east-1", addressing: .path,
                credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b"), requestTimeout: .seconds(5),
                connectTimeout: .seconds(2)),
            logger: Logger(label: "test"))
        try await withShutdown(of: store) {
            let (file, _) = try Self.audioFile(in: directory, size: 10)
            for operation in ["put", "exists", "delete"] {
                do {
                    switch operation {
                    case "put": try await store.put(key: "a.wav", file: file, contentType: "audio/wav")
                    case "exists": _ = try await store.exists(key: "a.wav")
                    default: try await store.delete(key: "a.wav")
                    }
                    Issue.record("\(operation) against a closed port succeeded")
                } catch let error as StorageError {
                    guard case .unreachable(let endpoint, _) = error else {
                        Issue.record("\(operation): \(error)")
                        continue
                    }
                    #expect(endpoint == "http://127.0.0.1:\(port)")
                    #expect("\(error)".hasPrefix("object storage at http://127.0.0.1:\(port) is unreachable"))
                }
            }
        }
    }

    /// A server that accepts the connection and never answers: the request's deadline ends it.
    @Test func silentEndpointTimesOut() async throws {
        let port = try MotoServers.closedPort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(listener, 8) == 0)  // the kernel completes handshakes; nobody reads
        let store = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "lark", endpoint: URL(string: "http://127.0.0.1:\(port)")!, region: "us-east-1", addressing: .path,
                credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b"), requestTimeout: .seconds(1),
                connectTimeout: .seconds(1)),
            logger: Logger(label: "test"))
        try await withShutdown(of: store) {
            let started = ContinuousClock.now
            let error = await #expect(throws: StorageError.self) { try await store.exists(key: "a.wav") }
            #expect(ContinuousClock.now - started < .seconds(10))
            guard case .unreachable(let endpoint, let reason) = error else {
                Issue.record("\(String(describing: error))")
                return
            }
            #expect(endpoint == "http://127.0.0.1:\(port)")
            #expect(reason.contains("no answer within 1.0 seconds") || reason.contains("Timeout"), "\(reason)")
        }
    }

    /// moto's default server accepts any credentials: the wrong ones are refused only by the
    /// server whose authentication is on, which checks the key exists and recomputes the signature.
    @Test func credentialsAreChecked() async throws {
        let directory = try TemporaryDirectory()
        let (file, bytes) = try Self.audioFile(in: directory, size: 70_000)
        let server = moto.authenticated
        let keys = try #require(moto.authenticatedKeys)

        // The right key: moto's recomputed signatures match ours, for PUT, HEAD and DELETE. (A
        // plain key: with authentication on, moto 5.2.1 recomputes signatures over the decoded
        // path, so a key with a space or `$` is refused even to boto3.)
        let good = store(bucket: MotoServers.authBucket, prefix: "p", server: server, credentials: keys)
        try await withShutdown(of: good) {
            try await good.put(key: "jobs/signed-key_1.wav", file: file, contentType: "audio/wav")
            #expect(try await good.exists(key: "jobs/signed-key_1.wav"))
            #expect(try await good.exists(key: "jobs/absent.wav") == false)
            #expect(try server.boto3Read(bucket: MotoServers.authBucket, key: "p/jobs/signed-key_1.wav", credentials: keys).body == bytes)
            try await good.delete(key: "jobs/signed-key_1.wav")
            #expect(try await good.exists(key: "jobs/signed-key_1.wav") == false)

            // A wrong secret: SignatureDoesNotMatch. An unknown key: InvalidAccessKeyId.
            for (credentials, expectedCode) in [
                (S3Credentials(accessKeyID: keys.accessKeyID, secretAccessKey: "wrong-secret"), "SignatureDoesNotMatch"),
                (S3Credentials(accessKeyID: "AKIAUNKNOWNKEY000000", secretAccessKey: "x"), "InvalidAccessKeyId"),
            ] {
                let bad = store(bucket: MotoServers.authBucket, server: server, credentials: credentials)
                try await withShutdown(of: bad) {
                    do {
                        try await bad.put(key: "a.wav", file: file, contentType: "audio/wav")
                        Issue.record("put with \(expectedCode) credentials succeeded")
                    } catch let error as StorageError {
                        guard case .rejected(let status, let code, _) = error else { throw error }
                        #expect(status == 403)
                        #expect(code == expectedCode)
                    }
                }
            }
        }
    }
}

// MARK: - moto_server

/// One moto_server process.
struct MotoServer: Sendable {
    let port: Int
    let pid: Int32

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Runs Python in the reference environment with boto3; `code` prints JSON on its last line.
    func python(_ code: String, _ arguments: [String] = []) throws -> [String: Any] {
        let result = try runProcess(Checkout.referencePython, ["-c", code, endpoint] + arguments)
        guard result.status == 0, let line = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").last,
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw MotoError(message: "python failed (\(result.status)): \(result.stderr)") }
        return json
    }

    /// Reads an object with boto3 (path-style, the given or any credentials): body and Content-Type.
    func boto3Read(bucket: String, key: String, credentials: S3Credentials? = nil) throws -> (body: Data, contentType: String) {
        let json = try python(
            """
            import sys, json, base64, boto3
            from botocore.config import Config
            endpoint, bucket, key, access, secret = sys.argv[1:6]
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access,
                              aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}))
            got = s3.get_object(Bucket=bucket, Key=key)
            print(json.dumps({"body": base64.b64encode(got["Body"].read()).decode(), "type": got["ContentType"]}))
            """,
            [bucket, key, credentials?.accessKeyID ?? "any", credentials?.secretAccessKey ?? "any"])
        return (Data(base64Encoded: json["body"] as? String ?? "") ?? Data(), json["type"] as? String ?? "")
    }

    static func start(port: Int) async throws -> MotoServer {
        let executable = Checkout.deps + "/piper-venv/bin/moto_server"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw MotoError(message: "\(executable) is missing: run `make setup` (it installs moto[server] into .deps/piper-venv)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        // Its log (one line per request, and tracebacks) for when a test fails.
        let log = "/tmp/lark-moto-\(port).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        let server = MotoServer(port: port, pid: process.processIdentifier)
        // Wait until it answers (a few seconds: Python imports moto's services).
        for _ in 0..<150 {
            if !process.isRunning { throw MotoError(message: "moto_server on port \(port) exited (\(process.terminationStatus))") }
            var request = HTTPClientRequest(url: server.endpoint + "/moto-api/data.json")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok {
                _ = try? await response.body.collect(upTo: 1 << 20)
                return server
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        server.stop()
        throw MotoError(message: "moto_server on port \(port) did not answer within 30 seconds")
    }

    /// SIGTERM, then SIGKILL after 5 seconds; Foundation's Process reaps the child.
    func stop() {
        kill(pid, SIGTERM)
        for _ in 0..<50 {
            if kill(pid, 0) != 0 { return }
            usleep(100_000)
        }
        kill(pid, SIGKILL)
    }
}

struct MotoError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The two servers of the suite, with their buckets, available to its tests as a task local.
struct MotoServers: Sendable {
    static let pathBucket = "lark-path"
    static let hostBucket = "lark-vhost"
    static let authBucket = "lark-auth"

    @TaskLocal static var current: MotoServers?

    let open: MotoServer
    let authenticated: MotoServer
    let authenticatedKeys: S3Credentials?

    /// Offsets 260–299 of the suites' one port scheme (`ServerLifecycleTests.port`): their own
    /// range of 26000–32298, so that no other suite's server lands on them (the process id picks
    /// the base, so parallel runs in other checkouts differ). 260 and 261 here, 262 `JobS3Tests`.
    static var basePort: Int { ServerLifecycleTests.port(260) }

    /// A port of offsets 263–299 on which nothing listens (checked by trying to connect).
    static func closedPort() throws -> Int {
        for offset in 263..<300 {
            let port = ServerLifecycleTests.port(offset)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port)).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected != 0 { return port }
        }
        throw MotoError(message: "no closed port found")
    }

    static func note(_ text: String) {
        print("[AudioStorageS3Tests] \(text)")
    }

    static func start() async throws -> MotoServers {
        let open = try await MotoServer.start(port: basePort)
        let authenticated: MotoServer
        do {
            authenticated = try await MotoServer.start(port: basePort + 1)
        } catch {
            open.stop()
            throw error
        }
        do {
            _ = try open.python(
                """
                import sys, json, boto3
                s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                                  aws_access_key_id="any", aws_secret_access_key="any")
                for bucket in sys.argv[2:]:
                    s3.create_bucket(Bucket=bucket)
                print(json.dumps({}))
                """, [pathBucket, hostBucket])
            // An IAM user with a key allowed everything in S3, a bucket, then authentication on.
            let keys = try authenticated.python(
                """
                import sys, json, boto3, urllib.request
                endpoint, bucket = sys.argv[1:3]
                anon = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="any", aws_secret_access_key="any")
                iam = boto3.client("iam", **anon)
                iam.create_user(UserName="lark")
                key = iam.create_access_key(UserName="lark")["AccessKey"]
                iam.put_user_policy(UserName="lark", PolicyName="s3", PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
                boto3.client("s3", **anon).create_bucket(Bucket=bucket)
                urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                                   headers={"Content-Type": "text/plain"}))
                print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
                """, [authBucket])
            return MotoServers(
                open: open, authenticated: authenticated,
                authenticatedKeys: S3Credentials(
                    accessKeyID: keys["id"] as? String ?? "", secretAccessKey: keys["secret"] as? String ?? ""))
        } catch {
            open.stop()
            authenticated.stop()
            throw error
        }
    }

    func stop() {
        open.stop()
        authenticated.stop()
    }
}

/// Starts the moto servers around a whole suite and stops them after it, whatever happened.
struct MotoServersTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let servers = try await MotoServers.start()
        defer { servers.stop() }
        try await MotoServers.$current.withValue(servers) { try await function() }
    }
}

extension Trait where Self == MotoServersTrait {
    static var motoServers: Self { Self() }
}
