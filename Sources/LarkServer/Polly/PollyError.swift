import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// An error as Amazon Polly answers it, which botocore (and every AWS SDK) turns into the
/// service's modelled exception: the exception's name in `x-amzn-ErrorType`, a JSON body with
/// `message`, and the status the service model gives it.
struct PollyError: FrontDoorError {
    var status: HTTPResponse.Status
    /// The exception's name (`TextLengthExceededException`, …).
    var type: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ type: String, _ message: String, status: HTTPResponse.Status = .badRequest, headers: HTTPFields = [:]) {
        self.type = type
        self.message = message
        self.status = status
        self.headers = headers
    }

    static func validation(_ message: String) -> PollyError { PollyError("ValidationException", message) }

    /// Lark's own error under Polly's name for it.
    init(_ error: APIError) {
        switch error.code {
        case "text_too_long":
            self.init("TextLengthExceededException", error.message)
        case "invalid_ssml":
            self.init("InvalidSsmlException", error.message)
        case "unsupported_sample_rate":
            self.init("InvalidSampleRateException", error.message)
        case "invalid_cursor":
            self.init("InvalidNextTokenException", error.message)
        case "invalid_api_key":
            self.init("UnrecognizedClientException", error.message, status: .forbidden, headers: error.headers)
        case "invalid_signature":
            self.init("InvalidSignatureException", error.message, status: .forbidden)
        case "insufficient_scope":
            self.init("AccessDeniedException", error.message, status: .forbidden)
        case "rate_limited":
            self.init("ThrottlingException", error.message, status: .tooManyRequests, headers: error.headers)
        case "method_not_allowed":
            self.init("UnknownOperationException", error.message, status: error.status, headers: error.headers)
        case "busy":
            // Retried by the SDKs, after `Retry-After`.
            self.init("ThrottlingException", error.message, status: .serviceUnavailable, headers: error.headers)
        case "client_closed_request":
            self.init("RequestCanceled", error.message, status: error.status)
        default:
            if error.status.code >= 500 {
                self.init("ServiceFailureException", error.message, status: .internalServerError)
            } else if error.status == .notFound, error.code == "not_found" {
                self.init("UnknownOperationException", error.message, status: .notFound)
            } else {
                self.init("ValidationException", error.message)
            }
        }
    }

    /// Runs a route's work, answering whatever it throws in Polly's shape with `requestID`.
    static func translating(_ logger: Logger, requestID: String, _ work: () async throws -> Response) async throws -> Response {
        do {
            var response = try await work()
            response.headers[.amznRequestID] = requestID
            return response
        } catch {
            var translated = (error as? PollyError) ?? PollyError(APIError.mapping(error, logger: logger))
            translated.headers[.amznRequestID] = requestID
            throw translated
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.amznErrorType] = type
        fields[.contentType] = "application/json"
        return try jsonResponse(Body(message: message), status: status, headers: fields)
    }

    private struct Body: Encodable {
        var message: String
    }
}

extension HTTPField.Name {
    static let amznErrorType = Self("x-amzn-ErrorType")!
    static let amznRequestID = Self("x-amzn-RequestId")!
    static let amznRequestCharacters = Self("x-amzn-RequestCharacters")!
}
