// Package consoletest holds the end-to-end tests of the web console
// (docs/console.md): a real three-member cluster of rosterd processes
// (internal/cluster) and headless Chromium driven through chromedp, checking
// what an operator sees, live, against what the API says.
//
// The tests need a Chromium (Debian's chromium; .ci/run installs it) and
// skip with a clear message when none is found; ROSTER_CHROMIUM names
// another binary. With ROSTER_SCREENSHOTS set to a directory they save a
// screenshot of each view there (docs/img/ holds the committed ones).
package consoletest
