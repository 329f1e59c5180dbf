import GRDB
import HallmarkCore

extension HallmarkError {
    /// The refusal for a registry failure that is the storage's state rather than a defect: a full
    /// disk, an I/O error, a database that cannot be opened or stays locked. Nothing was committed;
    /// the client may retry. Nil for any other error.
    public static func storageUnavailable(_ error: any Error) -> HallmarkError? {
        guard let database = error as? DatabaseError else { return nil }
        switch database.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_READONLY:
            return HallmarkError(
                .storageUnavailable, "The registry cannot commit now (\(database.resultCode == .SQLITE_FULL ? "its disk is full" : "its storage is failing")); nothing was recorded.",
                remedy: "Retry in a few seconds. Operators: free space on the data directory's disk and check its health.",
                underlying: error)
        default:
            return nil
        }
    }
}
