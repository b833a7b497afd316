import Foundation
import HawserClient
import HawserNode
import HawserTestSupport
import Testing

/// Hot-cold on real processes: two `hawser watchdog`s on one SQLite lease, each with a
/// `hawser node run` child on one shared node directory (one machine standing in for two).
@Suite(.serialized, .timeLimit(.minutes(3))) struct WatchdogProcessTests {
    /// A node directory with a fixed RPC port (every child of either watchdog serves on it).
    struct HotCold: ~Copyable {
        let directory: TemporaryDirectory
        let port: Int

        init() throws {
            let directory = try TemporaryDirectory()
            try writeNodeFiles(in: directory.path)
            let port = try FreePorts.take(1)[0]
            var configuration = try NodeConfiguration.load(directory.path + "/node.json")
            configuration.listen.port = port
            try configuration.save(directory.path + "/node.json")
            self.directory = directory
            self.port = port
        }

        var url: String { "http://127.0.0.1:\(port)" }

        /// A watchdog on the shared lease; its child is `child`, or a node on the shared directory.
        func watchdog(_ id: String, child: [String]? = nil, leaseMs: Int = 1500, _ extra: [String] = []) throws -> WatchdogProcess {
            let node = [HawserProcess.binary, "node", "run", "--config", directory.path + "/node.json", "--log-level", "error"]
            return try WatchdogProcess(id: id, directory: directory.path, arguments: [
                "--sqlite", directory.path + "/lease.sqlite", "--lease-ms", String(leaseMs), "--renew-ms", "100",
                "--request-timeout-ms", "500", "--stand-aside-ms", "1000",
                "--health", url + "/health/ready", "--health-interval-ms", "100", "--advertise", url,
                "--backoff-initial-ms", "2000", "--stop-grace-ms", "5000",
            ] + extra + ["--"] + (child ?? node))
        }
    }

    /// The watchdog leads with an epoch, its child runs with that epoch in HAWSER_FENCE_EPOCH
    /// and is healthy. Returns the epoch.
    @discardableResult
    static func leadsWithHealthyChild(_ watchdog: WatchdogProcess, after count: Int = 0) async throws -> UInt64 {
        let leader = try await watchdog.await("leader", after: count)
        let started = try await watchdog.await("child-started", after: count)
        #expect(started.epoch == leader.epoch)
        let pid = try #require(started.pid)
        // The watchdog may report the child before the child's exec is done: until then its
        // /proc environment is the watchdog's own (the suite saw the variable missing once).
        try await eventually("the child's exec") { environment(ofProcess: pid)["HAWSER_FENCE_EPOCH"] != nil }
        #expect(environment(ofProcess: pid)["HAWSER_FENCE_EPOCH"] == leader.epoch.map(String.init),
                "the child's HAWSER_FENCE_EPOCH is the epoch its watchdog won")
        try await watchdog.await("child-healthy", after: count) { $0.generation == started.generation }
        return try #require(leader.epoch)
    }

    static func client(_ url: String) -> NodeClient {
        NodeClient(urls: [url], username: "ops", password: "secret",
                   retryPolicy: RetryPolicy(maxAttempts: 100, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(200),
                                            attemptTimeout: .seconds(10), deadline: .seconds(60)))
    }

    @Test func killNineOfTheActiveNodeHandsOverToTheOtherWatchdogAtOnce() async throws {
        let setup = try HotCold()
        // A lease of two minutes: B can lead within the test only through A's resignation.
        let a = try setup.watchdog("A", leaseMs: 120_000)
        let first = try await Self.leadsWithHealthyChild(a)
        let b = try setup.watchdog("B", leaseMs: 120_000)
        try await b.await("follower") { $0.fields["leader"] == "A" }

        let client = Self.client(setup.url)
        let issued = try await client.run("IssueTokens", arguments: Array("{\"owner\":\"O=Alice\",\"amount\":5}".utf8),
                                          clientRequestId: "before-the-crash")
        #expect(issued.status == "completed")

        let child = try #require(a.events.first { $0.event == "child-started" }?.pid)
        kill(child, SIGKILL)
        let exited = try await a.await("child-exited")
        #expect(exited.fields["status"] == "killed by signal 9")
        let resigned = try await a.await("resigning")
        #expect(resigned.fields["reason"] == "child exited: killed by signal 9")
        try await a.await("child-failed") { $0.fields["backoffMs"] == "2000" }

        // B takes over long before A's lease could have lapsed, with a higher epoch, on the same data.
        let second = try await Self.leadsWithHealthyChild(b)
        #expect(second > first)
        #expect(try await client.flow(clientRequestId: "before-the-crash")?.status == "completed")
        // A stands again after its back-off, as a follower of B.
        try await a.await("follower") { $0.fields["leader"] == "B" }
        try await client.shutdown()
    }

    @Test func killNineOfTheActiveWatchdogWithItsNodeHandsOverAfterTheLease() async throws {
        let setup = try HotCold()
        let a = try setup.watchdog("A")
        let first = try await Self.leadsWithHealthyChild(a)
        let b = try setup.watchdog("B")
        try await b.await("follower") { $0.fields["leader"] == "A" }

        // The whole machine goes: the watchdog and its child together.
        let child = try #require(a.events.first { $0.event == "child-started" }?.pid)
        a.kill()
        kill(child, SIGKILL)
        let second = try await Self.leadsWithHealthyChild(b)
        #expect(second > first)
        let client = Self.client(setup.url)
        #expect(try await client.run("IssueTokens", arguments: Array("{\"owner\":\"O=Bob\",\"amount\":1}".utf8)).status == "completed")
        try await client.shutdown()
    }

    @Test func aChildThatNeverBecomesHealthyIsNotKeptAsMaster() async throws {
        let setup = try HotCold()
        // A's child runs but never answers its health URL.
        let a = try setup.watchdog("A", child: ["/bin/sleep", "600"], ["--start-timeout-ms", "1500", "--backoff-initial-ms", "60000", "--backoff-max-ms", "60000"])
        try await a.await("leader")
        let b = try setup.watchdog("B")

        let failed = try await a.await("child-failed")
        #expect(failed.fields["reason"] == "not healthy within 1500 ms of its start")
        try await a.await("resigning")
        #expect(try await a.await("child-exited").fields["status"] == "killed by signal 15")
        try await a.await("not-standing")
        try await Self.leadsWithHealthyChild(b)
        #expect(a.role?.event == "not-standing", "A stands aside while it backs off")
    }

    @Test func sigtermStopsTheChildFirstThenWithdrawsAndTheOtherTakesOver() async throws {
        let setup = try HotCold()
        // A lease long enough that the node's graceful stop fits in the hold (a child not gone by
        // four fifths of it is killed), on a loaded machine too.
        let a = try setup.watchdog("A", leaseMs: 6000)
        try await Self.leadsWithHealthyChild(a)
        let b = try setup.watchdog("B")
        try await b.await("follower") { $0.fields["leader"] == "A" }

        a.terminate()
        let exited = try await a.await("child-exited")
        #expect(exited.fields["status"] == "exit status 0", "the node shut down gracefully on SIGTERM")
        #expect(await a.exitStatus() == 0)
        try await a.await("stopped")
        try await Self.leadsWithHealthyChild(b)
        // A held leadership until its child had exited: B's child never ran beside it.
        let bStarted = try await b.await("child-started")
        #expect(bStarted.t > exited.t)
    }

    /// A child that answers every GET on the port given first with 200 (once it can listen on it),
    /// and takes the seconds given second to stop on SIGTERM (as a node does whose engine is slow
    /// to stop).
    static let slowStoppingChild = """
        import http.server, os, signal, sys, time
        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
            def log_message(self, *args): pass
        def stop(*args):
            time.sleep(float(sys.argv[2])); os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        while True:
            try:
                server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health)
                break
            except OSError:
                time.sleep(0.05)
        server.serve_forever()
        """

    /// A switchover while A's child takes `stopSeconds` to stop, on a lease of `leaseMs`:
    /// - 1 s on a 6 s lease: A's hold for the stop (0.9 of the lease at most) outlasts it, and the
    ///   child exits by itself. Failed before its fix: A's election released the lease for B as
    ///   soon as it saw the switchover, so B started its child while A's was still stopping.
    /// - 30 s on a 1.5 s lease: A kills its child before the hold ends. Failed before its fix: the
    ///   child, given the 5 s stop grace, ran beside B's once A let go (an outside checker saw
    ///   2.4 s of it).
    /// Either way B's child starts only after A's has exited (beside it, under a newer epoch, the
    /// old child's last writes would be refused, a node's replay markers left behind).
    @Test(arguments: [(1, 6000, "exit status 0"), (30, 1500, "killed by signal 9")])
    func aSwitchoverStopsTheChildBeforeTheOtherWatchdogStartsOne(stopSeconds: Int, leaseMs: Int, status expected: String) async throws {
        let setup = try HotCold()
        let child = ["/usr/bin/python3", "-c", Self.slowStoppingChild, String(setup.port), String(stopSeconds)]
        let a = try setup.watchdog("A", child: child, leaseMs: leaseMs)
        try await Self.leadsWithHealthyChild(a)
        let b = try setup.watchdog("B", child: child, leaseMs: leaseMs)
        try await b.await("follower") { $0.fields["leader"] == "A" }

        let (status, output) = try await HawserProcess.run(["admin", "switchover", "--to", "B", "--sqlite", setup.directory.path + "/lease.sqlite"])
        #expect(status == 0, "\(output)")
        let exited = try await a.await("child-exited")
        #expect(exited.fields["status"] == expected)
        try await Self.leadsWithHealthyChild(b)
        let bStarted = try await b.await("child-started")
        #expect(bStarted.t > exited.t, "B's child started while A's was still stopping")
        a.terminate()
        b.terminate()
        #expect(await a.exitStatus() == 0)
        #expect(await b.exitStatus() == 0)
    }

    @Test func badSettingsAreRefusedAtStartUpWithASentence() async throws {
        let directory = try TemporaryDirectory()
        let base = ["watchdog", "--id", "A", "--sqlite", directory.path + "/lease.sqlite", "--health", "http://127.0.0.1:1/health/ready"]
        let cases: [(arguments: [String], says: String)] = [
            (base, "give the child's command after --"),
            (base + ["--", "no-such-command-here"], "is not on PATH"),
            (base + ["--", directory.path + "/missing"], "is not an executable file"),
            (base + ["--advertise", "10.0.0.1:8090", "--", "/bin/true"], "10.0.0.1:8090 is not an http(s) URL"),
            (base + ["--backoff-initial-ms", "5000", "--backoff-max-ms", "1000", "--", "/bin/true"], "the maximum back-off must be at least the initial one"),
            (base + ["--health-failures", "0", "--", "/bin/true"], "health failures must be at least 1"),
            (["watchdog", "--id", "A", "--health", "http://127.0.0.1:1/", "--", "/bin/true"], "give exactly one of --zookeeper, --postgres, --sqlite"),
        ]
        for (arguments, says) in cases {
            let (status, output) = try await HawserProcess.run(arguments)
            #expect(status != 0, "\(arguments)")
            #expect(output.contains(says), "\(arguments): \(output)")
        }
    }
}
