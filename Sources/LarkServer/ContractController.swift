import Hummingbird

/// `GET /openapi.json`: the OpenAPI 3.1 document of every route (`Contract/openapi.json`, also
/// `docs/openapi.json`), compiled into the binary like the web page. `ContractTests` keeps its
/// paths equal to the routes the controllers declare; `SchemathesisTests` checks the answers.
struct ContractController: Sendable {
    var routes: [Route] {
        [
            Route(.get, "/openapi.json", access: .open) { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                    body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_json)))
            }
        ]
    }
}
