internal import CRepoFuse
public import RepoRepository
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serves a `MountFilesystem` through libfuse 3's high-level API (multi-threaded loop). The
/// only file that sees C types; everything it does is a translation of one call into the model.
public enum FuseMount {
    public struct Options: Sendable {
        public var mountpoint: String
        /// Let other users in (`allow_other`, which needs `user_allow_other` in /etc/fuse.conf
        /// for non-root users); implies `default_permissions` so the kernel enforces modes.
        public var allowOther = false
        /// Shown as the source in /proc/mounts.
        public var fsname = "repo"

        public init(mountpoint: String) { self.mountpoint = mountpoint }
    }

    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling (main) thread, so every thread started
    /// later inherits the block and the signal reaches the FUSE loop's thread. Call first thing.
    public static func blockStopSignals() { _ = crepo_mask_stop_signals(SIG_BLOCK) }

    /// Mounts and serves until the filesystem is unmounted (`fusermount3 -u`, `umount`) or the
    /// process gets SIGINT/SIGTERM/SIGHUP, then unmounts. Returns the signal that ended it, or
    /// nil when it was unmounted from outside.
    ///
    /// - Parameter mounted: called once the mount is in place (before requests are served).
    /// - Throws: `RepoError(.failure)` when the mount cannot be made (libfuse prints why).
    public static func run(_ filesystem: MountFilesystem, options: Options, mounted: () -> Void) throws -> Int32? {
        var opts = ["ro", "subtype=repo", "fsname=" + options.fsname.replacingOccurrences(of: ",", with: "_")]
        if options.allowOther { opts += ["allow_other", "default_permissions"] }
        let strings: [String] = ["repo", "-o", opts.joined(separator: ",")]
        let argv = strings.map { strdup($0) }   // libfuse may keep them: not freed
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv + [nil]
        var ops = operations()
        active = filesystem
        let fuse: OpaquePointer? = cArgv.withUnsafeMutableBufferPointer { buf in
            var args = fuse_args(argc: Int32(argv.count), argv: buf.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            return crepo_fuse_new(&args, &ops, nil)
        }
        guard let fuse else {
            throw RepoError(.failure, "libfuse rejected the mount options \(opts.joined(separator: ","))")
        }
        defer { fuse_destroy(fuse) }
        guard fuse_mount(fuse, options.mountpoint) == 0 else {
            throw RepoError(.failure, "cannot mount at \(options.mountpoint) (libfuse's message is above)",
                            hint: "check that /dev/fuse and fusermount3 exist (Debian package fuse3) and that nothing is mounted there (`fusermount3 -u \(options.mountpoint)`)")
        }
        let session = fuse_get_session(fuse)
        // libfuse only takes over signals left at their default; a shell starting us in the
        // background sets SIGINT to ignored, but SIGINT must still stop (and unmount) the mount.
        for sig in [SIGINT, SIGTERM, SIGHUP] { signal(sig, SIG_DFL) }
        guard fuse_set_signal_handlers(session) == 0 else {
            fuse_unmount(fuse)
            throw RepoError(.failure, "cannot install the signal handlers for the mount")
        }
        _ = crepo_mask_stop_signals(SIG_UNBLOCK)
        mounted()
        let status = crepo_fuse_loop_mt(fuse)
        _ = crepo_mask_stop_signals(SIG_BLOCK)
        fuse_remove_signal_handlers(session)
        fuse_unmount(fuse)
        return status > 0 ? status : nil
    }

    /// The filesystem being served (libfuse's callbacks are C functions without context).
    nonisolated(unsafe) static var active: MountFilesystem?

    static func code(_ error: Error) -> Int32 {
        switch error as? MountError {
        case .notFound: -ENOENT
        case .notDirectory: -ENOTDIR
        case .isDirectory: -EISDIR
        case .notSymlink: -EINVAL
        case .badHandle: -EBADF
        case .io, nil: -EIO
        }
    }

    static func fill(_ st: UnsafeMutablePointer<stat>, _ a: Attributes) {
        memset(st, 0, MemoryLayout<stat>.size)
        let type: UInt32 = switch a.kind {
        case .directory: UInt32(Glibc.S_IFDIR)
        case .file: UInt32(Glibc.S_IFREG)
        case .symlink: UInt32(Glibc.S_IFLNK)
        }
        st.pointee.st_mode = type | a.mode
        st.pointee.st_nlink = .init(a.links)
        st.pointee.st_size = .init(a.size)
        st.pointee.st_blocks = .init((a.size + 511) / 512)
        st.pointee.st_blksize = 1 << 20
        st.pointee.st_uid = a.uid ?? getuid()
        st.pointee.st_gid = a.gid ?? getgid()
        let t = timespec(tv_sec: a.mtime.seconds, tv_nsec: a.mtime.nanoseconds)
        st.pointee.st_mtim = t
        st.pointee.st_atim = t
        st.pointee.st_ctim = t
    }

    static func operations() -> fuse_operations {
        var ops = fuse_operations()
        ops.`init` = { _, cfg in
            if let cfg {
                // Snapshots never change: keep file pages cached across opens. Names are cached
                // for a second, and misses not at all, so new snapshots appear promptly.
                cfg.pointee.kernel_cache = 1
                cfg.pointee.entry_timeout = 1
                cfg.pointee.attr_timeout = 1
                cfg.pointee.negative_timeout = 0
                cfg.pointee.use_ino = 0
            }
            return nil
        }
        ops.getattr = { path, st, _ in
            guard let path, let st, let fs = FuseMount.active else { return -EIO }
            do {
                FuseMount.fill(st, try fs.entry(at: String(cString: path)).attributes)
                return 0
            } catch { return FuseMount.code(error) }
        }
        ops.readlink = { path, buf, size in
            guard let path, let buf, size > 0, let fs = FuseMount.active else { return -EIO }
            do {
                let target = Array(try fs.linkTarget(at: String(cString: path)).utf8)
                let n = min(target.count, size - 1)
                target.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: n) }
                buf[n] = 0
                return 0
            } catch { return FuseMount.code(error) }
        }
        ops.open = { path, fi in
            guard let path, let fi, let fs = FuseMount.active else { return -EIO }
            guard fi.pointee.flags & O_ACCMODE == O_RDONLY else { return -EROFS }
            do {
                fi.pointee.fh = try fs.open(String(cString: path))
                crepo_fuse_file_info_set_cache(fi, 1)
                return 0
            } catch { return FuseMount.code(error) }
        }
        ops.read = { _, buf, size, offset, fi in
            guard let buf, let fi, let fs = FuseMount.active else { return -EIO }
            do {
                let n = try fs.read(fi.pointee.fh, offset: Int(offset), into: UnsafeMutableRawBufferPointer(start: buf, count: size))
                return Int32(n)
            } catch { return FuseMount.code(error) }
        }
        ops.release = { _, fi in
            if let fi { FuseMount.active?.close(fi.pointee.fh) }
            return 0
        }
        ops.readdir = { path, buf, filler, _, _, flags in
            guard let path, let filler, let fs = FuseMount.active else { return -EIO }
            do {
                let entries = try fs.list(String(cString: path))
                let plus = flags.rawValue & FUSE_READDIR_PLUS.rawValue != 0
                var st = stat()
                _ = filler(buf, ".", nil, 0, fuse_fill_dir_flags(0))
                _ = filler(buf, "..", nil, 0, fuse_fill_dir_flags(0))
                for (name, attrs) in entries {
                    FuseMount.fill(&st, attrs)
                    if filler(buf, name, &st, 0, plus ? FUSE_FILL_DIR_PLUS : fuse_fill_dir_flags(0)) != 0 { break }
                }
                return 0
            } catch { return FuseMount.code(error) }
        }
        ops.statfs = { _, st in
            guard let st else { return -EIO }
            memset(st, 0, MemoryLayout<statvfs>.size)
            st.pointee.f_bsize = 1 << 20
            st.pointee.f_frsize = 1 << 20
            st.pointee.f_namemax = 255
            st.pointee.f_flag = UInt(ST_RDONLY)
            return 0
        }
        return ops
    }
}
