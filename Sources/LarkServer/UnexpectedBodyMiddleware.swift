import Hummingbird

/// Reads and drops the body of a request whose method takes none (GET, HEAD, DELETE), before
/// its route runs: up to `limit` bytes, a larger one is answered 413.
///
/// Why: a route that watches its connection for the client going away
/// (`consumeWithCancellationOnInboundClose`) hands the request's body to a stream nobody reads;
/// with a body larger than that stream's buffer, the watch never ended, the request was never
/// answered and the socket stayed in CLOSE-WAIT. Collecting the body first keeps the request
/// whole for Hummingbird (the original body stays underneath), so the watch still works.
struct UnexpectedBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard [.get, .head, .delete].contains(request.method), Self.hasBody(request) else {
            return try await next(request, context)
        }
        var request = request
        do {
            _ = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError(
                .contentTooLarge, code: "body_too_large",
                message: "\(request.method.rawValue) takes no body, and this one is over \(limit / 1024) KiB")
        }
        return try await next(request, context)
    }

    private static func hasBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength].flatMap(Int.init) { return length > 0 }
        return request.headers[.transferEncoding] != nil
    }
}
