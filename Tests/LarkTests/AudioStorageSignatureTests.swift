import Foundation
import Logging
import Testing

@testable import AudioStorage

/// AWS Signature Version 4 against the examples AWS publishes, with their credentials
/// (AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY), bucket `examplebucket`,
/// region us-east-1 and time 20130524T000000Z. Sources, Amazon S3 API Reference:
/// - header-based examples (GET Object, PUT Object, list objects):
///   https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
/// - presigned URL example:
///   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
@Suite struct AudioStorageSignatureTests {
    static let credentials = S3Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let signer = SignatureV4(credentials: credentials, region: "us-east-1")
    static let host = "examplebucket.s3.amazonaws.com"

    @Test func timestampIsTheCompactUTCForm() {
        #expect(SignatureV4.timestamp(Self.date).date == "20130524")
        #expect(SignatureV4.timestamp(Self.date).dateTime == "20130524T000000Z")
        #expect(SignatureV4.timestamp(Date(timeIntervalSince1970: 951_827_046.9)).dateTime == "20000229T122406Z")
    }

    /// "Example: GET Object": the first 10 bytes of test.txt, empty payload hash.
    @Test func getObjectExample() {
        let request = SignatureV4.Request(
            method: "GET", host: Self.host, path: "/test.txt", headers: [("Range", "bytes=0-9")])
        let (added, signed) = Self.signer.sign(request, payloadHash: SignatureV4.emptyPayloadHash, date: Self.date)
        #expect(
            signed.canonicalRequest == """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        #expect(
            signed.stringToSign == """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
                """)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(
            Self.signer.authorization(signed, date: Self.date)
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(added.map(\.name) == ["x-amz-content-sha256", "x-amz-date"])
    }

    /// "Example: PUT Object": key `test$file.text` (the `$` is encoded), a signed payload.
    @Test func putObjectExample() {
        let body = Data("Welcome to Amazon S3.".utf8)
        let hash = SignatureV4.sha256Hex(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let request = SignatureV4.Request(
            method: "PUT", host: Self.host, path: "/" + SignatureV4.uriEncode("test$file.text", encodeSlash: false),
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")])
        let headers = Self.signer.authorizationHeaders(for: request, payloadHash: hash, date: Self.date)
        #expect(request.path == "/test%24file.text")
        #expect(
            headers.last?.value
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
                + "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    /// "Example: GET Bucket (List Objects)": query parameters, sorted and encoded.
    @Test func listObjectsExample() {
        let request = SignatureV4.Request(
            method: "GET", host: Self.host, path: "/", query: [("max-keys", "2"), ("prefix", "J")])
        let (_, signed) = Self.signer.sign(request, payloadHash: SignatureV4.emptyPayloadHash, date: Self.date)
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// The presigned URL example: GET test.txt, valid 86400 s.
    @Test func presignedURLExample() async throws {
        let store = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "examplebucket", endpoint: URL(string: "https://s3.amazonaws.com")!, region: "us-east-1",
                addressing: .virtualHost, credentials: Self.credentials),
            logger: Logger(label: "test"))
        try await withShutdown(of: store) {
            let url = try store.presignedURL(forKey: "test.txt", expiresIn: .seconds(86400), date: Self.date)
            #expect(
                url.absoluteString
                    == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                    + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                    + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                    + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
            let (_, signed) = Self.signer.presign(
                .init(method: "GET", host: Self.host, path: "/test.txt"), expires: 86400, date: Self.date)
            #expect(signed.stringToSign.hasPrefix("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"))
            #expect(signed.canonicalRequest.hasSuffix("\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"))
        }
    }

    @Test func sessionTokenIsSignedInHeadersAndQuery() {
        var credentials = Self.credentials
        credentials.sessionToken = "token/with+chars="
        let signer = SignatureV4(credentials: credentials, region: "us-east-1")
        let request = SignatureV4.Request(method: "GET", host: Self.host, path: "/test.txt")
        let headers = signer.authorizationHeaders(for: request, payloadHash: SignatureV4.emptyPayloadHash, date: Self.date)
        #expect(headers.contains { $0.name == "x-amz-security-token" && $0.value == "token/with+chars=" })
        #expect(headers.last!.value.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
        let query = signer.presignedQuery(for: request, expires: 60, date: Self.date)
        #expect(query.contains("&X-Amz-Security-Token=token%2Fwith%2Bchars%3D&X-Amz-SignedHeaders=host&X-Amz-Signature="))
        #expect(query != Self.signer.presignedQuery(for: request, expires: 60, date: Self.date))
    }

    @Test func uriEncodingFollowsS3() {
        #expect(SignatureV4.uriEncode("A-z_0.9~") == "A-z_0.9~")
        #expect(SignatureV4.uriEncode("a b+c=&?#%") == "a%20b%2Bc%3D%26%3F%23%25")
        #expect(SignatureV4.uriEncode("a/b") == "a%2Fb")
        #expect(SignatureV4.uriEncode("a/b c", encodeSlash: false) == "a/b%20c")
        #expect(SignatureV4.uriEncode("été/ключ", encodeSlash: false) == "%C3%A9t%C3%A9/%D0%BA%D0%BB%D1%8E%D1%87")
        #expect(SignatureV4.uriEncode("!'()*$") == "%21%27%28%29%2A%24")
    }

    @Test func objectURLsForBothAddressingStyles() async throws {
        let credentials = S3Credentials(accessKeyID: "a", secretAccessKey: "b")
        let pathStore = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "audio", prefix: "lark/v1", endpoint: URL(string: "http://127.0.0.1:9000")!, region: "us-east-1",
                addressing: .path, credentials: credentials),
            logger: Logger(label: "test"))
        let hostStore = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "audio", prefix: "lark/v1", endpoint: URL(string: "https://storage.googleapis.com:443")!,
                region: "auto", addressing: .virtualHost, credentials: credentials),
            logger: Logger(label: "test"))
        defer {
            Task {
                try await pathStore.shutdown()
                try await hostStore.shutdown()
            }
        }
        let key = "jobs/a b+c$.mp3"
        #expect(pathStore.host == "127.0.0.1:9000")
        #expect(try pathStore.path(forKey: key) == "/audio/lark/v1/jobs/a%20b%2Bc%24.mp3")
        #expect(hostStore.host == "audio.storage.googleapis.com")
        #expect(try hostStore.path(forKey: key) == "/lark/v1/jobs/a%20b%2Bc%24.mp3")
        let url = try hostStore.presignedURL(forKey: key, expiresIn: .seconds(600), date: Self.date)
        #expect(url.absoluteString.hasPrefix("https://audio.storage.googleapis.com/lark/v1/jobs/a%20b%2Bc%24.mp3?X-Amz-Algorithm="))
        #expect(url.absoluteString.contains("X-Amz-Credential=a%2F20130524%2Fauto%2Fs3%2Faws4_request"))
        #expect(throws: StorageError.invalidExpiry(.seconds(604_801))) {
            try pathStore.presignedURL(forKey: key, expiresIn: .seconds(604_801), date: Self.date)
        }
        #expect(throws: StorageError.invalidExpiry(.zero)) {
            try pathStore.presignedURL(forKey: key, expiresIn: .zero, date: Self.date)
        }
        #expect(throws: StorageError.invalidKey("../x")) { try pathStore.path(forKey: "../x") }
    }

    @Test func errorDocumentIsRead() {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist &amp; never did &lt;here&gt;</Message>\
            <BucketName>x</BucketName></Error>
            """
        let document = S3ErrorDocument(body)
        #expect(document.code == "NoSuchBucket")
        #expect(document.message == "The specified bucket does not exist & never did <here>")
        #expect(document.endpoint == nil)
        #expect(S3ErrorDocument("").code == nil)
        #expect(S3ErrorDocument.unescape("a &#x41;&#66; &bogus; & b") == "a AB &bogus; & b")
    }
}
