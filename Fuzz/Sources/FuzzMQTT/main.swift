import FuzzSupport
import MQTTCore
import NIOCore

/// The MQTT frame decoder and packet decoding, as the broker reads a connection (the first byte
/// chooses: a server reading a client from its CONNECT, or a client reading a 3.1.1 or 5.0
/// server). Every packet decoded must encode to the size it claims and decode back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMQTT(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (mode, stream) = modeAndRest(start, count) else { return 0 }
    let version: MQTTVersion? = switch mode % 3 {
    case 0: nil
    case 1: .v311
    default: .v5
    }
    var decoder = MQTTFrameDecoder(version: version, maximumPacketSize: 4096)
    var buffer = ByteBuffer(bytes: stream)
    while true {
        let packet: Packet
        do {
            guard let next = try decoder.decodePacket(from: &buffer) else { break }
            packet = next
        } catch {
            require(!error.message.isEmpty, "a refusal with no message")
            break  // the broker closes the connection
        }
        guard let level = decoder.version else { fatalError("a packet decoded with no protocol level") }
        var encoded = ByteBuffer()
        packet.encode(version: level, into: &encoded)
        require(encoded.readableBytes == packet.encodedSize(version: level),
                "\(packet) encodes to \(encoded.readableBytes) bytes, not the \(packet.encodedSize(version: level)) it claims")
        var again = MQTTFrameDecoder(version: packet.typeCode == 1 ? nil : level)
        do {
            let decoded = try again.decodePacket(from: &encoded)
            require(decoded == packet, "\(packet) re-encoded decodes as \(String(describing: decoded))")
            require(encoded.readableBytes == 0, "\(packet) re-encoded leaves \(encoded.readableBytes) bytes")
        } catch {
            fatalError("\(packet) re-encoded is refused: \(error)")
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzMQTT_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzMQTT_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzMQTT)
}
