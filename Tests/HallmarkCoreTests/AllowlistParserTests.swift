import Foundation
import HallmarkCore
import Testing
import _CryptoExtras
import X509

@Suite struct AllowlistParserTests {
    func key() throws -> DeviceKey { try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey) }

    @Test func csrWithPEMBase64AndHexKeys() throws {
        let (a, b, c) = (try key(), try key(), try key())
        let csv = """
            udid,public_key
            DEV-A,"\(a.pem)"
            DEV-B,\(Data(b.spkiDER).base64EncodedString())
            DEV-C,\(c.spkiDER.map { String(format: "%02x", $0) }.joined())

            """
        let result = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        #expect(result.problems.isEmpty)
        #expect(result.entries.map(\.udid.rawValue) == ["DEV-A", "DEV-B", "DEV-C"])
        #expect(result.entries[0].key == a)
        #expect(result.entries[1].line > 2)  // the PEM row spans several lines
    }

    @Test func anOptionalFirmwareKeyColumn() throws {
        let (rot, firmware, other) = (try key(), try key(), try key())
        let b64 = { (k: DeviceKey) in Data(k.spkiDER).base64EncodedString() }
        let csv = """
            udid,firmware_key,public_key
            DEV-A,\(b64(firmware)),\(b64(rot))
            DEV-B,,\(b64(other))
            DEV-C,\(b64(rot)),\(b64(rot))

            """
        let result = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        // The header names the columns; DEV-C's firmware key is its root of trust, which is refused.
        #expect(result.entries.map(\.udid.rawValue) == ["DEV-A", "DEV-B"])
        #expect(result.entries[0].key == rot && result.entries[0].firmwareKey == firmware)
        #expect(result.entries[1].key == other && result.entries[1].firmwareKey == nil)
        #expect(result.problems.map(\.udid) == ["DEV-C"])
        let json = """
            [{"udid": "DEV-A", "public_key": "\(b64(rot))", "firmware_key": "\(b64(firmware))"},
             {"udid": "DEV-B", "public_key": "\(b64(other))"},
             {"udid": "DEV-C", "public_key": "\(b64(firmware))", "firmware_key": "\(b64(firmware))"}]
            """
        let fromJSON = AllowlistParser().parse(Array(json.utf8), format: .json)
        #expect(fromJSON.entries.map(\.udid.rawValue) == ["DEV-A", "DEV-B"])
        #expect(fromJSON.entries[0].firmwareKey == firmware)
        #expect(fromJSON.entries[1].firmwareKey == nil)
        let plain = """
            udid,public_key,firmware_key
            DEV-A,\(b64(rot)),\(b64(firmware))
            DEV-B,\(b64(other))
            DEV-D,\(b64(try key())),\(b64(other))
            DEV-E,\(b64(try key())),not-a-key
            """
        let rows = AllowlistParser().parse(Array(plain.utf8), format: .csv)
        #expect(rows.entries.map(\.udid.rawValue) == ["DEV-A", "DEV-B", "DEV-D"])
        #expect(rows.entries[0].firmwareKey == firmware && rows.entries[1].firmwareKey == nil)
        #expect(rows.problems.map(\.udid) == ["DEV-E"])
    }

    @Test func aFirmwareKeyMustBeItsOwnKey() throws {
        let rot = try key()
        let csv = "udid,public_key,firmware_key\nDEV-A,\(Data(rot.spkiDER).base64EncodedString()),\(Data(rot.spkiDER).base64EncodedString())\n"
        let result = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        #expect(result.entries.isEmpty)
        #expect(result.problems.first?.error.code == .allowlistInvalid)
    }

    @Test func badRowsAreReportedByLine() throws {
        let good = try key()
        let csv = """
            udid,public_key
            DEV-1,\(Data(good.spkiDER).base64EncodedString())
            bad udid,\(Data(try key().spkiDER).base64EncodedString())
            DEV-3,not-a-key
            DEV-4
            DEV-1,\(Data(good.spkiDER).base64EncodedString())
            DEV-1,\(Data(try key().spkiDER).base64EncodedString())
            DEV-7,\(Data(good.spkiDER).base64EncodedString())
            """
        let result = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        #expect(result.entries.count == 1)
        let byLine = Dictionary(uniqueKeysWithValues: result.problems.map { ($0.line, $0) })
        #expect(byLine[3]?.error.code == .udidInvalid)
        #expect(byLine[4]?.error.code == .allowlistInvalid)
        #expect(byLine[5]?.error.code == .allowlistInvalid)
        #expect(byLine[6]?.severity == .duplicate)
        #expect(byLine[7]?.error.code == .allowlistConflict)
        #expect(byLine[8]?.error.code == .allowlistConflict)
        #expect(result.invalidCount == 5)
    }

    /// An import reads its file a megabyte at a time; where the chunks end must change nothing.
    @Test(arguments: [1, 2, 3, 7, 64, 1_000])
    func chunkBoundariesChangeNothing(chunkSize: Int) throws {
        let (a, b, c) = (try key(), try key(), try key())
        let csv = "\u{FEFF}udid,public_key\r\n# a comment, with a comma\r\n"
            + "DEV-A,\"\(a.pem)\"\r\n"
            + "\"DEV-B\",\(Data(b.spkiDER).base64EncodedString())\r\n"
            + "\"DEV-\"\"Q\",x\r\n"
            + "DEV-A,\"\(a.pem)\"\r\n"
            + "DEV-C,\(Data(c.spkiDER).base64EncodedString())"
        let bytes = Array(csv.utf8)
        var offset = 0
        var rows = AllowlistParser().rows(csvChunks: { () throws(HallmarkError) -> [UInt8]? in
            guard offset < bytes.count else { return nil }
            defer { offset += chunkSize }
            return Array(bytes[offset..<min(offset + chunkSize, bytes.count)])
        })
        var read: [String] = []
        while let row = try rows.next() {
            switch row {
            case .entry(let entry): read.append("\(entry.line) \(entry.udid.rawValue)")
            case .problem(let problem): read.append("\(problem.line) \(problem.severity.rawValue) \(problem.error.code.rawValue)")
            }
        }
        let n = a.pem.filter { $0 == "\n" }.count  // line breaks inside the quoted PEM
        #expect(
            read == [
                "3 DEV-A", "\(4 + n) DEV-B", "\(5 + n) invalid udid_invalid", "\(6 + n) duplicate allowlist_conflict",
                "\(7 + 2 * n) DEV-C",
            ])
        #expect(rows.rowsRead == 5)
    }

    @Test func aFileThatCannotBeReadToItsEndIsAnError() throws {
        let good = try key()
        var served = false
        var rows = AllowlistParser().rows(csvChunks: { () throws(HallmarkError) -> [UInt8]? in
            guard !served else { throw HallmarkError(.notFound, "Cannot read allow.csv.", remedy: "Check the disk.") }
            served = true
            return Array("DEV-1,\(Data(good.spkiDER).base64EncodedString())\nDEV-2,".utf8)
        })
        #expect(throws: HallmarkError(.notFound, "", remedy: "")) {
            while try rows.next() != nil {}
        }
    }

    @Test func rsaKeysAreRefused() throws {
        let rsa = try Certificate.PrivateKey(_RSA.Signing.PrivateKey(keySize: .bits2048))
        let text = try rsa.publicKey.serializeAsPEM().pemString
        #expect(throws: HallmarkError(.keyAlgorithmNotAllowed, "", remedy: "")) { try DeviceKey(text: text) }
    }

    @Test func jsonArrayAndDocument() throws {
        let k = try key()
        let array = "[{\"udid\": \"J-1\", \"public_key\": \"\(Data(k.spkiDER).base64EncodedString())\"}, {\"udid\": \"J-2\"}]"
        let result = AllowlistParser().parse(Array(array.utf8), format: .json)
        #expect(result.entries.count == 1)
        #expect(result.problems.first?.line == 2)
        let document = "{\"devices\": [{\"udid\": \"J-1\", \"publicKey\": \"\(Data(k.spkiDER).base64EncodedString())\"}]}"
        #expect(AllowlistParser().parse(Array(document.utf8), format: .json).entries.count == 1)
        #expect(AllowlistParser().parse(Array("{oops".utf8), format: .json).invalidCount == 1)
    }

    @Test func unclosedQuoteIsReported() {
        let csv = "udid,public_key\nDEV-1,\"-----BEGIN PUBLIC KEY-----\n"
        let result = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        #expect(result.problems.first?.line == 2)
        #expect(result.entries.isEmpty)
    }
}
