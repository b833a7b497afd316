/// The switchover rule shared by every backend: free leadership goes to the switchover target
/// while it stands; another candidate takes it only if there is none.
public enum TakeoverRule {
    /// Whether `me` may take leadership that is free now.
    /// - Parameter targetReserved: whether the store still holds leadership for the target: it is
    ///   alive (lease: it ran a round within the hand-over window; ZooKeeper: its node exists).
    public static func mayTake(me: String, request: RoundRequest, target: String?, targetReserved: Bool) -> Bool {
        guard request.mayAcquire else { return false }
        if target == me { return true }  // a target takes over even while standing aside
        if request.standingAside { return false }
        if target != nil, targetReserved { return false }
        return true
    }
}
