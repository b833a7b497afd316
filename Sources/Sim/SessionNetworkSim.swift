import Flows
import Sessions

/// Nodes that pay each other through flow sessions, under a seeded simulation: each node runs
/// its flows as the real `FlowEngine` does (the real `FlowTransition` decides their lives, the
/// real `Replay` their journals, the real `HospitalPolicy` their retries), their sessions by the
/// real `SessionCore`, arriving messages by the real `SessionInbound`, and its outbox's delivery
/// by the real `LinkBackoff`, on a node database in memory that keeps what it committed across a
/// crash. Nodes crash, pause, are cut off, and lose commits or their answers; messages are lost,
/// delayed, duplicated and reordered (`SessionFault`); in the quiet period at the end the network
/// is healthy.
///
/// Each payment is a flow that opens a session with the payee's node, debits its payer, sends the
/// amount and waits for a receipt; the responder credits the payee and answers, or refuses an
/// amount its node will not take (then the payer is refunded). Checked whenever the node database
/// commits: no flow ends twice or changes after its end, no balance change is applied twice, one
/// responder per session. At the end, after `quiet`: every flow ended, every payment completed
/// exactly once on both sides (paid: one debit and one credit; refused: a debit, its refund and no
/// credit), tokens are conserved across the network, every outbox is empty, and `HistoryChecker`
/// finds nothing in what the clients were told (each request id one flow, every flow ended).
///
/// A run depends on its seed alone: `Outcome.digest` is the same for the same seed and settings.
public enum SessionNetworkSim {
    public struct Settings: Sendable, Equatable {
        public var nodes = 3
        /// Tokens each node's party holds at the start.
        public var balance = 1_000
        /// Mean true time between two payments a node starts (uniform between none and twice this).
        public var meanPaymentGap: Duration = .milliseconds(1_500)
        public var faulty: Duration = .seconds(20)
        public var quiet: Duration = .seconds(15)
        /// Mean true time between two faults (uniform between none and twice this).
        public var meanGap: Duration = .milliseconds(1_000)
        /// The longest pause, kill-to-restart time or partition.
        public var longest: Duration = .seconds(3)
        /// Chance that a message (a delivery or its answer) is lost, until the quiet period.
        public var loss = 0.02
        /// Chance that a message takes half to twice the delivery time-out, until the quiet period.
        public var slow = 0.03
        /// Chance that a message is delivered twice, until the quiet period.
        public var duplicate = 0.02
        public var faults = Set(SessionFault.allCases)
        /// A rule broken on purpose, to show that the checks catch it.
        public var mutation: SessionMutation?
        /// How long the link manager waits for a delivery's answer.
        public var deliveryTimeout: Duration = .seconds(1)
        /// How often each node prunes its inbox (often, so that late and repeated messages meet
        /// sessions already pruned).
        public var inboxPruneInterval: Duration = .milliseconds(500)
        /// How long a `receive` waits (longer than any fault, so none should time out).
        public var sessionTimeout: Duration = .seconds(30)
        public var backoff = LinkBackoff.Policy(initialDelay: .milliseconds(50), maxDelay: .seconds(2))
        public var hospital = HospitalPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(2), maxAttempts: 1_000)
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
        /// Payments that completed paid, and refused.
        public var paid: Int
        public var refused: Int
        /// Session messages delivered to a node (duplicates included).
        public var deliveries: Int
        public var violation: SimViolation?
    }

    /// Runs one seed. `observe` sees every event's trace line as it happens.
    public static func run(seed: UInt64, settings: Settings = Settings(), observe: ((String) -> Void)? = nil) -> Outcome {
        var world = SessionNetworkWorld(seed: seed, settings: settings)
        world.trace.observe = observe
        return world.run()
    }
}

/// The faults a session network simulation injects, one chosen at random at each fault time; the
/// raw values are the names `hawser sim --model sessions --faults` takes. Lost, slow, duplicated
/// and reordered messages come besides (`Settings.loss`, `slow`, `duplicate`), until the quiet
/// period heals the network.
public enum SessionFault: String, CaseIterable, Sendable, Hashable {
    /// A node paused (SIGSTOP): its events wait.
    case pause
    /// A node killed and restarted later: its database keeps what it committed (a commit under
    /// way when it died may or may not have been made), nothing else survives. Half the time it
    /// dies at once, half the time while a commit of a flow is under way.
    case crash
    /// A node cut off from the others (every message to or from it lost).
    case partition
    /// A node's next commit is made but its answer is lost: the flow sees an error.
    case lostAnswer = "lost-answer"
    /// A node's next commit fails: nothing is written, the flow sees an error.
    case failedCommit = "failed-commit"
}

/// Rules broken on purpose (`Settings.mutation`); each must be caught (docs/simulation.md).
public enum SessionMutation: String, CaseIterable, Sendable, Hashable {
    /// The node starts a responder for every delivery of an `initiate`, not once per session.
    case responderPerDelivery = "responder-per-delivery"
    /// The node answers `accepted` before the message is in its inbox.
    case earlyAccept = "early-accept"
    /// A flow's balance changes are written when the flow makes them, apart from its journal entry.
    case effectsApart = "effects-apart"
    /// The link manager forgets a message whose delivery was not answered in time.
    case forgetUnanswered = "forget-unanswered"
    /// The node prunes the inbox messages of flows still running too.
    case pruneLive = "prune-live"
}
