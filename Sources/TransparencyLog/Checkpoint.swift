import Crypto

import Foundation

/// A C2SP `tlog-checkpoint`: the log's origin, its size and root hash, in a C2SP `signed-note`
/// signed with Ed25519. The note's text is `<origin>\n<size>\n<base64 root>\n`; a signature line is
/// `— <key name> <base64(4-byte key ID ‖ 64-byte signature)>\n` after a blank line, the key ID being
/// the first four bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key) (0x01: Ed25519).
public struct Checkpoint: Sendable, Hashable {
    public var origin: String
    public var size: Int
    public var root: MerkleTree.Hash

    public init(origin: String, size: Int, root: MerkleTree.Hash) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The note's text, which the signature covers.
    public var body: String { "\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n" }

    /// A log's signing key and the name its signatures carry.
    public struct Signer: Sendable {
        public let name: String
        let key: Curve25519.Signing.PrivateKey

        public init(name: String, key: Curve25519.Signing.PrivateKey) {
            self.name = name
            self.key = key
        }

        public var verifier: Verifier { Verifier(name: name, key: key.publicKey) }
    }

    /// A log's public key: what an auditor needs to check its checkpoints.
    public struct Verifier: Sendable, Equatable {
        public let name: String
        public let key: Curve25519.Signing.PublicKey

        public init(name: String, key: Curve25519.Signing.PublicKey) {
            self.name = name
            self.key = key
        }

        public static func == (lhs: Verifier, rhs: Verifier) -> Bool {
            lhs.name == rhs.name && lhs.key.rawRepresentation == rhs.key.rawRepresentation
        }

        /// The C2SP note verifier key: `<name>+<key ID hex>+<base64(0x01 ‖ public key)>`.
        public var text: String {
            "\(name)+\(keyID.map { String(format: "%02x", $0) }.joined())+\(Data([0x01] + key.rawRepresentation).base64EncodedString())"
        }

        /// Parses a note verifier key; nil for anything else.
        public init?(text: String) {
            let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 2).map(String.init)
            guard parts.count == 3, let raw = Data(base64Encoded: parts[2]), raw.first == 0x01,
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw.dropFirst())
            else { return nil }
            self.init(name: parts[0], key: key)
            guard parts[1] == keyID.map({ String(format: "%02x", $0) }).joined() else { return nil }
        }

        var keyID: [UInt8] {
            Array(SHA256.hash(data: Array(name.utf8) + [0x0A, 0x01] + Array(key.rawRepresentation)).prefix(4))
        }
    }

    /// The signed note.
    public func signed(by signer: Signer) throws -> String {
        let signature = try signer.key.signature(for: Array(body.utf8))
        let verifier = signer.verifier
        return body + "\n— \(signer.name) " + Data(verifier.keyID + Array(signature)).base64EncodedString() + "\n"
    }

    /// Why a note was not accepted.
    public enum NoteError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case noSignatureByKey(String)
        case badSignature

        public var description: String {
            switch self {
            case .malformed(let why): "the checkpoint is malformed: \(why)"
            case .noSignatureByKey(let name): "the checkpoint carries no signature by \(name)"
            case .badSignature: "the checkpoint's signature does not verify"
            }
        }
    }

    /// Parses a signed checkpoint and checks the signature of `verifier` on it.
    public static func open(_ note: String, verifier: Verifier) throws(NoteError) -> Checkpoint {
        guard let split = note.range(of: "\n\n") else { throw .malformed("no blank line before the signatures") }
        let body = String(note[..<split.lowerBound]) + "\n"
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, let size = Int(lines[lines.startIndex + 1]), size >= 0,
            let root = Data(base64Encoded: String(lines[lines.startIndex + 2])), root.count == 32
        else { throw .malformed("not origin, size and a 32-byte root") }
        var found = false
        for line in note[split.upperBound...].split(separator: "\n") {
            guard line.hasPrefix("— ") else { throw .malformed("a signature line does not start with an em dash") }
            let fields = line.dropFirst(2).split(separator: " ")
            guard fields.count == 2, String(fields[0]) == verifier.name, let blob = Data(base64Encoded: String(fields[1])),
                blob.count == 68
            else { continue }
            guard Array(blob.prefix(4)) == verifier.keyID else { continue }
            found = true
            guard verifier.key.isValidSignature(blob.dropFirst(4), for: Array(body.utf8)) else { throw .badSignature }
        }
        guard found else { throw .noSignatureByKey(verifier.name) }
        return Checkpoint(origin: String(lines[lines.startIndex]), size: size, root: Array(root))
    }
}
