import AudioStorage
import Foundation
import SpeechJobs
import SpeechMarks

/// A job as clients see it, in the API's answers and in callbacks: the same JSON in both.
public struct JobDocument: Encodable, Sendable {
    public var id: String
    public var status: String
    public var voice: String
    /// The text's first characters (a job's text can be 200,000 characters long).
    public var text_preview: String
    public var format: String
    public var attempts: Int
    public var max_attempts: Int
    public var progress: Progress
    public var error: String?
    public var audio_url: String?
    /// The captions' URL, for a job that asked for them (`captions`).
    public var captions_url: String?
    public var object_key: String?
    public var idempotency_key: String?
    public var cancel_requested: Bool
    public var created_at: String
    public var updated_at: String
    public var started_at: String?
    public var finished_at: String?
    public var expires_at: String?
    /// How the callback went; only for jobs with a `callback_url`.
    public var callback: Callback?

    public struct Progress: Encodable, Sendable {
        public var sentences_done: Int
        public var sentences_total: Int?
    }

    public struct Callback: Encodable, Sendable {
        /// `pending`, `delivered` or `failed`.
        public var status: String
        public var attempts: Int
        public var last_error: String?
    }
}

/// Builds `JobDocument`s: audio URLs come from the object store (a presigned URL for S3, a path
/// under `/files/` on this server for the local directory, made absolute with `publicURL`).
public struct JobPresenter: Sendable {
    let objects: any ObjectStore
    /// How clients reach this server (`http://host:port`), for local audio URLs.
    let publicURL: String
    let retention: Duration
    let urlLifetime: Duration

    public init(objects: any ObjectStore, publicURL: String, retention: Duration, urlLifetime: Duration = .seconds(3600)) {
        self.objects = objects
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.retention = retention
        self.urlLifetime = urlLifetime
    }

    public func document(_ job: Job) async -> JobDocument {
        var audioURL: String?
        var captionsURL: String?
        if job.status == .succeeded, let key = job.objectKey {
            audioURL = await url(forKey: key, bucket: job.spec.bucket)
            if let format = job.spec.captions.flatMap({ Captions.Format(rawValue: $0.lowercased()) }) {
                captionsURL = await url(forKey: JobCaptions.key(forAudioKey: key, format: format), bucket: job.spec.bucket)
            }
        }
        return JobDocument(
            id: job.id, status: job.status.rawValue, voice: job.spec.voice, text_preview: Self.preview(job.spec.text),
            format: job.spec.format, attempts: job.attempts,
            max_attempts: job.maxAttempts,
            progress: .init(sentences_done: job.sentencesDone, sentences_total: job.sentencesTotal),
            error: job.error, audio_url: audioURL, captions_url: captionsURL, object_key: job.objectKey, idempotency_key: job.idempotencyKey,
            cancel_requested: job.cancelRequested, created_at: Self.iso(job.createdAt), updated_at: Self.iso(job.updatedAt),
            started_at: job.startedAt.map(Self.iso), finished_at: job.finishedAt.map(Self.iso),
            expires_at: job.finishedAt.map { Self.iso($0 + retention.milliseconds) },
            callback: job.callback.map { .init(status: $0.status.rawValue, attempts: $0.attempts, last_error: $0.lastError) })
    }

    /// Where a client downloads the object, or nil when the store cannot say (it is unreachable).
    /// `bucket`: the bucket a job named for its audio (nil: the store's own).
    public func url(forKey key: String, bucket: String? = nil) async -> String? {
        let store: any ObjectStore
        if let bucket {
            guard let other = try? objects.bucket(bucket) else { return nil }
            store = other
        } else {
            store = objects
        }
        switch try? await store.location(of: key, expiresIn: urlLifetime) {
        case .localFile?: return publicURL + "/files/" + Self.escapePath(key)
        case .url(let url)?: return url.absoluteString
        case nil: return nil
        }
    }

    static func preview(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.count > 80 ? String(trimmed.prefix(79)) + "…" : trimmed
    }

    static func escapePath(_ key: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%;+")
        return key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
    }

    /// One format style for every date (a value type: no formatter built per field).
    private static let isoStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func iso(_ milliseconds: Int64) -> String {
        isoStyle.format(Timestamp.date(milliseconds))
    }
}

/// Where a job's captions are stored: beside its audio, under the audio's key with the
/// captions' extension in place of the audio's (`jobs/ID.mp3` → `jobs/ID.vtt`).
public enum JobCaptions {
    public static func key(forAudioKey key: String, format: Captions.Format) -> String {
        let name = key.split(separator: "/", omittingEmptySubsequences: false).last ?? Substring(key)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return key + "." + format.fileExtension }
        return String(key[..<dot]) + "." + format.fileExtension
    }
}
