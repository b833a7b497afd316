import Foundation
import HawserClient
import HawserTestSupport
import Testing

/// `hawser worker run` (docs/node.md, "Roles"): one binary whose roles are chosen when it starts.
@Suite(.timeLimit(.minutes(3))) struct WorkerCommandTests {
    /// The whole node and the notary it uses in one process (`--roles all,notary`): a flow
    /// notarised by the notary beside it completes, and SIGTERM stops both.
    @Test func aNodeAndItsNotaryRunInOneWorker() async throws {
        let dir = try TemporaryDirectory()
        let base = try PaymentNetwork.freeBase()
        let made = try await HawserProcess.run(["network", "init", dir.path + "/net", "--nodes", "Alice", "--notary", "single",
                                                "--base-port", "\(base)"])
        #expect(made.status == 0, "\(made.output)")
        let (worker, _) = try await HawserProcess.worker(["--roles", "all,notary", "--config", dir.path + "/net/alice/node.json",
                                                          "--notary-config", dir.path + "/net/notary/hawser.json"])
        let password = try String(contentsOfFile: dir.path + "/net/alice/rpc-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = NodeClient(urls: ["http://127.0.0.1:\(base + 10)"], username: "admin", password: password,
                                retryPolicy: RetryPolicy(maxAttempts: 100, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(200),
                                                         attemptTimeout: .seconds(10), deadline: .seconds(60)))
        let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice, L=London, C=GB","amount":5}"#.utf8),
                                          clientRequestId: "in-one-process")
        try await client.shutdown()
        #expect(issued.status == "completed", "\(issued.error ?? "")")
        try await eventually("both roles said they listen") {
            worker.printed.contains(#""service":"node""#) && worker.printed.contains(#""service":"notary""#)
        }
        #expect(await worker.terminate() == 0)
    }

    /// Roles that do not exist, a split of a node that is not hot-hot, and a role without its file
    /// are refused before anything starts.
    @Test func wrongRolesAreRefused() async throws {
        let dir = try TemporaryDirectory()
        let made = try await HawserProcess.run(["network", "init", dir.path + "/net", "--nodes", "Alice", "--notary", "single",
                                                "--base-port", "\(try PaymentNetwork.freeBase())"])
        #expect(made.status == 0, "\(made.output)")
        let node = dir.path + "/net/alice/node.json"
        for (arguments, said) in [
            (["--roles", "rpc,gateway", "--config", node], #"--roles names "gateway"; the roles are rpc, flow, p2p, notary and all"#),
            (["--roles", "rpc", "--config", node], "splits a node's roles, which needs ha.mode hot-hot"),
            (["--roles", "rpc,flow,rpc", "--config", node], #"--roles names "rpc" twice"#),
            (["--roles", "rpc,all", "--config", node], #"--roles names "rpc" twice (`all` is rpc, flow and p2p)"#),
            (["--roles", "notary"], "the role notary runs a notary: give its file with --notary-config"),
            (["--roles", "flow"], "the roles rpc, flow and p2p run a node: give its file with --config"),
        ] {
            let (status, output) = try await HawserProcess.run(["worker", "run"] + arguments)
            #expect(status != 0 && output.contains(said), "\(arguments): \(output)")
        }
    }
}
