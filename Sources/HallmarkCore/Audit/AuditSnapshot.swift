import Foundation

/// What an audit looks at, read from the registry in one transaction: certificates, CAs,
/// policies, and what the broker's events tell of shared certificates and client ids.
public struct AuditSnapshot: Sendable {
    public struct CertificateInfo: Sendable {
        public var tenant: String
        public var serial: String
        public var thing: String
        /// `hallmark`, or the registered CA's id.
        public var caID: String
        public var notAfter: Date
        public var issuedAt: Date
        public var key: KeyQuality.Key?

        public init(tenant: String, serial: String, thing: String, caID: String, notAfter: Date, issuedAt: Date, key: KeyQuality.Key?) {
            self.tenant = tenant
            self.serial = serial
            self.thing = thing
            self.caID = caID
            self.notAfter = notAfter
            self.issuedAt = issuedAt
            self.key = key
        }
    }

    public struct CAInfo: Sendable {
        public var tenant: String
        public var id: String
        public var subject: String
        public var notAfter: Date
        public var active: Bool
        public var key: KeyQuality.Key?

        public init(tenant: String, id: String, subject: String, notAfter: Date, active: Bool, key: KeyQuality.Key?) {
            self.tenant = tenant
            self.id = id
            self.subject = subject
            self.notAfter = notAfter
            self.active = active
            self.key = key
        }
    }

    public struct PolicyInfo: Sendable {
        public var tenant: String
        public var name: String
        public var document: String
        /// How many things it is attached to (a policy no thing holds is still audited).
        public var attachedThings: Int

        public init(tenant: String, name: String, document: String, attachedThings: Int) {
            self.tenant = tenant
            self.name = name
            self.document = document
            self.attachedThings = attachedThings
        }
    }

    /// Active certificates only (what the expiry, age and key checks concern).
    public var certificates: [CertificateInfo] = []
    public var cas: [CAInfo] = []
    /// The latest version of each policy.
    public var policies: [PolicyInfo] = []
    /// Certificates the clone watch saw in use by two connections at once (tenant, serial, thing).
    public var sharedCertificates: [(tenant: String, serial: String, thing: String)] = []
    /// Client ids connected to by more than one certificate (tenant, client id, how many).
    public var conflictingClientIDs: [(tenant: String, clientID: String, certificates: Int)] = []
    /// The newest event and the newest signed checkpoint of the event log.
    public var newestEvent: Date?
    public var newestCheckpoint: Date?
    public var tenants: [String] = []

    public init() {}
}
