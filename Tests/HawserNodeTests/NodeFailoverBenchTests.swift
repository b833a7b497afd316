import Foundation
import HawserTestSupport
import Testing

/// `hawser bench failover --node` end to end on real processes (a debug build, the SQLite lease):
/// two trials per case, each printing its line, then the summary; and nothing it started is left.
@Suite(.serialized, .timeLimit(.minutes(8))) struct NodeFailoverBenchTests {
    @Test(arguments: [["--mode", "hot-cold"], ["--mode", "hot-cold", "--machine-gone"], ["--mode", "hot-warm"]])
    func twoTrialsPrintALineEachAndASummary(mode: [String]) async throws {
        let dir = try TemporaryDirectory()
        let work = dir.path + "/work"
        let run = try await ChildProcess.run(HawserProcess.binary, ["bench", "failover", "--node"] + mode + [
            "--sqlite", dir.path + "/lease.sqlite", "--renew-ms", "100", "--trials", "2", "--clients", "2",
            "--work-directory", work, "--json",
        ], in: dir.path, scratch: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").map(String.init)
        for trial in 1...2 {
            #expect(lines.contains { $0.hasPrefix("trial \(trial): ") && $0.contains(" ms (") }, "\(run.output)")
        }
        let label = "node \(mode[1])\(mode.count > 2 ? " machine-gone" : ""), sqlite, lease 2000 ms: 2 trials, median "
        #expect(lines.contains { $0.hasPrefix(label) && $0.contains(", p90 ") && $0.contains(", worst ") }, "\(run.output)")
        let json = try #require(lines.first { $0.hasPrefix("{") }, "\(run.output)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(summary["benchmark"] as? String == "node-failover" && summary["mode"] as? String == mode[1])
        #expect(summary["trials"] as? Int == 2 && summary["medianMs"] is Int && summary["p90Ms"] is Int)
        #expect(Self.processes(naming: work).isEmpty, "every process the benchmark started has ended")
    }

    /// `--partitions`: a trial times the takeover of a killed worker's partitions and the rebalance
    /// once it returns; one line each, and a JSON summary of each measure. Bare election workers,
    /// or (`--node --mode hot-hot`) three node workers under flow load, whose takeover ends when the
    /// killed worker's partitions serve elsewhere (their flows resumed there).
    @Test(arguments: [[String](), ["--node", "--mode", "hot-hot", "--clients", "3"]])
    func aPartitionTrialPrintsTheTakeoverAndTheRebalance(workers: [String]) async throws {
        let dir = try TemporaryDirectory()
        let work = dir.path + "/work"
        let run = try await ChildProcess.run(HawserProcess.binary, ["bench", "failover"] + workers + [
            "--partitions", "6", "--sqlite", dir.path + "/lease.sqlite", "--lease-ms", "1000", "--renew-ms", "200",
            "--request-timeout-ms", "500", "--hold-down-ms", "500", "--trials", "1", "--work-directory", work, "--json",
        ], in: dir.path, scratch: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("trial 1: takeover ") && $0.contains(" ms, rebalance ") }, "\(run.output)")
        let measures = try lines.filter { $0.hasPrefix("{") }.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(measures.map { $0["measure"] as? String } == ["takeover", "rebalance"], "\(run.output)")
        let benchmark = workers.isEmpty ? "partition-failover" : "node-failover"
        #expect(measures.allSatisfy { $0["benchmark"] as? String == benchmark && $0["partitions"] as? Int == 6 })
        #expect(Self.processes(naming: work).isEmpty, "every process the benchmark started has ended")
    }

    @Test func optionsThatDoNotGoTogetherAreRefused() async throws {
        let cases: [(arguments: [String], says: String)] = [
            (["--node"], "--node needs --mode hot-cold, hot-warm or hot-hot"),
            (["--node", "--mode", "hot-warm", "--machine-gone"], "--machine-gone goes with --mode hot-cold"),
            (["--mode", "hot-cold"], "--mode, --machine-gone and --database-url go with --node"),
            (["--node", "--mode", "hot-cold", "--clients", "0"], "--clients must be at least 1"),
            (["--partitions", "2"], "--partitions must be 3 to 256"),
            (["--partitions", "6", "--node", "--mode", "hot-warm"], "--partitions goes with bare workers, or with --node --mode hot-hot"),
        ]
        for (arguments, says) in cases {
            let (status, output) = try await HawserProcess.run(["bench", "failover", "--sqlite", "/tmp/unused-lease.sqlite"] + arguments)
            #expect(status != 0 && output.contains(says), "\(arguments): \(output)")
        }
    }

    /// The processes whose command line mentions `text`.
    static func processes(naming text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { Int($0) != nil }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return line.contains(text) ? "\(pid): \(line)" : nil
        }
    }
}
