import Foundation
import RepoPrimitives
import RepoIndex

/// Pack descriptors for catalog tests: random names, salts and blob ids, `blobs` entries of
/// 100 bytes each, back to back.
enum TestPacks {
    static func random(blobs: Int) -> PackDescriptor {
        let entries = (0..<blobs).map { i in
            PackBlobEntry(id: SecureRandom.hash(), type: .data, flags: 0, offset: i * 100, length: 100, rawLength: 100)
        }
        return PackDescriptor(name: SecureRandom.hash(), salt: SecureRandom.bytes(32), kind: .data,
                              size: blobs * 100 + 100, blobs: entries)
    }
}
