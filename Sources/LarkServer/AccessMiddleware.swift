import AccessControl
import HTTPTypes
import Hummingbird
import NIOCore

/// Who a request is from, for the code it runs: job ownership, the characters-per-minute limit.
/// Set by `AccessMiddleware` around the route's handler (a task-local value: the handler and
/// everything it awaits see it).
public struct RequestAccess: Sendable {
    /// The key's identity; nil when the server has no keys.
    public var identity: Identity?
    /// What rate limits count by: `key:NAME`, or `address:IP` when the server has no keys.
    public var client: String
    let limiter: RateLimiter?

    @TaskLocal public static var current: RequestAccess?

    /// The owner recorded on what this request creates (jobs): the key's name, or nil.
    public static var owner: String? { current?.identity?.name }

    /// Whether this request may see everything, whoever made it (admin keys, or no keys at all).
    public static var seesEverything: Bool {
        guard let current else { return true }
        guard let identity = current.identity else { return true }
        return identity.allows(.admin)
    }

    /// Takes `count` characters from the caller's per-minute allowance, or throws 429.
    public static func chargeCharacters(_ count: Int) throws {
        guard let current, let limiter = current.limiter else { return }
        do {
            try limiter.admitCharacters(current.client, count: count)
        } catch {
            throw APIError.rateLimited(error)
        }
    }
}

/// The one gate every request passes: keys (when the server has a keys file), the scope the
/// route needs, and the per-client request rate. `/healthz`, `/readyz` and the web page's files
/// stay open; an unknown path goes on to the router's 404.
///
/// A missing and a wrong key get the same 401: the answer never says whether a key exists.
struct AccessMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let keys: KeyRing?
    let limiter: RateLimiter?
    let routes: RouteTable
    /// The largest body a SigV4-signed request may have (its body is read to check the signature).
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let access = routes.access(method: request.method, path: request.uri.path) else {
            return try await next(request, context)
        }
        let needed: Scope?
        switch access {
        case .open: needed = nil
        case .scope(let scope): needed = scope
        case .pageOrSpeech: needed = request.uri.queryParameters["text"] == nil ? nil : .speak
        }
        guard let needed else { return try await next(request, context) }

        var identity: Identity?
        var request = request
        if let keys, keys.enforcing {
            let found: Identity
            if request.headers[.authorization]?.hasPrefix(SigV4Verifier.scheme + " ") == true {
                do {
                    (found, request) = try await SigV4Verifier(keys: keys, maxBodyBytes: maxBodyBytes).verify(request)
                } catch SigV4Verifier.Failure.unknownKey {
                    throw APIError.unauthorized
                } catch SigV4Verifier.Failure.badSignature(let why) {
                    throw APIError(.forbidden, code: "invalid_signature", message: why)
                }
            } else {
                guard let presented = Self.presentedKey(request), let key = keys.identify(key: presented) else {
                    throw APIError.unauthorized
                }
                found = key
            }
            // Admin keys read every job; other routes need their own scope.
            guard found.allows(needed) || (needed == .jobs && found.allows(.admin)) else {
                throw APIError.forbidden(scope: needed)
            }
            identity = found
        }
        let client = identity.map { "key:\($0.name)" } ?? "address:\(Self.address(context.remoteAddress))"
        if let limiter {
            do {
                try limiter.admitRequest(client)
            } catch {
                throw APIError.rateLimited(error)
            }
        }
        return try await RequestAccess.$current.withValue(RequestAccess(identity: identity, client: client, limiter: limiter)) {
            try await next(request, context)
        }
    }

    /// `Authorization: Bearer KEY` (what the OpenAI SDK sends) or `X-Api-Key: KEY`.
    static func presentedKey(_ request: Request) -> String? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return request.headers[HTTPField.Name("X-Api-Key")!]
    }

    static func address(_ address: SocketAddress?) -> String {
        address?.ipAddress ?? "unknown"
    }
}

extension APIError {
    static var unauthorized: APIError {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer realm=\"lark\""
        return APIError(
            .unauthorized, code: "invalid_api_key",
            message: "this server needs an API key: send it as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'", headers: headers)
    }

    static func forbidden(scope: Scope) -> APIError {
        APIError(.forbidden, code: "insufficient_scope", message: "this key does not have the '\(scope.rawValue)' scope this route needs")
    }

    static func rateLimited(_ refusal: RateLimiter.Refusal) -> APIError {
        var headers = HTTPFields()
        headers[.retryAfter] = String(refusal.retryAfterSeconds)
        return APIError(
            .tooManyRequests, code: "rate_limited",
            message: "over this client's limit of \(refusal.limit); retry in \(refusal.retryAfterSeconds) s", headers: headers)
    }
}
