#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's file descriptor limit: `serve` raises the soft limit to the hard one at start
/// (as Go's runtime and nginx's worker_rlimit_nofile do), since each connection costs one.
enum FileDescriptors {
    /// Raises the soft limit to the hard limit; returns the soft limit now in force.
    static func raise() -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 1024 }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        return Int(clamping: limits.rlim_cur)
    }
}
