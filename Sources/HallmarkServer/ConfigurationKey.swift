import HallmarkCore

/// One setting of `hallmark serve`: its key in the JSON configuration file, its environment
/// variable and its flag, all derived from one camel-case name, with its default and meaning.
/// The file, the environment and the flags are read through ``ServerConfiguration/keys`` alone.
public struct ConfigurationKey: Sendable {
    /// The key in the JSON file, e.g. `mqttKeepAliveMax`.
    public let name: String
    /// What it means, for `serve --help` and the docs.
    public let help: String
    /// Its value before anything overrides it, as text.
    public let defaultValue: String
    /// The environment variable, e.g. `HALLMARK_MQTT_KEEP_ALIVE_MAX`.
    public let environment: String
    /// The flag without its dashes, e.g. `mqtt-keep-alive-max`.
    public let flag: String
    let apply: @Sendable (inout ServerConfiguration, String) throws -> Void

    /// A key whose environment variable and flag follow from its name (`mqttKeepAliveMax`:
    /// `HALLMARK_MQTT_KEEP_ALIVE_MAX`, `--mqtt-keep-alive-max`), unless given.
    init(
        _ name: String, _ help: String, default defaultValue: String, environment: String? = nil, flag: String? = nil,
        apply: @escaping @Sendable (inout ServerConfiguration, String) throws -> Void
    ) {
        var words: [String] = []
        for character in name {
            if character.isUppercase || words.isEmpty { words.append("") }
            words[words.count - 1].append(Character(character.lowercased()))
        }
        self.name = name
        self.help = help
        self.defaultValue = defaultValue
        self.environment = environment ?? "HALLMARK_" + words.map { $0.uppercased() }.joined(separator: "_")
        self.flag = flag ?? words.joined(separator: "-")
        self.apply = apply
    }
}
