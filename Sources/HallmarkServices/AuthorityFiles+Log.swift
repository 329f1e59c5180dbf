import Crypto
import HallmarkCore
import TransparencyLog
import X509

import Foundation

extension AuthorityFiles {
    /// The log's signing key, sealed like the CA keys.
    var logKey: URL { directory.appendingPathComponent("log.key.sealed") }
    /// The log's public key, as a C2SP note verifier key (`name+keyid+base64`), for auditors.
    public var logVerifierFile: URL { directory.appendingPathComponent("log.pub") }

    /// The transparency log's Ed25519 signer: made (and its verifier key written) the first time.
    public func logSigner(name: String, passphrase: Passphrase) throws -> Checkpoint.Signer {
        let key: Curve25519.Signing.PrivateKey
        if FileManager.default.fileExists(atPath: logKey.path) {
            key = try Self.ed25519(try readSealed(logKey).open(passphrase: passphrase))
        } else {
            key = Curve25519.Signing.PrivateKey()
            try write(SealedPrivateKey.seal(Certificate.PrivateKey(key), purpose: "transparency-log", passphrase: passphrase), to: logKey)
        }
        let signer = Checkpoint.Signer(name: name, key: key)
        try Data((signer.verifier.text + "\n").utf8).write(to: logVerifierFile)
        return signer
    }

    /// The log's verifier key as written beside the CA, if there is one.
    public func logVerifier() -> Checkpoint.Verifier? {
        (try? String(contentsOf: logVerifierFile, encoding: .utf8)).flatMap(Checkpoint.Verifier.init(text:))
    }

    /// An Ed25519 key back from its PKCS#8 form (its last 32 bytes are the seed, RFC 8410).
    static func ed25519(_ key: Certificate.PrivateKey) throws -> Curve25519.Signing.PrivateKey {
        let der = try key.serializeAsPEM().derBytes
        return try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
    }
}
