public import Foundation
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import RepoPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// Signed S3 requests over HTTP/1.1 (async-http-client), called synchronously from any thread
/// except an event loop's. Every request is retried on what `S3Error.retryable` names, with
/// exponential backoff and full jitter ("Exponential Backoff And Jitter", AWS Architecture
/// Blog): attempt n waits a random time in [0, min(cap, base · 2ⁿ)).
public final class S3Client: @unchecked Sendable {
    public let location: S3Location
    public let signer: SigV4Signer
    public let policy: RetryPolicy
    let http: HTTPClient
    /// Requests sent, by S3 action, for `-v` (README, "S3").
    public let counters = RequestCounters()
    /// The server's clock as last seen in a `Date` header, minus this host's (seconds).
    private let skewLock = NSLock()
    private var lastSkew: TimeInterval?

    /// Retries and timeouts.
    public struct RetryPolicy: Sendable {
        /// Attempts per request, the first included.
        public var attempts = 8
        public var baseDelay: TimeInterval = 0.1
        public var maxDelay: TimeInterval = 10
        /// Time to open a connection, and to wait for any byte of an answer.
        public var connectTimeout: Int64 = 10
        public var readTimeout: Int64 = 60
        public init() {}
    }

    /// A request's body: nothing, bytes in memory, or a stretch of an open file (read as it is
    /// sent, so a pack is never held in memory). The file descriptor stays the caller's.
    public enum Body {
        case none
        case bytes([UInt8])
        case file(fd: Int32, offset: Int, length: Int, sha256: String)

        var length: Int {
            switch self { case .none: return 0; case .bytes(let b): return b.count; case .file(_, _, let n, _): return n }
        }
    }

    /// The HTTP methods S3 uses.
    public enum Method: String, Sendable { case GET, PUT, POST, DELETE, HEAD }

    public struct Response {
        public var status: Int
        var headers: HTTPHeaders
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// - Parameter caFile: PEM certificates to trust instead of the system's (a private CA).
    public init(location: S3Location, credentials: S3Credentials, region: String, caFile: String? = nil,
                policy: RetryPolicy = RetryPolicy()) {
        self.location = location
        self.signer = SigV4Signer(credentials: credentials, region: region)
        self.policy = policy
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(policy.connectTimeout), read: .seconds(policy.readTimeout)))
        configuration.decompression = .disabled
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? http.syncShutdown() }

    /// The server's clock minus this host's, from the last response's `Date` header (nil before
    /// any answer). Lock staleness and prune's safety margin use server time (FORMAT.md §14).
    public var clockSkew: TimeInterval? { skewLock.withLock { lastSkew } }

    /// Sends one request, retrying what can be retried, and returns the answer if its status is
    /// in `accept`; otherwise throws `S3Error.response` (the last answer) or `.transport`.
    ///
    /// - Parameters:
    ///   - action: the IAM action this request needs (`s3:GetObject`, …), for messages and counts.
    ///   - key: the object key, or nil for a request on the bucket.
    public func send(_ method: Method, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
                     body: Body = .none, accept: Set<Int> = [200], action: String) throws -> Response {
        let path = location.path(key: key)
        let name = key.map { "\(location.bucket)/\($0)" } ?? location.bucket
        var attempt = 0
        while true {
            attempt += 1
            counters.count(action)
            RequestCounters.process.count(action)
            do {
                let response = try once(method, path: path, query: query, headers: headers, body: body, action: action, name: name)
                if accept.contains(response.status) { return response }
                let error = Self.error(response, operation: action, key: name)
                if !error.retryable || attempt >= policy.attempts { throw error }
            } catch let error as S3Error where error.retryable && attempt < policy.attempts {
                _ = error
            }
            let ceiling = min(policy.maxDelay, policy.baseDelay * pow(2, Double(attempt - 1)))
            Thread.sleep(forTimeInterval: Double.random(in: 0..<max(ceiling, 0.001)))
        }
    }

    private func once(_ method: Method, path: String, query: [(String, String)], headers: [(String, String)],
                      body: Body, action: String, name: String) throws -> Response {
        let payloadHash: String
        switch body {
        case .none: payloadHash = SigV4Signer.emptyPayloadHash
        case .bytes(let b): payloadHash = Hex.encode(SHA256Hasher.hash(b).bytes)
        case .file(_, _, _, let sha): payloadHash = sha
        }
        var all = [("Host", location.authority)] + headers
        if body.length > 0 || method == .PUT || method == .POST { all.append(("Content-Length", String(body.length))) }
        let request = SigV4Signer.Request(method: method.rawValue, path: path, query: query, headers: all, payloadHash: payloadHash)
        let signed = signer.sign(request, date: Date().addingTimeInterval(clockSkew ?? 0))
        let queryText = SigV4Signer.canonicalQuery(query)
        let url = "\(location.secure ? "https" : "http")://\(location.authority)\(SigV4Signer.uriEncode(path, keepSlash: true))\(queryText.isEmpty ? "" : "?" + queryText)"
        var httpHeaders = HTTPHeaders()
        for (k, v) in signed where k != "Content-Length" { httpHeaders.add(name: k, value: v) }
        let requestBody: HTTPClient.Body?
        switch body {
        case .none: requestBody = method == .PUT || method == .POST ? .bytes([UInt8]()) : nil
        case .bytes(let b): requestBody = .bytes(b)
        case .file(let fd, let offset, let length, _): requestBody = Self.fileBody(fd: fd, offset: offset, length: length)
        }
        let deadline = NIODeadline.now() + .seconds(policy.readTimeout + policy.connectTimeout + Int64(body.length >> 20))
        let response: HTTPClient.Response
        do {
            let r = try HTTPClient.Request(url: url, method: HTTPMethod(rawValue: method.rawValue), headers: httpHeaders, body: requestBody)
            response = try http.execute(request: r, deadline: deadline).wait()
        } catch {
            throw S3Error.transport(operation: action, key: name, reason: Self.describe(error, server: location.authority))
        }
        if let date = response.headers.first(name: "Date"), let server = Self.httpDate(date) {
            skewLock.withLock { lastSkew = server.timeIntervalSinceNow.rounded() }
        }
        var bytes: [UInt8] = []
        if var b = response.body { bytes = b.readBytes(length: b.readableBytes) ?? [] }
        return Response(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    /// Reads the file in 1 MiB pieces as the connection takes them.
    static func fileBody(fd: Int32, offset: Int, length: Int) -> HTTPClient.Body {
        .stream(contentLength: Int64(length)) { writer in
            @Sendable func step(_ done: Int) -> EventLoopFuture<Void> {
                let n = min(1 << 20, length - done)
                var buffer = ByteBufferAllocator().buffer(capacity: n)
                let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { p in
                    var total = 0
                    while total < n {
                        let r = pread(fd, p.baseAddress! + total, n - total, off_t(offset + done + total))
                        if r < 0 && errno == EINTR { continue }
                        if r <= 0 { return total }
                        total += r
                    }
                    return total
                }
                guard got == n else {
                    let reason = String(cString: strerror(errno))
                    return writer.write(.byteBuffer(ByteBuffer())).flatMapThrowing {
                        throw S3Error.transport(operation: "read staged object", key: "fd \(fd)", reason: "short read: \(reason)")
                    }
                }
                let written = writer.write(.byteBuffer(buffer))
                return done + n >= length ? written : written.flatMap { step(done + n) }
            }
            return length == 0 ? writer.write(.byteBuffer(ByteBuffer())) : step(0)
        }
    }

    /// An error response's `S3Error`, from its XML document (or the status alone: HEAD answers
    /// have no body).
    static func error(_ response: Response, operation: String, key: String) -> S3Error {
        let xml = S3XML(response.body)
        var code = xml.value("Code") ?? ""
        if code.isEmpty {
            switch response.status {
            case 404: code = "NotFound"
            case 403: code = "AccessDenied"
            case 412: code = "PreconditionFailed"
            case 503: code = "ServiceUnavailable"
            case 301: code = "PermanentRedirect"
            default: code = "HTTP\(response.status)"
            }
        }
        let region = xml.value("Region") ?? response.header("x-amz-bucket-region")
        return .response(status: response.status, code: code, message: xml.value("Message") ?? "",
                         operation: operation, key: key, region: region)
    }

    static func describe(_ error: Error, server: String) -> String {
        let text = String(describing: error)
        if text.contains("connectTimeout") || text.contains("deadlineExceeded") || text.contains("readTimeout") {
            return "no answer from \(server) in time (\(text))"
        }
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return "connection to \(server) refused: is the server running and the address right?"
        }
        return "connection to \(server) failed: \(text)"
    }

    /// RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    static func httpDate(_ text: String) -> Date? {
        let f = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard f.count == 6, f[5] == "GMT", let day = Int(f[1]), let month = months.firstIndex(of: String(f[2])),
              let year = Int(f[3]) else { return nil }
        let t = f[4].split(separator: ":").compactMap { Int($0) }
        guard t.count == 3 else { return nil }
        return utc(year: year, month: month + 1, day: day, hour: t[0], minute: t[1], second: t[2])
    }

    /// Seconds since 1970 of a UTC calendar time, or nil when a field is out of range.
    static func utc(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Date? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
              (0...60).contains(second) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900); parts.tm_mon = Int32(month - 1); parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour); parts.tm_min = Int32(minute); parts.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}

/// How many requests a process sent, per S3 action.
public final class RequestCounters: @unchecked Sendable {
    /// Every client's requests in this process (`-v` prints them at the end of a command).
    public static let process = RequestCounters()
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func count(_ action: String) { lock.withLock { counts[action, default: 0] += 1 } }
    public var snapshot: [String: Int] { lock.withLock { counts } }
    public var total: Int { lock.withLock { counts.values.reduce(0, +) } }

    /// `12 requests (s3:GetObject 5, s3:ListBucket 3, …)`, busiest first.
    public var summary: String {
        let c = snapshot
        let parts = c.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        return "\(c.values.reduce(0, +)) requests (\(parts.joined(separator: ", ")))"
    }
}
