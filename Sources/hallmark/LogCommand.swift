import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import TransparencyLog
import X509

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "The tamper-evident event log: verify it end to end, or print a proof an auditor checks alone.",
        subcommands: [Verify.self, Proof.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every event against its leaf, the tree against the signed checkpoints, and each checkpoint's signature.",
            discussion: "With --server, reads a running Hallmark's /log/v1 API instead of a data directory.")
        @OptionGroup var data: DataOptions
        @Option(help: "A Hallmark's HTTPS address (https://host:port) to verify instead of the data directory.") var server: String?
        @Option(help: "The log's note verifier key file (default: the data directory's ca/log.pub).") var key: String?
        @Option(help: "With --server: the root certificate to trust (default: the data directory's).") var cacert: String?
        @Option(help: "With --server: the default tenant's credential, to read every entry.") var credential: String?

        func run() async throws {
            try await reporting {
                let files = AuthorityFiles(dataDirectory: URL(fileURLWithPath: data.resolvedDataDirectory))
                let verifierText = try key.map { try String(contentsOfFile: $0, encoding: .utf8) }
                    ?? (try? String(contentsOf: files.logVerifierFile, encoding: .utf8))
                guard let text = verifierText, let verifier = Checkpoint.Verifier(text: text) else {
                    throw HallmarkError(.notFound, "No log verifier key.", remedy: "Give --key FILE (the server's GET /log/v1/key, kept beforehand).")
                }
                let audit: LogAudit
                if let server {
                    audit = try await Self.audit(server: server, verifier: verifier, cacert: cacert ?? files.rootFile.path, credential: credential)
                } else {
                    audit = try LogAudit.audit(registry: try data.openRegistry(), verifier: verifier)
                }
                for finding in audit.findings { print("TAMPERED: \(finding)") }
                guard audit.ok else {
                    throw HallmarkError(
                        .logInconsistent, "The event log does not match its signed tree: \(audit.findings.count) finding(s).",
                        remedy: "Keep this data directory as evidence; restore the registry from a backup checked with `hallmark log verify`.")
                }
                print("log verified: \(audit.leaves) leaves; \(audit.checkpointsChecked) signed checkpoint(s) up to size \(audit.checkpointSize) match; every event matches its leaf")
            }
        }

        static func audit(server: String, verifier: Checkpoint.Verifier, cacert: String, credential: String?) async throws -> LogAudit {
            guard let url = URL(string: server), url.scheme == "https", let host = url.host else {
                throw HallmarkError(.configInvalid, "--server \(server) is not an https:// address.", remedy: "Give https://host:port.")
            }
            let root = try Certificate(pemEncoded: String(contentsOfFile: cacert, encoding: .utf8))
            let tls = try HTTPSConnection.ClientTLS(trustRoots: [root])
            return try await HTTPSConnection.with(host: host, port: url.port ?? 443, tls: tls) { connection in
                let note = String(decoding: try await connection.request(.GET, "/log/v1/checkpoint").body, as: UTF8.self)
                let checkpoint = try Checkpoint.open(note, verifier: verifier)
                var entries: [Registry.LogEntry] = []
                while entries.count < checkpoint.size {
                    let end = min(checkpoint.size, entries.count + 1000)
                    let response = try await connection.request(
                        .GET, "/log/v1/entries?start=\(entries.count)&end=\(end)",
                        headers: credential.map { [("Authorization", "Bearer \($0)")] } ?? [])
                    guard response.status == 200 else {
                        throw HallmarkError(.credentialInvalid, "The server refused the entries (\(response.status)).", remedy: "Give --credential, the default tenant's.")
                    }
                    struct Page: Decodable { struct Entry: Decodable { var index: Int; var leaf: String }; var entries: [Entry] }
                    let page = try JSONDecoder().decode(Page.self, from: Data(response.body))
                    guard !page.entries.isEmpty else { break }
                    for entry in page.entries {
                        let leaf = Array(Data(base64Encoded: entry.leaf) ?? Data())
                        entries.append(Registry.LogEntry(index: entry.index, eventID: 0, leaf: leaf, recordedHash: MerkleTree.leafHash(leaf), tenant: ""))
                    }
                }
                return LogAudit.audit(entries: entries, notes: [note], verifier: verifier)
            }
        }
    }

    struct Proof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an inclusion proof of an event (by UDID: its latest; or by leaf index) against the latest signed checkpoint, as JSON.")
        @OptionGroup var data: DataOptions
        @Argument(help: "A device's UDID, or a leaf index.") var target: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let note = try registry.checkpoints().last?.note else {
                    throw HallmarkError(.notFound, "No checkpoint is signed yet.", remedy: "Run `hallmark serve` for a moment first.")
                }
                let files = AuthorityFiles(dataDirectory: URL(fileURLWithPath: data.resolvedDataDirectory))
                let verifier = files.logVerifier()
                let size = Int(note.split(separator: "\n")[1]) ?? 0
                let index: Int
                if let number = Int(target) {
                    index = number
                } else {
                    guard let latest = try registry.logIndexes(udid: target).last(where: { $0 < size }) else {
                        throw HallmarkError(.notFound, "No event of \(target) is in the signed tree yet.", remedy: "Check the UDID, or wait a second.")
                    }
                    index = latest
                }
                let hashes = Array(try registry.logLeafHashes().prefix(size))
                guard index >= 0, index < hashes.count, let entry = try registry.logEntries(start: index, end: index + 1).first else {
                    throw HallmarkError(.notFound, "Leaf \(index) is not in the signed tree of \(size).", remedy: "Give an index below \(size).")
                }
                let path = try MerkleTree.inclusionProof(index: index, hashes)
                let proof: [String: Any] = [
                    "checkpoint": note, "key": verifier?.text ?? "", "leaf_index": index, "tree_size": size,
                    "leaf": Data(entry.leaf).base64EncodedString(), "audit_path": path.map { Data($0).base64EncodedString() },
                ]
                let json = try JSONSerialization.data(withJSONObject: proof, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: json, as: UTF8.self))
            }
        }
    }
}
