import ArgumentParser
import Foundation
import LarkServer
import Logging
import ServiceLifecycle
import SpeechCore
import SpeechService
import WyomingServer

/// `lark wyoming`: the Wyoming server alone, with `serve`'s voice options; its `--host` and
/// `--port` are the Wyoming server's (default port 10200, as wyoming-piper's).
struct Wyoming: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run only the Wyoming server (Home Assistant's voice protocol), with serve's voice options.",
        // Said outright: the `Serve` option group would otherwise make it read `lark serve wyoming`.
        usage: "lark wyoming [--wyoming-zeroconf [NAME]] [<serve's options>]")

    @OptionGroup var serve: Serve

    func run() async throws {
        try await serve.start(servingHTTP: false)
    }
}

/// `lark serve`'s Wyoming options: off unless a port is given.
struct WyomingOptions: ParsableArguments {
    @Option(name: .customLong("wyoming-port"),
            help: "Also serve the Wyoming protocol (Home Assistant) on this TCP port (default: off). Env: LARK_WYOMING_PORT.")
    var port: Int?
    @Option(name: .customLong("wyoming-host"), help: "Address the Wyoming server listens on (default: --host). Env: LARK_WYOMING_HOST.")
    var host: String?
    @Flag(name: .customLong("wyoming-zeroconf"),
          help: "Advertise the Wyoming server as _wyoming._tcp for Home Assistant's discovery, through the system's Avahi (avahi-daemon and avahi-publish); a name may follow, as with wyoming-piper's --zeroconf [NAME]. Env: LARK_WYOMING_ZEROCONF=1.")
    var zeroconf = false
    @Flag(name: .customLong("wyoming-allow-remote"),
          help: "Let the Wyoming server listen on an address other machines can reach. The Wyoming protocol has no authentication: anyone who can connect can synthesize. Env: LARK_WYOMING_ALLOW_REMOTE=1.")
    var allowRemote = false
    @Option(name: .customLong("wyoming-zeroconf-name"), help: "The name it is advertised under (default: lark). Env: LARK_WYOMING_ZEROCONF_NAME.")
    var zeroconfName: String?

    /// `--wyoming-zeroconf [NAME]`, taken as wyoming-piper takes `--zeroconf [NAME]`. ArgumentParser
    /// has no option whose value may be left out, so a name right after the flag (or after `=`)
    /// becomes `--wyoming-zeroconf-name NAME` before parsing. Only for `serve` and `wyoming`, which
    /// take no positional arguments, so a bare word after the flag can only be the name.
    static func expandingZeroconfName(_ arguments: [String]) -> [String] {
        guard let command = arguments.first, command == "serve" || command == "wyoming" else { return arguments }
        var expanded: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument.hasPrefix("--wyoming-zeroconf=") {
                expanded += ["--wyoming-zeroconf", "--wyoming-zeroconf-name", String(argument.dropFirst("--wyoming-zeroconf=".count))]
            } else if argument == "--wyoming-zeroconf", index < arguments.endIndex, !arguments[index].hasPrefix("-") {
                expanded += [argument, "--wyoming-zeroconf-name", arguments[index]]
                index += 1
            } else {
                expanded.append(argument)
            }
        }
        return expanded
    }

    /// The Wyoming server to run beside the HTTP server, sharing its voices, limits, scheduler
    /// and metrics, and its zeroconf advertisement where asked; none when no port is given.
    /// `standalone`: instead of the HTTP server, with the command line's own `--host` and
    /// `--port` (`lark wyoming`).
    func services(
        http: ServerConfiguration, standalone: (host: String?, port: Int?)?, library: VoiceLibrary, scheduler: SynthesisScheduler, metrics: ServerMetrics,
        logger: Logger
    ) throws -> [(name: String, service: any Service)] {
        let environment = ProcessInfo.processInfo.environment
        var port = port ?? environment["LARK_WYOMING_PORT"].flatMap { Int($0) }
        var host = host ?? environment["LARK_WYOMING_HOST"] ?? http.host
        if let standalone {
            // LARK_PORT is the HTTP server's: only the command line's `--port` counts here.
            port = standalone.port ?? port ?? 10200
            host = standalone.host ?? host
        }
        guard let port else { return [] }
        guard (0...65535).contains(port) else { throw fail("--wyoming-port must be between 0 and 65535, got \(port)") }
        // Wyoming has no API keys: reachable from other machines only when asked for by name.
        guard Self.isLoopback(host) || allowRemote || environmentFlag(environment["LARK_WYOMING_ALLOW_REMOTE"]) == true else {
            throw fail(
                "the Wyoming server would listen on \(host), which other machines can reach, and the Wyoming protocol has no authentication; listen on 127.0.0.1 (--wyoming-host) or add --wyoming-allow-remote (LARK_WYOMING_ALLOW_REMOTE=1)")
        }
        let configuration = WyomingConfiguration(
            host: host, port: port, defaultVoice: http.defaultVoice, defaultOptions: http.defaultOptions,
            maxTextCharacters: http.maxTextCharacters, maxRequestAudio: http.maxRequestAudio,
            writeTimeout: http.writeTimeout, normalize: http.normalize)
        let server = WyomingServer(
            configuration: configuration, library: library, scheduler: scheduler, metrics: WyomingServerMetrics(metrics: metrics),
            logger: logger)
        var services: [(name: String, service: any Service)] = [("wyoming server", server)]
        if zeroconf || environmentFlag(environment["LARK_WYOMING_ZEROCONF"]) == true {
            if Self.isLoopback(host) {
                logger.warning("zeroconf: the Wyoming server listens on \(host) only; other machines cannot reach what is advertised")
            }
            let name = zeroconfName ?? environment["LARK_WYOMING_ZEROCONF_NAME"] ?? "lark"
            services.append(("zeroconf advertisement", ZeroconfAdvertisement(name: name, port: port, logger: logger)))
        }
        return services
    }
}

extension WyomingOptions {
    /// Whether `host` is only reachable from this machine: localhost, ::1 or 127.0.0.0/8.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}

/// The Wyoming server's figures in the HTTP server's metrics, under route `wyoming`.
struct WyomingServerMetrics: WyomingMetrics {
    let metrics: ServerMetrics

    func timeToFirstAudio(_ duration: Duration) {
        metrics.recordTimeToFirstAudio(route: "wyoming", duration)
    }

    func produced(_ chunk: AudioChunk, voice: String) {
        metrics.countAudio(chunk, voice: voice)
    }

    func rejected() {
        metrics.countRejected()
    }
}
