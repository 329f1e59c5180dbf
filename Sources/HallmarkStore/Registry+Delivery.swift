import Foundation
import GRDB
import HallmarkCore

extension Registry {
    /// Why a device may download a release now, if it may.
    public enum DownloadGrant: Sendable, Hashable {
        /// A released, unfinished execution of a job for this release targets the thing.
        case job(String)
        /// The release is the one the device last reported running: its restore copy.
        case restore
    }

    /// Whether a thing may download a release: only while a job for it targets the thing, or to
    /// restore the release it last reported running.
    public func downloadGrant(tenant: String, thing: String, release: FirmwareRelease) throws -> DownloadGrant? {
        try pool.read { db in
            if let job = try String.fetchOne(
                db,
                sql: """
                    SELECT e.job_id FROM job_executions e JOIN jobs j ON j.tenant_id = e.tenant_id AND j.id = e.job_id
                    WHERE e.tenant_id = ? AND e.thing = ? AND j.release_id = ? AND e.released_at IS NOT NULL
                      AND e.status IN ('QUEUED', 'IN_PROGRESS') LIMIT 1
                    """,
                arguments: [tenant, thing, release.id])
            {
                return .job(job)
            }
            let reported = try String.fetchOne(
                db, sql: "SELECT version FROM thing_firmware WHERE tenant_id = ? AND thing = ?", arguments: [tenant, thing])
            return reported == release.version ? .restore : nil
        }
    }

    private func readWrappedKey(release: String, udid: String) throws -> Data? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT wrapped_key FROM firmware_wraps WHERE release_id = ? AND udid = ?", arguments: [release, udid])
        }
    }

    /// The content key wrapped for a device, made once per release and device and kept, so a
    /// download resumed with a range request gets the same bytes it started with.
    /// The insert is group-committed with the other writes of the moment: a thousand devices
    /// starting their downloads at once cost a few commits, not a thousand.
    public func wrappedKey(release: String, udid: String, make: () throws -> [UInt8], now: Date) async throws -> [UInt8] {
        // A synchronous read, as every read of a request here is: an async read waiting for a reader
        // while synchronous ones hold the cooperative threads could wait for ever.
        if let known = try readWrappedKey(release: release, udid: udid) {
            return [UInt8](known)
        }
        let made = try make()
        return try await committer.perform { db in
            try db.execute(
                sql: "INSERT INTO firmware_wraps (release_id, udid, wrapped_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [release, udid, Data(made), now.timeIntervalSince1970])
            // Another request may have won the race: everyone gets the stored one.
            return try Data.fetchOne(db, sql: "SELECT wrapped_key FROM firmware_wraps WHERE release_id = ? AND udid = ?", arguments: [release, udid])
                .map { [UInt8]($0) } ?? made
        }
    }
}
