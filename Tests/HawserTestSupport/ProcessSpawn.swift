import Foundation

extension Process {
    /// `run()`, safe from a crash of Foundation's on Linux (swift-corelibs-foundation PR #5472, not
    /// in Swift 6.3.1): `run()` lists `/proc/self/fd` and copies 256 bytes from each entry, reading
    /// past the end of glibc's 32 KiB directory buffer once the process has about 1,360 descriptors
    /// open (the whole suite, running in parallel, holds that many). When the buffer ends at the top
    /// of a heap the read faults and takes the test process down. Allocations from 32 KiB up are
    /// made with `mmap` from here on, so the buffer's mapping has a few KiB to spare after it.
    /// Every test launches its children through this.
    public func spawn() throws {
        _ = Self.directoryBuffersMapped
        try run()
    }

    private static let directoryBuffersMapped: Bool = {
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in <malloc.h>
        return unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 32 * 1024) == 1
    }()
}
