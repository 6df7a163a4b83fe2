import Foundation
import Testing

/// Jobs whose audio goes to an S3-compatible bucket: a real `moto_server` on loopback, a real
/// `lark serve`, and boto3 reading the object afterwards.
@Suite(.serialized) struct JobS3Tests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    /// A port apart from the storage suite's two (`MotoServers.basePort`).
    static var motoPort: Int { ServerLifecycleTests.port(262) }
    static let credentials = ["AWS_ACCESS_KEY_ID": "lark-test", "AWS_SECRET_ACCESS_KEY": "lark-test-secret"]

    @Test func jobAudioLandsInTheBucketAndIsServedByPresignedURL() async throws {
        let moto = try await MotoServer.start(port: Self.motoPort)
        defer { moto.stop() }
        _ = try moto.python(
            """
            import sys, json, boto3
            boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="a",
                         aws_secret_access_key="b").create_bucket(Bucket="speech")
            print(json.dumps({}))
            """)
        let dir = JobAPITests.temporaryDirectory()
        let server = try ServerProcess(
            JobAPITests.arguments(jobsDir: dir, ["--storage", "s3://speech/lark/jobs", "--s3-endpoint", moto.endpoint, "--member", "5=en_US-joe-medium"]),
            port: JobAPITests.port(11), environment: Self.credentials)
        let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Stored in a bucket. Fetched by URL.", "format": "ogg_opus"])
        let id = try #require(job.json?["id"] as? String, "\(String(decoding: job.body, as: UTF8.self))")
        let done = try JobAPITests.waitForEnd(server, id: id)
        #expect(done["status"] as? String == "succeeded", "\(done)\n\(server.log_)")
        let url = try #require(done["audio_url"] as? String)
        #expect(url.hasPrefix("\(moto.endpoint)/speech/lark/jobs/jobs/\(id).opus?") && url.contains("X-Amz-Signature="))

        // boto3 reads the same bytes the presigned URL gives, and they are Opus in Ogg.
        let viaURL = try ServerTests.curl([url])
        #expect(viaURL.status == 200)
        let viaBoto = try moto.boto3Read(bucket: "speech", key: "lark/jobs/jobs/\(id).opus")
        #expect(viaBoto.body == viaURL.body && viaBoto.contentType.hasPrefix("audio/ogg"))
        let file = NSTemporaryDirectory() + "lark-s3-\(id).opus"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try viaBoto.body.write(to: URL(fileURLWithPath: file))
        #expect(try Probe(file: file).codec == "opus")

        // The job's audio route redirects to a presigned URL.
        let redirect = try server.curl("/api/v1/jobs/\(id)/audio")
        #expect(redirect.status == 302 && redirect.headers["location"]?.contains("X-Amz-Signature=") == true)

        // The seed's request stores under its own key in the bucket.
        let seed = try server.curl("/api/texts", [
            "-X", "POST", "-H", "Content-Type: application/json",
            "-d", #"{"uuid": "u-77", "member_id": "5", "text": "Seed text.", "created_at": "1700000000"}"#,
        ])
        #expect(seed.status == 200, "\(String(decoding: seed.body, as: UTF8.self))")
        let seedObject = try moto.boto3Read(bucket: "speech", key: "lark/jobs/wav_files/5/u-77_1700000000_voice.wav")
        #expect(seedObject.body.prefix(4) == Data("RIFF".utf8))
    }

    @Test func unreachableBucketRetriesThenFailsAndTheServerKeepsServing() throws {
        let closed = try MotoServers.closedPort()
        let dir = JobAPITests.temporaryDirectory()
        let server = try ServerProcess(
            JobAPITests.arguments(jobsDir: dir, [
                "--storage", "s3://speech/jobs", "--s3-endpoint", "http://127.0.0.1:\(closed)", "--job-attempts", "2",
                "--job-retry-delay", "200ms",
            ]),
            port: JobAPITests.port(12), environment: Self.credentials)
        let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "No bucket to be found."])
        let id = try #require(job.json?["id"] as? String)
        let end = try JobAPITests.waitForEnd(server, id: id, seconds: 90)
        #expect(end["status"] as? String == "failed" && end["attempts"] as? Int == 2, "\(end)")
        #expect((end["error"] as? String)?.contains("127.0.0.1:\(closed)") == true, "\(end)")
        #expect(try server.curl("/?text=Still%20serving.").status == 200)
        #expect(try server.curl("/healthz").status == 200)
    }
}
