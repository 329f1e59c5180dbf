import Foundation

/// The payloads of AWS IoT's fleet provisioning API, in JSON or CBOR as the request was.
public enum ProvisioningReply {
    /// A rejection: AWS's `{"statusCode", "errorCode", "errorMessage"}`, and Hallmark's stable code
    /// beside them. `errorCode` is AWS's own where AWS refuses the same thing (an ownership token
    /// that is not good is `InvalidCertificateOwnershipToken`, a hook that says no `AccessDenied`),
    /// else Hallmark's code.
    public static func rejection(_ error: HallmarkError, format: ProvisioningTopic.Format) -> [UInt8] {
        let awsCode: String? = switch error.code {
        case .ownershipTokenInvalid: "InvalidCertificateOwnershipToken"
        case .provisioningDenied: "AccessDenied"
        default: nil
        }
        let status = switch error.code.kind {
        case .invalid, .unsupportedMediaType: 400
        case .tooLarge: 413
        case .refused, .unauthenticated: error.code == .ownershipTokenInvalid ? 400 : 403
        case .notFound: 404
        case .conflict: 409
        case .serverSetup, .internal: 500
        case .unavailable: 503
        }
        return encode(
            ["statusCode": status, "errorCode": awsCode ?? error.code.rawValue, "errorMessage": error.reason + " " + error.remedy,
             "hallmarkCode": error.code.rawValue],
            format: format)
    }

    /// CreateCertificateFromCsr's (and, with the key, CreateKeysAndCertificate's) answer.
    public static func certificate(id: String, pem: String, ownershipToken: String, privateKeyPEM: String? = nil, format: ProvisioningTopic.Format) -> [UInt8] {
        var object: [String: String] = ["certificateId": id, "certificatePem": pem, "certificateOwnershipToken": ownershipToken]
        if let privateKeyPEM { object["privateKey"] = privateKeyPEM }
        guard format == .json else { return encode(object, format: format) }
        // Written directly: Foundation's JSONSerialization took a tenth of a provisioning's CPU.
        var out = "{"
        for (index, key) in object.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            out += JSONText.quoted(key) + ":" + JSONText.quoted(object[key]!)
        }
        return Array((out + "}").utf8)
    }

    /// RegisterThing's answer.
    public static func registered(thingName: String, deviceConfiguration: [String: String], format: ProvisioningTopic.Format) -> [UInt8] {
        encode(["thingName": thingName, "deviceConfiguration": deviceConfiguration], format: format)
    }

    /// The largest request accepted (a CSR and a handful of parameters fit many times over).
    public static let maximumRequestSize = 16 * 1024

    /// A request's payload as a JSON-like object; an empty payload is an empty object (AWS
    /// accepts one for CreateKeysAndCertificate).
    /// - Throws: `provisioning_request_invalid`.
    public static func decode(_ payload: [UInt8], format: ProvisioningTopic.Format) throws(HallmarkError) -> [String: Any] {
        guard payload.count <= maximumRequestSize else {
            throw HallmarkError(.provisioningRequestInvalid, "The request is \(payload.count) bytes; at most \(maximumRequestSize) are read.",
                                remedy: "Send the CSR and parameters only.")
        }
        if payload.isEmpty { return [:] }
        let object: Any?
        switch format {
        case .json: object = try? JSONSerialization.jsonObject(with: Data(payload))
        case .cbor: object = (try? CBOR(decoding: payload))?.jsonObject
        }
        guard let object = object as? [String: Any] else {
            throw HallmarkError(.provisioningRequestInvalid, "The request is not a \(format == .json ? "JSON" : "CBOR") object.",
                                remedy: "Send the API's request object, e.g. {\"certificateSigningRequest\": \"-----BEGIN CERTIFICATE REQUEST-----…\"}.")
        }
        return object
    }

    static func encode(_ object: [String: Any], format: ProvisioningTopic.Format) -> [UInt8] {
        switch format {
        case .json: return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
        case .cbor: return CBOR(jsonObject: object)?.encoded ?? [0xa0]
        }
    }
}
