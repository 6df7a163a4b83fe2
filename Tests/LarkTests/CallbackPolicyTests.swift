import Foundation
import Logging
@testable import JobWorkers
import Testing

/// Where callbacks may go, without a server: every refused range, IPv6 forms of IPv4
/// addresses, names that resolve into a refused range, and what the operator allows.
@Suite struct CallbackPolicyTests {
    static let refused: [(url: String, range: String)] = [
        ("http://127.0.0.1:9/", "loopback"), ("http://127.8.9.10/", "loopback"), ("http://[::1]:9/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"), ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.1/", "private"), ("http://172.16.5.4/", "private"), ("http://172.31.255.255/", "private"),
        ("http://192.168.1.1/", "private"), ("http://[fc00::1]/", "private (unique local)"), ("http://[fd12:3456::1]/", "private (unique local)"),
        ("http://224.0.0.1/", "multicast"), ("http://239.1.2.3/", "multicast"), ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"), ("http://[::]/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"), ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[::ffff:169.254.169.254]/", "link-local"), ("http://[64:ff9b::c0a8:101]/", "private"),
        ("https://100.64.0.1/", "private (shared address space)"),
    ]

    @Test func everyRefusedRangeIsRefused() async throws {
        let policy = try CallbackPolicy()
        for (url, range) in Self.refused {
            do {
                _ = try await policy.check(url)
                Issue.record("\(url) was allowed")
            } catch {
                #expect(error.code == "callback_url_not_allowed", "\(url)")
                guard case .notAllowed(_, _, let named) = error else { Issue.record("\(url): \(error)"); continue }
                #expect(named == range, "\(url): \(named)")
            }
        }
    }

    @Test func publicAddressesAndTheOperatorsAllowancesPass() async throws {
        let policy = try CallbackPolicy(allow: ["192.168.7.0/24", "::1", "hooks.internal"]) { host in
            host == "hooks.internal" ? [IPAddress("10.9.9.9")!] : host == "public.example" ? [IPAddress("93.184.216.34")!] : []
        }
        for url in ["http://93.184.216.34/hook", "https://[2606:4700::1111]/", "http://192.168.7.9:8080/", "http://[::1]:9/",
                    "http://[::ffff:192.168.7.1]/", "http://hooks.internal/x", "https://public.example/done"] {
            do {
                _ = try await policy.check(url)
            } catch {
                Issue.record("\(url) was refused: \(error)")
            }
        }
        // Outside the allowed block, still refused.
        await #expect(throws: CallbackRefusal.self) { _ = try await policy.check("http://192.168.8.1/") }
        await #expect(throws: CallbackRefusal.self) { _ = try await policy.check("http://127.0.0.1/") }
    }

    @Test func aNameIsJudgedByEveryAddressItResolvesTo() async throws {
        // One public address and one private one: refused.
        let mixed = try CallbackPolicy { _ in [IPAddress("93.184.216.34")!, IPAddress("10.1.1.1")!] }
        await #expect(throws: CallbackRefusal.notAllowed(host: "rebind.example", address: "10.1.1.1", range: "private")) {
            _ = try await mixed.check("http://rebind.example/")
        }
        // `localhost` through the system's resolver (getaddrinfo off the event loop).
        await #expect(throws: CallbackRefusal.self) { _ = try await CallbackPolicy().check("http://localhost:9/") }
        // A name with no address.
        let nowhere = try CallbackPolicy { _ in [] }
        await #expect(throws: CallbackRefusal.unresolvable(host: "nowhere.invalid")) { _ = try await nowhere.check("http://nowhere.invalid/") }
        // Numeric forms getaddrinfo reads as 127.0.0.1.
        for url in ["http://2130706433/", "http://127.1/", "http://0x7f000001/"] {
            await #expect(throws: CallbackRefusal.self, "\(url)") { _ = try await CallbackPolicy().check(url) }
        }
    }

    @Test func onlyHTTPURLsAndWellFormedAllowancesAreAccepted() async throws {
        for url in ["ftp://example.com/", "not a url", "file:///etc/passwd", "http:///path"] {
            await #expect(throws: CallbackRefusal.invalidURL(url)) { _ = try await CallbackPolicy().check(url) }
        }
        #expect(throws: CallbackPolicyError.self) { try CallbackPolicy(allow: ["10.0.0.0/33"]) }
        #expect(throws: CallbackPolicyError.self) { try CallbackPolicy(allow: ["not a host"]) }
        #expect(CIDRBlock("172.16.0.0/12")?.contains(IPAddress("172.31.1.1")!) == true)
        #expect(CIDRBlock("172.16.0.0/12")?.contains(IPAddress("172.32.0.1")!) == false)
        #expect(IPAddress("::ffff:127.0.0.1")?.normalized == IPAddress("127.0.0.1"))
    }
}

/// The notifier in-process, against a loopback receiver, with a resolver of the test's own.
@Suite struct CallbackNotifierTests {
    @Test func aNamesAddressesAreTriedInOrderWhileConnectingFails() async throws {
        let receiver = VoiceFileServer(files: ["hook": Data()])
        try await receiver.run { base in
            let port = try #require(URL(string: base)?.port)
            // The first address has nothing listening (connection refused), the second is the receiver.
            let policy = try CallbackPolicy(allow: ["127.0.0.0/8"]) { _ in [IPAddress("127.0.0.2")!, IPAddress("127.0.0.1")!] }
            let notifier = CallbackNotifier(policy: policy, store: nil, attempts: 1, logger: Logger(label: "test"))
            #expect(await notifier.send(Data("{}".utf8), to: "http://hooks.test:\(port)/hook", jobID: "j1"))
            #expect(receiver.requests(to: "hook").count == 1)
            // Refused by the policy: nothing is sent.
            let strict = CallbackNotifier(policy: try CallbackPolicy { _ in [IPAddress("127.0.0.1")!] }, store: nil, attempts: 1, logger: Logger(label: "test"))
            #expect(await strict.send(Data("{}".utf8), to: "http://hooks.test:\(port)/hook", jobID: "j2") == false)
            #expect(receiver.requests(to: "hook").count == 1)
        }
    }
}
