/// The policy of a fleet provisioning claim, in AWS IoT policy syntax: connect with any client
/// id, and publish, receive and subscribe only on the certificate-creation topics and the one
/// template's RegisterThing topics. AWS's example claim policy, with `create-from-csr` added.
public enum ClaimPolicy {
    public static func document(template: String) -> String {
        let topics = [
            "$aws/certificates/create-from-csr/*", "$aws/certificates/create/*", "$aws/provisioning-templates/\(template)/provision/*",
        ]
        func list(_ kind: String) -> String { topics.map { "\"arn:hallmark:iot:::\(kind)/\($0)\"" }.joined(separator: ", ") }
        return """
            {
              "Version": "2012-10-17",
              "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:hallmark:iot:::client/*"},
                {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [\(list("topic"))]},
                {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [\(list("topicfilter"))]}
              ]
            }
            """
    }
}
