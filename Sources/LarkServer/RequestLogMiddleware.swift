import Dispatch
import HTTPTypes
import Hummingbird
import Logging

/// One log line per request when its response has been written (so streamed responses are
/// logged with their full duration), carrying Hummingbird's request id, which is also returned to
/// the client in `X-Request-Id` so a user's report can be found in the log.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let level: Logger.Level

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let id = context.id
        let logger = context.logger
        let level = level
        let line = "\(request.method.rawValue) \(request.uri.path)"
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = id
            let status = response.status.code
            response.body = response.body.afterWriting {
                logger.log(level: level, "\(line) \(status) \(Self.seconds(since: start))")
            }
            return response
        } catch let error as any HTTPResponseError {
            logger.log(level: level, "\(line) \(error.status.code) \(Self.seconds(since: start))")
            throw RequestIDError(base: error, id: id)
        }
    }

    private static func seconds(since start: UInt64) -> String {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return "\((elapsed * 1000).rounded() / 1000)s"
    }
}

/// An error response with the request id added to its headers.
struct RequestIDError: HTTPResponseError {
    let base: any HTTPResponseError
    let id: String

    var status: HTTPResponse.Status { base.status }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try base.response(from: request, context: context)
        response.headers[.requestID] = id
        return response
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
}

extension ResponseBody {
    /// The same body (same length), calling `done` once it has been written or has failed.
    func afterWriting(_ done: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        return ResponseBody(contentLength: contentLength) { writer in
            defer { done() }
            try await body.write(writer)
        }
    }
}
