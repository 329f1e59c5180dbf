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

extension HallmarkError {
    /// What a client is told of an error that is no refusal: ``storageUnavailable(_:)`` when the
    /// registry's storage is at fault, else `internal_error` (the error itself only in the log).
    public static func serverFailure(_ error: any Error) -> HallmarkError {
        storageUnavailable(error)
            ?? HallmarkError(.internalError, "The server failed to complete the request.", remedy: "Retry; if it persists, report it.", underlying: error)
    }
}
