/// The policy every product starts with, in AWS IoT policy syntax: a thing may connect only with
/// its own name as client id and use only its own topic subtree, its own AWS IoT Jobs and Device Defender topics, and its own `$hallmark/things/…` (signed
/// reports and security events).
public enum DefaultPolicy {
    /// The policy's name.
    public static let name = "default-thing-policy"

    /// The policy document.
    public static let document = """
        {
          "Version": "2012-10-17",
          "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": "arn:hallmark:iot:::client/${iot:Connection.Thing.ThingName}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": ["arn:hallmark:iot:::topic/things/${iot:Connection.Thing.ThingName}/*",
                          "arn:hallmark:iot:::topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*",
                          "arn:hallmark:iot:::topic/$aws/things/${iot:Connection.Thing.ThingName}/defender/*",
                          "arn:hallmark:iot:::topic/$hallmark/things/${iot:Connection.Thing.ThingName}/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": ["arn:hallmark:iot:::topicfilter/things/${iot:Connection.Thing.ThingName}/*",
                          "arn:hallmark:iot:::topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*",
                          "arn:hallmark:iot:::topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/defender/*",
                          "arn:hallmark:iot:::topicfilter/$hallmark/things/${iot:Connection.Thing.ThingName}/*"]}
          ]
        }
        """

    /// The document before it named Device Defender's topics: a registry whose default policy is
    /// still exactly this gets the new one as its next version (migration v14).
    static let documentBeforeDefender = """
        {
          "Version": "2012-10-17",
          "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": "arn:hallmark:iot:::client/${iot:Connection.Thing.ThingName}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": ["arn:hallmark:iot:::topic/things/${iot:Connection.Thing.ThingName}/*",
                          "arn:hallmark:iot:::topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": ["arn:hallmark:iot:::topicfilter/things/${iot:Connection.Thing.ThingName}/*",
                          "arn:hallmark:iot:::topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"]}
          ]
        }
        """

    /// The document before it named the jobs topics: a registry whose default policy is still
    /// exactly this gets the new one as its next version (migration v12).
    static let documentBeforeJobs = """
        {
          "Version": "2012-10-17",
          "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": "arn:hallmark:iot:::client/${iot:Connection.Thing.ThingName}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": "arn:hallmark:iot:::topic/things/${iot:Connection.Thing.ThingName}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": "arn:hallmark:iot:::topicfilter/things/${iot:Connection.Thing.ThingName}/*"}
          ]
        }
        """
}
