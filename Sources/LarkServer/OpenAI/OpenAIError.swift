import Hummingbird
import Logging

/// An error as OpenAI's API writes it, `{"error": {"message", "type", "param", "code"}}`, with
/// the status its SDKs map to their exception classes (400 `BadRequestError`, 404
/// `NotFoundError`, 422, 429, 503 with `Retry-After`, …).
struct OpenAIError: FrontDoorError {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, message: String, param: String? = nil, code: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers
        type = Self.type(of: status)
    }

    /// Lark's own error in OpenAI's shape: same status, message and headers (`Retry-After`), its
    /// code kept, and the request field it is about where that is known.
    init(_ error: APIError) {
        // OpenAI's own name for being over a rate limit, which its clients look for.
        let code = error.code == "rate_limited" ? "rate_limit_exceeded" : error.code
        self.init(error.status, message: error.message, param: Self.param(ofCode: error.code), code: code, headers: error.headers)
    }

    /// Runs a route's work, answering whatever it throws in OpenAI's shape.
    static func translating(_ logger: Logger, _ work: () async throws -> Response) async throws -> Response {
        do {
            return try await work()
        } catch let error as OpenAIError {
            throw error
        } catch {
            throw OpenAIError(APIError.mapping(error, logger: logger))
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return try jsonResponse(Body(error: .init(message: message, type: type, param: param, code: code)), status: status, headers: fields)
    }

    /// OpenAI's error types by status.
    private static func type(of status: HTTPResponse.Status) -> String {
        switch status.code {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 429: return "rate_limit_error"
        case 500...: return "server_error"
        default: return "invalid_request_error"
        }
    }

    /// The request field a shared error code is about.
    private static func param(ofCode code: String) -> String? {
        switch code {
        case "empty_text", "invalid_text", "text_too_long": return "input"
        case "unknown_voice", "unknown_speaker", "speaker_out_of_range": return "voice"
        case "unsupported_format", "unsupported_sample_rate": return "response_format"
        default: return nil
        }
    }

    /// `param` and `code` are written as `null` when absent, as OpenAI does.
    private struct Body: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }

        var error: Detail
    }
}
