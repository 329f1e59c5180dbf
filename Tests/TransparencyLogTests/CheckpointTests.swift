import Crypto
import Testing

import Foundation

@testable import TransparencyLog

@Suite struct CheckpointTests {
    let signer = Checkpoint.Signer(name: "hallmark.example/log", key: Curve25519.Signing.PrivateKey())
    let checkpoint = Checkpoint(origin: "hallmark.example/log", size: 5, root: MerkleTree.root((0..<5).map { MerkleTree.leafHash([UInt8($0)]) }))

    @Test func aSignedCheckpointOpensWithItsKey() throws {
        let note = try checkpoint.signed(by: signer)
        #expect(note.hasPrefix("hallmark.example/log\n5\n"))
        #expect(note.contains("\n\n— hallmark.example/log "))
        #expect(try Checkpoint.open(note, verifier: signer.verifier) == checkpoint)
    }

    @Test func theVerifierKeyRoundTripsAsText() throws {
        let text = signer.verifier.text
        #expect(text.hasPrefix("hallmark.example/log+"))
        #expect(Checkpoint.Verifier(text: text) == signer.verifier)
        #expect(Checkpoint.Verifier(text: text.replacingOccurrences(of: "+", with: "-")) == nil)
    }

    @Test func anAlteredOrForeignCheckpointIsRefused() throws {
        let note = try checkpoint.signed(by: signer)
        #expect(throws: Checkpoint.NoteError.badSignature) {
            try Checkpoint.open(note.replacingOccurrences(of: "\n5\n", with: "\n6\n"), verifier: signer.verifier)
        }
        let stranger = Checkpoint.Signer(name: "hallmark.example/log", key: Curve25519.Signing.PrivateKey())
        #expect(throws: Checkpoint.NoteError.noSignatureByKey("hallmark.example/log")) {
            try Checkpoint.open(note, verifier: stranger.verifier)
        }
        #expect(throws: Checkpoint.NoteError.self) { try Checkpoint.open("garbage", verifier: signer.verifier) }
    }
}
