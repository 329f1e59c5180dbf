import Crypto

/// RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: the tree head of a list of entries, the
/// inclusion proof of an entry and the consistency proof between two sizes of the tree, and the
/// verification of both as RFC 9162 §2.1.3.2 and §2.1.4.2 give them. Pure: no storage, no I/O.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    /// SHA-256(0x00 ‖ entry): the hash of an entry as a leaf (RFC 9162 §2.1.1).
    public static func leafHash(_ entry: some Sequence<UInt8>) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: Array(entry))
        return Array(hasher.finalize())
    }

    /// SHA-256(0x01 ‖ left ‖ right): the hash of an interior node.
    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The tree head (MTH) of the leaves with these hashes; SHA-256 of nothing for no leaves.
    public static func root(_ leaves: ArraySlice<Hash>) -> Hash {
        switch leaves.count {
        case 0: return Array(SHA256.hash(data: [UInt8]()))
        case 1: return leaves[leaves.startIndex]
        default:
            let split = leaves.startIndex + largestPowerOfTwo(below: leaves.count)
            return nodeHash(root(leaves[..<split]), root(leaves[split...]))
        }
    }

    public static func root(_ leaves: [Hash]) -> Hash { root(leaves[...]) }

    /// The inclusion proof (audit path) of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1 PATH).
    public static func inclusionProof(index: Int, _ leaves: [Hash]) throws(ProofError) -> [Hash] {
        guard index >= 0, index < leaves.count else { throw .indexOutOfRange(index: index, size: leaves.count) }
        return path(index, leaves[...])
    }

    private static func path(_ index: Int, _ leaves: ArraySlice<Hash>) -> [Hash] {
        guard leaves.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: leaves.count)
        let split = leaves.startIndex + k
        if index < k { return path(index, leaves[..<split]) + [root(leaves[split...])] }
        return path(index - k, leaves[split...]) + [root(leaves[..<split])]
    }

    /// The consistency proof between the tree's first `first` leaves and all of `leaves`
    /// (RFC 6962 §2.1.2 PROOF); empty when the sizes are equal.
    public static func consistencyProof(first: Int, _ leaves: [Hash]) throws(ProofError) -> [Hash] {
        guard first > 0, first <= leaves.count else { throw .sizesOutOfRange(first: first, second: leaves.count) }
        return subproof(first, leaves[...], complete: true)
    }

    private static func subproof(_ m: Int, _ leaves: ArraySlice<Hash>, complete: Bool) -> [Hash] {
        let n = leaves.count
        if m == n { return complete ? [] : [root(leaves)] }
        let k = largestPowerOfTwo(below: n)
        let split = leaves.startIndex + k
        if m <= k { return subproof(m, leaves[..<split], complete: complete) + [root(leaves[split...])] }
        return subproof(m - k, leaves[split...], complete: false) + [root(leaves[..<split])]
    }

    /// Whether `proof` shows the leaf with hash `leaf` at `index` in the tree of `size` leaves
    /// whose head is `root` (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(leaf: Hash, index: Int, size: Int, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index, sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1; sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Whether `proof` shows the tree of `first` leaves with head `firstRoot` to be a prefix of the
    /// tree of `second` leaves with head `secondRoot` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(first: Int, second: Int, firstRoot: Hash, secondRoot: Hash, proof: [Hash]) -> Bool {
        guard first > 0, first <= second else { return false }
        if first == second { return proof.isEmpty && firstRoot == secondRoot }
        guard !proof.isEmpty else { return false }
        var path = proof
        if first & (first - 1) == 0 { path.insert(firstRoot, at: 0) }
        var fn = first - 1, sn = second - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1; sn >>= 1
        }
        return fr == firstRoot && sr == secondRoot && sn == 0
    }

    /// The largest power of two strictly below `n` (n > 1).
    static func largestPowerOfTwo(below n: Int) -> Int {
        precondition(n > 1)
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    public enum ProofError: Error, Equatable {
        case indexOutOfRange(index: Int, size: Int)
        case sizesOutOfRange(first: Int, second: Int)
    }
}

extension MerkleTree {
    /// The roots of the perfect subtrees a tree of any size splits into, largest first (a
    /// "compact range" from 0): appending a leaf and taking the tree head are O(log n), so a log
    /// that signs its head every second does not rehash its whole history each time.
    public struct CompactRange: Sendable, Hashable {
        /// The perfect subtrees' roots, left to right; their sizes are the set bits of `size`.
        public private(set) var roots: [Hash] = []
        public private(set) var size = 0

        public init() {}

        public init(_ leaves: some Sequence<Hash>) {
            for leaf in leaves { append(leaf) }
        }

        /// Appends a leaf hash.
        public mutating func append(_ leaf: Hash) {
            var node = leaf
            var merged = size
            // Each trailing set bit of the old size is a subtree of the same height to merge with.
            while merged & 1 == 1 {
                node = MerkleTree.nodeHash(roots.removeLast(), node)
                merged >>= 1
            }
            roots.append(node)
            size += 1
        }

        /// The tree head: the subtrees folded from the right (RFC 9162's split at the largest power of two).
        public var root: Hash {
            guard var node = roots.last else { return MerkleTree.root([Hash]()) }
            for left in roots.dropLast().reversed() { node = MerkleTree.nodeHash(left, node) }
            return node
        }
    }
}
