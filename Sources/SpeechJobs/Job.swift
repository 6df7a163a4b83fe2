import SpeechCore
import Foundation

/// Where a job is in its life (see `JobLifecycle` for the moves between them).
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    /// A job in one of these states never changes again (only retention removes it).
    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// What a job is asked to synthesize: the text and every synthesis and output setting, as the
/// client gave them (checked at submission; the worker turns them into engine options).
public struct JobSpec: Sendable, Codable, Equatable {
    public var text: String
    /// How `text` is written (nil: plain text, as jobs stored before SSML were).
    public var textType: SpeechInput.Markup?
    public var voice: String
    public var speaker: String?
    public var format: String
    public var sampleRate: Int?
    public var bitrate: Int?
    public var lengthScale: Float?
    public var noiseScale: Float?
    public var noiseW: Float?
    public var sentenceSilence: Double?
    public var callbackURL: String?
    /// The object key the audio is stored under; nil for the default `jobs/ID.EXT`.
    public var objectKey: String?
    /// The bucket the audio goes to instead of the store's own, with no store prefix (a Polly
    /// synthesis task's `OutputS3BucketName`); nil: the store's. Such audio is the client's:
    /// retention never deletes it.
    public var bucket: String?
    /// Where the default key starts instead of `jobs/` (Polly's `OutputS3KeyPrefix`): the key
    /// is `PREFIX` + the job's id + `.EXT`.
    public var keyPrefix: String?
    /// The API key (its name) that submitted the job, when the server has keys: only that key
    /// and admin keys see the job.
    public var owner: String?
    /// Whether the text is normalized; nil: the worker's default (`--no-normalize` turns it off).
    public var normalize: Bool?
    /// Captions to store next to the audio (`vtt` or `srt`), and characters per cue.
    public var captions: String?
    public var captionLength: Int?

    public init(
        text: String, voice: String, speaker: String? = nil, format: String = "wav", sampleRate: Int? = nil,
        bitrate: Int? = nil, lengthScale: Float? = nil, noiseScale: Float? = nil, noiseW: Float? = nil,
        sentenceSilence: Double? = nil, callbackURL: String? = nil, objectKey: String? = nil, normalize: Bool? = nil,
        textType: SpeechInput.Markup? = nil, bucket: String? = nil, keyPrefix: String? = nil,
        captions: String? = nil, captionLength: Int? = nil
    ) {
        self.textType = textType
        self.normalize = normalize
        self.bucket = bucket
        self.keyPrefix = keyPrefix
        self.captions = captions
        self.captionLength = captionLength
        self.text = text
        self.voice = voice
        self.speaker = speaker
        self.format = format
        self.sampleRate = sampleRate
        self.bitrate = bitrate
        self.lengthScale = lengthScale
        self.noiseScale = noiseScale
        self.noiseW = noiseW
        self.sentenceSilence = sentenceSilence
        self.callbackURL = callbackURL
        self.objectKey = objectKey
    }
}

/// A job as the store keeps it. Times are whole milliseconds since 1970 (what both databases
/// store exactly, with no time-zone conversions on the way).
public struct Job: Sendable, Equatable {
    public var id: String
    public var status: JobStatus
    public var spec: JobSpec
    public var idempotencyKey: String?
    /// Attempts started so far (a claim starts one).
    public var attempts: Int
    public var maxAttempts: Int
    public var sentencesDone: Int
    public var sentencesTotal: Int?
    /// Why the last attempt failed (kept after a retry succeeds, cleared on success).
    public var error: String?
    /// Where the audio is, once the job succeeded.
    public var objectKey: String?
    public var cancelRequested: Bool
    public var createdAt: Int64
    public var updatedAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// Not claimed before this time (a retry's back-off).
    public var availableAt: Int64
    public var leaseOwner: String?
    public var leaseExpiresAt: Int64?
    /// How the job's callback went; nil for a job without `callbackURL`.
    public var callback: CallbackState?

    public init(
        id: String, status: JobStatus, spec: JobSpec, idempotencyKey: String?, attempts: Int, maxAttempts: Int,
        sentencesDone: Int, sentencesTotal: Int?, error: String?, objectKey: String?, cancelRequested: Bool,
        createdAt: Int64, updatedAt: Int64, startedAt: Int64?, finishedAt: Int64?, availableAt: Int64,
        leaseOwner: String?, leaseExpiresAt: Int64?, callback: CallbackState? = nil
    ) {
        self.callback = callback
        self.id = id
        self.status = status
        self.spec = spec
        self.idempotencyKey = idempotencyKey
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.sentencesDone = sentencesDone
        self.sentencesTotal = sentencesTotal
        self.error = error
        self.objectKey = objectKey
        self.cancelRequested = cancelRequested
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.availableAt = availableAt
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
    }
}

/// Where a job's callback is: `pending` until it is delivered or given up on (`failed`, with
/// the last attempt's error: a receiver's status, a connection failure, or a URL the callback
/// policy refused when it was about to be sent).
public struct CallbackState: Sendable, Equatable {
    public var status: CallbackStatus
    public var attempts: Int
    public var lastError: String?

    public init(status: CallbackStatus, attempts: Int, lastError: String?) {
        self.status = status
        self.attempts = attempts
        self.lastError = lastError
    }
}

public enum CallbackStatus: String, Sendable, Codable, CaseIterable {
    case pending, delivered, failed
}

/// Milliseconds since 1970, the unit every stored time uses.
public struct Timestamp {
    public static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    public static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
    public static var now: Int64 { milliseconds(Date()) }
}

extension Duration {
    /// Whole milliseconds, for adding to stored times.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
