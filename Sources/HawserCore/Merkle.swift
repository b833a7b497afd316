import Crypto

/// A Merkle tree of the shape RFC 6962 defines (leaf hash `SHA-256(0x00 || data)`, node hash
/// `SHA-256(0x01 || left || right)`), kept whole so that every leaf's proof can be read off it.
public struct MerkleTree: Sendable {
    /// levels[0] holds the leaf hashes, the last level holds the root alone.
    private let levels: [[SecureHash]]

    public init(leaves: [SecureHash]) {
        precondition(!leaves.isEmpty, "a Merkle tree needs at least one leaf")
        var levels = [leaves]
        while levels[levels.count - 1].count > 1 {
            let below = levels[levels.count - 1]
            var level = [SecureHash]()
            level.reserveCapacity((below.count + 1) / 2)
            var i = 0
            while i + 1 < below.count {
                level.append(Self.nodeHash(below[i], below[i + 1]))
                i += 2
            }
            // A lone last node moves up unchanged; this yields exactly RFC 6962's tree.
            if i < below.count { level.append(below[i]) }
            levels.append(level)
        }
        self.levels = levels
    }

    public var root: SecureHash { levels[levels.count - 1][0] }
    public var leafCount: Int { levels[0].count }

    public func proof(forLeaf index: Int) -> MerkleProof {
        var path = [SecureHash]()
        var i = index
        for level in levels.dropLast() {
            let sibling = i ^ 1
            if sibling < level.count { path.append(level[sibling]) }
            i /= 2
        }
        return MerkleProof(leafIndex: UInt32(index), leafCount: UInt32(leafCount), path: path)
    }

    public static func leafHash(_ data: [UInt8]) -> SecureHash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: data)
        return SecureHash(digest: hasher.finalize())
    }

    public static func nodeHash(_ left: SecureHash, _ right: SecureHash) -> SecureHash {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
        left.hash(into: &hasher)
        right.hash(into: &hasher)
        return SecureHash(digest: hasher.finalize())
    }
}

/// An inclusion proof: the leaf's index, the tree's size and the sibling hashes from leaf to root.
public struct MerkleProof: Hashable, Sendable {
    public var leafIndex: UInt32
    public var leafCount: UInt32
    public var path: [SecureHash]

    public init(leafIndex: UInt32, leafCount: UInt32, path: [SecureHash]) {
        self.leafIndex = leafIndex
        self.leafCount = leafCount
        self.path = path
    }

    /// The root this proof leads to from `leaf`, or nil if the proof is malformed
    /// (RFC 9162 section 2.1.3.2).
    public func root(fromLeaf leaf: SecureHash) -> SecureHash? {
        guard leafIndex < leafCount else { return nil }
        var fn = leafIndex, sn = leafCount - 1, r = leaf
        for p in path {
            guard sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                r = MerkleTree.nodeHash(p, r)
                while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
            } else {
                r = MerkleTree.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? r : nil
    }
}
