public import Foundation
public import RepoStorage
import RepoPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// A repository in an S3 bucket (README, "S3"; FORMAT.md §29): each repository object is one
/// S3 object, `PREFIX/` + its name.
///
/// - `put` is a PutObject, atomic by S3's own guarantee (a reader sees the old object or the
///   new one, never part of one); objects over `multipartThreshold` are uploaded in parts
///   (CreateMultipartUpload, UploadPart, CompleteMultipartUpload), which S3 publishes only at
///   the completion, so they are atomic too.
/// - `create` is a PutObject with `If-None-Match: *` (Amazon S3 User Guide, "Conditional
///   writes"): the server refuses it with 412 if the key exists, so of two racing writers one
///   wins.
/// - `stage` writes into an unlinked temporary file (nothing is left behind if the process
///   dies) while hashing, and `commit` uploads from it: a pack is never held in memory.
/// - `list` is ListObjectsV2, 1000 keys a page; `modified` is the server's LastModified.
/// - With `retention` set (a repository with Object Lock, FORMAT.md §31), the objects it names
///   are uploaded with `x-amz-object-lock-mode`, `x-amz-object-lock-retain-until-date` and
///   `Content-MD5`, and `delete` removes object versions (the bucket is versioned), which the
///   server refuses while they are retained.
public final class S3Backend: RetainingBackend, @unchecked Sendable {
    public let client: S3Client
    /// Where staged objects are written before upload.
    public let stagingDirectory: String
    /// Objects larger than this are uploaded in parts of `partSize` bytes.
    public var multipartThreshold = 64 << 20
    public var partSize = 16 << 20

    public var location: String { client.location.description }

    public init(client: S3Client, stagingDirectory: String = NSTemporaryDirectory()) {
        self.client = client
        self.stagingDirectory = stagingDirectory
    }

    private var loc: S3Location { client.location }

    private let retentionLock = NSLock()
    private var currentRetention: ObjectRetention?

    /// The Object Lock retention applied to uploads (nil: none; objects are written and deleted
    /// plainly).
    public var retention: ObjectRetention? { retentionLock.withLock { currentRetention } }

    public func useRetention(_ retention: ObjectRetention?) { retentionLock.withLock { currentRetention = retention } }

    /// PutObjectRetention (Amazon S3 API Reference) on the current version of `name`: retain
    /// until the storage's now plus the period. A retention can be lengthened in both modes,
    /// never shortened; the request needs `s3:PutObjectRetention`.
    public func extendRetention(_ name: String) throws {
        guard let r = retention, r.appliesTo(name) else { return }
        let until = try now().addingTimeInterval(TimeInterval(r.period)).timeIntervalSince1970.rounded(.up)
        let body = Array("<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(r.mode.headerValue)</Mode><RetainUntilDate>\(ObjectInfo.timestamp(Date(timeIntervalSince1970: until)))</RetainUntilDate></Retention>".utf8)
        do {
            _ = try client.send(.PUT, key: loc.key(name), query: [("retention", "")], headers: [("Content-MD5", MD5Hasher.contentMD5(body))],
                                body: .bytes(body), action: "s3:PutObjectRetention")
        } catch let e as S3Error { throw storageError(e, name: name, writing: true) }
    }

    /// HeadObject on the current version: `x-amz-object-lock-retain-until-date` while ahead of
    /// the storage's clock, `.distantFuture` under `x-amz-object-lock-legal-hold: ON`, else nil.
    public func retainedUntil(_ name: String) throws -> Date? {
        let r: S3Client.Response
        do { r = try client.send(.HEAD, key: loc.key(name), action: "s3:GetObjectRetention") } catch let e as S3Error {
            throw storageError(e, name: name)
        }
        if r.header("x-amz-object-lock-legal-hold")?.uppercased() == "ON" { return .distantFuture }
        guard let text = r.header("x-amz-object-lock-retain-until-date"),
              let until = Self.iso8601(text.hasSuffix("Z") ? text : text + "Z"), until > (try now()) else { return nil }
        return until
    }

    /// The storage class of packs (`data/`): `x-amz-storage-class` on their PutObject and
    /// CreateMultipartUpload (Amazon S3 API Reference, PutObject; User Guide, "Using Amazon S3
    /// storage classes"). Nil: the bucket's default (STANDARD). Index segments, snapshots, keys
    /// and locks are small and read often, and always go to the default class.
    public var packStorageClass: String?

    /// The storage class classes that cannot be read without a restore request first (User
    /// Guide, "Restoring an archived object"): `repo` reads packs directly, so it refuses them.
    public static let archiveStorageClasses: Set<String> = ["GLACIER", "DEEP_ARCHIVE"]

    func storageClassHeaders(for name: String) -> [(String, String)] {
        guard let packStorageClass, name.hasPrefix("data/") else { return [] }
        return [("x-amz-storage-class", packStorageClass)]
    }

    /// The Object Lock headers for an upload of `name` (Amazon S3 API Reference, PutObject:
    /// `x-amz-object-lock-mode`, `x-amz-object-lock-retain-until-date`), or none when `name`
    /// is not retained. The date is the storage's clock (§29.3) plus the period, rounded up to
    /// a whole second.
    func lockHeaders(for name: String) throws -> [(String, String)] {
        guard let r = retention, r.appliesTo(name) else { return [] }
        let until = try now().addingTimeInterval(TimeInterval(r.period)).timeIntervalSince1970.rounded(.up)
        return [("x-amz-object-lock-mode", r.mode.headerValue),
                ("x-amz-object-lock-retain-until-date", ObjectInfo.timestamp(Date(timeIntervalSince1970: until)))]
    }

    // MARK: StorageBackend

    /// Creates the bucket if it is missing (CreateBucket, with a LocationConstraint outside
    /// us-east-1) and checks that nothing is stored under the prefix yet.
    public func prepare() throws {
        do {
            _ = try client.send(.HEAD, key: nil, action: "s3:ListBucket")
        } catch S3Error.response(404, _, _, _, _, _) {
            let region = client.signer.region
            let body: S3Client.Body = region == "us-east-1" ? .none : .bytes(Array(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>".utf8))
            // Object Lock can be asked for only when the bucket is created (Amazon S3 API
            // Reference, CreateBucket, `x-amz-bucket-object-lock-enabled`); it turns on versioning.
            let headers = retention == nil ? [] : [("x-amz-bucket-object-lock-enabled", "true")]
            do {
                _ = try client.send(.PUT, key: nil, headers: headers, body: body, accept: [200], action: "s3:CreateBucket")
            } catch S3Error.response(409, "BucketAlreadyOwnedByYou", _, _, _, _) {
            } catch let e as S3Error { throw storageError(e, name: loc.bucket) }
        } catch let e as S3Error { throw storageError(e, name: loc.bucket) }
        if retention != nil { try checkObjectLockConfiguration() }
        let existing = try page(prefix: loc.prefix.isEmpty ? "" : loc.prefix + "/", token: nil, max: 1)
        if !existing.objects.isEmpty {
            throw StorageError.io(operation: "prepare", name: location, reason: "not empty: objects are already stored under this prefix")
        }
        conditionalWrites = try probeConditionalWrites()
    }

    /// Whether the server refuses a PutObject with `If-None-Match: *` on an existing key, as
    /// `create` needs (nil until `prepare` probed it). Some servers accept the header and
    /// ignore it; `repo init` warns then (README, "S3").
    public private(set) var conditionalWrites: Bool?

    /// Refuses a bucket without Object Lock, or with a default retention rule (GetObjectLockConfiguration,
    /// Amazon S3 API Reference): a default would also lock `locks/`, which must be deletable.
    func checkObjectLockConfiguration() throws {
        let r: S3Client.Response
        do {
            r = try client.send(.GET, key: nil, query: [("object-lock", "")], accept: [200, 404], action: "s3:GetBucketObjectLockConfiguration")
        } catch let e as S3Error { throw storageError(e, name: loc.bucket) }
        let xml = S3XML(r.body)
        guard r.status == 200, xml.value("ObjectLockEnabled") == "Enabled" else {
            throw StorageError.io(operation: "prepare", name: location, reason: "bucket \(loc.bucket) exists without Object Lock; Object Lock needs a bucket created with it (`repo init` creates a missing bucket so) or versioning plus `aws s3api put-object-lock-configuration` on an existing one (README, \"Object Lock\")")
        }
        if !xml.elements("DefaultRetention").isEmpty {
            throw StorageError.io(operation: "prepare", name: location, reason: "bucket \(loc.bucket) has a default Object Lock retention rule, which would also lock repo's lock objects; remove the rule (`aws s3api put-object-lock-configuration --object-lock-configuration ObjectLockEnabled=Enabled`): repo sets retention on each object itself (README, \"Object Lock\")")
        }
    }

    /// Writes a probe object twice, the second time with `If-None-Match: *`, then deletes it.
    func probeConditionalWrites() throws -> Bool {
        let name = "probe-conditional-write-" + Hex.encode(SecureRandom.bytes(8))
        defer { try? delete(name) }
        try put(name, data: [1])
        return try !create(name, data: [2])
    }

    public func put(_ name: String, data: [UInt8]) throws {
        var headers = try lockHeaders(for: name)
        if !headers.isEmpty { headers.append(("Content-MD5", MD5Hasher.contentMD5(data))) }
        do {
            _ = try client.send(.PUT, key: loc.key(name), headers: headers, body: .bytes(data), action: "s3:PutObject")
        } catch let e as S3Error { throw storageError(e, name: name, writing: true) }
    }

    public func create(_ name: String, data: [UInt8]) throws -> Bool {
        var conflicts = 0
        var headers = try lockHeaders(for: name)
        if !headers.isEmpty { headers.append(("Content-MD5", MD5Hasher.contentMD5(data))) }
        headers.append(("If-None-Match", "*"))
        while true {
            do {
                let r = try client.send(.PUT, key: loc.key(name), headers: headers, body: .bytes(data),
                                        accept: [200, 412], action: "s3:PutObject")
                return r.status == 200
            } catch S3Error.response(409, _, _, _, _, _) where conflicts < 10 {
                // ConditionalRequestConflict: another conditional write of the key is in
                // flight. Once it ends, the key exists (412) or the other writer failed.
                conflicts += 1
                Thread.sleep(forTimeInterval: 0.1 * Double(conflicts))
            } catch let e as S3Error { throw storageError(e, name: name, writing: true) }
        }
    }

    public func get(_ name: String, range: Range<Int>?) throws -> [UInt8] {
        var headers: [(String, String)] = []
        if let range {
            if range.isEmpty {
                let size = try stat(name).size
                guard range.lowerBound <= size else { throw StorageError.badRange(name: name, size: size, requested: range) }
                return []
            }
            headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let r: S3Client.Response
        do {
            r = try client.send(.GET, key: loc.key(name), headers: headers, accept: [200, 206], action: "s3:GetObject")
        } catch S3Error.response(416, _, _, _, _, _) {
            throw StorageError.badRange(name: name, size: try stat(name).size, requested: range!)
        } catch let e as S3Error { throw storageError(e, name: name) }
        if let range, r.body.count != range.count {
            // The server sends what exists of a range that runs past the end.
            let total = r.header("Content-Range").flatMap { $0.split(separator: "/").last }.flatMap { Int($0) } ?? range.lowerBound + r.body.count
            throw StorageError.badRange(name: name, size: total, requested: range)
        }
        return r.body
    }

    public func stat(_ name: String) throws -> ObjectInfo {
        do {
            let r = try client.send(.HEAD, key: loc.key(name), action: "s3:GetObject")
            return ObjectInfo(name: name, size: r.header("Content-Length").flatMap { Int($0) } ?? 0,
                              modified: r.header("Last-Modified").flatMap(S3Client.httpDate))
        } catch let e as S3Error { throw storageError(e, name: name) }
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String?
        repeat {
            let p = try page(prefix: loc.key(prefix), token: token, max: 1000)
            out += p.objects
            token = p.next
        } while token != nil
        return out
    }

    /// Removes the object. With `retention` set the bucket is versioned, where a plain
    /// DeleteObject only hides an object behind a delete marker and frees nothing, so every
    /// version of the key (and any delete marker) is deleted by version id, newest first
    /// (ListObjectVersions, DeleteObject `versionId`). The server refuses a version under
    /// retention or legal hold with 403; that is `StorageError.retained`, and the versions not
    /// yet deleted stay (an older version of a content-addressed name holds the same bytes).
    public func delete(_ name: String) throws {
        let key = loc.key(name)
        do {
            guard retention != nil else {
                _ = try client.send(.DELETE, key: key, accept: [200, 204, 404], action: "s3:DeleteObject")
                return
            }
            let versions = try self.versions(ofKey: key)
            if versions.isEmpty {
                // Nothing stored: a plain delete, which still tells an append-only host that it
                // may not delete (FORMAT.md §18, the delete probe). A delete marker it leaves on
                // a versioned bucket is removed again.
                let r = try client.send(.DELETE, key: key, accept: [200, 204, 404], action: "s3:DeleteObject")
                if r.header("x-amz-delete-marker") == "true", let marker = r.header("x-amz-version-id") {
                    _ = try? client.send(.DELETE, key: key, query: [("versionId", marker)], accept: [200, 204, 404], action: "s3:DeleteObjectVersion")
                }
                return
            }
            for version in versions {
                do {
                    _ = try client.send(.DELETE, key: key, query: [("versionId", version)], accept: [200, 204, 404], action: "s3:DeleteObjectVersion")
                } catch S3Error.response(403, _, _, _, _, _) where !version.isEmpty {
                    if let locked = try lockedUntil(key: key, version: version) { throw StorageError.retained(name: name, until: locked) }
                    throw StorageError.retained(name: name, until: nil)
                }
            }
        } catch let e as S3Error { throw storageError(e, name: name, writing: true) }
    }

    /// Why a version delete was refused: the version's retain-until date when it is in the
    /// future (HeadObject `versionId`: `x-amz-object-lock-retain-until-date`), nil under a
    /// legal hold (`x-amz-object-lock-legal-hold: ON`, no date); otherwise the refusal was the
    /// credentials' (IAM) and is rethrown as access denied.
    func lockedUntil(key: String, version: String) throws -> Date? {
        let r = try client.send(.HEAD, key: key, query: [("versionId", version)], action: "s3:GetObjectVersion")
        if r.header("x-amz-object-lock-legal-hold")?.uppercased() == "ON" { return nil }
        if let text = r.header("x-amz-object-lock-retain-until-date"), let until = Self.iso8601(text.hasSuffix("Z") ? text : text + "Z"),
           until > (try now()) {
            return until
        }
        throw S3Error.response(status: 403, code: "AccessDenied", message: "", operation: "s3:DeleteObjectVersion",
                               key: "\(loc.bucket)/\(key)", region: nil)
    }

    /// The version ids (delete markers included) of exactly `key`, newest first
    /// (ListObjectVersions, Amazon S3 API Reference; 1000 a page with `key-marker` and
    /// `version-id-marker`).
    func versions(ofKey key: String) throws -> [String] {
        var out: [String] = []
        var markers: (String, String)?
        repeat {
            var query = [("max-keys", "1000"), ("prefix", key), ("versions", "")]
            if let (k, v) = markers { query += [("key-marker", k), ("version-id-marker", v)] }
            let r = try client.send(.GET, key: nil, query: query, action: "s3:ListBucketVersions")
            let xml = S3XML(r.body)
            let entries = (xml.elements("Version") + xml.elements("DeleteMarker")).sorted { $0.lowerBound < $1.lowerBound }
            for entry in entries where xml.value("Key", in: entry) == key {
                if let id = xml.value("VersionId", in: entry) { out.append(id) }
            }
            markers = nil
            if xml.value("IsTruncated") == "true", let k = xml.value("NextKeyMarker"), let v = xml.value("NextVersionIdMarker") { markers = (k, v) }
        } while markers != nil
        return out
    }

    public func stage() throws -> StagedObject { try S3StagedObject(backend: self) }

    /// The server's clock: this host's plus the offset seen in the last answer's `Date` header
    /// (whole seconds), asking the bucket once if nothing was sent yet.
    public func now() throws -> Date {
        if client.clockSkew == nil {
            do { _ = try client.send(.HEAD, key: nil, action: "s3:ListBucket") } catch let e as S3Error { throw storageError(e, name: loc.bucket) }
        }
        return Date().addingTimeInterval(client.clockSkew ?? 0)
    }

    // MARK: listing

    /// One ListObjectsV2 page of keys under `prefix` (a full key prefix).
    func page(prefix: String, token: String?, max: Int) throws -> (objects: [ObjectInfo], next: String?) {
        var query = [("list-type", "2"), ("max-keys", String(max)), ("prefix", prefix)]
        if let token { query.append(("continuation-token", token)) }
        let r: S3Client.Response
        do {
            r = try client.send(.GET, key: nil, query: query, action: "s3:ListBucket")
        } catch let e as S3Error { throw storageError(e, name: prefix.isEmpty ? loc.bucket : prefix) }
        let xml = S3XML(r.body)
        var objects: [ObjectInfo] = []
        for entry in xml.elements("Contents") {
            guard let key = xml.value("Key", in: entry), let name = loc.name(ofKey: key) else { continue }
            objects.append(ObjectInfo(name: name, size: xml.value("Size", in: entry).flatMap { Int($0) } ?? 0,
                                      modified: xml.value("LastModified", in: entry).flatMap(Self.iso8601)))
        }
        let truncated = xml.value("IsTruncated") == "true"
        return (objects, truncated ? xml.value("NextContinuationToken") : nil)
    }

    /// `2009-10-12T17:50:30.000Z`, fractional seconds optional.
    static func iso8601(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54, b[13] == 0x3a, b[16] == 0x3a, b.last == 0x5a else { return nil }
        func int(_ r: Range<Int>) -> Int? { Int(String(decoding: b[r], as: UTF8.self)) }
        guard let y = int(0..<4), let mo = int(5..<7), let d = int(8..<10), let h = int(11..<13), let mi = int(14..<16),
              let s = int(17..<19),
              let whole = S3Client.utc(year: y, month: mo, day: d, hour: h, minute: mi, second: s) else { return nil }
        var fraction = 0.0
        if b[19] == 0x2e { fraction = Double("0" + String(decoding: b[19..<(b.count - 1)], as: UTF8.self)) ?? 0 }
        return whole.addingTimeInterval(fraction)
    }

    // MARK: uploads from a staged file

    /// Uploads `length` bytes of `fd` as `name`: one PutObject, or a multipart upload above
    /// `multipartThreshold`.
    func upload(fd: Int32, length: Int, sha256: String, as name: String) throws {
        let key = loc.key(name)
        let lock = try lockHeaders(for: name)
        let storage = storageClassHeaders(for: name)
        do {
            if length <= multipartThreshold {
                var headers = lock + storage
                if !lock.isEmpty { headers.append(("Content-MD5", try Self.digests(fd: fd, offset: 0, length: length).md5)) }
                _ = try client.send(.PUT, key: key, headers: headers, body: .file(fd: fd, offset: 0, length: length, sha256: sha256), action: "s3:PutObject")
                return
            }
            // Retention goes on CreateMultipartUpload, Content-MD5 on every UploadPart.
            let created = try client.send(.POST, key: key, query: [("uploads", "")], headers: lock + storage, action: "s3:PutObject")
            guard let uploadID = S3XML(created.body).value("UploadId") else {
                throw StorageError.io(operation: "upload", name: name, reason: "CreateMultipartUpload answered without an UploadId")
            }
            do {
                var etags: [String] = []
                var offset = 0
                while offset < length {
                    let n = min(partSize, length - offset)
                    let hash = try Self.digests(fd: fd, offset: offset, length: n)
                    let r = try client.send(.PUT, key: key, query: [("partNumber", String(etags.count + 1)), ("uploadId", uploadID)],
                                            headers: lock.isEmpty ? [] : [("Content-MD5", hash.md5)],
                                            body: .file(fd: fd, offset: offset, length: n, sha256: hash.sha256), action: "s3:PutObject")
                    etags.append(r.header("ETag") ?? "")
                    offset += n
                }
                let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element.replacingOccurrences(of: "\"", with: "&quot;"))</ETag></Part>" }.joined()
                let done = try client.send(.POST, key: key, query: [("uploadId", uploadID)],
                                           body: .bytes(Array("<CompleteMultipartUpload>\(parts)</CompleteMultipartUpload>".utf8)),
                                           action: "s3:PutObject")
                // CompleteMultipartUpload can answer 200 with an error document in the body.
                if String(decoding: done.body, as: UTF8.self).contains("<Error>") {
                    throw S3Client.error(S3Client.Response(status: 500, headers: done.headers, body: done.body), operation: "s3:PutObject", key: key)
                }
            } catch {
                _ = try? client.send(.DELETE, key: key, query: [("uploadId", uploadID)], accept: [200, 204, 404], action: "s3:AbortMultipartUpload")
                throw error
            }
        } catch let e as S3Error { throw storageError(e, name: name, writing: true) }
    }

    /// The hex SHA-256 (for the signature) and base64 MD5 (`Content-MD5`) of a stretch of `fd`.
    static func digests(fd: Int32, offset: Int, length: Int) throws -> (sha256: String, md5: String) {
        let hasher = SHA256Hasher(), md5 = MD5Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done = 0
        while done < length {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min($0.count, length - done), off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw StorageError.io(operation: "read", name: "staged object", reason: String(cString: strerror(errno))) }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])); md5.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            done += n
        }
        return (Hex.encode(hasher.finalize().bytes), Data(md5.finalize()).base64EncodedString())
    }

    // MARK: errors

    /// An `S3Error` as the `StorageError` callers handle, with what to do about it.
    func storageError(_ error: S3Error, name: String, writing: Bool = false) -> StorageError {
        let keyID = client.signer.credentials.accessKeyID
        switch error {
        case .response(let status, let code, let message, let action, let key, let region):
            switch code {
            case "NoSuchKey", "NotFound" where status == 404:
                return .notFound(name)
            case "NoSuchBucket":
                return .io(operation: action, name: key, reason: "bucket \(loc.bucket) does not exist at \(loc.authority) (404 NoSuchBucket); `repo init` creates it")
            case "AccessDenied", "AllAccessDisabled":
                let reason = "access denied: key \(keyID) may not \(action) on \(key) (\(status) \(code)); check the bucket's or the key's IAM policy (README, \"S3\")"
                return writing ? .readOnly(operation: action, name: key, reason: reason) : .io(operation: action, name: key, reason: reason)
            case "SignatureDoesNotMatch":
                return .io(operation: action, name: key, reason: "the server rejected the signature (403 SignatureDoesNotMatch): AWS_SECRET_ACCESS_KEY is not the secret of key \(keyID)")
            case "InvalidAccessKeyId":
                return .io(operation: action, name: key, reason: "the server does not know access key \(keyID) (403 InvalidAccessKeyId); check AWS_ACCESS_KEY_ID")
            case "ExpiredToken", "TokenRefreshRequired":
                return .io(operation: action, name: key, reason: "the session token has expired (\(code)); refresh AWS_SESSION_TOKEN")
            case "RequestTimeTooSkewed":
                return .io(operation: action, name: key, reason: "this host's clock is too far from the server's (RequestTimeTooSkewed); set the clock (NTP)")
            case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
                if let region, region != client.signer.region {
                    return .io(operation: action, name: key, reason: "bucket \(loc.bucket) is in region \(region), not \(client.signer.region) (\(code)); set AWS_REGION=\(region)")
                }
                return .io(operation: action, name: key, reason: "\(status) \(code)\(message.isEmpty ? "" : ": " + message)")
            case "EntityTooLarge", "QuotaExceeded", "XAmzContentSHA256Mismatch":
                return .io(operation: action, name: key, reason: "\(status) \(code)\(message.isEmpty ? "" : ": " + message)")
            default:
                let tries = error.retryable ? " after \(client.policy.attempts) attempts" : ""
                return .io(operation: action, name: key, reason: "HTTP \(status) \(code)\(message.isEmpty ? "" : ": " + message)\(tries)")
            }
        case .transport(let action, let key, let reason):
            return .io(operation: action, name: key, reason: "\(reason) (gave up after \(client.policy.attempts) attempts)")
        case .location(let m), .credentials(let m):
            return .io(operation: "open", name: location, reason: m)
        }
    }
}

/// A staged object for S3: an unlinked file in the staging directory, hashed as it is written,
/// uploaded by `commit`.
final class S3StagedObject: StagedObject {
    private let backend: S3Backend
    private var fd: Int32
    private let hasher = SHA256Hasher()
    private(set) var size = 0

    init(backend: S3Backend) throws {
        self.backend = backend
        var template = Array((backend.stagingDirectory + "/repo-s3-stage-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw StorageError.io(operation: "create", name: backend.stagingDirectory, reason: "cannot create a staging file: \(String(cString: strerror(errno))) (set TMPDIR to a writable directory)")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
    }

    deinit { discard() }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw errno == ENOSPC || errno == EDQUOT ? StorageError.noSpace(name: "a staged object in \(backend.stagingDirectory)")
                    : StorageError.io(operation: "write", name: backend.stagingDirectory, reason: String(cString: strerror(errno)))
            }
            done += n
        }
        hasher.update(bytes)
        size += bytes.count
    }

    func commit(as name: String) throws {
        precondition(fd >= 0, "commit of a discarded staged object")
        defer { discard() }
        try backend.upload(fd: fd, length: size, sha256: Hex.encode(hasher.finalize().bytes), as: name)
    }

    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
    }
}
