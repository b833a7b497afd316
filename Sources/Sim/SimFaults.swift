/// How often, and how hard, a simulation hurts the system it runs. Every fault is within what
/// the real system must survive: processes paused or killed and restarted, health lost, a process
/// cut off from the store, messages lost or delayed past their time-out (and still applied),
/// operators asking for resignations, switchovers and a preferred master at any moment, clocks
/// that run a little fast or slow.
public struct SimFaults: Sendable, Hashable {
    /// Mean true time between two faults (uniform between none and twice this).
    public var meanGap: Duration = .milliseconds(1_500)
    /// Chance that a message is lost.
    public var loss = 0.02
    /// Chance that a message takes between half and twice the request time-out.
    public var slow = 0.03
    /// Each clock's rate is within 1 ± this of true time.
    public var drift = 0.02
    /// The longest pause of a process (SIGSTOP), kill-to-restart time, unhealthy spell or partition.
    public var longest: Duration = .seconds(5)
    /// The kinds injected, one chosen at random at each fault time (none: only lost and slow messages).
    public var kinds = Set(SimFault.allCases)

    public init() {}
}

/// The faults a simulation can inject, one chosen at random at each fault time; the raw values
/// are the names `hawser sim --faults` takes.
public enum SimFault: String, CaseIterable, Sendable, Hashable {
    /// A process paused (SIGSTOP), its clock running on.
    case pause
    /// A process killed, restarted later as a new instance.
    case crash
    /// A process's health checks fail.
    case unhealthy
    /// A process cut off from the store (every message to or from it lost).
    case partition
    /// An operator asks the process to resign.
    case resign
    /// An operator asks the process to hand over to another.
    case handOver = "hand-over"
    /// An operator's switchover through the store.
    case adminSwitchover = "switchover"
    /// An operator sets (or clears) the preferred master.
    case adminPreferred = "prefer"
}
