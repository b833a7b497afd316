import HawserCore

/// What the engine does at start-up with the flows it must run again (sans-I/O): the rule that
/// keeps one poison flow from taking the node down at every start.
///
/// A flow whose code crashes the process (an arithmetic overflow, a failed `precondition`: a trap
/// no `catch` sees) is replayed at the next start-up and crashes it again, for ever. So each flow
/// replayed at start-up gets a replay marker, set in one commit for all of them before any runs,
/// and cleared with the flow's next durable write (which proves it got past where it was), when
/// it ends, or when the engine stops. A marker still set at the next start-up means the process
/// went down between the flow's replay and its next write: the flow is parked in the hospital,
/// with a reason, for an operator to kill or resume, instead of being replayed. A node killed
/// from outside in that window parks its flows the same way. A process that lost its shard in it
/// without dying leaves the markers set too, but clears them as its engine stops; an engine that
/// may take flows over from such a process looks twice (`deferringSuspects`).
public struct StartupReplay {
    /// The flows to replay, each with its marker set.
    public private(set) var replay: [FlowRecord] = []
    /// The flows to park, with the state that parks them.
    public private(set) var parked: [(id: FlowID, state: FlowState)] = []
    /// Every marker to clear: those of parked flows and stale ones of flows that no longer run.
    public private(set) var cleared: [FlowID] = []

    public static let parkedReason = "parked at start-up: the node went down while this flow was running from its replay at "
        + "the last start-up, before it wrote anything, so its code may crash the node; kill it, or resume it once fixed"

    /// `resumable`: the flows to run again; `markers`: the flows whose marker is set.
    public init(resumable: [FlowRecord], markers: Set<FlowID>, now: Instant) {
        for record in resumable {
            if markers.contains(record.id) {
                parked.append((record.id, FlowState(status: .hospitalised, error: Self.parkedReason, attempts: record.attempts,
                                                    updatedAt: now)))
            } else {
                replay.append(record)
            }
        }
        let resumed = Set(resumable.map(\.id))
        cleared = markers.filter { !resumed.contains($0) }.sorted() + parked.map(\.id)
    }

    /// The writes to commit, in one transaction, before any flow is replayed.
    public var writes: [FlowWrite] {
        parked.map { .state($0.id, $0.state, []) } + cleared.map { .replayMarker($0, false) }
            + replay.map { .replayMarker($0.id, true) }
    }

    /// The writes for the flows to replay now, leaving those it would park for a second look
    /// (`suspects`, their markers untouched). A process that lost its shard between a flow's
    /// replay and its first write (its lease not confirmed in time) leaves the marker set as a
    /// crash does, but clears it as it stops (`FlowStore.clearReplayMarkers`, unfenced): the
    /// engine looks again after `FlowEngine.Configuration.markerGrace`, and plans those flows
    /// anew with the markers then set.
    public var deferringSuspects: (writes: [FlowWrite], suspects: Set<FlowID>) {
        let suspects = Set(parked.map(\.id))
        return (cleared.filter { !suspects.contains($0) }.map { .replayMarker($0, false) } + replay.map { .replayMarker($0.id, true) }, suspects)
    }
}
