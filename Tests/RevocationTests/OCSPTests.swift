import Crypto
import SwiftASN1
import Testing
import X509

import Foundation

@testable import Revocation

/// swift-certificates' own OCSP client, answered in process by the responder under test.
struct InProcessRequester: OCSPRequester {
    let responder: OCSPResponder
    let statuses: [[UInt8]: OCSPResponder.Status]

    func query(request: [UInt8], uri: String) async -> OCSPRequesterQueryResult {
        .response(responder.answer(request, now: Date(), lookup: { _, serial in statuses[serial] }).der)
    }
}

@Suite struct OCSPTests {
    let pki: RevocationFixtures
    init() throws { pki = try RevocationFixtures() }

    let goodSerial: [UInt8] = [0x01, 0x02, 0x03]
    let revokedSerial: [UInt8] = [0x01, 0x09, 0x09]

    var statuses: [[UInt8]: OCSPResponder.Status] {
        [goodSerial: .good, revokedSerial: .revoked(at: pki.now - 60, reason: .keyCompromise)]
    }

    func verify(_ leaf: Certificate, delegated: Bool) async throws -> VerificationResult {
        let requester = InProcessRequester(responder: try pki.responder(delegated: delegated), statuses: statuses)
        var verifier = Verifier(rootCertificates: CertificateStore([pki.root])) {
            RFC5280Policy(validationTime: Date())
            OCSPVerifierPolicy(failureMode: .hard, requester: requester)
        }
        return await verifier.validate(leafCertificate: leaf, intermediates: CertificateStore([pki.issuing]))
    }

    @Test(arguments: [false, true])
    func swiftCertificatesAcceptsAGoodAnswer(delegated: Bool) async throws {
        let result = try await verify(try pki.leaf(serial: goodSerial), delegated: delegated)
        guard case .validCertificate = result else {
            Issue.record("a good certificate was refused: \(result)")
            return
        }
    }

    @Test(arguments: [false, true])
    func swiftCertificatesRefusesARevokedOne(delegated: Bool) async throws {
        let result = try await verify(try pki.leaf(serial: revokedSerial), delegated: delegated)
        guard case .couldNotValidate(let failures) = result else {
            Issue.record("a revoked certificate was accepted")
            return
        }
        #expect(failures.contains { "\($0)".contains("revoked") })
    }

    @Test func swiftCertificatesRefusesAnUnknownOne() async throws {
        let result = try await verify(try pki.leaf(serial: [0x01, 0x42]), delegated: true)
        guard case .couldNotValidate = result else {
            Issue.record("a certificate the CA never issued was accepted")
            return
        }
    }

    @Test func aRequestIsParsedWithBothHashesAndItsNonce() throws {
        for algorithm in IssuerIdentity.HashAlgorithm.allCases {
            let nonce = [UInt8](repeating: 7, count: 16)
            let request = try OCSPRequest(derEncoded: try pki.request(serial: goodSerial, algorithm: algorithm, nonce: nonce))
            #expect(request.certificates.count == 1)
            #expect(request.certificates[0].serial == goodSerial)
            #expect(request.certificates[0].issuer == (try IssuerIdentity(pki.issuing, algorithm: algorithm)))
            #expect(request.nonce == [0x04, 16] + nonce)
        }
    }

    @Test func anOpenSSLRequestIsParsed() throws {
        // `openssl ocsp -issuer ca.pem -serial 0x0102 -reqout r.der` (OpenSSL 3.0): SHA-1 CertID, 16-byte nonce.
        let der = Array(
            Data(
                base64Encoded:
                    "MGgwZjA/MD0wOzAJBgUrDgMCGgUABBTtZsWhBHzTk4HidUiGTEsOqqaQyAQUama4ZFD4yORoeYn7iQzhaSW0/6sCAgECoiMwITAfBgkrBgEFBQcwAQIEEgQQSA31ZNzY8Wq+HNLuPC4SsA=="
            )!)
        let request = try OCSPRequest(derEncoded: der)
        #expect(request.certificates.map(\.serial) == [[0x01, 0x02]])
        #expect(request.certificates[0].issuer.algorithm == .sha1)
        #expect(request.nonce?.count == 18)
    }

    @Test func malformedRequestsAreAnsweredMalformed() throws {
        let responder = try pki.responder(delegated: true)
        var sha384 = try pki.request(serial: goodSerial)
        // The SHA-1 OID's bytes 2B 0E 03 02 1A become those of an unknown one of the same length.
        let oid: [UInt8] = [0x2B, 0x0E, 0x03, 0x02, 0x1A]
        let at = try #require((0...(sha384.count - oid.count)).first { Array(sha384[$0..<$0 + oid.count]) == oid })
        sha384[at + 4] = 0x1B
        let cases: [(String, [UInt8])] = [
            ("empty", []), ("garbage", Array("GET / HTTP/1.1\r\n\r\n".utf8)),
            ("huge", [UInt8](repeating: 0x30, count: 100_000)),
            ("truncated", Array(try pki.request(serial: goodSerial).dropLast(3))),
            ("unknown hash", sha384),
            ("not a request", try pki.issuing.serializeAsPEM().derBytes),
            ("too many", try manyCertIDs(count: 17)),
        ]
        for (name, bytes) in cases {
            let answer = responder.answer(bytes, now: pki.now) { _, _ in .good }
            #expect(answer.der == [0x30, 0x03, 0x0a, 0x01, 0x01], "\(name)")
            guard case .malformed = answer.outcome else {
                Issue.record("\(name): \(answer.outcome)")
                continue
            }
        }
    }

    @Test func anotherCAsCertificateIsUnauthorized() throws {
        let stranger = try RevocationFixtures()
        let answer = try pki.responder(delegated: false).answer(
            try pki.request(serial: goodSerial, issuer: stranger.issuing), now: pki.now
        ) { _, _ in .good }
        #expect(answer.der == [0x30, 0x03, 0x0a, 0x01, 0x06])
        #expect(answer.outcome == .unauthorized)
    }

    @Test func theNonceIsEchoedWithinRFC8954sLengths() throws {
        let responder = try pki.responder(delegated: true)
        for length in [1, 16, 32, 33] {
            let nonce = [UInt8](repeating: 0xAB, count: length)
            let answer = responder.answer(try pki.request(serial: goodSerial, nonce: nonce), now: pki.now) { _, _ in .good }
            let echoed = answer.der.windows(ofCount: nonce.count + 2).contains([0x04, UInt8(length)] + nonce)
            #expect(echoed == (length <= 32), "nonce of \(length)")
            #expect(answer.reusableUntil == (length <= 32 ? nil : pki.now + 1800))
        }
        let plain = responder.answer(try pki.request(serial: goodSerial), now: pki.now) { _, _ in .good }
        #expect(plain.reusableUntil == pki.now + 1800)
    }

    @Test func statusesAreAnsweredAsTheLookupSays() throws {
        let responder = try pki.responder(delegated: false)
        for (serial, expected) in [
            (goodSerial, OCSPResponse.CertificateStatus.good),
            (revokedSerial, .revoked(at: pki.now - 60, reason: .keyCompromise)),
            ([0x05], .unknown),
        ] {
            let answer = responder.answer(try pki.request(serial: serial), now: pki.now) { _, serial in statuses[serial] }
            guard case .answered(let issuer, let serials, let answered, let nonce) = answer.outcome else {
                Issue.record("not answered: \(answer.outcome)")
                continue
            }
            #expect(issuer == "test" && serials == [serial] && !nonce)
            #expect(answered == [expected])
        }
    }

    /// One request with `count` CertIDs.
    func manyCertIDs(count: Int) throws -> [UInt8] {
        let one = try DER.parse(try pki.request(serial: goodSerial))
        // OCSPRequest { TBSRequest { requestList { Request } } }: take the Request's bytes.
        let request: [UInt8] = try DER.sequence(one, identifier: .sequence) { nodes in
            try DER.sequence(nodes.next()!, identifier: .sequence) { nodes in
                try DER.sequence(nodes.next()!, identifier: .sequence) { nodes in Array(nodes.next()!.encodedBytes) }
            }
        }
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for _ in 0..<count { coder.serializeRawBytes(request) }
                }
            }
        }
        return coder.serializedBytes
    }
}

extension Array where Element == UInt8 {
    func windows(ofCount count: Int) -> [[UInt8]] {
        guard count <= self.count else { return [] }
        return (0...(self.count - count)).map { Array(self[$0..<$0 + count]) }
    }
}
