import HawserCore
import Notary

/// The replicated notary under a seeded simulation: three replicas, each the real `ReplicaStep`
/// (chain checks with `LogChain`, decisions with `UniquenessChecker`), the real `AppenderCore`
/// (route, entries, conflicts, back-off, truncation) and the real quorum rule (`Confirmations`),
/// on an in-memory store that keeps what it committed across a crash, over an in-memory log with
/// a bus's faults (`ClusterFault`). Clients submit conflicting spends of a few states and fail
/// over to another replica on errors and time-outs; everything they are told goes into a
/// `History` that `HistoryChecker` judges at the end.
///
/// Checked after every event: no state committed by two signed answers, and no transaction
/// signed with two outcomes. At the end, after `quiet`: the replicas agree on every position
/// they both applied (or one stopped with `log_diverged`), every signed outcome is held by every
/// replica that confirmed past it, a majority is ready and a transaction was answered in the
/// quiet period (unless the log lost what a majority signed), and the history checker finds nothing.
///
/// A run depends on its seed alone: `Outcome.digest` is the same for the same seed and settings.
public enum NotaryClusterSim {
    public struct Settings: Sendable, Hashable {
        public var replicas = 3
        public var clients = 4
        /// The states the clients spend: few, so that their transactions conflict.
        public var states = 8
        public var faulty: Duration = .seconds(20)
        public var quiet: Duration = .seconds(10)
        /// Mean true time between two faults (uniform between none and twice this).
        public var meanGap: Duration = .milliseconds(1_000)
        /// The longest pause, kill-to-restart time, partition or lagging follower.
        public var longest: Duration = .seconds(3)
        /// Chance that a message (client, forward, report, append or its acknowledgement) is lost.
        public var loss = 0.02
        /// Chance that a message takes half to twice the request time-out.
        public var slow = 0.03
        /// Chance that a message is delivered twice.
        public var duplicate = 0.02
        public var faults = Set(ClusterFault.allCases)
        /// A rule broken on purpose, to show that the checks catch it.
        public var mutation: ClusterMutation?
        public var requestTimeout: Duration = .seconds(2)
        public var appendTimeout: Duration = .seconds(2)
        public var maxEntriesPerApply = 8
        public var maxRequestsPerEntry = 8
        /// How many of the last events a violation shows.
        public var traceLines = 60

        public init() {}
    }

    public struct Outcome: Sendable {
        public var seed: UInt64
        public var events: Int
        /// Of every trace line: equal for equal seeds.
        public var digest: UInt64
        public var faults: Int
        /// Log entries appended.
        public var entries: Int
        /// Transactions signed (by the replicas' gates, whether or not their clients still waited).
        public var signed: Int
        /// Replicas that stopped with `log_diverged`.
        public var stopped: Int
        public var violation: SimViolation?
    }

    /// Runs one seed. `observe` sees every event's trace line as it happens.
    public static func run(seed: UInt64, settings: Settings = Settings(), observe: ((String) -> Void)? = nil) -> Outcome {
        var world = NotaryClusterWorld(seed: seed, settings: settings)
        world.trace.observe = observe
        return world.run()
    }
}

/// The faults a notary cluster simulation injects, one chosen at random at each fault time; the
/// raw values are the names `hawser sim --model cluster --faults` takes. Lost, slow, duplicated
/// and reordered messages come throughout besides (`Settings.loss`, `slow`, `duplicate`).
public enum ClusterFault: String, CaseIterable, Sendable, Hashable {
    /// A replica paused (SIGSTOP): its events wait, the others' clocks run on.
    case pause
    /// A replica killed and restarted later: its store keeps what it committed, nothing else.
    case crash
    /// A replica cut off from the others and the clients (not from its log server).
    case partition
    /// The log server a replica reads from lost its tail after a crash, and serves a shorter log
    /// for a while (one replica per run; the log's end is asked of the leader).
    case lostTail = "lost-tail"
    /// The log server a replica reads from holds other entries at the same positions, as
    /// nats-server 2.9.10 did (one replica per run: it stops with `log_diverged`).
    case diverge
    /// The log (every server) lost its last one to three entries after a crash, also entries a
    /// majority applied and signed; later appends take their positions. Once a run, late: the
    /// replicas that applied them stop with `log_diverged`, which may halt the cluster (then the
    /// end-of-run liveness checks are waived).
    case truncate
    /// The log stores appends without checking the expected last position for a while (as
    /// nats-server 2.9 did under concurrency); the adapter turns a misplaced one into a conflict.
    case race
}

/// Rules broken on purpose (`Settings.mutation`); each must be caught (docs/simulation.md).
public enum ClusterMutation: String, CaseIterable, Sendable, Hashable {
    /// The replica applies every decodable entry, without the chain checks.
    case skipChainCheck = "skip-chain-check"
    /// The appender appends without an expected last position, and believes every acknowledgement.
    case unconditionalAppend = "unconditional-append"
    /// Answers are signed as soon as the replica applied them, before a majority confirms.
    case earlyAnswers = "early-answers"
    /// After learning the log's end, the appender builds on its replica's head before a
    /// majority confirmed it (as before the fix of cluster seed 159, docs/simulation.md).
    case unconfirmedTail = "unconfirmed-tail"
}
