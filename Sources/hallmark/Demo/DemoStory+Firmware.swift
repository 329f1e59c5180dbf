import Firmware
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore

/// The firmware scenes: a release mastered once and delivered with a key per device, rolled out
/// in waves over the AWS IoT Jobs API; a bad release that stops its own rollout; a rollback, a
/// tampered image and a tampered flash, each refused or survived; a device restored from Hallmark.
extension DemoStory {
    func firmwareScenes(_ devices: [DeviceState], httpsPort: Int, mqttPort: Int, registry: Registry, passphrase: Passphrase) async throws {
        guard devices.count >= 16 else { return report.fail("the firmware scenes need at least 16 devices (--devices 16)") }
        let fleet = Array(devices[10..<16])
        let server = DeviceAgent.Server(host: "localhost", port: httpsPort)
        let work = directory.appendingPathComponent("firmware", isDirectory: true)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)

        report.scene("20. Firmware mastered once, a key wrapped per device (MCUboot's format)")
        let catalog = FirmwareCatalog(registry: registry, tenant: Registry.defaultTenant)
        let keys = try catalog.createKeys(product: Registry.defaultProduct, passphrase: passphrase)
        for device in devices { try DeviceFirmware(state: device).provision(bootKeysPEM: keys.signing, tenant: nil, product: nil) }
        func binary(_ size: Int, failing: Bool = false) -> [UInt8] {
            (0..<size).map { _ in UInt8.random(in: 0...255) } + (failing ? FirmwareJobRunner.selfTestFailureMarker : [])
        }
        let v1 = try catalog.master(
            product: Registry.defaultProduct, binary: binary(120_000), version: ImageVersion(parsing: "1.0.0")!, securityCounter: 1, passphrase: passphrase)
        report.say("release \(v1.id.prefix(16))…: version 1.0.0, security counter 1, \(v1.size) bytes, signed and AES-CTR encrypted with a fresh content key")
        let (_, copyA) = try await catalog.deviceImage(release: v1.id, udid: fleet[0].udid.rawValue, passphrase: passphrase)
        let (_, copyB) = try await catalog.deviceImage(release: v1.id, udid: fleet[1].udid.rawValue, passphrase: passphrase)
        let differing = zip(copyA, copyB).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        let keyRange = try MCUbootImage(copyA).unprotected(.encEC256).map { $0.offset..<$0.offset + $0.value.count }
        report.expect(
            copyA.count == copyB.count && !differing.isEmpty && differing.allSatisfy { keyRange?.contains($0) ?? false },
            "two devices' copies differ only inside their 113-byte ENC_EC256 key (\(differing.count) bytes); the payload is shared")
        let opened = try? DeviceFirmware(state: fleet[1]).check(copyA)
        report.expect(opened == nil, "device \(fleet[1].udid) cannot open \(fleet[0].udid)'s copy (firmware_not_for_device)")

        report.scene("21. A rollout in waves over the AWS IoT Jobs API: a canary, then the rest")
        let waves = try JobConfiguration(parsing: Array(#"""
            {"waves": [{"name": "canary", "percent": 33, "successThreshold": 100, "errorThreshold": 0},
                       {"name": "rest", "percent": 67, "successThreshold": 0, "errorThreshold": 100}],
             "timeoutConfig": {"inProgressTimeoutInMinutes": 30}}
            """#.utf8))
        let things = fleet.map(\.udid.rawValue)
        let jobs = JobCatalog(registry: registry, tenant: Registry.defaultTenant)
        let rollout = try jobs.create(release: v1.id, document: nil, things: things, product: nil, configuration: waves, jobID: "demo-v1", urlBase: nil)
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: rollout).counts["QUEUED"] == 2 }
        report.expect(try registry.job(tenant: Registry.defaultTenant, id: rollout).counts["SCHEDULED"] == 4, "job \(rollout): the canary wave (2 of 6) is released first")
        func runJobs(_ device: DeviceState) async throws -> [String] {
            try await FirmwareJobRunner(state: device, server: server, broker: ("localhost", mqttPort), logger: quiet).runOnce().handled.map(\.status)
        }
        var canary: [String] = []
        for device in fleet where try registry.visibleExecutions(tenant: Registry.defaultTenant, thing: device.udid.rawValue).contains(where: { !$0.status.isTerminal }) {
            canary += try await runJobs(device)
        }
        report.expect(canary == ["SUCCEEDED", "SUCCEEDED"], "the canary devices take the job (start-next), download over mutual TLS, boot on trial, self-test, confirm: SUCCEEDED")
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: rollout).counts["SCHEDULED"] == nil }
        var rest: [String] = []
        for device in fleet { rest += try await runJobs(device) }
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: rollout).status == "COMPLETED" }
        report.expect(rest == Array(repeating: "SUCCEEDED", count: 4), "the canary finished, so the second wave (4) was released: every device runs 1.0.0, job COMPLETED")

        report.scene("22. A bad release: its self-test fails, devices revert, the rollout aborts itself")
        let bad = try catalog.master(
            product: Registry.defaultProduct, binary: binary(20_000, failing: true), version: ImageVersion(parsing: "1.1.0")!, securityCounter: 2,
            passphrase: passphrase)
        let abort = try JobConfiguration(parsing: Array(#"""
            {"jobExecutionsRolloutConfig": {"maximumPerMinute": 2},
             "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]}}
            """#.utf8))
        let badJob = try jobs.create(release: bad.id, document: nil, things: things, product: nil, configuration: abort, jobID: "demo-bad", urlBase: nil)
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: badJob).counts["QUEUED"] == 2 }
        var failed: [String] = []
        for device in fleet where try registry.visibleExecutions(tenant: Registry.defaultTenant, thing: device.udid.rawValue).contains(where: { !$0.status.isTerminal }) {
            failed += try await runJobs(device)
        }
        let reverted = try fleet.filter { try DeviceFirmware(state: $0).bootState().runningImage?.version.description == "1.0.0" }.count
        report.expect(failed == ["FAILED", "FAILED"] && reverted == 6, "the first two devices (maximumPerMinute 2) fail the self-test and revert to 1.0.0 at the next reset")
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: badJob).status == "CANCELED" }
        let canceled = try registry.job(tenant: Registry.defaultTenant, id: badJob)
        report.expect(canceled.counts["CANCELED"] == 4, "2 of 2 executed failed (≥ 50 %): the abort criterion cancels the job; 4 devices never get it (\(canceled.reason ?? ""))")

        report.scene("23. A rollback attempt and a tampered image, refused by the device")
        let old = try catalog.master(
            product: Registry.defaultProduct, binary: binary(10_000), version: ImageVersion(parsing: "0.9.0")!, securityCounter: 0, passphrase: passphrase)
        let target = fleet[2]
        let v2 = try catalog.master(
            product: Registry.defaultProduct, binary: binary(90_000), version: ImageVersion(parsing: "1.2.0")!, securityCounter: 3, passphrase: passphrase)
        _ = try jobs.create(release: v2.id, document: nil, things: [target.udid.rawValue], product: nil, configuration: JobConfiguration(), jobID: "demo-v2", urlBase: nil)
        try await waitFor { try !registry.visibleExecutions(tenant: Registry.defaultTenant, thing: target.udid.rawValue).filter { $0.jobID == "demo-v2" }.isEmpty }
        report.expect(try await runJobs(target) == ["SUCCEEDED"], "device \(target.udid) runs 1.2.0 (security counter 3)")
        let (_, oldCopy) = try await catalog.deviceImage(release: old.id, udid: target.udid.rawValue, passphrase: passphrase)
        report.expect(
            Self.refusal { _ = try DeviceFirmware(state: target).install(oldCopy) } == .firmwareRollback,
            "an old, validly signed 0.9.0 (counter 0) is refused by the bootloader: firmware_rollback")
        _ = try jobs.create(release: old.id, document: nil, things: [target.udid.rawValue], product: nil, configuration: JobConfiguration(), jobID: "demo-old", urlBase: nil)
        try await waitFor { try registry.job(tenant: Registry.defaultTenant, id: "demo-old").counts["REMOVED"] == 1 }
        report.expect(true, "and Hallmark never sends it: the device reported counter 3, so its execution is REMOVED (firmware_rollback event)")
        var altered = try await catalog.deviceImage(release: v2.id, udid: fleet[3].udid.rawValue, passphrase: passphrase).1
        altered[0x200 + 64] ^= 0x01
        report.expect(
            Self.refusal { _ = try DeviceFirmware(state: fleet[3]).install(altered) } == .firmwareSignatureInvalid,
            "a copy with one payload bit flipped in transit is refused: firmware_signature_invalid")

        report.scene("24. The flash is tampered with: the next boot fails over to the other slot")
        let victim = fleet[5]
        let patch = try catalog.master(
            product: Registry.defaultProduct, binary: binary(60_000), version: ImageVersion(parsing: "1.0.1")!, securityCounter: 1, passphrase: passphrase)
        _ = try jobs.create(release: patch.id, document: nil, things: [victim.udid.rawValue], product: nil, configuration: JobConfiguration(), jobID: "demo-patch", urlBase: nil)
        try await waitFor { try !registry.visibleExecutions(tenant: Registry.defaultTenant, thing: victim.udid.rawValue).filter { $0.jobID == "demo-patch" }.isEmpty }
        report.expect(try await runJobs(victim) == ["SUCCEEDED"], "device \(victim.udid) runs 1.0.1 in one slot, 1.0.0 stays in the other (both security counter 1)")
        let firmware = DeviceFirmware(state: victim)
        let slot = try firmware.tamper()
        let (after, events) = try firmware.reboot()
        report.expect(
            events.contains(.tamperDetected(slot: slot)) && after.running == 1 - slot && after.runningImage?.version.description == "1.0.0",
            "slot \(BootState.names[slot]) no longer verifies: tamper_detected; slot \(BootState.names[1 - slot]) (1.0.0) boots instead")

        report.scene("25. Both slots broken: the device restores its last good release from Hallmark")
        _ = try firmware.tamper()
        let (broken, _) = try firmware.reboot()
        report.expect(broken.running == nil, "slot \(BootState.names[1 - slot]) is tampered with too: no slot can boot (recovery_needed)")
        let restored = try await FirmwareJobRunner(state: victim, server: server, broker: ("localhost", mqttPort), logger: quiet).recover()
        let running = try firmware.bootState().runningImage
        report.expect(
            restored?.version.description == "1.0.1" && running?.version.description == "1.0.1",
            "`hallmark device recover` fetched 1.0.1 over mutual TLS (the release it last reported running) and boots it")
    }

    private func waitFor(_ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func refusal(_ body: () throws -> Void) -> HallmarkError.Code? {
        do {
            try body()
            return nil
        } catch let error as HallmarkError {
            return error.code
        } catch {
            return .internalError
        }
    }
}
