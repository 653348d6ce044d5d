public import Foundation

/// Where a repository lives in object storage: `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]`
/// (README, "S3"). Objects are named `PREFIX/` + the repository's object name.
///
/// Addressing: path-style (`http://host/bucket/key`) by default, which every S3-compatible
/// server accepts; virtual-hosted (`http://bucket.host/key`, what AWS recommends) when
/// `virtualHosted` is set.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int?
    public var bucket: String
    /// Without leading or trailing `/`; empty for the bucket's root.
    public var prefix: String
    public var virtualHosted = false

    /// Parses `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]`; nil for a location that is not an
    /// S3 one. Throws a description for an S3 location that is malformed.
    public static func parse(_ text: String) throws -> S3Location? {
        guard text.hasPrefix("s3:") else { return nil }
        let rest = String(text.dropFirst(3))
        guard let url = URLComponents(string: rest), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            throw S3Error.location("\(text): expected s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]")
        }
        let parts = url.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let bucket = parts.first else { throw S3Error.location("\(text): no bucket after the host") }
        guard Self.validBucket(bucket) else {
            throw S3Error.location("\(text): \"\(bucket)\" is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')")
        }
        guard url.query == nil, url.fragment == nil, url.user == nil else {
            throw S3Error.location("\(text): a query, fragment or user name has no meaning here; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        return S3Location(secure: scheme == "https", host: host, port: url.port, bucket: bucket,
                          prefix: parts.dropFirst().joined(separator: "/"))
    }

    /// Bucket naming rules (Amazon S3 User Guide, "Bucket naming rules"), the part every
    /// S3-compatible server shares.
    static func validBucket(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard (3...63).contains(b.count) else { return false }
        let ok = b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x2d }
        return ok && b.first != 0x2e && b.first != 0x2d && b.last != 0x2e && b.last != 0x2d
    }

    /// The Host header and the address part of URLs.
    public var authority: String {
        let h = virtualHosted ? "\(bucket).\(host)" : host
        return port.map { "\(h):\($0)" } ?? h
    }

    /// The object key of a repository object name.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    /// The repository object name of a key listed under `prefix` (nil if it is outside).
    public func name(ofKey key: String) -> String? {
        if prefix.isEmpty { return key }
        guard key.hasPrefix(prefix + "/") else { return nil }
        return String(key.dropFirst(prefix.count + 1))
    }

    /// The decoded request path for `key` (nil: the bucket itself).
    public func path(key: String?) -> String {
        let base = virtualHosted ? "" : "/" + bucket
        guard let key else { return virtualHosted ? "/" : base + "/" }
        return base + "/" + key
    }

    public var description: String {
        "s3:\(secure ? "https" : "http")://\(port.map { "\(host):\($0)" } ?? host)/\(bucket)\(prefix.isEmpty ? "" : "/" + prefix)"
    }
}
