import AccessControl
import ArgumentParser
import Foundation

/// Where the keys file is: `--keys-file`, else `LARK_KEYS_FILE`, else `keys.json` in the jobs
/// directory (`--jobs-dir`, `LARK_JOBS_DIR`, default ./lark-jobs), next to the job database.
struct KeysFileOption: ParsableArguments {
    @Option(name: [.customLong("keys-file"), .customLong("keys_file")],
            help: "The API keys file (default: keys.json in the jobs directory). With no such file the server is open. Env: LARK_KEYS_FILE.")
    var keysFile: String?

    @Option(name: [.customLong("jobs-dir"), .customLong("jobs_dir")], help: .hidden)
    var jobsDir: String?

    func resolvedPath() -> String {
        Self.path(keysFile: keysFile, jobsDir: jobsDir)
    }

    static func path(keysFile: String?, jobsDir: String?) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = keysFile ?? environment["LARK_KEYS_FILE"], !path.isEmpty { return path }
        let directory = jobsDir ?? environment["LARK_JOBS_DIR"] ?? FileManager.default.currentDirectoryPath + "/lark-jobs"
        return directory + "/keys.json"
    }
}

/// The server's access options: keys, rate limits, CORS.
struct AccessOptions: ParsableArguments {
    @Option(name: [.customLong("keys-file"), .customLong("keys_file")],
            help: "The API keys file (default: keys.json in the jobs directory); while it exists every request but /healthz, /readyz and the web page's files needs a key. Env: LARK_KEYS_FILE.")
    var keysFile: String?

    @Option(name: [.customLong("rate-limit"), .customLong("rate_limit")],
            help: "Requests per minute per key (per client address without keys); default: no limit. Env: LARK_RATE_LIMIT.")
    var rateLimit: Int?

    @Option(name: [.customLong("character-limit"), .customLong("character_limit")],
            help: "Characters of text per minute per key (per client address without keys); default: no limit. Env: LARK_CHARACTER_LIMIT.")
    var characterLimit: Int?

    @Option(name: [.customLong("cors-origin"), .customLong("cors_origin")],
            help: "An origin whose web pages may call this server, e.g. https://app.example.com (repeatable; default none: no CORS headers). Env: LARK_CORS_ORIGINS (comma-separated).")
    var corsOrigins: [String] = []

    func keysPath(jobsDir: String?) -> String {
        KeysFileOption.path(keysFile: keysFile, jobsDir: jobsDir)
    }

    func limits() throws -> RateLimiter.Limits {
        let environment = ProcessInfo.processInfo.environment
        func positive(_ value: Int?, _ variable: String, _ option: String) throws -> Int? {
            guard let value = value ?? environment[variable].flatMap({ Int($0) }) else { return nil }
            guard value > 0 else { throw ValidationError("\(option) must be a positive number per minute, got \(value)") }
            return value
        }
        return RateLimiter.Limits(
            requestsPerMinute: try positive(rateLimit, "LARK_RATE_LIMIT", "--rate-limit"),
            charactersPerMinute: try positive(characterLimit, "LARK_CHARACTER_LIMIT", "--character-limit"))
    }

    func origins() throws -> [String] {
        let fromEnvironment = (ProcessInfo.processInfo.environment["LARK_CORS_ORIGINS"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let origins = corsOrigins.isEmpty ? fromEnvironment : corsOrigins
        for origin in origins {
            // An origin is a scheme and a host (and port), nothing more: what browsers send.
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty, url.query == nil
            else {
                throw ValidationError("--cors-origin takes an origin such as https://app.example.com, got '\(origin)'")
            }
        }
        return origins
    }
}

/// `lark keys add|list|revoke`: the API keys a server accepts.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the API keys the server accepts (stored hashed in the keys file).",
        subcommands: [Add.self, List.self, Revoke.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a key and print it once.")
        @Argument(help: "A name for the key (letters, digits, '-', '_', '.'): shown in logs, and the SigV4 access key id.")
        var name: String
        @Option(help: "What the key may do: speak, jobs, admin, comma-separated.")
        var scopes: String = "speak,jobs"
        @Flag(help: "Print the key and its SigV4 credentials as one JSON object (for scripts).")
        var json = false
        @OptionGroup var file: KeysFileOption

        func run() throws {
            let scopes = try Scope.list(self.scopes)
            let keyFile = KeyFile(path: file.resolvedPath())
            let key: String
            do { key = try keyFile.add(name: name, scopes: scopes) } catch { throw fail(error.description) }
            if json {
                let document: [String: Any] = [
                    "name": name, "key": key, "scopes": scopes.map(\.rawValue), "aws_access_key_id": name,
                    "aws_secret_access_key": APIKey.signingSecret(key),
                ]
                let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print(key)
            let scopeList = scopes.map(\.rawValue).joined(separator: ",")
            FileHandle.standardError.write(Data("""
                Added key '\(name)' (\(scopeList)) to \(keyFile.path).
                It is shown only now: send it as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'.
                For SigV4 (the Polly API): access key id '\(name)', secret access key \(APIKey.signingSecret(key))

                """.utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys' names, scopes and creation dates (never the keys).")
        @OptionGroup var file: KeysFileOption
        @Flag(help: "As JSON.") var json = false

        func run() throws {
            let keyFile = KeyFile(path: file.resolvedPath())
            let keys: [StoredKey]
            do { keys = try keyFile.load() } catch { throw fail(error.description) }
            if json {
                struct Entry: Encodable { var name: String; var scopes: [String]; var created: String }
                let entries = keys.map {
                    Entry(name: $0.name, scopes: $0.scopes.map(\.rawValue),
                          created: ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval($0.created))))
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                return
            }
            if keys.isEmpty {
                FileHandle.standardError.write(Data("no keys in \(keyFile.path)\(keyFile.exists ? "" : " (no such file: the server is open)")\n".utf8))
            }
            for key in keys {
                let created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(key.created)))
                print("\(key.name)\t\(key.scopes.map(\.rawValue).joined(separator: ","))\t\(created)")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key; a running server stops accepting it within a second.")
        @Argument(help: "The key's name.") var name: String
        @OptionGroup var file: KeysFileOption

        func run() throws {
            let keyFile = KeyFile(path: file.resolvedPath())
            let removed: Bool
            do { removed = try keyFile.revoke(name: name) } catch { throw fail(error.description) }
            guard removed else { throw fail("no key named '\(name)' in \(keyFile.path)") }
            FileHandle.standardError.write(Data("revoked '\(name)'\n".utf8))
        }
    }
}
