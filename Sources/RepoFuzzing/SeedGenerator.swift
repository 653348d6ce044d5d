public import RepoPrimitives
public import RepoRepository
import RepoIndex
import RepoStorage
import RepoSnapshot
import Foundation

/// Makes seed inputs for every harness from a real repository: its objects as stored, and
/// their decrypted contents re-sealed under the harnesses' fixed key, so that the fuzzer starts
/// from realistic bytes on both sides of authentication.
public enum SeedGenerator {
    /// Writes seeds into `output/<harness>/`; returns how many each harness got.
    public static func generate(repository path: String, password: [UInt8], output: String) throws -> [String: Int] {
        let cache = NSTemporaryDirectory() + "/repo-fuzz-seeds-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let backend = LocalBackend(path: path)
        let repo = try Repository.open(backend: backend, password: password, cacheDirectory: cache)
        let key = FuzzHarness.key
        var counts: [String: Int] = [:]
        func write(_ h: FuzzHarness, _ bytes: [UInt8]) throws {
            let dir = output + "/" + h.rawValue
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let file = dir + "/" + String(SHA256Hasher.hash(bytes).hex.prefix(40))
            if !FileManager.default.fileExists(atPath: file) { counts[h.rawValue, default: 0] += 1 }
            try Data(bytes).write(to: URL(fileURLWithPath: file))
        }

        try write(.config, try backend.get(RepositoryConfig.objectName))
        for slot in try backend.list(prefix: "keys/") { try write(.keyslot, try backend.get(slot.name)) }
        // Slots the harness's password and key file open, at a cost it is willing to pay.
        let cheap = try KeySlot.make(master: key, credential: .password(FuzzHarness.password), repositoryID: FuzzHarness.repositoryID,
                                     n: 1024, host: "fuzz", username: "fuzz")
        try write(.keyslot, try cheap.encoded())
        let keyFileSlot = try KeySlot.make(master: key, credential: .keyFile(FuzzHarness.keyFile), repositoryID: FuzzHarness.repositoryID,
                                           host: "fuzz", username: "fuzz")
        try write(.keyslot, try keyFileSlot.encoded())

        // Sealed objects: as stored, and their inner records and bodies re-sealed under the fuzz key.
        let lock = try repo.lock(exclusive: false, command: "fuzz-seeds")
        defer { lock.release() }
        for (i, kind) in FuzzHarness.sealedKinds.enumerated() {
            var first = true
            for obj in try backend.list(prefix: kind.folder + "/") {
                let object = try backend.get(obj.name)
                if first { try write(.sealed, object); first = false }
                guard let inner = FuzzHarness.openInner(object, kind: kind, key: repo.key) else { continue }
                try write(.sealedInner, [UInt8(i)] + inner)
                try write(.sealed, FuzzHarness.sealInner(inner, kind: kind, salt: Array(object[4..<36]), key: key))
                let body = try SealedObject.open(object, kind: kind, key: repo.key, name: obj.name)
                switch kind {
                case .index: try write(.indexSegment, body)
                case .snapshot: try write(.snapshot, body)
                case .lock: try write(.lock, body)
                case .pin, .policy: try write(.retention, body)
                case .wal, .walCluster: try write(.walArchive, body)
                case .check, .drill: try write(.retention, body)
                }
            }
        }

        // Packs: header plaintexts, whole small packs re-sealed, blobs' stored forms, trees and lists.
        let reader = PackReader(master: repo.key)
        var rawPack = true
        for name in try backend.listNames(prefix: "data/") {
            let pack = try backend.get(name)
            guard let h = Hash256(hex: String(name.suffix(64))),
                  let desc = try? reader.header(name: h, tail: pack, packSize: pack.count),
                  let plain = FuzzHarness.openPackHeader(tail: pack, key: repo.key) else { continue }
            let hlen = Int(pack.readLE(UInt32.self, at: pack.count - 8))
            let area = pack.count - 40 - hlen
            var w = ByteWriter()
            w.u32(UInt32(area)); w.raw(plain)
            try write(.packHeaderSealed, w.bytes)
            if pack.count <= 16 << 10 {
                if rawPack { try write(.packHeader, pack); rawPack = false }
                try write(.packHeader, Array(pack[0..<area]) + FuzzHarness.sealPackHeader(plain, salt: desc.salt, key: key))
            }
            for e in desc.blobs {
                let sealed = Array(pack[e.offset..<(e.offset + e.length)])
                if let stored = FuzzHarness.openBlob(sealed, entry: e, salt: desc.salt, key: repo.key), stored.count <= 4096 {
                    var b = ByteWriter()
                    b.u8(e.type.rawValue); b.u8(e.flags); b.u32(UInt32(e.rawLength)); b.raw(stored)
                    try write(.blob, b.bytes)
                }
                guard e.type == .tree else { continue }
                let plain = try sealed.withUnsafeBytes { try reader.open($0, entry: e, packSalt: desc.salt, pack: h) }
                if plain.starts(with: Array("RCL1".utf8)) {
                    try write(.contentList, plain)
                } else {
                    try write(.tree, plain)
                    try write(.mountTree, plain)
                }
            }
        }
        return counts
    }
}
