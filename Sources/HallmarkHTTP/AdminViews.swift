import HallmarkCore
import HallmarkServices
import HallmarkStore

import Foundation

/// The JSON shapes of the administration API.
struct DeviceView: Encodable, Sendable {
    var udid: String
    var status: String
    var product: String
    var source: String

    init(_ device: DeviceRecord) {
        udid = device.udid.rawValue
        status = device.status.rawValue
        product = device.product
        source = device.source
    }
}

struct ThingView: Encodable, Sendable {
    var name: String
    var udid: String?
    var product: String
    var status: String
    var policies: [String]

    init(_ thing: Registry.Thing) {
        name = thing.name
        udid = thing.udid
        product = thing.product
        status = thing.status.rawValue
        policies = thing.policies
    }
}

struct CertificateView: Encodable, Sendable {
    var serial: String
    var fingerprint: String
    var thing: String
    var udid: String?
    var status: String
    var notBefore: Date
    var notAfter: Date

    init(_ record: CertificateRecord) {
        serial = record.serial
        fingerprint = record.fingerprint
        thing = record.thingName
        udid = record.udid?.rawValue
        status = record.status.rawValue
        notBefore = record.notBefore
        notAfter = record.notAfter
    }
}

struct EventView: Encodable, Sendable {
    var at: Date
    var action: String
    var decision: String
    var code: String
    var udid: String?
    var thing: String?
    var serial: String?
    var detail: String

    init(_ event: AuditEvent) {
        at = event.at
        action = event.action.rawValue
        decision = event.decision.rawValue
        code = event.code
        udid = event.udid
        thing = event.thing
        serial = event.serial
        detail = event.detail
    }
}

struct TelemetryView: Encodable, Sendable {
    var topic: String
    var at: Date
    var payload: String

    init(_ sample: TelemetrySample) {
        topic = sample.topic
        at = sample.at
        payload = String(decoding: sample.payload, as: UTF8.self)
    }
}

struct BatchCreated: Encodable, Sendable {
    var batch: Registry.BatchReport
    var stationCredential: String
}

struct ManifestReportView: Encodable, Sendable {
    struct Problem: Encodable, Sendable {
        var entry: Int
        var udid: String?
        var code: String
        var message: String
    }

    var manifest: String
    var entries: Int
    var claimed: Int
    var alreadyOwned: Int
    var notSelected: Int
    var committed: Bool
    var problems: [Problem]

    init(_ report: Registry.ManifestImportReport) {
        manifest = report.manifestID
        entries = report.entries
        claimed = report.claimed
        alreadyOwned = report.alreadyOwned
        notSelected = report.notSelected
        committed = report.committed
        problems = report.problems.map {
            Problem(entry: $0.index, udid: $0.udid, code: $0.error.code.rawValue, message: $0.error.reason)
        }
    }
}

struct ProductView: Encodable, Sendable {
    var id: String
    var name: String
    var certificateValidityDays: Int
    var defaultPolicy: String
    var cloneResponse: String
    var supersededGraceHours: Int
    var expiredRenewalDays: Int

    init(_ product: Registry.Product) {
        id = product.id
        name = product.name
        certificateValidityDays = Int(product.profile.validity / 86_400)
        supersededGraceHours = Int(product.profile.supersededGrace / 3600)
        expiredRenewalDays = Int(product.profile.expiredRenewalWindow / 86_400)
        defaultPolicy = product.defaultPolicy
        cloneResponse = product.cloneResponse.rawValue
    }
}
