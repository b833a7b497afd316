import HawserCore

/// The tests take their servers' ports as the benchmarks do (`HawserCore.FreePorts`).
public typealias FreePorts = HawserCore.FreePorts
