public import Foundation
import RepoPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// AWS credentials: an access key id and secret, and a session token for temporary credentials
/// (AWS STS), sent as `x-amz-security-token`.
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID; self.secretAccessKey = secretAccessKey; self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 for requests signed in the `Authorization` header ("Signature Version 4
/// signing process", AWS General Reference; for S3, "Authenticating Requests: Using the
/// Authorization Header", Amazon S3 API Reference). A pure function of its inputs: it opens no
/// connection and reads no clock.
///
/// The steps, each exposed so a test can compare them with AWS's published vectors:
/// 1. canonical request: method, URI-encoded path (S3 encodes once; `/` kept), sorted
///    URI-encoded query, lower-cased headers with trimmed, space-collapsed values, the signed
///    header list and the payload's hex SHA-256;
/// 2. string to sign: `AWS4-HMAC-SHA256`, the timestamp, the scope
///    `date/region/service/aws4_request`, the hex SHA-256 of the canonical request;
/// 3. signing key: HMAC-SHA256 chained over `"AWS4" + secret`, date, region, service,
///    `aws4_request`; the signature is the hex HMAC of the string to sign under it.
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    /// The payload hash of a request without a body: SHA-256 of zero bytes.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials; self.region = region; self.service = service
    }

    /// A request to sign: `path` is the decoded path (`/bucket/key`), `query` the decoded
    /// parameters (in any order, names may repeat), `headers` what will be sent (Host included).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)],
                    payloadHash: String = SigV4Signer.emptyPayloadHash) {
            self.method = method; self.path = path; self.query = query; self.headers = headers; self.payloadHash = payloadHash
        }
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC (the `x-amz-date` header).
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters (`A–Z a–z 0–9 - . _ ~`)
    /// kept, every other byte of the UTF-8 as `%XX` with upper-case hex; `/` kept when
    /// `keepSlash` (object key paths).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out.append("%")
                out.append(String(b >> 4, radix: 16, uppercase: true))
                out.append(String(b & 15, radix: 16, uppercase: true))
            }
        }
        return out
    }

    /// The query string as sent and as signed: encoded names and values, sorted by name then
    /// value (byte order).
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8))
                                   : Array($0.1.utf8).lexicographicallyPrecedes(Array($1.1.utf8)) }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Lower-cased names, sorted, values trimmed and inner runs of spaces collapsed; a name that
    /// repeats has its values joined with `,` in the order given.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (text: String, signed: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(collapsed.trimmingCharacters(in: .whitespaces))
        }
        let names = merged.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let text = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (text, names.joined(separator: ";"))
    }

    public func canonicalRequest(_ request: Request) -> String {
        let (headers, signed) = Self.canonicalHeaders(request.headers)
        return [request.method, Self.uriEncode(request.path, keepSlash: true), Self.canonicalQuery(request.query),
                headers, signed, request.payloadHash].joined(separator: "\n")
    }

    public func scope(_ timestamp: String) -> String {
        "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(_ request: Request, timestamp: String) -> String {
        let hash = Hex.encode(SHA256Hasher.hash(Array(canonicalRequest(request).utf8)).bytes)
        return "AWS4-HMAC-SHA256\n\(timestamp)\n\(scope(timestamp))\n\(hash)"
    }

    public func signature(_ request: Request, timestamp: String) -> String {
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [String(timestamp.prefix(8)), region, service, "aws4_request"] {
            key = HMACSHA256.mac(key: key, Array(part.utf8))
        }
        return Hex.encode(HMACSHA256.mac(key: key, Array(stringToSign(request, timestamp: timestamp).utf8)))
    }

    /// The `Authorization` header's value for `request`, which must already carry the
    /// `x-amz-date` header with `timestamp` (and `x-amz-content-sha256`, `x-amz-security-token`
    /// where they apply: `sign(_:date:)` adds them).
    public func authorization(_ request: Request, timestamp: String) -> String {
        let signed = Self.canonicalHeaders(request.headers).signed
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(timestamp)), SignedHeaders=\(signed), Signature=\(signature(request, timestamp: timestamp))"
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256` (S3 requires it), the session token if any and
    /// `Authorization` to the request's headers, returning them.
    public func sign(_ request: Request, date: Date) -> [(String, String)] {
        let timestamp = Self.timestamp(date)
        var r = request
        r.headers.append(("x-amz-date", timestamp))
        r.headers.append(("x-amz-content-sha256", request.payloadHash))
        if let token = credentials.sessionToken { r.headers.append(("x-amz-security-token", token)) }
        r.headers.append(("Authorization", authorization(r, timestamp: timestamp)))
        return r.headers
    }
}
