import XCTest
@testable import ZKCtl

/// The progress line's text: counts grouped, the rate over the phase, the estimate when the
/// total is known, cut to the terminal's width.
final class ProgressLineTests: XCTestCase {
    func reading(_ done: Int, total: Int?, what: String, phaseSeconds: Double, counted: Bool = true) -> (ProgressReading, ContinuousClock.Instant) {
        let now = ContinuousClock.now
        return (ProgressReading(done: done, total: total, what: what, since: now - .milliseconds(Int(phaseSeconds * 1000)), counted: counted), now)
    }

    func testKnownTotalShowsPercentRateAndEstimate() {
        let (r, now) = reading(12_000, total: 50_000, what: "writes", phaseSeconds: 3)
        XCTAssertEqual(ProgressLine.text(label: "import", r, elapsed: .seconds(4), now: now, width: 120),
                       "zkctl: import: 12,000 of 50,000 writes (24%), 4,000/s, 0:04, about 0:09 left")
    }

    func testUnknownTotalShowsCountRateAndElapsed() {
        let (r, now) = reading(1_234_567, total: nil, what: "nodes read", phaseSeconds: 61.5)
        XCTAssertEqual(ProgressLine.text(label: "export", r, elapsed: .seconds(3725), now: now, width: 120),
                       "zkctl: export: 1,234,567 nodes read, 20,074/s, 1:02:05")
    }

    func testUncountedPhaseAndNarrowTerminal() {
        let (r, now) = reading(0, total: nil, what: "reading the file", phaseSeconds: 1, counted: false)
        XCTAssertEqual(ProgressLine.text(label: "import", r, elapsed: .milliseconds(1500), now: now, width: 80),
                       "zkctl: import: reading the file, 0:01")
        let (long, at) = reading(12_000, total: 50_000, what: "writes", phaseSeconds: 3)
        let cut = ProgressLine.text(label: "import", long, elapsed: .seconds(4), now: at, width: 30)
        XCTAssertEqual(cut, "zkctl: import: 12,000 of 50,0")
        XCTAssertEqual(cut.count, 29, "one column short of the width, so that it never wraps")
    }
}
