import HallmarkCore
import NIOCore

import Foundation

/// A release's download to the device, over mutual TLS with its operational certificate, kept in
/// `download.part` with its progress in `download.json`: a download cut by a power loss resumes
/// with a range request where it stopped, never from zero.
public struct FirmwareDownload: Sendable {
    public let state: DeviceState
    public let server: DeviceAgent.Server

    public init(state: DeviceState, server: DeviceAgent.Server) {
        self.state = state
        self.server = server
    }

    var partFile: URL { state.directory.appendingPathComponent("download.part") }
    var progressFile: URL { state.directory.appendingPathComponent("download.json") }

    struct Progress: Codable {
        var release: String
        var path: String
        var size: Int
    }

    /// The bytes held so far of a release's download.
    public func heldBytes(release: String) -> Int {
        guard let data = FileManager.default.contents(atPath: progressFile.path),
            let progress = try? JSONDecoder().decode(Progress.self, from: data), progress.release == release,
            let attributes = try? FileManager.default.attributesOfItem(atPath: partFile.path)
        else { return 0 }
        return (attributes[.size] as? Int) ?? 0
    }

    /// Downloads (or resumes) a release's copy.
    /// - Parameters:
    ///   - path: the URL path the job document names (`update_data_url`).
    ///   - size: the size it names.
    ///   - stopAfter: stop once this many bytes are held in all (a simulated power loss).
    /// - Returns: the whole copy, or nil when stopped early.
    /// - Throws: the server's refusal (its code), or `firmware_image_invalid` when the size differs.
    public func fetch(release: String, path: String, size: Int, stopAfter: Int? = nil) async throws -> [UInt8]? {
        var held = heldBytes(release: release)
        if held == 0 {
            FileManager.default.createFile(atPath: partFile.path, contents: nil)
            try JSONEncoder().encode(Progress(release: release, path: path, size: size)).write(to: progressFile)
        }
        if held < size {
            let handle = try FileHandle(forWritingTo: partFile)
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(held))
            let tls = try HTTPSConnection.ClientTLS(
                trustRoots: state.trustRoots(),
                identity: ([try state.certificate().orThrow(HallmarkError(.clientCertificateRequired, "The device is not enrolled.", remedy: "Boot it first."))], state.privateKey))
            var stopped = false
            let (status, _) = try await HTTPSConnection.with(host: server.host, port: server.port, tls: tls) { connection in
                try await connection.stream(path, headers: held > 0 ? [("Range", "bytes=\(held)-")] : []) { buffer in
                    guard !stopped else { return }
                    var chunk = buffer
                    if let stopAfter, held + chunk.readableBytes >= stopAfter {
                        chunk = chunk.getSlice(at: chunk.readerIndex, length: max(0, stopAfter - held)) ?? chunk
                        stopped = true
                    }
                    try handle.write(contentsOf: Data(chunk.readableBytesView))
                    held += chunk.readableBytes
                }
            }
            guard status == 200 || status == 206 else {
                throw HallmarkError(.notAuthorized, "The server refused the download (HTTP \(status)).", remedy: "See the server's event log.")
            }
            if stopped { return nil }
        }
        let bytes = [UInt8](try Data(contentsOf: partFile))
        guard bytes.count == size else {
            discard()
            throw HallmarkError(.firmwareImageInvalid, "The download is \(bytes.count) bytes, not the \(size) the job names.", remedy: "Download it again.")
        }
        return bytes
    }

    /// Forgets a download (once installed, or when it is bad).
    public func discard() {
        try? FileManager.default.removeItem(at: partFile)
        try? FileManager.default.removeItem(at: progressFile)
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> any Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}
