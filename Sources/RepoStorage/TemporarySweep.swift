public import Foundation

/// A backend whose interrupted writes can leave temporary files behind (a local directory:
/// `.tmp-*` files from a writer killed between create and rename). Object stores with atomic
/// uploads do not need this.
public protocol TemporaryFileSweeping: StorageBackend {
    /// Removes temporary files last modified before `cutoff`; returns their names.
    func removeTemporaryFiles(modifiedBefore cutoff: Date) throws -> [String]
}

extension LocalBackend: TemporaryFileSweeping {
    public func removeTemporaryFiles(modifiedBefore cutoff: Date) throws -> [String] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root) else { return [] }
        var removed: [String] = []
        while let rel = walker.nextObject() as? String {
            guard (rel as NSString).lastPathComponent.hasPrefix(".tmp-") else { continue }
            let full = root + "/" + rel
            guard let attrs = try? fm.attributesOfItem(atPath: full),
                  attrs[.type] as? FileAttributeType == .typeRegular,
                  let mtime = attrs[.modificationDate] as? Date, mtime < cutoff else { continue }
            do { try fm.removeItem(atPath: full) } catch {
                throw StorageError.io(operation: "delete", name: full, reason: error.localizedDescription)
            }
            removed.append(rel)
        }
        return removed
    }
}
