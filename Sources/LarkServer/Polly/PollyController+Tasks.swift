import AudioEncoding
import AudioStorage
import Foundation
import Hummingbird
import SpeechCore
import SpeechJobs

/// Polly's synthesis tasks are Lark jobs whose audio goes to the bucket the task names
/// (`OutputS3BucketName`, keys `OutputS3KeyPrefix` + task id + extension), on the S3 service
/// Lark's storage settings point at. Every Lark job the caller's key may see is listed as a task.
extension PollyController {
    /// Polly's limit for a synthesis task.
    static let maxTaskCharacters = 200_000

    func startTask(_ request: Request) async throws -> Response {
        let jobs = try jobsContext()
        let fields = try await Self.decode(request, limit: Self.maxTaskCharacters)
        let checked = try await check(fields, limits: (total: Self.maxTaskCharacters, billed: Self.maxTaskCharacters))
        guard checked.marks == nil else {
            throw PollyError(
                "MarksNotSupportedForFormatException",
                "synthesis tasks with OutputFormat json (speech marks) are not supported on this server; use SynthesizeSpeech for speech marks")
        }
        guard let bucket = fields.OutputS3BucketName, !bucket.isEmpty else {
            throw PollyError.validation("OutputS3BucketName is required")
        }
        do {
            _ = try jobs.objects.bucket(bucket)
        } catch {
            throw PollyError("InvalidS3BucketException", error.message)
        }
        let prefix = fields.OutputS3KeyPrefix ?? ""
        if let problem = ObjectKey.problem(with: prefix + "task.mp3") {
            throw PollyError("InvalidS3KeyException", "OutputS3KeyPrefix '\(prefix)': \(problem)")
        }
        if fields.SnsTopicArn != nil {
            throw PollyError("InvalidSnsTopicArnException", "this server sends no SNS notifications; leave SnsTopicArn out and poll the task")
        }
        let spec = JobSpec(
            text: fields.Text, voice: checked.voice.voice, speaker: checked.voice.speaker, format: checked.format.rawValue,
            sampleRate: checked.sampleRate, normalize: checked.input.normalize, textType: checked.input.markup,
            bucket: bucket, keyPrefix: prefix)
        do {
            let (job, _) = try await JobController(jobs: jobs, defaultVoice: speech.configuration.defaultVoice).enqueue(spec, idempotencyKey: nil)
            return try jsonResponse(TaskAnswer(SynthesisTask: await task(job, jobs: jobs)))
        } catch SpeechError.textTooLong(let length, let limit) {
            throw PollyError("TextLengthExceededException", "the text has \(length) characters, more than this server's job limit of \(limit)")
        }
    }

    func getTask(_ context: LarkRequestContext) async throws -> Response {
        let jobs = try jobsContext()
        let id = try context.parameters.require("id")
        // Another key's task answers as if it did not exist.
        guard let job = try await jobs.store.job(id: id), RequestAccess.seesEverything || job.spec.owner == RequestAccess.owner else {
            throw PollyError("SynthesisTaskNotFoundException", "there is no synthesis task '\(id)' (finished tasks expire after the retention time)")
        }
        return try jsonResponse(TaskAnswer(SynthesisTask: await task(job, jobs: jobs)))
    }

    func listTasks(_ request: Request) async throws -> Response {
        let jobs = try jobsContext()
        let query = FormQuery(request.uri.query)
        var limit = 100
        if let raw = query.get("MaxResults") {
            guard let parsed = Int(raw), (1...100).contains(parsed) else {
                throw PollyError.validation("MaxResults must be a whole number from 1 to 100, got '\(raw)'")
            }
            limit = parsed
        }
        var status: JobStatus?
        if let raw = query.get("Status") {
            guard let parsed = Self.jobStatus(raw) else {
                throw PollyError.validation("Status must be scheduled, inProgress, completed or failed, got '\(raw)'")
            }
            status = parsed
        }
        let owner = RequestAccess.seesEverything ? nil : RequestAccess.owner
        let page = try await jobs.store.list(status: status, owner: owner, limit: limit, after: query.get("NextToken"))
        var tasks: [SynthesisTask] = []
        for job in page.jobs { tasks.append(await task(job, jobs: jobs)) }
        return try jsonResponse(TaskList(SynthesisTasks: tasks, NextToken: page.nextCursor))
    }

    private func jobsContext() throws -> JobsContext {
        guard let jobs else {
            throw PollyError("ServiceFailureException", "this server runs no jobs (--disable-jobs), so it has no synthesis tasks", status: .internalServerError)
        }
        return jobs
    }

    // MARK: - Shapes

    struct TaskAnswer: Encodable {
        var SynthesisTask: SynthesisTask
    }

    struct TaskList: Encodable {
        var SynthesisTasks: [SynthesisTask]
        var NextToken: String?
    }

    /// Polly's `SynthesisTask`.
    struct SynthesisTask: Encodable {
        var TaskId: String
        var TaskStatus: String
        var TaskStatusReason: String?
        /// Where the audio is (a presigned URL for S3), once it exists.
        var OutputUri: String?
        /// Seconds since 1970, as Polly's JSON protocol writes times.
        var CreationTime: Double
        var RequestCharacters: Int
        var OutputFormat: String
        var SampleRate: String?
        var VoiceId: String
        var TextType: String
    }

    func task(_ job: Job, jobs: JobsContext) async -> SynthesisTask {
        let format = AudioFormat(name: job.spec.format)
        var uri: String?
        if job.status == .succeeded, let key = job.objectKey {
            uri = await jobs.presenter.url(forKey: key, bucket: job.spec.bucket)
        }
        let reason: String? = switch job.status {
        case .failed: job.error
        case .cancelled: "cancelled"
        default: nil
        }
        return SynthesisTask(
            TaskId: job.id, TaskStatus: Self.taskStatus(job.status), TaskStatusReason: reason, OutputUri: uri,
            CreationTime: Double(job.createdAt) / 1000, RequestCharacters: job.spec.textType == .ssml ? Self.charactersOutsideTags(job.spec.text) : job.spec.text.unicodeScalars.count,
            OutputFormat: format.map(Self.pollyFormatName) ?? job.spec.format, SampleRate: job.spec.sampleRate.map(String.init),
            VoiceId: job.spec.voice, TextType: (job.spec.textType ?? .text).rawValue)
    }

    static func pollyFormatName(_ format: AudioFormat) -> String {
        switch format {
        case .mulawRaw: return "mulaw"
        case .alawRaw: return "alaw"
        default: return format.rawValue
        }
    }

    static func taskStatus(_ status: JobStatus) -> String {
        switch status {
        case .queued: return "scheduled"
        case .running: return "inProgress"
        case .succeeded: return "completed"
        case .failed, .cancelled: return "failed"
        }
    }

    static func jobStatus(_ taskStatus: String) -> JobStatus? {
        switch taskStatus {
        case "scheduled": return .queued
        case "inProgress": return .running
        case "completed": return .succeeded
        case "failed": return .failed
        default: return nil
        }
    }
}
