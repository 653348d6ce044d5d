import XCTest
import Foundation
@testable import RepoS3
import RepoPrimitives

/// The signer against AWS's published vectors: the Signature Version 4 test suite (region
/// us-east-1, service "service", 2015-08-30T12:36:00Z) and the worked examples of the Amazon S3
/// API Reference ("Examples: Signature Calculations in AWS Signature Version 4", 2013-05-24).
/// Where a vector publishes the intermediate strings, they are compared too: a wrong signature
/// says only that something differs, the canonical request says which line.
final class SigV4Tests: XCTestCase {
    let suite = SigV4Signer(credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                            region: "us-east-1", service: "service")
    let suiteTime = "20150830T123600Z"
    let s3 = SigV4Signer(credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                         region: "us-east-1", service: "s3")
    let s3Date = Date(timeIntervalSince1970: 1_369_353_600)   // 2013-05-24T00:00:00Z

    func suiteRequest(_ method: String = "GET", _ path: String = "/", query: [(String, String)] = [],
                      extra: [(String, String)] = [], payload: String = "") -> SigV4Signer.Request {
        SigV4Signer.Request(method: method, path: path, query: query,
                            headers: extra + [("Host", "example.amazonaws.com"), ("X-Amz-Date", suiteTime)],
                            payloadHash: Hex.encode(SHA256Hasher.hash(Array(payload.utf8)).bytes))
    }

    func signature(_ authorization: String) -> String { String(authorization.split(separator: "=").last!) }

    func testGetVanilla() {
        let r = suiteRequest()
        XCTAssertEqual(suite.canonicalRequest(r), "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(suite.authorization(r, timestamp: suiteTime),
                       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    func testQuerySortedByName() {
        let r = suiteRequest(query: [("Param2", "value2"), ("Param1", "value1")])
        XCTAssertEqual(suite.canonicalRequest(r).split(separator: "\n", omittingEmptySubsequences: false)[2], "Param1=value1&Param2=value2")
        XCTAssertTrue(suite.stringToSign(r, timestamp: suiteTime).hasSuffix("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"))
        XCTAssertEqual(signature(suite.authorization(r, timestamp: suiteTime)), "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    func testQuerySortedByValueForOneName() {
        let r = suiteRequest(query: [("Param1", "value2"), ("Param1", "value1")])
        XCTAssertEqual(signature(suite.authorization(r, timestamp: suiteTime)), "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694")
    }

    func testUnreservedCharactersAreNotEncoded() {
        let r = suiteRequest("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        XCTAssertEqual(signature(suite.authorization(r, timestamp: suiteTime)), "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f")
    }

    func testPostWithContentType() {
        let r = suiteRequest("POST", extra: [("Content-Type", "application/x-www-form-urlencoded")], payload: "Param1=value1")
        XCTAssertEqual(suite.canonicalRequest(r), "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
        XCTAssertTrue(suite.stringToSign(r, timestamp: suiteTime).hasSuffix("42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"))
        XCTAssertEqual(signature(suite.authorization(r, timestamp: suiteTime)), "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    }

    func testHeaderValuesTrimmedAndCollapsed() {
        let (text, signed) = SigV4Signer.canonicalHeaders([("My-Header1", "  value1   with  spaces "), ("Host", "h"), ("my-header1", "b")])
        XCTAssertEqual(text, "host:h\nmy-header1:value1 with spaces,b\n")
        XCTAssertEqual(signed, "host;my-header1")
    }

    /// S3 API Reference, "GET Object": the first ten bytes of examplebucket/test.txt.
    func testS3GetObjectWithRange() {
        let r = SigV4Signer.Request(method: "GET", path: "/test.txt",
                                    headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")])
        let headers = s3.sign(r, date: s3Date)
        let request = SigV4Signer.Request(method: "GET", path: "/test.txt", headers: headers.filter { $0.0 != "Authorization" })
        XCTAssertTrue(s3.stringToSign(request, timestamp: "20130524T000000Z").hasSuffix("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"))
        XCTAssertEqual(headers.first { $0.0 == "Authorization" }?.1,
                       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    /// S3 API Reference, "PUT Object": a key with `$` (encoded once, as `%24`) and a body.
    func testS3PutObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let r = SigV4Signer.Request(method: "PUT", path: "/test$file.text",
                                    headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                              ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                                    payloadHash: Hex.encode(SHA256Hasher.hash(body).bytes))
        XCTAssertEqual(r.payloadHash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        XCTAssertEqual(signature(s3.sign(r, date: s3Date).first { $0.0 == "Authorization" }!.1),
                       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    /// S3 API Reference, "GET Bucket (List Objects)": a query with two parameters.
    func testS3ListObjects() {
        let r = SigV4Signer.Request(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
                                    headers: [("Host", "examplebucket.s3.amazonaws.com")])
        XCTAssertEqual(signature(s3.sign(r, date: s3Date).first { $0.0 == "Authorization" }!.1),
                       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    func testSessionTokenIsSigned() {
        var signer = s3
        signer.credentials.sessionToken = "token/with+chars"
        let headers = signer.sign(SigV4Signer.Request(method: "GET", path: "/k", headers: [("Host", "h")]), date: s3Date)
        XCTAssertEqual(headers.first { $0.0 == "x-amz-security-token" }?.1, "token/with+chars")
        XCTAssertTrue(headers.first { $0.0 == "Authorization" }!.1.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
    }

    func testEncoding() {
        XCTAssertEqual(SigV4Signer.uriEncode("a b/c+d=é", keepSlash: true), "a%20b/c%2Bd%3D%C3%A9")
        XCTAssertEqual(SigV4Signer.uriEncode("a/b", keepSlash: false), "a%2Fb")
        XCTAssertEqual(SigV4Signer.canonicalQuery([("uploads", "")]), "uploads=")
    }

    func testLocationParsing() throws {
        let l = try XCTUnwrap(try S3Location.parse("s3:http://127.0.0.1:7480/backups/db1/main"))
        XCTAssertEqual(l.host, "127.0.0.1"); XCTAssertEqual(l.port, 7480); XCTAssertEqual(l.bucket, "backups")
        XCTAssertEqual(l.prefix, "db1/main"); XCTAssertFalse(l.secure)
        XCTAssertEqual(l.key("config"), "db1/main/config"); XCTAssertEqual(l.path(key: "db1/main/config"), "/backups/db1/main/config")
        XCTAssertEqual(l.name(ofKey: "db1/main/data/ab/cd"), "data/ab/cd"); XCTAssertNil(l.name(ofKey: "db1/mainx/config"))
        XCTAssertEqual(l.description, "s3:http://127.0.0.1:7480/backups/db1/main")
        let root = try XCTUnwrap(try S3Location.parse("s3:https://s3.eu-west-1.amazonaws.com/my-bucket"))
        XCTAssertTrue(root.secure); XCTAssertEqual(root.prefix, ""); XCTAssertEqual(root.key("config"), "config")
        XCTAssertNil(try S3Location.parse("/var/backups/repo"))
        XCTAssertThrowsError(try S3Location.parse("s3:ftp://host/bucket"))
        XCTAssertThrowsError(try S3Location.parse("s3:http://host/"))
        XCTAssertThrowsError(try S3Location.parse("s3:http://host/Bad_Bucket"))
    }

    func testListDocumentParsing() {
        let xml = """
        <?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>\
        <Contents><Key>p/data/a&amp;b</Key><LastModified>2026-11-30T10:00:01.500Z</LastModified><Size>12</Size></Contents>\
        <Contents><Key>p/index/x</Key><LastModified>2026-11-30T10:00:02Z</LastModified><Size>0</Size></Contents>\
        <NextContinuationToken>tok==</NextContinuationToken></ListBucketResult>
        """
        let doc = S3XML(Array(xml.utf8))
        let entries = doc.elements("Contents")
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(doc.value("Key", in: entries[0]), "p/data/a&b")
        XCTAssertEqual(doc.value("Size", in: entries[1]), "0")
        XCTAssertNil(doc.value("KeyCount"))
        XCTAssertEqual(S3Backend.iso8601("2026-11-30T10:00:01.500Z")?.timeIntervalSince1970, 1_796_032_801.5)
        XCTAssertEqual(doc.value("NextContinuationToken"), "tok==")
        XCTAssertEqual(doc.value("IsTruncated"), "true")
        XCTAssertEqual(S3XML(Array("<Error><Code>SlowDown</Code><Message>a &lt;b&gt; &#233;&#x41;</Message></Error>".utf8)).value("Message"), "a <b> éA")
        XCTAssertEqual(S3Client.httpDate("Mon, 30 Nov 2026 10:00:01 GMT")?.timeIntervalSince1970, 1_796_032_801)
    }
}
