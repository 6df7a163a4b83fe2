import HTTPTypes
import Hummingbird

/// Limits checked on a request's head, before anything of its body is read: the URL's length
/// (414) and the declared body size (413, and the connection is closed rather than drained).
struct RequestLimitsMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxURLBytes: Int
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let url = request.head.path ?? ""
        guard url.utf8.count <= maxURLBytes else {
            throw APIError(
                .uriTooLong, code: "uri_too_long",
                message: "the URL is \(url.utf8.count) bytes, over this server's \(maxURLBytes); send long texts in a POST body")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            var headers = HTTPFields()
            headers[.connection] = "close"
            throw APIError(
                .contentTooLarge, code: "body_too_large",
                message: "the body is \(length) bytes, over this server's \(maxBodyBytes)", headers: headers)
        }
        return try await next(request, context)
    }
}
