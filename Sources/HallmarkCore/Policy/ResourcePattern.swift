/// Matching of a policy resource (an ARN or a bare `type/name`) against a concrete resource.
enum ResourcePattern {
    enum Outcome { case match, noMatch, unresolved }

    private enum Token: Equatable {
        case literal(Character)
        case anyRun  // *
        case anyOne  // ?
    }

    static func matches(_ pattern: String, type: String, resource: String, context: Policy.Context) -> Outcome {
        if pattern == "*" { return .match }
        // arn:partition:service:region:account:RESOURCE — the resource part may itself hold colons.
        var body = Substring(pattern)
        if pattern.hasPrefix("arn:") {
            let parts = pattern.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
            guard parts.count == 6 else { return .noMatch }
            body = parts[5]
        }
        guard let tokens = tokenize(body, context: context) else { return .unresolved }
        let target = Array(type + "/" + resource)
        return wildcardMatch(tokens[...], target[...]) ? .match : .noMatch
    }

    /// Splits a pattern into literal characters and wildcards, substituting `${…}` variables as
    /// literals (a `*` in a thing name is not a wildcard). Nil when a variable has no value.
    private static func tokenize(_ pattern: Substring, context: Policy.Context) -> [Token]? {
        var tokens: [Token] = []
        var rest = pattern
        while let c = rest.first {
            if c == "$", rest.dropFirst().first == "{", let close = rest.firstIndex(of: "}") {
                let name = rest[rest.index(rest.startIndex, offsetBy: 2)..<close]
                guard let value = context.value(of: name) else { return nil }
                tokens.append(contentsOf: value.map(Token.literal))
                rest = rest[rest.index(after: close)...]
                continue
            }
            tokens.append(c == "*" ? .anyRun : c == "?" ? .anyOne : .literal(c))
            rest = rest.dropFirst()
        }
        return tokens
    }

    /// Glob matching with backtracking over the last `*`.
    private static func wildcardMatch(_ pattern: ArraySlice<Token>, _ text: ArraySlice<Character>) -> Bool {
        var p = pattern.startIndex, t = text.startIndex
        var star: Int?
        var starText = text.startIndex
        while t < text.endIndex {
            if p < pattern.endIndex {
                switch pattern[p] {
                case .anyRun:
                    star = p
                    starText = t
                    p += 1
                    continue
                case .anyOne:
                    p += 1
                    t += 1
                    continue
                case .literal(let c) where c == text[t]:
                    p += 1
                    t += 1
                    continue
                default:
                    break
                }
            }
            guard let s = star else { return false }
            p = s + 1
            starText += 1
            t = starText
        }
        while p < pattern.endIndex, pattern[p] == .anyRun { p += 1 }
        return p == pattern.endIndex
    }
}
