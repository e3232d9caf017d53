// Package browser tests the admin dashboard in a real browser: headless Chromium,
// driven by chromedp, loads a node's dashboard against a running 3-node cluster of
// real node processes (real PostgreSQL and NATS), checks that the members and the
// ring are drawn, and saves a screenshot.
//
// Chromium is found at RL_CHROMIUM, else as chromium, chromium-browser or
// google-chrome on PATH (.ci/services installs Debian's chromium). Without it the
// test is skipped, and fails when CI is set. The screenshot goes to
// $RL_ARTIFACTS/dashboard.png, or test/browser/artifacts/dashboard.png (ignored by
// git) when RL_ARTIFACTS is unset; the test log names the file.
package browser
