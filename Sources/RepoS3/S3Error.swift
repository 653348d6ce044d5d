/// What can go wrong talking to an S3 server, sorted by what the caller can do about it.
public enum S3Error: Error, CustomStringConvertible, Sendable {
    /// The `s3:` location is malformed.
    case location(String)
    /// Credentials are missing or unusable before any request is sent.
    case credentials(String)
    /// The server answered with an error status. `code` and `message` come from the error
    /// document (Amazon S3 API Reference, "Error responses"), `region` from its `<Region>` or the
    /// `x-amz-bucket-region` header when the server named the bucket's real region.
    case response(status: Int, code: String, message: String, operation: String, key: String, region: String?)
    /// No answer: the connection was refused or dropped, or the request timed out.
    case transport(operation: String, key: String, reason: String)

    /// Worth sending again after a pause: a dropped connection, a timeout, throttling (429,
    /// 503 SlowDown) and server errors (500, 502, 503, 504; "Error responses" says to retry
    /// them); and RequestTimeTooSkewed, since the next attempt is signed with the server's time
    /// taken from that answer's `Date` header.
    public var retryable: Bool {
        switch self {
        case .transport: return true
        case .response(let status, let code, _, _, _, _):
            return [500, 502, 503, 504, 429].contains(status) || ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed"].contains(code)
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .location(let m), .credentials(let m): return m
        case .transport(let op, let key, let reason): return "\(op) \(key): \(reason)"
        case .response(let status, let code, let message, let op, let key, _):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "\(op) \(key): HTTP \(status) \(code)\(detail)"
        }
    }
}
