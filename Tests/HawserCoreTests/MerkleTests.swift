import Testing
import HawserCore
import HawserTestSupport

/// RFC 6962 section 2.1, written recursively and independently of `MerkleTree`, over leaf hashes.
private enum Reference {
    static func split(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    static func root(_ leaves: ArraySlice<SecureHash>) -> SecureHash {
        if leaves.count == 1 { return leaves.first! }
        let k = leaves.startIndex + split(leaves.count)
        return MerkleTree.nodeHash(root(leaves[..<k]), root(leaves[k...]))
    }

    /// PATH(m, D[n]): sibling hashes from the leaf up to the root.
    static func path(_ m: Int, _ leaves: ArraySlice<SecureHash>) -> [SecureHash] {
        if leaves.count == 1 { return [] }
        let k = split(leaves.count)
        let mid = leaves.startIndex + k
        if m < k { return path(m, leaves[..<mid]) + [root(leaves[mid...])] }
        return path(m - k, leaves[mid...]) + [root(leaves[..<mid])]
    }
}

private func leaves(_ n: Int) -> [SecureHash] {
    (0..<n).map { MerkleTree.leafHash(Array("leaf \($0)".utf8)) }
}

private func flipped(_ h: SecureHash, bit: Int = 0) -> SecureHash {
    var b = h.bytes
    b[bit / 8 % 32] ^= 1 << UInt8(bit % 8)
    return SecureHash(bytes: b)!
}

@Suite(.timeLimit(.minutes(10))) struct MerkleTests {
    @Test func hashPrefixes() {
        // RFC 6962: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
        #expect(MerkleTree.leafHash([]) == SecureHash.sha256([0x00]))
        #expect(MerkleTree.leafHash([]).hex == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        let a = Fixtures.hash(0xaa), b = Fixtures.hash(0xbb)
        #expect(MerkleTree.nodeHash(a, b) == SecureHash.sha256([0x01] + a.bytes + b.bytes))
        #expect(MerkleTree.nodeHash(a, b) != MerkleTree.nodeHash(b, a))
        // Leaf and node hashes live in different domains.
        #expect(MerkleTree.leafHash(a.bytes + b.bytes) != MerkleTree.nodeHash(a, b))
    }

    @Test func singleLeafTree() {
        let leaf = MerkleTree.leafHash([1, 2, 3])
        let tree = MerkleTree(leaves: [leaf])
        #expect(tree.root == leaf)
        #expect(tree.leafCount == 1)
        let proof = tree.proof(forLeaf: 0)
        #expect(proof == MerkleProof(leafIndex: 0, leafCount: 1, path: []))
        #expect(proof.root(fromLeaf: leaf) == leaf)
    }

    @Test func smallTreeShapes() {
        let l = leaves(7)
        let n = MerkleTree.nodeHash
        #expect(MerkleTree(leaves: Array(l[0..<2])).root == n(l[0], l[1]))
        // The lone third leaf moves up and joins the pair at the top.
        #expect(MerkleTree(leaves: Array(l[0..<3])).root == n(n(l[0], l[1]), l[2]))
        #expect(MerkleTree(leaves: Array(l[0..<5])).root == n(n(n(l[0], l[1]), n(l[2], l[3])), l[4]))
        #expect(MerkleTree(leaves: l).root == n(n(n(l[0], l[1]), n(l[2], l[3])), n(n(l[4], l[5]), l[6])))
        #expect(MerkleTree(leaves: Array(l[0..<3])).proof(forLeaf: 2).path == [n(l[0], l[1])])
        #expect(MerkleTree(leaves: Array(l[0..<3])).proof(forLeaf: 1).path == [l[0], l[2]])
    }

    @Test(arguments: 1...70)
    func everyLeafProvesItsMembership(size: Int) {
        let l = leaves(size)
        let tree = MerkleTree(leaves: l)
        #expect(tree.leafCount == size)
        #expect(tree.root == Reference.root(l[...]))
        for i in 0..<size {
            let proof = tree.proof(forLeaf: i)
            #expect(proof.leafIndex == UInt32(i))
            #expect(proof.leafCount == UInt32(size))
            #expect(proof.path == Reference.path(i, l[...]), "size \(size) leaf \(i)")
            #expect(proof.root(fromLeaf: l[i]) == tree.root, "size \(size) leaf \(i)")
        }
    }

    @Test(arguments: 1...70)
    func tamperedProofsFail(size: Int) {
        let l = leaves(size)
        let tree = MerkleTree(leaves: l)
        for i in 0..<size {
            let proof = tree.proof(forLeaf: i)
            // Another leaf, or this leaf with one bit changed.
            #expect(proof.root(fromLeaf: l[(i + 1) % size]) != tree.root || size == 1)
            #expect(proof.root(fromLeaf: flipped(l[i], bit: i)) != tree.root)
            // Any path element changed.
            for k in proof.path.indices {
                var p = proof
                p.path[k] = flipped(p.path[k], bit: 7 * k + i)
                #expect(p.root(fromLeaf: l[i]) != tree.root, "size \(size) leaf \(i) path \(k)")
            }
            // Path elements dropped, duplicated, added, or swapped.
            if !proof.path.isEmpty {
                var p = proof
                p.path.removeLast()
                #expect(p.root(fromLeaf: l[i]) == nil)
                p = proof
                p.path.removeFirst()
                #expect(p.root(fromLeaf: l[i]) != tree.root)
            }
            var longer = proof
            longer.path.append(l[0])
            #expect(longer.root(fromLeaf: l[i]) == nil)
            if proof.path.count >= 2 {
                var p = proof
                p.path.swapAt(0, 1)
                #expect(p.root(fromLeaf: l[i]) != tree.root)
            }
            // Any other index.
            for j in 0..<UInt32(size + 2) where j != UInt32(i) {
                var p = proof
                p.leafIndex = j
                #expect(p.root(fromLeaf: l[i]) != tree.root, "size \(size) leaf \(i) as index \(j)")
            }
            // Any other count fails, unless it gives this leaf a proof of exactly the same shape:
            // the count is not bound by the root (RFC 9162 binds it by signing the tree size).
            let counts = Set([0, 1, 2, size - 2, size - 1, size + 1, size + 2, size + 3, 2 * size, 2 * size + 1, size + 64])
            for c in counts.sorted() where c >= 0 && c != size {
                var p = proof
                p.leafCount = UInt32(c)
                let sameShape = i < c && proofShape(i, c) == proofShape(i, size)
                #expect((p.root(fromLeaf: l[i]) == tree.root) == sameShape, "size \(size) leaf \(i) with count \(c)")
            }
        }
    }

    @Test func malformedProofs() {
        let leaf = Fixtures.hash(9)
        #expect(MerkleProof(leafIndex: 0, leafCount: 0, path: []).root(fromLeaf: leaf) == nil)
        #expect(MerkleProof(leafIndex: 3, leafCount: 3, path: [leaf, leaf]).root(fromLeaf: leaf) == nil)
        #expect(MerkleProof(leafIndex: .max, leafCount: .max, path: []).root(fromLeaf: leaf) == nil)
        #expect(MerkleProof(leafIndex: 0, leafCount: 1, path: [leaf]).root(fromLeaf: leaf) == nil)
        #expect(MerkleProof(leafIndex: 0, leafCount: 2, path: []).root(fromLeaf: leaf) == nil)
        // The largest possible tree: leaf 0 has a sibling on each of its 32 levels.
        let path32 = [SecureHash](repeating: leaf, count: 32)
        #expect(MerkleProof(leafIndex: 0, leafCount: .max, path: path32).root(fromLeaf: leaf) != nil)
        #expect(MerkleProof(leafIndex: 0, leafCount: .max, path: Array(path32.dropLast())).root(fromLeaf: leaf) == nil)
        #expect(MerkleProof(leafIndex: 0, leafCount: .max, path: path32 + [leaf]).root(fromLeaf: leaf) == nil)
    }

    @Test func proofShapesDistinguishLeaves() {
        // In one tree every leaf has its own shape, which is why a changed index always fails.
        for size in 1...70 {
            #expect(Set((0..<size).map { proofShape($0, size) }).count == size)
        }
        // The shape is what verification reads: direction bits and length.
        let l = leaves(6)
        for i in 0..<6 { #expect(MerkleTree(leaves: l).proof(forLeaf: i).path.count == proofShape(i, 6).count) }
    }

    @Test func randomTreesAgreeWithReference() {
        var rng = SeededGenerator(seed: 20)
        for _ in 0..<40 {
            let size = Int.random(in: 71...600, using: &rng)
            let l = (0..<size).map { _ in rng.hash() }
            let tree = MerkleTree(leaves: l)
            #expect(tree.root == Reference.root(l[...]))
            for _ in 0..<10 {
                let i = Int.random(in: 0..<size, using: &rng)
                let proof = tree.proof(forLeaf: i)
                #expect(proof.path == Reference.path(i, l[...]))
                #expect(proof.root(fromLeaf: l[i]) == tree.root)
            }
        }
    }
}
