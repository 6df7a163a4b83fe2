import AccessControl
import Hummingbird

/// One route a controller declares: its method, its path in the router's syntax (`:name` or
/// `{name}` for one segment, `**` for the rest) and its handler. Each controller lists its routes
/// once; the router's registrations and the 405 table (`RouteTable`) are both made from that list.
struct Route: Sendable {
    let method: HTTPRequest.Method
    let path: String
    /// What a caller needs to be let in when the server has keys.
    let access: RouteAccess
    let handler: @Sendable (Request, LarkRequestContext) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, access: RouteAccess = .scope(.speak),
        _ handler: @escaping @Sendable (Request, LarkRequestContext) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }
}

/// What a route asks of a caller when the server has keys (see `AccessMiddleware`).
enum RouteAccess: Sendable, Equatable {
    /// Anyone: health checks, the web page's files.
    case open
    /// A key with this scope.
    case scope(Scope)
    /// The web page when the request has no `text` (anyone), speech when it has (`speak`).
    case pageOrSpeech
}

extension Router<LarkRequestContext> {
    func add(_ routes: [Route]) {
        for route in routes {
            on(RouterPath(route.path), method: route.method, use: route.handler)
        }
    }
}

/// The methods each registered path answers, for 405 answers with `Allow`.
struct RouteTable: Sendable {
    private let entries: [(segments: [Substring], method: HTTPRequest.Method, access: RouteAccess)]

    init(_ routes: [Route]) {
        entries = routes.map { (Self.segments($0.path), $0.method, $0.access) }
    }

    /// The access of the route that answers `method` on `path`; nil when none does (the
    /// router answers 404 or 405).
    func access(method: HTTPRequest.Method, path: String) -> RouteAccess? {
        let parts = Self.segments(path)
        // HEAD is answered by the GET route.
        let method = method == .head ? .get : method
        return entries.first { $0.method == method && Self.matches($0.segments, parts) }?.access
    }

    /// The methods of every route whose path matches `path`, in declaration order; nil when
    /// no route has this path.
    func allowedMethods(path: String) -> [HTTPRequest.Method]? {
        let parts = Self.segments(path)
        var methods: [HTTPRequest.Method] = []
        for entry in entries where Self.matches(entry.segments, parts) && !methods.contains(entry.method) {
            methods.append(entry.method)
        }
        return methods.isEmpty ? nil : methods
    }

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/")
    }

    private static func matches(_ pattern: [Substring], _ parts: [Substring]) -> Bool {
        for (index, segment) in pattern.enumerated() {
            if segment == "**" { return parts.count > index }
            guard index < parts.count else { return false }
            let parameter = segment.hasPrefix(":") || (segment.hasPrefix("{") && segment.hasSuffix("}")) || segment == "*"
            if !parameter, segment != parts[index] { return false }
        }
        return pattern.count == parts.count
    }
}
