import Foundation
import GRDB
import GuestModel
import Testing
@testable import Arbiter

/// A datagram socket a test binds, standing in for systemd's notify socket.
final class NotifyReceiver {
    let fd: Int32
    let address: String
    let path: String?

    /// `address`: a path, or "@name" for the abstract namespace.
    init(_ address: String) throws {
        self.address = address
        path = address.hasPrefix("@") ? nil : address
        if let path { unlink(path) }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let bytes = try NotifySocket.sockaddrBytes(address)
        let rc = bytes.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
        guard rc == 0 else { throw NotifySocket.Failure(description: "bind \(address): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// The next datagram, or nil after 200 ms without one.
    func next() -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }

    /// Datagrams until `done` says enough or `seconds` pass.
    func collect(for seconds: Double, until done: ([String]) -> Bool) async -> [String] {
        var got = [String]()
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && !done(got) {
            if let m = next() { got.append(m) } else { await Task.yield() }
        }
        return got
    }
}

@Suite("systemd notification (Type=notify)")
struct ServiceNotifyTests: ArbiterProcessTest {
    static let scratchPrefix = "arbiter-notify"

    let summary = RoundSummary(round: 7, domains: 13, free: KiB(gib: 2), phase: .contended, changes: 3, recorded: true, lost: 0)

    @Test func aNoticeIsOneDatagramOfNameValueLines() {
        #expect(ServiceNotice(ready: true, watchdog: true, status: "a\nb").message == "READY=1\nSTATUS=a b\nWATCHDOG=1")
        #expect(ServiceNotice(stopping: true).message == "STOPPING=1")
        #expect(ServiceNotice().message.isEmpty)
        #expect(summary.status == "round 7 recorded: 13 domains, 2G free, contended, 3 target change(s); 0 round(s) not recorded since start")
        var lost = summary
        lost.recorded = false; lost.lost = 4; lost.phase = .infeasible
        #expect(lost.status.hasPrefix("round 7 NOT recorded: 13 domains, 2G free, floors exceed the host") && lost.status.hasSuffix("4 round(s) not recorded since start"))
    }

    @Test func readyOnceAfterTheFirstRoundThatRanWatchdogEveryRoundAndWhileIdle() {
        let t0 = ContinuousClock.now
        var r = ServiceReadiness(watchdog: .seconds(4))
        // A round that cannot read the host: no READY, no WATCHDOG (a host unreadable for WatchdogSec restarts us).
        let skipped = r.afterRound(nil, at: t0)
        #expect(!skipped.ready && !skipped.watchdog && skipped.status?.contains("cannot read the host") == true)
        #expect(r.idle(at: t0 + .seconds(10)) == nil, "no keep-alive before the first round")
        let first = r.afterRound(summary, at: t0 + .seconds(1))
        #expect(first.ready && first.watchdog && first.status == summary.status)
        let second = r.afterRound(summary, at: t0 + .seconds(2))
        #expect(!second.ready && second.watchdog)
        // Idle: a ping at half the interval after the last one, not before; the loop sleeps no longer.
        #expect(r.secondsUntilPing(at: t0 + .seconds(2.5)) == 1.5)
        #expect(r.secondsUntilPing(at: t0 + .seconds(9)) == 0)
        #expect(r.idle(at: t0 + .seconds(3.9)) == nil)
        #expect(r.idle(at: t0 + .seconds(4)) == ServiceNotice(watchdog: true))
        #expect(r.idle(at: t0 + .seconds(5)) == nil)
        #expect(r.stopping().message == "STOPPING=1\nSTATUS=stopping: recording a last round")
        // Without a watchdog: READY and STATUS only.
        var quiet = ServiceReadiness(watchdog: nil)
        let q = quiet.afterRound(summary, at: t0)
        #expect(q.ready && !q.watchdog)
        #expect(quiet.idle(at: t0 + .seconds(100)) == nil && quiet.secondsUntilPing(at: t0) == nil)
        #expect(ServiceReadiness(watchdog: .seconds(4)).secondsUntilPing(at: t0) == nil, "no ping before READY")
    }

    @Test func watchdogIntervalIsOursOnlyWhenThePidMatches() {
        #expect(NotifySocket.watchdogInterval(["WATCHDOG_USEC": "60000000"], pid: 42) == .seconds(60))
        #expect(NotifySocket.watchdogInterval(["WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "42"], pid: 42) == .seconds(60))
        #expect(NotifySocket.watchdogInterval(["WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "41"], pid: 42) == nil)
        #expect(NotifySocket.watchdogInterval(["WATCHDOG_USEC": "0"], pid: 42) == nil)
        #expect(NotifySocket.watchdogInterval([:], pid: 42) == nil)
    }

    @Test func addressesArePathsOrAbstractNames() throws {
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let path = try NotifySocket.sockaddrBytes("/run/systemd/notify")
        #expect(path.count == offset + "/run/systemd/notify".utf8.count + 1 && path.last == 0)
        #expect(path.withUnsafeBytes { $0.load(as: sa_family_t.self) } == sa_family_t(AF_UNIX))
        // Abstract: a leading NUL instead of '@', and no trailing NUL counted.
        let abstract = try NotifySocket.sockaddrBytes("@arbiter/notify")
        #expect(abstract.count == offset + "arbiter/notify".utf8.count + 1)
        #expect(abstract[offset] == 0 && Array(abstract[(offset + 1)...]) == Array("arbiter/notify".utf8))
        for bad in ["relative/path", "@", "/" + String(repeating: "x", count: 200), "vsock:2:1"] {
            #expect(throws: NotifySocket.Failure.self) { try NotifySocket.sockaddrBytes(bad) }
        }
        #expect(try NotifySocket.fromEnvironment([:]) == nil)
    }

    @Test func noticesReachPathAndAbstractSockets() throws {
        let dir = try scratch("unit")
        defer { try? FileManager.default.removeItem(at: dir) }
        for address in [dir.appendingPathComponent("n.sock").path, "@arbiter-test-notify-\(getpid())"] {
            let receiver = try NotifyReceiver(address)
            let sender = try #require(try NotifySocket.fromEnvironment(["NOTIFY_SOCKET": address]))
            sender.send(ServiceNotice(ready: true, status: "round 1"))
            sender.send(ServiceNotice())   // nothing to say: nothing sent
            sender.send(ServiceNotice(watchdog: true))
            #expect(receiver.next() == "READY=1\nSTATUS=round 1", "\(address)")
            #expect(receiver.next() == "WATCHDOG=1", "\(address)")
        }
    }

    /// A manager that stops reading must never stall a round: notices it cannot take are dropped.
    @Test func aFullNotifySocketDropsNoticesInsteadOfBlocking() throws {
        let dir = try scratch("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let receiver = try NotifyReceiver(dir.appendingPathComponent("full.sock").path)
        let sender = try NotifySocket(address: receiver.address)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for i in 0..<5_000 { sender.send(ServiceNotice(watchdog: true, status: "round \(i)")) }
            done.signal()
        }
        thread.start()
        let finished = done.wait(timeout: .now() + 5) == .success
        #expect(finished, "send blocked on a full socket")
        if !finished { shutdown(receiver.fd, Int32(SHUT_RDWR)) }   // unblock the sender so the suite can go on
        // The first notices are there, in order; the rest were dropped.
        #expect(receiver.next() == "STATUS=round 0\nWATCHDOG=1")
    }

    /// The real daemon on the simulated host, with NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them.
    @Test func theDaemonNotifiesReadyStatusWatchdogAndStopping() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "arbiter binary at \(Self.binary.path)")
        let dir = try scratch("daemon")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d.sqlite").path
        let receiver = try NotifyReceiver(dir.appendingPathComponent("notify.sock").path)
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["daemon", "--db", db, "--socket", dir.appendingPathComponent("run/s.sock").path, "--speed", "40"]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = receiver.address
        env["WATCHDOG_USEC"] = "3000000"
        p.environment = env
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        let before = await receiver.collect(for: 20) { got in got.contains { $0.contains("READY=1") } && got.count >= 3 }
        let ready = try #require(before.first { $0.contains("READY=1") }, "\(before)")
        // READY comes with the first round's summary, and only once.
        #expect(ready.contains("STATUS=round 1 recorded: 13 domains") && ready.contains("free") && ready.contains("WATCHDOG=1"), "\(ready)")
        #expect(before.filter { $0.contains("READY=1") }.count == 1)
        #expect(before.first == ready, "nothing before READY: \(before)")
        // Every round after it: its STATUS and a WATCHDOG ping.
        let later = before.drop { $0 != ready }.dropFirst()
        #expect(!later.isEmpty && later.allSatisfy { $0.contains("WATCHDOG=1") && $0.contains("STATUS=round ") }, "\(before)")
        // READY meant the round was in the store.
        let store = try DecisionStore(readingAt: db)
        #expect(try store.counts()["rounds"]! >= 1)

        kill(p.processIdentifier, SIGTERM)
        let after = await receiver.collect(for: 10) { got in got.contains { $0.contains("STOPPING=1") } }
        #expect(after.contains { $0.hasPrefix("STOPPING=1\nSTATUS=stopping") }, "\(after)")
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!p.isRunning && p.terminationStatus == 0)
        // The control socket's folder was made by the daemon (RuntimeDirectory= does it under systemd).
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path, isDirectory: &isDir) && isDir.boolValue)
    }
}
