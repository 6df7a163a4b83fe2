import Foundation
import Hummingbird
import Logging
import AudioEncoding
import SpeechCore
import SpeechJobs
import AudioStorage
import VoiceCatalog

/// Every error the server answers with: a status and `{"error": {"code", "message"}}`.
/// Domain errors are mapped to HTTP here, once; anything unexpected becomes a 500 whose
/// detail is logged, never sent.
struct APIError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    init(_ error: SpeechError) {
        let status: HTTPResponse.Status
        switch error {
        case .emptyText, .invalidText, .invalidSSML, .invalidOption: status = .badRequest
        case .textTooLong: status = .contentTooLarge
        case .unknownVoice: status = .notFound
        case .unknownSpeaker, .speakerOutOfRange: status = .unprocessableContent
        case .voiceFileMissing, .invalidVoiceConfig, .invalidModel, .engineUnavailable: status = .serviceUnavailable
        case .synthesisFailed: status = .internalServerError
        }
        // Never the files' paths: the middleware logs the full message.
        self.init(status, code: error.code, message: error.clientMessage)
    }

    init(_ error: AudioOutputError) {
        let status: HTTPResponse.Status
        switch error {
        case .unknownFormat: status = .badRequest
        case .unsupportedSampleRate, .bitrateNotApplicable, .bitrateOutOfRange, .unsupportedSettings: status = .unprocessableContent
        case .encoderFailed: status = .internalServerError
        case .audioTooLong: status = .contentTooLarge
        }
        self.init(status, code: error.code, message: error.message)
    }

    init(_ error: CatalogError) {
        let status: HTTPResponse.Status
        switch error {
        case .unknownVoice: status = .notFound
        case .invalidName: status = .badRequest
        case .notInDownloadDirectory: status = .conflict
        // Someone else's server failed us: the catalog or file host, not this server or the client.
        case .catalogUnreachable, .invalidCatalog, .downloadFailed, .checksumMismatch, .sizeMismatch: status = .badGateway
        case .notWritable: status = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        }
        self.init(status, code: error.code, message: error.clientMessage)
    }

    static let downloadsDisabled = APIError(
        .forbidden, code: "downloads_disabled",
        message: "this server does not download voices; start it with --allow-downloads, or run `lark voices download NAME`")

    static func audioTooLong(limitSeconds: Int) -> APIError {
        APIError(
            .contentTooLarge, code: "audio_too_long",
            message: "this request makes more than \(AudioOutputError.spoken(seconds: limitSeconds)) of audio, the most this server "
                + "makes for one request (--max-request-audio); for longer audio, POST /api/v1/jobs")
    }

    /// A JSON route given a body of another type (a form, plain text): refused before it is
    /// read, so that a web page cannot post to the API without a CORS preflight.
    static func unsupportedMediaType(_ contentType: String?) -> APIError {
        APIError(
            .unsupportedMediaType, code: "unsupported_media_type",
            message: "this route takes a JSON body: send it with Content-Type: application/json"
                + (contentType.map { ", not \($0)" } ?? " (the request had no Content-Type)"))
    }

    static func busy(retryAfter seconds: Int) -> APIError {
        var headers = HTTPFields()
        headers[.retryAfter] = String(seconds)
        return APIError(
            .serviceUnavailable, code: "busy",
            message: "the server is at its synthesis limit; retry in \(seconds) s", headers: headers)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return try jsonResponse(Body(error: .init(code: code, message: message)), status: status, headers: fields)
    }

    /// `{"error": {"code", "message"}}`.
    private struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }

        var error: Detail
    }
}

/// An error already in a front door's own wire shape (OpenAI's, Polly's): the middleware lets
/// it through as it is.
protocol FrontDoorError: HTTPResponseError {}

/// Turns any error into an `APIError`, logging what is not the client's fault.
struct ErrorMappingMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The server's routes, for 405 answers on a path that has other methods.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any FrontDoorError {
            throw error
        } catch let error as HTTPError
            where error.status == .notFound
            && routes.allowedMethods(path: request.uri.path).map({ !$0.contains(request.method) }) == true
        {
            // The path exists, with other methods: 405 and the ones it has.
            let allowed = (routes.allowedMethods(path: request.uri.path) ?? []).map(\.rawValue)
            var headers = HTTPFields()
            headers[.allow] = allowed.joined(separator: ", ")
            throw doorShaped(APIError(
                .methodNotAllowed, code: "method_not_allowed",
                message: "\(request.method.rawValue) is not allowed on \(request.uri.path); use \(allowed.joined(separator: " or "))",
                headers: headers), path: request.uri.path)
        } catch {
            throw doorShaped(APIError.mapping(error, logger: context.logger), path: request.uri.path)
        }
    }

    /// An error raised outside a front door's handlers (keys, rate limits, 405) on one of its
    /// paths, in that door's shape, so that its SDKs raise their own exceptions.
    private func doorShaped(_ error: APIError, path: String) -> any HTTPResponseError {
        if OpenAIController.owns(path) { return OpenAIError(error) }
        if PollyController.owns(path) {
            var shaped = PollyError(error)
            shaped.headers[.amznRequestID] = UUID().uuidString.lowercased()
            return shaped
        }
        return error
    }
}

extension APIError {
    /// Any error as the status, code and message a client gets: domain errors mapped once, here
    /// (the front doors translate the result into their own shapes); what is not the client's
    /// fault is logged, and an unexpected error becomes a 500 whose detail stays in the log.
    static func mapping(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as SpeechError:
            if error.namesLocalFiles { logger.error("speech error: \(error.message)") }
            return APIError(error)
        case let error as AudioOutputError:
            return APIError(error)
        case let error as CatalogError:
            if error.namesLocalFiles { logger.error("voice catalog error: \(error.message)") }
            return APIError(error)
        case is CancellationError:
            // The client went away before its answer was ready (nginx's 499).
            return APIError(
                HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"), code: "client_closed_request",
                message: "the client closed the connection before the audio was ready")
        case let error as JobStoreError:
            switch error {
            case .invalidCursor: return APIError(.badRequest, code: "invalid_cursor", message: error.description)
            case .invalidLocation, .unavailable, .corruptRow:
                logger.error("job store error: \(error)")
                return APIError(.serviceUnavailable, code: "queue_unavailable", message: "the job queue is not available; try again later")
            }
        case let error as StorageError:
            // The detail (paths, endpoints) goes to the log; the client gets `message`.
            logger.error("object storage error: \(error)")
            return APIError(.serviceUnavailable, code: "storage_unavailable", message: "the audio store is not available: \(error.message)")
        case let error as HTTPError:
            let code = error.status == .notFound ? "not_found" : error.status == .methodNotAllowed ? "method_not_allowed" : "http_error"
            return APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase)
        default:
            logger.error("unexpected error: \(String(describing: error))")
            return APIError(.internalServerError, code: "internal_error", message: "an internal error occurred; see the server log")
        }
    }
}
