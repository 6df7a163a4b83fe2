import HTTPTypes
import Hummingbird

/// Cross-origin access for the origins the operator names (`--cors-origin`), and for no other:
/// with none, no CORS header is ever sent. A preflight from another origin is refused (403);
/// a simple request from one is answered without CORS headers, so its page cannot read it.
/// The headers themselves come from Hummingbird's `CORSMiddleware`, one per allowed origin.
struct CORSGate<Context: RequestContext>: RouterMiddleware {
    private let byOrigin: [String: CORSMiddleware<Context>]

    /// What the OpenAI and AWS SDKs send besides the usual, so their browser builds pass preflight.
    static var allowedHeaders: [HTTPField.Name] {
        var names: [HTTPField.Name] = [.accept, .authorization, .contentType, .origin, .cacheControl]
        for name in [
            "X-Api-Key", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token", "X-Amz-User-Agent",
            "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta",
            "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
            "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count", "X-Stainless-Timeout",
            "X-Stainless-Async", "Idempotency-Key",
        ] {
            names.append(HTTPField.Name(name)!)
        }
        return names
    }

    init(origins: [String]) {
        var byOrigin: [String: CORSMiddleware<Context>] = [:]
        for origin in origins {
            byOrigin[origin] = CORSMiddleware(
                allowOrigin: .custom(origin), allowHeaders: Self.allowedHeaders,
                allowMethods: [.get, .post, .delete, .head, .options],
                exposedHeaders: ["Retry-After", "x-amzn-RequestId", "x-amzn-RequestCharacters", "x-amzn-ErrorType", "Location"],
                maxAge: .seconds(600))
        }
        self.byOrigin = byOrigin
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        if let allowed = byOrigin[origin] {
            return try await allowed.handle(request, context: context, next: next)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            throw APIError(.forbidden, code: "cors_origin_denied", message: "cross-origin requests from \(origin) are not allowed here")
        }
        return try await next(request, context)
    }
}
