import AudioEncoding
import AudioStorage
import Foundation
import HTTPTypes
import Hummingbird
import JobWorkers
import SpeechCore
import SpeechJobs

/// Everything the job routes need; built by the executable when jobs are enabled.
public struct JobsContext: Sendable {
    public var store: any JobStore
    public var objects: any ObjectStore
    public var renderer: JobRenderer
    public var presenter: JobPresenter
    /// This process's workers, if it runs any (to wake them on a submission).
    public var workers: JobWorkerService?
    public var maxTextCharacters: Int
    public var maxAttempts: Int
    /// `POST /api/texts`: member id → voice.
    public var members: [String: String]
    /// How long `POST /api/texts` waits for its job before answering 504 with the job id.
    public var textsTimeout: Duration
    /// Where `callback_url`s may point (checked at submission; the notifier checks again).
    public var callbacks: CallbackPolicy

    public init(
        store: any JobStore, objects: any ObjectStore, renderer: JobRenderer, presenter: JobPresenter,
        workers: JobWorkerService?, callbacks: CallbackPolicy, maxTextCharacters: Int = 200_000, maxAttempts: Int = 3,
        members: [String: String] = [:], textsTimeout: Duration = .seconds(300)
    ) {
        self.callbacks = callbacks
        self.store = store
        self.objects = objects
        self.renderer = renderer
        self.presenter = presenter
        self.workers = workers
        self.maxTextCharacters = maxTextCharacters
        self.maxAttempts = maxAttempts
        self.members = members
        self.textsTimeout = textsTimeout
    }
}

/// The asynchronous job API (`/api/v1/jobs…`), the seed's `POST /api/texts`, and `/files/…`
/// for finished audio kept in the local object store. Handlers translate HTTP to store calls and back.
struct JobController: Sendable {
    let jobs: JobsContext
    let defaultVoice: String
    private let fileIO = FileIO()

    init(jobs: JobsContext, defaultVoice: String) {
        self.jobs = jobs
        self.defaultVoice = defaultVoice
    }

    /// Every route of this controller: registered as listed, and the source of the 405 table.
    var routes: [Route] {
        [
            Route(.post, "/api/v1/jobs", access: .scope(.jobs)) { request, context in try await submit(request, context: context) },
            Route(.get, "/api/v1/jobs", access: .scope(.jobs)) { request, _ in try await list(request) },
            Route(.get, "/api/v1/jobs/:id", access: .scope(.jobs)) { _, context in try await show(context) },
            Route(.delete, "/api/v1/jobs/:id", access: .scope(.jobs)) { _, context in try await cancel(context) },
            Route(.get, "/api/v1/jobs/:id/audio", access: .scope(.jobs)) { _, context in try await audio(context) },
            Route(.post, "/api/texts", access: .scope(.jobs)) { request, context in try await submitText(request, context: context) },
            Route(.get, "/files/**", access: .scope(.jobs)) { _, context in try await file(context) },
        ]
    }

    // MARK: - Job API

    /// The body of `POST /api/v1/jobs`.
    struct JobBody: Decodable {
        var text: String
        var voice: String?
        var speaker: LenientString?
        var format: String?
        var sample_rate: Int?
        var bitrate: Int?
        var length_scale: Float?
        var noise_scale: Float?
        var noise_w: Float?
        var sentence_silence: Double?
        var callback_url: String?
        var idempotency_key: String?
        var normalize: RequestSwitch?
        /// `text` (the default) or `ssml`.
        var text_type: String?
        /// Captions stored next to the audio: `vtt` or `srt`, with `caption_length` characters per cue.
        var captions: String?
        var caption_length: Int?
    }

    private func submit(_ request: Request, context: LarkRequestContext) async throws -> Response {
        let body = try await decodeJSONBody(JobBody.self, request, textLimit: jobs.maxTextCharacters)
        let spec = JobSpec(
            text: body.text, voice: body.voice ?? defaultVoice, speaker: body.speaker?.value, format: body.format ?? "wav",
            sampleRate: body.sample_rate, bitrate: body.bitrate, lengthScale: body.length_scale, noiseScale: body.noise_scale,
            noiseW: body.noise_w, sentenceSilence: body.sentence_silence, callbackURL: body.callback_url,
            normalize: try body.normalize?.value(name: RequestSwitch.normalize),
            textType: body.text_type == nil ? nil : try TextType.markup(textType: body.text_type),
            captions: body.captions, captionLength: body.caption_length)
        let key = body.idempotency_key ?? request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key, key.isEmpty || key.count > 200 {
            throw APIError(.badRequest, code: "invalid_idempotency_key", message: "idempotency_key must be 1 to 200 characters")
        }
        let (job, created) = try await enqueue(spec, idempotencyKey: key)
        var headers: HTTPFields = [.location: "/api/v1/jobs/\(job.id)"]
        if !created { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return try await documentResponse(job, status: created ? .accepted : .ok, headers: headers)
    }

    /// Checks the spec as a live request would be checked, then queues it.
    func enqueue(_ spec: JobSpec, idempotencyKey: String?) async throws -> (Job, Bool) {
        var spec = spec
        spec.owner = RequestAccess.owner
        // Blank text is refused by `check` below, with the live routes' other checks.
        try TextLimit.check(spec.text, limit: jobs.maxTextCharacters)
        try RequestAccess.chargeCharacters(spec.text.unicodeScalars.count)
        // One key's idempotency keys never find another key's jobs.
        let idempotencyKey = idempotencyKey.map { key in spec.owner.map { "\($0)\u{1}\(key)" } ?? key }
        if let callback = spec.callbackURL {
            do throws(CallbackRefusal) {
                _ = try await jobs.callbacks.check(callback)
            } catch {
                throw APIError(.badRequest, code: error.code, message: error.message)
            }
        }
        try await jobs.renderer.check(spec)
        let result = try await jobs.store.enqueue(spec, idempotencyKey: idempotencyKey, maxAttempts: jobs.maxAttempts, now: Timestamp.now)
        if result.created { jobs.workers?.jobSubmitted() }
        return result
    }

    private func list(_ request: Request) async throws -> Response {
        let query = FormQuery(request.uri.query)
        var status: JobStatus?
        if let raw = query.get("status") {
            guard let parsed = JobStatus(rawValue: raw) else {
                throw APIError(
                    .badRequest, code: "invalid_status",
                    message: "status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")), got '\(raw)'")
            }
            status = parsed
        }
        var limit = 50
        if let raw = query.get("limit") {
            guard let parsed = Int(raw), (1...500).contains(parsed) else {
                throw APIError(.badRequest, code: "invalid_limit", message: "limit must be a whole number from 1 to 500, got '\(raw)'")
            }
            limit = parsed
        }
        let owner = RequestAccess.seesEverything ? nil : RequestAccess.owner
        let page = try await jobs.store.list(status: status, owner: owner, limit: limit, after: query.get("cursor"))
        var documents: [JobDocument] = []
        for job in page.jobs { documents.append(await jobs.presenter.document(job)) }
        return try jsonResponse(JobList(jobs: documents, next_cursor: page.nextCursor), status: .ok)
    }

    private struct JobList: Encodable {
        var jobs: [JobDocument]
        var next_cursor: String?
    }

    private func show(_ context: LarkRequestContext) async throws -> Response {
        try await documentResponse(try await existingJob(context), status: .ok)
    }

    private func cancel(_ context: LarkRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let before = try await jobs.store.job(id: id), Self.visible(before) else { throw Self.unknownJob(id) }
        guard !before.status.isFinal else {
            throw APIError(.conflict, code: "job_finished", message: "job \(id) has already ended (\(before.status.rawValue))")
        }
        guard let job = try await jobs.store.cancel(id: id, now: Timestamp.now) else { throw Self.unknownJob(id) }
        return try await documentResponse(job, status: .ok)
    }

    private func audio(_ context: LarkRequestContext) async throws -> Response {
        let job = try await existingJob(context)
        guard job.status == .succeeded, let key = job.objectKey else {
            throw APIError(
                .conflict, code: "audio_not_ready", message: "job \(job.id) is \(job.status.rawValue); its audio exists once it has succeeded")
        }
        switch try await jobs.objects.location(of: key, expiresIn: .seconds(3600)) {
        case .localFile(let path):
            let contentType = AudioFormat(name: job.spec.format)?.contentType ?? "application/octet-stream"
            return Response(status: .ok, headers: [.contentType: contentType], body: try await fileIO.loadFile(path: path, context: context))
        case .url(let url):
            return Response(status: .found, headers: [.location: url.absoluteString])
        }
    }

    private func existingJob(_ context: LarkRequestContext) async throws -> Job {
        let id = try context.parameters.require("id")
        guard let job = try await jobs.store.job(id: id), Self.visible(job) else { throw Self.unknownJob(id) }
        return job
    }

    /// Whether the request's key may see `job`: its own, or any with an admin key (or no keys).
    /// Another key's job answers as if it did not exist.
    private static func visible(_ job: Job) -> Bool {
        RequestAccess.seesEverything || job.spec.owner == RequestAccess.owner
    }

    private static func unknownJob(_ id: String) -> APIError {
        APIError(.notFound, code: "unknown_job", message: "there is no job '\(id)' (finished jobs expire after the retention time)")
    }

    // MARK: - The seed's POST /api/texts

    struct TextBody: Decodable {
        var uuid: LenientString
        var member_id: LenientString
        var text: String
        var created_at: LenientString
    }

    /// The answer to `POST /api/texts`: the seed's fields, the job and where its audio is.
    struct TextAnswer: Encodable {
        var uuid: String
        var member_id: String
        var created_at: String
        var job_id: String
        var status: String
        var audio_url: String?
    }

    /// Queues the text for the member's voice under the seed's object key, waits for it, and
    /// answers the seed's fields plus `audio_url`. The same uuid again returns the same job.
    private func submitText(_ request: Request, context: LarkRequestContext) async throws -> Response {
        let body = try await decodeJSONBody(TextBody.self, request, textLimit: jobs.maxTextCharacters)
        let uuid = try Self.keyPart(body.uuid.value, name: "uuid")
        let member = try Self.keyPart(body.member_id.value, name: "member_id")
        let createdAt = try Self.keyPart(body.created_at.value, name: "created_at")
        guard let voice = jobs.members[member] else {
            throw APIError(
                .notFound, code: "unknown_member",
                message: "member '\(member)' has no voice; the server maps members with --member ID=VOICE or --members-file")
        }
        let spec = JobSpec(text: body.text, voice: voice, format: "wav", objectKey: "wav_files/\(member)/\(uuid)_\(createdAt)_voice.wav")
        var (job, _) = try await enqueue(spec, idempotencyKey: "texts:\(uuid)")
        let deadline = ContinuousClock.now + jobs.textsTimeout
        while !job.status.isFinal, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            job = try await jobs.store.job(id: job.id) ?? job
        }
        switch job.status {
        case .succeeded:
            var url: String?
            if let key = job.objectKey { url = await jobs.presenter.url(forKey: key) }
            return try jsonResponse(TextAnswer(
                uuid: body.uuid.value, member_id: body.member_id.value, created_at: body.created_at.value, job_id: job.id,
                status: job.status.rawValue, audio_url: url))
        case .failed, .cancelled:
            throw APIError(
                .internalServerError, code: "job_\(job.status.rawValue)",
                message: "the speech for \(uuid) was not made: \(job.error ?? job.status.rawValue)")
        case .queued, .running:
            throw APIError(
                .gatewayTimeout, code: "job_pending",
                message: "the speech for \(uuid) is not ready yet; follow /api/v1/jobs/\(job.id)")
        }
    }

    /// A part of an object key taken from the client: no path separators, no `..`, no control
    /// characters, so it can never leave its folder in any store.
    static func keyPart(_ value: String, name: String) throws -> String {
        let bad = value.isEmpty || value.count > 128 || value.contains("/") || value.contains("\\") || value.contains("..")
            || value.unicodeScalars.contains { $0.properties.generalCategory == .control }
        guard !bad else {
            throw APIError(
                .badRequest, code: "invalid_\(name)",
                message: "\(name) must be 1 to 128 characters without '/', '\\', '..' or control characters")
        }
        return value
    }

    // MARK: - Local files

    private func file(_ context: LarkRequestContext) async throws -> Response {
        // The path arrives percent-encoded (a key may hold spaces, `+` or `:`): decode each part.
        let key = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }.joined(separator: "/")
        // Only finished files: the store's temporary `.NAME.UUID.partial` files, and any other
        // hidden name, are never served.
        guard !key.split(separator: "/").contains(where: { $0.hasPrefix(".") }), let url = jobs.objects.file(forKey: key) else {
            throw APIError(.notFound, code: "not_found", message: "no stored file '\(key)'")
        }
        let contentType = AudioFormat.allCases.first { $0.fileExtension == url.pathExtension }?.contentType ?? "application/octet-stream"
        return Response(status: .ok, headers: [.contentType: contentType], body: try await fileIO.loadFile(path: url.path, context: context))
    }

    // MARK: - Encoding

    private func documentResponse(_ job: Job, status: HTTPResponse.Status, headers: HTTPFields = [:]) async throws -> Response {
        try jsonResponse(await jobs.presenter.document(job), status: status, headers: headers)
    }
}
