import Foundation
import HawserTestSupport
import Testing

/// `hawser sim`: a campaign names the seeds that broke an invariant and how to replay one, and
/// the replay shows that seed's run event by event, ending in the same violation. Clocks that
/// drift by 40% (four times the election's margin) make the checks fail on purpose.
@Suite(.timeLimit(.minutes(5)))
struct SimCommandTests {
    func hawser(_ arguments: [String]) async throws -> ChildProcess {
        let dir = try TemporaryDirectory()
        return try await ChildProcess.run(HawserProcess.binary, ["sim"] + arguments, in: dir.path, scratch: dir.path)
    }

    @Test func aFailingSeedOfACampaignReplaysStepByStep() async throws {
        let campaign = try await hawser(["--seeds", "1-10", "--drift", "0.4", "--jobs", "2"])
        #expect(campaign.status == 1, "\(campaign.output)")
        let replayLine = try #require(campaign.output.split(separator: "\n").first { $0.hasPrefix("replay it: hawser sim --replay ") })
        let seedLine = try #require(campaign.output.split(separator: "\n").first { $0.hasPrefix("seed ") })
        let seed = String(seedLine.dropFirst("seed ".count).prefix { $0 != ":" })
        let what = String(seedLine.drop { $0 != ":" }.dropFirst(2))
        #expect(replayLine.contains("--replay \(seed) ") && replayLine.contains("--drift 0.4"), "\(replayLine)")

        // The first violation's last events, as the campaign printed them.
        let campaignLines = campaign.output.split(separator: "\n", omittingEmptySubsequences: false)
        let from = try #require(campaignLines.firstIndex(of: "last events:")) + 1
        let lastEvents = campaignLines[from...].prefix { !$0.isEmpty }
        #expect(lastEvents.count > 10)

        let replay = try await hawser(["--replay", seed, "--drift", "0.4"])
        #expect(replay.status == 1)
        let lines = replay.output.split(separator: "\n")
        #expect(Array(lines.dropLast().suffix(lastEvents.count)) == Array(lastEvents), "the replay ends in the same events")
        #expect(lines.last?.hasPrefix("seed \(seed): BROKE AN INVARIANT at ") == true && lines.last?.contains(what) == true,
                "\(lines.last ?? "")")
        // The same seed gives the same run: the digest of its trace is equal.
        let again = try await hawser(["--replay", seed, "--drift", "0.4"])
        #expect(again.output.split(separator: "\n").last == lines.last)
    }

    @Test func aCampaignWithinTheFaultModelPassesAndReportsItsSpeed() async throws {
        let run = try await hawser(["--seeds", "1-4", "--faults", "pause,crash,hand-over", "--shard"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("seeds 1-4: 4 run, 0 broke an invariant"), "\(run.output)")
        #expect(run.output.contains("seeds a minute"))
    }

    @Test(arguments: [("cluster", "skip-chain-check"), ("sessions", "responder-per-delivery")])
    func aModelCatchesABrokenRuleAndReplaysIt(_ model: String, _ mutation: String) async throws {
        let campaign = try await hawser(["--model", model, "--seeds", "1", "--mutation", mutation])
        #expect(campaign.status == 1, "\(campaign.output)")
        let replayLine = try #require(campaign.output.split(separator: "\n").first { $0.hasPrefix("replay it: hawser sim --replay 1 ") })
        #expect(replayLine.contains("--model \(model)") && replayLine.contains("--mutation \(mutation)"), "\(replayLine)")
        let replay = try await hawser(["--model", model, "--replay", "1", "--mutation", mutation])
        #expect(replay.status == 1)
        #expect(replay.output.split(separator: "\n").last?.hasPrefix("seed 1: BROKE AN INVARIANT at ") == true, "\(replay.output.suffix(500))")
        // Without the mutation the seed holds.
        let fine = try await hawser(["--model", model, "--replay", "1"])
        #expect(fine.status == 0 && fine.output.split(separator: "\n").last?.hasPrefix("seed 1: no invariant broken;") == true,
                "\(fine.output.suffix(500))")
    }

    @Test func badOptionsAreRefused() async throws {
        for (arguments, says) in [(["--seeds", "9-1"], "--seeds must be N, FIRST-LAST"),
                                  (["--faults", "pause,meteor"], "unknown fault meteor"),
                                  (["--faults", ""], "an empty fault name"), (["--faults", "pause,"], "an empty fault name"),
                                  (["--drift", "2"], "--drift must be 0...0.9"),
                                  (["--model", "cluster", "--faults", "resign"], "unknown fault resign of the cluster"),
                                  (["--mutation", "early-answers"], "--mutation needs --model cluster or sessions"),
                                  (["--model", "cluster", "--mutation", "typo"], "unknown mutation typo"),
                                  (["--model", "sessions", "--faults", "truncate"], "unknown fault truncate of sessions"),
                                  (["--model", "sessions", "--mutation", "early-answers"], "unknown mutation early-answers of sessions"),
                                  (["--model", "sessions", "--shard"], "--shard needs --model election")] {
            let run = try await hawser(arguments)
            #expect(run.status != 0)
            #expect(run.output.contains(says), "\(arguments): \(run.output)")
        }
    }
}
