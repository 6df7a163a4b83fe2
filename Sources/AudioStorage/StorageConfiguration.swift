import Foundation

/// How the bucket appears in request URLs.
public enum S3Addressing: String, Sendable, Equatable, CaseIterable {
    /// `https://endpoint/bucket/prefix/key` (MinIO, moto, most self-hosted servers).
    case path
    /// `https://bucket.endpoint/prefix/key` (AWS's default).
    case virtualHost = "virtual-host"
}

/// An access key pair (AWS, or a Google Cloud Storage HMAC key), with a session token for
/// temporary AWS credentials. The caller reads them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`); the library never reads the environment.
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// Printing credentials (or a configuration that holds them) never shows the secret or the token.
extension S3Credentials: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "S3Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>"
            + (sessionToken == nil ? ")" : ", sessionToken: <redacted>)")
    }

    public var debugDescription: String { description }
}

/// Everything ``S3ObjectStore`` needs, already checked.
public struct S3Configuration: Sendable, Equatable {
    public var bucket: String
    /// Prepended to every key with a `/`; empty for none. Never starts or ends with `/`.
    public var prefix: String
    /// Scheme, host and port only, e.g. `https://s3.us-east-1.amazonaws.com` or `http://127.0.0.1:9000`.
    public var endpoint: URL
    public var region: String
    public var addressing: S3Addressing
    public var credentials: S3Credentials
    /// Limit for a request that carries no body (HEAD, DELETE); a PUT gets this plus one second per MB.
    public var requestTimeout: Duration
    /// Limit for opening a connection.
    public var connectTimeout: Duration

    public init(
        bucket: String, prefix: String = "", endpoint: URL, region: String, addressing: S3Addressing,
        credentials: S3Credentials, requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(5)
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.addressing = addressing
        self.credentials = credentials
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
    }
}

/// Which object store to use, parsed at the edge from `--storage` and its companions.
public struct StorageConfiguration: Sendable, Equatable {
    public enum Backend: Sendable, Equatable {
        /// A directory on this machine (absolute, standardized).
        case localDirectory(URL)
        case s3(S3Configuration)
    }

    public var backend: Backend

    public init(backend: Backend) {
        self.backend = backend
    }

    /// The AWS region used when none is given (and for any custom endpoint but Google's).
    public static let defaultRegion = "us-east-1"

    /// Parses a storage spec:
    /// - `/some/dir`, `relative/dir` or `file:///some/dir`: a local directory (created on first put);
    /// - `s3://bucket` or `s3://bucket/prefix`: an S3-compatible bucket, with keys under `prefix/`.
    ///
    /// For S3: `s3Endpoint` is `http(s)://host[:port]` (none: AWS, `https://s3.REGION.amazonaws.com`);
    /// `s3Region` defaults to `us-east-1` (`auto` for `storage.googleapis.com`); `addressing`
    /// defaults to virtual-host for AWS and path for a custom endpoint; `credentials` are required.
    /// The S3 options are refused with a local directory, except region and credentials, which are
    /// ignored there (they often come from the environment).
    public static func parse(
        _ spec: String, s3Endpoint: String?, s3Region: String?, addressing: S3Addressing?,
        credentials: S3Credentials?
    ) throws(StorageError) -> StorageConfiguration {
        let spec = spec.trimmingCharacters(in: .whitespaces)
        guard !spec.isEmpty else {
            throw .invalidConfiguration("the storage location is empty: give a directory or s3://bucket/prefix")
        }
        let lowered = spec.lowercased()
        if lowered.hasPrefix("s3://") {
            return try parseS3(
                String(spec.dropFirst(5)), spec: spec, endpoint: s3Endpoint, region: s3Region,
                addressing: addressing, credentials: credentials)
        }
        if s3Endpoint != nil || addressing != nil {
            throw .invalidConfiguration(
                "--s3-endpoint and --s3-addressing apply only to s3:// storage, not to \(String(reflecting: spec))")
        }
        if lowered.hasPrefix("file://") {
            guard let url = URL(string: spec), url.isFileURL,
                (url.host(percentEncoded: false) ?? "").isEmpty || url.host(percentEncoded: false) == "localhost",
                url.query == nil, url.fragment == nil
            else {
                throw .invalidConfiguration("\(String(reflecting: spec)) is not a file:///absolute/path URL")
            }
            let path = url.path(percentEncoded: false)
            guard path.hasPrefix("/") else {
                throw .invalidConfiguration("\(String(reflecting: spec)) is not a file:///absolute/path URL")
            }
            return StorageConfiguration(backend: .localDirectory(directory(path)))
        }
        if let schemeEnd = spec.range(of: "://") {
            let scheme = spec[..<schemeEnd.lowerBound]
            throw .invalidConfiguration(
                "unknown storage scheme \(String(reflecting: String(scheme))): use a directory, file:///dir or s3://bucket/prefix"
                    + " (Google Cloud Storage: s3://bucket with --s3-endpoint https://storage.googleapis.com)")
        }
        if spec.contains("\0") { throw .invalidConfiguration("the storage directory contains NUL") }
        return StorageConfiguration(backend: .localDirectory(directory(spec)))
    }

    /// An absolute, standardized directory URL (relative paths are taken from the current directory).
    private static func directory(_ path: String) -> URL {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute, isDirectory: true).standardizedFileURL
    }

    private static func parseS3(
        _ rest: String, spec: String, endpoint endpointSpec: String?, region regionSpec: String?,
        addressing addressingSpec: S3Addressing?, credentials: S3Credentials?
    ) throws(StorageError) -> StorageConfiguration {
        let bucket: String
        var prefix: String
        if let slash = rest.firstIndex(of: "/") {
            bucket = String(rest[..<slash])
            prefix = String(rest[rest.index(after: slash)...])
        } else {
            bucket = rest
            prefix = ""
        }
        if let problem = bucketProblem(bucket) {
            throw .invalidConfiguration("bucket \(String(reflecting: bucket)) in \(String(reflecting: spec)) \(problem)")
        }
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if !prefix.isEmpty, let problem = ObjectKey.problem(with: prefix) {
            throw .invalidConfiguration("prefix \(String(reflecting: prefix)) in \(String(reflecting: spec)): \(problem)")
        }

        let endpoint: URL
        let isGoogle: Bool
        if let endpointSpec, !endpointSpec.isEmpty {
            endpoint = try parseEndpoint(endpointSpec)
            isGoogle = endpoint.host()?.lowercased() == "storage.googleapis.com"
        } else {
            let region = regionSpec.flatMap { $0.isEmpty ? nil : $0 } ?? defaultRegion
            try checkRegion(region)
            guard let url = URL(string: "https://s3.\(region).amazonaws.com") else {
                throw .invalidConfiguration("region \(String(reflecting: region)) does not make a host name")
            }
            endpoint = url
            isGoogle = false
        }
        let region = regionSpec.flatMap { $0.isEmpty ? nil : $0 } ?? (isGoogle ? "auto" : defaultRegion)
        try checkRegion(region)

        let addressing: S3Addressing
        if let addressingSpec {
            addressing = addressingSpec
        } else if endpointSpec == nil || endpointSpec?.isEmpty == true {
            // AWS: virtual-host, except for bucket names with dots, whose host names the
            // *.s3.amazonaws.com TLS certificate does not cover.
            addressing = bucket.contains(".") ? .path : .virtualHost
        } else {
            addressing = .path
        }
        if addressing == .virtualHost, let host = endpoint.host(),
            host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." })
        {
            throw .invalidConfiguration(
                "virtual-host addressing needs a host name, not the IP address \(host): use --s3-addressing path")
        }
        if addressing == .virtualHost, bucket.contains("_") {
            throw .invalidConfiguration(
                "bucket \(String(reflecting: bucket)) has an underscore, which cannot be part of a host name: use --s3-addressing path")
        }

        guard let credentials else {
            throw .invalidConfiguration(
                "s3:// storage needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an HMAC key for Google Cloud Storage)")
        }
        guard !credentials.accessKeyID.isEmpty, !credentials.secretAccessKey.isEmpty else {
            throw .invalidConfiguration("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be non-empty")
        }
        var cleaned = credentials
        if cleaned.sessionToken?.isEmpty == true { cleaned.sessionToken = nil }
        return StorageConfiguration(
            backend: .s3(
                S3Configuration(
                    bucket: bucket, prefix: prefix, endpoint: endpoint, region: region, addressing: addressing,
                    credentials: cleaned)))
    }

    /// S3's rules, loosened where other services differ (Google allows `_` and longer names):
    /// 3 to 222 characters, lowercase letters, digits, `.`, `-`, `_`, starting and ending with a
    /// letter or digit.
    static func bucketProblem(_ bucket: String) -> String? {
        if bucket.isEmpty { return "is missing: write s3://bucket or s3://bucket/prefix" }
        if bucket.count < 3 || bucket.count > 222 { return "must be 3 to 222 characters long" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
        if !bucket.allSatisfy({ allowed.contains($0) }) {
            return "may hold only lowercase letters, digits, '.', '-' and '_'"
        }
        let alphanumeric = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        if !alphanumeric.contains(bucket.first!) || !alphanumeric.contains(bucket.last!) {
            return "must start and end with a letter or digit"
        }
        return nil
    }

    private static func checkRegion(_ region: String) throws(StorageError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard !region.isEmpty, region.allSatisfy({ allowed.contains($0) }) else {
            throw .invalidConfiguration(
                "region \(String(reflecting: region)) may hold only lowercase letters, digits and '-' (e.g. us-east-1)")
        }
    }

    private static func parseEndpoint(_ text: String) throws(StorageError) -> URL {
        var text = text
        while text.hasSuffix("/") { text.removeLast() }
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else {
            throw .invalidConfiguration(
                "S3 endpoint \(String(reflecting: text)) is not http(s)://host[:port] (e.g. http://127.0.0.1:9000)")
        }
        guard components.path.isEmpty, components.query == nil, components.fragment == nil,
            components.user == nil, components.password == nil
        else {
            throw .invalidConfiguration(
                "S3 endpoint \(String(reflecting: text)) must be only scheme, host and port, without a path, query or user")
        }
        var clean = URLComponents()
        clean.scheme = scheme
        clean.host = host.lowercased()
        clean.port = components.port
        guard let url = clean.url else {
            throw .invalidConfiguration("S3 endpoint \(String(reflecting: text)) is not a valid URL")
        }
        return url
    }
}
