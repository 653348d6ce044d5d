#!/usr/bin/env python3
"""The fault suite: tries to lose or corrupt data the way crashes, damaged storage and
concurrent writers do, and counts what happened. Runs the built `repo` binary as a user would.

Suites (all by default):
  kill         SIGKILL at random moments during store, backup, forget --prune, prune, check
  syscall      SIGKILL at exact system calls (strace -e inject=SYSCALL:signal=KILL:when=K):
               the Nth fsync, rename, unlink, write, ... of each command
  flip         bit flips, truncations, zeroed ranges and deletions in every kind of repository
               object (config, key slots, packs, index segments, snapshots, locks)
  cache        the same damage in the local cache (catalog, its WAL, the membership filter)
  concurrency  rounds of three stores from different hosts racing a forget --prune
  disk         a full disk (a small tmpfs) under store, then forget --prune to free it; a
               read-only repository (read-only bind mount) under every reading command

After every fault the suite checks what a user relies on: `repo check` (with --read-data when
data was damaged) and a dump of every snapshot that must exist, compared byte for byte with the
original; after a kill, the retried command must succeed. It counts:
  lost        a snapshot that must exist is missing or dumps wrong bytes, or check finds damage
              the fault could not have caused (kills and concurrency must lose nothing)
  undetected  a dump or restore exits 0 with wrong bytes, or data is unreadable while
              `check --read-data` says the repository is fine

The last line is "faults: N tried, N lost, N undetected"; the exit status is 1 if either count
is not zero. `--quick` is the short run the tests use; the defaults are the long run quoted in
the README.

  python3 scripts/faults.py --repo-bin .build/release/repo               # long run
  python3 scripts/faults.py --repo-bin .build/debug/repo --quick kill    # one suite, short
"""
import argparse, hashlib, json, os, random, shutil, signal, subprocess, sys, tempfile, time

PASSWORD = "fault suite password"


class Suite:
    def __init__(self, args):
        self.bin = os.path.abspath(args.repo_bin)
        self.work = args.work or tempfile.mkdtemp(prefix="repo-faults-")
        os.makedirs(self.work, exist_ok=True)
        self.rng = random.Random(args.seed)
        self.quick = args.quick
        self.verbose = args.verbose
        self.tried = self.lost = self.undetected = 0
        self.rows = []           # per suite: name, tried, lost, undetected, notes
        self.failures = []       # descriptions of every lost/undetected case

    # -- running repo ------------------------------------------------------------------
    def env(self, repo, cache, extra=None):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("REPO_"):
                del e[k]
        e.update(REPO_REPOSITORY=repo, REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=cache)
        if extra:
            e.update(extra)
        return e

    def run(self, repo, cache, args, stdin=None, timeout=600):
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
            p = subprocess.run([self.bin] + args, stdin=f, capture_output=True, env=self.env(repo, cache), timeout=timeout)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def ok(self, repo, cache, args, stdin=None):
        code, out, err = self.run(repo, cache, args, stdin)
        if code != 0:
            raise RuntimeError(f"repo {' '.join(args)} exited {code}: {err}")
        return out

    def log(self, msg):
        if self.verbose:
            print(msg, flush=True)

    # -- fixtures ----------------------------------------------------------------------
    def data_file(self, name, size, seed):
        """A pg_dump-like file: text that compresses, with random runs so chunks are unique."""
        path = os.path.join(self.work, name)
        r = random.Random(seed)
        words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf", b"hotel"]
        out = bytearray()
        row = 0
        while len(out) < size:
            row += 1
            out += b"%d\t%s %s\t%d\t%s\n" % (row, r.choice(words), r.choice(words), r.randrange(10**9), os.urandom(12).hex().encode())
        with open(path, "wb") as f:
            f.write(out[:size])
        return path

    def tree(self, name, files, seed):
        root = os.path.join(self.work, name)
        r = random.Random(seed)
        for i in range(files):
            d = os.path.join(root, "part-%02d" % (i % 7))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%03d.bin" % i), "wb") as f:
                f.write(os.urandom(r.randrange(1, 120_000)))
        return root

    def base_repository(self):
        """A repository with stream and tree snapshots of several days; returns
        (repo, expected) where expected maps snapshot id → sha256 of its dump (streams) or of
        the restored tree (trees)."""
        repo = os.path.join(self.work, "base-repo")
        cache = os.path.join(self.work, "base-cache")
        if os.path.exists(repo):
            return repo, self.base_expected
        self.ok(repo, cache, ["init", "--chunk-avg", "32KiB"])
        expected = {}
        size = 600_000 if self.quick else 3_000_000
        for day in range(1, 5):
            f = self.data_file(f"day{day}.sql", size, day)
            sid = json.loads(self.ok(repo, cache, ["store", "--name", "db.sql", "--json", "--time", f"2024-05-0{day}T01:00:00Z"], stdin=f))["id"]
            expected[sid] = ("stream", sha_file(f))
        src = self.tree("tree-src", 30 if self.quick else 150, 7)
        sid = json.loads(self.ok(repo, cache, ["backup", src, "--json"]))["id"]
        expected[sid] = ("tree", tree_digest(src), src)
        self.base_expected = expected
        return repo, expected

    def copy_base(self, label):
        base, expected = self.base_repository()
        repo = os.path.join(self.work, "trial-" + label)
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(base, repo, symlinks=True)
        cache = repo + "-cache"
        shutil.rmtree(cache, ignore_errors=True)
        return repo, cache, dict(expected)

    # -- verification --------------------------------------------------------------------
    def verify(self, repo, cache, expected, label, read_data=False):
        """Lost-data check after a kill: check passes and every expected snapshot is intact."""
        problems = []
        code, out, err = self.run(repo, cache, ["check"] + (["--read-data"] if read_data else []))
        if code != 0:
            problems.append(f"check exit {code}: {err.strip()[:300]}")
        for sid, exp in expected.items():
            got = self.snapshot_digest(repo, cache, sid, exp)
            if got != exp[1]:
                problems.append(f"snapshot {sid[:8]}: {got}")
        if problems:
            self.failures.append(f"LOST {label}: " + "; ".join(problems))
        return not problems

    def snapshot_digest(self, repo, cache, sid, exp):
        if exp[0] == "stream":
            code, out, err = self.run(repo, cache, ["dump", sid])
            return hashlib.sha256(out).hexdigest() if code == 0 else f"dump exit {code}"
        target = tempfile.mkdtemp(prefix="restore-", dir=self.work)
        try:
            code, out, err = self.run(repo, cache, ["restore", f"{sid}:{exp[2]}", "--target", target])
            return tree_digest(target) if code == 0 else f"restore exit {code}"
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def record(self, name, tried, lost, undetected, notes=""):
        self.tried += tried
        self.lost += lost
        self.undetected += undetected
        self.rows.append((name, tried, lost, undetected, notes))
        print(f"{name}: {tried} tried, {lost} lost, {undetected} undetected {notes}", flush=True)

    # -- kill suites -----------------------------------------------------------------------
    def commands(self):
        """The commands the kill suites interrupt: (label, argv, stdin)."""
        self.base_repository()
        new = self.data_file("new.sql", 800_000 if self.quick else 6_000_000, 99)
        src = os.path.join(self.work, "tree-src")
        return [
            ("store", ["store", "--name", "db.sql", "--json"], new, None),
            ("backup", ["backup", src, "--json"], None, None),
            # --safety-margin 0: the packs were written seconds ago, and prune must have work.
            ("forget-prune", ["forget", "--keep-last", "2", "--prune", "--safety-margin", "0"], None, None),
            # Prune with work to do: snapshots forgotten first, packs to delete and repack.
            ("prune", ["prune", "--max-unused", "0", "--safety-margin", "0"], None, ["forget", "--keep-last", "2"]),
            ("check", ["check", "--read-data"], None, None),
        ]

    def fresh(self, label, prepare):
        """A copy of the base repository, with `prepare` run on it."""
        repo, cache, expected = self.copy_base(label)
        if prepare:
            self.ok(repo, cache, prepare)
            expected = self.kept_after_forget(repo, cache, expected)
        return repo, cache, expected

    def after_kill(self, repo, cache, expected, label, argv, stdin):
        """After a kill: unlock stale locks, verify, then retry the command to completion."""
        self.run(repo, cache, ["unlock"])
        lost = 0
        forgetting = argv[0] == "forget"
        keep = self.kept_after_forget(repo, cache, expected) if forgetting else expected
        if not self.verify(repo, cache, keep, label):
            lost += 1
        code, out, err = self.run(repo, cache, argv, stdin)
        if code != 0:
            self.failures.append(f"LOST {label}: the retried command exited {code}: {err.strip()[:300]}")
            lost += 1
        elif argv[0] == "store":
            expected[json.loads(out)["id"]] = ("stream", sha_file(stdin))
        if forgetting:
            for sid in list(expected):
                if sid not in self.snapshot_ids(repo, cache):
                    del expected[sid]
        if not self.verify(repo, cache, self.kept_after_forget(repo, cache, expected) if forgetting else expected, label + " (after retry)"):
            lost += 1
        return min(lost, 1)

    def snapshot_ids(self, repo, cache):
        return {s["id"] for s in json.loads(self.ok(repo, cache, ["snapshots", "--json"]))}

    def kept_after_forget(self, repo, cache, expected):
        present = self.snapshot_ids(repo, cache)
        return {k: v for k, v in expected.items() if k in present}

    def suite_kill(self):
        trials = 1 if self.quick else 30
        tried = lost = 0
        for label, argv, stdin, prepare in self.commands():
            repo, cache, expected = self.fresh("kill-" + label, prepare)
            # How long does it take? Kill uniformly within that.
            t0 = time.time()
            self.run(repo, cache, argv, stdin)
            duration = time.time() - t0
            for i in range(trials):
                repo, cache, expected = self.fresh("kill-" + label, prepare)
                delay = self.rng.uniform(0.0, duration * 1.1)
                with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
                    p = subprocess.Popen([self.bin] + argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=self.env(repo, cache))
                    time.sleep(delay)
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                tried += 1
                lost += self.after_kill(repo, cache, expected, f"kill {label} at {delay:.3f}s", argv, stdin)
                self.log(f"kill {label} #{i} at {delay:.3f}s of {duration:.2f}s: lost so far {lost}")
        self.record("kill -9 at random moments", tried, lost, 0, f"({len(self.commands())} commands)")

    def suite_syscall(self):
        if not shutil.which("strace"):
            print("syscall: strace is not installed; skipped", flush=True)
            return
        per_call = 1 if self.quick else 5
        calls = ["fsync", "rename", "unlink", "write"] if self.quick else \
            ["fsync", "fdatasync", "rename", "renameat2", "unlink", "unlinkat", "write", "pwrite64", "openat", "ftruncate"]
        tried = lost = completed = 0
        for label, argv, stdin, prepare in self.commands():
            # Count each call once on an untouched copy.
            repo, cache, expected = self.fresh("sys-" + label, prepare)
            counts = self.count_syscalls(repo, cache, argv, stdin, calls)
            for call in calls:
                n = counts.get(call, 0)
                if n == 0:
                    continue
                points = sorted(set([1, n] + [self.rng.randint(1, n) for _ in range(per_call)]))[:per_call]
                for k in points:
                    repo, cache, expected = self.fresh(f"sys-{label}-{call}-{k}", prepare)
                    cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}", "-e", f"inject={call}:signal=KILL:when={k}", self.bin] + argv
                    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
                        r = subprocess.run(cmd, stdin=f, capture_output=True, env=self.env(repo, cache), timeout=600)
                    if r.returncode not in (-signal.SIGKILL, 128 + signal.SIGKILL):
                        # strace counts calls per thread: this point was never reached.
                        completed += 1
                        continue
                    tried += 1
                    lost += self.after_kill(repo, cache, expected, f"kill {label} at {call} #{k}/{n}", argv, stdin)
                    self.log(f"syscall {label} {call} #{k}/{n}: lost so far {lost}")
        self.record("kill -9 at exact system calls", tried, lost, 0, f"({completed} points not reached)")

    def count_syscalls(self, repo, cache, argv, stdin, calls):
        out = os.path.join(self.work, "strace-count")
        cmd = ["strace", "-f", "-c", "-o", out, "-e", "trace=" + ",".join(calls), self.bin] + argv
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
            subprocess.run(cmd, stdin=f, capture_output=True, env=self.env(repo, cache), timeout=600)
        counts = {}
        for line in open(out):
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in calls and parts[3].isdigit():
                counts[parts[-1]] = int(parts[3])
        return counts

    # -- damage suites -----------------------------------------------------------------------
    def objects(self, repo):
        kinds = {"config": [], "keys": [], "data": [], "index": [], "snapshots": [], "locks": []}
        for dirpath, _, files in os.walk(repo):
            for f in files:
                rel = os.path.relpath(os.path.join(dirpath, f), repo)
                top = rel.split("/")[0]
                if ".tmp-" in rel:
                    continue
                if rel == "config":
                    kinds["config"].append(rel)
                elif top in kinds:
                    kinds[top].append(rel)
        return kinds

    def plant_lock(self, repo, cache):
        """A real lock object: copied from a store that waits on a FIFO."""
        fifo = os.path.join(self.work, "lock-fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        p = subprocess.Popen([self.bin, "store", "--name", "held"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=self.env(repo, cache))
        lock = None
        for _ in range(200):
            locks = [f for f in os.listdir(os.path.join(repo, "locks"))] if os.path.isdir(os.path.join(repo, "locks")) else []
            if locks:
                lock = locks[0]
                data = open(os.path.join(repo, "locks", lock), "rb").read()
                break
            time.sleep(0.05)
        p.kill()
        p.wait()
        if lock:
            os.makedirs(os.path.join(repo, "locks"), exist_ok=True)
            with open(os.path.join(repo, "locks", lock), "wb") as f:
                f.write(data)

    def damage(self, path, how):
        data = bytearray(open(path, "rb").read())
        if how == "delete" or not data:
            os.unlink(path)
            return
        if how == "flip":
            k = self.rng.randrange(len(data))
            data[k] ^= 1 << self.rng.randrange(8)
        elif how == "truncate":
            data = data[: self.rng.randrange(len(data))]
        elif how == "zero":
            k = self.rng.randrange(len(data))
            n = self.rng.randint(1, 64)
            data[k:k + n] = bytes(len(data[k:k + n]))
        os.chmod(path, 0o600)
        with open(path, "wb") as f:
            f.write(data)

    def suite_flip(self):
        per_kind = 2 if self.quick else 45
        hows = ["flip", "flip", "truncate", "zero", "delete"]
        tried = undetected = 0
        notes = {}
        for kind in ["config", "keys", "data", "index", "snapshots", "locks"]:
            for i in range(per_kind):
                repo, cache, expected = self.copy_base(f"flip-{kind}-{i}")
                if kind == "locks":
                    self.plant_lock(repo, cache)
                objs = self.objects(repo)[kind]
                if not objs:
                    continue
                target = self.rng.choice(objs)
                how = self.rng.choice(hows)
                self.damage(os.path.join(repo, target), how)
                tried += 1
                if kind == "snapshots" and how == "delete":
                    # Deleting a whole object is outside what the format can detect (FORMAT.md
                    # §22: no authenticated list of snapshots); counted apart, not as detected.
                    notes["snapshot deleted (undetectable by design)"] = notes.get("snapshot deleted (undetectable by design)", 0) + 1
                    continue
                outcome = self.judge(repo, cache, expected, f"{how} {target}")
                notes[outcome] = notes.get(outcome, 0) + 1
                if outcome == "UNDETECTED":
                    undetected += 1
                self.log(f"flip {kind} {how} {target}: {outcome}")
        self.record("damaged repository objects", tried, 0, undetected,
                    "(" + ", ".join(f"{v} {k}" for k, v in sorted(notes.items())) + ")")

    def judge(self, repo, cache, expected, label):
        """detected: something failed loudly where data was affected; harmless: every snapshot
        still reads back right; UNDETECTED: wrong bytes with exit 0, or check --read-data
        passing while a snapshot cannot be read."""
        code, out, err = self.run(repo, cache, ["check", "--read-data"])
        check_ok = code == 0
        affected = False
        for sid, exp in expected.items():
            got = self.snapshot_digest(repo, cache, sid, exp)
            if got == exp[1]:
                continue
            affected = True
            if not (got.startswith("dump exit") or got.startswith("restore exit")):
                self.failures.append(f"UNDETECTED {label}: snapshot {sid[:8]} read back wrong bytes with exit 0")
                return "UNDETECTED"
        if affected and check_ok:
            self.failures.append(f"UNDETECTED {label}: a snapshot cannot be read but check --read-data exits 0")
            return "UNDETECTED"
        if affected or not check_ok:
            return "detected"
        return "harmless"

    def suite_cache(self):
        trials = 6 if self.quick else 60
        tried = undetected = 0
        base, expected = self.base_repository()
        warm = os.path.join(self.work, "warm-cache")
        shutil.rmtree(warm, ignore_errors=True)
        self.ok(base, warm, ["snapshots"])
        for i in range(trials):
            cache = os.path.join(self.work, f"cache-{i}")
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(warm, cache)
            files = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
            target = self.rng.choice(files)
            how = self.rng.choice(["flip", "flip", "truncate", "zero", "delete"])
            self.damage(target, how)
            tried += 1
            bad = []
            for sid, exp in expected.items():
                got = self.snapshot_digest(base, cache, sid, exp)
                if got != exp[1]:
                    bad.append(f"{sid[:8]}: {got}")
            if bad:
                undetected += 1
                self.failures.append(f"UNDETECTED cache {how} {os.path.basename(target)}: " + "; ".join(bad))
            shutil.rmtree(cache, ignore_errors=True)
        self.record("damaged cache files", tried, 0, undetected, "(answers must not change)")

    def suite_concurrency(self):
        rounds = 1 if self.quick else 25
        repo, cache, expected = self.copy_base("concurrency")
        tried = lost = 0
        for r in range(rounds):
            procs = []
            inputs = []
            for h in range(3):
                f = self.data_file(f"conc-{r}-{h}.sql", 300_000 if self.quick else 1_500_000, 1000 * r + h)
                inputs.append(f)
                procs.append(subprocess.Popen([self.bin, "store", "--name", f"db{h}.sql", "--host", f"host{h}", "--json"],
                                              stdin=open(f, "rb"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              env=self.env(repo, os.path.join(self.work, f"conc-cache-{h}"))))
            time.sleep(self.rng.uniform(0, 0.3))
            # No safety margin: the lock protocol alone must keep the racing stores' packs.
            pr = subprocess.run([self.bin, "forget", "--keep-last", "3", "--prune", "--safety-margin", "0"], capture_output=True,
                                env=self.env(repo, os.path.join(self.work, "conc-cache-prune")))
            for p, f in zip(procs, inputs):
                out, err = p.communicate()
                if p.returncode == 0:
                    expected[json.loads(out)["id"]] = ("stream", sha_file(f))
                elif p.returncode != 11:
                    self.failures.append(f"LOST concurrency round {r}: a store exited {p.returncode}: {err.decode()[:300]}")
                    lost += 1
            if pr.returncode not in (0, 11):
                self.failures.append(f"LOST concurrency round {r}: forget --prune exited {pr.returncode}: {pr.stderr.decode()[:300]}")
                lost += 1
            tried += 1
            present = self.snapshot_ids(repo, cache)
            keep = {k: v for k, v in expected.items() if k in present}
            if not self.verify(repo, cache, keep, f"concurrency round {r}", read_data=True):
                lost += 1
            self.log(f"concurrency round {r}: prune exit {pr.returncode}, lost so far {lost}")
        self.record("three stores racing forget --prune", tried, lost, 0, f"({rounds} rounds)")

    def suite_disk(self):
        if os.geteuid() != 0:
            print("disk: needs root (tmpfs and bind mounts); skipped", flush=True)
            return
        tried = lost = 0
        # Full disk: stores until the file system is full; nothing stored before is harmed,
        # the failing store says so, and forget --prune frees the space again.
        mnt = os.path.join(self.work, "small-disk")
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt], check=True)
        try:
            repo, cache = os.path.join(mnt, "repo"), os.path.join(self.work, "disk-cache")
            self.ok(repo, cache, ["init", "--chunk-avg", "64KiB", "--compression", "none"])
            expected, full = {}, False
            for i in range(40):
                f = os.path.join(self.work, f"disk-{i}.bin")
                with open(f, "wb") as out:
                    out.write(os.urandom(1_500_000))
                code, out, err = self.run(repo, cache, ["store", "--name", "db.bin", "--json", "--time", f"2024-01-{i % 28 + 1:02d}T{i // 28:02d}:00:00Z"], stdin=f)
                tried += 1
                if code == 0:
                    expected[json.loads(out)["id"]] = ("stream", sha_file(f))
                    continue
                full = True
                if "full" not in err and "space" not in err:
                    self.failures.append(f"LOST disk: a store on a full disk failed without saying so: {err.strip()[:200]}")
                    lost += 1
                break
            if not full:
                self.failures.append("LOST disk: the small disk never filled up")
                lost += 1
            if not self.verify(repo, cache, expected, "full disk"):
                lost += 1
            code, out, err = self.run(repo, cache, ["forget", "--keep-last", "2", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0",
                                                    "--prune", "--safety-margin", "0"])
            tried += 1
            if code != 0:
                self.failures.append(f"LOST disk: forget --prune on a full disk exited {code}: {err.strip()[:300]}")
                lost += 1
            expected = self.kept_after_forget(repo, cache, expected)
            f = os.path.join(self.work, "disk-after.bin")
            with open(f, "wb") as out:
                out.write(os.urandom(1_000_000))
            code, out, err = self.run(repo, cache, ["store", "--name", "db.bin", "--json"], stdin=f)
            tried += 1
            if code != 0:
                self.failures.append(f"LOST disk: store after freeing space exited {code}: {err.strip()[:300]}")
                lost += 1
            else:
                expected[json.loads(out)["id"]] = ("stream", sha_file(f))
            if not self.verify(repo, cache, expected, "after forget --prune on a full disk"):
                lost += 1
        finally:
            subprocess.run(["umount", "-l", mnt])
        # Read-only repository: every reading command works.
        repo, cache, expected = self.copy_base("read-only")
        subprocess.run(["mount", "--bind", repo, repo], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", repo], check=True)
            tried += 1
            if not self.verify(repo, cache, expected, "read-only repository", read_data=True):
                lost += 1
            for argv in (["snapshots"], ["stats"], ["ls", "latest"]):
                code, out, err = self.run(repo, cache, argv)
                tried += 1
                if code != 0:
                    self.failures.append(f"LOST read-only: repo {' '.join(argv)} exited {code}: {err.strip()[:200]}")
                    lost += 1
        finally:
            subprocess.run(["umount", "-l", repo])
        self.record("full disk and read-only repository", tried, lost, 0)


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(os.path.relpath(p, root).encode() + b"\0")
            h.update(sha_file(p).encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--work", help="scratch directory (default: a new temporary one, removed afterwards)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="the short run the tests use")
    ap.add_argument("--json", help="write the counts to this file")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("suites", nargs="*", default=["kill", "syscall", "flip", "cache", "concurrency", "disk"])
    args = ap.parse_args()
    s = Suite(args)
    started = time.time()
    try:
        for name in args.suites:
            getattr(s, "suite_" + name)()
    finally:
        if not args.work:
            shutil.rmtree(s.work, ignore_errors=True)
    for f in s.failures:
        print(f, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tried": s.tried, "lost": s.lost, "undetected": s.undetected, "seconds": round(time.time() - started),
                       "suites": [dict(zip(["name", "tried", "lost", "undetected", "notes"], r)) for r in s.rows],
                       "failures": s.failures}, f, indent=1)
    print(f"faults: {s.tried} tried, {s.lost} lost, {s.undetected} undetected ({time.time() - started:.0f} s)")
    sys.exit(1 if s.lost or s.undetected else 0)


if __name__ == "__main__":
    main()
