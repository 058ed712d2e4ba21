import Testing
@testable import ReporterCore

@Suite("Guest reporter: command line, usage and manual page from one table")
struct OptionsTests {
    @Test func everyOptionInTheTableParses() {
        #expect(ReporterOptions.parse([]) == .run(ReporterOptions()))
        var o = ReporterOptions()
        o.interval = 0.5; o.once = true; o.stdout = true; o.proc = "/tmp/p"
        #expect(ReporterOptions.parse(["--interval", "0.5", "--once", "--stdout", "--proc", "/tmp/p"]) == .run(o))
        let samples = ["--interval": "3", "--proc": "/x"]
        for opt in ReporterOptions.table {
            let args = [opt.flag] + (opt.argument == nil ? [] : [samples[opt.flag] ?? "?"])
            guard case .run(let parsed) = ReporterOptions.parse(args) else {
                Issue.record("\(opt.flag) in the table but not parsed")
                continue
            }
            #expect(parsed != ReporterOptions(), "\(opt.flag) changed nothing")
        }
    }

    @Test func mistakesAreUsageErrors() {
        #expect(ReporterOptions.parse(["--interval", "0.1"]) == .usage("--interval: bad value 0.1"))
        #expect(ReporterOptions.parse(["--interval"]) == .usage("--interval needs SECONDS"))
        #expect(ReporterOptions.parse(["--bogus"]) == .usage("unknown option --bogus"))
        #expect(ReporterOptions.parse(["--once", "-h"]) == .help)
        #expect(ReporterOptions.parse(["--version"]) == .version)
        #expect(ReporterOptions.parse(["--manual"]) == .manual)
    }

    @Test func usageAndManualListEveryOption() {
        let page = ReporterOptions.manual(date: "January 1, 2027")
        #expect(page.contains(".Dd January 1, 2027\n.Dt ARBITER-REPORTER 8"))
        for opt in ReporterOptions.table {
            let mdoc = "Fl \(opt.flag.dropFirst())" + (opt.argument.map { " Ar " + $0 } ?? "")
            #expect(page.contains(".Op \(mdoc)\n") && page.contains(".It \(mdoc)\n\(opt.help)\n"), "\(opt.flag)")
            #expect(ReporterOptions.usage.contains(opt.flag + " ") && ReporterOptions.usage.contains(opt.help), "\(opt.flag)")
        }
        #expect(ReporterOptions.roffText(".starts with a dot \\ and a backslash") == "\\&.starts with a dot \\e and a backslash")
    }
}
