import Firmware
import HallmarkCore
import HallmarkStore

import Foundation

/// Creates jobs: a firmware job's document in the `afr_ota` shape with a `hallmark` block, or any
/// document an operator gives.
public struct JobCatalog: Sendable {
    public let registry: Registry
    public let tenant: String

    public init(registry: Registry, tenant: String) {
        self.registry = registry
        self.tenant = tenant
    }

    /// Where devices download a release's copy, relative to Hallmark's HTTPS listener.
    public static func downloadPath(release: String) -> String { "/firmware/v1/releases/\(release)/image" }

    /// The job document for a release: `afr_ota` (file size, URL, signature) and `hallmark`
    /// (release id, version, security counter).
    public func firmwareDocument(_ release: Registry.FirmwareRelease, urlBase: String?) throws -> [UInt8] {
        let image = try MCUbootImage(try registry.firmwareImage(release: release.id))
        let signature = image.unprotected(.ecdsaSignature)?.value ?? []
        let document: [String: Any] = [
            "afr_ota": [
                "protocols": ["HTTP"],
                "files": [[
                    "filepath": "mcuboot-secondary-slot", "filesize": release.size, "fileid": 0, "fileType": 0, "attr": 0,
                    "update_data_url": (urlBase ?? "") + Self.downloadPath(release: release.id), "auth_scheme": "hallmark.mtls",
                    "sig-sha256-ecdsa": Data(signature).base64EncodedString(),
                ]],
            ],
            "hallmark": [
                "release": release.id, "product": release.product, "version": release.version, "securityCounter": Int(release.securityCounter),
                "size": release.size,
            ],
        ]
        return Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Creates a job for a release (or a given document) over things or a product's things.
    /// - Returns: the job id.
    public func create(
        release id: String?, document: [UInt8]?, things: [String]?, product: String?, configuration: JobConfiguration, jobID: String?,
        urlBase: String?, now: Date = Date()
    ) throws -> String {
        let release = try id.map { try registry.firmwareRelease(tenant: tenant, id: $0) }
        guard (things == nil) != (product == nil) else {
            throw HallmarkError(.jobInvalid, "A job targets --things or a --product, not both or neither.", remedy: "Name one.")
        }
        if let release, let product, product != release.product {
            throw HallmarkError(
                .firmwareWrongProduct, "Release \(release.id.prefix(16)) is for product \(release.product), not \(product).",
                remedy: "Target the release's own product.")
        }
        let targets = try things ?? registry.thingNames(tenant: tenant, product: product!)
        let body: [UInt8]
        if let release {
            body = try firmwareDocument(release, urlBase: urlBase)
        } else if let document {
            body = document
        } else {
            throw HallmarkError(.jobInvalid, "A job needs a --release or a --document.", remedy: "Name a release, or give a JSON document.")
        }
        let name = jobID ?? release.map { "fw-\($0.version.map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined())-\($0.id.prefix(8))" }
            ?? "job-\(UInt32(now.timeIntervalSince1970))"
        try registry.createJob(tenant: tenant, id: name, document: body, releaseID: release?.id, targets: targets, configuration: configuration, now: now)
        return name
    }
}
