import Foundation
import FuzzSupport
import HallmarkCore

/// AWS IoT Jobs input. Mode 0 (the first byte, even): a jobs API topic and, after a zero byte,
/// its JSON payload, as the broker hands them to the jobs API, then the update applied to an
/// execution in progress; the reply is JSON and every rejection is one of AWS's codes for a bad
/// request. Mode 1 (odd): a rollout file (`hallmark job create --rollout`), refused with
/// `job_invalid` or accepted.
let started = Date(timeIntervalSince1970: 1_800_000_000)
let execution = JobExecution(jobID: "fw-1", thingName: "DEV-1", status: .inProgress, queuedAt: started, startedAt: started, versionNumber: 2)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJobs(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (mode, rest) = modeAndRest(start, count) else { return 0 }
    if mode & 1 == 1 {
        do { _ = try JobConfiguration(parsing: rest) } catch { requireRefusal(error, "the rollout file", codes: ["job_invalid"]) }
        return 0
    }
    let (topicBytes, payload) = split(rest)
    let topic: JobsTopic
    do {
        topic = try JobsTopic(parsing: String(decoding: topicBytes, as: UTF8.self))
    } catch {
        require(error.code == .invalidTopic, "a jobs topic was rejected \(error.code)")
        return 0
    }
    let request: JobsRequest
    do {
        request = try JobsRequest(parsing: payload, for: topic.operation)
    } catch {
        require([.invalidJson, .invalidRequest].contains(error.code), "a jobs request was rejected \(error.code)")
        let reply = JobsReply.encode(JobsReply.rejection(error, clientToken: JobsRequest.clientToken(in: payload), now: started))
        require((try? JSONSerialization.jsonObject(with: Data(reply))) is [String: Any], "a rejection is not a JSON object")
        return 0
    }
    guard case .update = topic.operation else { return 0 }
    do {
        let updated = try JobsRules.update(execution, request: request, inProgressTimeout: 600, now: started + 1)
        require(updated.versionNumber == execution.versionNumber + 1, "an update did not advance the version by one")
        let reply = JobsReply.encode(JobsReply.execution(updated, document: nil))
        require((try? JSONSerialization.jsonObject(with: Data(reply))) is [String: Any], "an update's reply is not a JSON object")
    } catch {
        require([.invalidRequest, .invalidStateTransition, .versionMismatch, .terminalStateReached].contains(error.code),
                "an update was rejected \(error.code)")
    }
    return 0
}

/// The process's entry when the build names it `FuzzJobs_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzJobs_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzJobs)
}
