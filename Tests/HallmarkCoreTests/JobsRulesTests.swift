import Foundation
import HallmarkCore
import Testing

@Suite struct JobsRulesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func topicsNameTheFourOperations() throws {
        #expect(try JobsTopic(parsing: "$aws/things/t-1/jobs/get").operation == .getPending)
        #expect(try JobsTopic(parsing: "$aws/things/t-1/jobs/start-next").operation == .startNext)
        #expect(try JobsTopic(parsing: "$aws/things/t-1/jobs/$next/get").operation == .describe(jobID: "$next"))
        #expect(try JobsTopic(parsing: "$aws/things/t:1/jobs/fw_1-2/update").operation == .update(jobID: "fw_1-2"))
        for topic in ["$aws/things/t/jobs/get/accepted", "$aws/things/t/jobs/notify", "$aws/things/t/jobs/a.b/update", "$aws/things//jobs/get",
                      "$aws/things/t/jobs/$next/update"] {
            #expect(throws: JobsRejection(.invalidTopic, "")) { try JobsTopic(parsing: topic) }
            #expect(JobsTopic.isJobsTopic(topic) || topic.contains("//"))
        }
        #expect(!JobsTopic.isJobsTopic("things/t/jobs/get"))
    }

    @Test func requestsAreCheckedAsAWSChecksThem() throws {
        let update = JobsTopic.Operation.update(jobID: "j")
        let parsed = try JobsRequest(parsing: Array(#"{"status":"IN_PROGRESS","expectedVersion":"3","clientToken":"abc","statusDetails":{"receive":"1/2"},"includeJobExecutionState":true}"#.utf8), for: update)
        #expect(parsed.expectedVersion == 3 && parsed.clientToken == "abc" && parsed.statusDetails == ["receive": "1/2"] && parsed.includeJobExecutionState)
        #expect(try JobsRequest(parsing: [], for: .getPending) == JobsRequest())
        let bad: [(String, JobsRejection.Code)] = [
            ("not json", .invalidJson), ("[1]", .invalidJson), (#"{"status":"QUEUED"}"#, .invalidRequest), (#"{}"#, .invalidRequest),
            (#"{"status":"SUCCEEDED","expectedVersion":true}"#, .invalidRequest), (#"{"status":"SUCCEEDED","statusDetails":{"a":1}}"#, .invalidRequest),
            (#"{"status":"SUCCEEDED","statusDetails":{"a":"\u0001"}}"#, .invalidRequest), (#"{"status":"SUCCEEDED","stepTimeoutInMinutes":0}"#, .invalidRequest),
            (#"{"status":"SUCCEEDED","includeJobDocument":1}"#, .invalidRequest),
        ]
        for (payload, code) in bad {
            #expect(throws: JobsRejection(code, "")) { try JobsRequest(parsing: Array(payload.utf8), for: update) }
        }
        #expect(JobsRequest.clientToken(in: Array(#"{"clientToken":"t","status":1}"#.utf8)) == "t")
    }

    @Test func startNextTakesTheOldestInProgressThenQueued() {
        let a = JobExecution(jobID: "a", thingName: "t", queuedAt: now)
        let b = JobExecution(jobID: "b", thingName: "t", status: .inProgress, queuedAt: now.addingTimeInterval(5))
        #expect(JobsRules.next([a, b])?.jobID == "b")
        #expect(JobsRules.next([a])?.jobID == "a")
        let started = JobsRules.startNext(a, request: JobsRequest(stepTimeoutInMinutes: 10), inProgressTimeout: 3600, now: now)
        #expect(started.status == .inProgress && started.versionNumber == 2 && started.timeoutAt == now.addingTimeInterval(600))
        #expect(JobsRules.startNext(b, request: JobsRequest(), inProgressTimeout: nil, now: now) == b)
    }

    @Test func updatesCheckTheVersionAndNeverLeaveATerminalStatus() throws {
        let running = JobExecution(jobID: "j", thingName: "t", status: .inProgress, queuedAt: now, versionNumber: 4)
        #expect(throws: JobsRejection(.versionMismatch, "")) {
            try JobsRules.update(running, request: JobsRequest(status: .succeeded, expectedVersion: 3), inProgressTimeout: nil, now: now)
        }
        let done = try JobsRules.update(running, request: JobsRequest(status: .succeeded, expectedVersion: 4), inProgressTimeout: nil, now: now)
        #expect(done.status == .succeeded && done.versionNumber == 5 && done.timeoutAt == nil)
        #expect(throws: JobsRejection(.invalidStateTransition, "")) {
            try JobsRules.update(done, request: JobsRequest(status: .inProgress), inProgressTimeout: nil, now: now)
        }
        var timing = running
        timing.timeoutAt = now
        #expect(JobsRules.timedOut(timing, now: now)?.status == .timedOut)
        #expect(JobsRules.timedOut(running, now: now) == nil)
    }

    @Test func theRateRisesExponentiallyUpToItsMaximum() throws {
        let configuration = try JobConfiguration(parsing: Array(#"""
            {"jobExecutionsRolloutConfig": {"maximumPerMinute": 100,
              "exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 2.0, "rateIncreaseCriteria": {"numberOfNotifiedThings": 10}}}}
            """#.utf8))
        func progress(released: Int, lastMinute: Int) -> RolloutProgress {
            var wave = RolloutProgress.Wave()
            wave.targets = 1000
            wave.released = released
            return RolloutProgress(waves: [wave], releasedLastMinute: lastMinute)
        }
        #expect(RolloutDecision.ratePerMinute(configuration, progress: progress(released: 0, lastMinute: 0)) == 10)
        #expect(RolloutDecision.ratePerMinute(configuration, progress: progress(released: 20, lastMinute: 0)) == 40)
        #expect(RolloutDecision.ratePerMinute(configuration, progress: progress(released: 500, lastMinute: 0)) == 100)
        #expect(RolloutDecision.decide(configuration, progress: progress(released: 0, lastMinute: 0)) == .release(count: 10, wave: 0))
        #expect(RolloutDecision.decide(configuration, progress: progress(released: 10, lastMinute: 10)) == .release(count: 10, wave: 0))
        #expect(RolloutDecision.decide(configuration, progress: progress(released: 5, lastMinute: 5)) == .release(count: 5, wave: 0))
        #expect(RolloutDecision.decide(configuration, progress: progress(released: 9, lastMinute: 10)) == .wait)
    }

    @Test func abortCriteriaAndWaveThresholds() throws {
        let configuration = try JobConfiguration(parsing: Array(#"""
            {"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 4}]},
             "waves": [{"name": "canary", "percent": 10, "successThreshold": 100, "errorThreshold": 20},
                       {"name": "rest", "percent": 90, "successThreshold": 0, "errorThreshold": 100}]}
            """#.utf8))
        #expect(configuration.waveAssignment(count: 20) == Array(repeating: 0, count: 2) + Array(repeating: 1, count: 18))
        var canary = RolloutProgress.Wave(), rest = RolloutProgress.Wave()
        canary.targets = 2; canary.released = 2; rest.targets = 18
        // The canary has not finished: the second wave waits.
        #expect(RolloutDecision.decide(configuration, progress: .init(waves: [canary, rest], releasedLastMinute: 2)) == .wait)
        canary.succeeded = 2
        #expect(RolloutDecision.decide(configuration, progress: .init(waves: [canary, rest], releasedLastMinute: 2)) == .release(count: 18, wave: 1))
        canary.succeeded = 1; canary.failed = 1
        if case .pause = RolloutDecision.decide(configuration, progress: .init(waves: [canary, rest], releasedLastMinute: 2)) {} else {
            Issue.record("a canary failure above the error threshold pauses the rollout")
        }
        rest.released = 4; rest.failed = 3
        if case .abort = RolloutDecision.decide(configuration, progress: .init(waves: [canary, rest], releasedLastMinute: 6)) {} else {
            Issue.record("4 failures of 6 executed (67 %) meet the 50 % abort criterion")
        }
        for bad in [#"{"abortConfig":{"criteriaList":[{"failureType":"OOPS","action":"CANCEL","thresholdPercentage":5,"minNumberOfExecutedThings":1}]}}"#,
                    #"{"jobExecutionsRolloutConfig":{"maximumPerMinute":0}}"#, #"{"timeoutConfig":{"inProgressTimeoutInMinutes":0}}"#,
                    #"{"waves":[{"percent":80,"successThreshold":1,"errorThreshold":1},{"percent":30,"successThreshold":1,"errorThreshold":1}]}"#, "nope"] {
            #expect(throws: HallmarkError(.jobInvalid, "", remedy: "")) { try JobConfiguration(parsing: Array(bad.utf8)) }
        }
    }
}
