import Foundation
import Testing
@testable import TransparencyLog

/// The Merkle tree against the Certificate Transparency reference vectors (the eight leaves of
/// google/certificate-transparency's merkle_tree_test, their roots, audit paths and consistency
/// proofs), then every proof of every tree up to 33 leaves, verified and tampered with.
@Suite struct MerkleTreeTests {
    typealias Hash = MerkleTree.Hash

    static let entries: [[UInt8]] = [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57], Array(0x60...0x6f),
    ]
    static let leaves = entries.map { MerkleTree.leafHash($0) }
    static let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  // the empty tree
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    static func hex(_ hash: Hash) -> String { hash.map { String(format: "%02x", $0) }.joined() }
    static func unhex(_ text: String) -> Hash {
        var bytes: Hash = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    @Test func rootsMatchTheReferenceVectors() {
        for size in 0...8 {
            #expect(Self.hex(MerkleTree.root(Array(Self.leaves.prefix(size)))) == Self.roots[size], "size \(size)")
        }
    }

    @Test(arguments: [
        (0, 1, [String]()),
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ])
    func inclusionProofsMatchTheReferenceVectors(index: Int, size: Int, expected: [String]) throws {
        let tree = Array(Self.leaves.prefix(size))
        let proof = try MerkleTree.inclusionProof(index: index, tree)
        #expect(proof.map(Self.hex) == expected)
        #expect(MerkleTree.verifyInclusion(leaf: tree[index], index: index, size: size, proof: proof, root: Self.unhex(Self.roots[size])))
    }

    @Test(arguments: [
        (1, 1, [String]()),
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ])
    func consistencyProofsMatchTheReferenceVectors(first: Int, second: Int, expected: [String]) throws {
        let proof = try MerkleTree.consistencyProof(first: first, Array(Self.leaves.prefix(second)))
        #expect(proof.map(Self.hex) == expected)
        #expect(MerkleTree.verifyConsistency(
            first: first, second: second, firstRoot: Self.unhex(Self.roots[first]), secondRoot: Self.unhex(Self.roots[second]), proof: proof))
    }

    static func tree(_ size: Int) -> [Hash] { (0..<size).map { MerkleTree.leafHash(Array("event \($0)".utf8)) } }

    @Test func everyInclusionProofUpTo33LeavesVerifiesAndNoAlteredOneDoes() throws {
        for size in 1...33 {
            let tree = Self.tree(size), root = MerkleTree.root(tree)
            for index in 0..<size {
                let proof = try MerkleTree.inclusionProof(index: index, tree)
                #expect(MerkleTree.verifyInclusion(leaf: tree[index], index: index, size: size, proof: proof, root: root))
                // Another entry, another position, an altered path, a path cut short, another root. (The
                // size is bound by the root: a proof may hold for another size of the same shape.)
                #expect(!MerkleTree.verifyInclusion(leaf: MerkleTree.leafHash([0xff]), index: index, size: size, proof: proof, root: root))
                if size > 1 {
                    #expect(!MerkleTree.verifyInclusion(leaf: tree[index], index: (index + 1) % size, size: size, proof: proof, root: root))
                    var altered = proof
                    altered[altered.count - 1][0] ^= 1
                    #expect(!MerkleTree.verifyInclusion(leaf: tree[index], index: index, size: size, proof: altered, root: root))
                    #expect(!MerkleTree.verifyInclusion(leaf: tree[index], index: index, size: size, proof: proof.dropLast(), root: root))
                }
                #expect(!MerkleTree.verifyInclusion(leaf: tree[index], index: index, size: size, proof: proof, root: MerkleTree.leafHash([0xfe])))
            }
            #expect(throws: MerkleTree.ProofError.indexOutOfRange(index: size, size: size)) { try MerkleTree.inclusionProof(index: size, tree) }
        }
    }

    @Test func everyConsistencyProofUpTo33LeavesVerifiesAndNoAlteredOneDoes() throws {
        let all = Self.tree(33)
        for second in 1...33 {
            let tree = Array(all.prefix(second)), secondRoot = MerkleTree.root(tree)
            for first in 1...second {
                let firstRoot = MerkleTree.root(Array(all.prefix(first)))
                let proof = try MerkleTree.consistencyProof(first: first, tree)
                #expect(MerkleTree.verifyConsistency(first: first, second: second, firstRoot: firstRoot, secondRoot: secondRoot, proof: proof))
                guard first < second else { continue }
                // A rewritten past (another first root), another present, an altered proof. (The sizes are
                // bound by the roots: a proof may hold for another pair of sizes of the same shape.)
                #expect(!MerkleTree.verifyConsistency(
                    first: first, second: second, firstRoot: MerkleTree.leafHash([0xff]), secondRoot: secondRoot, proof: proof))
                #expect(!MerkleTree.verifyConsistency(
                    first: first, second: second, firstRoot: firstRoot, secondRoot: MerkleTree.leafHash([0xfe]), proof: proof))
                var altered = proof
                altered[0][0] ^= 1
                #expect(!MerkleTree.verifyConsistency(first: first, second: second, firstRoot: firstRoot, secondRoot: secondRoot, proof: altered))
            }
        }
    }

    @Test func anEditedDeletedOrReorderedEntryChangesTheRoot() {
        let before = MerkleTree.root(Self.tree(10))
        var edited = Self.tree(10)
        edited[4] = MerkleTree.leafHash(Array("event 4, edited".utf8))
        var reordered = Self.tree(10)
        reordered.swapAt(2, 3)
        var deleted = Self.tree(11)
        deleted.remove(at: 6)
        for tree in [edited, reordered, deleted] { #expect(MerkleTree.root(tree) != before) }
    }
}

@Suite struct CompactRangeTests {
    @Test func theCompactRootIsTheTreeHeadAtEverySize() {
        let leaves = (0..<70).map { MerkleTree.leafHash([UInt8($0)]) }
        var range = MerkleTree.CompactRange()
        #expect(range.root == MerkleTree.root([MerkleTree.Hash]()))
        for size in 1...leaves.count {
            range.append(leaves[size - 1])
            #expect(range.root == MerkleTree.root(Array(leaves.prefix(size))), "size \(size)")
            #expect(range.roots.count == size.nonzeroBitCount)
        }
    }
}
