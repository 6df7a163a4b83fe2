import Foundation
@testable import LarkServer
import Logging
import Testing

/// The OpenAPI document (`docs/openapi.json`, served at `/openapi.json`) against the routes the
/// controllers declare: every route is documented, and the document has no operation the server
/// does not route. `SchemathesisTests` checks the answers themselves.
@Suite struct ContractTests {
    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(PackageResources.openapi_json)) as? [String: Any])
    }

    /// A path with every parameter segment (`:id`, `{id}`, `**`) written `{}`: the names may differ
    /// (Polly calls a task's id `TaskId`), the shape may not.
    static func shape(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix(":") || segment.hasPrefix("{") || segment == "**" ? "{}" : String(segment)
        }.joined(separator: "/")
    }

    /// "METHOD shape" of every route `lark serve` registers (with the job routes).
    static func declaredOperations() async throws -> Set<String> {
        Set(try await RouteWalkTests.declaredRoutes().map { "\($0.method.rawValue) \(shape($0.path))" })
    }

    static func documentedOperations(_ document: [String: Any]) throws -> Set<String> {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var operations: Set<String> = []
        for (path, item) in paths {
            for method in item.keys where methods.contains(method) {
                operations.insert("\(method.uppercased()) \(shape(path))")
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationIsRouted() async throws {
        let declared = try await Self.declaredOperations()
        let documented = try Self.documentedOperations(try Self.document())
        #expect(declared.count >= 30)
        #expect(declared.subtracting(documented).sorted() == [], "routes missing from docs/openapi.json")
        #expect(documented.subtracting(declared).sorted() == [], "operations in docs/openapi.json that no route answers")
    }

    /// OpenAPI 3.1, both key schemes, and no `$ref` that leads nowhere.
    @Test func documentIsOpenAPI31WithResolvableReferences() throws {
        let document = try Self.document()
        #expect(document["openapi"] as? String == "3.1.0")
        let components = try #require(document["components"] as? [String: Any])
        let schemes = try #require(components["securitySchemes"] as? [String: [String: Any]])
        #expect(schemes["bearer"]?["scheme"] as? String == "bearer")
        #expect(schemes["apiKey"]?["name"] as? String == "X-Api-Key")
        var references: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let reference = object["$ref"] as? String { references.append(reference) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(document)
        #expect(references.count > 50)
        for reference in Set(references) {
            var node: Any? = document
            for key in reference.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(key)] }
            #expect(node != nil, "\(reference) leads nowhere")
        }
        // Every operation lists its answers by status, its successes and its errors (no `default`,
        // so that schemathesis checks each status the server sends against the list).
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for (path, item) in paths {
            for (method, operation) in item where Self.methods.contains(method) {
                let statuses = ((operation as? [String: Any])?["responses"] as? [String: Any])?.keys.sorted() ?? []
                #expect(statuses.contains { $0.hasPrefix("2") }, "\(method) \(path) documents no success")
                #expect(statuses.contains("400") && statuses.contains("401"), "\(method) \(path) documents no errors")
                #expect(!statuses.contains("default"), "\(method) \(path) has a default answer")
            }
        }
    }
}

/// What schemathesis found the document got wrong, kept so that it stays right.
extension ContractTests {
    static func operation(_ path: String, _ method: String) throws -> [String: Any] {
        let paths = try #require(try document()["paths"] as? [String: [String: Any]])
        return try #require(paths[path]?[method] as? [String: Any])
    }

    static func okTypes(_ operation: [String: Any]) -> Set<String> {
        let ok = (operation["responses"] as? [String: Any])?["200"] as? [String: Any]
        return Set(((ok?["content"] as? [String: Any]) ?? [:]).keys)
    }

    @Test func schemathesisFindingsStayFixed() throws {
        // Polly's headerless G.711 goes out as audio/mulaw and audio/alaw.
        #expect(Self.okTypes(try Self.operation("/v1/speech", "post")).isSuperset(of: ["audio/mulaw", "audio/alaw"]))
        // OpenAI's SSE answer: an event object whose data is JSON, not a bare string.
        let speech = try Self.operation("/v1/audio/speech", "post")
        let ok = (speech["responses"] as? [String: Any])?["200"] as? [String: Any]
        let sse = ((ok?["content"] as? [String: Any])?["text/event-stream"] as? [String: Any])?["schema"] as? [String: Any]
        #expect(sse?["type"] as? String == "object")
        // A body field sent as null counts as absent (Swift's decoders read it so).
        let body = try #require(((try Self.document()["components"] as? [String: Any])?["schemas"] as? [String: Any])?["SpeechBody"] as? [String: Any])
        let stream = (body["properties"] as? [String: Any])?["stream"] as? [String: Any]
        #expect((stream?["type"] as? [String])?.contains("null") == true)
        // Limits the server sets (413 text_too_long) are not schema limits.
        let jobText = ((try #require(((try Self.document()["components"] as? [String: Any])?["schemas"] as? [String: Any])?["JobBody"] as? [String: Any]))["properties"] as? [String: Any])?["text"] as? [String: Any]
        #expect(jobText?["maxLength"] == nil)
    }
}
